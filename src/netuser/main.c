/* main.c - arcvm-net-user: user-mode networking for one arcvm NIC.
 *
 * A small, dynamically linked helper around libslirp that arcvm starts for
 * each `--net user` NIC (src/host/netuser.c); not meant to be run by hand.
 * It owns a QEMU-like virtual network (10.0.2.0/24: gateway and host
 * loopback 10.0.2.2, DNS 10.0.2.3 forwarding to the host's resolver, DHCP
 * handing out 10.0.2.15), carries the guest's TCP and UDP through ordinary
 * host sockets, and forwards host ports to the guest (--hostfwd). Frames
 * travel on fd 3, a SOCK_SEQPACKET socket, one Ethernet frame per message
 * (src/netuser/protocol.h).
 *
 * Kept out of the VMM on purpose: slirp parses every packet the (hostile)
 * guest sends, and a crash or compromise here costs the guest its network,
 * not the VMM. It runs unprivileged, with no_new_privs, dies with arcvm
 * (socket EOF, and PR_SET_PDEATHSIG) and is single-threaded: one poll() loop
 * over the frame socket, slirp's sockets and slirp's timers.
 */
#include "netuser/protocol.h"

#include <slirp/libslirp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG NETUSER_HELPER_NAME
/* Frames taken from arcvm per loop turn: bounded so that slirp's host
 * sockets and timers are served even while the guest floods us. */
#define RX_BUDGET 64
/* Slirp creates one timer today (IPv6 router advertisements); room to spare. */
#define MAX_TIMERS 16
/* Longest poll sleep: a safety net, slirp lowers it when it needs to. */
#define POLL_MAX_MS 1000
#define MAX_FWD 64

struct timer {
    bool used, armed;
    int64_t expire_ms;
    SlirpTimerId id;   /* timer_new_opaque */
    SlirpTimerCb cb;   /* legacy timer_new */
    void *cb_opaque;
};

struct helper {
    Slirp *slirp;
    int fd;
    struct pollfd *pfd;
    unsigned npfd, cap;
    struct timer timers[MAX_TIMERS];
    uint64_t dropped_to_guest; /* frames arcvm had no room for */
    int64_t next_error_ms;     /* rate limit of guest-error messages */
    bool closed;
};

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;
    /* One write per line: arcvm's own log shares stderr. */
    dprintf(2, PROG ": %.*s\n", n, buf);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- slirp callbacks ------------------------------------------------------ */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct helper *h = opaque;
    if (h->closed)
        return (ssize_t)len;
    ssize_t r = send(h->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) {
            /* arcvm is not reading (the guest has no receive buffers):
             * drop, as a NIC would; TCP retransmits. Never block. */
            h->dropped_to_guest++;
            return (ssize_t)len;
        }
        h->closed = true;
        return -1;
    }
    return r;
}

static void cb_guest_error(const char *m, void *opaque)
{
    struct helper *h = opaque;
    int64_t ms = now_ns() / 1000000;
    /* A guest can trigger these at will: at most one line a second. */
    if (ms >= h->next_error_ms) {
        h->next_error_ms = ms + 1000;
        msg("guest: %s", m);
    }
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return now_ns();
}

static struct timer *timer_alloc(struct helper *h)
{
    for (unsigned i = 0; i < MAX_TIMERS; i++)
        if (!h->timers[i].used) {
            h->timers[i] = (struct timer){.used = true};
            return &h->timers[i];
        }
    msg("out of timers");
    abort(); /* slirp cannot run without one; arcvm sees the socket close */
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct timer *t = timer_alloc(opaque);
    t->cb = cb;
    t->cb_opaque = cb_opaque;
    return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct timer *t = timer_alloc(opaque);
    t->id = id;
    t->cb_opaque = cb_opaque;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct timer *)timer)->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    struct timer *t = timer;
    t->expire_ms = expire_ms;
    t->armed = true;
}

/* Slirp's fds are collected anew before every poll (slirp_pollfds_fill). */
static void cb_register_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

/* Single-threaded: the loop polls again right after slirp returns. */
static void cb_notify(void *opaque)
{
    (void)opaque;
}

static const SlirpCb callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

static int cb_add_poll(int fd, int events, void *opaque)
{
    struct helper *h = opaque;
    if (h->npfd == h->cap) {
        unsigned cap = h->cap ? 2 * h->cap : 64;
        struct pollfd *p = realloc(h->pfd, cap * sizeof(*p));
        if (!p) {
            msg("out of memory");
            exit(1);
        }
        h->pfd = p;
        h->cap = cap;
    }
    short ev = 0;
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    h->pfd[h->npfd] = (struct pollfd){fd, ev, 0};
    return (int)h->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
    struct helper *h = opaque;
    if (idx < 0 || (unsigned)idx >= h->npfd)
        return 0;
    short re = h->pfd[idx].revents;
    int r = 0;
    if (re & POLLIN)
        r |= SLIRP_POLL_IN;
    if (re & POLLOUT)
        r |= SLIRP_POLL_OUT;
    if (re & POLLPRI)
        r |= SLIRP_POLL_PRI;
    if (re & POLLERR)
        r |= SLIRP_POLL_ERR;
    if (re & POLLHUP)
        r |= SLIRP_POLL_HUP;
    return r;
}

/* ---- setup ------------------------------------------------------------------ */

struct fwd {
    bool udp;
    struct in_addr host;
    int host_port, guest_port;
    const char *spec;
};

/* "tcp:127.0.0.1:8080:80" */
static bool parse_fwd(const char *s, struct fwd *f)
{
    char proto[4], addr[16];
    unsigned hp, gp;
    int n = 0;
    if (sscanf(s, "%3[a-z]:%15[0-9.]:%u:%u%n", proto, addr, &hp, &gp, &n) != 4 || s[n] ||
        !hp || hp > 65535 || !gp || gp > 65535)
        return false;
    if (!strcmp(proto, "tcp"))
        f->udp = false;
    else if (!strcmp(proto, "udp"))
        f->udp = true;
    else
        return false;
    if (inet_pton(AF_INET, addr, &f->host) != 1)
        return false;
    f->host_port = (int)hp;
    f->guest_port = (int)gp;
    f->spec = s;
    return true;
}

static void hello_error(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hello_error(int fd, const char *fmt, ...)
{
    char buf[NETUSER_HELLO_MAX];
    int n = snprintf(buf, sizeof(buf), "%s", NETUSER_HELLO_ERR);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (fd < 0 || send(fd, buf, strlen(buf), MSG_NOSIGNAL) < 0)
        msg("%s", buf + n);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " --fd N --parent PID [--hostfwd tcp|udp:HOSTADDR:HOSTPORT:GUESTPORT]...\n"
            "User-mode networking for an arcvm virtual machine; arcvm starts it.\n");
}

static void run_timers(struct helper *h)
{
    int64_t now_ms = now_ns() / 1000000;
    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        struct timer *t = &h->timers[i];
        if (!t->used || !t->armed || t->expire_ms > now_ms)
            continue;
        t->armed = false;
        if (t->cb)
            t->cb(t->cb_opaque);
        else
            slirp_handle_timer(h->slirp, t->id, t->cb_opaque);
    }
}

/* Milliseconds until the next timer, at most POLL_MAX_MS. */
static uint32_t timer_timeout(const struct helper *h)
{
    int64_t now_ms = now_ns() / 1000000, best = POLL_MAX_MS;
    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        const struct timer *t = &h->timers[i];
        if (t->used && t->armed) {
            int64_t d = t->expire_ms - now_ms;
            if (d < best)
                best = d < 0 ? 0 : d;
        }
    }
    return (uint32_t)best;
}

/* Frames from the guest, at most RX_BUDGET per turn. False at EOF. */
static bool from_guest(struct helper *h, uint8_t *buf, size_t len)
{
    for (int i = 0; i < RX_BUDGET; i++) {
        ssize_t n = recv(h->fd, buf, len, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        if (n == 0)
            return false; /* arcvm closed the socket */
        if ((size_t)n > len)
            continue; /* arcvm never sends more; drop rather than truncate */
        slirp_input(h->slirp, buf, (int)n);
    }
    return true;
}

int main(int argc, char **argv)
{
    int fd = -1;
    long parent = 0;
    struct fwd fwd[MAX_FWD];
    unsigned nfwd = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--version")) {
            printf(PROG " %s (libslirp %s)\n", ARCVM_VERSION, slirp_version_string());
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        char *end;
        if (!strcmp(a, "--fd")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > INT_MAX) {
                usage();
                return 2;
            }
            fd = (int)n;
        } else if (!strcmp(a, "--parent")) {
            parent = strtol(v, &end, 10);
            if (*end || parent <= 0) {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--hostfwd")) {
            if (nfwd == MAX_FWD || !parse_fwd(v, &fwd[nfwd])) {
                hello_error(fd, "bad or too many port forwards at '%s'", v);
                return 2;
            }
            nfwd++;
        } else {
            usage();
            return 2;
        }
        i++;
    }
    if (fd < 0 || !parent) {
        usage();
        return 2;
    }
    /* Die with arcvm even if the socket were somehow kept open elsewhere;
     * if it is already gone, the signal will never come. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)parent)
        return 0;
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    /* Host sockets that reset mid-send must be an error, not a death. */
    signal(SIGPIPE, SIG_IGN);

    int type = 0;
    socklen_t tl = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
        msg("fd %d is not a SOCK_SEQPACKET socket; this program is started by arcvm", fd);
        return 2;
    }

    struct helper h = {.fd = fd};
    SlirpConfig cfg = {
        .version = 4,
        .restricted = 0,
        .in_enabled = true,
        .in6_enabled = false,
        .disable_host_loopback = false, /* 10.0.2.2 reaches the host's 127.0.0.1 */
        .enable_emu = false,            /* the legacy protocol helpers are unsafe */
    };
    inet_pton(AF_INET, NETUSER_NET, &cfg.vnetwork);
    inet_pton(AF_INET, NETUSER_MASK, &cfg.vnetmask);
    inet_pton(AF_INET, NETUSER_HOST, &cfg.vhost);
    inet_pton(AF_INET, NETUSER_GUEST, &cfg.vdhcp_start);
    inet_pton(AF_INET, NETUSER_DNS, &cfg.vnameserver);
    h.slirp = slirp_new(&cfg, &callbacks, &h);
    if (!h.slirp) {
        hello_error(fd, "libslirp failed to initialise");
        return 1;
    }
    struct in_addr guest;
    inet_pton(AF_INET, NETUSER_GUEST, &guest);
    for (unsigned i = 0; i < nfwd; i++) {
        errno = 0;
        if (slirp_add_hostfwd(h.slirp, fwd[i].udp, fwd[i].host, fwd[i].host_port, guest,
                              fwd[i].guest_port) < 0) {
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &fwd[i].host, a, sizeof(a));
            hello_error(fd,
                        "cannot forward host %s port %s:%d to the guest's port %d: %s; choose "
                        "another host port or address",
                        fwd[i].udp ? "udp" : "tcp", a, fwd[i].host_port, fwd[i].guest_port,
                        errno ? strerror(errno) : "address in use or not local");
            slirp_cleanup(h.slirp);
            return 1;
        }
    }
    if (send(fd, NETUSER_HELLO_OK, strlen(NETUSER_HELLO_OK), MSG_NOSIGNAL) < 0) {
        slirp_cleanup(h.slirp);
        return 0; /* arcvm is gone already */
    }

    static uint8_t frame[NETUSER_FRAME_MAX];
    while (!h.closed) {
        h.npfd = 0;
        cb_add_poll(fd, SLIRP_POLL_IN, &h); /* index 0: the guest's frames */
        uint32_t timeout = timer_timeout(&h);
        slirp_pollfds_fill(h.slirp, &timeout, cb_add_poll, &h);
        int r = poll(h.pfd, h.npfd, timeout > INT_MAX ? -1 : (int)timeout);
        if (r < 0 && errno != EINTR) {
            msg("poll: %s", strerror(errno));
            break;
        }
        slirp_pollfds_poll(h.slirp, r < 0, cb_get_revents, &h);
        short re = r > 0 ? h.pfd[0].revents : 0;
        if (re & POLLIN) {
            if (!from_guest(&h, frame, sizeof(frame)))
                break;
        } else if (re & (POLLHUP | POLLERR)) {
            break;
        }
        run_timers(&h);
    }
    slirp_cleanup(h.slirp);
    free(h.pfd);
    return 0;
}
