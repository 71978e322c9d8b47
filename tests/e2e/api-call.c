/* api-call.c - one HTTP request to a REST API on a Unix socket, for the
 * end-to-end tests where there is no curl (the nested arm64 guest has only
 * busybox). Linked statically.
 *
 * Usage: api-call SOCKET METHOD PATH [BODY]
 *   Sends METHOD PATH (HTTP/1.1, Connection: close; BODY as JSON when
 *   given) and prints the status code on the first line, then the response
 *   body (if any) and a newline.
 * Exit status: 0 a response arrived (whatever its status), 1 no valid
 * response (connection refused, timeout after 30 s, malformed reply),
 * 2 usage.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX (1u << 20) /* a reply larger than this is refused */
#define TIMEOUT_MS 30000

static int fail(const char *what)
{
    fprintf(stderr, "api-call: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    return 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for @events on @fd until @deadline; 0 ready, -1 timeout or error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len) {
        if (wait_fd(fd, POLLOUT, deadline) < 0)
            return -1;
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The value of header @name in the header block [@h, @end), or NULL. */
static const char *header(const char *h, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = h; l < end;) {
        const char *eol = memchr(l, '\n', (size_t)(end - l));
        if (!eol)
            eol = end;
        if ((size_t)(eol - l) > n && !strncasecmp(l, name, n) && l[n] == ':') {
            const char *v = l + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            return v;
        }
        l = eol + 1;
    }
    return NULL;
}

/* Decode a chunked body in place; its new length, or -1 when malformed. */
static long dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *e;
        errno = 0;
        unsigned long sz = strtoul(b + in, &e, 16);
        char *crlf = memchr(b + in, '\n', len - in);
        if (e == b + in || errno || !crlf)
            return -1;
        in = (size_t)(crlf - b) + 1;
        if (sz == 0)
            return (long)out;
        if (sz > len - in)
            return -1;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz;
        if (in < len && b[in] == '\r')
            in++;
        if (in >= len || b[in] != '\n')
            return -1;
        in++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: api-call SOCKET METHOD PATH [BODY]\n");
        return 2;
    }
    const char *sock = argv[1], *method = argv[2], *path = argv[3], *body = argc == 5 ? argv[4] : NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(sa.sun_path) || !*method || strpbrk(method, " \r\n") ||
        path[0] != '/' || strpbrk(path, " \r\n")) {
        fprintf(stderr, "api-call: bad socket path, method or path (PATH starts with /)\n");
        return 2;
    }
    memcpy(sa.sun_path, sock, strlen(sock));
    long long deadline = now_ms() + TIMEOUT_MS;

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return fail("socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
        return fail(sock);

    char head[1024];
    int hn;
    if (body)
        hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
                      "Connection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, strlen(body));
    else
        hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
                      "Connection: close\r\n\r\n",
                      method, path);
    if (hn < 0 || (size_t)hn >= sizeof(head)) {
        fprintf(stderr, "api-call: the path is too long\n");
        return 2;
    }
    if (send_all(fd, head, (size_t)hn, deadline) < 0 ||
        (body && send_all(fd, body, strlen(body), deadline) < 0))
        return fail("sending the request");

    /* Read until the server closes (Connection: close) or the body given by
     * Content-Length is complete. */
    char *buf = malloc(RESP_MAX + 1);
    if (!buf)
        return fail("out of memory");
    size_t len = 0;
    long want = -1; /* total bytes once the headers are known */
    for (;;) {
        if (want >= 0 && len >= (size_t)want)
            break;
        if (len == RESP_MAX) {
            errno = 0;
            return fail("the response is larger than 1 MiB");
        }
        if (wait_fd(fd, POLLIN, deadline) < 0)
            return fail("waiting for the response");
        ssize_t n = recv(fd, buf + len, RESP_MAX - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return fail("reading the response");
        if (n == 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        char *eoh = strstr(buf, "\r\n\r\n");
        if (want < 0 && eoh) {
            const char *cl = header(buf, eoh, "Content-Length");
            if (cl)
                want = (eoh + 4 - buf) + strtol(cl, NULL, 10);
        }
    }
    close(fd);
    buf[len] = 0;

    errno = 0;
    int status;
    char *eoh = strstr(buf, "\r\n\r\n");
    if (!eoh || sscanf(buf, "HTTP/1.%*[01] %3d", &status) != 1 || status < 100 || status > 599)
        return fail("no valid HTTP response");
    char *b = eoh + 4;
    size_t blen = len - (size_t)(b - buf);
    if (want >= 0 && blen > (size_t)(want - (b - buf)))
        blen = (size_t)(want - (b - buf));
    const char *te = header(buf, eoh, "Transfer-Encoding");
    if (te && !strncasecmp(te, "chunked", 7)) {
        long d = dechunk(b, blen);
        if (d < 0)
            return fail("a malformed chunked body");
        blen = (size_t)d;
    }
    printf("%d\n", status);
    if (blen) {
        fwrite(b, 1, blen, stdout);
        putchar('\n');
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
