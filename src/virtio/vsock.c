/* vsock.c - virtio-vsock with Firecracker's hybrid (Unix socket) host side;
 * see vsock.h. This file is the device: its ops, creation and release, and
 * the listening socket file. Connections, the receive and transmit paths and
 * the host sockets have files of their own (see vsock_internal.h).
 *
 * Threads and state: all of it is under vdev.lock. Queue notifications run
 * on the event loop (and once on the vCPU thread that sets DRIVER_OK); reset
 * runs on a vCPU thread, a snapshot's load on the thread that restores. Host sockets are not put on the VM's event loop one
 * by one: they are in a private epoll set whose fd is on the loop. The
 * device so owns each batch of socket events it handles and can end a
 * connection in the middle of one: a connection is only freed by
 * vsock_reap(), at the end of an entry point, when no pending event can
 * still name it.
 */
#include "virtio/vsock_internal.h"

#include "base/evloop.h"
#include "base/log.h"

#include <endian.h>
#include <errno.h>
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

/* ---- virtio device ops ------------------------------------------------- */

/* Send the event owed to the driver, if its event queue has a buffer;
 * else ask for a kick when it has one. */
static void send_event(struct vsock *v)
{
    struct virtio_device *d = &v->vdev;
    struct virtq *q = &d->vq[EVQ];
    if (!v->reset_event || !virtio_device_live(d) || !q->ready)
        return;
    /* Buffers too small for the event go back empty; bounded by the ring. */
    for (unsigned tries = 0; tries < q->size; tries++) {
        int r = virtq_pop(q, &v->rxc);
        if (r < 0) {
            virtio_set_needs_reset(d, "malformed event queue");
            return;
        }
        if (r == 0) {
            if (virtq_enable_notify(q))
                continue;
            return;
        }
        uint32_t id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
        size_t n = virtq_chain_write(&v->rxc, 0, &id, sizeof(id));
        virtq_push(q, v->rxc.head, (uint32_t)n);
        virtio_notify_used(d, EVQ);
        if (n == VIRTIO_VSOCK_EVENT_LEN) {
            v->reset_event = false;
            return;
        }
        log_guest("virtio-vsock: event buffer of %zu bytes, shorter than an event", n);
        d->stats.errors++;
    }
}

static void vsock_notify(struct virtio_device *d, unsigned q)
{
    struct vsock *v = to_vsock(d);
    if (q == TXQ)
        virtio_queue_serve(d, TXQ, &v->txc, TX_BUDGET, vsock_tx_chain);
    else if (q == EVQ)
        send_event(v);
    /* Whatever the queue (RXQ: new buffers), send what is pending. */
    vsock_rx_pump(v);
    vsock_reap(v);
}

/* Snapshot: nothing of ours is saved. Host connections are Unix sockets of
 * this process and cannot survive a restore; the restored device starts
 * with none, keeps the guest CID of its own configuration, and tells the
 * driver so with TRANSPORT_RESET as soon as the event queue lets it. */
static int vsock_load(struct virtio_device *d, struct snap_r *r)
{
    struct vsock *v = to_vsock(d);
    (void)r;
    v->reset_event = virtio_device_live(d);
    send_event(v);
    return 0;
}

/* Every connection goes; the listener stays. */
static void drop_all(struct vsock *v)
{
    while (v->all)
        vsock_conn_free(v, v->all);
    vsock_reap(v);
    v->rst_head = v->rst_count = 0;
    v->tx_stalled = false;
    v->reset_event = false;
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
    .load = vsock_load,
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
        return virtio_fail(EINVAL);
    }
    if (cfg->cid < 3 || cfg->cid == UINT32_MAX) {
        snprintf(err, errlen, "vsock guest CID %u is reserved; use a number from 3 to 4294967294",
                 cfg->cid);
        return virtio_fail(EINVAL);
    }
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - PORT_SUFFIX_MAX;
    if (strlen(cfg->uds_path) > max) {
        snprintf(err, errlen,
                 "vsock socket path %s is too long: at most %zu bytes, to leave room for the "
                 "_PORT suffix of guest-initiated connections",
                 cfg->uds_path, max);
        return virtio_fail(ENAMETOOLONG);
    }
    struct vsock *v = calloc(1, sizeof(*v));
    if (!v || !(v->uds_path = strdup(cfg->uds_path))) {
        free(v);
        snprintf(err, errlen, "out of memory for the vsock device");
        return virtio_fail(ENOMEM);
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
        r = -errno;
        snprintf(err, errlen, "cannot set up the vsock device's event watch: %s", strerror(-r));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &v->timer_fd};
    if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->timer_fd, &ev) < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot set up the vsock device's timer: %s", strerror(-r));
        goto fail;
    }
    if ((r = uds_listen(v, err, errlen)) < 0)
        goto fail;
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &v->listen_fd};
    if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listen_fd, &ev) < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot watch vsock socket %s: %s", v->uds_path, strerror(-r));
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
    return virtio_fail(-r);
}
