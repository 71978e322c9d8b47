/* log.c - leveled logging; see log.h. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_WARN;
static _Atomic int g_fd = 2;

void log_set_level(enum log_level level)
{
    atomic_store(&g_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&g_level);
}

void log_set_fd(int fd)
{
    atomic_store(&g_fd, fd);
}

int log_fd(void)
{
    return atomic_load(&g_fd);
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {{"error", LOG_ERROR}, {"warn", LOG_WARN},   {"warning", LOG_WARN},
                 {"info", LOG_INFO},   {"debug", LOG_DEBUG}, {"trace", LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcasecmp(s, names[i].name)) {
            *out = names[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
    static const char *const tag[] = {"error", "warning", "info", "debug"};
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "arcvm: %s: ", tag[level]);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    ssize_t w;
    do {
        w = write(atomic_load(&g_fd), buf, len);
    } while (w < 0 && errno == EINTR);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load(&g_level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

void log_force(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
    int64_t now = now_ms();
    if (!atomic_exchange(&rl->init, true)) {
        atomic_store(&rl->tokens, LOG_RATE_BURST);
        atomic_store(&rl->next_ms, now + LOG_RATE_PERIOD_MS);
    }
    int64_t next = atomic_load(&rl->next_ms);
    if (now >= next && atomic_compare_exchange_strong(&rl->next_ms, &next, now + LOG_RATE_PERIOD_MS))
        atomic_store(&rl->tokens, LOG_RATE_BURST);
    return atomic_fetch_sub(&rl->tokens, 1) > 0;
}
