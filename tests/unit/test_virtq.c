/* test_virtq.c - the split-virtqueue walker against well-formed and hostile
 * rings laid out by hand in guest memory, plus virtio_queue_serve(). */
#include "unit.h"

#include "virtio/queue.h"
#include "virtio/virtio.h"
#include "base/log.h"

#define F_NEXT     1
#define F_WRITE    2
#define F_INDIRECT 4

/* Guest RAM: two regions with a hole between them, so that buffers can
 * straddle the end of RAM, the hole, or start in it. */
#define R0_GPA  0x0ull
#define R0_SIZE 0x10000ull
#define R1_GPA  0x20000ull
#define R1_SIZE 0x10000ull

/* Where the rings live (queue size <= 256 fits between them). */
#define DESC  0x1000ull
#define AVAIL 0x2000ull
#define USED  0x3000ull
#define TABLE 0x4000ull /* indirect tables: up to 1024 entries, to 0x8000 */
#define DATA  0x8000ull /* buffers */

struct fx {
    struct guest_mem m;
    struct virtq q;
    struct virtq_chain c;
    uint16_t avail_idx; /* the driver's shadow */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct guest_mem_region l[] = {{R0_GPA, R0_SIZE, NULL}, {R1_GPA, R1_SIZE, NULL}};
    assert_int_equal(guest_mem_init(&f->m, l, 2), 0);
    log_set_level(LOG_ERROR); /* the guest-misbehaviour warnings are expected */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    guest_mem_release(&f->m);
    free(f);
    return 0;
}

static uint8_t *gp(struct fx *f, uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(&f->m, gpa, len);
    assert_non_null(p);
    return p;
}

static void put16(struct fx *f, uint64_t gpa, uint16_t v)
{
    memcpy(gp(f, gpa, 2), &v, 2);
}

static uint16_t get16(struct fx *f, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, gp(f, gpa, 2), 2);
    return v;
}

static uint32_t get32(struct fx *f, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, gp(f, gpa, 4), 4);
    return v;
}

/* Descriptor @i of the table at @table. */
static void desc_at(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next)
{
    uint8_t *p = gp(f, table + 16ull * i, 16);
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static void desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    desc_at(f, DESC, i, addr, len, flags, next);
}

/* The driver makes chain @head available. */
static void post(struct fx *f, uint16_t head)
{
    put16(f, AVAIL + 4 + 2u * (f->avail_idx % f->q.size), head);
    f->avail_idx++;
    put16(f, AVAIL + 2, f->avail_idx);
}

/* Fresh rings (all zero) and an enabled queue of @size entries. */
static void start(struct fx *f, uint16_t size, bool event_idx, bool indirect)
{
    memset(gp(f, R0_GPA, R0_SIZE), 0, R0_SIZE);
    memset(gp(f, R1_GPA, R1_SIZE), 0, R1_SIZE);
    f->avail_idx = 0;
    virtq_init(&f->q, &f->m, 256);
    f->q.size = size;
    f->q.desc_gpa = DESC;
    f->q.avail_gpa = AVAIL;
    f->q.used_gpa = USED;
    assert_true(virtq_enable(&f->q, event_idx, indirect));
    assert_true(f->q.ready);
}

/* Whether [p, p+len) lies inside one guest RAM region's host mapping. */
static bool in_ram(const struct guest_mem *m, const uint8_t *p, uint64_t len)
{
    for (unsigned i = 0; i < m->count; i++) {
        const struct guest_mem_region *r = &m->r[i];
        if (p >= r->hva && p <= r->hva + r->size && len <= (uint64_t)(r->hva + r->size - p))
            return true;
    }
    return false;
}

/* Every buffer the walker filled in, even for a chain it then refused,
 * points into guest RAM. */
static void check_bufs(struct fx *f)
{
    unsigned n = f->c.nread + f->c.nwrite;
    assert_true(n <= VIRTQ_MAX_SIZE);
    for (unsigned i = 0; i < n; i++)
        assert_true(in_ram(&f->m, f->c.buf[i].hva, f->c.buf[i].len));
}

/* The available chain is malformed: refused, nothing consumed. */
static void expect_einval(struct fx *f)
{
    uint16_t before = f->q.last_avail;
    assert_int_equal(virtq_pop(&f->q, &f->c), -EINVAL);
    check_bufs(f);
    assert_int_equal(f->q.last_avail, before);
    /* Still refused when asked again: the driver must reset. */
    assert_int_equal(virtq_pop(&f->q, &f->c), -EINVAL);
}

static void test_normal_chain(void **state)
{
    struct fx *f = *state;
    start(f, 8, false, false);
    /* head 5: readable 100 @DATA, writable 200 @DATA+0x1000, writable 50 in R1. */
    desc(f, 5, DATA, 100, F_NEXT, 2);
    desc(f, 2, DATA + 0x1000, 200, F_WRITE | F_NEXT, 7);
    desc(f, 7, R1_GPA + 0x100, 50, F_WRITE, 0);
    post(f, 5);
    /* head 0: one readable buffer. */
    desc(f, 0, DATA + 0x2000, 16, 0, 3); /* no NEXT: @next is ignored */
    post(f, 0);

    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.head, 5);
    assert_int_equal(f->c.nread, 1);
    assert_int_equal(f->c.nwrite, 2);
    assert_int_equal(f->c.read_len, 100);
    assert_int_equal(f->c.write_len, 250);
    assert_ptr_equal(f->c.buf[0].hva, gp(f, DATA, 100));
    assert_int_equal(f->c.buf[0].len, 100);
    assert_ptr_equal(f->c.buf[1].hva, gp(f, DATA + 0x1000, 200));
    assert_int_equal(f->c.buf[1].len, 200);
    assert_ptr_equal(f->c.buf[2].hva, gp(f, R1_GPA + 0x100, 50));
    assert_int_equal(f->c.buf[2].len, 50);
    check_bufs(f);
    assert_int_equal(f->q.last_avail, 1);

    virtq_push(&f->q, 5, 42);
    assert_int_equal(get32(f, USED + 4), 5);  /* used.ring[0].id */
    assert_int_equal(get32(f, USED + 8), 42); /* used.ring[0].len */
    assert_int_equal(get16(f, USED + 2), 1);  /* used.idx */

    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.head, 0);
    assert_int_equal(f->c.nread, 1);
    assert_int_equal(f->c.nwrite, 0);
    assert_ptr_equal(f->c.buf[0].hva, gp(f, DATA + 0x2000, 16));
    virtq_push(&f->q, 0, 0);
    assert_int_equal(get32(f, USED + 12), 0);
    assert_int_equal(get16(f, USED + 2), 2);

    /* Empty now; unpop gives the last chain back. */
    assert_int_equal(virtq_pop(&f->q, &f->c), 0);
    virtq_unpop(&f->q);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.head, 0);
}

static void test_ring_wraps(void **state)
{
    struct fx *f = *state;
    start(f, 4, false, false);
    for (unsigned i = 0; i < 4; i++)
        desc(f, i, DATA + 0x100 * i, 8, F_WRITE, 0);
    /* Many rounds: ring positions wrap at 4 and the u16 indices at 65536. */
    for (unsigned round = 0; round < 70000; round++) {
        uint16_t head = (uint16_t)((round * 3) & 3);
        post(f, head);
        assert_int_equal(virtq_pop(&f->q, &f->c), 1);
        assert_int_equal(f->c.head, head);
        virtq_push(&f->q, head, 8);
    }
    assert_int_equal(get16(f, USED + 2), (uint16_t)70000);
    assert_int_equal(f->q.last_avail, (uint16_t)70000);
    /* A full ring (pending == size) is legal. */
    for (unsigned i = 0; i < 4; i++)
        post(f, (uint16_t)i);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(virtq_pop(&f->q, &f->c), 0);
}

static void test_zero_length_buffers_skipped(void **state)
{
    struct fx *f = *state;
    start(f, 8, false, false);
    /* A zero-length descriptor carries no buffer, whatever its address. */
    desc(f, 0, UINT64_MAX, 0, F_NEXT, 1);
    desc(f, 1, DATA, 4, F_WRITE, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.nread, 0);
    assert_int_equal(f->c.nwrite, 1);
    assert_ptr_equal(f->c.buf[0].hva, gp(f, DATA, 4));
}

static void test_indirect(void **state)
{
    struct fx *f = *state;
    start(f, 8, false, true);
    /* Table of 3 out of order: 0 (read) -> 2 (write) -> 1 (write). */
    desc_at(f, TABLE, 0, DATA, 10, F_NEXT, 2);
    desc_at(f, TABLE, 2, DATA + 0x100, 20, F_WRITE | F_NEXT, 1);
    desc_at(f, TABLE, 1, R1_GPA, 30, F_WRITE, 0);
    desc(f, 3, TABLE, 48, F_INDIRECT, 0);
    post(f, 3);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.head, 3);
    assert_int_equal(f->c.nread, 1);
    assert_int_equal(f->c.nwrite, 2);
    assert_ptr_equal(f->c.buf[0].hva, gp(f, DATA, 10));
    assert_ptr_equal(f->c.buf[1].hva, gp(f, DATA + 0x100, 20));
    assert_ptr_equal(f->c.buf[2].hva, gp(f, R1_GPA, 30));
    assert_int_equal(f->c.read_len, 10);
    assert_int_equal(f->c.write_len, 50);
    check_bufs(f);

    /* Direct descriptors followed by one indirect one (2.7.5.3.2). */
    desc(f, 4, DATA + 0x200, 5, F_NEXT, 6);
    desc(f, 6, TABLE + 0x100, 16, F_INDIRECT, 0);
    desc_at(f, TABLE + 0x100, 0, DATA + 0x300, 7, F_WRITE, 0);
    post(f, 4);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.nread, 1);
    assert_int_equal(f->c.nwrite, 1);
    assert_ptr_equal(f->c.buf[1].hva, gp(f, DATA + 0x300, 7));

    /* A table of VIRTQ_MAX_SIZE entries, all chained, is the largest. */
    for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
        desc_at(f, TABLE, i, DATA + i, 1, i + 1 < VIRTQ_MAX_SIZE ? F_NEXT : 0, (uint16_t)(i + 1));
    desc(f, 0, TABLE, 16 * VIRTQ_MAX_SIZE, F_INDIRECT, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.nread, VIRTQ_MAX_SIZE);
    assert_ptr_equal(f->c.buf[VIRTQ_MAX_SIZE - 1].hva, gp(f, DATA + VIRTQ_MAX_SIZE - 1, 1));
    /* The WRITE flag of an indirect descriptor itself is ignored (2.7.5.3.2). */
    desc_at(f, TABLE, 0, DATA, 4, F_WRITE, 0);
    desc(f, 1, TABLE, 16, F_INDIRECT | F_WRITE, 0);
    post(f, 1);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.nwrite, 1);
}

/* Malformed chains in the descriptor table itself. */
static void test_malformed_direct(void **state)
{
    struct fx *f = *state;

    start(f, 8, false, true); /* loop: 0 -> 1 -> 0 */
    desc(f, 0, DATA, 4, F_NEXT, 1);
    desc(f, 1, DATA + 4, 4, F_NEXT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* a descriptor chained to itself */
    desc(f, 2, DATA, 4, F_WRITE | F_NEXT, 2);
    post(f, 2);
    expect_einval(f);

    start(f, 8, false, true); /* loop of zero-length descriptors (no buffers) */
    desc(f, 0, 0, 0, F_NEXT, 1);
    desc(f, 1, 0, 0, F_NEXT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* next >= size */
    desc(f, 0, DATA, 4, F_NEXT, 8);
    post(f, 0);
    expect_einval(f);
    start(f, 8, false, true);
    desc(f, 0, DATA, 4, F_NEXT, 0xffff);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* head >= size */
    post(f, 8);
    expect_einval(f);
    start(f, 8, false, true);
    post(f, 0xffff);
    expect_einval(f);

    start(f, 8, false, true); /* readable after writable */
    desc(f, 0, DATA, 4, F_WRITE | F_NEXT, 1);
    desc(f, 1, DATA + 8, 4, 0, 0);
    post(f, 0);
    expect_einval(f);

    /* A chain through all 8 descriptors is fine; the walker cannot go
     * further without revisiting one, which must be refused. */
    start(f, 8, false, true);
    for (unsigned i = 0; i < 8; i++)
        desc(f, i, DATA + 16 * i, 16, F_NEXT, (uint16_t)((i + 1) & 7));
    desc(f, 7, DATA + 0x70, 16, 0, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.nread, 8);
    desc(f, 7, DATA + 0x70, 16, F_NEXT, 0); /* now 9+ steps: a loop */
    post(f, 3);
    expect_einval(f);
}

static void test_avail_idx_jump(void **state)
{
    struct fx *f = *state;
    start(f, 8, false, false);
    for (unsigned i = 0; i < 8; i++)
        desc(f, i, DATA, 4, F_WRITE, 0);
    /* The driver claims size + 1 new buffers. */
    put16(f, AVAIL + 2, 9);
    expect_einval(f);
    put16(f, AVAIL + 2, 0x8000);
    expect_einval(f);
    /* ... or "moves back" (idx behind last_avail is a huge jump). */
    put16(f, AVAIL + 2, 8); /* exactly size: fine */
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    put16(f, AVAIL + 2, 7);
    expect_einval(f);
}

/* Out-of-RAM and overflowing buffers. */
static void test_bad_buffers(void **state)
{
    struct fx *f = *state;
    static const struct {
        uint64_t addr;
        uint32_t len;
    } bad[] = {
        {R0_SIZE - 0x10, 0x20},               /* end of region 0 into the hole */
        {R0_SIZE, 1},                         /* in the hole */
        {R1_GPA - 0x10, 0x20},                /* hole into region 1 */
        {R1_GPA + R1_SIZE - 1, 2},            /* end of RAM */
        {R1_GPA + R1_SIZE, 1},                /* past RAM */
        {UINT64_MAX, 1},                      /* top of the address space */
        {UINT64_MAX - 0xff, 0x200},           /* addr + len wraps to a small gpa */
        {0xffffffff00001000ull, 0xffffffffu}, /* addr + len wraps to 0xfff */
        {R0_GPA, 0xffffffffu},                /* larger than all RAM */
        {0x100000000ull, 0x10},               /* beyond 4 GiB */
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* As the only buffer ... */
        start(f, 8, false, true);
        desc(f, 0, bad[i].addr, bad[i].len, F_WRITE, 0);
        post(f, 0);
        expect_einval(f);
        /* ... after a good one ... */
        start(f, 8, false, true);
        desc(f, 0, DATA, 8, F_NEXT, 1);
        desc(f, 1, bad[i].addr, bad[i].len, 0, 0);
        post(f, 0);
        expect_einval(f);
        /* ... and inside an indirect table. */
        start(f, 8, false, true);
        desc_at(f, TABLE, 0, DATA, 8, F_NEXT, 1);
        desc_at(f, TABLE, 1, bad[i].addr, bad[i].len, F_WRITE, 0);
        desc(f, 0, TABLE, 32, F_INDIRECT, 0);
        post(f, 0);
        expect_einval(f);
    }
    /* The very last byte of each region is fine. */
    start(f, 8, false, true);
    desc(f, 0, R0_SIZE - 1, 1, F_NEXT, 1);
    desc(f, 1, R1_GPA + R1_SIZE - 1, 1, F_WRITE, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_ptr_equal(f->c.buf[1].hva, gp(f, R1_GPA + R1_SIZE - 1, 1));
}

static void test_malformed_indirect(void **state)
{
    struct fx *f = *state;

    start(f, 8, false, false); /* INDIRECT without the feature */
    desc_at(f, TABLE, 0, DATA, 4, 0, 0);
    desc(f, 0, TABLE, 16, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* nested: a table entry points to a table */
    desc_at(f, TABLE + 0x100, 0, DATA, 4, 0, 0);
    desc_at(f, TABLE, 0, DATA, 4, F_NEXT, 1);
    desc_at(f, TABLE, 1, TABLE + 0x100, 16, F_INDIRECT, 0);
    desc(f, 0, TABLE, 32, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* a table pointing to itself */
    desc_at(f, TABLE, 0, TABLE, 16, F_INDIRECT, 0);
    desc(f, 0, TABLE, 16, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* INDIRECT and NEXT together */
    desc_at(f, TABLE, 0, DATA, 4, 0, 0);
    desc(f, 0, TABLE, 16, F_INDIRECT | F_NEXT, 1);
    desc(f, 1, DATA, 4, 0, 0);
    post(f, 0);
    expect_einval(f);

    static const uint32_t bad_len[] = {
        0, 1, 8, 24, 0x7fff, 16 * (VIRTQ_MAX_SIZE + 1), 0xfffffff0u, 0xffffffffu};
    for (unsigned i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
        start(f, 8, false, true);
        desc(f, 0, TABLE, bad_len[i], F_INDIRECT, 0);
        post(f, 0);
        expect_einval(f);
    }

    static const uint64_t bad_addr[] = {
        R0_SIZE - 16,          /* 2 entries straddling the end of region 0 */
        R0_SIZE,               /* the hole */
        R1_GPA + R1_SIZE - 16, /* end of RAM */
        UINT64_MAX - 15,       /* wraps */
        0x100000000ull,
    };
    for (unsigned i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); i++) {
        start(f, 8, false, true);
        desc(f, 0, bad_addr[i], 32, F_INDIRECT, 0);
        post(f, 0);
        expect_einval(f);
    }

    start(f, 8, false, true); /* loop inside the table: 0 -> 1 -> 0 */
    desc_at(f, TABLE, 0, DATA, 4, F_NEXT, 1);
    desc_at(f, TABLE, 1, DATA + 4, 4, F_NEXT, 0);
    desc(f, 0, TABLE, 32, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* self loop at the end of a big table */
    for (unsigned i = 0; i < 64; i++)
        desc_at(f, TABLE, i, DATA, 1, F_NEXT, (uint16_t)(i + 1));
    desc_at(f, TABLE, 63, DATA, 1, F_NEXT, 63);
    desc(f, 0, TABLE, 64 * 16, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* next beyond the table (len/16 entries) */
    desc_at(f, TABLE, 0, DATA, 4, F_NEXT, 2);
    desc_at(f, TABLE, 2, DATA, 4, 0, 0); /* in RAM, but not in the table */
    desc(f, 0, TABLE, 32, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* readable after writable inside a table */
    desc_at(f, TABLE, 0, DATA, 4, F_WRITE | F_NEXT, 1);
    desc_at(f, TABLE, 1, DATA + 4, 4, 0, 0);
    desc(f, 0, TABLE, 32, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    start(f, 8, false, true); /* readable in a table after writable direct */
    desc_at(f, TABLE, 0, DATA + 4, 4, 0, 0);
    desc(f, 0, DATA, 4, F_WRITE | F_NEXT, 1);
    desc(f, 1, TABLE, 16, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);

    /* More buffers than a chain may hold: 7 direct + a full table. */
    start(f, 8, false, true);
    for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
        desc_at(f, TABLE, i, DATA + i, 1, i + 1 < VIRTQ_MAX_SIZE ? F_NEXT : 0, (uint16_t)(i + 1));
    for (unsigned i = 0; i < 7; i++)
        desc(f, i, DATA, 1, F_NEXT, (uint16_t)(i + 1));
    desc(f, 7, TABLE, 16 * VIRTQ_MAX_SIZE, F_INDIRECT, 0);
    post(f, 0);
    expect_einval(f);
}

static void test_enable_refuses(void **state)
{
    struct fx *f = *state;
    static const uint16_t bad_size[] = {0, 3, 6, 12, 255, 257, 512, 0x8000, 0xffff};
    for (unsigned i = 0; i < sizeof(bad_size) / sizeof(bad_size[0]); i++) {
        virtq_init(&f->q, &f->m, 256);
        f->q.size = bad_size[i];
        f->q.desc_gpa = DESC;
        f->q.avail_gpa = AVAIL;
        f->q.used_gpa = USED;
        assert_false(virtq_enable(&f->q, true, true));
        assert_false(f->q.ready);
        assert_int_equal(virtq_pop(&f->q, &f->c), 0); /* not ready: nothing */
        assert_false(virtq_should_notify(&f->q));
        assert_false(virtq_enable_notify(&f->q));
    }
    static const uint16_t good_size[] = {1, 2, 128, 256};
    for (unsigned i = 0; i < sizeof(good_size) / sizeof(good_size[0]); i++) {
        virtq_init(&f->q, &f->m, 256);
        f->q.size = good_size[i];
        f->q.desc_gpa = DESC;
        f->q.avail_gpa = AVAIL;
        f->q.used_gpa = USED;
        assert_true(virtq_enable(&f->q, false, false));
    }

    /* Size 8: desc 128 bytes (align 16), avail 22 (align 2), used 70 (align 4). */
    static const struct {
        uint64_t desc, avail, used;
    } bad[] = {
        {DESC + 8, AVAIL, USED},              /* misaligned descriptor table */
        {DESC, AVAIL + 1, USED},              /* misaligned available ring */
        {DESC, AVAIL, USED + 2},              /* misaligned used ring */
        {R0_SIZE - 64, AVAIL, USED},          /* table straddles into the hole */
        {R0_SIZE, AVAIL, USED},               /* table in the hole */
        {DESC, R1_GPA + R1_SIZE - 20, USED},  /* avail (with used_event) past RAM */
        {DESC, AVAIL, R1_GPA + R1_SIZE - 68}, /* used (with avail_event) past RAM */
        {DESC, AVAIL, UINT64_MAX - 3},        /* wraps */
        {UINT64_MAX & ~15ull, AVAIL, USED},
        {0x100000000ull, AVAIL, USED},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        virtq_init(&f->q, &f->m, 256);
        f->q.size = 8;
        f->q.desc_gpa = bad[i].desc;
        f->q.avail_gpa = bad[i].avail;
        f->q.used_gpa = bad[i].used;
        assert_false(virtq_enable(&f->q, true, true));
        assert_false(f->q.ready);
    }
    /* Rings that end at the end of a region are fine. */
    virtq_init(&f->q, &f->m, 256);
    f->q.size = 8;
    f->q.desc_gpa = R0_SIZE - 128;
    f->q.avail_gpa = R1_GPA + R1_SIZE - 22;
    f->q.used_gpa = R1_GPA + R1_SIZE - 96; /* 70 bytes, 4-aligned, below avail */
    assert_true(virtq_enable(&f->q, true, true));

    /* A queue smaller than the maximum of 256 refuses more than its own. */
    virtq_init(&f->q, &f->m, 16);
    f->q.size = 32;
    f->q.desc_gpa = DESC;
    f->q.avail_gpa = AVAIL;
    f->q.used_gpa = USED;
    assert_false(virtq_enable(&f->q, false, false));
}

static void test_reenable_restarts(void **state)
{
    struct fx *f = *state;
    start(f, 8, false, false);
    desc(f, 0, DATA, 4, F_WRITE, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    virtq_push(&f->q, 0, 4);
    /* Disabled (QueueReady = 0) and enabled again: indices start from 0
     * on both rings (2.7.13). */
    f->q.ready = false;
    assert_true(virtq_enable(&f->q, false, false));
    assert_int_equal(f->q.last_avail, 0);
    assert_int_equal(f->q.used_idx, 0);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    virtq_reset(&f->q);
    assert_false(f->q.ready);
    assert_int_equal(f->q.size, 0);
    assert_int_equal(f->q.desc_gpa, 0);
    assert_int_equal(f->q.max_size, 256);
    assert_int_equal(virtq_pop(&f->q, &f->c), 0);
    assert_false(virtq_should_notify(&f->q));
}

/* used_event / avail_event suppression (2.7.7.2, 2.7.10). */
static void test_event_idx(void **state)
{
    struct fx *f = *state;
    const uint64_t used_event = AVAIL + 4 + 2 * 8;
    const uint64_t avail_event = USED + 4 + 8 * 8;
    start(f, 8, true, false);

    /* The first check after enable always interrupts. */
    virtq_push(&f->q, 0, 0);
    put16(f, used_event, 0x1234);
    assert_true(virtq_should_notify(&f->q));
    /* used_event = 1: the driver wants to hear when used idx passes 1. */
    put16(f, used_event, 1);
    virtq_push(&f->q, 0, 0); /* used idx 2 */
    assert_true(virtq_should_notify(&f->q));
    /* Nothing new since: no interrupt whatever used_event says. */
    assert_false(virtq_should_notify(&f->q));
    put16(f, used_event, 5);
    virtq_push(&f->q, 0, 0); /* 3 */
    assert_false(virtq_should_notify(&f->q));
    virtq_push(&f->q, 0, 0);                  /* 4 */
    virtq_push(&f->q, 0, 0);                  /* 5 */
    assert_false(virtq_should_notify(&f->q)); /* not past 5 yet */
    virtq_push(&f->q, 0, 0);                  /* 6 */
    virtq_push(&f->q, 0, 0);                  /* 7: several pushes crossing used_event */
    assert_true(virtq_should_notify(&f->q));
    /* The NO_INTERRUPT flag means nothing with EVENT_IDX. */
    put16(f, AVAIL, 1);
    put16(f, used_event, 7);
    virtq_push(&f->q, 0, 0); /* 8 */
    assert_true(virtq_should_notify(&f->q));
    put16(f, AVAIL, 0);

    /* Wrap the u16 used index: push until used idx is 0xfffe. */
    while (f->q.used_idx != 0xfffe)
        virtq_push(&f->q, 0, 0);
    put16(f, used_event, 0xfffd);
    assert_true(virtq_should_notify(&f->q)); /* old = 0xfffe */
    assert_int_equal(get16(f, USED + 2), 0xfffe);
    static const struct {
        uint16_t event;
        bool notify;
    } cases[] = {
        /* new = 1, old = 0xfffe: notify iff used_event in [0xfffe, 0]. */
        {0xfffd, false}, {0xfffe, true}, {0xffff, true},  {0, true},
        {1, false},      {2, false},     {0x8000, false},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Same step each time: back to 0xfffe, then three pushes to 1. */
        f->q.used_idx = 0xfffe;
        f->q.signalled_used = 0xfffe;
        f->q.signalled_valid = true;
        put16(f, used_event, cases[i].event);
        for (unsigned k = 0; k < 3; k++)
            virtq_push(&f->q, 0, 0);
        assert_int_equal(get16(f, USED + 2), 1);
        assert_int_equal(virtq_should_notify(&f->q), cases[i].notify);
    }

    /* avail_event: "notify me when you make entry last_avail available". */
    start(f, 8, true, false);
    put16(f, avail_event, 0xbeef);
    assert_false(virtq_enable_notify(&f->q)); /* empty */
    assert_int_equal(get16(f, avail_event), 0);
    desc(f, 0, DATA, 4, F_WRITE, 0);
    post(f, 0);
    post(f, 0);
    assert_true(virtq_enable_notify(&f->q)); /* buffers are there: pop again */
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_true(virtq_enable_notify(&f->q));
    assert_int_equal(get16(f, avail_event), 1);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_false(virtq_enable_notify(&f->q));
    assert_int_equal(get16(f, avail_event), 2);

    /* Without EVENT_IDX avail_event is left alone. */
    start(f, 8, false, false);
    put16(f, avail_event, 0xbeef);
    assert_false(virtq_enable_notify(&f->q));
    assert_int_equal(get16(f, avail_event), 0xbeef);
}

static void test_no_interrupt_flag(void **state)
{
    struct fx *f = *state;
    start(f, 8, false, false);
    virtq_push(&f->q, 0, 0);
    assert_true(virtq_should_notify(&f->q));
    put16(f, AVAIL, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    virtq_push(&f->q, 0, 0);
    assert_false(virtq_should_notify(&f->q));
    put16(f, AVAIL + 4 + 2 * 8, 1); /* used_event: ignored without EVENT_IDX */
    assert_false(virtq_should_notify(&f->q));
    put16(f, AVAIL, 0);
    assert_true(virtq_should_notify(&f->q));
}

static void test_chain_copy(void **state)
{
    struct fx *f = *state;
    start(f, 8, false, true);
    /* Readable 3 + 5 + 7 bytes (the middle one in region 1), writable 4 + 4 + 8. */
    memcpy(gp(f, DATA, 3), "abc", 3);
    memcpy(gp(f, R1_GPA + 0x10, 5), "defgh", 5);
    memcpy(gp(f, DATA + 0x100, 7), "ijklmno", 7);
    desc_at(f, TABLE, 0, DATA, 3, F_NEXT, 1);
    desc_at(f, TABLE, 1, R1_GPA + 0x10, 5, F_NEXT, 2);
    desc_at(f, TABLE, 2, DATA + 0x100, 7, F_NEXT, 3);
    desc_at(f, TABLE, 3, DATA + 0x200, 4, F_WRITE | F_NEXT, 4);
    desc_at(f, TABLE, 4, R1_GPA + 0x200, 4, F_WRITE | F_NEXT, 5);
    desc_at(f, TABLE, 5, DATA + 0x300, 8, F_WRITE, 0);
    desc(f, 0, TABLE, 6 * 16, F_INDIRECT, 0);
    post(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->c), 1);
    assert_int_equal(f->c.read_len, 15);
    assert_int_equal(f->c.write_len, 16);

    char buf[32];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(virtq_chain_read(&f->c, 0, buf, sizeof(buf)), 15);
    assert_string_equal(buf, "abcdefghijklmno");
    memset(buf, 0, sizeof(buf));
    assert_int_equal(virtq_chain_read(&f->c, 2, buf, 8), 8); /* across 3 buffers */
    assert_string_equal(buf, "cdefghij");
    memset(buf, 0, sizeof(buf));
    assert_int_equal(virtq_chain_read(&f->c, 3, buf, 5), 5); /* exactly buffer 2 */
    assert_string_equal(buf, "defgh");
    memset(buf, 0, sizeof(buf));
    assert_int_equal(virtq_chain_read(&f->c, 14, buf, 10), 1);
    assert_string_equal(buf, "o");
    assert_int_equal(virtq_chain_read(&f->c, 15, buf, 10), 0);
    assert_int_equal(virtq_chain_read(&f->c, UINT64_MAX, buf, 10), 0);
    assert_int_equal(virtq_chain_read(&f->c, 0, buf, 0), 0);

    /* Writes land in the writable part only, across buffers. */
    assert_int_equal(virtq_chain_write(&f->c, 2, "0123456789", 10), 10);
    assert_memory_equal(gp(f, DATA + 0x200, 4),
                        "\0\0"
                        "01",
                        4);
    assert_memory_equal(gp(f, R1_GPA + 0x200, 4), "2345", 4);
    assert_memory_equal(gp(f, DATA + 0x300, 8), "6789\0\0\0\0", 8);
    assert_memory_equal(gp(f, DATA, 3), "abc", 3);                    /* readable part untouched */
    assert_int_equal(virtq_chain_write(&f->c, 12, "ABCDEFGH", 8), 4); /* truncated */
    assert_memory_equal(gp(f, DATA + 0x300, 8), "6789ABCD", 8);
    assert_int_equal(virtq_chain_write(&f->c, 16, "x", 1), 0);
    assert_int_equal(virtq_chain_write(&f->c, UINT64_MAX, "x", 1), 0);
    assert_int_equal(get16(f, DATA + 0x300 + 8), 0); /* nothing past the buffer */
}

/* --- virtio_queue_serve() with a recording transport --------------------- */

static struct {
    unsigned interrupts[4]; /* by reason bit */
    unsigned requeues;
    unsigned requeue_q;
    unsigned calls;
    long ret[16]; /* the handler's answers, one per call; 0 after */
    struct fx *f;
    int post_during; /* chain the handler makes available on its first call */
} rec;

static void rec_interrupt(struct virtio_device *d, uint32_t reason)
{
    (void)d;
    assert_true(reason == VIRTIO_INT_USED || reason == VIRTIO_INT_CONFIG);
    rec.interrupts[reason]++;
}

static void rec_requeue(struct virtio_device *d, unsigned q)
{
    (void)d;
    rec.requeues++;
    rec.requeue_q = q;
}

static const struct virtio_transport_ops rec_transport = {.interrupt = rec_interrupt,
                                                          .requeue = rec_requeue};

static const struct virtio_dev_ops test_dev_ops = {
    .name = "test-dev",
    .device_id = 0x1234,
    .num_queues = 2,
    .queue_max_size = 8,
};

static long handler(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    (void)d;
    assert_int_equal(q, 1);
    unsigned call = rec.calls++;
    if (call == 0 && rec.post_during >= 0) {
        post(rec.f, (uint16_t)rec.post_during); /* arrives while we work */
        rec.post_during = -1;
    }
    long r = call < 16 ? rec.ret[call] : 0;
    if (r >= 0)
        assert_int_equal(virtq_chain_write(c, 0, "xxxx", 4), 4);
    return r;
}

/* A device with queue 1 enabled over the fixture's rings. */
static void serve_start(struct fx *f, struct virtio_device *d, bool event_idx)
{
    static bool used;
    if (used)
        virtio_device_release(d);
    used = true;
    start(f, 8, false, false); /* clears RAM; the device's queue is set up below */
    virtio_device_init(d, &test_dev_ops, &f->m, 0);
    d->transport = &rec_transport;
    d->guest_features =
        VIRTIO_BIT(VIRTIO_F_VERSION_1) | (event_idx ? VIRTIO_BIT(VIRTIO_F_EVENT_IDX) : 0);
    virtio_set_status(d,
                      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_true(d->status & VIRTIO_STATUS_FEATURES_OK);
    struct virtq *q = &d->vq[1];
    q->size = 8;
    q->desc_gpa = DESC;
    q->avail_gpa = AVAIL;
    q->used_gpa = USED;
    assert_true(virtio_queue_enable(d, 1));
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    assert_true(virtio_device_live(d));
    f->q.size = 8; /* post() uses the fixture queue's size */
    for (unsigned i = 0; i < 8; i++)
        desc(f, i, DATA + 0x10 * i, 16, F_WRITE, 0);
    memset(&rec, 0, sizeof(rec));
    rec.f = f;
    rec.post_during = -1;
}

static void test_serve(void **state)
{
    struct fx *f = *state;
    struct virtio_device d;
    struct virtq *q = &d.vq[1];

    /* Three chains, budget 10: all served, one interrupt, no requeue. */
    serve_start(f, &d, false);
    post(f, 0);
    post(f, 1);
    post(f, 2);
    rec.ret[0] = 4;
    rec.ret[1] = 4;
    rec.ret[2] = 4;
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 10, handler), 3);
    assert_int_equal(get16(f, USED + 2), 3);
    assert_int_equal(get32(f, USED + 4 + 8 * 2), 2);
    assert_int_equal(get32(f, USED + 4 + 8 * 2 + 4), 4);
    assert_int_equal(rec.interrupts[VIRTIO_INT_USED], 1);
    assert_int_equal(rec.requeues, 0);
    assert_memory_equal(gp(f, DATA + 0x10, 4), "xxxx", 4);

    /* Budget 2 of 5: two served, the rest rescheduled through the transport. */
    serve_start(f, &d, false);
    for (uint16_t i = 0; i < 5; i++)
        post(f, i);
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 2, handler), 2);
    assert_int_equal(rec.requeues, 1);
    assert_int_equal(rec.requeue_q, 1);
    assert_int_equal(rec.interrupts[VIRTIO_INT_USED], 1);
    assert_int_equal(get16(f, USED + 2), 2);
    assert_int_equal(q->last_avail, 2);
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 2, handler), 2);
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 2, handler), 1);
    assert_int_equal(get16(f, USED + 2), 5);
    assert_int_equal(rec.requeues, 2); /* the last call finished within budget */

    /* VIRTIO_STOP: the chain stays available, nothing pushed or signalled. */
    serve_start(f, &d, false);
    post(f, 3);
    post(f, 4);
    rec.ret[0] = VIRTIO_STOP;
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 10, handler), 0);
    assert_int_equal(q->last_avail, 0);
    assert_int_equal(get16(f, USED + 2), 0);
    assert_int_equal(rec.interrupts[VIRTIO_INT_USED], 0);
    assert_int_equal(rec.requeues, 0);
    /* Retried later, it is the same chain. */
    rec.ret[1] = 7;
    rec.ret[2] = VIRTIO_STOP;
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 10, handler), 1);
    assert_int_equal(get32(f, USED + 4), 3);
    assert_int_equal(get32(f, USED + 8), 7);
    assert_int_equal(q->last_avail, 1);
    assert_int_equal(rec.interrupts[VIRTIO_INT_USED], 1);

    /* VIRTIO_DEFER: consumed and counted, pushed later by the device. */
    serve_start(f, &d, false);
    post(f, 6);
    rec.ret[0] = VIRTIO_DEFER;
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 10, handler), 1);
    assert_int_equal(q->last_avail, 1);
    assert_int_equal(get16(f, USED + 2), 0);
    assert_int_equal(rec.interrupts[VIRTIO_INT_USED], 0);
    virtq_push(q, 6, 16); /* the I/O completed */
    virtio_notify_used(&d, 1);
    assert_int_equal(get16(f, USED + 2), 1);
    assert_int_equal(get32(f, USED + 4), 6);
    assert_int_equal(rec.interrupts[VIRTIO_INT_USED], 1);

    /* A chain made available while the handler runs is served too. */
    serve_start(f, &d, true);
    post(f, 0);
    rec.post_during = 1;
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 10, handler), 2);
    assert_int_equal(get16(f, USED + 2), 2);
    assert_int_equal(get16(f, USED + 4 + 8 * 8), 2); /* avail_event re-armed */
    assert_int_equal(rec.interrupts[VIRTIO_INT_USED], 1);

    /* Budget 0 serves nothing and reschedules. */
    serve_start(f, &d, false);
    post(f, 0);
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 0, handler), 0);
    assert_int_equal(rec.requeues, 1);
    assert_int_equal(rec.calls, 0);

    /* A malformed chain: NEEDS_RESET, a configuration interrupt, no more work. */
    serve_start(f, &d, false);
    uint32_t gen = d.config_generation;
    post(f, 0);
    desc(f, 1, DATA, 4, F_NEXT, 1); /* self loop */
    post(f, 1);
    post(f, 2);
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 10, handler), 1);
    assert_true(d.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_false(virtio_device_live(&d));
    assert_int_equal(rec.interrupts[VIRTIO_INT_CONFIG], 1);
    assert_int_equal(d.config_generation, gen + 1);
    assert_int_equal(q->last_avail, 1);
    /* Set once: a second malformed serve does not interrupt again. */
    assert_int_equal(virtio_queue_serve(&d, 1, &f->c, 10, handler), 0);
    assert_int_equal(rec.interrupts[VIRTIO_INT_CONFIG], 1);
    /* The driver cannot clear NEEDS_RESET except by resetting. */
    virtio_set_status(&d, VIRTIO_STATUS_ACKNOWLEDGE);
    assert_true(d.status & VIRTIO_STATUS_NEEDS_RESET);
    virtio_set_status(&d, 0);
    assert_int_equal(d.status, 0);
    assert_false(q->ready);
    virtio_device_release(&d);
}

int main(void)
{
    RUN(cmocka_unit_test_setup_teardown(test_normal_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_buffers_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_avail_idx_jump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reenable_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve, setup, teardown));
}
