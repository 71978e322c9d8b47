/* test_blk.c - virtio-blk and the raw disk backend, driven as a guest driver
 * would (rings laid out by hand in fake guest RAM, a real event loop), each
 * test once with io_uring and once with the synchronous fallback. */
#include "vdev_harness.h"

#include "host/disk.h"
#include "virtio/blk.h"
#include "vmm/config.h"
#include "base/log.h"

#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>

/* Guest RAM layout of the tests: one queue's rings at 0x1000 (the used ring
 * at 0x3000), an indirect table, then the heap. */
#define MEM_SIZE     (16u << 20)
#define QSZ          256 /* the largest queue the device offers */
#define RING_GPA     0x1000ull
#define INDIRECT_GPA 0x4000ull /* up to 512 indirect descriptors */
#define HEAP_GPA     0x10000ull

#define IMG_SECTORS 2048u /* 1 MiB image */
#define IMG_BYTES   (IMG_SECTORS * 512u)

struct ctx {
    struct vdev_harness h;
    bool sync;           /* engine under test */
    char path[PATH_MAX]; /* the image */
    int img;             /* a plain fd on it, to check contents */
};

static int mode_uring = 0, mode_sync = 1;

/* ---- requests ------------------------------------------------------------ */

/* Post one chain (through an indirect table if @indirect), kick, wait;
 * returns the status byte at @status_gpa. */
static uint8_t submit(struct ctx *c, const struct vh_seg *s, unsigned n, uint64_t status_gpa,
                      bool indirect, uint32_t *used_len)
{
    uint16_t before = vh_used_idx(&c->h, 0);
    uint16_t head;
    if (indirect) {
        assert_true(n <= 512);
        head = vh_post_indirect(&c->h, 0, INDIRECT_GPA, s, n);
    } else {
        head = vh_post(&c->h, 0, s, n);
    }
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, (uint16_t)(before + 1));
    uint32_t id, len;
    vh_used_elem(&c->h, 0, before, &id, &len);
    assert_int_equal(id, head);
    if (used_len)
        *used_len = len;
    return *vh_ptr(&c->h, status_gpa);
}

static uint64_t hdr(struct ctx *c, uint32_t type, uint64_t sector)
{
    uint64_t g = vh_alloc(&c->h, 16);
    uint32_t t = htole32(type), zero = 0;
    uint64_t s = htole64(sector);
    memcpy(vh_ptr(&c->h, g), &t, 4);
    memcpy(vh_ptr(&c->h, g + 4), &zero, 4);
    memcpy(vh_ptr(&c->h, g + 8), &s, 8);
    return g;
}

static uint64_t status_byte(struct ctx *c)
{
    uint64_t g = vh_alloc(&c->h, 1);
    *vh_ptr(&c->h, g) = 0xee; /* neither OK, IOERR nor UNSUPP */
    return g;
}

/* header / one data buffer / status. */
static uint8_t simple(struct ctx *c, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                      bool data_writable)
{
    uint64_t st = status_byte(c);
    struct vh_seg s[3];
    unsigned n = 0;
    s[n++] = (struct vh_seg){hdr(c, type, sector), 16, false};
    if (len)
        s[n++] = (struct vh_seg){data, len, data_writable};
    s[n++] = (struct vh_seg){st, 1, true};
    return submit(c, s, n, st, false, NULL);
}

static uint8_t rd(struct ctx *c, uint64_t sector, uint64_t data, uint32_t len)
{
    return simple(c, VIRTIO_BLK_T_IN, sector, data, len, true);
}

static uint8_t wr(struct ctx *c, uint64_t sector, uint64_t data, uint32_t len)
{
    return simple(c, VIRTIO_BLK_T_OUT, sector, data, len, false);
}

static uint8_t dwz(struct ctx *c, uint32_t type, uint64_t sector, uint32_t num, uint32_t flags)
{
    uint64_t g = vh_alloc(&c->h, 16);
    uint64_t s = htole64(sector);
    uint32_t n = htole32(num), f = htole32(flags);
    memcpy(vh_ptr(&c->h, g), &s, 8);
    memcpy(vh_ptr(&c->h, g + 8), &n, 4);
    memcpy(vh_ptr(&c->h, g + 12), &f, 4);
    return simple(c, type, 0, g, 16, false);
}

/* ---- image ------------------------------------------------------------- */

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 7 + (off >> 9) + 1); /* never a long run of zeros */
}

static void fill_pattern(uint8_t *p, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = pattern(off + i);
}

static void check_pattern(struct ctx *c, uint64_t off, size_t len)
{
    uint8_t *want = malloc(len), *got = malloc(len);
    fill_pattern(want, off, len);
    assert_int_equal(pread(c->img, got, len, (off_t)off), (ssize_t)len);
    assert_memory_equal(got, want, len);
    free(want);
    free(got);
}

static bool file_is_zero(struct ctx *c, uint64_t off, size_t len)
{
    uint8_t *got = malloc(len);
    assert_int_equal(pread(c->img, got, len, (off_t)off), (ssize_t)len);
    bool z = true;
    for (size_t i = 0; i < len; i++)
        z &= got[i] == 0;
    free(got);
    return z;
}

static int make_image(const char *dir, char *path, uint64_t bytes)
{
    snprintf(path, PATH_MAX, "%s/arcvm-test-blk-XXXXXX", dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    uint8_t *buf = malloc(bytes);
    fill_pattern(buf, 0, bytes);
    assert_int_equal(pwrite(fd, buf, bytes, 0), (ssize_t)bytes);
    free(buf);
    return fd;
}

static const char *tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* ---- device lifecycle -------------------------------------------------- */

static unsigned count_uring_fds(void)
{
    unsigned n = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        char p[300], target[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
        ssize_t l = readlink(p, target, sizeof(target) - 1);
        if (l > 0) {
            target[l] = 0;
            n += strcmp(target, "anon_inode:[io_uring]") == 0;
        }
    }
    closedir(dir);
    return n;
}

static void set_engine(struct ctx *c)
{
    if (c->sync)
        setenv(DISK_ENV_NO_URING, "1", 1);
    else
        unsetenv(DISK_ENV_NO_URING);
}

static struct virtio_device *create(struct ctx *c, const char *path, bool ro, const char *id,
                                    char *err, size_t errlen)
{
    set_engine(c);
    struct disk_config cfg = {.path = (char *)path, .readonly = ro, .id = (char *)id};
    return virtio_blk_create(&c->h.mem, &cfg, &c->h.loop, err, errlen);
}

static void make_dev_at(struct ctx *c, const char *path, bool ro, const char *id)
{
    char err[256] = "";
    unsigned rings = count_uring_fds();
    struct virtio_device *d = create(c, path, ro, id, err, sizeof(err));
    if (!d)
        fail_msg("virtio_blk_create: %s", err);
#ifdef HAVE_LIBURING
    /* The engine asked for is the engine in use. */
    assert_int_equal(count_uring_fds(), rings + (c->sync ? 0 : 1));
#else
    (void)rings;
#endif
    vh_attach(&c->h, d);
    /* Every feature offered. */
    assert_true(vh_driver_init(&c->h, ~0ull, 1));
}

static void make_dev(struct ctx *c, bool ro, const char *id)
{
    make_dev_at(c, c->path, ro, id);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    c->sync = *(int *)*state;
    c->img = make_image(tmpdir(), c->path, IMG_BYTES);
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
    close(c->img);
    unlink(c->path);
    unsetenv(DISK_ENV_NO_URING);
    free(c);
    return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_features_config(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    struct virtio_device *d = c->h.dev;
    assert_int_equal(d->ops->device_id, VIRTIO_ID_BLOCK);
    assert_int_equal(d->ops->queue_max_size, 256);
    uint64_t f = d->host_features;
    assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX));
    assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE));
    assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
    assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
    assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
    assert_true(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    assert_false(f & VIRTIO_BIT(VIRTIO_BLK_F_RO));

    /* The layout of 5.2.4, byte for byte. */
    assert_int_equal(d->ops->config_size, 96);
    assert_int_equal(offsetof(struct virtio_blk_config, seg_max), 12);
    assert_int_equal(offsetof(struct virtio_blk_config, blk_size), 20);
    assert_int_equal(offsetof(struct virtio_blk_config, num_queues), 34);
    assert_int_equal(offsetof(struct virtio_blk_config, max_discard_sectors), 36);
    assert_int_equal(offsetof(struct virtio_blk_config, discard_sector_alignment), 44);
    assert_int_equal(offsetof(struct virtio_blk_config, max_write_zeroes_sectors), 48);
    assert_int_equal(offsetof(struct virtio_blk_config, write_zeroes_may_unmap), 56);
    assert_int_equal(offsetof(struct virtio_blk_config, max_secure_erase_sectors), 60);
    assert_int_equal(offsetof(struct virtio_blk_config, zoned), 72);

    uint8_t raw[96];
    d->ops->config_read(d, 0, raw, sizeof(raw));
    uint64_t cap;
    uint32_t v32;
    memcpy(&cap, raw, 8);
    assert_int_equal(le64toh(cap), IMG_SECTORS);
    memcpy(&v32, raw + 12, 4);
    assert_int_equal(le32toh(v32), VIRTIO_BLK_SEG_MAX);
    memcpy(&v32, raw + 20, 4);
    assert_int_equal(le32toh(v32), 512);
    memcpy(&v32, raw + 36, 4);
    assert_int_equal(le32toh(v32), VIRTIO_BLK_MAX_DISCARD_SECTORS);
    memcpy(&v32, raw + 40, 4);
    assert_int_equal(le32toh(v32), 1);
    memcpy(&v32, raw + 48, 4);
    assert_int_equal(le32toh(v32), VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS);
    memcpy(&v32, raw + 52, 4);
    assert_int_equal(le32toh(v32), 1);
    assert_int_equal(raw[56], 1);
    /* A partial read at an offset, as a driver's 32-bit access does. */
    d->ops->config_read(d, 4, &v32, 4);
    assert_int_equal(v32, 0);
}

static void test_read(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    /* 4 KiB from sector 5 into three buffers of odd sizes. */
    uint64_t a = vh_alloc(&c->h, 1000), b = vh_alloc(&c->h, 2000), d = vh_alloc(&c->h, 1096);
    uint64_t st = status_byte(c);
    struct vh_seg s[] = {{hdr(c, VIRTIO_BLK_T_IN, 5), 16, false},
                         {a, 1000, true},
                         {b, 2000, true},
                         {d, 1096, true},
                         {st, 1, true}};
    uint32_t used;
    assert_int_equal(submit(c, s, 5, st, false, &used), VIRTIO_BLK_S_OK);
    assert_int_equal(used, 4096 + 1);
    uint8_t want[4096];
    fill_pattern(want, 5 * 512, sizeof(want));
    assert_memory_equal(vh_ptr(&c->h, a), want, 1000);
    assert_memory_equal(vh_ptr(&c->h, b), want + 1000, 2000);
    assert_memory_equal(vh_ptr(&c->h, d), want + 3000, 1096);

    /* Data and status in one writable buffer: the status is its last byte. */
    uint64_t buf = vh_alloc(&c->h, 513);
    memset(vh_ptr(&c->h, buf), 0xee, 513);
    struct vh_seg s2[] = {{hdr(c, VIRTIO_BLK_T_IN, IMG_SECTORS - 1), 16, false}, {buf, 513, true}};
    assert_int_equal(submit(c, s2, 2, buf + 512, false, &used), VIRTIO_BLK_S_OK);
    assert_int_equal(used, 513);
    fill_pattern(want, (IMG_SECTORS - 1) * 512ull, 512);
    assert_memory_equal(vh_ptr(&c->h, buf), want, 512);

    /* The header split over two buffers is the same request (2.6.4). */
    uint64_t h = hdr(c, VIRTIO_BLK_T_IN, 9), data = vh_alloc(&c->h, 512);
    st = status_byte(c);
    struct vh_seg s3[] = {{h, 8, false}, {h + 8, 8, false}, {data, 512, true}, {st, 1, true}};
    assert_int_equal(submit(c, s3, 4, st, false, NULL), VIRTIO_BLK_S_OK);
    fill_pattern(want, 9 * 512, 512);
    assert_memory_equal(vh_ptr(&c->h, data), want, 512);
}

static void test_write(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    uint8_t src[1024];
    for (unsigned i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(0xa0 ^ i);

    /* Header and data in one readable buffer. */
    uint64_t buf = vh_alloc(&c->h, 16 + 1024);
    uint64_t h = hdr(c, VIRTIO_BLK_T_OUT, 10);
    memcpy(vh_ptr(&c->h, buf), vh_ptr(&c->h, h), 16);
    memcpy(vh_ptr(&c->h, buf + 16), src, 1024);
    uint64_t st = status_byte(c);
    struct vh_seg s[] = {{buf, 16 + 1024, false}, {st, 1, true}};
    uint32_t used;
    assert_int_equal(submit(c, s, 2, st, false, &used), VIRTIO_BLK_S_OK);
    assert_int_equal(used, 1);
    uint8_t got[1024];
    assert_int_equal(pread(c->img, got, 1024, 10 * 512), 1024);
    assert_memory_equal(got, src, 1024);
    check_pattern(c, 9 * 512, 512); /* neighbours untouched */
    check_pattern(c, 12 * 512, 512);

    /* The last two sectors from three odd-sized buffers. */
    uint64_t a = vh_alloc(&c->h, 100), b = vh_alloc(&c->h, 412), d = vh_alloc(&c->h, 512);
    memcpy(vh_ptr(&c->h, a), src, 100);
    memcpy(vh_ptr(&c->h, b), src + 100, 412);
    memcpy(vh_ptr(&c->h, d), src + 512, 512);
    st = status_byte(c);
    struct vh_seg s2[] = {{hdr(c, VIRTIO_BLK_T_OUT, IMG_SECTORS - 2), 16, false},
                          {a, 100, false},
                          {b, 412, false},
                          {d, 512, false},
                          {st, 1, true}};
    assert_int_equal(submit(c, s2, 5, st, false, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(pread(c->img, got, 1024, (IMG_SECTORS - 2) * 512ull), 1024);
    assert_memory_equal(got, src, 1024);
    struct stat sb;
    assert_int_equal(fstat(c->img, &sb), 0);
    assert_int_equal(sb.st_size, IMG_BYTES); /* never written past the end */
}

static void test_flush(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    uint64_t data = vh_alloc(&c->h, 512);
    memset(vh_ptr(&c->h, data), 0x5a, 512);
    assert_int_equal(wr(c, 3, data, 512), VIRTIO_BLK_S_OK);
    uint32_t used;
    uint64_t st = status_byte(c);
    struct vh_seg s[] = {{hdr(c, VIRTIO_BLK_T_FLUSH, 0), 16, false}, {st, 1, true}};
    assert_int_equal(submit(c, s, 2, st, false, &used), VIRTIO_BLK_S_OK);
    assert_int_equal(used, 1);
}

static void get_id(struct ctx *c, char out[20])
{
    uint64_t buf = vh_alloc(&c->h, 20);
    memset(vh_ptr(&c->h, buf), 0xaa, 20);
    assert_int_equal(simple(c, VIRTIO_BLK_T_GET_ID, 0, buf, 20, true), VIRTIO_BLK_S_OK);
    memcpy(out, vh_ptr(&c->h, buf), 20);
}

static void test_get_id(void **state)
{
    struct ctx *c = *state;
    char id[20];
    make_dev(c, false, "serial-123");
    get_id(c, id);
    assert_memory_equal(id, "serial-123\0\0\0\0\0\0\0\0\0\0", 20);
    /* A short buffer gets what fits and nothing beyond it. */
    uint64_t buf = vh_alloc(&c->h, 8);
    memset(vh_ptr(&c->h, buf), 0xaa, 8);
    assert_int_equal(simple(c, VIRTIO_BLK_T_GET_ID, 0, buf, 5, true), VIRTIO_BLK_S_OK);
    assert_memory_equal(vh_ptr(&c->h, buf), "seria\xaa\xaa\xaa", 8);
    vh_drop_dev(&c->h);

    /* Exactly 20 bytes: no terminator. */
    make_dev(c, false, "ABCDEFGHIJKLMNOPQRST");
    get_id(c, id);
    assert_memory_equal(id, "ABCDEFGHIJKLMNOPQRST", 20);
    vh_drop_dev(&c->h);

    /* No id: derived from the path, the same every time. */
    char id2[20];
    make_dev(c, false, NULL);
    get_id(c, id);
    vh_drop_dev(&c->h);
    make_dev(c, false, NULL);
    get_id(c, id2);
    assert_memory_equal(id, id2, 20);
    assert_memory_equal(id, "arcvm-", 6);
    for (unsigned i = 0; i < 20; i++)
        assert_true(id[i] >= '-' && id[i] <= 'z');
}

/* Whether the file system under @fd can punch holes (discard zeroes there). */
static bool can_punch(int fd)
{
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, IMG_BYTES - 4096, 4096) == 0;
}

static void test_discard(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, 16, 8, 0), VIRTIO_BLK_S_OK);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, 40, 0, 0), VIRTIO_BLK_S_OK); /* empty */
    check_pattern(c, 15 * 512, 512);
    check_pattern(c, 24 * 512, 512);
    if (can_punch(c->img))
        assert_true(file_is_zero(c, 16 * 512, 8 * 512));
    struct stat sb;
    assert_int_equal(fstat(c->img, &sb), 0);
    assert_int_equal(sb.st_size, IMG_BYTES);
}

static void test_write_zeroes(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    /* Unaligned to file-system blocks on purpose. */
    assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 101, 3, 0), VIRTIO_BLK_S_OK);
    assert_true(file_is_zero(c, 101 * 512, 3 * 512));
    check_pattern(c, 100 * 512, 512);
    check_pattern(c, 104 * 512, 512);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 200, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
                     VIRTIO_BLK_S_OK);
    assert_true(file_is_zero(c, 200 * 512, 16 * 512));
    check_pattern(c, 199 * 512, 512);
    check_pattern(c, 216 * 512, 512);
    /* And the guest reads zeros back. */
    uint64_t data = vh_alloc(&c->h, 1024);
    memset(vh_ptr(&c->h, data), 0xff, 1024);
    assert_int_equal(rd(c, 101, data, 1024), VIRTIO_BLK_S_OK);
    uint8_t zero[1024] = {0};
    assert_memory_equal(vh_ptr(&c->h, data), zero, 1024);
}

/* tmpfs has no FALLOC_FL_ZERO_RANGE: write-zeroes falls back to writing
 * zeros, several chunks of them. */
static void test_write_zeroes_fallback(void **state)
{
    struct ctx *c = *state;
    struct statfs fs;
    if (statfs("/dev/shm", &fs) < 0 || fs.f_type != 0x01021994 /* TMPFS_MAGIC */) {
        skip();
        return;
    }
    char path[PATH_MAX];
    uint64_t bytes = 4u << 20;
    int fd = make_image("/dev/shm", path, bytes);
    make_dev_at(c, path, false, NULL);
    /* 3 MiB + 512: more than one zero-writing step, and a partial one. */
    assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 1, 6145, 0), VIRTIO_BLK_S_OK);
    uint8_t *got = malloc(bytes);
    assert_int_equal(pread(fd, got, bytes, 0), (ssize_t)bytes);
    for (uint64_t i = 512; i < 512 + 6145 * 512ull; i++)
        if (got[i])
            fail_msg("byte %llu not zeroed", (unsigned long long)i);
    for (uint64_t i = 0; i < 512; i++)
        assert_int_equal(got[i], pattern(i));
    for (uint64_t i = 6146 * 512ull; i < bytes; i++)
        if (got[i] != pattern(i))
            fail_msg("byte %llu changed", (unsigned long long)i);
    free(got);
    vh_drop_dev(&c->h);
    close(fd);
    unlink(path);
}

static void test_readonly(void **state)
{
    struct ctx *c = *state;
    make_dev(c, true, NULL);
    uint64_t f = c->h.dev->host_features;
    assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_RO));
    assert_false(f & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
    assert_false(f & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
    uint64_t data = vh_alloc(&c->h, 1024);
    assert_int_equal(rd(c, 0, data, 1024), VIRTIO_BLK_S_OK);
    uint8_t want[1024];
    fill_pattern(want, 0, 1024);
    assert_memory_equal(vh_ptr(&c->h, data), want, 1024);
    memset(vh_ptr(&c->h, data), 0, 1024);
    assert_int_equal(wr(c, 0, data, 1024), VIRTIO_BLK_S_IOERR);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(c, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), VIRTIO_BLK_S_OK);
    check_pattern(c, 0, IMG_BYTES);
}

static void test_out_of_range(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    uint64_t data = vh_alloc(&c->h, 4096);
    memset(vh_ptr(&c->h, data), 0, 4096);
    assert_int_equal(rd(c, IMG_SECTORS, data, 512), VIRTIO_BLK_S_IOERR);
    assert_int_equal(rd(c, IMG_SECTORS - 1, data, 1024), VIRTIO_BLK_S_IOERR);
    assert_int_equal(wr(c, IMG_SECTORS - 1, data, 1024), VIRTIO_BLK_S_IOERR);
    /* sector * 512 and sector + n overflow 64 bits. */
    assert_int_equal(rd(c, UINT64_MAX / 512 + 1, data, 512), VIRTIO_BLK_S_IOERR);
    assert_int_equal(wr(c, (UINT64_MAX / 512) + 2, data, 512), VIRTIO_BLK_S_IOERR);
    assert_int_equal(rd(c, UINT64_MAX, data, 512), VIRTIO_BLK_S_IOERR);
    assert_int_equal(wr(c, UINT64_MAX - 1, data, 4096), VIRTIO_BLK_S_IOERR);
    /* Not a multiple of 512. */
    assert_int_equal(rd(c, 0, data, 100), VIRTIO_BLK_S_IOERR);
    assert_int_equal(wr(c, 0, data, 513), VIRTIO_BLK_S_IOERR);
    /* Discard / write-zeroes past the end, with overflow, or too large. */
    assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, IMG_SECTORS - 8, 16, 0), VIRTIO_BLK_S_IOERR);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, UINT64_MAX, 1, 0), VIRTIO_BLK_S_IOERR);
    assert_int_equal(
        dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS + 1, 0),
        VIRTIO_BLK_S_IOERR);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, 0, UINT32_MAX, 0), VIRTIO_BLK_S_IOERR);
    check_pattern(c, 0, IMG_BYTES);
    /* The device still works. */
    assert_int_equal(rd(c, IMG_SECTORS - 8, data, 4096), VIRTIO_BLK_S_OK);
}

static void test_malformed(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    uint32_t used, id, len;

    /* No writable byte at all: given back with nothing written. */
    uint16_t before = vh_used_idx(&c->h, 0);
    struct vh_seg s1[] = {{hdr(c, VIRTIO_BLK_T_IN, 0), 16, false}};
    uint16_t head = vh_post(&c->h, 0, s1, 1);
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, (uint16_t)(before + 1));
    vh_used_elem(&c->h, 0, before, &id, &len);
    assert_int_equal(id, head);
    assert_int_equal(len, 0);

    /* Header too short. */
    uint64_t st = status_byte(c);
    struct vh_seg s2[] = {{hdr(c, VIRTIO_BLK_T_IN, 0), 8, false}, {st, 1, true}};
    assert_int_equal(submit(c, s2, 2, st, false, NULL), VIRTIO_BLK_S_IOERR);
    /* Only a status byte. */
    st = status_byte(c);
    struct vh_seg s3[] = {{st, 1, true}};
    assert_int_equal(submit(c, s3, 1, st, false, &used), VIRTIO_BLK_S_IOERR);
    assert_int_equal(used, 1);

    /* Data in the wrong direction. */
    uint64_t data = vh_alloc(&c->h, 1024);
    st = status_byte(c);
    struct vh_seg s4[] = {{hdr(c, VIRTIO_BLK_T_IN, 0), 16, false},
                          {data, 512, false},
                          {data + 512, 512, true},
                          {st, 1, true}};
    assert_int_equal(submit(c, s4, 4, st, false, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(c, VIRTIO_BLK_T_OUT, 0, data, 512, true), VIRTIO_BLK_S_IOERR);
    check_pattern(c, 0, 512);

    /* Unknown and unimplemented types. */
    assert_int_equal(simple(c, 99, 0, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(simple(c, VIRTIO_BLK_T_GET_LIFETIME, 0, data, 8, true), VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(simple(c, VIRTIO_BLK_T_SECURE_ERASE, 0, data, 16, false), VIRTIO_BLK_S_UNSUPP);

    /* Discard/write-zeroes segments: flags, count and size checked. */
    assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
                     VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(simple(c, VIRTIO_BLK_T_DISCARD, 0, data, 32, false), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(c, VIRTIO_BLK_T_DISCARD, 0, data, 15, false), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 0, 0, false), VIRTIO_BLK_S_IOERR);
    check_pattern(c, 0, IMG_BYTES);

    /* Segments: seg_max is accepted, one more is refused (indirect, as the
     * chain is longer than the queue). */
    enum { N = VIRTIO_BLK_SEG_MAX + 1 };
    struct vh_seg *s = calloc(N + 2, sizeof(*s));
    uint64_t big = vh_alloc(&c->h, N * 512ull);
    memset(vh_ptr(&c->h, big), 0, N * 512ull);
    s[0] = (struct vh_seg){hdr(c, VIRTIO_BLK_T_IN, 1), 16, false};
    for (unsigned i = 0; i < N; i++)
        s[1 + i] = (struct vh_seg){big + 512ull * i, 512, true};
    st = status_byte(c);
    s[N + 1] = (struct vh_seg){st, 1, true};
    assert_int_equal(submit(c, s, N + 2, st, true, NULL), VIRTIO_BLK_S_IOERR);
    s[N] = (struct vh_seg){st, 1, true};
    assert_int_equal(submit(c, s, N + 1, st, true, &used), VIRTIO_BLK_S_OK);
    assert_int_equal(used, VIRTIO_BLK_SEG_MAX * 512 + 1);
    uint8_t *want = malloc(VIRTIO_BLK_SEG_MAX * 512);
    fill_pattern(want, 512, VIRTIO_BLK_SEG_MAX * 512);
    assert_memory_equal(vh_ptr(&c->h, big), want, VIRTIO_BLK_SEG_MAX * 512);
    free(want);
    free(s);

    /* A zero-length read is a no-op that succeeds. */
    assert_int_equal(rd(c, 0, 0, 0), VIRTIO_BLK_S_OK);
    /* After all that, the device still serves requests. */
    assert_true(virtio_device_live(c->h.dev));
    assert_int_equal(rd(c, 0, data, 512), VIRTIO_BLK_S_OK);
}

static void test_host_errors(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    uint64_t data = vh_alloc(&c->h, 4096);
    memset(vh_ptr(&c->h, data), 0x11, 4096);

    /* A write the host refuses (EFBIG: past RLIMIT_FSIZE). */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = IMG_BYTES / 2;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint8_t st = wr(c, IMG_SECTORS - 8, data, 4096);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(st, VIRTIO_BLK_S_IOERR);
    check_pattern(c, (IMG_SECTORS - 8) * 512ull, 4096);

    /* Reads past a shrunken image: a short read is an error, never a
     * silently short success. */
    assert_int_equal(ftruncate(c->img, IMG_BYTES / 2 + 1024), 0);
    assert_int_equal(rd(c, IMG_SECTORS / 2, data, 4096), VIRTIO_BLK_S_IOERR);
    assert_int_equal(rd(c, IMG_SECTORS - 1, data, 512), VIRTIO_BLK_S_IOERR);
    /* The device keeps running. */
    assert_true(virtio_device_live(c->h.dev));
    assert_int_equal(rd(c, 0, data, 4096), VIRTIO_BLK_S_OK);
    uint8_t want[4096];
    fill_pattern(want, 0, 4096);
    assert_memory_equal(vh_ptr(&c->h, data), want, 4096);
    assert_int_equal(wr(c, 1, data, 512), VIRTIO_BLK_S_OK);
}

/* Many requests in one kick, then more chains than queue entries (a driver
 * reusing a chain in flight): the device stalls, then catches up. */
static void test_batch(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    enum { N = 60 };
    uint64_t data[N], st[N];
    for (unsigned i = 0; i < N; i++) {
        data[i] = vh_alloc(&c->h, 1024);
        for (unsigned j = 0; j < 1024; j++)
            vh_ptr(&c->h, data[i])[j] = (uint8_t)(i * 3 + j);
        st[i] = status_byte(c);
        struct vh_seg s[] = {{hdr(c, VIRTIO_BLK_T_OUT, 8 + 2 * i), 16, false},
                             {data[i], 1024, false},
                             {st[i], 1, true}};
        vh_post(&c->h, 0, s, 3);
    }
    c->h.used_irqs = 0;
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, N);
    assert_true(c->h.used_irqs >= 1 && c->h.used_irqs <= N);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(*vh_ptr(&c->h, st[i]), VIRTIO_BLK_S_OK);
        uint8_t got[1024];
        assert_int_equal(pread(c->img, got, 1024, (8 + 2 * i) * 512), 1024);
        assert_memory_equal(got, vh_ptr(&c->h, data[i]), 1024);
    }

    /* One chain made available QSZ + 10 times. */
    uint64_t buf = vh_alloc(&c->h, 512), s0 = status_byte(c);
    struct vh_seg s[] = {{hdr(c, VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, true}, {s0, 1, true}};
    uint16_t head = vh_post(&c->h, 0, s, 3);
    for (unsigned i = 1; i < QSZ; i++)
        vh_publish(&c->h, 0, head);
    vh_kick(&c->h, 0);
    for (unsigned i = 0; i < 10; i++)
        vh_publish(&c->h, 0, head);
    vh_kick(&c->h, 0);
    vh_wait_used(&c->h, 0, (uint16_t)(N + QSZ + 10));
    assert_int_equal(*vh_ptr(&c->h, s0), VIRTIO_BLK_S_OK);
    uint8_t want[512];
    fill_pattern(want, 0, 512);
    assert_memory_equal(vh_ptr(&c->h, buf), want, 512);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A rate limiter: 4 operations per second and 64 KiB per 200 ms. The first
 * bucketful passes at once, the rest only as it refills (the throttle's
 * timer serves the queue again, no kick needed); a PATCH-style update
 * lifts the limit for what still waits. */
static void test_rate_limiter(void **state)
{
    struct ctx *c = *state;
    set_engine(c);
    char err[256] = "";
    struct disk_config cfg = {.path = c->path};
    cfg.rl.ops = (struct rl_bucket_config){.size = 4, .refill_time_ms = 1000};
    cfg.rl.bandwidth = (struct rl_bucket_config){.size = 64 << 10, .refill_time_ms = 200};
    struct virtio_device *d = virtio_blk_create(&c->h.mem, &cfg, &c->h.loop, err, sizeof(err));
    if (!d)
        fail_msg("virtio_blk_create: %s", err);
    vh_attach(&c->h, d);
    assert_true(vh_driver_init(&c->h, ~0ull, 1));
    enum { N = 8 };
    for (unsigned i = 0; i < N; i++) {
        uint64_t buf = vh_alloc(&c->h, 4096), st = status_byte(c);
        struct vh_seg s[] = {{hdr(c, VIRTIO_BLK_T_IN, 8 * i), 16, false}, {buf, 4096, true},
                             {st, 1, true}};
        vh_post(&c->h, 0, s, 3);
    }
    uint64_t t0 = now_ms();
    vh_kick(&c->h, 0);
    vh_run_for(&c->h, 50);
    assert_int_equal(vh_used_idx(&c->h, 0), 4); /* one bucket of operations */
    /* 4 more at one per 250 ms: a second at the least. */
    assert_true(vh_run_used(&c->h, 0, N, VH_WAIT_MS));
    assert_true(now_ms() - t0 >= 950);

    /* A request larger than the byte bucket still goes (a debt), and the
     * next one waits for it to be paid. */
    uint64_t big = vh_alloc(&c->h, 128 << 10), st = status_byte(c);
    vh_run_for(&c->h, 250); /* both buckets full again */
    struct vh_seg s1[] = {{hdr(c, VIRTIO_BLK_T_IN, 0), 16, false}, {big, 128 << 10, true},
                          {st, 1, true}};
    vh_post(&c->h, 0, s1, 3);
    vh_kick(&c->h, 0);
    assert_true(vh_run_used(&c->h, 0, N + 1, VH_WAIT_MS));
    uint64_t buf = vh_alloc(&c->h, 512);
    struct vh_seg s2[] = {{hdr(c, VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, true},
                          {status_byte(c), 1, true}};
    vh_post(&c->h, 0, s2, 3);
    t0 = now_ms();
    vh_kick(&c->h, 0);
    vh_run_for(&c->h, 50);
    assert_int_equal(vh_used_idx(&c->h, 0), N + 1); /* 64 KiB of debt: 200 ms */
    /* Lifted at run time: the waiting request goes at once. */
    struct rate_limiter_config none = {0};
    assert_int_equal(virtio_blk_set_rate_limiter(d, &none), 0);
    assert_true(vh_run_used(&c->h, 0, N + 2, 100));
    assert_true(now_ms() - t0 < 190);
    /* Bad limits are refused; a device of another kind is not a disk. */
    struct rate_limiter_config bad = {.ops = {.size = 1}};
    assert_int_equal(virtio_blk_set_rate_limiter(d, &bad), -EINVAL);
}

/* Reset with I/O possibly in flight: nothing completes into the old rings
 * after it, and the device works again afterwards. */
static void test_reset_inflight(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    for (unsigned i = 0; i < 40; i++) {
        uint64_t d = vh_alloc(&c->h, 8192);
        bool w = i % 4 == 0;
        if (w)
            memset(vh_ptr(&c->h, d), 0x77, 8192);
        struct vh_seg s[] = {{hdr(c, w ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, 16u * i), 16, false},
                             {d, 8192, w ? false : true},
                             {status_byte(c), 1, true}};
        vh_post(&c->h, 0, s, 3);
    }
    vh_kick(&c->h, 0);
    /* Cached I/O may complete while the device submits it; whatever was
     * still in flight at the reset must never reach the old ring. */
    uint16_t before = vh_used_idx(&c->h, 0);
    pthread_mutex_lock(&c->h.dev->lock);
    virtio_set_status(c->h.dev, 0);
    assert_int_equal(c->h.dev->status, 0);
    pthread_mutex_unlock(&c->h.dev->lock);
    c->h.used_irqs = 0;
    vh_run_for(&c->h, 20);
    assert_int_equal(vh_used_idx(&c->h, 0), before);
    assert_int_equal(c->h.used_irqs, 0);

    assert_true(vh_driver_init(&c->h, ~0ull, 1));
    uint64_t data = vh_alloc(&c->h, 512);
    assert_int_equal(rd(c, 18, data, 512), VIRTIO_BLK_S_OK); /* one the writes left alone */
    uint8_t want[512];
    fill_pattern(want, 18 * 512, 512);
    assert_memory_equal(vh_ptr(&c->h, data), want, 512);
}

/* The image lock, open errors, and which engine runs. */
static void test_disk_open(void **state)
{
    struct ctx *c = *state;
    char err[512];
    struct disk a, b;
    set_engine(c);
    assert_int_equal(disk_open(&a, c->path, false, err, sizeof(err)), 0);
#ifdef HAVE_LIBURING
    assert_int_equal(disk_async(&a), !c->sync);
#endif
    assert_int_equal(disk_open_engine(&b, c->path, false, true, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use by another process"));
    assert_non_null(strstr(err, c->path));
    assert_int_equal(b.fd, -1);
    disk_close(&b); /* harmless after a failed open */
    assert_int_equal(disk_open(&b, c->path, true, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use by another process"));
    /* The device refuses the same way. */
    err[0] = 0;
    assert_null(create(c, c->path, false, NULL, err, sizeof(err)));
    assert_int_equal(errno, EBUSY); /* the cause, not a generic EINVAL */
    assert_non_null(strstr(err, "in use by another process"));
    disk_close(&a);
    disk_close(&a); /* twice is harmless */

    /* Readers share; a writer is refused while they hold it. */
    assert_int_equal(disk_open(&a, c->path, true, err, sizeof(err)), 0);
    assert_int_equal(disk_open(&b, c->path, true, err, sizeof(err)), 0);
    assert_int_equal(fcntl(a.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    assert_int_equal(a.size, IMG_BYTES);
    struct disk w;
    assert_int_equal(disk_open(&w, c->path, false, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use by another process"));
    /* A write never reaches a read-only disk. */
    struct iovec iov = {vh_ptr(&c->h, HEAP_GPA), 512};
    struct disk_req r = {.op = DISK_OP_WRITE, .iov = &iov, .iovcnt = 1};
    assert_int_equal(disk_queue(&a, &r), -EROFS);
    r.op = DISK_OP_DISCARD;
    r.len = 512;
    assert_int_equal(disk_queue(&a, &r), -EROFS);
    /* Out of range at the disk level too. */
    r.op = DISK_OP_READ;
    r.offset = IMG_BYTES - 256;
    assert_int_equal(disk_queue(&a, &r), -EINVAL);
    r.offset = UINT64_MAX - 100;
    assert_int_equal(disk_queue(&a, &r), -EINVAL);
    assert_int_equal(disk_inflight(&a), 0);
    disk_close(&a);
    disk_close(&b);

    assert_int_equal(disk_open(&a, "/nonexistent/arcvm.img", false, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/arcvm.img"));
    assert_int_equal(disk_open(&a, tmpdir(), true, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a regular file or block device"));
    assert_int_equal(disk_open(&a, "", true, err, sizeof(err)), -EINVAL);
}

/* Read sector @sector through the device: its first byte. */
static uint8_t first_byte(struct ctx *c, uint64_t sector)
{
    uint64_t data = vh_alloc(&c->h, 512);
    assert_int_equal(rd(c, sector, data, 512), VIRTIO_BLK_S_OK);
    return *vh_ptr(&c->h, data);
}

static uint64_t config_capacity(struct virtio_device *d)
{
    uint64_t cap;
    d->ops->config_read(d, 0, &cap, 8);
    return le64toh(cap);
}

/* PATCH /drives path_on_host: another image in place of the running one. */
static void test_swap_image(void **state)
{
    struct ctx *c = *state;
    make_dev(c, false, NULL);
    struct virtio_device *d = c->h.dev;
    char err[512], other[PATH_MAX];
    /* Twice the size, every byte 0xc3. */
    snprintf(other, sizeof(other), "%s/arcvm-test-blk2-XXXXXX", tmpdir());
    int ofd = mkstemp(other);
    assert_true(ofd >= 0);
    uint8_t *buf = malloc(2 * IMG_BYTES);
    memset(buf, 0xc3, 2 * IMG_BYTES);
    assert_int_equal(pwrite(ofd, buf, 2 * IMG_BYTES, 0), 2 * IMG_BYTES);
    free(buf);
    assert_int_equal(first_byte(c, 0), pattern(0));
    unsigned irqs = c->h.config_irqs, gen = d->config_generation;

    /* Refusals leave everything as it was, the guest uninterrupted. */
    assert_int_equal(virtio_blk_swap_image(d, "/nonexistent/arcvm.img", err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/arcvm.img"));
    struct disk holder;
    assert_int_equal(disk_open(&holder, other, true, err, sizeof(err)), 0);
    assert_int_equal(virtio_blk_swap_image(d, other, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use by another process"));
    disk_close(&holder);
    assert_int_equal(config_capacity(d), IMG_SECTORS);
    assert_int_equal(c->h.config_irqs, irqs);
    assert_int_equal(first_byte(c, 0), pattern(0));

    /* The swap, right after the driver queued reads: they complete with
     * the old image's data. (Page-cache reads finish while they are
     * submitted, so none is left in flight here for the drain; the e2e
     * section durability swaps under O_DIRECT reads.) Then the new size in
     * config space, a configuration interrupt, the new content; writes
     * land in the new file only. */
    uint16_t before = vh_used_idx(&c->h, 0);
    uint64_t bufs[40];
    for (unsigned i = 0; i < 40; i++) {
        bufs[i] = vh_alloc(&c->h, 8192);
        struct vh_seg s[] = {{hdr(c, VIRTIO_BLK_T_IN, 16u * i), 16, false},
                             {bufs[i], 8192, true},
                             {status_byte(c), 1, true}};
        vh_post(&c->h, 0, s, 3);
    }
    vh_kick(&c->h, 0);
    assert_int_equal(virtio_blk_swap_image(d, other, err, sizeof(err)), 0);
    assert_int_equal(vh_used_idx(&c->h, 0), (uint16_t)(before + 40));
    uint8_t want[8192];
    for (unsigned i = 0; i < 40; i++) {
        fill_pattern(want, 16u * i * 512, sizeof(want));
        assert_memory_equal(vh_ptr(&c->h, bufs[i]), want, sizeof(want));
    }
    assert_int_equal(config_capacity(d), 2 * IMG_SECTORS);
    assert_int_equal(c->h.config_irqs, irqs + 1);
    assert_int_equal(d->config_generation, gen + 1);
    assert_int_equal(first_byte(c, 0), 0xc3);
    assert_int_equal(first_byte(c, 2 * IMG_SECTORS - 1), 0xc3); /* beyond the old end */
    uint64_t data = vh_alloc(&c->h, 512);
    memset(vh_ptr(&c->h, data), 0x11, 512);
    assert_int_equal(wr(c, 1, data, 512), VIRTIO_BLK_S_OK);
    uint8_t got = 0;
    assert_int_equal(pread(ofd, &got, 1, 512), 1);
    assert_int_equal(got, 0x11);
    check_pattern(c, 512, 512);
    /* The old image is free: another writer may lock it now. */
    assert_int_equal(disk_open(&holder, c->path, false, err, sizeof(err)), 0);
    disk_close(&holder);

    /* The same file again after the host grew it: the lock passes over,
     * the guest sees the size. */
    assert_int_equal(ftruncate(ofd, 3 * IMG_BYTES), 0);
    assert_int_equal(virtio_blk_swap_image(d, other, err, sizeof(err)), 0);
    assert_int_equal(config_capacity(d), 3 * IMG_SECTORS);
    assert_int_equal(c->h.config_irqs, irqs + 2);
    assert_int_equal(first_byte(c, 3 * IMG_SECTORS - 1), 0);
    assert_int_equal(disk_open(&holder, other, true, err, sizeof(err)), -EBUSY); /* still ours */
    close(ofd);
    unlink(other);
}

/* The disk API on its own: a queued batch, one submit, reaped completions. */
static unsigned reaped;
static void count_done(void *opaque, struct disk_req *r)
{
    (void)opaque;
    assert_int_equal(r->res, 0);
    reaped++;
}

static void test_disk_batch(void **state)
{
    struct ctx *c = *state;
    char err[256];
    struct disk d;
    set_engine(c);
    assert_int_equal(disk_open(&d, c->path, false, err, sizeof(err)), 0);
    enum { N = 32 };
    static uint8_t bufs[N][4096];
    struct iovec iov[N];
    struct disk_req r[N];
    for (unsigned i = 0; i < N; i++) {
        iov[i] = (struct iovec){bufs[i], 4096};
        r[i] = (struct disk_req){
            .op = DISK_OP_READ, .offset = 4096ull * i, .iov = &iov[i], .iovcnt = 1};
        assert_int_equal(disk_queue(&d, &r[i]), 0);
    }
    assert_int_equal(disk_inflight(&d), N);
    disk_submit(&d);
    reaped = 0;
    /* Wait on the eventfd as the event loop would. */
    while (reaped < N) {
        struct pollfd p = {disk_event_fd(&d), POLLIN, 0};
        assert_int_equal(poll(&p, 1, VH_WAIT_MS), 1);
        disk_reap(&d, count_done, NULL);
    }
    assert_int_equal(disk_inflight(&d), 0);
    for (unsigned i = 0; i < N; i++) {
        uint8_t want[4096];
        fill_pattern(want, 4096ull * i, 4096);
        assert_memory_equal(bufs[i], want, 4096);
    }
    /* Drain with requests in flight. */
    for (unsigned i = 0; i < N; i++) {
        iov[i] = (struct iovec){bufs[i], 4096};
        r[i].iov = &iov[i];
        r[i].iovcnt = 1;
        assert_int_equal(disk_queue(&d, &r[i]), 0);
    }
    disk_submit(&d);
    reaped = 0;
    disk_drain(&d, count_done, NULL);
    assert_int_equal(reaped, N);
    assert_int_equal(disk_inflight(&d), 0);
    disk_close(&d);
}

/* Every test runs with io_uring and with the synchronous engine. */
#define BOTH(f)                                                                                    \
    {#f "/io_uring", f, setup, teardown, &mode_uring},                                             \
    {                                                                                              \
#f "/sync", f, setup, teardown, &mode_sync                                                 \
    }

int main(void)
{
    log_set_level(LOG_ERROR); /* guest-misbehaviour warnings are expected here */
    RUN(BOTH(test_features_config), BOTH(test_read), BOTH(test_write), BOTH(test_flush),
        BOTH(test_get_id), BOTH(test_discard), BOTH(test_write_zeroes),
        BOTH(test_write_zeroes_fallback), BOTH(test_readonly), BOTH(test_out_of_range),
        BOTH(test_malformed), BOTH(test_host_errors), BOTH(test_batch), BOTH(test_reset_inflight),
        BOTH(test_disk_open), BOTH(test_disk_batch), BOTH(test_rate_limiter),
        BOTH(test_swap_image));
}
