/* vsock.h - virtio-vsock (virtio 1.2, 5.10), stream sockets only, with
 * Firecracker's hybrid host side: every guest connection is a Unix-socket
 * connection on the host.
 *
 * Host to guest: arcvm listens on the Unix socket uds_path. A host program
 * connects, writes "CONNECT <port>\n"; arcvm asks the guest (REQUEST to
 * <port>) and answers "OK <local_port>\n" once the guest accepts (RESPONSE),
 * or closes the connection if it refuses (RST) or does not answer in time.
 * Guest to host: a guest connection to CID 2, port P becomes a connection to
 * the Unix socket "<uds_path>_P" (RST if nobody listens there).
 *
 * Everything runs under the device lock on the event-loop thread: host
 * sockets are non-blocking and watched through the loop. Flow control is
 * the protocol's credit (5.10.6.3) in both directions: the guest is never
 * sent more than it has room for, and arcvm buffers at most
 * VIRTIO_VSOCK_BUF_ALLOC bytes per connection of what a host socket could not
 * take at once (what it advertises); a guest that sends more is reset.
 */
#ifndef ARCVM_VIRTIO_VSOCK_H
#define ARCVM_VIRTIO_VSOCK_H

#include "virtio/virtio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
/* --vsock cid=N,uds=PATH: Firecracker's hybrid vsock. */
struct vsock_config {
    bool enabled;
    uint32_t cid;            /* guest CID, >= 3 */
    char *uds_path;          /* host-side Unix socket */
};

/* Feature bits (5.10.3). Only STREAM is offered: without SEQPACKET the
 * driver uses stream sockets only (a driver that predates bit 0 too). */
#define VIRTIO_VSOCK_F_STREAM 0
#define VIRTIO_VSOCK_F_SEQPACKET 1

/* Packet header (5.10.6): little-endian, packed, 44 bytes, followed by
 * `len` bytes of payload (RW only). */
struct virtio_vsock_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio_vsock_hdr layout (5.10.6)");

#define VIRTIO_VSOCK_TYPE_STREAM 1
#define VIRTIO_VSOCK_TYPE_SEQPACKET 2

#define VIRTIO_VSOCK_OP_INVALID 0
#define VIRTIO_VSOCK_OP_REQUEST 1
#define VIRTIO_VSOCK_OP_RESPONSE 2
#define VIRTIO_VSOCK_OP_RST 3
#define VIRTIO_VSOCK_OP_SHUTDOWN 4
#define VIRTIO_VSOCK_OP_RW 5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE 6
#define VIRTIO_VSOCK_OP_CREDIT_REQUEST 7

/* SHUTDOWN flags: the sender will receive / send no more. */
#define VIRTIO_VSOCK_SHUTDOWN_RCV 1u
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2u

/* Well-known CIDs (0-2 are reserved; the host is 2). */
#define VIRTIO_VSOCK_HOST_CID 2

/* Queues (5.10.2). The event queue carries one event, after a restore
 * from a snapshot: no host connection survives one, so the driver is told
 * to drop all of its own (5.10.6.6) and to read the guest CID again. */
#define VIRTIO_VSOCK_RXQ 0
#define VIRTIO_VSOCK_TXQ 1
#define VIRTIO_VSOCK_EVQ 2
#define VIRTIO_VSOCK_QUEUE_SIZE 256

/* struct virtio_vsock_event (5.10.6.6): a le32 id. */
#define VIRTIO_VSOCK_EVENT_LEN 4
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0

/* Buffer arcvm advertises per connection (buf_alloc): as much of the
 * guest's data as it holds when a host socket cannot take it at once.
 * 256 KiB, Linux's own default, keeps a stream going across the latency of
 * one credit update; it is only allocated while data waits. */
#define VIRTIO_VSOCK_BUF_ALLOC (256u << 10)
/* Largest payload of one packet, either way (Linux's
 * VIRTIO_VSOCK_MAX_PKT_BUF_SIZE); longer packets are malformed. */
#define VIRTIO_VSOCK_MAX_PKT (64u << 10)
/* Connections at once, in any state: with the buffer above this bounds
 * what a guest can make arcvm hold to 64 MiB (and only while host peers
 * stop reading). */
#define VIRTIO_VSOCK_MAX_CONNS 256
/* Ports arcvm picks for host-initiated connections start here, as in
 * Firecracker, far above the ports guests usually listen on. */
#define VIRTIO_VSOCK_LOCAL_PORT_BASE (1u << 30)
/* Handshake limits: a host client must send its CONNECT line within
 * CONNECT_MS of connecting, and the guest must answer the REQUEST within
 * RESPONSE_MS (generous: nested, emulated guests are slow to schedule). */
#define VIRTIO_VSOCK_CONNECT_MS 10000
#define VIRTIO_VSOCK_RESPONSE_MS 5000

/* Create a vsock device with guest CID cfg->cid, listening on the Unix
 * socket cfg->uds_path and watching host sockets on @loop. A stale socket
 * file at uds_path (nobody accepts on it) is replaced; a socket in use, or a
 * file that is not a socket, is refused. Returns the device, freed through
 * its ops->release (which closes every connection and the listener and
 * removes the socket file it created), or NULL with one user-facing sentence
 * in @err. */
struct virtio_device *virtio_vsock_create(const struct guest_mem *mem,
                                          const struct vsock_config *cfg, struct evloop *loop,
                                          char *err, size_t errlen);

#endif
