/* rng.h - virtio entropy device (virtio 1.2, 5.4), fed from getrandom(2). */
#ifndef ARCVM_VIRTIO_RNG_H
#define ARCVM_VIRTIO_RNG_H

#include "virtio/virtio.h"

/* A new entropy device; freed through its ops->release. NULL on ENOMEM. */
struct virtio_device *virtio_rng_create(const struct guest_mem *mem);

#endif
