/* blk.c - virtio-blk: one request queue served asynchronously on a raw
 * image through host/disk.c, with zero-copy iovecs into guest buffers.
 *
 * Threads: queue_notify (event loop) parses chains and queues I/O; the
 * disk's completion eventfd (event loop) writes status bytes and pushes
 * used entries; reset (vCPU thread) drains I/O in flight, and so does a
 * snapshot (controlling thread), completing it. All of it runs under
 * vdev.lock, which is also what serializes the disk.
 */
#include "virtio/blk.h"

#include "host/disk.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/snap.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

/* Request header, the first 16 device-readable bytes (5.2.6). */
struct blk_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
_Static_assert(sizeof(struct blk_hdr) == 16, "virtio_blk_req header layout");

/* One DISCARD/WRITE_ZEROES segment (5.2.6). */
struct blk_dwz {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};
_Static_assert(sizeof(struct blk_dwz) == 16, "virtio_blk_discard_write_zeroes layout");

/* Segments per DISCARD/WRITE_ZEROES request: the host has no call that
 * takes several ranges, so one is all a request gets (as in QEMU). */
#define BLK_DWZ_SEG_MAX 1

/* A request in flight. Preallocated, one per queue entry: a chain holds at
 * least one descriptor, so a well-behaved driver never has more. */
struct blk_req {
    struct disk_req io;                   /* first: disk_reap() hands back &io */
    uint8_t *status;                      /* the status byte, inside a checked guest buffer */
    uint32_t used_len;                    /* used-ring length to report */
    uint16_t head;                        /* chain id to push */
    struct iovec iov[VIRTIO_BLK_SEG_MAX]; /* data segments, into guest RAM */
};

struct blk {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct disk disk;
    struct evloop *loop;
    bool watching; /* the disk's eventfd is on @loop */
    bool throttled; /* a request waits for the rate limiter */
    struct throttle throttle;
    char *path;    /* for messages */
    struct log_ratelimit host_err_rl;
    /* Plain data: what a snapshot would save (with vdev). */
    struct virtio_blk_config cfg; /* little-endian, as the driver reads it */
    uint64_t capacity;            /* sectors, host order */
    char id[VIRTIO_BLK_ID_BYTES];
    char id_str[VIRTIO_BLK_ID_BYTES + 1]; /* the same, NUL-terminated, for metrics */
    /* In-flight bookkeeping (empty whenever the device is reset). */
    bool stalled; /* serving stopped for want of a free slot */
    bool pushed;  /* used entries added in this completion batch */
    unsigned nfree;
    uint16_t free_slot[VIRTIO_BLK_QUEUE_SIZE]; /* stack: hot slots are reused */
    struct blk_req req[VIRTIO_BLK_QUEUE_SIZE];
    struct virtq_chain chain; /* the chain being parsed */
};

static struct blk *to_blk(struct virtio_device *d)
{
    return (struct blk *)d;
}

static struct blk_req *slot_get(struct blk *b)
{
    return &b->req[b->free_slot[--b->nfree]];
}

static void slot_put(struct blk *b, struct blk_req *r)
{
    b->free_slot[b->nfree++] = (uint16_t)(r - b->req);
}

/* Complete a request at once: the status byte, and the used length. */
static long finish(struct blk *b, uint8_t *status, uint8_t st, uint32_t used)
{
    *status = st;
    if (st != VIRTIO_BLK_S_OK)
        b->vdev.stats.errors++;
    return used;
}

/* Point @iov at @len bytes of buffers [first, first + count) of @c, after
 * skipping @skip bytes. Returns the number of segments, or -1 if more than
 * VIRTIO_BLK_SEG_MAX would be needed. */
static int slice(const struct virtq_chain *c, unsigned first, unsigned count, uint64_t skip,
                 uint64_t len, struct iovec *iov)
{
    int n = 0;
    for (unsigned i = first; i < first + count && len; i++) {
        uint64_t bl = c->buf[i].len;
        uint8_t *p = c->buf[i].hva;
        if (skip >= bl) {
            skip -= bl;
            continue;
        }
        p += skip;
        bl -= skip;
        skip = 0;
        if (bl > len)
            bl = len;
        if (n == VIRTIO_BLK_SEG_MAX)
            return -1;
        iov[n++] = (struct iovec){.iov_base = p, .iov_len = bl};
        len -= bl;
    }
    return n;
}

/* Whether [sector, sector + n) lies within the disk, without overflow. */
static bool in_range(const struct blk *b, uint64_t sector, uint64_t n)
{
    return sector <= b->capacity && n <= b->capacity - sector;
}

/* Hand @r to the disk; on a host refusal the request fails at once. */
static long queue_io(struct blk *b, struct blk_req *r, uint8_t *status, uint32_t used,
                     uint16_t head)
{
    r->status = status;
    r->used_len = used;
    r->head = head;
    int e = disk_queue(&b->disk, &r->io);
    if (e < 0) {
        slot_put(b, r);
        if (log_ratelimit_ok(&b->host_err_rl))
            log_warn("virtio-blk %s: cannot queue I/O: %s", b->path, strerror(-e));
        return finish(b, status, VIRTIO_BLK_S_IOERR, used);
    }
    return VIRTIO_DEFER;
}

static long blk_rw(struct blk *b, const struct virtq_chain *c, bool write, uint64_t sector,
                   uint64_t len, uint8_t *status, uint32_t used)
{
    if (len % DISK_SECTOR) {
        log_guest("virtio-blk: %s of %" PRIu64 " bytes, not a multiple of 512",
                  write ? "write" : "read", len);
        return finish(b, status, VIRTIO_BLK_S_IOERR, used);
    }
    if (!in_range(b, sector, len / DISK_SECTOR)) {
        log_guest("virtio-blk: %s of sectors %" PRIu64 "+%" PRIu64 " beyond the capacity %" PRIu64,
                  write ? "write" : "read", sector, len / DISK_SECTOR, b->capacity);
        return finish(b, status, VIRTIO_BLK_S_IOERR, used);
    }
    if (len == 0)
        return finish(b, status, VIRTIO_BLK_S_OK, used);
    struct blk_req *r = slot_get(b);
    /* Reads fill the writable part but its last byte (the status); writes
     * take the readable part after the header. */
    int n = write ? slice(c, 0, c->nread, sizeof(struct blk_hdr), len, r->iov)
                  : slice(c, c->nread, c->nwrite, 0, len, r->iov);
    if (n < 0) {
        slot_put(b, r);
        log_guest("virtio-blk: request with more than %u data segments", VIRTIO_BLK_SEG_MAX);
        return finish(b, status, VIRTIO_BLK_S_IOERR, used);
    }
    r->io = (struct disk_req){.op = write ? DISK_OP_WRITE : DISK_OP_READ,
                              .offset = sector * DISK_SECTOR,
                              .iov = r->iov,
                              .iovcnt = (unsigned)n};
    return queue_io(b, r, status, used, c->head);
}

static long blk_dwz(struct blk *b, const struct virtq_chain *c, uint32_t type, uint64_t out_len,
                    uint8_t *status, uint32_t used)
{
    bool discard = type == VIRTIO_BLK_T_DISCARD;
    if (!virtio_has(&b->vdev, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
        return finish(b, status, VIRTIO_BLK_S_UNSUPP, used);
    if (out_len == 0 || out_len % sizeof(struct blk_dwz) ||
        out_len / sizeof(struct blk_dwz) > BLK_DWZ_SEG_MAX) {
        log_guest("virtio-blk: discard/write-zeroes with %" PRIu64 " bytes of segments", out_len);
        return finish(b, status, VIRTIO_BLK_S_IOERR, used);
    }
    struct blk_dwz s;
    virtq_chain_read(c, sizeof(struct blk_hdr), &s, sizeof(s));
    uint64_t sector = le64toh(s.sector);
    uint32_t num = le32toh(s.num_sectors), flags = le32toh(s.flags);
    /* 5.2.6.2: unknown flags, and unmap on a discard, are unsupported. */
    if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
        (discard && (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)))
        return finish(b, status, VIRTIO_BLK_S_UNSUPP, used);
    uint32_t max = discard ? VIRTIO_BLK_MAX_DISCARD_SECTORS : VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS;
    if (num > max || !in_range(b, sector, num)) {
        log_guest("virtio-blk: %s of sectors %" PRIu64 "+%u out of range",
                  discard ? "discard" : "write-zeroes", sector, num);
        return finish(b, status, VIRTIO_BLK_S_IOERR, used);
    }
    if (num == 0)
        return finish(b, status, VIRTIO_BLK_S_OK, used);
    struct blk_req *r = slot_get(b);
    r->io = (struct disk_req){.op = discard ? DISK_OP_DISCARD : DISK_OP_WRITE_ZEROES,
                              .flags =
                                  (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ? DISK_REQ_UNMAP : 0,
                              .offset = sector * DISK_SECTOR,
                              .len = (uint64_t)num * DISK_SECTOR};
    return queue_io(b, r, status, used, c->head);
}

/* Parse one chain (5.2.6): header in the first 16 readable bytes, data,
 * status in the last writable byte. Every size is checked against what the
 * chain really holds; nothing is trusted from the guest twice. */
static long blk_request(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct blk *b = to_blk(d);
    (void)q;
    if (c->nwrite == 0) {
        /* Nowhere to put a status: give the chain back untouched. */
        log_guest("virtio-blk: request without a writable status byte");
        return 0;
    }
    if (b->nfree == 0) {
        /* More chains than queue entries can only come from a driver that
         * reuses descriptors in flight; wait for completions. */
        b->stalled = true;
        return VIRTIO_STOP;
    }
    const struct virtq_buf *last = &c->buf[c->nread + c->nwrite - 1];
    assert(last->len > 0); /* queue.c leaves empty descriptors out of chains */
    uint8_t *status = last->hva + last->len - 1;
    /* Reported as written: the whole writable part, as QEMU does. */
    uint32_t used = c->write_len > UINT32_MAX ? UINT32_MAX : (uint32_t)c->write_len;
    struct blk_hdr h;
    if (c->read_len < sizeof(h)) {
        log_guest("virtio-blk: request shorter than its header");
        return finish(b, status, VIRTIO_BLK_S_IOERR, used);
    }
    virtq_chain_read(c, 0, &h, sizeof(h));
    uint32_t type = le32toh(h.type);
    uint64_t sector = le64toh(h.sector);
    uint64_t out_len = c->read_len - sizeof(h); /* device-readable data */
    uint64_t in_len = c->write_len - 1;         /* device-writable data */
    /* Every request is an operation; reads and writes are their bytes (as
     * Firecracker counts). Not now: the chain goes back, the throttle's
     * timer serves the queue again when it may go. */
    uint64_t bytes = type == VIRTIO_BLK_T_IN ? in_len : type == VIRTIO_BLK_T_OUT ? out_len : 0;
    if (!throttle_take(&b->throttle, bytes)) {
        b->throttled = true;
        return VIRTIO_STOP;
    }

    switch (type) {
    case VIRTIO_BLK_T_IN:
        if (out_len) {
            log_guest("virtio-blk: read with device-readable data");
            return finish(b, status, VIRTIO_BLK_S_IOERR, used);
        }
        return blk_rw(b, c, false, sector, in_len, status, used);
    case VIRTIO_BLK_T_OUT:
        if (b->disk.readonly) {
            log_guest("virtio-blk: write to a read-only disk");
            return finish(b, status, VIRTIO_BLK_S_IOERR, used);
        }
        if (in_len) {
            log_guest("virtio-blk: write with device-writable data");
            return finish(b, status, VIRTIO_BLK_S_IOERR, used);
        }
        return blk_rw(b, c, true, sector, out_len, status, used);
    case VIRTIO_BLK_T_FLUSH:
        if (b->disk.readonly)
            return finish(b, status, VIRTIO_BLK_S_OK, used); /* nothing of ours to flush */
        {
            struct blk_req *r = slot_get(b);
            r->io = (struct disk_req){.op = DISK_OP_FLUSH};
            return queue_io(b, r, status, used, c->head);
        }
    case VIRTIO_BLK_T_GET_ID: {
        size_t n = in_len < VIRTIO_BLK_ID_BYTES ? (size_t)in_len : VIRTIO_BLK_ID_BYTES;
        virtq_chain_write(c, 0, b->id, n);
        return finish(b, status, VIRTIO_BLK_S_OK, used);
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        if (b->disk.readonly)
            return finish(b, status, VIRTIO_BLK_S_IOERR, used);
        return blk_dwz(b, c, type, out_len, status, used);
    default:
        return finish(b, status, VIRTIO_BLK_S_UNSUPP, used);
    }
}



static const char *op_name(uint8_t op)
{
    switch (op) {
    case DISK_OP_READ:
        return "read";
    case DISK_OP_WRITE:
        return "write";
    case DISK_OP_FLUSH:
        return "flush";
    case DISK_OP_DISCARD:
        return "discard";
    default:
        return "write-zeroes";
    }
}

/* A request finished on the host: status, used entry, slot back. */
static void blk_done(void *opaque, struct disk_req *io)
{
    struct blk *b = opaque;
    struct blk_req *r = (struct blk_req *)io;
    uint8_t st = VIRTIO_BLK_S_OK;
    /* A discard is a hint: a host that cannot deallocate has done it. */
    if (io->res < 0 && !(io->op == DISK_OP_DISCARD && io->res == -EOPNOTSUPP)) {
        st = VIRTIO_BLK_S_IOERR;
        if (log_ratelimit_ok(&b->host_err_rl))
            log_warn("virtio-blk %s: %s of %" PRIu64 " bytes at offset %" PRIu64 " failed: %s",
                     b->path, op_name(io->op), io->len, io->offset, strerror(-io->res));
    }
    *r->status = st;
    if (st != VIRTIO_BLK_S_OK)
        b->vdev.stats.errors++;
    else if (io->op == DISK_OP_READ)
        b->vdev.stats.in_bytes += io->len;
    else if (io->op == DISK_OP_WRITE)
        b->vdev.stats.out_bytes += io->len;
    struct virtq *vq = &b->vdev.vq[0];
    if (vq->ready) { /* always, as reset drains first; never push to a dead ring */
        virtq_push(vq, r->head, r->used_len);
        b->pushed = true;
    }
    slot_put(b, r);
}

/* Reset and teardown: the request is dropped, the guest gets nothing. */
static void blk_drop(void *opaque, struct disk_req *io)
{
    slot_put(opaque, (struct blk_req *)io);
}

/* Reap completions and interrupt the driver once for the batch. Lock held. */
static void blk_complete(struct blk *b)
{
    b->pushed = false;
    disk_reap(&b->disk, blk_done, b);
    if (b->pushed)
        virtio_notify_used(&b->vdev, 0);
}

/* Take what the driver queued, submit it in one system call, and complete
 * at once what the host finished while submitting (cached reads through
 * io_uring usually do): that spares an event-loop round trip per request. */
static void blk_serve(struct blk *b)
{
    virtio_queue_serve(&b->vdev, 0, &b->chain, VIRTIO_BLK_QUEUE_SIZE, blk_request);
    disk_submit(&b->disk);
    blk_complete(b);
    /* While I/O is in flight every completion looks at the ring again, so
     * the driver need not kick (each kick is a VM exit); the last
     * completion serves again, which re-enables kicks before going idle. */
    if (disk_inflight(&b->disk))
        virtq_disable_notify(&b->vdev.vq[0]);
}

/* The disk's eventfd fired: reap completions, one interrupt per batch. */
static void blk_on_io(void *opaque, uint32_t events)
{
    struct blk *b = opaque;
    struct virtio_device *d = &b->vdev;
    (void)events;
    pthread_mutex_lock(&d->lock);
    blk_complete(b);
    if (!b->stalled || b->nfree) {
        b->stalled = false;
        /* Requests queued meanwhile without a kick (see blk_serve). */
        if (virtio_device_live(d) && d->vq[0].ready)
            blk_serve(b);
    }
    pthread_mutex_unlock(&d->lock);
}

/* The rate limiter lets requests go again. */
static void blk_on_throttle(void *opaque, uint32_t events)
{
    struct blk *b = opaque;
    struct virtio_device *d = &b->vdev;
    (void)events;
    pthread_mutex_lock(&d->lock);
    b->throttled = false;
    if (virtio_device_live(d) && d->vq[0].ready)
        blk_serve(b);
    pthread_mutex_unlock(&d->lock);
}

int virtio_blk_set_rate_limiter(struct virtio_device *d, const struct rate_limiter_config *c)
{
    if (!d || d->ops->device_id != VIRTIO_ID_BLOCK)
        return -ENODEV;
    struct blk *b = to_blk(d);
    pthread_mutex_lock(&d->lock);
    int r = throttle_update(&b->throttle, c);
    pthread_mutex_unlock(&d->lock);
    return r;
}

/* Set the capacity the driver sees from the image's size. */
static void blk_set_capacity(struct blk *b)
{
    b->capacity = b->disk.size / DISK_SECTOR; /* a partial last sector is not exposed */
    b->cfg.capacity = htole64(b->capacity);
}

int virtio_blk_swap_image(struct virtio_device *d, const char *path, char *err, size_t errlen)
{
    if (!d || d->ops->device_id != VIRTIO_ID_BLOCK) {
        snprintf(err, errlen, "not a virtio-blk device");
        return -ENODEV;
    }
    struct blk *b = to_blk(d);
    char *p = strdup(path);
    if (!p) {
        snprintf(err, errlen, "out of memory for disk image %s", path);
        return -ENOMEM;
    }
    pthread_mutex_lock(&d->lock);
    /* Requests in flight finish on the old image and reach the driver as
     * usual; none starts meanwhile (queue_notify needs the lock). */
    b->pushed = false;
    disk_drain(&b->disk, blk_done, b);
    if (b->pushed)
        virtio_notify_used(d, 0);
    uint64_t old = b->capacity;
    int r = disk_reopen(&b->disk, p, err, errlen);
    if (r == 0) {
        free(b->path);
        b->path = p;
        p = NULL;
        blk_set_capacity(b);
        log_info("virtio-blk %s: %s image %s, %" PRIu64 " sectors (was %" PRIu64 ")", b->id_str,
                 b->capacity == old ? "now on" : "resized, now on", b->path, b->capacity, old);
        /* The driver rereads the capacity (Linux: virtblk_config_changed). */
        virtio_notify_config(d);
        /* Chains the driver queued while we drained, without a kick. */
        if (virtio_device_live(d) && d->vq[0].ready)
            d->transport->requeue(d, 0);
    }
    pthread_mutex_unlock(&d->lock);
    free(p);
    return r;
}

static void blk_notify(struct virtio_device *d, unsigned q)
{
    if (q == 0)
        blk_serve(to_blk(d));
}

static void blk_reset(struct virtio_device *d)
{
    struct blk *b = to_blk(d);
    /* The driver may reuse its buffers once reset is acknowledged: no
     * transfer may still be on its way into them. */
    disk_drain(&b->disk, blk_drop, b);
    b->stalled = false;
}

/* Snapshot: with the event loop held its completion callback cannot run,
 * so I/O in flight is waited for and completed here, used entries and
 * interrupt included. The chains the driver queued meanwhile, and the
 * kicks that were off while I/O was in flight (blk_serve), are left to
 * one more pass from the event loop: after a resume, or a restore, which
 * serves every queue once (virtio_device_resume). */
static void blk_quiesce(struct virtio_device *d)
{
    struct blk *b = to_blk(d);
    b->pushed = false;
    disk_drain(&b->disk, blk_done, b);
    if (b->pushed)
        virtio_notify_used(d, 0);
    b->stalled = false;
    if (virtio_device_live(d) && d->vq[0].ready)
        d->transport->requeue(d, 0);
}

/* Everything else of ours is derived from the image and the configuration;
 * the capacity is what the driver has built its view of the disk on. */
static void blk_save(struct virtio_device *d, struct snap_w *w)
{
    snap_put_u64(w, to_blk(d)->capacity);
}

static int blk_load(struct virtio_device *d, struct snap_r *r)
{
    struct blk *b = to_blk(d);
    uint64_t capacity = snap_get_u64(r);
    if (r->err)
        return r->err;
    if (capacity != b->capacity) {
        log_warn("virtio-blk %s: the snapshot's disk had %" PRIu64 " sectors, this image has %" PRIu64,
                 b->path, capacity, b->capacity);
        return -EINVAL;
    }
    return 0;
}

static void blk_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    memcpy(buf, (const uint8_t *)&to_blk(d)->cfg + off, len);
}

static void blk_release(struct virtio_device *d)
{
    struct blk *b = to_blk(d);
    if (b->watching)
        evloop_del(b->loop, disk_event_fd(&b->disk));
    throttle_release(&b->throttle);
    disk_close(&b->disk); /* waits for I/O in flight */
    virtio_device_release(d);
    free(b->path);
    free(b);
}

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
    .config_size = sizeof(struct virtio_blk_config),
    .config_read = blk_config_read,
    .reset = blk_reset,
    .queue_notify = blk_notify,
    .release = blk_release,
    .quiesce = blk_quiesce,
    .save = blk_save,
    .load = blk_load,
};

/* A serial number for disks configured without one: stable for a given
 * image path, so the guest's /dev/disk/by-id names survive reboots. */
static void derive_id(const char *path, char id[VIRTIO_BLK_ID_BYTES])
{
    char *real = realpath(path, NULL);
    const char *s = real ? real : path;
    /* FNV-1a, 64-bit: offset basis and prime from its definition. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    free(real);
    char tmp[VIRTIO_BLK_ID_BYTES + 1];
    /* "arcvm-" and 14 hex digits: exactly the 20 bytes GET_ID returns. */
    snprintf(tmp, sizeof(tmp), "arcvm-%014" PRIx64, h >> 8);
    memcpy(id, tmp, VIRTIO_BLK_ID_BYTES);
}

struct virtio_device *virtio_blk_create(const struct guest_mem *mem, const struct disk_config *cfg,
                                        struct evloop *loop, char *err, size_t errlen)
{
    struct blk *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory for the virtio-blk device of %s", cfg->path);
        return virtio_fail(ENOMEM);
    }
    b->throttle.timer_fd = -1; /* released on every way out */
    int r = disk_open(&b->disk, cfg->path, cfg->readonly, err, errlen);
    if (r < 0) {
        free(b);
        return virtio_fail(-r);
    }
    b->loop = loop;
    b->path = strdup(cfg->path);
    if (!b->path) {
        snprintf(err, errlen, "out of memory for the virtio-blk device of %s", cfg->path);
        disk_close(&b->disk);
        free(b);
        return virtio_fail(ENOMEM);
    }

    uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                        VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
    if (cfg->readonly)
        features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
    else
        features |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
    virtio_device_init(&b->vdev, &blk_ops, mem, features);

    blk_set_capacity(b);
    struct virtio_blk_config *c = &b->cfg;
    c->seg_max = htole32(VIRTIO_BLK_SEG_MAX);
    c->blk_size = htole32(DISK_SECTOR);
    c->num_queues = htole16(1);
    c->max_discard_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
    c->max_discard_seg = htole32(BLK_DWZ_SEG_MAX);
    c->discard_sector_alignment = htole32(VIRTIO_BLK_DISCARD_ALIGNMENT);
    c->max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS);
    c->max_write_zeroes_seg = htole32(BLK_DWZ_SEG_MAX);
    c->write_zeroes_may_unmap = 1; /* unmap is honoured by punching a hole */

    if (cfg->id && *cfg->id) /* NUL-padded (calloc), unterminated if 20 bytes long */
        memcpy(b->id, cfg->id, strnlen(cfg->id, VIRTIO_BLK_ID_BYTES));
    else
        derive_id(cfg->path, b->id);
    memcpy(b->id_str, b->id, VIRTIO_BLK_ID_BYTES);
    b->vdev.id = b->id_str;

    b->nfree = VIRTIO_BLK_QUEUE_SIZE;
    for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
        b->free_slot[i] = (uint16_t)(VIRTIO_BLK_QUEUE_SIZE - 1 - i);

    r = evloop_add(loop, disk_event_fd(&b->disk), EPOLLIN, blk_on_io, b);
    if (r < 0) {
        snprintf(err, errlen, "cannot watch I/O completions of disk image %s: %s", cfg->path,
                 strerror(-r));
        blk_release(&b->vdev);
        return virtio_fail(-r);
    }
    b->watching = true;
    r = throttle_init(&b->throttle, &cfg->rl, loop, blk_on_throttle, b);
    if (r < 0) {
        snprintf(err, errlen, "the rate limiter of disk image %s: %s", cfg->path,
                 r == -EINVAL ? "a bucket with a size needs a refill_time" : strerror(-r));
        blk_release(&b->vdev);
        return virtio_fail(-r);
    }
    return &b->vdev;
}
