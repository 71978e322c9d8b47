/* test_net.c - virtio-net driven as a guest driver would (rings laid out by
 * hand in fake guest RAM, a real event loop), on a socket pair standing in
 * for the back end; then the real back ends without KVM: a TAP interface in
 * a private network namespace (skipped without CAP_NET_ADMIN) and the
 * user-mode helper. */
#include "vdev_harness.h"

#include "host/mmds.h"
#include "host/netuser.h"
#include "host/tap.h"
#include "netuser/protocol.h"
#include "virtio/net.h"
#include "vmm/config.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* Guest RAM layout: the two queues' rings at 0x1000 and 0x4000, the heap
 * above them. */
#define MEM_SIZE  (16u << 20)
#define QSZ       256 /* the largest queue the device offers */
#define RING_GPA  0x1000ull
#define RING_STEP 0x3000ull
#define HEAP_GPA  0x10000ull
#define HDR       VIRTIO_NET_HDR_LEN

#define F(b) VIRTIO_BIT(VIRTIO_NET_F_##b)

static const uint8_t test_mac[6] = {0x06, 0x12, 0x34, 0x56, 0x78, 0x9a};
static const unsigned all_offloads =
    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO;

struct ctx {
    struct vdev_harness h;
    /* The fake back end. */
    int dev_fd, peer;
    bool be_closed;
    unsigned offloads_set;
    int offload_calls;
    /* The TAP test's namespace switch. */
    int orig_ns;
};

/* ---- guest buffers ----------------------------------------------------------- */

/* One receive buffer of @len bytes (a single writable descriptor, as Linux
 * posts with MRG_RXBUF). Returns its head; *gpa its address. */
static uint16_t post_rx(struct ctx *c, uint32_t len, uint64_t *gpa)
{
    uint64_t g = vh_alloc(&c->h, len);
    memset(vh_ptr(&c->h, g), 0xee, len);
    if (gpa)
        *gpa = g;
    struct vh_seg s = {g, len, true};
    return vh_post(&c->h, VIRTIO_NET_RXQ, &s, 1);
}

/* A transmit chain: header then a frame, split into @n pieces at @cuts. */
static uint16_t post_tx(struct ctx *c, const struct virtio_net_hdr *h, const uint8_t *frame,
                        size_t len, const size_t *cuts, unsigned ncuts)
{
    size_t total = HDR + len;
    uint64_t g = vh_alloc(&c->h, total);
    memcpy(vh_ptr(&c->h, g), h, HDR);
    if (len)
        memcpy(vh_ptr(&c->h, g + HDR), frame, len);
    struct vh_seg s[16];
    unsigned n = 0;
    size_t at = 0;
    for (unsigned i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : total;
        s[n++] = (struct vh_seg){g + at, (uint32_t)(end - at), false};
        at = end;
    }
    return vh_post(&c->h, VIRTIO_NET_TXQ, s, n);
}

static void frame_fill(uint8_t *f, size_t len, unsigned seed)
{
    /* Ethernet: to the test MAC, from a peer, IPv4 ethertype; then a
     * pattern that never repeats soon. */
    memcpy(f, test_mac, 6);
    static const uint8_t src[6] = {0x02, 0, 0, 0, 0, 1};
    memcpy(f + 6, src, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(i * 13 + seed * 7 + (i >> 8));
}

static void peer_send(struct ctx *c, const void *buf, size_t len)
{
    assert_int_equal(send(c->peer, buf, len, MSG_DONTWAIT), (ssize_t)len);
}

/* One frame from the peer's side, or -1 if none is waiting. */
static ssize_t peer_recv(struct ctx *c, void *buf, size_t len)
{
    ssize_t r = recv(c->peer, buf, len, MSG_DONTWAIT | MSG_TRUNC);
    return r < 0 ? -1 : r;
}

/* ---- device lifecycle -------------------------------------------------------- */

/* The driver's side of initialisation (3.1.1) accepting @want of the offer,
 * with both queues. */
static bool driver_init_try(struct ctx *c, uint64_t want)
{
    return vh_driver_init(&c->h, want, 1u << VIRTIO_NET_RXQ | 1u << VIRTIO_NET_TXQ);
}

static void driver_init(struct ctx *c, uint64_t want)
{
    assert_true(driver_init_try(c, want));
}

static int fake_set_offloads(void *opaque, unsigned offloads)
{
    struct ctx *c = opaque;
    c->offloads_set = offloads;
    c->offload_calls++;
    return 0;
}

static void fake_close(void *opaque)
{
    struct ctx *c = opaque;
    close(c->dev_fd);
    c->dev_fd = -1;
    c->be_closed = true;
}

/* A device on a socket pair; @flags NET_BACKEND_*, @offloads TUN_F_*. */
static void make_fake(struct ctx *c, unsigned flags, unsigned offloads)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    c->dev_fd = sv[0];
    c->peer = sv[1];
    struct virtio_net_backend be = {.fd = sv[0],
                                    .flags = flags,
                                    .offloads = offloads,
                                    .name = "fake",
                                    .set_offloads = offloads ? fake_set_offloads : NULL,
                                    .close = fake_close,
                                    .opaque = c};
    char err[256] = "";
    struct virtio_device *d =
        virtio_net_create_backend(&c->h.mem, test_mac, &be, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_net_create_backend: %s", err);
    vh_attach(&c->h, d);
}

/* The user-mode helper's kind of back end, and a TAP's. */
static void make_user_like(struct ctx *c)
{
    make_fake(c, NET_BACKEND_DGRAM, 0);
}

static void make_tap_like(struct ctx *c)
{
    make_fake(c, NET_BACKEND_VNET_HDR, all_offloads);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    struct guest_mem_region l[] = {{0, MEM_SIZE, NULL}};
    vh_init(&c->h, l, 1);
    vh_rings(&c->h, 2, QSZ, RING_GPA, RING_STEP);
    vh_heap(&c->h, HEAP_GPA, MEM_SIZE);
    c->dev_fd = c->peer = c->orig_ns = -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    vh_release(&c->h);
    if (c->peer >= 0)
        close(c->peer);
    if (c->orig_ns >= 0) {
        /* Back to the namespace the other tests (and the helper) use. */
        assert_int_equal(setns(c->orig_ns, CLONE_NEWNET), 0);
        close(c->orig_ns);
    }
    free(c);
    return 0;
}

static uint64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static struct virtio_net_hdr rx_hdr(struct ctx *c, uint64_t gpa)
{
    struct virtio_net_hdr h;
    memcpy(&h, vh_ptr(&c->h, gpa), HDR);
    return h;
}

/* ---- tests ------------------------------------------------------------------ */

/* The metadata service on a NIC: an ARP request and a SYN for its address
 * are answered into the receive queue and never reach the back end; other
 * frames pass as before; answers wait for receive buffers, then come. */
static void test_mmds_path(void **state)
{
    struct ctx *c = *state;
    struct mmds *m = mmds_create(0);
    assert_int_equal(mmds_put(m, "{\"a\": \"b\"}", 10), 0);
    make_user_like(c);
    assert_int_equal(virtio_net_set_mmds(c->h.dev, m), 0);
    driver_init(c, ~0ull);
    static const uint8_t mmds_ip[4] = {169, 254, 169, 254}, guest_ip[4] = {10, 0, 0, 2};
    uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(arp + 6, test_mac, 6);
    memcpy(arp + 12, (const uint8_t[]){0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1}, 10);
    memcpy(arp + 22, test_mac, 6);
    memcpy(arp + 28, guest_ip, 4);
    memcpy(arp + 38, mmds_ip, 4);
    struct virtio_net_hdr h = {0};
    /* No receive buffer yet: the answer waits. */
    post_tx(c, &h, arp, sizeof(arp), NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    uint8_t got[2048];
    assert_int_equal(peer_recv(c, got, sizeof(got)), -1);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_RXQ), 0);
    uint64_t g;
    uint16_t head = post_rx(c, 2048, &g);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 1);
    uint32_t id, len;
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 0, &id, &len);
    assert_int_equal(id, head);
    assert_int_equal(len, HDR + 42);
    const uint8_t *r = vh_ptr(&c->h, g + HDR);
    assert_memory_equal(r, test_mac, 6);           /* to the guest */
    assert_int_equal(r[12] << 8 | r[13], 0x0806);  /* ARP */
    assert_int_equal(r[20] << 8 | r[21], 2);       /* a reply */
    assert_memory_equal(r + 28, mmds_ip, 4);       /* for the service's address */
    assert_int_equal(le16toh(rx_hdr(c, g).num_buffers), 1);

    /* A SYN to port 80: a SYN|ACK back, nothing to the back end. */
    uint8_t syn[54] = {0};
    memcpy(syn, r + 6, 6); /* to the MAC the service answered with */
    memcpy(syn + 6, test_mac, 6);
    syn[12] = 0x08;
    syn[14] = 0x45;
    syn[17] = 40;
    syn[22] = 64;
    syn[23] = 6;
    memcpy(syn + 26, guest_ip, 4);
    memcpy(syn + 30, mmds_ip, 4);
    syn[34] = 0x9c, syn[35] = 0x40;     /* port 40000 */
    syn[37] = 80;
    syn[41] = 7;                        /* seq 7 */
    syn[46] = 5 << 4;
    syn[47] = 0x02;                     /* SYN */
    syn[48] = 0xff, syn[49] = 0xff;     /* window */
    post_rx(c, 2048, &g);
    post_tx(c, &h, syn, sizeof(syn), NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 2);
    r = vh_ptr(&c->h, g + HDR);
    assert_int_equal(r[23], 6);
    assert_int_equal(r[47], 0x12);      /* SYN|ACK */
    assert_int_equal(r[45], 8);         /* acks seq 7 + 1 */
    assert_int_equal(peer_recv(c, got, sizeof(got)), -1);

    /* Any other frame goes to the back end unchanged. */
    syn[33] = 1; /* 169.254.169.1 */
    post_tx(c, &h, syn, sizeof(syn), NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(peer_recv(c, got, sizeof(got)), 54);
    assert_memory_equal(got, syn, 54);
    assert_int_equal(c->h.dev->stats.errors, 0);
    vh_drop_dev(&c->h); /* the device before the service it borrows */
    mmds_destroy(m);
}

static void test_features_config(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    struct virtio_device *d = c->h.dev;
    assert_int_equal(d->ops->device_id, VIRTIO_ID_NET);
    assert_int_equal(d->ops->num_queues, 2);
    uint64_t f = d->host_features;
    assert_true(f & F(MAC));
    assert_true(f & F(STATUS));
    assert_true(f & F(MRG_RXBUF));
    assert_true(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    /* No vnet header, no offloads, nothing unimplemented. */
    assert_false(f & (F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN) |
                      F(GUEST_UFO) | F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_ECN) | F(HOST_UFO) |
                      F(CTRL_VQ) | F(MTU)));

    struct virtio_net_config cfg;
    d->ops->config_read(d, 0, &cfg, sizeof(cfg));
    assert_memory_equal(cfg.mac, test_mac, 6);
    assert_int_equal(le16toh(cfg.status), VIRTIO_NET_S_LINK_UP);
    assert_int_equal(le16toh(cfg.max_virtqueue_pairs), 1);
    uint8_t b[2];
    d->ops->config_read(d, 4, b, 2); /* byte-wise, as drivers read the MAC */
    assert_memory_equal(b, test_mac + 4, 2);

    /* Offloads the device never offered are refused with FEATURES_OK. */
    pthread_mutex_lock(&d->lock);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    d->guest_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | F(CSUM);
    virtio_set_status(d,
                      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_false(d->status & VIRTIO_STATUS_FEATURES_OK);
    pthread_mutex_unlock(&d->lock);
}

static void test_features_tap(void **state)
{
    struct ctx *c = *state;
    make_tap_like(c);
    struct virtio_device *d = c->h.dev;
    uint64_t f = d->host_features;
    uint64_t offl = F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN) |
                    F(GUEST_UFO) | F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_ECN) | F(HOST_UFO);
    assert_int_equal(f & offl, offl);
    assert_int_equal(c->offload_calls, 0);

    /* Dependencies (5.1.3.1) are enforced. */
    assert_false(driver_init_try(c, F(GUEST_TSO4)));
    assert_false(driver_init_try(c, F(GUEST_CSUM) | F(GUEST_ECN)));
    assert_false(driver_init_try(c, F(HOST_TSO6)));
    assert_false(driver_init_try(c, F(CSUM) | F(HOST_ECN)));
    assert_false(driver_init_try(c, F(GUEST_UFO)));

    /* Exactly what the driver took goes to the TAP, at DRIVER_OK. */
    c->offload_calls = 0;
    driver_init(c, F(MRG_RXBUF) | F(GUEST_CSUM) | F(GUEST_TSO4));
    assert_int_equal(c->offloads_set, TUN_F_CSUM | TUN_F_TSO4);
    driver_init(c, ~0ull);
    assert_int_equal(c->offloads_set, all_offloads);
    /* Reset turns them off before the next driver negotiates. */
    pthread_mutex_lock(&d->lock);
    virtio_set_status(d, 0);
    pthread_mutex_unlock(&d->lock);
    assert_int_equal(c->offloads_set, 0);
    driver_init(c, F(MRG_RXBUF));
    assert_int_equal(c->offloads_set, 0);

    /* A TAP-like back end without checksum offload offers nothing. */
    vh_drop_dev(&c->h);
    close(c->peer);
    make_fake(c, NET_BACKEND_VNET_HDR, 0);
    assert_false(c->h.dev->host_features & offl);
}

static void test_rx_single(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull & ~F(MRG_RXBUF));
    /* Split header and data, as Linux's small-buffer mode does. */
    uint64_t h = vh_alloc(&c->h, HDR), data = vh_alloc(&c->h, 1518);
    memset(vh_ptr(&c->h, h), 0xee, HDR);
    struct vh_seg s[] = {{h, HDR, true}, {data, 1518, true}};
    uint16_t head = vh_post(&c->h, VIRTIO_NET_RXQ, s, 2);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    uint8_t f[1514];
    frame_fill(f, 100, 1);
    c->h.used_irqs = 0;
    peer_send(c, f, 100);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 1);
    uint32_t id, len;
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 0, &id, &len);
    assert_int_equal(id, head);
    assert_int_equal(len, HDR + 100);
    struct virtio_net_hdr vh = rx_hdr(c, h);
    assert_int_equal(vh.flags, 0);
    assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    assert_int_equal(le16toh(vh.num_buffers), 1);
    assert_memory_equal(vh_ptr(&c->h, data), f, 100);
    assert_true(c->h.used_irqs >= 1);
    assert_int_equal(c->h.dev->stats.in_bytes, 100);

    /* A frame bigger than the chain is dropped; the chain serves the next. */
    uint64_t small = vh_alloc(&c->h, HDR + 64);
    struct vh_seg s2[] = {{small, HDR + 64, true}};
    head = vh_post(&c->h, VIRTIO_NET_RXQ, s2, 1);
    uint64_t errors = c->h.dev->stats.errors;
    frame_fill(f, 200, 2);
    peer_send(c, f, 200);
    frame_fill(f, 60, 3);
    peer_send(c, f, 60);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 2);
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 1, &id, &len);
    assert_int_equal(id, head);
    assert_int_equal(len, HDR + 60);
    assert_memory_equal(vh_ptr(&c->h, small + HDR), f, 60);
    assert_int_equal(c->h.dev->stats.errors, errors + 1);
}

static void test_rx_mergeable(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull);
    uint64_t g[10];
    uint16_t heads[10];
    for (int i = 0; i < 10; i++)
        heads[i] = post_rx(c, 1000, &g[i]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    static uint8_t f[3000];
    frame_fill(f, sizeof(f), 4);
    peer_send(c, f, sizeof(f));
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 4); /* 12 + 3000 bytes: 1000, 1000, 1000, 12 */
    uint32_t want[] = {1000, 1000, 1000, 12};
    for (uint16_t i = 0; i < 4; i++) {
        uint32_t id, len;
        vh_used_elem(&c->h, VIRTIO_NET_RXQ, i, &id, &len);
        assert_int_equal(id, heads[i]);
        assert_int_equal(len, want[i]);
    }
    struct virtio_net_hdr vh = rx_hdr(c, g[0]);
    assert_int_equal(le16toh(vh.num_buffers), 4);
    assert_int_equal(vh.flags, 0);
    assert_memory_equal(vh_ptr(&c->h, g[0] + HDR), f, 1000 - HDR);
    assert_memory_equal(vh_ptr(&c->h, g[1]), f + 1000 - HDR, 1000);
    assert_memory_equal(vh_ptr(&c->h, g[2]), f + 2000 - HDR, 1000);
    assert_memory_equal(vh_ptr(&c->h, g[3]), f + 3000 - HDR, HDR);
    assert_int_equal(*vh_ptr(&c->h, g[3] + HDR), 0xee); /* nothing beyond the frame */

    /* The next frames start in the next held chains, one each. */
    frame_fill(f, 60, 5);
    peer_send(c, f, 60);
    peer_send(c, f, 60);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 6);
    uint32_t id, len;
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 5, &id, &len);
    assert_int_equal(id, heads[5]);
    assert_int_equal(len, HDR + 60);
    assert_int_equal(le16toh(rx_hdr(c, g[5]).num_buffers), 1);
    assert_memory_equal(vh_ptr(&c->h, g[5] + HDR), f, 60);
}

/* A TAP's reads need room for the largest frame: with less the frame goes
 * through the bounce buffer, with enough straight into guest memory; the
 * TAP's header is passed on only when the driver took GUEST_CSUM. */
static void test_rx_tap(void **state)
{
    struct ctx *c = *state;
    make_tap_like(c);
    driver_init(c, F(MRG_RXBUF) | F(GUEST_CSUM) | F(CSUM));
    static uint8_t msg[HDR + 7000];
    struct virtio_net_hdr th = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                .csum_start = htole16(34),
                                .csum_offset = htole16(6),
                                .num_buffers = htole16(0x7777)};
    memcpy(msg, &th, HDR);
    frame_fill(msg + HDR, 7000, 6);

    /* Few buffers: bounce. */
    uint64_t g[40];
    for (int i = 0; i < 4; i++)
        post_rx(c, 2048, &g[i]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    peer_send(c, msg, HDR + 1000);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 1);
    struct virtio_net_hdr vh = rx_hdr(c, g[0]);
    assert_int_equal(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(le16toh(vh.csum_start), 34);
    assert_int_equal(le16toh(vh.num_buffers), 1);
    assert_memory_equal(vh_ptr(&c->h, g[0] + HDR), msg + HDR, 1000);

    /* A frame too big for what is posted waits (in arcvm: one frame) for
     * buffers, then arrives whole. */
    peer_send(c, msg, HDR + 7000);
    vh_run_for(&c->h, 20);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_RXQ), 1); /* 3 x 2048 cannot hold it */
    post_rx(c, 2048, &g[4]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 5);
    assert_int_equal(le16toh(rx_hdr(c, g[1]).num_buffers), 4);
    assert_memory_equal(vh_ptr(&c->h, g[1] + HDR), msg + HDR, 2048 - HDR);
    assert_memory_equal(vh_ptr(&c->h, g[2]), msg + 2048, 2048);
    assert_memory_equal(vh_ptr(&c->h, g[3]), msg + 4096, 2048);
    assert_memory_equal(vh_ptr(&c->h, g[4]), msg + 6144, HDR + 7000 - 6144);
    uint32_t id, len;
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 4, &id, &len);
    assert_int_equal(len, HDR + 7000 - 6144);

    /* Plenty of buffers (64 KiB and more): read in place. */
    for (int i = 5; i < 40; i++)
        post_rx(c, 2048, &g[i]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    peer_send(c, msg, HDR + 3000);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 7);
    assert_int_equal(le16toh(rx_hdr(c, g[5]).num_buffers), 2);
    assert_int_equal(rx_hdr(c, g[5]).flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_memory_equal(vh_ptr(&c->h, g[5] + HDR), msg + HDR, 2048 - HDR);
    assert_memory_equal(vh_ptr(&c->h, g[6]), msg + 2048, HDR + 3000 - 2048);

    /* Without GUEST_CSUM the header must say nothing. */
    driver_init(c, F(MRG_RXBUF));
    for (int i = 0; i < 40; i++)
        post_rx(c, 2048, &g[i]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    th.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    memcpy(msg, &th, HDR);
    peer_send(c, msg, HDR + 100);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 1);
    vh = rx_hdr(c, g[0]);
    assert_int_equal(vh.flags, 0);
    assert_int_equal(vh.csum_start, 0);
    assert_int_equal(le16toh(vh.num_buffers), 1);
}

/* No receive buffers: the back end is not read (frames stay in the host
 * socket), nothing spins; a kick after new buffers resumes in order. */
static void test_rx_no_buffers(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull);
    uint8_t f[3][200];
    for (int i = 0; i < 3; i++) {
        frame_fill(f[i], 200, 10 + (unsigned)i);
        peer_send(c, f[i], 200);
    }
    uint64_t t0 = cpu_us();
    vh_run_for(&c->h, 100);
    uint64_t spent = cpu_us() - t0;
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_RXQ), 0);
    /* A loop polling a readable fd would burn the whole 100 ms. */
    assert_true(spent < 40000);
    int queued = 0;
    assert_int_equal(ioctl(c->dev_fd, FIONREAD, &queued), 0);
    assert_true(queued > 0); /* still in the socket, not in arcvm */
    /* The driver asked to be told: EVENT_IDX avail_event = next entry. */
    uint16_t avail_event;
    memcpy(&avail_event, vh_ptr(&c->h, c->h.q[VIRTIO_NET_RXQ].used + 4 + 8u * QSZ), 2);
    assert_int_equal(avail_event, 0);

    uint64_t g[3];
    for (int i = 0; i < 3; i++)
        post_rx(c, 1526, &g[i]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 3);
    for (int i = 0; i < 3; i++)
        assert_memory_equal(vh_ptr(&c->h, g[i] + HDR), f[i], 200);

    /* And once more, the wait-and-resume cycle. */
    peer_send(c, f[0], 200);
    vh_run_for(&c->h, 20);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_RXQ), 3);
    post_rx(c, 1526, &g[0]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 4);
}

/* Malformed receive chains are handed back empty; a malformed ring sets
 * NEEDS_RESET; the device survives both. */
static void test_rx_malformed(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull);
    uint64_t g = vh_alloc(&c->h, 2048);
    struct vh_seg ro[] = {{g, 2048, false}};
    uint16_t bad1 = vh_post(&c->h, VIRTIO_NET_RXQ, ro, 1);
    struct vh_seg tiny[] = {{g, 8, true}};
    uint16_t bad2 = vh_post(&c->h, VIRTIO_NET_RXQ, tiny, 1);
    uint64_t good;
    uint16_t ok = post_rx(c, 2048, &good);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    uint8_t f[100];
    frame_fill(f, 100, 20);
    peer_send(c, f, 100);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 3);
    uint32_t id, len;
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 0, &id, &len);
    assert_int_equal(id, bad1);
    assert_int_equal(len, 0);
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 1, &id, &len);
    assert_int_equal(id, bad2);
    assert_int_equal(len, 0);
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 2, &id, &len);
    assert_int_equal(id, ok);
    assert_int_equal(len, HDR + 100);
    assert_true(virtio_device_live(c->h.dev));

    /* A descriptor loop. */
    vh_set_desc(&c->h, VIRTIO_NET_RXQ, 200, g, 100, DESC_F_WRITE | DESC_F_NEXT, 201);
    vh_set_desc(&c->h, VIRTIO_NET_RXQ, 201, g, 100, DESC_F_WRITE | DESC_F_NEXT, 200);
    vh_publish(&c->h, VIRTIO_NET_RXQ, 200);
    c->h.config_irqs = 0;
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    peer_send(c, f, 100);
    vh_run_for(&c->h, 20);
    assert_true(c->h.dev->status & VIRTIO_STATUS_NEEDS_RESET);
    assert_true(c->h.config_irqs >= 1);
    /* Reset brings it back. */
    driver_init(c, ~0ull);
    post_rx(c, 2048, &good);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    peer_send(c, f, 100);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 1);
}

/* A driver that posts tiny chains, or one chain many times over: arcvm holds
 * at most a queue's worth, and a frame they cannot hold is dropped rather
 * than kept waiting for ever. */
static void test_rx_hostile_reuse(void **state)
{
    struct ctx *c = *state;
    make_tap_like(c);
    driver_init(c, ~0ull);
    uint64_t g;
    uint16_t head = post_rx(c, 16, &g);
    for (unsigned i = 1; i < QSZ; i++)
        vh_publish(&c->h, VIRTIO_NET_RXQ, head);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    static uint8_t msg[HDR + 5000];
    memset(msg, 0, HDR);
    frame_fill(msg + HDR, 5000, 90);
    peer_send(c, msg, HDR + 5000); /* 256 x 16 bytes cannot hold it */
    vh_run_for(&c->h, 20);
    for (unsigned i = 0; i < 100; i++)
        vh_publish(&c->h, VIRTIO_NET_RXQ, head);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    vh_run_for(&c->h, 20);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_RXQ), 0);
    assert_int_equal(c->h.dev->stats.errors, 1);
    /* A frame that fits goes through the held chains: 1012 bytes in 16s. */
    peer_send(c, msg, HDR + 1000);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 64);
    assert_true(virtio_device_live(c->h.dev));
}

static void test_tx_gather(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull);
    uint8_t f[200], got[70000];
    frame_fill(f, 100, 30);
    struct virtio_net_hdr h = {0};
    size_t cuts[] = {HDR, HDR + 30};
    uint16_t head = post_tx(c, &h, f, 100, cuts, 2);
    c->h.used_irqs = 0;
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(peer_recv(c, got, sizeof(got)), 100); /* no header on this back end */
    assert_memory_equal(got, f, 100);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_TXQ), 1);
    uint32_t id, len;
    vh_used_elem(&c->h, VIRTIO_NET_TXQ, 0, &id, &len);
    assert_int_equal(id, head);
    assert_int_equal(len, 0);
    assert_true(c->h.used_irqs >= 1);
    assert_int_equal(c->h.dev->stats.out_bytes, 100);

    /* The header itself split across descriptors, and the frame in many. */
    frame_fill(f, 200, 31);
    size_t cuts2[] = {5, HDR + 3, HDR + 50, HDR + 51, HDR + 120};
    post_tx(c, &h, f, 200, cuts2, 5);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(peer_recv(c, got, sizeof(got)), 200);
    assert_memory_equal(got, f, 200);

    /* The largest frame passes. */
    static uint8_t big[VIRTIO_NET_FRAME_MAX];
    frame_fill(big, sizeof(big), 32);
    size_t cuts3[] = {HDR + 40000};
    post_tx(c, &h, big, sizeof(big), cuts3, 1);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(peer_recv(c, got, sizeof(got)), (ssize_t)sizeof(big));
    assert_memory_equal(got, big, sizeof(big));
    assert_int_equal(c->h.dev->stats.errors, 0);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Rate limiters on both directions: 2 frames per 500 ms each way. What is
 * held back goes when the bucket refills, without a kick; lifting the
 * limit at run time releases what waits. */
static void test_rate_limiters(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull & ~F(MRG_RXBUF));
    struct rate_limiter_config two = {.ops = {.size = 2, .refill_time_ms = 500}};
    assert_int_equal(virtio_net_set_rate_limiters(c->h.dev, &two, &two), 0);
    uint8_t f[200], got[2048];
    struct virtio_net_hdr h = {0};
    size_t cuts[] = {HDR};
    for (int i = 0; i < 4; i++) {
        frame_fill(f, 100, 40 + i);
        post_tx(c, &h, f, 100, cuts, 1);
    }
    uint64_t t0 = mono_ms();
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    vh_run_for(&c->h, 50);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_TXQ), 2);
    assert_true(vh_run_used(&c->h, VIRTIO_NET_TXQ, 4, VH_WAIT_MS));
    assert_true(mono_ms() - t0 >= 450); /* one token per 250 ms */
    for (int i = 0; i < 4; i++)
        assert_int_equal(peer_recv(c, got, sizeof(got)), 100);

    /* Receive: 4 frames wait in the back end, 2 go at once. */
    for (int i = 0; i < 4; i++) {
        uint64_t b = vh_alloc(&c->h, HDR + 1518);
        struct vh_seg s[] = {{b, HDR + 1518, true}};
        vh_post(&c->h, VIRTIO_NET_RXQ, s, 1);
    }
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    vh_run_for(&c->h, 50); /* buffers in, no frames yet */
    uint16_t base = vh_used_idx(&c->h, VIRTIO_NET_RXQ);
    for (int i = 0; i < 4; i++) {
        frame_fill(f, 100, 50 + i);
        peer_send(c, f, 100);
    }
    vh_run_for(&c->h, 50);
    assert_int_equal((uint16_t)(vh_used_idx(&c->h, VIRTIO_NET_RXQ) - base), 2);
    /* Lifted: the rest arrive at once. */
    struct rate_limiter_config none = {0};
    assert_int_equal(virtio_net_set_rate_limiters(c->h.dev, &none, NULL), 0);
    assert_true(vh_run_used(&c->h, VIRTIO_NET_RXQ, (uint16_t)(base + 4), 200));
    struct rate_limiter_config bad = {.bandwidth = {.size = 10}};
    assert_int_equal(virtio_net_set_rate_limiters(c->h.dev, NULL, &bad), -EINVAL);
}

static void test_tx_tap(void **state)
{
    struct ctx *c = *state;
    make_tap_like(c);
    driver_init(c, ~0ull);
    uint8_t f[300], got[400];
    frame_fill(f, 300, 40);
    /* A checksum-offload header goes to the TAP as is (num_buffers 0). */
    struct virtio_net_hdr h = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                               .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
                               .hdr_len = htole16(54),
                               .gso_size = htole16(1448),
                               .csum_start = htole16(34),
                               .csum_offset = htole16(16),
                               .num_buffers = htole16(5)};
    post_tx(c, &h, f, 300, NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(peer_recv(c, got, sizeof(got)), HDR + 300);
    struct virtio_net_hdr out;
    memcpy(&out, got, HDR);
    assert_int_equal(out.flags, h.flags);
    assert_int_equal(out.gso_type, h.gso_type);
    assert_int_equal(le16toh(out.gso_size), 1448);
    assert_int_equal(le16toh(out.csum_offset), 16);
    assert_int_equal(out.num_buffers, 0);
    assert_memory_equal(got + HDR, f, 300);

    /* Without the matching feature the same header is dropped. */
    driver_init(c, F(CSUM) | F(HOST_TSO4));
    post_tx(c, &h, f, 300, NULL, 0); /* ECN not negotiated */
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
    post_tx(c, &h, f, 300, NULL, 0); /* TSO6 not negotiated */
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    post_tx(c, &h, f, 300, NULL, 0); /* fine */
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_TXQ), 3);
    assert_int_equal(peer_recv(c, got, sizeof(got)), HDR + 300);
    assert_int_equal(peer_recv(c, got, sizeof(got)), -1);
    assert_int_equal(c->h.dev->stats.errors, 2);
}

/* Malformed and oversized transmit chains are dropped and counted; the
 * device goes on. */
static void test_tx_malformed(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull);
    static uint8_t f[VIRTIO_NET_FRAME_MAX + 1];
    uint8_t got[2000];
    frame_fill(f, sizeof(f), 50);
    struct virtio_net_hdr h = {0};
    /* One byte too large. */
    post_tx(c, &h, f, VIRTIO_NET_FRAME_MAX + 1, NULL, 0);
    /* Shorter than an Ethernet header; only part of a virtio-net header. */
    post_tx(c, &h, f, 13, NULL, 0);
    uint64_t g = vh_alloc(&c->h, 8);
    struct vh_seg half[] = {{g, 8, false}};
    vh_post(&c->h, VIRTIO_NET_TXQ, half, 1);
    /* Device-writable buffers in a transmit chain. */
    uint64_t w = vh_alloc(&c->h, HDR + 100);
    memset(vh_ptr(&c->h, w), 0, HDR);
    struct vh_seg wr[] = {{w, HDR, false}, {w + HDR, 100, true}};
    vh_post(&c->h, VIRTIO_NET_TXQ, wr, 2);
    /* Header flags the driver may not use, or offloads not negotiated. */
    h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    post_tx(c, &h, f, 100, NULL, 0);
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    post_tx(c, &h, f, 100, NULL, 0);
    h.flags = 0;
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    post_tx(c, &h, f, 100, NULL, 0);
    h.gso_type = 0x42;
    post_tx(c, &h, f, 100, NULL, 0);
    h.gso_type = VIRTIO_NET_HDR_GSO_ECN;
    post_tx(c, &h, f, 100, NULL, 0);
    /* And a good one. */
    h.gso_type = 0;
    post_tx(c, &h, f, 1000, NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_TXQ), 10);
    for (uint16_t i = 0; i < 10; i++) {
        uint32_t id, len;
        vh_used_elem(&c->h, VIRTIO_NET_TXQ, i, &id, &len);
        assert_int_equal(len, 0);
    }
    assert_int_equal(c->h.dev->stats.errors, 9);
    assert_int_equal(peer_recv(c, got, sizeof(got)), 1000);
    assert_memory_equal(got, f, 1000);
    assert_int_equal(peer_recv(c, got, sizeof(got)), -1);
    assert_true(virtio_device_live(c->h.dev));

    /* A chain of more buffers than one writev takes is gathered. */
    enum { N = 1100 };
    struct vh_seg *s = calloc(N, sizeof(*s));
    uint64_t base = vh_alloc(&c->h, HDR + N);
    memset(vh_ptr(&c->h, base), 0, HDR);
    memcpy(vh_ptr(&c->h, base + HDR), f, N - 1);
    s[0] = (struct vh_seg){base, HDR, false};
    for (unsigned i = 1; i < N; i++)
        s[i] = (struct vh_seg){base + HDR + i - 1, 1, false};
    /* Through an indirect table: a direct chain cannot exceed the queue. */
    uint64_t ind = vh_alloc(&c->h, 16ull * N);
    vh_post_indirect(&c->h, VIRTIO_NET_TXQ, ind, s, N);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    /* VIRTQ_MAX_SIZE (1024) bounds chains: this one is malformed. */
    assert_true(c->h.dev->status & VIRTIO_STATUS_NEEDS_RESET);
    driver_init(c, ~0ull);
    /* The header and 1019 one-byte pieces: one sendmsg, no copy. */
    enum { M = 1020 };
    for (unsigned i = 0; i < M; i++)
        vh_put_desc(vh_ptr(&c->h, ind), i, i ? base + HDR + i - 1 : base, i ? 1 : HDR,
                    i + 1 < M ? DESC_F_NEXT : 0, (uint16_t)(i + 1));
    vh_post_table(&c->h, VIRTIO_NET_TXQ, ind, M);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(peer_recv(c, got, sizeof(got)), M - 1);
    assert_memory_equal(got, f, M - 1);
    free(s);
}

/* More than one writev's worth of pieces, with a TAP's header in front. */
static void test_tx_linearize(void **state)
{
    struct ctx *c = *state;
    make_tap_like(c);
    driver_init(c, ~0ull);
    enum { M = 1024 }; /* header + 1023 one-byte pieces + the TAP header */
    static uint8_t f[M];
    uint8_t got[2000];
    frame_fill(f, M, 60);
    uint64_t base = vh_alloc(&c->h, HDR + M), ind = vh_alloc(&c->h, 16ull * M);
    memset(vh_ptr(&c->h, base), 0, HDR);
    memcpy(vh_ptr(&c->h, base + HDR), f, M - 1);
    for (unsigned i = 0; i < M; i++)
        vh_put_desc(vh_ptr(&c->h, ind), i, i ? base + HDR + i - 1 : base, i ? 1 : HDR,
                    i + 1 < M ? DESC_F_NEXT : 0, (uint16_t)(i + 1));
    vh_post_table(&c->h, VIRTIO_NET_TXQ, ind, M);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(peer_recv(c, got, sizeof(got)), HDR + M - 1);
    assert_memory_equal(got + HDR, f, M - 1);
    assert_int_equal(c->h.dev->stats.errors, 0);
}

/* A flood of transmit chains is served TX_BUDGET at a time, the rest after
 * a requeue; a back end that pushes back pauses the queue until writable. */
static void test_tx_budget_backpressure(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull);
    uint8_t f[1000], got[2000];
    struct virtio_net_hdr h = {0};
    for (unsigned i = 0; i < 200; i++) {
        frame_fill(f, 100, i);
        post_tx(c, &h, f, 100, NULL, 0);
    }
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    uint16_t first = vh_used_idx(&c->h, VIRTIO_NET_TXQ);
    assert_true(first > 0 && first < 200); /* bounded, not all at once */
    vh_wait_used(&c->h, VIRTIO_NET_TXQ, 200);
    for (unsigned i = 0; i < 200; i++) {
        frame_fill(f, 100, i);
        assert_int_equal(peer_recv(c, got, sizeof(got)), 100);
        assert_memory_equal(got, f, 100);
    }

    /* A small socket buffer: the back end fills up. */
    int small = 4096;
    assert_int_equal(setsockopt(c->dev_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    enum { N = 60 };
    for (unsigned i = 0; i < N; i++) {
        frame_fill(f, sizeof(f), 100 + i);
        post_tx(c, &h, f, sizeof(f), NULL, 0);
    }
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    uint16_t sent = (uint16_t)(vh_used_idx(&c->h, VIRTIO_NET_TXQ) - 200);
    assert_true(sent < N);
    uint64_t t0 = cpu_us();
    vh_run_for(&c->h, 50); /* blocked: nothing to do, nothing spins */
    assert_true(cpu_us() - t0 < 30000);
    assert_int_equal((uint16_t)(vh_used_idx(&c->h, VIRTIO_NET_TXQ) - 200), sent);
    /* Reading on the peer's side lets the rest through, in order. */
    for (unsigned i = 0; i < N;) {
        ssize_t r = peer_recv(c, got, sizeof(got));
        if (r < 0) {
            vh_run_for(&c->h, 2);
            continue;
        }
        frame_fill(f, sizeof(f), 100 + i);
        assert_int_equal(r, sizeof(f));
        assert_memory_equal(got, f, sizeof(f));
        i++;
    }
    vh_wait_used(&c->h, VIRTIO_NET_TXQ, 200 + N);
}

/* Reset with chains held and a frame pending: nothing reaches the old
 * rings afterwards, and the device works on new ones. */
static void test_reset(void **state)
{
    struct ctx *c = *state;
    make_tap_like(c);
    driver_init(c, ~0ull);
    for (int i = 0; i < 3; i++)
        post_rx(c, 1000, NULL);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    static uint8_t msg[HDR + 5000];
    memset(msg, 0, HDR);
    frame_fill(msg + HDR, 5000, 70);
    peer_send(c, msg, HDR + 5000); /* cannot fit in 3000: pending */
    vh_run_for(&c->h, 20);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_RXQ), 0);
    uint64_t old_used = c->h.q[VIRTIO_NET_RXQ].used;
    pthread_mutex_lock(&c->h.dev->lock);
    virtio_set_status(c->h.dev, 0);
    assert_int_equal(c->h.dev->status, 0);
    pthread_mutex_unlock(&c->h.dev->lock);
    peer_send(c, msg, HDR + 100);
    c->h.used_irqs = 0;
    vh_run_for(&c->h, 20);
    assert_int_equal(__atomic_load_n((uint16_t *)vh_ptr(&c->h, old_used + 2), __ATOMIC_ACQUIRE), 0);
    assert_int_equal(c->h.used_irqs, 0);

    /* New rings elsewhere. */
    driver_init(c, ~0ull);
    uint64_t g[40];
    for (int i = 0; i < 40; i++)
        post_rx(c, 2048, &g[i]);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    /* The frame that waited in the host is delivered now (the one that
     * waited in arcvm went with the reset). */
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 1);
    assert_int_equal(le16toh(rx_hdr(c, g[0]).num_buffers), 1);
    assert_memory_equal(vh_ptr(&c->h, g[0] + HDR), msg + HDR, 100);
    struct virtio_net_config cfg;
    c->h.dev->ops->config_read(c->h.dev, 0, &cfg, sizeof(cfg));
    assert_int_equal(le16toh(cfg.status), VIRTIO_NET_S_LINK_UP);
}

/* The peer goes away: link down (with a config interrupt), transmit chains
 * are consumed and dropped, nothing spins. */
static void test_backend_gone(void **state)
{
    struct ctx *c = *state;
    make_user_like(c);
    driver_init(c, ~0ull);
    post_rx(c, 2048, NULL);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    c->h.config_irqs = 0;
    close(c->peer);
    c->peer = -1;
    vh_run_for(&c->h, 20);
    struct virtio_net_config cfg;
    c->h.dev->ops->config_read(c->h.dev, 0, &cfg, sizeof(cfg));
    assert_int_equal(le16toh(cfg.status) & VIRTIO_NET_S_LINK_UP, 0);
    assert_true(c->h.config_irqs >= 1);
    uint64_t t0 = cpu_us();
    vh_run_for(&c->h, 100);
    assert_true(cpu_us() - t0 < 40000);
    uint8_t f[100];
    frame_fill(f, 100, 80);
    struct virtio_net_hdr h = {0};
    post_tx(c, &h, f, 100, NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_TXQ), 1);
    assert_true(virtio_device_live(c->h.dev));
}

/* ---- the real TAP, in a private network namespace ------------------------------ */

static int if_up(int s, const char *name, const char *addr)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (addr) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
        sin->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &sin->sin_addr);
        if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
            return -errno;
        inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
        if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
            return -errno;
    }
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return -errno;
    ifr.ifr_flags |= IFF_UP;
    return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

/* Wait for a received frame matching @match; its chain's gpa in *gpa. */
static bool tap_wait_frame(struct ctx *c, uint64_t *g, unsigned ng, uint16_t *next,
                           bool (*match)(const uint8_t *f, size_t len), uint8_t *out, size_t *olen)
{
    for (int tries = 0; tries < 50; tries++) {
        if (!vh_run_used(&c->h, VIRTIO_NET_RXQ, (uint16_t)(*next + 1), 200))
            continue;
        while (*next != vh_used_idx(&c->h, VIRTIO_NET_RXQ)) {
            uint32_t id, len;
            vh_used_elem(&c->h, VIRTIO_NET_RXQ, *next, &id, &len);
            (*next)++;
            assert_true(id < ng);
            assert_true(len >= HDR + 14 && len <= 2048);
            const uint8_t *f = vh_ptr(&c->h, g[id]) + HDR;
            if (match(f, len - HDR)) {
                memcpy(out, f, len - HDR);
                *olen = len - HDR;
                return true;
            }
        }
    }
    return false;
}

static bool is_arp_request(const uint8_t *f, size_t len)
{
    static const uint8_t target[4] = {10, 9, 9, 2};
    return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1 && !memcmp(f + 38, target, 4);
}

static bool is_udp_hello(const uint8_t *f, size_t len)
{
    return len >= 42 + 11 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 17 &&
           !memcmp(f + 42, "hello-arcvm", 11);
}

static void test_tap_real(void **state)
{
    struct ctx *c = *state;
    if (access("/dev/net/tun", R_OK | W_OK) < 0)
        skip();
    int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(ns >= 0);
    if (unshare(CLONE_NEWNET) < 0) {
        close(ns);
        skip(); /* no CAP_SYS_ADMIN: the e2e suite covers TAP */
    }
    c->orig_ns = ns;
    char err[512];
    struct tap t;
    /* Refusals say what to do. */
    assert_int_equal(tap_open(&t, "lo", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a single-queue TAP"));
    assert_int_equal(tap_open(&t, "a-name-far-too-long", err, sizeof(err)), -EINVAL);
    /* Created here, with the vnet header and offloads the kernel has. */
    assert_int_equal(tap_open(&t, "arcvmt0", err, sizeof(err)), 0);
    assert_true(t.created);
    assert_true(t.offloads & TUN_F_CSUM);
    assert_true(t.offloads & TUN_F_TSO4);
    int hdr = 0;
    assert_int_equal(ioctl(t.fd, TUNGETVNETHDRSZ, &hdr), 0);
    assert_int_equal(hdr, HDR);
    assert_true(fcntl(t.fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(t.fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(tap_set_offloads(&t, TUN_F_CSUM), 0);
    assert_int_equal(tap_set_offloads(&t, 1u << 30), -EINVAL);
    /* One reader at a time. */
    struct tap t2;
    assert_int_equal(tap_open(&t2, "arcvmt0", err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use"));
    tap_close(&t);
    tap_close(&t); /* harmless */

    /* A NIC on it: the host's ARP request arrives, our reply goes out,
     * then the host's UDP datagram arrives. */
    struct net_config cfg = {.backend = NET_TAP, .tap = "arcvmt1"};
    struct virtio_device *d = virtio_net_create(&c->h.mem, &cfg, 1, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_net_create: %s", err);
    vh_attach(&c->h, d);
    struct virtio_net_config nc;
    c->h.dev->ops->config_read(c->h.dev, 0, &nc, sizeof(nc));
    static const uint8_t mac1[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x03}; /* index 1 */
    assert_memory_equal(nc.mac, mac1, 6);
    assert_true(c->h.dev->host_features & F(GUEST_TSO4));
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    assert_int_equal(if_up(s, "lo", NULL), 0);
    assert_int_equal(if_up(s, "arcvmt1", "10.9.9.1"), 0);
    driver_init(c, ~0ull);
    uint64_t g[64];
    for (int i = 0; i < 64; i++)
        assert_int_equal(post_rx(c, 2048, &g[i]), i); /* head == index */
    vh_kick(&c->h, VIRTIO_NET_RXQ);

    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "10.9.9.2", &to.sin_addr);
    assert_int_equal(sendto(s, "hello-arcvm", 11, 0, (struct sockaddr *)&to, sizeof(to)), 11);
    uint16_t next = 0;
    uint8_t f[2048];
    size_t flen;
    assert_true(tap_wait_frame(c, g, 64, &next, is_arp_request, f, &flen));
    /* Reply: 10.9.9.2 is at mac1. */
    uint8_t reply[42];
    memcpy(reply, f + 6, 6);
    memcpy(reply + 6, mac1, 6);
    reply[12] = 0x08, reply[13] = 0x06;
    memcpy(reply + 14, f + 14, 6); /* htype, ptype, hlen, plen */
    reply[20] = 0, reply[21] = 2;  /* reply */
    memcpy(reply + 22, mac1, 6);
    memcpy(reply + 28, f + 38, 4);
    memcpy(reply + 32, f + 22, 10); /* the asker's MAC and IP */
    struct virtio_net_hdr h = {0};
    post_tx(c, &h, reply, sizeof(reply), NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_TXQ), 1);
    assert_true(tap_wait_frame(c, g, 64, &next, is_udp_hello, f, &flen));
    assert_int_equal(c->h.dev->stats.errors, 0);
    close(s);
}

/* ---- the user-mode helper, without KVM ------------------------------------------ */

/* Point ARCVM_NET_USER_HELPER at the helper built beside the tests (the
 * build always makes it: libslirp is required). */
static void need_helper(void)
{
    char self[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = 0;
    *strrchr(self, '/') = 0;
    snprintf(path, sizeof(path), "%s/../../%s", self, NETUSER_HELPER_NAME);
    if (access(path, X_OK) < 0)
        fail_msg("%s is missing: build everything (make) first", path);
    setenv(NETUSER_HELPER_ENV, path, 1);
}

static uint16_t free_port(int *keep)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
    if (keep) {
        assert_int_equal(listen(s, 1), 0);
        *keep = s;
    } else {
        close(s);
    }
    return ntohs(a.sin_port);
}

static bool is_arp_reply_gw(const uint8_t *f, size_t len)
{
    static const uint8_t gw[4] = {10, 0, 2, 2};
    return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && !memcmp(f + 28, gw, 4);
}

static uint16_t syn_port;
static bool is_syn_to_guest(const uint8_t *f, size_t len)
{
    return len >= 54 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 6 &&
           ((f[36] << 8) | f[37]) == syn_port && (f[47] & 0x02);
}

static void test_user_helper(void **state)
{
    struct ctx *c = *state;
    char err[512];
    struct net_config cfg = {.backend = NET_USER};

    setenv(NETUSER_HELPER_ENV, "/nonexistent/arcvm-net-user", 1);
    assert_null(virtio_net_create(&c->h.mem, &cfg, 0, &c->h.loop, err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, "/nonexistent/arcvm-net-user"));
    need_helper();

    /* A host port already taken: an error at creation, naming it. */
    int busy;
    cfg.nhostfwd = 1;
    cfg.hostfwd[0] = (struct net_hostfwd){.host_port = free_port(&busy), .guest_port = 80};
    assert_null(virtio_net_create(&c->h.mem, &cfg, 0, &c->h.loop, err, sizeof(err)));
    assert_int_equal(errno, EINVAL); /* the helper's refusal */
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%u", cfg.hostfwd[0].host_port);
    assert_non_null(strstr(err, want));
    close(busy);

    cfg.hostfwd[0] = (struct net_hostfwd){.host_port = free_port(NULL), .guest_port = 8080};
    syn_port = 8080;
    struct virtio_device *d = virtio_net_create(&c->h.mem, &cfg, 0, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_net_create: %s", err);
    vh_attach(&c->h, d);
    struct virtio_net_config nc;
    c->h.dev->ops->config_read(c->h.dev, 0, &nc, sizeof(nc));
    static const uint8_t mac0[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x02};
    assert_memory_equal(nc.mac, mac0, 6);
    driver_init(c, ~0ull);
    uint64_t g[64];
    for (int i = 0; i < 64; i++)
        assert_int_equal(post_rx(c, 2048, &g[i]), i);
    vh_kick(&c->h, VIRTIO_NET_RXQ);

    /* Who has 10.0.2.2? Tell 10.0.2.15. */
    uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(arp + 6, mac0, 6);
    static const uint8_t body[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
    memcpy(arp + 12, body, sizeof(body));
    memcpy(arp + 22, mac0, 6);
    static const uint8_t ips[] = {10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2};
    memcpy(arp + 28, ips, sizeof(ips));
    struct virtio_net_hdr h = {0};
    post_tx(c, &h, arp, sizeof(arp), NULL, 0);
    vh_kick(&c->h, VIRTIO_NET_TXQ);
    uint16_t next = 0;
    uint8_t f[2048];
    size_t flen;
    assert_true(tap_wait_frame(c, g, 64, &next, is_arp_reply_gw, f, &flen));

    /* A host connection to the forwarded port reaches the guest as a SYN. */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(cfg.hostfwd[0].host_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(s, (struct sockaddr *)&a, sizeof(a));
    assert_true(r == 0 || errno == EINPROGRESS);
    assert_true(tap_wait_frame(c, g, 64, &next, is_syn_to_guest, f, &flen));
    close(s);

    /* Release ends and reaps the helper. */
    vh_drop_dev(&c->h);
    unsetenv(NETUSER_HELPER_ENV);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* guest-misbehaviour warnings are expected here */
    signal(SIGPIPE, SIG_IGN);
    RUN(cmocka_unit_test_setup_teardown(test_features_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_tap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_mergeable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_tap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_no_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_hostile_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_gather, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_tap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_linearize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_budget_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmds_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tap_real, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_helper, setup, teardown));
}
