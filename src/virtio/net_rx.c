/* net_rx.c - virtio-net's receive path.
 *
 * Frames are read from the back end straight into the driver's
 * buffers (readv/recvmsg on iovecs into guest RAM). Chains taken from the
 * receive ring are kept, parsed once, until a frame fills them; with
 * MRG_RXBUF one frame spans as many chains as it needs (num_buffers). A
 * TAP read needs room for the largest frame, since its size is unknown
 * until it is read; when the ring holds less, the frame goes through one
 * bounce buffer (the only copy, and the only frame arcvm ever holds). When
 * the driver has no buffers, the back end's fd is no longer polled until
 * it adds some and kicks: frames wait in the host kernel's bounded queue
 * (or are dropped there), never in arcvm, and nothing spins.
 */
#include "virtio/net_internal.h"

#include "base/iov.h"
#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Frames received per back-end event: 64 full-size frames is ~4 MiB of
 * copying at most before other fds get their turn (epoll is level
 * triggered, so the rest is read on the next turn). */
#define RX_BUDGET 64

/* Capacity counted per held receive chain: more than a frame can use, and
 * small enough that 256 of them cannot overflow anything. */
#define CHAIN_CAP_CLAMP (1u << 20)

static bool mrg(const struct net *n)
{
    return virtio_has(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
}

/* One frame from the back end into n->io[0, cnt). Its full length (even if
 * it did not fit), or -errno. */
static ssize_t be_read(struct net *n, unsigned cnt)
{
    ssize_t r;
    if (n->be.flags & NET_BACKEND_DGRAM) {
        struct msghdr m = {.msg_iov = n->io, .msg_iovlen = cnt};
        r = recvmsg(n->be.fd, &m, MSG_DONTWAIT | MSG_TRUNC);
    } else {
        r = readv(n->be.fd, n->io, (int)cnt);
    }
    return r < 0 ? -errno : r;
}

/* ---- receive --------------------------------------------------------------- */

enum fill { FILL_OK, FILL_EMPTY, FILL_FULL, FILL_BROKEN };

/* Take receive chains from the ring until @need bytes are held (mergeable)
 * or one chain is (not): FILL_OK; or the ring is empty (FILL_EMPTY), arcvm
 * holds all it may (FILL_FULL), or the ring is malformed (FILL_BROKEN, the
 * device then needs a reset). */
static enum fill rx_fill(struct net *n, uint64_t need)
{
    struct virtio_device *d = &n->vdev;
    struct virtq *q = &d->vq[VIRTIO_NET_RXQ];
    bool m = mrg(n);
    /* Bad chains are handed straight back; a driver re-posting them as
     * fast as we return them must not keep us here. */
    for (unsigned tries = 0; m ? n->rx_cap < need : n->rx_n == 0; tries++) {
        if (n->rx_n >= q->size)
            return FILL_FULL;
        if (tries == q->size)
            return FILL_EMPTY;
        int p = virtq_pop(q, &n->chain);
        if (p < 0) {
            virtio_set_needs_reset(d, "malformed descriptor chain on the receive queue");
            return FILL_BROKEN;
        }
        if (p == 0)
            return FILL_EMPTY;
        struct virtq_chain *c = &n->chain;
        /* 5.1.6.3.1: receive buffers are device-writable, and each holds at
         * least a header. */
        if (c->nread || c->write_len < HDR) {
            log_guest("virtio-net: receive chain %s", c->nread ? "with device-readable buffers"
                                                              : "shorter than the 12-byte header");
            d->stats.errors++;
            virtq_push(q, c->head, 0);
            n->rx_pushed = true;
            n->rx_gap |= n->rx_n > 0; /* the held ones are no longer the last taken */
            continue;
        }
        unsigned held = n->iov_end - n->iov_start;
        if (c->nwrite > IOV_MAX_SEGS - held) {
            virtq_unpop(q); /* taken again when the held ones are used */
            return FILL_FULL;
        }
        if (c->nwrite > IOV_MAX_SEGS - n->iov_end) {
            memmove(n->rx_iov, n->rx_iov + n->iov_start, held * sizeof(n->rx_iov[0]));
            n->iov_start = 0;
            n->iov_end = held;
        }
        for (unsigned i = 0; i < c->nwrite; i++) {
            const struct virtq_buf *b = &c->buf[c->nread + i];
            n->rx_iov[n->iov_end++] = (struct iovec){b->hva, b->len};
        }
        uint32_t cap = c->write_len > CHAIN_CAP_CLAMP ? CHAIN_CAP_CLAMP : (uint32_t)c->write_len;
        n->rx_held[(n->rx_first + n->rx_n) % VIRTIO_NET_QUEUE_SIZE] =
            (struct rx_chain){c->head, (uint16_t)c->nwrite, cap};
        n->rx_n++;
        n->rx_cap += cap;
    }
    return FILL_OK;
}

void net_rx_drop_held(struct net *n)
{
    n->rx_gap = false;
    n->rx_first = n->rx_n = 0;
    n->rx_cap = 0;
    n->iov_start = n->iov_end = 0;
    n->bounce_len = 0;
}

void net_rx_give_back(struct net *n)
{
    struct virtio_device *d = &n->vdev;
    struct virtq *q = &d->vq[VIRTIO_NET_RXQ];
    if (n->rx_n && q->ready) {
        if (!n->rx_gap) {
            /* The held chains are the last ones taken, in ring order: step
             * back over them and they are taken again, unchanged (a driver
             * reuses no avail slot before its chain is used). */
            q->last_avail = (uint16_t)(q->last_avail - n->rx_n);
        } else {
            /* A chain handed back sits between them: return them empty, a
             * frame the driver counts as dropped. */
            for (unsigned i = 0; i < n->rx_n; i++)
                virtq_push(q, n->rx_held[(n->rx_first + i) % VIRTIO_NET_QUEUE_SIZE].head, 0);
            virtio_notify_used(d, VIRTIO_NET_RXQ);
        }
    }
    if (n->bounce_len)
        d->stats.errors++; /* a frame half-way to the driver: lost, as on a wire */
    net_rx_drop_held(n);
}

/* Capacity a frame can use now: all held chains, or the first one. */
static uint64_t rx_room(const struct net *n)
{
    if (!n->rx_n)
        return 0;
    return mrg(n) ? n->rx_cap : n->rx_held[n->rx_first].cap;
}

/* Point n->io at the held buffers a frame may use, after @skip bytes. */
static unsigned rx_iov_build(struct net *n, size_t skip)
{
    unsigned end = mrg(n) ? n->iov_end : n->iov_start + n->rx_held[n->rx_first].niov;
    unsigned k = 0;
    for (unsigned i = n->iov_start; i < end; i++) {
        struct iovec v = n->rx_iov[i];
        if (skip >= v.iov_len) {
            skip -= v.iov_len;
            continue;
        }
        v.iov_base = (uint8_t *)v.iov_base + skip;
        v.iov_len -= skip;
        skip = 0;
        n->io[k++] = v;
    }
    return k;
}

/* A frame of @total bytes (header included) is in the held buffers: fill in
 * the header and give the chains it used to the driver. */
static void rx_complete(struct net *n, uint64_t total)
{
    struct virtio_device *d = &n->vdev;
    struct virtq *q = &d->vq[VIRTIO_NET_RXQ];
    const struct rx_chain *front = &n->rx_held[n->rx_first];
    unsigned used = 1;
    if (mrg(n)) {
        uint64_t left = total;
        for (used = 0; left; used++) {
            uint32_t cap = n->rx_held[(n->rx_first + used) % VIRTIO_NET_QUEUE_SIZE].cap;
            left -= left < cap ? left : cap;
        }
    }
    /* The header lies in the first chain (each holds at least 12 bytes).
     * A back end without headers gives plain, complete frames; a TAP's
     * header stands only if the driver takes checksum offload, else the
     * frame is complete and the header must say nothing (5.1.6.4). */
    if (!(n->be.flags & NET_BACKEND_VNET_HDR) || !virtio_has(d, VIRTIO_NET_F_GUEST_CSUM)) {
        static const uint8_t zero[10];
        iov_copy_to(&n->rx_iov[n->iov_start], front->niov, 0, zero, sizeof(zero));
    }
    uint16_t nb = htole16((uint16_t)used); /* 1 without MRG_RXBUF (5.1.6.4) */
    iov_copy_to(&n->rx_iov[n->iov_start], front->niov, offsetof(struct virtio_net_hdr, num_buffers),
            &nb, sizeof(nb));
    uint64_t left = total;
    for (unsigned i = 0; i < used; i++) {
        const struct rx_chain *c = &n->rx_held[n->rx_first];
        uint32_t len = mrg(n) ? (uint32_t)(left < c->cap ? left : c->cap) : (uint32_t)total;
        virtq_push(q, c->head, len); /* orders the data before the used index */
        left -= len;
        n->iov_start += c->niov;
        n->rx_cap -= c->cap;
        n->rx_first = (n->rx_first + 1) % VIRTIO_NET_QUEUE_SIZE;
        n->rx_n--;
    }
    if (!n->rx_n) {
        n->iov_start = n->iov_end = 0;
        n->rx_gap = false;
    }
    d->stats.in_bytes += total - HDR;
    d->stats.requests += used;
    n->rx_pushed = true;
}

enum rx { RX_DONE, RX_EMPTY, RX_NOBUF, RX_STOP };

static void rx_drop(struct net *n, const char *why)
{
    n->vdev.stats.errors++;
    log_debug("virtio-net %s: received frame dropped: %s", n->be.name, why);
}

/* A read failed with -@e. */
static enum rx rx_read_error(struct net *n, int e)
{
    if (net_again(e))
        return RX_EMPTY;
    if (e == EINVAL && !(n->be.flags & NET_BACKEND_DGRAM)) {
        /* TUN could not express the frame in a virtio-net header and
         * dropped it; the next one may be fine. */
        rx_drop(n, "the host kernel could not describe it");
        return RX_DONE;
    }
    net_host_error(n, "receive", e);
    net_be_dead(n, "reading from the back end failed");
    return RX_STOP;
}

/* Deliver the frame in the bounce buffer, if the ring has room for it. */
static enum rx rx_from_bounce(struct net *n)
{
    size_t total = n->bounce_len;
    enum fill f = rx_fill(n, total);
    if (f == FILL_BROKEN)
        return RX_STOP;
    if (rx_room(n) < total) {
        if (f == FILL_FULL) {
            /* All the driver may post cannot hold it. */
            n->bounce_len = 0;
            rx_drop(n, "larger than all receive buffers together");
            return RX_DONE;
        }
        return RX_NOBUF;
    }
    iov_copy_to(&n->rx_iov[n->iov_start], n->iov_end - n->iov_start, 0, n->bounce, total);
    n->bounce_len = 0;
    rx_complete(n, total);
    return RX_DONE;
}

/* A TAP frame while the ring holds less than the largest frame: read it
 * into the bounce buffer, then deliver it when (or once) the ring can. */
static enum rx rx_to_bounce(struct net *n)
{
    size_t skip = (n->be.flags & NET_BACKEND_VNET_HDR) ? 0 : HDR;
    n->io[0] = (struct iovec){n->bounce + skip, RX_NEED_MAX - skip};
    ssize_t r = be_read(n, 1);
    if (r < 0)
        return rx_read_error(n, (int)-r);
    uint64_t total = (uint64_t)r + skip;
    if (total > RX_NEED_MAX) {
        rx_drop(n, "larger than 64 KiB");
        return RX_DONE;
    }
    if (total < HDR + ETH_HLEN) {
        rx_drop(n, "shorter than an Ethernet header");
        return RX_DONE;
    }
    if (skip)
        memset(n->bounce, 0, HDR);
    n->bounce_len = total;
    return rx_from_bounce(n);
}

/* Move one frame from the back end to the driver. */
static enum rx rx_frame(struct net *n)
{
    bool dgram = n->be.flags & NET_BACKEND_DGRAM;
    size_t skip = (n->be.flags & NET_BACKEND_VNET_HDR) ? 0 : HDR;
    if (n->bounce_len)
        return rx_from_bounce(n);
    uint64_t need = RX_NEED_MAX;
    if (dgram) {
        /* A datagram says its size before it is read: hold exactly enough. */
        ssize_t len = recv(n->be.fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
        if (len < 0)
            return rx_read_error(n, errno);
        if (len == 0) {
            net_be_dead(n, "the back end closed its socket");
            return RX_STOP;
        }
        need = (uint64_t)len + skip;
        if (need > RX_NEED_MAX || need < HDR + ETH_HLEN) {
            (void)!recv(n->be.fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC);
            rx_drop(n, need > RX_NEED_MAX ? "larger than 64 KiB" : "shorter than an Ethernet header");
            return RX_DONE;
        }
    }
    enum fill f = rx_fill(n, need);
    if (f == FILL_BROKEN)
        return RX_STOP;
    if (!n->rx_n)
        return RX_NOBUF;
    uint64_t room = rx_room(n);
    if (room < need) {
        if (dgram) {
            if (!mrg(n) || f == FILL_FULL) {
                /* No buffer the driver posts (or may post) can hold it. */
                (void)!recv(n->be.fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC);
                rx_drop(n, "larger than the receive buffers");
                return RX_DONE;
            }
            return RX_NOBUF;
        }
        if (mrg(n))
            return rx_to_bounce(n);
        /* Without MRG_RXBUF a frame gets one chain: read into it, and drop
         * the frame below if it did not fit (the chain is kept). */
    }
    unsigned cnt = rx_iov_build(n, skip);
    ssize_t r = be_read(n, cnt);
    if (r < 0)
        return rx_read_error(n, (int)-r);
    if (r == 0 && dgram) {
        net_be_dead(n, "the back end closed its socket");
        return RX_STOP;
    }
    uint64_t total = (uint64_t)r + skip;
    if (total > room) {
        rx_drop(n, "larger than the receive buffer");
        return RX_DONE;
    }
    if (total < HDR + ETH_HLEN) {
        rx_drop(n, "shorter than an Ethernet header");
        return RX_DONE;
    }
    rx_complete(n, total);
    return RX_DONE;
}

/* The metadata service's next frame, if it has one: RX_DONE, RX_EMPTY
 * (nothing due, or buffers too small for even a control frame: the back
 * end's frames go on), RX_NOBUF or RX_STOP. The frame is made to fit the
 * buffers held (data segments get shorter), so buffers smaller than a
 * full frame, as a driver without MRG_RXBUF may post, do not stall it. */
static enum rx rx_mmds(struct net *n)
{
    if (!mmds_net_pending(n->mmds))
        return RX_EMPTY;
    const uint64_t need = HDR + MMDS_NET_FRAME_MAX;
    enum fill f = rx_fill(n, need);
    if (f == FILL_BROKEN)
        return RX_STOP;
    uint64_t room = rx_room(n);
    if (!n->rx_n || (room < need && mrg(n) && f == FILL_EMPTY))
        return RX_NOBUF; /* more buffers may come: wait for the kick */
    size_t cap = room - HDR < MMDS_NET_FRAME_MAX ? (size_t)(room - HDR) : MMDS_NET_FRAME_MAX;
    size_t len = mmds_net_output(n->mmds, n->mmds_frame + HDR, cap);
    if (!len)
        return RX_EMPTY;
    memset(n->mmds_frame, 0, HDR); /* a complete frame: the header says nothing */
    iov_copy_to(&n->rx_iov[n->iov_start], n->iov_end - n->iov_start, 0, n->mmds_frame, HDR + len);
    rx_complete(n, HDR + len);
    return RX_DONE;
}

/* Receive up to RX_BUDGET frames; when the driver runs out of buffers,
 * stop polling the back end until it kicks. */
void net_rx_pump(struct net *n)
{
    struct virtio_device *d = &n->vdev;
    struct virtq *q = &d->vq[VIRTIO_NET_RXQ];
    if (n->dead || !virtio_device_live(d) || !q->ready)
        return;
    n->rx_wait = false;
    for (unsigned i = 0; i < RX_BUDGET; i++) {
        /* A frame's size is known once read: it may start when the limiter
         * allows, and its bytes are charged after. */
        if (!throttle_ready(&n->rx_throttle)) {
            n->rx_throttled = true;
            break;
        }
        uint64_t before = d->stats.in_bytes;
        enum rx r = n->mmds ? rx_mmds(n) : RX_EMPTY;
        if (r == RX_EMPTY)
            r = rx_frame(n);
        if (d->stats.in_bytes != before) /* a frame reached the guest */
            throttle_charge(&n->rx_throttle, d->stats.in_bytes - before);
        if (r == RX_DONE)
            continue;
        if (r == RX_NOBUF) {
            /* Ask for a kick when buffers come; recheck, as some may have
             * come meanwhile (no kick for those). */
            if (virtq_enable_notify(q))
                continue;
            n->rx_wait = true;
        }
        break;
    }
    /* While frames flow, buffers are taken as needed: kicks would only
     * cost the driver VM exits. */
    if (!n->rx_wait)
        virtq_disable_notify(q);
    if (n->rx_pushed)
        virtio_notify_used(d, VIRTIO_NET_RXQ);
    n->rx_pushed = false;
}
