/* queue.h - split virtqueues (virtio 1.2, 2.7) with a hostile driver.
 *
 * The one descriptor-chain walker every device uses. Every value read from
 * guest memory is read once into a local before it is checked and used:
 * indices are bounded by the queue size, chains by the queue size, indirect
 * tables by their length / 16 and never nested, and every buffer must lie
 * entirely in guest RAM (guest_mem_ptr()), so that a device only ever gets
 * host pointers inside the guest's mapping. A malformed chain is reported,
 * never followed.
 */
#ifndef ARCVM_VIRTQ_H
#define ARCVM_VIRTQ_H

#include "base/guest_mem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTQ_MAX_SIZE 1024 /* largest queue arcvm offers; chains are bounded by it */

/* One guest buffer of a chain, already checked: @hva points to @len bytes of
 * guest RAM. */
struct virtq_buf {
    uint8_t *hva;
    uint32_t len;
};

struct virtq_chain {
    uint16_t head;          /* id to give back in virtq_push() */
    unsigned nread, nwrite; /* device-readable buffers first, then writable */
    uint64_t read_len, write_len;
    struct virtq_buf buf[VIRTQ_MAX_SIZE]; /* [0, nread) readable, then writable */
};

struct virtq {
    /* Driver-set configuration (transport registers). */
    uint16_t size;          /* QueueNum; 0 until set */
    uint16_t max_size;
    bool ready;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Negotiated features that change ring behaviour. */
    bool event_idx, indirect;
    /* Device state: plain data. */
    uint16_t last_avail;    /* next available entry to take */
    uint16_t used_idx;      /* next used entry to fill (shadow of used->idx) */
    uint16_t signalled_used;
    bool signalled_valid;
    /* Host views of the rings, valid while ready. */
    const struct guest_mem *mem;
    uint8_t *desc, *avail, *used;
};

/* Set up an idle queue of at most @max_size entries. */
void virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size);
/* Back to the power-on state (not ready, no addresses). */
void virtq_reset(struct virtq *q);
/* Check size and ring addresses and map the rings; false if invalid. */
bool virtq_enable(struct virtq *q, bool event_idx, bool indirect);

/* Take the next available chain. Returns 1 with @c filled, 0 when the queue
 * is empty, or -EINVAL when the driver put a malformed chain or index there
 * (the caller then sets NEEDS_RESET). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);
/* Put the chain just popped back: the next pop returns it again. */
void virtq_unpop(struct virtq *q);
/* Return a chain to the driver with @written bytes written into it. Does
 * nothing on a queue that is not ready. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);
/* After pushes: does the driver want an interrupt now? Updates the state
 * EVENT_IDX suppression needs. */
bool virtq_should_notify(struct virtq *q);
/* Ask the driver to notify us for the next buffer (EVENT_IDX: avail_event =
 * last_avail). Returns true if buffers arrived meanwhile (pop again). */
bool virtq_enable_notify(struct virtq *q);
/* Ask the driver not to notify us: a device with work in flight looks at
 * the ring again on each completion, and re-enables before it goes idle. */
void virtq_disable_notify(struct virtq *q);

/* Copy helpers across a chain's buffers. */
/* Copy up to @len readable bytes starting at byte @off of the readable part. */
size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, size_t len);
/* Copy @len bytes into the writable part at byte @off; returns bytes copied. */
size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, size_t len);

/* Ring sizes in bytes for a queue of @n entries (virtio 1.2, 2.7). */
static inline uint64_t virtq_desc_bytes(uint16_t n)
{
    return 16ull * n;
}
static inline uint64_t virtq_avail_bytes(uint16_t n)
{
    return 6ull + 2ull * n;
}
static inline uint64_t virtq_used_bytes(uint16_t n)
{
    return 6ull + 8ull * n;
}

#endif
