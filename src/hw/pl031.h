/* pl031.h - the ARM PrimeCell PL031 real-time clock, the arm64 machine's
 * wall clock (Linux: rtc-pl031, through the AMBA bus).
 *
 * Reads of the data register give the host's wall-clock time (UTC, in
 * seconds) plus whatever offset the guest set by writing the load
 * register. The match register and interrupt mask are plain storage: no
 * alarm interrupt is ever raised (the raw status reads 0).
 */
#ifndef ARCVM_PL031_H
#define ARCVM_PL031_H

#include "base/bus.h"

#include <pthread.h>
#include <stdint.h>

#define PL031_LEN 0x1000

struct pl031 {
    pthread_mutex_t lock; /* taken on vCPU threads */
    int64_t offset;       /* guest time minus host time, seconds */
    uint32_t match, imsc;
    /* Host wall clock in seconds; replaceable so tests can pin the time. */
    int64_t (*now)(void);
};

extern const struct bus_ops pl031_ops;

void pl031_init(struct pl031 *p);
void pl031_release(struct pl031 *p);

/* Snapshots (base/snap.h): the guest's offset from the host's clock, the
 * match register and the interrupt mask. */
struct snap_w;
struct snap_r;
void pl031_save(struct pl031 *p, struct snap_w *w);
/* Restore what pl031_save() wrote into a pl031_init()ed clock. -EPROTO for
 * a malformed section or values the guest could not have written. */
int pl031_load(struct pl031 *p, struct snap_r *r);

#endif
