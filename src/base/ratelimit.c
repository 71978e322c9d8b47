/* ratelimit.c - token-bucket rate limiters; see ratelimit.h. */
#include "base/ratelimit.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ull

bool rate_limiter_config_set(const struct rate_limiter_config *c)
{
    return c->bandwidth.size || c->ops.size;
}

static int bucket_check(const struct rl_bucket_config *b)
{
    /* A size of 2^62 tokens is beyond any device; keeping below it leaves
     * the arithmetic below far from overflow. */
    if (b->size > (1ull << 62) || b->one_time_burst > (1ull << 62))
        return -EINVAL;
    if (b->size && (b->refill_time_ms == 0 || b->refill_time_ms > (1ull << 32)))
        return -EINVAL;
    return 0;
}

int rate_limiter_config_check(const struct rate_limiter_config *c)
{
    int r = bucket_check(&c->bandwidth);
    return r < 0 ? r : bucket_check(&c->ops);
}

static void bucket_init(struct rl_bucket *b, const struct rl_bucket_config *c, uint64_t now)
{
    b->cfg = *c;
    b->burst = c->size ? c->one_time_burst : 0;
    b->budget = (int64_t)c->size;
    b->last_ns = now;
}

void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *c,
                       uint64_t now_ns)
{
    bucket_init(&rl->bandwidth, &c->bandwidth, now_ns);
    bucket_init(&rl->ops, &c->ops, now_ns);
}

void rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_config *c,
                         uint64_t now_ns)
{
    rate_limiter_init(rl, c, now_ns);
}

/* Tokens earned since last_ns, capped at a full bucket. */
static void refill(struct rl_bucket *b, uint64_t now)
{
    if (!b->cfg.size || now <= b->last_ns)
        return;
    uint64_t elapsed = now - b->last_ns;
    uint64_t period = b->cfg.refill_time_ms * NS_PER_MS;
    /* tokens = elapsed * size / period without overflow: whole periods
     * first, then the remainder (< period, and size <= 2^62, period <=
     * 2^52: the product is done in 128 bits). */
    unsigned __int128 t = (unsigned __int128)(elapsed % period) * b->cfg.size / period;
    uint64_t earned = elapsed / period >= 2 ? 2 * b->cfg.size : (elapsed / period) * b->cfg.size;
    earned += (uint64_t)t;
    if (earned == 0)
        return; /* keep last_ns: the fraction is not lost */
    int64_t cap = (int64_t)b->cfg.size;
    if (earned >= (uint64_t)(cap - b->budget)) {
        b->budget = cap;
        b->last_ns = now;
        return;
    }
    b->budget += (int64_t)earned;
    /* Only the time those tokens took: the fraction of the next one stays
     * earned, or a bucket asked often would fill slower than its rate. */
    b->last_ns += (uint64_t)((unsigned __int128)earned * period / b->cfg.size);
}

/* Whether the bucket can take @n tokens now (Firecracker's rule: all of
 * them must be there, unless @n is more than a full bucket, which then only
 * has to be full and goes into debt); if not, *wait_ns until it can. */
static bool ready(const struct rl_bucket *b, uint64_t n, uint64_t *wait_ns)
{
    if (!b->cfg.size)
        return true;
    uint64_t want = n < b->cfg.size ? n : b->cfg.size;
    int64_t have = b->budget + (int64_t)(b->burst < (1ull << 62) ? b->burst : (1ull << 62));
    if (have >= (int64_t)want)
        return true;
    uint64_t need = (uint64_t)((int64_t)want - have); /* tokens still to come */
    uint64_t period = b->cfg.refill_time_ms * NS_PER_MS;
    unsigned __int128 ns = ((unsigned __int128)need * period + b->cfg.size - 1) / b->cfg.size;
    uint64_t w = ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
    if (w > *wait_ns)
        *wait_ns = w;
    return false;
}

static void take(struct rl_bucket *b, uint64_t n)
{
    if (!b->cfg.size)
        return;
    uint64_t from_burst = n < b->burst ? n : b->burst;
    b->burst -= from_burst;
    n -= from_burst;
    /* Debt is bounded by one request (at most 2^62 tokens here). */
    b->budget -= n > (1ull << 62) ? (int64_t)(1ull << 62) : (int64_t)n;
}

bool rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns,
                       uint64_t *wait_ns)
{
    refill(&rl->bandwidth, now_ns);
    refill(&rl->ops, now_ns);
    uint64_t wait = 0;
    bool ok_bw = ready(&rl->bandwidth, bytes, &wait), ok_ops = ready(&rl->ops, 1, &wait);
    if (!ok_bw || !ok_ops) {
        *wait_ns = wait;
        return false;
    }
    take(&rl->bandwidth, bytes);
    take(&rl->ops, 1);
    *wait_ns = 0;
    return true;
}

/* ---- throttle ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The timer fired: clear it and let the device serve again. */
static void throttle_fired(void *opaque, uint32_t events)
{
    struct throttle *t = opaque;
    uint64_t n;
    (void)events;
    (void)!read(t->timer_fd, &n, sizeof(n));
    t->waiting = false;
    t->cb(t->opaque, EPOLLIN);
}

static int throttle_timer(struct throttle *t)
{
    if (t->timer_fd >= 0)
        return 0;
    t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t->timer_fd < 0)
        return -errno;
    int r = evloop_add(t->loop, t->timer_fd, EPOLLIN, throttle_fired, t);
    if (r < 0) {
        close(t->timer_fd);
        t->timer_fd = -1;
    }
    return r;
}

int throttle_init(struct throttle *t, const struct rate_limiter_config *c, struct evloop *loop,
                  evloop_cb cb, void *opaque)
{
    memset(t, 0, sizeof(*t));
    t->timer_fd = -1;
    t->loop = loop;
    t->cb = cb;
    t->opaque = opaque;
    return throttle_update(t, c);
}

/* Arm the timer for @wait ns unless it is armed. */
static void throttle_wait(struct throttle *t, uint64_t wait)
{
    if (!t->waiting) {
        /* At least a microsecond: a zero it_value would disarm the timer. */
        wait = wait < 1000 ? 1000 : wait;
        struct itimerspec its = {.it_value = {(time_t)(wait / 1000000000ull),
                                              (long)(wait % 1000000000ull)}};
        t->waiting = timerfd_settime(t->timer_fd, 0, &its, NULL) == 0;
    }
}

bool throttle_take(struct throttle *t, uint64_t bytes)
{
    if (!t->on)
        return true;
    uint64_t wait;
    if (rate_limiter_take(&t->rl, bytes, mono_ns(), &wait))
        return true;
    throttle_wait(t, wait);
    return false;
}

bool throttle_ready(struct throttle *t)
{
    if (!t->on)
        return true;
    uint64_t now = mono_ns(), wait = 0;
    refill(&t->rl.bandwidth, now);
    refill(&t->rl.ops, now);
    if (ready(&t->rl.bandwidth, 0, &wait) && ready(&t->rl.ops, 1, &wait))
        return true;
    throttle_wait(t, wait);
    return false;
}

void throttle_charge(struct throttle *t, uint64_t bytes)
{
    if (!t->on)
        return;
    take(&t->rl.bandwidth, bytes);
    take(&t->rl.ops, 1);
}

int throttle_update(struct throttle *t, const struct rate_limiter_config *c)
{
    int r = rate_limiter_config_check(c);
    if (r < 0)
        return r;
    if (rate_limiter_config_set(c) && (r = throttle_timer(t)) < 0)
        return r;
    rate_limiter_update(&t->rl, c, mono_ns());
    t->on = rate_limiter_config_set(c);
    if (t->waiting) {
        /* Fire now: the device looks again under the new limits. */
        struct itimerspec its = {.it_value = {0, 1000}};
        (void)timerfd_settime(t->timer_fd, 0, &its, NULL);
    }
    return 0;
}

void throttle_release(struct throttle *t)
{
    if (t->timer_fd >= 0) {
        evloop_del(t->loop, t->timer_fd);
        close(t->timer_fd);
    }
    t->timer_fd = -1;
    t->on = false;
    t->waiting = false;
}
