/* test_snap_virtio.c - virtio devices through a snapshot: a device driven to
 * DRIVER_OK by the harness's fake driver is saved through virtio_mmio_save(),
 * released as the old process would be, and a second device created from
 * the same configuration on the same guest RAM loads the state and must
 * carry on (blk, net, vsock, balloon); then states a corrupt or hostile file
 * could hold, each refused.
 *
 * The virtio_mmio structs here are filled in by hand, without KVM, as in
 * test_virtio_mmio.c: an eventfd of ours as the interrupt line. The device
 * itself stays on the harness's transport, whose requeues the test sees. */
#include "vdev_harness.h"

#include "base/log.h"
#include "base/snap.h"
#include "host/disk.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/virtio_mmio.h"
#include "virtio/vsock.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define MEM_SIZE  (32u << 20)
#define QSZ       256 /* blk, net, vsock and rng offer 256 */
#define RING_GPA  0x10000ull
#define RING_STEP 0x10000ull
#define HEAP_GPA  0x100000ull

struct ctx {
    struct vdev_harness h;
    char dir[64], path[96];
    int irq_fd; /* the stand-in transport's interrupt line */
    int peer;   /* net: the back end's other end */
};

static int setup(void **state)
{
    log_set_level(LOG_ERROR); /* refusals log warnings: they are the point */
    struct ctx *c = calloc(1, sizeof(*c));
    const char *t = getenv("TMPDIR");
    snprintf(c->dir, sizeof(c->dir), "%s/arcvm-snap-XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(c->dir));
    struct guest_mem_region l[] = {{0, MEM_SIZE, NULL}};
    vh_init(&c->h, l, 1);
    vh_heap(&c->h, HEAP_GPA, MEM_SIZE);
    c->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(c->irq_fd >= 0);
    c->peer = -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    vh_release(&c->h);
    close(c->irq_fd);
    if (c->peer >= 0)
        close(c->peer);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
    free(c);
    return 0;
}

/* ---- save, swap, load ------------------------------------------------------ */

/* A transport for @d as virtio_mmio_init() leaves it, minus KVM; @d keeps
 * the harness's transport callbacks. */
static void mmio_on(struct ctx *c, struct virtio_mmio *m, struct virtio_device *d)
{
    memset(m, 0, sizeof(*m));
    m->dev = d;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        m->notify_fd[i] = -1;
    m->irq = (struct irq_line){NULL, 5, c->irq_fd};
}

/* Save the device under test into section "virtio0" of @w. */
static void save(struct ctx *c, struct snap_w *w)
{
    struct virtio_mmio m;
    mmio_on(c, &m, c->h.dev);
    snap_w_init(w);
    snap_begin(w, "virtio0");
    virtio_mmio_save(&m, w);
    snap_end(w);
    assert_int_equal(w->err, 0);
}

/* The old process goes: its device is released, and the requeues it asked
 * for are forgotten, so that whatever the new device serves it asked for
 * itself. */
static void swap_out(struct ctx *c)
{
    vh_drop_dev(&c->h);
    atomic_store(&c->h.requeued, 0);
}

/* A copy of @w's section, bytes [@at, @at + @n) replaced by @v, or cut to
 * @at bytes (@cut), or one byte longer (@extra): what a bent file holds. */
struct bent {
    size_t at, n;
    uint64_t v;
    bool cut, extra;
};

#define BENT(a, len, val) ((struct bent){.at = (a), .n = (len), .v = (val)})

static uint8_t *section_copy(const struct snap_w *w, const struct bent *b, size_t *len)
{
    struct snap_r r;
    assert_int_equal(snap_find(w->buf, w->len, "virtio0", &r), 0);
    uint8_t *p = calloc(1, r.left + 1);
    memcpy(p, r.p, r.left);
    *len = r.left;
    if (!b)
        return p;
    if (b->cut) {
        assert_true(b->at < r.left);
        *len = b->at;
    } else if (b->extra) {
        (*len)++;
    } else {
        assert_true(b->at + b->n <= r.left && b->n <= 8);
        uint64_t le = htole64(b->v);
        memcpy(p + b->at, &le, b->n);
    }
    return p;
}

/* Attach @d as the device under test and load @w's section (bent by @b if
 * not NULL) into it through a fresh transport. */
static int load(struct ctx *c, struct virtio_device *d, const struct snap_w *w,
                const struct bent *b)
{
    vh_attach(&c->h, d);
    size_t len;
    uint8_t *p = section_copy(w, b, &len);
    struct virtio_mmio m;
    mmio_on(c, &m, d);
    struct snap_r r = {.p = p, .left = len};
    int e = virtio_mmio_load(&m, &r);
    free(p);
    return e;
}

static bool live(struct virtio_device *d)
{
    pthread_mutex_lock(&d->lock);
    bool l = virtio_device_live(d);
    pthread_mutex_unlock(&d->lock);
    return l;
}

/* ---- virtio-blk ------------------------------------------------------------ */

#define IMG_BYTES (1u << 20)
#define FLUSHES   16

static struct virtio_device *blk_make(struct ctx *c, const char *path)
{
    struct disk_config cfg = {.path = (char *)path};
    char err[256] = "";
    struct virtio_device *d = virtio_blk_create(&c->h.mem, &cfg, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_blk_create: %s", err);
    return d;
}

static void make_image(const char *path, size_t bytes, uint8_t fill)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    uint8_t *buf = malloc(bytes);
    memset(buf, fill, bytes);
    assert_int_equal(pwrite(fd, buf, bytes, 0), (ssize_t)bytes);
    free(buf);
    close(fd);
}

/* Post (not kick) a request: header, @len data bytes at @data, status. */
static uint16_t blk_post(struct ctx *c, uint32_t type, uint64_t sector, uint64_t data,
                         uint32_t len, uint64_t *status)
{
    uint64_t h = vh_alloc(&c->h, 16);
    uint32_t t = htole32(type);
    uint64_t s = htole64(sector);
    memset(vh_ptr(&c->h, h), 0, 16);
    memcpy(vh_ptr(&c->h, h), &t, 4);
    memcpy(vh_ptr(&c->h, h + 8), &s, 8);
    *status = vh_alloc(&c->h, 1);
    *vh_ptr(&c->h, *status) = 0xee;
    struct vh_seg seg[3] = {{h, 16, false},
                            {data, len, type == VIRTIO_BLK_T_IN},
                            {*status, 1, true}};
    if (!len) /* no data: header and status only */
        seg[1] = seg[2];
    return vh_post(&c->h, 0, seg, len ? 3 : 2);
}

static void check_used(struct ctx *c, unsigned q, uint16_t i, uint16_t head)
{
    uint32_t id, len;
    vh_used_elem(&c->h, q, i, &id, &len);
    assert_int_equal(id, head);
}

static void blk_round_trip(struct ctx *c)
{
    snprintf(c->path, sizeof(c->path), "%s/disk.img", c->dir);
    make_image(c->path, IMG_BYTES, 0x5a);
    vh_rings(&c->h, 1, QSZ, RING_GPA, RING_STEP);
    vh_attach(&c->h, blk_make(c, c->path));
    assert_true(vh_driver_init(&c->h, ~0ull, 1));

    /* One write completed; then flushes (io_uring always completes them
     * in a worker, later) and a read kicked, some still in flight. */
    uint64_t st, data = vh_alloc(&c->h, 4096), back = vh_alloc(&c->h, 4096);
    memset(vh_ptr(&c->h, data), 'A', 4096);
    uint16_t h0 = blk_post(c, VIRTIO_BLK_T_OUT, 0, data, 4096, &st);
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, 1);
    check_used(c, 0, 0, h0);
    uint64_t fst[FLUSHES], st1;
    for (unsigned i = 0; i < FLUSHES; i++)
        blk_post(c, VIRTIO_BLK_T_FLUSH, 0, data, 0, &fst[i]);
    blk_post(c, VIRTIO_BLK_T_IN, 16, back, 4096, &st1);
    vh_kick(&c->h, 0);

    struct snap_w w;
    save(c, &w);
    /* Saving finished them all: used entries and status bytes are in
     * guest RAM before anything else is saved. */
    uint16_t used = FLUSHES + 2;
    assert_int_equal(vh_used_idx(&c->h, 0), used);
    for (unsigned i = 0; i < FLUSHES; i++)
        assert_int_equal(*vh_ptr(&c->h, fst[i]), VIRTIO_BLK_S_OK);
    assert_int_equal(*vh_ptr(&c->h, st1), VIRTIO_BLK_S_OK);
    assert_int_equal(*vh_ptr(&c->h, back), 0x5a);
    swap_out(c);

    /* Posted while no device runs, never kicked: the restored device must
     * look at the ring by itself. */
    memset(vh_ptr(&c->h, back), 0, 4096);
    uint64_t st2;
    uint16_t h2 = blk_post(c, VIRTIO_BLK_T_IN, 0, back, 4096, &st2);

    assert_int_equal(load(c, blk_make(c, c->path), &w, NULL), 0);
    assert_true(live(c->h.dev));
    vh_wait_used(&c->h, 0, ++used);
    check_used(c, 0, used - 1, h2);
    assert_int_equal(*vh_ptr(&c->h, st2), VIRTIO_BLK_S_OK);
    assert_int_equal(*vh_ptr(&c->h, back + 4095), 'A'); /* the write before the save */

    /* And the ordinary way on. */
    uint64_t st3;
    uint16_t h3 = blk_post(c, VIRTIO_BLK_T_IN, 16, back, 512, &st3);
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, ++used);
    check_used(c, 0, used - 1, h3);
    assert_int_equal(*vh_ptr(&c->h, st3), VIRTIO_BLK_S_OK);

    /* The same state on an image of another size is refused. */
    swap_out(c);
    snprintf(c->path, sizeof(c->path), "%s/small.img", c->dir);
    make_image(c->path, IMG_BYTES / 2, 0);
    assert_int_equal(load(c, blk_make(c, c->path), &w, NULL), -EINVAL);
    snap_w_free(&w);
}

static void test_blk_uring(void **state)
{
    unsetenv(DISK_ENV_NO_URING);
    blk_round_trip(*state);
}

static void test_blk_sync(void **state)
{
    setenv(DISK_ENV_NO_URING, "1", 1);
    blk_round_trip(*state);
    unsetenv(DISK_ENV_NO_URING);
}

/* ---- virtio-net -------------------------------------------------------------- */

static const uint8_t mac_a[6] = {0x06, 0x12, 0x34, 0x56, 0x78, 0x9a};

static void net_close(void *opaque)
{
    close((int)(intptr_t)opaque);
}

/* A NIC on a datagram socket pair (the user-mode helper's kind of back
 * end); the test keeps the other end in c->peer. */
static struct virtio_device *net_make(struct ctx *c, const uint8_t mac[6])
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    if (c->peer >= 0)
        close(c->peer);
    c->peer = sv[1];
    struct virtio_net_backend be = {.fd = sv[0],
                                    .flags = NET_BACKEND_DGRAM,
                                    .name = "fake",
                                    .close = net_close,
                                    .opaque = (void *)(intptr_t)sv[0]};
    char err[256] = "";
    struct virtio_device *d =
        virtio_net_create_backend(&c->h.mem, mac, &be, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_net_create_backend: %s", err);
    return d;
}

static uint16_t net_post_rx(struct ctx *c, uint32_t len, uint64_t *gpa)
{
    *gpa = vh_alloc(&c->h, len);
    struct vh_seg s = {*gpa, len, true};
    return vh_post(&c->h, VIRTIO_NET_RXQ, &s, 1);
}

static void net_send_frame(struct ctx *c, size_t len)
{
    uint8_t f[1000];
    assert_true(len <= sizeof(f));
    memset(f, 0x42, len);
    memcpy(f, mac_a, 6);
    assert_int_equal(send(c->peer, f, len, MSG_DONTWAIT), (ssize_t)len);
}

/* A chain held for a frame that did not fit goes back to the ring when the
 * device is saved: the restored device takes it again. */
static void test_net_held_chain(void **state)
{
    struct ctx *c = *state;
    vh_rings(&c->h, 2, QSZ, RING_GPA, RING_STEP);
    vh_attach(&c->h, net_make(c, mac_a));
    assert_true(vh_driver_init(&c->h, ~0ull, 3)); /* MRG_RXBUF among them */
    uint64_t small_gpa, big_gpa;
    uint16_t small = net_post_rx(c, 100, &small_gpa);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    net_send_frame(c, 1000); /* needs 1012 bytes: the 100 are held, waiting */
    vh_run_for(&c->h, 20);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_NET_RXQ), 0);

    struct snap_w w;
    save(c, &w);
    swap_out(c);
    assert_int_equal(load(c, net_make(c, mac_a), &w, NULL), 0);
    assert_true(live(c->h.dev));
    uint16_t big = net_post_rx(c, 2000, &big_gpa);
    vh_kick(&c->h, VIRTIO_NET_RXQ);
    net_send_frame(c, 1000);
    vh_wait_used(&c->h, VIRTIO_NET_RXQ, 2);
    /* The frame spans both buffers, the held one first. */
    uint32_t id, len;
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 0, &id, &len);
    assert_int_equal(id, small);
    assert_int_equal(len, 100);
    vh_used_elem(&c->h, VIRTIO_NET_RXQ, 1, &id, &len);
    assert_int_equal(id, big);
    assert_int_equal(len, VIRTIO_NET_HDR_LEN + 1000 - 100);
    uint16_t nb;
    memcpy(&nb, vh_ptr(&c->h, small_gpa + offsetof(struct virtio_net_hdr, num_buffers)), 2);
    assert_int_equal(le16toh(nb), 2);

    /* Another MAC is another NIC. */
    swap_out(c);
    static const uint8_t mac_b[6] = {0x06, 0, 0, 0, 0, 1};
    assert_int_equal(load(c, net_make(c, mac_b), &w, NULL), -EINVAL);
    snap_w_free(&w);
}

/* ---- virtio-vsock -------------------------------------------------------------- */

#define VS_HDR    44
#define VS_RXBUF  (VS_HDR + 4096)
#define VS_NRX    8
#define EVQ_BUFS  2

struct vs {
    uint64_t rx_gpa[QSZ]; /* receive buffer of each head */
    uint64_t ev_gpa[QSZ];
};

static struct virtio_device *vsock_make(struct ctx *c, uint32_t cid)
{
    struct vsock_config cfg = {.enabled = true, .cid = cid, .uds_path = c->path};
    char err[256] = "";
    struct virtio_device *d = virtio_vsock_create(&c->h.mem, &cfg, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_vsock_create: %s", err);
    return d;
}

static void vsock_post(struct ctx *c, struct vs *v)
{
    for (unsigned i = 0; i < VS_NRX; i++) {
        uint64_t g = vh_alloc(&c->h, VS_RXBUF);
        struct vh_seg s = {g, VS_RXBUF, true};
        v->rx_gpa[vh_post(&c->h, VIRTIO_VSOCK_RXQ, &s, 1)] = g;
    }
    for (unsigned i = 0; i < EVQ_BUFS; i++) {
        uint64_t g = vh_alloc(&c->h, VIRTIO_VSOCK_EVENT_LEN);
        memset(vh_ptr(&c->h, g), 0xff, VIRTIO_VSOCK_EVENT_LEN);
        struct vh_seg s = {g, VIRTIO_VSOCK_EVENT_LEN, true};
        v->ev_gpa[vh_post(&c->h, VIRTIO_VSOCK_EVQ, &s, 1)] = g;
    }
    vh_kick(&c->h, VIRTIO_VSOCK_RXQ);
    vh_kick(&c->h, VIRTIO_VSOCK_EVQ);
}

/* A host client asking for guest port @port; the guest must hear the
 * REQUEST as used entry @n of the receive queue, addressed to @cid. */
static int vsock_connect(struct ctx *c, struct vs *v, uint32_t port, uint16_t n, uint64_t cid)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", c->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char line[32];
    int len = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    assert_int_equal(write(fd, line, (size_t)len), len);
    vh_wait_used(&c->h, VIRTIO_VSOCK_RXQ, (uint16_t)(n + 1));
    uint32_t id, ulen;
    vh_used_elem(&c->h, VIRTIO_VSOCK_RXQ, n, &id, &ulen);
    struct virtio_vsock_hdr h;
    memcpy(&h, vh_ptr(&c->h, v->rx_gpa[id]), sizeof(h));
    assert_int_equal(le16toh(h.op), VIRTIO_VSOCK_OP_REQUEST);
    assert_int_equal(le32toh(h.dst_port), port);
    assert_true(le64toh(h.dst_cid) == cid);
    return fd;
}

static void test_vsock_transport_reset(void **state)
{
    struct ctx *c = *state;
    snprintf(c->path, sizeof(c->path), "%s/v.sock", c->dir);
    vh_rings(&c->h, 3, QSZ, RING_GPA, RING_STEP);
    vh_attach(&c->h, vsock_make(c, 3));
    assert_true(vh_driver_init(&c->h, ~0ull, 7));
    struct vs v;
    vsock_post(c, &v);
    int old = vsock_connect(c, &v, 1234, 0, 3);
    vh_run_for(&c->h, 5);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_VSOCK_EVQ), 0); /* no event without a cause */

    struct snap_w w;
    save(c, &w);
    swap_out(c);
    char b;
    assert_int_equal(read(old, &b, 1), 0); /* the host side of the connection is gone */
    close(old);

    /* Restored with another CID: the configuration decides. */
    assert_int_equal(load(c, vsock_make(c, 7), &w, NULL), 0);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_VSOCK_EVQ), 1);
    uint32_t id, len, ev;
    vh_used_elem(&c->h, VIRTIO_VSOCK_EVQ, 0, &id, &len);
    assert_int_equal(len, VIRTIO_VSOCK_EVENT_LEN);
    memcpy(&ev, vh_ptr(&c->h, v.ev_gpa[id]), 4);
    assert_int_equal(le32toh(ev), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
    uint64_t cid;
    c->h.dev->ops->config_read(c->h.dev, 0, &cid, sizeof(cid));
    assert_true(le64toh(cid) == 7);
    /* Once only; and new connections work. */
    vh_run_for(&c->h, 5);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_VSOCK_EVQ), 1);
    close(vsock_connect(c, &v, 99, 1, 7));
    snap_w_free(&w);
}

/* A restored vsock whose driver posted no event buffer sends the event
 * when it posts one. */
static void test_vsock_reset_later(void **state)
{
    struct ctx *c = *state;
    snprintf(c->path, sizeof(c->path), "%s/v.sock", c->dir);
    vh_rings(&c->h, 3, QSZ, RING_GPA, RING_STEP);
    vh_attach(&c->h, vsock_make(c, 3));
    assert_true(vh_driver_init(&c->h, ~0ull, 7));
    struct snap_w w;
    save(c, &w);
    swap_out(c);
    assert_int_equal(load(c, vsock_make(c, 3), &w, NULL), 0);
    vh_run_for(&c->h, 5);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_VSOCK_EVQ), 0);
    uint64_t g = vh_alloc(&c->h, 4);
    struct vh_seg s = {g, 4, true};
    vh_post(&c->h, VIRTIO_VSOCK_EVQ, &s, 1);
    vh_kick(&c->h, VIRTIO_VSOCK_EVQ);
    assert_int_equal(vh_used_idx(&c->h, VIRTIO_VSOCK_EVQ), 1);
    snap_w_free(&w);
}

/* ---- virtio-balloon ------------------------------------------------------------ */

#define BQSZ 128 /* the balloon's queue size */
#define BALLOON_STATE_LEN 155 /* its own fields, at the end of the section */

static struct virtio_device *balloon_make(struct ctx *c)
{
    struct balloon_config cfg = {.enabled = true, .target_mib = 4, .stats_interval_s = 1};
    char err[256] = "";
    struct virtio_device *d = virtio_balloon_create(&c->h.mem, &cfg, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_balloon_create: %s", err);
    return d;
}

/* A balloon the host moved to 8 MiB, whose driver reported 1024 pages and
 * left its statistics buffer with the device; saved into @w. */
static void balloon_saved(struct ctx *c, struct snap_w *w)
{
    vh_rings(&c->h, 3, BQSZ, RING_GPA, RING_STEP);
    vh_attach(&c->h, balloon_make(c));
    assert_true(vh_driver_init(&c->h, VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ), 7));
    uint64_t g = vh_alloc(&c->h, 10);
    uint16_t tag = htole16(VIRTIO_BALLOON_S_MEMFREE);
    uint64_t val = htole64(12345);
    memcpy(vh_ptr(&c->h, g), &tag, 2);
    memcpy(vh_ptr(&c->h, g + 2), &val, 8);
    struct vh_seg s = {g, 10, false};
    vh_post(&c->h, 2, &s, 1);
    vh_kick(&c->h, 2);
    assert_int_equal(vh_used_idx(&c->h, 2), 0); /* held by the device */
    assert_int_equal(virtio_balloon_set_target(c->h.dev, 8), 0);
    struct virtio_device *d = c->h.dev;
    uint32_t actual = htole32(1024);
    pthread_mutex_lock(&d->lock);
    d->ops->config_write(d, offsetof(struct virtio_balloon_config, actual), &actual, 4);
    pthread_mutex_unlock(&d->lock);
    save(c, w);
    swap_out(c);
}

static void test_balloon_round_trip(void **state)
{
    struct ctx *c = *state;
    struct snap_w w;
    balloon_saved(c, &w);
    assert_int_equal(load(c, balloon_make(c), &w, NULL), 0);
    struct virtio_balloon_info bi;
    assert_int_equal(virtio_balloon_get(c->h.dev, &bi), 0);
    assert_int_equal(bi.target_mib, 8); /* not the configuration's 4 */
    assert_int_equal(bi.actual_pages, 1024);
    assert_int_equal(bi.stats_interval_s, 1);
    assert_int_equal(bi.stats_updates, 1);
    assert_true(bi.stats.valid & (1u << VIRTIO_BALLOON_S_MEMFREE));
    assert_true(bi.stats.val[VIRTIO_BALLOON_S_MEMFREE] == 12345);
    /* The held statistics buffer comes back when the restored timer asks
     * for fresh numbers. */
    assert_true(vh_run_used(&c->h, 2, 1, 2500));
    snap_w_free(&w);
}

static void test_balloon_hostile(void **state)
{
    struct ctx *c = *state;
    struct snap_w w;
    balloon_saved(c, &w);
    size_t len;
    free(section_copy(&w, NULL, &len));
    size_t at = len - BALLOON_STATE_LEN;
    /* num_pages beyond the RAM; no interval with statistics configured; a
     * held buffer's head beyond the queue. */
    struct bent bad[] = {BENT(at, 4, 0xffffffffu), BENT(at + 8, 4, 0), BENT(at + 13, 2, BQSZ)};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load(c, balloon_make(c), &w, &bad[i]), -EPROTO);
        swap_out(c);
    }
    struct bent fine = BENT(at + 4, 4, 7); /* actual is the driver's word: any */
    assert_int_equal(load(c, balloon_make(c), &w, &fine), 0);
    snap_w_free(&w);
}

/* ---- hostile common state (virtio-rng) ---------------------------------------- */

typedef void (*bend_fn)(struct virtio_device *d);

/* An rng at DRIVER_OK with queue 0, bent by @bend before it is saved, then
 * loaded into a fresh rng (the section bent by @b). */
static int rng_load_bent(struct ctx *c, bend_fn bend, const struct bent *b)
{
    vh_rings(&c->h, 1, QSZ, RING_GPA, RING_STEP);
    vh_attach(&c->h, virtio_rng_create(&c->h.mem));
    assert_true(vh_driver_init(&c->h, ~0ull, 1));
    if (bend)
        bend(c->h.dev);
    struct snap_w w;
    save(c, &w);
    swap_out(c);
    int e = load(c, virtio_rng_create(&c->h.mem), &w, b);
    swap_out(c);
    snap_w_free(&w);
    return e;
}

static void size3(struct virtio_device *d) { d->vq[0].size = 3; }
static void size_max2(struct virtio_device *d) { d->vq[0].size = 2 * QSZ; }
static void desc_out(struct virtio_device *d) { d->vq[0].desc_gpa = MEM_SIZE + 0x10000; }
static void used_edge(struct virtio_device *d) { d->vq[0].used_gpa = MEM_SIZE - 8; }
static void no_features_ok(struct virtio_device *d) { d->status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; }
static void ready_early(struct virtio_device *d)
{
    d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER; /* queue 0 stays ready */
}
static void reserved_status(struct virtio_device *d) { d->status |= 0x10; }
static void not_offered(struct virtio_device *d) { d->guest_features |= 1ull << 40; }
static void legacy(struct virtio_device *d) { d->guest_features &= ~VIRTIO_BIT(VIRTIO_F_VERSION_1); }
static void event_idx_flip(struct virtio_device *d) { d->vq[0].event_idx = !d->vq[0].event_idx; }
static void other_offer(struct virtio_device *d) { d->host_features |= 1ull << 40; }

static void test_hostile_common(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(rng_load_bent(c, NULL, NULL), 0); /* the unbent state loads */
    assert_int_equal(rng_load_bent(c, size3, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, size_max2, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, desc_out, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, used_edge, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, no_features_ok, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, ready_early, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, reserved_status, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, not_offered, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, legacy, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, event_idx_flip, NULL), -EPROTO);
    assert_int_equal(rng_load_bent(c, other_offer, NULL), -EINVAL);
}

static void test_hostile_bytes(void **state)
{
    struct ctx *c = *state;
    /* Transport: 4 u32 (selects, InterruptStatus), then the device. */
    struct bent isr = BENT(12, 4, 0x4);
    assert_int_equal(rng_load_bent(c, NULL, &isr), -EPROTO);
    struct bent sel = BENT(8, 4, 0xffffffffu); /* QueueSel: any u32 a driver may write */
    assert_int_equal(rng_load_bent(c, NULL, &sel), 0);
    struct bent nq = BENT(16 + 21, 2, 2); /* rng has one queue */
    assert_int_equal(rng_load_bent(c, NULL, &nq), -EPROTO);
    struct bent ready2 = BENT(16 + 23 + 2, 1, 2); /* a bool of 2 */
    assert_int_equal(rng_load_bent(c, NULL, &ready2), -EPROTO);
    for (size_t cut = 0; cut < 16 + 23 + 36; cut += 7) {
        struct bent t = {.at = cut, .cut = true};
        assert_int_equal(rng_load_bent(c, NULL, &t), -EPROTO);
    }
    struct bent longer = {.extra = true};
    assert_int_equal(rng_load_bent(c, NULL, &longer), -EPROTO);
}

/* A device saved before the driver finished initialising comes back as
 * such, and the driver can finish. */
static void test_not_yet_live(void **state)
{
    struct ctx *c = *state;
    vh_rings(&c->h, 1, QSZ, RING_GPA, RING_STEP);
    vh_attach(&c->h, virtio_rng_create(&c->h.mem));
    assert_true(vh_negotiate(&c->h, ~0ull, 1));
    struct snap_w w;
    save(c, &w);
    swap_out(c);
    assert_int_equal(load(c, virtio_rng_create(&c->h.mem), &w, NULL), 0);
    assert_false(live(c->h.dev));
    assert_true(c->h.dev->vq[0].ready);
    vh_driver_ok(&c->h);
    uint64_t g = vh_alloc(&c->h, 64);
    struct vh_seg s = {g, 64, true};
    vh_post(&c->h, 0, &s, 1);
    vh_kick(&c->h, 0);
    assert_int_equal(vh_used_idx(&c->h, 0), 1);
    snap_w_free(&w);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    RUN(T(test_blk_uring), T(test_blk_sync), T(test_net_held_chain),
        T(test_vsock_transport_reset), T(test_vsock_reset_later), T(test_balloon_round_trip),
        T(test_balloon_hostile), T(test_hostile_common), T(test_hostile_bytes),
        T(test_not_yet_live));
}
