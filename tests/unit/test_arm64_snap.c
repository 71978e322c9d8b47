/* test_arm64_snap.c - the arm64 snapshot records (hv/kvm_arm64_fmt.c) and
 * the PL031's save/load: round trips, and what a hostile or corrupt state
 * file could hold, refused before anything reaches KVM. */
#include "unit.h"

#include "base/snap.h"
#include "hv/kvm_arm64_fmt.h"
#include "hw/pl031.h"

#include <linux/kvm.h>

/* One-reg IDs of the three sizes KVM uses on arm64 (the arch bits do not
 * matter to the format). */
#define ID32(n) (0x6000000000000000ull | KVM_REG_SIZE_U32 | (n))
#define ID64(n) (0x6000000000000000ull | KVM_REG_SIZE_U64 | (n))
#define ID128(n) (0x6000000000000000ull | KVM_REG_SIZE_U128 | (n))

static const uint64_t known[] = {ID64(1), ID64(2), ID32(3), ID128(4), ID64(5)};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static struct snap_r reader(const struct snap_w *w)
{
    assert_int_equal(w->err, 0);
    return (struct snap_r){.p = w->buf, .left = w->len};
}

static void test_reg_sizes(void **state)
{
    (void)state;
    assert_int_equal(a64_reg_size(ID32(0)), 4);
    assert_int_equal(a64_reg_size(ID64(0)), 8);
    assert_int_equal(a64_reg_size(ID128(0)), 16);
    /* SVE's 2048-bit Z registers: not stored. */
    assert_int_equal(a64_reg_size(0x6000000000000000ull | KVM_REG_SIZE_U2048), 0);
}

static void test_regs_round_trip(void **state)
{
    (void)state;
    struct a64_reg in[3] = {{.id = ID128(4)}, {.id = ID32(3)}, {.id = ID64(1)}};
    for (unsigned i = 0; i < 16; i++)
        in[0].val[i] = (uint8_t)(0xa0 + i);
    memcpy(in[1].val, "\x11\x22\x33\x44", 4);
    memcpy(in[2].val, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    struct snap_w w;
    snap_w_init(&w);
    a64_regs_put(&w, in, 3);
    assert_int_equal(w.len, 4 + 3 * 12 + 16 + 4 + 8);
    struct snap_r r = reader(&w);
    struct a64_reg *out;
    unsigned n;
    uint64_t bad;
    assert_int_equal(a64_regs_get(&r, known, NKNOWN, &out, &n, &bad), 0);
    assert_int_equal(snap_r_done(&r), 0);
    assert_int_equal(n, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_true(out[i].id == in[i].id);
        assert_memory_equal(out[i].val, in[i].val, a64_reg_size(in[i].id));
    }
    free(out);
    snap_w_free(&w);
}

/* A list of one register @id claiming @size bytes (and that many bytes). */
static int get_one(uint64_t id, uint32_t size, uint64_t *bad)
{
    struct snap_w w;
    snap_w_init(&w);
    snap_put_u32(&w, 1);
    snap_put_u64(&w, id);
    snap_put_u32(&w, size);
    uint8_t val[32] = {0};
    snap_put(&w, val, size <= sizeof(val) ? size : sizeof(val));
    struct snap_r r = reader(&w);
    struct a64_reg *out = (struct a64_reg *)1;
    unsigned n = 99;
    int e = a64_regs_get(&r, known, NKNOWN, &out, &n, bad);
    if (e < 0) {
        assert_null(out);
        assert_int_equal(n, 0);
    }
    free(out);
    snap_w_free(&w);
    return e;
}

static void test_regs_refused(void **state)
{
    (void)state;
    uint64_t bad;
    assert_int_equal(get_one(ID64(2), 8, &bad), 0);
    /* An ID this vCPU does not have. */
    assert_int_equal(get_one(ID64(9), 8, &bad), -EPROTO);
    assert_true(bad == ID64(9));
    /* A known ID with another size than it says. */
    assert_int_equal(get_one(ID64(1), 4, &bad), -EPROTO);
    assert_true(bad == ID64(1));
    assert_int_equal(get_one(ID128(4), 32, &bad), -EPROTO);
    /* A size the ID does not carry. */
    assert_int_equal(get_one(ID64(5) ^ KVM_REG_SIZE_U64 ^ KVM_REG_SIZE_U32, 4, &bad), -EPROTO);

    struct snap_w w;
    struct snap_r r;
    struct a64_reg *out;
    unsigned n;
    /* The same register twice. */
    snap_w_init(&w);
    struct a64_reg twice[2] = {{.id = ID64(2)}, {.id = ID64(2)}};
    a64_regs_put(&w, twice, 2);
    r = reader(&w);
    assert_int_equal(a64_regs_get(&r, known, NKNOWN, &out, &n, &bad), -EPROTO);
    assert_true(bad == ID64(2));
    snap_w_free(&w);
    /* More registers than the vCPU has, and a huge count. */
    const uint32_t counts[] = {NKNOWN + 1, A64_MAX_REGS + 1, UINT32_MAX};
    for (unsigned i = 0; i < 3; i++) {
        snap_w_init(&w);
        snap_put_u32(&w, counts[i]);
        r = reader(&w);
        assert_int_equal(a64_regs_get(&r, known, NKNOWN, &out, &n, &bad), -EPROTO);
        assert_true(bad == 0);
        snap_w_free(&w);
    }
    /* Cut short anywhere: never accepted. */
    struct a64_reg in[2] = {{.id = ID64(1)}, {.id = ID128(4)}};
    snap_w_init(&w);
    a64_regs_put(&w, in, 2);
    for (size_t len = 0; len < w.len; len++) {
        r = (struct snap_r){.p = w.buf, .left = len};
        assert_int_equal(a64_regs_get(&r, known, NKNOWN, &out, &n, &bad), -EPROTO);
    }
    snap_w_free(&w);
}

static struct a64_gic_item items[A64_GIC_MAX_ITEMS];

static int find(unsigned n, uint8_t kind, uint32_t reg)
{
    for (unsigned i = 0; i < n; i++)
        if (items[i].kind == kind && items[i].reg == reg)
            return (int)i;
    return -1;
}

static void test_gic_items(void **state)
{
    (void)state;
    /* The largest GIC fits; counting without room works. */
    unsigned big = a64_gic_items(false, 1024, items, A64_GIC_MAX_ITEMS);
    assert_true(big <= A64_GIC_MAX_ITEMS);
    assert_int_equal(a64_gic_items(false, 1024, NULL, 0), big);
    /* arcvm's machine: 96 interrupts. IIDR first, then CTLR; per SPI
     * register word: group 2, config 4, priority 16, route 128 (two words
     * each), group modifier 2, levels 2, pending 2, active 2, enable 2. */
    unsigned n = a64_gic_items(false, 96, items, A64_GIC_MAX_ITEMS);
    assert_int_equal(n, 2 + 2 + 4 + 16 + 128 + 2 + 2 + 2 + 2 + 2);
    assert_int_equal(items[0].kind, A64_GIC_DIST);
    assert_int_equal(items[0].reg, 0x8);
    assert_int_equal(items[1].reg, 0x0);
    /* SPIs only: interrupt 32's words, not 0's. */
    assert_int_equal(find(n, A64_GIC_DIST, 0x80), -1);
    assert_true(find(n, A64_GIC_DIST, 0x84) > 1);
    assert_true(find(n, A64_GIC_DIST, 0x6100) > 1);     /* IROUTER of interrupt 32 */
    assert_true(find(n, A64_GIC_DIST, 0x6000 + 95 * 8 + 4) > 1);
    assert_int_equal(find(n, A64_GIC_DIST, 0x6000 + 96 * 8), -1);
    assert_true(find(n, A64_GIC_LEVEL, 64) > 1);
    /* Pending, active, enable last (0x108: the word of interrupts 64-95);
     * enable and active with their clear twin. */
    int pend = find(n, A64_GIC_DIST, 0x204), act = find(n, A64_GIC_DIST, 0x304),
        en = find(n, A64_GIC_DIST, 0x108), cfg = find(n, A64_GIC_DIST, 0xc08);
    assert_true(cfg < pend && pend < act && act < en && en == (int)n - 1);
    assert_false(items[pend].set_clear);
    assert_true(items[act].set_clear && items[en].set_clear);

    /* A CPU: ICC_SRE_EL1 (3,0,12,12,5) then ICC_CTLR_EL1, AP0Rn before
     * AP1Rn, and the redistributor's SGI frame. */
    n = a64_gic_items(true, 96, items, A64_GIC_MAX_ITEMS);
    assert_int_equal(items[0].kind, A64_GIC_SYSREG);
    assert_int_equal(items[0].reg, (3u << 14) | (12u << 7) | (12u << 3) | 5);
    assert_int_equal(items[1].reg, (3u << 14) | (12u << 7) | (12u << 3) | 4);
    assert_true(find(n, A64_GIC_SYSREG, (3u << 14) | (12u << 7) | (8u << 3) | 7) <
                find(n, A64_GIC_SYSREG, (3u << 14) | (12u << 7) | (9u << 3) | 0));
    assert_true(find(n, A64_GIC_REDIST, 0x10400 + 28) > 0);
    assert_true(find(n, A64_GIC_LEVEL, 0) > 0);
    assert_int_equal(find(n, A64_GIC_DIST, 0x0), -1);
    assert_true(items[n - 1].kind == A64_GIC_REDIST && items[n - 1].reg == 0x10100 &&
                items[n - 1].set_clear);
}

static void test_gic_records(void **state)
{
    (void)state;
    unsigned n = a64_gic_items(true, 96, items, A64_GIC_MAX_ITEMS);
    bool have[A64_GIC_MAX_ITEMS] = {0}, have2[A64_GIC_MAX_ITEMS];
    uint64_t vals[A64_GIC_MAX_ITEMS] = {0}, vals2[A64_GIC_MAX_ITEMS];
    for (unsigned i = 0; i < n; i += 2) { /* some left out, as KVM may */
        have[i] = true;
        vals[i] = items[i].kind == A64_GIC_SYSREG ? 0x1234567890ull + i : 0xf0000000u + i;
    }
    struct snap_w w;
    snap_w_init(&w);
    a64_gic_put(&w, items, n, have, vals);
    struct snap_r r = reader(&w);
    assert_int_equal(a64_gic_get(&r, items, n, have2, vals2), 0);
    assert_int_equal(snap_r_done(&r), 0);
    assert_memory_equal(have, have2, n * sizeof(bool));
    assert_memory_equal(vals, vals2, n * sizeof(uint64_t));
    snap_w_free(&w);

    /* Records a hostile file could hold. */
    struct {
        uint8_t kind;
        uint32_t reg;
        uint64_t val;
    } bad[] = {
        {A64_GIC_DIST, 0x0, 1},                 /* a distributor register in a CPU's list */
        {A64_GIC_REDIST, 0x10104, 1},           /* no such word for 32 interrupts */
        {A64_GIC_REDIST, 0x10100, 1ull << 32},  /* a 32-bit register given 33 bits */
        {7, 0x10100, 1},                        /* no such kind */
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snap_w_init(&w);
        snap_put_u32(&w, 1);
        snap_put_u8(&w, bad[i].kind);
        snap_put_u32(&w, bad[i].reg);
        snap_put_u64(&w, bad[i].val);
        r = reader(&w);
        assert_int_equal(a64_gic_get(&r, items, n, have2, vals2), -EPROTO);
        snap_w_free(&w);
    }
    /* The same register twice; more records than registers. */
    snap_w_init(&w);
    snap_put_u32(&w, 2);
    for (unsigned k = 0; k < 2; k++) {
        snap_put_u8(&w, A64_GIC_REDIST);
        snap_put_u32(&w, 0x10100);
        snap_put_u64(&w, 1);
    }
    r = reader(&w);
    assert_int_equal(a64_gic_get(&r, items, n, have2, vals2), -EPROTO);
    snap_w_free(&w);
    snap_w_init(&w);
    snap_put_u32(&w, n + 1);
    r = reader(&w);
    assert_int_equal(a64_gic_get(&r, items, n, have2, vals2), -EPROTO);
    snap_w_free(&w);
}

static int64_t fixed_now(void)
{
    return 1700000000;
}

static void test_pl031(void **state)
{
    (void)state;
    struct pl031 a, b;
    pl031_init(&a);
    pl031_init(&b);
    a.now = b.now = fixed_now;
    /* The guest sets its clock one day ahead, a match value and the mask. */
    uint32_t v = 1700000000u + 86400u;
    pl031_ops.write(&a, 0x08, (const uint8_t *)&v, 4);
    v = 42;
    pl031_ops.write(&a, 0x04, (const uint8_t *)&v, 4);
    v = 1;
    pl031_ops.write(&a, 0x10, (const uint8_t *)&v, 4);
    struct snap_w w;
    snap_w_init(&w);
    pl031_save(&a, &w);
    struct snap_r r = reader(&w);
    assert_int_equal(pl031_load(&b, &r), 0);
    uint32_t got;
    pl031_ops.read(&b, 0x00, (uint8_t *)&got, 4);
    assert_int_equal(got, 1700000000u + 86400u);
    pl031_ops.read(&b, 0x04, (uint8_t *)&got, 4);
    assert_int_equal(got, 42);
    pl031_ops.read(&b, 0x10, (uint8_t *)&got, 4);
    assert_int_equal(got, 1);
    /* Short, long, and values no guest could set: refused, clock unchanged. */
    r = (struct snap_r){.p = w.buf, .left = w.len - 1};
    assert_int_equal(pl031_load(&b, &r), -EPROTO);
    snap_w_free(&w);
    snap_w_init(&w);
    snap_put_u64(&w, (uint64_t)INT64_MIN);
    snap_put_u32(&w, 0);
    snap_put_u32(&w, 0);
    r = reader(&w);
    assert_int_equal(pl031_load(&b, &r), -EPROTO);
    snap_w_free(&w);
    snap_w_init(&w);
    snap_put_u64(&w, 0);
    snap_put_u32(&w, 0);
    snap_put_u32(&w, 2);
    r = reader(&w);
    assert_int_equal(pl031_load(&b, &r), -EPROTO);
    snap_w_free(&w);
    pl031_ops.read(&b, 0x10, (uint8_t *)&got, 4);
    assert_int_equal(got, 1);
    pl031_release(&a);
    pl031_release(&b);
}

int main(void)
{
    RUN(cmocka_unit_test(test_reg_sizes), cmocka_unit_test(test_regs_round_trip),
        cmocka_unit_test(test_regs_refused), cmocka_unit_test(test_gic_items),
        cmocka_unit_test(test_gic_records), cmocka_unit_test(test_pl031));
}
