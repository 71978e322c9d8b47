/* rtc.c - CMOS clock emulation; see rtc.h. Register map from the MC146818A
 * datasheet; the century byte at 0x32 is the IBM PC convention. */
#include "hw/rtc.h"

#include "base/snap.h"

#include <errno.h>
#include <string.h>
#include <time.h>

enum {
    REG_SEC = 0x00, REG_MIN = 0x02, REG_HOUR = 0x04, REG_WDAY = 0x06, REG_MDAY = 0x07,
    REG_MON = 0x08, REG_YEAR = 0x09, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d,
};
#define A_DIVIDER 0x26 /* 32.768 kHz time base, 1024 Hz rate: the power-on value */
#define B_24H 0x02
#define B_BINARY 0x04
#define B_SET 0x80
#define D_VRT 0x80 /* valid RAM and time: the battery is fine */
#define HOUR_PM 0x80

static int64_t host_now(void)
{
    return (int64_t)time(NULL);
}

void rtc_init(struct rtc *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->now = host_now;
    r->nvram[REG_A] = A_DIVIDER;
    r->nvram[REG_B] = B_24H; /* BCD, 24-hour: what PC firmware leaves */
    r->nvram[REG_D] = D_VRT;
}

void rtc_release(struct rtc *r)
{
    pthread_mutex_destroy(&r->lock);
}

static uint8_t to_bcd(unsigned v)
{
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_bcd(uint8_t v)
{
    return (unsigned)(v >> 4) * 10 + (v & 0x0f);
}

static uint8_t encode(const struct rtc *r, unsigned v)
{
    return (r->nvram[REG_B] & B_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned decode(const struct rtc *r, uint8_t v)
{
    return (r->nvram[REG_B] & B_BINARY) ? v : from_bcd(v);
}

static void guest_tm(const struct rtc *r, struct tm *tm)
{
    time_t t = (time_t)(r->now() + r->offset);
    gmtime_r(&t, tm);
}

static uint8_t hour_reg(const struct rtc *r, int hour)
{
    if (r->nvram[REG_B] & B_24H)
        return encode(r, (unsigned)hour);
    unsigned h12 = hour % 12 ? (unsigned)hour % 12 : 12;
    return (uint8_t)(encode(r, h12) | (hour >= 12 ? HOUR_PM : 0));
}

uint8_t rtc_read_reg(struct rtc *r, uint8_t reg)
{
    reg &= 0x7f;
    struct tm tm;
    switch (reg) {
    case REG_SEC: guest_tm(r, &tm); return encode(r, (unsigned)tm.tm_sec);
    case REG_MIN: guest_tm(r, &tm); return encode(r, (unsigned)tm.tm_min);
    case REG_HOUR: guest_tm(r, &tm); return hour_reg(r, tm.tm_hour);
    case REG_WDAY: guest_tm(r, &tm); return encode(r, (unsigned)tm.tm_wday + 1);
    case REG_MDAY: guest_tm(r, &tm); return encode(r, (unsigned)tm.tm_mday);
    case REG_MON: guest_tm(r, &tm); return encode(r, (unsigned)tm.tm_mon + 1);
    case REG_YEAR: guest_tm(r, &tm); return encode(r, (unsigned)(tm.tm_year + 1900) % 100);
    case RTC_REG_CENTURY: guest_tm(r, &tm); return encode(r, (unsigned)(tm.tm_year + 1900) / 100);
    case REG_A: return r->nvram[REG_A] & 0x7f; /* UIP never set: reads never wait */
    case REG_C: return 0;                      /* no interrupt flags */
    default: return r->nvram[reg];
    }
}

/* The guest set one field of the clock: move the offset so that field reads
 * back as written and the others keep counting. Invalid values are ignored. */
static void set_field(struct rtc *r, uint8_t reg, uint8_t raw)
{
    struct tm tm;
    guest_tm(r, &tm);
    unsigned v = decode(r, reg == REG_HOUR ? (uint8_t)(raw & 0x7f) : raw);
    switch (reg) {
    case REG_SEC: if (v > 59) return; tm.tm_sec = (int)v; break;
    case REG_MIN: if (v > 59) return; tm.tm_min = (int)v; break;
    case REG_HOUR:
        if (!(r->nvram[REG_B] & B_24H)) {
            if (v < 1 || v > 12) return;
            v = (v % 12) + ((raw & HOUR_PM) ? 12 : 0);
        }
        if (v > 23) return;
        tm.tm_hour = (int)v;
        break;
    case REG_MDAY: if (v < 1 || v > 31) return; tm.tm_mday = (int)v; break;
    case REG_MON: if (v < 1 || v > 12) return; tm.tm_mon = (int)v - 1; break;
    case REG_YEAR: if (v > 99) return; tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + (int)v - 1900; break;
    case RTC_REG_CENTURY: if (v < 19 || v > 99) return; tm.tm_year = (int)v * 100 + (tm.tm_year + 1900) % 100 - 1900; break;
    default: return; /* weekday is derived from the date */
    }
    time_t t = timegm(&tm);
    if (t != (time_t)-1)
        r->offset = (int64_t)t - r->now();
}

void rtc_write_reg(struct rtc *r, uint8_t reg, uint8_t v)
{
    reg &= 0x7f;
    switch (reg) {
    case REG_SEC: case REG_MIN: case REG_HOUR: case REG_MDAY: case REG_MON: case REG_YEAR:
    case RTC_REG_CENTURY:
        set_field(r, reg, v);
        break;
    case REG_WDAY: break;
    case REG_A: r->nvram[REG_A] = v & 0x7f; break;
    case REG_B: r->nvram[REG_B] = v & (uint8_t)~B_SET; break; /* updates never stop */
    case REG_C: case REG_D: break;                             /* read-only */
    default: r->nvram[reg] = v; break;
    }
}

static void rtc_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    struct rtc *r = opaque;
    pthread_mutex_lock(&r->lock);
    uint8_t v = off == 0 ? r->index : rtc_read_reg(r, r->index);
    pthread_mutex_unlock(&r->lock);
    memset(data, 0xff, len);
    data[0] = v;
}

static void rtc_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct rtc *r = opaque;
    (void)len;
    pthread_mutex_lock(&r->lock);
    if (off == 0)
        r->index = data[0] & 0x7f; /* bit 7 gates NMI on real boards: ignored */
    else
        rtc_write_reg(r, r->index, data[0]);
    pthread_mutex_unlock(&r->lock);
}

const struct bus_ops rtc_ops = {.read = rtc_read, .write = rtc_write};

void rtc_save(struct rtc *r, struct snap_w *w)
{
    pthread_mutex_lock(&r->lock);
    snap_put_u8(w, r->index);
    snap_put(w, r->nvram, sizeof(r->nvram));
    snap_put_u64(w, (uint64_t)r->offset);
    pthread_mutex_unlock(&r->lock);
}

/* Guest writes reach the offset only through set_field(), whose years lie
 * in 1900..9999: 10000 years bound it, and keep now + offset far inside
 * what gmtime_r() converts. */
#define OFFSET_MAX (10000ll * 366 * 86400)

/* Whether @nv is an NVRAM this clock could have: time registers are never
 * stored (reads compute them), A has no UIP bit, B no SET bit, C no flags,
 * D always says the battery is fine. */
static bool nvram_ok(const uint8_t nv[128])
{
    static const uint8_t clock_regs[] = {REG_SEC, REG_MIN, REG_HOUR, REG_WDAY, REG_MDAY,
                                         REG_MON, REG_YEAR, RTC_REG_CENTURY};
    for (size_t i = 0; i < sizeof(clock_regs); i++)
        if (nv[clock_regs[i]])
            return false;
    return !(nv[REG_A] & 0x80) && !(nv[REG_B] & B_SET) && nv[REG_C] == 0 && nv[REG_D] == D_VRT;
}

int rtc_load(struct rtc *r, struct snap_r *rd)
{
    uint8_t index = snap_get_u8(rd);
    uint8_t nv[128];
    snap_get(rd, nv, sizeof(nv));
    int64_t offset = (int64_t)snap_get_u64(rd);
    int e = snap_r_done(rd);
    if (e < 0)
        return e;
    if (index > 0x7f || !nvram_ok(nv) || offset > OFFSET_MAX || offset < -OFFSET_MAX)
        return -EPROTO;
    pthread_mutex_lock(&r->lock);
    r->index = index;
    memcpy(r->nvram, nv, sizeof(nv));
    r->offset = offset;
    pthread_mutex_unlock(&r->lock);
    return 0;
}
