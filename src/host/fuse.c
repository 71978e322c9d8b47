/* fuse.c - the in-process FUSE server behind virtio-fs; see fuse.h.
 *
 * A request is the guest's readable buffers: struct fuse_in_header, then
 * the operation's arguments (<linux/fuse.h>), copied into the server before
 * they are read (WRITE data excepted: it goes from guest RAM to the file).
 * The reply goes into the writable buffers: struct fuse_out_header, then
 * the payload (READ data straight from the file into guest RAM).
 *
 * Inodes are slots of one table; the guest's nodeid is the slot number + 1
 * (1, FUSE_ROOT_ID, is the share's root, never forgotten). Each slot holds
 * an O_PATH | O_NOFOLLOW descriptor, found again by (st_dev, st_ino) when
 * the guest looks the same file up twice, and its lookup count. Open files
 * and directories are slots of a second table; fh is the slot number + 1.
 *
 * This file: buffers, replies, arguments, the inode and handle tables, the
 * host calls, dispatch, set-up. The operations are in fuse_ops.c, the
 * extended attributes in fuse_xattr.c; what they share is fuse_internal.h.
 */
#include "host/fuse.h"
#include "host/fuse_internal.h"

#include "base/iov.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- buffers ----------------------------------------------------------- */

static size_t iov_total(const struct iovec *v, unsigned n)
{
    size_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += v[i].iov_len; /* at most FUSE_IOV_MAX lengths of 32 bits: no overflow */
    return t;
}

/* s->slice = the bytes [off, off + len) of @v; returns the count. */
unsigned fuse_iov_slice(struct fuse_server *s, const struct iovec *v, unsigned n, size_t off,
                        size_t len)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n && len; i++) {
        if (off >= v[i].iov_len) {
            off -= v[i].iov_len;
            continue;
        }
        size_t bl = v[i].iov_len - off;
        if (bl > len)
            bl = len;
        s->slice[k++] = (struct iovec){(uint8_t *)v[i].iov_base + off, bl};
        len -= bl;
        off = 0;
    }
    return k;
}

/* ---- replies ----------------------------------------------------------- */

/* The reply header and @n bytes of @payload (@err 0), or the header alone
 * carrying @err (< 0). The header always fits: checked on entry. */
static size_t reply_with(struct req *r, int err, const void *payload, size_t n)
{
    if (err < 0)
        n = 0;
    struct fuse_out_header oh = {.len = (uint32_t)(sizeof(oh) + n), .error = err,
                                 .unique = r->h.unique};
    iov_copy_to(r->out, r->nout, 0, &oh, sizeof(oh));
    if (n)
        iov_copy_to(r->out, r->nout, sizeof(oh), payload, n);
    return sizeof(oh) + n;
}

size_t fuse_reply_err(struct req *r, int err)
{
    return reply_with(r, err, NULL, 0);
}

size_t fuse_reply_ok(struct req *r, const void *payload, size_t n)
{
    if (sizeof(struct fuse_out_header) + n > r->outlen) {
        log_guest("virtio-fs: opcode %u: %zu reply bytes do not fit the %zu offered", r->h.opcode,
                  n, r->outlen);
        return fuse_reply_err(r, -EINVAL);
    }
    return reply_with(r, 0, payload, n);
}

/* ---- arguments ----------------------------------------------------------- */

/* The arguments' fixed part of @size bytes, or NULL if the request is shorter. */
const void *fuse_arg_fixed(struct req *r, size_t size)
{
    return r->arglen >= size ? r->arg : NULL;
}

/* A NUL-terminated string starting at byte @off of the arguments; *@next
 * is the byte after its NUL. NULL if there is none. */
const char *fuse_arg_str(struct req *r, size_t off, size_t *next)
{
    if (off >= r->arglen)
        return NULL;
    const uint8_t *nul = memchr(r->arg + off, 0, r->arglen - off);
    if (!nul)
        return NULL;
    if (next)
        *next = (size_t)(nul - r->arg) + 1;
    return (const char *)r->arg + off;
}

/* A directory entry's name at byte @off: one path component. */
int fuse_arg_name(struct req *r, size_t off, const char **name, size_t *next)
{
    const char *n = fuse_arg_str(r, off, next);
    if (!n)
        return -EINVAL;
    size_t len = strlen(n);
    if (len == 0 || strchr(n, '/') || !strcmp(n, ".") || !strcmp(n, "..")) {
        log_guest("virtio-fs: opcode %u refused for the name '%.64s'", r->h.opcode, n);
        return -EINVAL;
    }
    if (len > NAME_MAX)
        return -ENAMETOOLONG;
    *name = n;
    return 0;
}

/* ---- inodes ------------------------------------------------------------ */

static uint32_t node_hash(const struct fuse_server *s, dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xc2b2ae3d27d4eb4full);
    return (uint32_t)(h >> 32) & (s->nbuckets - 1);
}

struct node *fuse_node_get(struct fuse_server *s, uint64_t nodeid)
{
    if (nodeid == 0 || nodeid > s->nnodes)
        return NULL;
    struct node *n = &s->nodes[nodeid - 1];
    return n->fd >= 0 ? n : NULL;
}

static uint64_t node_id(const struct fuse_server *s, const struct node *n)
{
    return (uint64_t)(n - s->nodes) + 1;
}

static struct node *node_find(struct fuse_server *s, dev_t dev, ino_t ino)
{
    for (uint32_t i = s->bucket[node_hash(s, dev, ino)]; i; i = s->nodes[i - 1].next)
        if (s->nodes[i - 1].dev == dev && s->nodes[i - 1].ino == ino)
            return &s->nodes[i - 1];
    return NULL;
}

/* A new node for @fd (taken over), or NULL with -ENFILE when the share's
 * inode limit is reached (-ENOMEM when the table cannot grow). */
static struct node *node_add(struct fuse_server *s, int fd, const struct stat *st, int *err)
{
    uint32_t slot;
    if (s->nodes_used >= s->max_inodes) {
        *err = -ENFILE;
        return NULL;
    }
    if (s->node_free) {
        slot = s->node_free - 1;
        s->node_free = s->nodes[slot].next;
    } else {
        if (s->nnodes == s->nodes_cap) {
            unsigned cap = s->nodes_cap * 2;
            if (cap > s->max_inodes)
                cap = s->max_inodes;
            struct node *nn = realloc(s->nodes, cap * sizeof(*nn));
            if (!nn) {
                *err = -ENOMEM;
                return NULL;
            }
            s->nodes = nn;
            s->nodes_cap = cap;
        }
        slot = s->nnodes++;
    }
    struct node *n = &s->nodes[slot];
    uint32_t b = node_hash(s, st->st_dev, st->st_ino);
    *n = (struct node){.fd = fd, .next = s->bucket[b], .nlookup = 1, .dev = st->st_dev,
                       .ino = st->st_ino, .type = st->st_mode & S_IFMT};
    s->bucket[b] = slot + 1;
    s->nodes_used++;
    return n;
}

/* Drop @count lookups of @n (at most what it has: the count is the
 * server's, never the guest's); the last one frees it. The root stays. */
void fuse_node_forget(struct fuse_server *s, struct node *n, uint64_t count)
{
    n->nlookup = count < n->nlookup ? n->nlookup - count : 0;
    uint32_t slot = (uint32_t)(n - s->nodes);
    if (n->nlookup || slot == 0)
        return;
    uint32_t *p = &s->bucket[node_hash(s, n->dev, n->ino)];
    while (*p && *p != slot + 1)
        p = &s->nodes[*p - 1].next;
    if (*p)
        *p = n->next;
    close(n->fd);
    n->fd = -1;
    n->next = s->node_free;
    s->node_free = slot + 1;
    s->nodes_used--;
}

/* ---- host calls ---------------------------------------------------------- */

/* Open @name, one component, beneath @dirfd: no symlink is followed (a
 * symlink itself is opened with O_PATH | O_NOFOLLOW), no magic link, no
 * escape. */
int fuse_open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

/* @n's descriptor as a name under s->proc_fd. */
void fuse_proc_name(const struct node *n, char buf[16])
{
    snprintf(buf, 16, "%d", n->fd);
}

/* Open @n for I/O. Only regular files and directories: a device, fifo or
 * socket is never opened (CVE-2020-35517: a guest-made device node opened
 * by the server), nor a symlink. */
int fuse_node_open(struct fuse_server *s, const struct node *n, int flags)
{
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return -EACCES;
    char p[16];
    fuse_proc_name(n, p);
    flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_PATH);
    int fd = openat(s->proc_fd, p, flags | O_CLOEXEC | (n->type == S_IFDIR ? O_DIRECTORY : 0));
    return fd < 0 ? -errno : fd;
}

int fuse_node_stat(const struct node *n, struct stat *st)
{
    return fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

void fuse_attr_from(struct fuse_attr *a, const struct stat *st)
{
    *a = (struct fuse_attr){.ino = st->st_ino, .size = (uint64_t)st->st_size,
                            .blocks = (uint64_t)st->st_blocks,
                            .atime = (uint64_t)st->st_atim.tv_sec,
                            .mtime = (uint64_t)st->st_mtim.tv_sec,
                            .ctime = (uint64_t)st->st_ctim.tv_sec,
                            .atimensec = (uint32_t)st->st_atim.tv_nsec,
                            .mtimensec = (uint32_t)st->st_mtim.tv_nsec,
                            .ctimensec = (uint32_t)st->st_ctim.tv_nsec, .mode = st->st_mode,
                            .nlink = (uint32_t)st->st_nlink, .uid = st->st_uid,
                            .gid = st->st_gid, .rdev = (uint32_t)st->st_rdev,
                            .blksize = (uint32_t)st->st_blksize};
}

/* Look @name up beneath @dirfd: one more lookup of its node (a new node
 * the first time), described in @e. */
int fuse_do_lookup(struct fuse_server *s, int dirfd, const char *name, struct fuse_entry_out *e,
                   struct node **out)
{
    int fd = fuse_open_beneath(dirfd, name, O_PATH, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    struct node *n = node_find(s, st.st_dev, st.st_ino);
    if (n) {
        close(fd);
        n->nlookup++;
    } else {
        int err = 0;
        if (!(n = node_add(s, fd, &st, &err))) {
            close(fd);
            log_guest("virtio-fs: the share's limit of %u inodes is reached; lookups fail with "
                      "ENFILE until the guest forgets some",
                      s->max_inodes);
            return err;
        }
    }
    *e = (struct fuse_entry_out){.nodeid = node_id(s, n), .entry_valid = FUSE_TTL_S,
                                 .attr_valid = FUSE_TTL_S};
    fuse_attr_from(&e->attr, &st);
    if (out)
        *out = n;
    return 0;
}

/* ---- handles ----------------------------------------------------------- */

struct handle *fuse_handle_get(struct fuse_server *s, uint64_t fh, bool dir)
{
    if (fh == 0 || fh > s->nhandles)
        return NULL;
    struct handle *h = &s->handles[fh - 1];
    return h->fd >= 0 && h->dir == dir ? h : NULL;
}

/* Room for one more handle? -EMFILE at the share's limit. */
int fuse_handle_room(struct fuse_server *s)
{
    if (s->handles_used < s->max_handles)
        return 0;
    log_guest("virtio-fs: the share's limit of %u open files is reached; opens fail with EMFILE",
              s->max_handles);
    return -EMFILE;
}

/* A handle for @fd (taken over; closed on failure): its fh, or -errno. */
int64_t fuse_handle_add(struct fuse_server *s, int fd, bool dir)
{
    uint32_t slot = 0; /* set whenever e == 0 (GCC cannot see it through fuse_handle_room) */
    int e = fuse_handle_room(s);
    if (e == 0 && s->handle_free) {
        slot = s->handle_free - 1;
        s->handle_free = s->handles[slot].next_free;
    } else if (e == 0) {
        if (s->nhandles == s->handles_cap) {
            unsigned cap = s->handles_cap * 2;
            if (cap > s->max_handles)
                cap = s->max_handles;
            struct handle *nh = realloc(s->handles, cap * sizeof(*nh));
            if (!nh)
                e = -ENOMEM;
            else
                s->handles = nh, s->handles_cap = cap;
        }
        slot = s->nhandles;
        if (e == 0)
            s->nhandles++;
    }
    if (e < 0) {
        close(fd);
        return e;
    }
    s->handles[slot] = (struct handle){.fd = fd, .dir = dir};
    s->handles_used++;
    return (int64_t)slot + 1;
}

void fuse_handle_close(struct fuse_server *s, struct handle *h)
{
    close(h->fd);
    h->fd = -1;
    h->next_free = s->handle_free;
    s->handle_free = (uint32_t)(h - s->handles) + 1;
    s->handles_used--;
}

/* ---- dispatch ------------------------------------------------------------ */

/* The fixed reply @op needs room for. Checked before the operation acts:
 * a reply that cannot be sent must not leave a lookup counted, a handle
 * open, an entry made or an attribute changed that the guest never hears
 * of (the kernel always offers the room; a hostile driver need not). */
static size_t reply_need(uint32_t op)
{
    switch (op) {
    case FUSE_LOOKUP:
    case FUSE_MKNOD:
    case FUSE_MKDIR:
    case FUSE_SYMLINK:
    case FUSE_LINK: return sizeof(struct fuse_entry_out);
    case FUSE_CREATE: return sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out);
    case FUSE_OPEN:
    case FUSE_OPENDIR: return sizeof(struct fuse_open_out);
    case FUSE_GETATTR:
    case FUSE_SETATTR: return sizeof(struct fuse_attr_out);
    default: return 0;
    }
}

static size_t dispatch(struct req *r)
{
    if (r->outlen < sizeof(struct fuse_out_header) + reply_need(r->h.opcode)) {
        log_guest("virtio-fs: opcode %u with %zu bytes for its reply of %zu", r->h.opcode,
                  r->outlen, sizeof(struct fuse_out_header) + reply_need(r->h.opcode));
        return fuse_reply_err(r, -EINVAL);
    }
    switch (r->h.opcode) {
    case FUSE_LOOKUP: return fuse_op_lookup(r);
    case FUSE_GETATTR: return fuse_op_getattr(r);
    case FUSE_SETATTR: return fuse_op_setattr(r);
    case FUSE_READLINK: return fuse_op_readlink(r);
    case FUSE_SYMLINK: return fuse_op_symlink(r);
    case FUSE_MKNOD: return fuse_op_mknod(r);
    case FUSE_MKDIR: return fuse_op_mkdir(r);
    case FUSE_UNLINK: return fuse_op_unlink(r, false);
    case FUSE_RMDIR: return fuse_op_unlink(r, true);
    case FUSE_RENAME: return fuse_op_rename(r, false);
    case FUSE_RENAME2: return fuse_op_rename(r, true);
    case FUSE_LINK: return fuse_op_link(r);
    case FUSE_OPEN: return fuse_op_open(r, false);
    case FUSE_READ: return fuse_op_read(r);
    case FUSE_WRITE: return fuse_op_write(r);
    case FUSE_STATFS: return fuse_op_statfs(r);
    case FUSE_RELEASE: return fuse_op_release(r, false);
    case FUSE_FSYNC: return fuse_op_fsync(r, false);
    case FUSE_SETXATTR: return fuse_op_setxattr(r);
    case FUSE_GETXATTR: return fuse_op_getxattr(r);
    case FUSE_LISTXATTR: return fuse_op_listxattr(r);
    case FUSE_REMOVEXATTR: return fuse_op_removexattr(r);
    case FUSE_FLUSH: return fuse_op_flush(r);
    case FUSE_OPENDIR: return fuse_op_open(r, true);
    case FUSE_READDIR: return fuse_op_readdir(r, false);
    case FUSE_READDIRPLUS: return fuse_op_readdir(r, true);
    case FUSE_RELEASEDIR: return fuse_op_release(r, true);
    case FUSE_FSYNCDIR: return fuse_op_fsync(r, true);
    case FUSE_ACCESS: return fuse_op_access(r);
    case FUSE_CREATE: return fuse_op_create(r);
    case FUSE_FALLOCATE: return fuse_op_fallocate(r);
    case FUSE_LSEEK: return fuse_op_lseek(r);
    case FUSE_DESTROY:
        /* Unmount: the guest's inodes go without FORGETs. */
        fuse_server_reset(r->s);
        return fuse_reply_err(r, 0);
    default: return fuse_reply_err(r, -ENOSYS);
    }
}

size_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
                          const struct iovec *out, unsigned nout)
{
    if (nin > FUSE_IOV_MAX || nout > FUSE_IOV_MAX)
        return 0; /* never from a virtqueue: chains are shorter */
    struct req r = {.s = s, .in = in, .nin = nin, .out = out, .nout = nout,
                    .inlen = iov_total(in, nin), .outlen = iov_total(out, nout), .arg = s->arg};
    if (r.inlen < sizeof(r.h)) {
        log_guest("virtio-fs: a request of %zu bytes, shorter than its header", r.inlen);
        return 0;
    }
    iov_copy_from(in, nin, 0, &r.h, sizeof(r.h));
    uint32_t op = r.h.opcode;
    bool no_reply = op == FUSE_FORGET || op == FUSE_BATCH_FORGET || op == FUSE_INTERRUPT;
    if (!no_reply && r.outlen < sizeof(struct fuse_out_header)) {
        log_guest("virtio-fs: opcode %u with %zu bytes for its reply", op, r.outlen);
        return 0;
    }
    size_t alen = r.inlen - sizeof(r.h);
    if (r.h.len != r.inlen || (op != FUSE_WRITE && alen > FUSE_ARG_MAX)) {
        log_guest("virtio-fs: opcode %u: header length %u, %zu bytes sent", op, r.h.len, r.inlen);
        return no_reply ? 0 : fuse_reply_err(&r, -EINVAL);
    }
    r.arglen = op == FUSE_WRITE && alen > sizeof(struct fuse_write_in)
                   ? sizeof(struct fuse_write_in)
                   : alen;
    iov_copy_from(in, nin, sizeof(r.h), s->arg, r.arglen);
    s->arg[r.arglen] = 0;
    if (op == FUSE_INIT)
        return fuse_op_init(&r);
    if (!s->initialized)
        return no_reply ? 0 : fuse_reply_err(&r, -EIO);
    switch (op) {
    case FUSE_FORGET: return fuse_op_forget(&r);
    case FUSE_BATCH_FORGET: return fuse_op_batch_forget(&r);
    case FUSE_INTERRUPT: return 0; /* every request is finished before the next is read */
    default: return dispatch(&r);
    }
}

/* ---- set-up ---------------------------------------------------------------- */

void fuse_default_limits(unsigned nshares, unsigned *max_inodes, unsigned *max_handles)
{
    struct rlimit rl = {1024, 1024};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max < FUSE_NOFILE_WANT) {
        /* A guest that unpacks a source tree holds an inode per file: a
         * hard limit of a few thousand (common for root) would fail it
         * with ENFILE. As virtiofsd does, raise the hard limit too when
         * arcvm may (CAP_SYS_RESOURCE; the jailer's no-file stays, as it
         * drops that); else the soft one goes to the hard one below. */
        struct rlimit want = {FUSE_NOFILE_WANT, FUSE_NOFILE_WANT};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl); /* as virtiofsd does; a failure leaves the soft one */
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t fds = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : rl.rlim_cur;
    uint64_t reserve = fds / 2 < FUSE_FD_RESERVE ? fds / 2 : FUSE_FD_RESERVE;
    uint64_t per = (fds - reserve) / (nshares ? nshares : 1);
    uint64_t inodes = per * 3 / 4, handles = per / 4;
    *max_inodes = (unsigned)(inodes < 16 ? 16 : inodes > FUSE_INODES_CEIL ? FUSE_INODES_CEIL : inodes);
    *max_handles =
        (unsigned)(handles < 4 ? 4 : handles > FUSE_HANDLES_CEIL ? FUSE_HANDLES_CEIL : handles);
}

int fuse_server_create(struct fuse_server **out, const struct fuse_server_config *cfg, char *err,
                       size_t errlen)
{
    struct fuse_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->proc_fd = -1;
    s->readonly = cfg->readonly;
    s->as_root = geteuid() == 0;
    s->max_inodes = cfg->max_inodes;
    s->max_handles = cfg->max_handles;
    if (!s->max_inodes || !s->max_handles) {
        unsigned mi, mh;
        fuse_default_limits(1, &mi, &mh);
        s->max_inodes = s->max_inodes ? s->max_inodes : mi;
        s->max_handles = s->max_handles ? s->max_handles : mh;
    }
    int e = -ENOMEM;
    s->nbuckets = 64;
    while (s->nbuckets < s->max_inodes && s->nbuckets < FUSE_INODES_CEIL)
        s->nbuckets *= 2;
    s->nodes_cap = s->max_inodes < 64 ? s->max_inodes : 64;
    s->handles_cap = s->max_handles < 16 ? s->max_handles : 16;
    s->bucket = calloc(s->nbuckets, sizeof(*s->bucket));
    s->nodes = calloc(s->nodes_cap, sizeof(*s->nodes));
    s->handles = calloc(s->handles_cap, sizeof(*s->handles));
    if (!s->bucket || !s->nodes || !s->handles) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int root = open(cfg->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (root < 0 || fstat(root, &st) < 0) {
        e = -errno;
        snprintf(err, errlen, "shared directory '%s': %s", cfg->dir, strerror(errno));
        if (root >= 0)
            close(root);
        goto fail;
    }
    node_add(s, root, &st, &e); /* slot 0: FUSE_ROOT_ID */
    s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->proc_fd < 0) {
        e = -errno;
        snprintf(err, errlen,
                 "shared directory '%s': /proc/self/fd: %s (virtio-fs needs /proc mounted)",
                 cfg->dir, strerror(errno));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    fuse_server_destroy(s);
    return e;
}

void fuse_server_reset(struct fuse_server *s)
{
    for (unsigned i = 1; i < s->nnodes; i++)
        if (s->nodes[i].fd >= 0)
            fuse_node_forget(s, &s->nodes[i], UINT64_MAX);
    for (unsigned i = 0; i < s->nhandles; i++)
        if (s->handles[i].fd >= 0)
            fuse_handle_close(s, &s->handles[i]);
    if (s->nnodes)
        s->nodes[0].nlookup = 1;
    s->initialized = false;
}

void fuse_server_destroy(struct fuse_server *s)
{
    if (!s)
        return;
    fuse_server_reset(s);
    if (s->nnodes && s->nodes[0].fd >= 0)
        close(s->nodes[0].fd);
    if (s->proc_fd >= 0)
        close(s->proc_fd);
    free(s->bucket);
    free(s->nodes);
    free(s->handles);
    free(s);
}

int fuse_thread_init(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -errno;
    unsigned i = CAP_TO_INDEX(CAP_FSETID);
    uint32_t bit = CAP_TO_MASK(CAP_FSETID);
    if (!(data[i].effective & bit) && !(data[i].permitted & bit))
        return 0;
    data[i].effective &= ~bit;
    data[i].permitted &= ~bit;
    data[i].inheritable &= ~bit;
    return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

unsigned fuse_server_inodes(const struct fuse_server *s)
{
    return s->nodes_used;
}

unsigned fuse_server_handles(const struct fuse_server *s)
{
    return s->handles_used;
}
