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
 */
#include "host/fuse.h"

#include "base/iov.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/fuse.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

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

/* ---- buffers ----------------------------------------------------------- */

static size_t iov_total(const struct iovec *v, unsigned n)
{
    size_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += v[i].iov_len; /* at most FUSE_IOV_MAX lengths of 32 bits: no overflow */
    return t;
}

/* s->slice = the bytes [off, off + len) of @v; returns the count. */
static unsigned iov_slice(struct fuse_server *s, const struct iovec *v, unsigned n, size_t off,
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

static size_t reply_err(struct req *r, int err)
{
    return reply_with(r, err, NULL, 0);
}

static size_t reply_ok(struct req *r, const void *payload, size_t n)
{
    if (sizeof(struct fuse_out_header) + n > r->outlen) {
        log_guest("virtio-fs: opcode %u: %zu reply bytes do not fit the %zu offered", r->h.opcode,
                  n, r->outlen);
        return reply_err(r, -EINVAL);
    }
    return reply_with(r, 0, payload, n);
}

/* ---- arguments ----------------------------------------------------------- */

/* The arguments' fixed part of @size bytes, or NULL if the request is shorter. */
static const void *arg_fixed(struct req *r, size_t size)
{
    return r->arglen >= size ? r->arg : NULL;
}

/* A NUL-terminated string starting at byte @off of the arguments; *@next
 * is the byte after its NUL. NULL if there is none. */
static const char *arg_str(struct req *r, size_t off, size_t *next)
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
static int arg_name(struct req *r, size_t off, const char **name, size_t *next)
{
    const char *n = arg_str(r, off, next);
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

static struct node *node_get(struct fuse_server *s, uint64_t nodeid)
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
static void node_forget(struct fuse_server *s, struct node *n, uint64_t count)
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
static int open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

/* @n's descriptor as a name under s->proc_fd. */
static void proc_name(const struct node *n, char buf[16])
{
    snprintf(buf, 16, "%d", n->fd);
}

/* Open @n for I/O. Only regular files and directories: a device, fifo or
 * socket is never opened (CVE-2020-35517: a guest-made device node opened
 * by the server), nor a symlink. */
static int node_open(struct fuse_server *s, const struct node *n, int flags)
{
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return -EACCES;
    char p[16];
    proc_name(n, p);
    flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_PATH);
    int fd = openat(s->proc_fd, p, flags | O_CLOEXEC | (n->type == S_IFDIR ? O_DIRECTORY : 0));
    return fd < 0 ? -errno : fd;
}

static int node_stat(const struct node *n, struct stat *st)
{
    return fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static void attr_from(struct fuse_attr *a, const struct stat *st)
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
static int do_lookup(struct fuse_server *s, int dirfd, const char *name, struct fuse_entry_out *e,
                     struct node **out)
{
    int fd = open_beneath(dirfd, name, O_PATH, 0);
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
    attr_from(&e->attr, &st);
    if (out)
        *out = n;
    return 0;
}

/* ---- handles ----------------------------------------------------------- */

static struct handle *handle_get(struct fuse_server *s, uint64_t fh, bool dir)
{
    if (fh == 0 || fh > s->nhandles)
        return NULL;
    struct handle *h = &s->handles[fh - 1];
    return h->fd >= 0 && h->dir == dir ? h : NULL;
}

/* Room for one more handle? -EMFILE at the share's limit. */
static int handle_room(struct fuse_server *s)
{
    if (s->handles_used < s->max_handles)
        return 0;
    log_guest("virtio-fs: the share's limit of %u open files is reached; opens fail with EMFILE",
              s->max_handles);
    return -EMFILE;
}

/* A handle for @fd (taken over; closed on failure): its fh, or -errno. */
static int64_t handle_add(struct fuse_server *s, int fd, bool dir)
{
    uint32_t slot;
    int e = handle_room(s);
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

static void handle_close(struct fuse_server *s, struct handle *h)
{
    close(h->fd);
    h->fd = -1;
    h->next_free = s->handle_free;
    s->handle_free = (uint32_t)(h - s->handles) + 1;
    s->handles_used--;
}

/* ---- operations ---------------------------------------------------------- */

static size_t op_init(struct req *r)
{
    struct fuse_server *s = r->s;
    /* Up to 7.35 the kernel sends the first 16 bytes only. */
    struct fuse_init_in in = {0};
    if (r->arglen < 16)
        return reply_err(r, -EINVAL);
    memcpy(&in, r->arg, r->arglen < sizeof(in) ? r->arglen : sizeof(in));
    if (s->initialized) {
        log_guest("virtio-fs: a second INIT");
        return reply_err(r, -EIO);
    }
    struct fuse_init_out o = {.major = FUSE_KERNEL_VERSION,
                              .minor = FUSE_KERNEL_MINOR_VERSION};
    if (in.major > FUSE_KERNEL_VERSION) /* the kernel retries with ours */
        return reply_ok(r, &o, 8);
    if (in.major < FUSE_KERNEL_VERSION || in.minor < FUSE_MIN_MINOR) {
        log_warn("virtio-fs: the guest speaks FUSE %u.%u; 7.%u or newer is needed", in.major,
                 in.minor, FUSE_MIN_MINOR);
        return reply_err(r, -EPROTO);
    }
    if (in.minor < o.minor)
        o.minor = in.minor;
    /* What we do: big reads and writes in pages (max_pages), READDIRPLUS
     * (adaptively), the guest's page cache dropped when the host changes
     * a file (mtime), symlinks cached. Not offered: O_TRUNC at open (the
     * kernel sends SETATTR), lookups of "." and ".." (export support),
     * the server applying umask, locks (the guest keeps them locally). */
    uint32_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
                    FUSE_READDIRPLUS_AUTO | FUSE_AUTO_INVAL_DATA | FUSE_MAX_PAGES |
                    FUSE_CACHE_SYMLINKS | FUSE_PARALLEL_DIROPS;
    o.flags = in.flags & want;
    o.max_readahead = in.max_readahead;
    o.max_background = 64;       /* requests the kernel queues in the background */
    o.congestion_threshold = 48; /* three quarters of them */
    o.max_write = FUSE_SERVER_MAX_RW;
    o.time_gran = 1;             /* nanosecond timestamps */
    o.max_pages = (uint16_t)(FUSE_SERVER_MAX_RW / 4096);
    s->initialized = true;
    return reply_ok(r, &o, sizeof(o));
}

/* The node a request is about (its header's nodeid). */
static struct node *req_node(struct req *r)
{
    struct node *n = node_get(r->s, r->h.nodeid);
    if (!n)
        log_guest("virtio-fs: opcode %u on unknown nodeid %" PRIu64, r->h.opcode, r->h.nodeid);
    return n;
}

/* Give a new entry to the guest's caller, as its own file system would,
 * when arcvm may (it runs as root); otherwise it stays arcvm's user's. */
static void set_owner(struct req *r, struct node *n)
{
    if (r->s->as_root &&
        fchownat(n->fd, "", r->h.uid, r->h.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
        log_debug("virtio-fs: chown of a new entry to %u:%u: %s", r->h.uid, r->h.gid,
                  strerror(errno));
}

static size_t op_lookup(struct req *r)
{
    struct node *p = req_node(r);
    const char *name;
    int e = arg_name(r, 0, &name, NULL);
    if (!p || e < 0)
        return reply_err(r, p ? e : -ENOENT);
    struct fuse_entry_out eo;
    e = do_lookup(r->s, p->fd, name, &eo, NULL);
    return e < 0 ? reply_err(r, e) : reply_ok(r, &eo, sizeof(eo));
}

static void op_forget_one(struct fuse_server *s, uint64_t nodeid, uint64_t nlookup)
{
    struct node *n = node_get(s, nodeid);
    if (n)
        node_forget(s, n, nlookup);
}

static size_t op_forget(struct req *r)
{
    const struct fuse_forget_in *f = arg_fixed(r, sizeof(*f));
    if (f)
        op_forget_one(r->s, r->h.nodeid, f->nlookup);
    return 0;
}

static size_t op_batch_forget(struct req *r)
{
    const struct fuse_batch_forget_in *b = arg_fixed(r, sizeof(*b));
    if (!b)
        return 0;
    size_t room = (r->arglen - sizeof(*b)) / sizeof(struct fuse_forget_one);
    if (b->count > room)
        log_guest("virtio-fs: BATCH_FORGET of %u entries in room for %zu", b->count, room);
    const struct fuse_forget_one *one = (const void *)(r->arg + sizeof(*b));
    for (size_t i = 0; i < b->count && i < room; i++)
        op_forget_one(r->s, one[i].nodeid, one[i].nlookup);
    return 0;
}

static size_t reply_attr(struct req *r, struct node *n)
{
    struct stat st;
    int e = node_stat(n, &st);
    if (e < 0)
        return reply_err(r, e);
    struct fuse_attr_out ao = {.attr_valid = FUSE_TTL_S};
    attr_from(&ao.attr, &st);
    return reply_ok(r, &ao, sizeof(ao));
}

static size_t op_getattr(struct req *r)
{
    struct node *n = req_node(r);
    return n ? reply_attr(r, n) : reply_err(r, -ENOENT);
}

static int setattr_times(struct fuse_server *s, struct node *n, const struct fuse_setattr_in *a)
{
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
    if (a->valid & FATTR_ATIME_NOW)
        ts[0].tv_nsec = UTIME_NOW;
    else if (a->valid & FATTR_ATIME)
        ts[0] = (struct timespec){(time_t)a->atime, a->atimensec};
    if (a->valid & FATTR_MTIME_NOW)
        ts[1].tv_nsec = UTIME_NOW;
    else if (a->valid & FATTR_MTIME)
        ts[1] = (struct timespec){(time_t)a->mtime, a->mtimensec};
    if (ts[0].tv_nsec != UTIME_NOW && ts[0].tv_nsec != UTIME_OMIT && ts[0].tv_nsec >= 1000000000)
        return -EINVAL;
    if (ts[1].tv_nsec != UTIME_NOW && ts[1].tv_nsec != UTIME_OMIT && ts[1].tv_nsec >= 1000000000)
        return -EINVAL;
    int rc;
    if (n->type == S_IFLNK) {
        rc = utimensat(n->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    } else {
        char p[16];
        proc_name(n, p);
        rc = utimensat(s->proc_fd, p, ts, 0);
    }
    return rc < 0 ? -errno : 0;
}

static size_t op_setattr(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_setattr_in *a = arg_fixed(r, sizeof(*a));
    struct node *n = req_node(r);
    if (!a || !n)
        return reply_err(r, !a ? -EINVAL : -ENOENT);
    if (s->readonly)
        return reply_err(r, -EROFS);
    struct handle *h = NULL;
    if ((a->valid & FATTR_FH) && !(h = handle_get(s, a->fh, false)))
        return reply_err(r, -EBADF);
    int e = 0;
    if (a->valid & FATTR_MODE) {
        char p[16];
        proc_name(n, p);
        /* A symlink has no mode of its own (and is never reached through
         * the magic link). */
        if (n->type == S_IFLNK)
            e = -EOPNOTSUPP;
        else if (fchmodat(s->proc_fd, p, a->mode & 07777, 0) < 0)
            e = -errno;
    }
    if (e == 0 && (a->valid & (FATTR_UID | FATTR_GID))) {
        uid_t uid = (a->valid & FATTR_UID) ? a->uid : (uid_t)-1;
        gid_t gid = (a->valid & FATTR_GID) ? a->gid : (gid_t)-1;
        if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            e = -errno;
    }
    if (e == 0 && (a->valid & FATTR_SIZE)) {
        if (a->size > INT64_MAX) {
            e = -EFBIG;
        } else if (h) {
            e = ftruncate(h->fd, (off_t)a->size) < 0 ? -errno : 0;
        } else if (n->type != S_IFREG) {
            e = n->type == S_IFDIR ? -EISDIR : -EINVAL;
        } else {
            int fd = node_open(s, n, O_WRONLY);
            e = fd;
            if (fd >= 0) {
                e = ftruncate(fd, (off_t)a->size) < 0 ? -errno : 0;
                close(fd);
            }
        }
    }
    if (e == 0 && (a->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)))
        e = setattr_times(s, n, a);
    return e < 0 ? reply_err(r, e) : reply_attr(r, n);
}

/* Flags a guest open may pass on to the host: access mode, append and
 * synchronous writes. Not O_DIRECT (guest buffers need not be aligned),
 * O_NOATIME (EPERM for others' files), O_CREAT/O_EXCL (CREATE does that). */
static int open_flags(uint32_t f)
{
    return (int)(f & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC));
}

static bool writes(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static size_t op_open(struct req *r, bool dir)
{
    struct fuse_server *s = r->s;
    const struct fuse_open_in *o = arg_fixed(r, sizeof(*o));
    struct node *n = req_node(r);
    if (!o || !n)
        return reply_err(r, !o ? -EINVAL : -ENOENT);
    int flags = dir ? O_RDONLY : open_flags(o->flags);
    if (s->readonly && writes(flags))
        return reply_err(r, -EROFS);
    if (dir ? n->type != S_IFDIR : n->type == S_IFDIR)
        return reply_err(r, dir ? -ENOTDIR : -EISDIR);
    int e = handle_room(s);
    int fd = e < 0 ? e : node_open(s, n, flags);
    if (fd < 0) {
        if (fd == -EACCES && n->type != S_IFREG && n->type != S_IFDIR)
            log_guest("virtio-fs: OPEN of a special file (mode 0%o) refused", (unsigned)n->type);
        return reply_err(r, fd);
    }
    int64_t fh = handle_add(s, fd, dir);
    if (fh < 0)
        return reply_err(r, (int)fh);
    struct fuse_open_out oo = {.fh = (uint64_t)fh};
    return reply_ok(r, &oo, sizeof(oo));
}

static size_t op_create(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_create_in *c = arg_fixed(r, sizeof(*c));
    struct node *p = req_node(r);
    const char *name;
    int e = c ? arg_name(r, sizeof(*c), &name, NULL) : -EINVAL;
    if (e < 0 || !p)
        return reply_err(r, e < 0 ? e : -ENOENT);
    if (s->readonly)
        return reply_err(r, -EROFS);
    if ((e = handle_room(s)) < 0)
        return reply_err(r, e);
    if (s->nodes_used >= s->max_inodes)
        return reply_err(r, -ENFILE);
    /* Always exclusive: an existing name is opened as OPEN would (never a
     * fifo or device a host user put there). */
    int flags = open_flags(c->flags);
    int fd = open_beneath(p->fd, name, flags | O_CREAT | O_EXCL, c->mode & 07777);
    bool made = fd >= 0;
    if (fd == -EEXIST && !(c->flags & O_EXCL))
        fd = 0;
    else if (fd < 0)
        return reply_err(r, fd);
    struct {
        struct fuse_entry_out e;
        struct fuse_open_out o;
    } out = {0};
    struct node *n;
    if ((e = do_lookup(s, p->fd, name, &out.e, &n)) < 0) {
        if (made)
            close(fd);
        return reply_err(r, e);
    }
    if (!made && (fd = n->type == S_IFDIR ? -EISDIR : node_open(s, n, flags)) < 0) {
        node_forget(s, n, 1);
        return reply_err(r, fd);
    }
    if (n->type != S_IFREG) { /* replaced between the two calls */
        node_forget(s, n, 1);
        close(fd);
        return reply_err(r, -EIO);
    }
    if (made)
        set_owner(r, n);
    int64_t fh = handle_add(s, fd, false);
    if (fh < 0) {
        node_forget(s, n, 1);
        return reply_err(r, (int)fh);
    }
    out.o.fh = (uint64_t)fh;
    struct stat st;
    if (node_stat(n, &st) == 0)
        attr_from(&out.e.attr, &st); /* the owner just set */
    return reply_ok(r, &out, sizeof(out));
}

/* Read (or write) @len bytes of @fd at @foff into (from) the bytes from
 * @off of @v. Short transfers are continued: a short READ reply means the
 * end of the file to the guest. Each round moves on or ends the loop.
 * Returns the bytes moved, or -errno when nothing was. */
static ssize_t transfer(struct fuse_server *s, int fd, const struct iovec *v, unsigned n,
                        size_t off, size_t len, uint64_t foff, bool write)
{
    size_t done = 0;
    while (done < len) {
        unsigned k = iov_slice(s, v, n, off + done, len - done);
        ssize_t got = write ? pwritev(fd, s->slice, (int)k, (off_t)(foff + done))
                            : preadv(fd, s->slice, (int)k, (off_t)(foff + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && done == 0)
            return -errno;
        if (got <= 0)
            break;
        done += (size_t)got;
    }
    return (ssize_t)done;
}

static size_t op_read(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_read_in *ri = arg_fixed(r, sizeof(*ri));
    struct handle *h = ri ? handle_get(s, ri->fh, false) : NULL;
    if (!h)
        return reply_err(r, !ri ? -EINVAL : -EBADF);
    if (ri->offset > INT64_MAX)
        return reply_err(r, -EINVAL);
    size_t size = ri->size;
    size_t room = r->outlen - sizeof(struct fuse_out_header);
    if (size > FUSE_SERVER_MAX_RW)
        size = FUSE_SERVER_MAX_RW;
    if (size > room)
        size = room;
    ssize_t done = transfer(s, h->fd, r->out, r->nout, sizeof(struct fuse_out_header), size,
                            ri->offset, false);
    if (done < 0)
        return reply_err(r, (int)done);
    struct fuse_out_header oh = {.len = (uint32_t)(sizeof(oh) + (size_t)done),
                                 .unique = r->h.unique};
    iov_copy_to(r->out, r->nout, 0, &oh, sizeof(oh));
    return sizeof(oh) + (size_t)done;
}

static size_t op_write(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_write_in *wi = arg_fixed(r, sizeof(*wi));
    if (!wi)
        return reply_err(r, -EINVAL);
    size_t hdr = sizeof(struct fuse_in_header) + sizeof(*wi);
    size_t len = r->inlen - hdr;
    if (wi->size != len || len > FUSE_SERVER_MAX_RW || wi->offset > INT64_MAX) {
        log_guest("virtio-fs: WRITE of %u bytes with %zu bytes of data", wi->size, len);
        return reply_err(r, -EINVAL);
    }
    if (s->readonly)
        return reply_err(r, -EROFS);
    struct handle *h = handle_get(s, wi->fh, false);
    if (!h)
        return reply_err(r, -EBADF);
    ssize_t done = transfer(s, h->fd, r->in, r->nin, hdr, len, wi->offset, true);
    if (done < 0)
        return reply_err(r, (int)done);
    struct fuse_write_out wo = {.size = (uint32_t)done};
    return reply_ok(r, &wo, sizeof(wo));
}

static size_t op_release(struct req *r, bool dir)
{
    const struct fuse_release_in *ri = arg_fixed(r, sizeof(*ri));
    struct handle *h = ri ? handle_get(r->s, ri->fh, dir) : NULL;
    if (!h)
        return reply_err(r, !ri ? -EINVAL : -EBADF);
    handle_close(r->s, h);
    return reply_err(r, 0);
}

static size_t op_flush(struct req *r)
{
    const struct fuse_flush_in *f = arg_fixed(r, sizeof(*f));
    /* Nothing is buffered here; errors of the host's write-back show at
     * FSYNC. */
    return reply_err(r, !f ? -EINVAL : handle_get(r->s, f->fh, false) ? 0 : -EBADF);
}

static size_t op_fsync(struct req *r, bool dir)
{
    const struct fuse_fsync_in *f = arg_fixed(r, sizeof(*f));
    struct handle *h = f ? handle_get(r->s, f->fh, dir) : NULL;
    if (!h)
        return reply_err(r, !f ? -EINVAL : -EBADF);
    int rc = (f->fsync_flags & 1) ? fdatasync(h->fd) : fsync(h->fd);
    return reply_err(r, rc < 0 ? -errno : 0);
}

/* One directory entry of READDIR(PLUS) into s->reply at @used: its size,
 * or 0 if it does not fit in @size. */
static size_t dirent_put(struct fuse_server *s, int dirfd, const struct dirent64 *d, size_t used,
                         size_t size, bool plus)
{
    size_t namelen = strlen(d->d_name);
    size_t off = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
    size_t need = FUSE_DIRENT_ALIGN(off + namelen);
    if (used + need > size)
        return 0;
    uint8_t *p = s->reply + sizeof(struct fuse_out_header) + used;
    memset(p, 0, need);
    struct fuse_dirent *de = (void *)(p + off - FUSE_NAME_OFFSET);
    *de = (struct fuse_dirent){.ino = d->d_ino, .off = (uint64_t)d->d_off,
                               .namelen = (uint32_t)namelen, .type = d->d_type};
    memcpy(de->name, d->d_name, namelen);
    if (plus) {
        struct fuse_entry_out *e = (void *)p;
        bool dots = !strcmp(d->d_name, ".") || !strcmp(d->d_name, "..");
        /* nodeid 0: the guest lists the entry without an inode (the dots,
         * or an entry gone or over the limit meanwhile). */
        if (dots || do_lookup(s, dirfd, d->d_name, e, NULL) < 0) {
            *e = (struct fuse_entry_out){0};
            e->attr.ino = d->d_ino;
            e->attr.mode = (uint32_t)d->d_type << 12;
        }
    }
    return need;
}

static size_t op_readdir(struct req *r, bool plus)
{
    struct fuse_server *s = r->s;
    const struct fuse_read_in *ri = arg_fixed(r, sizeof(*ri));
    struct handle *h = ri ? handle_get(s, ri->fh, true) : NULL;
    if (!h)
        return reply_err(r, !ri ? -EINVAL : -EBADF);
    size_t size = ri->size, room = r->outlen - sizeof(struct fuse_out_header);
    if (size > FUSE_REPLY_MAX - sizeof(struct fuse_out_header))
        size = FUSE_REPLY_MAX - sizeof(struct fuse_out_header);
    if (size > room)
        size = room;
    if (ri->offset > INT64_MAX || lseek(h->fd, (off_t)ri->offset, SEEK_SET) < 0)
        return reply_err(r, ri->offset > INT64_MAX ? -EINVAL : -errno);
    size_t used = 0;
    bool full = false;
    for (unsigned call = 0; call < FUSE_DENTS_CALLS && !full; call++) {
        long n = syscall(SYS_getdents64, h->fd, s->dents, sizeof(s->dents));
        if (n < 0 && used == 0)
            return reply_err(r, -errno);
        if (n <= 0)
            break;
        for (long pos = 0; pos < n;) {
            const struct dirent64 *d = (const void *)(s->dents + pos);
            if (d->d_reclen == 0)
                break;
            pos += d->d_reclen;
            size_t k = dirent_put(s, h->fd, d, used, size, plus);
            if (!k) {
                full = true;
                break;
            }
            used += k;
        }
    }
    return reply_ok(r, s->reply + sizeof(struct fuse_out_header), used);
}

/* After making @name in @p: look it up for the reply, owned by the caller. */
static size_t reply_new_entry(struct req *r, struct node *p, const char *name, bool own)
{
    struct fuse_entry_out eo;
    struct node *n;
    int e = do_lookup(r->s, p->fd, name, &eo, &n);
    if (e < 0)
        return reply_err(r, e);
    if (own) {
        set_owner(r, n);
        struct stat st;
        if (node_stat(n, &st) == 0)
            attr_from(&eo.attr, &st);
    }
    return reply_ok(r, &eo, sizeof(eo));
}

/* Common checks of the calls that make an entry: the parent, the name at
 * @off, a writable share, room for the new inode. */
static int make_checks(struct req *r, size_t off, struct node **p, const char **name,
                       size_t *next)
{
    int e = arg_name(r, off, name, next);
    if (e < 0)
        return e;
    if (!(*p = req_node(r)))
        return -ENOENT;
    if (r->s->readonly)
        return -EROFS;
    return r->s->nodes_used >= r->s->max_inodes ? -ENFILE : 0;
}

static size_t op_mkdir(struct req *r)
{
    const struct fuse_mkdir_in *m = arg_fixed(r, sizeof(*m));
    struct node *p;
    const char *name;
    int e = m ? make_checks(r, sizeof(*m), &p, &name, NULL) : -EINVAL;
    if (e == 0 && mkdirat(p->fd, name, m->mode & 07777) < 0)
        e = -errno;
    return e < 0 ? reply_err(r, e) : reply_new_entry(r, p, name, true);
}

static size_t op_mknod(struct req *r)
{
    const struct fuse_mknod_in *m = arg_fixed(r, sizeof(*m));
    struct node *p;
    const char *name;
    int e = m ? make_checks(r, sizeof(*m), &p, &name, NULL) : -EINVAL;
    mode_t type = m ? m->mode & S_IFMT : 0;
    /* No device nodes: a guest-made node would be a host device to every
     * host user of the share (they are never opened here anyway). */
    if (e == 0 && type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
        e = -EPERM;
    if (e == 0 && mknodat(p->fd, name, type | (m->mode & 07777), 0) < 0)
        e = -errno;
    return e < 0 ? reply_err(r, e) : reply_new_entry(r, p, name, true);
}

static size_t op_symlink(struct req *r)
{
    struct node *p;
    const char *name, *target;
    size_t next = 0;
    int e = make_checks(r, 0, &p, &name, &next);
    if (e == 0 && (!(target = arg_str(r, next, NULL)) || !*target || strlen(target) >= PATH_MAX))
        e = -EINVAL;
    /* The target is the guest's text: stored, never followed here. */
    if (e == 0 && symlinkat(target, p->fd, name) < 0)
        e = -errno;
    return e < 0 ? reply_err(r, e) : reply_new_entry(r, p, name, true);
}

static size_t op_link(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_link_in *l = arg_fixed(r, sizeof(*l));
    struct node *p, *n = l ? node_get(s, l->oldnodeid) : NULL;
    const char *name;
    int e = l ? make_checks(r, sizeof(*l), &p, &name, NULL) : -EINVAL;
    if (e == 0 && !n)
        e = -ENOENT;
    if (e == 0 && n->type == S_IFDIR)
        e = -EPERM;
    if (e == 0 && linkat(n->fd, "", p->fd, name, AT_EMPTY_PATH) < 0) {
        e = -errno;
        /* Without CAP_DAC_READ_SEARCH: through the magic link, which
         * leads to the inode itself (never to a symlink's target). */
        char pn[16];
        proc_name(n, pn);
        if (e == -ENOENT && n->type != S_IFLNK)
            e = linkat(s->proc_fd, pn, p->fd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
    }
    return e < 0 ? reply_err(r, e) : reply_new_entry(r, p, name, false);
}

static size_t op_unlink(struct req *r, bool dir)
{
    struct node *p = req_node(r);
    const char *name;
    int e = arg_name(r, 0, &name, NULL);
    if (e == 0 && !p)
        e = -ENOENT;
    if (e == 0 && r->s->readonly)
        e = -EROFS;
    if (e == 0 && unlinkat(p->fd, name, dir ? AT_REMOVEDIR : 0) < 0)
        e = -errno;
    return reply_err(r, e);
}

static size_t op_rename(struct req *r, bool two)
{
    struct fuse_server *s = r->s;
    size_t fixed = two ? sizeof(struct fuse_rename2_in) : sizeof(struct fuse_rename_in);
    const struct fuse_rename2_in *rn = arg_fixed(r, fixed); /* rename_in is its prefix */
    if (!rn)
        return reply_err(r, -EINVAL);
    uint32_t flags = two ? rn->flags : 0;
    const char *from, *to;
    size_t next = 0;
    struct node *p = req_node(r), *np = node_get(s, rn->newdir);
    int e = arg_name(r, fixed, &from, &next);
    if (e == 0)
        e = arg_name(r, next, &to, NULL);
    if (e == 0 && (!p || !np))
        e = -ENOENT;
    if (e == 0 && s->readonly)
        e = -EROFS;
    /* Not RENAME_WHITEOUT: it makes a device node (0/0). */
    if (e == 0 && (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE)))
        e = -EINVAL;
    if (e == 0 && renameat2(p->fd, from, np->fd, to, flags) < 0)
        e = -errno;
    return reply_err(r, e);
}

static size_t op_readlink(struct req *r)
{
    struct node *n = req_node(r);
    if (!n)
        return reply_err(r, -ENOENT);
    ssize_t k = readlinkat(n->fd, "", (char *)r->s->reply, PATH_MAX);
    return k < 0 ? reply_err(r, -errno) : reply_ok(r, r->s->reply, (size_t)k);
}

static size_t op_statfs(struct req *r)
{
    struct node *n = req_node(r);
    struct statfs st;
    if (!n)
        return reply_err(r, -ENOENT);
    if (fstatfs(n->fd, &st) < 0)
        return reply_err(r, -errno);
    struct fuse_statfs_out so = {.st = {.blocks = st.f_blocks, .bfree = st.f_bfree,
                                        .bavail = st.f_bavail, .files = st.f_files,
                                        .ffree = st.f_ffree, .bsize = (uint32_t)st.f_bsize,
                                        .namelen = (uint32_t)st.f_namelen,
                                        .frsize = (uint32_t)st.f_frsize}};
    return reply_ok(r, &so, sizeof(so));
}

static size_t op_access(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_access_in *a = arg_fixed(r, sizeof(*a));
    struct node *n = req_node(r);
    if (!a || !n)
        return reply_err(r, !a ? -EINVAL : -ENOENT);
    if (s->readonly && (a->mask & W_OK))
        return reply_err(r, -EROFS);
    if (n->type == S_IFLNK)
        return reply_err(r, 0); /* symlinks grant everything; never followed */
    char p[16];
    proc_name(n, p);
    return reply_err(r, faccessat(s->proc_fd, p, (int)(a->mask & 7), 0) < 0 ? -errno : 0);
}

/* ---- extended attributes --------------------------------------------------- */

/* Open @n to reach its xattrs: regular files and directories only (the
 * calls that take a path would follow a symlink's guest-written target). */
static int xattr_fd(struct fuse_server *s, struct node *n)
{
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return -EOPNOTSUPP;
    return node_open(s, n, O_RDONLY | O_NONBLOCK);
}

/* Get or list: @name NULL lists. The guest asks the size first (size 0). */
static size_t xattr_get(struct req *r, const struct fuse_getxattr_in *g, const char *name)
{
    struct fuse_server *s = r->s;
    struct node *n = req_node(r);
    if (!n)
        return reply_err(r, -ENOENT);
    int fd = xattr_fd(s, n);
    if (fd < 0)
        return reply_err(r, fd);
    size_t cap = g->size ? g->size : FUSE_REPLY_MAX;
    if (cap > FUSE_REPLY_MAX)
        cap = FUSE_REPLY_MAX;
    ssize_t k = name ? fgetxattr(fd, name, s->reply, cap) : flistxattr(fd, (char *)s->reply, cap);
    int e = k < 0 ? -errno : 0;
    close(fd);
    if (e < 0)
        return reply_err(r, e == -ERANGE && !g->size ? -E2BIG : e);
    if (!g->size) {
        struct fuse_getxattr_out go = {.size = (uint32_t)k};
        return reply_ok(r, &go, sizeof(go));
    }
    return reply_ok(r, s->reply, (size_t)k);
}

static size_t op_getxattr(struct req *r)
{
    const struct fuse_getxattr_in *g = arg_fixed(r, sizeof(*g));
    const char *name = g ? arg_str(r, sizeof(*g), NULL) : NULL;
    return name ? xattr_get(r, g, name) : reply_err(r, -EINVAL);
}

static size_t op_listxattr(struct req *r)
{
    const struct fuse_getxattr_in *g = arg_fixed(r, sizeof(*g));
    return g ? xattr_get(r, g, NULL) : reply_err(r, -EINVAL);
}

/* Which xattrs a guest may change: the user namespace only. Not
 * security.* (security.capability would give a host binary file
 * capabilities), trusted.*, or system.* (ACLs are not negotiated). */
static int xattr_writable(struct fuse_server *s, const char *name)
{
    if (s->readonly)
        return -EROFS;
    return strncmp(name, "user.", 5) ? -EOPNOTSUPP : 0;
}

static size_t op_setxattr(struct req *r)
{
    struct fuse_server *s = r->s;
    /* Without FUSE_SETXATTR_EXT the kernel sends the 8-byte form. */
    const struct fuse_setxattr_in *x = arg_fixed(r, FUSE_COMPAT_SETXATTR_IN_SIZE);
    size_t next = 0;
    const char *name = x ? arg_str(r, FUSE_COMPAT_SETXATTR_IN_SIZE, &next) : NULL;
    struct node *n = req_node(r);
    if (!name || !n)
        return reply_err(r, !name ? -EINVAL : -ENOENT);
    if (x->size > r->arglen - next)
        return reply_err(r, -EINVAL);
    int e = xattr_writable(s, name), fd = e < 0 ? e : xattr_fd(s, n);
    if (fd < 0)
        return reply_err(r, fd);
    e = fsetxattr(fd, name, r->arg + next, x->size, (int)x->flags) < 0 ? -errno : 0;
    close(fd);
    return reply_err(r, e);
}

static size_t op_removexattr(struct req *r)
{
    struct fuse_server *s = r->s;
    const char *name = arg_str(r, 0, NULL);
    struct node *n = req_node(r);
    if (!name || !n)
        return reply_err(r, !name ? -EINVAL : -ENOENT);
    int e = xattr_writable(s, name), fd = e < 0 ? e : xattr_fd(s, n);
    if (fd < 0)
        return reply_err(r, fd);
    e = fremovexattr(fd, name) < 0 ? -errno : 0;
    close(fd);
    return reply_err(r, e);
}

static size_t op_fallocate(struct req *r)
{
    const struct fuse_fallocate_in *f = arg_fixed(r, sizeof(*f));
    struct handle *h = f ? handle_get(r->s, f->fh, false) : NULL;
    if (!h)
        return reply_err(r, !f ? -EINVAL : -EBADF);
    if (r->s->readonly)
        return reply_err(r, -EROFS);
    if (f->offset > INT64_MAX || f->length > INT64_MAX)
        return reply_err(r, -EINVAL);
    int rc = fallocate(h->fd, (int)f->mode, (off_t)f->offset, (off_t)f->length);
    return reply_err(r, rc < 0 ? -errno : 0);
}

static size_t op_lseek(struct req *r)
{
    const struct fuse_lseek_in *l = arg_fixed(r, sizeof(*l));
    struct handle *h = l ? handle_get(r->s, l->fh, false) : NULL;
    if (!h)
        return reply_err(r, !l ? -EINVAL : -EBADF);
    if ((l->whence != SEEK_DATA && l->whence != SEEK_HOLE) || l->offset > INT64_MAX)
        return reply_err(r, -EINVAL);
    off_t o = lseek(h->fd, (off_t)l->offset, (int)l->whence);
    if (o < 0)
        return reply_err(r, -errno);
    struct fuse_lseek_out lo = {.offset = (uint64_t)o};
    return reply_ok(r, &lo, sizeof(lo));
}

/* ---- dispatch ------------------------------------------------------------ */

static size_t dispatch(struct req *r)
{
    switch (r->h.opcode) {
    case FUSE_LOOKUP: return op_lookup(r);
    case FUSE_GETATTR: return op_getattr(r);
    case FUSE_SETATTR: return op_setattr(r);
    case FUSE_READLINK: return op_readlink(r);
    case FUSE_SYMLINK: return op_symlink(r);
    case FUSE_MKNOD: return op_mknod(r);
    case FUSE_MKDIR: return op_mkdir(r);
    case FUSE_UNLINK: return op_unlink(r, false);
    case FUSE_RMDIR: return op_unlink(r, true);
    case FUSE_RENAME: return op_rename(r, false);
    case FUSE_RENAME2: return op_rename(r, true);
    case FUSE_LINK: return op_link(r);
    case FUSE_OPEN: return op_open(r, false);
    case FUSE_READ: return op_read(r);
    case FUSE_WRITE: return op_write(r);
    case FUSE_STATFS: return op_statfs(r);
    case FUSE_RELEASE: return op_release(r, false);
    case FUSE_FSYNC: return op_fsync(r, false);
    case FUSE_SETXATTR: return op_setxattr(r);
    case FUSE_GETXATTR: return op_getxattr(r);
    case FUSE_LISTXATTR: return op_listxattr(r);
    case FUSE_REMOVEXATTR: return op_removexattr(r);
    case FUSE_FLUSH: return op_flush(r);
    case FUSE_OPENDIR: return op_open(r, true);
    case FUSE_READDIR: return op_readdir(r, false);
    case FUSE_READDIRPLUS: return op_readdir(r, true);
    case FUSE_RELEASEDIR: return op_release(r, true);
    case FUSE_FSYNCDIR: return op_fsync(r, true);
    case FUSE_ACCESS: return op_access(r);
    case FUSE_CREATE: return op_create(r);
    case FUSE_FALLOCATE: return op_fallocate(r);
    case FUSE_LSEEK: return op_lseek(r);
    case FUSE_DESTROY:
        /* Unmount: the guest's inodes go without FORGETs. */
        fuse_server_reset(r->s);
        return reply_err(r, 0);
    default: return reply_err(r, -ENOSYS);
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
        return no_reply ? 0 : reply_err(&r, -EINVAL);
    }
    r.arglen = op == FUSE_WRITE && alen > sizeof(struct fuse_write_in)
                   ? sizeof(struct fuse_write_in)
                   : alen;
    iov_copy_from(in, nin, sizeof(r.h), s->arg, r.arglen);
    s->arg[r.arglen] = 0;
    if (op == FUSE_INIT)
        return op_init(&r);
    if (!s->initialized)
        return no_reply ? 0 : reply_err(&r, -EIO);
    switch (op) {
    case FUSE_FORGET: return op_forget(&r);
    case FUSE_BATCH_FORGET: return op_batch_forget(&r);
    case FUSE_INTERRUPT: return 0; /* every request is finished before the next is read */
    default: return dispatch(&r);
    }
}

/* ---- set-up ---------------------------------------------------------------- */

void fuse_default_limits(unsigned nshares, unsigned *max_inodes, unsigned *max_handles)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
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
            node_forget(s, &s->nodes[i], UINT64_MAX);
    for (unsigned i = 0; i < s->nhandles; i++)
        if (s->handles[i].fd >= 0)
            handle_close(s, &s->handles[i]);
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
