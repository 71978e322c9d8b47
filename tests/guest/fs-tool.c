/* fs-tool.c - what the shared-directory tests need and busybox lacks
 * (static; runs in the test guest and on the host alike).
 *
 * Usage:
 *   fs-tool setxattr FILE NAME VALUE   set an extended attribute
 *   fs-tool getxattr FILE NAME         print its value
 *   fs-tool listxattr FILE             print the names, one a line
 *   fs-tool pattern-write FILE MIB     write MIB MiB, each 4 KiB block
 *                                      stamped with its own number
 *   fs-tool pattern-check FILE MIB     check such a file: size and every
 *                                      block; prints "pattern ok MIB MiB"
 *   fs-tool as UID:GID PROG [ARG]...   run PROG as that user and group, with
 *                                      no supplementary groups (busybox's
 *                                      setpriv has no --reuid)
 * A failure prints "fs-tool: <what>: <strerror>" and exits 1: the error's
 * name is what the tests look for (e.g. "Operation not supported").
 *
 * The pattern needs no checksum on either side: a block in the wrong place,
 * lost or doubled shows as a wrong stamp at a known offset.
 */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define BLOCK 4096
#define CHUNK (1u << 20) /* one write or read: 256 blocks */

static int fail(const char *what, const char *arg)
{
    printf("fs-tool: %s %s: %s\n", what, arg, strerror(errno));
    return 1;
}

/* The stamp of block @b: its number and a constant, in every 16 bytes. */
static void stamp(uint8_t *p, uint64_t b)
{
    for (unsigned i = 0; i < BLOCK; i += 16) {
        uint64_t w[2] = {b, 0x61726376d5f5e2e1ull ^ (b * 0x9e3779b97f4a7c15ull)};
        memcpy(p + i, w, 16);
    }
}

static int pattern(const char *file, long mib, int check)
{
    static uint8_t buf[CHUNK], want[BLOCK];
    int fd = check ? open(file, O_RDONLY) : open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fail("open", file);
    uint64_t blocks = (uint64_t)mib * (CHUNK / BLOCK);
    for (uint64_t b = 0; b < blocks; b += CHUNK / BLOCK) {
        if (!check)
            for (unsigned i = 0; i < CHUNK / BLOCK; i++)
                stamp(buf + (size_t)i * BLOCK, b + i);
        size_t done = 0;
        while (done < CHUNK) {
            ssize_t k = check ? read(fd, buf + done, CHUNK - done)
                              : write(fd, buf + done, CHUNK - done);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return fail(check ? "read" : "write", file);
            if (k == 0) {
                printf("fs-tool: %s ends at block %" PRIu64 "\n", file, b + done / BLOCK);
                return 1;
            }
            done += (size_t)k;
        }
        for (unsigned i = 0; check && i < CHUNK / BLOCK; i++) {
            stamp(want, b + i);
            if (memcmp(buf + (size_t)i * BLOCK, want, BLOCK)) {
                printf("fs-tool: %s: block %" PRIu64 " is wrong\n", file, b + i);
                return 1;
            }
        }
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return fail("stat", file);
    if ((uint64_t)st.st_size != blocks * BLOCK) {
        printf("fs-tool: %s has %lld bytes, not %" PRIu64 "\n", file, (long long)st.st_size,
               blocks * BLOCK);
        return 1;
    }
    if (!check && fsync(fd) < 0)
        return fail("fsync", file);
    close(fd);
    printf("pattern %s %ld MiB\n", check ? "ok" : "written", mib);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "setxattr") && argc == 5) {
        if (setxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0) < 0)
            return fail("setxattr", argv[3]);
        return 0;
    }
    if (!strcmp(cmd, "getxattr") && argc == 4) {
        char v[4096];
        ssize_t k = getxattr(argv[2], argv[3], v, sizeof(v) - 1);
        if (k < 0)
            return fail("getxattr", argv[3]);
        v[k] = 0;
        printf("%s\n", v);
        return 0;
    }
    if (!strcmp(cmd, "listxattr") && argc == 3) {
        char v[4096];
        ssize_t k = listxattr(argv[2], v, sizeof(v));
        if (k < 0)
            return fail("listxattr", argv[2]);
        for (ssize_t i = 0; i < k; i += (ssize_t)strlen(v + i) + 1)
            printf("%s\n", v + i);
        return 0;
    }
    if ((!strcmp(cmd, "pattern-write") || !strcmp(cmd, "pattern-check")) && argc == 4) {
        long mib = strtol(argv[3], NULL, 10);
        if (mib <= 0 || mib > 65536) {
            fprintf(stderr, "fs-tool: MIB must be 1 to 65536\n");
            return 2;
        }
        return pattern(argv[2], mib, !strcmp(cmd, "pattern-check"));
    }
    if (!strcmp(cmd, "as") && argc >= 4) {
        unsigned uid, gid;
        if (sscanf(argv[2], "%u:%u", &uid, &gid) != 2) {
            fprintf(stderr, "fs-tool: as UID:GID PROG [ARG]...\n");
            return 2;
        }
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            return fail("as", argv[2]);
        execvp(argv[3], argv + 3);
        return fail("exec", argv[3]);
    }
    fprintf(stderr, "usage: fs-tool setxattr FILE NAME VALUE | getxattr FILE NAME | "
                    "listxattr FILE | pattern-write FILE MIB | pattern-check FILE MIB | "
                    "as UID:GID PROG [ARG]...\n");
    return 2;
}
