/* test_bus.c - range registration, overlap refusal and lookup. */
#include "unit.h"

#include "base/bus.h"

struct dev {
    uint64_t last_off;
    uint32_t last_len;
    uint8_t last_val;
    int reads, writes;
};

static void rd(void *d, uint64_t off, uint8_t *data, uint32_t len)
{
    struct dev *v = d;
    v->reads++;
    v->last_off = off;
    v->last_len = len;
    memset(data, 0x5a, len);
}

static void wr(void *d, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct dev *v = d;
    v->writes++;
    v->last_off = off;
    v->last_len = len;
    v->last_val = data[0];
}

static const struct bus_ops ops = {rd, wr};

static void test_register_overlap(void **state)
{
    (void)state;
    struct bus b;
    struct dev d = {0};
    bus_init(&b, "test");
    assert_int_equal(bus_register(&b, 0x100, 0x10, &ops, &d, "a"), 0);
    assert_int_equal(bus_register(&b, 0x200, 0x10, &ops, &d, "b"), 0);
    assert_int_equal(bus_register(&b, 0x10f, 1, &ops, &d, "x"), -EEXIST);
    assert_int_equal(bus_register(&b, 0xf8, 0x9, &ops, &d, "x"), -EEXIST);
    assert_int_equal(bus_register(&b, 0x0, 0x1000, &ops, &d, "x"), -EEXIST);
    assert_int_equal(bus_register(&b, 0x1ff, 2, &ops, &d, "x"), -EEXIST);
    assert_int_equal(bus_register(&b, 0x110, 0xf0, &ops, &d, "gap"), 0); /* exactly the gap */
    assert_int_equal(bus_register(&b, 0x300, 0, &ops, &d, "x"), -EINVAL);
    assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, &ops, &d, "x"), -EINVAL); /* wraps */
    assert_int_equal(bus_register(&b, UINT64_MAX, 1, &ops, &d, "top"), 0);
    assert_int_equal(b.count, 4);
    assert_int_equal(bus_unregister(&b, 0x110), 0);
    assert_int_equal(bus_unregister(&b, 0x111), -ENOENT);
    assert_int_equal(b.count, 3);
    bus_release(&b);
}

static void test_find(void **state)
{
    (void)state;
    struct bus b;
    struct dev d[64] = {0};
    bus_init(&b, "test");
    /* Register out of order to exercise the sorted insert. */
    for (int i = 63; i >= 0; i--)
        assert_int_equal(bus_register(&b, 0x1000 + (uint64_t)i * 0x100, 0x80, &ops, &d[i], "d"), 0);
    for (int i = 0; i < 64; i++) {
        uint64_t base = 0x1000 + (uint64_t)i * 0x100;
        const struct bus_range *r = bus_find(&b, base + 0x7f);
        assert_non_null(r);
        assert_ptr_equal(r->dev, &d[i]);
        assert_null(bus_find(&b, base + 0x80)); /* the hole after each range */
    }
    assert_null(bus_find(&b, 0));
    assert_null(bus_find(&b, 0xfff));
    assert_null(bus_find(&b, UINT64_MAX));
    bus_release(&b);
}

static void test_access(void **state)
{
    (void)state;
    struct bus b;
    struct dev d = {0};
    bus_init(&b, "test");
    assert_int_equal(bus_register(&b, 0x3f8, 8, &ops, &d, "uart"), 0);
    uint8_t v[8] = {0x42};
    assert_true(bus_access(&b, 0x3fb, v, 1, true));
    assert_int_equal(d.last_off, 3);
    assert_int_equal(d.last_val, 0x42);
    assert_true(bus_access(&b, 0x3f8, v, 4, false));
    assert_int_equal(v[3], 0x5a);
    /* Unclaimed reads float high; accesses that straddle the end fail. */
    memset(v, 0, sizeof(v));
    assert_false(bus_access(&b, 0x2f8, v, 2, false));
    assert_int_equal(v[0], 0xff);
    assert_int_equal(v[1], 0xff);
    int writes = d.writes;
    assert_false(bus_access(&b, 0x3fe, v, 4, true));
    assert_int_equal(d.writes, writes);
    bus_release(&b);
}

int main(void)
{
    RUN(cmocka_unit_test(test_register_overlap), cmocka_unit_test(test_find),
        cmocka_unit_test(test_access));
}
