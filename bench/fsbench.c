/* fsbench.c - the guest half of bench/fs.sh (static; the guest image has no
 * fio): file-system operations on a mounted shared directory, each timed
 * with CLOCK_MONOTONIC, one result line "FSBENCH <name> <value>" each.
 *
 *   fsbench seqwrite FILE MIB     write MIB MiB in 1 MiB writes, fsync:
 *                                 seq_write_mibs
 *   fsbench seqread FILE          read it whole in 1 MiB reads: seq_read_mibs
 *   fsbench randread FILE SECS    4 KiB preads at random aligned offsets,
 *                                 one at a time (O_DIRECT when the file
 *                                 system takes it): rand_read_iops
 *   fsbench create DIR N          N files of 1 KiB (create, write, close)
 *                                 in DIR: create_per_s; then, with the
 *                                 guest's caches dropped, stat() each:
 *                                 stat_per_s
 *   fsbench time NAME CMD ARGS... run CMD, print its wall time: NAME_s
 * Drop the guest's page cache before seqread (fs.sh does).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fsbench: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void *buffer(size_t n)
{
    void *p;
    if (posix_memalign(&p, 4096, n))
        exit(1);
    memset(p, 0x5a, n);
    return p;
}

static void drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd >= 0) {
        (void)!write(fd, "3\n", 2);
        close(fd);
    }
}

static int seqwrite(const char *path, long mib)
{
    char *b = buffer(MIB);
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open", path);
    for (long i = 0; i < mib; i++) {
        b[0] = (char)i; /* not all pages alike */
        if (write(fd, b, MIB) != (ssize_t)MIB)
            die("write", path);
    }
    if (fsync(fd) < 0)
        die("fsync", path);
    close(fd);
    printf("FSBENCH seq_write_mibs %.1f\n", (double)mib / (now() - t0));
    return 0;
}

static int seqread(const char *path)
{
    char *b = buffer(MIB);
    double t0 = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open", path);
    uint64_t total = 0;
    for (ssize_t n; (n = read(fd, b, MIB)) != 0; total += (uint64_t)n)
        if (n < 0)
            die("read", path);
    close(fd);
    printf("FSBENCH seq_read_mibs %.1f\n", (double)total / MIB / (now() - t0));
    return 0;
}

static int randread(const char *path, double secs)
{
    char *b = buffer(4096);
    int fd = open(path, O_RDONLY | O_DIRECT);
    const char *mode = "direct";
    if (fd < 0) {
        fd = open(path, O_RDONLY);
        mode = "cached";
    }
    if (fd < 0)
        die("open", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < 4096)
        die("size of", path);
    uint64_t blocks = (uint64_t)st.st_size / 4096, n = 0, seed = 88172645463325252ull;
    double t0 = now(), t;
    do {
        for (int k = 0; k < 64; k++, n++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            if (pread(fd, b, 4096, (off_t)(seed % blocks) * 4096) != 4096)
                die("pread", path);
        }
    } while ((t = now() - t0) < secs);
    close(fd);
    printf("FSBENCH rand_read_iops %.0f %s\n", (double)n / t, mode);
    return 0;
}

static int create(const char *dir, long n)
{
    char *b = buffer(1024), path[4096];
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        die("mkdir", dir);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/f%05ld", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, b, 1024) != 1024)
            die("create", path);
        close(fd);
    }
    printf("FSBENCH create_per_s %.0f\n", (double)n / (now() - t0));
    drop_caches();
    t0 = now();
    for (long i = 0; i < n; i++) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/f%05ld", dir, i);
        if (stat(path, &st) < 0 || st.st_size != 1024)
            die("stat", path);
    }
    printf("FSBENCH stat_per_s %.0f\n", (double)n / (now() - t0));
    return 0;
}

static int timed(const char *name, char **argv)
{
    double t0 = now();
    pid_t p = fork();
    if (p == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "fsbench: %s failed\n", argv[0]);
        return 1;
    }
    printf("FSBENCH %s_s %.2f\n", name, now() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *c = argc > 2 ? argv[1] : "";
    if (!strcmp(c, "seqwrite") && argc == 4)
        return seqwrite(argv[2], atol(argv[3]));
    if (!strcmp(c, "seqread") && argc == 3)
        return seqread(argv[2]);
    if (!strcmp(c, "randread") && argc == 4)
        return randread(argv[2], atof(argv[3]));
    if (!strcmp(c, "create") && argc == 4)
        return create(argv[2], atol(argv[3]));
    if (!strcmp(c, "time") && argc >= 4)
        return timed(argv[2], argv + 3);
    fprintf(stderr, "usage: fsbench seqwrite FILE MIB | seqread FILE | randread FILE SECS | "
                    "create DIR N | time NAME CMD ARGS...\n");
    return 2;
}
