/* balloon.h - virtio memory balloon (virtio 1.2, 5.5): the host asks the
 * guest for pages, the guest hands them over and arcvm gives their memory
 * back to the host (a hole punched in the RAM memfd); with the optional
 * queues the guest also reports memory statistics and free pages. */
#ifndef ARCVM_VIRTIO_BALLOON_H
#define ARCVM_VIRTIO_BALLOON_H

#include "virtio/virtio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --balloon SIZE[,deflate-on-oom][,stats=SECONDS][,free-page-reporting]
 *           [,free-page-hinting] */
struct balloon_config {
    bool enabled;
    uint32_t target_mib;     /* initial inflation */
    bool deflate_on_oom;
    uint32_t stats_interval_s; /* 0: no statistics queue */
    bool free_page_reporting;
    bool free_page_hinting;
};
struct evloop;

/* Feature bits (5.5.3). arcvm offers STATS_VQ, DEFLATE_ON_OOM,
 * FREE_PAGE_HINT and PAGE_REPORTING as configured; never MUST_TELL_HOST
 * (deflated pages need no host action before the guest reuses them) or
 * PAGE_POISON. */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

/* Page frame numbers on the inflate/deflate queues count 4 KiB pages
 * whatever the guest's own page size (5.5.6). */
#define VIRTIO_BALLOON_PFN_SHIFT     12
#define VIRTIO_BALLOON_PAGE_SIZE     (1u << VIRTIO_BALLOON_PFN_SHIFT)
#define VIRTIO_BALLOON_PAGES_PER_MIB (1u << (20 - VIRTIO_BALLOON_PFN_SHIFT))

/* Statistics tags (5.5.6.3); 10 and up are Linux extensions (6.11+) that
 * a guest may send too. */
enum {
    VIRTIO_BALLOON_S_SWAP_IN = 0,      /* bytes swapped in */
    VIRTIO_BALLOON_S_SWAP_OUT = 1,     /* bytes swapped out */
    VIRTIO_BALLOON_S_MAJFLT = 2,       /* major page faults */
    VIRTIO_BALLOON_S_MINFLT = 3,       /* minor page faults */
    VIRTIO_BALLOON_S_MEMFREE = 4,      /* bytes of unused memory */
    VIRTIO_BALLOON_S_MEMTOT = 5,       /* bytes of memory in total */
    VIRTIO_BALLOON_S_AVAIL = 6,        /* bytes available without swapping */
    VIRTIO_BALLOON_S_CACHES = 7,       /* bytes of disk caches */
    VIRTIO_BALLOON_S_HTLB_PGALLOC = 8, /* hugetlb page allocations */
    VIRTIO_BALLOON_S_HTLB_PGFAIL = 9,  /* hugetlb allocation failures */
    VIRTIO_BALLOON_S_OOM_KILL = 10,
    VIRTIO_BALLOON_S_ALLOC_STALL = 11,
    VIRTIO_BALLOON_S_ASYNC_SCAN = 12,
    VIRTIO_BALLOON_S_DIRECT_SCAN = 13,
    VIRTIO_BALLOON_S_ASYNC_RECLAIM = 14,
    VIRTIO_BALLOON_S_DIRECT_RECLAIM = 15,
    VIRTIO_BALLOON_S_NR = 16
};

/* The device configuration layout (5.5.4), little-endian fields.
 * free_page_hint_cmd_id means something only with FREE_PAGE_HINT;
 * poison_val (PAGE_POISON, never offered) reads as zero. */
struct virtio_balloon_config {
    uint32_t num_pages; /* target: pages the host wants in the balloon */
    uint32_t actual;    /* written by the driver: pages it has given */
    uint32_t free_page_hint_cmd_id;
    uint32_t poison_val;
};
_Static_assert(sizeof(struct virtio_balloon_config) == 16, "virtio_balloon_config layout (5.5.4)");

/* The guest's latest statistics: val[tag] is meaningful when bit tag of
 * @valid is set (a guest sends the tags it knows). */
struct virtio_balloon_stats {
    uint32_t valid;
    uint64_t val[VIRTIO_BALLOON_S_NR];
};

/* A snapshot of the balloon for the library and the Firecracker API
 * (GET /balloon, GET /balloon/statistics). */
struct virtio_balloon_info {
    uint32_t target_pages, target_mib; /* what the host asked for */
    uint32_t actual_pages, actual_mib; /* what the driver says it holds */
    bool deflate_on_oom;               /* offered (configuration) */
    bool free_page_reporting;          /* offered (configuration) */
    bool free_page_hinting;            /* offered (configuration) */
    bool stats_enabled;                /* statistics queue offered */
    uint32_t stats_interval_s;         /* how often fresh statistics are asked for */
    uint64_t stats_updates;            /* statistics buffers received; 0: @stats is empty */
    uint64_t stats_time_ns;            /* CLOCK_MONOTONIC of the last one */
    struct virtio_balloon_stats stats;
    /* Host-side counters since creation. */
    uint64_t inflated_pages; /* PFNs given to the host and discarded */
    uint64_t deflated_pages; /* PFNs taken back by the guest */
    uint64_t reported_bytes; /* free memory reported and discarded */
    uint64_t bad_pfns;       /* PFNs outside guest RAM, ignored */
};

/* Create a balloon for @cfg (cfg->target_mib: initial target, at most the
 * guest's RAM). With cfg->stats_interval_s > 0 a timer on @loop asks the
 * guest for statistics that often (@loop may be NULL without statistics).
 * Returns the device, freed through its ops->release (which also leaves
 * @loop), or NULL with one user-facing sentence in @err. */
struct virtio_device *virtio_balloon_create(const struct guest_mem *mem,
                                            const struct balloon_config *cfg, struct evloop *loop,
                                            char *err, size_t errlen);

/* Set the target to @target_mib and tell the driver (configuration change
 * interrupt once it is running). Callable from any thread; takes d->lock,
 * so never call it with the lock held. 0, -EINVAL when @target_mib exceeds
 * the guest's RAM, -ENODEV when @d is not a balloon. */
int virtio_balloon_set_target(struct virtio_device *d, uint32_t target_mib);

/* Change how often statistics are asked for (Firecracker's PATCH
 * /balloon/statistics). Statistics cannot be switched on or off after
 * creation: -ENOTSUP when they were not configured, -EINVAL for 0,
 * -ENODEV when @d is not a balloon. Any thread; takes d->lock. */
int virtio_balloon_set_stats_interval(struct virtio_device *d, uint32_t seconds);

/* Fill @out with the current state. Any thread; takes d->lock. 0, or
 * -ENODEV when @d is not a balloon. */
int virtio_balloon_get(struct virtio_device *d, struct virtio_balloon_info *out);

/* Free page hinting (Firecracker's /balloon/hinting/start and stop):
 * @start: ask the guest for a new run of hints (a fresh command id); its
 * STOP at the end of the run is answered with DONE when @ack_on_stop.
 * !@start: DONE, the guest may use the hinted pages again. Any thread;
 * takes d->lock. 0, -ENOTSUP without hinting configured, -ENODEV when @d
 * is not a balloon. */
int virtio_balloon_hint(struct virtio_device *d, bool start, bool ack_on_stop);
struct virtio_balloon_hint {
    uint32_t host_cmd;     /* the id the host published (0 STOP, 1 DONE, else a run) */
    uint32_t guest_cmd;    /* the last id the guest sent, if guest_cmd_valid */
    bool guest_cmd_valid;
    uint64_t hinted_pages; /* 4 KiB pages hinted and discarded since creation */
};
int virtio_balloon_hint_status(struct virtio_device *d, struct virtio_balloon_hint *out);

/* Firecracker's JSON name of statistics tag @tag ("swap_in", ...,
 * "hugetlb_failures"; Cloud Hypervisor's names for the Linux extensions),
 * or NULL for a tag out of range. */
const char *virtio_balloon_stat_name(unsigned tag);

#endif
