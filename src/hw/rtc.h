/* rtc.h - the CMOS real-time clock (MC146818) at ports 0x70/0x71.
 *
 * Reads give the host's wall-clock time (UTC) plus whatever offset the guest
 * set by writing the clock, so the guest's clock starts at the host's time.
 * The rest of the 128 bytes is plain NVRAM. No alarm or periodic interrupts.
 */
#ifndef ARCVM_RTC_H
#define ARCVM_RTC_H

#include "base/bus.h"

#include <pthread.h>
#include <stdint.h>

#define RTC_PORT_BASE 0x70
#define RTC_PORT_LEN 2
/* CMOS index of the century byte, announced in the ACPI FADT. */
#define RTC_REG_CENTURY 0x32

struct snap_r;
struct snap_w;

struct rtc {
    pthread_mutex_t lock;
    uint8_t index;
    uint8_t nvram[128];
    int64_t offset; /* guest time minus host time, seconds */
    /* Host wall clock in seconds; replaceable so tests can pin the time. */
    int64_t (*now)(void);
};

extern const struct bus_ops rtc_ops;
void rtc_init(struct rtc *r);
void rtc_release(struct rtc *r);
/* The register value the guest would read at CMOS index @reg. */
uint8_t rtc_read_reg(struct rtc *r, uint8_t reg);
void rtc_write_reg(struct rtc *r, uint8_t reg, uint8_t v);

/* Snapshot: the index register, the NVRAM and the guest's offset from the
 * host clock, never the time itself, so a VM restored on another day reads
 * that day's time (moved as the guest had set it). Takes r->lock. */
void rtc_save(struct rtc *r, struct snap_w *w);
/* Restore what rtc_save() wrote into an rtc_init()ed clock. Checks every
 * value (index, the bits and bytes this RTC keeps fixed, an offset within
 * the years the guest can set): 0, or -EPROTO with @r unchanged. */
int rtc_load(struct rtc *r, struct snap_r *rd);

#endif
