/* disk.c - raw disk images: open, OFD lock, io_uring or synchronous I/O; see disk.h. */
#include "host/disk.h"

#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

/* Bytes of zeros written per step when WRITE_ZEROES has to fall back to
 * plain writes: big enough that a step costs little per byte, and the
 * source is a read-only anonymous mapping, so it is backed by the shared
 * zero page and costs no memory. */
#define ZERO_CHUNK (1u << 20)
/* EINTR/EAGAIN retries of one step before it is reported as an error: a
 * step that keeps being interrupted must not spin for ever. */
#define MAX_RETRIES 16

/* What the next system call of a request does. */
enum stage {
    ST_RW,         /* READ/WRITE: preadv/pwritev of the rest of the iovecs */
    ST_FLUSH,      /* fdatasync */
    ST_PUNCH,      /* fallocate(PUNCH_HOLE | KEEP_SIZE) */
    ST_ZERO_RANGE, /* fallocate(ZERO_RANGE | KEEP_SIZE) */
    ST_WRITE_ZERO, /* pwrite from the zero mapping */
};

struct disk_io {
#ifdef HAVE_LIBURING
    struct io_uring ring;
    bool ring_ok; /* the ring is set up and its eventfd registered */
    bool fixed;   /* the image fd is registered as fixed file 0 */
    /* Opcodes the kernel has: READV/WRITEV/FSYNC (5.1), WRITE and FALLOCATE (5.6). */
    bool op_fsync, op_fallocate, op_read, op_write, op_write1;
#endif
    unsigned inflight;              /* queued, not yet handed back */
    unsigned queued;                /* SQEs prepared since the last io_uring_enter */
    bool signalled;                 /* eventfd written for the current done list */
    struct log_ratelimit submit_rl; /* a failing io_uring_enter is retried often */
    /* Learned from the file system: skip attempts bound to fail. */
    bool no_punch_hole, no_zero_range;
    void *zeros; /* ZERO_CHUNK bytes of zeros (read-only), NULL if ro */
    /* Requests finished outside the ring (synchronous engine, or steps the
     * ring cannot do), handed back by the next disk_reap(). */
    unsigned ndone;
    struct disk_req *done[DISK_MAX_INFLIGHT];
};

/* Write "<message>[: <strerror(e)>]" to @err; returns -e (-EINVAL for e == 0). */
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    if (err && errlen) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (e)
            snprintf(err, errlen, "%s: %s", msg, strerror(e));
        else
            snprintf(err, errlen, "%s", msg);
    }
    return e ? -e : -EINVAL;
}

#ifdef HAVE_LIBURING
/* Set up the ring; false (and nothing left behind) when io_uring is not
 * usable here, in which case the synchronous engine takes over. */
static bool uring_setup(struct disk *d)
{
    struct disk_io *io = d->io;
    /* No COOP_TASKRUN/SINGLE_ISSUER: reset drains the ring from a vCPU
     * thread while the event-loop thread (the submitter) may sleep on the
     * device lock; its task work must still interrupt that sleep. */
    int r = io_uring_queue_init(DISK_MAX_INFLIGHT, &io->ring, 0);
    if (r < 0) {
        /* A warning: the disk works, but slower than the user expects. */
        log_warn("disk: io_uring unavailable (%s), using synchronous I/O", strerror(-r));
        return false;
    }
    r = io_uring_register_eventfd(&io->ring, d->efd);
    if (r < 0) {
        log_warn("disk: cannot register an eventfd with io_uring (%s), using synchronous I/O",
                 strerror(-r));
        io_uring_queue_exit(&io->ring);
        return false;
    }
    /* A fixed file saves a file-table lookup and reference per request. */
    io->fixed = io_uring_register_files(&io->ring, &d->fd, 1) == 0;
    struct io_uring_probe *p = io_uring_get_probe_ring(&io->ring);
    if (p) {
        io->op_fsync = io_uring_opcode_supported(p, IORING_OP_FSYNC);
        io->op_fallocate = io_uring_opcode_supported(p, IORING_OP_FALLOCATE);
        io->op_read = io_uring_opcode_supported(p, IORING_OP_READV);
        io->op_write = io_uring_opcode_supported(p, IORING_OP_WRITEV);
        io->op_write1 = io_uring_opcode_supported(p, IORING_OP_WRITE);
        io_uring_free_probe(p);
    } else {
        /* Kernels without IORING_REGISTER_PROBE (< 5.6) have the vectored
         * reads, writes and fsync (5.1), not fallocate (5.6). */
        io->op_fsync = io->op_read = io->op_write = true;
    }
    io->ring_ok = true;
    return true;
}
#endif

int disk_uring_probe(void)
{
#ifdef HAVE_LIBURING
    struct io_uring ring;
    int r = io_uring_queue_init(2, &ring, 0);
    if (r < 0)
        return r;
    io_uring_queue_exit(&ring);
    return 0;
#else
    return -ENOSYS;
#endif
}

/* Take (or with F_UNLCK drop) the OFD lock of image @fd: @type is F_RDLCK,
 * F_WRLCK or F_UNLCK. 0 or -errno. */
static int image_lock(int fd, short type)
{
    /* An open-file-description lock is tied to this open, not to the
     * process, so it also catches a second open inside the same process
     * (two VMs of one library user). Readers share, a writer excludes. */
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* disk_open_engine(), with the completion eventfd @efd when it is >= 0
 * (it stays the caller's if this fails) instead of a new one. */
static int open_image(struct disk *d, const char *path, bool readonly, bool sync, int efd,
                      char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->fd = d->efd = -1;
    d->readonly = readonly;
    if (!path || !*path)
        return fail(err, errlen, EINVAL, "disk image path is empty");
    int r;
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (!readonly && (e == EACCES || e == EROFS || e == EPERM))
            return fail(err, errlen, e,
                        "cannot open disk image %s for writing (add ,ro for read-only use)", path);
        return fail(err, errlen, e, "cannot open disk image %s", path);
    }
    d->fd = fd;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        r = fail(err, errlen, errno, "cannot stat disk image %s", path);
        goto out;
    }
    if (S_ISREG(st.st_mode)) {
        d->size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        uint64_t sz;
        if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
            r = fail(err, errlen, errno, "cannot get the size of block device %s", path);
            goto out;
        }
        d->size = sz;
        d->blockdev = true;
    } else {
        r = fail(err, errlen, 0, "disk image %s is not a regular file or block device", path);
        goto out;
    }
    r = image_lock(fd, readonly ? F_RDLCK : F_WRLCK);
    if (r < 0) {
        int e = -r;
        if (e == EAGAIN || e == EACCES) {
            (void)fail(err, errlen, 0,
                       readonly ? "disk image %s is in use by another process (it is open "
                                  "for writing elsewhere)"
                                : "disk image %s is in use by another process (it holds a "
                                  "lock on the image)",
                       path);
            r = -EBUSY;
            goto out;
        }
        if (e != EINVAL && e != ENOLCK && e != EOPNOTSUPP) {
            r = fail(err, errlen, e, "cannot lock disk image %s", path);
            goto out;
        }
        /* File systems without locks (some network ones): go on, unprotected. */
        log_warn("disk: cannot lock %s (%s); concurrent use is not prevented", path, strerror(e));
    }
    d->efd = efd >= 0 ? efd : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->efd < 0) {
        r = fail(err, errlen, errno, "cannot create an eventfd for disk image %s", path);
        goto out;
    }
    d->io = calloc(1, sizeof(*d->io));
    if (!d->io) {
        r = fail(err, errlen, ENOMEM, "cannot set up I/O for disk image %s", path);
        goto out;
    }
    if (!readonly) {
        void *z =
            mmap(NULL, ZERO_CHUNK, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (z == MAP_FAILED) {
            r = fail(err, errlen, errno, "cannot set up I/O for disk image %s", path);
            goto out;
        }
        d->io->zeros = z;
    }
#ifdef HAVE_LIBURING
    const char *env = getenv(DISK_ENV_NO_URING);
    if (!sync && !(env && strcmp(env, "1") == 0))
        (void)uring_setup(d);
#else
    (void)sync;
#endif
    return 0;
out:
    if (efd >= 0 && d->efd == efd)
        d->efd = -1; /* the caller's */
    disk_close(d);
    return r;
}

int disk_open_engine(struct disk *d, const char *path, bool readonly, bool sync, char *err,
                     size_t errlen)
{
    return open_image(d, path, readonly, sync, -1, err, errlen);
}

int disk_reopen(struct disk *d, const char *path, char *err, size_t errlen)
{
    if (disk_inflight(d))
        return fail(err, errlen, EBUSY, "cannot change the image of a disk with I/O in flight");
    /* The same file again (a rescan after it was resized on the host):
     * our own lock would refuse the new open, so it passes over. */
    struct stat now, st;
    bool same = d->fd >= 0 && fstat(d->fd, &now) == 0 && stat(path, &st) == 0 &&
                now.st_dev == st.st_dev && now.st_ino == st.st_ino;
    short type = d->readonly ? F_RDLCK : F_WRLCK;
    if (same)
        (void)image_lock(d->fd, F_UNLCK);
    struct disk nd;
    int r = open_image(&nd, path, d->readonly, !disk_async(d), d->efd, err, errlen);
    if (r < 0) {
        if (same && image_lock(d->fd, type) < 0)
            log_warn("disk: %s lost its lock while being reopened; concurrent use is not "
                     "prevented", path);
        return r;
    }
    d->efd = -1; /* nd's now: whoever watches it carries on */
    disk_close(d);
    *d = nd;
    return 0;
}

int disk_open(struct disk *d, const char *path, bool readonly, char *err, size_t errlen)
{
    return disk_open_engine(d, path, readonly, false, err, errlen);
}

bool disk_async(const struct disk *d)
{
#ifdef HAVE_LIBURING
    return d->io && d->io->ring_ok;
#else
    (void)d;
    return false;
#endif
}

int disk_event_fd(const struct disk *d)
{
    return d->efd;
}

unsigned disk_inflight(const struct disk *d)
{
    return d->io ? d->io->inflight : 0;
}

static void drop_done(void *opaque, struct disk_req *r)
{
    (void)opaque;
    (void)r;
}

void disk_close(struct disk *d)
{
    struct disk_io *io = d->io;
    if (io) {
        disk_drain(d, drop_done, NULL);
#ifdef HAVE_LIBURING
        if (io->ring_ok) {
            /* The kernel tears a ring down asynchronously: without this
             * its reference would keep the file (and lock) alive a while. */
            if (io->fixed)
                (void)io_uring_unregister_files(&io->ring);
            io_uring_queue_exit(&io->ring);
        }
#endif
        if (io->zeros)
            munmap(io->zeros, ZERO_CHUNK);
        free(io);
    }
    if (d->efd >= 0)
        close(d->efd);
    if (d->fd >= 0) {
        /* Unlock explicitly: the image is free for the next user now, not
         * when the last reference to the open file goes away. */
        (void)image_lock(d->fd, F_UNLCK);
        close(d->fd);
    }
    memset(d, 0, sizeof(*d));
    d->fd = d->efd = -1;
}

/* The first stage of a write-zeroes at or after @from that the file system
 * has not already refused. */
static uint8_t zero_stage(const struct disk_io *io, const struct disk_req *r, enum stage from)
{
    if (from <= ST_PUNCH && (r->flags & DISK_REQ_UNMAP) && !io->no_punch_hole)
        return ST_PUNCH;
    if (from <= ST_ZERO_RANGE && !io->no_zero_range)
        return ST_ZERO_RANGE;
    return ST_WRITE_ZERO;
}

static bool unsupported(int res)
{
    /* What fallocate modes a file system or device lacks answer with. */
    return res == -EOPNOTSUPP || res == -ENOSYS || res == -ENOTTY || res == -ENODEV ||
           res == -EINVAL;
}

/* Account @n bytes transferred by a READ/WRITE step. */
static void advance(struct disk_req *r, uint64_t n)
{
    r->done += n;
    if (r->stage != ST_RW)
        return;
    while (n && r->iovcnt) {
        if (n >= r->iov[0].iov_len) {
            n -= r->iov[0].iov_len;
            r->iov++;
            r->iovcnt--;
        } else {
            r->iov[0].iov_base = (uint8_t *)r->iov[0].iov_base + n;
            r->iov[0].iov_len -= n;
            n = 0;
        }
    }
}

/* Take in the result of one step of @r: true when the request is finished
 * (r->res set), false when another step must be issued. */
static bool step_done(struct disk *d, struct disk_req *r, long res)
{
    struct disk_io *io = d->io;
    if ((res == -EINTR || res == -EAGAIN) && r->retries < MAX_RETRIES) {
        r->retries++;
        return false;
    }
    switch (r->stage) {
    case ST_RW:
    case ST_WRITE_ZERO:
        if (res < 0)
            break;
        if (res == 0) {
            /* End of file (the image shrank under us) or a write that made
             * no progress: never report a short transfer as success. */
            res = -EIO;
            break;
        }
        advance(r, (uint64_t)res);
        if (r->done < r->len) {
            r->retries = 0;
            return false;
        }
        res = 0;
        break;
    case ST_FLUSH:
        break;
    case ST_PUNCH:
        if (res == 0 || !unsupported((int)res))
            break;
        io->no_punch_hole = true;
        if (r->op == DISK_OP_DISCARD) {
            res = -EOPNOTSUPP;
            break;
        }
        r->stage = zero_stage(io, r, ST_ZERO_RANGE);
        r->retries = 0;
        return false;
    case ST_ZERO_RANGE:
        if (res == 0 || !unsupported((int)res))
            break;
        io->no_zero_range = true;
        r->stage = ST_WRITE_ZERO;
        r->retries = 0;
        return false;
    }
    r->res = res < 0 ? (int)res : 0;
    return true;
}

/* Bytes the next zero-writing step covers. */
static size_t zero_len(const struct disk_req *r)
{
    uint64_t left = r->len - r->done;
    return left < ZERO_CHUNK ? (size_t)left : ZERO_CHUNK;
}

static int falloc_mode(const struct disk_req *r)
{
    return r->stage == ST_PUNCH ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* Perform the next step of @r with a plain system call. */
static long step_sync(struct disk *d, struct disk_req *r)
{
    off_t off = (off_t)(r->offset + r->done);
    ssize_t n;
    switch (r->stage) {
    case ST_RW:
        if (r->op == DISK_OP_READ)
            n = preadv(d->fd, r->iov, (int)r->iovcnt, off);
        else
            n = pwritev(d->fd, r->iov, (int)r->iovcnt, off);
        return n < 0 ? -errno : n;
    case ST_WRITE_ZERO:
        n = pwrite(d->fd, d->io->zeros, zero_len(r), off);
        return n < 0 ? -errno : n;
    case ST_FLUSH:
        return fdatasync(d->fd) < 0 ? -errno : 0;
    case ST_PUNCH:
        if (r->op == DISK_OP_DISCARD && d->io->no_punch_hole)
            return -EOPNOTSUPP; /* known to fail: save the system call */
        /* fall through */
    case ST_ZERO_RANGE:
        return fallocate(d->fd, falloc_mode(r), off, (off_t)r->len) < 0 ? -errno : 0;
    }
    return -EINVAL;
}

#ifdef HAVE_LIBURING
/* Put the next step of @r on the ring; false if the ring cannot take it. */
static bool step_ring(struct disk *d, struct disk_req *r)
{
    struct disk_io *io = d->io;
    if (!io->ring_ok)
        return false;
    switch (r->stage) {
    case ST_RW:
        if (!(r->op == DISK_OP_READ ? io->op_read : io->op_write))
            return false;
        break;
    case ST_WRITE_ZERO:
        if (!io->op_write1)
            return false;
        break;
    case ST_FLUSH:
        if (!io->op_fsync)
            return false;
        break;
    case ST_PUNCH:
        if (r->op == DISK_OP_DISCARD && io->no_punch_hole)
            return false;
        /* fall through */
    case ST_ZERO_RANGE:
        if (!io->op_fallocate)
            return false;
        break;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
    if (!sqe) {
        /* Cannot happen while requests are bounded by the ring size; if
         * it does, push the batch out and try once more. */
        int n = io_uring_submit(&io->ring);
        if (n > 0)
            io->queued -= (unsigned)n < io->queued ? (unsigned)n : io->queued;
        sqe = io_uring_get_sqe(&io->ring);
        if (!sqe)
            return false;
    }
    int fd = io->fixed ? 0 : d->fd;
    uint64_t off = r->offset + r->done;
    switch (r->stage) {
    case ST_RW:
        if (r->op == DISK_OP_READ)
            io_uring_prep_readv(sqe, fd, r->iov, r->iovcnt, off);
        else
            io_uring_prep_writev(sqe, fd, r->iov, r->iovcnt, off);
        break;
    case ST_WRITE_ZERO:
        io_uring_prep_write(sqe, fd, io->zeros, (unsigned)zero_len(r), off);
        break;
    case ST_FLUSH:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
    case ST_PUNCH:
    case ST_ZERO_RANGE:
        io_uring_prep_fallocate(sqe, fd, falloc_mode(r), (off_t)off, (off_t)r->len);
        break;
    }
    if (io->fixed)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, r);
    io->queued++;
    return true;
}
#endif

/* Issue the next step of @r: on the ring, or synchronously to the end of
 * the request, which then waits on the done list. */
static void issue(struct disk *d, struct disk_req *r)
{
#ifdef HAVE_LIBURING
    if (step_ring(d, r))
        return;
#endif
    while (!step_done(d, r, step_sync(d, r)))
        ;
    d->io->done[d->io->ndone++] = r;
}

int disk_queue(struct disk *d, struct disk_req *r)
{
    struct disk_io *io = d->io;
    if (!io || io->inflight >= DISK_MAX_INFLIGHT)
        return -EBUSY;
    r->done = 0;
    r->res = 0;
    r->retries = 0;
    switch (r->op) {
    case DISK_OP_READ:
    case DISK_OP_WRITE: {
        if (r->op == DISK_OP_WRITE && d->readonly)
            return -EROFS;
        if (r->iovcnt > IOV_MAX || (r->iovcnt && !r->iov))
            return -EINVAL;
        uint64_t len = 0;
        for (unsigned i = 0; i < r->iovcnt; i++) {
            if (r->iov[i].iov_len > SSIZE_MAX - len)
                return -EINVAL;
            len += r->iov[i].iov_len;
        }
        r->len = len;
        r->stage = ST_RW;
        break;
    }
    case DISK_OP_FLUSH:
        r->offset = r->len = 0;
        r->stage = ST_FLUSH;
        break;
    case DISK_OP_DISCARD:
    case DISK_OP_WRITE_ZEROES:
        if (d->readonly)
            return -EROFS;
        r->stage = r->op == DISK_OP_DISCARD ? ST_PUNCH : zero_stage(io, r, ST_PUNCH);
        break;
    default:
        return -EINVAL;
    }
    /* Overflow-safe: offset + len is never computed before both are known
     * to be within the size. */
    if (r->offset > d->size || r->len > d->size - r->offset)
        return -EINVAL;
    io->inflight++;
    if (r->len == 0 && r->op != DISK_OP_FLUSH) {
        io->done[io->ndone++] = r; /* nothing to transfer */
        return 0;
    }
    issue(d, r);
    return 0;
}

void disk_submit(struct disk *d)
{
    struct disk_io *io = d->io;
    if (!io)
        return;
#ifdef HAVE_LIBURING
    if (io->ring_ok && io->queued) {
        int n;
        unsigned tries = 0;
        do
            n = io_uring_submit(&io->ring);
        while ((n == -EINTR || n == -EAGAIN) && ++tries < MAX_RETRIES);
        if (n > 0)
            io->queued -= (unsigned)n < io->queued ? (unsigned)n : io->queued;
        else if (n < 0 && log_ratelimit_ok(&io->submit_rl))
            log_warn("disk: io_uring submission failed (%s); retrying", strerror(-n));
        /* Whatever the kernel did not take stays in the ring: have the
         * event loop come back (disk_reap submits again). */
        if (io->queued && !io->signalled) {
            uint64_t one = 1;
            (void)!write(d->efd, &one, sizeof(one));
            io->signalled = true;
        }
    }
#endif
    if (io->ndone && !io->signalled) {
        uint64_t one = 1;
        (void)!write(d->efd, &one, sizeof(one));
        io->signalled = true;
    }
}

unsigned disk_reap(struct disk *d, disk_done_fn fn, void *opaque)
{
    struct disk_io *io = d->io;
    if (!io)
        return 0;
    /* Clear the eventfd before looking: a completion that lands after we
     * looked writes it again, so none is missed. */
    uint64_t v;
    (void)!read(d->efd, &v, sizeof(v));
    io->signalled = false;
    unsigned n = 0;
    for (;;) {
        bool any = false;
#ifdef HAVE_LIBURING
        struct io_uring_cqe *cqe;
        while (io->ring_ok && io_uring_peek_cqe(&io->ring, &cqe) == 0) {
            struct disk_req *r = io_uring_cqe_get_data(cqe);
            int res = cqe->res;
            io_uring_cqe_seen(&io->ring, cqe);
            any = true;
            if (!step_done(d, r, res)) {
                issue(d, r); /* partial transfer or fallback: next step */
                continue;
            }
            io->inflight--;
            fn(opaque, r);
            n++;
        }
#endif
        while (io->ndone) {
            struct disk_req *r = io->done[--io->ndone];
            any = true;
            io->inflight--;
            fn(opaque, r);
            n++;
        }
        if (!any)
            break;
    }
    disk_submit(d);
    return n;
}

void disk_drain(struct disk *d, disk_done_fn fn, void *opaque)
{
    struct disk_io *io = d->io;
    if (!io)
        return;
    while (io->inflight) {
        disk_submit(d);
        if (disk_reap(d, fn, opaque) || !io->inflight)
            continue;
#ifdef HAVE_LIBURING
        if (io->ring_ok) {
            /* In flight in the kernel: wait. Returning earlier would let
             * the I/O land in buffers the caller is about to reuse. */
            struct io_uring_cqe *cqe;
            int r = io_uring_wait_cqe(&io->ring, &cqe);
            if (r < 0 && r != -EINTR && r != -EAGAIN)
                usleep(1000); /* e.g. -ENOMEM: try again, never give up */
            continue;
        }
#endif
        /* The synchronous engine finishes requests when they are queued,
         * so they are all on the done list and the reap above took them. */
        break;
    }
}
