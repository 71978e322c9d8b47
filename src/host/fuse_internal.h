/* fuse_internal.h - the FUSE server's state and the helpers its files
 * share (fuse.c: buffers, replies, arguments, inodes, handles, host calls,
 * dispatch, set-up; fuse_ops.c: the operations; fuse_xattr.c: extended
 * attributes). Nothing outside src/host/fuse*.c includes this.
 */
#ifndef ARCVM_HOST_FUSE_INTERNAL_H
#define ARCVM_HOST_FUSE_INTERNAL_H

#include "host/fuse.h"

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Oldest protocol spoken: 7.31 is the first with virtio-fs (Linux 5.4), so
 * every argument struct has its full size. */
#define FUSE_MIN_MINOR 31
/* Largest request read into the server, WRITE data aside: a SETXATTR with
 * a name and the largest xattr value Linux has (XATTR_SIZE_MAX), or a
 * SYMLINK with a name and a PATH_MAX target, fit. */
#define FUSE_ARG_MAX (65536 + 2048)
/* Largest payload built in the server: a GETXATTR value, a LISTXATTR list,
 * a READDIR(PLUS) page run. */
#define FUSE_REPLY_MAX (128 * 1024)
/* Buffers per request: a chain is never longer than the largest queue. */
#define FUSE_IOV_MAX 1024
/* Attributes and entries are cached by the guest this long (seconds): a
 * change made on the host shows within a second, as with virtiofsd's
 * default cache=auto. */
#define FUSE_TTL_S 1
/* Descriptors kept for the rest of arcvm (disks, sockets, snapshots...)
 * when sizing the shares' limits. */
#define FUSE_FD_RESERVE 1024
/* The open-file limit a process with shares asks for (virtiofsd's default
 * is about the same, 1,000,000): Linux's default fs.nr_open. */
#define FUSE_NOFILE_WANT (1u << 20)
/* Ceilings on the limits, whatever the open-file limit: the tables grow
 * to them on demand. */
#define FUSE_INODES_CEIL (1u << 18)
#define FUSE_HANDLES_CEIL (1u << 16)
/* getdents64() calls per READDIR: each either ends the directory or moves
 * on, so this only bounds a directory the host keeps growing meanwhile. */
#define FUSE_DENTS_CALLS 4096

struct node {
    int fd;         /* O_PATH | O_NOFOLLOW; -1: the slot is free */
    uint32_t next;  /* hash chain (in use) or free list (free): slot + 1, 0 ends */
    uint64_t nlookup;
    dev_t dev;
    ino_t ino;
    mode_t type;    /* S_IFMT bits */
};

struct handle {
    int fd;         /* -1: the slot is free */
    uint32_t next_free;
    bool dir;
};

struct fuse_server {
    int proc_fd;    /* /proc/self/fd, to reopen an O_PATH descriptor for I/O */
    bool readonly, as_root, initialized;
    unsigned max_inodes, max_handles;
    struct node *nodes;
    unsigned nnodes, nodes_cap, nodes_used;
    uint32_t node_free;
    uint32_t *bucket; /* slot + 1 of the first node of each chain */
    unsigned nbuckets;
    struct handle *handles;
    unsigned nhandles, handles_cap, handles_used;
    uint32_t handle_free;
    struct iovec slice[FUSE_IOV_MAX];
    _Alignas(8) uint8_t arg[FUSE_ARG_MAX + 1]; /* +1: a NUL after the last string */
    _Alignas(8) uint8_t reply[FUSE_REPLY_MAX];
    _Alignas(8) uint8_t dents[32768];
};

/* One request being served. */
struct req {
    struct fuse_server *s;
    struct fuse_in_header h;
    const uint8_t *arg;   /* the arguments after the header (a copy) */
    size_t arglen;
    size_t inlen;         /* all readable bytes, header included */
    const struct iovec *in, *out;
    unsigned nin, nout;
    size_t outlen;
};

/* ---- fuse.c ------------------------------------------------------------ */

unsigned fuse_iov_slice(struct fuse_server *s, const struct iovec *v, unsigned n, size_t off,
                        size_t len);
size_t fuse_reply_err(struct req *r, int err);
size_t fuse_reply_ok(struct req *r, const void *payload, size_t n);
const void *fuse_arg_fixed(struct req *r, size_t size);
const char *fuse_arg_str(struct req *r, size_t off, size_t *next);
int fuse_arg_name(struct req *r, size_t off, const char **name, size_t *next);
struct node *fuse_node_get(struct fuse_server *s, uint64_t nodeid);
void fuse_node_forget(struct fuse_server *s, struct node *n, uint64_t count);
int fuse_open_beneath(int dirfd, const char *name, int flags, mode_t mode);
void fuse_proc_name(const struct node *n, char buf[16]);
int fuse_node_open(struct fuse_server *s, const struct node *n, int flags);
int fuse_node_stat(const struct node *n, struct stat *st);
void fuse_attr_from(struct fuse_attr *a, const struct stat *st);
int fuse_do_lookup(struct fuse_server *s, int dirfd, const char *name, struct fuse_entry_out *e,
                   struct node **out);
struct handle *fuse_handle_get(struct fuse_server *s, uint64_t fh, bool dir);
int fuse_handle_room(struct fuse_server *s);
int64_t fuse_handle_add(struct fuse_server *s, int fd, bool dir);
void fuse_handle_close(struct fuse_server *s, struct handle *h);

/* ---- fuse_ops.c -------------------------------------------------------- */

size_t fuse_op_init(struct req *r);
struct node *fuse_req_node(struct req *r);
size_t fuse_op_lookup(struct req *r);
size_t fuse_op_forget(struct req *r);
size_t fuse_op_batch_forget(struct req *r);
size_t fuse_op_getattr(struct req *r);
size_t fuse_op_setattr(struct req *r);
size_t fuse_op_open(struct req *r, bool dir);
size_t fuse_op_create(struct req *r);
size_t fuse_op_read(struct req *r);
size_t fuse_op_write(struct req *r);
size_t fuse_op_release(struct req *r, bool dir);
size_t fuse_op_flush(struct req *r);
size_t fuse_op_fsync(struct req *r, bool dir);
size_t fuse_op_readdir(struct req *r, bool plus);
size_t fuse_op_mkdir(struct req *r);
size_t fuse_op_mknod(struct req *r);
size_t fuse_op_symlink(struct req *r);
size_t fuse_op_link(struct req *r);
size_t fuse_op_unlink(struct req *r, bool dir);
size_t fuse_op_rename(struct req *r, bool two);
size_t fuse_op_readlink(struct req *r);
size_t fuse_op_statfs(struct req *r);
size_t fuse_op_access(struct req *r);
size_t fuse_op_fallocate(struct req *r);
size_t fuse_op_lseek(struct req *r);

/* ---- fuse_xattr.c ------------------------------------------------------ */

size_t fuse_op_getxattr(struct req *r);
size_t fuse_op_listxattr(struct req *r);
size_t fuse_op_setxattr(struct req *r);
size_t fuse_op_removexattr(struct req *r);

#endif
