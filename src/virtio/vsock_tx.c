/* vsock_tx.c - packets from the guest, on the vsock device's transmit queue:
 * each header is copied out and checked, then acted on: a new connection to
 * a host socket, data for the host within our credit, SHUTDOWN, RST, credit.
 * A packet of no connection, or a malformed one, is answered with at most
 * one RST from a bounded ring.
 */
#include "virtio/vsock_internal.h"

#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- packets from the guest (transmit queue) --------------------------- */

static void rst_queue(struct vsock *v, uint64_t src_cid, uint32_t src_port, uint32_t dst_port,
                      uint16_t type)
{
    if (v->rst_count == RST_RING)
        return; /* cannot happen: TX stops before the ring fills */
    v->rst[(v->rst_head + v->rst_count) % RST_RING] =
        (struct rst){src_cid, src_port, dst_port, type};
    v->rst_count++;
}

/* A guest connection to the host's port P: connect to "<uds_path>_P". */
static void guest_connect(struct vsock *v, const struct virtio_vsock_hdr *h)
{
    uint32_t port = h->dst_port;
    if (v->nconns >= VIRTIO_VSOCK_MAX_CONNS) {
        if (log_ratelimit_ok(&v->host_rl))
            log_warn("virtio-vsock: %d connections open; refusing the guest's connection to "
                     "port %u", VIRTIO_VSOCK_MAX_CONNS, port);
        goto refuse;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    /* Fits: the length was checked at creation. */
    snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", v->uds_path, port);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto refuse;
    /* A Unix connect never waits: it is accepted into the backlog, or
     * refused (no file, nobody listening, EAGAIN for a full backlog). */
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        vsock_debug(v, "virtio-vsock: guest connection to %s: %s", a.sun_path, strerror(errno));
        close(fd);
        goto refuse;
    }
    struct conn *c = vsock_conn_new(v, fd, CONN_OPEN);
    if (!c) {
        close(fd);
        goto refuse;
    }
    c->local_port = port;
    c->peer_port = h->src_port;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    vsock_hash_add(v, c);
    vsock_rx_add(v, c, PEND_RESPONSE);
    vsock_conn_arm(v, c);
    return;
refuse:
    rst_queue(v, VIRTIO_VSOCK_HOST_CID, port, h->src_port, VIRTIO_VSOCK_TYPE_STREAM);
}

/* RW payload for the host: straight from guest memory when nothing waits
 * before it, the rest into the connection's buffer (within our credit). */
static void conn_from_guest(struct vsock *v, struct conn *c, const struct virtq_chain *ch,
                            uint32_t len)
{
    if (len == 0)
        return;
    if (len > BUF - c->buf_len) {
        log_guest("virtio-vsock: %u bytes sent beyond the connection's credit", len);
        v->vdev.stats.errors++;
        vsock_conn_rst(v, c);
        return;
    }
    c->rx_cnt += len;
    v->vdev.stats.out_bytes += len;
    uint32_t done = 0;
    if (!c->buf_len && !c->reply_len) {
        struct msghdr m = {.msg_iov = v->iov,
                           .msg_iovlen = (size_t)vsock_chain_iov(v, ch, 0, ch->nread, HDR, len)};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            vsock_host_failed(v, c, errno);
            return;
        }
        if (w > 0)
            done = (uint32_t)w;
    }
    if (done < len) {
        if (!c->buf && !(c->buf = malloc(BUF))) {
            if (log_ratelimit_ok(&v->host_rl))
                log_warn("virtio-vsock: out of memory for a connection buffer");
            vsock_conn_rst(v, c);
            return;
        }
        uint32_t rest = len - done, tail = (c->buf_head + c->buf_len) % BUF;
        uint32_t first = BUF - tail < rest ? BUF - tail : rest;
        virtq_chain_read(ch, HDR + done, c->buf + tail, first);
        virtq_chain_read(ch, HDR + done + first, c->buf, rest - first);
        c->buf_len += rest;
    }
    c->fwd_cnt += done;
    if (done)
        vsock_maybe_credit(v, c);
}

/* The guest broke the protocol on @c (or a stray packet, if @c is NULL). */
static void malformed(struct vsock *v, struct conn *c, const struct virtio_vsock_hdr *h,
                      uint16_t type)
{
    v->vdev.stats.errors++;
    if (c)
        vsock_conn_rst(v, c);
    else if (h->op != VIRTIO_VSOCK_OP_RST) /* never answer an RST: no RST ping-pong */
        rst_queue(v, h->dst_cid, h->dst_port, h->src_port, type);
}

static void guest_packet(struct vsock *v, struct virtio_vsock_hdr *h, const struct virtq_chain *ch)
{
    struct virtio_device *d = &v->vdev;
    if (h->src_cid != v->cid) {
        /* Not the guest's own address: nobody to answer. */
        log_guest("virtio-vsock: packet from CID %" PRIu64 ", not the guest's %" PRIu64,
                  h->src_cid, v->cid);
        d->stats.errors++;
        return;
    }
    /* A reply goes out with a type the driver knows. */
    uint16_t rtype = h->type == VIRTIO_VSOCK_TYPE_SEQPACKET ? h->type : VIRTIO_VSOCK_TYPE_STREAM;
    if (h->dst_cid != VIRTIO_VSOCK_HOST_CID) {
        log_guest("virtio-vsock: packet for CID %" PRIu64 "; only the host (2) is reachable",
                  h->dst_cid);
        malformed(v, NULL, h, rtype);
        return;
    }
    struct conn *c = vsock_conn_find(v, h->dst_port, h->src_port);
    if (c && c->state == CONN_RST) {
        if (h->op != VIRTIO_VSOCK_OP_REQUEST)
            return; /* our RST is on its way */
        vsock_conn_free(v, c); /* the guest already forgot it and reuses the ports */
        c = NULL;
    }
    if (h->type != VIRTIO_VSOCK_TYPE_STREAM) {
        log_guest("virtio-vsock: packet of socket type %u; only streams are offered", h->type);
        malformed(v, c, h, rtype);
        return;
    }
    if (h->op < VIRTIO_VSOCK_OP_REQUEST || h->op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
        log_guest("virtio-vsock: packet with unknown op %u", h->op);
        malformed(v, c, h, rtype);
        return;
    }
    if (h->len > VIRTIO_VSOCK_MAX_PKT || h->len > ch->read_len - HDR ||
        (h->op != VIRTIO_VSOCK_OP_RW && h->len)) {
        log_guest("virtio-vsock: op %u with a payload of %u bytes in a %" PRIu64 "-byte packet",
                  h->op, h->len, ch->read_len);
        malformed(v, c, h, rtype);
        return;
    }
    if (!c) {
        if (h->op == VIRTIO_VSOCK_OP_REQUEST)
            guest_connect(v, h);
        else if (h->op != VIRTIO_VSOCK_OP_RST)
            rst_queue(v, VIRTIO_VSOCK_HOST_CID, h->dst_port, h->src_port, rtype);
        return;
    }
    /* Every packet carries the sender's credit (5.10.6.3). */
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    switch (h->op) {
    case VIRTIO_VSOCK_OP_REQUEST:
        log_guest("virtio-vsock: REQUEST for connection %u:%u, which exists", h->dst_port,
                  h->src_port);
        malformed(v, c, h, rtype);
        return;
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (c->state != CONN_WAIT) {
            log_guest("virtio-vsock: RESPONSE for connection %u:%u, which asked nothing",
                      h->dst_port, h->src_port);
            malformed(v, c, h, rtype);
            return;
        }
        c->state = CONN_OPEN;
        c->deadline_ms = 0;
        c->reply_len = (uint8_t)snprintf(c->reply, sizeof(c->reply), "OK %u\n", c->local_port);
        vsock_conn_flush(v, c);
        break;
    case VIRTIO_VSOCK_OP_RST:
        vsock_conn_free(v, c); /* the host client sees its connection close */
        return;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (c->state != CONN_OPEN) {
            malformed(v, c, h, rtype);
            return;
        }
        c->guest_shut |= h->flags & (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
        if ((c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && !c->shut_rd) {
            /* The host's further writes fail rather than pile up. */
            shutdown(c->fd, SHUT_RD);
            c->shut_rd = true;
            c->pend &= ~PEND_DATA;
        }
        vsock_check_done(v, c);
        break;
    case VIRTIO_VSOCK_OP_RW:
        if (c->state != CONN_OPEN || (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND)) {
            log_guest("virtio-vsock: data on connection %u:%u, which is not open for it",
                      h->dst_port, h->src_port);
            malformed(v, c, h, rtype);
            return;
        }
        conn_from_guest(v, c, ch, h->len);
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break; /* taken above */
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        if (c->state == CONN_OPEN)
            vsock_rx_add(v, c, PEND_CREDIT);
        break;
    }
    if (c->state != CONN_OPEN)
        return;
    if (c->credit_blocked && vsock_peer_credit(c)) {
        c->credit_blocked = false;
        vsock_rx_add(v, c, PEND_DATA);
    }
    vsock_conn_arm(v, c);
}

long vsock_tx_chain(struct virtio_device *d, unsigned q, struct virtq_chain *ch)
{
    struct vsock *v = to_vsock(d);
    (void)q;
    if (v->rst_count == RST_RING) {
        v->tx_stalled = true; /* vsock_rx_pump() restarts us */
        return VIRTIO_STOP;
    }
    if (ch->read_len < HDR) {
        log_guest("virtio-vsock: packet of %" PRIu64 " bytes, shorter than its header",
                  ch->read_len);
        d->stats.errors++;
        return 0;
    }
    struct virtio_vsock_hdr raw, h;
    virtq_chain_read(ch, 0, &raw, HDR); /* a copy: the guest may change its own */
    h = (struct virtio_vsock_hdr){
        .src_cid = le64toh(raw.src_cid),
        .dst_cid = le64toh(raw.dst_cid),
        .src_port = le32toh(raw.src_port),
        .dst_port = le32toh(raw.dst_port),
        .len = le32toh(raw.len),
        .type = le16toh(raw.type),
        .op = le16toh(raw.op),
        .flags = le32toh(raw.flags),
        .buf_alloc = le32toh(raw.buf_alloc),
        .fwd_cnt = le32toh(raw.fwd_cnt),
    };
    guest_packet(v, &h, ch);
    return 0;
}
