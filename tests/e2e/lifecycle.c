/* lifecycle.c - end-to-end test of the C library: two VMs in one process,
 * lifecycle transitions (legal and refused), pause really stopping the
 * guest, stop, and teardown leaving no file descriptor or thread behind;
 * the host check, its refusal of a paravirtual KVM (x86), and the vCPU
 * report. Built for x86-64 and arm64 (tests/e2e/arm64.sh runs it there).
 *
 * Usage: lifecycle KERNEL INITRD     (needs /dev/kvm; prints TAP-like lines)
 */
#include "arcvm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Wait up to @secs for the VM to stop by itself; if it does not, stop it
 * (so a broken guest fails the test instead of hanging it). */
static int wait_stop(arcvm *vm, int secs, struct arcvm_exit *ex)
{
    time_t end = time(NULL) + secs;
    int stopped = 0;
    while (!stopped && time(NULL) < end) {
        enum arcvm_state s = arcvm_get_state(vm);
        if (s == ARCVM_STATE_STOPPING || s == ARCVM_STATE_STOPPED || s == ARCVM_STATE_FAILED) {
            stopped = 1;
            break;
        }
        struct pollfd p = {arcvm_state_fd(vm), POLLIN, 0};
        if (poll(&p, 1, 500) > 0) {
            uint64_t v;
            (void)!read(p.fd, &v, sizeof(v));
        }
    }
    if (!stopped)
        arcvm_stop(vm);
    arcvm_wait(vm, ex);
    return stopped;
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

#if defined(__x86_64__)
/* A fake /proc and /sys as a KVM PVM host shows them: the kvm_pvm module
 * and a CPU without vmx/svm. Returns the root (a static buffer). */
static const char *pvm_root(void)
{
    static char root[] = "/tmp/arcvm-lifecycle-pvm.XXXXXX";
    char p[128];
    if (!mkdtemp(root))
        return NULL;
    snprintf(p, sizeof(p), "%s/proc", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/proc/cpuinfo", root);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae hypervisor\n", f);
        fclose(f);
    }
    const char *dirs[] = {"sys", "sys/module", "sys/module/kvm", "sys/module/kvm_pvm"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        mkdir(p, 0755);
    }
    return root;
}
#endif

/* Read exactly @len bytes (a pipe hands a large write over in parts). */
static bool read_full(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

#if defined(__x86_64__) /* timing the PVM refusal */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
#endif

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

    /* The host check: this host runs guests (the suite runs where it does).
     * In a child process: its test guest is a VM, and a VM created and
     * destroyed in the process that then runs others was seen to freeze
     * the nested test harness's outer kernel (see arcvm.h). */
    static struct arcvm_check_report rep;
    int cp[2];
    pid_t child = pipe(cp) == 0 ? fork() : -1;
    if (child == 0) {
        close(cp[0]);
        int r = arcvm_check_host(NULL, NULL, &rep);
        ssize_t w = write(cp[1], &r, sizeof(r)) + write(cp[1], &rep, sizeof(rep));
        _exit(w == (ssize_t)(sizeof(r) + sizeof(rep)) ? 0 : 1);
    }
    int cr = -1;
    if (child > 0) {
        close(cp[1]);
        if (!read_full(cp[0], &cr, sizeof(cr)) || !read_full(cp[0], &rep, sizeof(rep)))
            cr = -1;
        close(cp[0]);
        waitpid(child, NULL, 0);
    }
    const char *guest_run = "missing";
    for (unsigned i = 0; i < rep.count && i < ARCVM_CHECK_MAX; i++)
        if (!strcmp(rep.items[i].name, "guest-run"))
            guest_run = arcvm_check_status_name(rep.items[i].status);
    CHECK(cr == 0 && rep.fails == 0 && !strcmp(guest_run, "PASS"),
          "arcvm_check_host(): %u checks, %u warnings, no failure, guest-run %s", rep.count,
          rep.warns, guest_run);
#if defined(__x86_64__)
    /* A paravirtual KVM (x86's PVM) is refused by arcvm_start() at once,
     * naming it. */
    const char *pvm = pvm_root();
    struct guest c;
    CHECK(pvm && setup(&c, argv[1], argv[2], 1) == 0, "library: configure VM C on a PVM host");
    setenv("ARCVM_HOST_ROOT", pvm ? pvm : "/nonexistent", 1);
    double t0 = now_ms();
    int rc = arcvm_start(c.vm);
    double took = now_ms() - t0;
    unsetenv("ARCVM_HOST_ROOT");
    CHECK(rc == -ENOTSUP && strstr(arcvm_last_error(c.vm), "kvm_pvm") && took < 1000,
          "arcvm_start() on a PVM host is refused in %.0f ms: %s", took, arcvm_last_error(c.vm));
    CHECK(arcvm_get_state(c.vm) == ARCVM_STATE_CREATED,
          "and nothing was built: the handle is still 'created'");
    teardown(&c);
#endif

    struct guest a, b;
    CHECK(setup(&a, argv[1], argv[2], 2) == 0, "library: configure VM A");
    CHECK(arcvm_set_rng(a.vm, 1) == 0, "VM A gets a virtio-rng");
    CHECK(arcvm_set_vcpu_affinity(a.vm, 1, "0") == 0, "pin VM A's vCPU 1 to host CPU 0");
    CHECK(arcvm_set_vcpu_affinity(a.vm, 0, "0-x") == -EINVAL, "a bad CPU list is refused: %s",
          arcvm_last_error(a.vm));
    CHECK(setup(&b, argv[1], argv[2], 1) == 0, "library: configure VM B");

    /* Refused before start, with the VM untouched. */
    CHECK(arcvm_pause(a.vm) == -EINVAL, "pause before start is refused: %s",
          arcvm_last_error(a.vm));
    struct arcvm_vcpu_info vi[4];
    CHECK(arcvm_get_vcpu_info(a.vm, vi, 4) == -EINVAL, "no vCPU report before start");
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
    if (!expect(&b, "ARCVM-GUEST-READY cpus=1", 300)) {
        /* Where it got to: the console's last lines and its vCPUs. */
        struct arcvm_vcpu_info bv[2];
        int nb = arcvm_get_vcpu_info(b.vm, bv, 2);
        for (int i = 0; i < nb; i++) {
            char line[256];
            arcvm_vcpu_info_format(&bv[i], line, sizeof(line));
            printf("     VM B: %s\n", line);
        }
        size_t from = b.len > 600 ? b.len - 600 : 0;
        printf("     VM B's console tail: %s\n", b.buf + from);
    }
    CHECK(strstr(b.buf, "ARCVM-GUEST-READY cpus=1") != NULL, "VM B boots to init with 1 vCPU");

    /* vCPU 1 of VM A is the only thread named vcpu1 in this process. */
    char allowed[64] = "";
    DIR *tasks = opendir("/proc/self/task");
    for (struct dirent *e; tasks && (e = readdir(tasks));) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f) && !strcmp(comm, "vcpu1\n")) {
            fclose(f);
            snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
            f = fopen(path, "r");
            char line[256];
            while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "Cpus_allowed_list: %63s", allowed) == 1)
                    break;
        }
        if (f)
            fclose(f);
    }
    if (tasks)
        closedir(tasks);
    CHECK(!strcmp(allowed, "0"), "VM A's vcpu1 thread runs only on CPU 0 (allowed: %s)",
          allowed);

    /* Guest memory by physical address. x86: the RSDP arcvm put at 0xe0000,
     * and a word written into the low megabyte Linux leaves alone, read back
     * by the guest through /dev/mem. arm64: the device tree arcvm put 2 MiB
     * below the end of RAM (256 MiB from 0x80000000), whose first bytes
     * the guest reads back through /sys/firmware/fdt (the kernel keeps the
     * blob where it was and serves that file from it). */
    char got[8];
#if defined(__x86_64__)
    CHECK(arcvm_read_guest(a.vm, 0xe0000, got, 8) == 0 && !memcmp(got, "RSD PTR ", 8),
          "read guest memory: the RSDP at 0xe0000");
    CHECK(arcvm_read_guest(a.vm, 0xd0000000ull, got, 8) == -EFAULT,
          "reading outside guest RAM is refused");
    CHECK(arcvm_write_guest(a.vm, 0x9e000, "ARCV", 4) == 0, "write guest memory at 0x9e000");
    type(&a, "devmem 0x9e000 32");
    CHECK(expect(&a, "0x56435241", 60), "the guest reads what the host wrote");
#else
    const uint64_t fdt = 0x80000000ull + (256ull << 20) - (2ull << 20);
    CHECK(arcvm_read_guest(a.vm, fdt, got, 4) == 0 && !memcmp(got, "\xd0\x0d\xfe\xed", 4),
          "read guest memory: the device tree's magic at 0x%llx", (unsigned long long)fdt);
    CHECK(arcvm_read_guest(a.vm, 0x40000000ull, got, 8) == -EFAULT,
          "reading outside guest RAM is refused");
    CHECK(arcvm_write_guest(a.vm, fdt, "ARCV", 4) == 0, "write guest memory at 0x%llx",
          (unsigned long long)fdt);
    type(&a, "echo FDT-$(head -c 4 /sys/firmware/fdt)");
    CHECK(expect(&a, "FDT-ARCV", 60), "the guest reads what the host wrote");
#endif

    /* The guest reads its hwrng; the metrics show it. */
    type(&a, "dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c");
    CHECK(expect(&a, "\n256", 60), "the guest reads 256 bytes from virtio-rng");
    struct arcvm_metrics met;
    /* The serial console's writes: port I/O on x86, MMIO on arm64. */
#if defined(__x86_64__)
#define CONSOLE_WRITES(m) (m).exits_io_out
#define CONSOLE_WRITES_ARE "port writes"
#else
#define CONSOLE_WRITES(m) (m).exits_mmio_write
#define CONSOLE_WRITES_ARE "MMIO writes"
#endif
    CHECK(arcvm_get_metrics(a.vm, &met) == 0 && CONSOLE_WRITES(met) > 0 && met.ndevices == 1 &&
              !strcmp(met.devices[0].kind, "virtio-rng") && met.devices[0].in_bytes >= 256 &&
              met.devices[0].requests > 0 && met.devices[0].interrupts > 0,
          "metrics: %llu " CONSOLE_WRITES_ARE ", rng gave %llu bytes in %llu requests",
          (unsigned long long)CONSOLE_WRITES(met), (unsigned long long)met.devices[0].in_bytes,
          (unsigned long long)met.devices[0].requests);

    /* The vCPU report while running: every vCPU answers its kick. */
    char line[256] = "";
    int nv = arcvm_get_vcpu_info(a.vm, vi, 4);
    if (nv > 0)
        arcvm_vcpu_info_format(&vi[0], line, sizeof(line));
    CHECK(nv == 2 && vi[0].answered && vi[1].answered && vi[0].pc_valid && vi[0].exits > 0,
          "vCPU report of a running VM: %d vCPUs, all answered: %s", nv, line);
    /* A second report sees the first one's kicks taken. */
    nv = arcvm_get_vcpu_info(a.vm, vi, 4);
    CHECK(nv == 2 && vi[0].kicks >= 1 && vi[0].intr_exits >= 1 && vi[1].kicks >= 1,
          "the report's kicks are counted: vcpu0 %llu kicks, %llu interrupted runs",
          (unsigned long long)vi[0].kicks, (unsigned long long)vi[0].intr_exits);

    /* Pause: typed input must not be answered until resume. */
    CHECK(arcvm_pause(a.vm) == 0, "pause a running VM");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_PAUSED, "state is paused");
    nv = arcvm_get_vcpu_info(a.vm, vi, 4);
    CHECK(nv == 2 && vi[0].where == ARCVM_VCPU_PARKED && vi[1].where == ARCVM_VCPU_PARKED &&
              vi[0].answered && vi[1].answered,
          "vCPU report of a paused VM: both parked and answering (%s, %s)",
          arcvm_vcpu_where_name(vi[0].where), arcvm_vcpu_where_name(vi[1].where));
    CHECK(arcvm_pause(a.vm) == -EALREADY, "pausing twice is refused");
    type(&a, "echo PAUSE-$((40+2))");
    CHECK(!expect(&a, "PAUSE-42", 5), "a paused guest makes no progress (no answer in 5 s)");
    CHECK(arcvm_resume(a.vm) == 0, "resume");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_RUNNING, "state is running again");
    CHECK(expect(&a, "PAUSE-42", 60), "the resumed guest answers");

    /* Ctrl-Alt-Del makes B reboot (its init set ctrl-alt-del=1); A is
     * stopped by the host. */
#if defined(__x86_64__)
    CHECK(arcvm_send_ctrl_alt_del(b.vm) == 0, "send Ctrl-Alt-Del to VM B");
#else
    /* No keyboard controller on arm64 (nor on Firecracker's): refused, and
     * B's shell reboots it instead. */
    CHECK(arcvm_send_ctrl_alt_del(b.vm) == -ENOTSUP, "Ctrl-Alt-Del is refused here: %s",
          arcvm_last_error(b.vm));
    CHECK(expect(&b, "ARCVM-GUEST-READY", 180), "VM B reaches its shell");
    type(&b, "reboot -f");
#endif
    struct arcvm_exit eb;
    wait_stop(b.vm, 120, &eb);
    CHECK(eb.reason == ARCVM_EXIT_REBOOT, "VM B rebooted on Ctrl-Alt-Del (reason %d: %s)",
          eb.reason, eb.message);
    CHECK(arcvm_get_state(b.vm) == ARCVM_STATE_STOPPED, "VM B is stopped");
    CHECK(arcvm_get_state(a.vm) == ARCVM_STATE_RUNNING, "VM A still runs");
    /* The guest floods its console while nobody reads it: the vCPU waits on
     * the full pipe, and stopping must still get it out (or the alarm kills
     * this test). */
    type(&a, "yes flood-flood-flood-flood");
    sleep(3);
    CHECK(arcvm_stop(a.vm) == 0, "stop VM A while its console output is stalled");
    struct arcvm_exit ea;
    alarm(120);
    arcvm_wait(a.vm, &ea);
    alarm(0);
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
