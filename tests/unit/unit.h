/* unit.h - common includes for the cmocka unit tests. */
#ifndef ARCVM_UNIT_H
#define ARCVM_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN(...)                                                                                   \
    do {                                                                                           \
        const struct CMUnitTest tests_[] = {__VA_ARGS__};                                          \
        return cmocka_run_group_tests(tests_, NULL, NULL);                                         \
    } while (0)

#endif
