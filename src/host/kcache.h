/* kcache.h - a directory of unpacked kernels, so that a compressed kernel
 * is unpacked once, not at every boot.
 *
 * An entry is named after the identity of the kernel file it came from
 * (device, inode, size, modification and change times): replacing or
 * rewriting the file, even in place, gives it a new name, so a stale entry
 * is never used. Entries are written to a temporary file and renamed into
 * place, so a reader sees a whole entry or none, even with several arcvm
 * processes at once. The directory keeps the KCACHE_KEEP most recently
 * used entries. What an entry holds is the caller's business (x86: the
 * kernel's ELF out of a bzImage; arm64: the Image out of an Image.gz);
 * callers check it before use (kcache_drop() removes a bad one), and
 * kcache_unpacked() does the whole look-up, unpack, check and store.
 */
#ifndef ARCVM_HOST_KCACHE_H
#define ARCVM_HOST_KCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define KCACHE_KEEP 8
#define KCACHE_PATH_MAX 4200

/* The entry's path for a kernel file with status @st, in @path. 0, or
 * -ENAMETOOLONG. */
int kcache_path(const char *dir, const struct stat *st, char *path, size_t pathlen);

/* Map the entry at @path read-only. 0 with *map and *len set (munmap() it),
 * -ENOENT when there is none, or another -errno. A hit marks the entry as
 * recently used. */
int kcache_map(const char *path, uint8_t **map, size_t *len);

/* Store @len bytes as the entry at @path, creating the directory (mode
 * 0700) as needed, then drop the least recently used entries beyond
 * KCACHE_KEEP. 0, or -errno with a sentence in @err. */
int kcache_store(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* Remove the entry at @path (it turned out to be unusable). */
void kcache_drop(const char *path);

/* Whether entries can be stored in @dir without creating anything now: 0
 * when @dir, or the nearest ancestor that exists, is a writable directory;
 * else -errno (-ENOTDIR: a file is in the way). */
int kcache_probe(const char *dir);

/* An unpacked kernel: a cache entry mapped read-only, or a malloc'd buffer. */
struct kcache_kernel {
    uint8_t *data;
    size_t len;
    bool mapped; /* data is a kcache_map() mapping (else malloc'd) */
};

/* Says whether the unpacked bytes are a kernel the caller can boot: 0, or
 * -1 with the reason in @why. */
typedef int (*kcache_usable_fn)(const uint8_t *data, size_t len, void *arg, char *why,
                                size_t whylen);

/* The unpacked form of the compressed kernel @img (@len bytes, xz or gzip)
 * of the kernel file with status @st: the entry in cache directory @dir
 * when there is one @usable accepts (an unusable one is dropped), else
 * unpacked now and, when @dir is set, stored for the next boot; what
 * happened is logged. 0 with @k filled (release it with
 * kcache_kernel_free()); -ENOTSUP when @img is in neither format; another
 * -errno with the reason in @why (corrupt stream, too large, or what
 * @usable said of it). A failure to store is only a warning. */
int kcache_unpacked(const char *dir, const struct stat *st, const uint8_t *img, size_t len,
                    kcache_usable_fn usable, void *arg, struct kcache_kernel *k, char *why,
                    size_t whylen);
void kcache_kernel_free(struct kcache_kernel *k);

#endif
