/* pmem.c - virtio-pmem: a host file mapped MAP_SHARED at a guest-physical
 * region outside RAM, announced through the configuration {start, size};
 * one request queue whose only request, FLUSH, makes the guest's writes to
 * the region durable by syncing the file on the event loop.
 *
 * The region itself is plain memory the guest touches directly (the VMM
 * gives the mapping to the hypervisor); the device never reads it. What the
 * guest controls here is the request queue: every chain is checked for a
 * 4-byte request it can read and a 4-byte status it can write. */
#include "virtio/pmem.h"

#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Flush requests served per notification before yielding: each may sync
 * the file, which can take long; the rest wait for the next round. */
#define PMEM_MAX_BATCH 32

/* virtio_pmem_config (5.19.4): two little-endian u64. */
struct pmem_cfg_space {
    uint64_t start;
    uint64_t size;
};

struct pmem {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct pmem_cfg_space cfg; /* little-endian, as the guest reads it */
    int fd;
    uint8_t *map;       /* region_size bytes: the file, then anonymous padding */
    uint64_t region_size;
    uint64_t file_size;
    bool readonly;
    struct throttle throttle;
    /* One sync answers every request the driver had published when it
     * started (their writes came first), so a batch syncs once: -1 none
     * yet in this round, else the status it gave, for the chains before
     * avail index @covered. Reset per notification. */
    int batch_status;
    uint16_t covered;
    struct virtq_chain chain;
};

static struct pmem *to_pmem(struct virtio_device *d)
{
    return (struct pmem *)d;
}

uint64_t virtio_pmem_region_size(uint64_t file_size)
{
    if (file_size > UINT64_MAX - (VIRTIO_PMEM_ALIGN - 1))
        return 0;
    return (file_size + VIRTIO_PMEM_ALIGN - 1) & ~(VIRTIO_PMEM_ALIGN - 1);
}

static void pmem_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    /* The transport keeps off + len within config_size. */
    memcpy(buf, (const uint8_t *)&to_pmem(d)->cfg + off, len);
}

/* Make the guest's writes so far durable: the status for the driver. */
static uint32_t pmem_sync(struct pmem *p)
{
    if (p->readonly)
        return VIRTIO_PMEM_RESP_OK; /* nothing the guest wrote can be in the file */
    /* fdatasync writes back every dirty page of the file, the ones dirtied
     * through the guest's shared mapping included (they are the file's page
     * cache), and the metadata needed to read them back. */
    while (fdatasync(p->fd) < 0) {
        if (errno == EINTR)
            continue;
        log_warn("virtio-pmem %s: syncing the backing file failed: %s",
                 p->vdev.id ? p->vdev.id : "", strerror(errno));
        return VIRTIO_PMEM_RESP_EIO;
    }
    log_debug("virtio-pmem %s: flushed", p->vdev.id ? p->vdev.id : "");
    return VIRTIO_PMEM_RESP_OK;
}

static long pmem_request(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct pmem *p = to_pmem(d);
    uint32_t status = VIRTIO_PMEM_RESP_EIO;
    if (c->write_len < sizeof(status)) {
        /* Nowhere to answer: give the chain back untouched. */
        log_guest("virtio-pmem: request without a 4-byte status buffer");
        d->stats.errors++;
        return 0;
    }
    uint32_t type;
    if (c->read_len < sizeof(type) || virtq_chain_read(c, 0, &type, sizeof(type)) != sizeof(type)) {
        log_guest("virtio-pmem: request without a 4-byte type");
        d->stats.errors++;
    } else if (le32toh(type) != VIRTIO_PMEM_REQ_TYPE_FLUSH) {
        log_guest("virtio-pmem: unknown request type %u", le32toh(type));
        d->stats.errors++;
    } else {
        /* This chain's position is last_avail - 1: covered by the round's
         * sync when last_avail <= covered (modulo 2^16, within a ring). */
        struct virtq *vq = &d->vq[q];
        if (p->batch_status < 0 || (uint16_t)(p->covered - vq->last_avail) > vq->size) {
            if (!throttle_take(&p->throttle, p->file_size))
                return VIRTIO_STOP; /* its timer serves the queue again */
            /* What the driver has published now; acquire: its writes
             * before publishing are visible to the sync that follows. */
            p->covered = le16toh(__atomic_load_n((const uint16_t *)(vq->avail + 2),
                                                 __ATOMIC_ACQUIRE));
            p->batch_status = (int)pmem_sync(p);
        }
        status = (uint32_t)p->batch_status;
        if (status != VIRTIO_PMEM_RESP_OK)
            d->stats.errors++;
    }
    uint32_t le = htole32(status);
    return (long)virtq_chain_write(c, 0, &le, sizeof(le));
}

static void pmem_notify(struct virtio_device *d, unsigned q)
{
    struct pmem *p = to_pmem(d);
    p->batch_status = -1;
    virtio_queue_serve(d, q, &p->chain, PMEM_MAX_BATCH, pmem_request);
}

/* The rate limiter lets flushes go again. */
static void pmem_on_throttle(void *opaque, uint32_t events)
{
    struct pmem *p = opaque;
    (void)events;
    pthread_mutex_lock(&p->vdev.lock);
    if (virtio_device_live(&p->vdev) && p->vdev.vq[0].ready)
        pmem_notify(&p->vdev, 0);
    pthread_mutex_unlock(&p->vdev.lock);
}

int virtio_pmem_set_rate_limiter(struct virtio_device *d, const struct rate_limiter_config *c)
{
    if (!d || d->ops->device_id != VIRTIO_ID_PMEM)
        return -ENODEV;
    pthread_mutex_lock(&d->lock);
    int r = throttle_update(&to_pmem(d)->throttle, c);
    pthread_mutex_unlock(&d->lock);
    return r;
}

int virtio_pmem_region(struct virtio_device *d, uint64_t *gpa, void **hva, uint64_t *size,
                       bool *readonly)
{
    if (!d || d->ops->device_id != VIRTIO_ID_PMEM)
        return -ENODEV;
    struct pmem *p = to_pmem(d);
    *gpa = le64toh(p->cfg.start);
    *hva = p->map;
    *size = p->region_size;
    *readonly = p->readonly;
    return 0;
}

static void pmem_release(struct virtio_device *d)
{
    struct pmem *p = to_pmem(d);
    throttle_release(&p->throttle);
    if (p->map)
        munmap(p->map, p->region_size);
    if (p->fd >= 0)
        close(p->fd);
    virtio_device_release(d);
    free(p);
}

static const struct virtio_dev_ops pmem_ops = {
    .name = "virtio-pmem",
    .device_id = VIRTIO_ID_PMEM,
    .num_queues = 1,
    .queue_max_size = 256,
    .config_size = sizeof(struct pmem_cfg_space),
    .config_read = pmem_config_read,
    .queue_notify = pmem_notify,
    .release = pmem_release,
};

/* The file's mapping: anonymous memory for the whole region (reads as
 * zeros past the end of the file; never written back), then the file
 * MAP_FIXED over its start. The guest may touch any byte of the region, so
 * nothing in it may fault with SIGBUS. */
static int pmem_map(struct pmem *p, char *err, size_t errlen, const char *path)
{
    int prot = PROT_READ | (p->readonly ? 0 : PROT_WRITE);
    void *base = mmap(NULL, p->region_size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (base == MAP_FAILED) {
        snprintf(err, errlen, "pmem %s: reserving %llu MiB of address space failed: %s", path,
                 (unsigned long long)(p->region_size >> 20), strerror(errno));
        return -errno;
    }
    p->map = base;
    void *f = mmap(base, p->file_size, prot, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, p->fd, 0);
    if (f == MAP_FAILED) {
        snprintf(err, errlen, "pmem %s: mapping the file failed: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

struct virtio_device *virtio_pmem_create(const struct guest_mem *mem, const struct pmem_config *cfg,
                                         uint64_t gpa, struct evloop *loop, char *err,
                                         size_t errlen)
{
    if (gpa & (VIRTIO_PMEM_ALIGN - 1)) {
        snprintf(err, errlen, "pmem %s: guest address 0x%llx is not 2 MiB aligned", cfg->path,
                 (unsigned long long)gpa);
        return virtio_fail(EINVAL);
    }
    struct pmem *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory for pmem %s", cfg->path);
        return virtio_fail(ENOMEM);
    }
    p->throttle.timer_fd = -1;
    p->readonly = cfg->readonly;
    p->fd = open(cfg->path, (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    virtio_device_init(&p->vdev, &pmem_ops, mem, 0);
    p->vdev.id = cfg->id;
    int r;
    struct stat st;
    if (p->fd < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot open pmem file %s: %s", cfg->path, strerror(errno));
    } else if (fstat(p->fd, &st) < 0) {
        r = -errno;
        snprintf(err, errlen, "pmem file %s: %s", cfg->path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        snprintf(err, errlen, "pmem file %s is not a regular file", cfg->path);
    } else if (st.st_size <= 0) {
        r = -EINVAL;
        snprintf(err, errlen, "pmem file %s is empty", cfg->path);
    } else if (!(p->region_size = virtio_pmem_region_size((uint64_t)st.st_size)) ||
               gpa + p->region_size < gpa) {
        r = -EFBIG;
        snprintf(err, errlen, "pmem file %s is too large", cfg->path);
    } else {
        p->file_size = (uint64_t)st.st_size;
        r = pmem_map(p, err, errlen, cfg->path);
    }
    if (r == 0 && (r = throttle_init(&p->throttle, &cfg->rl, loop, pmem_on_throttle, p)) < 0)
        snprintf(err, errlen, "the rate limiter of pmem %s: %s", cfg->path,
                 r == -EINVAL ? "a bucket with a size needs a refill_time" : strerror(-r));
    if (r < 0) {
        pmem_release(&p->vdev);
        return virtio_fail(-r);
    }
    p->cfg.start = htole64(gpa);
    p->cfg.size = htole64(p->region_size);
    return &p->vdev;
}
