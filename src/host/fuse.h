/* fuse.h - an in-process FUSE server for one shared host directory: the
 * back end of virtio-fs (virtio/fs.c), which hands it each request as the
 * guest's readable and writable buffers.
 *
 * Safe by construction against a hostile guest (docs/security.md,
 * "virtio-fs"): every inode the guest knows is an O_PATH descriptor; every
 * name is one component (no '/', not "." or "..", not empty, at most
 * NAME_MAX) resolved relative to its parent's descriptor with openat2()
 * and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so no symlink, ".." or rename
 * race leads out of the share; only regular files and directories are ever
 * opened for I/O (never devices, fifos or sockets); lookup counts are the
 * server's own (a FORGET never takes one below zero); the inodes and open
 * handles of a share are capped (ENFILE / EMFILE to the guest, never host
 * exhaustion); a read-only share refuses every change (EROFS) itself.
 *
 * Threads: one server is used by one thread at a time (virtio-fs's
 * worker); it keeps no global state, so several shares may run at once.
 */
#ifndef ARCVM_HOST_FUSE_H
#define ARCVM_HOST_FUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct fuse_server;

struct fuse_server_config {
    const char *dir;      /* the shared directory (the user's path, may be a symlink) */
    bool readonly;        /* refuse every change with EROFS */
    unsigned max_inodes;  /* inodes the guest may hold at once; 0: fuse_default_limits() */
    unsigned max_handles; /* open files and directories at once; 0: the same */
};

/* Largest WRITE and READ payload, announced to the guest at INIT (256
 * pages: a request then fits a 1024-entry queue without indirect
 * descriptors). */
#define FUSE_SERVER_MAX_RW (1u << 20)

/* Per-share limits for @nshares shares in this process, from the open-file
 * limit (raised to its hard maximum first): together they leave room for
 * the rest of arcvm. */
void fuse_default_limits(unsigned nshares, unsigned *max_inodes, unsigned *max_handles);

/* Open @cfg->dir (a directory) and /proc/self/fd (through which an inode's
 * O_PATH descriptor is reopened for I/O). 0, or -errno with one sentence
 * in @err. */
int fuse_server_create(struct fuse_server **out, const struct fuse_server_config *cfg, char *err,
                       size_t errlen);
void fuse_server_destroy(struct fuse_server *s);

/* The driver went away (device reset): forget every inode but the root,
 * close every handle, and wait for a new INIT. */
void fuse_server_reset(struct fuse_server *s);

/* Prepare the calling thread to serve requests: drop CAP_FSETID from it,
 * so that the host kernel clears setuid/setgid on every write and
 * truncation it makes, as it does for an unprivileged writer. Call before
 * the thread's seccomp filter (capset is not on it). 0 or -errno. */
int fuse_thread_init(void);

/* Serve one request: @in/@nin are the device-readable buffers (the FUSE
 * request), @out/@nout the device-writable ones (the reply). Returns the
 * number of bytes written into @out: the reply's length, or 0 when there is
 * none (FORGET, BATCH_FORGET, INTERRUPT, and requests too malformed to
 * answer: a short header, or no room for a reply header). Every length
 * comes from the guest and is checked. */
size_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
                          const struct iovec *out, unsigned nout);

/* Inodes the guest holds now (the root included) and open handles (tests,
 * metrics). */
unsigned fuse_server_inodes(const struct fuse_server *s);
unsigned fuse_server_handles(const struct fuse_server *s);

#endif
