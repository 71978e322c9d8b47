/* guest_mem_uffd.c - guest RAM whose pages an outside process supplies
 * (Firecracker's "Uffd" memory backend for snapshot restore; guest_mem.h).
 *
 * The RAM is anonymous memory registered with a userfaultfd: the first touch
 * of each page, by a vCPU (through KVM) or by the VMM itself, blocks until
 * the page-fault handler process, which got the userfaultfd and the layout
 * over a Unix socket, fills it (UFFDIO_COPY from the snapshot's memory
 * file, or UFFDIO_ZEROPAGE). The protocol is Firecracker's: one message, a
 * JSON array with one object per region, the userfaultfd attached as
 * SCM_RIGHTS; nothing else is ever said on the socket. tools/uffd-handler.c
 * is the handler we ship.
 *
 * The VMM keeps its own reference to the userfaultfd until release: if the
 * handler dies, faults then wait (the VM hangs, as Firecracker's does)
 * instead of the kernel quietly filling the guest's RAM with zeros, which
 * is what happens once the last reference is gone.
 */
#include "base/guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE 4096ull
/* The layout message: at most GUEST_MEM_MAX_REGIONS objects of four
 * 20-digit numbers and their names, well under this. */
#define MSG_MAX 2048
/* A handler whose listen queue stays full is stuck: give up on connect()
 * and sendmsg() after this long rather than hang the restore. */
#define SOCK_TIMEOUT_S 5

/* What userfaultfd does for us: missing-page faults (registered below), and
 * two non-cooperative events. REMOVE: MADV_DONTNEED (balloon inflation,
 * guest_mem_discard()) dropped pages, which must read as zeros when
 * touched again rather than come back from the file. UNMAP: the memory
 * was released; it tells the handler its work is over. */
#define UFFD_FEATURES (UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

/* A sentence in @err: what failed (@fmt), then why (@e, a -errno). */
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", what, strerror(-e));
    return e;
}

/* A new userfaultfd, non-blocking (the handler polls it) and close-on-exec.
 * The userfaultfd(2) system call needs vm.unprivileged_userfaultfd=1 or
 * CAP_SYS_PTRACE for faults that happen in the kernel (KVM's are; the
 * UFFD_USER_MODE_ONLY flag would not do); since Linux 6.1 /dev/userfaultfd
 * is the other way in, governed by its file permissions. */
static int uffd_open(char *err, size_t errlen)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0)
        return fd;
    int e = errno;
    if (e == EPERM || e == ENOSYS) {
        int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (dev >= 0) {
            fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
            e = errno;
            close(dev);
            if (fd >= 0)
                return fd;
        } else if (errno == EACCES || errno == EPERM) {
            e = EPERM; /* the device is there, but not for us */
        }
        /* No device: the system call's answer stands. */
    }
    if (e == EPERM || e == EACCES)
        snprintf(err, errlen,
                 "userfaultfd is not permitted for this process: allow it with "
                 "`sysctl vm.unprivileged_userfaultfd=1`, run arcvm as root (with "
                 "CAP_SYS_PTRACE), or give it read-write access to /dev/userfaultfd");
    else if (e == ENOSYS)
        snprintf(err, errlen,
                 "this kernel has no userfaultfd (CONFIG_USERFAULTFD), needed for "
                 "Uffd snapshot memory");
    else
        snprintf(err, errlen, "creating a userfaultfd failed: %s", strerror(e));
    return -e;
}

/* Connect to the handler at @path and send @msg with @ufd attached. */
static int send_layout(const char *path, const char *msg, size_t len, int ufd, char *err,
                       size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return fail(err, errlen, -ENAMETOOLONG, "the page-fault handler's socket path %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return fail(err, errlen, -errno, "creating a Unix socket failed");
    struct timeval tv = {.tv_sec = SOCK_TIMEOUT_S};
    (void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int r = 0;
    while ((r = connect(s, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        r = -errno;
        if (r == -ENOENT || r == -ECONNREFUSED)
            fail(err, errlen, r, "no page-fault handler is listening on %s (start it first)", path);
        else
            fail(err, errlen, r, "connecting to the page-fault handler at %s failed", path);
        close(s);
        return r;
    }
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &ufd, sizeof(int));
    /* The fd travels with the first byte; a stream socket may take the
     * rest in more than one go. */
    size_t off = 0;
    while (off < len) {
        ssize_t w = sendmsg(s, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = w < 0 ? -errno : -EIO;
            fail(err, errlen, r, "sending the memory layout to the page-fault handler at %s failed",
                 path);
            break;
        }
        off += (size_t)w;
        iov.iov_base = (char *)msg + off;
        iov.iov_len = len - off;
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
    }
    /* Firecracker's protocol ends here: nothing more is said either way. */
    close(s);
    return r;
}

int guest_mem_init_uffd(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n,
                        const char *sock_path, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
    /* The same layout rules as guest_mem_init(). */
    uint64_t total = 0, prev_end = 0;
    bool ok = n > 0 && n <= GUEST_MEM_MAX_REGIONS;
    for (unsigned i = 0; ok && i < n; i++) {
        const struct guest_mem_region *l = &layout[i];
        ok = l->size && !((l->gpa | l->size) & (PAGE - 1)) && l->gpa + l->size > l->gpa &&
             (!i || l->gpa >= prev_end) && total + l->size > total;
        prev_end = l->gpa + l->size;
        total += l->size;
    }
    if (!ok)
        return fail(err, errlen, -EINVAL, "bad guest memory layout");

    int ufd = uffd_open(err, errlen);
    if (ufd < 0)
        return ufd;
    if (ufd == 0) {
        /* m->uffd == 0 means "none" (a zeroed struct): keep it off fd 0. */
        int d = fcntl(ufd, F_DUPFD_CLOEXEC, 1);
        int e = -errno;
        close(ufd);
        if (d < 0)
            return fail(err, errlen, e, "duplicating the userfaultfd failed");
        ufd = d;
    }
    int r;
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURES};
    if (ioctl(ufd, UFFDIO_API, &api) < 0) {
        r = fail(err, errlen, -errno,
                 "this kernel's userfaultfd lacks the remove and unmap "
                 "events needed for Uffd snapshot memory");
        close(ufd);
        return r;
    }
    /* MAP_NORESERVE: as guest_mem_init(), RAM is committed as it is touched
     * (here: as the handler fills it). */
    void *p = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        r = fail(err, errlen, -errno, "allocating %llu MiB of guest memory failed",
                 (unsigned long long)(total >> 20));
        close(ufd);
        return r;
    }
    /* Guest RAM must never reach a core dump or a forked child. */
    (void)madvise(p, (size_t)total, MADV_DONTDUMP);
    (void)madvise(p, (size_t)total, MADV_DONTFORK);
    struct uffdio_register reg = {.range = {.start = (uintptr_t)p, .len = total},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(ufd, UFFDIO_REGISTER, &reg) < 0) {
        r = fail(err, errlen, -errno, "registering guest memory with the userfaultfd failed");
        goto undo;
    }
    /* The handler fills pages with UFFDIO_COPY: anonymous memory always
     * offers it; checked so a surprise is a sentence, not a hung guest. */
    if (!(reg.ioctls & (1ull << _UFFDIO_COPY))) {
        r = fail(err, errlen, -ENOTSUP,
                 "the userfaultfd cannot fill guest memory (no "
                 "UFFDIO_COPY)");
        goto undo;
    }

    /* Firecracker's layout: each region's host address and size, and where
     * it lies in the memory file (regions one after another from 0, as
     * guest_mem_init() lays them). Page size in bytes ("page_size", newer
     * Firecracker) and in KiB ("page_size_kib", older): a handler written
     * for either finds its field. */
    char msg[MSG_MAX];
    size_t len = 0;
    uint64_t off = 0;
    msg[len++] = '[';
    for (unsigned i = 0; i < n; i++) {
        int w = snprintf(msg + len, sizeof(msg) - len,
                         "%s{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,"
                         "\"page_size\":%llu,\"page_size_kib\":%llu}",
                         i ? "," : "", (unsigned long long)(uintptr_t)((uint8_t *)p + off),
                         (unsigned long long)layout[i].size, (unsigned long long)off, PAGE,
                         PAGE / 1024);
        /* Cannot happen with GUEST_MEM_MAX_REGIONS regions; checked anyway. */
        if (w < 0 || (size_t)w >= sizeof(msg) - len - 1) {
            r = fail(err, errlen, -E2BIG, "the memory layout message is too long");
            goto undo;
        }
        len += (size_t)w;
        off += layout[i].size;
    }
    msg[len++] = ']';
    r = send_layout(sock_path, msg, len, ufd, err, errlen);
    if (r < 0)
        goto undo;

    m->uffd = ufd;
    m->base = p;
    m->total = total;
    m->count = n;
    off = 0;
    for (unsigned i = 0; i < n; i++) {
        m->r[i] = layout[i];
        m->r[i].hva = m->base + off;
        off += layout[i].size;
    }
    return 0;

undo:
    /* Close first: once the handler holds no copy either, the unmap below
     * sends no event nobody would read. */
    close(ufd);
    munmap(p, (size_t)total);
    return r;
}
