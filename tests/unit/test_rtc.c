/* test_rtc.c - CMOS clock: host time, BCD/binary, 12/24 h, guest writes. */
#include "unit.h"

#include "hw/rtc.h"

#include <time.h>

/* 2026-11-22 09:08:07 UTC, a Sunday. */
static int64_t fixed_now(void)
{
    struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 22, .tm_hour = 9, .tm_min = 8,
                    .tm_sec = 7};
    return (int64_t)timegm(&tm);
}

static void test_bcd_time(void **state)
{
    (void)state;
    struct rtc r;
    rtc_init(&r);
    r.now = fixed_now;
    assert_int_equal(rtc_read_reg(&r, 0x00), 0x07);
    assert_int_equal(rtc_read_reg(&r, 0x02), 0x08);
    assert_int_equal(rtc_read_reg(&r, 0x04), 0x09);
    assert_int_equal(rtc_read_reg(&r, 0x06), 0x01); /* Sunday = 1 */
    assert_int_equal(rtc_read_reg(&r, 0x07), 0x22);
    assert_int_equal(rtc_read_reg(&r, 0x08), 0x11);
    assert_int_equal(rtc_read_reg(&r, 0x09), 0x26);
    assert_int_equal(rtc_read_reg(&r, RTC_REG_CENTURY), 0x20);
    assert_int_equal(rtc_read_reg(&r, 0x0a) & 0x80, 0); /* never "update in progress" */
    assert_int_equal(rtc_read_reg(&r, 0x0d), 0x80);     /* valid RAM and time */
    rtc_release(&r);
}

static void test_binary_12h(void **state)
{
    (void)state;
    struct rtc r;
    rtc_init(&r);
    r.now = fixed_now;
    rtc_write_reg(&r, 0x0b, 0x04); /* binary, 12-hour */
    assert_int_equal(rtc_read_reg(&r, 0x07), 22);
    assert_int_equal(rtc_read_reg(&r, 0x04), 9); /* 9 AM */
    rtc_write_reg(&r, 0x0b, 0x06); /* binary, 24-hour */
    assert_int_equal(rtc_read_reg(&r, 0x04), 9);
    rtc_release(&r);
}

static void test_guest_sets_clock(void **state)
{
    (void)state;
    struct rtc r;
    rtc_init(&r);
    r.now = fixed_now;
    rtc_write_reg(&r, 0x09, 0x30); /* year 2030 in BCD */
    assert_int_equal(rtc_read_reg(&r, 0x09), 0x30);
    assert_int_equal(rtc_read_reg(&r, 0x08), 0x11); /* the rest keeps its value */
    rtc_write_reg(&r, 0x04, 0x25); /* an invalid hour is ignored */
    assert_int_equal(rtc_read_reg(&r, 0x04), 0x09);
    rtc_write_reg(&r, 0x02, 0x59);
    assert_int_equal(rtc_read_reg(&r, 0x02), 0x59);
    /* NVRAM bytes are kept; indexes wrap at 128. */
    rtc_write_reg(&r, 0x40, 0xab);
    assert_int_equal(rtc_read_reg(&r, 0xc0), 0xab);
    rtc_release(&r);
}

static void test_ports(void **state)
{
    (void)state;
    struct rtc r;
    rtc_init(&r);
    r.now = fixed_now;
    uint8_t v = 0x89; /* NMI-disable bit set, index 9 */
    rtc_ops.write(&r, 0, &v, 1);
    rtc_ops.read(&r, 1, &v, 1);
    assert_int_equal(v, 0x26);
    rtc_release(&r);
}

int main(void)
{
    RUN(cmocka_unit_test(test_bcd_time), cmocka_unit_test(test_binary_12h),
        cmocka_unit_test(test_guest_sets_clock), cmocka_unit_test(test_ports));
}
