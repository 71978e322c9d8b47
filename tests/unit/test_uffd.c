/* test_uffd.c - Uffd guest memory (guest_mem_init_uffd) served by the real
 * page-fault handler, arcvm-uffd-handler, run as a child process
 * ($ARCVM_UFFD_HANDLER, set by meson). Needs userfaultfd: as root, or with
 * vm.unprivileged_userfaultfd=1; without it the tests fail, they do not
 * skip. */
#include "unit.h"

#include "base/guest_mem.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define PG 4096u
/* The memory file: 24 pages, the RAM of two regions laid out one after the
 * other as guest_mem_init() does. Pages 0-19 hold a pattern but page 5
 * (written as zeros); 20-23 are a hole (sparse file). */
#define FILE_PAGES 24
#define DATA_PAGES 20
#define ZERO_PAGE  5
static const struct guest_mem_region layout[] = {
    {0, 16 * PG, NULL},       /* file pages 0-15 */
    {0x100000, 8 * PG, NULL}, /* file pages 16-23 */
};

struct fx {
    char dir[64], sock[128], mem[128], log[128];
    pid_t pid;
    struct guest_mem m;
};

/* What file page @i holds. */
static void page_pattern(unsigned i, uint8_t *p)
{
    memset(p, 0, PG);
    if (i >= DATA_PAGES || i == ZERO_PAGE)
        return;
    for (unsigned j = 0; j < PG; j++)
        p[j] = (uint8_t)(i * 37 + j * 11 + 1);
}

/* The host pointer of file page @i through the guest mapping. */
static uint8_t *guest_page(struct fx *f, unsigned i)
{
    uint64_t gpa = i < 16 ? i * PG : 0x100000 + (i - 16) * PG;
    uint8_t *p = guest_mem_ptr(&f->m, gpa, PG);
    assert_non_null(p);
    return p;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->m.fd = -1;
    strcpy(f->dir, "/tmp/arcvm-uffd-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/uffd.sock", f->dir);
    snprintf(f->mem, sizeof(f->mem), "%s/mem", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/handler.log", f->dir);
    int fd = open(f->mem, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    uint8_t page[PG];
    for (unsigned i = 0; i < DATA_PAGES; i++) {
        page_pattern(i, page);
        assert_int_equal(pwrite(fd, page, PG, (off_t)i * PG), PG);
    }
    assert_int_equal(ftruncate(fd, (off_t)FILE_PAGES * PG), 0);
    close(fd);
    *state = f;
    return 0;
}

/* Wait up to 10 s for the handler to exit; its wait status, or -1. */
static int wait_handler(struct fx *f)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        pid_t r = waitpid(f->pid, &st, WNOHANG);
        if (r == f->pid) {
            f->pid = 0;
            return st;
        }
        usleep(10000);
    }
    return -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    guest_mem_release(&f->m);
    if (f->pid > 0 && wait_handler(f) < 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
    }
    unlink(f->sock);
    unlink(f->mem);
    unlink(f->log);
    char dump[160];
    snprintf(dump, sizeof(dump), "%s/dump", f->dir); /* test_dump's, if it failed */
    unlink(dump);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Start the handler with @argc arguments (SOCKET MEMFILE normally) and
 * wait for its socket. */
static void start_handler_args(struct fx *f, int argc)
{
    const char *exe = getenv("ARCVM_UFFD_HANDLER");
    if (!exe)
        fail_msg("ARCVM_UFFD_HANDLER is not set: run this test through `meson test`");
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(126);
        execl(exe, exe, argc > 0 ? f->sock : NULL, argc > 1 ? f->mem : NULL, (char *)NULL);
        _exit(127);
    }
    if (argc < 2)
        return;
    /* The handler links the socket's path only once it is listening. */
    for (int i = 0; i < 500; i++) {
        if (access(f->sock, F_OK) == 0)
            return;
        if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
            f->pid = 0;
            fail_msg("arcvm-uffd-handler exited before listening");
        }
        usleep(10000);
    }
    fail_msg("arcvm-uffd-handler did not listen on %s within 5 s", f->sock);
}

static void start_handler(struct fx *f)
{
    start_handler_args(f, 2);
}

/* Start the handler and get Uffd memory from it. */
static void start(struct fx *f)
{
    start_handler(f);
    char err[256] = "";
    int r = guest_mem_init_uffd(&f->m, layout, 2, f->sock, err, sizeof(err));
    if (r < 0)
        fail_msg("guest_mem_init_uffd: %d: %s (userfaultfd must work for this test: run as "
                 "root or set vm.unprivileged_userfaultfd=1)",
                 r, err);
    assert_int_equal(f->m.fd, -1);
    assert_true(f->m.uffd > 0);
    assert_int_equal(f->m.total, (uint64_t)FILE_PAGES * PG);
}

static void read_log(struct fx *f, char *buf, size_t len)
{
    int fd = open(f->log, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = 0;
}

/* Release the memory: the handler sees the unmap, exits 0 and sums up;
 * that summary must contain @summary. */
static void finish(struct fx *f, const char *summary)
{
    guest_mem_release(&f->m);
    assert_int_equal(f->m.uffd, 0);
    int st = wait_handler(f);
    char log[4096];
    read_log(f, log, sizeof(log));
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("handler status %#x, log:\n%s", st, log);
    if (!strstr(log, "the VMM released its guest memory") || !strstr(log, summary))
        fail_msg("expected \"%s\" in the handler's log:\n%s", summary, log);
}

static void test_reads(void **state)
{
    struct fx *f = *state;
    start(f);
    uint8_t want[PG];
    for (unsigned i = 0; i < FILE_PAGES; i++) {
        page_pattern(i, want);
        assert_memory_equal(guest_page(f, i), want, PG);
    }
    /* Every page once: the zero page and the hole's four as zero pages. */
    finish(f, "24 faults served, 19 pages copied, 5 zero pages (0 removes)");
}

static void test_writes_stay_private(void **state)
{
    struct fx *f = *state;
    start(f);
    /* First touches that are writes: the page is filled before the store. */
    guest_page(f, 2)[100] = 0xAB;
    guest_page(f, 17)[0] = 0xCD;
    guest_page(f, 21)[PG - 1] = 0xEF; /* in the hole */
    uint8_t want[PG], got[PG];
    page_pattern(2, want);
    want[100] = 0xAB;
    assert_memory_equal(guest_page(f, 2), want, PG);
    page_pattern(17, want);
    want[0] = 0xCD;
    assert_memory_equal(guest_page(f, 17), want, PG);
    assert_int_equal(guest_page(f, 21)[PG - 1], 0xEF);
    /* The file never changes. */
    int fd = open(f->mem, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    for (unsigned i = 0; i < FILE_PAGES; i++) {
        page_pattern(i, want);
        assert_int_equal(pread(fd, got, PG, (off_t)i * PG), PG);
        assert_memory_equal(got, want, PG);
    }
    close(fd);
    finish(f, "3 faults served, 2 pages copied, 1 zero pages");
}

static void test_discard(void **state)
{
    struct fx *f = *state;
    start(f);
    uint8_t want[PG], zero[PG] = {0};
    page_pattern(3, want);
    assert_memory_equal(guest_page(f, 3), want, PG);
    /* A balloon's discard: the pages read as zeros, not the file's. */
    assert_int_equal(guest_mem_discard(&f->m, 3 * PG, PG), 0);
    assert_memory_equal(guest_page(f, 3), zero, PG);
    /* Discarded before ever touched, in the second region. */
    assert_int_equal(guest_mem_discard(&f->m, 0x100000 + PG, PG), 0);
    assert_memory_equal(guest_page(f, 17), zero, PG);
    /* And usable again. */
    guest_page(f, 3)[7] = 7;
    assert_int_equal(guest_page(f, 3)[7], 7);
    /* A neighbour keeps its data. */
    page_pattern(4, want);
    assert_memory_equal(guest_page(f, 4), want, PG);
    finish(f, "4 faults served, 2 pages copied, 2 zero pages (2 removes)");
}

static void test_dump(void **state)
{
    struct fx *f = *state;
    start(f);
    guest_page(f, 1)[0] = 0x55;
    char path[160];
    snprintf(path, sizeof(path), "%s/dump", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    /* Reads every page through the mapping: the handler serves them. */
    assert_int_equal(guest_mem_dump(&f->m, fd), 0);
    uint8_t want[PG], got[PG];
    for (unsigned i = 0; i < FILE_PAGES; i++) {
        page_pattern(i, want);
        if (i == 1)
            want[0] = 0x55;
        assert_int_equal(pread(fd, got, PG, (off_t)i * PG), PG);
        assert_memory_equal(got, want, PG);
    }
    close(fd);
    unlink(path);
    finish(f, "24 faults served, 19 pages copied, 5 zero pages");
}

/* The VMM exits without releasing its memory: the handler sees it go. */
static void test_vmm_exits(void **state)
{
    struct fx *f = *state;
    start_handler(f);
    pid_t vmm = fork();
    assert_true(vmm >= 0);
    if (vmm == 0) {
        char err[256];
        struct guest_mem m;
        if (guest_mem_init_uffd(&m, layout, 2, f->sock, err, sizeof(err)) < 0)
            _exit(1);
        _exit(m.base[0] == 1 ? 0 : 2); /* page 0's first byte */
    }
    int st;
    assert_int_equal(waitpid(vmm, &st, 0), vmm);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = wait_handler(f);
    char log[4096];
    read_log(f, log, sizeof(log));
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !strstr(log, "the VMM exited: 1 "))
        fail_msg("handler status %#x, log:\n%s", st, log);
}

static void test_no_handler(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    assert_int_equal(guest_mem_init_uffd(&f->m, layout, 2, f->sock, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, f->sock));
    assert_non_null(strstr(err, "no page-fault handler"));
    assert_null(f->m.base);
    assert_int_equal(f->m.uffd, 0);
    /* A socket nobody listens on. */
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, f->sock);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    err[0] = 0;
    assert_int_equal(guest_mem_init_uffd(&f->m, layout, 2, f->sock, err, sizeof(err)),
                     -ECONNREFUSED);
    assert_non_null(strstr(err, "no page-fault handler"));
    assert_null(f->m.base);
    close(s);
    /* A bad layout never gets as far. */
    struct guest_mem_region bad[] = {{0, 4095, NULL}};
    assert_int_equal(guest_mem_init_uffd(&f->m, bad, 1, f->sock, err, sizeof(err)), -EINVAL);
    assert_null(f->m.base);
}

/* Play a broken VMM: send @json with @fd attached (-1: none), then hang up;
 * the handler must exit 1 with one line containing @want. */
static void bad_vmm(struct fx *f, const char *json, int fd, const char *want)
{
    start_handler(f);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, f->sock);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {.iov_base = (void *)json, .iov_len = strlen(json)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = ctl.b;
        mh.msg_controllen = sizeof(ctl.b);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    assert_int_equal(sendmsg(s, &mh, MSG_NOSIGNAL), (ssize_t)strlen(json));
    close(s);
    int st = wait_handler(f);
    char log[4096];
    read_log(f, log, sizeof(log));
    char *nl = strchr(log, '\n');
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 1 || !strstr(log, want) || !nl || nl[1])
        fail_msg("handler status %#x; wanted exit 1 and one line with \"%s\", got:\n%s", st, want,
                 log);
}

static void test_handler_bad_input(void **state)
{
    struct fx *f = *state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    const char *ok = "[{\"base_host_virt_addr\":1048576,\"size\":16384,\"offset\":0,"
                     "\"page_size\":4096}]";
    bad_vmm(f, "[{\"base_host_virt_addr\": 1048576, ]", p[0], "not valid JSON");
    bad_vmm(f, "[{\"base_host_virt_addr\": 1048576, \"size\"", p[0],
            "in the middle of its memory layout");
    bad_vmm(f, "{\"size\": 4096}", p[0], "not an array");
    bad_vmm(f,
            "[{\"base_host_virt_addr\":1048576,\"size\":4096,\"size\":8192,\"offset\":0,"
            "\"page_size\":4096}]",
            p[0], "not valid JSON"); /* duplicate key */
    bad_vmm(f,
            "[{\"base_host_virt_addr\":1048576,\"size\":4096,\"offset\":-4096,"
            "\"page_size\":4096}]",
            p[0], "not a non-negative integer");
    bad_vmm(f,
            "[{\"base_host_virt_addr\":1048576,\"size\":4096,\"offset\":0,"
            "\"page_size\":3000}]",
            p[0], "page size");
    /* The file is 24 pages: 25 do not fit, nor does a page past its end. */
    bad_vmm(f,
            "[{\"base_host_virt_addr\":1048576,\"size\":102400,\"offset\":0,"
            "\"page_size_kib\":4}]",
            p[0], "MEMFILE is 98304 bytes, but region 0 needs 102400");
    bad_vmm(f,
            "[{\"base_host_virt_addr\":1048576,\"size\":4096,\"offset\":98304,"
            "\"page_size\":4096}]",
            p[0], "MEMFILE is 98304 bytes");
    bad_vmm(f,
            "[{\"base_host_virt_addr\":1048576,\"size\":8192,\"offset\":0,\"page_size\":4096},"
            "{\"base_host_virt_addr\":1052672,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
            p[0], "overlap");
    bad_vmm(f, ok, -1, "without the userfaultfd");
    bad_vmm(f, ok, p[0], "not a userfaultfd");
    close(p[0]);
    close(p[1]);
}

static void test_handler_usage(void **state)
{
    struct fx *f = *state;
    start_handler_args(f, 1);
    int st = wait_handler(f);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
    start_handler_args(f, 0);
    st = wait_handler(f);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

/* A MEMFILE that is not there: one line, exit 1, no socket left. */
static void test_handler_missing_file(void **state)
{
    struct fx *f = *state;
    unlink(f->mem);
    const char *exe = getenv("ARCVM_UFFD_HANDLER");
    assert_non_null(exe);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(126);
        execl(exe, exe, f->sock, f->mem, (char *)NULL);
        _exit(127);
    }
    int st = wait_handler(f);
    char log[4096];
    read_log(f, log, sizeof(log));
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1);
    assert_non_null(strstr(log, "cannot open MEMFILE"));
    assert_int_equal(access(f->sock, F_OK), -1);
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    RUN(T(test_reads), T(test_writes_stay_private), T(test_discard), T(test_dump),
        T(test_vmm_exits), T(test_no_handler), T(test_handler_bad_input), T(test_handler_usage),
        T(test_handler_missing_file));
}
