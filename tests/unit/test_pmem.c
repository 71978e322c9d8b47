/* test_pmem.c - virtio-pmem driven as the guest's driver would (rings laid
 * out by hand in fake guest RAM, a real event loop): the configuration
 * space, the file mapping, flushes, and a hostile driver's malformed
 * requests; and the --pmem option's parsing and checks. */
#include "vdev_harness.h"

#include "base/log.h"
#include "virtio/pmem.h"
#include "vmm/config.h"

#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#define MEM_SIZE (4u << 20)
#define QSZ      256
#define RING_GPA 0x1000ull
#define HEAP_GPA 0x10000ull
/* Where the tests tell the device it lives: above the fake RAM. */
#define PMEM_GPA (1ull << 32)
#define FILE_BYTES 5000u /* not a multiple of a page: the padding is tested */

/* Written by the spec, not taken from the device's sources. */
#define REQ_FLUSH 0u

struct ctx {
    struct vdev_harness h;
    char path[PATH_MAX];
    int fd; /* a plain fd on the file, to check contents */
};

static const char *tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s/arcvm-test-pmem-XXXXXX", tmpdir());
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    uint8_t buf[FILE_BYTES];
    for (unsigned i = 0; i < FILE_BYTES; i++)
        buf[i] = (uint8_t)(i * 13 + 1);
    assert_int_equal(pwrite(c->fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    struct guest_mem_region l[] = {{0, MEM_SIZE, NULL}};
    vh_init(&c->h, l, 1);
    vh_rings(&c->h, 1, QSZ, RING_GPA, 0);
    vh_heap(&c->h, HEAP_GPA, MEM_SIZE);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    vh_release(&c->h);
    close(c->fd);
    unlink(c->path);
    free(c);
    return 0;
}

static struct virtio_device *create(struct ctx *c, const char *path, bool ro,
                                    const struct rate_limiter_config *rl, uint64_t gpa, char *err,
                                    size_t errlen)
{
    struct pmem_config cfg = {.path = (char *)path, .readonly = ro, .id = "pm0"};
    if (rl)
        cfg.rl = *rl;
    return virtio_pmem_create(&c->h.mem, &cfg, gpa, &c->h.loop, err, errlen);
}

static void make_dev(struct ctx *c, bool ro, const struct rate_limiter_config *rl)
{
    char err[256] = "";
    struct virtio_device *d = create(c, c->path, ro, rl, PMEM_GPA, err, sizeof(err));
    if (!d)
        fail_msg("virtio_pmem_create: %s", err);
    vh_attach(&c->h, d);
    assert_true(vh_driver_init(&c->h, ~0ull, 1));
}

/* A 4-byte request of @type in guest RAM. */
static uint64_t req_buf(struct ctx *c, uint32_t type)
{
    uint64_t g = vh_alloc(&c->h, 4);
    uint32_t le = htole32(type);
    memcpy(vh_ptr(&c->h, g), &le, 4);
    return g;
}

/* A status buffer of @len bytes, filled with a value no answer has. */
static uint64_t status_buf(struct ctx *c, uint32_t len)
{
    uint64_t g = vh_alloc(&c->h, len);
    memset(vh_ptr(&c->h, g), 0xee, len);
    return g;
}

/* Post @s, kick, wait; the used length, and the status at @st if any. */
static uint32_t submit(struct ctx *c, const struct vh_seg *s, unsigned n, uint64_t st,
                       uint32_t *status)
{
    uint16_t before = vh_used_idx(&c->h, 0);
    uint16_t head = vh_post(&c->h, 0, s, n);
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, (uint16_t)(before + 1));
    uint32_t id, len;
    vh_used_elem(&c->h, 0, before, &id, &len);
    assert_int_equal(id, head);
    if (status) {
        memcpy(status, vh_ptr(&c->h, st), 4);
        *status = le32toh(*status);
    }
    return len;
}

static uint32_t flush(struct ctx *c)
{
    uint64_t st = status_buf(c, 4);
    struct vh_seg s[] = {{req_buf(c, REQ_FLUSH), 4, false}, {st, 4, true}};
    uint32_t status;
    assert_int_equal(submit(c, s, 2, st, &status), 4);
    return status;
}

/* ---- tests --------------------------------------------------------------- */

static void test_config(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    struct virtio_device *d = c->h.dev;
    assert_int_equal(d->ops->device_id, 27);
    assert_int_equal(d->ops->num_queues, 1);
    /* No feature bits of its own (5.19.3): only the transport's. */
    assert_int_equal(d->host_features & 0xffffffull, 0);
    /* 5.19.4: le64 start, le64 size. */
    assert_int_equal(d->ops->config_size, 16);
    uint8_t raw[16];
    d->ops->config_read(d, 0, raw, sizeof(raw));
    uint64_t start, size;
    memcpy(&start, raw, 8);
    memcpy(&size, raw + 8, 8);
    assert_int_equal(le64toh(start), PMEM_GPA);
    assert_int_equal(le64toh(size), 2u << 20); /* the file padded to 2 MiB */
    /* 32-bit halves, as a driver reading the config may do. */
    uint32_t hi;
    d->ops->config_read(d, 4, &hi, 4);
    assert_int_equal(le32toh(hi), PMEM_GPA >> 32);
    d->ops->config_read(d, 8, &hi, 4);
    assert_int_equal(le32toh(hi), 2u << 20);

    /* The region: the file, then zeros up to 2 MiB, all touchable. */
    uint64_t gpa, rsize;
    void *hva;
    bool ro;
    assert_int_equal(virtio_pmem_region(d, &gpa, &hva, &rsize, &ro), 0);
    assert_int_equal(gpa, PMEM_GPA);
    assert_int_equal(rsize, 2u << 20);
    assert_false(ro);
    uint8_t *m = hva;
    assert_int_equal(m[0], 1);
    assert_int_equal(m[FILE_BYTES - 1], (uint8_t)((FILE_BYTES - 1) * 13 + 1));
    assert_int_equal(m[FILE_BYTES], 0);
    assert_int_equal(m[rsize - 1], 0);
    m[rsize - 1] = 0x5a; /* the padding is the guest's to write; it goes nowhere */
    /* Writes through the mapping are the file's (MAP_SHARED). */
    m[100] = 0xab;
    uint8_t b;
    assert_int_equal(pread(c->fd, &b, 1, 100), 1);
    assert_int_equal(b, 0xab);
    struct stat st;
    assert_int_equal(fstat(c->fd, &st), 0);
    assert_int_equal(st.st_size, FILE_BYTES); /* the padding never grows the file */

    assert_int_equal(virtio_pmem_region_size(1), 2u << 20);
    assert_int_equal(virtio_pmem_region_size(2u << 20), 2u << 20);
    assert_int_equal(virtio_pmem_region_size((2u << 20) + 1), 4u << 20);
    assert_int_equal(virtio_pmem_region_size(UINT64_MAX), 0);
}

static void test_flush(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    assert_int_equal(flush(c), 0);
    /* A status buffer longer than 4 bytes: 4 written, the rest untouched. */
    uint64_t st = status_buf(c, 16);
    struct vh_seg s[] = {{req_buf(c, REQ_FLUSH), 4, false}, {st, 16, true}};
    uint32_t status;
    assert_int_equal(submit(c, s, 2, st, &status), 4);
    assert_int_equal(status, 0);
    assert_int_equal(vh_ptr(&c->h, st)[4], 0xee);
    /* Several at once: each answered (one sync covers them). */
    uint16_t before = vh_used_idx(&c->h, 0);
    uint64_t sts[3];
    for (int i = 0; i < 3; i++) {
        sts[i] = status_buf(c, 4);
        struct vh_seg s3[] = {{req_buf(c, REQ_FLUSH), 4, false}, {sts[i], 4, true}};
        vh_post(&c->h, 0, s3, 2);
    }
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, (uint16_t)(before + 3));
    for (int i = 0; i < 3; i++)
        assert_int_equal(*vh_ptr(&c->h, sts[i]), 0);
    assert_int_equal(c->h.dev->stats.errors, 0);
}

static void test_readonly(void **state)
{
    struct ctx *c = *state;
    make_dev(c, true, NULL);
    uint64_t gpa, rsize;
    void *hva;
    bool ro;
    assert_int_equal(virtio_pmem_region(c->h.dev, &gpa, &hva, &rsize, &ro), 0);
    assert_true(ro);
    assert_int_equal(((uint8_t *)hva)[0], 1);
    assert_int_equal(flush(c), 0); /* nothing to sync: success */
}

static void test_malformed(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    uint32_t status;

    /* No writable buffer: given back with nothing written. */
    struct vh_seg s1[] = {{req_buf(c, REQ_FLUSH), 4, false}};
    assert_int_equal(submit(c, s1, 1, 0, NULL), 0);
    /* A status buffer too short for the answer: nothing written. */
    uint64_t st = status_buf(c, 2);
    struct vh_seg s2[] = {{req_buf(c, REQ_FLUSH), 4, false}, {st, 2, true}};
    assert_int_equal(submit(c, s2, 2, st, NULL), 0);
    assert_int_equal(vh_ptr(&c->h, st)[0], 0xee);
    /* A request shorter than its 4-byte type: an error status. */
    st = status_buf(c, 4);
    struct vh_seg s3[] = {{req_buf(c, REQ_FLUSH), 2, false}, {st, 4, true}};
    assert_int_equal(submit(c, s3, 2, st, &status), 4);
    assert_int_equal(status, 1);
    /* Only a status buffer. */
    st = status_buf(c, 4);
    struct vh_seg s4[] = {{st, 4, true}};
    assert_int_equal(submit(c, s4, 1, st, &status), 4);
    assert_int_equal(status, 1);
    /* The request in the wrong direction (device-writable). */
    st = status_buf(c, 4);
    struct vh_seg s5[] = {{req_buf(c, REQ_FLUSH), 4, true}, {st, 4, true}};
    assert_int_equal(submit(c, s5, 2, st, &status), 4);
    /* The first 4 writable bytes carry the answer: an error, as there
     * was no request to read. */
    memcpy(&status, vh_ptr(&c->h, s5[0].gpa), 4);
    assert_int_equal(le32toh(status), 1);
    /* Unknown request types. */
    for (uint32_t type = 1; type < 4; type++) {
        st = status_buf(c, 4);
        struct vh_seg s6[] = {{req_buf(c, type), 4, false}, {st, 4, true}};
        assert_int_equal(submit(c, s6, 2, st, &status), 4);
        assert_int_equal(status, 1);
    }
    st = status_buf(c, 4);
    struct vh_seg s7[] = {{req_buf(c, 0xffffffffu), 4, false}, {st, 4, true}};
    assert_int_equal(submit(c, s7, 2, st, &status), 4);
    assert_int_equal(status, 1);
    /* A request split over two buffers is read whole. */
    uint64_t r = req_buf(c, REQ_FLUSH);
    st = status_buf(c, 4);
    struct vh_seg s8[] = {{r, 1, false}, {r + 1, 3, false}, {st, 4, true}};
    assert_int_equal(submit(c, s8, 3, st, &status), 4);
    assert_int_equal(status, 0);
    assert_true(c->h.dev->stats.errors >= 8);
    assert_true(virtio_device_live(c->h.dev));

    /* A buffer pointing into the pmem region itself (not RAM): the chain
     * is malformed, the device asks for a reset and serves nothing more. */
    struct vh_seg s9[] = {{PMEM_GPA, 4, false}, {status_buf(c, 4), 4, true}};
    uint16_t before = vh_used_idx(&c->h, 0);
    vh_post(&c->h, 0, s9, 2);
    vh_kick(&c->h, 0);
    vh_run_for(&c->h, 20);
    assert_int_equal(vh_used_idx(&c->h, 0), before);
    assert_true(c->h.dev->status & VIRTIO_STATUS_NEEDS_RESET);
    assert_false(virtio_device_live(c->h.dev));
    /* The driver resets it and it works again. */
    assert_true(vh_driver_init(&c->h, ~0ull, 1));
    assert_int_equal(flush(c), 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_rate_limiter(void **state)
{
    struct ctx *c = *state;
    /* One flush per 300 ms: the second waits for the refill. */
    struct rate_limiter_config rl = {.ops = {.size = 1, .refill_time_ms = 300}};
    make_dev(c, false, &rl);
    uint64_t t0 = now_ms();
    assert_int_equal(flush(c), 0);
    assert_int_equal(flush(c), 0);
    uint64_t took = now_ms() - t0;
    assert_true(took >= 200);
    /* Lifted at run time: no more waiting (still limited, five flushes
     * would take at least 1200 ms; the margin is for a loaded machine). */
    struct rate_limiter_config none = {0};
    assert_int_equal(virtio_pmem_set_rate_limiter(c->h.dev, &none), 0);
    t0 = now_ms();
    for (int i = 0; i < 5; i++)
        assert_int_equal(flush(c), 0);
    assert_true(now_ms() - t0 < 1100);
}

static void test_create_errors(void **state)
{
    struct ctx *c = *state;
    char err[256], path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/arcvm-test-pmem-empty-XXXXXX", tmpdir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_null(create(c, path, false, NULL, PMEM_GPA, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "is empty"));
    close(fd);
    unlink(path);
    assert_null(create(c, tmpdir(), true, NULL, PMEM_GPA, err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));
    assert_null(create(c, "/no/such/file", false, NULL, PMEM_GPA, err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    assert_null(create(c, c->path, false, NULL, PMEM_GPA + 4096, err, sizeof(err)));
    assert_non_null(strstr(err, "2 MiB aligned"));
    struct rate_limiter_config bad = {.ops = {.size = 1}};
    assert_null(create(c, c->path, false, &bad, PMEM_GPA, err, sizeof(err)));
    assert_non_null(strstr(err, "refill_time"));
    assert_int_equal(virtio_pmem_set_rate_limiter(NULL, &bad), -ENODEV);
}

static void test_config_option(void **state)
{
    struct ctx *c = *state;
    char err[256];
    struct pmem_config p;
    assert_int_equal(config_parse_pmem("/a/b.img,ro,root,id=rootfs", &p, err, sizeof(err)), 0);
    assert_string_equal(p.path, "/a/b.img");
    assert_true(p.readonly && p.root);
    assert_string_equal(p.id, "rootfs");
    config_release_pmem(&p);
    assert_int_equal(config_parse_pmem("x.img", &p, err, sizeof(err)), 0);
    assert_false(p.readonly || p.root);
    assert_null(p.id);
    config_release_pmem(&p);
    assert_int_equal(config_parse_pmem(",ro", &p, err, sizeof(err)), -EINVAL);
    assert_int_equal(config_parse_pmem("x,dax", &p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "unknown option 'dax'"));
    assert_int_equal(config_parse_pmem("x,id=", &p, err, sizeof(err)), -EINVAL);
    assert_int_equal(config_parse_pmem("x,id=a b", &p, err, sizeof(err)), -EINVAL);

    struct vm_config vc;
    config_init(&vc);
    vc.npmems = 2;
    vc.pmems[0] = (struct pmem_config){.path = strdup(c->path), .id = strdup("a"), .root = true};
    vc.pmems[1] = (struct pmem_config){.path = strdup(c->path), .id = strdup("b")};
    assert_int_equal(config_validate_pmem(&vc, err, sizeof(err)), 0);
    free(vc.pmems[1].id);
    vc.pmems[1].id = strdup("a");
    assert_int_equal(config_validate_pmem(&vc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "used twice"));
    free(vc.pmems[1].id);
    vc.pmems[1].id = NULL;
    vc.pmems[1].root = true;
    assert_int_equal(config_validate_pmem(&vc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "two pmem root devices"));
    vc.pmems[1].root = false;
    free(vc.pmems[1].path);
    vc.pmems[1].path = strdup(tmpdir());
    assert_int_equal(config_validate_pmem(&vc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
    free(vc.pmems[1].path);
    vc.pmems[1].path = strdup("/no/such/file");
    assert_int_equal(config_validate_pmem(&vc, err, sizeof(err)), -ENOENT);

    /* The copy is deep; the root device names itself on the command line. */
    struct vm_config copy;
    assert_int_equal(config_copy(&copy, &vc), 0);
    assert_ptr_not_equal(copy.pmems[0].path, vc.pmems[0].path);
    assert_string_equal(copy.pmems[0].id, "a");
    copy.cmdline = strdup("console=ttyS0");
    assert_int_equal(config_pmem_root_cmdline(&copy), 0);
    assert_string_equal(copy.cmdline, "console=ttyS0 root=/dev/pmem0 rw");
    config_release(&copy);
    vc.pmems[0].root = false;
    vc.pmems[1].root = true;
    vc.pmems[1].readonly = true;
    assert_int_equal(config_pmem_root_cmdline(&vc), 0);
    assert_string_equal(vc.cmdline, "root=/dev/pmem1 ro");
    config_release(&vc);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* guest-misbehaviour warnings are expected here */
    RUN(cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_option, setup, teardown));
}
