/* uffd-handler.c - arcvm-uffd-handler: a page-fault handler for snapshots
 * restored with Uffd memory.
 *
 *   arcvm-uffd-handler SOCKET MEMFILE
 *
 * Start it first, then restore the snapshot with the Uffd memory backend and
 * SOCKET as its backend path (arcvm or Firecracker, same protocol). It
 * listens on SOCKET (the path appears only once it is ready), accepts one
 * VMM and removes SOCKET; the VMM sends one message: a JSON array of guest
 * memory regions
 *   [{"base_host_virt_addr": N, "size": N, "offset": N, "page_size": N}, ...]
 * ("page_size_kib" in older Firecracker) with its userfaultfd attached
 * (SCM_RIGHTS). From then on every first touch of a guest page waits for
 * us: we copy the page from MEMFILE (UFFDIO_COPY; "offset" is where the
 * region lies in the file), or map the zero page when the file's page is
 * all zeros or the VMM discarded it (a balloon's MADV_DONTNEED, reported as
 * UFFD_EVENT_REMOVE: such a page must come back as zeros, not as the file's
 * stale copy).
 *
 * It exits 0 when the VMM is gone: it unmapped all of its guest memory
 * (UFFD_EVENT_UNMAP, arcvm enables it) or its process exited (a pidfd of
 * the socket's peer), or on SIGINT/SIGTERM; with one summary line (faults
 * served, pages copied, zero pages). It exits 1 with one line saying why on
 * bad input (unreadable or too short MEMFILE, a message that is not the
 * expected JSON, no userfaultfd received) or when serving fails, and 2 on
 * a usage error. The VMM keeps its own userfaultfd: should this process
 * die, the VM hangs on its next fault (it does not read zeros).
 *
 * The message is untrusted: its size, its wait and its depth are bounded,
 * every region is checked against MEMFILE before a byte is copied, and the
 * descriptor must be a userfaultfd. Single-threaded: one ppoll() loop.
 * A reference for writing your own (prefetching, compressed files...).
 */
#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROG "arcvm-uffd-handler"
/* Bounds on what the VMM may send: Firecracker sends one region per memory
 * slot (a handful); the message is a few hundred bytes. */
#define MAX_REGIONS 64
#define MSG_MAX     65536
#define MAX_FDS     8 /* received at once; all but the first are refused */
/* Firecracker's docs: wait for the VMM's message with a timeout, in case it
 * dies between connect() and send. */
#define MSG_TIMEOUT_MS 10000
/* Guest pages tracked (two bits each): 4 TiB of 4 KiB pages, 128 MiB of
 * bitmaps at worst, allocated lazily by the kernel. */
#define MAX_PAGES (1ull << 30)
/* Faults whose fill must be retried (EAGAIN: the VMM is changing its
 * mappings). One per blocked VMM thread; far more means a broken VMM. */
#define MAX_PENDING 4096
#define READ_BATCH  64      /* uffd messages per read() */
#define READ_ROUNDS 16      /* read()s per loop turn: then check the peer and signals */
#define RETRY_NS    1000000 /* how soon pending faults are retried: 1 ms */
#define FIRST_LOG   1000    /* progress lines at 1000, 2000, 4000... faults */

/* Not in older headers (Linux 6.5+): a pidfd of the socket's peer. */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

struct region {
    uint64_t base, size, offset, ps; /* host address in the VMM, bytes, file offset, page size */
    uint64_t *removed;               /* a bit per page: discarded, serve zeros */
    uint64_t *gone;                  /* a bit per page: unmapped by the VMM */
};

struct handler {
    int uffd, pidfd;
    const uint8_t *file; /* MEMFILE, mapped read-only */
    uint64_t file_size;
    long sys_page;
    struct region r[MAX_REGIONS];
    unsigned n;
    uint64_t live;        /* pages not yet unmapped */
    const uint8_t *zeros; /* a zero page of the largest page size, for huge pages */
    uint64_t pending[MAX_PENDING];
    unsigned npending;
    bool mm_gone; /* a fill said the VMM's address space is gone */
    uint64_t faults, copied, zero_pages, removes, next_log;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* One write per line: the VMM's log may share our stderr. */
    dprintf(2, PROG ": %s\n", buf);
}

#define die(...)                                                                                   \
    do {                                                                                           \
        msg(__VA_ARGS__);                                                                          \
        exit(1);                                                                                   \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- bitmaps ---- */

static bool bit_get(const uint64_t *bm, uint64_t i)
{
    return bm[i / 64] >> (i % 64) & 1;
}

/* Set bits [first, end); return how many were clear. */
static uint64_t bits_set(uint64_t *bm, uint64_t first, uint64_t end)
{
    uint64_t added = 0;
    while (first < end) {
        uint64_t b = first % 64, n = end - first < 64 - b ? end - first : 64 - b;
        uint64_t mask = (n == 64 ? ~0ull : (1ull << n) - 1) << b;
        added += (uint64_t)__builtin_popcountll(mask & ~bm[first / 64]);
        bm[first / 64] |= mask;
        first += n;
    }
    return added;
}

/* ---- the VMM's message ---- */

/* Listen on @path: bound under a temporary name and linked to @path only
 * once listening, so whoever waits for @path to appear can connect at once
 * (and an existing @path is never replaced). */
static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
        die("socket path too long: %s", path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        die("socket: %s", strerror(errno));
    (void)unlink(sa.sun_path); /* our own leftover name, pid-specific */
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("cannot bind %s: %s", sa.sun_path, strerror(errno));
    int e = listen(s, 1) < 0 ? errno : link(sa.sun_path, path) < 0 ? errno : 0;
    (void)unlink(sa.sun_path);
    if (e == EEXIST)
        die("%s already exists (left by an earlier handler? remove it)", path);
    if (e)
        die("cannot listen on %s: %s", path, strerror(e));
    return s;
}

/* Wait for the VMM (SIGINT/SIGTERM stop the wait); -1 when stopped. */
static int accept_vmm(int ls, const char *path, const sigset_t *unblocked)
{
    for (;;) {
        struct pollfd p = {.fd = ls, .events = POLLIN};
        int r = ppoll(&p, 1, NULL, unblocked);
        if (stop_signal) {
            (void)unlink(path);
            return -1;
        }
        if (r < 0 && errno == EINTR)
            continue;
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
            (void)unlink(path);
            die("accept on %s: %s", path, strerror(errno));
        }
    }
}

/* A pidfd of the process at the other end of @c, to see it exit; -1 when
 * the kernel offers none (before 5.3). */
static int peer_pidfd(int c, pid_t *pid)
{
    struct ucred uc = {0};
    socklen_t l = sizeof(uc);
    *pid = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0 ? uc.pid : 0;
    int fd = -1;
    l = sizeof(fd);
    /* Race-free (Linux 6.5+): the pidfd of the connecting process itself. */
    if (getsockopt(c, SOL_SOCKET, SO_PEERPIDFD, &fd, &l) == 0 && fd >= 0)
        return fd;
    /* Else by pid: it could only be reused if the VMM already died. */
    return *pid > 0 ? (int)syscall(SYS_pidfd_open, *pid, 0) : -1;
}

/* Receive the layout (bounded in size and time) and the descriptors sent
 * with it: the first one in *ufd, *nfds counting all (extra ones closed). */
static json_t *recv_layout(int c, int *ufd, unsigned *nfds)
{
    static char buf[MSG_MAX];
    size_t len = 0;
    int64_t deadline = now_ms() + MSG_TIMEOUT_MS;
    *ufd = -1;
    *nfds = 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) == 0)
            die("no memory layout from the VMM within %d s", MSG_TIMEOUT_MS / 1000);
        union {
            char b[CMSG_SPACE(MAX_FDS * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = buf + len, .iov_len = sizeof(buf) - len};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctl.b,
                            .msg_controllen = sizeof(ctl.b)};
        ssize_t r = recvmsg(c, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            die("receiving the memory layout: %s", strerror(errno));
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (*ufd < 0)
                    *ufd = fd;
                else
                    close(fd);
                (*nfds)++;
            }
        }
        if (mh.msg_flags & MSG_CTRUNC)
            die("the VMM sent more than %d file descriptors; this handler takes one, the "
                "userfaultfd",
                MAX_FDS);
        if (r == 0 && len == 0)
            die("the VMM closed the connection without sending its memory layout");
        len += (size_t)r;
        json_error_t je;
        /* Duplicate keys would make "which size?" ambiguous: refused. */
        json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
        if (root)
            return root;
        if (json_error_code(&je) != json_error_premature_end_of_input)
            die("the VMM's memory layout is not valid JSON: %s (byte %d)", je.text, je.position);
        if (r == 0)
            die("the VMM closed the connection in the middle of its memory layout");
        if (len == sizeof(buf))
            die("the VMM's memory layout is longer than %d bytes", MSG_MAX);
    }
}

/* A non-negative integer member; false when absent. */
static bool get_u64(json_t *o, unsigned i, const char *key, uint64_t *v)
{
    json_t *j = json_object_get(o, key);
    if (!j)
        return false;
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        die("region %u: \"%s\" is not a non-negative integer", i, key);
    *v = (uint64_t)json_integer_value(j);
    return true;
}

/* Check the layout against MEMFILE and keep it in @h. */
static void parse_layout(struct handler *h, json_t *root)
{
    if (!json_is_array(root) || json_array_size(root) == 0 || json_array_size(root) > MAX_REGIONS)
        die("the VMM's memory layout is not an array of 1 to %d regions", MAX_REGIONS);
    h->n = (unsigned)json_array_size(root);
    uint64_t pages = 0, max_ps = 0;
    for (unsigned i = 0; i < h->n; i++) {
        json_t *o = json_array_get(root, i);
        struct region *r = &h->r[i];
        uint64_t kib;
        if (!json_is_object(o))
            die("region %u is not a JSON object", i);
        if (!get_u64(o, i, "base_host_virt_addr", &r->base) || !get_u64(o, i, "size", &r->size) ||
            !get_u64(o, i, "offset", &r->offset))
            die("region %u lacks \"base_host_virt_addr\", \"size\" or \"offset\"", i);
        bool has_kib = get_u64(o, i, "page_size_kib", &kib);
        if (!get_u64(o, i, "page_size", &r->ps)) {
            if (!has_kib)
                die("region %u has no \"page_size\" (or \"page_size_kib\")", i);
            r->ps = kib <= UINT64_MAX / 1024 ? kib * 1024 : 0;
        } else if (has_kib && (kib > UINT64_MAX / 1024 || kib * 1024 != r->ps)) {
            die("region %u: \"page_size\" and \"page_size_kib\" disagree", i);
        }
        if (r->ps < (uint64_t)h->sys_page || r->ps > (1ull << 30) || (r->ps & (r->ps - 1)))
            die("region %u: page size %llu is not a power of two from %ld to 1 GiB", i,
                (unsigned long long)r->ps, h->sys_page);
        if (!r->size || (r->base | r->size | r->offset) & (r->ps - 1))
            die("region %u: address, size and offset must be non-zero multiples of its "
                "page size",
                i);
        if (r->base + r->size < r->base || r->offset + r->size < r->offset)
            die("region %u: address or offset + size overflows", i);
        if (r->offset + r->size > h->file_size)
            die("MEMFILE is %llu bytes, but region %u needs %llu (offset %llu + size %llu)",
                (unsigned long long)h->file_size, i, (unsigned long long)(r->offset + r->size),
                (unsigned long long)r->offset, (unsigned long long)r->size);
        for (unsigned j = 0; j < i; j++)
            if (r->base < h->r[j].base + h->r[j].size && h->r[j].base < r->base + r->size)
                die("regions %u and %u overlap", j, i);
        uint64_t np = r->size / r->ps;
        if (np > MAX_PAGES - pages)
            die("the memory layout has more than %llu pages", MAX_PAGES);
        pages += np;
        max_ps = r->ps > max_ps ? r->ps : max_ps;
        r->removed = calloc((np + 63) / 64, 8);
        r->gone = calloc((np + 63) / 64, 8);
        if (!r->removed || !r->gone)
            die("out of memory for %llu pages", (unsigned long long)np);
    }
    h->live = pages;
    /* Huge pages have no UFFDIO_ZEROPAGE: their zeros are copied. */
    if (max_ps > (uint64_t)h->sys_page && !(h->zeros = calloc(1, max_ps)))
        die("out of memory for a zero page");
}

/* The descriptor must be a userfaultfd; polled, it must not block. */
static void check_uffd(int fd, unsigned nfds)
{
    if (nfds == 0)
        die("the VMM sent its memory layout without the userfaultfd");
    if (nfds > 1)
        die("the VMM sent %u file descriptors; this handler takes one, the userfaultfd "
            "(guest_memfd memory is not supported)",
            nfds);
    char path[64], target[64] = "";
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n >= 0)
        target[n] = 0;
    /* Without /proc there is nothing to compare against: the first ioctl
     * on it will tell. */
    if (n >= 0 && strcmp(target, "anon_inode:[userfaultfd]") != 0)
        die("the descriptor the VMM sent is not a userfaultfd but %s", target);
    int fl = fcntl(fd, F_GETFL);
    /* poll() reports a blocking userfaultfd as an error. */
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        die("cannot make the userfaultfd non-blocking: %s", strerror(errno));
}

/* ---- serving faults ---- */

static struct region *find(struct handler *h, uint64_t addr)
{
    for (unsigned i = 0; i < h->n; i++)
        if (addr >= h->r[i].base && addr - h->r[i].base < h->r[i].size)
            return &h->r[i];
    return NULL;
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
    return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

/* Fill page @pg of @r: 0 done (or nothing left to do), EAGAIN: try again
 * once the VMM's pending mapping change has been read. */
static int fill(struct handler *h, struct region *r, uint64_t pg)
{
    uint64_t dst = r->base + pg * r->ps;
    const uint8_t *src = h->file + r->offset + pg * r->ps;
    bool zero = bit_get(r->removed, pg) || all_zero(src, r->ps);
    int rc;
    if (zero && r->ps == (uint64_t)h->sys_page) {
        /* The shared zero page: no RAM until the guest writes. */
        struct uffdio_zeropage z = {.range = {.start = dst, .len = r->ps}};
        rc = ioctl(h->uffd, UFFDIO_ZEROPAGE, &z);
    } else {
        struct uffdio_copy c = {
            .dst = dst, .src = (uintptr_t)(zero ? h->zeros : src), .len = r->ps};
        rc = ioctl(h->uffd, UFFDIO_COPY, &c);
    }
    if (rc == 0) {
        if (zero)
            h->zero_pages++;
        else
            h->copied++;
        return 0;
    }
    switch (errno) {
    case EAGAIN:
        return EAGAIN;
    case EEXIST: {
        /* Someone filled it first (two threads faulted on it): the kernel
         * wakes no one after a failed fill, so wake the waiters here. */
        struct uffdio_range w = {.start = dst, .len = r->ps};
        if (ioctl(h->uffd, UFFDIO_WAKE, &w) < 0)
            die("waking the VMM at %#llx: %s", (unsigned long long)dst, strerror(errno));
        return 0;
    }
    case ENOENT: /* no longer mapped: nobody waits for it */
        return 0;
    case ESRCH: /* the VMM's address space is gone */
        h->mm_gone = true;
        return 0;
    default:
        die("filling the page at %#llx: %s", (unsigned long long)dst, strerror(errno));
    }
}

static void serve_fault(struct handler *h, uint64_t addr)
{
    struct region *r = find(h, addr);
    /* The kernel reports faults only in memory registered with this uffd:
     * outside the layout, the layout the VMM sent is wrong. */
    if (!r)
        die("page fault at %#llx, outside every region the VMM described",
            (unsigned long long)addr);
    uint64_t pg = (addr - r->base) / r->ps;
    if (bit_get(r->gone, pg) || fill(h, r, pg) != EAGAIN)
        return;
    if (h->npending == MAX_PENDING)
        die("more than %d page faults waiting for the VMM's mappings to settle", MAX_PENDING);
    h->pending[h->npending++] = addr;
}

/* Mark whole pages of [start, end) in every region, in @which bitmap. */
static uint64_t mark(struct handler *h, uint64_t start, uint64_t end, bool gone)
{
    uint64_t added = 0;
    for (unsigned i = 0; i < h->n; i++) {
        struct region *r = &h->r[i];
        uint64_t lo = start > r->base ? start : r->base;
        uint64_t hi = end < r->base + r->size ? end : r->base + r->size;
        if (lo >= hi)
            continue;
        uint64_t first = (lo - r->base + r->ps - 1) / r->ps, last = (hi - r->base) / r->ps;
        if (first < last)
            added += bits_set(gone ? r->gone : r->removed, first, last);
    }
    return added;
}

static void handle(struct handler *h, const struct uffd_msg *m)
{
    switch (m->event) {
    case UFFD_EVENT_PAGEFAULT:
        h->faults++;
        serve_fault(h, m->arg.pagefault.address);
        if (h->faults >= h->next_log) {
            msg("%llu faults served (%llu pages copied, %llu zero pages)",
                (unsigned long long)h->faults, (unsigned long long)h->copied,
                (unsigned long long)h->zero_pages);
            h->next_log *= 2;
        }
        break;
    case UFFD_EVENT_REMOVE:
        /* Dropped by the VMM (balloon): zeros when touched again. */
        h->removes++;
        mark(h, m->arg.remove.start, m->arg.remove.end, false);
        break;
    case UFFD_EVENT_UNMAP: {
        uint64_t n = mark(h, m->arg.remove.start, m->arg.remove.end, true);
        h->live -= n < h->live ? n : h->live;
        break;
    }
    case UFFD_EVENT_FORK:
        /* Not requested by arcvm or Firecracker: refuse the child's uffd. */
        close((int)m->arg.fork.ufd);
        break;
    case UFFD_EVENT_REMAP:
        die("the VMM moved its guest memory (mremap), which this handler cannot follow");
    default:
        die("unknown userfaultfd event %#x", m->event);
    }
}

/* Read and handle what is queued on the uffd (a bounded amount). */
static void drain(struct handler *h)
{
    struct uffd_msg m[READ_BATCH];
    for (int round = 0; round < READ_ROUNDS; round++) {
        ssize_t n = read(h->uffd, m, sizeof(m));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0)
            die("reading the userfaultfd: %s", strerror(errno));
        if (n == 0) {
            h->mm_gone = true;
            return;
        }
        if ((size_t)n % sizeof(m[0]))
            die("short read from the userfaultfd");
        for (size_t i = 0; i < (size_t)n / sizeof(m[0]); i++)
            handle(h, &m[i]);
    }
}

static void retry_pending(struct handler *h)
{
    unsigned n = h->npending;
    h->npending = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t addr = h->pending[i];
        struct region *r = find(h, addr); /* found before: regions never change */
        uint64_t pg = (addr - r->base) / r->ps;
        if (!bit_get(r->gone, pg) && fill(h, r, pg) == EAGAIN)
            h->pending[h->npending++] = addr;
    }
}

/* Serve until the VMM is gone; say why. */
static const char *serve(struct handler *h, const sigset_t *unblocked)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = h->uffd, .events = POLLIN},
                              {.fd = h->pidfd, .events = POLLIN}};
        struct timespec retry = {.tv_nsec = RETRY_NS};
        int r = ppoll(p, h->pidfd >= 0 ? 2 : 1, h->npending ? &retry : NULL, unblocked);
        if (r < 0 && errno != EINTR)
            die("ppoll: %s", strerror(errno));
        if (stop_signal)
            return stop_signal == SIGINT ? "interrupted" : "terminated";
        if (r > 0 && p[0].revents & (POLLERR | POLLNVAL))
            die("the userfaultfd reports an error");
        drain(h);
        retry_pending(h);
        if (h->live == 0)
            return "the VMM released its guest memory";
        if (h->mm_gone || (r > 0 && p[0].revents & POLLHUP))
            return "the VMM's address space is gone";
        if (r > 0 && h->pidfd >= 0 && p[1].revents & POLLIN)
            return "the VMM exited";
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: %s SOCKET MEMFILE\n"
                "Serve the guest memory of a snapshot restored with the Uffd backend from\n"
                "MEMFILE, to the one VMM that connects to the Unix socket SOCKET.\n",
                PROG);
        return 2;
    }
    const char *sock = argv[1], *mem = argv[2];
    struct handler h = {
        .uffd = -1, .pidfd = -1, .next_log = FIRST_LOG, .sys_page = sysconf(_SC_PAGESIZE)};

    int mfd = open(mem, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (mfd < 0 || fstat(mfd, &st) < 0)
        die("cannot open MEMFILE %s: %s", mem, strerror(errno));
    if (!S_ISREG(st.st_mode))
        die("MEMFILE %s is not a regular file", mem);
    h.file_size = (uint64_t)st.st_size;
    if (h.file_size) {
        void *p = mmap(NULL, h.file_size, PROT_READ, MAP_PRIVATE, mfd, 0);
        if (p == MAP_FAILED)
            die("cannot map MEMFILE %s: %s", mem, strerror(errno));
        h.file = p;
    }
    close(mfd);

    /* SIGINT/SIGTERM are taken only inside ppoll(): no race with the loop. */
    sigset_t block, unblocked;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &unblocked);
    sigdelset(&unblocked, SIGINT);
    sigdelset(&unblocked, SIGTERM);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int ls = listen_on(sock);
    int c = accept_vmm(ls, sock, &unblocked);
    if (c < 0) {
        msg("stopped before a VMM connected");
        return 0;
    }
    /* One VMM per handler: nobody else may connect. */
    (void)unlink(sock);
    close(ls);

    pid_t pid;
    h.pidfd = peer_pidfd(c, &pid);
    if (h.pidfd < 0)
        msg("cannot watch VMM process %d (no pidfd): stop this handler when it is gone", (int)pid);
    unsigned nfds;
    json_t *root = recv_layout(c, &h.uffd, &nfds);
    parse_layout(&h, root);
    json_decref(root);
    check_uffd(h.uffd, nfds);
    /* Firecracker says nothing more on the socket; some versions keep it
     * open, which tells us nothing either way. */
    close(c);

    uint64_t total = 0;
    for (unsigned i = 0; i < h.n; i++)
        total += h.r[i].size;
    msg("serving %u region(s), %llu MiB, for VMM process %d", h.n,
        (unsigned long long)(total >> 20), (int)pid);
    const char *why = serve(&h, &unblocked);
    msg("%s: %llu faults served, %llu pages copied, %llu zero pages (%llu removes)", why,
        (unsigned long long)h.faults, (unsigned long long)h.copied,
        (unsigned long long)h.zero_pages, (unsigned long long)h.removes);
    for (unsigned i = 0; i < h.n; i++) {
        free(h.r[i].removed);
        free(h.r[i].gone);
    }
    free((void *)h.zeros);
    if (h.file)
        munmap((void *)h.file, h.file_size);
    close(h.uffd);
    if (h.pidfd >= 0)
        close(h.pidfd);
    return 0;
}
