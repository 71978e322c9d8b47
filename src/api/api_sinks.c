/* api_sinks.c - where the process reports: the logger (/logger, the
 * library's log sink and level), the metrics file (/metrics, the lines
 * api_metrics.c renders) and the guest's serial output (/serial). See api.h. */
#include "api/api_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Firecracker's names of a->log_level + 1, as GET /vm/config shows them. */
static const char *const level_names[] = {"Off", "Error", "Warning", "Info", "Debug"};

int api_log_level_parse(const char *s, int *level)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"off", -1}, {"error", 0}, {"warning", 1},
                 {"info", 2}, {"debug", 3}, {"trace", 3}}; /* arcvm has no finer level */
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcasecmp(s, names[i].name)) {
            *level = names[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

/* Open a log or metrics destination: a FIFO read-write, so opening neither
 * blocks nor fails for want of a reader (Firecracker does the same); any
 * other path appended to, created if missing. Non-blocking: a line that does
 * not fit into a full FIFO is dropped rather than stalling a vCPU. */
static int open_sink(const char *path, const char *what, char *err, size_t errlen)
{
    struct stat st;
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK;
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        flags = O_RDWR | O_CLOEXEC | O_NONBLOCK;
    /* Owner-only: logs and metrics name host paths and show guest activity. */
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open the %s file %s: %s", what, path, strerror(e));
        return -e;
    }
    return fd;
}

void api_sinks_release(struct api *a)
{
    if (a->log_fd >= 0) {
        arcvm_log_set_fd(STDERR_FILENO);
        close(a->log_fd);
    }
    if (a->logger_set)
        arcvm_log_set_level(1); /* back to the library's default */
    if (a->metrics_fd >= 0)
        close(a->metrics_fd);
    free(a->log_path);
    free(a->log_module);
    free(a->metrics_path);
}

/* ---- the logger --------------------------------------------------------- */

/* Point the library's log at @fd (consumed). */
static void log_install(struct api *a, int fd)
{
    if (a->log_fd < 0) {
        a->log_fd = fd;
        arcvm_log_set_fd(fd);
    } else {
        dup2(fd, a->log_fd); /* atomic for writers: old file or new, never a hole */
        close(fd);
    }
}

int api_set_logger(struct api *a, const struct api_logger *l, char *err, size_t errlen)
{
    int level = a->log_level;
    if (l->level && api_log_level_parse(l->level, &level) < 0) {
        snprintf(err, errlen,
                 "Invalid value for logger level: %s. Possible values: [Error, Warning, Info, "
                 "Debug, Trace, Off]",
                 l->level);
        return -EINVAL;
    }
    const char *path = l->log_path ? l->log_path : a->log_path;
    int fd = -1;
    if (level < 0 || (!path && a->log_fd >= 0)) {
        /* Off: into /dev/null; back from Off without a file: stderr again. */
        fd = level < 0 ? open("/dev/null", O_WRONLY | O_CLOEXEC)
                       : fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open the log sink: %s", strerror(e));
            return -e;
        }
    } else if (path && (fd = open_sink(path, "log", err, errlen)) < 0) {
        return fd;
    }
    char *p = api_strdup(path), *m = api_strdup(l->module ? l->module : a->log_module);
    if ((path && !p) || ((l->module || a->log_module) && !m)) {
        free(p);
        free(m);
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (fd >= 0)
        log_install(a, fd);
    arcvm_log_set_level(level < 0 ? 0 : level);
    free(a->log_path);
    free(a->log_module);
    a->log_path = p;
    a->log_module = m;
    a->log_level = level;
    a->show_level = l->show_level;
    a->show_origin = l->show_log_origin;
    a->logger_set = true;
    return 0;
}

static const struct api_json_field logger_fields[] = {
    {"log_path", API_JSON_STRING, false, 0}, {"level", API_JSON_STRING, false, 0},
    {"show_level", API_JSON_BOOL, false, 0}, {"show_log_origin", API_JSON_BOOL, false, 0},
    {"module", API_JSON_STRING, false, 0},
};
const struct api_schema api_sinks_logger_schema = {.what = "logger",
                                                   API_SCHEMA_FIELDS(logger_fields)};

void api_sinks_logger_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    struct api_logger l = {
        .log_path = api_json_str(b, "log_path"),
        .level = api_json_str(b, "level"),
        .show_level = api_json_bool(b, "show_level", false),
        .show_log_origin = api_json_bool(b, "show_log_origin", false),
        .module = api_json_str(b, "module"),
    };
    char err[512];
    if (api_set_logger(a, &l, err, sizeof(err)) < 0)
        api_fault(a, r, 400, "%s", err);
    else
        api_ok(r);
}

json_t *api_sinks_logger_json(const struct api *a)
{
    if (!a->logger_set)
        return json_null();
    return json_pack("{s:o,s:s,s:b,s:b,s:o}", "log_path", api_json_string_or_null(a->log_path),
                     "level", level_names[a->log_level + 1], "show_level", a->show_level,
                     "show_log_origin", a->show_origin, "module",
                     api_json_string_or_null(a->log_module));
}

/* ---- metrics ------------------------------------------------------------ */

int api_set_metrics(struct api *a, const char *path, char *err, size_t errlen)
{
    if (a->metrics_fd >= 0) {
        snprintf(err, errlen, "Reinitialization of metrics not allowed.");
        return -EALREADY;
    }
    char *p = strdup(path);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int fd = open_sink(path, "metrics", err, errlen);
    if (fd < 0) {
        free(p);
        return fd;
    }
    a->metrics_fd = fd;
    a->metrics_path = p;
    return 0;
}

void api_set_startup_time(struct api *a, uint64_t wall_us, uint64_t cpu_us)
{
    a->startup_us = wall_us;
    a->startup_cpu_us = cpu_us;
}

int api_flush_metrics(struct api *a)
{
    if (a->metrics_fd < 0)
        return -ENOENT;
    struct arcvm_metrics vm;
    memset(&vm, 0, sizeof(vm));
    if (a->started)
        a->ops->get_metrics(a->opt.vm_ops_ctx, a->vm, &vm);
    const char *ids[API_MAX_DRIVES];
    for (unsigned i = 0; i < a->ndrives; i++)
        ids[i] = a->drives[i].id;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct api_metrics_input in = {
        .utc_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u,
        .startup_us = a->startup_us,
        .startup_cpu_us = a->startup_cpu_us,
        .ctr = a->ctr,
        .vm = &vm,
        .drive_ids = ids,
        .ndrives = a->started ? a->ndrives : 0,
    };
    char *line = api_metrics_render(&a->metrics, &in);
    if (!line)
        return -ENOMEM;
    size_t len = strlen(line);
    ssize_t w;
    do {
        w = write(a->metrics_fd, line, len);
    } while (w < 0 && errno == EINTR);
    int r = w < 0 ? -errno : (size_t)w < len ? -EAGAIN : 0;
    free(line);
    return r;
}

static const struct api_json_field metrics_fields[] = {{"metrics_path", API_JSON_STRING, true, 0}};
const struct api_schema api_sinks_metrics_schema = {.what = "metrics",
                                                    API_SCHEMA_FIELDS(metrics_fields)};

void api_sinks_metrics_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    char err[512];
    if (api_set_metrics(a, api_json_str(b, "metrics_path"), err, sizeof(err)) < 0)
        api_fault(a, r, 400, "%s", err);
    else
        api_ok(r);
}

json_t *api_sinks_metrics_json(const struct api *a)
{
    return a->metrics_path ? json_pack("{s:s}", "metrics_path", a->metrics_path) : json_null();
}

/* ---- the serial console's output ---------------------------------------- */

/* rate_limiter is one TokenBucket (Firecracker's serial output limit), a
 * RateLimiter's bandwidth: checked and read as one. */
static int serial_bucket(const json_t *b, struct arcvm_token_bucket *out, char *err, size_t errlen)
{
    json_t *w = json_pack("{s:O}", "bandwidth", json_object_get(b, "rate_limiter"));
    int r = w ? api_json_check_rate_limiter(w, "rate_limiter", err, errlen) : -1;
    struct arcvm_rate_limiter rl = {0};
    if (r == 0)
        api_json_rate_limiter(w, &rl);
    json_decref(w);
    if (r == 0 && rl.bandwidth.size && !rl.bandwidth.refill_time_ms) {
        snprintf(err, errlen,
                 "rate_limiter: a bucket with a size needs a refill_time of 1 ms or "
                 "more");
        r = -1;
    }
    *out = rl.bandwidth;
    return r;
}

static bool serial_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    (void)id;
    struct arcvm_token_bucket bw;
    char err[256];
    if (!api_json_has(b, "rate_limiter") || serial_bucket(b, &bw, err, sizeof(err)) == 0)
        return true;
    api_fault(a, r, 400, "An error occurred when deserializing the json body of a request: %s.",
              err);
    return false;
}

static const struct api_json_field serial_fields[] = {
    {"serial_out_path", API_JSON_STRING, false, 0}, {"rate_limiter", API_JSON_OBJECT, false, 0}};
const struct api_schema api_serial_schema = {
    .what = "serial", API_SCHEMA_FIELDS(serial_fields), .check = serial_check};

/* The file is opened now, as the log and metrics files are, so a bad path
 * is refused with the request rather than at InstanceStart; without a path
 * the output goes back to the process's own console. A rate_limiter drops
 * output over its rate, wherever it goes; a file or FIFO also drops what
 * its reader is too far behind to take, as in Firecracker (stdout holds
 * the guest back instead, as arcvm always does). */
void api_serial_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    (void)id;
    const char *path = api_json_str(b, "serial_out_path");
    char err[512];
    int fd = path ? open_sink(path, "serial output", err, sizeof(err)) : -1;
    char *p = api_strdup(path);
    if (path && (fd < 0 || !p)) {
        if (fd >= 0)
            close(fd);
        free(p);
        api_fault(a, r, 400, "%s", fd < 0 ? err : "out of memory");
        return;
    }
    api_serial_release(a);
    a->serial_fd = fd;
    a->serial_path = p;
    if (api_json_has(b, "rate_limiter"))
        serial_bucket(b, &a->serial_rl, err, sizeof(err)); /* checked */
    api_ok(r);
}

void api_serial_release(struct api *a)
{
    if (a->serial_fd >= 0)
        close(a->serial_fd);
    a->serial_fd = -1;
    free(a->serial_path);
    a->serial_path = NULL;
    a->serial_rl = (struct arcvm_token_bucket){0};
}
