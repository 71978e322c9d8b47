/* kcache.h - a directory of unpacked kernels, so that a compressed kernel
 * is unpacked once, not at every boot.
 *
 * An entry is named after the identity of the kernel file it came from
 * (device, inode, size, modification and change times): replacing or
 * rewriting the file, even in place, gives it a new name, so a stale entry
 * is never used. Entries are written to a temporary file and renamed into
 * place, so a reader sees a whole entry or none, even with several arcvm
 * processes at once. The directory keeps the KCACHE_KEEP most recently
 * used entries. What an entry holds is the caller's business; callers
 * check it before use (kcache_drop() removes a bad one).
 */
#ifndef ARCVM_HOST_KCACHE_H
#define ARCVM_HOST_KCACHE_H

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

#endif
