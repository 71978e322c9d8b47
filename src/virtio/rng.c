/* rng.c - virtio-rng: one request queue; each chain's writable buffers are
 * filled with bytes from the host's getrandom(). */
#include "virtio/rng.h"

#include "base/ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

/* Bytes given per request at most: a guest posting a huge buffer gets a
 * partial fill (allowed by 5.4.6.1) instead of stalling the event loop. */
#define RNG_MAX_PER_REQUEST (64 * 1024)
/* Requests served per notification before yielding to other devices. */
#define RNG_MAX_BATCH 64

struct rng {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct throttle throttle;  /* a rate limiter, or none */
    struct virtq_chain chain;
};

static size_t fill(const struct virtq_chain *c)
{
    size_t done = 0;
    for (unsigned i = c->nread; i < c->nread + c->nwrite && done < RNG_MAX_PER_REQUEST; i++) {
        size_t want = c->buf[i].len;
        if (want > RNG_MAX_PER_REQUEST - done)
            want = RNG_MAX_PER_REQUEST - done;
        size_t got = 0;
        while (got < want) {
            ssize_t n = getrandom(c->buf[i].hva + got, want - got, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return done + got; /* give what we have */
            }
            got += (size_t)n;
        }
        done += got;
    }
    return done;
}

static long rng_request(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    (void)q;
    struct rng *r = (struct rng *)d;
    uint64_t want = c->write_len < RNG_MAX_PER_REQUEST ? c->write_len : RNG_MAX_PER_REQUEST;
    if (!throttle_take(&r->throttle, want))
        return VIRTIO_STOP; /* its timer serves the queue again */
    size_t n = fill(c);
    d->stats.in_bytes += n;
    return (long)n;
}

static void rng_notify(struct virtio_device *d, unsigned q)
{
    struct rng *r = (struct rng *)d;
    virtio_queue_serve(d, q, &r->chain, RNG_MAX_BATCH, rng_request);
}

/* The rate limiter lets requests go again. */
static void rng_on_throttle(void *opaque, uint32_t events)
{
    struct rng *r = opaque;
    (void)events;
    pthread_mutex_lock(&r->vdev.lock);
    if (virtio_device_live(&r->vdev) && r->vdev.vq[0].ready)
        rng_notify(&r->vdev, 0);
    pthread_mutex_unlock(&r->vdev.lock);
}

int virtio_rng_set_rate_limiter(struct virtio_device *d, struct evloop *loop,
                                const struct rate_limiter_config *c)
{
    if (!d || d->ops->device_id != VIRTIO_ID_RNG)
        return -ENODEV;
    struct rng *r = (struct rng *)d;
    pthread_mutex_lock(&d->lock);
    int ret = r->throttle.loop ? throttle_update(&r->throttle, c)
                               : throttle_init(&r->throttle, c, loop, rng_on_throttle, r);
    pthread_mutex_unlock(&d->lock);
    return ret;
}

static void rng_release(struct virtio_device *d)
{
    throttle_release(&((struct rng *)d)->throttle);
    virtio_device_release(d);
    free(d);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max_size = 256,
    .config_size = 0,
    .queue_notify = rng_notify,
    .release = rng_release,
};

struct virtio_device *virtio_rng_create(const struct guest_mem *mem)
{
    struct rng *r = calloc(1, sizeof(*r));
    if (!r)
        return virtio_fail(ENOMEM);
    r->throttle.timer_fd = -1; /* no limit until one is set */
    virtio_device_init(&r->vdev, &rng_ops, mem, 0);
    return &r->vdev;
}
