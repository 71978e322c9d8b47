/* test_api_http.c - the API's HTTP server on a Unix socket: raw HTTP from
 * clients in this thread, the server's event loop in another; no KVM. */
#include "unit.h"

#include "api/api.h"
#include "api/api_client.h"
#include "api/api_http.h"

#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

/* Clients in the concurrency test, and the server's cap in this test: well
 * below, so the listener is disabled and enabled again many times. */
#define NCLIENTS       100
#define TEST_MAX_CONNS 16

struct srv {
    char dir[64], sock[128];
    struct api *api;
    struct event_base *base;
    struct api_http *http;
    int stop_fd;
    struct event *stop_ev;
    pthread_t thread;
};

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

static void *serve(void *arg)
{
    struct srv *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static int setup(void **state)
{
    struct srv *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    snprintf(s->dir, sizeof(s->dir), "/tmp/arcvm-test-http-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->sock, sizeof(s->sock), "%s/api.sock", s->dir);
    char err[256];
    struct api_options o = {.instance_id = "http-test", .console_in = -1, .console_out = -1};
    assert_int_equal(api_create(&o, &s->api, err, sizeof(err)), 0);
    s->base = event_base_new();
    assert_non_null(s->base);
    int fd = api_http_listen_unix(s->sock, err, sizeof(err));
    assert_true(fd >= 0);
    struct api_http_limits lim = {.max_conns = TEST_MAX_CONNS, .timeout_s = 1, .max_body = 4096};
    assert_int_equal(api_http_create(s->base, s->api, fd, &lim, &s->http, err, sizeof(err)), 0);
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->stop_ev = event_new(s->base, s->stop_fd, EV_READ, on_stop, s->base);
    assert_int_equal(event_add(s->stop_ev, NULL), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
    *state = s;
    return 0;
}

/* Stop the server thread; afterwards its state may be read here. */
static void stop(struct srv *s)
{
    if (!s->stop_ev)
        return;
    uint64_t one = 1;
    assert_int_equal(write(s->stop_fd, &one, sizeof(one)), sizeof(one));
    pthread_join(s->thread, NULL);
    event_free(s->stop_ev);
    s->stop_ev = NULL;
}

static int teardown(void **state)
{
    struct srv *s = *state;
    stop(s);
    api_http_destroy(s->http);
    event_base_free(s->base);
    api_destroy(s->api);
    close(s->stop_fd);
    unlink(s->sock);
    rmdir(s->dir);
    free(s);
    return 0;
}

static int dial(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        assert_true(w > 0);
        buf += w, len -= (size_t)w;
    }
}

/* Read until EOF or until @want bytes after a header end have been seen
 * (want < 0: until EOF), with a 5 s limit per read. */
static size_t recv_some(int fd, char *buf, size_t cap, const char *until)
{
    size_t n = 0;
    while (n < cap - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 5000);
        assert_true(r == 1); /* else the server hung */
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        buf[n] = 0;
        if (until && strstr(buf, until))
            break;
    }
    buf[n] = 0;
    return n;
}

/* One request on a fresh connection closed by the server after the reply. */
static int http(struct srv *s, const char *raw, char *resp, size_t cap)
{
    int fd = dial(s->sock);
    send_all(fd, raw, strlen(raw));
    recv_some(fd, resp, cap, NULL);
    close(fd);
    int status = 0;
    sscanf(resp, "HTTP/1.%*d %d", &status);
    return status;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

static void test_requests(void **state)
{
    struct srv *s = *state;
    char resp[8192];
    assert_int_equal(http(s,
                          "GET /machine-config HTTP/1.1\r\nHost: localhost\r\n"
                          "Connection: close\r\n\r\n",
                          resp, sizeof(resp)),
                     200);
    assert_non_null(strstr(resp, "Content-Type: application/json"));
    assert_non_null(strstr(body_of(resp), "\"vcpu_count\":1"));

    const char put[] = "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                       "Content-Type: application/json\r\nContent-Length: 38\r\n\r\n"
                       "{\"vcpu_count\": 2, \"mem_size_mib\": 256}";
    assert_int_equal(http(s, put, resp, sizeof(resp)), 204);
    assert_string_equal(body_of(resp), "");
    assert_int_equal(http(s, "GET /machine-config?x=1 HTTP/1.0\r\n\r\n", resp, sizeof(resp)), 200);
    assert_non_null(strstr(body_of(resp), "\"vcpu_count\":2"));

    assert_int_equal(
        http(s, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp, sizeof(resp)),
        404);
    assert_non_null(strstr(body_of(resp), "\"fault_message\""));
    assert_int_equal(http(s,
                          "DELETE /machine-config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                          resp, sizeof(resp)),
                     405);
    assert_non_null(strstr(resp, "Allow: GET, PUT, PATCH"));
    assert_int_equal(http(s,
                          "PATCH /vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          "Content-Length: 20\r\n\r\n{\"state\": \"Paused\"}\n",
                          resp, sizeof(resp)),
                     400);
    assert_non_null(strstr(body_of(resp), "before starting the microVM"));
    /* Malformed HTTP: evhttp's own 400. */
    assert_int_equal(http(s, "BLAH\r\n\r\n", resp, sizeof(resp)), 400);
    /* A body over the server's cap: 413, and the server lives on. */
    char big[8192];
    int n = snprintf(big, sizeof(big),
                     "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    memset(big + n, ' ', 5000);
    big[n + 5000] = 0;
    assert_int_equal(http(s, big, resp, sizeof(resp)), 413);
    assert_int_equal(
        http(s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp, sizeof(resp)), 200);
    assert_non_null(strstr(body_of(resp), "\"id\":\"http-test\""));
}

static void test_keep_alive(void **state)
{
    struct srv *s = *state;
    int fd = dial(s->sock);
    char resp[4096];
    for (int i = 0; i < 3; i++) {
        const char req[] = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
        send_all(fd, req, strlen(req));
        recv_some(fd, resp, sizeof(resp), "}");
        assert_non_null(strstr(resp, "HTTP/1.1 200"));
        assert_non_null(strstr(resp, "firecracker_version"));
    }
    close(fd);
}

static void test_concurrent(void **state)
{
    struct srv *s = *state;
    int fds[NCLIENTS];
    const char req[] = "GET /machine-config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    /* All connect and send first (the backlog holds those past the cap),
     * then all read. */
    for (int i = 0; i < NCLIENTS; i++) {
        fds[i] = dial(s->sock);
        send_all(fds[i], req, strlen(req));
    }
    for (int i = 0; i < NCLIENTS; i++) {
        char resp[4096];
        recv_some(fds[i], resp, sizeof(resp), NULL);
        if (!strstr(resp, "HTTP/1.1 200") || !strstr(resp, "\"mem_size_mib\":128"))
            fail_msg("client %d: '%s'", i, resp);
        close(fds[i]);
    }
    /* Clients that connect and go away at once, or send half a request. */
    for (int i = 0; i < 20; i++) {
        int fd = dial(s->sock);
        if (i % 2)
            send_all(fd, "GET /mach", 9);
        close(fd);
    }
    /* A client that says nothing is dropped after the idle timeout (1 s). */
    int idle = dial(s->sock);
    char buf[64];
    assert_int_equal(recv_some(idle, buf, sizeof(buf), NULL), 0);
    close(idle);
    char resp[4096];
    assert_int_equal(
        http(s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp, sizeof(resp)), 200);
    /* Every connection was counted out again. */
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    stop(s);
    assert_int_equal(api_http_connections(s->http), 0);
}

static void test_listen(void **state)
{
    struct srv *s = *state;
    char err[256];
    /* The path exists (our own socket): refused, as Firecracker does. */
    assert_int_equal(api_http_listen_unix(s->sock, err, sizeof(err)), -EADDRINUSE);
    assert_non_null(strstr(err, "already exists"));
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath));
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = 0;
    assert_int_equal(api_http_listen_unix(longpath, err, sizeof(err)), -EINVAL);
    assert_int_equal(api_http_listen_unix("/nonexistent/dir/sock", err, sizeof(err)), -ENOENT);
}

/* The command line's client (`arcvm vcpus`) against the real server. */
static void test_client(void **state)
{
    struct srv *s = *state;
    char err[256], *body = NULL;
    assert_int_equal(api_client_get(s->sock, "/version", &body, err, sizeof(err)), 200);
    assert_non_null(strstr(body, "\"firecracker_version\""));
    free(body);
    body = NULL;
    assert_int_equal(api_client_get(s->sock, "/no/such/thing", &body, err, sizeof(err)), 404);
    assert_non_null(strstr(body, "fault_message"));
    free(body);
    /* No VM started: GET /vcpus is a 400, which the client reports. */
    FILE *out = tmpfile();
    assert_non_null(out);
    assert_int_equal(api_client_print_vcpus(s->sock, out, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "answered 400"));
    assert_int_equal(ftell(out), 0);
    fclose(out);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none.sock", s->dir);
    assert_true(api_client_get(missing, "/", &body, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "cannot connect"));
}

int main(void)
{
    RUN(cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen, setup, teardown));
}
