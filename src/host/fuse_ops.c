/* fuse_ops.c - the FUSE server's operations (see fuse.c): each serves one
 * request on the share and builds its reply. Extended attributes are in
 * fuse_xattr.c.
 */
#include "host/fuse.h"
#include "host/fuse_internal.h"

#include "base/iov.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- operations ---------------------------------------------------------- */

size_t fuse_op_init(struct req *r)
{
    struct fuse_server *s = r->s;
    /* Up to 7.35 the kernel sends the first 16 bytes only. */
    struct fuse_init_in in = {0};
    if (r->arglen < 16)
        return fuse_reply_err(r, -EINVAL);
    memcpy(&in, r->arg, r->arglen < sizeof(in) ? r->arglen : sizeof(in));
    if (s->initialized) {
        log_guest("virtio-fs: a second INIT");
        return fuse_reply_err(r, -EIO);
    }
    struct fuse_init_out o = {.major = FUSE_KERNEL_VERSION,
                              .minor = FUSE_KERNEL_MINOR_VERSION};
    if (in.major > FUSE_KERNEL_VERSION) /* the kernel retries with ours */
        return fuse_reply_ok(r, &o, 8);
    if (in.major < FUSE_KERNEL_VERSION || in.minor < FUSE_MIN_MINOR) {
        log_warn("virtio-fs: the guest speaks FUSE %u.%u; 7.%u or newer is needed", in.major,
                 in.minor, FUSE_MIN_MINOR);
        return fuse_reply_err(r, -EPROTO);
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
    return fuse_reply_ok(r, &o, sizeof(o));
}

/* The node a request is about (its header's nodeid). */
struct node *fuse_req_node(struct req *r)
{
    struct node *n = fuse_node_get(r->s, r->h.nodeid);
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

size_t fuse_op_lookup(struct req *r)
{
    struct node *p = fuse_req_node(r);
    const char *name;
    int e = fuse_arg_name(r, 0, &name, NULL);
    if (!p || e < 0)
        return fuse_reply_err(r, p ? e : -ENOENT);
    struct fuse_entry_out eo;
    e = fuse_do_lookup(r->s, p->fd, name, &eo, NULL);
    return e < 0 ? fuse_reply_err(r, e) : fuse_reply_ok(r, &eo, sizeof(eo));
}

static void op_forget_one(struct fuse_server *s, uint64_t nodeid, uint64_t nlookup)
{
    struct node *n = fuse_node_get(s, nodeid);
    if (n)
        fuse_node_forget(s, n, nlookup);
}

size_t fuse_op_forget(struct req *r)
{
    const struct fuse_forget_in *f = fuse_arg_fixed(r, sizeof(*f));
    if (f)
        op_forget_one(r->s, r->h.nodeid, f->nlookup);
    return 0;
}

size_t fuse_op_batch_forget(struct req *r)
{
    const struct fuse_batch_forget_in *b = fuse_arg_fixed(r, sizeof(*b));
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
    int e = fuse_node_stat(n, &st);
    if (e < 0)
        return fuse_reply_err(r, e);
    struct fuse_attr_out ao = {.attr_valid = FUSE_TTL_S};
    fuse_attr_from(&ao.attr, &st);
    return fuse_reply_ok(r, &ao, sizeof(ao));
}

size_t fuse_op_getattr(struct req *r)
{
    struct node *n = fuse_req_node(r);
    return n ? reply_attr(r, n) : fuse_reply_err(r, -ENOENT);
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
        fuse_proc_name(n, p);
        rc = utimensat(s->proc_fd, p, ts, 0);
    }
    return rc < 0 ? -errno : 0;
}

size_t fuse_op_setattr(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_setattr_in *a = fuse_arg_fixed(r, sizeof(*a));
    struct node *n = fuse_req_node(r);
    if (!a || !n)
        return fuse_reply_err(r, !a ? -EINVAL : -ENOENT);
    if (s->readonly)
        return fuse_reply_err(r, -EROFS);
    struct handle *h = NULL;
    if ((a->valid & FATTR_FH) && !(h = fuse_handle_get(s, a->fh, false)))
        return fuse_reply_err(r, -EBADF);
    int e = 0;
    if (a->valid & FATTR_MODE) {
        char p[16];
        fuse_proc_name(n, p);
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
            int fd = fuse_node_open(s, n, O_WRONLY);
            e = fd;
            if (fd >= 0) {
                e = ftruncate(fd, (off_t)a->size) < 0 ? -errno : 0;
                close(fd);
            }
        }
    }
    if (e == 0 && (a->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)))
        e = setattr_times(s, n, a);
    return e < 0 ? fuse_reply_err(r, e) : reply_attr(r, n);
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

size_t fuse_op_open(struct req *r, bool dir)
{
    struct fuse_server *s = r->s;
    const struct fuse_open_in *o = fuse_arg_fixed(r, sizeof(*o));
    struct node *n = fuse_req_node(r);
    if (!o || !n)
        return fuse_reply_err(r, !o ? -EINVAL : -ENOENT);
    int flags = dir ? O_RDONLY : open_flags(o->flags);
    if (s->readonly && writes(flags))
        return fuse_reply_err(r, -EROFS);
    if (dir ? n->type != S_IFDIR : n->type == S_IFDIR)
        return fuse_reply_err(r, dir ? -ENOTDIR : -EISDIR);
    int e = fuse_handle_room(s);
    int fd = e < 0 ? e : fuse_node_open(s, n, flags);
    if (fd < 0) {
        if (fd == -EACCES && n->type != S_IFREG && n->type != S_IFDIR)
            log_guest("virtio-fs: OPEN of a special file (mode 0%o) refused", (unsigned)n->type);
        return fuse_reply_err(r, fd);
    }
    int64_t fh = fuse_handle_add(s, fd, dir);
    if (fh < 0)
        return fuse_reply_err(r, (int)fh);
    struct fuse_open_out oo = {.fh = (uint64_t)fh};
    return fuse_reply_ok(r, &oo, sizeof(oo));
}

size_t fuse_op_create(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_create_in *c = fuse_arg_fixed(r, sizeof(*c));
    struct node *p = fuse_req_node(r);
    const char *name;
    int e = c ? fuse_arg_name(r, sizeof(*c), &name, NULL) : -EINVAL;
    if (e < 0 || !p)
        return fuse_reply_err(r, e < 0 ? e : -ENOENT);
    if (s->readonly)
        return fuse_reply_err(r, -EROFS);
    if ((e = fuse_handle_room(s)) < 0)
        return fuse_reply_err(r, e);
    if (s->nodes_used >= s->max_inodes)
        return fuse_reply_err(r, -ENFILE);
    /* Always exclusive: an existing name is opened as OPEN would (never a
     * fifo or device a host user put there). */
    int flags = open_flags(c->flags);
    int fd = fuse_open_beneath(p->fd, name, flags | O_CREAT | O_EXCL, c->mode & 07777);
    bool made = fd >= 0;
    if (fd == -EEXIST && !(c->flags & O_EXCL))
        fd = 0;
    else if (fd < 0)
        return fuse_reply_err(r, fd);
    struct {
        struct fuse_entry_out e;
        struct fuse_open_out o;
    } out = {0};
    struct node *n;
    if ((e = fuse_do_lookup(s, p->fd, name, &out.e, &n)) < 0) {
        if (made)
            close(fd);
        return fuse_reply_err(r, e);
    }
    if (!made && (fd = n->type == S_IFDIR ? -EISDIR : fuse_node_open(s, n, flags)) < 0) {
        fuse_node_forget(s, n, 1);
        return fuse_reply_err(r, fd);
    }
    if (n->type != S_IFREG) { /* replaced between the two calls */
        fuse_node_forget(s, n, 1);
        close(fd);
        return fuse_reply_err(r, -EIO);
    }
    if (made)
        set_owner(r, n);
    int64_t fh = fuse_handle_add(s, fd, false);
    if (fh < 0) {
        fuse_node_forget(s, n, 1);
        return fuse_reply_err(r, (int)fh);
    }
    out.o.fh = (uint64_t)fh;
    struct stat st;
    if (fuse_node_stat(n, &st) == 0)
        fuse_attr_from(&out.e.attr, &st); /* the owner just set */
    return fuse_reply_ok(r, &out, sizeof(out));
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
        unsigned k = fuse_iov_slice(s, v, n, off + done, len - done);
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

size_t fuse_op_read(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_read_in *ri = fuse_arg_fixed(r, sizeof(*ri));
    struct handle *h = ri ? fuse_handle_get(s, ri->fh, false) : NULL;
    if (!h)
        return fuse_reply_err(r, !ri ? -EINVAL : -EBADF);
    if (ri->offset > INT64_MAX)
        return fuse_reply_err(r, -EINVAL);
    size_t size = ri->size;
    size_t room = r->outlen - sizeof(struct fuse_out_header);
    if (size > FUSE_SERVER_MAX_RW)
        size = FUSE_SERVER_MAX_RW;
    if (size > room)
        size = room;
    ssize_t done = transfer(s, h->fd, r->out, r->nout, sizeof(struct fuse_out_header), size,
                            ri->offset, false);
    if (done < 0)
        return fuse_reply_err(r, (int)done);
    struct fuse_out_header oh = {.len = (uint32_t)(sizeof(oh) + (size_t)done),
                                 .unique = r->h.unique};
    iov_copy_to(r->out, r->nout, 0, &oh, sizeof(oh));
    return sizeof(oh) + (size_t)done;
}

size_t fuse_op_write(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_write_in *wi = fuse_arg_fixed(r, sizeof(*wi));
    if (!wi)
        return fuse_reply_err(r, -EINVAL);
    size_t hdr = sizeof(struct fuse_in_header) + sizeof(*wi);
    size_t len = r->inlen - hdr;
    if (wi->size != len || len > FUSE_SERVER_MAX_RW || wi->offset > INT64_MAX) {
        log_guest("virtio-fs: WRITE of %u bytes with %zu bytes of data", wi->size, len);
        return fuse_reply_err(r, -EINVAL);
    }
    if (s->readonly)
        return fuse_reply_err(r, -EROFS);
    struct handle *h = fuse_handle_get(s, wi->fh, false);
    if (!h)
        return fuse_reply_err(r, -EBADF);
    ssize_t done = transfer(s, h->fd, r->in, r->nin, hdr, len, wi->offset, true);
    if (done < 0)
        return fuse_reply_err(r, (int)done);
    struct fuse_write_out wo = {.size = (uint32_t)done};
    return fuse_reply_ok(r, &wo, sizeof(wo));
}

size_t fuse_op_release(struct req *r, bool dir)
{
    const struct fuse_release_in *ri = fuse_arg_fixed(r, sizeof(*ri));
    struct handle *h = ri ? fuse_handle_get(r->s, ri->fh, dir) : NULL;
    if (!h)
        return fuse_reply_err(r, !ri ? -EINVAL : -EBADF);
    fuse_handle_close(r->s, h);
    return fuse_reply_err(r, 0);
}

size_t fuse_op_flush(struct req *r)
{
    const struct fuse_flush_in *f = fuse_arg_fixed(r, sizeof(*f));
    /* Nothing is buffered here; errors of the host's write-back show at
     * FSYNC. */
    return fuse_reply_err(r, !f ? -EINVAL : fuse_handle_get(r->s, f->fh, false) ? 0 : -EBADF);
}

size_t fuse_op_fsync(struct req *r, bool dir)
{
    const struct fuse_fsync_in *f = fuse_arg_fixed(r, sizeof(*f));
    struct handle *h = f ? fuse_handle_get(r->s, f->fh, dir) : NULL;
    if (!h)
        return fuse_reply_err(r, !f ? -EINVAL : -EBADF);
    int rc = (f->fsync_flags & 1) ? fdatasync(h->fd) : fsync(h->fd);
    return fuse_reply_err(r, rc < 0 ? -errno : 0);
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
        if (dots || fuse_do_lookup(s, dirfd, d->d_name, e, NULL) < 0) {
            *e = (struct fuse_entry_out){0};
            e->attr.ino = d->d_ino;
            e->attr.mode = (uint32_t)d->d_type << 12;
        }
    }
    return need;
}

size_t fuse_op_readdir(struct req *r, bool plus)
{
    struct fuse_server *s = r->s;
    const struct fuse_read_in *ri = fuse_arg_fixed(r, sizeof(*ri));
    struct handle *h = ri ? fuse_handle_get(s, ri->fh, true) : NULL;
    if (!h)
        return fuse_reply_err(r, !ri ? -EINVAL : -EBADF);
    size_t size = ri->size, room = r->outlen - sizeof(struct fuse_out_header);
    if (size > FUSE_REPLY_MAX - sizeof(struct fuse_out_header))
        size = FUSE_REPLY_MAX - sizeof(struct fuse_out_header);
    if (size > room)
        size = room;
    if (ri->offset > INT64_MAX || lseek(h->fd, (off_t)ri->offset, SEEK_SET) < 0)
        return fuse_reply_err(r, ri->offset > INT64_MAX ? -EINVAL : -errno);
    size_t used = 0;
    bool full = false;
    for (unsigned call = 0; call < FUSE_DENTS_CALLS && !full; call++) {
        long n = syscall(SYS_getdents64, h->fd, s->dents, sizeof(s->dents));
        if (n < 0 && used == 0)
            return fuse_reply_err(r, -errno);
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
    return fuse_reply_ok(r, s->reply + sizeof(struct fuse_out_header), used);
}

/* After making @name in @p: look it up for the reply, owned by the caller. */
static size_t reply_new_entry(struct req *r, struct node *p, const char *name, bool own)
{
    struct fuse_entry_out eo;
    struct node *n;
    int e = fuse_do_lookup(r->s, p->fd, name, &eo, &n);
    if (e < 0)
        return fuse_reply_err(r, e);
    if (own) {
        set_owner(r, n);
        struct stat st;
        if (fuse_node_stat(n, &st) == 0)
            fuse_attr_from(&eo.attr, &st);
    }
    return fuse_reply_ok(r, &eo, sizeof(eo));
}

/* Common checks of the calls that make an entry: the parent, the name at
 * @off, a writable share, room for the new inode. */
static int make_checks(struct req *r, size_t off, struct node **p, const char **name,
                       size_t *next)
{
    int e = fuse_arg_name(r, off, name, next);
    if (e < 0)
        return e;
    if (!(*p = fuse_req_node(r)))
        return -ENOENT;
    if (r->s->readonly)
        return -EROFS;
    return r->s->nodes_used >= r->s->max_inodes ? -ENFILE : 0;
}

size_t fuse_op_mkdir(struct req *r)
{
    const struct fuse_mkdir_in *m = fuse_arg_fixed(r, sizeof(*m));
    struct node *p;
    const char *name;
    int e = m ? make_checks(r, sizeof(*m), &p, &name, NULL) : -EINVAL;
    if (e == 0 && mkdirat(p->fd, name, m->mode & 07777) < 0)
        e = -errno;
    return e < 0 ? fuse_reply_err(r, e) : reply_new_entry(r, p, name, true);
}

size_t fuse_op_mknod(struct req *r)
{
    const struct fuse_mknod_in *m = fuse_arg_fixed(r, sizeof(*m));
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
    return e < 0 ? fuse_reply_err(r, e) : reply_new_entry(r, p, name, true);
}

size_t fuse_op_symlink(struct req *r)
{
    struct node *p;
    const char *name, *target;
    size_t next = 0;
    int e = make_checks(r, 0, &p, &name, &next);
    if (e == 0 &&
        (!(target = fuse_arg_str(r, next, NULL)) || !*target || strlen(target) >= PATH_MAX))
        e = -EINVAL;
    /* The target is the guest's text: stored, never followed here. */
    if (e == 0 && symlinkat(target, p->fd, name) < 0)
        e = -errno;
    return e < 0 ? fuse_reply_err(r, e) : reply_new_entry(r, p, name, true);
}

size_t fuse_op_link(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_link_in *l = fuse_arg_fixed(r, sizeof(*l));
    struct node *p, *n = l ? fuse_node_get(s, l->oldnodeid) : NULL;
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
        fuse_proc_name(n, pn);
        if (e == -ENOENT && n->type != S_IFLNK)
            e = linkat(s->proc_fd, pn, p->fd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
    }
    return e < 0 ? fuse_reply_err(r, e) : reply_new_entry(r, p, name, false);
}

size_t fuse_op_unlink(struct req *r, bool dir)
{
    struct node *p = fuse_req_node(r);
    const char *name;
    int e = fuse_arg_name(r, 0, &name, NULL);
    if (e == 0 && !p)
        e = -ENOENT;
    if (e == 0 && r->s->readonly)
        e = -EROFS;
    if (e == 0 && unlinkat(p->fd, name, dir ? AT_REMOVEDIR : 0) < 0)
        e = -errno;
    return fuse_reply_err(r, e);
}

size_t fuse_op_rename(struct req *r, bool two)
{
    struct fuse_server *s = r->s;
    size_t fixed = two ? sizeof(struct fuse_rename2_in) : sizeof(struct fuse_rename_in);
    const struct fuse_rename2_in *rn = fuse_arg_fixed(r, fixed); /* rename_in is its prefix */
    if (!rn)
        return fuse_reply_err(r, -EINVAL);
    uint32_t flags = two ? rn->flags : 0;
    const char *from, *to;
    size_t next = 0;
    struct node *p = fuse_req_node(r), *np = fuse_node_get(s, rn->newdir);
    int e = fuse_arg_name(r, fixed, &from, &next);
    if (e == 0)
        e = fuse_arg_name(r, next, &to, NULL);
    if (e == 0 && (!p || !np))
        e = -ENOENT;
    if (e == 0 && s->readonly)
        e = -EROFS;
    /* Not RENAME_WHITEOUT: it makes a device node (0/0). */
    if (e == 0 && (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE)))
        e = -EINVAL;
    if (e == 0 && renameat2(p->fd, from, np->fd, to, flags) < 0)
        e = -errno;
    return fuse_reply_err(r, e);
}

size_t fuse_op_readlink(struct req *r)
{
    struct node *n = fuse_req_node(r);
    if (!n)
        return fuse_reply_err(r, -ENOENT);
    ssize_t k = readlinkat(n->fd, "", (char *)r->s->reply, PATH_MAX);
    return k < 0 ? fuse_reply_err(r, -errno) : fuse_reply_ok(r, r->s->reply, (size_t)k);
}

size_t fuse_op_statfs(struct req *r)
{
    struct node *n = fuse_req_node(r);
    struct statfs st;
    if (!n)
        return fuse_reply_err(r, -ENOENT);
    if (fstatfs(n->fd, &st) < 0)
        return fuse_reply_err(r, -errno);
    struct fuse_statfs_out so = {.st = {.blocks = st.f_blocks, .bfree = st.f_bfree,
                                        .bavail = st.f_bavail, .files = st.f_files,
                                        .ffree = st.f_ffree, .bsize = (uint32_t)st.f_bsize,
                                        .namelen = (uint32_t)st.f_namelen,
                                        .frsize = (uint32_t)st.f_frsize}};
    return fuse_reply_ok(r, &so, sizeof(so));
}

size_t fuse_op_access(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_access_in *a = fuse_arg_fixed(r, sizeof(*a));
    struct node *n = fuse_req_node(r);
    if (!a || !n)
        return fuse_reply_err(r, !a ? -EINVAL : -ENOENT);
    if (s->readonly && (a->mask & W_OK))
        return fuse_reply_err(r, -EROFS);
    if (n->type == S_IFLNK)
        return fuse_reply_err(r, 0); /* symlinks grant everything; never followed */
    char p[16];
    fuse_proc_name(n, p);
    return fuse_reply_err(r, faccessat(s->proc_fd, p, (int)(a->mask & 7), 0) < 0 ? -errno : 0);
}

size_t fuse_op_fallocate(struct req *r)
{
    const struct fuse_fallocate_in *f = fuse_arg_fixed(r, sizeof(*f));
    struct handle *h = f ? fuse_handle_get(r->s, f->fh, false) : NULL;
    if (!h)
        return fuse_reply_err(r, !f ? -EINVAL : -EBADF);
    if (r->s->readonly)
        return fuse_reply_err(r, -EROFS);
    if (f->offset > INT64_MAX || f->length > INT64_MAX)
        return fuse_reply_err(r, -EINVAL);
    int rc = fallocate(h->fd, (int)f->mode, (off_t)f->offset, (off_t)f->length);
    return fuse_reply_err(r, rc < 0 ? -errno : 0);
}

size_t fuse_op_lseek(struct req *r)
{
    const struct fuse_lseek_in *l = fuse_arg_fixed(r, sizeof(*l));
    struct handle *h = l ? fuse_handle_get(r->s, l->fh, false) : NULL;
    if (!h)
        return fuse_reply_err(r, !l ? -EINVAL : -EBADF);
    if ((l->whence != SEEK_DATA && l->whence != SEEK_HOLE) || l->offset > INT64_MAX)
        return fuse_reply_err(r, -EINVAL);
    off_t o = lseek(h->fd, (off_t)l->offset, (int)l->whence);
    if (o < 0)
        return fuse_reply_err(r, -errno);
    struct fuse_lseek_out lo = {.offset = (uint64_t)o};
    return fuse_reply_ok(r, &lo, sizeof(lo));
}
