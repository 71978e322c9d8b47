/* main.c - arcvm-jailer: Firecracker's jailer for arcvm. Builds the jail
 * (jail.c), the cgroup (cgroup.c), applies the limits, enters a private
 * mount namespace rooted in the jail, joins the network namespace, drops to
 * uid:gid and execs the copied exec file as
 *   /<name> --id=<id> --start-time-us=<t> --start-time-cpu-us=<t> [args after --]
 * Any failure before the exec prints one line and removes what was made.
 *
 * Order (Firecracker's, with cleanup possible at every step): validate,
 * close fds, jail dir + exec copy + nodes, cgroup, rlimits, netns, mount
 * namespace + pivot_root, setsid, [PID namespace], drop privileges, exec. */
#include "jailer/args.h"
#include "jailer/cgroup.h"
#include "jailer/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ELF_PEEK 65536 /* enough for the ELF and program headers of any VMM */

/* One run of the jailer: what it made, so a failure can undo it. */
struct jailer {
    struct jailer_args a;
    const char *name; /* the exec file's name, in the jail as /<name> */
    struct jail jail;
    struct jail_cgroup cg;
    int netns_fd, devnull_fd, host_mnt_fd;
    int report_fd; /* --new-pid-ns child: tells the parent the exec failed */
    bool pivoted;
    bool dropped; /* no longer root: nothing can be removed any more */
    uint64_t t0_us, t0_cpu_us, parent_cpu_us;
    bool in_child;
    char err[1024];
};

static uint64_t clock_us(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int failf(struct jailer *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(struct jailer *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof(j->err), fmt, ap);
    va_end(ap);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: arcvm-jailer --id ID --exec-file PATH --uid UID --gid GID\n"
            "         [--chroot-base-dir DIR] [--netns PATH] [--daemonize] [--new-pid-ns]\n"
            "         [--cgroup-version 1|2] [--cgroup FILE=VALUE]... [--parent-cgroup PATH]\n"
            "         [--resource-limit fsize=N|no-file=N]... [-- ARGS FOR THE EXEC FILE]\n"
            "Runs PATH (a static executable, e.g. arcvm) as UID:GID in a new mount namespace\n"
            "rooted in DIR/<name of PATH>/ID/root (default DIR: %s), as Firecracker's jailer.\n",
            JAILER_DEFAULT_BASE);
}

/* Close every fd but stdin, stdout and stderr. */
static void close_fds(void)
{
    if (close_range(3, ~0u, 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < (max > 0 ? max : 1024); fd++)
        close((int)fd);
}

/* The exec file must be a static executable: the jail holds no libraries. */
static int check_exec(struct jailer *j)
{
    const char *p = j->a.exec_file;
    struct stat st;
    if (stat(p, &st) < 0)
        return failf(j, "--exec-file %s: %s", p, strerror(errno));
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
        return failf(j, "--exec-file %s: not an executable regular file", p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    char *buf = malloc(ELF_PEEK);
    ssize_t n = fd >= 0 && buf ? pread(fd, buf, ELF_PEEK, 0) : -1;
    int kind = n > 0 ? jailer_elf_static(buf, (size_t)n) : -2;
    free(buf);
    if (fd >= 0)
        close(fd);
    if (kind == -2)
        return failf(j, "--exec-file %s: cannot read it", p);
    if (kind < 0)
        return failf(j, "--exec-file %s: not a 64-bit ELF executable", p);
    if (kind == 0)
        return failf(j,
                     "--exec-file %s: dynamically linked, but the jail holds no libraries "
                     "(use a static build)",
                     p);
    return 0;
}

/* Open the handles needed once outside the host's view: netns, /dev/null,
 * and the host's mount namespace (to come back to on failure). */
static int open_handles(struct jailer *j)
{
    if (j->a.netns) {
        j->netns_fd = open(j->a.netns, O_RDONLY | O_CLOEXEC);
        if (j->netns_fd < 0)
            return failf(j, "--netns %s: %s", j->a.netns, strerror(errno));
        if (ioctl(j->netns_fd, NS_GET_NSTYPE) != CLONE_NEWNET)
            return failf(j, "--netns %s: not a network namespace", j->a.netns);
    }
    if (j->a.daemonize && (j->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        return failf(j, "cannot open /dev/null: %s", strerror(errno));
    j->host_mnt_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (j->host_mnt_fd < 0)
        return failf(j, "cannot open /proc/self/ns/mnt: %s", strerror(errno));
    return 0;
}

static int set_limits(struct jailer *j)
{
    struct rlimit nofile = {j->a.nofile, j->a.nofile};
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
        return failf(j, "cannot set the no-file limit to %llu: %s", (unsigned long long)j->a.nofile,
                     strerror(errno));
    struct rlimit fsize = {j->a.fsize, j->a.fsize};
    if (j->a.have_fsize && setrlimit(RLIMIT_FSIZE, &fsize) < 0)
        return failf(j, "cannot set the fsize limit to %llu: %s", (unsigned long long)j->a.fsize,
                     strerror(errno));
    return 0;
}

/* A private mount namespace whose root is the jail (Firecracker's way:
 * private propagation, bind the jail on itself, pivot_root, drop the old). */
static int enter_jail(struct jailer *j)
{
    const char *root = j->jail.root;
    if (unshare(CLONE_NEWNS) < 0)
        return failf(j, "cannot create a mount namespace: %s", strerror(errno));
    j->pivoted = true; /* from here on, cleanup goes back to the host's namespace first */
    if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
        return failf(j, "cannot make / private in the new mount namespace: %s", strerror(errno));
    if (mount(root, root, NULL, MS_BIND, NULL) < 0)
        return failf(j, "cannot bind-mount %s on itself: %s", root, strerror(errno));
    if (chdir(root) < 0 || mkdir("old_root", 0700) < 0)
        return failf(j, "cannot prepare %s/old_root: %s", root, strerror(errno));
    if (syscall(SYS_pivot_root, ".", "old_root") < 0)
        return failf(j, "cannot pivot_root into %s: %s", root, strerror(errno));
    if (umount2("old_root", MNT_DETACH) < 0 || rmdir("old_root") < 0)
        return failf(j, "cannot drop the host's root from the jail: %s", strerror(errno));
    if (chroot(".") < 0 || chdir("/") < 0)
        return failf(j, "cannot chroot into the jail: %s", strerror(errno));
    return 0;
}

/* Become @uid:@gid with no supplementary groups, and check there is no way
 * back (a saved set-user-ID of 0 would allow one). */
static int drop_privileges(struct jailer *j)
{
    uid_t u = j->a.uid, ru, eu, su;
    gid_t g = j->a.gid, rg, eg, sg;
    if (setgroups(0, NULL) < 0 || setresgid(g, g, g) < 0 || setresuid(u, u, u) < 0)
        return failf(j, "cannot switch to uid %u gid %u: %s", u, g, strerror(errno));
    j->dropped = u != 0;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != u || eu != u ||
        su != u || rg != g || eg != g || sg != g || getgroups(0, NULL) != 0)
        return failf(j, "the switch to uid %u gid %u did not take", u, g);
    if (u != 0 && (setuid(0) == 0 || seteuid(0) == 0 || (g != 0 && setgid(0) == 0)))
        return failf(j, "uid %u could become root again after the switch", u);
    return 0;
}

/* Exec /<name> with Firecracker's jailer arguments and an empty
 * environment. Returns only on failure. */
static int exec_vmm(struct jailer *j)
{
    char path[PATH_MAX], id[16 + JAILER_ID_MAX], t_us[48], t_cpu[48], p_cpu[48];
    snprintf(path, sizeof(path), "/%s", j->name);
    snprintf(id, sizeof(id), "--id=%s", j->a.id);
    snprintf(t_us, sizeof(t_us), "--start-time-us=%llu", (unsigned long long)j->t0_us);
    snprintf(t_cpu, sizeof(t_cpu), "--start-time-cpu-us=%llu",
             (unsigned long long)(j->in_child ? 0 : j->t0_cpu_us));
    snprintf(p_cpu, sizeof(p_cpu), "--parent-cpu-time-us=%llu",
             (unsigned long long)j->parent_cpu_us);
    char **argv = calloc((size_t)j->a.n_extra + 6, sizeof(*argv));
    if (!argv)
        return failf(j, "out of memory");
    int n = 0;
    argv[n++] = (char *)j->name;
    argv[n++] = id;
    argv[n++] = t_us;
    argv[n++] = t_cpu;
    if (j->in_child)
        argv[n++] = p_cpu;
    for (int i = 0; i < j->a.n_extra; i++)
        argv[n++] = j->a.extra[i];
    char *envp[] = {NULL};
    if (j->devnull_fd >= 0) {
        dup2(j->devnull_fd, 0);
        dup2(j->devnull_fd, 1);
        dup2(j->devnull_fd, 2);
    }
    execve(path, argv, envp);
    int e = errno;
    free(argv);
    return failf(j, "cannot run %s in the jail: %s", path, strerror(e));
}

/* Undo everything, from the host's mount namespace. */
static void undo(struct jailer *j)
{
    if (j->pivoted && setns(j->host_mnt_fd, CLONE_NEWNS) < 0) {
        fprintf(stderr,
                "arcvm-jailer: error: cannot return to the host's mount namespace to "
                "remove %s: %s\n",
                j->jail.dir, strerror(errno));
        return;
    }
    j->pivoted = false;
    cgroup_remove(&j->cg);
    jail_remove(&j->jail);
}

/* --new-pid-ns: fork the VMM as pid 1 of a new PID namespace. In the
 * child, returns 0 and the caller goes on to exec. In the parent (the
 * jailer, as with Firecracker), writes the child's pid to /<name>.pid in
 * the jail and waits until the child has exec'd (its end of a close-on-exec
 * pipe closes) or failed (it writes a byte); returns 1 or -1. */
static int spawn_pid_ns(struct jailer *j)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0 || unshare(CLONE_NEWPID) < 0)
        return failf(j, "cannot create a PID namespace: %s", strerror(errno));
    j->parent_cpu_us = clock_us(CLOCK_PROCESS_CPUTIME_ID) - j->t0_cpu_us;
    pid_t pid = fork();
    if (pid < 0)
        return failf(j, "cannot start the process in the new PID namespace: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        j->report_fd = p[1];
        j->in_child = true;
        return 0;
    }
    close(p[1]);
    char path[PATH_MAX], text[24];
    snprintf(path, sizeof(path), "/%s.pid", j->name);
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    bool wrote = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    int e = errno;
    if (fd >= 0)
        close(fd);
    char byte;
    ssize_t n = wrote ? read(p[0], &byte, 1) : 1;
    if (n == 0)
        return 1; /* the child runs the VMM; the jailer's work is done */
    if (!wrote)
        kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (!wrote)
        return failf(j, "cannot write the pid file %s in the jail: %s", path, strerror(e));
    j->err[0] = 0; /* the child said why */
    return -1;
}

/* Everything after the arguments. Returns 0 only in a --new-pid-ns
 * parent whose child exec'd; otherwise -1 with j->err. */
static int run(struct jailer *j)
{
    if (check_exec(j) < 0 || open_handles(j) < 0)
        return -1;
    if (jail_create(&j->jail, j->a.chroot_base, j->name, j->a.id, j->err, sizeof(j->err)) < 0)
        return -1;
    if (jail_copy_exec(&j->jail, j->a.exec_file, j->name, j->err, sizeof(j->err)) < 0 ||
        jail_populate(&j->jail, j->a.uid, j->a.gid, j->err, sizeof(j->err)) < 0)
        return -1;
    const char *parent = j->a.parent_cgroup ? j->a.parent_cgroup : j->name;
    if (j->a.cgroup_version == 2 && cgroup_setup(&j->cg, parent, j->a.id, j->a.cgroups,
                                                 j->a.n_cgroups, j->err, sizeof(j->err)) < 0)
        return -1;
    if (set_limits(j) < 0)
        return -1;
    if (j->netns_fd >= 0 && setns(j->netns_fd, CLONE_NEWNET) < 0)
        return failf(j, "cannot join the network namespace %s: %s", j->a.netns, strerror(errno));
    if (enter_jail(j) < 0)
        return -1;
    if (j->a.daemonize && setsid() < 0)
        return failf(j, "--daemonize: setsid failed (is the jailer a process group leader?): %s",
                     strerror(errno));
    if (j->a.new_pid_ns) {
        int r = spawn_pid_ns(j);
        if (r != 0)
            return r > 0 ? 0 : -1;
    }
    if (drop_privileges(j) < 0)
        return -1;
    return exec_vmm(j);
}

int main(int argc, char **argv)
{
    struct jailer j = {.netns_fd = -1, .devnull_fd = -1, .host_mnt_fd = -1, .report_fd = -1};
    j.t0_us = clock_us(CLOCK_MONOTONIC);
    j.t0_cpu_us = clock_us(CLOCK_PROCESS_CPUTIME_ID);
    if (jailer_parse(argc, argv, &j.a, j.err, sizeof(j.err)) < 0) {
        fprintf(stderr, "arcvm-jailer: error: %s\n", j.err);
        return 1;
    }
    if (j.a.help || j.a.version) {
        if (j.a.help)
            usage(stdout);
        else
            printf("arcvm-jailer %s\n", ARCVM_VERSION);
        return 0;
    }
    j.name = jailer_exec_name(j.a.exec_file);
    umask(022); /* the jail's directories must be searchable by uid:gid */
    close_fds();
    if (run(&j) == 0)
        return 0;
    if (j.dropped && !j.in_child) {
        fprintf(stderr, "arcvm-jailer: error: %s (privileges are dropped: remove %s by hand)\n",
                j.err, j.jail.dir);
        return 1;
    }
    if (j.err[0])
        fprintf(stderr, "arcvm-jailer: error: %s\n", j.err);
    if (j.in_child) {
        /* The parent, still privileged, cleans up when it reads this. */
        ssize_t n = write(j.report_fd, "x", 1);
        return n == 1 ? 1 : 2;
    }
    undo(&j);
    return 1;
}
