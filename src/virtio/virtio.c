/* virtio.c - device status, feature negotiation, queue enable and
 * interrupts common to every virtio device, and their snapshot; see
 * virtio.h. */
#include "virtio/virtio.h"

#include "base/log.h"
#include "base/snap.h"

#include <string.h>

/* Features every arcvm device offers; devices add their own. */
#define VIRTIO_COMMON_FEATURES                                                                     \
    (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |                             \
     VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))

void virtio_device_init(struct virtio_device *d, const struct virtio_dev_ops *ops,
                        const struct guest_mem *mem, uint64_t host_features)
{
    memset(d, 0, sizeof(*d));
    d->ops = ops;
    d->mem = mem;
    d->host_features = host_features | VIRTIO_COMMON_FEATURES;
    pthread_mutex_init(&d->lock, NULL);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        virtq_init(&d->vq[i], mem, ops->queue_max_size);
}

void virtio_device_release(struct virtio_device *d)
{
    pthread_mutex_destroy(&d->lock);
}

void virtio_reset(struct virtio_device *d)
{
    if (d->ops->reset)
        d->ops->reset(d);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        virtq_reset(&d->vq[i]);
    d->guest_features = 0;
    d->status = 0;
}

bool virtio_device_live(const struct virtio_device *d)
{
    return (d->status & VIRTIO_STATUS_DRIVER_OK) && !(d->status & VIRTIO_STATUS_NEEDS_RESET);
}

static bool features_acceptable(struct virtio_device *d)
{
    uint64_t f = d->guest_features;
    if (f & ~d->host_features)
        return false; /* the driver accepted something we never offered */
    if (!(f & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
        return false; /* legacy drivers are not supported */
    return !d->ops->features_ok || d->ops->features_ok(d, f) == 0;
}

void virtio_set_status(struct virtio_device *d, uint8_t v)
{
    if (v == 0) {
        virtio_reset(d);
        return;
    }
    uint8_t old = d->status;
    /* The driver may only add bits; NEEDS_RESET is the device's to set. */
    v |= old;
    v = (uint8_t)((v & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
    if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
        !features_acceptable(d)) {
        /* Left clear: the driver reads it back and gives up (3.1.1). */
        v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    }
    if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
        if (!(v & VIRTIO_STATUS_FEATURES_OK)) {
            log_guest("%s: DRIVER_OK without FEATURES_OK", d->ops->name);
            v |= VIRTIO_STATUS_NEEDS_RESET;
        } else {
            d->status = v;
            if (d->ops->activate && d->ops->activate(d) < 0) {
                v |= VIRTIO_STATUS_NEEDS_RESET;
            } else if (d->ops->queue_notify) {
                /* Buffers posted (and kicks ignored) before DRIVER_OK: served
                 * by the event loop, as every kick is, so that device I/O
                 * never runs on a vCPU thread (whose seccomp filter does
                 * not allow it). */
                for (unsigned q = 0; q < d->ops->num_queues; q++)
                    if (d->vq[q].ready)
                        d->transport->requeue(d, q);
            }
            v = d->status | (v & VIRTIO_STATUS_NEEDS_RESET);
        }
    }
    d->status = v;
}

bool virtio_queue_enable(struct virtio_device *d, unsigned q)
{
    if (q >= d->ops->num_queues || !(d->status & VIRTIO_STATUS_FEATURES_OK))
        return false;
    return virtq_enable(&d->vq[q], virtio_has(d, VIRTIO_F_EVENT_IDX),
                        virtio_has(d, VIRTIO_F_INDIRECT_DESC));
}

void virtio_notify_used(struct virtio_device *d, unsigned q)
{
    if (virtq_should_notify(&d->vq[q]))
        d->transport->interrupt(d, VIRTIO_INT_USED);
}

void virtio_notify_config(struct virtio_device *d)
{
    d->config_generation++;
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        d->transport->interrupt(d, VIRTIO_INT_CONFIG);
}

void virtio_set_needs_reset(struct virtio_device *d, const char *why)
{
    if (d->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    log_guest("%s: %s; device needs reset", d->ops->name, why);
    d->stats.errors++;
    d->status |= VIRTIO_STATUS_NEEDS_RESET;
    /* Drivers learn about NEEDS_RESET through a configuration interrupt. */
    d->config_generation++;
    d->transport->interrupt(d, VIRTIO_INT_CONFIG);
}

unsigned virtio_queue_serve(struct virtio_device *d, unsigned qi, struct virtq_chain *c,
                            unsigned budget, virtio_chain_fn fn)
{
    struct virtq *q = &d->vq[qi];
    unsigned served = 0;
    bool pushed = false;
    for (;;) {
        int p = 0;
        while (served < budget && (p = virtq_pop(q, c)) > 0) {
            long r = fn(d, qi, c);
            if (r == VIRTIO_STOP) {
                virtq_unpop(q); /* taken again on the next notification */
                goto out;
            }
            served++;
            d->stats.requests++;
            if (r >= 0) {
                virtq_push(q, c->head, (uint32_t)r);
                pushed = true;
            }
        }
        if (p < 0) {
            /* Chains already completed are still the driver's to see. */
            virtio_set_needs_reset(d, "malformed descriptor chain");
            goto out;
        }
        if (served >= budget) {
            d->transport->requeue(d, qi);
            break;
        }
        if (!virtq_enable_notify(q))
            break;
    }
out:
    if (pushed)
        virtio_notify_used(d, qi);
    return served;
}

/* ---- snapshots ------------------------------------------------------------ */

/* Status bits a driver can set (2.1); the others are reserved. */
#define STATUS_KNOWN                                                                               \
    (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |                  \
     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

/* One queue as saved: the registers, then the device's indices. */
struct vq_state {
    uint16_t size;
    bool ready;
    uint64_t desc, avail, used;
    bool event_idx, indirect;
    uint16_t last_avail, used_idx, signalled_used;
    bool signalled_valid;
};

static void vq_save(const struct virtq *q, struct snap_w *w)
{
    snap_put_u16(w, q->size);
    snap_put_u8(w, q->ready);
    snap_put_u64(w, q->desc_gpa);
    snap_put_u64(w, q->avail_gpa);
    snap_put_u64(w, q->used_gpa);
    snap_put_u8(w, q->event_idx);
    snap_put_u8(w, q->indirect);
    snap_put_u16(w, q->last_avail);
    snap_put_u16(w, q->used_idx);
    snap_put_u16(w, q->signalled_used);
    snap_put_u8(w, q->signalled_valid);
}

static void vq_read(struct snap_r *r, struct vq_state *s)
{
    s->size = snap_get_u16(r);
    s->ready = snap_get_bool(r);
    s->desc = snap_get_u64(r);
    s->avail = snap_get_u64(r);
    s->used = snap_get_u64(r);
    s->event_idx = snap_get_bool(r);
    s->indirect = snap_get_bool(r);
    s->last_avail = snap_get_u16(r);
    s->used_idx = snap_get_u16(r);
    s->signalled_used = snap_get_u16(r);
    s->signalled_valid = snap_get_bool(r);
}

void virtio_device_save(struct virtio_device *d, struct snap_w *w)
{
    snap_put_u64(w, d->host_features);
    snap_put_u64(w, d->guest_features);
    snap_put_u8(w, d->status);
    snap_put_u32(w, d->config_generation);
    snap_put_u16(w, d->ops->num_queues);
    for (unsigned q = 0; q < d->ops->num_queues; q++)
        vq_save(&d->vq[q], w);
    if (d->ops->save)
        d->ops->save(d, w);
}

/* Whether @status is one a driver could have brought about, given the
 * features it accepted (virtio_set_status() is the model). */
static bool status_ok(struct virtio_device *d, uint8_t status)
{
    if (status & ~STATUS_KNOWN)
        return false;
    if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK))
        return false;
    return !(status & VIRTIO_STATUS_FEATURES_OK) || features_acceptable(d);
}

/* Restore queue @qi. Addresses reach the device only through
 * virtio_queue_enable(): size and rings are checked as if the driver had
 * written them. The indices may be any u16: virtq_pop() and virtq_push()
 * check or mask them against the size on every use. */
static int vq_apply(struct virtio_device *d, unsigned qi, const struct vq_state *s)
{
    struct virtq *q = &d->vq[qi];
    /* A queue not ready keeps what the driver wrote so far; enabling it
     * later checks it then, as for any register write. */
    q->size = s->size;
    q->desc_gpa = s->desc;
    q->avail_gpa = s->avail;
    q->used_gpa = s->used;
    if (!s->ready)
        return 0;
    if (!virtio_queue_enable(d, qi)) {
        log_warn("%s: snapshot queue %u: size %u or ring addresses refused", d->ops->name, qi,
                 s->size);
        return -EPROTO;
    }
    /* Ring behaviour follows the features accepted; a state saying
     * otherwise was not written by us. */
    if (q->event_idx != s->event_idx || q->indirect != s->indirect)
        return -EPROTO;
    q->last_avail = s->last_avail;
    q->used_idx = s->used_idx;
    q->signalled_used = s->signalled_used;
    q->signalled_valid = s->signalled_valid;
    return 0;
}

int virtio_device_load(struct virtio_device *d, struct snap_r *r)
{
    uint64_t host = snap_get_u64(r), guest = snap_get_u64(r);
    uint8_t status = snap_get_u8(r);
    uint32_t generation = snap_get_u32(r);
    uint16_t nq = snap_get_u16(r);
    if (r->err || nq != d->ops->num_queues)
        return -EPROTO;
    if (host != d->host_features) {
        log_warn("%s: the snapshot's device offered features 0x%llx, this one 0x%llx; the "
                 "configuration differs",
                 d->ops->name, (unsigned long long)host, (unsigned long long)d->host_features);
        return -EINVAL;
    }
    struct vq_state vs[VIRTIO_MAX_QUEUES];
    for (unsigned q = 0; q < nq; q++)
        vq_read(r, &vs[q]);
    if (r->err)
        return r->err;
    d->guest_features = guest;
    int e = -EPROTO;
    if ((guest & ~host) || !status_ok(d, status))
        goto fail;
    d->status = status;
    d->config_generation = generation;
    for (unsigned q = 0; q < nq; q++)
        if ((e = vq_apply(d, q, &vs[q])) < 0)
            goto fail;
    if (d->ops->load && (e = d->ops->load(d, r)) < 0)
        goto fail;
    if ((e = snap_r_done(r)) < 0)
        goto fail;
    return 0;
fail:
    /* Back to a device no driver has seen, never activated: nothing the
     * event loop may still deliver (a host socket, a requeue) makes it
     * touch a ring before it is released. */
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        virtq_reset(&d->vq[q]);
    d->guest_features = 0;
    d->status = 0;
    return e;
}

int virtio_device_resume(struct virtio_device *d)
{
    if (!virtio_device_live(d))
        return 0;
    if (d->ops->activate) {
        int e = d->ops->activate(d);
        if (e < 0)
            return e;
    }
    for (unsigned q = 0; q < d->ops->num_queues; q++)
        if (d->vq[q].ready)
            d->transport->requeue(d, q);
    return 0;
}
