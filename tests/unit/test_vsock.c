/* test_vsock.c - virtio-vsock driven as a guest driver would (rings laid out
 * by hand in fake guest RAM, a real event loop) against real Unix sockets in
 * a temporary directory: the hybrid handshake both ways, data and credit in
 * both directions, SHUTDOWN and RST, hostile packets, and a guest that posts
 * no receive buffers. */
#include "vdev_harness.h"

#include "virtio/vsock.h"
#include "vmm/config.h"
#include "base/log.h"

#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

/* Guest RAM layout of the tests: queue q's rings at 0x10000 * (q + 1), then
 * the buffers. */
#define MEM_SIZE       (32u << 20)
#define QSZ            256
#define NQ             3
#define RXQ            VIRTIO_VSOCK_RXQ
#define TXQ            VIRTIO_VSOCK_TXQ
#define RING_GPA       0x10000ull
#define RING_STEP      0x10000ull
#define SLOTS          (QSZ / 2) /* chains of two descriptors: header, payload */
#define RX_DATA        4096      /* what Linux posts per receive buffer */
#define RX_HDR_GPA(k)  (0x100000ull + 64ull * (k))
#define RX_DATA_GPA(k) (0x200000ull + (uint64_t)RX_DATA * (k))
#define TX_HDR_GPA(k)  (0x300000ull + 64ull * (k))
#define TX_DATA_GPA(k) (0x400000ull + 65536ull * (k))
#define SPARE_GPA      0x1400000ull /* odd-shaped chains */

#define CID  3
#define HOST 2
#define HDR  44

/* The driver's bookkeeping of a queue's two-descriptor chains. */
struct slots {
    uint16_t used_seen;
    bool busy[SLOTS];
};

struct ctx {
    struct vdev_harness h;
    char dir[64], uds[96]; /* Unix socket paths are short (108 bytes) */
    struct slots r[NQ];
};

/* A packet the guest received, fields in host order. */
struct pkt {
    struct virtio_vsock_hdr h;
    uint32_t len; /* payload bytes */
    uint8_t data[RX_DATA];
};

/* ---- guest buffers ------------------------------------------------------ */

/* Post up to @n receive buffers as Linux 6.1 does (a header descriptor and
 * a 4 KiB one); returns how many. */
static unsigned post_rx(struct ctx *c, unsigned n)
{
    unsigned done = 0;
    for (unsigned k = 0; k < SLOTS && done < n; k++) {
        if (c->r[RXQ].busy[k])
            continue;
        vh_set_desc(&c->h, RXQ, 2 * k, RX_HDR_GPA(k), HDR, DESC_F_WRITE | DESC_F_NEXT,
                    (uint16_t)(2 * k + 1));
        vh_set_desc(&c->h, RXQ, 2 * k + 1, RX_DATA_GPA(k), RX_DATA, DESC_F_WRITE, 0);
        c->r[RXQ].busy[k] = true;
        vh_publish(&c->h, RXQ, (uint16_t)(2 * k));
        done++;
    }
    vh_kick(&c->h, RXQ);
    return done;
}

/* Whether the device has used a receive buffer the test has not taken. */
static bool rx_ready(void *arg)
{
    struct ctx *c = arg;
    return vh_used_idx(&c->h, RXQ) != c->r[RXQ].used_seen;
}

static struct virtio_vsock_hdr hdr_from_le(const struct virtio_vsock_hdr *r)
{
    return (struct virtio_vsock_hdr){
        .src_cid = le64toh(r->src_cid),
        .dst_cid = le64toh(r->dst_cid),
        .src_port = le32toh(r->src_port),
        .dst_port = le32toh(r->dst_port),
        .len = le32toh(r->len),
        .type = le16toh(r->type),
        .op = le16toh(r->op),
        .flags = le32toh(r->flags),
        .buf_alloc = le32toh(r->buf_alloc),
        .fwd_cnt = le32toh(r->fwd_cnt),
    };
}

static struct virtio_vsock_hdr hdr_to_le(const struct virtio_vsock_hdr *h)
{
    /* The conversions are their own inverse. */
    return hdr_from_le(h);
}

/* Take the next received packet, if any, and free its buffer. */
static bool rx_take(struct ctx *c, struct pkt *p)
{
    struct slots *r = &c->r[RXQ];
    if (vh_used_idx(&c->h, RXQ) == r->used_seen)
        return false;
    uint32_t id, len;
    vh_used_elem(&c->h, RXQ, r->used_seen++, &id, &len);
    assert_true(id % 2 == 0 && id / 2 < SLOTS);
    unsigned k = id / 2;
    assert_true(r->busy[k]);
    r->busy[k] = false;
    assert_true(len >= HDR && len <= HDR + RX_DATA);
    struct virtio_vsock_hdr raw;
    memcpy(&raw, vh_ptr(&c->h, RX_HDR_GPA(k)), HDR);
    p->h = hdr_from_le(&raw);
    p->len = len - HDR;
    assert_int_equal(p->h.len, p->len);
    memcpy(p->data, vh_ptr(&c->h, RX_DATA_GPA(k)), p->len);
    /* Every packet goes to this guest, as a stream (an RST may answer a
     * seqpacket REQUEST in kind). */
    assert_int_equal(p->h.dst_cid, CID);
    assert_true(p->h.type == VIRTIO_VSOCK_TYPE_STREAM ||
                (p->h.op == VIRTIO_VSOCK_OP_RST && p->h.type == VIRTIO_VSOCK_TYPE_SEQPACKET));
    return true;
}

/* Wait for the next packet; it must be @op (0: any). Refills a buffer. */
static void rx_expect(struct ctx *c, struct pkt *p, uint16_t op)
{
    if (!vh_run_until(&c->h, rx_ready, c, VH_WAIT_MS))
        fail_msg("no packet from the device (wanted op %u)", op);
    assert_true(rx_take(c, p));
    if (op && p->h.op != op)
        fail_msg("got op %u, wanted %u", p->h.op, op);
    post_rx(c, 1);
}

static void reclaim_tx(struct ctx *c)
{
    struct slots *r = &c->r[TXQ];
    while (vh_used_idx(&c->h, TXQ) != r->used_seen) {
        uint32_t id, len;
        vh_used_elem(&c->h, TXQ, r->used_seen++, &id, &len);
        r->busy[id / 2] = false;
    }
}

/* Queue one packet on the transmit queue (header in host order) without
 * kicking; returns false if all slots are in flight. */
static bool tx_post(struct ctx *c, const struct virtio_vsock_hdr *h, const void *data, uint32_t len)
{
    reclaim_tx(c);
    struct slots *r = &c->r[TXQ];
    unsigned k = 0;
    while (k < SLOTS && r->busy[k])
        k++;
    if (k == SLOTS)
        return false;
    struct virtio_vsock_hdr le = hdr_to_le(h);
    memcpy(vh_ptr(&c->h, TX_HDR_GPA(k)), &le, HDR);
    assert_true(len <= 65536);
    if (len)
        memcpy(vh_ptr(&c->h, TX_DATA_GPA(k)), data, len);
    vh_set_desc(&c->h, TXQ, 2 * k, TX_HDR_GPA(k), HDR, len ? DESC_F_NEXT : 0,
                (uint16_t)(2 * k + 1));
    if (len)
        vh_set_desc(&c->h, TXQ, 2 * k + 1, TX_DATA_GPA(k), len, 0, 0);
    r->busy[k] = true;
    vh_publish(&c->h, TXQ, (uint16_t)(2 * k));
    return true;
}

static struct virtio_vsock_hdr mkhdr(uint16_t op, uint32_t src_port, uint32_t dst_port,
                                     uint32_t len, uint32_t flags, uint32_t buf_alloc,
                                     uint32_t fwd_cnt)
{
    return (struct virtio_vsock_hdr){.src_cid = CID,
                                     .dst_cid = HOST,
                                     .src_port = src_port,
                                     .dst_port = dst_port,
                                     .len = len,
                                     .type = VIRTIO_VSOCK_TYPE_STREAM,
                                     .op = op,
                                     .flags = flags,
                                     .buf_alloc = buf_alloc,
                                     .fwd_cnt = fwd_cnt};
}

/* Send one packet from the guest and let the device take it. */
static void tx(struct ctx *c, uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags,
               uint32_t buf_alloc, uint32_t fwd_cnt, const void *data, uint32_t len)
{
    struct virtio_vsock_hdr h = mkhdr(op, src_port, dst_port, len, flags, buf_alloc, fwd_cnt);
    assert_true(tx_post(c, &h, data, len));
    vh_kick(&c->h, TXQ);
}

static void tx_hdr(struct ctx *c, const struct virtio_vsock_hdr *h, const void *data, uint32_t len)
{
    assert_true(tx_post(c, h, data, len));
    vh_kick(&c->h, TXQ);
}

/* ---- host side -------------------------------------------------------- */

static bool fd_readable(void *arg)
{
    struct pollfd p = {*(int *)arg, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static int unix_listen(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static void writes(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read exactly @n bytes from the host socket @fd, running the loop. */
static void host_read(struct ctx *c, int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            fail_msg("EOF after %zu of %zu bytes", got, n);
        assert_true(errno == EAGAIN);
        if (!vh_run_until(&c->h, fd_readable, &fd, VH_WAIT_MS))
            fail_msg("only %zu of %zu bytes arrived", got, n);
    }
}

/* The host socket reads EOF (or a reset) with nothing before it. */
static void host_expect_eof(struct ctx *c, int fd)
{
    if (!vh_run_until(&c->h, fd_readable, &fd, VH_WAIT_MS))
        fail_msg("the host socket was not closed");
    char b;
    ssize_t r = read(fd, &b, 1);
    assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
}

static bool host_quiet(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 131 + (off >> 8) * 7 + 1);
}

static void fill(uint8_t *p, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(off + i);
}

static void check(const uint8_t *p, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(off + i))
            fail_msg("byte %llu is %u, wanted %u", (unsigned long long)(off + i), p[i],
                     pattern(off + i));
}

/* ---- device lifecycle ------------------------------------------------- */

/* The driver's side of initialisation (3.1.1) with every feature offered,
 * all queues, no buffers. */
static void driver_init(struct ctx *c)
{
    memset(c->r, 0, sizeof(c->r));
    assert_true(vh_driver_init(&c->h, ~0ull, (1u << NQ) - 1));
}

static struct virtio_device *create(struct ctx *c, const char *path, uint32_t cid, char *err,
                                    size_t errlen)
{
    struct vsock_config cfg = {.enabled = true, .cid = cid, .uds_path = (char *)path};
    return virtio_vsock_create(&c->h.mem, &cfg, &c->h.loop, err, errlen);
}

/* A live device with @rx receive buffers posted. */
static void make_dev(struct ctx *c, unsigned rx)
{
    char err[512] = "";
    struct virtio_device *d = create(c, c->uds, CID, err, sizeof(err));
    if (!d)
        fail_msg("virtio_vsock_create: %s", err);
    vh_attach(&c->h, d);
    driver_init(c);
    if (rx)
        assert_int_equal(post_rx(c, rx), rx);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    const char *t = getenv("TMPDIR");
    snprintf(c->dir, sizeof(c->dir), "%s/arcvm-vsock-XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->uds, sizeof(c->uds), "%s/v.sock", c->dir);
    struct guest_mem_region l[] = {{0, MEM_SIZE, NULL}};
    vh_init(&c->h, l, 1);
    vh_rings(&c->h, NQ, QSZ, RING_GPA, RING_STEP);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    vh_release(&c->h);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
    free(c);
    return 0;
}

/* ---- connection helpers ----------------------------------------------- */

/* Host -> guest: CONNECT, the guest's RESPONSE, "OK <port>". Returns the
 * client socket and the host-side port. */
static int open_from_host(struct ctx *c, uint32_t gport, uint32_t buf_alloc, uint32_t *lport)
{
    int fd = unix_connect(c->uds);
    char line[64];
    snprintf(line, sizeof(line), "CONNECT %u\n", gport);
    writes(fd, line, strlen(line));
    struct pkt p;
    rx_expect(c, &p, VIRTIO_VSOCK_OP_REQUEST);
    assert_int_equal(p.h.src_cid, HOST);
    assert_int_equal(p.h.dst_port, gport);
    assert_true(p.h.src_port >= VIRTIO_VSOCK_LOCAL_PORT_BASE);
    assert_int_equal(p.h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
    assert_int_equal(p.h.fwd_cnt, 0);
    assert_int_equal(p.len, 0);
    *lport = p.h.src_port;
    assert_true(host_quiet(fd)); /* no OK before the guest accepts */
    tx(c, VIRTIO_VSOCK_OP_RESPONSE, gport, *lport, 0, buf_alloc, 0, NULL, 0);
    char want[32];
    snprintf(want, sizeof(want), "OK %u\n", *lport);
    char got[32] = "";
    host_read(c, fd, got, strlen(want));
    assert_string_equal(got, want);
    return fd;
}

/* Guest -> host: REQUEST to host port @hport from guest port @gport, with
 * a listener at <uds>_<hport>. Returns the host's accepted socket. */
static int open_from_guest(struct ctx *c, uint32_t gport, uint32_t hport, uint32_t buf_alloc)
{
    char path[256];
    snprintf(path, sizeof(path), "%s_%u", c->uds, hport);
    int ls = unix_listen(path);
    tx(c, VIRTIO_VSOCK_OP_REQUEST, gport, hport, 0, buf_alloc, 0, NULL, 0);
    struct pkt p;
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RESPONSE);
    assert_int_equal(p.h.src_cid, HOST);
    assert_int_equal(p.h.src_port, hport);
    assert_int_equal(p.h.dst_port, gport);
    assert_int_equal(p.h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(fd >= 0);
    close(ls);
    unlink(path);
    return fd;
}

/* ---- tests -------------------------------------------------------------- */

static void test_device(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0);
    struct virtio_device *d = c->h.dev;
    assert_int_equal(d->ops->device_id, VIRTIO_ID_VSOCK);
    assert_int_equal(d->ops->num_queues, 3);
    assert_true(d->host_features & VIRTIO_BIT(VIRTIO_VSOCK_F_STREAM));
    assert_false(d->host_features & VIRTIO_BIT(VIRTIO_VSOCK_F_SEQPACKET));
    assert_true(d->host_features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    /* guest_cid, le64, also read in 32-bit halves as drivers do. */
    assert_int_equal(d->ops->config_size, 8);
    uint8_t raw[8];
    d->ops->config_read(d, 0, raw, 8);
    assert_memory_equal(raw, "\x03\0\0\0\0\0\0\0", 8);
    uint32_t hi = 1;
    d->ops->config_read(d, 4, &hi, 4);
    assert_int_equal(hi, 0);
    struct stat st;
    assert_int_equal(lstat(c->uds, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    vh_drop_dev(&c->h);
    /* Release removes the socket file it made. */
    assert_int_equal(lstat(c->uds, &st), -1);
}

static void test_create_errors(void **state)
{
    struct ctx *c = *state;
    char err[512], path[256];
    struct virtio_device *d;

    /* Not a socket: left alone. */
    snprintf(path, sizeof(path), "%s/file", c->dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    assert_null(create(c, path, CID, err, sizeof(err)));
    assert_non_null(strstr(err, "is not a socket"));
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);

    /* In use by another listener. */
    snprintf(path, sizeof(path), "%s/busy.sock", c->dir);
    int ls = unix_listen(path);
    assert_null(create(c, path, CID, err, sizeof(err)));
    assert_non_null(strstr(err, "in use"));
    close(ls);

    /* Stale now (nobody listens): replaced. */
    assert_int_equal(lstat(path, &st), 0);
    d = create(c, path, CID, err, sizeof(err));
    assert_non_null(d);
    int fd = unix_connect(path); /* really ours */
    close(fd);
    /* Two devices cannot share a path. */
    assert_null(create(c, path, CID, err, sizeof(err)));
    assert_non_null(strstr(err, "in use"));
    d->ops->release(d);
    assert_int_equal(lstat(path, &st), -1);

    /* No such directory; reserved CIDs; no path; a path too long for the
     * _PORT suffix. */
    snprintf(path, sizeof(path), "%s/nodir/v.sock", c->dir);
    assert_null(create(c, path, CID, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot create vsock socket"));
    assert_null(create(c, c->uds, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "reserved"));
    assert_null(create(c, "", CID, err, sizeof(err)));
    assert_non_null(strstr(err, "uds=PATH"));
    char longp[200];
    memset(longp, 'a', sizeof(longp));
    longp[100] = 0;
    assert_null(create(c, longp, CID, err, sizeof(err)));
    assert_non_null(strstr(err, "too long"));
}

static void test_host_connect(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 16);
    uint32_t lport;
    int fd = open_from_host(c, 1234, VIRTIO_VSOCK_BUF_ALLOC, &lport);

    /* Host -> guest. */
    uint8_t buf[8192];
    fill(buf, 0, 6000);
    writes(fd, buf, 6000);
    struct pkt p;
    uint32_t got = 0;
    while (got < 6000) {
        rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
        assert_int_equal(p.h.src_port, lport);
        assert_int_equal(p.h.dst_port, 1234);
        check(p.data, got, p.len);
        got += p.len;
    }
    assert_int_equal(got, 6000);

    /* Guest -> host. */
    fill(buf, 100, 5000);
    tx(c, VIRTIO_VSOCK_OP_RW, 1234, lport, 0, VIRTIO_VSOCK_BUF_ALLOC, got, buf, 5000);
    uint8_t in[5000];
    host_read(c, fd, in, 5000);
    check(in, 100, 5000);

    /* A second connection to the same guest port gets its own host port. */
    uint32_t lport2;
    int fd2 = open_from_host(c, 1234, 4096, &lport2);
    assert_int_not_equal(lport, lport2);

    /* The guest refuses a third: the client is closed. */
    int fd3 = unix_connect(c->uds);
    writes(fd3, "CONNECT 99\n", 11);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_REQUEST);
    tx(c, VIRTIO_VSOCK_OP_RST, 99, p.h.src_port, 0, 0, 0, NULL, 0);
    host_expect_eof(c, fd3);
    close(fd3);

    /* Host close: the guest gets an RST for that connection only. */
    close(fd);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_int_equal(p.h.src_port, lport);
    writes(fd2, "x", 1);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
    assert_int_equal(p.h.src_port, lport2);
    close(fd2);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_int_equal(p.h.src_port, lport2);
}

static void test_host_handshake_edges(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 16);
    struct pkt p;

    /* Data right behind the CONNECT line, and a line in pieces: the bytes
     * after the newline reach the guest after the handshake, not lost. */
    int fd = unix_connect(c->uds);
    writes(fd, "CONN", 4);
    vh_run_for(&c->h, 20);
    assert_false(rx_ready(c));
    writes(fd, "ECT 77\r\nhello", 13);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_REQUEST);
    assert_int_equal(p.h.dst_port, 77);
    uint32_t lport = p.h.src_port;
    vh_run_for(&c->h, 20);
    assert_false(rx_ready(c)); /* no data before RESPONSE */
    tx(c, VIRTIO_VSOCK_OP_RESPONSE, 77, lport, 0, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
    assert_int_equal(p.len, 5);
    assert_memory_equal(p.data, "hello", 5);
    char ok[32] = "";
    char want[32];
    snprintf(want, sizeof(want), "OK %u\n", lport);
    host_read(c, fd, ok, strlen(want));
    assert_string_equal(ok, want);
    close(fd);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);

    /* Garbage lines are closed without bothering the guest. */
    const char *bad[] = {"HELLO\n",
                         "CONNECT\n",
                         "CONNECT x1\n",
                         "CONNECT 4294967296\n",
                         "connect 5\n",
                         "CONNECT 5 6\n",
                         "CONNECT 1234567890123456789012345"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fd = unix_connect(c->uds);
        writes(fd, bad[i], strlen(bad[i]));
        host_expect_eof(c, fd);
        close(fd);
    }
    /* A client that leaves before its line, and one that leaves while the
     * guest is being asked: the guest is told to drop its half. */
    fd = unix_connect(c->uds);
    close(fd);
    vh_run_for(&c->h, 20);
    fd = unix_connect(c->uds);
    writes(fd, "CONNECT 8\n", 10);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_REQUEST);
    lport = p.h.src_port;
    close(fd);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_int_equal(p.h.src_port, lport);
    assert_false(rx_ready(c));
    /* A late RESPONSE for it is answered with an RST. */
    tx(c, VIRTIO_VSOCK_OP_RESPONSE, 8, lport, 0, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_int_equal(p.h.src_port, lport);
    assert_int_equal(p.h.dst_port, 8);
}

static void test_guest_connect(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 16);
    int fd = open_from_guest(c, 40000, 5000, VIRTIO_VSOCK_BUF_ALLOC);

    uint8_t buf[4096];
    fill(buf, 0, 3000);
    tx(c, VIRTIO_VSOCK_OP_RW, 40000, 5000, 0, VIRTIO_VSOCK_BUF_ALLOC, 0, buf, 3000);
    uint8_t in[3000];
    host_read(c, fd, in, 3000);
    check(in, 0, 3000);
    writes(fd, "pong", 4);
    struct pkt p;
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
    assert_int_equal(p.h.src_port, 5000);
    assert_int_equal(p.h.dst_port, 40000);
    assert_memory_equal(p.data, "pong", 4);
    assert_int_equal(p.h.fwd_cnt, 3000); /* what we passed on */

    /* Nobody at <uds>_5001: RST. */
    tx(c, VIRTIO_VSOCK_OP_REQUEST, 40001, 5001, 0, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_int_equal(p.h.src_port, 5001);
    assert_int_equal(p.h.dst_port, 40001);

    /* The guest resets its connection: the host sees it close. */
    tx(c, VIRTIO_VSOCK_OP_RST, 40000, 5000, 0, 0, 0, NULL, 0);
    host_expect_eof(c, fd);
    close(fd);
    vh_run_for(&c->h, 10);
    assert_false(rx_ready(c)); /* an RST is never answered */

    /* A REQUEST for a connection that exists resets it. */
    fd = open_from_guest(c, 40002, 5002, 65536);
    tx(c, VIRTIO_VSOCK_OP_REQUEST, 40002, 5002, 0, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    host_expect_eof(c, fd);
    close(fd);
    /* CREDIT_REQUEST is answered with our credit. */
    fd = open_from_guest(c, 40003, 5003, 65536);
    tx(c, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 40003, 5003, 0, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    assert_int_equal(p.h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
    close(fd);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
}

/* Host -> guest within the guest's credit: a guest with a small buffer that
 * consumes slowly gets everything, in order, and never more than it has
 * room for. */
static void test_credit_to_guest(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 64);
    const uint32_t alloc = 10000, total = 1u << 20;
    uint32_t lport;
    int fd = open_from_host(c, 600, alloc, &lport);
    static uint8_t src[1u << 20];
    fill(src, 0, total);
    uint32_t written = 0, got = 0, fwd = 0;
    struct pkt p;
    while (got < total) {
        ssize_t w = write(fd, src + written, total - written);
        if (w > 0)
            written += (uint32_t)w;
        vh_run_until(&c->h, rx_ready, c, 20);
        while (rx_take(c, &p)) {
            post_rx(c, 1);
            assert_int_equal(p.h.op, VIRTIO_VSOCK_OP_RW);
            check(p.data, got, p.len);
            got += p.len;
            assert_true(got - fwd <= alloc); /* within credit */
        }
        if (got - fwd == alloc) {
            /* Out of credit: nothing more comes until the guest consumes
             * half and says so. */
            vh_run_for(&c->h, 2);
            assert_false(rx_ready(c));
            fwd += alloc / 2;
            tx(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 600, lport, 0, alloc, fwd, NULL, 0);
        }
    }
    assert_int_equal(got, total);

    /* A guest that claims to have consumed more than it got gets nothing
     * more, rather than a window of 4 GiB. */
    tx(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 600, lport, 0, alloc, got + 100, NULL, 0);
    writes(fd, "zz", 2);
    vh_run_for(&c->h, 20);
    assert_false(rx_ready(c));
    tx(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 600, lport, 0, alloc, got, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
    assert_int_equal(p.len, 2);
    close(fd);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
}

/* Guest -> host with a host that stops reading: the device buffers no more
 * than it advertised, tells the guest when there is room again, and loses
 * or reorders nothing. */
static void test_credit_from_guest(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 64);
    int fd = open_from_guest(c, 700, 7000, 65536);
    const uint32_t total = 8u << 20, chunk = 65536;
    static uint8_t data[65536], in[65536];
    uint32_t sent = 0, recvd = 0, peer_fwd = 0, peer_alloc = VIRTIO_VSOCK_BUF_ALLOC;
    bool reading = false;
    unsigned stalls = 0, updates = 0;
    struct pkt p;
    while (recvd < total) {
        /* The guest sends as far as its credit goes. */
        uint32_t credit = peer_alloc - (sent - peer_fwd);
        bool progressed = false;
        while (sent < total && credit) {
            uint32_t n = chunk < credit ? chunk : credit;
            if (n > total - sent)
                n = total - sent;
            fill(data, sent, n);
            struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_RW, 700, 7000, n, 0, 65536, 0);
            if (!tx_post(c, &h, data, n))
                break;
            sent += n;
            credit -= n;
            progressed = true;
        }
        vh_kick(&c->h, TXQ);
        vh_run_for(&c->h, 2);
        while (rx_take(c, &p)) {
            post_rx(c, 1);
            assert_int_equal(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
            assert_true(p.h.fwd_cnt - peer_fwd <= sent - peer_fwd); /* never ahead of us */
            peer_fwd = p.h.fwd_cnt;
            peer_alloc = p.h.buf_alloc;
            updates++;
        }
        if (!progressed && sent - peer_fwd == peer_alloc && !reading) {
            /* Out of credit with the host not reading: the device holds at
             * most what it advertised. Now the host reads. */
            stalls++;
            reading = true;
        }
        if (reading || sent == total) {
            ssize_t r;
            while ((r = read(fd, in, sizeof(in))) > 0) {
                check(in, recvd, (size_t)r);
                recvd += (uint32_t)r;
            }
        }
    }
    assert_true(stalls >= 1);
    assert_true(updates >= 2);
    assert_int_equal(recvd, total);
    assert_true(host_quiet(fd));

    /* A guest that ignores its credit is reset; what it sent within it
     * still arrives first. */
    uint32_t over = 0;
    bool rst = false;
    for (unsigned i = 0; i < 64 && !rst; i++) {
        fill(data, 0, chunk);
        struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_RW, 700, 7000, chunk, 0, 65536, 0);
        assert_true(tx_post(c, &h, data, chunk));
        vh_kick(&c->h, TXQ);
        over += chunk;
        vh_run_for(&c->h, 1);
        while (rx_take(c, &p)) {
            post_rx(c, 1);
            rst |= p.h.op == VIRTIO_VSOCK_OP_RST;
        }
    }
    assert_true(rst);
    assert_true(over > VIRTIO_VSOCK_BUF_ALLOC);
    for (;;) {
        ssize_t r = read(fd, in, sizeof(in));
        if (r > 0)
            continue;
        if (r == 0)
            break;
        assert_int_equal(errno, EAGAIN);
        assert_true(vh_run_until(&c->h, fd_readable, &fd, VH_WAIT_MS));
    }
    close(fd);
}

static void test_shutdown(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 16);
    struct pkt p;
    uint8_t b[16];

    /* Guest SHUTDOWN(SEND): the host reads EOF after the data, and can
     * still send. */
    int fd = open_from_guest(c, 800, 8000, 65536);
    tx(c, VIRTIO_VSOCK_OP_RW, 800, 8000, 0, 65536, 0, "abc", 3);
    tx(c, VIRTIO_VSOCK_OP_SHUTDOWN, 800, 8000, VIRTIO_VSOCK_SHUTDOWN_SEND, 65536, 0, NULL, 0);
    host_read(c, fd, b, 3);
    assert_memory_equal(b, "abc", 3);
    host_expect_eof(c, fd);
    writes(fd, "back", 4);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
    assert_memory_equal(p.data, "back", 4);
    /* The host finishes too: both sides are done, the RST ends it. */
    shutdown(fd, SHUT_WR);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    close(fd);

    /* Host half-close: the guest gets the data, then SHUTDOWN(SEND), and
     * can still send. Its SHUTDOWN(RCV|SEND) is answered with an RST. */
    fd = open_from_guest(c, 801, 8001, 65536);
    writes(fd, "xyz", 3);
    shutdown(fd, SHUT_WR);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
    assert_memory_equal(p.data, "xyz", 3);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_SHUTDOWN);
    assert_int_equal(p.h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
    tx(c, VIRTIO_VSOCK_OP_RW, 801, 8001, 0, 65536, 3, "ok", 2);
    host_read(c, fd, b, 2);
    assert_memory_equal(b, "ok", 2);
    tx(c, VIRTIO_VSOCK_OP_SHUTDOWN, 801, 8001,
       VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV, 65536, 3, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    host_expect_eof(c, fd);
    close(fd);

    /* Guest SHUTDOWN(RCV): no more data for it; host writes fail. Data
     * sent after a SHUTDOWN(SEND) is a protocol error: RST. */
    fd = open_from_guest(c, 802, 8002, 65536);
    tx(c, VIRTIO_VSOCK_OP_SHUTDOWN, 802, 8002, VIRTIO_VSOCK_SHUTDOWN_RCV, 65536, 0, NULL, 0);
    vh_run_for(&c->h, 10);
    assert_true(send(fd, "q", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
    assert_false(rx_ready(c));
    tx(c, VIRTIO_VSOCK_OP_SHUTDOWN, 802, 8002, VIRTIO_VSOCK_SHUTDOWN_SEND, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST); /* both ways shut: done */
    host_expect_eof(c, fd);
    close(fd);
    fd = open_from_guest(c, 803, 8003, 65536);
    tx(c, VIRTIO_VSOCK_OP_SHUTDOWN, 803, 8003, VIRTIO_VSOCK_SHUTDOWN_SEND, 65536, 0, NULL, 0);
    tx(c, VIRTIO_VSOCK_OP_RW, 803, 8003, 0, 65536, 0, "late", 4);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    host_expect_eof(c, fd);
    close(fd);
    assert_false(rx_ready(c));
}

static void test_malformed(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 32);
    struct pkt p;
    struct virtio_vsock_hdr h;

    /* Not from the guest's CID: dropped without an answer. */
    h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 2, 0, 0, 0, 0);
    h.src_cid = 7;
    tx_hdr(c, &h, NULL, 0);
    vh_run_for(&c->h, 10);
    assert_false(rx_ready(c));

    /* For another CID: RST from that CID. */
    h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 2, 0, 0, 0, 0);
    h.dst_cid = 5;
    tx_hdr(c, &h, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_int_equal(p.h.src_cid, 5);
    assert_int_equal(p.h.src_port, 2);
    assert_int_equal(p.h.dst_port, 1);

    /* Unknown type, unknown ops, payload on a control op, payload longer
     * than the chain or than any packet, data for no connection: RST each. */
    struct {
        uint16_t type, op;
        uint32_t len, carried;
    } bad[] = {
        {VIRTIO_VSOCK_TYPE_SEQPACKET, VIRTIO_VSOCK_OP_REQUEST, 0, 0},
        {9, VIRTIO_VSOCK_OP_REQUEST, 0, 0},
        {VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_INVALID, 0, 0},
        {VIRTIO_VSOCK_TYPE_STREAM, 99, 0, 0},
        {VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_REQUEST, 10, 10},
        {VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_RW, 100, 10},
        {VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_RW, 65537, 65536},
        {VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_RW, 5, 5},
        {VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 0},
        {VIRTIO_VSOCK_TYPE_STREAM, VIRTIO_VSOCK_OP_RESPONSE, 0, 0},
    };
    static uint8_t junk[65536];
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = mkhdr(bad[i].op, 100 + i, 200 + i, bad[i].len, 0, 0, 0);
        h.type = bad[i].type;
        tx_hdr(c, &h, junk, bad[i].carried);
        rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
        assert_int_equal(p.h.src_port, 200 + i);
        assert_int_equal(p.h.dst_port, 100 + i);
        assert_int_equal(p.h.type, bad[i].type == VIRTIO_VSOCK_TYPE_SEQPACKET
                                       ? VIRTIO_VSOCK_TYPE_SEQPACKET
                                       : VIRTIO_VSOCK_TYPE_STREAM);
    }
    /* A malformed RST is never answered (no RST ping-pong). */
    h = mkhdr(VIRTIO_VSOCK_OP_RST, 1, 2, 50, 0, 0, 0);
    tx_hdr(c, &h, NULL, 0);
    vh_run_for(&c->h, 10);
    assert_false(rx_ready(c));

    /* Shorter than a header, and header split over odd descriptors. */
    vh_set_desc(&c->h, TXQ, 0, SPARE_GPA, 10, 0, 0);
    c->r[TXQ].busy[0] = true;
    vh_publish(&c->h, TXQ, 0);
    vh_kick(&c->h, TXQ);
    vh_run_for(&c->h, 10);
    assert_false(rx_ready(c));
    reclaim_tx(c);
    assert_false(c->r[TXQ].busy[0]);

    /* Malformed on an open connection: the connection is reset. */
    int fd = open_from_guest(c, 900, 9000, 65536);
    h = mkhdr(VIRTIO_VSOCK_OP_RW, 900, 9000, 2000, 0, 65536, 0);
    tx_hdr(c, &h, junk, 100);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    host_expect_eof(c, fd);
    close(fd);

    /* Still serving. */
    fd = open_from_guest(c, 901, 9001, 65536);
    close(fd);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_true(c->h.dev->stats.errors >= 12);
    assert_true(virtio_device_live(c->h.dev));
}

/* Odd receive chains from a hostile driver: too short for a header, header
 * only, nothing writable. None of them stalls the device or the loop. */
static void test_odd_rx_buffers(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0);
    struct pkt p;
    /* A connection with data waiting, then three odd chains. */
    int fd = unix_connect(c->uds);
    writes(fd, "CONNECT 5\n", 10);
    vh_run_for(&c->h, 5);
    /* Too short (writable 10 bytes). */
    vh_set_desc(&c->h, RXQ, 2 * SLOTS - 2, SPARE_GPA, 10, DESC_F_WRITE, 0);
    vh_publish(&c->h, RXQ, 2 * SLOTS - 2);
    /* Readable only. */
    vh_set_desc(&c->h, RXQ, 2 * SLOTS - 4, SPARE_GPA + 64, 100, 0, 0);
    vh_publish(&c->h, RXQ, 2 * SLOTS - 4);
    vh_kick(&c->h, RXQ);
    vh_run_for(&c->h, 5);
    /* Both consumed empty: used entries of length 0. */
    assert_int_equal(vh_used_idx(&c->h, RXQ), 2);
    uint32_t id, len;
    vh_used_elem(&c->h, RXQ, 0, &id, &len);
    assert_int_equal(len, 0);
    vh_used_elem(&c->h, RXQ, 1, &id, &len);
    assert_int_equal(len, 0);
    c->r[RXQ].used_seen = 2;
    /* Header-only: carries the REQUEST. */
    vh_set_desc(&c->h, RXQ, 2 * SLOTS - 6, SPARE_GPA + 256, HDR, DESC_F_WRITE, 0);
    vh_publish(&c->h, RXQ, 2 * SLOTS - 6);
    vh_kick(&c->h, RXQ);
    vh_run_for(&c->h, 5);
    assert_int_equal(vh_used_idx(&c->h, RXQ), 3);
    vh_used_elem(&c->h, RXQ, 2, &id, &len);
    assert_int_equal(len, HDR);
    struct virtio_vsock_hdr raw;
    memcpy(&raw, vh_ptr(&c->h, SPARE_GPA + 256), HDR);
    struct virtio_vsock_hdr h = hdr_from_le(&raw);
    assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
    c->r[RXQ].used_seen = 3;
    tx(c, VIRTIO_VSOCK_OP_RESPONSE, 5, h.src_port, 0, 65536, 0, NULL, 0);
    writes(fd, "data", 4);
    vh_run_for(&c->h, 5);
    /* Data waits for a chain with room; normal buffers get it. */
    post_rx(c, 4);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RW);
    assert_memory_equal(p.data, "data", 4);
    close(fd);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_true(virtio_device_live(c->h.dev));
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* No receive buffers: nothing is read from the host and nothing spins;
 * once buffers come, everything flows in order. */
static void test_no_rx_buffers(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0);
    char path[256];
    snprintf(path, sizeof(path), "%s_%u", c->uds, 6000);
    int ls = unix_listen(path);
    /* Guest-initiated: the RESPONSE waits. */
    tx(c, VIRTIO_VSOCK_OP_REQUEST, 600, 6000, 0, 65536, 0, NULL, 0);
    int fd = -1;
    for (unsigned i = 0; i < 100 && fd < 0; i++) {
        vh_run_for(&c->h, 1);
        fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    assert_true(fd >= 0);
    close(ls);
    /* The host writes, and hangs up its sending side. */
    static uint8_t buf[20000];
    fill(buf, 0, sizeof(buf));
    writes(fd, buf, sizeof(buf));
    shutdown(fd, SHUT_WR);
    /* A host client asks for another connection meanwhile. */
    int cl = unix_connect(c->uds);
    writes(cl, "CONNECT 44\n", 11);
    double t0 = cpu_ms();
    vh_run_for(&c->h, 200);
    double spent = cpu_ms() - t0;
    assert_int_equal(vh_used_idx(&c->h, RXQ), 0);
    if (spent > 100)
        fail_msg("%.0f ms of CPU in 200 ms without receive buffers: spinning", spent);

    post_rx(c, 2);
    struct pkt p;
    uint32_t got = 0;
    bool response = false, request = false, shut = false;
    while (!shut || !request) {
        rx_expect(c, &p, 0);
        if (p.h.op == VIRTIO_VSOCK_OP_RESPONSE) {
            assert_false(response);
            response = true;
        } else if (p.h.op == VIRTIO_VSOCK_OP_RW) {
            assert_true(response); /* in order: RESPONSE, data, SHUTDOWN */
            check(p.data, got, p.len);
            got += p.len;
        } else if (p.h.op == VIRTIO_VSOCK_OP_SHUTDOWN) {
            assert_int_equal(got, sizeof(buf));
            shut = true;
        } else if (p.h.op == VIRTIO_VSOCK_OP_REQUEST) {
            assert_int_equal(p.h.dst_port, 44);
            request = true;
        } else {
            fail_msg("unexpected op %u", p.h.op);
        }
    }
    close(fd);
    close(cl);
}

/* Stray packets with no receive buffers: the RSTs wait (bounded), the
 * transmit queue stops, and everything is answered once buffers come. */
static void test_rst_backlog(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 0);
    const unsigned n = 100;
    for (unsigned i = 0; i < n; i++) {
        struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_RW, 1000 + i, 2000, 1, 0, 0, 0);
        assert_true(tx_post(c, &h, "x", 1));
    }
    vh_kick(&c->h, TXQ);
    vh_run_for(&c->h, 20);
    /* The device stopped taking packets once its RST ring was full. */
    uint16_t taken = vh_used_idx(&c->h, TXQ);
    assert_true(taken > 0 && taken < n);
    unsigned rsts = 0;
    bool seen[100] = {false};
    post_rx(c, SLOTS);
    while (rsts < n) {
        struct pkt p;
        rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
        assert_true(p.h.dst_port >= 1000 && p.h.dst_port < 1000 + n);
        assert_false(seen[p.h.dst_port - 1000]);
        seen[p.h.dst_port - 1000] = true;
        rsts++;
    }
    assert_int_equal(vh_used_idx(&c->h, TXQ), n);
}

static void test_reset_and_limits(void **state)
{
    struct ctx *c = *state;
    make_dev(c, 16);
    uint32_t lport;
    int a = open_from_host(c, 10, 65536, &lport);
    int b = open_from_guest(c, 11, 1100, 65536);
    int pending = unix_connect(c->uds); /* still in its handshake */
    vh_run_for(&c->h, 5);
    /* Device reset: every host socket is closed; the listener stays. */
    pthread_mutex_lock(&c->h.dev->lock);
    virtio_set_status(c->h.dev, 0);
    pthread_mutex_unlock(&c->h.dev->lock);
    host_expect_eof(c, a);
    host_expect_eof(c, b);
    host_expect_eof(c, pending);
    close(a);
    close(b);
    close(pending);
    driver_init(c);
    post_rx(c, 32);
    a = open_from_host(c, 12, 65536, &lport);
    close(a);
    struct pkt p;
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);

    /* At most VIRTIO_VSOCK_MAX_CONNS connections; the next client is
     * closed at once and the next guest REQUEST refused. */
    static int fds[VIRTIO_VSOCK_MAX_CONNS];
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
        fds[i] = unix_connect(c->uds);
    vh_run_for(&c->h, 50);
    int extra = unix_connect(c->uds);
    host_expect_eof(c, extra);
    close(extra);
    char path[256];
    snprintf(path, sizeof(path), "%s_%u", c->uds, 7777);
    int ls = unix_listen(path);
    tx(c, VIRTIO_VSOCK_OP_REQUEST, 1, 7777, 0, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RST);
    assert_true(host_quiet(ls));
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
        close(fds[i]);
    vh_run_for(&c->h, 50);
    /* Room again. */
    tx(c, VIRTIO_VSOCK_OP_REQUEST, 1, 7777, 0, 65536, 0, NULL, 0);
    rx_expect(c, &p, VIRTIO_VSOCK_OP_RESPONSE);
    close(ls);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    log_set_level(LOG_ERROR); /* guest-misbehaviour warnings are expected here */
    RUN(T(test_device), T(test_create_errors), T(test_host_connect), T(test_host_handshake_edges),
        T(test_guest_connect), T(test_credit_to_guest), T(test_credit_from_guest), T(test_shutdown),
        T(test_malformed), T(test_odd_rx_buffers), T(test_no_rx_buffers), T(test_rst_backlog),
        T(test_reset_and_limits));
}
