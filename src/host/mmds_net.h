/* mmds_net.h - the metadata service's network stack for one NIC: ARP, IPv4
 * and a TCP server on port 80 at the service's address, between the guest's
 * transmitted frames and its receive queue. Like Firecracker's own MMDS
 * stack (Dumbo) it is as small as serving one HTTP request per connection
 * needs; docs/architecture.md says why it is not lwIP.
 *
 * Frames move in a pull model: the NIC's transmit path hands over the
 * frames mmds_net_wants() claims (they never reach the host), and its
 * receive path asks for the next frame only when the guest has posted a
 * buffer for it, so nothing queues up in arcvm. Everything is bounded:
 * SYNs are answered with SYN cookies (no state until the handshake
 * completes), MMDS_NET_CONNS connections (a new one evicts the least
 * recently used), MMDS_REQ_MAX bytes of request each (the window arcvm
 * advertises), one response each (at most the store's size limit plus
 * headers), and MMDS_NET_CTRL replies (ARP, SYN|ACK, RST, lone ACKs)
 * waiting; more are dropped, as a wire drops them, and the guest
 * retransmits.
 *
 * Owned by one NIC and called under its lock (virtio/net.c).
 */
#ifndef ARCVM_HOST_MMDS_NET_H
#define ARCVM_HOST_MMDS_NET_H

#include "host/mmds.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest frame the stack sends: an Ethernet header and 1500 bytes. */
#define MMDS_NET_FRAME_MAX 1514
/* Connections held at once. */
#define MMDS_NET_CONNS 16
/* Control replies (ARP, SYN|ACK, RST, lone ACKs) waiting for the guest's
 * receive buffers: as many as one transmit kick's frames (TX_BUDGET). */
#define MMDS_NET_CTRL 64

struct mmds_net;

/* A stack for the service @m (its address is read now: /mmds/config is
 * set before boot). NULL when out of memory. */
struct mmds_net *mmds_net_create(struct mmds *m);
void mmds_net_destroy(struct mmds_net *s);

/* Whether the frame starting with @f (@len bytes, of which the first 42
 * are enough) belongs to the service: an ARP packet about its address or
 * an IPv4 packet to it (34 bytes tell). Such frames must go to
 * mmds_net_input(), never to the host. */
bool mmds_net_wants(const struct mmds_net *s, const uint8_t *f, size_t len);
/* The whole of a frame mmds_net_wants() claimed. Anything but ARP requests
 * and TCP to port 80 is dropped. */
void mmds_net_input(struct mmds_net *s, const uint8_t *f, size_t len);
/* The next frame for the guest into @buf (@cap bytes), or 0 when nothing
 * is due. With @cap < MMDS_NET_FRAME_MAX data segments are shorter. */
size_t mmds_net_output(struct mmds_net *s, uint8_t *buf, size_t cap);
/* Whether mmds_net_output() has a frame to give. */
bool mmds_net_pending(struct mmds_net *s);
/* For the fuzz target: the SYN cookies' key (else random), so that runs
 * repeat. */
void mmds_net_set_key(struct mmds_net *s, uint64_t key);

#endif
