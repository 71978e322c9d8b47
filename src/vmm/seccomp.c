/* seccomp.c - per-thread system call filters; see seccomp.h.
 *
 * Each built-in filter is a table of rules below: a system call, at most one
 * argument test, and the reason the thread needs it. Several rules for one
 * call are alternatives (an ioctl with any of its listed requests). The
 * lists were found by running the whole end-to-end suite with
 * ARCVM_SECCOMP_AUDIT and are checked by running it with the filters on.
 */
#include "vmm/seccomp.h"

#include "base/log.h"
#include "hv/hv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a SIGSYS from a filter (not in every libc) */
#endif
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- the built-in lists ---- */

enum arg_op { ARG_ANY, ARG_EQ, ARG_MASK_ZERO };
struct rule {
    int nr;           /* __NR_*; negative: not on this architecture */
    enum arg_op op;
    unsigned arg;     /* which argument ARG_EQ / ARG_MASK_ZERO tests */
    uint64_t val;     /* ARG_EQ: the value; ARG_MASK_ZERO: bits that must be clear */
};

#define ANY(name) {SCMP_SYS(name), ARG_ANY, 0, 0}
#define EQ(name, i, v) {SCMP_SYS(name), ARG_EQ, i, (uint64_t)(v)}
#define CLEAR(name, i, bits) {SCMP_SYS(name), ARG_MASK_ZERO, i, (uint64_t)(bits)}

/* Calls every filtered thread makes. */
#define COMMON_RULES                                                                               \
    ANY(futex),                        /* mutexes and condition variables */                      \
        ANY(write),                    /* log lines; eventfd signals (kicks, interrupts) */      \
        ANY(rt_sigreturn),             /* returning from the vCPU kick's handler */               \
        ANY(rt_sigprocmask),           /* a thread blocks signals as it ends (glibc) */           \
        ANY(exit),                     /* the thread ends */                                      \
        ANY(clock_gettime),            /* time, where the vDSO cannot serve it */                 \
        CLEAR(mmap, 2, PROT_EXEC),     /* malloc's arenas; never executable */                    \
        CLEAR(mprotect, 2, PROT_EXEC), /* a thread's arena grows; never executable */             \
        ANY(munmap),                   /* free() returns memory */                                \
        ANY(mremap),                   /* realloc() of a large block */                           \
        EQ(madvise, 2, MADV_DONTNEED)  /* free() and a thread's exit release pages */

/* Kicking vCPU threads (pthread_kill) when the VM stops or pauses. */
#define KICK_RULES ANY(getpid), ANY(tgkill)

/* A vCPU thread: the guest's exits, and the device-register writes that run
 * on it (a device's activation and reset; their I/O runs on the event
 * loop). */
static const struct rule vcpu_rules[] = {
    COMMON_RULES,
    KICK_RULES,
    ANY(gettid),                        /* pthread_kill() of itself */
    EQ(ioctl, 1, KVM_RUN),              /* running the guest */
    /* and the backend's own requests: hv_arch_ioctls(HV_THREAD_VCPU) */
    EQ(ioctl, 1, KVM_KVMCLOCK_CTRL),    /* tell the guest it was paused */
    EQ(ioctl, 1, TUNSETOFFLOAD),        /* virtio-net activation: the TAP's offloads */
    ANY(epoll_ctl),                     /* a device starts or stops watching its back end */
    ANY(timerfd_settime),               /* the balloon's statistics timer, on activation */
    ANY(close),                         /* virtio-vsock reset closes the host sockets */
    ANY(shutdown),                      /* the same */
    ANY(io_uring_enter),                /* virtio-blk reset waits for its I/O */
};

/* The event loop: every device's I/O and the host side of its back end. */
static const struct rule evloop_rules[] = {
    COMMON_RULES,
    KICK_RULES,
    ANY(epoll_wait),                    /* waiting for device events */
    ANY(epoll_ctl),                     /* watching back ends */
    ANY(read),                          /* eventfds, timerfds, console input */
    ANY(readv),                         /* TAP frames */
    ANY(writev),                        /* the same */
    ANY(recvfrom),                      /* vsock streams, user-mode net */
    ANY(sendto),                        /* the same */
    ANY(recvmsg),                       /* user-mode net frames */
    ANY(sendmsg),                       /* the same */
    EQ(socket, 0, AF_UNIX),             /* vsock: the guest connects to a host socket */
    ANY(connect),                       /* the same */
    ANY(accept4),                       /* vsock: a host program connects in */
    ANY(shutdown),                      /* vsock: a half-closed stream */
    ANY(close),                         /* vsock: a finished connection */
    ANY(io_uring_enter),                /* virtio-blk I/O */
    ANY(preadv),                        /* virtio-blk I/O, synchronous engine */
    ANY(pwritev),                       /* the same */
    ANY(pwrite64),                      /* the same: write zeroes */
    ANY(fdatasync),                     /* the same: flush */
    EQ(ioctl, 1, KVM_SET_USER_MEMORY_REGION), /* virtio-mem: a hotplug slot in or out of
                                         * the guest's map as blocks are plugged */
    ANY(fallocate),                     /* virtio-blk discard and write zeroes; balloon
                                         * and virtio-mem punch freed guest RAM out */
    ANY(timerfd_settime),               /* rate limiters, balloon statistics, vsock */
    ANY(getrandom),                     /* virtio-rng, MMDS V2 session tokens */
    ANY(sysinfo),                       /* glibc's qsort() (balloon page lists, MMDS keys) */
    ANY(clock_nanosleep),               /* virtio-blk: retry after a transient failure */
    ANY(poll),                          /* vsock: waiting for a host socket to connect */
};

/* The thread that controls a built VM (the front end's main thread):
 * pause, resume, snapshots, drive swaps, reports, stop and teardown. */
static const struct rule vmm_rules[] = {
    COMMON_RULES,
    KICK_RULES,
    ANY(brk),                           /* the main thread's heap */
    ANY(read),                          /* signalfd, state eventfd */
    ANY(epoll_wait),                    /* the front end's event loop */
    ANY(epoll_ctl),                     /* the same */
    ANY(poll),                          /* the same (CLI) */
    ANY(clock_nanosleep),               /* the vCPU report waits for answers */
    ANY(gettimeofday),                  /* libevent's timers */
    ANY(restart_syscall),               /* a wait interrupted by a signal */
    ANY(rt_sigaction),                  /* signals restored at exit */
    EQ(kill, 1, SIGKILL),               /* the user-mode network helper at teardown */
    ANY(wait4),                         /* and reaping it */
    ANY(openat),                        /* snapshot files, a swapped drive */
    ANY(newfstatat),                    /* the same */
    ANY(lseek),                         /* sparse memory files */
    ANY(pwrite64),                      /* snapshot files */
    ANY(ftruncate),                     /* the same */
    ANY(fdatasync),                     /* the same */
    ANY(timerfd_create),                /* a rate limiter first set at run time (PATCH
                                         * /drives, /pmem): its timer */
    ANY(rename),                        /* a finished snapshot file into place */
    ANY(unlink),                        /* a failed snapshot's files, the API socket */
    ANY(close),                         /* files, teardown */
    EQ(fcntl, 1, F_OFD_SETLK),          /* a drive's image lock */
    EQ(fcntl, 1, F_OFD_GETLK),          /* the same */
    ANY(io_uring_enter),                /* virtio-blk drains before a snapshot */
    ANY(io_uring_register),             /* a disk's ring: set up (drive swap), torn down */
    ANY(io_uring_setup),                /* a swapped drive's new ring */
    ANY(getrandom),                     /* a new VM generation ID */
    ANY(exit_group),                    /* the process ends */
    EQ(ioctl, 1, BLKGETSIZE64),         /* a swapped drive on a block device: its size */
    EQ(ioctl, 1, TCGETS),               /* the terminal, restored at exit */
    EQ(ioctl, 1, TCSETS),               /* the same */
    EQ(ioctl, 1, KVM_CHECK_EXTENSION),  /* snapshot: which state parts exist */
    EQ(ioctl, 1, KVM_GET_DIRTY_LOG),    /* Diff snapshots */
    /* and the backend's snapshot requests: hv_arch_ioctls(HV_THREAD_VMM) */
    EQ(ioctl, 1, KVM_IRQFD),            /* teardown: interrupts detached */
    EQ(ioctl, 1, KVM_IOEVENTFD),        /* teardown: notifications detached */
};

/* The API server thread: HTTP on its socket, requests handed over. */
static const struct rule api_rules[] = {
    COMMON_RULES,
    ANY(epoll_wait),                    /* libevent waits for clients */
    ANY(epoll_ctl),                     /* the same */
    ANY(gettimeofday),                  /* libevent's timeouts */
    ANY(accept4),                       /* a client connects */
    ANY(read),                          /* requests */
    ANY(readv),                         /* the same */
    ANY(writev),                        /* replies */
    EQ(ioctl, 1, FIONREAD),             /* libevent sizes its reads */
    ANY(shutdown),                      /* a connection ends */
    ANY(close),                         /* the same */
};

/* A virtio-fs worker: the FUSE server's calls on the shared directory.
 * Names are resolved only by openat2 (host/fuse.c); nothing here creates
 * sockets, processes or executable memory. */
static const struct rule fs_rules[] = {
    COMMON_RULES,
    ANY(openat2),                       /* lookups and creation beneath a directory */
    ANY(openat),                        /* an inode reopened for I/O through /proc/self/fd */
    ANY(newfstatat),                    /* attributes of an O_PATH descriptor */
    ANY(close),                         /* forgotten inodes, released files */
    ANY(preadv),                        /* READ into guest buffers */
    ANY(pwritev),                       /* WRITE from guest buffers */
    ANY(getdents64),                    /* READDIR, READDIRPLUS */
    ANY(lseek),                         /* READDIR offsets, LSEEK (SEEK_DATA/HOLE) */
    ANY(mkdirat),                       /* MKDIR */
    ANY(mknodat),                       /* MKNOD (files, fifos, sockets) */
    ANY(symlinkat),                     /* SYMLINK */
    ANY(linkat),                        /* LINK */
    ANY(unlinkat),                      /* UNLINK, RMDIR */
    ANY(renameat2),                     /* RENAME2 */
    ANY(renameat),                      /* RENAME: glibc's renameat2() without flags */
    ANY(readlinkat),                    /* READLINK */
    ANY(fchmodat),                      /* SETATTR mode */
    ANY(fchownat),                      /* SETATTR owner; new entries given to their maker */
    ANY(utimensat),                     /* SETATTR times */
    ANY(ftruncate),                     /* SETATTR size */
    ANY(fsync),                         /* FSYNC, FSYNCDIR */
    ANY(fdatasync),                     /* the same, data only */
    ANY(fallocate),                     /* FALLOCATE */
    ANY(fstatfs),                       /* STATFS */
    ANY(faccessat),                     /* ACCESS */
    ANY(faccessat2),                    /* the same, as newer glibc calls it */
    ANY(fgetxattr),                     /* GETXATTR */
    ANY(flistxattr),                    /* LISTXATTR */
    ANY(fsetxattr),                     /* SETXATTR (user.* only) */
    ANY(fremovexattr),                  /* REMOVEXATTR (the same) */
};

static const struct {
    const char *name;     /* a Firecracker category (and ours) */
    const char *fallback; /* category used when a custom file lacks @name */
    const struct rule *rules;
    unsigned n;
} kinds[SECCOMP_KINDS] = {
    [SECCOMP_VCPU] = {"vcpu", NULL, vcpu_rules, sizeof(vcpu_rules) / sizeof(vcpu_rules[0])},
    [SECCOMP_EVLOOP] = {"evloop", "vmm", evloop_rules,
                        sizeof(evloop_rules) / sizeof(evloop_rules[0])},
    [SECCOMP_VMM] = {"vmm", NULL, vmm_rules, sizeof(vmm_rules) / sizeof(vmm_rules[0])},
    [SECCOMP_API] = {"api", NULL, api_rules, sizeof(api_rules) / sizeof(api_rules[0])},
    [SECCOMP_FS] = {"fs", "vmm", fs_rules, sizeof(fs_rules) / sizeof(fs_rules[0])},
};

const char *seccomp_kind_name(enum seccomp_kind kind)
{
    return (unsigned)kind < SECCOMP_KINDS ? kinds[kind].name : "?";
}

unsigned seccomp_builtin_syscalls(enum seccomp_kind kind)
{
    if ((unsigned)kind >= SECCOMP_KINDS)
        return 0;
    unsigned n = 0;
    for (unsigned i = 0; i < kinds[kind].n; i++) {
        bool seen = false;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = kinds[kind].rules[j].nr == kinds[kind].rules[i].nr;
        n += !seen;
    }
    return n;
}

/* ---- compiling ---- */

static const char *audit_path(void)
{
    const char *p = getenv("ARCVM_SECCOMP_AUDIT");
    return p && *p ? p : NULL;
}

/* libseccomp 2.5 exports BPF only to a file descriptor: a memfd here. */
static int export_prog(scmp_filter_ctx ctx, struct seccomp_prog *p, char *err, size_t errlen)
{
    int fd = memfd_create("arcvm-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "seccomp: memfd_create: %s", strerror(e));
        return -e;
    }
    int r = seccomp_export_bpf(ctx, fd);
    off_t size = r == 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (r < 0 || size <= 0 || size % (off_t)sizeof(struct sock_filter) ||
        size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        close(fd);
        snprintf(err, errlen, "seccomp: exporting the filter failed (%s)",
                 r < 0 ? strerror(-r) : "bad size");
        return r < 0 ? r : -EINVAL;
    }
    p->ins = malloc((size_t)size);
    if (!p->ins || pread(fd, p->ins, (size_t)size, 0) != size) {
        close(fd);
        free(p->ins);
        p->ins = NULL;
        snprintf(err, errlen, "seccomp: reading the exported filter failed");
        return -ENOMEM;
    }
    close(fd);
    p->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    return 0;
}

/* Calls some architectures lack (arm64 has only the *at and p* forms),
 * and what glibc calls instead there: a rule for the first allows the
 * second where the first does not exist. */
static const struct {
    int missing, instead;
} substitutes[] = {
    {SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait)},
    {SCMP_SYS(poll), SCMP_SYS(ppoll)},
    {SCMP_SYS(rename), SCMP_SYS(renameat)},
    {SCMP_SYS(unlink), SCMP_SYS(unlinkat)},
};

static int native_nr(int nr)
{
    for (size_t i = 0; nr < 0 && i < sizeof(substitutes) / sizeof(substitutes[0]); i++)
        if (substitutes[i].missing == nr)
            return substitutes[i].instead;
    return nr;
}

static int build_builtin(struct seccomp_prog *p, enum seccomp_kind kind, char *err, size_t errlen)
{
    p->audit = audit_path() != NULL;
    scmp_filter_ctx ctx = seccomp_init(p->audit ? SCMP_ACT_NOTIFY : SCMP_ACT_TRAP);
    if (!ctx) {
        snprintf(err, errlen, "seccomp: out of memory");
        return -ENOMEM;
    }
    int r = 0;
    for (unsigned i = 0; i < kinds[kind].n && r == 0; i++) {
        const struct rule *ru = &kinds[kind].rules[i];
        int nr = native_nr(ru->nr);
        if (nr < 0)
            continue; /* not a call of this architecture */
        switch (ru->op) {
        case ARG_ANY:
            r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
            break;
        case ARG_EQ:
            r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                 SCMP_CMP(ru->arg, SCMP_CMP_EQ, ru->val));
            break;
        case ARG_MASK_ZERO:
            r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                 SCMP_CMP(ru->arg, SCMP_CMP_MASKED_EQ, ru->val, 0));
            break;
        }
        if (r < 0) {
            char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
            snprintf(err, errlen, "seccomp: %s filter: rule for %s: %s", kinds[kind].name,
                     name ? name : "?", strerror(-r));
            free(name);
        }
    }
    /* The hypervisor backend's architecture-specific requests. */
    const unsigned long *req = NULL;
    unsigned nreq = kind == SECCOMP_VCPU  ? hv_arch_ioctls(HV_THREAD_VCPU, &req)
                    : kind == SECCOMP_VMM ? hv_arch_ioctls(HV_THREAD_VMM, &req)
                                          : 0;
    for (unsigned i = 0; i < nreq && r == 0; i++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                             SCMP_CMP(1, SCMP_CMP_EQ, (uint64_t)req[i]));
        if (r < 0)
            snprintf(err, errlen, "seccomp: %s filter: rule for ioctl 0x%lx: %s",
                     kinds[kind].name, req[i], strerror(-r));
    }
    if (r == 0)
        r = export_prog(ctx, p, err, errlen);
    seccomp_release(ctx);
    return r;
}

/* Firecracker's compiled filters (seccompiler-bin): bincode with fixed-size
 * little-endian integers of a map from category name to program: u64 count,
 * then per entry u64 name length, the name, u64 instruction count and the
 * instructions (8 bytes each: u16 code, u8 jt, u8 jf, u32 k). Bounded as
 * Firecracker bounds it: 100000 bytes, BPF_MAXINSNS per program. */
#define CUSTOM_MAX_BYTES 100000

static bool take(const uint8_t **pos, const uint8_t *end, void *out, size_t n)
{
    if ((size_t)(end - *pos) < n)
        return false;
    memcpy(out, *pos, n);
    *pos += n;
    return true;
}

static bool take_u64(const uint8_t **pos, const uint8_t *end, uint64_t *v)
{
    uint8_t b[8];
    if (!take(pos, end, b, 8))
        return false;
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = *v << 8 | b[i];
    return true;
}

static int parse_custom(const uint8_t *buf, size_t len, const char *file, enum seccomp_kind kind,
                        struct seccomp_prog *p, char *err, size_t errlen)
{
    const uint8_t *pos = buf, *end = buf + len;
    uint64_t count;
    bool have[3] = {false, false, false}; /* vmm, api, vcpu: all required */
    static const char *const required[3] = {"vmm", "api", "vcpu"};
    const char *want = kinds[kind].name, *fallback = kinds[kind].fallback;
    const uint8_t *found = NULL, *found_fb = NULL;
    uint64_t found_n = 0, found_fb_n = 0;
    if (!take_u64(&pos, end, &count) || count > 16)
        goto bad;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t nlen, nins;
        char name[32];
        if (!take_u64(&pos, end, &nlen) || nlen == 0 || nlen >= sizeof(name) ||
            !take(&pos, end, name, nlen))
            goto bad;
        name[nlen] = 0;
        if (!take_u64(&pos, end, &nins) || nins > BPF_MAXINSNS ||
            (size_t)(end - pos) < nins * sizeof(struct sock_filter))
            goto bad;
        for (int k = 0; k < 3; k++)
            have[k] |= !strcmp(name, required[k]);
        if (!strcmp(name, want))
            found = pos, found_n = nins;
        else if (fallback && !strcmp(name, fallback))
            found_fb = pos, found_fb_n = nins;
        pos += nins * sizeof(struct sock_filter);
    }
    if (pos != end)
        goto bad;
    for (int k = 0; k < 3; k++)
        if (!have[k]) {
            snprintf(err, errlen,
                     "seccomp filter file %s has no filter for the '%s' threads (it needs vmm, "
                     "api and vcpu, as Firecracker's)",
                     file, required[k]);
            return -EINVAL;
        }
    if (!found)
        found = found_fb, found_n = found_fb_n;
    p->len = (unsigned short)found_n;
    if (found_n) {
        p->ins = malloc(found_n * sizeof(struct sock_filter));
        if (!p->ins) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        memcpy(p->ins, found, found_n * sizeof(struct sock_filter));
    }
    return 0;
bad:
    snprintf(err, errlen,
             "seccomp filter file %s is not a compiled filter set (Firecracker's seccompiler-bin "
             "format, at most %u bytes)",
             file, CUSTOM_MAX_BYTES);
    return -EINVAL;
}

static int build_custom(struct seccomp_prog *p, enum seccomp_kind kind, const char *file,
                        char *err, size_t errlen)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open the seccomp filter file %s: %s", file, strerror(e));
        return -e;
    }
    uint8_t *buf = malloc(CUSTOM_MAX_BYTES + 1);
    size_t len = 0;
    ssize_t n = 1;
    while (buf && len <= CUSTOM_MAX_BYTES &&
           (n = read(fd, buf + len, CUSTOM_MAX_BYTES + 1 - len)) > 0)
        len += (size_t)n;
    int e = errno;
    close(fd);
    int r;
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        r = -ENOMEM;
    } else if (n < 0) {
        snprintf(err, errlen, "cannot read the seccomp filter file %s: %s", file, strerror(e));
        r = -e;
    } else if (len > CUSTOM_MAX_BYTES) {
        snprintf(err, errlen, "seccomp filter file %s is larger than %u bytes", file,
                 CUSTOM_MAX_BYTES);
        r = -EFBIG;
    } else {
        r = parse_custom(buf, len, file, kind, p, err, errlen);
    }
    free(buf);
    return r;
}

int seccomp_prog_build(struct seccomp_prog *p, enum seccomp_kind kind, const char *file, char *err,
                       size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if ((unsigned)kind >= SECCOMP_KINDS)
        return -EINVAL;
    return file ? build_custom(p, kind, file, err, errlen) : build_builtin(p, kind, err, errlen);
}

void seccomp_prog_release(struct seccomp_prog *p)
{
    free(p->ins);
    memset(p, 0, sizeof(*p));
}

/* ---- a forbidden call: one line, then death by SIGSYS ---- */

static _Thread_local char thread_label[48];
static const char *syscall_names[512];

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
    while (*s && *n + 1 < cap)
        buf[(*n)++] = *s++;
}

static void put_uint(char *buf, size_t *n, size_t cap, unsigned long v)
{
    char d[24];
    int k = 0;
    do
        d[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < 24);
    while (k && *n + 1 < cap)
        buf[(*n)++] = d[--k];
}

/* Async-signal-safe: no allocation, no stdio, no locks. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (si->si_code != SYS_SECCOMP)
        return;
    char line[256];
    size_t n = 0;
    unsigned nr = (unsigned)si->si_syscall;
    put(line, &n, sizeof(line), "arcvm: error: seccomp: thread ");
    put(line, &n, sizeof(line), thread_label[0] ? thread_label : "?");
    put(line, &n, sizeof(line), " made the forbidden system call ");
    put(line, &n, sizeof(line),
        nr < sizeof(syscall_names) / sizeof(syscall_names[0]) && syscall_names[nr]
            ? syscall_names[nr]
            : "?");
    put(line, &n, sizeof(line), " (");
    put_uint(line, &n, sizeof(line), nr);
    put(line, &n, sizeof(line), "); the process stops with SIGSYS\n");
    ssize_t w = write(log_fd(), line, n);
    (void)w;
    /* SIGSYS is blocked while this handler runs, so a call the filter traps
     * now makes the kernel kill the process with SIGSYS; calls it allows
     * get there too: default action, unblocked, raised. */
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    _exit(128 + sig);
}

static void install_handler(void)
{
    for (unsigned i = 0; i < sizeof(syscall_names) / sizeof(syscall_names[0]); i++)
        syscall_names[i] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)i);
    struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSYS, &sa, NULL);
}

/* ---- audit: a supervisor thread that lets everything through ---- */

#define AUDIT_FDS 256
#define AUDIT_SEEN 4096
static struct {
    pthread_mutex_t lock;
    _Atomic int fds[AUDIT_FDS];
    enum seccomp_kind kind[AUDIT_FDS];
    struct audit_seen {
        unsigned kind, nr;
        uint64_t key;
    } seen[AUDIT_SEEN];
    unsigned nseen;
    int out;
} audit = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The argument an allow rule would test, so the log shows what to allow. */
static int audit_key_arg(unsigned nr)
{
    if (nr == SCMP_SYS(ioctl) || nr == SCMP_SYS(fcntl))
        return 1; /* the request, the command */
    if (nr == SCMP_SYS(socket) || nr == SCMP_SYS(prctl))
        return 0; /* the domain, the option */
    if (nr == SCMP_SYS(mmap) || nr == SCMP_SYS(mprotect) || nr == SCMP_SYS(madvise))
        return 2; /* the protection, the advice */
    return -1;
}

static void audit_note(enum seccomp_kind kind, const struct seccomp_notif *req)
{
    int ka = audit_key_arg((unsigned)req->data.nr);
    uint64_t key = ka >= 0 ? req->data.args[ka] : 0;
    for (unsigned i = 0; i < audit.nseen; i++)
        if (audit.seen[i].kind == kind && audit.seen[i].nr == (unsigned)req->data.nr &&
            audit.seen[i].key == key)
            return;
    if (audit.nseen < AUDIT_SEEN)
        audit.seen[audit.nseen++] = (struct audit_seen){kind, (unsigned)req->data.nr, key};
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, req->data.nr);
    char line[200];
    int n = ka >= 0 ? snprintf(line, sizeof(line), "%s %s arg%d=0x%llx\n", kinds[kind].name,
                               name ? name : "?", ka, (unsigned long long)key)
                    : snprintf(line, sizeof(line), "%s %s\n", kinds[kind].name, name ? name : "?");
    free(name);
    if (write(audit.out, line, (size_t)n) < 0)
        return;
}

static void *audit_thread(void *arg)
{
    (void)arg;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    if (seccomp_notify_alloc(&req, &resp) < 0)
        return NULL;
    for (;;) {
        struct pollfd pf[AUDIT_FDS];
        int slot[AUDIT_FDS], n = 0;
        for (int i = 0; i < AUDIT_FDS; i++) {
            int fd = atomic_load(&audit.fds[i]);
            if (fd > 0) {
                pf[n] = (struct pollfd){.fd = fd, .events = POLLIN};
                slot[n++] = i;
            }
        }
        /* Short timeout: a new thread's descriptor is picked up quickly. */
        if (poll(pf, (nfds_t)n, 20) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (pf[i].revents & POLLIN) {
                memset(req, 0, sizeof(*req));
                if (seccomp_notify_receive(pf[i].fd, req) == 0) {
                    audit_note(audit.kind[slot[i]], req);
                    memset(resp, 0, sizeof(*resp));
                    resp->id = req->id;
                    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
                    seccomp_notify_respond(pf[i].fd, resp);
                }
            } else if (pf[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                atomic_store(&audit.fds[slot[i]], 0); /* its thread is gone */
                close(pf[i].fd);
            }
        }
    }
    return NULL;
}

static int audit_start(char *err, size_t errlen)
{
    static bool started;
    if (started)
        return 0;
    audit.out = open(audit_path(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (audit.out < 0) {
        int e = errno;
        snprintf(err, errlen, "ARCVM_SECCOMP_AUDIT=%s: %s", audit_path(), strerror(e));
        return -e;
    }
    pthread_t t;
    int r = pthread_create(&t, NULL, audit_thread, NULL);
    if (r) {
        snprintf(err, errlen, "seccomp audit thread: %s", strerror(r));
        return -r;
    }
    pthread_detach(t);
    started = true;
    return 0;
}

/* ---- installing ---- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                        \
    __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif

bool seccomp_enforced(void)
{
#ifdef SANITIZED
    return false;
#else
    /* For telling the filters apart from other causes when debugging (the
     * same as --no-seccomp everywhere, without touching command lines). */
    const char *e = getenv("ARCVM_SECCOMP");
    return !(e && !strcmp(e, "off"));
#endif
}

int seccomp_prog_apply(const struct seccomp_prog *p, enum seccomp_kind kind, char *err,
                       size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!p->len || !seccomp_enforced())
        return 0;
    pthread_once(&once, install_handler);
    /* Log timestamps use localtime_r(): read the zone file now, not later. */
    tzset();
    char name[16] = "";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    snprintf(thread_label, sizeof(thread_label), "%s (%s filter)", name, kinds[kind].name);
    /* A trapped call with SIGSYS blocked would kill without the log line. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        int e = errno;
        snprintf(err, errlen, "seccomp: no_new_privs: %s", strerror(e));
        return -e;
    }
    struct sock_fprog prog = {.len = p->len, .filter = p->ins};
    if (p->audit) {
        pthread_mutex_lock(&audit.lock);
        int r = audit_start(err, errlen);
        pthread_mutex_unlock(&audit.lock);
        if (r < 0)
            return r;
    }
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                      p->audit ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "installing the %s seccomp filter failed: %s", kinds[kind].name,
                 strerror(e));
        return -e;
    }
    if (p->audit) {
        /* No system call from here until the supervisor has the fd. */
        for (int i = 0; i < AUDIT_FDS; i++) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&audit.fds[i], &zero, -1)) {
                audit.kind[i] = kind;
                atomic_store(&audit.fds[i], (int)fd);
                break;
            }
        }
    }
    return 0;
}

int seccomp_thread(enum seccomp_kind kind, const char *file, char *err, size_t errlen)
{
    struct seccomp_prog p;
    int r = seccomp_prog_build(&p, kind, file, err, errlen);
    if (r == 0)
        r = seccomp_prog_apply(&p, kind, err, errlen);
    seccomp_prog_release(&p);
    return r;
}
