/* kcache.c - the unpacked-kernel cache directory; see kcache.h. */
#include "host/kcache.h"

#include "base/log.h"
#include "host/unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "kernel-"
#define SUFFIX ".elf"
/* A temporary file this old was left by a process that died mid-write. */
#define STALE_TMP_S 3600

/* FNV-1a, 64 bits: a name, not a security boundary (the directory is the
 * user's own, mode 0700). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

int kcache_path(const char *dir, const struct stat *st, char *path, size_t pathlen)
{
    /* The format version goes into the name: a later arcvm that stores
     * something else never reads this one's entries. */
    static const char version[] = "arcvm-kcache-1";
    uint64_t id[] = {(uint64_t)st->st_dev,          (uint64_t)st->st_ino,
                     (uint64_t)st->st_size,         (uint64_t)st->st_mtim.tv_sec,
                     (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ctim.tv_sec,
                     (uint64_t)st->st_ctim.tv_nsec};
    uint64_t h = fnv(0xcbf29ce484222325ull, version, sizeof(version));
    h = fnv(h, id, sizeof(id));
    int n = snprintf(path, pathlen, "%s/" PREFIX "%016" PRIx64 SUFFIX, dir, h);
    return n < 0 || (size_t)n >= pathlen ? -ENAMETOOLONG : 0;
}

int kcache_map(const char *path, uint8_t **map, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
    } else if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        r = -ENOENT;
    } else {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            r = -errno;
        } else {
            *map = p;
            *len = (size_t)st.st_size;
            (void)futimens(fd, NULL); /* recently used: evicted last */
        }
    }
    close(fd);
    return r;
}

/* mkdir -p @dir, mode 0700 for what it creates. */
static int make_dirs(char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        int r = make_dirs(dir);
        *slash = '/';
        if (r < 0)
            return r;
    }
    return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

struct entry {
    char name[64];
    time_t mtime;
};

static int by_age(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : 0; /* newest first */
}

/* Keep the KCACHE_KEEP newest entries of @dir; remove stale temporaries. */
static void evict(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct entry e[64];
    unsigned n = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, PREFIX, strlen(PREFIX)) || l >= sizeof(e[0].name))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        bool entry = l > strlen(SUFFIX) && !strcmp(de->d_name + l - strlen(SUFFIX), SUFFIX);
        if (!entry) {
            if (strstr(de->d_name, SUFFIX ".tmp.") && now - st.st_mtime > STALE_TMP_S)
                (void)unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (n < sizeof(e) / sizeof(e[0])) {
            memcpy(e[n].name, de->d_name, l + 1);
            e[n++].mtime = st.st_mtime;
        }
    }
    qsort(e, n, sizeof(e[0]), by_age);
    for (unsigned i = KCACHE_KEEP; i < n; i++)
        (void)unlinkat(dirfd(d), e[i].name, 0);
    closedir(d);
}

int kcache_store(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    char dir[KCACHE_PATH_MAX], tmp[KCACHE_PATH_MAX + 16];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir) || !strrchr(dir, '/') ||
        snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "kernel cache path too long");
        return -ENAMETOOLONG;
    }
    *strrchr(dir, '/') = 0;
    int r = make_dirs(dir);
    if (r < 0) {
        snprintf(err, errlen, "cannot create the kernel cache directory %s: %s", dir, strerror(-r));
        return r;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot write in the kernel cache directory %s: %s", dir,
                 strerror(-r));
        return r;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = w < 0 ? -errno : -EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        (void)unlink(tmp);
        snprintf(err, errlen, "cannot store the unpacked kernel in %s: %s", dir, strerror(-r));
        return r;
    }
    evict(dir);
    return 0;
}

void kcache_drop(const char *path)
{
    (void)unlink(path);
}

int kcache_probe(const char *dir)
{
    char p[KCACHE_PATH_MAX];
    if (!dir || !*dir)
        return -EINVAL;
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
        return -ENAMETOOLONG;
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
            return access(p, W_OK | X_OK) == 0 ? 0 : -errno;
        }
        if (errno != ENOENT)
            return -errno;
        char *slash = strrchr(p, '/');
        if (!slash)
            return access(".", W_OK | X_OK) == 0 ? 0 : -errno;
        if (slash == p)
            slash[1] = 0; /* "/" itself */
        else
            *slash = 0;
    }
}

void kcache_kernel_free(struct kcache_kernel *k)
{
    if (k->mapped)
        munmap(k->data, k->len);
    else
        free(k->data);
    k->data = NULL;
    k->len = 0;
}

int kcache_unpacked(const char *dir, const struct stat *st, const uint8_t *img, size_t len,
                    kcache_usable_fn usable, void *arg, struct kcache_kernel *k, char *why,
                    size_t whylen)
{
    char path[KCACHE_PATH_MAX];
    bool use_cache = dir && *dir && kcache_path(dir, st, path, sizeof(path)) == 0;
    *k = (struct kcache_kernel){0};
    if (use_cache && kcache_map(path, &k->data, &k->len) == 0) {
        k->mapped = true;
        if (usable(k->data, k->len, arg, why, whylen) == 0) {
            log_info("booting the unpacked kernel cached in %s", path);
            return 0;
        }
        log_warn("kernel cache entry %s is unusable (%s); unpacking the kernel again", path, why);
        kcache_kernel_free(k);
        kcache_drop(path);
    }
    *k = (struct kcache_kernel){0};
    int r = unpack(img, len, UNPACK_MAX, &k->data, &k->len, why, whylen);
    if (r < 0)
        return r;
    if (usable(k->data, k->len, arg, why, whylen) < 0) {
        kcache_kernel_free(k);
        return -ENOEXEC;
    }
    if (!use_cache)
        return 0;
    char e[512];
    if (kcache_store(path, k->data, k->len, e, sizeof(e)) < 0)
        log_warn("%s; booting without it (--kernel-cache off stops trying)", e);
    else
        log_info("unpacked the kernel into %s; later boots start it directly", path);
    return 0;
}
