/* vsock_conn.c - the vsock device's connections: the table they are found
 * in, their life from vsock_conn_new() to vsock_reap(), the credit both
 * ways, and writing the guest's data to the host socket.
 *
 * Per connection, socket events are one-shot (EPOLLONESHOT) and re-armed by
 * vsock_conn_arm() with exactly what the connection can act on now: no read
 * interest while the guest has no credit or no receive buffers, write
 * interest only while data waits. A hung-up socket whose data we cannot take
 * yet therefore reports once, not in a loop.
 */
#include "virtio/vsock_internal.h"

#include "base/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Handshake deadlines are checked on this tick, only while some exist. */
#define TICK_MS 250

/* ---- bookkeeping ------------------------------------------------------ */

static unsigned hash_of(uint32_t local, uint32_t peer)
{
    /* Multiplicative hashing: host ports are sequential, guest ports often
     * too; the odd constant spreads both over the table. */
    return ((local * 0x9e3779b1u) ^ (peer * 0x85ebca6bu)) >> 24 & (HASH_SIZE - 1);
}

struct conn *vsock_conn_find(struct vsock *v, uint32_t local, uint32_t peer)
{
    for (struct conn *c = v->hash[hash_of(local, peer)]; c; c = c->hnext)
        if (c->local_port == local && c->peer_port == peer)
            return c;
    return NULL;
}

void vsock_hash_add(struct vsock *v, struct conn *c)
{
    unsigned h = hash_of(c->local_port, c->peer_port);
    c->hnext = v->hash[h];
    v->hash[h] = c;
    c->hashed = true;
}

static void hash_del(struct vsock *v, struct conn *c)
{
    if (!c->hashed)
        return;
    struct conn **pp = &v->hash[hash_of(c->local_port, c->peer_port)];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    c->hashed = false;
}

void vsock_timer_set(struct vsock *v, bool on)
{
    if (v->timer_on == on)
        return;
    struct itimerspec its = {0};
    if (on)
        its.it_interval = its.it_value =
            (struct timespec){TICK_MS / 1000, (long)(TICK_MS % 1000) * 1000000};
    if (timerfd_settime(v->timer_fd, 0, &its, NULL) == 0)
        v->timer_on = on;
}

void vsock_conn_deadline(struct vsock *v, struct conn *c, uint64_t ms)
{
    c->deadline_ms = ms ? vsock_now_ms() + ms : 0;
    if (ms)
        vsock_timer_set(v, true);
}

static void conn_close_fd(struct vsock *v, struct conn *c)
{
    if (c->fd < 0)
        return;
    epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->armed = false;
}

static void conn_drop_buf(struct conn *c)
{
    free(c->buf);
    c->buf = NULL;
    c->buf_head = c->buf_len = 0;
}

/* Forget @c at once, telling the guest nothing (it never heard of it, it
 * reset it, or the device is being reset). Freed by vsock_reap(). */
void vsock_conn_free(struct vsock *v, struct conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    conn_close_fd(v, c);
    hash_del(v, c);
    vsock_rx_del(v, c);
    conn_drop_buf(c);
    if (c->aprev)
        c->aprev->anext = c->anext;
    else
        v->all = c->anext;
    if (c->anext)
        c->anext->aprev = c->aprev;
    c->state = CONN_DEAD;
    c->dnext = v->dead;
    v->dead = c;
    v->nconns--;
}

/* End @c: close the host side and, if the guest knows the connection, send
 * it an RST. The connection keeps its ports until the RST is out, so that a
 * stray packet for it is not answered twice. */
void vsock_conn_rst(struct vsock *v, struct conn *c)
{
    if (c->state != CONN_WAIT && c->state != CONN_OPEN) {
        if (c->state != CONN_RST)
            vsock_conn_free(v, c);
        return;
    }
    conn_close_fd(v, c);
    conn_drop_buf(c);
    c->state = CONN_RST;
    c->deadline_ms = 0;
    c->pend = 0;
    vsock_rx_add(v, c, PEND_RST);
}

void vsock_reap(struct vsock *v)
{
    while (v->dead) {
        struct conn *c = v->dead;
        v->dead = c->dnext;
        free(c);
    }
}

struct conn *vsock_conn_new(struct vsock *v, int fd, enum conn_state state)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->state = state;
    /* Armed by vsock_conn_arm(); registered now so that it only ever modifies. */
    struct epoll_event ev = {.events = EPOLLONESHOT, .data.ptr = c};
    if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        free(c);
        return NULL;
    }
    c->armed = true;
    c->anext = v->all;
    if (v->all)
        v->all->aprev = c;
    v->all = c;
    v->nconns++;
    return c;
}

/* Credit the guest gives us (5.10.6.3): its buffer less what is in flight.
 * Computed in wrapping 32-bit arithmetic; a guest that claims to have
 * consumed more than we sent gets nothing rather than a huge window. */
uint32_t vsock_peer_credit(const struct conn *c)
{
    uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
    return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

bool vsock_can_read(const struct conn *c)
{
    return c->state == CONN_OPEN && !c->host_eof && !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) &&
           !c->credit_blocked;
}

/* Arm @c's socket for what it can act on now (see the file comment). */
void vsock_conn_arm(struct vsock *v, struct conn *c)
{
    if (c->fd < 0)
        return;
    uint32_t want = 0;
    if (c->state == CONN_LINE) {
        want = EPOLLIN;
    } else if (c->state == CONN_OPEN) {
        if (!(c->pend & PEND_DATA) && vsock_can_read(c))
            want |= EPOLLIN;
        if (c->reply_len || c->buf_len)
            want |= EPOLLOUT;
    }
    if (c->armed && c->armed_ev == want)
        return;
    /* Armed with nothing, a socket still reports a hang-up, once; after
     * that it stays quiet until there is something to do. A disarmed one
     * whose data the receive side reads anyway needs no hang-up report
     * either: reading finds the EOF. */
    if (!want && !c->armed && (c->hup || (c->pend & PEND_DATA)))
        return;
    struct epoll_event ev = {.events = want | EPOLLONESHOT, .data.ptr = c};
    if (epoll_ctl(v->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        c->armed = true;
        c->armed_ev = want;
    } else if (log_ratelimit_ok(&v->host_rl)) {
        log_warn("virtio-vsock: cannot watch a host socket: %s", strerror(errno));
    }
}

/* Should the guest hear that we passed its data on? Not for every packet:
 * once it believes half our buffer is taken, and we freed a quarter of it
 * or all of what it sent. It only stops at zero credit, so this never
 * leaves it waiting for an update that does not come. */
void vsock_maybe_credit(struct vsock *v, struct conn *c)
{
    uint32_t unacked = c->rx_cnt - c->fwd_told, freed = c->fwd_cnt - c->fwd_told;
    if (freed && unacked >= BUF / 2 && (freed >= BUF / 4 || c->fwd_cnt == c->rx_cnt))
        vsock_rx_add(v, c, PEND_CREDIT);
}

/* The host socket failed or went away for good. */
void vsock_host_failed(struct vsock *v, struct conn *c, int err)
{
    vsock_debug(v, "virtio-vsock: host side of %u:%u ended: %s", c->local_port, c->peer_port,
              strerror(err));
    vsock_conn_rst(v, c);
}

/* Both directions may be finished: tell the host and the guest. */
void vsock_check_done(struct vsock *v, struct conn *c)
{
    if (c->state != CONN_OPEN || c->buf_len || c->reply_len)
        return; /* bytes still owed to the host */
    if ((c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && !c->shut_wr) {
        shutdown(c->fd, SHUT_WR); /* the host reads EOF */
        c->shut_wr = true;
    }
    /* A guest that shut down both ways waits for our RST (5.10.6.6); when
     * both sides finished sending, the RST ends it too. */
    if (c->guest_shut == (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND) ||
        ((c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && c->host_eof))
        vsock_conn_rst(v, c);
}

/* Write what waits for the host: the handshake reply, then guest data. */
void vsock_conn_flush(struct vsock *v, struct conn *c)
{
    while (c->reply_off < c->reply_len) {
        ssize_t w = send(c->fd, c->reply + c->reply_off, c->reply_len - c->reply_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            vsock_host_failed(v, c, errno);
            return;
        }
        c->reply_off = (uint8_t)(c->reply_off + w);
    }
    c->reply_len = c->reply_off = 0;
    uint32_t before = c->fwd_cnt;
    while (c->buf_len) {
        struct iovec iov[2];
        uint32_t first = BUF - c->buf_head;
        if (first > c->buf_len)
            first = c->buf_len;
        iov[0] = (struct iovec){c->buf + c->buf_head, first};
        iov[1] = (struct iovec){c->buf, c->buf_len - first};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = iov[1].iov_len ? 2 : 1};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            vsock_host_failed(v, c, errno);
            return;
        }
        c->buf_head = (uint32_t)((c->buf_head + (uint32_t)w) % BUF);
        c->buf_len -= (uint32_t)w;
        c->fwd_cnt += (uint32_t)w;
    }
    if (!c->buf_len)
        conn_drop_buf(c); /* memory only while data waits */
    if (c->fwd_cnt != before)
        vsock_maybe_credit(v, c);
    vsock_check_done(v, c);
}
