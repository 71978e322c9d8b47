/* balloon.c - virtio-balloon: inflate/deflate queues of page frame numbers,
 * an optional statistics queue, free page hinting and free page reporting
 * queues.
 *
 * Inflated and reported pages are discarded from the RAM memfd
 * (guest_mem_discard), so the host really gets the memory back; deflated
 * pages need nothing (the guest faults them back in, zero-filled).
 *
 * Threads: queue notifications and the statistics timer run on the event
 * loop; configuration access and status changes on vCPU threads;
 * virtio_balloon_set_target/_get on whatever thread the library or API
 * uses. All of them take vdev.lock, which protects everything here.
 */
#include "virtio/balloon.h"

#include "base/evloop.h"
#include "base/log.h"
#include "base/snap.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Queue indices (5.5.2). The specification numbers the optional queues
 * as if all of them existed (stats 2, free page hint 3, reporting 4),
 * while Linux's virtio-mmio/PCI code skips absent ones, so the reporting
 * queue of a Linux guest is 2 + (stats negotiated) (seen with Debian's
 * 6.1: queue 2 without statistics, 3 with). The device offers 5 queues
 * and decides at DRIVER_OK which numbering the driver used (see
 * balloon_activate). */
#define BALLOON_Q_INFLATE        0
#define BALLOON_Q_DEFLATE        1
#define BALLOON_Q_STATS          2
#define BALLOON_Q_HINT_SPEC      3
#define BALLOON_Q_REPORTING_SPEC 4
#define BALLOON_NUM_QUEUES       5

/* Entries per queue: Linux refuses free page reporting on a queue smaller
 * than its 32-entry report (PAGE_REPORTING_CAPACITY); the other queues
 * keep one or two buffers in flight. */
#define BALLOON_QUEUE_SIZE 128
/* PFNs taken from one inflate/deflate chain. Linux sends at most 256 per
 * chain (VIRTIO_BALLOON_ARRAY_PFNS_MAX); 4096 (a 16 KiB array) leaves room
 * for other drivers and bounds what a hostile chain costs: the excess is
 * ignored and counted as an error. */
#define BALLOON_MAX_PFNS 4096
/* Chains served per notification before yielding to other devices: with
 * the cap above, at most 64 Ki PFNs (and as many fallocate calls in the
 * worst, fully fragmented, case) per turn of the event loop. */
#define BALLOON_BATCH 16
/* Entries {le16 tag; le64 val} read from one statistics buffer: Linux
 * sends at most 16 (one per tag it knows); the rest of a larger buffer
 * is ignored. */
#define BALLOON_STATS_MAX_ENTRIES 64
#define BALLOON_STAT_BYTES        10 /* sizeof(struct virtio_balloon_stat): packed u16 + u64 */

#define PAGE VIRTIO_BALLOON_PAGE_SIZE

enum balloon_role { ROLE_NONE, ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_HINT, ROLE_REPORTING };

/* Free page hinting command ids (5.5.6.6): 0 and 1 are STOP and DONE, a
 * run has any other id. */
#define HINT_CMD_STOP 0
#define HINT_CMD_DONE 1
#define HINT_CMD_FIRST 2

struct balloon {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct evloop *loop;
    int timer_fd;     /* statistics timer, -1 without statistics */
    bool watching;    /* timer_fd is on @loop */
    uint32_t ram_mib; /* guest RAM: the largest target */
    struct log_ratelimit host_err_rl;
    /* Plain data: what a snapshot would save (with vdev). */
    struct virtio_balloon_config cfg; /* little-endian, as the driver reads it */
    bool deflate_on_oom, free_page_reporting, free_page_hinting;
    /* Free page hinting: the last id the guest sent on the hint queue
     * (valid once it sent one), whether its STOP ends the run with DONE,
     * the next run's id. */
    uint32_t guest_cmd;
    bool guest_cmd_valid, hint_ack_on_stop;
    uint32_t next_cmd;
    uint64_t hinted_pages;
    uint32_t stats_interval_s;       /* 0: no statistics queue */
    uint8_t role[VIRTIO_MAX_QUEUES]; /* enum balloon_role of each queue, set at DRIVER_OK */
    unsigned stats_q;                /* queue index of the statistics queue */
    bool stats_held;                 /* the driver's statistics buffer is ours */
    uint16_t stats_head;             /* ... and this is its chain */
    uint64_t stats_updates, stats_time_ns;
    struct virtio_balloon_stats stats;
    uint64_t inflated_pages, deflated_pages, reported_bytes, bad_pfns;
    /* Scratch, meaningful only inside one notification. */
    bool stats_pushed;
    uint32_t pfns[BALLOON_MAX_PFNS];
    struct virtq_chain chain;
};

static const struct virtio_dev_ops balloon_ops;

static struct balloon *to_balloon(struct virtio_device *d)
{
    return (struct balloon *)d;
}

static struct balloon *balloon_of(struct virtio_device *d)
{
    return d && d->ops == &balloon_ops ? to_balloon(d) : NULL;
}

/* ---- discarding guest RAM ------------------------------------------------ */

/* A range of guest-physical pages waiting to be discarded: contiguous
 * pages are collected so that one fallocate() frees them all. */
struct run {
    uint64_t gpa, len;
    uint64_t done; /* bytes discarded so far */
};

static void run_flush(struct balloon *b, struct run *r)
{
    if (!r->len)
        return;
    int e = guest_mem_discard(b->vdev.mem, r->gpa, r->len);
    if (e < 0) {
        /* The pages stay allocated: the guest loses nothing, the host
         * just does not get the memory back. */
        b->vdev.stats.errors++;
        if (log_ratelimit_ok(&b->host_err_rl))
            log_warn("virtio-balloon: cannot discard %" PRIu64 " bytes at guest 0x%" PRIx64 ": %s",
                     r->len, r->gpa, strerror(-e));
    } else {
        r->done += r->len;
    }
    r->len = 0;
}

/* Add [gpa, gpa + len), page-aligned and inside guest RAM, to @r. */
static void run_add(struct balloon *b, struct run *r, uint64_t gpa, uint64_t len)
{
    /* Extend only while the whole run stays inside one RAM region (the
     * regions around the MMIO hole are not contiguous in the memfd). */
    if (r->len && gpa == r->gpa + r->len && guest_mem_ptr(b->vdev.mem, r->gpa, r->len + len)) {
        r->len += len;
        return;
    }
    run_flush(b, r);
    r->gpa = gpa;
    r->len = len;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* ---- queues ---------------------------------------------------------------- */

/* One inflate or deflate chain: an array of little-endian u32 PFNs in its
 * readable part (5.5.6.1, 5.5.6.2). Each PFN is checked on its own; one
 * outside RAM is counted and skipped, the rest are still handled. */
static long balloon_pfns(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct balloon *b = to_balloon(d);
    bool inflate = b->role[q] == ROLE_INFLATE;
    uint64_t n = c->read_len / sizeof(uint32_t);
    if (c->read_len % sizeof(uint32_t) || c->nwrite) {
        log_guest("virtio-balloon: %s request of %" PRIu64 " readable and %" PRIu64
                  " writable bytes (whole PFNs, readable only)",
                  inflate ? "inflate" : "deflate", c->read_len, c->write_len);
        d->stats.errors++;
    }
    if (n > BALLOON_MAX_PFNS) {
        log_guest("virtio-balloon: %" PRIu64 " PFNs in one request; the first %u are used", n,
                  BALLOON_MAX_PFNS);
        d->stats.errors++;
        n = BALLOON_MAX_PFNS;
    }
    /* Copied out once: the guest cannot change them under the checks. */
    virtq_chain_read(c, 0, b->pfns, n * sizeof(uint32_t));
    for (uint64_t i = 0; i < n; i++)
        b->pfns[i] = le32toh(b->pfns[i]);

    uint64_t bad = 0, good = 0;
    if (inflate) {
        /* Sorted, adjacent PFNs meet even if the driver listed them in
         * another order (Linux's allocator often hands out descending
         * pages), so each contiguous range costs one fallocate(). */
        qsort(b->pfns, n, sizeof(uint32_t), cmp_u32);
        struct run r = {0};
        for (uint64_t i = 0; i < n; i++) {
            if (i && b->pfns[i] == b->pfns[i - 1])
                continue; /* the same page twice: once is enough */
            uint64_t gpa = (uint64_t)b->pfns[i] << VIRTIO_BALLOON_PFN_SHIFT;
            if (!guest_mem_ptr(d->mem, gpa, PAGE)) {
                bad++;
                continue;
            }
            good++;
            run_add(b, &r, gpa, PAGE);
        }
        run_flush(b, &r);
        b->inflated_pages += good;
    } else {
        for (uint64_t i = 0; i < n; i++) {
            if (guest_mem_ptr(d->mem, (uint64_t)b->pfns[i] << VIRTIO_BALLOON_PFN_SHIFT, PAGE))
                good++;
            else
                bad++;
        }
        b->deflated_pages += good;
    }
    if (bad) {
        log_guest("virtio-balloon: %" PRIu64 " of %" PRIu64 " %s PFNs are not guest RAM", bad, n,
                  inflate ? "inflate" : "deflate");
        b->bad_pfns += bad;
        d->stats.errors++;
    }
    d->stats.out_bytes += n * sizeof(uint32_t);
    return 0; /* the device writes nothing back */
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The driver's statistics buffer (5.5.6.3): entries {le16 tag; le64 val}
 * packed. The device keeps the buffer until the timer asks for fresh
 * numbers by giving it back. */
static long balloon_stats(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct balloon *b = to_balloon(d);
    if (b->stats_held) {
        /* A second buffer while we hold one breaks 5.5.6.3's protocol;
         * return the old one so the driver does not leak it. */
        log_guest("virtio-balloon: a new statistics buffer while the device holds one");
        d->stats.errors++;
        virtq_push(&d->vq[q], b->stats_head, 0);
        b->stats_pushed = true;
    }
    uint64_t n = c->read_len / BALLOON_STAT_BYTES;
    if (c->read_len % BALLOON_STAT_BYTES || c->nwrite) {
        log_guest("virtio-balloon: statistics buffer of %" PRIu64 " readable and %" PRIu64
                  " writable bytes",
                  c->read_len, c->write_len);
        d->stats.errors++;
    }
    if (n > BALLOON_STATS_MAX_ENTRIES)
        n = BALLOON_STATS_MAX_ENTRIES;
    struct virtio_balloon_stats s = {0};
    for (uint64_t i = 0; i < n; i++) {
        uint8_t e[BALLOON_STAT_BYTES];
        uint16_t tag;
        uint64_t val;
        virtq_chain_read(c, i * BALLOON_STAT_BYTES, e, sizeof(e));
        memcpy(&tag, e, sizeof(tag));
        memcpy(&val, e + 2, sizeof(val));
        tag = le16toh(tag);
        if (tag >= VIRTIO_BALLOON_S_NR)
            continue; /* 5.5.6.3: the device ignores tags it does not know */
        s.valid |= 1u << tag;
        s.val[tag] = le64toh(val);
    }
    b->stats = s;
    b->stats_updates++;
    b->stats_time_ns = now_ns();
    d->stats.out_bytes += c->read_len;
    b->stats_held = true;
    b->stats_head = c->head;
    return VIRTIO_DEFER; /* given back by the timer */
}

/* Free page reporting (5.5.6.7): each buffer of the chain is a range of
 * free guest memory; discard the whole pages in it and return the chain. */
static long balloon_report(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct balloon *b = to_balloon(d);
    (void)q;
    struct run r = {0};
    for (unsigned i = 0; i < c->nread + c->nwrite; i++) {
        uint64_t gpa;
        if (guest_mem_gpa(d->mem, c->buf[i].hva, c->buf[i].len, &gpa) < 0)
            continue; /* not reached: queue.c hands out RAM only */
        /* Only whole pages: a partial one may hold data the guest still
         * uses. gpa + len cannot overflow: the buffer lies inside RAM. */
        uint64_t start = (gpa + PAGE - 1) & ~(uint64_t)(PAGE - 1);
        uint64_t end = (gpa + c->buf[i].len) & ~(uint64_t)(PAGE - 1);
        if (end > start)
            run_add(b, &r, start, end - start);
    }
    run_flush(b, &r);
    b->reported_bytes += r.done;
    return 0; /* 5.5.6.7: nothing written; the used length is 0 */
}

/* Free page hinting (5.5.6.6): a readable 4-byte command id (the guest
 * starts a run with the host's id and ends it with STOP), or writable
 * buffers of free pages, discarded only while the guest reports for the
 * run the host asked for: the guest keeps those pages to itself until the
 * host says DONE, so nothing the guest still uses is lost. */
static long balloon_hint(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct balloon *b = to_balloon(d);
    (void)q;
    if (c->nread) {
        uint32_t id = 0;
        if (c->read_len != sizeof(id) || c->nwrite) {
            log_guest("virtio-balloon: hint command of %" PRIu64 " readable and %" PRIu64
                      " writable bytes",
                      c->read_len, c->write_len);
            d->stats.errors++;
            return 0;
        }
        virtq_chain_read(c, 0, &id, sizeof(id));
        b->guest_cmd = le32toh(id);
        b->guest_cmd_valid = true;
        if (b->guest_cmd == HINT_CMD_STOP && b->hint_ack_on_stop &&
            le32toh(b->cfg.free_page_hint_cmd_id) >= HINT_CMD_FIRST) {
            b->cfg.free_page_hint_cmd_id = htole32(HINT_CMD_DONE);
            virtio_notify_config(d);
        }
        return 0;
    }
    uint32_t host = le32toh(b->cfg.free_page_hint_cmd_id);
    if (!b->guest_cmd_valid || b->guest_cmd != host || host < HINT_CMD_FIRST)
        return 0; /* a stale run's pages: the guest may be using them again */
    struct run r = {0};
    for (unsigned i = 0; i < c->nwrite; i++) {
        const struct virtq_buf *buf = &c->buf[c->nread + i];
        uint64_t gpa;
        if (guest_mem_gpa(d->mem, buf->hva, buf->len, &gpa) < 0)
            continue; /* not reached: queue.c hands out RAM only */
        uint64_t start = (gpa + PAGE - 1) & ~(uint64_t)(PAGE - 1);
        uint64_t end = (gpa + buf->len) & ~(uint64_t)(PAGE - 1);
        if (end > start)
            run_add(b, &r, start, end - start);
    }
    run_flush(b, &r);
    b->hinted_pages += r.done / PAGE;
    return 0; /* nothing written: the used length is 0 */
}

static void balloon_notify(struct virtio_device *d, unsigned q)
{
    struct balloon *b = to_balloon(d);
    switch (q < VIRTIO_MAX_QUEUES ? b->role[q] : ROLE_NONE) {
    case ROLE_INFLATE:
    case ROLE_DEFLATE:
        virtio_queue_serve(d, q, &b->chain, BALLOON_BATCH, balloon_pfns);
        break;
    case ROLE_STATS:
        b->stats_pushed = false;
        virtio_queue_serve(d, q, &b->chain, BALLOON_BATCH, balloon_stats);
        if (b->stats_pushed)
            virtio_notify_used(d, q);
        break;
    case ROLE_REPORTING:
        virtio_queue_serve(d, q, &b->chain, BALLOON_BATCH, balloon_report);
        break;
    case ROLE_HINT:
        virtio_queue_serve(d, q, &b->chain, BALLOON_BATCH, balloon_hint);
        break;
    default:
        log_guest("virtio-balloon: notification on queue %u, which has no function", q);
        break;
    }
}

/* ---- statistics timer -------------------------------------------------- */

static int timer_arm(struct balloon *b, uint32_t seconds)
{
    if (b->timer_fd < 0)
        return 0;
    struct itimerspec its = {.it_interval = {(time_t)seconds, 0}, .it_value = {(time_t)seconds, 0}};
    return timerfd_settime(b->timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

/* Every interval: give the statistics buffer back; the driver refills it
 * with fresh numbers and posts it again (5.5.6.3). */
static void balloon_on_timer(void *opaque, uint32_t events)
{
    struct balloon *b = opaque;
    struct virtio_device *d = &b->vdev;
    uint64_t ticks;
    (void)events;
    (void)!read(b->timer_fd, &ticks, sizeof(ticks));
    pthread_mutex_lock(&d->lock);
    if (b->stats_held && virtio_device_live(d) && d->vq[b->stats_q].ready) {
        b->stats_held = false;
        virtq_push(&d->vq[b->stats_q], b->stats_head, 0);
        virtio_notify_used(d, b->stats_q);
    }
    pthread_mutex_unlock(&d->lock);
}

/* ---- device ops ---------------------------------------------------------- */

/* DRIVER_OK: decide what each queue is. Inflate and deflate are always 0
 * and 1, statistics 2, hinting 3, reporting 4 for a driver that numbers
 * queues as the specification lists them (it enabled a queue past the
 * count of those negotiated); else each optional queue takes the next
 * index after the queues negotiated before it (Linux). */
static int balloon_activate(struct virtio_device *d)
{
    struct balloon *b = to_balloon(d);
    memset(b->role, ROLE_NONE, sizeof(b->role));
    b->role[BALLOON_Q_INFLATE] = ROLE_INFLATE;
    b->role[BALLOON_Q_DEFLATE] = ROLE_DEFLATE;
    bool stats = virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ);
    bool hint = virtio_has(d, VIRTIO_BALLOON_F_FREE_PAGE_HINT);
    bool rep = virtio_has(d, VIRTIO_BALLOON_F_PAGE_REPORTING);
    unsigned n = 2 + stats + hint + rep, next = BALLOON_Q_STATS;
    bool spec = false;
    for (unsigned q = n; q < BALLOON_NUM_QUEUES; q++)
        spec |= d->vq[q].ready;
    if (stats) {
        b->stats_q = BALLOON_Q_STATS;
        b->role[BALLOON_Q_STATS] = ROLE_STATS;
        next++;
    }
    if (hint) {
        unsigned q = spec ? BALLOON_Q_HINT_SPEC : next++;
        b->role[q] = ROLE_HINT;
        log_debug("virtio-balloon: free page hinting on queue %u", q);
    }
    if (rep) {
        unsigned q = spec ? BALLOON_Q_REPORTING_SPEC : next;
        b->role[q] = ROLE_REPORTING;
        log_debug("virtio-balloon: free page reporting on queue %u", q);
    }
    if (virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ)) {
        int e = timer_arm(b, b->stats_interval_s);
        if (e < 0)
            log_warn("virtio-balloon: cannot start the statistics timer: %s", strerror(-e));
    }
    return 0;
}

/* Reset: the driver's buffers and its balloon are gone (a rebooting guest
 * owns all its memory again); the host's target stays. */
static void balloon_reset(struct virtio_device *d)
{
    struct balloon *b = to_balloon(d);
    (void)timer_arm(b, 0); /* 0 disarms */
    memset(b->role, ROLE_NONE, sizeof(b->role));
    b->stats_held = false;
    b->cfg.actual = 0;
    b->guest_cmd_valid = false;
}

static void balloon_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    memcpy(buf, (const uint8_t *)&to_balloon(d)->cfg + off, len);
}

/* The driver may write only `actual` (5.5.4), as one 32-bit access. */
static void balloon_config_write(struct virtio_device *d, uint32_t off, const void *buf,
                                 uint32_t len)
{
    struct balloon *b = to_balloon(d);
    if (off != offsetof(struct virtio_balloon_config, actual) || len != sizeof(uint32_t)) {
        log_guest("virtio-balloon: %u-byte configuration write at offset %u (only actual is "
                  "writable)",
                  len, off);
        d->stats.errors++;
        return;
    }
    memcpy(&b->cfg.actual, buf, sizeof(uint32_t)); /* little-endian as stored */
}

/* Snapshot: the target the host set and the size the driver reported, the
 * statistics interval the host may have changed, the driver's statistics
 * buffer if the device holds it (the driver posts it once and waits for it
 * back), and the latest statistics. Host-side counters start again. */
static void balloon_save(struct virtio_device *d, struct snap_w *w)
{
    struct balloon *b = to_balloon(d);
    snap_put_u32(w, le32toh(b->cfg.num_pages));
    snap_put_u32(w, le32toh(b->cfg.actual));
    snap_put_u32(w, b->stats_interval_s);
    snap_put_u8(w, b->stats_held);
    snap_put_u16(w, b->stats_head);
    snap_put_u64(w, b->stats_updates);
    snap_put_u32(w, b->stats.valid);
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        snap_put_u64(w, b->stats.val[i]);
}

/* Whether the statistics settings read fit this device: an interval only
 * with the statistics queue configured, a held buffer only on a started
 * statistics queue and within its ring. */
static bool stats_state_ok(struct balloon *b, uint32_t interval, bool held, uint16_t head)
{
    struct virtio_device *d = &b->vdev;
    if ((b->timer_fd >= 0) != (interval != 0))
        return false;
    if (!held)
        return true;
    const struct virtq *q = &d->vq[BALLOON_Q_STATS];
    return virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ) && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
           q->ready && head < q->size;
}

static int balloon_load(struct virtio_device *d, struct snap_r *r)
{
    struct balloon *b = to_balloon(d);
    uint32_t num_pages = snap_get_u32(r), actual = snap_get_u32(r);
    uint32_t interval = snap_get_u32(r);
    bool held = snap_get_bool(r);
    uint16_t head = snap_get_u16(r);
    uint64_t updates = snap_get_u64(r);
    struct virtio_balloon_stats st = {.valid = snap_get_u32(r)};
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        st.val[i] = snap_get_u64(r);
    if (r->err)
        return r->err;
    /* The target was at most the RAM (set_target); actual is the driver's
     * word and is only ever reported. */
    if (num_pages > b->ram_mib * VIRTIO_BALLOON_PAGES_PER_MIB ||
        (st.valid >> VIRTIO_BALLOON_S_NR) || !stats_state_ok(b, interval, held, head))
        return -EPROTO;
    b->cfg.num_pages = htole32(num_pages);
    b->cfg.actual = htole32(actual);
    b->stats_interval_s = interval;
    b->stats_held = held;
    b->stats_head = head;
    b->stats_updates = updates;
    b->stats = st;
    /* Monotonic times do not cross hosts: the statistics count as received
     * now, when they reach this process. */
    b->stats_time_ns = updates ? now_ns() : 0;
    return 0;
}

static void balloon_release(struct virtio_device *d)
{
    struct balloon *b = to_balloon(d);
    if (b->watching)
        evloop_del(b->loop, b->timer_fd);
    if (b->timer_fd >= 0)
        close(b->timer_fd);
    virtio_device_release(d);
    free(b);
}

static const struct virtio_dev_ops balloon_ops = {
    .name = "virtio-balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .num_queues = BALLOON_NUM_QUEUES,
    .queue_max_size = BALLOON_QUEUE_SIZE,
    .config_size = sizeof(struct virtio_balloon_config),
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .activate = balloon_activate,
    .reset = balloon_reset,
    .queue_notify = balloon_notify,
    .release = balloon_release,
    .save = balloon_save,
    .load = balloon_load,
};

/* ---- public API -------------------------------------------------------- */

struct virtio_device *virtio_balloon_create(const struct guest_mem *mem,
                                            const struct balloon_config *cfg, struct evloop *loop,
                                            char *err, size_t errlen)
{
    uint64_t ram_mib = mem->total >> 20;
    if (cfg->target_mib > ram_mib) {
        snprintf(err, errlen,
                 "the balloon target of %" PRIu32 " MiB exceeds the guest's %" PRIu64 " MiB of RAM",
                 cfg->target_mib, ram_mib);
        return virtio_fail(EINVAL);
    }
    if (cfg->stats_interval_s && !loop) {
        snprintf(err, errlen, "balloon statistics need an event loop");
        return virtio_fail(EINVAL);
    }
    struct balloon *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory for the virtio-balloon device");
        return virtio_fail(ENOMEM);
    }
    uint64_t features = 0;
    if (cfg->stats_interval_s)
        features |= VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ);
    if (cfg->deflate_on_oom)
        features |= VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
    if (cfg->free_page_reporting)
        features |= VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING);
    if (cfg->free_page_hinting)
        features |= VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT);
    virtio_device_init(&b->vdev, &balloon_ops, mem, features);
    b->loop = loop;
    b->timer_fd = -1;
    /* At most 16 Ti MiB of RAM, so the page count always fits the u32. */
    b->ram_mib = ram_mib > UINT32_MAX / VIRTIO_BALLOON_PAGES_PER_MIB
                     ? UINT32_MAX / VIRTIO_BALLOON_PAGES_PER_MIB
                     : (uint32_t)ram_mib;
    b->deflate_on_oom = cfg->deflate_on_oom;
    b->free_page_reporting = cfg->free_page_reporting;
    b->free_page_hinting = cfg->free_page_hinting;
    b->next_cmd = HINT_CMD_FIRST;
    b->stats_interval_s = cfg->stats_interval_s;
    uint32_t target = cfg->target_mib < b->ram_mib ? cfg->target_mib : b->ram_mib;
    b->cfg.num_pages = htole32(target * VIRTIO_BALLOON_PAGES_PER_MIB);

    if (cfg->stats_interval_s) {
        b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (b->timer_fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot create the balloon statistics timer: %s", strerror(e));
            balloon_release(&b->vdev);
            return virtio_fail(e);
        }
        int r = evloop_add(loop, b->timer_fd, EPOLLIN, balloon_on_timer, b);
        if (r < 0) {
            snprintf(err, errlen, "cannot watch the balloon statistics timer: %s", strerror(-r));
            balloon_release(&b->vdev);
            return virtio_fail(-r);
        }
        b->watching = true;
    }
    return &b->vdev;
}

int virtio_balloon_set_target(struct virtio_device *d, uint32_t target_mib)
{
    struct balloon *b = balloon_of(d);
    if (!b)
        return -ENODEV;
    if (target_mib > b->ram_mib)
        return -EINVAL;
    pthread_mutex_lock(&d->lock);
    b->cfg.num_pages = htole32(target_mib * VIRTIO_BALLOON_PAGES_PER_MIB);
    /* Interrupts only a running driver; one probing later reads it anyway. */
    virtio_notify_config(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_device *d, uint32_t seconds)
{
    struct balloon *b = balloon_of(d);
    if (!b)
        return -ENODEV;
    if (b->timer_fd < 0)
        return -ENOTSUP;
    if (!seconds)
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&d->lock);
    b->stats_interval_s = seconds;
    if (virtio_device_live(d) && virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ))
        r = timer_arm(b, seconds);
    pthread_mutex_unlock(&d->lock);
    return r;
}

int virtio_balloon_get(struct virtio_device *d, struct virtio_balloon_info *out)
{
    struct balloon *b = balloon_of(d);
    if (!b)
        return -ENODEV;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&d->lock);
    out->target_pages = le32toh(b->cfg.num_pages);
    out->actual_pages = le32toh(b->cfg.actual);
    out->deflate_on_oom = b->deflate_on_oom;
    out->free_page_reporting = b->free_page_reporting;
    out->free_page_hinting = b->free_page_hinting;
    out->stats_enabled = b->timer_fd >= 0;
    out->stats_interval_s = b->stats_interval_s;
    out->stats_updates = b->stats_updates;
    out->stats_time_ns = b->stats_time_ns;
    out->stats = b->stats;
    out->inflated_pages = b->inflated_pages;
    out->deflated_pages = b->deflated_pages;
    out->reported_bytes = b->reported_bytes;
    out->bad_pfns = b->bad_pfns;
    pthread_mutex_unlock(&d->lock);
    out->target_mib = out->target_pages / VIRTIO_BALLOON_PAGES_PER_MIB;
    out->actual_mib = out->actual_pages / VIRTIO_BALLOON_PAGES_PER_MIB;
    return 0;
}

/* @d as a balloon with free page hinting, or NULL with the -errno the
 * hinting calls return in @err. */
static struct balloon *hinting_of(struct virtio_device *d, int *err)
{
    struct balloon *b = balloon_of(d);
    *err = !b ? -ENODEV : !b->free_page_hinting ? -ENOTSUP : 0;
    return *err ? NULL : b;
}

int virtio_balloon_hint(struct virtio_device *d, bool start, bool ack_on_stop)
{
    int e;
    struct balloon *b = hinting_of(d, &e);
    if (!b)
        return e;
    pthread_mutex_lock(&d->lock);
    uint32_t id = HINT_CMD_DONE;
    if (start) {
        id = b->next_cmd;
        /* Ids wrap around without ever reusing STOP or DONE. */
        b->next_cmd = id == UINT32_MAX ? HINT_CMD_FIRST : id + 1;
        b->hint_ack_on_stop = ack_on_stop;
    }
    b->cfg.free_page_hint_cmd_id = htole32(id);
    virtio_notify_config(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int virtio_balloon_hint_status(struct virtio_device *d, struct virtio_balloon_hint *out)
{
    int e;
    struct balloon *b = hinting_of(d, &e);
    if (!b)
        return e;
    pthread_mutex_lock(&d->lock);
    *out = (struct virtio_balloon_hint){.host_cmd = le32toh(b->cfg.free_page_hint_cmd_id),
                                        .guest_cmd = b->guest_cmd,
                                        .guest_cmd_valid = b->guest_cmd_valid,
                                        .hinted_pages = b->hinted_pages};
    pthread_mutex_unlock(&d->lock);
    return 0;
}

const char *virtio_balloon_stat_name(unsigned tag)
{
    static const char *const names[VIRTIO_BALLOON_S_NR] = {
        [VIRTIO_BALLOON_S_SWAP_IN] = "swap_in",
        [VIRTIO_BALLOON_S_SWAP_OUT] = "swap_out",
        [VIRTIO_BALLOON_S_MAJFLT] = "major_faults",
        [VIRTIO_BALLOON_S_MINFLT] = "minor_faults",
        [VIRTIO_BALLOON_S_MEMFREE] = "free_memory",
        [VIRTIO_BALLOON_S_MEMTOT] = "total_memory",
        [VIRTIO_BALLOON_S_AVAIL] = "available_memory",
        [VIRTIO_BALLOON_S_CACHES] = "disk_caches",
        [VIRTIO_BALLOON_S_HTLB_PGALLOC] = "hugetlb_allocations",
        [VIRTIO_BALLOON_S_HTLB_PGFAIL] = "hugetlb_failures",
        [VIRTIO_BALLOON_S_OOM_KILL] = "oom_kills",
        [VIRTIO_BALLOON_S_ALLOC_STALL] = "alloc_stalls",
        [VIRTIO_BALLOON_S_ASYNC_SCAN] = "async_scans",
        [VIRTIO_BALLOON_S_DIRECT_SCAN] = "direct_scans",
        [VIRTIO_BALLOON_S_ASYNC_RECLAIM] = "async_reclaims",
        [VIRTIO_BALLOON_S_DIRECT_RECLAIM] = "direct_reclaims",
    };
    return tag < VIRTIO_BALLOON_S_NR ? names[tag] : NULL;
}
