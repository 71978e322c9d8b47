/* cgroup.c - the jail's cgroup v2 (cgroup.h). */
#include "jailer/cgroup.h"

#include "jailer/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read a small file into @buf as a string. Returns 0 or -errno. */
static int read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off + 1 < len) {
        ssize_t n = read(fd, buf + off, len - 1 - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    buf[off] = 0;
    close(fd);
    return 0;
}

/* Write @s to a cgroup file in one write(), as the kernel wants. Returns 0
 * or -errno. */
static int write_text(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, s, strlen(s));
    int r = n < 0 ? -errno : (size_t)n == strlen(s) ? 0 : -EIO;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    return r;
}

/* True if @word is one of the space-separated words of @list. */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ' || p[n] == '\n'))
            return true;
    return false;
}

/* Enable controller @ctrl for the children of @dir. */
static int enable_in(const char *dir, const char *ctrl, char *err, size_t errlen)
{
    char path[PATH_MAX], list[1024], cmd[80];
    jailer_pathf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
    if (read_text(path, list, sizeof(list)) == 0 && has_word(list, ctrl))
        return 0;
    jailer_pathf(path, sizeof(path), "%s/cgroup.controllers", dir);
    if (read_text(path, list, sizeof(list)) < 0 || !has_word(list, ctrl))
        return jailer_errf(err, errlen, "the cgroup v2 controller '%s' is not available in %s",
                           ctrl, dir);
    jailer_pathf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
    snprintf(cmd, sizeof(cmd), "+%s", ctrl);
    int r = write_text(path, cmd);
    if (r < 0)
        return jailer_errf(err, errlen, "cannot enable the cgroup controller '%s' in %s: %s", ctrl,
                           dir, strerror(-r));
    return 0;
}

/* Enable the controller of each value (the part of its file name before
 * the dot) at every level from @root down to the parent of cg->dir. */
static int enable_controllers(const struct jail_cgroup *cg, const char *root,
                              const struct jailer_cgroup *vals, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char ctrl[JAILER_CGROUP_NAME_MAX];
        snprintf(ctrl, sizeof(ctrl), "%.*s", (int)strcspn(vals[i].file, "."), vals[i].file);
        if (!strcmp(ctrl, "cgroup"))
            continue; /* the core's own files: no controller */
        char level[PATH_MAX];
        snprintf(level, sizeof(level), "%s", root);
        size_t rl = strlen(root);
        const char *rest = cg->dir + rl;
        for (;;) {
            if (enable_in(level, ctrl, err, errlen) < 0)
                return -1;
            const char *next = strchr(rest + 1, '/');
            if (!next)
                break; /* level is now the parent of cg->dir */
            snprintf(level, sizeof(level), "%.*s", (int)(next - cg->dir), cg->dir);
            rest = next;
        }
    }
    return 0;
}

/* Note where this process's cgroup is, to go back there on failure. */
static int find_home(struct jail_cgroup *cg, const char *root, char *err, size_t errlen)
{
    char text[4096], own[PATH_MAX];
    if (read_text("/proc/self/cgroup", text, sizeof(text)) < 0 ||
        jailer_own_cgroup(text, own, sizeof(own)) < 0)
        return jailer_errf(err, errlen,
                           "cannot find this process's cgroup v2 in /proc/self/cgroup");
    if (snprintf(cg->home_procs, sizeof(cg->home_procs), "%s%s/cgroup.procs", root,
                 strcmp(own, "/") ? own : "") >= (int)sizeof(cg->home_procs))
        return jailer_errf(err, errlen, "the cgroup path %s%s is too long", root, own);
    return 0;
}

/* Create the directories, write the values, move in. */
static int setup_steps(struct jail_cgroup *cg, const char *root, const char *id,
                       const struct jailer_cgroup *vals, size_t n, char *err, size_t errlen)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", cg->dir);
    *strrchr(parent, '/') = 0;
    int r = jail_mkdirs(parent, cg->first_created);
    if (r < 0)
        return jailer_errf(err, errlen, "cannot create the cgroup %s: %s", parent, strerror(-r));
    if (enable_controllers(cg, root, vals, n, err, errlen) < 0)
        return -1;
    if (mkdir(cg->dir, 0755) < 0) {
        if (errno == EEXIST)
            return jailer_errf(err, errlen, "the cgroup of a jail with id '%s' already exists: %s",
                               id, cg->dir);
        return jailer_errf(err, errlen, "cannot create the cgroup %s: %s", cg->dir,
                           strerror(errno));
    }
    cg->created = true;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        jailer_pathf(path, sizeof(path), "%s/%s", cg->dir, vals[i].file);
        r = write_text(path, vals[i].value);
        if (r < 0)
            return jailer_errf(err, errlen, "cannot write '%s' to %s: %s", vals[i].value, path,
                               strerror(-r));
    }
    if (find_home(cg, root, err, errlen) < 0)
        return -1;
    char path[PATH_MAX], pid[24];
    jailer_pathf(path, sizeof(path), "%s/cgroup.procs", cg->dir);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    r = write_text(path, pid);
    if (r < 0)
        return jailer_errf(err, errlen, "cannot move the jailer into the cgroup %s: %s", cg->dir,
                           strerror(-r));
    cg->joined = true;
    return 0;
}

int cgroup_setup(struct jail_cgroup *cg, const char *parent, const char *id,
                 const struct jailer_cgroup *vals, size_t n, char *err, size_t errlen)
{
    memset(cg, 0, sizeof(*cg));
    enum { MOUNTS_MAX = 1 << 20 }; /* /proc/mounts of a busy host */
    char root[PATH_MAX], *mounts = malloc(MOUNTS_MAX);
    if (!mounts)
        return jailer_errf(err, errlen, "out of memory");
    int r = read_text("/proc/mounts", mounts, MOUNTS_MAX) < 0
                ? -1
                : jailer_cgroup2_root(mounts, root, sizeof(root));
    free(mounts);
    if (r < 0)
        return jailer_errf(err, errlen, "no cgroup v2 hierarchy is mounted (see /proc/mounts)");
    /* Room below dir for "/cgroup.subtree_control" and a --cgroup file name. */
    if (jailer_join3(cg->dir, sizeof(cg->dir), root, parent, id) < 0 ||
        strlen(cg->dir) + 2 + JAILER_CGROUP_NAME_MAX + sizeof("cgroup.subtree_control") >
            sizeof(cg->dir))
        return jailer_errf(err, errlen, "the cgroup path under %s is too long", root);
    if (setup_steps(cg, root, id, vals, n, err, errlen) < 0) {
        cgroup_remove(cg);
        return -1;
    }
    return 0;
}

void cgroup_remove(struct jail_cgroup *cg)
{
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (cg->joined && write_text(cg->home_procs, pid) == 0)
        cg->joined = false;
    if (cg->created && rmdir(cg->dir) == 0)
        cg->created = false;
    if (!cg->created && cg->first_created[0]) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", cg->dir);
        *strrchr(parent, '/') = 0;
        jail_rmdirs(parent, cg->first_created);
        cg->first_created[0] = 0;
    }
}
