/* virtio.h - virtio 1.2 device model shared by every device and transport.
 *
 * A device (blk.c, net.c, ...) embeds a struct virtio_device and provides a
 * const struct virtio_dev_ops. A transport (virtio_mmio.c today; PCI could
 * follow) owns the register interface and tells the device about feature
 * negotiation, queue setup, status changes and queue notifications. Devices
 * reach guest memory only through the checked accessor (queue.c does it for
 * them) and raise interrupts only through virtio_notify_*().
 *
 * Locking: virtio_device.lock protects the device and its queues. The
 * transport takes it around register accesses (vCPU threads); notification
 * handlers run with it held (event-loop thread); so do snapshot save and
 * load (the thread that controls the VM).
 */
#ifndef ARCVM_VIRTIO_H
#define ARCVM_VIRTIO_H

#include "virtio/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Feature bits (virtio 1.2, 6 "Reserved Feature Bits"). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_BIT(b) (1ull << (b))

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Device IDs (5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_FS 26

#define VIRTIO_MAX_QUEUES 8

/* Interrupt reasons (InterruptStatus bits on virtio-mmio). */
#define VIRTIO_INT_USED 1
#define VIRTIO_INT_CONFIG 2

struct virtio_device;
struct snap_r;
struct snap_w;

/* What a transport does for the device. */
struct virtio_transport_ops {
    /* Raise an interrupt for @reason (VIRTIO_INT_*). */
    void (*interrupt)(struct virtio_device *d, uint32_t reason);
    /* Have queue_notify(@q) called again soon from the event loop (a device
     * that stopped early to let other devices run). */
    void (*requeue)(struct virtio_device *d, unsigned q);
};

struct virtio_dev_ops {
    const char *name;
    uint32_t device_id;
    uint16_t num_queues;      /* queues the device has */
    uint16_t queue_max_size;  /* largest QueueNum, a power of two <= 32768 */
    uint32_t config_size;     /* bytes of device-specific configuration */
    /* Copy config bytes [off, off+len) to @buf; off+len <= config_size. */
    void (*config_read)(struct virtio_device *d, uint32_t off, void *buf, uint32_t len);
    /* Driver writes to config space; NULL: read-only config. */
    void (*config_write)(struct virtio_device *d, uint32_t off, const void *buf, uint32_t len);
    /* Accept the driver's feature set (0) or refuse it (-EINVAL): refusing
     * leaves FEATURES_OK clear. NULL: any subset of the offer is fine. */
    int (*features_ok)(struct virtio_device *d, uint64_t features);
    /* The driver set DRIVER_OK: queues are configured, start work. */
    int (*activate)(struct virtio_device *d);
    /* Status 0 was written (or the VMM resets): drop in-flight work, return
     * to the power-on state. Queues are reset by the core afterwards. */
    void (*reset)(struct virtio_device *d);
    /* The driver notified queue @q (new available buffers). */
    void (*queue_notify)(struct virtio_device *d, unsigned q);
    /* Free device resources (the VM is going away). */
    void (*release)(struct virtio_device *d);

    /* Snapshots (virtio_device_save/_load). All three are optional and run
     * with d->lock held. */
    /* Before saving, with the event loop held and every vCPU out of the
     * guest: finish, or hand back to the ring, whatever the device holds
     * between callbacks (I/O in flight, chains taken but not used), so that
     * guest memory and the state about to be saved agree. The device keeps
     * working afterwards: the VM may resume instead of being restored. */
    void (*quiesce)(struct virtio_device *d);
    /* Write the device's own state as fields, after the common state. */
    void (*save)(struct virtio_device *d, struct snap_w *w);
    /* Read what save wrote, into a device just created from the same
     * configuration, whose common state and queues are already restored
     * (not yet activated). Every value is untrusted: 0, or -EPROTO
     * (malformed) / -EINVAL (does not fit this device's configuration). */
    int (*load)(struct virtio_device *d, struct snap_r *r);
};

/* Counters for metrics; updated under the device lock. "in" is data the
 * guest received from the device (blk reads, rng bytes, console input),
 * "out" data the guest gave it (blk writes, console output). */
struct virtio_stats {
    uint64_t notifications; /* driver kicks handled */
    uint64_t interrupts;    /* interrupts raised */
    uint64_t requests;      /* chains handled */
    uint64_t in_bytes, out_bytes;
    uint64_t errors;        /* failed requests and malformed queues */
};

struct virtio_device {
    const struct virtio_dev_ops *ops;
    const char *id;           /* user-facing name (a disk id), or NULL */
    struct virtio_stats stats;
    const struct virtio_transport_ops *transport;
    void *transport_data;
    const struct guest_mem *mem;
    pthread_mutex_t lock;

    /* Plain data: what a snapshot would save. */
    uint64_t host_features;   /* offered */
    uint64_t guest_features;  /* accepted by the driver */
    uint8_t status;
    uint32_t config_generation;
    struct virtq vq[VIRTIO_MAX_QUEUES];
};

/* Initialise the common part; @host_features gets VERSION_1, EVENT_IDX and
 * INDIRECT_DESC added. */
void virtio_device_init(struct virtio_device *d, const struct virtio_dev_ops *ops,
                        const struct guest_mem *mem, uint64_t host_features);
void virtio_device_release(struct virtio_device *d);

/* Device constructors (virtio_*_create) return NULL with errno set to the
 * cause, as fopen() does, and one sentence in their @err where they take one;
 * this is their one way out. */
static inline struct virtio_device *virtio_fail(int e)
{
    errno = e;
    return NULL;
}

/* Transport helpers, called with d->lock held. */
/* Write the status register: handles reset (0), FEATURES_OK validation and
 * DRIVER_OK activation. */
void virtio_set_status(struct virtio_device *d, uint8_t status);
/* Reset device and queues to the power-on state. */
void virtio_reset(struct virtio_device *d);
/* Enable queue @q after the driver set its size and addresses: validates
 * the rings against guest memory. false: refused (bad size or addresses). */
bool virtio_queue_enable(struct virtio_device *d, unsigned q);

/* Snapshots, with d->lock held (the transport's save/load calls them). */
/* Write the common state: offered and accepted features, status, config
 * generation, every queue's configuration and indices; then ops->save. */
void virtio_device_save(struct virtio_device *d, struct snap_w *w);
/* Read what virtio_device_save() wrote into a device just created from the
 * same configuration and attached to its transport, not yet seen by the
 * guest. Refuses (-EINVAL) a state whose offered features differ from the
 * device's, and (-EPROTO) anything a driver could not have brought about:
 * status bits out of order, features not offered, a ready queue whose size
 * or rings virtq_enable() refuses. Ends with snap_r_done(). On failure the
 * device is fit only for release. Guest memory must already be restored. */
int virtio_device_load(struct virtio_device *d, struct snap_r *r);
/* After a successful load: a live device is activated again (its back end
 * watched) and each ready queue is served once from the event loop, for
 * buffers the driver posted without a kick the device will ever see. 0, or
 * the -errno of an activation that failed. */
int virtio_device_resume(struct virtio_device *d);

/* Device helpers. */
/* Interrupt the driver about used buffers on @q if it wants one (EVENT_IDX
 * or the NO_INTERRUPT flag decide). */
void virtio_notify_used(struct virtio_device *d, unsigned q);
/* The configuration changed: bump the generation and interrupt. */
void virtio_notify_config(struct virtio_device *d);
/* The driver broke the protocol (malformed ring): set DEVICE_NEEDS_RESET,
 * tell the driver, stop processing until it resets the device. */
void virtio_set_needs_reset(struct virtio_device *d, const char *why);
/* Whether the device is live (DRIVER_OK and not NEEDS_RESET). */
bool virtio_device_live(const struct virtio_device *d);
/* What a queue handler returns for a chain: bytes written into it (>= 0,
 * pushed to the used ring at once), VIRTIO_DEFER (the device pushes it
 * later, e.g. when asynchronous I/O completes), or VIRTIO_STOP (leave the
 * chain unconsumed and stop for now, e.g. no host data to give yet). */
#define VIRTIO_DEFER (-1)
#define VIRTIO_STOP (-2)
typedef long (*virtio_chain_fn)(struct virtio_device *d, unsigned q, struct virtq_chain *c);

/* Serve queue @q: pop available chains into @c and hand each to @fn, at most
 * @budget of them; then re-arm notifications and interrupt the driver if it
 * wants one. A malformed chain sets NEEDS_RESET. With budget left over work
 * is rescheduled through the transport, so one busy queue cannot starve the
 * event loop. Returns the number of chains handled. */
unsigned virtio_queue_serve(struct virtio_device *d, unsigned q, struct virtq_chain *c,
                            unsigned budget, virtio_chain_fn fn);

/* Negotiated feature test. */
static inline bool virtio_has(const struct virtio_device *d, unsigned bit)
{
    return d->guest_features & VIRTIO_BIT(bit);
}

#endif
