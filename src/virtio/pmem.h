/* pmem.h - virtio persistent-memory device (virtio 1.2, 5.19): a host file
 * mapped into the guest's physical address space, outside RAM, which the
 * guest's virtio_pmem driver turns into a /dev/pmemN block device (and DAX
 * memory). The one request is a flush: the device syncs the file. */
#ifndef ARCVM_VIRTIO_PMEM_H
#define ARCVM_VIRTIO_PMEM_H

#include "virtio/virtio.h"
#include "base/ratelimit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_PMEM 27

/* The guest-physical region is a multiple of 2 MiB and starts on a 2 MiB
 * boundary: Linux maps it with memremap_pages(), which works in 2 MiB
 * subsections; Firecracker pads the file's mapping to 2 MiB the same way. */
#define VIRTIO_PMEM_ALIGN (2ull << 20)

/* Request types and answers (5.19.6). */
#define VIRTIO_PMEM_REQ_TYPE_FLUSH 0
#define VIRTIO_PMEM_RESP_OK 0
#define VIRTIO_PMEM_RESP_EIO 1

/* One --pmem PATH[,ro][,root][,id=ID]. */
struct pmem_config {
    char *path;    /* the backing file: a regular, non-empty file */
    char *id;      /* user-facing name, or NULL */
    bool readonly; /* mapped PROT_READ, a read-only memory slot for the guest */
    bool root;     /* the guest's root file system: root=/dev/pmemN ro|rw */
    struct rate_limiter_config rl; /* on flushes; zero: none */
};

/* A pmem device for @cfg: opens the file (O_RDONLY with readonly, else
 * O_RDWR) and maps it MAP_SHARED, padded with anonymous memory up to the
 * next VIRTIO_PMEM_ALIGN, and tells the guest it lives at @gpa (2 MiB
 * aligned). Flushes run on @loop's thread (the queue's notification), which
 * also runs the rate limiter's timer. The caller maps the region into the
 * guest (virtio_pmem_region()). Freed through ops->release (unmaps, closes).
 * NULL with errno set and one sentence in @err. */
struct virtio_device *virtio_pmem_create(const struct guest_mem *mem, const struct pmem_config *cfg,
                                         uint64_t gpa, struct evloop *loop, char *err,
                                         size_t errlen);
/* The host mapping to give the guest at the device's address: @hva, @size
 * (a multiple of VIRTIO_PMEM_ALIGN) and whether it is read-only. -ENODEV
 * if @d is not a pmem device. */
int virtio_pmem_region(struct virtio_device *d, uint64_t *gpa, void **hva, uint64_t *size,
                       bool *readonly);
/* Bytes the guest-physical region needs for a file of @file_size bytes. */
uint64_t virtio_pmem_region_size(uint64_t file_size);
/* New flush limits at run time (Firecracker's PATCH /pmem/{id}). */
int virtio_pmem_set_rate_limiter(struct virtio_device *d, const struct rate_limiter_config *c);

#endif
