/* rng.h - virtio entropy device (virtio 1.2, 5.4), fed from getrandom(2). */
#ifndef ARCVM_VIRTIO_RNG_H
#define ARCVM_VIRTIO_RNG_H

#include "virtio/virtio.h"

/* A new entropy device; freed through its ops->release. NULL on ENOMEM. */
struct virtio_device *virtio_rng_create(const struct guest_mem *mem);

/* Limit the entropy device (Firecracker's /entropy rate_limiter); the
 * throttle's timer runs on @loop. -ENODEV if @d is not virtio-rng. */
struct evloop;
struct rate_limiter_config;
int virtio_rng_set_rate_limiter(struct virtio_device *d, struct evloop *loop,
                                const struct rate_limiter_config *c);

#endif
