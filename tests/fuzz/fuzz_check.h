/* fuzz_check.h - CHECK(), what every fuzz target asserts its properties
 * with: unlike assert() it stays on in every build type, and it names the
 * failed condition before abort() hands the input to libFuzzer. */
#ifndef ARCVM_FUZZ_CHECK_H
#define ARCVM_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: check failed at line %d: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
