/* api.h - the Firecracker-compatible control plane, independent of any
 * transport: (method, path, body) in, (status, JSON body) out, turned into
 * calls on the public library (include/arcvm.h). The HTTP server
 * (api_http.h), the config file loader and the unit tests all drive it.
 *
 * Threading: one thread (the event loop's) calls everything here; the VM's
 * own threads never touch a struct api.
 */
#ifndef ARCVM_API_H
#define ARCVM_API_H

#include "arcvm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api;

/* Firecracker's default cap on a request body (its HTTP_MAX_PAYLOAD_SIZE,
 * also its --http-api-max-payload-size default). */
#define API_MAX_BODY_DEFAULT 51200

/* One response. @body (malloc'd, NUL-terminated JSON) is NULL when there is
 * none, e.g. 204. @allow lists the methods of the path for a 405. */
struct api_reply {
    int status;
    char *body;
    size_t len;
    const char *allow;
};

/* The calls the API makes on a started VM. Tests substitute fakes to check
 * the post-boot rules without KVM; NULL in api_options means arcvm's own. */
struct api_vm_ops {
    int (*start)(void *ctx, arcvm *vm);
    int (*pause)(void *ctx, arcvm *vm);
    int (*resume)(void *ctx, arcvm *vm);
    int (*stop)(void *ctx, arcvm *vm);
    int (*wait)(void *ctx, arcvm *vm, struct arcvm_exit *exit);
    int (*send_ctrl_alt_del)(void *ctx, arcvm *vm);
    int (*get_metrics)(void *ctx, arcvm *vm, struct arcvm_metrics *m);
    enum arcvm_state (*get_state)(void *ctx, arcvm *vm);
    int (*state_fd)(void *ctx, arcvm *vm);
    const char *(*last_error)(void *ctx, const arcvm *vm);
    int (*get_vcpu_info)(void *ctx, arcvm *vm, struct arcvm_vcpu_info *out, unsigned max);
    /* Snapshots; NULL: refused with 400. */
    int (*snapshot_create)(void *ctx, arcvm *vm, enum arcvm_snapshot_type type,
                           const char *state_path, const char *mem_path);
    int (*snapshot_load)(void *ctx, arcvm *vm, const struct arcvm_snapshot_load *p);
    int (*get_config)(void *ctx, arcvm *vm, struct arcvm_config *out);
    /* PATCH /drives/{id} rate_limiter; NULL: refused with 400. */
    int (*disk_rate_limiter)(void *ctx, arcvm *vm, const char *disk_id,
                             const struct arcvm_rate_limiter *rl);
    /* PATCH /drives/{id} path_on_host; NULL: refused with 400. */
    int (*disk_path)(void *ctx, arcvm *vm, const char *disk_id, const char *path);
    /* PATCH /pmem/{id} rate_limiter; NULL: refused with 400. */
    int (*pmem_rate_limiter)(void *ctx, arcvm *vm, const char *pmem_id,
                             const struct arcvm_rate_limiter *rl);
    /* PATCH /network-interfaces/{id}; NULL: refused with 400. */
    int (*net_rate_limiters)(void *ctx, arcvm *vm, const char *iface_id,
                             const struct arcvm_rate_limiter *rx,
                             const struct arcvm_rate_limiter *tx);
};

struct api_options {
    const char *instance_id;         /* GET / "id"; NULL: "anonymous-instance" */
    int console_in, console_out;     /* serial console fds (-1: none) */
    bool boot_timer;                 /* Firecracker's --boot-timer */
    const char *hv_device;           /* hypervisor node; NULL: the library's default */
    bool no_kvm_check;               /* start without asking whether KVM can run a stock
                                      * guest (arcvm_set_kvm_check()) */
    size_t max_body;                 /* request body cap; 0: API_MAX_BODY_DEFAULT */
    size_t mmds_size_limit;          /* the MMDS data store's limit; 0: max_body, as
                                      * Firecracker's --mmds-size-limit defaults */
    bool no_seccomp;                 /* Firecracker's --no-seccomp */
    const char *seccomp_filter;      /* --seccomp-filter FILE (kept by the caller) */
    const struct api_vm_ops *vm_ops; /* NULL: the real library */
    void *vm_ops_ctx;
    /* Called once the VM runs (InstanceStart succeeded), so the front end
     * can watch api_vm_fd() and put the terminal in raw mode. */
    void (*vm_started)(void *arg);
    void *vm_started_arg;
};

/* Install the seccomp filter for @kind (ARCVM_THREAD_API or _VMM) on the
 * calling thread, as the options say (arcvm_seccomp_thread()). -errno with
 * a sentence in @err. */
int api_sandbox(struct api *a, int kind, char *err, size_t errlen);

/* Check an instance id as Firecracker does: 1 to 64 characters, letters,
 * digits and '-'. */
bool api_instance_id_valid(const char *id);
/* Parse a Firecracker log level (Error, Warning, Info, Debug, Trace, Off; any
 * case) into 0..3 (arcvm's error..debug) or -1 for Off. -EINVAL if unknown. */
int api_log_level_parse(const char *s, int *level);

/* Create the control plane with Firecracker's defaults (1 vCPU, 128 MiB).
 * Nothing touches the hypervisor until InstanceStart. -errno with @err. */
int api_create(const struct api_options *o, struct api **out, char *err, size_t errlen);
/* Stop and free the VM if any, restore the process's log sink, close the
 * log and metrics files. NULL is allowed. */
void api_destroy(struct api *a);

/* Handle one request. @method is "GET", "PUT", "PATCH", ...; @path is the
 * request path without query ("/drives/rootfs"); @body may be NULL when @len
 * is 0. Fills @out (release it with api_reply_release()). Never blocks on the
 * guest: lifecycle calls return once the library has done them. */
void api_handle(struct api *a, const char *method, const char *path, const char *body, size_t len,
                struct api_reply *out);
/* Free what api_handle() put in @r. */
void api_reply_release(struct api_reply *r);

/* Replace the microVM metadata with the JSON object @json (@len bytes), as
 * PUT /mmds would (Firecracker's --metadata FILE). -EINVAL with a sentence
 * in @err. */
int api_mmds_load(struct api *a, const char *json, size_t len, char *err, size_t errlen);

/* Apply a Firecracker configuration file (the --config-file JSON: keys
 * "boot-source", "drives", "machine-config", ...), as the matching PUTs
 * would. Does not start the VM. -EINVAL with a sentence in @err. */
int api_load_config(struct api *a, const char *json, size_t len, char *err, size_t errlen);
/* InstanceStart: build and boot the configured VM. -errno with @err; after a
 * failure the configuration stays and a new start may be tried. */
int api_start(struct api *a, char *err, size_t errlen);

/* The kernel command line InstanceStart will pass (malloc'd; NULL when out
 * of memory), and in @replace whether it replaces arcvm's default command
 * line (boot_args given) or is appended to it. */
char *api_kernel_cmdline(const struct api *a, int *replace);

/* Logger settings as in PUT /logger; NULL fields keep their value. */
struct api_logger {
    const char *log_path;
    const char *level;
    bool show_level, show_log_origin;
    const char *module;
};
/* Configure logging (process-wide: the library's log sink and level).
 * -errno with @err (bad level, file that cannot be opened). */
int api_set_logger(struct api *a, const struct api_logger *l, char *err, size_t errlen);
/* Write metrics to @path (a file, created if needed, or a FIFO), once per
 * process as in Firecracker. -errno with @err. */
int api_set_metrics(struct api *a, const char *path, char *err, size_t errlen);
/* Write one metrics line now (FlushMetrics, the periodic timer). -ENOENT
 * when no metrics path is configured, -errno when the write fails. */
int api_flush_metrics(struct api *a);
/* Record how long the process took to serve its API (metrics
 * api_server.process_startup_time_us / _cpu_us). */
void api_set_startup_time(struct api *a, uint64_t wall_us, uint64_t cpu_us);

/* The VM's state-change fd to poll (arcvm_state_fd()), -1 before start. */
int api_vm_fd(struct api *a);
/* Call when api_vm_fd() is readable: returns true once the VM has stopped
 * (then api_exit() describes how). */
bool api_vm_event(struct api *a);
/* Ask a running or paused VM to stop: 0 when a stop is under way (wait for
 * api_vm_event()), -EINVAL when there is no VM to stop. */
int api_stop(struct api *a);
/* How the VM ended, NULL while it has not. */
const struct arcvm_exit *api_exit(const struct api *a);
/* True once InstanceStart succeeded. */
bool api_started(const struct api *a);
/* What each vCPU of the started VM is doing (arcvm_get_vcpu_info()); the
 * count, or -EINVAL before InstanceStart. GET /vcpus serves the same. */
int api_vcpu_info(struct api *a, struct arcvm_vcpu_info *out, unsigned max);

#endif
