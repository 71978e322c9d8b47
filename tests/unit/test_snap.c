/* test_snap.c - the snapshot state format (base/snap.h) and the legacy
 * devices' save/load: round trips, and state a hostile or corrupt file
 * could hold, refused. The virtio devices have test_snap_virtio.c. */
#include "unit.h"

#include "base/console.h"
#include "base/irq.h"
#include "base/snap.h"
#include "hw/i8042.h"
#include "hw/pm.h"
#include "hw/rtc.h"
#include "hw/serial.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------- */

/* A reader over @len raw bytes, as snap_find() would hand out. */
static struct snap_r reader(const void *p, size_t len)
{
    return (struct snap_r){.p = p, .left = len};
}

/* The one section @name of @w. */
static struct snap_r section(const struct snap_w *w, const char *name)
{
    struct snap_r r;
    assert_int_equal(w->err, 0);
    assert_int_equal(snap_find(w->buf, w->len, name, &r), 0);
    return r;
}

/* Interrupt edges on eventfd @fd since the last call. */
static uint64_t edges(int fd)
{
    uint64_t n = 0;
    if (read(fd, &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

/* ---- base/snap.h ----------------------------------------------------------- */

static void test_fields_round_trip(void **state)
{
    (void)state;
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "first");
    snap_put_u8(&w, 0xab);
    snap_put_u16(&w, 0x1234);
    snap_put_u32(&w, 0xdeadbeef);
    snap_put_u64(&w, 0x0102030405060708ull);
    snap_put_u8(&w, 1); /* a bool */
    snap_put_str(&w, "hello");
    snap_put_str(&w, NULL);
    snap_end(&w);
    snap_begin(&w, "second");
    snap_put_u32(&w, 7);
    snap_end(&w);
    assert_int_equal(w.err, 0);
    assert_int_equal(snap_check(w.buf, w.len), 0);

    struct snap_r r = section(&w, "first");
    assert_int_equal(snap_get_u8(&r), 0xab);
    assert_int_equal(snap_get_u16(&r), 0x1234);
    assert_int_equal(snap_get_u32(&r), 0xdeadbeef);
    assert_true(snap_get_u64(&r) == 0x0102030405060708ull);
    assert_true(snap_get_bool(&r));
    char s[8];
    snap_get_str(&r, s, sizeof(s));
    assert_string_equal(s, "hello");
    assert_null(snap_get_strdup(&r)); /* NULL was written as "" */
    assert_int_equal(snap_r_done(&r), 0);

    r = section(&w, "second");
    assert_int_equal(snap_get_u32(&r), 7);
    assert_int_equal(snap_r_done(&r), 0);
    assert_int_equal(snap_find(w.buf, w.len, "third", &r), -ENOENT);
    snap_w_free(&w);
}

/* Fields are little-endian whatever the host: the file moves between hosts. */
static void test_little_endian(void **state)
{
    (void)state;
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "le");
    snap_put_u32(&w, 0x11223344);
    snap_end(&w);
    struct snap_r r = section(&w, "le");
    static const uint8_t want[] = {0x44, 0x33, 0x22, 0x11};
    assert_int_equal(r.left, 4);
    assert_memory_equal(r.p, want, 4);
    snap_w_free(&w);
}

static void test_truncated_section(void **state)
{
    (void)state;
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "a");
    snap_put_u64(&w, 1);
    snap_end(&w);
    struct snap_r r;
    /* The section claims more bytes than the buffer holds. */
    assert_int_equal(snap_check(w.buf, w.len - 1), -EPROTO);
    assert_int_equal(snap_find(w.buf, w.len - 1, "a", &r), -EPROTO);
    /* Cut inside the header. */
    assert_int_equal(snap_check(w.buf, SNAP_NAME_MAX + 2), -EPROTO);
    snap_w_free(&w);
}

static void test_bad_name(void **state)
{
    (void)state;
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "a");
    snap_end(&w);
    memset(w.buf, 'x', SNAP_NAME_MAX); /* no NUL left in the name */
    struct snap_r r;
    assert_int_equal(snap_check(w.buf, w.len), -EPROTO);
    assert_int_equal(snap_find(w.buf, w.len, "a", &r), -EPROTO);
    snap_w_free(&w);
}

static void test_bool_over_one(void **state)
{
    (void)state;
    uint8_t b[] = {2};
    struct snap_r r = reader(b, sizeof(b));
    snap_get_bool(&r);
    assert_int_equal(r.err, -EPROTO);
    assert_int_equal(snap_r_done(&r), -EPROTO);
}

static void test_strings_too_long(void **state)
{
    (void)state;
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "s");
    snap_put_str(&w, "hello");
    snap_end(&w);
    struct snap_r r = section(&w, "s");
    char s[5]; /* "hello" needs 6 */
    snap_get_str(&r, s, sizeof(s));
    assert_int_equal(r.err, -EPROTO);
    assert_string_equal(s, "");
    snap_w_free(&w);

    /* A length beyond the section. */
    uint8_t b[] = {10, 0, 'a', 'b'};
    r = reader(b, sizeof(b));
    assert_null(snap_get_strdup(&r));
    assert_int_equal(r.err, -EPROTO);
    /* A NUL inside: not a string snap_put_str() wrote. */
    uint8_t n[] = {3, 0, 'a', 0, 'b'};
    r = reader(n, sizeof(n));
    assert_null(snap_get_strdup(&r));
    assert_int_equal(r.err, -EPROTO);
}

static void test_wrong_length(void **state)
{
    (void)state;
    uint8_t b[6] = {1, 2, 3, 4, 5, 6};
    /* A reader that takes fewer bytes than the section holds. */
    struct snap_r r = reader(b, sizeof(b));
    snap_get_u32(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(snap_r_done(&r), -EPROTO);
    /* One that wants more: zeros, and the error sticks. */
    r = reader(b, sizeof(b));
    snap_get_u32(&r);
    assert_int_equal(snap_get_u32(&r), 0);
    assert_int_equal(snap_get_u8(&r), 0);
    assert_int_equal(snap_r_done(&r), -EPROTO);
}

static void test_crc32c(void **state)
{
    (void)state;
    /* The check value of CRC-32C (RFC 3720, B.4). */
    assert_int_equal(snap_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Continuing from a previous value is the same as one pass. */
    uint32_t c = snap_crc32c(0, "1234", 4);
    assert_int_equal(snap_crc32c(c, "56789", 5), 0xE3069283u);
    assert_int_equal(snap_crc32c(0, "", 0), 0);
}

/* ---- serial ---------------------------------------------------------------- */

enum { RBR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct uart {
    struct serial s;
    struct console con;
    struct irq_line irq;
    int out[2];
};

static void uart_init(struct uart *u)
{
    assert_int_equal(pipe2(u->out, O_NONBLOCK), 0);
    assert_int_equal(console_init(&u->con, -1, u->out[1], false, NULL), 0);
    u->irq = (struct irq_line){NULL, 4, eventfd(0, EFD_NONBLOCK)};
    assert_true(u->irq.fd >= 0);
    serial_init(&u->s, &u->con, &u->irq);
}

static void uart_release(struct uart *u)
{
    serial_release(&u->s);
    console_release(&u->con);
    close(u->irq.fd);
    close(u->out[0]);
    close(u->out[1]);
}

static uint8_t uart_rd(struct uart *u, unsigned reg)
{
    uint8_t v;
    serial_ops.read(&u->s, reg, &v, 1);
    return v;
}

static void uart_wr(struct uart *u, unsigned reg, uint8_t v)
{
    serial_ops.write(&u->s, reg, &v, 1);
}

static void uart_save(struct uart *u, struct snap_w *w)
{
    snap_w_init(w);
    snap_begin(w, "serial");
    serial_save(&u->s, w);
    snap_end(w);
}

/* A UART with a divisor, line settings, scratch, interrupts on and a FIFO
 * that has wrapped around its buffer: the state a guest console has. */
static void uart_busy(struct uart *u)
{
    uart_wr(u, LCR, 0x80); /* DLAB */
    uart_wr(u, RBR, 0x01); /* 115200 baud */
    uart_wr(u, IER, 0x00);
    uart_wr(u, LCR, 0x03); /* 8N1 */
    uart_wr(u, SCR, 0x5a);
    uart_wr(u, IIR, 0x01); /* FIFO on */
    uint8_t junk[SERIAL_RX_SIZE - 4]; /* the 8 bytes below wrap */
    memset(junk, 'j', sizeof(junk));
    assert_int_equal(serial_rx(&u->s, junk, sizeof(junk)), sizeof(junk));
    for (size_t i = 0; i < sizeof(junk); i++)
        uart_rd(u, RBR);
    assert_int_equal(serial_rx(&u->s, (const uint8_t *)"wrapped!", 8), 8);
    uart_wr(u, IER, 0x01); /* received-data interrupts */
    edges(u->irq.fd);
}

static void test_serial_round_trip(void **state)
{
    (void)state;
    struct uart a, b;
    uart_init(&a);
    uart_busy(&a);
    struct snap_w w;
    uart_save(&a, &w);
    uart_release(&a);

    uart_init(&b);
    struct snap_r r = section(&w, "serial");
    assert_int_equal(serial_load(&b.s, &r), 0);
    /* A byte waits and IER asks for its interrupt: one edge now. */
    assert_int_equal(edges(b.irq.fd), 1);
    assert_int_equal(uart_rd(&b, IIR), 0xc4); /* FIFO on, received data */
    assert_int_equal(uart_rd(&b, LCR), 0x03);
    assert_int_equal(uart_rd(&b, SCR), 0x5a);
    assert_int_equal(uart_rd(&b, IER), 0x01);
    assert_int_equal(uart_rd(&b, LSR) & 0x61, 0x61); /* data ready, transmitter empty */
    char got[9] = "";
    for (int i = 0; i < 8; i++)
        got[i] = (char)uart_rd(&b, RBR);
    assert_string_equal(got, "wrapped!");
    assert_int_equal(uart_rd(&b, LSR) & 0x01, 0);
    assert_int_equal(uart_rd(&b, IIR), 0xc1); /* nothing pending */
    uart_wr(&b, LCR, 0x83);
    assert_int_equal(uart_rd(&b, RBR), 0x01); /* the divisor came along */
    uart_release(&b);
    snap_w_free(&w);
}

/* A copy of serial section @w with byte @at replaced by @v (or cut to @at
 * bytes when @cut), loaded into a fresh UART. */
static int uart_load_bent(const struct snap_w *w, size_t at, int v, bool cut)
{
    struct snap_r r = section(w, "serial");
    uint8_t buf[2048];
    assert_true(r.left <= sizeof(buf) && at < r.left);
    memcpy(buf, r.p, r.left);
    size_t len = cut ? at : r.left;
    if (!cut)
        buf[at] = (uint8_t)v;
    struct uart u;
    uart_init(&u);
    uint8_t scr = uart_rd(&u, SCR);
    r = reader(buf, len);
    int e = serial_load(&u.s, &r);
    if (e < 0)
        assert_int_equal(uart_rd(&u, SCR), scr); /* refused: nothing applied */
    uart_release(&u);
    return e;
}

static void test_serial_hostile(void **state)
{
    (void)state;
    struct uart a;
    uart_init(&a);
    uart_busy(&a);
    uart_wr(&a, SCR, 0x77);
    struct snap_w w;
    uart_save(&a, &w);
    uart_release(&a);
    /* Field offsets: ier lcr mcr lsr msr scr dll dlm fifo thre, u16 len, bytes. */
    assert_int_equal(uart_load_bent(&w, 0, 0x10, false), -EPROTO); /* IER bit 4 */
    assert_int_equal(uart_load_bent(&w, 2, 0x20, false), -EPROTO); /* MCR bit 5 */
    assert_int_equal(uart_load_bent(&w, 3, 0x60, false), -EPROTO); /* LSR without DR */
    assert_int_equal(uart_load_bent(&w, 4, 0x00, false), -EPROTO); /* MSR: cable gone */
    assert_int_equal(uart_load_bent(&w, 8, 2, false), -EPROTO);    /* a bool of 2 */
    assert_int_equal(uart_load_bent(&w, 11, 0x08, false), -EPROTO); /* length 0x800 > FIFO */
    assert_int_equal(uart_load_bent(&w, 10, 9, false), -EPROTO);   /* length 9, 8 bytes */
    assert_int_equal(uart_load_bent(&w, 14, 0, true), -EPROTO);    /* truncated */
    /* The unbent copy loads: the checks above fail for their reason. */
    assert_int_equal(uart_load_bent(&w, 5, 0x77, false), 0);
    snap_w_free(&w);
}

/* ---- rtc ------------------------------------------------------------------- */

static int64_t day1(void)
{
    struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 22, .tm_hour = 9, .tm_min = 8,
                    .tm_sec = 7};
    return (int64_t)timegm(&tm);
}

static int64_t day2(void) /* a day and an hour later */
{
    return day1() + 86400 + 3600;
}

static void rtc_put(struct rtc *r, uint8_t reg, uint8_t v)
{
    rtc_ops.write(r, 0, &reg, 1);
    rtc_ops.write(r, 1, &v, 1);
}

static void test_rtc_round_trip(void **state)
{
    (void)state;
    struct rtc a, b;
    rtc_init(&a);
    a.now = day1;
    rtc_put(&a, 0x09, 0x99); /* the guest sets the year to (20)99, BCD */
    rtc_put(&a, 0x40, 0x5a); /* and NVRAM */
    rtc_put(&a, 0x0b, 0x06); /* binary, 24 h */
    uint8_t idx = 0x40;
    rtc_ops.write(&a, 0, &idx, 1);
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "rtc");
    rtc_save(&a, &w);
    snap_end(&w);
    rtc_release(&a);

    rtc_init(&b);
    b.now = day2; /* restored on another day */
    struct snap_r r = section(&w, "rtc");
    assert_int_equal(rtc_load(&b, &r), 0);
    uint8_t v;
    rtc_ops.read(&b, 1, &v, 1); /* the saved index still selects 0x40 */
    assert_int_equal(v, 0x5a);
    assert_int_equal(rtc_read_reg(&b, 0x0b), 0x06);
    /* The guest's year, but today's date and time: the offset moved, the
     * wall clock did not freeze. */
    assert_int_equal(rtc_read_reg(&b, 0x09), 99);
    assert_int_equal(rtc_read_reg(&b, RTC_REG_CENTURY), 20);
    assert_int_equal(rtc_read_reg(&b, 0x07), 23); /* day of the month */
    assert_int_equal(rtc_read_reg(&b, 0x04), 10); /* hour */
    assert_int_equal(rtc_read_reg(&b, 0x00), 7);
    rtc_release(&b);
    snap_w_free(&w);
}

static int rtc_load_bent(const struct snap_w *w, size_t at, uint8_t v)
{
    struct snap_r r = section(w, "rtc");
    uint8_t buf[256];
    assert_true(r.left <= sizeof(buf) && at < r.left);
    memcpy(buf, r.p, r.left);
    buf[at] = v;
    struct rtc x;
    rtc_init(&x);
    r = reader(buf, r.left);
    int e = rtc_load(&x, &r);
    rtc_release(&x);
    return e;
}

static void test_rtc_hostile(void **state)
{
    (void)state;
    struct rtc a;
    rtc_init(&a);
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "rtc");
    rtc_save(&a, &w);
    snap_end(&w);
    rtc_release(&a);
    /* Layout: index, 128 NVRAM bytes, s64 offset. */
    assert_int_equal(rtc_load_bent(&w, 0, 0x80), -EPROTO);        /* index out of range */
    assert_int_equal(rtc_load_bent(&w, 1 + 0x00, 0x30), -EPROTO); /* a stored second */
    assert_int_equal(rtc_load_bent(&w, 1 + 0x0a, 0xa6), -EPROTO); /* UIP set */
    assert_int_equal(rtc_load_bent(&w, 1 + 0x0b, 0x82), -EPROTO); /* SET set */
    assert_int_equal(rtc_load_bent(&w, 1 + 0x0d, 0x00), -EPROTO); /* battery dead */
    assert_int_equal(rtc_load_bent(&w, 1 + 128 + 5, 0x10), -EPROTO); /* offset 2^44 s */
    assert_int_equal(rtc_load_bent(&w, 1 + 128 + 7, 0x80), -EPROTO); /* offset -2^63 */
    assert_int_equal(rtc_load_bent(&w, 1 + 0x40, 0x12), 0);           /* NVRAM is free */
    struct snap_r r = section(&w, "rtc");
    r.left--;
    struct rtc x;
    rtc_init(&x);
    assert_int_equal(rtc_load(&x, &r), -EPROTO);
    rtc_release(&x);
    snap_w_free(&w);
}

/* ---- i8042 and pm ---------------------------------------------------------- */

static void test_i8042_round_trip(void **state)
{
    (void)state;
    struct irq_line irq = {NULL, 1, eventfd(0, EFD_NONBLOCK)};
    struct i8042 a, b;
    i8042_init(&a, NULL, &irq);
    assert_int_equal(i8042_send_ctrl_alt_del(&a), 0);
    uint8_t cmd = 0x60; /* write the command byte: waits for its data byte */
    i8042_ops.write(&a, 4, &cmd, 1);
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "i8042");
    i8042_save(&a, &w);
    snap_end(&w);
    i8042_release(&a);
    edges(irq.fd);

    i8042_init(&b, NULL, &irq);
    struct snap_r r = section(&w, "i8042");
    assert_int_equal(i8042_load(&b, &r), 0);
    assert_int_equal(edges(irq.fd), 1); /* key codes wait, interrupts on */
    uint8_t v;
    i8042_ops.read(&b, 4, &v, 1);
    assert_int_equal(v & 0x09, 0x09); /* output full, command pending */
    i8042_ops.read(&b, 0, &v, 1);
    assert_int_equal(v, 0x14); /* left Ctrl first */
    uint8_t ctr = 0x00;
    i8042_ops.write(&b, 0, &ctr, 1); /* the data byte of the saved command */
    cmd = 0x20;
    i8042_ops.write(&b, 4, &cmd, 1);
    for (int i = 0; i < 4; i++) /* 0x11 0xe0 0x71, then the command byte */
        i8042_ops.read(&b, 0, &v, 1);
    assert_int_equal(v, 0x00);
    i8042_release(&b);
    snap_w_free(&w);

    /* Hostile: a pending command that takes no data; a queue over 16. */
    uint8_t bad_cmd[] = {0x01, 0x01, 0x20, 0};
    r = reader(bad_cmd, sizeof(bad_cmd));
    i8042_init(&b, NULL, &irq);
    assert_int_equal(i8042_load(&b, &r), -EPROTO);
    uint8_t big[4 + 17] = {0x01, 0x01, 0, 17};
    r = reader(big, sizeof(big));
    assert_int_equal(i8042_load(&b, &r), -EPROTO);
    uint8_t ok[] = {0x01, 0x01, 0xd1, 1, 0xfa};
    r = reader(ok, sizeof(ok));
    assert_int_equal(i8042_load(&b, &r), 0);
    r = reader(ok, sizeof(ok) - 1);
    assert_int_equal(i8042_load(&b, &r), -EPROTO);
    i8042_release(&b);
    close(irq.fd);
}

static void test_pm(void **state)
{
    (void)state;
    struct pm p;
    pm_init(&p, NULL);
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "pm");
    pm_save(&p, &w);
    snap_end(&w);
    struct snap_r r = section(&w, "pm");
    assert_int_equal(r.left, 0);
    assert_int_equal(pm_load(&p, &r), 0);
    uint8_t extra = 0;
    r = reader(&extra, 1);
    assert_int_equal(pm_load(&p, &r), -EPROTO);
    snap_w_free(&w);
}

int main(void)
{
    RUN(cmocka_unit_test(test_fields_round_trip), cmocka_unit_test(test_little_endian),
        cmocka_unit_test(test_truncated_section), cmocka_unit_test(test_bad_name),
        cmocka_unit_test(test_bool_over_one), cmocka_unit_test(test_strings_too_long),
        cmocka_unit_test(test_wrong_length), cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_serial_round_trip), cmocka_unit_test(test_serial_hostile),
        cmocka_unit_test(test_rtc_round_trip), cmocka_unit_test(test_rtc_hostile),
        cmocka_unit_test(test_i8042_round_trip), cmocka_unit_test(test_pm));
}
