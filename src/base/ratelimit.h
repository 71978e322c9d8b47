/* ratelimit.h - token buckets as Firecracker's API defines rate limiters.
 *
 * A limiter has two buckets, one counting bytes (bandwidth) and one
 * counting operations; either may be absent. A bucket holds at most @size
 * tokens, refills completely from empty in @refill_time_ms, and starts
 * with @one_time_burst extra tokens that are spent first and never come
 * back. A request goes when all its tokens are there (Firecracker's rule);
 * one larger than a full bucket goes when the bucket is full and leaves a
 * debt the refill pays before the next: the average rate holds and no
 * request is too large to ever pass.
 * Plain data, no locking: the device that owns one serializes its use.
 */
#ifndef ARCVM_BASE_RATELIMIT_H
#define ARCVM_BASE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rl_bucket_config {
    uint64_t size;           /* tokens; 0: no bucket */
    uint64_t one_time_burst; /* extra tokens at the start */
    uint64_t refill_time_ms; /* from empty to @size; must be > 0 with a size */
};

struct rate_limiter_config {
    struct rl_bucket_config bandwidth; /* bytes */
    struct rl_bucket_config ops;       /* operations */
};

struct rl_bucket {
    struct rl_bucket_config cfg;
    uint64_t burst;  /* one-time tokens left */
    int64_t budget;  /* refillable tokens; negative: debt */
    uint64_t last_ns;
};

struct rate_limiter {
    struct rl_bucket bandwidth, ops;
};

/* True when @c limits anything. */
bool rate_limiter_config_set(const struct rate_limiter_config *c);
/* -EINVAL when a bucket has a size but no refill time (or absurd values). */
int rate_limiter_config_check(const struct rate_limiter_config *c);
/* Full buckets at @now_ns (CLOCK_MONOTONIC). */
void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *c,
                       uint64_t now_ns);
/* New limits at run time (Firecracker's PATCH): the buckets start full. */
void rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_config *c,
                         uint64_t now_ns);
/* One operation of @bytes at @now_ns: true when both buckets let it pass
 * (their tokens are taken), else false with *@wait_ns set to how long until
 * it would (nothing taken). */
bool rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns,
                       uint64_t *wait_ns);

/* ---- a limiter for a device on an event loop ----
 * A device asks throttle_take() before each request; when it may not go,
 * the throttle arms a timer and calls @cb on the event loop when it may,
 * so the device serves its queue again. Used under the device's lock. */
#include "base/evloop.h"

struct throttle {
    struct rate_limiter rl;
    bool on;      /* a limit is configured */
    /* The timer is armed. Cleared on the event loop before @cb runs, which
     * serves the queue again: a take that saw it still set is followed by
     * that serve, so no request waits without a timer. */
    _Atomic bool waiting;
    int timer_fd; /* -1 until a limit is first set */
    struct evloop *loop;
    evloop_cb cb;
    void *opaque;
};

/* Set up @t with limits @c (none: every take passes without a syscall). */
int throttle_init(struct throttle *t, const struct rate_limiter_config *c, struct evloop *loop,
                  evloop_cb cb, void *opaque);
/* May a request of @bytes go now? */
bool throttle_take(struct throttle *t, uint64_t bytes);
/* For requests whose size is known only once served (a received frame):
 * may one start now (nothing taken; the timer is armed if not)? Then
 * throttle_charge() takes one operation and the @bytes it carried, into a
 * debt the next request waits for if need be. */
bool throttle_ready(struct throttle *t);
void throttle_charge(struct throttle *t, uint64_t bytes);
/* New limits at run time; a waiting device is called at once. */
int throttle_update(struct throttle *t, const struct rate_limiter_config *c);
void throttle_release(struct throttle *t);

#endif
