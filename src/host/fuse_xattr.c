/* fuse_xattr.c - the FUSE server's extended attributes (see fuse.c):
 * GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR.
 */
#include "host/fuse.h"
#include "host/fuse_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- extended attributes --------------------------------------------------- */

/* Open @n to reach its xattrs: regular files and directories only (the
 * calls that take a path would follow a symlink's guest-written target). */
static int xattr_fd(struct fuse_server *s, struct node *n)
{
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return -EOPNOTSUPP;
    return fuse_node_open(s, n, O_RDONLY | O_NONBLOCK);
}

/* Get or list: @name NULL lists. The guest asks the size first (size 0). */
static size_t xattr_get(struct req *r, const struct fuse_getxattr_in *g, const char *name)
{
    struct fuse_server *s = r->s;
    struct node *n = fuse_req_node(r);
    if (!n)
        return fuse_reply_err(r, -ENOENT);
    int fd = xattr_fd(s, n);
    if (fd < 0)
        return fuse_reply_err(r, fd);
    size_t cap = g->size ? g->size : FUSE_REPLY_MAX;
    if (cap > FUSE_REPLY_MAX)
        cap = FUSE_REPLY_MAX;
    ssize_t k = name ? fgetxattr(fd, name, s->reply, cap) : flistxattr(fd, (char *)s->reply, cap);
    int e = k < 0 ? -errno : 0;
    close(fd);
    if (e < 0)
        return fuse_reply_err(r, e == -ERANGE && !g->size ? -E2BIG : e);
    if (!g->size) {
        struct fuse_getxattr_out go = {.size = (uint32_t)k};
        return fuse_reply_ok(r, &go, sizeof(go));
    }
    return fuse_reply_ok(r, s->reply, (size_t)k);
}

size_t fuse_op_getxattr(struct req *r)
{
    const struct fuse_getxattr_in *g = fuse_arg_fixed(r, sizeof(*g));
    const char *name = g ? fuse_arg_str(r, sizeof(*g), NULL) : NULL;
    return name ? xattr_get(r, g, name) : fuse_reply_err(r, -EINVAL);
}

size_t fuse_op_listxattr(struct req *r)
{
    const struct fuse_getxattr_in *g = fuse_arg_fixed(r, sizeof(*g));
    return g ? xattr_get(r, g, NULL) : fuse_reply_err(r, -EINVAL);
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

size_t fuse_op_setxattr(struct req *r)
{
    struct fuse_server *s = r->s;
    /* Without FUSE_SETXATTR_EXT the kernel sends the 8-byte form. */
    const struct fuse_setxattr_in *x = fuse_arg_fixed(r, FUSE_COMPAT_SETXATTR_IN_SIZE);
    size_t next = 0;
    const char *name = x ? fuse_arg_str(r, FUSE_COMPAT_SETXATTR_IN_SIZE, &next) : NULL;
    struct node *n = fuse_req_node(r);
    if (!name || !n)
        return fuse_reply_err(r, !name ? -EINVAL : -ENOENT);
    if (x->size > r->arglen - next)
        return fuse_reply_err(r, -EINVAL);
    int e = xattr_writable(s, name), fd = e < 0 ? e : xattr_fd(s, n);
    if (fd < 0)
        return fuse_reply_err(r, fd);
    e = fsetxattr(fd, name, r->arg + next, x->size, (int)x->flags) < 0 ? -errno : 0;
    close(fd);
    return fuse_reply_err(r, e);
}

size_t fuse_op_removexattr(struct req *r)
{
    struct fuse_server *s = r->s;
    const char *name = fuse_arg_str(r, 0, NULL);
    struct node *n = fuse_req_node(r);
    if (!name || !n)
        return fuse_reply_err(r, !name ? -EINVAL : -ENOENT);
    int e = xattr_writable(s, name), fd = e < 0 ? e : xattr_fd(s, n);
    if (fd < 0)
        return fuse_reply_err(r, fd);
    e = fremovexattr(fd, name) < 0 ? -errno : 0;
    close(fd);
    return fuse_reply_err(r, e);
}
