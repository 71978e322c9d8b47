/* vsock-tool.c - one end of a vsock stream, for arcvm's vsock tests: in the
 * guest over AF_VSOCK, on the host over the Unix sockets of arcvm's hybrid
 * vsock (Firecracker's protocol). Both ends print byte counts and checksums
 * so that a test compares them. Linked statically (the guest has no libc).
 *
 * Usage: vsock-tool [-n COUNT] [-t SECS] COMMAND ...
 *   listen PORT MODE [BYTES]             guest: accept on vsock port PORT
 *   listen-unix PATH MODE [BYTES]        host: accept on Unix socket PATH
 *                                        (arcvm's <uds>_PORT: guest-initiated)
 *   connect-host PORT MODE [BYTES]       guest: connect to the host (CID 2)
 *   connect-cid CID PORT MODE [BYTES]    guest: connect to any CID
 *   connect-guest UDS PORT MODE [BYTES]  host: connect through arcvm's socket
 *                                        UDS ("CONNECT PORT\n", "OK ...\n")
 *   connect-unix PATH MODE [BYTES]       host: plain Unix socket (tests the
 *                                        tool against listen-unix)
 * MODE:
 *   echo             send back what arrives, until EOF
 *   sink             read until EOF
 *   source BYTES     send BYTES of a fixed pseudo-random stream, shut down
 *                    sending, then read until EOF
 *   roundtrip BYTES  send BYTES and read at the same time (the peer echoes)
 *                    until EOF; fails unless what came back is what went out
 * Options:
 *   -n COUNT  listen: serve COUNT connections, one after another (default 1)
 *   -t SECS   connect: retry a refused connection for SECS seconds (default 0)
 * Output, one line per connection on stdout:
 *   MODE sent=N sent_fnv=HEX recv=N recv_fnv=HEX secs=S mibps=R
 * The checksum is FNV-1a (64-bit) over the stream taken as little-endian
 * 64-bit words, its last 0-7 bytes one by one: however the stream was cut
 * into reads and writes, equal streams give equal sums.
 * Exit status: 0 done, 1 failure, 2 usage.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK (64u << 10)  /* one read or write: Linux's largest vsock packet */
#define ECHO_BUF (256u << 10)

static const char *prog = "vsock-tool";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr,
            "usage: %s [-n COUNT] [-t SECS] COMMAND ...\n"
            "  listen PORT MODE [BYTES]            (guest, AF_VSOCK)\n"
            "  listen-unix PATH MODE [BYTES]       (host, Unix socket)\n"
            "  connect-host PORT MODE [BYTES]      (guest, to CID 2)\n"
            "  connect-cid CID PORT MODE [BYTES]   (guest)\n"
            "  connect-guest UDS PORT MODE [BYTES] (host, hybrid vsock)\n"
            "  connect-unix PATH MODE [BYTES]      (host, plain Unix socket)\n"
            "MODE: echo | sink | source BYTES | roundtrip BYTES\n",
            prog);
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- checksum and data pattern ----------------------------------------- */

#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

struct sum {
    uint64_t h, n;
    uint8_t carry[8];
    unsigned nc;
};

static void sum_add(struct sum *s, const uint8_t *p, size_t len)
{
    s->n += len;
    while (s->nc && len) {
        s->carry[s->nc++] = *p++;
        len--;
        if (s->nc == 8) {
            uint64_t w;
            memcpy(&w, s->carry, 8);
            s->h = (s->h ^ le64toh(w)) * FNV_PRIME;
            s->nc = 0;
        }
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        s->h = (s->h ^ le64toh(w)) * FNV_PRIME;
    }
    memcpy(s->carry + s->nc, p, len);
    s->nc += (unsigned)len;
}

static uint64_t sum_end(const struct sum *s)
{
    uint64_t h = s->h;
    for (unsigned i = 0; i < s->nc; i++)
        h = (h ^ s->carry[i]) * FNV_PRIME;
    return h;
}

/* The source stream: xorshift64 output, CHUNK bytes at a time. */
struct pattern {
    uint64_t x;
    uint8_t buf[CHUNK];
    size_t off;
};

static void pattern_next(struct pattern *p)
{
    for (size_t i = 0; i < CHUNK; i += 8) {
        p->x ^= p->x << 13;
        p->x ^= p->x >> 7;
        p->x ^= p->x << 17;
        uint64_t w = htole64(p->x);
        memcpy(p->buf + i, &w, 8);
    }
    p->off = 0;
}

/* ---- one connection ---------------------------------------------------- */

enum mode { ECHO, SINK, SOURCE, ROUNDTRIP };
static const char *const mode_names[] = {"echo", "sink", "source", "roundtrip"};

struct job {
    enum mode mode;
    uint64_t bytes; /* source, roundtrip */
};

/* Move data on @fd until the peer's EOF (and, writing, our own end). */
static int run(int fd, const struct job *j)
{
    static struct pattern pat;
    static uint8_t rbuf[CHUNK], ebuf[ECHO_BUF];
    struct sum sent = {FNV_BASIS, 0, {0}, 0}, recvd = {FNV_BASIS, 0, {0}, 0};
    pat.x = 0x9e3779b97f4a7c15ull; /* the same stream every time */
    pattern_next(&pat);
    uint64_t to_send = (j->mode == SOURCE || j->mode == ROUNDTRIP) ? j->bytes : 0;
    size_t ehead = 0, elen = 0;    /* echo: received, not yet sent back */
    bool eof = false, wr_done = false;
    double t0 = now();

    while (!eof || !wr_done) {
        /* Done writing: shut our side down, the peer reads EOF. */
        if (!wr_done && ((j->mode == ECHO && eof && !elen) || j->mode == SINK ||
                         ((j->mode == SOURCE || j->mode == ROUNDTRIP) && !to_send))) {
            if (j->mode != SINK)
                shutdown(fd, SHUT_WR);
            wr_done = true;
            continue;
        }
        struct pollfd p = {fd, 0, 0};
        if (!eof && !(j->mode == ECHO && elen == ECHO_BUF))
            p.events |= POLLIN;
        if (!wr_done && (to_send || elen))
            p.events |= POLLOUT;
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            uint8_t *dst = rbuf;
            size_t room = CHUNK;
            if (j->mode == ECHO) {
                /* The free run after the data: to the end, or to its head. */
                size_t tail = (ehead + elen) % ECHO_BUF;
                dst = ebuf + tail;
                room = tail >= ehead && elen < ECHO_BUF ? ECHO_BUF - tail : ehead - tail;
            }
            ssize_t n = room ? read(fd, dst, room) : 0;
            if (n > 0) {
                sum_add(&recvd, dst, (size_t)n);
                if (j->mode == ECHO)
                    elen += (size_t)n;
            } else if (n == 0 && room) {
                eof = true;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                if (errno == ECONNRESET && wr_done)
                    eof = true; /* a reset after a complete exchange: vsock closes so */
                else
                    die("read: %s", strerror(errno));
            }
        }
        if (p.revents & (POLLOUT | POLLERR)) {
            const uint8_t *src;
            size_t len;
            if (j->mode == ECHO) {
                src = ebuf + ehead;
                len = ehead + elen > ECHO_BUF ? ECHO_BUF - ehead : elen;
            } else {
                if (pat.off == CHUNK)
                    pattern_next(&pat);
                src = pat.buf + pat.off;
                len = CHUNK - pat.off;
                if (len > to_send)
                    len = (size_t)to_send;
            }
            ssize_t n = len ? send(fd, src, len, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
            if (n > 0) {
                sum_add(&sent, src, (size_t)n);
                if (j->mode == ECHO) {
                    ehead = (ehead + (size_t)n) % ECHO_BUF;
                    elen -= (size_t)n;
                } else {
                    pat.off += (size_t)n;
                    to_send -= (uint64_t)n;
                }
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                die("write: %s", strerror(errno));
            }
        }
    }
    double secs = now() - t0;
    uint64_t most = sent.n > recvd.n ? sent.n : recvd.n;
    printf("%s sent=%" PRIu64 " sent_fnv=%016" PRIx64 " recv=%" PRIu64 " recv_fnv=%016" PRIx64
           " secs=%.3f mibps=%.1f\n",
           mode_names[j->mode], sent.n, sum_end(&sent), recvd.n, sum_end(&recvd), secs,
           secs > 0 ? (double)most / secs / 1048576.0 : 0.0);
    fflush(stdout);
    if (j->mode == ROUNDTRIP && (recvd.n != sent.n || sum_end(&recvd) != sum_end(&sent))) {
        fprintf(stderr, "%s: roundtrip: what came back differs from what went out\n", prog);
        return 1;
    }
    return 0;
}

/* ---- connecting -------------------------------------------------------- */

static uint32_t parse_u32(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || v > UINT32_MAX)
        die("bad %s", what);
    return (uint32_t)v;
}

static uint64_t parse_bytes(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || errno)
        die("bad byte count '%s'", s);
    switch (*end) { /* binary suffixes, as in 100M */
    case 'K': v <<= 10; end++; break;
    case 'M': v <<= 20; end++; break;
    case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end)
        die("bad byte count '%s'", s);
    return v;
}

/* Connect @fd to @a: the fd, or -1 with errno set and @fd closed. */
static int connect_or_close(int fd, const struct sockaddr *a, socklen_t len)
{
    if (connect(fd, a, len) == 0)
        return fd;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static int vsock_connect(uint32_t cid, uint32_t port)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("AF_VSOCK socket: %s (is the vsock driver loaded?)", strerror(errno));
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    return connect_or_close(fd, (struct sockaddr *)&a, sizeof(a));
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path))
        die("socket path too long: %s", path);
    strcpy(a.sun_path, path);
    return connect_or_close(fd, (struct sockaddr *)&a, sizeof(a));
}

/* Firecracker's hybrid handshake: "CONNECT <port>\n", then "OK <n>\n".
 * The reply is read a byte at a time: data may follow it at once. */
static int hybrid_connect(const char *uds, uint32_t port)
{
    int fd = unix_connect(uds);
    if (fd < 0)
        return -1;
    char line[64];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (write(fd, line, (size_t)n) != n)
        goto fail;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, line + len, 1);
        if (r <= 0) {
            if (r == 0)
                errno = ECONNREFUSED; /* arcvm closes when the guest refuses */
            goto fail;
        }
        if (line[len] == '\n')
            break;
        if (++len == sizeof(line) - 1) {
            errno = EPROTO;
            goto fail;
        }
    }
    line[len] = 0;
    if (strncmp(line, "OK ", 3)) {
        errno = EPROTO;
        goto fail;
    }
    fprintf(stderr, "%s: connected through %s to guest port %u (host port %s)\n", prog, uds,
            port, line + 3);
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int main(int argc, char **argv)
{
    unsigned count = 1;
    double retry = 0;
    int o;
    while ((o = getopt(argc, argv, "+n:t:h")) != -1) {
        switch (o) {
        case 'n': count = parse_u32(optarg, "connection count"); break;
        case 't': retry = parse_u32(optarg, "retry time"); break;
        default: usage();
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 2)
        usage();
    const char *cmd = argv[0];
    int nargs = !strcmp(cmd, "connect-guest") || !strcmp(cmd, "connect-cid") ? 2 : 1;
    if (argc < 1 + nargs + 1)
        usage();
    char **m = argv + 1 + nargs;
    int mleft = argc - 1 - nargs;
    struct job j = {0};
    if (!strcmp(m[0], "echo"))
        j.mode = ECHO;
    else if (!strcmp(m[0], "sink"))
        j.mode = SINK;
    else if (!strcmp(m[0], "source") && mleft >= 2)
        j = (struct job){SOURCE, parse_bytes(m[1])};
    else if (!strcmp(m[0], "roundtrip") && mleft >= 2)
        j = (struct job){ROUNDTRIP, parse_bytes(m[1])};
    else
        usage();

    if (!strcmp(cmd, "listen") || !strcmp(cmd, "listen-unix")) {
        bool unix_ = !strcmp(cmd, "listen-unix");
        int ls = socket(unix_ ? AF_UNIX : AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ls < 0)
            die("socket: %s", strerror(errno));
        int r;
        if (unix_) {
            struct sockaddr_un a = {.sun_family = AF_UNIX};
            if (strlen(argv[1]) >= sizeof(a.sun_path))
                die("socket path too long: %s", argv[1]);
            strcpy(a.sun_path, argv[1]);
            unlink(argv[1]);
            r = bind(ls, (struct sockaddr *)&a, sizeof(a));
        } else {
            struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
                                    .svm_port = parse_u32(argv[1], "port")};
            r = bind(ls, (struct sockaddr *)&a, sizeof(a));
        }
        if (r < 0 || listen(ls, 16) < 0)
            die("listen: %s", strerror(errno));
        fprintf(stderr, "%s: listening on %s\n", prog, argv[1]);
        int rc = 0;
        for (unsigned i = 0; i < count; i++) {
            int fd = accept(ls, NULL, NULL);
            if (fd < 0)
                die("accept: %s", strerror(errno));
            rc |= run(fd, &j);
            close(fd);
        }
        if (unix_)
            unlink(argv[1]);
        return rc;
    }

    double end = now() + retry;
    int fd;
    for (;;) {
        if (!strcmp(cmd, "connect-guest"))
            fd = hybrid_connect(argv[1], parse_u32(argv[2], "port"));
        else if (!strcmp(cmd, "connect-unix"))
            fd = unix_connect(argv[1]);
        else if (!strcmp(cmd, "connect-host"))
            fd = vsock_connect(VMADDR_CID_HOST, parse_u32(argv[1], "port"));
        else if (!strcmp(cmd, "connect-cid"))
            fd = vsock_connect(parse_u32(argv[1], "CID"), parse_u32(argv[2], "port"));
        else
            usage();
        if (fd >= 0)
            break;
        bool again = errno == ECONNREFUSED || errno == ECONNRESET || errno == ENOENT ||
                     errno == ETIMEDOUT;
        if (!again || now() >= end)
            die("connect: %s", strerror(errno));
        usleep(200000); /* the peer may not be listening yet */
    }
    int rc = run(fd, &j);
    close(fd);
    return rc;
}
