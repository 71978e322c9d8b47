/* test_api_fc.c - the `firecracker` process behaviour (fc_main): flags and
 * their exit statuses, the API socket's life, the config file, SIGTERM.
 * Runs that serve are forked; none needs KVM. */
#include "unit.h"

#include "api/fc_main.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

struct t {
    char dir[64], sock[128], kernel[128], disk[128], cfg[128], metrics[128];
};

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/arcvm-test-fc-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->sock, sizeof(t->sock), "%s/fc.sock", t->dir);
    snprintf(t->kernel, sizeof(t->kernel), "%s/vmlinux", t->dir);
    snprintf(t->disk, sizeof(t->disk), "%s/rootfs.img", t->dir);
    snprintf(t->cfg, sizeof(t->cfg), "%s/vm.json", t->dir);
    snprintf(t->metrics, sizeof(t->metrics), "%s/metrics", t->dir);
    write_file(t->kernel, "not a kernel");
    write_file(t->disk, "not a disk");
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

/* fc_main() in this process with "firecracker" and the given flags. */
static int fc_run(const char *first, ...)
{
    char *argv[16] = {"firecracker"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    return fc_main(argc, argv);
}
#define FC(...) fc_run(__VA_ARGS__, (const char *)NULL)

static void test_argv_skip(void **state)
{
    (void)state;
    char *a[] = {"/usr/bin/firecracker", "--api-sock", "x", NULL};
    assert_int_equal(fc_argv_skip(3, a), 0);
    char *b[] = {"./arcvm", "firecracker", "--no-api", NULL};
    assert_int_equal(fc_argv_skip(3, b), 1);
    char *c[] = {"arcvm", "run", NULL};
    assert_int_equal(fc_argv_skip(2, c), -1);
    char *d[] = {"arcvm", NULL};
    assert_int_equal(fc_argv_skip(1, d), -1);
}

static void test_flags(void **state)
{
    struct t *t = *state;
    assert_int_equal(FC("--help"), FC_EXIT_OK);
    assert_int_equal(FC("--version"), FC_EXIT_OK);
    assert_int_equal(FC("--bogus"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("--api-sock"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("extra"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("--no-api"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("--id", "under_score"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("--id", "a", "--id", "b"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("--level", "Loud"), FC_EXIT_BAD_CONFIGURATION);
    /* A filter file that cannot be read stops the start, before the API. */
    assert_int_equal(FC("--seccomp-filter", "/nonexistent/f.bpf"), FC_EXIT_ERROR);
    assert_int_equal(FC("--enable-pci"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("--http-api-max-payload-size", "lots"), FC_EXIT_ARG_PARSING);
    assert_int_equal(FC("--start-time-us", "-5"), FC_EXIT_ARG_PARSING);
    /* An existing socket path is refused and left alone. */
    write_file(t->sock, "mine");
    assert_int_equal(FC("--api-sock", t->sock), FC_EXIT_ERROR);
    struct stat st;
    assert_int_equal(stat(t->sock, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(t->sock);
}

static void test_config_errors(void **state)
{
    struct t *t = *state;
    write_file(t->cfg, "{\"boot-source\": ");
    assert_int_equal(FC("--no-api", "--config-file", t->cfg), FC_EXIT_BAD_CONFIGURATION);
    write_file(t->cfg, "{\"vsock\": {\"guest_cid\": 1, \"uds_path\": \"/tmp/v.sock\"}}");
    assert_int_equal(FC("--no-api", "--config-file", t->cfg), FC_EXIT_BAD_CONFIGURATION);
    assert_int_equal(FC("--no-api", "--config-file", "/nonexistent.json"),
                     FC_EXIT_BAD_CONFIGURATION);
    /* A valid configuration whose start fails (no KVM here, and never a real
     * kernel): a host error. With the API, the socket is removed again. */
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\"},"
             " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\","
             " \"is_root_device\": true, \"is_read_only\": true}],"
             " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}}",
             t->kernel, t->disk);
    write_file(t->cfg, cfg);
    assert_int_equal(FC("--no-api", "--config-file", t->cfg), FC_EXIT_ERROR);
    assert_int_equal(FC("--api-sock", t->sock, "--config-file", t->cfg), FC_EXIT_ERROR);
    assert_int_equal(access(t->sock, F_OK), -1);
}

static int dial(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int http(const char *sock, const char *raw, char *resp, size_t cap)
{
    int fd = dial(sock);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        assert_int_equal(poll(&p, 1, 5000), 1);
        ssize_t r = read(fd, resp + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    resp[n] = 0;
    close(fd);
    int status = 0;
    sscanf(resp, "HTTP/1.%*d %d", &status);
    return status;
}

static int put(const char *sock, const char *path, const char *body, char *resp, size_t cap)
{
    char raw[1024];
    snprintf(raw, sizeof(raw),
             "PUT %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             path, strlen(body), body);
    return http(sock, raw, resp, cap);
}

static void test_serve_and_sigterm(void **state)
{
    struct t *t = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        alarm(20); /* should the test fail before its SIGTERM */
        char *argv[] = {"firecracker", "--api-sock",     t->sock,    "--id",
                        "fc-test-1",   "--metrics-path", t->metrics, NULL};
        _exit(fc_main(7, argv));
    }
    /* Wait (at most 5 s) for the API socket. */
    int fd = -1;
    for (int i = 0; i < 500 && fd < 0; i++) {
        fd = dial(t->sock);
        if (fd < 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(fd >= 0);
    close(fd);
    char resp[4096];
    assert_int_equal(
        http(t->sock, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp, sizeof(resp)),
        200);
    assert_non_null(strstr(resp, "\"id\":\"fc-test-1\""));
    assert_non_null(strstr(resp, "\"state\":\"Not started\""));
    assert_int_equal(
        put(t->sock, "/actions", "{\"action_type\": \"FlushMetrics\"}", resp, sizeof(resp)), 204);
    /* InstanceStart without a kernel: refused, the process serves on. */
    assert_int_equal(
        put(t->sock, "/actions", "{\"action_type\": \"InstanceStart\"}", resp, sizeof(resp)), 400);
    assert_non_null(strstr(resp, "without kernel configuration"));

    assert_int_equal(kill(pid, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 128 + SIGTERM);
    assert_int_equal(access(t->sock, F_OK), -1); /* removed on exit */
    /* The FlushMetrics line and the one written on exit. */
    char m[65536];
    int mfd = open(t->metrics, O_RDONLY);
    assert_true(mfd >= 0);
    ssize_t n = read(mfd, m, sizeof(m) - 1);
    close(mfd);
    assert_true(n > 0);
    m[n] = 0;
    int lines = 0;
    for (char *p = m; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 2);
    assert_non_null(strstr(m, "\"utc_timestamp_ms\""));
}

int main(void)
{
    RUN(cmocka_unit_test(test_argv_skip),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve_and_sigterm, setup, teardown));
}
