/* test_vmgenid.c - the VM generation ID device (hw/vmgenid.c): a new ID in
 * guest memory at boot and at every restore, an edge on its line, and its
 * snapshot section. The arch wiring (setup.c) needs KVM; the e2e suite
 * covers it. */
#include "unit.h"

#include "hw/vmgenid.h"
#include "base/guest_mem.h"
#include "base/irq.h"
#include "base/snap.h"

#define GPA 0xdf000ull
#define GSI 3

/* An interrupt controller that records what the line did. */
struct fake_chip {
    struct irq_chip chip;
    unsigned raised, lowered;
    uint32_t gsi;
    bool level;
};

static void fake_set_level(struct irq_chip *c, uint32_t gsi, bool level)
{
    struct fake_chip *f = (struct fake_chip *)c;
    f->gsi = gsi;
    if (level && !f->level)
        f->raised++;
    if (!level && f->level)
        f->lowered++;
    f->level = level;
}

struct rig {
    struct guest_mem mem;
    struct fake_chip chip;
    struct irq_line line;
    struct vmgenid g;
};

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    struct guest_mem_region l[] = {{0, 2u << 20, NULL}};
    assert_int_equal(guest_mem_init(&r->mem, l, 1), 0);
    r->chip.chip.set_level = fake_set_level;
    r->line = (struct irq_line){.chip = &r->chip.chip, .gsi = GSI, .fd = -1};
    vmgenid_init(&r->g, &r->mem, GPA, &r->line);
}

static void guest_id(struct rig *r, uint8_t out[VMGENID_LEN])
{
    assert_int_equal(guest_mem_read(&r->mem, GPA, out, VMGENID_LEN), 0);
}

static void test_boot_and_restore(void **state)
{
    (void)state;
    static const uint8_t zero[VMGENID_LEN];
    struct rig r;
    rig_init(&r);
    uint8_t first[VMGENID_LEN], second[VMGENID_LEN];
    guest_id(&r, first);
    assert_memory_equal(first, zero, VMGENID_LEN); /* nothing written before new */

    assert_int_equal(vmgenid_new(&r.g), 0); /* boot */
    guest_id(&r, first);
    assert_memory_not_equal(first, zero, VMGENID_LEN);
    assert_memory_equal(first, r.g.id, VMGENID_LEN);
    assert_int_equal(r.chip.raised, 0); /* a boot tells nobody */

    assert_int_equal(vmgenid_new(&r.g), 0); /* restore */
    vmgenid_notify(&r.g);
    guest_id(&r, second);
    assert_memory_not_equal(first, second, VMGENID_LEN);
    assert_memory_equal(second, r.g.id, VMGENID_LEN);
    /* One edge on the GED's GSI, the line left low. */
    assert_int_equal(r.chip.gsi, GSI);
    assert_int_equal(r.chip.raised, 1);
    assert_int_equal(r.chip.lowered, 1);
    assert_false(r.chip.level);
    guest_mem_release(&r.mem);
}

/* Two machines booted side by side get different IDs. */
static void test_two_machines(void **state)
{
    (void)state;
    struct rig a, b;
    rig_init(&a);
    rig_init(&b);
    assert_int_equal(vmgenid_new(&a.g), 0);
    assert_int_equal(vmgenid_new(&b.g), 0);
    uint8_t ia[VMGENID_LEN], ib[VMGENID_LEN];
    guest_id(&a, ia);
    guest_id(&b, ib);
    assert_memory_not_equal(ia, ib, VMGENID_LEN);
    guest_mem_release(&a.mem);
    guest_mem_release(&b.mem);
}

/* A source that repeats itself: @calls counts, the first @same draws
 * return the bytes 0x11, the rest 0x22. */
static unsigned calls, same;
static int fixed_random(uint8_t *buf, size_t len)
{
    memset(buf, calls++ < same ? 0x11 : 0x22, len);
    return 0;
}

static int failing_random(uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
    return -ENOSYS;
}

static void test_never_the_same_id(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    r.g.random = fixed_random;
    calls = 0;
    same = 2;
    assert_int_equal(vmgenid_new(&r.g), 0); /* 0x11.. */
    assert_int_equal(vmgenid_new(&r.g), 0); /* 0x11 again: drawn once more, 0x22.. */
    assert_int_equal(calls, 3);
    uint8_t id[VMGENID_LEN];
    guest_id(&r, id);
    assert_int_equal(id[0], 0x22);
    assert_int_equal(id[15], 0x22);

    /* A source stuck on the current ID: refused, guest memory untouched. */
    calls = 0;
    same = 0;
    assert_int_equal(vmgenid_new(&r.g), -EIO);
    assert_int_equal(calls, 4);
    guest_id(&r, id);
    assert_int_equal(id[0], 0x22);

    r.g.random = failing_random;
    assert_int_equal(vmgenid_new(&r.g), -ENOSYS);
    guest_mem_release(&r.mem);
}

static void test_outside_memory(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    vmgenid_init(&r.g, &r.mem, (2u << 20) - 8, &r.line); /* runs past the end */
    assert_int_equal(vmgenid_new(&r.g), -EFAULT);
    static const uint8_t zero[VMGENID_LEN];
    assert_memory_equal(r.g.id, zero, VMGENID_LEN);
    vmgenid_init(&r.g, &r.mem, GPA, NULL);
    vmgenid_notify(&r.g); /* no line: nothing to raise */
    assert_int_equal(r.chip.raised, 0);
    guest_mem_release(&r.mem);
}

static int load_from(struct snap_w *w, struct vmgenid *g)
{
    struct snap_r rd;
    assert_int_equal(snap_find(w->buf, w->len, "x86.vmgenid", &rd), 0);
    return vmgenid_load(g, &rd);
}

static void test_snapshot(void **state)
{
    (void)state;
    struct rig a, b;
    rig_init(&a);
    rig_init(&b);
    assert_int_equal(vmgenid_new(&a.g), 0);
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "x86.vmgenid");
    vmgenid_save(&a.g, &w);
    snap_end(&w);
    assert_int_equal(w.err, 0);

    /* Restored: the saved ID comes back, then a new one replaces it. */
    assert_int_equal(load_from(&w, &b.g), 0);
    assert_memory_equal(b.g.id, a.g.id, VMGENID_LEN);
    assert_int_equal(vmgenid_new(&b.g), 0);
    assert_memory_not_equal(b.g.id, a.g.id, VMGENID_LEN);

    /* A machine whose ID lives elsewhere or is announced on another line
     * cannot take the snapshot's guest, whose DSDT names the saved ones. */
    vmgenid_init(&b.g, &b.mem, GPA + 0x1000, &b.line);
    assert_int_equal(load_from(&w, &b.g), -EPROTO);
    struct irq_line other = b.line;
    other.gsi = GSI + 1;
    vmgenid_init(&b.g, &b.mem, GPA, &other);
    assert_int_equal(load_from(&w, &b.g), -EPROTO);
    vmgenid_init(&b.g, &b.mem, GPA, NULL);
    assert_int_equal(load_from(&w, &b.g), -EPROTO);
    snap_w_free(&w);

    /* Short and long sections. */
    vmgenid_init(&b.g, &b.mem, GPA, &b.line);
    for (int extra = -1; extra <= 1; extra += 2) {
        snap_w_init(&w);
        snap_begin(&w, "x86.vmgenid");
        snap_put_u64(&w, GPA);
        snap_put_u32(&w, GSI);
        uint8_t id[VMGENID_LEN + 1] = {0};
        snap_put(&w, id, (size_t)(VMGENID_LEN + extra));
        snap_end(&w);
        assert_int_equal(load_from(&w, &b.g), -EPROTO);
        snap_w_free(&w);
    }
    guest_mem_release(&a.mem);
    guest_mem_release(&b.mem);
}

int main(void)
{
    RUN(cmocka_unit_test(test_boot_and_restore), cmocka_unit_test(test_two_machines),
        cmocka_unit_test(test_never_the_same_id), cmocka_unit_test(test_outside_memory),
        cmocka_unit_test(test_snapshot));
}
