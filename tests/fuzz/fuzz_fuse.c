/* fuzz_fuse.c - libFuzzer target for virtio-fs's FUSE server (host/fuse*.c):
 * a sequence of guest requests, each with arbitrary header fields, argument
 * bytes and buffer layout, served on a fresh share in a temporary
 * directory, so that inodes, lookup counts and open handles carry from one
 * request to the next.
 *
 * Input: one byte of set-up, then requests until the input ends (at most
 * MAX_REQS):
 *   set-up  bit 0 read-only share, bit 1 no INIT first (else a valid one is
 *           sent before the input's requests), bits 2-3 the limits: at most
 *           4 << k inodes and 2 << k open handles
 *   request flags (bit 0: a raw u32 header length follows, else the true
 *           length; bit 1: a raw u64 unique follows, else a counter; bits
 *           2-3: the request in 1 to 4 buffers; bit 4: the reply in 2
 *           buffers), opcode (mod 52), nodeid, uid/gid (0 or 1000+n), u16
 *           argument length, then the optional raw fields, then the
 *           argument bytes.
 *   out     one byte: the reply room, from a table (none, short of a
 *           header, a header, small, a page, 64 KiB + header, 1 MiB +
 *           header).
 * Every buffer is its own allocation, so ASan sees any access past one.
 *
 * Checked after every request: the reply fits the room offered; its header
 * says its length and echoes the unique; an error reply is a header alone
 * with -4095 <= error < 0; FORGET, BATCH_FORGET and INTERRUPT get no reply;
 * a request that has a header and room for a reply header gets a reply;
 * the inodes and handles held stay within the share's limits. After the
 * input: nothing beside the share changed (a sibling directory and its
 * file, and the share's parent holds only the two), and destroying the
 * server leaves no descriptor open.
 */
#include "base/log.h"
#include "host/fuse.h"
#include "fuzz_check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REQS  64
#define MAX_PIECE 4

static char base[64], share[96], outside[96], secret[128];
static const char SECRET[] = "outside the share\n";
/* FUZZ_FUSE_TRACE=1: each reply on stderr, to read what an input does. */
static bool trace;

static void write_file(const char *path, const char *text, size_t n)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, text, n) == (ssize_t)n);
    close(fd);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st, (void)f;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static int chmod_dir(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type == FTW_D || type == FTW_DNR)
        chmod(path, 0700);
    return 0;
}

/* The share as every input starts with it: a file, a directory with a file,
 * a symlink inside, symlinks leading out (to a file, and dangling ones
 * relative and absolute), a fifo (never to be opened). */
static void share_reset(void)
{
    /* A directory the guest made unreadable still goes (as non-root). */
    nftw(share, chmod_dir, 16, FTW_PHYS);
    if (nftw(share, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        CHECK(!"cannot clear the share");
    CHECK(mkdir(share, 0755) == 0);
    char p[192], data[8192];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    snprintf(p, sizeof(p), "%s/file", share);
    write_file(p, data, sizeof(data));
    snprintf(p, sizeof(p), "%s/dir", share);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/dir/inner", share);
    write_file(p, "inner\n", 6);
    snprintf(p, sizeof(p), "%s/link", share);
    CHECK(symlink("file", p) == 0);
    snprintf(p, sizeof(p), "%s/escape", share);
    CHECK(symlink("../outside/secret", p) == 0);
    /* Dangling ones: an O_CREAT or a mkdir through them would land outside. */
    snprintf(p, sizeof(p), "%s/dangle", share);
    CHECK(symlink("../outside/created", p) == 0);
    char target[160];
    snprintf(target, sizeof(target), "%s/made", base);
    snprintf(p, sizeof(p), "%s/abs", share);
    CHECK(symlink(target, p) == 0);
    snprintf(p, sizeof(p), "%s/fifo", share);
    CHECK(mkfifo(p, 0644) == 0);
}

/* The share lives on the host's disk: files the guest grows stay small
 * (RLIMIT_FSIZE: EFBIG instead of SIGXFSZ), and FALLOCATE, which that
 * limit does not bound with FALLOC_FL_KEEP_SIZE, is refused past it too
 * (the server's call is linked to this wrapper: -Wl,--wrap=fallocate). */
#define FILE_MAX (16u << 20)
int __real_fallocate(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
    if (off < 0 || len < 0 || off > (off_t)FILE_MAX || len > (off_t)FILE_MAX - off) {
        errno = EFBIG;
        return -1;
    }
    return __real_fallocate(fd, mode, off, len);
}

static void setup_once(void)
{
    log_set_level(LOG_ERROR);
    trace = getenv("FUZZ_FUSE_TRACE") != NULL;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit fsize = {FILE_MAX, FILE_MAX};
    CHECK(setrlimit(RLIMIT_FSIZE, &fsize) == 0);
    CHECK(fuse_thread_init() == 0);
    snprintf(base, sizeof(base), "/tmp/arcvm-fuzz-fuse-XXXXXX");
    CHECK(mkdtemp(base));
    snprintf(share, sizeof(share), "%s/share", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    snprintf(secret, sizeof(secret), "%s/secret", outside);
    CHECK(mkdir(outside, 0755) == 0);
    write_file(secret, SECRET, sizeof(SECRET) - 1);
}

/* Entries of @dir (without . and ..), or -1. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Nothing beside the share was created, removed or changed. */
static void check_outside(void)
{
    CHECK(count_entries(base) == 2);
    CHECK(count_entries(outside) == 1);
    struct stat st;
    CHECK(lstat(share, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(lstat(secret, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 &&
          st.st_size == (off_t)sizeof(SECRET) - 1 && st.st_nlink == 1);
    char buf[64];
    int fd = open(secret, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    CHECK(n == (ssize_t)sizeof(SECRET) - 1 && !memcmp(buf, SECRET, (size_t)n));
}

static int count_fds(void)
{
    return count_entries("/proc/self/fd");
}

/* ---- input ----------------------------------------------------------------- */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint64_t take(struct in *in, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes && in->n; i++, in->p++, in->n--)
        v |= (uint64_t)*in->p << (8 * i);
    return v;
}

static const size_t out_room[] = {0, 15, 16, 64, 4096, 65536 + 16, (1u << 20) + 16, 300};

/* Serve one request laid out as @hdr then @arg (@alen bytes) in @npieces
 * buffers, with @room reply bytes in @nout buffers; check the reply. */
static void serve(struct fuse_server *s, const struct fuse_in_header *hdr, const uint8_t *arg,
                  size_t alen, unsigned npieces, size_t room, unsigned nout)
{
    size_t total = sizeof(*hdr) + alen;
    uint8_t *flat = malloc(total);
    CHECK(flat);
    memcpy(flat, hdr, sizeof(*hdr));
    if (alen)
        memcpy(flat + sizeof(*hdr), arg, alen);
    /* Cut points spread over the request, some inside the header. */
    struct iovec in[MAX_PIECE], out[2];
    size_t off = 0;
    for (unsigned i = 0; i < npieces; i++) {
        size_t len = i + 1 == npieces ? total - off : (total * (i + 1) / npieces) - off;
        in[i].iov_base = malloc(len ? len : 1);
        CHECK(in[i].iov_base);
        memcpy(in[i].iov_base, flat + off, len);
        in[i].iov_len = len;
        off += len;
    }
    size_t first = nout == 2 ? room / 3 : room;
    size_t lens[2] = {first, room - first};
    for (unsigned i = 0; i < nout; i++) {
        out[i].iov_base = malloc(lens[i] ? lens[i] : 1);
        CHECK(out[i].iov_base);
        out[i].iov_len = lens[i];
    }

    size_t n = fuse_server_handle(s, in, npieces, out, nout);

    uint32_t op = hdr->opcode;
    bool no_reply = op == FUSE_FORGET || op == FUSE_BATCH_FORGET || op == FUSE_INTERRUPT;
    CHECK(n <= room);
    if (no_reply)
        CHECK(n == 0);
    else if (room >= sizeof(struct fuse_out_header))
        CHECK(n >= sizeof(struct fuse_out_header));
    if (n) {
        struct fuse_out_header oh;
        uint8_t *o = (uint8_t *)&oh;
        size_t k = lens[0] < sizeof(oh) ? lens[0] : sizeof(oh);
        memcpy(o, out[0].iov_base, k);
        if (k < sizeof(oh))
            memcpy(o + k, out[1].iov_base, sizeof(oh) - k);
        CHECK(oh.len == n);
        CHECK(oh.unique == hdr->unique);
        CHECK(oh.error <= 0 && oh.error >= -4095);
        if (oh.error)
            CHECK(n == sizeof(oh));
        if (trace)
            fprintf(stderr, "op %u node %llu: error %d, %zu bytes\n", op,
                    (unsigned long long)hdr->nodeid, oh.error, n);
    }
    for (unsigned i = 0; i < npieces; i++)
        free(in[i].iov_base);
    for (unsigned i = 0; i < nout; i++)
        free(out[i].iov_base);
    free(flat);
}

static void send_init(struct fuse_server *s)
{
    struct fuse_in_header h = {.len = sizeof(h) + sizeof(struct fuse_init_in),
                               .opcode = FUSE_INIT, .unique = 1};
    struct fuse_init_in init = {.major = 7, .minor = 38, .max_readahead = 1 << 17,
                                .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES};
    serve(s, &h, (const uint8_t *)&init, sizeof(init), 1, 4096, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fds_idle = -1;
    if (!base[0])
        setup_once();
    if (size < 1)
        return 0;
    struct in in = {data + 1, size - 1};
    uint8_t setup = data[0];
    share_reset();
    if (fds_idle < 0)
        fds_idle = count_fds();

    struct fuse_server_config cfg = {.dir = share, .readonly = setup & 1,
                                     .max_inodes = 4u << ((setup >> 2) & 3),
                                     .max_handles = 2u << ((setup >> 2) & 3)};
    struct fuse_server *s;
    char err[256];
    CHECK(fuse_server_create(&s, &cfg, err, sizeof(err)) == 0);
    if (!(setup & 2))
        send_init(s);

    uint64_t unique = 2;
    for (int k = 0; k < MAX_REQS && in.n; k++) {
        uint8_t flags = (uint8_t)take(&in, 1);
        struct fuse_in_header h = {0};
        h.opcode = (uint32_t)(take(&in, 1) % 52);
        h.nodeid = take(&in, 1);
        uint8_t who = (uint8_t)take(&in, 1);
        h.uid = h.gid = who ? 1000u + who : 0;
        h.pid = 4242;
        size_t alen = (size_t)take(&in, 2);
        uint32_t raw_len = flags & 1 ? (uint32_t)take(&in, 4) : 0;
        h.unique = flags & 2 ? take(&in, 8) : unique++;
        size_t room = out_room[take(&in, 1) % (sizeof(out_room) / sizeof(out_room[0]))];
        if (alen > in.n)
            alen = in.n;
        h.len = flags & 1 ? raw_len : (uint32_t)(sizeof(h) + alen);
        serve(s, &h, in.p, alen, 1 + ((flags >> 2) & 3), room, 1 + ((flags >> 4) & 1));
        in.p += alen, in.n -= alen;
        CHECK(fuse_server_inodes(s) <= cfg.max_inodes);
        CHECK(fuse_server_handles(s) <= cfg.max_handles);
    }
    check_outside();
    fuse_server_destroy(s);
    CHECK(count_fds() == fds_idle);
    return 0;
}
