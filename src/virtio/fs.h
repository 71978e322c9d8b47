/* fs.h - virtio file system device (virtio 1.2, 5.11): a host directory
 * shared with the guest, served by the in-process FUSE server
 * (host/fuse.h) on a worker thread of its own. */
#ifndef ARCVM_VIRTIO_FS_H
#define ARCVM_VIRTIO_FS_H

#include "virtio/virtio.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest tag: the configuration's tag field (5.11.4). */
#define VIRTIO_FS_TAG_MAX 36

/* One --share HOSTDIR:TAG[,ro]. */
struct fs_config {
    char *dir;     /* the host directory */
    char *tag;     /* what the guest mounts: mount -t virtiofs TAG /mnt */
    bool readonly; /* every change refused with EROFS */
};

/* Queues: hiprio (FORGET, BATCH_FORGET, INTERRUPT), then one request queue. */
#define VIRTIO_FS_HIPRIO 0
#define VIRTIO_FS_REQUEST 1
#define VIRTIO_FS_QUEUE_SIZE 1024

/* Called first on the device's worker thread, before any guest input (the
 * VMM installs the thread's seccomp filter there). Non-zero: the worker
 * serves nothing and the device stays silent. */
typedef int (*virtio_fs_thread_init_fn)(void *opaque);

/* A virtio-fs device sharing @cfg->dir as @cfg->tag. @max_inodes and
 * @max_handles bound what the guest may hold (0: fuse_default_limits()).
 * Starts the worker thread ("arcvm-fs"), which calls @init(@opaque) first
 * (NULL: nothing). Freed through its ops->release, which stops and joins
 * the worker. NULL with errno set and one sentence in @err. */
struct virtio_device *virtio_fs_create(const struct guest_mem *mem, const struct fs_config *cfg,
                                       unsigned max_inodes, unsigned max_handles,
                                       virtio_fs_thread_init_fn init, void *opaque, char *err,
                                       size_t errlen);

#endif
