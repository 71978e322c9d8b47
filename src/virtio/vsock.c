/* vsock.c - virtio-vsock with Firecracker's hybrid (Unix socket) host side;
 * see vsock.h.
 *
 * Threads and state: all of it is under vdev.lock. Queue notifications run
 * on the event loop (and once on the vCPU thread that sets DRIVER_OK); reset
 * runs on a vCPU thread. Host sockets are not put on the VM's event loop one
 * by one: they are in a private epoll set whose fd is on the loop. The
 * device so owns each batch of socket events it handles and can end a
 * connection in the middle of one: a connection is only freed by vsock_reap(), at
 * the end of an entry point, when no pending event can still name it.
 */
#include "virtio/vsock_internal.h"

#include "base/evloop.h"
#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Chains per pass over a queue before the event loop serves others. */
#define TX_BUDGET 256
/* Socket events taken per batch; more wait for the next loop iteration. */
#define EVENT_BATCH 64
/* Host connections accepted per listener event, for the same reason. */
#define ACCEPT_BATCH 16
/* "_4294967295": the longest port suffix of a guest-initiated path. */
#define PORT_SUFFIX_MAX 11

/* Point v->iov at @len bytes of the chain's buffers [first, first+count)
 * after skipping @skip bytes; returns the number of entries. */
int vsock_chain_iov(struct vsock *v, const struct virtq_chain *ch, unsigned first,
                    unsigned count, uint64_t skip, uint64_t len)
{
    int n = 0;
    for (unsigned i = first; i < first + count && len; i++) {
        uint64_t bl = ch->buf[i].len;
        if (skip >= bl) {
            skip -= bl;
            continue;
        }
        bl -= skip;
        if (bl > len)
            bl = len;
        v->iov[n++] = (struct iovec){ch->buf[i].hva + skip, bl};
        len -= bl;
        skip = 0;
    }
    return n;
}

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

/* ---- virtio device ops ------------------------------------------------- */

static void vsock_notify(struct virtio_device *d, unsigned q)
{
    struct vsock *v = to_vsock(d);
    if (q == TXQ)
        virtio_queue_serve(d, TXQ, &v->txc, TX_BUDGET, vsock_tx_chain);
    /* RXQ: new buffers. EVQ: never used (see vsock.h). Either way, send
     * what is pending. */
    vsock_rx_pump(v);
    vsock_reap(v);
}

/* Every connection goes; the listener stays. */
static void drop_all(struct vsock *v)
{
    while (v->all)
        vsock_conn_free(v, v->all);
    vsock_reap(v);
    v->rst_head = v->rst_count = 0;
    v->tx_stalled = false;
    vsock_timer_set(v, false);
}

static void vsock_reset(struct virtio_device *d)
{
    /* The driver's sockets are gone with its device: close the host ends. */
    drop_all(to_vsock(d));
}

static void vsock_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    memcpy(buf, to_vsock(d)->config + off, len);
}

static void vsock_release(struct virtio_device *d)
{
    struct vsock *v = to_vsock(d);
    if (v->on_loop)
        evloop_del(v->loop, v->epfd);
    drop_all(v);
    if (v->listen_fd >= 0)
        close(v->listen_fd);
    if (v->bound) {
        /* Only the file we made: another process may have replaced it. */
        struct stat st;
        if (lstat(v->uds_path, &st) == 0 && st.st_dev == v->uds_dev && st.st_ino == v->uds_ino)
            unlink(v->uds_path);
    }
    if (v->timer_fd >= 0)
        close(v->timer_fd);
    if (v->epfd >= 0)
        close(v->epfd);
    virtio_device_release(d);
    free(v->uds_path);
    free(v);
}

static const struct virtio_dev_ops vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .queue_max_size = VIRTIO_VSOCK_QUEUE_SIZE,
    .config_size = sizeof(((struct vsock *)0)->config),
    .config_read = vsock_config_read,
    .reset = vsock_reset,
    .queue_notify = vsock_notify,
    .release = vsock_release,
};

/* Listen on uds_path, replacing a stale socket file but nothing else. */
static int uds_listen(struct vsock *v, char *err, size_t errlen)
{
    const char *path = v->uds_path;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1); /* length checked by the caller */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen,
                     "vsock socket path %s exists and is not a socket; remove it or choose "
                     "another uds path",
                     path);
            return -EEXIST;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            snprintf(err, errlen, "cannot check vsock socket %s: %s", path, strerror(errno));
            return -errno;
        }
        /* Non-blocking: a full backlog (EAGAIN) also means someone is there. */
        int r = connect(probe, (struct sockaddr *)&a, sizeof(a));
        int e = r < 0 ? errno : 0;
        close(probe);
        if (r == 0 || e == EAGAIN) {
            snprintf(err, errlen,
                     "vsock socket %s is in use by another process; stop it or choose another "
                     "uds path",
                     path);
            return -EADDRINUSE;
        }
        if (e != ECONNREFUSED) {
            snprintf(err, errlen, "cannot check whether vsock socket %s is in use: %s", path,
                     strerror(e));
            return -e;
        }
        if (unlink(path) < 0) { /* stale: nobody accepts there */
            snprintf(err, errlen, "cannot remove the stale vsock socket %s: %s", path,
                     strerror(errno));
            return -errno;
        }
        log_info("virtio-vsock: removed the stale socket %s", path);
    }
    v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->listen_fd < 0 || bind(v->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create vsock socket %s: %s", path, strerror(e));
        return -e;
    }
    if (lstat(path, &st) == 0) {
        v->bound = true;
        v->uds_dev = st.st_dev;
        v->uds_ino = st.st_ino;
    }
    if (listen(v->listen_fd, SOMAXCONN) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on vsock socket %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

struct virtio_device *virtio_vsock_create(const struct guest_mem *mem,
                                          const struct vsock_config *cfg, struct evloop *loop,
                                          char *err, size_t errlen)
{
    if (!cfg->uds_path || !*cfg->uds_path) {
        snprintf(err, errlen, "vsock needs a host socket path: give uds=PATH");
        return NULL;
    }
    if (cfg->cid < 3 || cfg->cid == UINT32_MAX) {
        snprintf(err, errlen, "vsock guest CID %u is reserved; use a number from 3 to 4294967294",
                 cfg->cid);
        return NULL;
    }
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - PORT_SUFFIX_MAX;
    if (strlen(cfg->uds_path) > max) {
        snprintf(err, errlen,
                 "vsock socket path %s is too long: at most %zu bytes, to leave room for the "
                 "_PORT suffix of guest-initiated connections",
                 cfg->uds_path, max);
        return NULL;
    }
    struct vsock *v = calloc(1, sizeof(*v));
    if (!v || !(v->uds_path = strdup(cfg->uds_path))) {
        free(v);
        snprintf(err, errlen, "out of memory for the vsock device");
        return NULL;
    }
    v->loop = loop;
    v->cid = cfg->cid;
    uint64_t le = htole64(v->cid);
    memcpy(v->config, &le, sizeof(le));
    v->epfd = v->listen_fd = v->timer_fd = -1;
    v->next_port = VIRTIO_VSOCK_LOCAL_PORT_BASE;
    virtio_device_init(&v->vdev, &vsock_ops, mem, VIRTIO_BIT(VIRTIO_VSOCK_F_STREAM));

    int r;
    v->epfd = epoll_create1(EPOLL_CLOEXEC);
    v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (v->epfd < 0 || v->timer_fd < 0) {
        snprintf(err, errlen, "cannot set up the vsock device's event watch: %s",
                 strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &v->timer_fd};
    if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->timer_fd, &ev) < 0) {
        snprintf(err, errlen, "cannot set up the vsock device's timer: %s", strerror(errno));
        goto fail;
    }
    if (uds_listen(v, err, errlen) < 0)
        goto fail;
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &v->listen_fd};
    if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listen_fd, &ev) < 0) {
        snprintf(err, errlen, "cannot watch vsock socket %s: %s", v->uds_path, strerror(errno));
        goto fail;
    }
    r = evloop_add(loop, v->epfd, EPOLLIN, vsock_on_events, v);
    if (r < 0) {
        snprintf(err, errlen, "cannot watch vsock socket %s: %s", v->uds_path, strerror(-r));
        goto fail;
    }
    v->on_loop = true;
    return &v->vdev;
fail:
    vsock_release(&v->vdev);
    return NULL;
}
