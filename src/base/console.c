/* console.c - host side of the guest console; see console.h. */
#include "base/console.h"

#include "base/evloop.h"

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CTRL_A 0x01

int console_init(struct console *c, int in_fd, int out_fd, bool escape, struct evloop *loop)
{
    memset(c, 0, sizeof(*c));
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    c->escape = escape;
    c->loop = loop;
    c->wake_fd = -1;
    c->wfd = out_fd;
    struct stat st;
    if (out_fd >= 0 && fstat(out_fd, &st) == 0) {
        if (S_ISSOCK(st.st_mode)) {
            c->wfd_socket = true;
        } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            /* A pipe, FIFO or terminal: reopen it as a description of our
             * own to make it non-blocking without touching the caller's
             * (regular files never block, and reopening one would reset
             * its offset). */
            char path[64];
            snprintf(path, sizeof(path), "/proc/self/fd/%d", out_fd);
            int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
            if (fd >= 0) {
                c->wfd = fd;
                c->wfd_owned = true;
            }
        }
    }
    if (in_fd >= 0) {
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0)
            return -errno;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->out_lock, NULL);
    return 0;
}

void console_limit_output(struct console *c, const struct rate_limiter_config *rl,
                          bool drop_when_full)
{
    struct rate_limiter_config bw = {.bandwidth = rl ? rl->bandwidth : (struct rl_bucket_config){0}};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rate_limiter_init(&c->out_rl, &bw, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    c->out_limited = rate_limiter_config_set(&bw);
    c->drop_when_full = drop_when_full;
}

void console_dropped(struct console *c, uint64_t *by_rate, uint64_t *by_room)
{
    *by_rate = atomic_load(&c->dropped_rate);
    *by_room = atomic_load(&c->dropped_room);
}

/* Whether @len bytes fit the output rate now (they are taken if so). */
static bool output_rate_ok(struct console *c, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t wait;
    pthread_mutex_lock(&c->out_lock);
    bool ok = rate_limiter_take(&c->out_rl, len,
                                (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, &wait);
    pthread_mutex_unlock(&c->out_lock);
    return ok;
}

/* Offer pending bytes to the device. Called with c->lock held. */
static void deliver(struct console *c)
{
    while (c->pending_off < c->pending_len) {
        size_t n = c->rx(c->dev, c->pending + c->pending_off, c->pending_len - c->pending_off);
        if (n == 0)
            break;
        c->pending_off += n;
    }
    if (c->pending_off == c->pending_len)
        c->pending_off = c->pending_len = 0;
}

/* Strip the escape sequence out of freshly read bytes, in place. */
static size_t filter_escape(struct console *c, uint8_t *buf, size_t n, bool *quit)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = buf[i];
        if (c->saw_escape) {
            c->saw_escape = false;
            if (b == 'x' || b == 'X') {
                *quit = true;
                continue;
            }
            if (b != CTRL_A)
                buf[o++] = CTRL_A; /* not an escape after all: pass both */
            buf[o++] = b;
        } else if (b == CTRL_A) {
            c->saw_escape = true;
        } else {
            buf[o++] = b;
        }
    }
    return o;
}

static void on_input(void *opaque, uint32_t events)
{
    struct console *c = opaque;
    bool quit = false;
    pthread_mutex_lock(&c->lock);
    if (c->pending_len == 0) {
        ssize_t n = read(c->in_fd, c->pending, sizeof(c->pending));
        if (n > 0) {
            c->pending_len = c->escape ? filter_escape(c, c->pending, (size_t)n, &quit)
                                       : (size_t)n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            /* End of input (or a dead fd): stop watching it, keep running. */
            evloop_del(c->loop, c->in_fd);
            c->in_eof = true;
            c->polling = false;
        }
    }
    deliver(c);
    if (c->pending_len && c->polling) {
        /* The device is full: stop polling until console_rx_ready(). */
        evloop_mod(c->loop, c->in_fd, 0);
        c->polling = false;
    }
    pthread_mutex_unlock(&c->lock);
    (void)events;
    if (quit && c->on_quit)
        c->on_quit(c->quit_opaque);
}

/* Event loop: the device made room. */
static void on_wake(void *opaque, uint32_t events)
{
    struct console *c = opaque;
    uint64_t v;
    (void)events;
    (void)!read(c->wake_fd, &v, sizeof(v));
    pthread_mutex_lock(&c->lock);
    deliver(c);
    if (!c->pending_len && c->registered && !c->in_eof && !c->polling) {
        evloop_mod(c->loop, c->in_fd, EPOLLIN);
        c->polling = true;
    }
    pthread_mutex_unlock(&c->lock);
}

int console_attach(struct console *c, size_t (*rx)(void *, const uint8_t *, size_t), void *dev)
{
    c->rx = rx;
    c->dev = dev;
    if (c->in_fd < 0)
        return 0;
    int r = evloop_add(c->loop, c->in_fd, EPOLLIN, on_input, c);
    if (r == -EPERM)
        return 0; /* a regular file or /dev/null: epoll can't watch it; no input */
    if (r < 0)
        return r;
    r = evloop_add(c->loop, c->wake_fd, EPOLLIN, on_wake, c);
    if (r < 0) {
        evloop_del(c->loop, c->in_fd);
        return r;
    }
    c->registered = true;
    c->polling = true;
    return 0;
}

void console_release(struct console *c)
{
    if (c->registered) {
        if (!c->in_eof)
            evloop_del(c->loop, c->in_fd);
        evloop_del(c->loop, c->wake_fd);
    }
    c->registered = false;
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    c->wake_fd = -1;
    if (c->wfd_owned)
        close(c->wfd);
    c->wfd = -1;
    c->wfd_owned = false;
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->out_lock);
}

void console_write(struct console *c, const uint8_t *buf, size_t len)
{
    if (c->wfd < 0)
        return;
    if (c->out_limited && !output_rate_ok(c, len)) {
        atomic_fetch_add(&c->dropped_rate, len);
        return;
    }
    while (len) {
        ssize_t n = c->wfd_socket ? send(c->wfd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
                                  : write(c->wfd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN && c->drop_when_full) {
            atomic_fetch_add(&c->dropped_room, len);
            return;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            /* The reader is slow: hold the guest back (its UART or queue
             * stays busy), but look again every 100 ms whether the VM is
             * stopping, so that a reader that never comes back cannot keep
             * a vCPU thread here. */
            if (atomic_load(&c->closing))
                return;
            struct pollfd p = {c->wfd, POLLOUT, 0};
            (void)poll(&p, 1, 100);
            continue;
        }
        return; /* a host error (EPIPE, EIO, ...): the output is gone */
    }
}

void console_close(struct console *c)
{
    atomic_store(&c->closing, true);
}

void console_rx_ready(struct console *c)
{
    uint64_t one = 1;
    if (c->wake_fd >= 0)
        (void)!write(c->wake_fd, &one, sizeof(one));
}
