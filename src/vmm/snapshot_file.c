/* snapshot_file.c - the snapshot state file's format (snapshot_file.h):
 * a 24-byte header (magic "ARCVMSNP", u32 format version, u32 CRC-32C of
 * the state, u64 state length; little-endian), then the named sections. */
#include "vmm/snapshot_file.h"

#include "vmm/vm.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "DIR/.NAME.XXXXXX" next to @path, opened exclusively. */
int snapfile_open_temp(const char *path, char *tmp, size_t len)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(tmp, len, "%.*s.%s.XXXXXX", dirlen, path, slash ? slash + 1 : path) >= (int)len)
        return -ENAMETOOLONG;
    int fd = mkostemp(tmp, O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int snapfile_write(int fd, const struct snap_w *w)
{
    uint8_t hdr[SNAP_HDR];
    memcpy(hdr, SNAP_MAGIC, 8);
    uint32_t v = htole32(SNAP_FORMAT_VERSION), crc = htole32(snap_crc32c(0, w->buf, w->len));
    uint64_t len = htole64(w->len);
    memcpy(hdr + 8, &v, 4);
    memcpy(hdr + 12, &crc, 4);
    memcpy(hdr + 16, &len, 8);
    int r = write_all(fd, hdr, sizeof(hdr));
    return r < 0 ? r : write_all(fd, w->buf, w->len);
}

/* Read and check the state file: header, length, checksum, sections. The
 * state is returned in *@out (malloc'd). */
int snapfile_read(const char *path, uint8_t **out, size_t *len, unsigned *version, char *err,
                      size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open the snapshot file %s: %s", path, strerror(e));
        return -e;
    }
    uint8_t hdr[SNAP_HDR];
    uint8_t *buf = NULL;
    int r = -EPROTO;
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
    if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, SNAP_MAGIC, 8)) {
        snprintf(err, errlen, "%s is not an arcvm snapshot file (no ARCVMSNP header)", path);
        goto out;
    }
    uint32_t v, crc;
    uint64_t l;
    memcpy(&v, hdr + 8, 4);
    memcpy(&crc, hdr + 12, 4);
    memcpy(&l, hdr + 16, 8);
    v = le32toh(v);
    crc = le32toh(crc);
    l = le64toh(l);
    if (version)
        *version = v;
    if (v != SNAP_FORMAT_VERSION) {
        snprintf(err, errlen,
                 "%s has snapshot format version %u; this arcvm (%s) reads version %u only",
                 path, v, ARCVM_VERSION, SNAP_FORMAT_VERSION);
        r = -ENOTSUP;
        goto out;
    }
    struct stat st;
    if (l > SNAP_STATE_MAX || fstat(fd, &st) < 0 || (uint64_t)st.st_size != SNAP_HDR + l) {
        snprintf(err, errlen, "%s is truncated or has bytes after its state (%llu bytes, "
                 "the header says %llu)", path, (unsigned long long)st.st_size,
                 (unsigned long long)(SNAP_HDR + l));
        goto out;
    }
    buf = malloc(l ? l : 1);
    if (!buf) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (pread(fd, buf, l, SNAP_HDR) != (ssize_t)l) {
        snprintf(err, errlen, "cannot read the snapshot file %s", path);
        goto out;
    }
    if (snap_crc32c(0, buf, l) != crc) {
        snprintf(err, errlen, "%s is corrupt: its checksum does not match its contents", path);
        goto out;
    }
    if (snap_check(buf, l) < 0) {
        snprintf(err, errlen, "%s is malformed: its sections do not add up", path);
        goto out;
    }
    *out = buf;
    *len = l;
    buf = NULL;
    r = 0;
out:
    free(buf);
    close(fd);
    return r;
}

int vm_snapshot_version(const char *state_path, unsigned *version, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len;
    *version = 0;
    int r = snapfile_read(state_path, &buf, &len, version, err, errlen);
    free(buf);
    /* A newer format is still a snapshot whose version we can name. */
    return r == -ENOTSUP && *version ? 0 : r;
}

int snapfile_need(const uint8_t *st, size_t len, const char *name, struct snap_r *r, char *err,
                size_t errlen)
{
    if (snap_find(st, len, name, r) == 0)
        return 0;
    snprintf(err, errlen, "the snapshot has no %s section", name);
    return -EPROTO;
}

