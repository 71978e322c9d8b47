/* net_tx.c - virtio-net's transmit path.
 *
 * Each chain is one 12-byte header and one frame. The header is
 * copied out and checked against what was negotiated, then header and
 * frame go out in one writev/sendmsg (the frame itself is not copied).
 * Malformed or oversized chains are dropped and counted; the device goes
 * on. When the back end pushes back (EAGAIN), the queue waits for the fd
 * to become writable.
 */
#include "virtio/net_internal.h"

#include "base/log.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Transmit chains per kick before the queue is requeued; the same
 * reasoning as RX_BUDGET's (net_rx.c). */
#define TX_BUDGET 64

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

/* Whether the frame of @c (@flen bytes) is the metadata service's: then it
 * went there, whole, and never goes to the back end. Only its first bytes
 * are copied to decide. */
static bool tx_to_mmds(struct net *n, struct virtq_chain *c, size_t flen)
{
    uint8_t peek[64];
    size_t plen = flen < sizeof(peek) ? flen : sizeof(peek);
    virtq_chain_read(c, HDR, peek, plen);
    if (!mmds_net_wants(n->mmds, peek, plen))
        return false;
    virtq_chain_read(c, HDR, n->txbuf, flen);
    mmds_net_input(n->mmds, n->txbuf, flen);
    n->vdev.stats.out_bytes += flen;
    return true;
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
    if (n->mmds && tx_to_mmds(n, c, flen))
        return 0;
    /* Not now: the chain goes back, the limiter's timer serves again. */
    if (!throttle_take(&n->tx_throttle, flen))
        return VIRTIO_STOP;
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
    /* The metadata service answered: into the receive queue now. */
    if (n->mmds && mmds_net_pending(n->mmds))
        net_rx_pump(n);
}
