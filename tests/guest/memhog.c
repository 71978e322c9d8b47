/* memhog.c - guest-side memory load for the balloon tests (static, runs in
 * the busybox initramfs): allocate MIB MiB, write every page so the host
 * really has to back it, then hold it or give it back.
 *
 * Usage: memhog MIB [SECONDS]
 *   Touches MIB MiB, prints "memhog: touched MIB MiB", keeps the memory
 *   SECONDS seconds (default 0; -1: until killed), frees it and prints
 *   "memhog: freed MIB MiB". Exit status 1 when the memory cannot be had
 *   (the allocation fails; an OOM kill ends it with SIGKILL instead).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: memhog MIB [SECONDS]\n");
        return 2;
    }
    char *end;
    unsigned long mib = strtoul(argv[1], &end, 10);
    if (*end || mib == 0 || mib > (1ul << 20)) {
        fprintf(stderr, "memhog: '%s' is not a size in MiB\n", argv[1]);
        return 2;
    }
    long hold = argc == 3 ? strtol(argv[2], NULL, 10) : 0;
    size_t len = mib << 20;
    /* Anonymous private memory, not malloc: munmap gives it back to the
     * guest kernel at once, which is what a balloon test wants to see. */
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "memhog: cannot map %lu MiB: %s\n", mib, strerror(errno));
        return 1;
    }
    long page = sysconf(_SC_PAGESIZE);
    /* A non-zero byte in every page: the guest allocates each page, and so
     * must the host behind it. */
    for (size_t off = 0; off < len; off += (size_t)page)
        p[off] = (unsigned char)(off / (size_t)page) | 1;
    printf("memhog: touched %lu MiB\n", mib);
    fflush(stdout);
    if (hold < 0)
        for (;;)
            pause();
    if (hold > 0)
        sleep((unsigned)hold);
    munmap(p, len);
    printf("memhog: freed %lu MiB\n", mib);
    return 0;
}
