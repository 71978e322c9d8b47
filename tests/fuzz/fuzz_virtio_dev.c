/* fuzz_virtio_dev.c - libFuzzer target for every virtio device's guest
 * request path: virtio-blk requests on a memfd disk (synchronous engine),
 * virtio-net transmit and receive on a socket-pair back end, virtio-vsock
 * packets with host sockets on both sides, the balloon's inflate, deflate,
 * statistics, hinting and reporting queues, virtio-console, virtio-rng,
 * virtio-pmem's flushes (on a memfd file) and virtio-mem (region 1 as its
 * hotplug region, 4 KiB blocks).
 *
 * Input: a device byte (which device, % 8) and a feature byte (which
 * features the driver accepts, back-end variants), a queue-size byte, then
 * the guest-RAM image of fuzz_mmio_fixture.h, then 8-byte operations:
 * kicks, pokes into RAM, event-loop rounds (I/O completions, back-end
 * input), config reads and writes, host-side input (frames, connections,
 * console bytes, balloon targets), resets and re-initialisation. The rings
 * of queue q are at fixed places (DESC/AVAIL/USED below) and the device is
 * brought up as a driver would; what is in the rings is the fuzzer's.
 *
 * Properties: every chain a device takes lies in guest RAM; every used
 * entry it gives back names a head inside the ring, with a length that never
 * exceeds the writable bytes a chain of that head offered (the devices'
 * calls to virtq_pop/virtq_push are wrapped at link time to see both);
 * interrupts only for USED or CONFIG; ready queues' rings in RAM. Guest RAM
 * is heap blocks, so ASan sees any access outside it, and devices are
 * released after every input, so LeakSanitizer checks the rest.
 *
 * Run: FUZZ_TARGETS=fuzz_virtio_dev tests/fuzz/run.sh
 */
#include "fuzz_mmio_fixture.h"

#include "base/console.h"
#include "base/evloop.h"
#include "host/disk.h"
#include "virtio/balloon.h"
#include "virtio/mem.h"
#include "virtio/pmem.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/vsock.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_OPS   256
#define DISK_SIZE (64u << 10)
/* Queue q's rings: descriptor table and avail ring in region 0's first
 * half, used rings in its second; buffers anywhere else. Queues have at
 * most 8 entries (QSIZE_MAX) so each fits in its slot. */
#define DESC(q)   (0x200ull * (q))
#define AVAIL(q)  (0x200ull * (q) + 0x100)
#define USED(q)   (0x1000ull + 0x100ull * (q))
#define QSIZE_MAX 8
#define VSOCK_PORT 52 /* a host listener for guest-initiated connections */

enum dev_kind {
    DEV_BLK, DEV_NET, DEV_VSOCK, DEV_BALLOON, DEV_CONSOLE, DEV_RNG, DEV_PMEM, DEV_MEM, DEV_KINDS
};

static struct evloop loop;
static int stop_fd = -1;  /* always readable: ends an evloop_run() round */
static int disk_fd = -1;  /* memfd behind the virtio-blk */
static char disk_path[64];
static int pmem_fd = -1;  /* memfd behind the virtio-pmem */
static char pmem_path[64];
static char vsock_dir[64], vsock_path[96];
static int vsock_listener = -1; /* at vsock_path_VSOCK_PORT */

/* Per input. */
static int peer = -1;                 /* net: our end of the socket pair */
static int host_fd[4] = {-1, -1, -1, -1}; /* vsock: host connections; console: pipe */
static int con_in[2] = {-1, -1};
static int null_fd = -1;
static struct console con;
static bool con_live;

static void on_stop(void *opaque, uint32_t events)
{
    (void)opaque, (void)events;
    evloop_stop(&loop);
}

/* The host listener's socket file and its directory go with the process. */
static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s_%u", vsock_path, VSOCK_PORT);
    unlink(p);
    unlink(vsock_path);
    rmdir(vsock_dir);
}

static void once(void)
{
    if (stop_fd >= 0)
        return;
    fixture_once();
    /* Requests complete on the loop, in order, without io_uring's timing. */
    setenv(DISK_ENV_NO_URING, "1", 1);
    CHECK(evloop_init(&loop) == 0);
    stop_fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(stop_fd >= 0 && evloop_add(&loop, stop_fd, EPOLLIN, on_stop, NULL) == 0);
    disk_fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
    CHECK(disk_fd >= 0);
    snprintf(disk_path, sizeof(disk_path), "/proc/self/fd/%d", disk_fd);
    pmem_fd = memfd_create("fuzz-pmem", MFD_CLOEXEC);
    CHECK(pmem_fd >= 0 && ftruncate(pmem_fd, 8192) == 0);
    snprintf(pmem_path, sizeof(pmem_path), "/proc/self/fd/%d", pmem_fd);
    snprintf(vsock_dir, sizeof(vsock_dir), "/tmp/arcvm-fuzz-vsock.XXXXXX");
    CHECK(mkdtemp(vsock_dir));
    atexit(cleanup);
    snprintf(vsock_path, sizeof(vsock_path), "%s/v.sock", vsock_dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", vsock_path, VSOCK_PORT);
    vsock_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(vsock_listener >= 0 && bind(vsock_listener, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
          listen(vsock_listener, 16) == 0);
    null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(null_fd >= 0);
}

static int set_offloads(void *opaque, unsigned offloads)
{
    (void)opaque, (void)offloads;
    return 0;
}

static void net_close(void *opaque)
{
    close(*(int *)opaque);
}

static struct virtio_device *create(enum dev_kind kind, uint8_t f)
{
    char err[256] = "";
    struct virtio_device *d = NULL;
    switch (kind) {
    case DEV_BLK: {
        CHECK(ftruncate(disk_fd, 0) == 0 && ftruncate(disk_fd, DISK_SIZE) == 0);
        struct disk_config cfg = {.path = disk_path, .readonly = f & 0x80, .id = "fuzz"};
        d = virtio_blk_create(&mem, &cfg, &loop, err, sizeof(err));
        break;
    }
    case DEV_NET: {
        static int dev_end;
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        dev_end = sv[0];
        peer = sv[1];
        bool vnet = f & 0x80;
        struct virtio_net_backend be = {
            .fd = sv[0],
            .flags = NET_BACKEND_DGRAM | (vnet ? NET_BACKEND_VNET_HDR : 0),
            .offloads = vnet ? 0x1f : 0, /* TUN_F_CSUM, TSO4, TSO6, TSO_ECN, UFO */
            .name = "fuzz",
            .set_offloads = vnet ? set_offloads : NULL,
            .close = net_close,
            .opaque = &dev_end};
        static const uint8_t mac[6] = {6, 0, 0xac, 0x10, 0, 2};
        d = virtio_net_create_backend(&mem, mac, &be, &loop, err, sizeof(err));
        break;
    }
    case DEV_VSOCK: {
        struct vsock_config cfg = {.enabled = true, .cid = 3, .uds_path = vsock_path};
        d = virtio_vsock_create(&mem, &cfg, &loop, err, sizeof(err));
        break;
    }
    case DEV_BALLOON: {
        /* Guest RAM is 12 KiB: the only target that fits is 0 MiB. */
        struct balloon_config cfg = {.enabled = true,
                                     .deflate_on_oom = f & 0x20,
                                     .stats_interval_s = f & 0x40 ? 1 : 0,
                                     .free_page_reporting = f & 0x80,
                                     .free_page_hinting = f & 0x10};
        d = virtio_balloon_create(&mem, &cfg, &loop, err, sizeof(err));
        break;
    }
    case DEV_CONSOLE:
        CHECK(pipe2(con_in, O_NONBLOCK | O_CLOEXEC) == 0);
        CHECK(console_init(&con, con_in[0], null_fd, f & 0x80, &loop) == 0);
        con_live = true;
        d = virtio_console_create(&mem, &con);
        break;
    case DEV_PMEM: {
        /* Outside the fuzzer's guest RAM, 2 MiB aligned, as the VMM puts it. */
        struct pmem_config cfg = {.path = pmem_path, .readonly = f & 0x80, .id = "fuzz"};
        if (f & 0x20) /* a rate limiter: flushes wait for its timer */
            cfg.rl.ops = (struct rl_bucket_config){.size = 2, .refill_time_ms = 5};
        d = virtio_pmem_create(&mem, &cfg, 1ull << 32, &loop, err, sizeof(err));
        break;
    }
    case DEV_MEM:
        /* Region 1 is the hotplug region: one 4 KiB block, requested. */
        d = virtio_mem_create(&mem, R1_GPA, R1_SIZE, 4096, f & 0x80 ? R1_SIZE : 0, 0, NULL, err,
                              sizeof(err));
        break;
    default:
        d = virtio_rng_create(&mem);
        break;
    }
    if (!d)
        fprintf(stderr, "cannot create device %d: %s\n", kind, err);
    CHECK(d);
    return d;
}

/* A driver doing 3.1.1 properly: accept the offer's features in @want,
 * every queue at size @qsize with its rings at DESC/AVAIL/USED. */
static void driver_init(struct virtio_device *d, uint64_t want, uint16_t qsize)
{
    pthread_mutex_lock(&d->lock);
    virtio_set_status(d, 0);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    d->guest_features = (d->host_features & want) | VIRTIO_BIT(VIRTIO_F_VERSION_1);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < d->ops->num_queues && q < 5; q++) {
        if (qsize > d->vq[q].max_size)
            continue;
        d->vq[q].size = qsize;
        d->vq[q].desc_gpa = DESC(q);
        d->vq[q].avail_gpa = AVAIL(q);
        d->vq[q].used_gpa = USED(q);
        (void)virtio_queue_enable(d, q);
    }
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    pthread_mutex_unlock(&d->lock);
}

static void kick(struct virtio_device *d, unsigned q)
{
    pthread_mutex_lock(&d->lock);
    if (virtio_device_live(d) && d->vq[q].ready)
        d->ops->queue_notify(d, q);
    pthread_mutex_unlock(&d->lock);
}

/* A few rounds of the event loop: each ends after one batch of events. */
static void run_loop(struct virtio_device *d, unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++) {
        atomic_store(&loop.stop, false);
        evloop_run(&loop);
    }
    atomic_store(&loop.stop, false);
    (void)d;
}

/* ---- what the devices give back --------------------------------------- */

/* The most writable bytes any chain with head h of queue q offered since
 * the queue was set up (a guest may offer one head twice, rewritten in
 * between: the bound is the largest). Recorded at every pop. */
static uint64_t offered[VIRTIO_MAX_QUEUES][VIRTQ_MAX_SIZE];
static const struct virtio_device *cur;

int __real_virtq_pop(struct virtq *q, struct virtq_chain *c);
int __wrap_virtq_pop(struct virtq *q, struct virtq_chain *c);
void __real_virtq_push(struct virtq *q, uint16_t head, uint32_t written);
void __wrap_virtq_push(struct virtq *q, uint16_t head, uint32_t written);

static unsigned queue_index(const struct virtq *q)
{
    CHECK(cur && q >= cur->vq && q < cur->vq + VIRTIO_MAX_QUEUES);
    return (unsigned)(q - cur->vq);
}

/* The devices' calls into virtio/queue.c come here first (the target links
 * with --wrap=virtq_pop,--wrap=virtq_push). */
int __wrap_virtq_pop(struct virtq *q, struct virtq_chain *c)
{
    int r = __real_virtq_pop(q, c);
    if (r > 0) {
        unsigned qi = queue_index(q);
        CHECK(c->head < q->size && c->nread + c->nwrite <= VIRTQ_MAX_SIZE);
        uint64_t w = 0;
        for (unsigned i = 0; i < c->nwrite; i++) {
            CHECK(in_ram(c->buf[c->nread + i].hva, c->buf[c->nread + i].len));
            w += c->buf[c->nread + i].len;
        }
        CHECK(w == c->write_len);
        for (unsigned i = 0; i < c->nread; i++)
            CHECK(in_ram(c->buf[i].hva, c->buf[i].len));
        if (w > offered[qi][c->head])
            offered[qi][c->head] = w;
    }
    return r;
}

/* Used length never exceeds the writable bytes the chain offered. */
void __wrap_virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
    unsigned qi = queue_index(q);
    CHECK(head < q->size);
    if (written > offered[qi][head])
        fprintf(stderr, "queue %u head %u: used length %u > %llu writable bytes\n", qi, head,
                written, (unsigned long long)offered[qi][head]);
    CHECK(written <= offered[qi][head]);
    __real_virtq_push(q, head, written);
}

static void check(struct virtio_device *d)
{
    CHECK((m.interrupt_status & ~(uint32_t)(VIRTIO_INT_USED | VIRTIO_INT_CONFIG)) == 0);
    pthread_mutex_lock(&d->lock);
    for (unsigned qi = 0; qi < VIRTIO_MAX_QUEUES; qi++) {
        const struct virtq *q = &d->vq[qi];
        if (!q->ready)
            continue;
        CHECK(qi < d->ops->num_queues);
        CHECK(in_ram(q->desc, virtq_desc_bytes(q->size)) &&
              in_ram(q->avail, virtq_avail_bytes(q->size)) &&
              in_ram(q->used, virtq_used_bytes(q->size)));
    }
    pthread_mutex_unlock(&d->lock);
}

/* Host-side input for the device: a frame, a connection, console bytes,
 * taken from the @restlen bytes after the operation. Returns how many of
 * them it took. */
static size_t host_input(enum dev_kind kind, struct virtio_device *d, const uint8_t *op,
                       const uint8_t *rest, size_t restlen)
{
    size_t len = (size_t)op[2] << 4 | (op[3] & 15);
    len = len < restlen ? len : restlen;
    switch (kind) {
    case DEV_NET:
        (void)!send(peer, rest, len, MSG_DONTWAIT);
        break;
    case DEV_VSOCK: {
        unsigned k = op[1] & 3;
        if (op[1] & 4) { /* a new host connection asking for a guest port */
            if (host_fd[k] >= 0)
                close(host_fd[k]);
            host_fd[k] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            struct sockaddr_un sa = {.sun_family = AF_UNIX};
            snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vsock_path);
            (void)!connect(host_fd[k], (struct sockaddr *)&sa, sizeof(sa));
            char line[32];
            int n = snprintf(line, sizeof(line), "CONNECT %u\n", op[3]);
            (void)!send(host_fd[k], line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        } else if (op[1] & 8) { /* the host side of a guest-initiated connection */
            int fd = accept4(vsock_listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                if (host_fd[k] >= 0)
                    close(host_fd[k]);
                host_fd[k] = fd;
            }
        } else if (op[1] & 16) { /* the host closes */
            if (host_fd[k] >= 0)
                close(host_fd[k]);
            host_fd[k] = -1;
        } else if (host_fd[k] >= 0) {
            (void)!send(host_fd[k], rest, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        break;
    }
    case DEV_CONSOLE:
        (void)!write(con_in[1], rest, len);
        break;
    case DEV_BALLOON:
        CHECK(virtio_balloon_set_target(d, op[1] & 1) == (op[1] & 1 ? -EINVAL : 0));
        if (op[1] & 2)
            (void)virtio_balloon_set_stats_interval(d, 1 + (op[3] & 3));
        struct virtio_balloon_info info;
        CHECK(virtio_balloon_get(d, &info) == 0);
        if (op[1] & 4) {
            int r = virtio_balloon_hint(d, op[1] & 8, op[1] & 16);
            CHECK(r == (info.free_page_hinting ? 0 : -ENOTSUP));
        }
        break;
    case DEV_MEM: {
        /* A new requested size: 0 or the block (valid), or a bad one. */
        uint64_t want = op[1] & 1 ? R1_SIZE : op[1] & 2 ? 100 : 0;
        CHECK(virtio_mem_set_requested(d, want) == (want == 100 ? -EINVAL : 0));
        struct virtio_mem_info mi;
        CHECK(virtio_mem_get(d, &mi) == 0 && mi.plugged_size <= mi.region_size);
        break;
    }
    default:
        break;
    }
    return len;
}

/* What the device sent the host: drained (net frames, vsock bytes). */
static void host_drain(enum dev_kind kind)
{
    static uint8_t buf[VIRTIO_NET_FRAME_MAX + 64];
    if (kind == DEV_NET) {
        for (int i = 0; i < 64; i++) {
            ssize_t n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
            if (n < 0)
                break;
            /* A frame never exceeds the largest the device accepts. */
            CHECK((size_t)n <= VIRTIO_NET_FRAME_MAX + sizeof(struct virtio_net_hdr));
        }
    } else if (kind == DEV_VSOCK) {
        for (unsigned k = 0; k < 4; k++)
            while (host_fd[k] >= 0 && recv(host_fd[k], buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
    }
}

static void teardown(enum dev_kind kind, struct virtio_device *d)
{
    d->ops->release(d);
    if (kind == DEV_NET) {
        close(peer);
        peer = -1;
    }
    for (unsigned k = 0; k < 4; k++) {
        if (host_fd[k] >= 0)
            close(host_fd[k]);
        host_fd[k] = -1;
    }
    for (int fd; (fd = accept4(vsock_listener, NULL, NULL, SOCK_CLOEXEC)) >= 0;)
        close(fd);
    if (con_live) {
        console_release(&con);
        close(con_in[0]);
        close(con_in[1]);
        con_live = false;
    }
    uint64_t drain;
    (void)!read(irq_fd, &drain, sizeof(drain));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    once();
    if (size < 3)
        return 0;
    enum dev_kind kind = (enum dev_kind)(data[0] % DEV_KINDS);
    uint8_t f = data[1];
    uint16_t qsize = (uint16_t)(1u << (data[2] % 4)); /* 1..QSIZE_MAX */
    data += 3, size -= 3;
    if (!fixture_load_ram(&data, &size))
        return 0;
    struct virtio_device *d = create(kind, f);
    fixture_attach(d);
    /* The feature byte's low bits: EVENT_IDX, INDIRECT_DESC, and the
     * device's first feature bits. */
    uint64_t want = ((f & 1) ? VIRTIO_BIT(VIRTIO_F_EVENT_IDX) : 0) |
                    ((f & 2) ? VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) : 0) | ((uint64_t)(f & 0x7c) >> 2) |
                    ((f & 0x40) ? 0xffffffull : 0);
    memset(offered, 0, sizeof(offered));
    cur = d;
    driver_init(d, want, qsize);

    for (unsigned i = 0; i + 8 <= size && i / 8 < MAX_OPS; i += 8) {
        const uint8_t *op = data + i;
        uint16_t off16 = (uint16_t)(op[1] | op[2] << 8);
        uint8_t buf[8];
        switch (op[0] % 8) {
        case 0:
        case 1: /* the busiest: a kick */
            kick(d, op[1] % d->ops->num_queues);
            break;
        case 2:
            fixture_poke(off16, op + 4);
            break;
        case 3:
            run_loop(d, 1 + (op[1] & 3));
            break;
        case 4: { /* config space, inside it as the transport checks */
            uint32_t len = 1u << (op[3] & 3);
            uint32_t off = op[1];
            if (d->ops->config_size >= len && off <= d->ops->config_size - len) {
                pthread_mutex_lock(&d->lock);
                if (op[3] & 4 && d->ops->config_write)
                    d->ops->config_write(d, off, op + 4, len);
                else
                    d->ops->config_read(d, off, buf, len);
                pthread_mutex_unlock(&d->lock);
            }
            break;
        }
        case 5: /* the data follows the operation, padded to 8 bytes */
            i += (unsigned)((host_input(kind, d, op, data + i + 8, size - i - 8) + 7) & ~7ull);
            break;
        case 6:
            host_drain(kind);
            break;
        case 7:
            if (op[1] & 1) {
                driver_init(d, want ^ op[2], qsize);
            } else {
                pthread_mutex_lock(&d->lock);
                virtio_set_status(d, op[2]);
                pthread_mutex_unlock(&d->lock);
            }
            break;
        }
        check(d);
    }
    run_loop(d, 2);
    check(d);
    teardown(kind, d);
    cur = NULL;
    return 0;
}
