/* api_http.c - evhttp glue for the API; see api_http.h.
 *
 * Connection cap: evhttp (libevent 2.1) has none, so we count connections
 * ourselves. Each accepted connection asks us for its bufferevent (bevcb):
 * +1, and the listener is disabled at the cap, leaving further clients in
 * the kernel's backlog. Once evhttp has wrapped the bufferevent in its
 * connection (right after bevcb returns; we look in a deferred callback, on
 * the same loop iteration, before any I/O on it), we set the connection's
 * close callback: -1, and the listener is enabled again below the cap.
 *
 * Threads: everything evhttp does runs on the server thread and its own
 * event base. A parsed request is handed over in @call: the server thread
 * posts it and signals @call_fd, the caller's base runs api_handle() on it
 * (on_call) and signals @cond; the server thread then sends the reply.
 */
#include "api/api_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Header block cap: API clients send a handful of short headers. */
#define API_HTTP_MAX_HEADERS 8192
/* listen(2) backlog: room for bursts of clients while at the connection cap
 * (Linux clamps it to net.core.somaxconn). */
#define API_HTTP_BACKLOG 128

/* One request on its way from the server thread to the handling one. */
struct api_call {
    const char *method, *path, *body;
    size_t len;
    struct api_reply r;
    bool done;
};

struct api_http {
    struct event_base *base;   /* the server thread's */
    struct event_base *caller; /* where requests are handled */
    struct api *api;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* @call, @stopping and the start handshake */
    pthread_cond_t cond;
    struct api_call *call; /* posted, not yet taken */
    int call_fd;           /* eventfd: a call is posted (caller's base) */
    struct event *call_ev;
    int stop_fd;           /* eventfd: the server thread ends (its base) */
    struct event *stop_ev;
    bool exited; /* the server thread is done */
    int start_status;      /* 1 until the thread has run the sandbox hook */
    char start_err[512];
    int (*sandbox)(void *arg, char *err, size_t errlen);
    void *sandbox_arg;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *pending_ev;     /* deferred: find the connections of new bufferevents */
    struct bufferevent **pending; /* new bufferevents (referenced), max_conns slots */
    unsigned npending;
    _Atomic unsigned nconn;
    unsigned max_conns;
    bool gated;   /* listener disabled at the cap */
    bool closing; /* in api_http_destroy(): the listener is gone */
};

int api_http_listen_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "API socket path '%s': give a path of 1 to %zu bytes",
                 path ? path : "", sizeof(sa.sun_path) - 1);
        return -EINVAL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create the API socket: %s", strerror(e));
        return -e;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(err, errlen,
                     "the API socket %s already exists: another instance uses it, or it is left "
                     "over (remove it)",
                     path);
        else
            snprintf(err, errlen, "cannot bind the API socket %s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    if (listen(fd, API_HTTP_BACKLOG) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on the API socket %s: %s", path, strerror(e));
        close(fd);
        unlink(path);
        return -e;
    }
    return fd;
}

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "UNKNOWN";
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    default:
        return "Internal Server Error";
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct api_http *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    struct api_call c = {.method = method_name(evhttp_request_get_command(req)),
                         .path = path && *path ? path : "/",
                         .body = body,
                         .len = body ? len : 0};
    uint64_t one = 1;
    pthread_mutex_lock(&h->lock);
    h->call = &c;
    pthread_cond_broadcast(&h->cond); /* api_http_destroy() may be waiting */
    (void)!write(h->call_fd, &one, sizeof(one));
    while (!c.done)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    struct api_reply r = c.r;
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    struct evbuffer *out = NULL;
    if (r.body) {
        out = evhttp_request_get_output_buffer(req);
        evhttp_add_header(hdr, "Content-Type", "application/json");
        evbuffer_add(out, r.body, r.len);
    }
    if (r.allow)
        evhttp_add_header(hdr, "Allow", r.allow);
    evhttp_send_reply(req, r.status, reason(r.status), out);
    api_reply_release(&r);
}

/* Run the posted request, if any, here; wake the server thread. */
static void answer(struct api_http *h)
{
    pthread_mutex_lock(&h->lock);
    struct api_call *c = h->call;
    h->call = NULL;
    pthread_mutex_unlock(&h->lock);
    if (!c)
        return;
    struct api_reply r;
    api_handle(h->api, c->method, c->path, c->body, c->len, &r);
    pthread_mutex_lock(&h->lock);
    c->r = r;
    c->done = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static void on_call(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));
    answer(arg);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct api_http *h = arg;
    event_base_loopbreak(h->base);
}

static void *server_thread(void *arg)
{
    struct api_http *h = arg;
    pthread_setname_np(pthread_self(), "fc_api");
    char err[sizeof(h->start_err)] = "";
    int r = h->sandbox ? h->sandbox(h->sandbox_arg, err, sizeof(err)) : 0;
    pthread_mutex_lock(&h->lock);
    h->start_status = r ? -1 : 0;
    snprintf(h->start_err, sizeof(h->start_err), "%s", err);
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    if (r == 0)
        event_base_dispatch(h->base);
    /* evhttp and the base belong to this thread: freed here. */
    h->closing = true;
    if (h->http)
        evhttp_free(h->http); /* closes the listener and every connection */
    h->http = NULL;
    for (unsigned i = 0; i < h->npending; i++)
        bufferevent_decref(h->pending[i]);
    h->npending = 0;
    pthread_mutex_lock(&h->lock);
    h->exited = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

void api_http_configure(struct evhttp *http, size_t max_body, int timeout_s)
{
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                         EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(http, API_HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(http, (ev_ssize_t)max_body);
    evhttp_set_timeout(http, timeout_s);
    /* Read and drop the rest of an oversized body, so the client gets its
     * 413 instead of a reset connection. */
    evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE);
}

static void gate(struct api_http *h)
{
    if (h->closing)
        return;
    if (!h->gated && h->nconn >= h->max_conns) {
        evconnlistener_disable(h->listener);
        h->gated = true;
    } else if (h->gated && h->nconn < h->max_conns) {
        evconnlistener_enable(h->listener);
        h->gated = false;
    }
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct api_http *h = arg;
    h->nconn--;
    gate(h);
}

static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct api_http *h = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev || h->npending == h->max_conns)
        return bev; /* out of memory, or (never at the cap) uncounted */
    /* Our reference keeps the bufferevent's memory valid until the deferred
     * look, even if evhttp frees it first (it then clears its callbacks). */
    bufferevent_incref(bev);
    h->pending[h->npending++] = bev;
    h->nconn++;
    event_active(h->pending_ev, EV_TIMEOUT, 0);
    gate(h);
    return bev;
}

static void on_pending(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct api_http *h = arg;
    for (unsigned i = 0; i < h->npending; i++) {
        struct bufferevent *bev = h->pending[i];
        void *cbarg = NULL;
        bufferevent_getcb(bev, NULL, NULL, NULL, &cbarg);
        /* evhttp passes its connection as the bufferevent's callback
         * argument; NULL means the connection is already gone. */
        struct evhttp_connection *evcon = cbarg;
        if (evcon && evhttp_connection_get_bufferevent(evcon) == bev)
            evhttp_connection_set_closecb(evcon, on_close, h);
        else
            h->nconn--;
        bufferevent_decref(bev);
    }
    h->npending = 0;
    gate(h);
}

int api_http_create(struct event_base *base, struct api *a, int listen_fd,
                    const struct api_http_limits *lim, struct api_http **out, char *err,
                    size_t errlen)
{
    struct api_http *h = calloc(1, sizeof(*h));
    if (!h) {
        close(listen_fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    h->caller = base;
    h->api = a;
    h->call_fd = h->stop_fd = -1;
    h->start_status = 1;
    h->sandbox = lim ? lim->sandbox : NULL;
    h->sandbox_arg = lim ? lim->sandbox_arg : NULL;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->max_conns = lim && lim->max_conns ? lim->max_conns : API_HTTP_MAX_CONNS_DEFAULT;
    int timeout = lim && lim->timeout_s ? lim->timeout_s : API_HTTP_TIMEOUT_DEFAULT;
    size_t max_body = lim && lim->max_body ? lim->max_body : API_MAX_BODY_DEFAULT;
    h->pending = calloc(h->max_conns, sizeof(*h->pending));
    h->base = event_base_new();
    h->http = h->base ? evhttp_new(h->base) : NULL;
    h->pending_ev = h->base ? event_new(h->base, -1, 0, on_pending, h) : NULL;
    h->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    h->call_ev = h->call_fd >= 0 ? event_new(base, h->call_fd, EV_READ | EV_PERSIST, on_call, h)
                                 : NULL;
    h->stop_ev = h->stop_fd >= 0 && h->base
                     ? event_new(h->base, h->stop_fd, EV_READ, on_stop, h)
                     : NULL;
    if (!h->pending || !h->http || !h->pending_ev || !h->call_ev || !h->stop_ev ||
        event_add(h->call_ev, NULL) < 0 || event_add(h->stop_ev, NULL) < 0) {
        close(listen_fd);
        goto oom;
    }
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(h->http, listen_fd);
    if (!bound) {
        close(listen_fd);
        goto oom;
    }
    h->listener = evhttp_bound_socket_get_listener(bound);
    api_http_configure(h->http, max_body, timeout);
    evhttp_set_bevcb(h->http, on_new_connection, h);
    evhttp_set_gencb(h->http, on_request, h);
    int r = pthread_create(&h->thread, NULL, server_thread, h);
    if (r) {
        api_http_destroy(h);
        snprintf(err, errlen, "cannot start the API thread: %s", strerror(r));
        return -r;
    }
    h->thread_started = true;
    pthread_mutex_lock(&h->lock);
    while (h->start_status > 0)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    if (h->start_status < 0) {
        snprintf(err, errlen, "API thread: %s", h->start_err);
        api_http_destroy(h);
        return -EPERM;
    }
    *out = h;
    return 0;
oom:
    api_http_destroy(h);
    snprintf(err, errlen, "cannot set up the HTTP server: out of memory");
    return -ENOMEM;
}

void api_http_destroy(struct api_http *h)
{
    if (!h)
        return;
    if (h->thread_started) {
        uint64_t one = 1;
        (void)!write(h->stop_fd, &one, sizeof(one));
        /* The server thread may be waiting for a request to be handled:
         * handle it here, then it sees the stop. */
        pthread_mutex_lock(&h->lock);
        while (!h->exited) {
            if (h->call) {
                pthread_mutex_unlock(&h->lock);
                answer(h);
                pthread_mutex_lock(&h->lock);
                continue;
            }
            pthread_cond_wait(&h->cond, &h->lock);
        }
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
    } else {
        h->closing = true;
        if (h->http)
            evhttp_free(h->http);
        for (unsigned i = 0; i < h->npending; i++)
            bufferevent_decref(h->pending[i]);
    }
    if (h->pending_ev)
        event_free(h->pending_ev);
    if (h->stop_ev)
        event_free(h->stop_ev);
    if (h->call_ev)
        event_free(h->call_ev);
    if (h->base)
        event_base_free(h->base);
    if (h->call_fd >= 0)
        close(h->call_fd);
    if (h->stop_fd >= 0)
        close(h->stop_fd);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h->pending);
    free(h);
}

unsigned api_http_connections(const struct api_http *h)
{
    return h->nconn;
}
