/* virtio.c - device status, feature negotiation, queue enable and
 * interrupts common to every virtio device; see virtio.h. */
#include "virtio/virtio.h"

#include "base/log.h"

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
                /* Buffers posted (and kicks ignored) before DRIVER_OK. */
                for (unsigned q = 0; q < d->ops->num_queues; q++)
                    if (d->vq[q].ready)
                        d->ops->queue_notify(d, q);
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
