/* disk.h - raw disk images on the host: open/lock/size, and asynchronous I/O.
 *
 * A disk is a regular file or a block device holding a raw image. Requests
 * (struct disk_req, owned by the caller) are queued, submitted in batches and
 * reaped from one completion path signalled by an eventfd the caller watches
 * on its event loop. The engine is io_uring (liburing) when the build has it
 * and the kernel lets us set up a ring; otherwise every request is performed
 * synchronously at queue time and its completion delivered through the same
 * eventfd and disk_reap(), so callers have a single code path.
 *
 * Threads: a struct disk is not thread-safe. Its user serializes every call
 * (virtio-blk holds its device lock around all of them).
 */
#ifndef ARCVM_HOST_DISK_H
#define ARCVM_HOST_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Offsets and lengths the guest sees are in these units (virtio-blk, SCSI). */
#define DISK_SECTOR 512u
/* Requests in flight at once at most: the io_uring submission ring size.
 * Matches the largest virtio-blk queue, whose chains bound the requests. */
#define DISK_MAX_INFLIGHT 256u
/* Environment variable that, set to 1, forces the synchronous engine
 * (hosts whose seccomp policy or kernel rejects io_uring, and tests). */
#define DISK_ENV_NO_URING "ARCVM_DISK_NO_URING"

enum disk_op {
    DISK_OP_READ,         /* preadv into iov */
    DISK_OP_WRITE,        /* pwritev from iov */
    DISK_OP_FLUSH,        /* fdatasync */
    DISK_OP_DISCARD,      /* deallocate [offset, offset+len): may read back as anything */
    DISK_OP_WRITE_ZEROES, /* [offset, offset+len) reads back as zeros afterwards */
};

/* DISK_OP_WRITE_ZEROES may deallocate the range (punch a hole) instead of
 * writing zeros. */
#define DISK_REQ_UNMAP 1u

/* One request. The caller owns the memory and keeps it (and the iovec
 * array, which disk.c advances in place on partial transfers) untouched
 * from disk_queue() until disk_reap() hands it back. */
struct disk_req {
    /* Set by the caller. */
    uint8_t op;        /* enum disk_op */
    uint8_t flags;     /* DISK_REQ_* */
    uint64_t offset;   /* bytes */
    uint64_t len;      /* DISCARD/WRITE_ZEROES: bytes; READ/WRITE: set by disk_queue */
    struct iovec *iov; /* READ/WRITE buffers */
    unsigned iovcnt;
    /* The result, valid when disk_reap() hands the request back: 0, or
     * -errno (a short transfer is continued, never reported as success). */
    int res;
    /* Private to disk.c while the request is in flight. */
    uint8_t stage;
    uint8_t retries;
    uint64_t done;
};

struct disk_io; /* engine state, private to disk.c */

struct disk {
    int fd; /* -1 when closed */
    bool readonly;
    bool blockdev;
    uint64_t size; /* bytes, fixed at open (and disk_reopen()) */
    int efd;       /* completion eventfd, -1 when closed */
    struct disk_io *io;
};

/* Called for each finished request by disk_reap()/disk_drain(). */
typedef void (*disk_done_fn)(void *opaque, struct disk_req *r);

/* Open the image at @path: O_RDONLY when @readonly, else O_RDWR (O_CLOEXEC
 * either way); a regular file or a block device. Takes an OFD lock on the
 * whole file (a read lock when @readonly, a write lock otherwise) so that no
 * other process can write the image while we use it; sets up the I/O engine
 * (io_uring unless unavailable or DISK_ENV_NO_URING=1). Returns 0, or -errno
 * with one user-facing sentence in @err and nothing left open. */
int disk_open(struct disk *d, const char *path, bool readonly, char *err, size_t errlen);
/* The same with the engine chosen by the caller: @sync true forces the
 * synchronous engine, false uses io_uring when it is available. */
int disk_open_engine(struct disk *d, const char *path, bool readonly, bool sync, char *err,
                     size_t errlen);
/* Put the image at @path in place of @d's, which must have no request in
 * flight (drain first): opened in @d's mode (read-only or not) with @d's
 * engine, locked as disk_open() does, and completing through @d's eventfd,
 * so whoever watches it carries on. @path may name the image in use (a
 * rescan after the host resized it): its lock passes to the new open. The
 * size is the new file's. Returns 0 (the old image is closed and unlocked),
 * or -errno with one user-facing sentence in @err and @d unchanged. */
int disk_reopen(struct disk *d, const char *path, char *err, size_t errlen);
/* Wait for every request in flight (dropping their completions), then close
 * the file (releasing the lock), the ring and the eventfd. Safe to call
 * again, and after a disk_open() that failed (which leaves @d closed). */
void disk_close(struct disk *d);
/* Whether this host gives arcvm io_uring (built with liburing and a ring
 * can be set up): 0, or -errno saying why disks fall back to synchronous
 * I/O (-ENOSYS: built without liburing). */
int disk_uring_probe(void);

/* Whether requests go through io_uring (false: the synchronous engine). */
bool disk_async(const struct disk *d);
/* The eventfd that becomes readable when disk_reap() has work. */
int disk_event_fd(const struct disk *d);
/* Requests queued and not yet handed back by disk_reap(). */
unsigned disk_inflight(const struct disk *d);

/* Queue @r. READ/WRITE: len is computed from iov (at most IOV_MAX entries).
 * The range must lie within the disk. Returns 0 (the request will come back
 * through disk_reap()) or -errno with nothing queued: -EINVAL bad range or
 * iov, -EROFS a write on a read-only disk, -EBUSY DISK_MAX_INFLIGHT reached.
 * The synchronous engine performs the I/O here. */
int disk_queue(struct disk *d, struct disk_req *r);
/* Hand everything queued since the last call to the kernel: one
 * io_uring_enter() for the batch (synchronous engine: one eventfd write if
 * completions are waiting). */
void disk_submit(struct disk *d);
/* Clear the eventfd and call @fn for every finished request; continuations
 * of partial transfers are resubmitted internally. Returns the number of
 * requests handed back. Never blocks. */
unsigned disk_reap(struct disk *d, disk_done_fn fn, void *opaque);
/* Block until no request is in flight, calling @fn for each (reset and
 * teardown: after it returns no I/O touches the caller's buffers). */
void disk_drain(struct disk *d, disk_done_fn fn, void *opaque);

#endif
