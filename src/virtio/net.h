/* net.h - virtio network device (virtio 1.2, 5.1) on a host frame back end:
 * a TAP interface (host/tap.h) or user-mode networking (host/netuser.h).
 *
 * One receive and one transmit queue. Features: MAC, STATUS, MRG_RXBUF,
 * and, with TAP, the checksum and segmentation offloads the host kernel
 * supports (CSUM, GUEST_CSUM, GUEST/HOST_TSO4/6, _ECN, _UFO); the TAP's
 * offloads are set to exactly what the guest accepted when it sets
 * DRIVER_OK. Frames move between guest buffers and the back end's fd with
 * readv/writev (zero copy), a bounded amount of work per event-loop turn.
 */
#ifndef ARCVM_VIRTIO_NET_H
#define ARCVM_VIRTIO_NET_H

#include "base/ratelimit.h"
#include "virtio/virtio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct mmds;
#include "host/netuser.h"

/* Port forwards one user-mode NIC may have. */
#define CONFIG_MAX_HOSTFWD 8

enum net_backend { NET_TAP, NET_USER };

/* One --net tap=NAME[,mac=MAC] or --net user[,hostfwd=tcp::HP-:GP]... */
struct net_config {
    enum net_backend backend;
    char *tap;               /* TAP interface name (NET_TAP) */
    uint8_t mac[6];
    bool mac_set;            /* else derived: 06:00:AC:10:00:<index> style */
    unsigned nhostfwd;
    struct net_hostfwd hostfwd[CONFIG_MAX_HOSTFWD];
    char *id;                /* API iface_id, or NULL */
    struct rate_limiter_config rx_rl, tx_rl; /* Firecracker's; zero: none */
    /* The metadata service this NIC answers for (host/mmds.h), NULL: none.
     * Borrowed: it outlives the device. */
    struct mmds *mmds;
};

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_GUEST_UFO  10
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_HOST_UFO   14
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16
#define VIRTIO_NET_F_CTRL_VQ    17

/* Config status bits (5.1.4). */
#define VIRTIO_NET_S_LINK_UP 1

/* virtio_net_hdr flags and gso types (5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_F_RSC_INFO   4
#define VIRTIO_NET_HDR_GSO_NONE  0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP   3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN   0x80

/* The header before every frame (VERSION_1: always with num_buffers). */
struct virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr layout (5.1.6)");
#define VIRTIO_NET_HDR_LEN 12

/* The device configuration layout (5.1.4), little-endian fields. */
struct virtio_net_config {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
    uint32_t speed;
    uint8_t duplex;
    uint8_t rss_max_key_size;
    uint16_t rss_max_indirection_table_length;
    uint32_t supported_hash_types;
};
_Static_assert(sizeof(struct virtio_net_config) == 24, "virtio_net_config layout (5.1.4)");

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_QUEUE_SIZE 256
/* Largest frame either way: 64 KiB (a TSO/GSO super-frame) plus an
 * Ethernet header and a VLAN tag. Larger transmit chains are dropped. */
#define VIRTIO_NET_FRAME_MAX (65536 + 14 + 4)

/* Create a NIC for @cfg (TAP or user-mode) doing its I/O on @loop.
 * The TAP is attached, or the user-mode helper started, now. @index is the
 * NIC's position among the VM's NICs; without cfg->mac_set the MAC address
 * is 06:00:ac:10:00:<index + 2>, locally administered and unicast, the same
 * on every run (a guest keeps its DHCP lease and interface name), but also
 * the same in every VM: give mac= to VMs sharing a bridge. Returns the
 * device, freed through its ops->release (which leaves @loop, closes the
 * TAP or ends the helper), or NULL with one user-facing sentence in @err. */
struct virtio_device *virtio_net_create(const struct guest_mem *mem, const struct net_config *cfg,
                                        unsigned index, struct evloop *loop, char *err,
                                        size_t errlen);

/* ---- for tests and future back ends -------------------------------------- */

/* Each frame on the fd starts with a 12-byte virtio_net_hdr (TAP with
 * IFF_VNET_HDR). Without it frames are bare Ethernet and no offloads exist. */
#define NET_BACKEND_VNET_HDR 1u
/* The fd is a SOCK_SEQPACKET or SOCK_DGRAM socket: one frame per message,
 * sizes learnt with MSG_PEEK | MSG_TRUNC. Without it, a read must return
 * the frame's full length even when the buffers were too small (as TUN
 * does). */
#define NET_BACKEND_DGRAM 2u

/* A frame back end: a non-blocking fd on which each read or write is one
 * frame. */
struct virtio_net_backend {
    int fd;
    unsigned flags;    /* NET_BACKEND_* */
    unsigned offloads; /* TUN_F_* it can take (only with VNET_HDR) */
    const char *name;  /* for messages, e.g. "TAP tap0"; must outlive the device */
    /* Take frames with these TUN_F_* offloads from now on; NULL when
     * offloads is 0. 0 or -errno. */
    int (*set_offloads)(void *opaque, unsigned offloads);
    /* The fd reached EOF or an error: e.g. reap a helper. May be NULL. */
    void (*dead)(void *opaque);
    /* Release everything (the fd included); called once, also on failure. */
    void (*close)(void *opaque);
    void *opaque;
};

/* Create a NIC on back end @be with MAC @mac. Takes ownership of @be: on
 * failure be->close() has been called. Otherwise as virtio_net_create(). */
struct virtio_device *virtio_net_create_backend(const struct guest_mem *mem, const uint8_t mac[6],
                                                const struct virtio_net_backend *be, struct evloop *loop,
                                                char *err, size_t errlen);

/* Answer for the metadata service @m (borrowed: it must outlive the
 * device) on this NIC, before the driver starts it. 0, -ENODEV if @d is no
 * virtio-net, -ENOMEM. */
int virtio_net_set_mmds(struct virtio_device *d, struct mmds *m);

/* Rate limits of each direction (NULL: leave it), at creation or run time
 * (Firecracker's PATCH /network-interfaces). -ENODEV if @d is no
 * virtio-net, -EINVAL for bad limits. */
int virtio_net_set_rate_limiters(struct virtio_device *d, const struct rate_limiter_config *rx,
                                 const struct rate_limiter_config *tx);

#endif
