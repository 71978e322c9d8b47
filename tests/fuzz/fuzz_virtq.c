/* fuzz_virtq.c - libFuzzer target for the split-virtqueue walker.
 *
 * The input is a 16-byte header followed by the contents of guest RAM: the
 * descriptor table, both rings and any indirect tables and buffers live at
 * fixed guest addresses inside it, so every value the device reads from
 * them is fuzzer-controlled. The header picks the queue size, the
 * negotiated features, the starting ring indices (to reach u16 wrap-around
 * without 65536 iterations) and, sometimes, arbitrary ring addresses.
 *
 * Guest RAM is two heap blocks described by a hand-made struct guest_mem,
 * not a memfd: ASan then catches any access queue.c makes outside RAM, and
 * every returned buffer is also checked to lie inside one region.
 *
 * Run: tests/fuzz/run.sh, or build-fuzz/tests/fuzz/fuzz_virtq CORPUS_DIR
 */
#include "virtio/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Guest physical layout: 4 KiB at 0, a hole, 4 KiB at 0x2000. */
#define R0_GPA  0x0ull
#define R0_SIZE 0x1000ull
#define R1_GPA  0x2000ull
#define R1_SIZE 0x1000ull
/* Default ring addresses: queue size <= 64 keeps each in its slot. */
#define DESC_GPA   0x000ull /* 64 * 16 = 1024 bytes */
#define AVAIL_GPA  0x400ull /* 6 + 2 * 64 = 134 bytes */
#define USED_GPA   0x500ull /* 6 + 8 * 64 = 518 bytes; 0x800 up: tables, buffers */
#define MAX_QUEUE  64
#define HDR        16
#define MAX_ROUNDS 64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_virtq: check failed at line %d: %s\n", __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct guest_mem mem;
static struct virtq_chain chain;
static uint8_t scratch[0x4000];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void mem_setup(void)
{
    if (mem.count)
        return;
    mem.fd = -1;
    mem.count = 2;
    mem.r[0] = (struct guest_mem_region){R0_GPA, R0_SIZE, malloc(R0_SIZE)};
    mem.r[1] = (struct guest_mem_region){R1_GPA, R1_SIZE, malloc(R1_SIZE)};
    CHECK(mem.r[0].hva && mem.r[1].hva);
}

/* Whether [p, p+len) lies inside one region. */
static int in_ram(const uint8_t *p, uint64_t len)
{
    for (unsigned i = 0; i < mem.count; i++) {
        const struct guest_mem_region *r = &mem.r[i];
        if (p >= r->hva && p < r->hva + r->size && len <= (uint64_t)(r->hva + r->size - p))
            return 1;
    }
    return 0;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The buffers of @c all lie in guest RAM. Also after a refused pop: the
 * walker may have filled some in (or none: then they are an older chain's). */
static void check_bufs(const struct virtq_chain *c)
{
    CHECK(c->nread + c->nwrite <= VIRTQ_MAX_SIZE);
    for (unsigned i = 0; i < c->nread + c->nwrite; i++)
        CHECK(in_ram(c->buf[i].hva, c->buf[i].len));
}

/* A chain virtq_pop() returned is consistent. */
static void check_chain(const struct virtq *q, const struct virtq_chain *c)
{
    CHECK(c->head < q->size);
    CHECK(c->nread + c->nwrite <= VIRTQ_MAX_SIZE);
    uint64_t rl = 0, wl = 0;
    for (unsigned i = 0; i < c->nread + c->nwrite; i++) {
        CHECK(c->buf[i].len > 0);
        CHECK(in_ram(c->buf[i].hva, c->buf[i].len));
        if (i < c->nread)
            rl += c->buf[i].len;
        else
            wl += c->buf[i].len;
    }
    CHECK(rl == c->read_len && wl == c->write_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR)
        return 0;
    mem_setup();
    /* Guest RAM: the input after the header, zero beyond it. */
    const uint8_t *img = data + HDR;
    size_t n = size - HDR;
    size_t n0 = n < R0_SIZE ? n : R0_SIZE;
    size_t n1 = n - n0 < R1_SIZE ? n - n0 : R1_SIZE;
    memset(mem.r[0].hva, 0, R0_SIZE);
    memset(mem.r[1].hva, 0, R1_SIZE);
    memcpy(mem.r[0].hva, img, n0);
    memcpy(mem.r[1].hva, img + n0, n1);

    /* Header: [0] size, [1] flags, [2..3] start index, [4] rounds,
     * [5] bytes to write per chain, [6..7] read offset, [8..15] with flag
     * 0x04: the descriptor table address (the rings follow at their usual
     * offsets from it). */
    uint8_t szsel = data[0], flags = data[1];
    uint16_t start;
    memcpy(&start, data + 2, 2);
    unsigned rounds = data[4] % (MAX_ROUNDS + 1);
    uint32_t wlen = data[5] * 17u;
    uint16_t roff;
    memcpy(&roff, data + 6, 2);

    struct virtq q;
    virtq_init(&q, &mem, MAX_QUEUE);
    /* Mostly powers of two up to 64; sometimes any 8-bit size. */
    q.size = (szsel & 0x80) ? szsel & 0x7f : (uint16_t)(1u << (szsel % 7));
    q.desc_gpa = DESC_GPA;
    q.avail_gpa = AVAIL_GPA;
    q.used_gpa = USED_GPA;
    if (flags & 0x04) {
        uint64_t base = le64(data + 8);
        q.desc_gpa = base;
        q.avail_gpa = base + (AVAIL_GPA - DESC_GPA);
        q.used_gpa = base + (USED_GPA - DESC_GPA);
    }
    bool event_idx = flags & 0x01, indirect = flags & 0x02;
    if (!virtq_enable(&q, event_idx, indirect)) {
        CHECK(!q.ready);
        CHECK(virtq_pop(&q, &chain) == 0);
        return 0;
    }
    /* What virtq_enable() accepted must be a valid queue in RAM. */
    CHECK(q.size && q.size <= MAX_QUEUE && !(q.size & (q.size - 1)));
    CHECK(in_ram(q.desc, virtq_desc_bytes(q.size)));
    CHECK(in_ram(q.avail, virtq_avail_bytes(q.size)));
    CHECK(in_ram(q.used, virtq_used_bytes(q.size)));
    CHECK(!(q.desc_gpa & 15) && !(q.avail_gpa & 1) && !(q.used_gpa & 3));
    /* As if 'start' chains had already gone round: exercises u16 wrap. */
    q.last_avail = q.used_idx = start;

    for (unsigned i = 0; i < rounds; i++) {
        int r = virtq_pop(&q, &chain);
        CHECK(r == 1 || r == 0 || r == -EINVAL);
        if (r < 0) {
            check_bufs(&chain); /* even a refused chain: nothing outside RAM */
            break;
        }
        if (r == 0) {
            if (!virtq_enable_notify(&q))
                break;
            continue;
        }
        check_chain(&q, &chain);
        if ((flags & 0x08) && (i & 1)) { /* give it back and take it again */
            uint16_t head = chain.head;
            virtq_unpop(&q);
            CHECK(virtq_pop(&q, &chain) == 1 && chain.head == head);
            check_chain(&q, &chain);
        }
        size_t want = chain.read_len < sizeof(scratch) ? chain.read_len : sizeof(scratch);
        size_t got = virtq_chain_read(&chain, roff, scratch, want);
        CHECK(got <= want &&
              (roff >= chain.read_len ||
               got == (chain.read_len - roff < want ? chain.read_len - roff : want)));
        size_t w = wlen < sizeof(scratch) ? wlen : sizeof(scratch);
        size_t put = virtq_chain_write(&chain, 0, scratch, w);
        CHECK(put == (w < chain.write_len ? w : chain.write_len));
        uint16_t before = q.used_idx;
        virtq_push(&q, chain.head, (uint32_t)put);
        CHECK(q.used_idx == (uint16_t)(before + 1));
        uint16_t pub;
        memcpy(&pub, q.used + 2, 2);
        CHECK(pub == q.used_idx);
        (void)virtq_should_notify(&q);
    }
    (void)virtq_should_notify(&q);
    (void)virtq_enable_notify(&q);
    return 0;
}
