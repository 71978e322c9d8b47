/* boot_timer.h - Firecracker's boot-time marker device.
 *
 * When the guest writes the byte 123 at offset 0 of this MMIO page, arcvm
 * logs the wall-clock and CPU time since the VMM started, as Firecracker's
 * --boot-timer does ("Guest-boot-time = ...").
 */
#ifndef ARCVM_BOOT_TIMER_H
#define ARCVM_BOOT_TIMER_H

#include "base/bus.h"

#include <stdbool.h>
#include <stdint.h>

/* Firecracker's x86 address and magic value, so guest tooling is shared. */
#define BOOT_TIMER_ADDR 0xc0000000ull
#define BOOT_TIMER_LEN 0x1000
#define BOOT_TIMER_MAGIC 123

struct boot_timer {
    bool enabled;           /* off: the page exists but writes are ignored */
    uint64_t start_wall_us; /* CLOCK_MONOTONIC at VMM start */
    uint64_t start_cpu_us;  /* process CPU time at VMM start */
};

extern const struct bus_ops boot_timer_ops;
/* The page is always mapped so that guests built for Firecracker write to it
 * quietly; only an @enabled timer logs. */
void boot_timer_init(struct boot_timer *t, bool enabled, uint64_t start_wall_us,
                     uint64_t start_cpu_us);

#endif
