/* vsock_rx.c - packets to the guest, on the vsock device's receive queue:
 * the list of connections with something to send, and what they send
 * (connection setup, host data within the guest's credit, SHUTDOWN, credit
 * updates), after the RSTs that answer stray packets.
 */
#include "virtio/vsock_internal.h"

#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/uio.h>

/* Chains per pass over a queue before the event loop serves others. */
#define RX_BUDGET 256

/* ---- the receive list: connections with something to send ------------- */

void vsock_rx_del(struct vsock *v, struct conn *c)
{
    if (!c->in_rx)
        return;
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        v->rx_head = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    else
        v->rx_tail = c->rprev;
    c->rprev = c->rnext = NULL;
    c->in_rx = false;
    v->nrx--;
}

static void rx_append(struct vsock *v, struct conn *c)
{
    c->rprev = v->rx_tail;
    c->rnext = NULL;
    if (v->rx_tail)
        v->rx_tail->rnext = c;
    else
        v->rx_head = c;
    v->rx_tail = c;
    c->in_rx = true;
    v->nrx++;
}

/* Give @c something to send the guest; the next vsock_rx_pump() sends it. */
void vsock_rx_add(struct vsock *v, struct conn *c, unsigned what)
{
    c->pend |= what;
    if (!c->in_rx)
        rx_append(v, c);
}

/* ---- packets to the guest (receive queue) ------------------------------ */

static uint32_t put_hdr(struct vsock *v, const struct virtq_chain *ch, uint64_t src_cid,
                        uint32_t src_port, uint32_t dst_port, uint16_t type, uint16_t op,
                        uint32_t flags, uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
    struct virtio_vsock_hdr h = {
        .src_cid = htole64(src_cid),
        .dst_cid = htole64(v->cid),
        .src_port = htole32(src_port),
        .dst_port = htole32(dst_port),
        .len = htole32(len),
        .type = htole16(type),
        .op = htole16(op),
        .flags = htole32(flags),
        .buf_alloc = htole32(buf_alloc),
        .fwd_cnt = htole32(fwd_cnt),
    };
    virtq_chain_write(ch, 0, &h, HDR); /* the caller checked write_len >= HDR */
    return HDR + len;
}

/* A packet of @c. Every one carries our credit, so it also answers any
 * pending credit update. */
static uint32_t conn_pkt(struct vsock *v, const struct virtq_chain *ch, struct conn *c,
                         uint16_t op, uint32_t flags, uint32_t len)
{
    c->fwd_told = c->fwd_cnt;
    c->pend &= ~PEND_CREDIT;
    return put_hdr(v, ch, VIRTIO_VSOCK_HOST_CID, c->local_port, c->peer_port,
                   VIRTIO_VSOCK_TYPE_STREAM, op, flags, len, BUF, c->fwd_cnt);
}

/* The host socket read EOF: the host sends no more. If it is gone
 * altogether (hung up both ways) the connection is over; else the guest
 * hears SHUTDOWN(SEND) after the data before it. */
static void host_eof(struct vsock *v, struct conn *c)
{
    c->host_eof = true;
    c->pend &= ~PEND_DATA;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) {
        vsock_host_failed(v, c, EPIPE);
        return;
    }
    vsock_rx_add(v, c, PEND_SHUTDOWN);
    vsock_check_done(v, c);
}

/* Read host data straight into the guest buffers of @ch, within the
 * guest's credit. Returns the packet length, or 0 with PEND_DATA cleared
 * (nothing to read, no credit) or the connection's next step queued. */
static uint32_t rx_data(struct vsock *v, struct conn *c, const struct virtq_chain *ch)
{
    uint64_t max = vsock_peer_credit(c);
    if (max == 0) {
        c->credit_blocked = true; /* lifted when the guest's credit grows */
        c->pend &= ~PEND_DATA;
        return 0;
    }
    if (max > ch->write_len - HDR)
        max = ch->write_len - HDR;
    if (max > VIRTIO_VSOCK_MAX_PKT)
        max = VIRTIO_VSOCK_MAX_PKT;
    int n = vsock_chain_iov(v, ch, ch->nread, ch->nwrite, HDR, max);
    ssize_t r = readv(c->fd, v->iov, n);
    if (r > 0) {
        c->tx_cnt += (uint32_t)r;
        v->vdev.stats.in_bytes += (uint64_t)r;
        return conn_pkt(v, ch, c, VIRTIO_VSOCK_OP_RW, 0, (uint32_t)r);
    }
    if (r == 0)
        host_eof(v, c);
    else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        c->pend &= ~PEND_DATA; /* vsock_conn_arm() waits for more */
    else
        vsock_host_failed(v, c, errno);
    return 0;
}

/* The next packet of @c into @ch, or 0 when it has nothing to send now. */
static uint32_t rx_conn(struct vsock *v, struct conn *c, const struct virtq_chain *ch)
{
    bool room = ch->write_len > HDR;
    for (;;) { /* each pass sends a packet or clears a flag */
        if (c->pend & PEND_RST) {
            uint32_t n = put_hdr(v, ch, VIRTIO_VSOCK_HOST_CID, c->local_port, c->peer_port,
                                 VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_RST, 0, 0, 0, 0);
            vsock_conn_free(v, c);
            return n;
        }
        if (c->pend & PEND_REQUEST) {
            c->pend &= ~PEND_REQUEST;
            c->state = CONN_WAIT;
            vsock_conn_deadline(v, c, VIRTIO_VSOCK_RESPONSE_MS);
            return conn_pkt(v, ch, c, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
        }
        if (c->pend & PEND_RESPONSE) {
            c->pend &= ~PEND_RESPONSE;
            return conn_pkt(v, ch, c, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
        }
        if ((c->pend & PEND_DATA) && !room) {
            v->rx_small = true; /* data waits for a chain with room */
        } else if (c->pend & PEND_DATA) {
            uint32_t n = rx_data(v, c, ch);
            if (n)
                return n;
            continue;
        }
        if (c->pend & PEND_SHUTDOWN) {
            c->pend &= ~PEND_SHUTDOWN;
            return conn_pkt(v, ch, c, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND, 0);
        }
        if (c->pend & PEND_CREDIT)
            return conn_pkt(v, ch, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
        return 0;
    }
}

/* Fill @ch with the next packet: RSTs for strays first, then connections
 * round robin. 0: nothing to send (or only data, and @ch has no room). */
static uint32_t rx_one(struct vsock *v, const struct virtq_chain *ch)
{
    if (v->rst_count) {
        struct rst *r = &v->rst[v->rst_head];
        v->rst_head = (v->rst_head + 1) % RST_RING;
        v->rst_count--;
        return put_hdr(v, ch, r->src_cid, r->src_port, r->dst_port, r->type,
                       VIRTIO_VSOCK_OP_RST, 0, 0, 0, 0);
    }
    /* Each connection is looked at once: the list is bounded, and one
     * waiting for a chain with room must not spin here. */
    for (unsigned i = 0, n = v->nrx; i < n && v->rx_head; i++) {
        struct conn *c = v->rx_head;
        uint32_t len = rx_conn(v, c, ch);
        if (c->state != CONN_DEAD) {
            vsock_rx_del(v, c);
            if (c->pend)
                rx_append(v, c); /* to the tail: round robin */
            vsock_conn_arm(v, c);
        }
        if (len)
            return len;
    }
    return 0;
}

/* Send the guest what is pending, as far as its receive buffers go. */
void vsock_rx_pump(struct vsock *v)
{
    struct virtio_device *d = &v->vdev;
    struct virtq *q = &d->vq[RXQ];
    if (!virtio_device_live(d) || !q->ready)
        return;
    unsigned served = 0;
    bool pushed = false, blocked = false;
    while (v->rst_count || v->rx_head) {
        if (served == RX_BUDGET) {
            d->transport->requeue(d, RXQ); /* let other devices run */
            break;
        }
        int r = virtq_pop(q, &v->rxc);
        if (r < 0) {
            virtio_set_needs_reset(d, "malformed receive queue");
            break;
        }
        if (r == 0) {
            /* No buffers: ask for a kick when there are, then look once
             * more, for one added meanwhile. Host sockets are not read
             * until then (their data stays in the socket). */
            if (virtq_enable_notify(q))
                continue;
            blocked = true;
            break;
        }
        uint32_t used = 0;
        v->rx_small = false;
        if (v->rxc.write_len < HDR) {
            log_guest("virtio-vsock: receive buffer of %" PRIu64 " bytes, shorter than a header",
                      v->rxc.write_len);
            d->stats.errors++;
        } else if (!(used = rx_one(v, &v->rxc)) && !v->rx_small) {
            virtq_unpop(q); /* nothing to send after all */
            break;
        }
        /* A chain without room for data when data is all we have goes
         * back empty: keeping it would stall the queue behind it. */
        virtq_push(q, v->rxc.head, used);
        pushed = true;
        served++;
        d->stats.requests++;
    }
    /* Nothing waits for buffers: the driver need not tell us about new
     * ones (we look when we have something to send). */
    if (!blocked)
        virtq_disable_notify(q);
    if (pushed)
        virtio_notify_used(d, RXQ);
    if (v->tx_stalled && v->rst_count < RST_RING) {
        v->tx_stalled = false;
        d->transport->requeue(d, TXQ);
    }
}
