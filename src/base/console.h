/* console.h - connects a guest console device to host file descriptors.
 *
 * Output: the device calls console_write() from its vCPU thread.
 * Input: the event loop reads the input fd and offers the bytes to the
 * device's rx callback, which takes as many as it has room for. When the
 * device is full the console stops polling the fd (no busy loop, no host
 * buffer growth) until the device calls console_rx_ready(). The rx callback
 * only ever runs on the event-loop thread; console_rx_ready() only signals an
 * eventfd, so a device may call it from any thread, holding any lock.
 * Optional escape: Ctrl-A x asks the VMM to stop the VM; Ctrl-A Ctrl-A sends
 * one Ctrl-A. Off for pipes, on for terminals (the CLI decides).
 */
#ifndef ARCVM_BASE_CONSOLE_H
#define ARCVM_BASE_CONSOLE_H

#include "base/ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;

struct console {
    int in_fd, out_fd;         /* -1: none */
    /* Output goes through a non-blocking descriptor of our own where the
     * kind of file allows it, so a reader that stops reading can never pin
     * a vCPU thread in write(): see console_write(). */
    int wfd;                   /* what console_write() writes to */
    bool wfd_owned;            /* wfd was opened by us */
    bool wfd_socket;           /* use send(MSG_DONTWAIT) */
    _Atomic bool closing;      /* the VM is stopping: drop what cannot go out */
    bool escape;
    struct evloop *loop;
    /* Device input: returns how many of @len bytes the device accepted. */
    size_t (*rx)(void *dev, const uint8_t *buf, size_t len);
    void *dev;
    void (*on_quit)(void *opaque); /* escape Ctrl-A x */
    void *quit_opaque;

    pthread_mutex_t lock;      /* pending/escape state: loop vs vCPU thread */
    uint8_t pending[256];      /* read from in_fd, not yet taken by the device */
    size_t pending_len, pending_off;
    bool polling;              /* in_fd is armed in the event loop */
    bool saw_escape;
    bool registered;           /* in_fd and wake_fd are in the event loop */
    bool in_eof;               /* in_fd reached its end and was removed */
    int wake_fd;               /* eventfd: the device has room again */

    /* Output limits (console_limit_output()); the mutex serialises the
     * bucket between the threads that may write. */
    bool out_limited, drop_when_full;
    pthread_mutex_t out_lock;
    struct rate_limiter out_rl;
    _Atomic uint64_t dropped_rate, dropped_room; /* bytes */
};

/* -errno on failure (nothing left allocated). */
int console_init(struct console *c, int in_fd, int out_fd, bool escape, struct evloop *loop);
/* Attach the device input side and start reading @in_fd. */
int console_attach(struct console *c, size_t (*rx)(void *, const uint8_t *, size_t), void *dev);
void console_release(struct console *c);
/* Write guest output; retries short writes and waits while the reader is
 * slow (back-pressure on the guest), but gives up once console_close() was
 * called or on a host error. */
void console_write(struct console *c, const uint8_t *buf, size_t len);
/* Limits on output, as Firecracker's serial device has them: bytes over
 * @rl's bandwidth bucket (none when it has no size) are dropped, not
 * delayed; with @drop_when_full, bytes a reader that is behind cannot take
 * at once are dropped too instead of holding the guest back. Before the
 * first output. */
void console_limit_output(struct console *c, const struct rate_limiter_config *rl,
                          bool drop_when_full);
/* Bytes dropped so far: over the rate, for want of room at the reader. */
void console_dropped(struct console *c, uint64_t *by_rate, uint64_t *by_room);
/* The VM is stopping: pending and future output is dropped instead of
 * waited for. Any thread. */
void console_close(struct console *c);
/* The device has room again: pending input is delivered and reading resumes
 * (soon, on the event-loop thread). */
void console_rx_ready(struct console *c);

#endif
