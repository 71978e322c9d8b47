/* net.c - virtio-net: one receive and one transmit queue on a frame back end
 * (TAP, the user-mode helper, or a test's socket); see net.h.
 *
 * Receive: frames are read from the back end straight into the driver's
 * buffers (readv/recvmsg on iovecs into guest RAM). Chains taken from the
 * receive ring are kept, parsed once, until a frame fills them; with
 * MRG_RXBUF one frame spans as many chains as it needs (num_buffers). A
 * TAP read needs room for the largest frame, since its size is unknown
 * until it is read; when the ring holds less, the frame goes through one
 * bounce buffer (the only copy, and the only frame arcvm ever holds). When
 * the driver has no buffers, the back end's fd is no longer polled until
 * it adds some and kicks: frames wait in the host kernel's bounded queue
 * (or are dropped there), never in arcvm, and nothing spins.
 *
 * Transmit: each chain is one 12-byte header and one frame. The header is
 * copied out and checked against what was negotiated, then header and
 * frame go out in one writev/sendmsg (the frame itself is not copied).
 * Malformed or oversized chains are dropped and counted; the device goes
 * on. When the back end pushes back (EAGAIN), the queue waits for the fd
 * to become writable.
 *
 * Bounded work: at most RX_BUDGET frames per back-end event and TX_BUDGET
 * chains per kick (then requeued through the transport), so a flooding
 * guest or peer cannot starve other devices on the event loop.
 *
 * Threads: the back end's fd callback and queue notifications run on the
 * event loop; activation, reset and (rarely) notifications on a vCPU
 * thread. All of it runs under vdev.lock.
 */
#include "virtio/net_internal.h"

#include "host/netuser.h"
#include "host/tap.h"
#include "base/evloop.h"
#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

/* Frames received per back-end event: 64 full-size frames is ~4 MiB of
 * copying at most before other fds get their turn (epoll is level
 * triggered, so the rest is read on the next turn). */
#define RX_BUDGET 64
/* Transmit chains per kick before the queue is requeued; same reasoning. */
#define TX_BUDGET 64
/* Capacity counted per held receive chain: more than a frame can use, and
 * small enough that 256 of them cannot overflow anything. */
#define CHAIN_CAP_CLAMP (1u << 20)

/* The built-in back ends' state (the struct virtio_net_backend opaque). */
struct net_host {
    enum net_backend kind;
    struct tap tap;
    struct netuser user;
    char name[48];
};

static bool mrg(const struct net *n)
{
    return virtio_has(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
}

/* Copy @len bytes from @src to byte @off of the iovecs. */
static void iov_put(const struct iovec *iov, unsigned cnt, size_t off, const void *src, size_t len)
{
    const uint8_t *s = src;
    for (unsigned i = 0; i < cnt && len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t k = iov[i].iov_len - off;
        if (k > len)
            k = len;
        memcpy((uint8_t *)iov[i].iov_base + off, s, k);
        s += k;
        len -= k;
        off = 0;
    }
}

/* ---- back end ------------------------------------------------------------ */

/* Poll the fd for what the device can take now. */
static void update_events(struct net *n)
{
    if (!n->watching || n->dead)
        return;
    uint32_t ev = 0;
    if (virtio_device_live(&n->vdev)) {
        if (!n->rx_wait && n->vdev.vq[VIRTIO_NET_RXQ].ready)
            ev |= EPOLLIN;
        if (n->tx_blocked)
            ev |= EPOLLOUT;
    }
    if (ev != n->events && evloop_mod(n->loop, n->be.fd, ev) == 0)
        n->events = ev;
}

/* The back end is gone (helper exited, TAP deleted): link down, fd quiet. */
void net_be_dead(struct net *n, const char *why)
{
    if (n->dead)
        return;
    n->dead = true;
    log_warn("virtio-net %s: %s; the link is down", n->be.name, why);
    if (n->be.dead)
        n->be.dead(n->be.opaque);
    /* EPOLLHUP/EPOLLERR are reported whatever the interest set; one-shot
     * silences them after at most one more report (the entry itself is
     * only removed at release, when the loop no longer runs). */
    if (n->watching && evloop_mod(n->loop, n->be.fd, EPOLLONESHOT) == 0)
        n->events = EPOLLONESHOT;
    n->cfg.status &= (uint16_t)~htole16(VIRTIO_NET_S_LINK_UP);
    if (virtio_has(&n->vdev, VIRTIO_NET_F_STATUS))
        virtio_notify_config(&n->vdev);
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

static ssize_t be_write(struct net *n, unsigned cnt)
{
    ssize_t r;
    if (n->be.flags & NET_BACKEND_DGRAM) {
        struct msghdr m = {.msg_iov = n->io, .msg_iovlen = cnt};
        r = sendmsg(n->be.fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
        r = writev(n->be.fd, n->io, (int)cnt);
    }
    return r < 0 ? -errno : r;
}

void net_host_error(struct net *n, const char *what, int e)
{
    n->vdev.stats.errors++;
    if (log_ratelimit_ok(&n->host_err_rl))
        log_warn("virtio-net %s: %s: %s", n->be.name, what, strerror(e));
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
    n->rx_first = n->rx_n = 0;
    n->rx_cap = 0;
    n->iov_start = n->iov_end = 0;
    n->bounce_len = 0;
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
        iov_put(&n->rx_iov[n->iov_start], front->niov, 0, zero, sizeof(zero));
    }
    uint16_t nb = htole16((uint16_t)used); /* 1 without MRG_RXBUF (5.1.6.4) */
    iov_put(&n->rx_iov[n->iov_start], front->niov, offsetof(struct virtio_net_hdr, num_buffers),
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
    if (!n->rx_n)
        n->iov_start = n->iov_end = 0;
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
    iov_put(&n->rx_iov[n->iov_start], n->iov_end - n->iov_start, 0, n->bounce, total);
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
        enum rx r = rx_frame(n);
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

/* ---- transmit ---------------------------------------------------------------- */

/* Whether the driver's header asks only for what was negotiated (5.1.6.2). */
static bool tx_hdr_ok(const struct virtio_device *d, const struct virtio_net_hdr *h)
{
    /* DATA_VALID and RSC_INFO are the device's to set, never the driver's. */
    if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
        return false;
    if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !virtio_has(d, VIRTIO_NET_F_CSUM))
        return false;
    bool ecn = h->gso_type & VIRTIO_NET_HDR_GSO_ECN;
    switch (h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return !ecn;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        if (!virtio_has(d, VIRTIO_NET_F_HOST_TSO4))
            return false;
        break;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        if (!virtio_has(d, VIRTIO_NET_F_HOST_TSO6))
            return false;
        break;
    case VIRTIO_NET_HDR_GSO_UDP:
        if (!virtio_has(d, VIRTIO_NET_F_HOST_UFO))
            return false;
        break;
    default:
        return false;
    }
    /* The rest (sizes, offsets) the host kernel checks against the frame. */
    return !ecn || virtio_has(d, VIRTIO_NET_F_HOST_ECN);
}

static long tx_drop(struct net *n, const char *why)
{
    n->vdev.stats.errors++;
    log_guest("virtio-net: transmit chain dropped: %s", why);
    return 0;
}

/* Send one chain: header + frame. */
static long tx_chain(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct net *n = to_net(d);
    (void)q;
    if (n->dead) {
        d->stats.errors++; /* the link is down: gone, as on a cable pulled */
        return 0;
    }
    if (c->nwrite)
        return tx_drop(n, "device-writable buffers");
    if (c->read_len < HDR + ETH_HLEN)
        return tx_drop(n, "shorter than a header and an Ethernet header");
    if (c->read_len - HDR > VIRTIO_NET_FRAME_MAX)
        return tx_drop(n, "frame larger than 64 KiB");
    /* Copied out once: the driver cannot change what was checked. */
    struct virtio_net_hdr h;
    virtq_chain_read(c, 0, &h, sizeof(h));
    if (!tx_hdr_ok(d, &h))
        return tx_drop(n, "offload not negotiated or unknown in its header");
    h.num_buffers = 0;
    size_t flen = (size_t)(c->read_len - HDR);
    unsigned k = 0;
    if (n->be.flags & NET_BACKEND_VNET_HDR)
        n->io[k++] = (struct iovec){&h, sizeof(h)};
    unsigned first = k;
    uint64_t skip = HDR;
    for (unsigned i = 0; i < c->nread; i++) {
        uint64_t bl = c->buf[i].len;
        if (skip >= bl) {
            skip -= bl;
            continue;
        }
        if (k == IOV_MAX_SEGS) {
            /* More pieces than one writev takes: gather into one buffer. */
            virtq_chain_read(c, HDR, n->txbuf, flen);
            k = first;
            n->io[k++] = (struct iovec){n->txbuf, flen};
            break;
        }
        n->io[k++] = (struct iovec){c->buf[i].hva + skip, (size_t)(bl - skip)};
        skip = 0;
    }
    ssize_t r = be_write(n, k);
    if (r < 0) {
        int e = (int)-r;
        if (net_again(e) || e == ENOBUFS) {
            /* The back end is full: resume when it is writable. */
            n->tx_blocked = true;
            return VIRTIO_STOP;
        }
        if (e == EINVAL) /* TUN refused the header/frame combination */
            return tx_drop(n, "refused by the host kernel");
        net_host_error(n, "transmit", e);
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == EBADFD || e == EBADF)
            net_be_dead(n, "writing to the back end failed");
        return 0;
    }
    d->stats.out_bytes += flen;
    return 0;
}

void net_tx_serve(struct net *n)
{
    struct virtio_device *d = &n->vdev;
    if (n->tx_blocked || !virtio_device_live(d) || !d->vq[VIRTIO_NET_TXQ].ready)
        return;
    virtio_queue_serve(d, VIRTIO_NET_TXQ, &n->chain, TX_BUDGET, tx_chain);
}

/* ---- device ops ---------------------------------------------------------------- */

static void net_on_backend(void *opaque, uint32_t events)
{
    struct net *n = opaque;
    struct virtio_device *d = &n->vdev;
    pthread_mutex_lock(&d->lock);
    if (!n->dead) {
        if ((events & EPOLLOUT) && n->tx_blocked) {
            n->tx_blocked = false;
            net_tx_serve(n);
        }
        if (events & EPOLLIN)
            net_rx_pump(n);
        if (events & (EPOLLHUP | EPOLLERR))
            net_be_dead(n, "the back end hung up");
        update_events(n);
    }
    pthread_mutex_unlock(&d->lock);
}

static void net_notify(struct virtio_device *d, unsigned q)
{
    struct net *n = to_net(d);
    if (q == VIRTIO_NET_RXQ)
        net_rx_pump(n); /* buffers came: take the frames that waited */
    else if (q == VIRTIO_NET_TXQ)
        net_tx_serve(n);
    update_events(n);
}

/* TUN_F_* offloads for what the driver accepted. */
static unsigned guest_offloads(const struct virtio_device *d)
{
    unsigned o = 0;
    if (virtio_has(d, VIRTIO_NET_F_GUEST_CSUM))
        o |= TUN_F_CSUM;
    if (virtio_has(d, VIRTIO_NET_F_GUEST_TSO4))
        o |= TUN_F_TSO4;
    if (virtio_has(d, VIRTIO_NET_F_GUEST_TSO6))
        o |= TUN_F_TSO6;
    if (virtio_has(d, VIRTIO_NET_F_GUEST_ECN))
        o |= TUN_F_TSO_ECN;
    if (virtio_has(d, VIRTIO_NET_F_GUEST_UFO))
        o |= TUN_F_UFO;
    return o;
}

/* 5.1.3.1: feature dependencies; a driver that ignores them is refused. */
static int net_features_ok(struct virtio_device *d, uint64_t f)
{
    (void)d;
#define HAS(b) ((f & VIRTIO_BIT(VIRTIO_NET_F_##b)) != 0)
    if ((HAS(GUEST_TSO4) || HAS(GUEST_TSO6) || HAS(GUEST_UFO)) && !HAS(GUEST_CSUM))
        return -EINVAL;
    if (HAS(GUEST_ECN) && !HAS(GUEST_TSO4) && !HAS(GUEST_TSO6))
        return -EINVAL;
    if ((HAS(HOST_TSO4) || HAS(HOST_TSO6) || HAS(HOST_UFO)) && !HAS(CSUM))
        return -EINVAL;
    if (HAS(HOST_ECN) && !HAS(HOST_TSO4) && !HAS(HOST_TSO6))
        return -EINVAL;
#undef HAS
    return 0;
}

static int net_activate(struct virtio_device *d)
{
    struct net *n = to_net(d);
    if (n->be.set_offloads && !n->dead) {
        unsigned o = guest_offloads(d) & n->be.offloads;
        int r = n->be.set_offloads(n->be.opaque, o);
        if (r < 0) {
            log_warn("virtio-net %s: cannot set offloads 0x%x: %s", n->be.name, o, strerror(-r));
            return r;
        }
    }
    n->rx_wait = false;
    update_events(n);
    return 0;
}

static void net_reset(struct virtio_device *d)
{
    struct net *n = to_net(d);
    /* The rings are about to go: forget every chain taken from them. */
    net_rx_drop_held(n);
    n->rx_wait = false;
    n->rx_pushed = false;
    n->tx_blocked = false;
    if (n->watching && !n->dead && n->events && evloop_mod(n->loop, n->be.fd, 0) == 0)
        n->events = 0;
    /* Until the next driver accepts offloads, frames must come complete. */
    if (n->be.set_offloads && !n->dead)
        (void)n->be.set_offloads(n->be.opaque, 0);
}

static void net_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    memcpy(buf, (const uint8_t *)&to_net(d)->cfg + off, len);
}

static void net_release(struct virtio_device *d)
{
    struct net *n = to_net(d);
    if (n->watching)
        evloop_del(n->loop, n->be.fd);
    n->be.close(n->be.opaque);
    virtio_device_release(d);
    free(n->bounce);
    free(n->txbuf);
    free(n->id);
    free(n);
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .num_queues = 2,
    .queue_max_size = VIRTIO_NET_QUEUE_SIZE,
    .config_size = sizeof(struct virtio_net_config),
    .config_read = net_config_read,
    .features_ok = net_features_ok,
    .activate = net_activate,
    .reset = net_reset,
    .queue_notify = net_notify,
    .release = net_release,
};

/* Offered features: the basics, and with a vnet header what the back end's
 * offloads allow in each direction. */
static uint64_t offered(const struct virtio_net_backend *be)
{
    uint64_t f = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                 VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
    if (!(be->flags & NET_BACKEND_VNET_HDR) || !(be->offloads & TUN_F_CSUM))
        return f;
    /* Guest to host: the kernel completes checksums and segments what the
     * header describes. Host to guest: only what TUNSETOFFLOAD takes. */
    f |= VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
    if (be->offloads & TUN_F_TSO4)
        f |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4);
    if (be->offloads & TUN_F_TSO6)
        f |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6);
    if ((be->offloads & TUN_F_TSO_ECN) && (be->offloads & (TUN_F_TSO4 | TUN_F_TSO6)))
        f |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN);
    if (be->offloads & TUN_F_UFO)
        f |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO) | VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO);
    return f;
}

struct virtio_device *virtio_net_create_backend(const struct guest_mem *mem, const uint8_t mac[6],
                                                const struct virtio_net_backend *be, struct evloop *loop,
                                                char *err, size_t errlen)
{
    struct net *n = calloc(1, sizeof(*n));
    uint8_t *bounce = malloc(RX_NEED_MAX), *txbuf = malloc(VIRTIO_NET_FRAME_MAX);
    if (!n || !bounce || !txbuf) {
        snprintf(err, errlen, "out of memory for the virtio-net device on %s", be->name);
        free(n);
        free(bounce);
        free(txbuf);
        be->close(be->opaque);
        return NULL;
    }
    n->be = *be;
    n->loop = loop;
    n->bounce = bounce;
    n->txbuf = txbuf;
    virtio_device_init(&n->vdev, &net_ops, mem, offered(be));
    memcpy(n->cfg.mac, mac, 6);
    n->cfg.status = htole16(VIRTIO_NET_S_LINK_UP);
    n->cfg.max_virtqueue_pairs = htole16(1);
    n->cfg.speed = htole32(UINT32_MAX); /* unknown (5.1.4) */
    n->cfg.duplex = 0xff;               /* unknown */
    /* Registered idle: activation turns reading on. */
    int r = evloop_add(loop, be->fd, 0, net_on_backend, n);
    if (r < 0) {
        snprintf(err, errlen, "cannot watch the network back end %s: %s", be->name, strerror(-r));
        net_release(&n->vdev);
        return NULL;
    }
    n->watching = true;
    return &n->vdev;
}

/* ---- built-in back ends -------------------------------------------------------- */

static int host_set_offloads(void *opaque, unsigned offloads)
{
    struct net_host *h = opaque;
    return tap_set_offloads(&h->tap, offloads);
}

static void host_dead(void *opaque)
{
    struct net_host *h = opaque;
    if (h->kind == NET_USER && netuser_reap(&h->user)) {
        int st = h->user.status;
        if (WIFSIGNALED(st))
            log_warn("the user-mode network helper was killed by signal %d", WTERMSIG(st));
        else if (WIFEXITED(st) && WEXITSTATUS(st))
            log_warn("the user-mode network helper exited with status %d", WEXITSTATUS(st));
    }
}

static void host_close(void *opaque)
{
    struct net_host *h = opaque;
    if (h->kind == NET_TAP)
        tap_close(&h->tap);
    else
        netuser_stop(&h->user);
    free(h);
}

struct virtio_device *virtio_net_create(const struct guest_mem *mem, const struct net_config *cfg,
                                        unsigned index, struct evloop *loop, char *err,
                                        size_t errlen)
{
    struct net_host *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory for a virtio-net device");
        return NULL;
    }
    h->kind = cfg->backend;
    h->tap.fd = h->user.fd = -1;
    struct virtio_net_backend be = {.opaque = h, .close = host_close, .dead = host_dead, .name = h->name};
    if (cfg->backend == NET_TAP) {
        if (tap_open(&h->tap, cfg->tap, err, errlen) < 0) {
            free(h);
            return NULL;
        }
        snprintf(h->name, sizeof(h->name), "TAP %s", h->tap.name);
        if (h->tap.created)
            log_info("created TAP interface %s; it goes away when arcvm exits: give it an "
                     "address or add it to a bridge, and set it up",
                     h->tap.name);
        be.fd = h->tap.fd;
        be.flags = NET_BACKEND_VNET_HDR;
        be.offloads = h->tap.offloads;
        be.set_offloads = host_set_offloads;
    } else {
        if (netuser_start(&h->user, cfg->hostfwd, cfg->nhostfwd, err, errlen) < 0) {
            free(h);
            return NULL;
        }
        snprintf(h->name, sizeof(h->name), "user-mode NIC %u", index);
        be.fd = h->user.fd;
        be.flags = NET_BACKEND_DGRAM;
    }
    /* Default: locally administered (0x02) unicast (not 0x01), one per NIC
     * index, stable across runs. */
    uint8_t mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, (uint8_t)(index + 2)};
    if (cfg->mac_set)
        memcpy(mac, cfg->mac, 6);
    struct virtio_device *d = virtio_net_create_backend(mem, mac, &be, loop, err, errlen);
    if (d && cfg->id && *cfg->id) {
        struct net *n = to_net(d);
        n->id = strdup(cfg->id);
        d->id = n->id; /* NULL (no id) if out of memory: metrics only */
    }
    return d;
}
