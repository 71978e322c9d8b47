/* test_seccomp.c - the per-thread filters (src/vmm/seccomp.c): the
 * built-in lists are smaller than Firecracker's, custom files in
 * Firecracker's compiled format are read and refused as they should be, and
 * a forbidden call ends the process with SIGSYS after one line naming the
 * thread and the call. */
#include "unit.h"

#include "base/log.h"
#include "vmm/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Firecracker's published numbers of allowed calls (x86-64, 1.x): the
 * built-in lists must stay below them. */
static void test_builtin_smaller_than_firecracker(void **state)
{
    (void)state;
    assert_true(seccomp_builtin_syscalls(SECCOMP_VCPU) < 27);
    assert_true(seccomp_builtin_syscalls(SECCOMP_API) < 31);
    assert_true(seccomp_builtin_syscalls(SECCOMP_VMM) < 50);
    assert_true(seccomp_builtin_syscalls(SECCOMP_EVLOOP) < 50);
    assert_true(seccomp_builtin_syscalls(SECCOMP_FS) < 50);
    char err[256];
    for (int k = 0; k < SECCOMP_KINDS; k++) {
        struct seccomp_prog p;
        assert_int_equal(seccomp_prog_build(&p, (enum seccomp_kind)k, NULL, err, sizeof(err)), 0);
        assert_true(p.len > 0 && p.len <= BPF_MAXINSNS);
        seccomp_prog_release(&p);
    }
}

/* A file in seccompiler-bin's layout: u64 count, then name and program. */
struct fcfile {
    uint8_t buf[4096];
    size_t n;
};

static void put_u64(struct fcfile *f, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        f->buf[f->n++] = (uint8_t)(v >> (8 * i));
}

static void put_prog(struct fcfile *f, const char *name, const struct sock_filter *ins, size_t n)
{
    put_u64(f, strlen(name));
    memcpy(f->buf + f->n, name, strlen(name));
    f->n += strlen(name);
    put_u64(f, n);
    if (n)
        memcpy(f->buf + f->n, ins, n * sizeof(*ins));
    f->n += n * sizeof(*ins);
}

static const struct sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
/* Trap one call (socket), allow the rest. */
static const struct sock_filter trap_socket[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

static char path[64];

static void write_file(const struct fcfile *f)
{
    snprintf(path, sizeof(path), "/tmp/arcvm-test-seccomp-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f->buf, f->n), (ssize_t)f->n);
    close(fd);
}

static void test_custom_file(void **state)
{
    (void)state;
    char err[512];
    struct seccomp_prog p;
    struct fcfile f = {.n = 0};
    put_u64(&f, 3);
    put_prog(&f, "vmm", allow_all, 1);
    put_prog(&f, "api", NULL, 0); /* empty: no filter, as in Firecracker */
    put_prog(&f, "vcpu", trap_socket, 4);
    write_file(&f);
    assert_int_equal(seccomp_prog_build(&p, SECCOMP_VCPU, path, err, sizeof(err)), 0);
    assert_int_equal(p.len, 4);
    assert_memory_equal(p.ins, trap_socket, sizeof(trap_socket));
    seccomp_prog_release(&p);
    assert_int_equal(seccomp_prog_build(&p, SECCOMP_API, path, err, sizeof(err)), 0);
    assert_int_equal(p.len, 0);
    assert_int_equal(seccomp_prog_apply(&p, SECCOMP_API, err, sizeof(err)), 0); /* nothing */
    seccomp_prog_release(&p);
    /* The event loop takes "vmm" when the file has no "evloop". */
    assert_int_equal(seccomp_prog_build(&p, SECCOMP_EVLOOP, path, err, sizeof(err)), 0);
    assert_int_equal(p.len, 1);
    seccomp_prog_release(&p);

    /* Truncated anywhere: refused with the format named. */
    for (size_t cut = 0; cut < f.n; cut += 5) {
        struct fcfile t = f;
        t.n = cut;
        unlink(path);
        write_file(&t);
        assert_true(seccomp_prog_build(&p, SECCOMP_VCPU, path, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "seccompiler-bin"));
    }
    /* A category missing. */
    struct fcfile m = {.n = 0};
    put_u64(&m, 2);
    put_prog(&m, "vmm", allow_all, 1);
    put_prog(&m, "vcpu", allow_all, 1);
    unlink(path);
    write_file(&m);
    assert_int_equal(seccomp_prog_build(&p, SECCOMP_VCPU, path, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'api'"));
    /* An absurd instruction count. */
    struct fcfile b = {.n = 0};
    put_u64(&b, 1);
    put_u64(&b, 3);
    memcpy(b.buf + b.n, "vmm", 3);
    b.n += 3;
    put_u64(&b, UINT64_MAX / 4);
    unlink(path);
    write_file(&b);
    assert_int_equal(seccomp_prog_build(&p, SECCOMP_VCPU, path, err, sizeof(err)), -EINVAL);
    unlink(path);
    assert_int_equal(seccomp_prog_build(&p, SECCOMP_VCPU, path, err, sizeof(err)), -ENOENT);
}

/* In a child: install @kind's filter (custom @file or built-in), then make
 * a call it forbids. The child must die of SIGSYS, with one line naming the
 * thread and the call on the log descriptor. */
static void expect_sigsys(enum seccomp_kind kind, const char *file, const char *call)
{
    if (!seccomp_enforced()) {
        /* The plain unit build runs this; sanitizer runtimes make calls of
         * their own, so filters are off in their builds. */
        print_message("sanitizer build: filters are not installed, not checked here\n");
        skip();
    }
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        log_set_fd(pfd[1]);
        prctl(PR_SET_NAME, "tester", 0, 0, 0);
        char err[256];
        if (seccomp_thread(kind, file, err, sizeof(err)) < 0)
            _exit(3);
        /* Forbidden by every filter used here. */
        syscall(__NR_socket, AF_INET, SOCK_STREAM, 0);
        _exit(4);
    }
    close(pfd[1]);
    char line[512] = "";
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(line) - 1 && (r = read(pfd[0], line + n, sizeof(line) - 1 - n)) > 0)
        n += (size_t)r;
    line[n] = 0;
    close(pfd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
        fail_msg("child status 0x%x, log '%s'", st, line);
    assert_non_null(strstr(line, "thread tester"));
    assert_non_null(strstr(line, call));
    assert_non_null(strchr(line, '\n'));
    assert_ptr_equal(strchr(line, '\n') + 1, line + n); /* one line */
}

static void test_violation_builtin(void **state)
{
    (void)state;
    expect_sigsys(SECCOMP_VCPU, NULL, "forbidden system call socket");
    expect_sigsys(SECCOMP_API, NULL, "forbidden system call socket");
}

static void test_violation_custom(void **state)
{
    (void)state;
    struct fcfile f = {.n = 0};
    put_u64(&f, 3);
    put_prog(&f, "vmm", trap_socket, 4);
    put_prog(&f, "api", trap_socket, 4);
    put_prog(&f, "vcpu", trap_socket, 4);
    write_file(&f);
    char want[64];
    snprintf(want, sizeof(want), "socket (%d)", __NR_socket);
    expect_sigsys(SECCOMP_VMM, path, want);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_smaller_than_firecracker),
        cmocka_unit_test(test_custom_file),
        cmocka_unit_test(test_violation_builtin),
        cmocka_unit_test(test_violation_custom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
