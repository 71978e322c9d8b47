/* pl031.c - PL031 RTC emulation; see pl031.h. Register map from ARM's
 * PrimeCell Real Time Clock (PL031) Technical Reference Manual, 3.2. */
#include "hw/pl031.h"

#include "base/snap.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define RTCDR 0x00   /* data: the current time, read-only */
#define RTCMR 0x04   /* match */
#define RTCLR 0x08   /* load: writing sets the time */
#define RTCCR 0x0c   /* control: bit 0, the clock runs (always) */
#define RTCIMSC 0x10 /* interrupt mask */
#define RTCRIS 0x14  /* raw interrupt status */
#define RTCMIS 0x18  /* masked interrupt status */
#define RTCICR 0x1c  /* interrupt clear, write-only */
/* Peripheral and PrimeCell IDs, one byte per word at 0xfe0..0xffc: the
 * AMBA bus reads them to match the driver (part 0x031, ARM, revision 1). */
#define ID_BASE 0xfe0
static const uint8_t ids[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

static int64_t host_now(void)
{
    return (int64_t)time(NULL);
}

void pl031_init(struct pl031 *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->now = host_now;
}

void pl031_release(struct pl031 *p)
{
    pthread_mutex_destroy(&p->lock);
}

static uint32_t reg_read(struct pl031 *p, uint64_t off)
{
    if (off >= ID_BASE && off < ID_BASE + 4 * sizeof(ids))
        return ids[(off - ID_BASE) / 4];
    switch (off) {
    case RTCDR:
        return (uint32_t)(p->now() + p->offset);
    case RTCMR:
        return p->match;
    case RTCLR:
        return (uint32_t)(p->now() + p->offset);
    case RTCCR:
        return 1;
    case RTCIMSC:
        return p->imsc;
    default: /* RIS, MIS: no alarm ever fires; reserved: 0 */
        return 0;
    }
}

/* Registers are 32 bits wide and word-aligned; other accesses read 0 and
 * write nothing. */
static void pl031_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    struct pl031 *p = dev;
    uint32_t v = 0;
    if (len == 4 && !(off & 3)) {
        pthread_mutex_lock(&p->lock);
        v = reg_read(p, off);
        pthread_mutex_unlock(&p->lock);
    }
    memset(data, 0, len);
    memcpy(data, &v, len < 4 ? len : 4);
}

static void pl031_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct pl031 *p = dev;
    if (len != 4 || (off & 3))
        return;
    uint32_t v;
    memcpy(&v, data, 4);
    pthread_mutex_lock(&p->lock);
    switch (off) {
    case RTCLR:
        /* The guest's new time, kept as an offset so the clock runs on. */
        p->offset = (int64_t)v - p->now();
        break;
    case RTCMR:
        p->match = v;
        break;
    case RTCIMSC:
        p->imsc = v & 1;
        break;
    default: /* data, control, clear, IDs: nothing to change */
        break;
    }
    pthread_mutex_unlock(&p->lock);
}

const struct bus_ops pl031_ops = {.read = pl031_read, .write = pl031_write};

void pl031_save(struct pl031 *p, struct snap_w *w)
{
    pthread_mutex_lock(&p->lock);
    snap_put_u64(w, (uint64_t)p->offset);
    snap_put_u32(w, p->match);
    snap_put_u32(w, p->imsc);
    pthread_mutex_unlock(&p->lock);
}

/* The guest sets the offset through a 32-bit load register: it stays
 * within 2^32 seconds of the host's clock (with room for the host's clock
 * to move between save and restore). */
#define OFFSET_MAX (1ll << 34)

int pl031_load(struct pl031 *p, struct snap_r *r)
{
    int64_t offset = (int64_t)snap_get_u64(r);
    uint32_t match = snap_get_u32(r), imsc = snap_get_u32(r);
    int e = snap_r_done(r);
    if (e < 0)
        return e;
    if (offset > OFFSET_MAX || offset < -OFFSET_MAX || imsc > 1)
        return -EPROTO;
    pthread_mutex_lock(&p->lock);
    p->offset = offset;
    p->match = match;
    p->imsc = imsc;
    pthread_mutex_unlock(&p->lock);
    return 0;
}
