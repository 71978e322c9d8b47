/* net_internal.h - what the files of the virtio-net device share and
 * nothing outside them sees: struct net and the helpers one file calls in
 * another. net.h is the public side; threads and locking are described at
 * the top of net.c.
 *
 *   net.c     the device: features, config, activation and reset, the back
 *             end's fd on the event loop, creation, the built-in back ends
 *   net_rx.c  the receive path: frames from the back end into the driver's
 *             buffers
 *   net_tx.c  the transmit path: the driver's frames to the back end
 */
#ifndef ARCVM_VIRTIO_NET_INTERNAL_H
#define ARCVM_VIRTIO_NET_INTERNAL_H

#include "virtio/net.h"

#include "base/log.h"
#include "host/mmds_net.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define HDR VIRTIO_NET_HDR_LEN
#define ETH_HLEN 14
/* A full frame with its header: what a TAP read must have room for. */
#define RX_NEED_MAX (HDR + VIRTIO_NET_FRAME_MAX)
/* Guest buffers held for receiving, and per readv/writev: the kernel's
 * UIO_MAXIOV. */
#define IOV_MAX_SEGS 1024

/* A receive chain taken from the ring, waiting for a frame. Its iovecs are
 * the next @niov entries of rx_iov. */
struct rx_chain {
    uint16_t head;
    uint16_t niov;
    uint32_t cap; /* writable bytes, clamped */
};

struct net {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct virtio_net_backend be;
    struct evloop *loop;
    bool watching;   /* be.fd is on @loop */
    bool dead;       /* the back end reached EOF or failed: link down */
    uint32_t events; /* what be.fd is polled for now */
    struct log_ratelimit host_err_rl;
    char *id;
    /* Plain data: what a snapshot would save (with vdev). */
    struct virtio_net_config cfg; /* little-endian, as the driver reads it */

    /* Receive state (empty whenever the device is reset). */
    bool rx_wait;    /* out of buffers: back end not polled until a kick */
    bool rx_pushed;  /* used entries added since the last interrupt */
    bool rx_gap;     /* a chain was handed back while others were held */
    unsigned rx_first, rx_n; /* FIFO of held chains in rx_held */
    uint64_t rx_cap;         /* their capacity, summed */
    unsigned iov_start, iov_end; /* their iovecs: rx_iov[iov_start, iov_end) */
    size_t bounce_len;       /* a frame waiting in @bounce (header included), or 0 */
    struct rx_chain rx_held[VIRTIO_NET_QUEUE_SIZE];
    struct iovec rx_iov[IOV_MAX_SEGS];

    bool rx_throttled;       /* the rate limiter holds receiving back */
    struct throttle rx_throttle, tx_throttle;
    /* Transmit state. */
    bool tx_blocked; /* the back end said EAGAIN: wait for EPOLLOUT */

    struct iovec io[IOV_MAX_SEGS];     /* one readv/writev */
    uint8_t *bounce;                   /* RX_NEED_MAX bytes */
    uint8_t *txbuf;                    /* VIRTIO_NET_FRAME_MAX bytes */
    struct virtq_chain chain;          /* the chain being parsed */

    /* The metadata service's stack (host/mmds_net.h), NULL: none. Frames
     * it claims on transmit never reach the back end; its answers are
     * received before the back end's frames. */
    struct mmds_net *mmds;
    uint8_t *mmds_frame; /* HDR + MMDS_NET_FRAME_MAX bytes: one answer */
};

static inline struct net *to_net(struct virtio_device *d)
{
    return (struct net *)d;
}

static inline bool net_again(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* ---- net.c -------------------------------------------------------------- */

/* Take the link down for good (the back end is gone), saying @why once. */
void net_be_dead(struct net *n, const char *why);
/* Poll the back end for what the device can take now. */
void net_update_events(struct net *n);
/* Count a host-side failure of @what with errno @e; rate-limited warning. */
void net_host_error(struct net *n, const char *what, int e);

/* ---- net_rx.c ----------------------------------------------------------- */

/* Forget every held receive chain and the bounced frame (the rings go). */
void net_rx_drop_held(struct net *n);
/* Snapshot: give the held receive chains back to the driver's ring and
 * drop the bounced frame, so that the device holds nothing between
 * callbacks; the chains are taken again on the next receive. */
void net_rx_give_back(struct net *n);
/* Receive up to a budget of frames; without buffers, wait for a kick. */
void net_rx_pump(struct net *n);

/* ---- net_tx.c ----------------------------------------------------------- */

/* Send what the transmit queue holds, a budget per call, unless blocked. */
void net_tx_serve(struct net *n);

#endif
