/* vdev_harness.h - the guest driver's side of the virtio device tests
 * (test_blk, test_net, test_balloon, test_vsock): fake guest RAM, a fake
 * transport, a real event loop run for a bounded time, and split rings laid
 * out by hand.
 *
 * The harness knows nothing about any device: each test creates its device,
 * hands it to vh_attach(), and keeps what the device's protocol needs
 * (request formats, receive-buffer bookkeeping, back ends) to itself. */
#ifndef ARCVM_VDEV_HARNESS_H
#define ARCVM_VDEV_HARNESS_H

#include "unit.h"

#include "virtio/virtio.h"
#include "base/evloop.h"
#include "base/guest_mem.h"

#include <stdatomic.h>
#include <stdbool.h>

#define VH_WAIT_MS 5000 /* anything slower is a failure */

/* Descriptor flags (2.7.5), spelt out here rather than taken from the
 * device's sources: the tests check the device against the spec. */
#define DESC_F_NEXT     1
#define DESC_F_WRITE    2
#define DESC_F_INDIRECT 4

/* The driver's view of one split virtqueue. */
struct vh_queue {
    uint64_t desc, avail, used; /* where its three parts are in guest RAM */
    uint16_t size;
    uint16_t avail_idx; /* the driver's avail index, as last published */
    uint16_t next_desc; /* where vh_post() puts its next chain */
};

/* One buffer of a chain: @write if the device writes into it. */
struct vh_seg {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

typedef bool (*vh_until_fn)(void *arg);

struct vdev_harness {
    struct guest_mem mem;
    struct evloop loop;
    struct virtio_device *dev;       /* the device under test, once attached */
    unsigned used_irqs, config_irqs; /* interrupts the device raised */
    struct vh_queue q[VIRTIO_MAX_QUEUES];
    unsigned nq;             /* queues laid out by vh_rings() */
    uint64_t heap, heap_end; /* vh_alloc()'s next address and its bound */

    /* Private to vdev_harness.c. */
    int requeue_fd, tick_fd;
    _Atomic unsigned requeued; /* queues asked to be served again, a bitmask */
    unsigned ticks, limit;
    vh_until_fn until;
    void *arg;
    unsigned want_q; /* for vh_run_used() */
    uint16_t want;
};

/* ---- set-up -------------------------------------------------------------- */

/* Guest RAM of @n regions, an event loop with the transport's requeue
 * eventfd and a 1 ms tick on it. */
void vh_init(struct vdev_harness *h, const struct guest_mem_region *ram, unsigned n);
/* Release the device (if any), the loop and guest RAM. */
void vh_release(struct vdev_harness *h);
/* Lay out @nq queues of @size entries, queue q's rings at @base + q * @stride
 * in the legacy arrangement (2.7.2): descriptor table, avail ring right
 * behind it, used ring on the next 4 KiB boundary. */
void vh_rings(struct vdev_harness *h, unsigned nq, uint16_t size, uint64_t base, uint64_t stride);
/* vh_alloc() hands out [@start, @end). */
void vh_heap(struct vdev_harness *h, uint64_t start, uint64_t end);

/* Take @dev as the device under test, on the fake transport. */
void vh_attach(struct vdev_harness *h, struct virtio_device *dev);
/* Release the device under test, if any. */
void vh_drop_dev(struct vdev_harness *h);

/* ---- the driver's initialisation (3.1.1) ---------------------------------- */

/* Reset, ACKNOWLEDGE, DRIVER, accept what the device offers of @want (and
 * VERSION_1), FEATURES_OK, then fresh zeroed rings for every laid-out queue
 * and enable those in @qmask. false if the device refused the features. */
bool vh_negotiate(struct vdev_harness *h, uint64_t want, unsigned qmask);
/* DRIVER_OK; the device must then be live. */
void vh_driver_ok(struct vdev_harness *h);
/* Both: the whole initialisation; false as vh_negotiate(). */
bool vh_driver_init(struct vdev_harness *h, uint64_t want, unsigned qmask);

/* ---- guest memory -------------------------------------------------------- */

/* Where guest address @gpa is mapped; fails the test if it is not RAM. */
uint8_t *vh_ptr(struct vdev_harness *h, uint64_t gpa);
/* @len bytes from the heap, 64-byte aligned. */
uint64_t vh_alloc(struct vdev_harness *h, uint64_t len);

/* ---- rings --------------------------------------------------------------- */

/* Write descriptor @i of the table at @table (a queue's or an indirect one). */
void vh_put_desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next);
/* The same in queue @q's own descriptor table. */
void vh_set_desc(struct vdev_harness *h, unsigned q, unsigned i, uint64_t addr, uint32_t len,
                 uint16_t flags, uint16_t next);
/* Make the chain at @head available on queue @q. */
void vh_publish(struct vdev_harness *h, unsigned q, uint16_t head);
/* Put a chain of @n segments in consecutive descriptors of queue @q and make
 * it available; returns its head. */
uint16_t vh_post(struct vdev_harness *h, unsigned q, const struct vh_seg *s, unsigned n);
/* Make the @n-entry indirect table the driver wrote at @table available on
 * queue @q, through one descriptor; returns its head. */
uint16_t vh_post_table(struct vdev_harness *h, unsigned q, uint64_t table, unsigned n);
/* Write @n segments as an indirect table at @table and post it so. */
uint16_t vh_post_indirect(struct vdev_harness *h, unsigned q, uint64_t table,
                          const struct vh_seg *s, unsigned n);
/* What the transport does on a queue notification: serve queue @q if the
 * device is live and the queue enabled. */
void vh_kick(struct vdev_harness *h, unsigned q);
/* The used ring of queue @q: its index, and entry @i. */
uint16_t vh_used_idx(struct vdev_harness *h, unsigned q);
void vh_used_elem(struct vdev_harness *h, unsigned q, uint16_t i, uint32_t *id, uint32_t *len);

/* ---- the event loop ------------------------------------------------------ */

/* Run the loop until @until(@arg) says so (checked every millisecond) or @ms
 * passed; returns @until's verdict (false without one). */
bool vh_run_until(struct vdev_harness *h, vh_until_fn until, void *arg, unsigned ms);
/* Run the loop for @ms milliseconds whatever happens. */
void vh_run_for(struct vdev_harness *h, unsigned ms);
/* Run until queue @q's used index has reached @target (or gone past it,
 * counting modulo 2^16), at most @ms; whether it did. */
bool vh_run_used(struct vdev_harness *h, unsigned q, uint16_t target, unsigned ms);
/* The same within VH_WAIT_MS; the index must then be @target exactly. */
void vh_wait_used(struct vdev_harness *h, unsigned q, uint16_t target);

#endif
