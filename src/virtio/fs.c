/* fs.c - virtio-fs: a hiprio queue and one request queue, served by the
 * FUSE server (host/fuse.c) on the device's own worker thread.
 *
 * Threads: a queue notification (event loop) or the activation requeue
 * only wakes the worker (a condition variable on vdev.lock), so host file
 * I/O never runs on the event loop or a vCPU thread. The worker takes
 * vdev.lock to pop a chain, drops it while the FUSE server works on the
 * chain's buffers, and takes it again to push the used entry and raise the
 * interrupt. Before every request it drains the hiprio queue, so a FORGET
 * waits for at most one request, never for the request queue. A reset
 * (vCPU thread, lock held) bumps a generation: a request in flight across
 * it is not pushed, and the worker resets the server (forgets every inode,
 * closes every handle) before it serves anything else. The FUSE server is
 * the worker's alone.
 */
#include "virtio/fs.h"

#include "host/fuse.h"
#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <linux/fuse.h>
#include <linux/virtio_fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

_Static_assert(sizeof(struct virtio_fs_config) == VIRTIO_FS_TAG_MAX + 4, "virtio_fs_config (5.11.4)");

/* hiprio chains served per round (each is a FORGET or two): the rest wait
 * for the next round, one request later. */
#define FS_HIPRIO_BATCH 256

struct vfs {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct fuse_server *srv;   /* the worker's */
    struct virtio_fs_config cfg; /* little-endian, as the driver reads it */
    char tag[VIRTIO_FS_TAG_MAX + 1];
    virtio_fs_thread_init_fn init;
    void *opaque;
    pthread_t thread;
    bool thread_started;
    /* Under vdev.lock. */
    pthread_cond_t cond;       /* the worker waits here for the flags below */
    bool kicked, stop, reset_pending;
    unsigned gen;              /* bumped by every reset */
    /* The worker's. */
    struct iovec iov[VIRTQ_MAX_SIZE];
    struct virtq_chain chain;
};

static struct vfs *to_vfs(struct virtio_device *d)
{
    return (struct vfs *)d;
}

/* The chain's buffers as iovecs: readable ones first, as the chain has them. */
static void chain_iov(struct vfs *f, const struct virtq_chain *c)
{
    for (unsigned i = 0; i < c->nread + c->nwrite; i++)
        f->iov[i] = (struct iovec){c->buf[i].hva, c->buf[i].len};
}

static size_t serve_chain(struct vfs *f, const struct virtq_chain *c)
{
    chain_iov(f, c);
    return fuse_server_handle(f->srv, f->iov, c->nread, f->iov + c->nread, c->nwrite);
}

/* A hiprio chain, with vdev.lock held (FORGETs only close descriptors). */
static long hiprio_request(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    (void)q;
    struct vfs *f = to_vfs(d);
    struct fuse_in_header h = {0};
    if (virtq_chain_read(c, 0, &h, sizeof(h)) < sizeof(h) ||
        (h.opcode != FUSE_FORGET && h.opcode != FUSE_BATCH_FORGET &&
         h.opcode != FUSE_INTERRUPT)) {
        log_guest("virtio-fs %s: opcode %u on the hiprio queue ignored", f->tag,
                  c->read_len >= sizeof(h) ? h.opcode : 0);
        return 0;
    }
    d->stats.out_bytes += c->read_len;
    return (long)serve_chain(f, c);
}

/* Serve until the request queue is empty (or the device stops being
 * live), with vdev.lock held; dropped around each request. */
static void serve(struct vfs *f)
{
    struct virtio_device *d = &f->vdev;
    struct virtq *rq = &d->vq[VIRTIO_FS_REQUEST];
    while (!f->stop && !f->reset_pending && virtio_device_live(d)) {
        if (d->vq[VIRTIO_FS_HIPRIO].ready)
            virtio_queue_serve(d, VIRTIO_FS_HIPRIO, &f->chain, FS_HIPRIO_BATCH, hiprio_request);
        if (!rq->ready || !virtio_device_live(d))
            return;
        int p = virtq_pop(rq, &f->chain);
        if (p < 0) {
            virtio_set_needs_reset(d, "malformed descriptor chain");
            return;
        }
        if (p == 0) {
            if (virtq_enable_notify(rq))
                continue; /* buffers arrived meanwhile */
            return;
        }
        unsigned gen = f->gen;
        pthread_mutex_unlock(&d->lock);
        size_t n = serve_chain(f, &f->chain);
        pthread_mutex_lock(&d->lock);
        if (gen != f->gen)
            continue; /* reset meanwhile: the ring is not ours any more */
        d->stats.requests++;
        d->stats.out_bytes += f->chain.read_len;
        d->stats.in_bytes += n;
        virtq_push(rq, f->chain.head, (uint32_t)n);
        virtio_notify_used(d, VIRTIO_FS_REQUEST);
    }
}

static void *fs_worker(void *arg)
{
    struct vfs *f = arg;
    struct virtio_device *d = &f->vdev;
    pthread_setname_np(pthread_self(), "arcvm-fs");
    int e = fuse_thread_init();
    if (e < 0)
        log_warn("virtio-fs %s: cannot drop CAP_FSETID (%s): guest writes keep setuid bits",
                 f->tag, strerror(-e));
    bool ok = !f->init || f->init(f->opaque) == 0;
    pthread_mutex_lock(&d->lock);
    while (!f->stop) {
        if (ok && f->reset_pending) {
            f->reset_pending = false;
            pthread_mutex_unlock(&d->lock);
            fuse_server_reset(f->srv);
            pthread_mutex_lock(&d->lock);
        } else if (ok && f->kicked) {
            f->kicked = false;
            serve(f);
        } else {
            pthread_cond_wait(&f->cond, &d->lock);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static void fs_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    memcpy(buf, (const uint8_t *)&to_vfs(d)->cfg + off, len);
}

/* Event loop (or the activation's requeue), lock held: wake the worker. */
static void fs_notify(struct virtio_device *d, unsigned q)
{
    (void)q;
    struct vfs *f = to_vfs(d);
    f->kicked = true;
    pthread_cond_signal(&f->cond);
}

/* vCPU thread, lock held. */
static void fs_reset(struct virtio_device *d)
{
    struct vfs *f = to_vfs(d);
    f->gen++;
    f->kicked = false;
    f->reset_pending = true;
    pthread_cond_signal(&f->cond);
}

static void fs_release(struct virtio_device *d)
{
    struct vfs *f = to_vfs(d);
    if (f->thread_started) {
        pthread_mutex_lock(&d->lock);
        f->stop = true;
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&d->lock);
        pthread_join(f->thread, NULL);
    }
    fuse_server_destroy(f->srv);
    pthread_cond_destroy(&f->cond);
    virtio_device_release(d);
    free(f);
}

static const struct virtio_dev_ops fs_ops = {
    .name = "virtio-fs",
    .device_id = VIRTIO_ID_FS,
    .num_queues = 2,
    .queue_max_size = VIRTIO_FS_QUEUE_SIZE,
    .config_size = sizeof(struct virtio_fs_config),
    .config_read = fs_config_read,
    .reset = fs_reset,
    .queue_notify = fs_notify,
    .release = fs_release,
};

struct virtio_device *virtio_fs_create(const struct guest_mem *mem, const struct fs_config *cfg,
                                       unsigned max_inodes, unsigned max_handles,
                                       virtio_fs_thread_init_fn init, void *opaque, char *err,
                                       size_t errlen)
{
    size_t tlen = cfg->tag ? strlen(cfg->tag) : 0;
    if (!cfg->dir || tlen == 0 || tlen > VIRTIO_FS_TAG_MAX) {
        snprintf(err, errlen, "a shared directory needs a path and a tag of 1 to %d bytes",
                 VIRTIO_FS_TAG_MAX);
        return virtio_fail(EINVAL);
    }
    struct vfs *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return virtio_fail(ENOMEM);
    }
    virtio_device_init(&f->vdev, &fs_ops, mem, 0);
    f->vdev.id = f->tag;
    pthread_cond_init(&f->cond, NULL);
    memcpy(f->tag, cfg->tag, tlen);
    memcpy(f->cfg.tag, cfg->tag, tlen);
    f->cfg.num_request_queues = htole32(1);
    f->init = init;
    f->opaque = opaque;
    struct fuse_server_config fc = {.dir = cfg->dir, .readonly = cfg->readonly,
                                    .max_inodes = max_inodes, .max_handles = max_handles};
    int e = fuse_server_create(&f->srv, &fc, err, errlen);
    if (e == 0 && (e = -pthread_create(&f->thread, NULL, fs_worker, f)) < 0)
        snprintf(err, errlen, "virtio-fs %s: cannot start its thread: %s", f->tag, strerror(-e));
    if (e < 0) {
        fs_release(&f->vdev);
        return virtio_fail(-e);
    }
    f->thread_started = true;
    return &f->vdev;
}
