/* mem.c - virtio-mem: one request queue on which the guest plugs, unplugs
 * and asks about blocks of the hotplug region; see mem.h.
 *
 * The region is a window of the RAM memfd. The device keeps one bit per
 * block (plugged or not); unplugging punches a hole in the memfd
 * (guest_mem_discard), so the host gets the memory back. With a mapper, the
 * region is mapped into the guest slot by slot: a slot goes in with its
 * first plugged block and out with its last, so the guest cannot make the
 * host back memory in empty slots again (there its accesses exit as MMIO).
 *
 * Threads: requests run on the event loop, configuration reads on vCPU
 * threads, virtio_mem_set_requested/_get on the library's or API's
 * thread. All take vdev.lock, which protects everything here.
 */
#include "virtio/mem.h"

#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One request queue (5.15.2). The Linux driver keeps one request in
 * flight at a time; a few entries are plenty. */
#define VMEM_QUEUE_SIZE 128
/* Requests served per notification before other devices get a turn. Each
 * touches at most 65535 blocks (nb_blocks is 16 bits) and makes at most one
 * fallocate() call, so a turn is bounded whatever the guest sends. */
#define VMEM_BATCH 16

struct vmem {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct log_ratelimit host_err_rl;
    uint64_t addr, region_size, block_size;
    uint64_t nblocks;
    uint64_t *plugged; /* one bit per block */
    struct virtio_mem_mapper mapper; /* map NULL: all slots always mapped */
    uint64_t blocks_per_slot, nslots;
    uint32_t *slot_blocks; /* plugged blocks in each slot */
    /* Plain data, guarded by vdev.lock. */
    uint64_t plugged_size, requested_size;
    uint64_t plugs, unplugs, refused;
    /* Scratch, meaningful only inside one notification. */
    struct virtq_chain chain;
};

static const struct virtio_dev_ops vmem_ops;

static struct vmem *to_vmem(struct virtio_device *d)
{
    return (struct vmem *)d;
}

static struct vmem *vmem_of(struct virtio_device *d)
{
    return d && d->ops == &vmem_ops ? to_vmem(d) : NULL;
}

int memhp_config_check(const struct memhp_config *c, char *err, size_t errlen)
{
    const char *why = NULL;
    if (c->block_mib < MEMHP_BLOCK_MIB_MIN)
        why = "the block size must be at least 2 MiB";
    else if (c->block_mib & (c->block_mib - 1))
        why = "the block size must be a power of 2";
    else if (c->slot_mib < MEMHP_SLOT_MIB_MIN)
        why = "the slot size must be at least 128 MiB";
    else if (c->slot_mib % c->block_mib)
        why = "the slot size must be a multiple of the block size";
    else if (c->total_mib < c->slot_mib)
        why = "the total size must be at least the slot size";
    else if (c->total_mib % c->slot_mib)
        why = "the total size must be a multiple of the slot size";
    else if (c->total_mib > MEMHP_TOTAL_MIB_MAX)
        why = "the total size must be at most 1 TiB";
    else if (c->requested_mib > c->total_mib)
        why = "the requested size must be at most the total size";
    else if (c->requested_mib % c->block_mib)
        why = "the requested size must be a multiple of the block size";
    if (!why)
        return 0;
    snprintf(err, errlen,
             "memory hotplug of %" PRIu32 " MiB in %" PRIu32 " MiB blocks and %" PRIu32
             " MiB slots: %s",
             c->total_mib, c->block_mib, c->slot_mib, why);
    return -EINVAL;
}

/* ---- the block bitmap ------------------------------------------------------ */

static bool block_plugged(const struct vmem *m, uint64_t i)
{
    return m->plugged[i / 64] >> (i % 64) & 1;
}

/* Plugged blocks among [first, first + n). */
static uint64_t count_plugged(const struct vmem *m, uint64_t first, uint64_t n)
{
    uint64_t k = 0;
    for (uint64_t i = first; i < first + n; i++)
        k += block_plugged(m, i);
    return k;
}

/* Put slot @s into the guest's map or take it out; -errno logged. */
static int map_slot(struct vmem *m, uint64_t s, bool on)
{
    if (!m->mapper.map)
        return 0;
    int e = m->mapper.map(m->mapper.opaque, (unsigned)s, on);
    if (e < 0) {
        m->vdev.stats.errors++;
        if (log_ratelimit_ok(&m->host_err_rl))
            log_warn("virtio-mem: cannot %s slot %" PRIu64 ": %s", on ? "map" : "unmap", s,
                     strerror(-e));
    }
    return e;
}

/* Mark [first, first + n) plugged or not, keeping the slots' counts; a
 * slot whose last block goes is taken out of the guest's map. */
static void mark(struct vmem *m, uint64_t first, uint64_t n, bool plugged)
{
    for (uint64_t i = first; i < first + n; i++) {
        uint64_t s = i / m->blocks_per_slot;
        if (plugged) {
            m->plugged[i / 64] |= 1ull << (i % 64);
            m->slot_blocks[s]++;
        } else {
            m->plugged[i / 64] &= ~(1ull << (i % 64));
            if (!--m->slot_blocks[s])
                (void)map_slot(m, s, false);
        }
    }
}

/* Map the empty slots among those of [first, first + n) before their
 * blocks are plugged; on failure unmap what this call mapped. */
static int map_for_plug(struct vmem *m, uint64_t first, uint64_t n)
{
    uint64_t s0 = first / m->blocks_per_slot, s1 = (first + n - 1) / m->blocks_per_slot;
    for (uint64_t s = s0; s <= s1; s++) {
        if (m->slot_blocks[s] || map_slot(m, s, true) == 0)
            continue;
        while (s-- > s0)
            if (!m->slot_blocks[s])
                (void)map_slot(m, s, false);
        return -1;
    }
    return 0;
}

/* Give the memory of [first, first + n) back to the host. On failure the
 * pages stay allocated: the guest loses nothing, the host just does not
 * get the memory back. */
static void discard(struct vmem *m, uint64_t first, uint64_t n)
{
    uint64_t gpa = m->addr + first * m->block_size, len = n * m->block_size;
    int e = guest_mem_discard(m->vdev.mem, gpa, len);
    if (e < 0) {
        m->vdev.stats.errors++;
        if (log_ratelimit_ok(&m->host_err_rl))
            log_warn("virtio-mem: cannot discard %" PRIu64 " bytes at guest 0x%" PRIx64 ": %s",
                     len, gpa, strerror(-e));
    }
}

/* ---- requests -------------------------------------------------------------- */

/* Whether [addr, addr + nb blocks) is a block-aligned, non-empty range
 * inside the region; its first block in @first. Overflow-safe: only
 * subtractions and divisions of values already bounded. */
static bool range_ok(const struct vmem *m, uint64_t addr, uint16_t nb, uint64_t *first)
{
    if (!nb || addr < m->addr || (addr - m->addr) % m->block_size)
        return false;
    uint64_t f = (addr - m->addr) / m->block_size;
    if (f >= m->nblocks || nb > m->nblocks - f)
        return false;
    *first = f;
    return true;
}

static uint16_t vmem_plug(struct vmem *m, uint64_t addr, uint16_t nb)
{
    uint64_t first;
    if (!range_ok(m, addr, nb, &first)) {
        log_guest("virtio-mem: plug of %u blocks at 0x%" PRIx64 " outside the region", nb, addr);
        return VIRTIO_MEM_RESP_ERROR;
    }
    uint64_t size = nb * m->block_size;
    /* 5.15.6.2: never more than requested. */
    if (size > m->requested_size || m->plugged_size > m->requested_size - size)
        return VIRTIO_MEM_RESP_NACK;
    if (count_plugged(m, first, nb)) {
        log_guest("virtio-mem: plug of %u blocks at 0x%" PRIx64 ", some already plugged", nb,
                  addr);
        return VIRTIO_MEM_RESP_ERROR;
    }
    if (map_for_plug(m, first, nb) < 0)
        return VIRTIO_MEM_RESP_ERROR; /* the host failed: the guest may retry */
    mark(m, first, nb, true);
    m->plugged_size += size;
    m->plugs += nb;
    return VIRTIO_MEM_RESP_ACK;
}

static uint16_t vmem_unplug(struct vmem *m, uint64_t addr, uint16_t nb)
{
    uint64_t first;
    if (!range_ok(m, addr, nb, &first)) {
        log_guest("virtio-mem: unplug of %u blocks at 0x%" PRIx64 " outside the region", nb,
                  addr);
        return VIRTIO_MEM_RESP_ERROR;
    }
    if (count_plugged(m, first, nb) != nb) {
        log_guest("virtio-mem: unplug of %u blocks at 0x%" PRIx64 ", some not plugged", nb, addr);
        return VIRTIO_MEM_RESP_ERROR;
    }
    discard(m, first, nb);
    mark(m, first, nb, false);
    m->plugged_size -= nb * m->block_size;
    m->unplugs += nb;
    return VIRTIO_MEM_RESP_ACK;
}

static uint16_t vmem_unplug_all(struct vmem *m)
{
    if (m->plugged_size) {
        discard(m, 0, m->nblocks);
        m->unplugs += m->plugged_size / m->block_size;
    }
    for (uint64_t s = 0; s < m->nslots; s++)
        if (m->slot_blocks[s])
            (void)map_slot(m, s, false);
    memset(m->plugged, 0, (m->nblocks + 63) / 64 * sizeof(uint64_t));
    memset(m->slot_blocks, 0, m->nslots * sizeof(uint32_t));
    m->plugged_size = 0;
    return VIRTIO_MEM_RESP_ACK;
}

static uint16_t vmem_state(struct vmem *m, uint64_t addr, uint16_t nb, uint16_t *state)
{
    uint64_t first;
    if (!range_ok(m, addr, nb, &first)) {
        log_guest("virtio-mem: state of %u blocks at 0x%" PRIx64 " outside the region", nb,
                  addr);
        return VIRTIO_MEM_RESP_ERROR;
    }
    uint64_t k = count_plugged(m, first, nb);
    *state = k == nb ? VIRTIO_MEM_STATE_PLUGGED
             : k    ? VIRTIO_MEM_STATE_MIXED
                    : VIRTIO_MEM_STATE_UNPLUGGED;
    return VIRTIO_MEM_RESP_ACK;
}

/* One request (5.15.6): a 24-byte request readable, a 10-byte response
 * writable. A chain without room for the response is returned unanswered;
 * a short or unknown request is answered ERROR. */
static long vmem_request(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct vmem *m = to_vmem(d);
    (void)q;
    if (c->write_len < VIRTIO_MEM_RESP_SIZE) {
        log_guest("virtio-mem: request with %" PRIu64 " writable bytes (a response needs %u)",
                  c->write_len, VIRTIO_MEM_RESP_SIZE);
        d->stats.errors++;
        return 0;
    }
    uint8_t req[VIRTIO_MEM_REQ_SIZE] = {0};
    uint16_t resp = VIRTIO_MEM_RESP_ERROR, state = 0;
    if (virtq_chain_read(c, 0, req, sizeof(req)) < sizeof(req)) {
        log_guest("virtio-mem: request of %" PRIu64 " bytes (needs %u)", c->read_len,
                  VIRTIO_MEM_REQ_SIZE);
    } else {
        uint16_t type, nb;
        uint64_t addr;
        /* Copied out once: the guest cannot change them under the checks. */
        memcpy(&type, req, 2);
        memcpy(&addr, req + 8, 8);
        memcpy(&nb, req + 16, 2);
        type = le16toh(type);
        addr = le64toh(addr);
        nb = le16toh(nb);
        switch (type) {
        case VIRTIO_MEM_REQ_PLUG: resp = vmem_plug(m, addr, nb); break;
        case VIRTIO_MEM_REQ_UNPLUG: resp = vmem_unplug(m, addr, nb); break;
        case VIRTIO_MEM_REQ_UNPLUG_ALL: resp = vmem_unplug_all(m); break;
        case VIRTIO_MEM_REQ_STATE: resp = vmem_state(m, addr, nb, &state); break;
        default: log_guest("virtio-mem: unknown request type %u", type); break;
        }
    }
    if (resp != VIRTIO_MEM_RESP_ACK) {
        m->refused++;
        d->stats.errors += resp == VIRTIO_MEM_RESP_ERROR;
    }
    uint8_t out[VIRTIO_MEM_RESP_SIZE] = {0};
    resp = htole16(resp);
    state = htole16(state);
    memcpy(out, &resp, 2);
    memcpy(out + 8, &state, 2);
    return (long)virtq_chain_write(c, 0, out, sizeof(out));
}

static void vmem_notify(struct virtio_device *d, unsigned q)
{
    if (q != 0) {
        log_guest("virtio-mem: notification on queue %u, which does not exist", q);
        return;
    }
    virtio_queue_serve(d, q, &to_vmem(d)->chain, VMEM_BATCH, vmem_request);
}

/* ---- device ops ------------------------------------------------------------ */

static void vmem_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    struct vmem *m = to_vmem(d);
    struct virtio_mem_config cfg = {
        .block_size = htole64(m->block_size),
        .addr = htole64(m->addr),
        .region_size = htole64(m->region_size),
        /* The whole region is usable from the start: it is all mapped. */
        .usable_region_size = htole64(m->region_size),
        .plugged_size = htole64(m->plugged_size),
        .requested_size = htole64(m->requested_size),
    };
    memcpy(buf, (const uint8_t *)&cfg + off, len);
}

/* Reset keeps the plugged state (5.15.5: a reset does not change it); a
 * new driver finds plugged_size and unplugs what it does not know. */
static void vmem_reset(struct virtio_device *d)
{
    (void)d;
}

static void vmem_release(struct virtio_device *d)
{
    struct vmem *m = to_vmem(d);
    free(m->plugged);
    free(m->slot_blocks);
    virtio_device_release(d);
    free(m);
}

static const struct virtio_dev_ops vmem_ops = {
    .name = "virtio-mem",
    .device_id = VIRTIO_ID_MEM,
    .num_queues = 1,
    .queue_max_size = VMEM_QUEUE_SIZE,
    .config_size = sizeof(struct virtio_mem_config),
    .config_read = vmem_config_read,
    .reset = vmem_reset,
    .queue_notify = vmem_notify,
    .release = vmem_release,
};

/* ---- public API ------------------------------------------------------------ */

struct virtio_device *virtio_mem_create(const struct guest_mem *mem, uint64_t addr, uint64_t size,
                                        uint64_t block_size, uint64_t requested,
                                        uint64_t slot_size,
                                        const struct virtio_mem_mapper *mapper, char *err,
                                        size_t errlen)
{
    if (!mapper || !mapper->map)
        slot_size = size; /* one slot, always mapped */
    if (block_size < 4096 || (block_size & (block_size - 1)) || !size || size % block_size ||
        addr % block_size || requested > size || requested % block_size || !slot_size ||
        slot_size % block_size || size % slot_size || size / block_size > UINT32_MAX ||
        !guest_mem_ptr(mem, addr, size)) {
        snprintf(err, errlen,
                 "virtio-mem: the region of %" PRIu64 " MiB at 0x%" PRIx64
                 " does not fit its %" PRIu64 " KiB blocks or guest memory",
                 size >> 20, addr, block_size >> 10);
        return virtio_fail(EINVAL);
    }
    struct vmem *m = calloc(1, sizeof(*m));
    uint64_t nblocks = size / block_size;
    if (m) {
        m->plugged = calloc((nblocks + 63) / 64, sizeof(uint64_t));
        m->slot_blocks = calloc(size / slot_size, sizeof(uint32_t));
    }
    if (!m || !m->plugged || !m->slot_blocks) {
        if (m) {
            free(m->plugged);
            free(m->slot_blocks);
        }
        free(m);
        snprintf(err, errlen, "out of memory for the virtio-mem device");
        return virtio_fail(ENOMEM);
    }
    if (mapper && mapper->map)
        m->mapper = *mapper;
    m->blocks_per_slot = slot_size / block_size;
    m->nslots = size / slot_size;
    virtio_device_init(&m->vdev, &vmem_ops, mem,
                       m->mapper.map ? VIRTIO_BIT(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE) : 0);
    m->addr = addr;
    m->region_size = size;
    m->block_size = block_size;
    m->nblocks = nblocks;
    m->requested_size = requested;
    return &m->vdev;
}

int virtio_mem_set_requested(struct virtio_device *d, uint64_t bytes)
{
    struct vmem *m = vmem_of(d);
    if (!m)
        return -ENODEV;
    if (bytes > m->region_size || bytes % m->block_size)
        return -EINVAL;
    pthread_mutex_lock(&d->lock);
    m->requested_size = bytes;
    /* Interrupts only a running driver; one probing later reads it anyway. */
    virtio_notify_config(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int virtio_mem_get(struct virtio_device *d, struct virtio_mem_info *out)
{
    struct vmem *m = vmem_of(d);
    if (!m)
        return -ENODEV;
    pthread_mutex_lock(&d->lock);
    *out = (struct virtio_mem_info){
        .addr = m->addr,
        .region_size = m->region_size,
        .block_size = m->block_size,
        .plugged_size = m->plugged_size,
        .requested_size = m->requested_size,
        .plugs = m->plugs,
        .unplugs = m->unplugs,
        .refused = m->refused,
    };
    pthread_mutex_unlock(&d->lock);
    return 0;
}
