/* net.c - virtio-net: one receive and one transmit queue on a frame back end
 * (TAP, the user-mode helper, or a test's socket); see net.h.
 *
 * Receive (net_rx.c): frames go from the back end straight into the
 * driver's buffers; when it has none, the back end is not polled.
 *
 * Transmit (net_tx.c): each chain is a header, checked, and a frame, sent
 * together in one write; when the back end pushes back, the queue waits.
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
#include "base/snap.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>

/* The built-in back ends' state (the struct virtio_net_backend opaque). */
struct net_host {
    enum net_backend kind;
    struct tap tap;
    struct netuser user;
    char name[48];
};

/* ---- back end ------------------------------------------------------------ */

void net_update_events(struct net *n)
{
    if (!n->watching || n->dead)
        return;
    uint32_t ev = 0;
    if (virtio_device_live(&n->vdev)) {
        if (!n->rx_wait && !n->rx_throttled && n->vdev.vq[VIRTIO_NET_RXQ].ready)
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

void net_host_error(struct net *n, const char *what, int e)
{
    n->vdev.stats.errors++;
    if (log_ratelimit_ok(&n->host_err_rl))
        log_warn("virtio-net %s: %s: %s", n->be.name, what, strerror(e));
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
        net_update_events(n);
    }
    pthread_mutex_unlock(&d->lock);
}

/* The rate limiters let frames go again. */
static void net_on_rx_throttle(void *opaque, uint32_t events)
{
    struct net *n = opaque;
    (void)events;
    pthread_mutex_lock(&n->vdev.lock);
    n->rx_throttled = false;
    net_rx_pump(n);
    net_update_events(n);
    pthread_mutex_unlock(&n->vdev.lock);
}

static void net_on_tx_throttle(void *opaque, uint32_t events)
{
    struct net *n = opaque;
    (void)events;
    pthread_mutex_lock(&n->vdev.lock);
    net_tx_serve(n);
    net_update_events(n);
    pthread_mutex_unlock(&n->vdev.lock);
}

int virtio_net_set_rate_limiters(struct virtio_device *d, const struct rate_limiter_config *rx,
                                 const struct rate_limiter_config *tx)
{
    if (!d || d->ops->device_id != VIRTIO_ID_NET)
        return -ENODEV;
    struct net *n = to_net(d);
    if ((rx && rate_limiter_config_check(rx) < 0) || (tx && rate_limiter_config_check(tx) < 0))
        return -EINVAL;
    pthread_mutex_lock(&d->lock);
    int r = rx ? throttle_update(&n->rx_throttle, rx) : 0;
    if (r == 0 && tx)
        r = throttle_update(&n->tx_throttle, tx);
    pthread_mutex_unlock(&d->lock);
    return r;
}

static void net_notify(struct virtio_device *d, unsigned q)
{
    struct net *n = to_net(d);
    if (q == VIRTIO_NET_RXQ)
        net_rx_pump(n); /* buffers came: take the frames that waited */
    else if (q == VIRTIO_NET_TXQ)
        net_tx_serve(n);
    net_update_events(n);
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
    net_update_events(n);
    return 0;
}

static void net_reset(struct virtio_device *d)
{
    struct net *n = to_net(d);
    /* The rings are about to go: forget every chain taken from them. */
    net_rx_drop_held(n);
    n->rx_wait = false;
    n->rx_pushed = false;
    n->rx_throttled = false;
    n->tx_blocked = false;
    if (n->watching && !n->dead && n->events && evloop_mod(n->loop, n->be.fd, 0) == 0)
        n->events = 0;
    /* Until the next driver accepts offloads, frames must come complete. */
    if (n->be.set_offloads && !n->dead)
        (void)n->be.set_offloads(n->be.opaque, 0);
}

/* Snapshot: receive chains held for frames to come go back to the ring
 * (a frame in the bounce buffer is dropped); transmit holds nothing, a
 * blocked chain is still in the ring. The event loop serves the receive
 * queue again afterwards, as a kick would. */
static void net_quiesce(struct virtio_device *d)
{
    struct net *n = to_net(d);
    net_rx_give_back(n);
    if (virtio_device_live(d) && d->vq[VIRTIO_NET_RXQ].ready)
        d->transport->requeue(d, VIRTIO_NET_RXQ);
}

/* The configuration the driver has read: the MAC (from the configuration,
 * it must match) and the link status (it may have changed). */
static void net_save(struct virtio_device *d, struct snap_w *w)
{
    struct net *n = to_net(d);
    snap_put(w, n->cfg.mac, sizeof(n->cfg.mac));
    snap_put_u16(w, le16toh(n->cfg.status));
}

static int net_load(struct virtio_device *d, struct snap_r *r)
{
    struct net *n = to_net(d);
    uint8_t mac[6];
    snap_get(r, mac, sizeof(mac));
    uint16_t status = snap_get_u16(r);
    if (r->err)
        return r->err;
    if (status & ~VIRTIO_NET_S_LINK_UP)
        return -EPROTO;
    if (memcmp(mac, n->cfg.mac, sizeof(mac))) {
        log_warn("virtio-net %s: the snapshot's NIC has another MAC address", n->be.name);
        return -EINVAL;
    }
    /* A fresh back end is up: tell a driver that saw the link down. */
    if (status != le16toh(n->cfg.status) && virtio_has(d, VIRTIO_NET_F_STATUS))
        virtio_notify_config(d);
    return 0;
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
    throttle_release(&n->rx_throttle);
    throttle_release(&n->tx_throttle);
    n->be.close(n->be.opaque);
    virtio_device_release(d);
    mmds_net_destroy(n->mmds);
    free(n->mmds_frame);
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
    .quiesce = net_quiesce,
    .save = net_save,
    .load = net_load,
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
        return virtio_fail(ENOMEM);
    }
    n->be = *be;
    n->loop = loop;
    n->rx_throttle.timer_fd = n->tx_throttle.timer_fd = -1; /* released on every way out */
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
        return virtio_fail(-r);
    }
    n->watching = true;
    static const struct rate_limiter_config none;
    if ((r = throttle_init(&n->rx_throttle, &none, loop, net_on_rx_throttle, n)) < 0 ||
        (r = throttle_init(&n->tx_throttle, &none, loop, net_on_tx_throttle, n)) < 0) {
        snprintf(err, errlen, "cannot set up the rate limiters of %s: %s", be->name, strerror(-r));
        net_release(&n->vdev);
        return virtio_fail(-r);
    }
    return &n->vdev;
}

int virtio_net_set_mmds(struct virtio_device *d, struct mmds *m)
{
    if (!d || d->ops->device_id != VIRTIO_ID_NET)
        return -ENODEV;
    struct net *n = to_net(d);
    pthread_mutex_lock(&d->lock);
    mmds_net_destroy(n->mmds);
    n->mmds = mmds_net_create(m);
    if (!n->mmds_frame)
        n->mmds_frame = malloc(HDR + MMDS_NET_FRAME_MAX);
    int r = n->mmds && n->mmds_frame ? 0 : -ENOMEM;
    if (r) {
        mmds_net_destroy(n->mmds);
        n->mmds = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    return r;
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
        return virtio_fail(ENOMEM);
    }
    h->kind = cfg->backend;
    h->tap.fd = h->user.fd = -1;
    struct virtio_net_backend be = {.opaque = h, .close = host_close, .dead = host_dead, .name = h->name};
    if (cfg->backend == NET_TAP) {
        int r = tap_open(&h->tap, cfg->tap, err, errlen);
        if (r < 0) {
            free(h);
            return virtio_fail(-r);
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
        int r = netuser_start(&h->user, cfg->hostfwd, cfg->nhostfwd, err, errlen);
        if (r < 0) {
            free(h);
            return virtio_fail(-r);
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
    int r;
    if (d && (r = virtio_net_set_rate_limiters(d, &cfg->rx_rl, &cfg->tx_rl)) < 0) {
        snprintf(err, errlen, "the rate limiters of %s: %s", h->name,
                 r == -EINVAL ? "a bucket with a size needs a refill_time" : strerror(-r));
        d->ops->release(d);
        return virtio_fail(-r);
    }
    if (d && cfg->mmds && virtio_net_set_mmds(d, cfg->mmds) < 0) {
        snprintf(err, errlen, "out of memory for the metadata service on %s", h->name);
        d->ops->release(d);
        return virtio_fail(ENOMEM);
    }
    if (d && cfg->id && *cfg->id) {
        struct net *n = to_net(d);
        n->id = strdup(cfg->id);
        d->id = n->id; /* NULL (no id) if out of memory: metrics only */
    }
    return d;
}
