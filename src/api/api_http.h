/* api_http.h - the API's HTTP server: libevent's evhttp on a Unix socket,
 * on its own thread (as Firecracker's API thread), handing every request to
 * api_handle() on the caller's event base and sending the reply when that
 * loop has run it. The server thread parses HTTP and nothing else, so its
 * seccomp filter (the sandbox hook) is small; requests are handled one at a
 * time, in order, on the thread that owns the VM. */
#ifndef ARCVM_API_HTTP_H
#define ARCVM_API_HTTP_H

#include "api/api.h"

#include <stddef.h>

struct event_base;
struct api_http;

/* Connection handling limits; zero fields take the defaults below. */
struct api_http_limits {
    unsigned max_conns; /* connections served at once; more wait to be accepted */
    int timeout_s;      /* a connection idle (or a request unfinished) this long is closed */
    size_t max_body;    /* larger request bodies are answered 413 */
    /* Called first on the server thread (its seccomp filter); nonzero:
     * api_http_create() fails with the sentence it left in @err. */
    int (*sandbox)(void *arg, char *err, size_t errlen);
    void *sandbox_arg;
};

/* Enough for every client a VM manager plausibly runs at once; past it new
 * connections wait in the listen backlog instead of costing fds and memory. */
#define API_HTTP_MAX_CONNS_DEFAULT 128
/* Local clients send a request in one go; this only reaps idle keep-alive
 * connections and stalled ones. */
#define API_HTTP_TIMEOUT_DEFAULT 10

/* Create a listening Unix stream socket at @path (non-blocking, close-on-
 * exec). Refuses a path that already exists, as Firecracker does. Returns
 * the fd, or -errno with a sentence in @err. The caller unlinks @path. */
int api_http_listen_unix(const char *path, char *err, size_t errlen);

/* Serve HTTP on the listening socket @listen_fd (adopted: closed by
 * api_http_destroy()) through @a: a server thread parses requests, @base
 * (run by the caller) handles them. -errno with @err. */
int api_http_create(struct event_base *base, struct api *a, int listen_fd,
                    const struct api_http_limits *lim, struct api_http **out, char *err,
                    size_t errlen);
struct evhttp;
/* The HTTP parser's settings the API runs with (methods, header and body
 * caps, timeout, lingering close); the fuzz target uses them too. */
void api_http_configure(struct evhttp *http, size_t max_body, int timeout_s);

/* Stop the server thread, close the listening socket and every
 * connection; a request waiting to be handled is handled first. From the
 * thread that runs @base, or once it no longer runs. NULL is allowed. */
void api_http_destroy(struct api_http *h);
/* Connections open now (for tests and diagnostics). */
unsigned api_http_connections(const struct api_http *h);

#endif
