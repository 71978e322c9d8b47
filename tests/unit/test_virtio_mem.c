/* test_virtio_mem.c - virtio-mem driven as a guest driver would (the
 * vdev harness): plug, unplug, state and unplug-all with their range
 * checks, malformed requests, memory given back to the host, the
 * requested size; and the configuration's checks and parser. */
#include "vdev_harness.h"

#include "virtio/mem.h"
#include "vmm/config.h"

#include <endian.h>
#include <pthread.h>

#define MIB       (1ull << 20)
#define RAM_SIZE  (8 * MIB)
#define HP_GPA    (64 * MIB) /* the hotplug region, after a gap */
#define HP_SIZE   (32 * MIB)
#define BLOCK     (2 * MIB)
#define NBLOCKS   (HP_SIZE / BLOCK)
#define QSZ       128
#define RING_GPA  0x10000ull
#define RING_STEP 0x2000ull
#define HEAP_GPA  0x30000ull
#define HEAP_END  (2 * MIB)

#define SLOT      (8 * MIB) /* 4 blocks */
#define NSLOTS    (HP_SIZE / SLOT)

struct ctx {
    struct vdev_harness h;
    bool mapped[NSLOTS]; /* what the mapper was told */
    unsigned maps, unmaps;
    int fail_slot; /* the mapper refuses to map this slot; -1: none */
};

static int fake_map(void *opaque, unsigned slot, bool on)
{
    struct ctx *c = opaque;
    assert_true(slot < NSLOTS);
    assert_true(c->mapped[slot] != on); /* never twice the same way */
    if (on && (int)slot == c->fail_slot)
        return -ENOSPC;
    c->mapped[slot] = on;
    on ? c->maps++ : c->unmaps++;
    return 0;
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    struct guest_mem_region l[] = {{0, RAM_SIZE, NULL}, {HP_GPA, HP_SIZE, NULL}};
    vh_init(&c->h, l, 2);
    vh_rings(&c->h, 1, QSZ, RING_GPA, RING_STEP);
    vh_heap(&c->h, HEAP_GPA, HEAP_END);
    char err[256] = "";
    c->fail_slot = -1;
    const struct virtio_mem_mapper mapper = {fake_map, c};
    struct virtio_device *d = virtio_mem_create(&c->h.mem, HP_GPA, HP_SIZE, BLOCK, 8 * MIB, SLOT,
                                                &mapper, err, sizeof(err));
    if (!d)
        fail_msg("virtio_mem_create: %s", err);
    vh_attach(&c->h, d);
    assert_true(vh_driver_init(&c->h, VIRTIO_BIT(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE), 1));
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    vh_release(&c->h);
    free(c);
    return 0;
}

static uint64_t config64(struct ctx *c, uint32_t off)
{
    uint64_t v;
    pthread_mutex_lock(&c->h.dev->lock);
    c->h.dev->ops->config_read(c->h.dev, off, &v, 8);
    pthread_mutex_unlock(&c->h.dev->lock);
    return le64toh(v);
}

#define CFG(field) config64(c, offsetof(struct virtio_mem_config, field))

/* Post @len bytes of request (@req) and @wlen writable bytes; kick; return
 * the used length, the response in @resp. */
static uint32_t raw(struct ctx *c, const void *req, uint32_t len, uint32_t wlen, uint8_t *resp)
{
    uint64_t g = vh_alloc(&c->h, len ? len : 1), o = vh_alloc(&c->h, wlen ? wlen : 1);
    if (len)
        memcpy(vh_ptr(&c->h, g), req, len);
    memset(vh_ptr(&c->h, o), 0xee, wlen ? wlen : 1);
    struct vh_seg s[2] = {{g, len, false}, {o, wlen, true}};
    uint16_t before = vh_used_idx(&c->h, 0);
    unsigned n = 0;
    struct vh_seg *p = s;
    if (len)
        n++;
    else
        p = &s[1];
    if (wlen)
        n++;
    vh_post(&c->h, 0, p, n);
    vh_kick(&c->h, 0);
    assert_int_equal(vh_used_idx(&c->h, 0), (uint16_t)(before + 1));
    uint32_t id, used;
    vh_used_elem(&c->h, 0, before, &id, &used);
    if (resp && wlen)
        memcpy(resp, vh_ptr(&c->h, o), wlen < 10 ? wlen : 10);
    return used;
}

/* One well-formed request; the response type, the state in @state. */
static unsigned request(struct ctx *c, uint16_t type, uint64_t addr, uint16_t nb, uint16_t *state)
{
    uint8_t req[VIRTIO_MEM_REQ_SIZE] = {0}, resp[VIRTIO_MEM_RESP_SIZE];
    uint16_t t = htole16(type), n = htole16(nb);
    uint64_t a = htole64(addr);
    memcpy(req, &t, 2);
    memcpy(req + 8, &a, 8);
    memcpy(req + 16, &n, 2);
    assert_int_equal(raw(c, req, sizeof(req), sizeof(resp), resp), VIRTIO_MEM_RESP_SIZE);
    uint16_t rt, st;
    memcpy(&rt, resp, 2);
    memcpy(&st, resp + 8, 2);
    if (state)
        *state = le16toh(st);
    return le16toh(rt);
}

static bool is_hole(struct ctx *c, uint64_t gpa)
{
    off_t off = (off_t)(vh_ptr(&c->h, gpa) - c->h.mem.base);
    return lseek(c->h.mem.fd, off, SEEK_HOLE) == off;
}

static void test_config(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(c->h.dev->ops->device_id, 24);
    assert_int_equal(c->h.dev->ops->config_size, 56);
    assert_int_equal(CFG(block_size), BLOCK);
    assert_int_equal(CFG(addr), HP_GPA);
    assert_int_equal(CFG(region_size), HP_SIZE);
    assert_int_equal(CFG(usable_region_size), HP_SIZE);
    assert_int_equal(CFG(plugged_size), 0);
    assert_int_equal(CFG(requested_size), 8 * MIB);
    /* Changing the request interrupts the running driver; bad sizes do not. */
    unsigned irqs = c->h.config_irqs;
    assert_int_equal(virtio_mem_set_requested(c->h.dev, 3 * MIB), -EINVAL);
    assert_int_equal(virtio_mem_set_requested(c->h.dev, HP_SIZE + BLOCK), -EINVAL);
    assert_int_equal(c->h.config_irqs, irqs);
    assert_int_equal(virtio_mem_set_requested(c->h.dev, HP_SIZE), 0);
    assert_int_equal(c->h.config_irqs, irqs + 1);
    assert_int_equal(CFG(requested_size), HP_SIZE);
}

static void test_plug_unplug(void **state)
{
    struct ctx *c = *state;
    uint16_t st;
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + BLOCK, 2, NULL), VIRTIO_MEM_RESP_ACK);
    assert_int_equal(CFG(plugged_size), 2 * BLOCK);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_STATE, HP_GPA + BLOCK, 2, &st), VIRTIO_MEM_RESP_ACK);
    assert_int_equal(st, VIRTIO_MEM_STATE_PLUGGED);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_STATE, HP_GPA, 4, &st), VIRTIO_MEM_RESP_ACK);
    assert_int_equal(st, VIRTIO_MEM_STATE_MIXED);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_STATE, HP_GPA + 8 * BLOCK, 8, &st),
                     VIRTIO_MEM_RESP_ACK);
    assert_int_equal(st, VIRTIO_MEM_STATE_UNPLUGGED);
    /* Plugging twice, or past the requested 8 MiB, is refused. */
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + 2 * BLOCK, 1, NULL),
                     VIRTIO_MEM_RESP_ERROR);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + 4 * BLOCK, 3, NULL),
                     VIRTIO_MEM_RESP_NACK);
    assert_int_equal(CFG(plugged_size), 2 * BLOCK);
    /* The guest writes plugged memory; unplugging gives it to the host. */
    memset(vh_ptr(&c->h, HP_GPA + BLOCK), 0x5a, 2 * BLOCK);
    assert_false(is_hole(c, HP_GPA + BLOCK));
    /* Unplugging a range that is not all plugged is an error. */
    assert_int_equal(request(c, VIRTIO_MEM_REQ_UNPLUG, HP_GPA, 2, NULL), VIRTIO_MEM_RESP_ERROR);
    assert_false(is_hole(c, HP_GPA + BLOCK));
    assert_int_equal(request(c, VIRTIO_MEM_REQ_UNPLUG, HP_GPA + BLOCK, 2, NULL),
                     VIRTIO_MEM_RESP_ACK);
    assert_int_equal(CFG(plugged_size), 0);
    assert_true(is_hole(c, HP_GPA + BLOCK));
    assert_true(is_hole(c, HP_GPA + 2 * BLOCK + BLOCK - 4096));
    /* Plug the last block, then UNPLUG_ALL: empty again, memory gone. */
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + (NBLOCKS - 1) * BLOCK, 1, NULL),
                     VIRTIO_MEM_RESP_ACK);
    memset(vh_ptr(&c->h, HP_GPA + (NBLOCKS - 1) * BLOCK), 1, BLOCK);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0, NULL), VIRTIO_MEM_RESP_ACK);
    assert_int_equal(CFG(plugged_size), 0);
    assert_true(is_hole(c, HP_GPA + (NBLOCKS - 1) * BLOCK));
    struct virtio_mem_info info;
    assert_int_equal(virtio_mem_get(c->h.dev, &info), 0);
    assert_int_equal(info.plugs, 3);
    assert_int_equal(info.unplugs, 3);
    assert_int_equal(info.refused, 3);
}

/* A hostile driver: every range check, short and odd chains. */
static void test_malformed(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(virtio_mem_set_requested(c->h.dev, HP_SIZE), 0);
    const struct {
        uint16_t type;
        uint64_t addr;
        uint16_t nb;
    } bad[] = {
        {VIRTIO_MEM_REQ_PLUG, HP_GPA + 4096, 1},            /* not block-aligned */
        {VIRTIO_MEM_REQ_PLUG, HP_GPA - BLOCK, 1},           /* below the region */
        {VIRTIO_MEM_REQ_PLUG, HP_GPA, 0},                   /* no blocks */
        {VIRTIO_MEM_REQ_PLUG, HP_GPA, NBLOCKS + 1},         /* past the end */
        {VIRTIO_MEM_REQ_PLUG, HP_GPA + HP_SIZE, 1},         /* just past it */
        {VIRTIO_MEM_REQ_PLUG, HP_GPA + (NBLOCKS - 1) * BLOCK, 0xffff},
        {VIRTIO_MEM_REQ_PLUG, UINT64_MAX - BLOCK + 1, 2},   /* wraps around */
        {VIRTIO_MEM_REQ_UNPLUG, 0, 1},                      /* guest RAM, not ours */
        {VIRTIO_MEM_REQ_STATE, HP_GPA + HP_SIZE - BLOCK, 2},
        {7, HP_GPA, 1},                                     /* unknown type */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (request(c, bad[i].type, bad[i].addr, bad[i].nb, NULL) != VIRTIO_MEM_RESP_ERROR)
            fail_msg("request %zu was not refused", i);
    assert_int_equal(CFG(plugged_size), 0);
    /* A short request is answered ERROR; a chain with no room for an
     * answer comes back with nothing written. */
    uint8_t req[VIRTIO_MEM_REQ_SIZE] = {0}, resp[VIRTIO_MEM_RESP_SIZE];
    assert_int_equal(raw(c, req, 10, sizeof(resp), resp), VIRTIO_MEM_RESP_SIZE);
    assert_int_equal(resp[0], VIRTIO_MEM_RESP_ERROR);
    assert_int_equal(raw(c, req, sizeof(req), 4, NULL), 0);
    assert_int_equal(raw(c, req, sizeof(req), 0, NULL), 0);
    assert_int_equal(raw(c, NULL, 0, sizeof(resp), resp), VIRTIO_MEM_RESP_SIZE);
    assert_int_equal(resp[0], VIRTIO_MEM_RESP_ERROR);
    /* Still working: the whole region plugs in one request. */
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA, NBLOCKS, NULL), VIRTIO_MEM_RESP_ACK);
    assert_int_equal(CFG(plugged_size), HP_SIZE);
    assert_true(virtio_device_live(c->h.dev));
}

static void test_create_refusals(void **state)
{
    struct ctx *c = *state;
    char err[256];
    const struct virtio_mem_mapper mapper = {fake_map, c};
    assert_null(virtio_mem_create(&c->h.mem, HP_GPA, HP_SIZE, 3 * MIB, 0, 0, NULL, err,
                                  sizeof(err)));
    assert_null(virtio_mem_create(&c->h.mem, HP_GPA, HP_SIZE + BLOCK, BLOCK, 0, 0, NULL, err,
                                  sizeof(err)));
    assert_null(virtio_mem_create(&c->h.mem, HP_GPA, HP_SIZE, BLOCK, 3 * MIB, 0, NULL, err,
                                  sizeof(err)));
    /* Slots that do not divide the region, or not whole blocks. */
    assert_null(virtio_mem_create(&c->h.mem, HP_GPA, HP_SIZE, BLOCK, 0, 12 * MIB, &mapper, err,
                                  sizeof(err)));
    assert_null(virtio_mem_create(&c->h.mem, HP_GPA, HP_SIZE, BLOCK, 0, MIB, &mapper, err,
                                  sizeof(err)));
    /* Not guest memory: past the region. */
    assert_null(virtio_mem_create(&c->h.mem, HP_GPA + HP_SIZE, BLOCK, BLOCK, 0, 0, NULL, err,
                                  sizeof(err)));
    assert_int_equal(virtio_mem_set_requested(NULL, 0), -ENODEV);
}

static void test_config_parse(void **state)
{
    (void)state;
    struct memhp_config m;
    char err[256];
    assert_int_equal(config_parse_memhp("1G", &m, err, sizeof(err)), 0);
    assert_true(m.enabled);
    assert_int_equal(m.total_mib, 1024);
    assert_int_equal(m.block_mib, 2);
    assert_int_equal(m.slot_mib, 128);
    assert_int_equal(config_parse_memhp("2G,block=4M,slot=256M,requested=512M", &m, err,
                                        sizeof(err)),
                     0);
    assert_int_equal(m.block_mib, 4);
    assert_int_equal(m.slot_mib, 256);
    assert_int_equal(m.requested_mib, 512);
    const struct {
        const char *spec, *says;
    } bad[] = {
        {"", "give a size"},
        {"100M", "at least the slot size"},
        {"1G,block=3M", "power of 2"},
        {"1G,block=1M", "at least 2 MiB"},
        {"1G,slot=64M", "at least 128 MiB"},
        {"1000M", "multiple of the slot size"},
        {"1G,requested=3M", "multiple of the block size"},
        {"1G,requested=2G", "at most the total size"},
        {"1G,bogus=1", "unknown option"},
        {"1G,block=x", "whole MiB"},
        {"2T", "at most 1 TiB"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        if (config_parse_memhp(bad[i].spec, &m, err, sizeof(err)) != -EINVAL ||
            !strstr(err, bad[i].says))
            fail_msg("'%s': '%s' lacks '%s'", bad[i].spec, err, bad[i].says);
    }
}

/* Slots go into the guest's map with their first plugged block and out with
 * the last; a slot the host cannot map fails the plug and leaves nothing
 * mapped for it. */
static void test_slots(void **state)
{
    struct ctx *c = *state;
    assert_true(c->h.dev->host_features & VIRTIO_BIT(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE));
    assert_int_equal(virtio_mem_set_requested(c->h.dev, HP_SIZE), 0);
    for (unsigned s = 0; s < NSLOTS; s++)
        assert_false(c->mapped[s]);
    /* Blocks 3..5 straddle slots 0 and 1. */
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + 3 * BLOCK, 3, NULL),
                     VIRTIO_MEM_RESP_ACK);
    assert_true(c->mapped[0] && c->mapped[1] && !c->mapped[2]);
    assert_int_equal(c->maps, 2);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + 6 * BLOCK, 1, NULL),
                     VIRTIO_MEM_RESP_ACK);
    assert_int_equal(c->maps, 2); /* slot 1 was mapped already */
    /* Slot 0 empties: out; slot 1 keeps blocks 4, 6: stays. */
    assert_int_equal(request(c, VIRTIO_MEM_REQ_UNPLUG, HP_GPA + 3 * BLOCK, 1, NULL),
                     VIRTIO_MEM_RESP_ACK);
    assert_true(!c->mapped[0] && c->mapped[1]);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_UNPLUG, HP_GPA + 4 * BLOCK, 2, NULL),
                     VIRTIO_MEM_RESP_ACK);
    assert_true(c->mapped[1]);
    assert_int_equal(request(c, VIRTIO_MEM_REQ_UNPLUG, HP_GPA + 6 * BLOCK, 1, NULL),
                     VIRTIO_MEM_RESP_ACK);
    assert_false(c->mapped[1]);
    /* The host cannot map slot 3: a plug across slots 2 and 3 fails whole. */
    c->fail_slot = 3;
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + 10 * BLOCK, 4, NULL),
                     VIRTIO_MEM_RESP_ERROR);
    assert_true(!c->mapped[2] && !c->mapped[3]);
    assert_int_equal(CFG(plugged_size), 0);
    c->fail_slot = -1;
    assert_int_equal(request(c, VIRTIO_MEM_REQ_PLUG, HP_GPA + 10 * BLOCK, 4, NULL),
                     VIRTIO_MEM_RESP_ACK);
    assert_true(c->mapped[2] && c->mapped[3]);
    /* UNPLUG_ALL takes every slot out. */
    assert_int_equal(request(c, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0, NULL), VIRTIO_MEM_RESP_ACK);
    for (unsigned s = 0; s < NSLOTS; s++)
        assert_false(c->mapped[s]);
    assert_int_equal(c->maps, c->unmaps);
}

int main(void)
{
    RUN(cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plug_unplug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots, setup, teardown),
        cmocka_unit_test(test_config_parse));
}
