/* internal.h - library entry points for arcvm's own front ends only. */
#ifndef ARCVM_LIB_INTERNAL_H
#define ARCVM_LIB_INTERNAL_H

#include "arcvm.h"

#include <stdint.h>

/* Measure the boot timer from the front end's own start (CLOCK_MONOTONIC
 * and process CPU time, microseconds) instead of VM creation. */
void arcvm_set_start_time(arcvm *vm, uint64_t wall_us, uint64_t cpu_us);

#endif
