/* log.h - leveled, rate-limitable logging to one file descriptor.
 *
 * The sink and level are process-wide (like stderr itself); nothing in them is
 * per-VM state, so several VMs in one process share them safely.
 */
#ifndef ARCVM_BASE_LOG_H
#define ARCVM_BASE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above @level are dropped. Default: LOG_WARN. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Write messages to @fd (default 2). The caller keeps @fd open. */
void log_set_fd(int fd);
/* The descriptor messages go to (for writers that cannot use log_msg()). */
int log_fd(void);
/* Parse "error", "warn"/"warning", "info", "debug" (any case). -EINVAL else. */
int log_level_parse(const char *s, enum log_level *out);

/* One line "arcvm: <level>: <message>\n", written with a single write(2). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, whatever the configured level: for output the user asked for. */
void log_force(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Per-call-site limit: at most LOG_RATE_BURST messages in each window of
 * LOG_RATE_PERIOD_MS. Guest-triggered messages must use it so a
 * hostile guest cannot flood the host's log. */
#define LOG_RATE_BURST 10
#define LOG_RATE_PERIOD_MS 1000
struct log_ratelimit {
    _Atomic int64_t next_ms; /* earliest time a token is refilled */
    _Atomic int tokens;
    _Atomic bool init;
};
bool log_ratelimit_ok(struct log_ratelimit *rl);

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)
/* Guest misbehaviour: warn, rate-limited per call site. */
#define log_guest(...)                                                                             \
    do {                                                                                           \
        static struct log_ratelimit rl_;                                                           \
        if (log_ratelimit_ok(&rl_))                                                                \
            log_msg(LOG_WARN, "guest: " __VA_ARGS__);                                              \
    } while (0)

#endif
