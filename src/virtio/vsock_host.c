/* vsock_host.c - the vsock device's host sockets: clients accepted on the
 * listening socket and their "CONNECT <port>\n" line, events on connection
 * sockets, handshake deadlines, and the private epoll set's callback that
 * hands them out in batches.
 */
#include "virtio/vsock_internal.h"

#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Socket events taken per batch; more wait for the next loop iteration. */
#define EVENT_BATCH 64
/* Host connections accepted per listener event, for the same reason. */
#define ACCEPT_BATCH 16

/* ---- host sockets ------------------------------------------------------ */

/* Parse "CONNECT <port>\n" (a "\r" before the "\n" tolerated). */
static bool parse_connect(const char *s, size_t len, uint32_t *port)
{
    static const char pfx[] = "CONNECT ";
    if (len && s[len - 1] == '\n')
        len--;
    if (len && s[len - 1] == '\r')
        len--;
    if (len <= sizeof(pfx) - 1 || memcmp(s, pfx, sizeof(pfx) - 1))
        return false;
    uint64_t p = 0;
    for (size_t i = sizeof(pfx) - 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        p = p * 10 + (uint64_t)(s[i] - '0');
        if (p > UINT32_MAX)
            return false;
    }
    *port = (uint32_t)p;
    return true;
}

static bool local_port_used(struct vsock *v, uint32_t port)
{
    for (struct conn *c = v->all; c; c = c->anext)
        if (c->hashed && c->local_port == port)
            return true;
    return false;
}

/* A host-side port for a new host-initiated connection. At most
 * MAX_CONNS ports are taken, so one of MAX_CONNS + 1 candidates is free. */
static uint32_t local_port_alloc(struct vsock *v)
{
    for (;;) {
        uint32_t p = v->next_port++;
        /* Wrap before -1 (VMADDR_PORT_ANY) back to the base. */
        if (v->next_port == UINT32_MAX)
            v->next_port = VIRTIO_VSOCK_LOCAL_PORT_BASE;
        if (!local_port_used(v, p))
            return p;
    }
}

/* A host client's first line. Only the line is consumed (peeked first,
 * then taken up to its newline): the client may send data right behind it.
 * Bytes before the newline are taken as they come, so a partial line does
 * not leave the socket readable for nothing. */
static void conn_read_line(struct vsock *v, struct conn *c)
{
    char *at = c->line + c->line_len;
    ssize_t n = recv(c->fd, at, CONNECT_LINE_MAX - c->line_len, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        vsock_conn_free(v, c); /* the client left */
        return;
    }
    char *nl = memchr(at, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - at) + 1 : (size_t)n;
    if (recv(c->fd, at, take, MSG_DONTWAIT) != (ssize_t)take)
        goto bad;
    c->line_len = (uint8_t)(c->line_len + take);
    if (!nl) {
        if (c->line_len == CONNECT_LINE_MAX)
            goto bad;
        return; /* the rest of the line comes later */
    }
    uint32_t port;
    if (!parse_connect(c->line, c->line_len, &port))
        goto bad;
    c->local_port = local_port_alloc(v);
    c->peer_port = port;
    vsock_hash_add(v, c);
    c->state = CONN_REQUEST;
    vsock_conn_deadline(v, c, VIRTIO_VSOCK_RESPONSE_MS);
    vsock_rx_add(v, c, PEND_REQUEST);
    return;
bad:
    if (log_ratelimit_ok(&v->host_rl))
        log_warn("virtio-vsock: a client of %s sent no \"CONNECT <port>\" line; closed",
                 v->uds_path);
    vsock_conn_free(v, c);
}

static void conn_event(struct vsock *v, struct conn *c, uint32_t events)
{
    if (c->fd < 0)
        return; /* closed earlier in this batch */
    c->armed = false;
    if (events & (EPOLLHUP | EPOLLERR))
        c->hup = true;
    switch (c->state) {
    case CONN_LINE:
        conn_read_line(v, c);
        break;
    case CONN_REQUEST:
    case CONN_WAIT:
        if (c->hup) /* the client gave up; the guest drops its half */
            vsock_conn_rst(v, c);
        break;
    case CONN_OPEN:
        if (events & EPOLLERR) {
            int e = 0;
            socklen_t l = sizeof(e);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
            vsock_host_failed(v, c, e ? e : EIO);
            break;
        }
        if ((events & (EPOLLOUT | EPOLLHUP)) && (c->reply_len || c->buf_len))
            vsock_conn_flush(v, c);
        if (c->state != CONN_OPEN)
            break;
        if ((events & (EPOLLIN | EPOLLHUP)) && vsock_can_read(c))
            vsock_rx_add(v, c, PEND_DATA);
        else if (c->hup && (c->host_eof || (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV)))
            vsock_host_failed(v, c, EPIPE); /* gone, and nothing of it left to read */
        break;
    default:
        break;
    }
    if (c->state != CONN_DEAD)
        vsock_conn_arm(v, c);
}

static void on_accept(struct vsock *v)
{
    for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                return;
            /* Out of fds: the client stays in the backlog and the listener
             * stays readable; pause it until the next tick, not spin. */
            if (log_ratelimit_ok(&v->host_rl))
                log_warn("virtio-vsock: cannot accept on %s: %s", v->uds_path, strerror(errno));
            struct epoll_event ev = {.events = 0, .data.ptr = &v->listen_fd};
            epoll_ctl(v->epfd, EPOLL_CTL_MOD, v->listen_fd, &ev);
            v->listen_paused = true;
            vsock_timer_set(v, true);
            return;
        }
        if (v->nconns >= VIRTIO_VSOCK_MAX_CONNS) {
            if (log_ratelimit_ok(&v->host_rl))
                log_warn("virtio-vsock: %d connections open; closing a new client of %s",
                         VIRTIO_VSOCK_MAX_CONNS, v->uds_path);
            close(fd);
            continue;
        }
        struct conn *c = vsock_conn_new(v, fd, CONN_LINE);
        if (!c) {
            close(fd);
            continue;
        }
        vsock_conn_deadline(v, c, VIRTIO_VSOCK_CONNECT_MS);
        vsock_conn_arm(v, c);
    }
}

/* Handshakes that took too long, and a paused listener. */
static void on_tick(struct vsock *v)
{
    uint64_t n;
    (void)!read(v->timer_fd, &n, sizeof(n));
    uint64_t now = vsock_now_ms();
    bool more = false;
    for (struct conn *c = v->all, *next; c; c = next) {
        next = c->anext;
        if (!c->deadline_ms)
            continue;
        if (now < c->deadline_ms) {
            more = true;
            continue;
        }
        vsock_debug(v, "virtio-vsock: handshake of host connection to guest port %u timed out",
                  c->peer_port);
        vsock_conn_rst(v, c); /* the client sees its connection close */
    }
    if (v->listen_paused) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &v->listen_fd};
        epoll_ctl(v->epfd, EPOLL_CTL_MOD, v->listen_fd, &ev);
        v->listen_paused = false;
    }
    if (!more)
        vsock_timer_set(v, false);
}

/* The private epoll set is readable: handle one batch of socket events. */
void vsock_on_events(void *opaque, uint32_t events)
{
    struct vsock *v = opaque;
    struct virtio_device *d = &v->vdev;
    (void)events;
    pthread_mutex_lock(&d->lock);
    struct epoll_event ev[EVENT_BATCH];
    int n = epoll_wait(v->epfd, ev, EVENT_BATCH, 0);
    for (int i = 0; i < n; i++) {
        void *p = ev[i].data.ptr;
        if (p == &v->listen_fd)
            on_accept(v);
        else if (p == &v->timer_fd)
            on_tick(v);
        else if (((struct conn *)p)->state != CONN_DEAD)
            conn_event(v, p, ev[i].events);
    }
    vsock_rx_pump(v);
    vsock_reap(v);
    pthread_mutex_unlock(&d->lock);
}
