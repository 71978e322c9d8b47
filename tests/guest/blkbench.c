/* blkbench.c - block-device benchmark run inside benchmark guests (static;
 * the guest image has no fio and its libraries).
 *
 * O_DIRECT I/O on a whole device, each pattern for a fixed time:
 *   seq-read / seq-write   1 MiB requests, one stream
 *   rand-read / rand-write 4 KiB requests at random aligned offsets, with
 *                          THREADS threads in parallel (queue depth THREADS)
 * Usage: blkbench DEVICE [SECONDS [THREADS]]
 * Output: one line "BLKBENCH seq_read_mibs=.. seq_write_mibs=..
 *         rand_read_iops=.. rand_write_iops=..".
 * It writes to the device: give it a scratch disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

static const char *dev;
static double seconds = 5;
static uint64_t dev_size;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct job {
    int write;
    size_t bs;
    int random;
    unsigned seed;
    uint64_t ops;
    int err;
};

static void *run(void *arg)
{
    struct job *j = arg;
    int fd = open(dev, (j->write ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0) {
        j->err = errno;
        return NULL;
    }
    void *buf;
    if (posix_memalign(&buf, 4096, j->bs)) {
        j->err = ENOMEM;
        close(fd);
        return NULL;
    }
    memset(buf, 0x5a, j->bs);
    uint64_t blocks = dev_size / j->bs, off = 0;
    double end = now() + seconds;
    while (now() < end) {
        for (int k = 0; k < 16; k++) { /* check the clock every 16 ops */
            if (j->random)
                off = ((uint64_t)rand_r(&j->seed) * 2654435761u % blocks) * j->bs;
            ssize_t n = j->write ? pwrite(fd, buf, j->bs, (off_t)off)
                                 : pread(fd, buf, j->bs, (off_t)off);
            if (n != (ssize_t)j->bs) {
                j->err = n < 0 ? errno : EIO;
                goto out;
            }
            j->ops++;
            if (!j->random)
                off = (off + j->bs) % (blocks * j->bs);
        }
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

/* Operations per second of @threads parallel jobs. */
static double measure(int write, size_t bs, int random, int threads)
{
    pthread_t t[64];
    struct job j[64];
    double start = now();
    for (int i = 0; i < threads; i++) {
        j[i] = (struct job){write, bs, random, (unsigned)(i * 7919 + 1), 0, 0};
        pthread_create(&t[i], NULL, run, &j[i]);
    }
    uint64_t ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        if (j[i].err) {
            fprintf(stderr, "blkbench: %s: %s\n", dev, strerror(j[i].err));
            exit(1);
        }
        ops += j[i].ops;
    }
    return ops / (now() - start);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: blkbench DEVICE [SECONDS [THREADS]]\n");
        return 2;
    }
    dev = argv[1];
    if (argc > 2)
        seconds = atof(argv[2]);
    int threads = argc > 3 ? atoi(argv[3]) : 4;
    if (threads < 1 || threads > 64)
        threads = 4;
    int fd = open(dev, O_RDONLY);
    if (fd < 0 || ioctl(fd, BLKGETSIZE64, &dev_size) < 0 || dev_size < (8u << 20)) {
        fprintf(stderr, "blkbench: %s: not a block device of 8 MiB or more\n", dev);
        return 1;
    }
    close(fd);
    double sr = measure(0, 1 << 20, 0, 1);
    double sw = measure(1, 1 << 20, 0, 1);
    double rr = measure(0, 4096, 1, threads);
    double rw = measure(1, 4096, 1, threads);
    printf("BLKBENCH seq_read_mibs=%.1f seq_write_mibs=%.1f rand_read_iops=%.0f "
           "rand_write_iops=%.0f\n",
           sr, sw, rr, rw);
    return 0;
}
