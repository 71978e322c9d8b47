/* api.c - the Firecracker-compatible control plane: routes requests, checks
 * bodies against Firecracker's schemas, keeps the pre-boot configuration and
 * turns it into library calls at InstanceStart. See api.h. */
#include "api/api.h"

#include "api/api_json.h"
#include "api/api_metrics.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* arcvm_add_disk() takes at most 8 disks. */
#define API_MAX_DRIVES 8
/* NICs per VM: the core's limit (CONFIG_MAX_NETS). */
#define API_MAX_NETS 4
/* The virtio-blk serial (GET_ID) is 20 bytes: arcvm_add_disk()'s id limit. */
#define API_SERIAL_MAX 20
/* Firecracker's MAX_SUPPORTED_VCPUS, the maximum in its swagger schema. */
#define FC_MAX_VCPUS 32
/* Firecracker's DEFAULT_MEM_SIZE_MIB: what a tool that never PUTs
 * /machine-config expects. */
#define FC_DEFAULT_MEM_MIB 128
/* 16 TiB: far above any host, and MiB << 20 stays far inside 64 bits. */
#define API_MEM_MIB_MAX (1ull << 24)
/* Firecracker's instance id length limits (utils/validators.rs). */
#define FC_ID_MAX 64
/* vsock CIDs 0-2 are reserved (hypervisor, local, host). */
#define FC_VSOCK_CID_MIN 3
/* The longest request path worth routing; every real one is far shorter. */
#define API_PATH_MAX 1024

static const char MSG_POST_BOOT[] =
    "The requested operation is not supported after starting the microVM.";
static const char MSG_PRE_BOOT[] =
    "The requested operation is not supported before starting the microVM.";
static const char DEFAULT_INSTANCE_ID[] = "anonymous-instance";

enum cache_type { CACHE_UNSAFE, CACHE_WRITEBACK };
enum io_engine { IO_SYNC, IO_ASYNC };

struct api_drive {
    char *id, *path, *partuuid;
    bool root, ro;
    enum cache_type cache;
    enum io_engine engine;
};

/* A network interface: a TAP device on the host (Firecracker has no other
 * back end; arcvm's user-mode networking is for the CLI and library). */
struct api_net {
    char *id, *tap, *mac; /* mac: NULL for arcvm's default */
};

struct api {
    struct api_options opt;
    const struct api_vm_ops *ops;
    char id[FC_ID_MAX + 1];
    char *hv_device;
    arcvm *vm;
    bool started, exited;
    struct arcvm_exit exit;

    /* machine-config */
    unsigned vcpus;
    uint64_t mem_mib;
    /* boot-source */
    char *kernel, *initrd, *boot_args;
    /* drives, in guest order: a root device first, as Firecracker does */
    struct api_drive drives[API_MAX_DRIVES];
    unsigned ndrives;
    struct api_net nets[API_MAX_NETS];
    unsigned nnets;
    bool entropy;
    struct api_vsock {
        bool set;
        uint32_t cid;
        char *uds_path;
    } vsock;
    struct api_balloon {
        bool set;
        uint32_t amount_mib;
        bool deflate_on_oom, reporting;
        unsigned stats_s;
    } balloon;

    /* logger: log_fd is the stable fd number handed to the library (-1:
     * the library's default, stderr); a new file is dup2()ed onto it so a
     * VM thread never writes to a closed or reused fd. */
    bool logger_set;
    char *log_path, *log_module;
    int log_level; /* -1 Off, 0 Error .. 3 Debug */
    bool show_level, show_origin;
    int log_fd;

    /* metrics */
    char *metrics_path;
    int metrics_fd;
    struct api_metrics metrics;
    uint64_t ctr[API_CTR_COUNT];
    uint64_t startup_us, startup_cpu_us;

    char fault[512]; /* the last fault message, for the config file loader */
};

/* ---- the library, as the default VM operations ---------------------- */

static int lib_start(void *c, arcvm *vm)
{
    (void)c;
    return arcvm_start(vm);
}
static int lib_pause(void *c, arcvm *vm)
{
    (void)c;
    return arcvm_pause(vm);
}
static int lib_resume(void *c, arcvm *vm)
{
    (void)c;
    return arcvm_resume(vm);
}
static int lib_stop(void *c, arcvm *vm)
{
    (void)c;
    return arcvm_stop(vm);
}
static int lib_wait(void *c, arcvm *vm, struct arcvm_exit *e)
{
    (void)c;
    return arcvm_wait(vm, e);
}
static int lib_cad(void *c, arcvm *vm)
{
    (void)c;
    return arcvm_send_ctrl_alt_del(vm);
}
static int lib_metrics(void *c, arcvm *vm, struct arcvm_metrics *m)
{
    (void)c;
    return arcvm_get_metrics(vm, m);
}
static enum arcvm_state lib_state(void *c, arcvm *vm)
{
    (void)c;
    return arcvm_get_state(vm);
}
static int lib_state_fd(void *c, arcvm *vm)
{
    (void)c;
    return arcvm_state_fd(vm);
}
static const char *lib_error(void *c, const arcvm *vm)
{
    (void)c;
    return arcvm_last_error(vm);
}

static int lib_vcpu_info(void *c, arcvm *vm, struct arcvm_vcpu_info *out, unsigned max)
{
    (void)c;
    return arcvm_get_vcpu_info(vm, out, max);
}

static const struct api_vm_ops lib_ops = {
    .start = lib_start,
    .pause = lib_pause,
    .resume = lib_resume,
    .stop = lib_stop,
    .wait = lib_wait,
    .send_ctrl_alt_del = lib_cad,
    .get_metrics = lib_metrics,
    .get_state = lib_state,
    .state_fd = lib_state_fd,
    .last_error = lib_error,
    .get_vcpu_info = lib_vcpu_info,
};

/* ---- small helpers ---------------------------------------------------- */

static void api_log(struct api *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void api_log(struct api *a, int level, const char *fmt, ...)
{
    static const char *const tag[] = {"error", "warning", "info", "debug"};
    if (level > a->log_level)
        return;
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "arcvm: %s: api: ", tag[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    /* One write per line, like the library's own log, to the same sink. */
    (void)!write(a->log_fd >= 0 ? a->log_fd : STDERR_FILENO, buf, len);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void reply_json(struct api_reply *r, int status, json_t *v)
{
    r->body = v ? json_dumps(v, JSON_COMPACT) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    r->status = r->body ? status : 500; /* no body: out of memory */
    json_decref(v);
}

static void fault(struct api *a, struct api_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fault(struct api *a, struct api_reply *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->fault, sizeof(a->fault), fmt, ap);
    va_end(ap);
    reply_json(r, status, json_pack("{s:s}", "fault_message", a->fault));
}

static void ok(struct api_reply *r)
{
    r->status = 204;
}

/* Pre-boot-only requests after InstanceStart. */
static bool pre_boot(struct api *a, struct api_reply *r)
{
    if (!a->started)
        return true;
    fault(a, r, 400, "%s", MSG_POST_BOOT);
    return false;
}

static bool post_boot(struct api *a, struct api_reply *r)
{
    if (a->started)
        return true;
    fault(a, r, 400, "%s", MSG_PRE_BOOT);
    return false;
}

/* Schema check; on failure answer 400 the way Firecracker words serde errors. */
static bool check(struct api *a, struct api_reply *r, const json_t *b,
                  const struct api_json_field *f, size_t n, bool partial, const char *what)
{
    char err[512];
    if (api_json_check(b, f, n, partial, what, err, sizeof(err)) == 0)
        return true;
    fault(a, r, 400, "An error occurred when deserializing the json body of a request: %s.", err);
    return false;
}

static bool check_rl(struct api *a, struct api_reply *r, const json_t *b, const char *key)
{
    char err[512];
    if (!api_json_has(b, key) ||
        api_json_check_rate_limiter(json_object_get(b, key), key, err, sizeof(err)) == 0)
        return true;
    fault(a, r, 400, "An error occurred when deserializing the json body of a request: %s.", err);
    return false;
}

static bool id_match(struct api *a, struct api_reply *r, const char *path_id, const char *body_id)
{
    if (body_id && !strcmp(path_id, body_id))
        return true;
    fault(a, r, 400, "The id from the path does not match the id from the body!");
    return false;
}

/* Pick @s among @names (exactly, as serde does for enums); -1 if absent. */
static int variant(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

bool api_instance_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 1 || n > FC_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-')
            return false;
    return true;
}

/* Firecracker's checked_id() for resource ids in paths. */
static bool resource_id_valid(struct api *a, struct api_reply *r, const char *id)
{
    if (!*id) {
        fault(a, r, 400, "The ID cannot be empty.");
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            fault(a, r, 400,
                  "API Resource IDs can only contain alphanumeric characters and underscores.");
            return false;
        }
    }
    return true;
}

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

/* ---- lifecycle ------------------------------------------------------- */

int api_create(const struct api_options *o, struct api **out, char *err, size_t errlen)
{
    const char *id = o->instance_id ? o->instance_id : DEFAULT_INSTANCE_ID;
    if (!api_instance_id_valid(id)) {
        snprintf(err, errlen,
                 "instance id '%s': give 1 to 64 letters, digits or '-' (as Firecracker)", id);
        return -EINVAL;
    }
    struct api *a = calloc(1, sizeof(*a));
    if (!a)
        goto oom;
    a->opt = *o;
    a->ops = o->vm_ops ? o->vm_ops : &lib_ops;
    snprintf(a->id, sizeof(a->id), "%s", id);
    if (!a->opt.max_body)
        a->opt.max_body = API_MAX_BODY_DEFAULT;
    a->opt.instance_id = a->id;
    a->hv_device = dup_or_null(o->hv_device);
    a->opt.hv_device = a->hv_device;
    if (o->hv_device && !a->hv_device)
        goto oom;
    a->vcpus = 1;
    a->mem_mib = FC_DEFAULT_MEM_MIB;
    a->log_level = 1; /* the library's default: warnings */
    a->log_fd = -1;
    a->metrics_fd = -1;
    if (arcvm_create(&a->vm) < 0)
        goto oom;
    *out = a;
    return 0;
oom:
    api_destroy(a);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

static void net_release(struct api_net *n)
{
    free(n->id);
    free(n->tap);
    free(n->mac);
    *n = (struct api_net){0};
}

static void drive_release(struct api_drive *d)
{
    free(d->id);
    free(d->path);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

void api_destroy(struct api *a)
{
    if (!a)
        return;
    /* The VM first: its threads may log until they are gone. */
    arcvm_destroy(a->vm);
    if (a->log_fd >= 0) {
        arcvm_log_set_fd(STDERR_FILENO);
        close(a->log_fd);
    }
    if (a->logger_set)
        arcvm_log_set_level(1); /* back to the library's default */
    if (a->metrics_fd >= 0)
        close(a->metrics_fd);
    for (unsigned i = 0; i < a->ndrives; i++)
        drive_release(&a->drives[i]);
    for (unsigned i = 0; i < a->nnets; i++)
        net_release(&a->nets[i]);
    free(a->kernel);
    free(a->initrd);
    free(a->boot_args);
    free(a->log_path);
    free(a->log_module);
    free(a->metrics_path);
    free(a->hv_device);
    free(a->vsock.uds_path);
    free(a);
}

bool api_started(const struct api *a)
{
    return a->started;
}

const struct arcvm_exit *api_exit(const struct api *a)
{
    return a->exited ? &a->exit : NULL;
}

int api_vm_fd(struct api *a)
{
    return a->started && !a->exited ? a->ops->state_fd(a->opt.vm_ops_ctx, a->vm) : -1;
}

bool api_vm_event(struct api *a)
{
    if (!a->started)
        return false;
    if (a->exited)
        return true;
    int fd = a->ops->state_fd(a->opt.vm_ops_ctx, a->vm);
    uint64_t v;
    if (fd >= 0)
        (void)!read(fd, &v, sizeof(v)); /* an eventfd: reset the count */
    enum arcvm_state s = a->ops->get_state(a->opt.vm_ops_ctx, a->vm);
    if (s != ARCVM_STATE_STOPPING && s != ARCVM_STATE_STOPPED && s != ARCVM_STATE_FAILED)
        return false;
    a->ops->wait(a->opt.vm_ops_ctx, a->vm, &a->exit);
    a->exited = true;
    api_log(a, 2, "the microVM stopped: %s", a->exit.message[0] ? a->exit.message : "no reason");
    return true;
}

int api_stop(struct api *a)
{
    if (!a->started || a->exited)
        return -EINVAL;
    enum arcvm_state s = a->ops->get_state(a->opt.vm_ops_ctx, a->vm);
    if (s == ARCVM_STATE_STOPPING || s == ARCVM_STATE_STOPPED || s == ARCVM_STATE_FAILED)
        return 0; /* already on its way out: api_vm_event() will see it */
    return a->ops->stop(a->opt.vm_ops_ctx, a->vm) < 0 ? -EINVAL : 0;
}

/* The kernel command line: boot_args replace arcvm's defaults (Firecracker's
 * boot_args replace its defaults too); without boot_args, arcvm's defaults.
 * A root drive adds root=/dev/vda (it is always the first drive) or
 * root=PARTUUID=..., then ro or rw, as Firecracker does. */
char *api_kernel_cmdline(const struct api *a, int *replace)
{
    char root[128] = "";
    if (a->ndrives && a->drives[0].root) {
        const struct api_drive *d = &a->drives[0];
        if (d->partuuid)
            snprintf(root, sizeof(root), "root=PARTUUID=%s %s", d->partuuid, d->ro ? "ro" : "rw");
        else
            snprintf(root, sizeof(root), "root=/dev/vda %s", d->ro ? "ro" : "rw");
    }
    *replace = a->boot_args != NULL;
    const char *args = a->boot_args ? a->boot_args : "";
    size_t n = strlen(args) + strlen(root) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", args, *args && *root ? " " : "", root);
    return s;
}

int api_start(struct api *a, char *err, size_t errlen)
{
    if (a->started) {
        snprintf(err, errlen, "%s", MSG_POST_BOOT);
        return -EALREADY;
    }
    if (!a->kernel) {
        snprintf(err, errlen, "Cannot start microvm without kernel configuration.");
        return -EINVAL;
    }
    arcvm *vm = a->vm;
    int replace = 0;
    char *cl = api_kernel_cmdline(a, &replace);
    int r = cl ? 0 : -ENOMEM;
    if (!r)
        r = arcvm_set_kernel(vm, a->kernel);
    if (!r && a->initrd)
        r = arcvm_set_initrd(vm, a->initrd);
    if (!r && (replace || *cl))
        r = arcvm_set_cmdline(vm, cl, replace);
    if (!r)
        r = arcvm_set_vcpus(vm, a->vcpus);
    if (!r)
        r = arcvm_set_memory(vm, a->mem_mib << 20);
    if (!r)
        r = arcvm_set_console(vm,
                              a->opt.console_in < 0 && a->opt.console_out < 0
                                  ? ARCVM_CONSOLE_NONE
                                  : ARCVM_CONSOLE_SERIAL,
                              a->opt.console_in, a->opt.console_out);
    for (unsigned i = 0; !r && i < a->ndrives; i++) {
        char serial[API_SERIAL_MAX + 1];
        snprintf(serial, sizeof(serial), "%s", a->drives[i].id);
        r = arcvm_add_disk(vm, a->drives[i].path, a->drives[i].ro, serial);
    }
    for (unsigned i = 0; !r && i < a->nnets; i++) {
        /* The fields were checked when set: no ',' can reach the spec. */
        char spec[160];
        const struct api_net *n = &a->nets[i];
        snprintf(spec, sizeof(spec), "tap=%s%s%s,id=%s", n->tap, n->mac ? ",mac=" : "",
                 n->mac ? n->mac : "", n->id);
        r = arcvm_add_net(vm, spec);
    }
    if (!r)
        r = arcvm_set_rng(vm, a->entropy);
    if (!r && a->vsock.set)
        r = arcvm_set_vsock(vm, a->vsock.cid, a->vsock.uds_path);
    if (!r && a->balloon.set)
        r = arcvm_set_balloon(vm, a->balloon.amount_mib, a->balloon.deflate_on_oom,
                              a->balloon.stats_s, a->balloon.reporting);
    if (!r)
        r = arcvm_set_boot_timer(vm, a->opt.boot_timer);
    if (!r && a->hv_device)
        r = arcvm_set_hypervisor_device(vm, a->hv_device);
    if (!r && a->opt.no_kvm_check)
        r = arcvm_set_kvm_check(vm, 0);
    free(cl);
    if (r < 0) {
        snprintf(err, errlen, "Cannot start microvm: %s",
                 r == -ENOMEM ? "out of memory" : arcvm_last_error(vm));
    } else if ((r = a->ops->start(a->opt.vm_ops_ctx, vm)) < 0) {
        snprintf(err, errlen, "Cannot start microvm: %s",
                 a->ops->last_error(a->opt.vm_ops_ctx, vm));
    }
    if (r < 0) {
        /* The handle took settings it cannot drop (disks): start over with
         * a fresh one so a corrected configuration can be started. */
        arcvm *fresh;
        if (arcvm_create(&fresh) == 0) {
            arcvm_destroy(vm);
            a->vm = fresh;
        }
        return r;
    }
    a->started = true;
    api_log(a, 2, "the microVM started: %u vCPUs, %llu MiB, %u drives", a->vcpus,
            (unsigned long long)a->mem_mib, a->ndrives);
    if (a->opt.vm_started)
        a->opt.vm_started(a->opt.vm_started_arg);
    return 0;
}

/* ---- logger and metrics --------------------------------------------- */

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
    char *p = dup_or_null(path), *m = dup_or_null(l->module ? l->module : a->log_module);
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

/* ---- JSON views of the configuration ----------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *machine_json(struct api *a)
{
    return json_pack("{s:I,s:I,s:b,s:b,s:s}", "vcpu_count", (json_int_t)a->vcpus, "mem_size_mib",
                     (json_int_t)a->mem_mib, "smt", 0, "track_dirty_pages", 0, "huge_pages",
                     "None");
}

static const char *const cache_names[] = {"Unsafe", "Writeback"};
static const char *const engine_names[] = {"Sync", "Async"};

static json_t *drive_json(const struct api_drive *d)
{
    return json_pack("{s:s,s:o,s:b,s:s,s:b,s:s,s:n,s:s,s:n}", "drive_id", d->id, "partuuid",
                     str_or_null(d->partuuid), "is_root_device", d->root, "cache_type",
                     cache_names[d->cache], "is_read_only", d->ro, "path_on_host", d->path,
                     "rate_limiter", "io_engine", engine_names[d->engine], "socket");
}

static json_t *balloon_json(const struct api *a);
static json_t *vsock_json(const struct api *a);

static json_t *net_json(const struct api_net *n)
{
    return json_pack("{s:s,s:s,s:o,s:n,s:n}", "iface_id", n->id, "host_dev_name", n->tap,
                     "guest_mac", str_or_null(n->mac), "rx_rate_limiter", "tx_rate_limiter");
}

static json_t *vm_config_json(struct api *a)
{
    json_t *drives = json_array();
    for (unsigned i = 0; drives && i < a->ndrives; i++)
        json_array_append_new(drives, drive_json(&a->drives[i]));
    json_t *nets = json_array();
    for (unsigned i = 0; nets && i < a->nnets; i++)
        json_array_append_new(nets, net_json(&a->nets[i]));
    json_t *boot = a->kernel
                       ? json_pack("{s:s,s:o,s:o}", "kernel_image_path", a->kernel, "initrd_path",
                                   str_or_null(a->initrd), "boot_args", str_or_null(a->boot_args))
                       : json_null();
    json_t *logger =
        a->logger_set
            ? json_pack("{s:o,s:s,s:b,s:b,s:o}", "log_path", str_or_null(a->log_path), "level",
                        level_names[a->log_level + 1], "show_level", a->show_level,
                        "show_log_origin", a->show_origin, "module", str_or_null(a->log_module))
            : json_null();
    json_t *metrics =
        a->metrics_path ? json_pack("{s:s}", "metrics_path", a->metrics_path) : json_null();
    json_t *entropy = a->entropy ? json_pack("{s:n}", "rate_limiter") : json_null();
    json_t *balloon = a->balloon.set ? balloon_json(a) : json_null();
    json_t *vsock = a->vsock.set ? vsock_json(a) : json_null();
    return json_pack("{s:o,s:o,s:o,s:n,s:o,s:o,s:o,s:n,s:o,s:o,s:o}", "balloon", balloon,
                     "drives", drives, "boot-source", boot, "cpu-config", "logger", logger,
                     "machine-config", machine_json(a), "metrics", metrics, "mmds-config",
                     "network-interfaces", nets, "vsock", vsock, "entropy", entropy);
}

/* ---- endpoints --------------------------------------------------------- */

typedef void api_fn(struct api *a, const char *id, json_t *body, struct api_reply *r);

static void get_instance(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id, (void)b;
    /* Firecracker's state stays "Running" from InstanceStart until the
     * process exits, whatever the guest does; so does ours. */
    const char *state = "Not started";
    if (a->started)
        state = a->ops->get_state(a->opt.vm_ops_ctx, a->vm) == ARCVM_STATE_PAUSED ? "Paused"
                                                                                  : "Running";
    reply_json(r, 200,
               json_pack("{s:s,s:s,s:s,s:s}", "id", a->id, "state", state, "vmm_version",
                         arcvm_version(), "app_name", "arcvm"));
}

static void get_version(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)a, (void)id, (void)b;
    reply_json(r, 200, json_pack("{s:s}", "firecracker_version", arcvm_version()));
}

static void get_machine_config(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id, (void)b;
    reply_json(r, 200, machine_json(a));
}

static void get_vm_config(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id, (void)b;
    reply_json(r, 200, vm_config_json(a));
}

/* Most vCPUs GET /vcpus reports; KVM's own limit is about this size. */
#define API_MAX_VCPUS 1024

int api_vcpu_info(struct api *a, struct arcvm_vcpu_info *out, unsigned max)
{
    if (!a->started || a->exited || !a->ops->get_vcpu_info)
        return -EINVAL;
    return a->ops->get_vcpu_info(a->opt.vm_ops_ctx, a->vm, out, max);
}

/* arcvm's own: what each vCPU is doing, for telling a hung guest from a
 * hung host (see arcvm_get_vcpu_info()). */
static void get_vcpus(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id, (void)b;
    struct arcvm_vcpu_info *v = calloc(API_MAX_VCPUS, sizeof(*v));
    if (!v) {
        fault(a, r, 500, "Out of memory.");
        return;
    }
    int n = api_vcpu_info(a, v, API_MAX_VCPUS);
    if (n < 0) {
        fault(a, r, 400, "The microVM is not running: vCPUs report only after InstanceStart.");
        free(v);
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n && arr; i++) {
        json_t *o = json_pack("{s:i,s:s,s:I,s:b,s:I,s:I,s:I}", "id", (json_int_t)v[i].id, "state",
                              arcvm_vcpu_where_name(v[i].where), "state_ms",
                              (json_int_t)v[i].where_ms, "answered", v[i].answered, "exits",
                              (json_int_t)v[i].exits, "kicks", (json_int_t)v[i].kicks,
                              "interrupted_runs", (json_int_t)v[i].intr_exits);
        if (o) {
            json_object_set_new(o, "last_exit", json_string(v[i].last_exit));
            /* A 64-bit address does not fit JSON's safe integers: hex. */
            char pc[24];
            snprintf(pc, sizeof(pc), "0x%" PRIx64, v[i].pc);
            json_object_set_new(o, "pc", v[i].pc_valid ? json_string(pc) : json_null());
        }
        json_array_append_new(arr, o);
    }
    free(v);
    reply_json(r, 200, json_pack("{s:o}", "vcpus", arr));
}

static void machine_config(struct api *a, json_t *b, struct api_reply *r, bool patch)
{
    static const struct api_json_field f[] = {
        {"vcpu_count", API_JSON_UINT, true, UINT32_MAX},
        {"mem_size_mib", API_JSON_UINT, true, API_MEM_MIB_MAX},
        {"smt", API_JSON_BOOL, false, 0},
        {"track_dirty_pages", API_JSON_BOOL, false, 0},
        {"cpu_template", API_JSON_STRING, false, 0},
        {"huge_pages", API_JSON_STRING, false, 0},
    };
    if (!check(a, r, b, f, sizeof(f) / sizeof(f[0]), patch, "machine-config"))
        return;
    if (patch && !json_object_size(b)) {
        fault(a, r, 400, "Empty PATCH request.");
        return;
    }
    static const char *const templates[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A", "V1N1"};
    static const char *const huge[] = {"None", "2M", "Transparent"};
    const char *tmpl = api_json_str(b, "cpu_template"), *hp = api_json_str(b, "huge_pages");
    int t = variant(tmpl, templates, 7), h = variant(hp, huge, 3);
    if (tmpl && t < 0) {
        fault(a, r, 400,
              "cpu_template '%s' is not a CPU template: choose C3, T2, T2S, T2CL, T2A, V1N1 or "
              "None.",
              tmpl);
        return;
    }
    if (hp && h < 0) {
        fault(a, r, 400, "huge_pages '%s' is not valid: choose None, 2M or Transparent.", hp);
        return;
    }
    if (!pre_boot(a, r))
        return;
    unsigned vcpus = (unsigned)api_json_uint(b, "vcpu_count", a->vcpus);
    uint64_t mem = api_json_uint(b, "mem_size_mib", a->mem_mib);
    if (vcpus == 0 || vcpus > FC_MAX_VCPUS) {
        fault(a, r, 400, "The number of vCPUs must be between 1 and %d.", FC_MAX_VCPUS);
        return;
    }
    if (api_json_bool(b, "smt", false)) {
        fault(a, r, 400,
              "smt (simultaneous multithreading) is not supported by arcvm: it gives the guest "
              "single-thread cores.");
        return;
    }
    if (api_json_bool(b, "track_dirty_pages", false)) {
        fault(a, r, 400, "track_dirty_pages is not supported by arcvm yet: it has no snapshots.");
        return;
    }
    if (t > 0) {
        fault(a, r, 400,
              "cpu_template '%s' is not supported by arcvm: the guest sees the host's CPU "
              "features as KVM offers them.",
              tmpl);
        return;
    }
    if (h > 0) {
        fault(a, r, 400,
              "huge_pages '%s' is not supported by arcvm yet: guest memory uses 4 KiB pages.", hp);
        return;
    }
    if (mem == 0) {
        fault(a, r, 400, "The memory size (MiB) must not be 0.");
        return;
    }
    /* The library's own limits (e.g. its minimum size), in its words. */
    if (arcvm_set_memory(a->vm, mem << 20) < 0 || arcvm_set_vcpus(a->vm, vcpus) < 0) {
        fault(a, r, 400, "%s", arcvm_last_error(a->vm));
        return;
    }
    a->vcpus = vcpus;
    a->mem_mib = mem;
    ok(r);
}

static void put_machine_config(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    machine_config(a, b, r, false);
}

static void patch_machine_config(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    machine_config(a, b, r, true);
}

/* A file the VM will open, checked now so the error comes with the request. */
static int can_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

static void put_boot_source(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {
        {"kernel_image_path", API_JSON_STRING, true, 0},
        {"boot_args", API_JSON_STRING, false, 0},
        {"initrd_path", API_JSON_STRING, false, 0},
    };
    if (!check(a, r, b, f, 3, false, "boot-source") || !pre_boot(a, r))
        return;
    const char *kernel = api_json_str(b, "kernel_image_path");
    const char *initrd = api_json_str(b, "initrd_path"), *args = api_json_str(b, "boot_args");
    int e = can_open(kernel, O_RDONLY);
    if (e < 0) {
        fault(a, r, 400, "The kernel file cannot be opened: %s (%s)", strerror(-e), kernel);
        return;
    }
    if (initrd && (e = can_open(initrd, O_RDONLY)) < 0) {
        fault(a, r, 400, "The initrd file cannot be opened: %s (%s)", strerror(-e), initrd);
        return;
    }
    char *k = strdup(kernel), *i = dup_or_null(initrd), *g = dup_or_null(args);
    if (!k || (initrd && !i) || (args && !g)) {
        free(k), free(i), free(g);
        fault(a, r, 500, "out of memory");
        return;
    }
    free(a->kernel), free(a->initrd), free(a->boot_args);
    a->kernel = k, a->initrd = i, a->boot_args = g;
    ok(r);
}

static int find_drive(struct api *a, const char *id)
{
    for (unsigned i = 0; i < a->ndrives; i++)
        if (!strcmp(a->drives[i].id, id))
            return (int)i;
    return -1;
}

/* A PARTUUID goes onto the kernel command line: hex digits and dashes only
 * (GPT UUIDs and MBR "SSSSSSSS-PP" forms), so it cannot add arguments; 64
 * characters is well above a UUID's 36. */
static bool partuuid_valid(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

static void put_drive(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    static const struct api_json_field f[] = {
        {"drive_id", API_JSON_STRING, true, 0},     {"path_on_host", API_JSON_STRING, false, 0},
        {"is_root_device", API_JSON_BOOL, true, 0}, {"is_read_only", API_JSON_BOOL, false, 0},
        {"partuuid", API_JSON_STRING, false, 0},    {"cache_type", API_JSON_STRING, false, 0},
        {"io_engine", API_JSON_STRING, false, 0},   {"rate_limiter", API_JSON_OBJECT, false, 0},
        {"socket", API_JSON_STRING, false, 0},
    };
    if (!check(a, r, b, f, sizeof(f) / sizeof(f[0]), false, "drive") ||
        !check_rl(a, r, b, "rate_limiter") || !id_match(a, r, id, api_json_str(b, "drive_id")))
        return;
    const char *cache = api_json_str(b, "cache_type"), *engine = api_json_str(b, "io_engine");
    int c = cache ? variant(cache, cache_names, 2) : CACHE_UNSAFE;
    int e = engine ? variant(engine, engine_names, 2) : IO_SYNC;
    if (c < 0) {
        fault(a, r, 400, "cache_type '%s' is not valid: choose Unsafe or Writeback.", cache);
        return;
    }
    if (e < 0) {
        fault(a, r, 400, "io_engine '%s' is not valid: choose Sync or Async.", engine);
        return;
    }
    if (!pre_boot(a, r))
        return;
    if (api_json_has(b, "rate_limiter")) {
        fault(a, r, 400, "Drive '%s': rate_limiter is not supported by arcvm yet.", id);
        return;
    }
    if (api_json_has(b, "socket")) {
        fault(a, r, 400,
              "Drive '%s': vhost-user block devices (socket) are not supported by arcvm.", id);
        return;
    }
    const char *path = api_json_str(b, "path_on_host");
    const char *partuuid = api_json_str(b, "partuuid");
    bool root = api_json_bool(b, "is_root_device", false);
    bool ro = api_json_bool(b, "is_read_only", false);
    if (!path) {
        fault(a, r, 400, "Drive '%s': path_on_host is required for a virtio-block drive.", id);
        return;
    }
    if (strchr(path, ',')) {
        fault(a, r, 400, "Drive '%s': arcvm cannot use a path_on_host that contains ','.", id);
        return;
    }
    if (partuuid && !partuuid_valid(partuuid)) {
        fault(a, r, 400, "Drive '%s': partuuid '%s' is not a partition UUID.", id, partuuid);
        return;
    }
    int pos = find_drive(a, id);
    if (root && a->ndrives && a->drives[0].root && pos != 0) {
        fault(a, r, 400, "A root block device already exists!");
        return;
    }
    if (pos < 0 && a->ndrives == API_MAX_DRIVES) {
        fault(a, r, 400, "Drive '%s': arcvm supports at most %d drives.", id, API_MAX_DRIVES);
        return;
    }
    int err = can_open(path, ro ? O_RDONLY : O_RDWR);
    if (err < 0) {
        fault(a, r, 400, "Cannot open block device. Invalid permission/path: %s (%s)",
              strerror(-err), path);
        return;
    }
    struct api_drive d = {.id = strdup(id),
                          .path = strdup(path),
                          .partuuid = dup_or_null(partuuid),
                          .root = root,
                          .ro = ro,
                          .cache = (enum cache_type)c,
                          .engine = (enum io_engine)e};
    if (!d.id || !d.path || (partuuid && !d.partuuid)) {
        drive_release(&d);
        fault(a, r, 500, "out of memory");
        return;
    }
    /* Firecracker's order: a new root drive goes first, others last; an
     * updated drive keeps its place, except that a drive becoming root
     * swaps places with the first. */
    if (pos >= 0) {
        drive_release(&a->drives[pos]);
        a->drives[pos] = d;
        if (root && pos != 0) {
            struct api_drive t = a->drives[0];
            a->drives[0] = a->drives[pos];
            a->drives[pos] = t;
        }
    } else if (root) {
        memmove(&a->drives[1], &a->drives[0], a->ndrives * sizeof(a->drives[0]));
        a->drives[0] = d;
        a->ndrives++;
    } else {
        a->drives[a->ndrives++] = d;
    }
    ok(r);
}

static void patch_drive(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    static const struct api_json_field f[] = {
        {"drive_id", API_JSON_STRING, true, 0},
        {"path_on_host", API_JSON_STRING, false, 0},
        {"rate_limiter", API_JSON_OBJECT, false, 0},
    };
    if (!check(a, r, b, f, 3, false, "drive") || !check_rl(a, r, b, "rate_limiter") ||
        !id_match(a, r, id, api_json_str(b, "drive_id")) || !post_boot(a, r))
        return;
    if (find_drive(a, id) < 0) {
        fault(a, r, 400, "No drive with id '%s'.", id);
        return;
    }
    fault(a, r, 400,
          "Drive '%s': updating a drive after boot (path_on_host, rate_limiter) is not supported "
          "by arcvm yet.",
          id);
}

/* Firecracker's MAC form: six two-digit hex bytes separated by ':', 17
 * characters in all. */
static bool mac_valid(const char *s)
{
    if (strlen(s) != 17)
        return false;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int find_net(const struct api *a, const char *id)
{
    for (unsigned i = 0; i < a->nnets; i++)
        if (!strcmp(a->nets[i].id, id))
            return (int)i;
    return -1;
}

/* A Linux interface name: 1-15 characters, none of '/', ':', ',' or
 * white space (',' would also break arcvm's own option syntax). */
static bool ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (!n || n >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (; *s; s++)
        if (*s == '/' || *s == ':' || *s == ',' || *s == '=' || isspace((unsigned char)*s) ||
            !isprint((unsigned char)*s))
            return false;
    return true;
}

static void put_net(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    static const struct api_json_field f[] = {
        {"iface_id", API_JSON_STRING, true, 0},
        {"host_dev_name", API_JSON_STRING, true, 0},
        {"guest_mac", API_JSON_STRING, false, 0},
        {"rx_rate_limiter", API_JSON_OBJECT, false, 0},
        {"tx_rate_limiter", API_JSON_OBJECT, false, 0},
    };
    if (!check(a, r, b, f, sizeof(f) / sizeof(f[0]), false, "network interface") ||
        !check_rl(a, r, b, "rx_rate_limiter") || !check_rl(a, r, b, "tx_rate_limiter") ||
        !id_match(a, r, id, api_json_str(b, "iface_id")))
        return;
    const char *mac = api_json_str(b, "guest_mac");
    const char *tap = api_json_str(b, "host_dev_name");
    if (mac && !mac_valid(mac)) {
        fault(a, r, 400, "guest_mac '%s' is not a MAC address (xx:xx:xx:xx:xx:xx).", mac);
        return;
    }
    if (mac && (strtoul(mac, NULL, 16) & 1)) {
        fault(a, r, 400, "guest_mac '%s' is a multicast address: a NIC needs a unicast one.", mac);
        return;
    }
    if (!ifname_valid(tap)) {
        fault(a, r, 400,
              "host_dev_name '%s' is not a network interface name (1 to 15 characters, no "
              "'/', ':', ',', '=' or spaces).",
              tap);
        return;
    }
    if (!pre_boot(a, r))
        return;
    if (api_json_has(b, "rx_rate_limiter") || api_json_has(b, "tx_rate_limiter")) {
        fault(a, r, 400, "Network interface '%s': rate limiters are not supported by arcvm yet.",
              id);
        return;
    }
    int pos = find_net(a, id);
    for (unsigned i = 0; i < a->nnets; i++) {
        if ((int)i == pos)
            continue;
        if (!strcmp(a->nets[i].tap, tap)) {
            fault(a, r, 400, "The host device name %s is already in use by interface '%s'.", tap,
                  a->nets[i].id);
            return;
        }
        if (mac && a->nets[i].mac && !strcasecmp(a->nets[i].mac, mac)) {
            fault(a, r, 400, "The guest MAC address %s is already in use by interface '%s'.", mac,
                  a->nets[i].id);
            return;
        }
    }
    if (pos < 0 && a->nnets == API_MAX_NETS) {
        fault(a, r, 400, "Network interface '%s': arcvm supports at most %d interfaces.", id,
              API_MAX_NETS);
        return;
    }
    struct api_net n = {.id = strdup(id), .tap = strdup(tap), .mac = dup_or_null(mac)};
    if (!n.id || !n.tap || (mac && !n.mac)) {
        net_release(&n);
        fault(a, r, 500, "out of memory");
        return;
    }
    if (pos >= 0) {
        net_release(&a->nets[pos]);
        a->nets[pos] = n;
    } else {
        a->nets[a->nnets++] = n;
    }
    ok(r);
}

static void patch_net(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    static const struct api_json_field f[] = {
        {"iface_id", API_JSON_STRING, true, 0},
        {"rx_rate_limiter", API_JSON_OBJECT, false, 0},
        {"tx_rate_limiter", API_JSON_OBJECT, false, 0},
    };
    if (!check(a, r, b, f, 3, false, "network interface") ||
        !check_rl(a, r, b, "rx_rate_limiter") || !check_rl(a, r, b, "tx_rate_limiter") ||
        !id_match(a, r, id, api_json_str(b, "iface_id")) || !post_boot(a, r))
        return;
    if (find_net(a, id) < 0) {
        fault(a, r, 400, "No network interface with id '%s'.", id);
        return;
    }
    fault(a, r, 400,
          "Network interface '%s': rate limiters (the only setting PATCH changes) are not "
          "supported by arcvm yet.",
          id);
}

static void put_vsock(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {
        {"guest_cid", API_JSON_UINT, true, UINT32_MAX},
        {"uds_path", API_JSON_STRING, true, 0},
        {"vsock_id", API_JSON_STRING, false, 0},
    };
    if (!check(a, r, b, f, 3, false, "vsock"))
        return;
    if (api_json_uint(b, "guest_cid", 0) < FC_VSOCK_CID_MIN) {
        fault(a, r, 400, "guest_cid must be %d or more (0 to 2 are reserved).", FC_VSOCK_CID_MIN);
        return;
    }
    if (!pre_boot(a, r))
        return;
    const char *uds = api_json_str(b, "uds_path");
    if (!uds || !*uds || strchr(uds, ',')) {
        fault(a, r, 400, "uds_path must be a non-empty path without commas.");
        return;
    }
    char *copy = strdup(uds);
    if (!copy) {
        fault(a, r, 500, "out of memory");
        return;
    }
    free(a->vsock.uds_path);
    a->vsock.uds_path = copy;
    a->vsock.cid = (uint32_t)api_json_uint(b, "guest_cid", 0);
    a->vsock.set = true;
    ok(r);
}

static json_t *vsock_json(const struct api *a)
{
    return json_pack("{s:i,s:s}", "guest_cid", (json_int_t)a->vsock.cid, "uds_path",
                     a->vsock.uds_path);
}

static void put_balloon(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {
        {"amount_mib", API_JSON_UINT, true, UINT32_MAX},
        {"deflate_on_oom", API_JSON_BOOL, true, 0},
        {"stats_polling_interval_s", API_JSON_UINT, false, UINT16_MAX},
        {"free_page_hinting", API_JSON_BOOL, false, 0},
        {"free_page_reporting", API_JSON_BOOL, false, 0},
    };
    if (!check(a, r, b, f, sizeof(f) / sizeof(f[0]), false, "balloon") || !pre_boot(a, r))
        return;
    if (api_json_bool(b, "free_page_hinting", false)) {
        fault(a, r, 400, "Balloon free_page_hinting is not supported by arcvm.");
        return;
    }
    a->balloon = (struct api_balloon){
        .set = true,
        .amount_mib = (uint32_t)api_json_uint(b, "amount_mib", 0),
        .deflate_on_oom = api_json_bool(b, "deflate_on_oom", false),
        .stats_s = (unsigned)api_json_uint(b, "stats_polling_interval_s", 0),
        .reporting = api_json_bool(b, "free_page_reporting", false),
    };
    ok(r);
}

/* Before boot the configuration changes; after boot the device does. */
static void patch_balloon(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {{"amount_mib", API_JSON_UINT, true, UINT32_MAX}};
    if (!check(a, r, b, f, 1, false, "balloon update"))
        return;
    uint32_t mib = (uint32_t)api_json_uint(b, "amount_mib", 0);
    if (!a->balloon.set) {
        fault(a, r, 400, "No balloon device is configured: PUT /balloon first.");
    } else if (!a->started) {
        a->balloon.amount_mib = mib;
        ok(r);
    } else if (arcvm_balloon_set_target(a->vm, mib) < 0) {
        fault(a, r, 400, "Cannot update the balloon: %s", arcvm_last_error(a->vm));
    } else {
        a->balloon.amount_mib = mib;
        ok(r);
    }
}

static void patch_balloon_stats(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {
        {"stats_polling_interval_s", API_JSON_UINT, true, UINT16_MAX}};
    if (!check(a, r, b, f, 1, false, "balloon statistics update"))
        return;
    unsigned secs = (unsigned)api_json_uint(b, "stats_polling_interval_s", 0);
    if (!a->balloon.set) {
        fault(a, r, 400, "No balloon device is configured: PUT /balloon first.");
    } else if (!a->started) {
        a->balloon.stats_s = secs;
        ok(r);
    } else if (arcvm_balloon_set_stats_interval(a->vm, secs) < 0) {
        fault(a, r, 400, "Cannot update balloon statistics: %s", arcvm_last_error(a->vm));
    } else {
        a->balloon.stats_s = secs;
        ok(r);
    }
}

static json_t *balloon_json(const struct api *a)
{
    return json_pack("{s:i,s:b,s:i,s:b}", "amount_mib", (json_int_t)a->balloon.amount_mib,
                     "deflate_on_oom", a->balloon.deflate_on_oom, "stats_polling_interval_s",
                     (json_int_t)a->balloon.stats_s, "free_page_reporting",
                     a->balloon.reporting);
}

static void get_balloon(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id, (void)b;
    if (!a->balloon.set)
        fault(a, r, 400, "No balloon device is configured.");
    else
        reply_json(r, 200, balloon_json(a));
}

static void get_balloon_stats(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id, (void)b;
    if (!a->balloon.set) {
        fault(a, r, 400, "No balloon device is configured.");
        return;
    }
    struct arcvm_balloon info;
    if (!a->started || arcvm_balloon_get(a->vm, &info) < 0 || !info.stats_enabled) {
        fault(a, r, 400, "Balloon statistics are not enabled%s.",
              a->started ? "" : " (the microVM has not started)");
        return;
    }
    json_t *o = json_pack("{s:i,s:i,s:i,s:i}", "target_pages",
                          (json_int_t)info.target_mib * 256, "actual_pages",
                          (json_int_t)info.actual_mib * 256, "target_mib",
                          (json_int_t)info.target_mib, "actual_mib", (json_int_t)info.actual_mib);
    for (unsigned t = 0; o && t < ARCVM_BALLOON_NSTATS; t++) {
        const char *name = arcvm_balloon_stat_name(t);
        if (name && (info.stats_valid & (1u << t)))
            json_object_set_new(o, name, json_integer((json_int_t)info.stats[t]));
    }
    reply_json(r, 200, o);
}

static void put_entropy(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {{"rate_limiter", API_JSON_OBJECT, false, 0}};
    if (!check(a, r, b, f, 1, false, "entropy") || !check_rl(a, r, b, "rate_limiter") ||
        !pre_boot(a, r))
        return;
    if (api_json_has(b, "rate_limiter")) {
        fault(a, r, 400, "The entropy device's rate_limiter is not supported by arcvm yet.");
        return;
    }
    a->entropy = true;
    ok(r);
}

static void put_logger(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {
        {"log_path", API_JSON_STRING, false, 0}, {"level", API_JSON_STRING, false, 0},
        {"show_level", API_JSON_BOOL, false, 0}, {"show_log_origin", API_JSON_BOOL, false, 0},
        {"module", API_JSON_STRING, false, 0},
    };
    if (!check(a, r, b, f, sizeof(f) / sizeof(f[0]), false, "logger") || !pre_boot(a, r))
        return;
    struct api_logger l = {
        .log_path = api_json_str(b, "log_path"),
        .level = api_json_str(b, "level"),
        .show_level = api_json_bool(b, "show_level", false),
        .show_log_origin = api_json_bool(b, "show_log_origin", false),
        .module = api_json_str(b, "module"),
    };
    char err[512];
    if (api_set_logger(a, &l, err, sizeof(err)) < 0) {
        fault(a, r, 400, "%s", err);
        return;
    }
    ok(r);
}

static void put_metrics(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {{"metrics_path", API_JSON_STRING, true, 0}};
    if (!check(a, r, b, f, 1, false, "metrics") || !pre_boot(a, r))
        return;
    char err[512];
    if (api_set_metrics(a, api_json_str(b, "metrics_path"), err, sizeof(err)) < 0) {
        fault(a, r, 400, "%s", err);
        return;
    }
    ok(r);
}

static void put_actions(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {{"action_type", API_JSON_STRING, true, 0}};
    if (!check(a, r, b, f, 1, false, "action"))
        return;
    static const char *const actions[] = {"InstanceStart", "SendCtrlAltDel", "FlushMetrics"};
    const char *type = api_json_str(b, "action_type");
    char err[512];
    switch (variant(type, actions, 3)) {
    case 0:
        if (!pre_boot(a, r))
            return;
        if (api_start(a, err, sizeof(err)) < 0) {
            fault(a, r, 400, "%s", err);
            return;
        }
        break;
    case 1:
        if (!post_boot(a, r))
            return;
        if (a->ops->send_ctrl_alt_del(a->opt.vm_ops_ctx, a->vm) < 0) {
            fault(a, r, 400, "%s", a->ops->last_error(a->opt.vm_ops_ctx, a->vm));
            return;
        }
        break;
    case 2: {
        int e = api_flush_metrics(a);
        if (e == -ENOENT) {
            fault(a, r, 400, "Metrics are not configured: PUT /metrics first.");
            return;
        }
        if (e < 0) {
            fault(a, r, 400, "Cannot write metrics: %s", strerror(-e));
            return;
        }
        break;
    }
    default:
        fault(a, r, 400,
              "action_type '%s' is not valid: choose InstanceStart, SendCtrlAltDel or "
              "FlushMetrics.",
              type);
        return;
    }
    ok(r);
}

static void patch_vm(struct api *a, const char *id, json_t *b, struct api_reply *r)
{
    (void)id;
    static const struct api_json_field f[] = {{"state", API_JSON_STRING, true, 0}};
    if (!check(a, r, b, f, 1, false, "vm"))
        return;
    static const char *const states[] = {"Paused", "Resumed"};
    const char *s = api_json_str(b, "state");
    int v = variant(s, states, 2);
    if (v < 0) {
        fault(a, r, 400, "state '%s' is not valid: choose Paused or Resumed.", s);
        return;
    }
    if (!post_boot(a, r))
        return;
    void *c = a->opt.vm_ops_ctx;
    if ((v == 0 ? a->ops->pause(c, a->vm) : a->ops->resume(c, a->vm)) < 0) {
        fault(a, r, 400, "%s", a->ops->last_error(c, a->vm));
        return;
    }
    ok(r);
}

/* ---- routing ----------------------------------------------------------- */

enum route_kind {
    R_PLAIN, /* /name */
    R_ID,    /* /name/{id} */
    R_SUB,   /* /name/sub */
};

struct route {
    const char *name, *sub;
    enum route_kind kind;
    api_fn *get, *put, *patch;
    enum api_ctr get_ctr, put_ctr, patch_ctr;
    const char *unsupported; /* answer "... not supported" for every method */
};

#define NONE API_CTR_NONE
/* Firecracker endpoints arcvm does not have at all: answered 400 with a
 * sentence rather than 404, since the path itself is right. */
#define UNSUPPORTED(n, s, k, what)                                                                 \
    {                                                                                              \
        n, s, k, NULL, NULL, NULL, NONE, NONE, NONE, what                                          \
    }

static const struct route routes[] = {
    {"", NULL, R_PLAIN, get_instance, NULL, NULL, API_CTR_GET_INSTANCE_INFO, NONE, NONE, NULL},
    {"version", NULL, R_PLAIN, get_version, NULL, NULL, API_CTR_GET_VMM_VERSION, NONE, NONE, NULL},
    {"machine-config", NULL, R_PLAIN, get_machine_config, put_machine_config, patch_machine_config,
     API_CTR_GET_MACHINE_CFG, API_CTR_PUT_MACHINE_CFG, API_CTR_PATCH_MACHINE_CFG, NULL},
    {"boot-source", NULL, R_PLAIN, NULL, put_boot_source, NULL, NONE, API_CTR_PUT_BOOT_SOURCE, NONE,
     NULL},
    {"drives", NULL, R_ID, NULL, put_drive, patch_drive, NONE, API_CTR_PUT_DRIVE,
     API_CTR_PATCH_DRIVE, NULL},
    {"network-interfaces", NULL, R_ID, NULL, put_net, patch_net, NONE, API_CTR_PUT_NETWORK,
     API_CTR_PATCH_NETWORK, NULL},
    {"vsock", NULL, R_PLAIN, NULL, put_vsock, NULL, NONE, API_CTR_PUT_VSOCK, NONE, NULL},
    {"balloon", NULL, R_PLAIN, get_balloon, put_balloon, patch_balloon, NONE, API_CTR_PUT_BALLOON,
     API_CTR_PATCH_BALLOON, NULL},
    {"balloon", "statistics", R_SUB, get_balloon_stats, NULL, patch_balloon_stats, NONE, NONE,
     API_CTR_PATCH_BALLOON, NULL},
    {"entropy", NULL, R_PLAIN, NULL, put_entropy, NULL, NONE, API_CTR_PUT_ENTROPY, NONE, NULL},
    {"logger", NULL, R_PLAIN, NULL, put_logger, NULL, NONE, API_CTR_PUT_LOGGER, NONE, NULL},
    {"metrics", NULL, R_PLAIN, NULL, put_metrics, NULL, NONE, API_CTR_PUT_METRICS, NONE, NULL},
    {"actions", NULL, R_PLAIN, NULL, put_actions, NULL, NONE, API_CTR_PUT_ACTIONS, NONE, NULL},
    {"vm", NULL, R_PLAIN, NULL, NULL, patch_vm, NONE, NONE, API_CTR_PATCH_VM, NULL},
    {"vm", "config", R_SUB, get_vm_config, NULL, NULL, API_CTR_GET_VM_CONFIG, NONE, NONE, NULL},
    {"vcpus", NULL, R_PLAIN, get_vcpus, NULL, NULL, NONE, NONE, NONE, NULL},
    UNSUPPORTED("cpu-config", NULL, R_PLAIN, "CPU templates (/cpu-config)"),
    UNSUPPORTED("mmds", NULL, R_PLAIN, "The microVM metadata service (/mmds)"),
    UNSUPPORTED("mmds", "config", R_SUB, "The microVM metadata service (/mmds/config)"),
    UNSUPPORTED("snapshot", "create", R_SUB, "Snapshots (/snapshot/create)"),
    UNSUPPORTED("snapshot", "load", R_SUB, "Snapshots (/snapshot/load)"),
    UNSUPPORTED("serial", NULL, R_PLAIN, "Serial output redirection (/serial)"),
    UNSUPPORTED("pmem", NULL, R_ID, "virtio-pmem devices (/pmem)"),
    UNSUPPORTED("hotplug", "memory", R_SUB, "Memory hotplug (/hotplug/memory)"),
};
#undef NONE

static const char *allow_header(api_fn *get, api_fn *put, api_fn *patch)
{
    static const char *const allow[8] = {"",      "GET",        "PUT",        "GET, PUT",
                                         "PATCH", "GET, PATCH", "PUT, PATCH", "GET, PUT, PATCH"};
    return allow[(get ? 1 : 0) | (put ? 2 : 0) | (patch ? 4 : 0)];
}

/* Split @path into at most 3 segments after the leading '/', ignoring one
 * trailing '/' (as Firecracker does). Returns the count, -1 if malformed. */
static int split(char *path, char *seg[3])
{
    if (path[0] != '/')
        return -1;
    size_t n = strlen(path);
    if (n > 1 && path[n - 1] == '/')
        path[--n] = 0;
    if (n == 1) {
        seg[0] = path + 1; /* "" */
        return 1;
    }
    int k = 0;
    for (char *p = path + 1;; k++) {
        if (k == 3)
            return -1;
        seg[k] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            return k + 1;
        *slash = 0;
        p = slash + 1;
    }
}

static void count(struct api *a, int ctr, bool failed, bool has_fails)
{
    if (ctr < 0) {
        a->ctr[API_CTR_OTHER]++;
        if (failed)
            a->ctr[API_CTR_OTHER_FAILS]++;
        return;
    }
    a->ctr[ctr]++;
    if (failed && has_fails)
        a->ctr[ctr + 1]++; /* each PUT/PATCH counter is followed by its _fails */
}

static void dispatch(struct api *a, const char *method, const char *path, const char *body,
                     size_t len, struct api_reply *r)
{
    char buf[API_PATH_MAX];
    char *seg[3];
    int nseg =
        strlen(path) < sizeof(buf) ? (snprintf(buf, sizeof(buf), "%s", path), split(buf, seg)) : -1;
    const struct route *rt = NULL;
    const char *id = NULL;
    bool known = false, empty_id = false;
    for (size_t i = 0; nseg > 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *c = &routes[i];
        if (strcmp(c->name, seg[0]))
            continue;
        known = true;
        if (nseg == 1 && c->kind == R_PLAIN)
            rt = c;
        else if (nseg == 1 && c->kind == R_ID && !rt)
            empty_id = true;
        else if (nseg == 2 && c->kind == R_SUB && !strcmp(c->sub, seg[1]))
            rt = c, id = NULL;
        else if (nseg == 2 && c->kind == R_ID && !rt)
            rt = c, id = seg[1];
        if (rt && rt->kind != R_ID)
            break;
    }
    if (!rt) {
        count(a, -1, true, false);
        if (known && empty_id)
            fault(a, r, 400, "The ID cannot be empty.");
        else
            fault(a, r, 404, "Invalid request method and/or path: %s %s.", method, path);
        return;
    }

    int m = !strcmp(method, "GET")     ? 0
            : !strcmp(method, "PUT")   ? 1
            : !strcmp(method, "PATCH") ? 2
                                       : -1;
    api_fn *fn = m == 0 ? rt->get : m == 1 ? rt->put : m == 2 ? rt->patch : NULL;
    int ctr = m == 0   ? (int)rt->get_ctr
              : m == 1 ? (int)rt->put_ctr
              : m == 2 ? (int)rt->patch_ctr
                       : -1;
    if (!fn && !(rt->unsupported && m >= 0)) {
        count(a, -1, true, false);
        r->allow = rt->unsupported ? "GET, PUT, PATCH" : allow_header(rt->get, rt->put, rt->patch);
        fault(a, r, 405, "Invalid request method and/or path: %s %s.", method, path);
        return;
    }
    /* Only PUT and PATCH counters have a matching _fails counter. */
    bool has_fails = m > 0;
    if (m == 0 && len) {
        fault(a, r, 400, "GET request cannot have a body.");
    } else if (m > 0 && !len) {
        fault(a, r, 400, "Empty %s request.", method);
    } else if (len > a->opt.max_body) {
        fault(a, r, 413, "The request body is too large: at most %zu bytes.", a->opt.max_body);
    } else if (id && !resource_id_valid(a, r, id)) {
        /* answered */
    } else {
        json_t *b = NULL;
        char err[512];
        if (m > 0 && !(b = api_json_parse(body, len, err, sizeof(err)))) {
            fault(a, r, 400, "An error occurred when deserializing the json body of a request: %s.",
                  err);
        } else if (rt->unsupported) {
            fault(a, r, 400, "%s is not supported by arcvm yet.", rt->unsupported);
        } else {
            fn(a, id, b, r);
        }
        json_decref(b);
    }
    count(a, ctr, r->status >= 400, has_fails);
}

void api_handle(struct api *a, const char *method, const char *path, const char *body, size_t len,
                struct api_reply *out)
{
    memset(out, 0, sizeof(*out));
    a->fault[0] = 0;
    dispatch(a, method ? method : "", path ? path : "/", body, len, out);
    if (out->status >= 400)
        api_log(a, 2, "%s %s: %d: %s", method, path, out->status, a->fault);
    else
        api_log(a, 3, "%s %s: %d", method, path, out->status);
}

void api_reply_release(struct api_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* ---- the configuration file ------------------------------------------ */

/* @fn on @v as if PUT; @id (NULL: none) is checked like a path id unless
 * the object lacks it, when @fn's schema check names the missing field. */
static int config_apply(struct api *a, const char *key, api_fn *fn, const char *id, bool check_id,
                        json_t *v, char *err, size_t errlen)
{
    struct api_reply r = {0};
    a->fault[0] = 0;
    if (!check_id || resource_id_valid(a, &r, id))
        fn(a, id, v, &r);
    int status = r.status;
    api_reply_release(&r);
    if (status >= 200 && status < 300)
        return 0;
    snprintf(err, errlen, "\"%s\": %s", key, a->fault[0] ? a->fault : "failed");
    return -EINVAL;
}

/* Each element of the array @v through @fn, with its id member as the id. */
static int config_array(struct api *a, const char *key, api_fn *fn, const char *id_key, json_t *v,
                        char *err, size_t errlen)
{
    if (!json_is_array(v)) {
        snprintf(err, errlen, "\"%s\" must be an array", key);
        return -EINVAL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *id = json_is_object(e) ? api_json_str(e, id_key) : NULL;
        int r = config_apply(a, key, fn, id ? id : "", id != NULL, e, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

int api_load_config(struct api *a, const char *json, size_t len, char *err, size_t errlen)
{
    static const struct {
        const char *key;
        api_fn *fn;
        const char *array_id; /* an array of objects identified by this member */
    } keys[] = {
        /* In this order: logging first, so the rest is logged. */
        {"logger", put_logger, NULL},
        {"metrics", put_metrics, NULL},
        {"machine-config", put_machine_config, NULL},
        {"boot-source", put_boot_source, NULL},
        {"drives", put_drive, "drive_id"},
        {"entropy", put_entropy, NULL},
        {"network-interfaces", put_net, "iface_id"},
        {"vsock", put_vsock, NULL},
        {"balloon", put_balloon, NULL},
    };
    static const char *const unsupported[] = {"cpu-config", "mmds-config", "pmem", "serial",
                                              "memory-hotplug"};
    char perr[256];
    json_t *root = api_json_parse(json, len, perr, sizeof(perr));
    if (!root) {
        snprintf(err, errlen, "the configuration is not valid JSON: %s", perr);
        return -EINVAL;
    }
    int r = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool found = false;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            found |= !strcmp(key, keys[i].key);
        for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
            if (!strcmp(key, unsupported[i]) && !json_is_null(v)) {
                snprintf(err, errlen, "\"%s\" is not supported by arcvm yet", key);
                r = -EINVAL;
                goto out;
            }
            found |= !strcmp(key, unsupported[i]);
        }
        if (!found) {
            snprintf(err, errlen,
                     "unknown key \"%s\" in the configuration (expected boot-source, drives, "
                     "machine-config, logger, metrics, entropy, network-interfaces, vsock or "
                     "balloon)",
                     key);
            r = -EINVAL;
            goto out;
        }
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !r; i++) {
        json_t *val = json_object_get(root, keys[i].key);
        if (!val || json_is_null(val))
            continue;
        r = keys[i].array_id
                ? config_array(a, keys[i].key, keys[i].fn, keys[i].array_id, val, err, errlen)
                : config_apply(a, keys[i].key, keys[i].fn, NULL, false, val, err, errlen);
    }
out:
    json_decref(root);
    return r;
}
