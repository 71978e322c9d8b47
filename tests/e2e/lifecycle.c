/* lifecycle.c - end-to-end test of the C library: two VMs in one process,
 * lifecycle transitions (legal and refused), pause really stopping the
 * guest, stop, and teardown leaving no file descriptor or thread behind.
 *
 * Usage: lifecycle KERNEL INITRD     (needs /dev/kvm; prints TAP-like lines)
 */
#include "arcvm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fails;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("ok   - ");                                                                     \
        } else {                                                                                   \
            printf("FAIL - ");                                                                     \
            fails++;                                                                               \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
    } while (0)

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

struct guest {
    arcvm *vm;
    int in[2], out[2];
    char buf[1 << 16];
    size_t len;
};

/* Read console output until @needle shows up or @secs pass. */
static int expect(struct guest *g, const char *needle, int secs)
{
    time_t end = time(NULL) + secs;
    while (time(NULL) < end) {
        g->buf[g->len] = 0;
        if (strstr(g->buf, needle))
            return 1;
        struct pollfd p = {g->out[0], POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            if (g->len >= sizeof(g->buf) - 1) {
                /* Keep the tail: markers are near the end. */
                memmove(g->buf, g->buf + sizeof(g->buf) / 2, g->len - sizeof(g->buf) / 2);
                g->len -= sizeof(g->buf) / 2;
            }
            ssize_t n = read(g->out[0], g->buf + g->len, sizeof(g->buf) - 1 - g->len);
            if (n > 0)
                g->len += (size_t)n;
        }
    }
    g->buf[g->len] = 0;
    return strstr(g->buf, needle) != NULL;
}

static void type(struct guest *g, const char *line)
{
    size_t n = strlen(line);
    if (write(g->in[1], line, n) != (ssize_t)n || write(g->in[1], "\n", 1) != 1)
        perror("write console");
}

static int setup(struct guest *g, const char *kernel, const char *initrd, unsigned cpus)
{
    memset(g, 0, sizeof(*g));
    if (pipe2(g->in, O_CLOEXEC) || pipe2(g->out, O_CLOEXEC))
        return -errno;
    int r = arcvm_create(&g->vm);
    if (!r)
        r = arcvm_set_kernel(g->vm, kernel);
    if (!r)
        r = arcvm_set_initrd(g->vm, initrd);
    if (!r)
        r = arcvm_set_cmdline(g->vm, "quiet arcvm.mode=shell", 0);
    if (!r)
        r = arcvm_set_vcpus(g->vm, cpus);
    if (!r)
        r = arcvm_set_memory(g->vm, 256ull << 20);
    if (!r)
        r = arcvm_set_console(g->vm, ARCVM_CONSOLE_SERIAL, g->in[0], g->out[1]);
    return r;
}

static void teardown(struct guest *g)
{
    arcvm_destroy(g->vm);
    close(g->in[0]);
    close(g->in[1]);
    close(g->out[0]);
    close(g->out[1]);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: lifecycle KERNEL INITRD\n");
        return 2;
    }
    int fds0 = count_dir("/proc/self/fd"), threads0 = count_dir("/proc/self/task");
    struct guest a, b;
    CHECK(setup(&a, argv[1], argv[2], 2) == 0, "library: configure VM A");
    CHECK(setup(&b, argv[1], argv[2], 1) == 0, "library: configure VM B");

    /* Refused before start, with the VM untouched. */
    CHECK(arcvm_pause(a.vm) == -EINVAL, "pause before start is refused: %s",
          arcvm_last_error(a.vm));
    CHECK(arcvm_resume(a.vm) == -EINVAL, "resume before start is refused");
    CHECK(arcvm_stop(a.vm) == -EINVAL, "stop before start is refused");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_CREATED, "state is created");
    CHECK(arcvm_set_vcpus(a.vm, 0) == -EINVAL, "0 vCPUs refused by the setter");
    CHECK(arcvm_set_memory(a.vm, 1 << 20) == -EINVAL, "1 MiB refused by the setter");

    int ra = arcvm_start(a.vm), rb = arcvm_start(b.vm);
    CHECK(ra == 0 && rb == 0, "two VMs start in one process%s%s", ra ? arcvm_last_error(a.vm) : "",
          rb ? arcvm_last_error(b.vm) : "");
    CHECK(arcvm_start(a.vm) == -EINVAL, "starting twice is refused: %s", arcvm_last_error(a.vm));
    CHECK(arcvm_resume(a.vm) == -EALREADY, "resume while running is refused");
    CHECK(arcvm_set_vcpus(a.vm, 2) == -EBUSY, "settings are fixed once started");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_RUNNING, "state is running");

    CHECK(expect(&a, "ARCVM-GUEST-READY cpus=2", 300), "VM A boots to init with 2 vCPUs");
    CHECK(expect(&b, "ARCVM-GUEST-READY cpus=1", 300), "VM B boots to init with 1 vCPU");

    /* Pause: typed input must not be answered until resume. */
    CHECK(arcvm_pause(a.vm) == 0, "pause a running VM");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_PAUSED, "state is paused");
    CHECK(arcvm_pause(a.vm) == -EALREADY, "pausing twice is refused");
    type(&a, "echo PAUSE-$((40+2))");
    CHECK(!expect(&a, "PAUSE-42", 5), "a paused guest makes no progress (no answer in 5 s)");
    CHECK(arcvm_resume(a.vm) == 0, "resume");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_RUNNING, "state is running again");
    CHECK(expect(&a, "PAUSE-42", 60), "the resumed guest answers");

    /* B powers itself off; A is stopped by the host. */
    type(&b, "poweroff -f");
    struct arcvm_exit eb;
    arcvm_wait(b.vm, &eb);
    CHECK(eb.reason == ARCVM_EXIT_POWEROFF, "VM B powered off (reason %d: %s)", eb.reason,
          eb.message);
    CHECK(arcvm_get_state(b.vm) == ARCVM_STATE_STOPPED, "VM B is stopped");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_RUNNING, "VM A still runs");
    CHECK(arcvm_stop(a.vm) == 0, "stop VM A");
    struct arcvm_exit ea;
    arcvm_wait(a.vm, &ea);
    CHECK(ea.reason == ARCVM_EXIT_STOPPED, "VM A stopped by request (%s)", ea.message);
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_STOPPED, "state is stopped");
    CHECK(arcvm_resume(a.vm) == -EINVAL, "resume after stop is refused");

    teardown(&a);
    teardown(&b);
    int fds1 = count_dir("/proc/self/fd"), threads1 = count_dir("/proc/self/task");
    CHECK(fds1 == fds0, "no file descriptor leaked (%d before, %d after)", fds0, fds1);
    CHECK(threads1 == threads0, "no thread left (%d before, %d after)", threads0, threads1);
    printf("# lifecycle: %d failed\n", fails);
    return fails ? 1 : 0;
}
