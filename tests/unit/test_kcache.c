/* test_kcache.c - unpacking kernel payloads on the host (xz, gzip; hostile
 * streams) and the unpacked-kernel cache; then the real thing: the
 * installed Debian bzImage unpacks to an ELF with a PVH entry. */
#include "unit.h"

#include "arch/x86/boot.h"
#include "arch/x86/pvh.h"
#include "host/kcache.h"
#include "host/unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Compressible but not trivial test data. */
static uint8_t *sample(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245 + 12345;
        p[i] = (i % 64 < 48) ? (uint8_t)(i / 64) : (uint8_t)(x >> 24);
    }
    return p;
}

/* As the kernel's build does: the stream, then the unpacked size (LE32). */
static uint8_t *xz_of(const uint8_t *in, size_t n, size_t *outlen)
{
    size_t cap = n + n / 2 + 4096, pos = 0;
    uint8_t *out = malloc(cap + 4);
    assert_non_null(out);
    assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, n, out, &pos, cap),
                     LZMA_OK);
    uint32_t sz = (uint32_t)n;
    memcpy(out + pos, &sz, 4);
    *outlen = pos + 4;
    return out;
}

static uint8_t *gz_of(const uint8_t *in, size_t n, size_t *outlen)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&s, n);
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    s.next_in = (Bytef *)(uintptr_t)in;
    s.avail_in = (uInt)n;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    *outlen = s.total_out;
    deflateEnd(&s);
    return out;
}

typedef uint8_t *(*packer)(const uint8_t *, size_t, size_t *);

static void round_trip(packer pack)
{
    char err[256] = "";
    size_t n = 3 << 20, clen, olen;
    uint8_t *data = sample(n), *c = pack(data, n, &clen), *out;
    assert_int_equal(unpack(c, clen, UNPACK_MAX, &out, &olen, err, sizeof(err)), 0);
    assert_int_equal(olen, n);
    assert_memory_equal(out, data, n);
    free(out);

    /* Hostile or broken streams fail cleanly with a reason. */
    err[0] = 0;
    assert_int_equal(unpack(c, clen / 2, UNPACK_MAX, &out, &olen, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "truncated"));
    uint8_t *bad = malloc(clen);
    memcpy(bad, c, clen);
    for (size_t i = 64; i < clen - 64; i += 997)
        bad[i] ^= 0x5a;
    err[0] = 0;
    assert_int_equal(unpack(bad, clen, UNPACK_MAX, &out, &olen, err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) > 0);
    free(bad);
    /* More output than allowed: refused, whatever the stream claims. */
    err[0] = 0;
    assert_int_equal(unpack(c, clen, 1 << 20, &out, &olen, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, "more than 1 MiB"));
    /* Just enough. */
    assert_int_equal(unpack(c, clen, n, &out, &olen, err, sizeof(err)), 0);
    assert_int_equal(olen, n);
    free(out);
    free(c);
    free(data);
}

static void test_unpack_xz(void **state)
{
    (void)state;
    round_trip(xz_of);
}

static void test_unpack_gzip(void **state)
{
    (void)state;
    round_trip(gz_of);
}

static void test_unpack_unknown(void **state)
{
    (void)state;
    char err[64];
    uint8_t *out;
    size_t olen;
    static const uint8_t zstd[] = {0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0};
    assert_int_equal(unpack(zstd, sizeof(zstd), UNPACK_MAX, &out, &olen, err, sizeof(err)),
                     -ENOTSUP);
    assert_int_equal(unpack(zstd, 0, UNPACK_MAX, &out, &olen, err, sizeof(err)), -ENOTSUP);
    static const uint8_t xz_magic_only[] = {0xfd, '7', 'z', 'X', 'Z', 0};
    assert_int_equal(
        unpack(xz_magic_only, sizeof(xz_magic_only), UNPACK_MAX, &out, &olen, err, sizeof(err)),
        -EINVAL);
}

/* ---- the cache --------------------------------------------------------- */

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/arcvm-kcache.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static unsigned count_entries(const char *d)
{
    DIR *dd = opendir(d);
    assert_non_null(dd);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        n += e->d_name[0] != '.';
    closedir(dd);
    return n;
}

static void test_cache(void **state)
{
    (void)state;
    char sub[256], path[KCACHE_PATH_MAX], path2[KCACHE_PATH_MAX], err[256];
    snprintf(sub, sizeof(sub), "%s/a/b", dir); /* created on first store */
    struct stat st = {.st_dev = 1, .st_ino = 2, .st_size = 3};
    st.st_mtim.tv_sec = 100;
    assert_int_equal(kcache_path(sub, &st, path, sizeof(path)), 0);
    uint8_t *map;
    size_t len;
    assert_int_equal(kcache_map(path, &map, &len), -ENOENT);
    assert_int_equal(kcache_store(path, "unpacked", 8, err, sizeof(err)), 0);
    assert_int_equal(kcache_map(path, &map, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(map, "unpacked", 8);
    munmap(map, len);
    struct stat ds;
    assert_int_equal(stat(sub, &ds), 0);
    assert_int_equal(ds.st_mode & 0777, 0700);

    /* The same file rewritten in place (same inode, new times): a new name. */
    st.st_mtim.tv_nsec = 1;
    assert_int_equal(kcache_path(sub, &st, path2, sizeof(path2)), 0);
    assert_string_not_equal(path, path2);
    assert_int_equal(kcache_map(path2, &map, &len), -ENOENT);

    /* A bad entry is dropped. */
    kcache_drop(path);
    assert_int_equal(kcache_map(path, &map, &len), -ENOENT);

    /* Only the most recently used KCACHE_KEEP stay. */
    for (unsigned i = 0; i < KCACHE_KEEP + 3; i++) {
        st.st_ino = 1000 + i;
        assert_int_equal(kcache_path(sub, &st, path, sizeof(path)), 0);
        assert_int_equal(kcache_store(path, "x", 1, err, sizeof(err)), 0);
        /* Distinct ages, oldest first. */
        struct timespec t[2] = {{.tv_sec = 1000 + i}, {.tv_sec = 1000 + i}};
        assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
    }
    assert_int_equal(count_entries(sub), KCACHE_KEEP);
    assert_int_equal(kcache_map(path, &map, &len), 0); /* the newest is there */
    munmap(map, len);
    st.st_ino = 1000;
    assert_int_equal(kcache_path(sub, &st, path, sizeof(path)), 0);
    assert_int_equal(kcache_map(path, &map, &len), -ENOENT); /* the oldest is gone */

    /* A directory that cannot be made: an error with a sentence, no crash. */
    char file[128];
    snprintf(file, sizeof(file), "%s/plainfile", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(sub, sizeof(sub), "%s/sub", file);
    assert_int_equal(kcache_path(sub, &st, path, sizeof(path)), 0);
    err[0] = 0;
    assert_true(kcache_store(path, "x", 1, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "kernel cache directory"));
}

/* kcache_usable_fn for the tests: accepts data that starts with "KRNL",
 * counting its calls in @arg. */
static int starts_krnl(const uint8_t *data, size_t len, void *arg, char *why, size_t whylen)
{
    ++*(unsigned *)arg;
    if (len >= 4 && memcmp(data, "KRNL", 4) == 0)
        return 0;
    snprintf(why, whylen, "no KRNL magic");
    return -1;
}

/* The whole path both machines take: miss (unpack and store), hit (the
 * stored entry, mapped), a bad entry replaced, no cache, bad input. */
static void test_unpacked(void **state)
{
    (void)state;
    size_t n = 1 << 20, clen;
    uint8_t *data = sample(n);
    memcpy(data, "KRNL", 4);
    uint8_t *c = gz_of(data, n, &clen);
    struct stat st = {.st_dev = 7, .st_ino = 8, .st_size = (off_t)clen};
    char why[256] = "", path[KCACHE_PATH_MAX];
    struct kcache_kernel k;
    unsigned calls = 0;

    assert_int_equal(kcache_unpacked(dir, &st, c, clen, starts_krnl, &calls, &k, why, sizeof(why)),
                     0);
    assert_false(k.mapped); /* unpacked now */
    assert_int_equal(k.len, n);
    assert_memory_equal(k.data, data, n);
    kcache_kernel_free(&k);
    assert_null(k.data);
    assert_int_equal(kcache_path(dir, &st, path, sizeof(path)), 0);
    assert_int_equal(access(path, R_OK), 0); /* stored */

    calls = 0;
    assert_int_equal(kcache_unpacked(dir, &st, c, clen, starts_krnl, &calls, &k, why, sizeof(why)),
                     0);
    assert_true(k.mapped); /* from the cache */
    assert_int_equal(calls, 1);
    assert_memory_equal(k.data, data, n);
    kcache_kernel_free(&k);

    /* An entry the caller cannot use is dropped and replaced. */
    char err[256];
    assert_int_equal(kcache_store(path, "garbage", 7, err, sizeof(err)), 0);
    calls = 0;
    assert_int_equal(kcache_unpacked(dir, &st, c, clen, starts_krnl, &calls, &k, why, sizeof(why)),
                     0);
    assert_false(k.mapped);
    assert_int_equal(calls, 2); /* the bad entry, then the fresh unpack */
    kcache_kernel_free(&k);
    uint8_t *map;
    size_t len;
    assert_int_equal(kcache_map(path, &map, &len), 0);
    assert_int_equal(len, n);
    munmap(map, len);

    /* No cache directory: unpacked, nothing stored. */
    struct stat st2 = st;
    st2.st_ino = 9;
    assert_int_equal(kcache_unpacked(NULL, &st2, c, clen, starts_krnl, &calls, &k, why, sizeof(why)),
                     0);
    assert_false(k.mapped);
    kcache_kernel_free(&k);
    assert_int_equal(count_entries(dir), 1);

    /* Unpacks to something unusable: -ENOEXEC with the reason, not stored. */
    data[0] = 'X';
    uint8_t *c2 = gz_of(data, n, &clen);
    assert_int_equal(kcache_unpacked(dir, &st2, c2, clen, starts_krnl, &calls, &k, why, sizeof(why)),
                     -ENOEXEC);
    assert_non_null(strstr(why, "KRNL"));
    assert_null(k.data);
    assert_int_equal(count_entries(dir), 1);
    /* Not compressed at all; a truncated stream. */
    assert_int_equal(kcache_unpacked(dir, &st2, data, n, starts_krnl, &calls, &k, why, sizeof(why)),
                     -ENOTSUP);
    assert_int_equal(
        kcache_unpacked(dir, &st2, c2, clen / 2, starts_krnl, &calls, &k, why, sizeof(why)), -EINVAL);
    assert_int_equal(count_entries(dir), 1);
    free(c2);
    free(c);
    free(data);
}

/* The kernel that the tests boot: what arcvm's cache would hold for it is a
 * bootable PVH ELF. */
static void test_debian_kernel(void **state)
{
    (void)state;
    glob_t g;
    if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        fail_msg("no /boot/vmlinuz-*: install linux-image-amd64 (scripts/install-deps.sh)");
    const char *kpath = g.gl_pathv[g.gl_pathc - 1];
    int fd = open(kpath, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_true(img != MAP_FAILED);
    close(fd);
    char err[256] = "";
    struct bzimage bz;
    assert_int_equal(x86_bzimage_parse(img, (size_t)st.st_size, &bz, err, sizeof(err)), 0);
    assert_true(bz.payload_length > 0);
    assert_true(bz.payload_offset + bz.payload_length <= (uint64_t)st.st_size);
    uint8_t *elf;
    size_t len;
    assert_int_equal(
        unpack(img + bz.payload_offset, bz.payload_length, UNPACK_MAX, &elf, &len, err, sizeof(err)),
        0);
    struct elf_kernel k;
    assert_int_equal(x86_elf_parse(elf, len, &k, err, sizeof(err)), 0);
    assert_true(k.has_pvh);
    free(elf);
    munmap(img, (size_t)st.st_size);
    globfree(&g);
}

int main(void)
{
    RUN(cmocka_unit_test(test_unpack_xz), cmocka_unit_test(test_unpack_gzip),
        cmocka_unit_test(test_unpack_unknown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpacked, setup, teardown),
        cmocka_unit_test(test_debian_kernel));
}
