/* netuser.c - starting and stopping the user-mode network helper; see
 * netuser.h and src/netuser/protocol.h. */
#include "host/netuser.h"

#include "netuser/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* How long the helper may take to set up and answer: it only creates slirp
 * and binds the forwarded ports, well under a second even on a loaded host;
 * the margin is for nested, emulated test machines. */
#define HELLO_TIMEOUT_MS 10000
/* How long a helper gets to exit after its socket closed before SIGKILL. */
#define STOP_WAIT_MS 500
/* Socket buffers asked for: about 400 full-size frames queued each way
 * before the sender sees EAGAIN (the kernel caps it at wmem_max). */
#define SOCK_BUF_BYTES (1 << 20)

static bool executable(const char *p)
{
    return access(p, X_OK) == 0;
}

/* Find the helper (see netuser.h for the order). */
int netuser_find_helper(char *out, size_t len, char *err, size_t errlen)
{
    const char *env = getenv(NETUSER_HELPER_ENV);
    if (env && *env) {
        if (!executable(env)) {
            snprintf(err, errlen, "%s=%s is not an executable file; point it at %s or unset it",
                     NETUSER_HELPER_ENV, env, NETUSER_HELPER_NAME);
            return -ENOENT;
        }
        snprintf(out, len, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            if ((size_t)snprintf(out, len, "%s/%s", self, NETUSER_HELPER_NAME) < len &&
                executable(out))
                return 0;
            *slash = '/';
        }
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t dl = colon ? (size_t)(colon - path) : strlen(path);
        if (dl && (size_t)snprintf(out, len, "%.*s/%s", (int)dl, path, NETUSER_HELPER_NAME) < len &&
            executable(out))
            return 0;
        path = colon ? colon + 1 : NULL;
    }
    snprintf(err, errlen,
             "user-mode networking needs the helper program %s, found neither through $%s, "
             "next to %s, nor on $PATH; install it beside arcvm or set %s to its path",
             NETUSER_HELPER_NAME, NETUSER_HELPER_ENV, n > 0 ? self : "arcvm", NETUSER_HELPER_ENV);
    return -ENOENT;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

bool netuser_reap(struct netuser *n)
{
    if (n->pid <= 0)
        return true;
    int st = 0;
    pid_t r = waitpid(n->pid, &st, WNOHANG);
    if (r == n->pid || (r < 0 && errno == ECHILD)) {
        /* ECHILD: someone else reaped it (a SIGCHLD set to SIG_IGN). */
        n->status = r == n->pid ? st : 0;
        n->pid = 0;
        return true;
    }
    return false;
}

void netuser_stop(struct netuser *n)
{
    if (n->fd >= 0)
        close(n->fd); /* the helper sees EOF and exits */
    n->fd = -1;
    for (int waited = 0; !netuser_reap(n); waited += 10) {
        if (waited >= STOP_WAIT_MS) {
            kill(n->pid, SIGKILL);
            int st;
            while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR)
                ;
            n->pid = 0;
            break;
        }
        sleep_ms(10);
    }
}

/* Wait for the helper's handshake. 0, or -errno with @err set. */
static int hello(struct netuser *n, const char *path, char *err, size_t errlen)
{
    char msg[NETUSER_HELLO_MAX + 1];
    struct pollfd p = {n->fd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, HELLO_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    if (r == 0) {
        snprintf(err, errlen, "the user-mode network helper %s did not start within %d s", path,
                 HELLO_TIMEOUT_MS / 1000);
        return -ETIMEDOUT;
    }
    ssize_t len = recv(n->fd, msg, NETUSER_HELLO_MAX, MSG_DONTWAIT);
    if (len <= 0) {
        /* It died before answering; its own message is on stderr. */
        snprintf(err, errlen, "the user-mode network helper %s exited at start (see its message above)",
                 path);
        return -ECHILD;
    }
    msg[len] = 0;
    if (!strcmp(msg, NETUSER_HELLO_OK))
        return 0;
    size_t el = strlen(NETUSER_HELLO_ERR);
    if (!strncmp(msg, NETUSER_HELLO_ERR, el)) {
        snprintf(err, errlen, "user-mode networking: %s", msg + el);
        return -EINVAL;
    }
    snprintf(err, errlen, "%s is not arcvm %s's user-mode network helper (bad handshake)", path,
             ARCVM_VERSION);
    return -EPROTO;
}

int netuser_start(struct netuser *n, const struct net_hostfwd *fwd, unsigned nfwd, char *err,
                  size_t errlen)
{
    n->fd = -1;
    n->pid = 0;
    n->status = 0;
    char path[PATH_MAX];
    int r = netuser_find_helper(path, sizeof(path), err, errlen);
    if (r < 0)
        return r;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        r = -errno;
        snprintf(err, errlen, "user-mode networking: cannot create a socket pair: %s", strerror(-r));
        return r;
    }
    int bytes = SOCK_BUF_BYTES;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    n->fd = sv[0];
    if (sv[1] == NETUSER_FD) {
        /* dup2() onto itself would keep close-on-exec set. */
        int d = fcntl(sv[1], F_DUPFD_CLOEXEC, NETUSER_FD + 1);
        close(sv[1]);
        sv[1] = d;
        if (d < 0) {
            r = -errno;
            snprintf(err, errlen, "user-mode networking: %s", strerror(-r));
            netuser_stop(n);
            return r;
        }
    }

    /* argv: path, --fd 3, --parent PID, and --hostfwd SPEC per rule. */
    enum { SPEC_LEN = 48 };
    char pid_s[16], fd_s[8];
    char(*specs)[SPEC_LEN] = calloc(nfwd ? nfwd : 1, SPEC_LEN);
    char **argv = calloc(6 + 2 * (size_t)nfwd + 1, sizeof(char *));
    if (!specs || !argv) {
        free(specs);
        free(argv);
        close(sv[1]);
        netuser_stop(n);
        snprintf(err, errlen, "user-mode networking: out of memory");
        return -ENOMEM;
    }
    snprintf(pid_s, sizeof(pid_s), "%d", (int)getpid());
    snprintf(fd_s, sizeof(fd_s), "%d", NETUSER_FD);
    unsigned a = 0;
    argv[a++] = path;
    argv[a++] = "--fd";
    argv[a++] = fd_s;
    argv[a++] = "--parent";
    argv[a++] = pid_s;
    for (unsigned i = 0; i < nfwd; i++) {
        uint32_t h = fwd[i].host_addr ? fwd[i].host_addr : 0x7f000001u; /* 127.0.0.1 */
        snprintf(specs[i], SPEC_LEN, "%s:%u.%u.%u.%u:%u:%u", fwd[i].udp ? "udp" : "tcp", h >> 24,
                 (h >> 16) & 255, (h >> 8) & 255, h & 255, fwd[i].host_port, fwd[i].guest_port);
        argv[a++] = "--hostfwd";
        argv[a++] = specs[i];
    }
    argv[a] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* stdin and stdout are the guest console's, never the helper's; stderr
     * stays for its messages. Every other fd arcvm has is closed. */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], NETUSER_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, NETUSER_FD + 1);
    /* A clean signal state (the CLI blocks SIGINT and friends, ignores
     * SIGPIPE), and its own process group: a Ctrl-C on arcvm's terminal is
     * arcvm's to handle, and the helper ends when arcvm closes the socket. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int e = posix_spawn(&pid, path, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    free(argv);
    free(specs);
    if (e) {
        snprintf(err, errlen, "cannot start the user-mode network helper %s: %s", path, strerror(e));
        netuser_stop(n);
        return -e;
    }
    n->pid = pid;
    r = hello(n, path, err, errlen);
    if (r < 0) {
        netuser_stop(n);
        return r;
    }
    if (fcntl(n->fd, F_SETFL, fcntl(n->fd, F_GETFL) | O_NONBLOCK) < 0) {
        r = -errno;
        snprintf(err, errlen, "user-mode networking: %s", strerror(-r));
        netuser_stop(n);
        return r;
    }
    return 0;
}
