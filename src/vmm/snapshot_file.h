/* snapshot_file.h - the snapshot files themselves, shared by create,
 * restore (snapshot.c) and merge (snapshot_merge.c): the state file's
 * header and checks, temporary files renamed into place, section lookup. */
#ifndef ARCVM_SNAPSHOT_FILE_H
#define ARCVM_SNAPSHOT_FILE_H

#include "base/snap.h"

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "ARCVMSNP"
#define SNAP_FORMAT_VERSION 1u
#define SNAP_HDR 24
/* The state of the largest VM is a few MiB (vCPUs of ~12 KiB each): a
 * header claiming more is not ours. */
#define SNAP_STATE_MAX (64u << 20)
#define SNAP_PAGE 4096ull

/* The "memory" section's first byte. */
enum { MEM_FULL, MEM_DIFF };

/* "DIR/.NAME.XXXXXX" next to @path, created exclusively: its fd, or -errno. */
int snapfile_open_temp(const char *path, char *tmp, size_t len);
/* The header and @w's sections to @fd. */
int snapfile_write(int fd, const struct snap_w *w);
/* Read and check a state file: header, length, checksum, sections. The
 * state is returned in *@out (malloc'd); @version (may be NULL) gets the
 * header's version even when it is not ours. -errno with a sentence. */
int snapfile_read(const char *path, uint8_t **out, size_t *len, unsigned *version, char *err,
               size_t errlen);
/* Section @name of the state, or -EPROTO saying it is missing. */
int snapfile_need(const uint8_t *st, size_t len, const char *name, struct snap_r *r, char *err,
         size_t errlen);

#endif
