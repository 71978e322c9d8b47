/* jail.c - build and remove the jail's directory tree (jail.h). */
#include "jailer/jail.h"

#include "jailer/args.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int jail_mkdirs(const char *path, char *first)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir(buf, 0755) == 0) {
            if (!first[0])
                strcpy(first, buf);
        } else {
            struct stat st;
            if (errno != EEXIST)
                return -errno;
            if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
                return -ENOTDIR;
        }
        *p = saved;
        if (!saved)
            return 0;
    }
}

void jail_rmdirs(const char *path, const char *first)
{
    size_t fl = strlen(first);
    if (!fl || strncmp(path, first, fl) || (path[fl] && path[fl] != '/'))
        return;
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    while (strlen(buf) >= fl) {
        if (rmdir(buf) < 0)
            return;
        char *s = strrchr(buf, '/');
        if (!s || s == buf)
            return;
        *s = 0;
    }
}

int jail_create(struct jail *j, const char *base, const char *name, const char *id, char *err,
                size_t errlen)
{
    memset(j, 0, sizeof(*j));
    char parent[PATH_MAX];
    /* Room below root for the exec file's name (NAME_MAX) and /dev/net/tun. */
    if (jailer_join3(j->dir, sizeof(j->dir), base, name, id) < 0 ||
        strlen(j->dir) + sizeof("/root/") + NAME_MAX + 1 > sizeof(j->root))
        return jailer_errf(err, errlen, "the jail path under '%s' is too long", base);
    strcpy(parent, j->dir);
    jailer_pathf(j->root, sizeof(j->root), "%s/root", j->dir);
    *strrchr(parent, '/') = 0;
    int r = jail_mkdirs(parent, j->first_created);
    if (r < 0) {
        jail_rmdirs(parent, j->first_created);
        return jailer_errf(err, errlen, "cannot create the directory %s: %s", parent, strerror(-r));
    }
    if (mkdir(j->dir, 0755) < 0) {
        int e = errno;
        jail_rmdirs(parent, j->first_created);
        if (e == EEXIST)
            return jailer_errf(err, errlen, "a jail with id '%s' already exists: %s", id, j->dir);
        return jailer_errf(err, errlen, "cannot create the jail %s: %s", j->dir, strerror(e));
    }
    j->dir_created = true;
    if (mkdir(j->root, 0755) < 0) {
        int e = errno;
        jail_remove(j);
        return jailer_errf(err, errlen, "cannot create %s: %s", j->root, strerror(e));
    }
    return 0;
}

/* Copy @in to @out with copy_file_range, or read/write where that is not
 * supported between the two file systems. Returns 0 or -errno. */
static int copy_fd(int in, int out)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            return -errno;
        if (n < 0)
            break;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                return -errno;
            off += w > 0 ? w : 0;
        }
    }
}

int jail_copy_exec(const struct jail *j, const char *src, const char *name, char *err,
                   size_t errlen)
{
    char dst[PATH_MAX];
    if (jailer_pathf(dst, sizeof(dst), "%s/%s", j->root, name) < 0)
        return jailer_errf(err, errlen, "the path %s/%s is too long", j->root, name);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return jailer_errf(err, errlen, "cannot open the exec file %s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    if (out < 0) {
        int e = errno;
        close(in);
        return jailer_errf(err, errlen, "cannot create %s: %s", dst, strerror(e));
    }
    int r = copy_fd(in, out);
    if (r == 0 && fchmod(out, 0755) < 0)
        r = -errno;
    if (close(out) < 0 && r == 0)
        r = -errno;
    close(in);
    if (r < 0)
        return jailer_errf(err, errlen, "cannot copy %s to %s: %s", src, dst, strerror(-r));
    return 0;
}

/* One device node in the jail, numbered as the host's @host (or @fallback
 * if the host has none; 0 means skip it then). */
static int make_node(const struct jail *j, const char *host, dev_t fallback, uid_t uid, gid_t gid,
                     char *err, size_t errlen)
{
    struct stat st;
    dev_t dev = fallback;
    if (stat(host, &st) == 0 && S_ISCHR(st.st_mode))
        dev = st.st_rdev;
    if (!dev)
        return 0;
    char path[PATH_MAX];
    jailer_pathf(path, sizeof(path), "%s%s", j->root, host);
    if (mknod(path, S_IFCHR | 0600, dev) < 0)
        return jailer_errf(err, errlen, "cannot create the device node %s: %s", path,
                           strerror(errno));
    if (chown(path, uid, gid) < 0)
        return jailer_errf(err, errlen, "cannot give %s to %u:%u: %s", path, uid, gid,
                           strerror(errno));
    return 0;
}

int jail_populate(const struct jail *j, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    static const char *const dirs[] = {"/dev", "/dev/net", "/run"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        jailer_pathf(path, sizeof(path), "%s%s", j->root, dirs[i]);
        if (mkdir(path, 0755) < 0)
            return jailer_errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    }
    /* /run is where Firecracker's default API socket goes: the VMM's own. */
    jailer_pathf(path, sizeof(path), "%s/run", j->root);
    if (chown(path, uid, gid) < 0 || chown(j->root, uid, gid) < 0)
        return jailer_errf(err, errlen, "cannot give %s to %u:%u: %s", j->root, uid, gid,
                           strerror(errno));
    /* Without a host node, the numbers Linux fixes for them
     * (Documentation/admin-guide/devices.txt: misc 232 and 200);
     * userfaultfd's minor is dynamic, so only a host node gives it. */
    if (make_node(j, "/dev/kvm", makedev(10, 232), uid, gid, err, errlen) < 0 ||
        make_node(j, "/dev/net/tun", makedev(10, 200), uid, gid, err, errlen) < 0 ||
        make_node(j, "/dev/userfaultfd", 0, uid, gid, err, errlen) < 0)
        return -1;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    remove(path);
    return 0; /* go on: remove as much as possible */
}

void jail_remove(struct jail *j)
{
    if (j->dir_created) {
        nftw(j->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        j->dir_created = false;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", j->dir);
    char *s = strrchr(parent, '/');
    if (s && j->first_created[0]) {
        *s = 0;
        jail_rmdirs(parent, j->first_created);
        j->first_created[0] = 0;
    }
}
