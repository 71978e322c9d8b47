/* test_balloon.c - virtio-balloon driven as a guest driver would: rings
 * laid out by hand in memfd-backed fake guest RAM, a fake transport that
 * counts interrupts, and a real event loop for requeues and the
 * statistics timer. Memory given back is checked in the memfd itself. */
#include "vdev_harness.h"

#include "virtio/balloon.h"
#include "virtio/rng.h"
#include "vmm/config.h"
#include "base/log.h"

#include <endian.h>
#include <pthread.h>
#include <sys/stat.h>

/* Guest RAM of the tests: one region, or two around a hole (as x86 has
 * around its MMIO window) to check PFNs in the hole and runs at the edge. */
#define MIB       (1ull << 20)
#define MEM_SIZE  (16 * MIB)
#define LO_SIZE   (8 * MIB)
#define HOLE_END  (12 * MIB)
#define HI_SIZE   (8 * MIB)
#define PAGE      4096ull
#define QSZ       128 /* the queue size the device offers */
#define RING_GPA  0x10000ull
#define RING_STEP 0x2000ull /* per queue: desc 2 KiB, avail, used at +0x1000 */
#define HEAP_GPA  0x30000ull
#define DATA_GPA  (2 * MIB) /* pages the tests balloon; well clear of rings and heap */

/* All the balloon needs is the harness: its "back end" is guest RAM itself. */
struct ctx {
    struct vdev_harness h;
};

/* Run the event loop until queue @q's used index reaches @target, at most
 * @ms milliseconds; returns whether it is exactly there. */
static bool run_until(struct ctx *c, unsigned q, uint16_t target, unsigned ms)
{
    vh_run_used(&c->h, q, target, ms);
    return vh_used_idx(&c->h, q) == target;
}

/* Post one chain, kick, and expect it back at once; returns its used length. */
static uint32_t submit(struct ctx *c, unsigned q, const struct vh_seg *s, unsigned n)
{
    uint16_t before = vh_used_idx(&c->h, q);
    uint16_t head = vh_post(&c->h, q, s, n);
    vh_kick(&c->h, q);
    assert_int_equal(vh_used_idx(&c->h, q), (uint16_t)(before + 1));
    uint32_t id, len;
    vh_used_elem(&c->h, q, before, &id, &len);
    assert_int_equal(id, head);
    return len;
}

/* An inflate/deflate request: @n PFNs in one readable buffer. */
static void send_pfns(struct ctx *c, unsigned q, const uint32_t *pfn, unsigned n)
{
    uint64_t g = vh_alloc(&c->h, 4ull * n);
    for (unsigned i = 0; i < n; i++) {
        uint32_t le = htole32(pfn[i]);
        memcpy(vh_ptr(&c->h, g + 4ull * i), &le, 4);
    }
    struct vh_seg s = {g, 4 * n, false};
    assert_int_equal(submit(c, q, &s, 1), 0);
}

static uint32_t pfn_of(uint64_t gpa)
{
    return (uint32_t)(gpa >> 12);
}

/* ---- what the host really holds ------------------------------------------ */
/* Careful: reading a hole through the shared mapping allocates a page
 * again (shmem has no shared zero page), so tests count blocks before
 * they read discarded memory back. */

static uint64_t memfd_blocks(struct ctx *c)
{
    struct stat st;
    assert_int_equal(fstat(c->h.mem.fd, &st), 0);
    return (uint64_t)st.st_blocks; /* 512-byte units */
}

static off_t file_off(struct ctx *c, uint64_t gpa)
{
    return (off_t)(vh_ptr(&c->h, gpa) - c->h.mem.base);
}

/* Whether the memfd holds no data for the page at @gpa (it was punched). */
static bool is_hole(struct ctx *c, uint64_t gpa)
{
    off_t off = file_off(c, gpa);
    return lseek(c->h.mem.fd, off, SEEK_HOLE) == off;
}

static uint8_t pattern(uint64_t gpa)
{
    return (uint8_t)((gpa >> 12) * 31 + (gpa & 0xfff) + 1) | 1; /* never zero */
}

static void fill(struct ctx *c, uint64_t gpa, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        *vh_ptr(&c->h, gpa + i) = pattern(gpa + i);
}

static bool has_pattern(struct ctx *c, uint64_t gpa, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        if (*vh_ptr(&c->h, gpa + i) != pattern(gpa + i))
            return false;
    return true;
}

static bool is_zero(struct ctx *c, uint64_t gpa, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        if (*vh_ptr(&c->h, gpa + i))
            return false;
    return true;
}

/* ---- device lifecycle -------------------------------------------------- */

static void config_read32(struct ctx *c, uint32_t off, uint32_t *v)
{
    pthread_mutex_lock(&c->h.dev->lock);
    c->h.dev->ops->config_read(c->h.dev, off, v, 4);
    pthread_mutex_unlock(&c->h.dev->lock);
    *v = le32toh(*v);
}

static void config_write32(struct ctx *c, uint32_t off, uint32_t v)
{
    v = htole32(v);
    pthread_mutex_lock(&c->h.dev->lock);
    c->h.dev->ops->config_write(c->h.dev, off, &v, 4);
    pthread_mutex_unlock(&c->h.dev->lock);
}

/* The driver's side of initialisation (3.1.1): accept @features, enable
 * queues (bit q of @qmask), then DRIVER_OK. */
static void driver_init(struct ctx *c, uint64_t features, unsigned qmask)
{
    /* Rings and heap: touched now, so that what the tests count in the
     * memfd later is only what the device discards. */
    memset(vh_ptr(&c->h, RING_GPA), 0, DATA_GPA - RING_GPA);
    assert_true(vh_driver_init(&c->h, features, qmask));
}

static void make_dev(struct ctx *c, uint32_t target_mib, uint32_t stats_s, bool oom, bool report)
{
    struct balloon_config cfg = {.enabled = true,
                                 .target_mib = target_mib,
                                 .deflate_on_oom = oom,
                                 .stats_interval_s = stats_s,
                                 .free_page_reporting = report};
    char err[256] = "";
    struct virtio_device *d = virtio_balloon_create(&c->h.mem, &cfg, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_balloon_create: %s", err);
    vh_attach(&c->h, d);
}

static int setup_common(void **state, const struct guest_mem_region *l, unsigned n)
{
    struct ctx *c = calloc(1, sizeof(*c));
    vh_init(&c->h, l, n);
    vh_rings(&c->h, VIRTIO_MAX_QUEUES, QSZ, RING_GPA, RING_STEP);
    vh_heap(&c->h, HEAP_GPA, DATA_GPA);
    *state = c;
    return 0;
}

static int setup(void **state)
{
    struct guest_mem_region l[] = {{0, MEM_SIZE, NULL}};
    return setup_common(state, l, 1);
}

static int setup_hole(void **state)
{
    struct guest_mem_region l[] = {{0, LO_SIZE, NULL}, {HOLE_END, HI_SIZE, NULL}};
    return setup_common(state, l, 2);
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    vh_release(&c->h);
    free(c);
    return 0;
}

/* Queue masks of the usual drivers. */
#define QM_BASIC 0x3u /* inflate, deflate */
#define QM_STATS 0x7u /* + stats at 2 */
#define F_STATS  VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ)
#define F_OOM    VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM)
#define F_REPORT VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING)

/* ---- tests ------------------------------------------------------------- */

static void test_features_config(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 3, 0, false, false);
    struct virtio_device *d = c->h.dev;
    assert_int_equal(d->ops->device_id, VIRTIO_ID_BALLOON);
    assert_true(d->ops->queue_max_size >= 32); /* Linux's page reporting needs 32 */
    uint64_t f = d->host_features;
    assert_true(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    assert_false(f & (F_STATS | F_OOM | F_REPORT));
    assert_false(f & VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST));
    assert_false(f & VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT));
    assert_false(f & VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_POISON));

    /* The layout of 5.5.4: num_pages, actual, then two zero fields. */
    assert_int_equal(d->ops->config_size, 16);
    uint8_t raw[16];
    d->ops->config_read(d, 0, raw, sizeof(raw));
    uint32_t v;
    memcpy(&v, raw, 4);
    assert_int_equal(le32toh(v), 3 * 256);
    for (unsigned i = 4; i < 16; i++)
        assert_int_equal(raw[i], 0);

    struct virtio_balloon_info info;
    assert_int_equal(virtio_balloon_get(d, &info), 0);
    assert_int_equal(info.target_pages, 768);
    assert_int_equal(info.target_mib, 3);
    assert_int_equal(info.actual_pages, 0);
    assert_false(info.stats_enabled);
    assert_false(info.deflate_on_oom);
    vh_drop_dev(&c->h);

    /* Every optional feature, as configured. */
    make_dev(c, 0, 5, true, true);
    f = c->h.dev->host_features;
    assert_true(f & F_STATS);
    assert_true(f & F_OOM);
    assert_true(f & F_REPORT);
    assert_int_equal(virtio_balloon_get(c->h.dev, &info), 0);
    assert_true(info.stats_enabled);
    assert_int_equal(info.stats_interval_s, 5);
    assert_true(info.deflate_on_oom);
    assert_true(info.free_page_reporting);
    assert_int_equal(info.stats_updates, 0);

    /* A target beyond the guest's RAM is refused with a sentence. */
    struct balloon_config big = {.enabled = true, .target_mib = 17};
    char err[256] = "";
    assert_null(virtio_balloon_create(&c->h.mem, &big, &c->h.loop, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "17 MiB"));
    big.target_mib = 16;
    struct virtio_device *whole =
        virtio_balloon_create(&c->h.mem, &big, &c->h.loop, err, sizeof(err));
    assert_non_null(whole);
    whole->ops->release(whole);
    /* Statistics need the event loop for their timer. */
    struct balloon_config st = {.enabled = true, .stats_interval_s = 1};
    assert_null(virtio_balloon_create(&c->h.mem, &st, NULL, err, sizeof(err)));

    assert_string_equal(virtio_balloon_stat_name(VIRTIO_BALLOON_S_SWAP_IN), "swap_in");
    assert_string_equal(virtio_balloon_stat_name(VIRTIO_BALLOON_S_AVAIL), "available_memory");
    assert_string_equal(virtio_balloon_stat_name(VIRTIO_BALLOON_S_HTLB_PGFAIL), "hugetlb_failures");
    assert_null(virtio_balloon_stat_name(VIRTIO_BALLOON_S_NR));
}

static void test_inflate_frees_memory(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, false);
    driver_init(c, 0, QM_BASIC);

    /* 64 pages the guest touched, and a neighbour page that stays. */
    const unsigned n = 64;
    fill(c, DATA_GPA, (n + 1) * PAGE);
    uint64_t before = memfd_blocks(c);
    assert_false(is_hole(c, DATA_GPA));

    /* Out of order, with a gap and a duplicate: still every page once. */
    uint32_t pfns[70];
    unsigned k = 0;
    for (unsigned i = n; i-- > 0;)
        pfns[k++] = pfn_of(DATA_GPA + i * PAGE);
    pfns[k++] = pfn_of(DATA_GPA + 5 * PAGE);
    send_pfns(c, 0, pfns, k);

    /* The host no longer holds them: the memfd has holes, 64 pages fewer. */
    assert_int_equal(before - memfd_blocks(c), n * PAGE / 512);
    for (unsigned i = 0; i < n; i++)
        assert_true(is_hole(c, DATA_GPA + i * PAGE));
    assert_true(is_zero(c, DATA_GPA, n * PAGE));
    assert_true(has_pattern(c, DATA_GPA + n * PAGE, PAGE));
    assert_false(is_hole(c, DATA_GPA + n * PAGE));

    struct virtio_balloon_info info;
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.inflated_pages, n);
    assert_int_equal(info.bad_pfns, 0);
    assert_int_equal(c->h.dev->stats.errors, 0);
    assert_true(c->h.used_irqs > 0);
    assert_true(virtio_device_live(c->h.dev));
}

static void test_deflate(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, false);
    driver_init(c, 0, QM_BASIC);
    uint64_t page = DATA_GPA + 16 * PAGE;
    fill(c, page, 4 * PAGE);
    uint32_t pfns[4];
    for (unsigned i = 0; i < 4; i++)
        pfns[i] = pfn_of(page + i * PAGE);
    send_pfns(c, 0, pfns, 4);
    assert_true(is_hole(c, page));

    /* Deflating needs no host action: the guest touches the pages again
     * and gets fresh zeroed memory; contents the guest wrote stay. */
    uint64_t before = memfd_blocks(c);
    send_pfns(c, 1, pfns, 4);
    assert_int_equal(memfd_blocks(c), before);
    fill(c, page, 4 * PAGE);
    assert_true(has_pattern(c, page, 4 * PAGE));
    assert_false(is_hole(c, page));
    struct virtio_balloon_info info;
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.inflated_pages, 4);
    assert_int_equal(info.deflated_pages, 4);
    assert_int_equal(c->h.dev->stats.errors, 0);
}

/* PFNs outside RAM (in the hole, past the end, the largest u32) are
 * ignored one by one and counted; the good ones around them are still
 * discarded, including runs that end at a region's edge. */
static void test_bad_pfns(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, false);
    driver_init(c, 0, QM_BASIC);
    uint64_t lo_last = LO_SIZE - 2 * PAGE; /* the last two pages below the hole */
    uint64_t hi_first = HOLE_END;          /* the first two above it */
    fill(c, lo_last, 2 * PAGE);
    fill(c, hi_first, 2 * PAGE);
    uint32_t pfns[] = {
        pfn_of(lo_last),
        pfn_of(lo_last + PAGE),
        pfn_of(LO_SIZE), /* hole */
        pfn_of(LO_SIZE + MIB),
        pfn_of(hi_first),
        pfn_of(hi_first + PAGE),
        pfn_of(HOLE_END + HI_SIZE), /* just past the end */
        0xffffffffu,
    };
    send_pfns(c, 0, pfns, sizeof(pfns) / sizeof(pfns[0]));
    assert_true(is_hole(c, lo_last) && is_hole(c, lo_last + PAGE));
    assert_true(is_hole(c, hi_first) && is_hole(c, hi_first + PAGE));
    assert_true(is_zero(c, lo_last, 2 * PAGE) && is_zero(c, hi_first, 2 * PAGE));
    struct virtio_balloon_info info;
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.inflated_pages, 4);
    assert_int_equal(info.bad_pfns, 4);
    assert_true(c->h.dev->stats.errors > 0);
    assert_true(virtio_device_live(c->h.dev)); /* survived, not reset */

    /* The same on the deflate queue. */
    uint32_t bad[] = {pfn_of(LO_SIZE), pfn_of(hi_first)};
    send_pfns(c, 1, bad, 2);
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.deflated_pages, 1);
    assert_int_equal(info.bad_pfns, 5);
    assert_true(virtio_device_live(c->h.dev));
}

/* Requests a driver should not send: a ragged PFN array, a writable
 * buffer, an oversized array, an empty one, a notification on a queue
 * with no function. Each is survived; the oversized one is cut at the
 * device's bound. */
static void test_malformed(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, false);
    driver_init(c, 0, QM_BASIC | 0x18u); /* queues 3 and 4 enabled, no features */
    fill(c, DATA_GPA, 2 * PAGE);

    /* 6 bytes: one whole PFN and two stray bytes. */
    uint64_t g = vh_alloc(&c->h, 8);
    uint32_t le = htole32(pfn_of(DATA_GPA));
    memcpy(vh_ptr(&c->h, g), &le, 4);
    struct vh_seg s = {g, 6, false};
    assert_int_equal(submit(c, 0, &s, 1), 0);
    assert_true(is_hole(c, DATA_GPA));

    /* A writable buffer after the PFNs is ignored, the PFN used. */
    uint64_t g2 = vh_alloc(&c->h, 4), w = vh_alloc(&c->h, 16);
    le = htole32(pfn_of(DATA_GPA + PAGE));
    memcpy(vh_ptr(&c->h, g2), &le, 4);
    memset(vh_ptr(&c->h, w), 0xaa, 16);
    struct vh_seg s2[] = {{g2, 4, false}, {w, 16, true}};
    assert_int_equal(submit(c, 0, s2, 2), 0);
    assert_true(is_hole(c, DATA_GPA + PAGE));
    assert_int_equal(*vh_ptr(&c->h, w), 0xaa);

    /* An empty request, a writable-only request. */
    struct vh_seg s3 = {w, 16, true};
    assert_int_equal(submit(c, 1, &s3, 1), 0);

    /* 1 MiB of PFNs (256 Ki of them): only the first 4096 are looked at.
     * They name 64 pages over and over; everything after them names a
     * page that must survive. */
    uint64_t big = 4 * MIB, keep = 8 * MIB;
    uint32_t npfn = (uint32_t)(MIB / 4);
    for (uint32_t i = 0; i < npfn; i++) {
        le = htole32(i < 4096 ? pfn_of(DATA_GPA + 2 * PAGE) + i % 64 : pfn_of(keep));
        memcpy(vh_ptr(&c->h, big + 4ull * i), &le, 4);
    }
    fill(c, DATA_GPA + 2 * PAGE, 64 * PAGE);
    fill(c, keep, PAGE);
    struct vh_seg s4 = {big, (uint32_t)MIB, false};
    assert_int_equal(submit(c, 0, &s4, 1), 0);
    for (unsigned i = 2; i < 66; i++)
        assert_true(is_hole(c, DATA_GPA + i * PAGE));
    assert_true(has_pattern(c, keep, PAGE));
    struct virtio_balloon_info info;
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.inflated_pages, 2 + 64);

    /* Queues 3 and 4 mean nothing without features: kicks are ignored. */
    uint16_t u3 = vh_used_idx(&c->h, 3);
    vh_post(&c->h, 3, &s, 1);
    vh_kick(&c->h, 3);
    assert_int_equal(vh_used_idx(&c->h, 3), u3);
    assert_true(virtio_device_live(c->h.dev));
    assert_true(c->h.dev->stats.errors > 0);
}

/* More chains than one notification serves: the rest are requeued through
 * the transport and finished from the event loop. */
static void test_batch(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, false);
    driver_init(c, 0, QM_BASIC);
    const unsigned chains = 40;
    fill(c, DATA_GPA, chains * PAGE);
    for (unsigned i = 0; i < chains; i++) {
        uint64_t g = vh_alloc(&c->h, 4);
        uint32_t le = htole32(pfn_of(DATA_GPA + i * PAGE));
        memcpy(vh_ptr(&c->h, g), &le, 4);
        struct vh_seg s = {g, 4, false};
        vh_post(&c->h, 0, &s, 1);
    }
    vh_kick(&c->h, 0);
    assert_true(vh_used_idx(&c->h, 0) < chains); /* not everything in one go */
    assert_true(run_until(c, 0, (uint16_t)chains, VH_WAIT_MS));
    for (unsigned i = 0; i < chains; i++)
        assert_true(is_hole(c, DATA_GPA + i * PAGE));
}

struct target_arg {
    struct virtio_device *dev;
    uint32_t mib;
    int r;
};

static void *set_target_thread(void *p)
{
    struct target_arg *a = p;
    a->r = virtio_balloon_set_target(a->dev, a->mib);
    return NULL;
}

static void test_set_target_and_actual(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 2, 0, false, false);

    /* Before the driver runs: the config changes, nobody is interrupted. */
    assert_int_equal(virtio_balloon_set_target(c->h.dev, 4), 0);
    assert_int_equal(c->h.config_irqs, 0);
    uint32_t v;
    config_read32(c, 0, &v);
    assert_int_equal(v, 4 * 256);

    driver_init(c, 0, QM_BASIC);
    uint32_t gen = c->h.dev->config_generation;
    /* From another thread, as the API server calls it. */
    struct target_arg a = {c->h.dev, 10, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, set_target_thread, &a), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.r, 0);
    assert_int_equal(c->h.config_irqs, 1);
    assert_true(c->h.dev->config_generation != gen);
    config_read32(c, 0, &v);
    assert_int_equal(v, 10 * 256);

    /* Too big, or not a balloon. */
    assert_int_equal(virtio_balloon_set_target(c->h.dev, 17), -EINVAL);
    assert_int_equal(c->h.config_irqs, 1);
    config_read32(c, 0, &v);
    assert_int_equal(v, 10 * 256);
    struct virtio_device *rng = virtio_rng_create(&c->h.mem);
    struct virtio_balloon_info info;
    assert_int_equal(virtio_balloon_set_target(rng, 1), -ENODEV);
    assert_int_equal(virtio_balloon_get(rng, &info), -ENODEV);
    assert_int_equal(virtio_balloon_set_stats_interval(rng, 1), -ENODEV);
    rng->ops->release(rng);

    /* The driver reports what it holds in `actual`, a 32-bit write. */
    config_write32(c, 4, 2560);
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.actual_pages, 2560);
    assert_int_equal(info.actual_mib, 10);
    assert_int_equal(info.target_mib, 10);
    config_read32(c, 4, &v);
    assert_int_equal(v, 2560);

    /* Nothing else is writable: num_pages, the zero fields, a partial
     * or misaligned write of actual. */
    config_write32(c, 0, 1);
    config_write32(c, 8, 7);
    config_write32(c, 12, 7);
    uint16_t half = 1;
    pthread_mutex_lock(&c->h.dev->lock);
    c->h.dev->ops->config_write(c->h.dev, 4, &half, 2);
    c->h.dev->ops->config_write(c->h.dev, 6, &half, 2);
    pthread_mutex_unlock(&c->h.dev->lock);
    config_read32(c, 0, &v);
    assert_int_equal(v, 10 * 256);
    config_read32(c, 4, &v);
    assert_int_equal(v, 2560);
    config_read32(c, 8, &v);
    assert_int_equal(v, 0);
    config_read32(c, 12, &v);
    assert_int_equal(v, 0);

    /* A reset empties the guest's balloon; the target stays. */
    pthread_mutex_lock(&c->h.dev->lock);
    virtio_set_status(c->h.dev, 0);
    pthread_mutex_unlock(&c->h.dev->lock);
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.actual_pages, 0);
    assert_int_equal(info.target_mib, 10);
}

/* One {le16 tag, le64 val} entry at @p. */
static void put_stat(struct ctx *c, uint64_t g, unsigned i, uint16_t tag, uint64_t val)
{
    uint16_t t = htole16(tag);
    uint64_t v = htole64(val);
    memcpy(vh_ptr(&c->h, g + 10ull * i), &t, 2);
    memcpy(vh_ptr(&c->h, g + 10ull * i + 2), &v, 8);
}

static void test_stats(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 1, false, false);

    /* Linux posts its first buffer before DRIVER_OK; it is taken then. */
    uint64_t g = vh_alloc(&c->h, 10 * 8 + 3);
    put_stat(c, g, 0, VIRTIO_BALLOON_S_MEMFREE, 111 * MIB);
    put_stat(c, g, 1, VIRTIO_BALLOON_S_MEMTOT, 512 * MIB);
    put_stat(c, g, 2, 200, 5); /* unknown: ignored */
    put_stat(c, g, 3, VIRTIO_BALLOON_S_MAJFLT, 7);
    put_stat(c, g, 4, VIRTIO_BALLOON_S_HTLB_PGFAIL, 9);
    struct virtio_device *d = c->h.dev;
    assert_true(vh_negotiate(&c->h, F_STATS | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), QM_STATS));
    struct vh_seg s = {g, 10 * 5, false};
    uint16_t head = vh_post(&c->h, 2, &s, 1);
    vh_kick(&c->h, 2); /* ignored: not live yet */
    struct virtio_balloon_info info;
    virtio_balloon_get(d, &info);
    assert_int_equal(info.stats_updates, 0);
    vh_driver_ok(&c->h);
    vh_run_for(&c->h, 20); /* the event loop serves what was posted before */

    /* Parsed and kept: not in the used ring yet. */
    virtio_balloon_get(d, &info);
    assert_int_equal(info.stats_updates, 1);
    assert_true(info.stats_time_ns > 0);
    assert_int_equal(info.stats.valid,
                     (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT) |
                         (1u << VIRTIO_BALLOON_S_MAJFLT) | (1u << VIRTIO_BALLOON_S_HTLB_PGFAIL));
    assert_int_equal(info.stats.val[VIRTIO_BALLOON_S_MEMFREE], 111 * MIB);
    assert_int_equal(info.stats.val[VIRTIO_BALLOON_S_MEMTOT], 512 * MIB);
    assert_int_equal(info.stats.val[VIRTIO_BALLOON_S_MAJFLT], 7);
    assert_int_equal(info.stats.val[VIRTIO_BALLOON_S_HTLB_PGFAIL], 9);
    assert_int_equal(vh_used_idx(&c->h, 2), 0);

    /* The timer (1 s) gives the buffer back to ask for fresh numbers. */
    unsigned irqs = c->h.used_irqs;
    assert_true(run_until(c, 2, 1, 2500));
    uint32_t id, len;
    vh_used_elem(&c->h, 2, 0, &id, &len);
    assert_int_equal(id, head);
    assert_int_equal(len, 0);
    assert_true(c->h.used_irqs > irqs);

    /* The driver refills it (ragged: 2 entries and 3 stray bytes). */
    put_stat(c, g, 0, VIRTIO_BALLOON_S_AVAIL, 222);
    put_stat(c, g, 1, VIRTIO_BALLOON_S_SWAP_IN, 1);
    s.len = 10 * 2 + 3;
    uint16_t head2 = vh_post(&c->h, 2, &s, 1);
    vh_kick(&c->h, 2);
    virtio_balloon_get(d, &info);
    assert_int_equal(info.stats_updates, 2);
    assert_int_equal(info.stats.valid,
                     (1u << VIRTIO_BALLOON_S_AVAIL) | (1u << VIRTIO_BALLOON_S_SWAP_IN));
    assert_int_equal(info.stats.val[VIRTIO_BALLOON_S_AVAIL], 222);
    assert_int_equal(vh_used_idx(&c->h, 2), 1);

    /* A second buffer while the device holds one: the old one goes back. */
    s.len = 10;
    vh_post(&c->h, 2, &s, 1);
    vh_kick(&c->h, 2);
    assert_int_equal(vh_used_idx(&c->h, 2), 2);
    vh_used_elem(&c->h, 2, 1, &id, &len);
    assert_int_equal(id, head2);

    /* A faster interval takes effect; 0 and "off" are refused. */
    assert_int_equal(virtio_balloon_set_stats_interval(d, 0), -EINVAL);
    assert_int_equal(virtio_balloon_set_stats_interval(d, 1), 0);
    virtio_balloon_get(d, &info);
    assert_int_equal(info.stats_interval_s, 1);
    assert_true(run_until(c, 2, 3, 2500));

    /* A reset drops the held buffer and stops the timer: nothing more is
     * pushed to the (dead) ring. */
    vh_post(&c->h, 2, &s, 1);
    vh_kick(&c->h, 2);
    pthread_mutex_lock(&d->lock);
    virtio_set_status(d, 0);
    pthread_mutex_unlock(&d->lock);
    assert_false(run_until(c, 2, 4, 1300));
}

static void test_stats_disabled(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, false);
    assert_int_equal(virtio_balloon_set_stats_interval(c->h.dev, 5), -ENOTSUP);
    struct virtio_balloon_info info;
    virtio_balloon_get(c->h.dev, &info);
    assert_false(info.stats_enabled);
    assert_int_equal(info.stats_interval_s, 0);
}

/* Free page reporting: each buffer is free guest memory; whole pages in
 * it are discarded, partial pages kept, the chain returned with 0 bytes. */
static void report_on(struct ctx *c, unsigned q)
{
    const uint64_t block = 64 * PAGE;
    uint64_t a = DATA_GPA, b = DATA_GPA + block, far = DATA_GPA + 4 * block;
    uint64_t odd = DATA_GPA + 8 * block;
    fill(c, a, 2 * block);
    fill(c, far, block);
    fill(c, odd, 4 * PAGE);
    uint64_t before = memfd_blocks(c);
    /* Two adjacent blocks (one discard), a far one, and a buffer that
     * starts and ends mid-page: only its two whole pages go. */
    struct vh_seg s[] = {{a, (uint32_t)block, true},
                         {b, (uint32_t)block, true},
                         {far, (uint32_t)block, true},
                         {odd + 100, (uint32_t)(3 * PAGE), true}};
    assert_int_equal(submit(c, q, s, 4), 0);
    for (uint64_t p = a; p < b + block; p += PAGE)
        assert_true(is_hole(c, p));
    assert_true(is_hole(c, far));
    assert_true(is_hole(c, odd + PAGE) && is_hole(c, odd + 2 * PAGE));
    /* Counted before reading holes back: a read fault allocates a shmem page. */
    assert_int_equal(before - memfd_blocks(c), (3 * block + 2 * PAGE) / 512);
    assert_true(is_zero(c, far, block));
    assert_true(has_pattern(c, odd, PAGE));
    assert_true(has_pattern(c, odd + 3 * PAGE, PAGE));
    struct virtio_balloon_info info;
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.reported_bytes, 3 * block + 2 * PAGE);
    assert_int_equal(info.inflated_pages, 0);
    assert_true(virtio_device_live(c->h.dev));
}

static void test_reporting_linux_numbering(void **state)
{
    struct ctx *c = *state;
    /* Linux numbers only the queues that exist: reporting is 2 without
     * statistics, 3 with them. */
    make_dev(c, 0, 0, false, true);
    driver_init(c, F_REPORT, 0x7u);
    report_on(c, 2);
    vh_drop_dev(&c->h);

    make_dev(c, 0, 60, false, true);
    driver_init(c, F_REPORT | F_STATS, 0xfu);
    report_on(c, 3);
}

static void test_reporting_spec_numbering(void **state)
{
    struct ctx *c = *state;
    /* A driver that numbers queues as 5.5.2 lists them enables queue 4. */
    make_dev(c, 0, 0, false, true);
    driver_init(c, F_REPORT, 0x17u);
    report_on(c, 4);
    /* Queue 2 (enabled, but no statistics negotiated) has no function. */
    fill(c, 12 * MIB, PAGE);
    struct vh_seg s = {12 * MIB, (uint32_t)PAGE, true};
    vh_post(&c->h, 2, &s, 1);
    vh_kick(&c->h, 2);
    assert_int_equal(vh_used_idx(&c->h, 2), 0);
    assert_true(has_pattern(c, 12 * MIB, PAGE));
}

/* A reporting buffer in the top region next to its end, and in the low
 * region up to the hole: discarded without touching anything outside. */
static void test_reporting_edges(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, true);
    driver_init(c, F_REPORT, 0x7u);
    uint64_t lo = LO_SIZE - 8 * PAGE, hi = HOLE_END + HI_SIZE - 8 * PAGE;
    fill(c, lo, 8 * PAGE);
    fill(c, hi, 8 * PAGE);
    struct vh_seg s[] = {{lo, (uint32_t)(8 * PAGE), true}, {hi, (uint32_t)(8 * PAGE), true}};
    assert_int_equal(submit(c, 2, s, 2), 0);
    assert_true(is_zero(c, lo, 8 * PAGE) && is_zero(c, hi, 8 * PAGE));
    struct virtio_balloon_info info;
    virtio_balloon_get(c->h.dev, &info);
    assert_int_equal(info.reported_bytes, 16 * PAGE);
}

/* ---- free page hinting -------------------------------------------------- */

#define F_HINT VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT)

static void make_hint_dev(struct ctx *c, bool report)
{
    struct balloon_config cfg = {
        .enabled = true, .free_page_hinting = true, .free_page_reporting = report};
    char err[256] = "";
    struct virtio_device *d = virtio_balloon_create(&c->h.mem, &cfg, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_balloon_create: %s", err);
    vh_attach(&c->h, d);
}

/* The guest sends command id @id on the hint queue @q. */
static void send_cmd(struct ctx *c, unsigned q, uint32_t id)
{
    uint64_t g = vh_alloc(&c->h, 4);
    uint32_t le = htole32(id);
    memcpy(vh_ptr(&c->h, g), &le, 4);
    struct vh_seg s = {g, 4, false};
    assert_int_equal(submit(c, q, &s, 1), 0);
}

static struct virtio_balloon_hint hint_status(struct ctx *c)
{
    struct virtio_balloon_hint h;
    assert_int_equal(virtio_balloon_hint_status(c->h.dev, &h), 0);
    return h;
}

/* A run as Linux does it (hint queue 2: no statistics): the host's id, the
 * guest echoes it, hints pages (discarded), says STOP; acknowledge_on_stop
 * answers DONE. Pages hinted outside the current run are left alone. */
static void test_hinting(void **state)
{
    struct ctx *c = *state;
    make_hint_dev(c, true);
    assert_true(c->h.dev->host_features & F_HINT);
    driver_init(c, F_HINT | F_REPORT, 0xfu); /* inflate, deflate, hint 2, reporting 3 */
    uint32_t v;
    config_read32(c, 8, &v);
    assert_int_equal(v, 0); /* STOP: nothing asked yet */
    unsigned irqs = c->h.config_irqs;
    assert_int_equal(virtio_balloon_hint(c->h.dev, true, true), 0);
    assert_int_equal(c->h.config_irqs, irqs + 1);
    config_read32(c, 8, &v);
    assert_int_equal(v, 2);
    assert_false(hint_status(c).guest_cmd_valid);

    /* Free pages before the guest started the run: not discarded. */
    fill(c, DATA_GPA, 16 * PAGE);
    struct vh_seg pg = {DATA_GPA, (uint32_t)(16 * PAGE), true};
    assert_int_equal(submit(c, 2, &pg, 1), 0);
    assert_true(has_pattern(c, DATA_GPA, 16 * PAGE));

    send_cmd(c, 2, 2);
    assert_true(hint_status(c).guest_cmd_valid);
    assert_int_equal(hint_status(c).guest_cmd, 2);
    uint64_t blocks = memfd_blocks(c);
    assert_int_equal(submit(c, 2, &pg, 1), 0);
    assert_true(is_hole(c, DATA_GPA) && is_hole(c, DATA_GPA + 15 * PAGE));
    assert_true(memfd_blocks(c) <= blocks - 16 * PAGE / 512);
    assert_int_equal(hint_status(c).hinted_pages, 16);

    /* A malformed command (3 bytes) changes nothing. */
    uint64_t g = vh_alloc(&c->h, 4);
    struct vh_seg bad = {g, 3, false};
    assert_int_equal(submit(c, 2, &bad, 1), 0);
    assert_int_equal(hint_status(c).guest_cmd, 2);

    send_cmd(c, 2, 0); /* STOP */
    config_read32(c, 8, &v);
    assert_int_equal(v, 1); /* DONE, acknowledged */
    assert_int_equal(hint_status(c).host_cmd, 1);
    assert_int_equal(hint_status(c).guest_cmd, 0);

    /* A second run without acknowledgement: the id moves on, STOP stays. */
    assert_int_equal(virtio_balloon_hint(c->h.dev, true, false), 0);
    assert_int_equal(hint_status(c).host_cmd, 3);
    send_cmd(c, 2, 3);
    fill(c, DATA_GPA, 4 * PAGE);
    send_cmd(c, 2, 0);
    assert_int_equal(hint_status(c).host_cmd, 3);
    /* Pages after the guest's STOP belong to no run: kept. */
    struct vh_seg pg4 = {DATA_GPA, (uint32_t)(4 * PAGE), true};
    assert_int_equal(submit(c, 2, &pg4, 1), 0);
    assert_true(has_pattern(c, DATA_GPA, 4 * PAGE));
    assert_int_equal(virtio_balloon_hint(c->h.dev, false, false), 0);
    assert_int_equal(hint_status(c).host_cmd, 1);
    /* Reporting still works on the queue after the hint queue. */
    report_on(c, 3);
}

static void test_hinting_refusals(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0, 0, false, false);
    struct virtio_balloon_hint h;
    assert_int_equal(virtio_balloon_hint(c->h.dev, true, true), -ENOTSUP);
    assert_int_equal(virtio_balloon_hint_status(c->h.dev, &h), -ENOTSUP);
    assert_int_equal(virtio_balloon_hint(NULL, true, true), -ENODEV);
    /* Hinting on the spec's queue 3 when the driver numbers queues so. */
    vh_drop_dev(&c->h);
    make_hint_dev(c, false);
    driver_init(c, F_HINT, 0xbu); /* inflate, deflate, queue 3 */
    assert_int_equal(virtio_balloon_hint(c->h.dev, true, true), 0);
    send_cmd(c, 3, 2);
    assert_int_equal(hint_status(c).guest_cmd, 2);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* guest-misbehaviour warnings are expected here */
    RUN(cmocka_unit_test_setup_teardown(test_features_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflate_frees_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deflate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pfns, setup_hole, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_target_and_actual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reporting_linux_numbering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reporting_spec_numbering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reporting_edges, setup_hole, teardown),
        cmocka_unit_test_setup_teardown(test_hinting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hinting_refusals, setup, teardown));
}
