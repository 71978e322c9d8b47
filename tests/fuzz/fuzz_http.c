/* fuzz_http.c - libFuzzer target for the API's HTTP parsing: libevent's
 * evhttp with exactly the settings the API server runs with
 * (api_http_configure(): methods, header and body caps, lingering close),
 * fed raw bytes from a hostile client over an (abstract) Unix socket.
 *
 * Properties: no crash, leak or undefined behaviour; a request handed on
 * has a method the API allows, a path, and a body no larger than the cap;
 * whatever the server sends back starts with an HTTP status line. What comes
 * after the parser (api_handle()) is fuzz_api's.
 *
 * Run: FUZZ_TARGETS=fuzz_http tests/fuzz/run.sh
 */
#include "fuzz_check.h"

#include "api/api_http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_BODY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct evhttp *http;
static struct sockaddr_un addr = {.sun_family = AF_UNIX};
static socklen_t addr_len;
static unsigned handed;

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    enum evhttp_cmd_type t = evhttp_request_get_command(req);
    CHECK(t == EVHTTP_REQ_GET || t == EVHTTP_REQ_POST || t == EVHTTP_REQ_HEAD ||
          t == EVHTTP_REQ_PUT || t == EVHTTP_REQ_DELETE || t == EVHTTP_REQ_OPTIONS ||
          t == EVHTTP_REQ_TRACE || t == EVHTTP_REQ_CONNECT || t == EVHTTP_REQ_PATCH);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    CHECK(uri != NULL);
    const char *path = evhttp_uri_get_path(uri);
    if (path)
        CHECK(strlen(path) < 65536);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    CHECK(evbuffer_get_length(in) <= MAX_BODY);
    if (evbuffer_get_length(in))
        CHECK(evbuffer_pullup(in, -1) != NULL);
    handed++;
    evhttp_send_reply(req, 204, "No Content", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base) {
        base = event_base_new();
        http = base ? evhttp_new(base) : NULL;
        CHECK(http != NULL);
        api_http_configure(http, MAX_BODY, 1);
        evhttp_set_gencb(http, on_request, NULL);
        /* Abstract name: no file left behind. */
        int n = snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "arcvm-fuzz-http-%d",
                         (int)getpid());
        addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&addr, addr_len) == 0 &&
              listen(lfd, 16) == 0);
        CHECK(evhttp_accept_socket_with_handle(http, lfd) != NULL);
    }
    int sv[2];
    sv[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(sv[1] >= 0 && connect(sv[1], (struct sockaddr *)&addr, addr_len) == 0);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    /* The client sends everything (up to what the socket takes) and is done. */
    size_t off = 0;
    char reply[512];
    size_t got = 0;
    bool eof = false;
    for (int round = 0; round < 64 && !eof; round++) {
        if (off < size) {
            ssize_t w = write(sv[1], data + off, size - off);
            if (w > 0)
                off += (size_t)w;
        }
        if (off == size)
            shutdown(sv[1], SHUT_WR);
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (;;) {
            char buf[4096];
            ssize_t r = read(sv[1], buf, sizeof(buf));
            if (r == 0)
                eof = true;
            if (r <= 0)
                break;
            size_t keep = got < sizeof(reply) ? sizeof(reply) - got : 0;
            memcpy(reply + got, buf, (size_t)r < keep ? (size_t)r : keep);
            got += (size_t)r < keep ? (size_t)r : keep;
        }
    }
    /* evhttp answers in the request's version, whatever it was ("HTTP/0.1",
     * or the digits of an absurd one): only the start is fixed. */
    if (got >= 5)
        CHECK(!memcmp(reply, "HTTP/", 5));
    close(sv[1]);
    /* Let evhttp notice the closed peer and free the connection. */
    for (int round = 0; round < 4; round++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
