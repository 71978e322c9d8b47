/* vsock_internal.h - what the files of the vsock device share and nothing
 * outside them sees: the device and connection structs, and the helpers one
 * file calls in another. vsock.h is the public side; threads and locking are
 * described at the top of vsock.c.
 *
 *   vsock.c       the device: its ops, creation, release, the socket file
 *   vsock_conn.c  connections: lookup, life and death, credit, writing to
 *                 the host socket
 *   vsock_rx.c    packets to the guest (the receive queue)
 *   vsock_tx.c    packets from the guest (the transmit queue)
 *   vsock_host.c  host sockets: accepting clients, their CONNECT line,
 *                 socket events, handshake deadlines
 */
#ifndef ARCVM_VIRTIO_VSOCK_INTERNAL_H
#define ARCVM_VIRTIO_VSOCK_INTERNAL_H

#include "virtio/vsock.h"

#include "base/log.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

enum { RXQ = VIRTIO_VSOCK_RXQ, TXQ = VIRTIO_VSOCK_TXQ, EVQ = VIRTIO_VSOCK_EVQ };
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define BUF VIRTIO_VSOCK_BUF_ALLOC

/* RSTs answering packets of no connection, waiting for receive buffers.
 * When it is full the transmit queue stops (each packet makes at most one
 * RST), so a guest that sends garbage and posts no buffers stalls only
 * itself. */
#define RST_RING 64
/* "CONNECT 4294967295\r\n" is 20 bytes: a longer line is not one. */
#define CONNECT_LINE_MAX 32
#define HASH_SIZE 256 /* power of two; MAX_CONNS entries spread over it */

enum conn_state {
    CONN_LINE,    /* host client accepted; reading "CONNECT <port>\n" */
    CONN_REQUEST, /* REQUEST for the guest queued, not delivered yet */
    CONN_WAIT,    /* REQUEST delivered; waiting for RESPONSE or RST */
    CONN_OPEN,    /* established */
    CONN_RST,     /* host socket closed; our RST to the guest is queued */
    CONN_DEAD,    /* freed by vsock_reap() */
};

/* What a connection has to send the guest, in this order of priority:
 * connection setup first, data before the SHUTDOWN that follows it. */
#define PEND_RST (1u << 0)
#define PEND_REQUEST (1u << 1)
#define PEND_RESPONSE (1u << 2)
#define PEND_DATA (1u << 3) /* the host socket may have bytes for the guest */
#define PEND_SHUTDOWN (1u << 4)
#define PEND_CREDIT (1u << 5)

struct conn {
    struct conn *hnext;         /* hash chain (while hashed) */
    struct conn *aprev, *anext; /* every live connection */
    struct conn *rprev, *rnext; /* receive list (while pend != 0) */
    struct conn *dnext;         /* graveyard */
    int fd;
    enum conn_state state;
    bool hashed, in_rx;
    bool armed, hup; /* one-shot armed with @armed_ev; the socket hung up */
    uint32_t armed_ev;
    unsigned pend;
    uint32_t local_port, peer_port; /* host side, guest side */
    uint64_t deadline_ms;           /* handshake deadline, 0: none */
    /* Host -> guest. */
    uint32_t tx_cnt;                     /* payload bytes sent to the guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt; /* the guest's last word */
    bool credit_blocked;                 /* stopped reading for want of credit */
    bool host_eof;                       /* the host socket reads EOF */
    /* Guest -> host. */
    uint32_t rx_cnt;   /* payload bytes the guest sent */
    uint32_t fwd_cnt;  /* of which passed on to the host socket */
    uint32_t fwd_told; /* the fwd_cnt the guest last heard */
    uint8_t *buf;      /* ring of BUF bytes, allocated while data waits */
    uint32_t buf_head, buf_len;
    uint8_t guest_shut; /* VIRTIO_VSOCK_SHUTDOWN_* received */
    bool shut_wr, shut_rd;
    /* The host client's "CONNECT <port>\n" so far (CONN_LINE). */
    char line[CONNECT_LINE_MAX];
    uint8_t line_len;
    /* "OK <port>\n" still owed to a host client, before any data. */
    char reply[24];
    uint8_t reply_len, reply_off;
};

struct rst {
    uint64_t src_cid;
    uint32_t src_port, dst_port;
    uint16_t type;
};

struct vsock {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct evloop *loop;
    uint64_t cid;
    uint8_t config[8]; /* virtio_vsock_config: le64 guest_cid */
    char *uds_path;
    int epfd, listen_fd, timer_fd;
    bool on_loop, bound, timer_on, listen_paused;
    dev_t uds_dev; /* the socket file we created, to remove only it */
    ino_t uds_ino;
    struct log_ratelimit host_rl, debug_rl;
    /* Connections. */
    struct conn *hash[HASH_SIZE];
    struct conn *all;
    unsigned nconns;
    struct conn *rx_head, *rx_tail;
    unsigned nrx;
    struct conn *dead;
    uint32_t next_port;
    /* RSTs for packets of no connection. */
    struct rst rst[RST_RING];
    unsigned rst_head, rst_count;
    bool tx_stalled; /* TXQ stopped while the RST ring was full */
    bool reset_event; /* TRANSPORT_RESET owed to the driver (restored from a snapshot) */
    bool rx_small;   /* the chain at hand has no room for payload */
    struct iovec iov[VIRTQ_MAX_SIZE];
    struct virtq_chain txc, rxc;
};

/* Connection events the guest can cause at will: debug level, and
 * rate-limited even there. */
#define vsock_debug(v, ...)                                                                        \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG && log_ratelimit_ok(&(v)->debug_rl))                      \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

static inline struct vsock *to_vsock(struct virtio_device *d)
{
    return (struct vsock *)d;
}

static inline uint64_t vsock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- vsock_conn.c ------------------------------------------------------ */

/* The connection of host port @local and guest port @peer, or NULL. */
struct conn *vsock_conn_find(struct vsock *v, uint32_t local, uint32_t peer);
/* Make @c findable by its ports, which the caller has set. */
void vsock_hash_add(struct vsock *v, struct conn *c);
/* Start (@on) or stop the tick that checks deadlines and a paused listener. */
void vsock_timer_set(struct vsock *v, bool on);
/* Give @c a handshake deadline @ms from now (0: none). */
void vsock_conn_deadline(struct vsock *v, struct conn *c, uint64_t ms);
/* A connection on host socket @fd, watched disarmed; NULL on failure (@fd stays the caller's). */
struct conn *vsock_conn_new(struct vsock *v, int fd, enum conn_state state);
/* Forget @c at once, telling the guest nothing; freed by vsock_reap(). */
void vsock_conn_free(struct vsock *v, struct conn *c);
/* End @c: close its host socket and, if the guest knows @c, send it an RST. */
void vsock_conn_rst(struct vsock *v, struct conn *c);
/* Free the ended connections; only at the end of an entry point. */
void vsock_reap(struct vsock *v);
/* The bytes the guest has room for on @c (its credit, 5.10.6.3). */
uint32_t vsock_peer_credit(const struct conn *c);
/* Whether @c may read its host socket for the guest now. */
bool vsock_can_read(const struct conn *c);
/* Arm @c's one-shot socket watch for what it can act on now. */
void vsock_conn_arm(struct vsock *v, struct conn *c);
/* Queue a credit update on @c if the guest should hear what we passed on. */
void vsock_maybe_credit(struct vsock *v, struct conn *c);
/* @c's host socket failed with @err or went away: end @c. */
void vsock_host_failed(struct vsock *v, struct conn *c, int err);
/* If both directions of @c are finished, tell the host and the guest. */
void vsock_check_done(struct vsock *v, struct conn *c);
/* Write what waits for @c's host socket (reply, then guest data); may end @c. */
void vsock_conn_flush(struct vsock *v, struct conn *c);

/* ---- vsock.c ------------------------------------------------------------ */

/* Point v->iov at @len bytes of @ch's buffers [first, first+count) after @skip; the entries. */
int vsock_chain_iov(struct vsock *v, const struct virtq_chain *ch, unsigned first,
                    unsigned count, uint64_t skip, uint64_t len);

/* ---- vsock_rx.c --------------------------------------------------------- */

/* Give @c something (PEND_*) to send the guest; the next vsock_rx_pump() sends it. */
void vsock_rx_add(struct vsock *v, struct conn *c, unsigned what);
/* Take @c off the receive list, whatever it still had to send. */
void vsock_rx_del(struct vsock *v, struct conn *c);
/* Send the guest what is pending, as far as its receive buffers go. */
void vsock_rx_pump(struct vsock *v);

/* ---- vsock_tx.c --------------------------------------------------------- */

/* The transmit queue's virtio_queue_serve() handler: one packet from the guest. */
long vsock_tx_chain(struct virtio_device *d, unsigned q, struct virtq_chain *ch);

/* ---- vsock_host.c ------------------------------------------------------- */

/* The private epoll set's event-loop callback: one batch of host socket events. */
void vsock_on_events(void *opaque, uint32_t events);

#endif
