/* api_internal.h - what the files of the API layer share and nothing outside
 * it sees: struct api (the pre-boot configuration and the VM behind it), the
 * one shape of an endpoint the route table dispatches to, and the helpers an
 * endpoint answers with. api.h is the public side.
 *
 * Adding an endpoint: one handler (and its schema when it takes a body) in
 * the file of its resource, declared below, and one row in the route table
 * (api.c). The dispatcher does the rest: schema, boot rule, counting.
 */
#ifndef ARCVM_API_INTERNAL_H
#define ARCVM_API_INTERNAL_H

#include "api/api.h"
#include "api/api_json.h"
#include "api/api_metrics.h"

/* arcvm_add_disk() takes at most 8 disks. */
#define API_MAX_DRIVES 8
/* NICs per VM: the core's limit (CONFIG_MAX_NETS). */
#define API_MAX_NETS 4
/* arcvm_add_share() takes at most 4 shared directories (CONFIG_MAX_SHARES),
 * each with a tag of at most 36 bytes (the virtio-fs config's tag field). */
#define API_MAX_SHARES    4
#define API_SHARE_TAG_MAX 36
/* Firecracker's instance id length limits (utils/validators.rs). */
#define FC_ID_MAX 64

/* Firecracker's fault for configuration requests after InstanceStart. */
extern const char API_MSG_POST_BOOT[];

enum api_cache_type { API_CACHE_UNSAFE, API_CACHE_WRITEBACK };
enum api_io_engine { API_IO_SYNC, API_IO_ASYNC };

struct api_drive {
    char *id, *path, *partuuid;
    bool root, ro;
    enum api_cache_type cache;
    enum api_io_engine engine;
    bool has_rl; /* rate_limiter given */
    struct arcvm_rate_limiter rl;
};

/* A virtio-pmem device (Firecracker's Pmem). */
#define API_MAX_PMEMS 4 /* the core's CONFIG_MAX_PMEMS */
struct api_pmem {
    char *id, *path;
    bool root, ro;
    struct arcvm_rate_limiter rl; /* zero: none */
};

/* A network interface: a TAP device on the host (Firecracker has no other
 * back end; arcvm's user-mode networking is for the CLI and library). */
struct api_net {
    char *id, *tap, *mac; /* mac: NULL for arcvm's default */
    struct arcvm_rate_limiter rx, tx; /* zero: none */
};

/* A host directory shared through virtio-fs (arcvm's /shared-dirs). */
struct api_share {
    char *tag, *path;
    bool ro;
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
    bool machine_set; /* PUT or PATCH seen: a snapshot load is refused then */
    bool track_dirty; /* track_dirty_pages: Diff snapshots possible */
    enum arcvm_huge_pages huge_pages; /* machine-config huge_pages */
    /* boot-source */
    char *kernel, *initrd, *boot_args;
    /* drives, in guest order: a root device first, as Firecracker does */
    struct api_drive drives[API_MAX_DRIVES];
    unsigned ndrives;
    struct api_net nets[API_MAX_NETS];
    unsigned nnets;
    /* pmem devices, in guest order (/dev/pmem0 first) */
    struct api_pmem pmems[API_MAX_PMEMS];
    unsigned npmems;
    struct api_share shares[API_MAX_SHARES];
    unsigned nshares;
    bool entropy;
    struct arcvm_rate_limiter entropy_rl; /* zero: none */
    struct api_vsock {
        bool set;
        uint32_t cid;
        char *uds_path;
    } vsock;
    /* mmds/config, applied at InstanceStart (api_mmds.c) */
    struct api_mmds {
        bool set;
        int version; /* 1 or 2 */
        uint32_t ipv4; /* host byte order */
        bool imds_compat;
        char *ifaces[API_MAX_NETS];
        unsigned nifaces;
    } mmds;
    struct api_balloon {
        bool set;
        uint32_t amount_mib;
        bool deflate_on_oom, reporting;
        unsigned stats_s;
        bool hinting; /* free_page_hinting: refused by snapshots, never restored */
    } balloon;
    struct api_memhp {
        bool set;
        uint32_t total_mib, block_mib, slot_mib;
        uint32_t requested_mib; /* the last PATCH */
    } memhp;

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

    /* cpu-config: the custom CPU template (api_cpu.c), NULL: none */
    struct api_cpu *cpu;
    /* serial: the console output's file (PUT /serial), -1: the process's */
    char *serial_path;
    int serial_fd;
    struct arcvm_token_bucket serial_rl; /* zero: no rate_limiter */

    char fault[512]; /* the last fault message, for the config file loader */
};

/* ---- the shape of an endpoint ------------------------------------------ */

/* When a request may be served: Firecracker takes configuration only before
 * InstanceStart and acts on the running microVM only after. */
enum api_when {
    API_ANYTIME,
    API_PRE_BOOT,
    API_POST_BOOT,
};

/* An endpoint's own work, called once the body passed its schema and the
 * request its boot rule: do what the request asks and answer in @r with
 * api_ok(), api_reply_json() or api_fault(). @id is the resource id of an
 * /name/{id} path (NULL for other paths); @b the body (NULL for a GET). */
typedef void api_handler(struct api *a, const char *id, const json_t *b, struct api_reply *r);

/* Checks of a body's values that come before the boot rule (Firecracker
 * refuses an unknown enum variant whether or not the microVM runs). true,
 * or false once @r holds the fault. */
typedef bool api_checker(struct api *a, const char *id, const json_t *b, struct api_reply *r);

/* What a request body must be, checked in this order: the fields, no empty
 * partial body, the rate limiters, the id, then @check. */
struct api_schema {
    const char *what; /* the body in messages: "drive" */
    const struct api_json_field *fields;
    size_t nfields;
    bool partial;            /* PATCH: any of the fields, but at least one */
    const char *limiters[2]; /* members holding RateLimiter objects */
    const char *id_field;    /* member that must equal the path's id, or NULL */
    api_checker *check;      /* NULL: none */
    bool body_optional;      /* a PUT/PATCH without a body is {} */
};
#define API_SCHEMA_FIELDS(f) .fields = (f), .nfields = sizeof(f) / sizeof((f)[0])

/* One method of one resource. */
struct api_endpoint {
    api_handler *fn;  /* NULL: the method is not allowed (405) */
    enum api_ctr ctr; /* counted per request; API_CTR_NONE: "other" */
    enum api_when when;
    const struct api_schema *schema; /* NULL: no body */
};

enum api_route_kind {
    API_ROUTE_PLAIN, /* /name */
    API_ROUTE_ID,    /* /name/{id} */
    API_ROUTE_SUB,   /* /name/sub */
};

/* A row of the route table (api.c). */
struct api_route {
    const char *name, *sub;
    enum api_route_kind kind;
    struct api_endpoint get, put, patch;
};

/* The route of /@name or /@name/{id} (the config file's keys), NULL if none. */
const struct api_route *api_route_find(const char *name);
/* The route of /@name/@sub (the config file's "memory-hotplug", "mmds-config"), NULL if none. */
const struct api_route *api_route_find_sub(const char *name, const char *sub);
/* Serve a routed request through @ep: schema, boot rule, handler. The HTTP
 * dispatcher and the config file loader both come through here. */
void api_endpoint_run(struct api *a, const struct api_endpoint *ep, const char *id, const json_t *b,
                      struct api_reply *r);
/* Firecracker's checked_id() for a resource id: false with the fault in @r. */
bool api_resource_id_valid(struct api *a, struct api_reply *r, const char *id);
/* For a request on the @what (a resource kind: "drive") named @id: @known,
 * or false with the fault in @r. */
bool api_id_known(struct api *a, struct api_reply *r, const char *what, const char *id, bool known);
/* Whether @when allows the request now: false with Firecracker's fault in @r. */
bool api_when_ok(struct api *a, enum api_when when, struct api_reply *r);

/* ---- answering (api.c) ------------------------------------------------- */

/* Answer @status with @v (consumed) as the body; 500 when @v is NULL. */
void api_reply_json(struct api_reply *r, int status, json_t *v);
/* Answer @status with {"fault_message": ...}, kept in a->fault too. */
void api_fault(struct api *a, struct api_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answer 204, no body. */
void api_ok(struct api_reply *r);
/* One line to the log sink at @level (0 error .. 3 debug); nothing when
 * @level is above the configured one. */
void api_log(struct api *a, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* strdup(), NULL for NULL. */
char *api_strdup(const char *s);
/* Index of @s among @names (exactly, as serde matches enum variants), -1 if
 * absent or NULL. */
int api_variant(const char *s, const char *const *names, int n);
/* 0 if @path opens with @flags, else -errno: a file the VM will open,
 * checked now so the error comes with the request. */
int api_can_open(const char *path, int flags);

/* ---- the VM behind the API (api_vm.c) ---------------------------------- */

/* The library's own calls: the VM operations unless api_options names others. */
extern const struct api_vm_ops api_vm_lib_ops;
/* The settings of this process a new VM takes whether booted or restored:
 * console fds, boot timer, hypervisor device, KVM check. 0 or -errno. */
int api_set_process_side(struct api *a, arcvm *vm);
/* After a failed start or load: a fresh library handle (the old one took
 * settings it cannot drop), so a corrected request can succeed. */
void api_fresh_handle(struct api *a);

/* ---- resources: handlers, schemas and views for GET /vm/config ---------- */

/* api_machine.c: /machine-config (PUT and PATCH share a handler), /boot-source, /entropy */
extern const struct api_schema api_machine_put_schema, api_machine_patch_schema,
    api_boot_source_schema, api_entropy_schema;
api_handler api_machine_get, api_machine_put, api_boot_source_put, api_entropy_put;
json_t *api_machine_json(const struct api *a);
json_t *api_boot_source_json(const struct api *a); /* null when unset */
json_t *api_entropy_json(const struct api *a);     /* null when unset */

/* api_drives.c: /drives/{id} */
extern const struct api_schema api_drive_put_schema, api_drive_patch_schema;
api_handler api_drive_put, api_drive_patch;
/* @d as GET /vm/config shows it. */
json_t *api_drive_json(const struct api_drive *d);
/* Free what @d holds and zero it. */
void api_drive_release(struct api_drive *d);

/* api_net.c: /network-interfaces/{id}, /vsock */
extern const struct api_schema api_net_put_schema, api_net_patch_schema, api_vsock_schema;
api_handler api_net_put, api_net_patch, api_vsock_put;
/* @n as GET /vm/config shows it. */
json_t *api_net_json(const struct api_net *n);
json_t *api_vsock_json(const struct api *a); /* null when unset */
/* Free what @n holds and zero it. */
void api_net_release(struct api_net *n);

/* api_pmem.c: /pmem/{id} */
extern const struct api_schema api_pmem_put_schema, api_pmem_patch_schema;
api_handler api_pmem_put, api_pmem_patch;
/* The devices as GET /vm/config's "pmem" array. */
json_t *api_pmem_json(const struct api *a);
/* Whether one of them is the root device (a root drive is refused then). */
bool api_pmem_has_root(const struct api *a);
/* Free what @p holds and zero it; all of them. */
void api_pmem_release(struct api_pmem *p);
void api_pmem_release_all(struct api *a);
/* Add them to @vm at InstanceStart (arcvm_add_pmem() and their limiters):
 * 0 or the library's -errno. */
int api_pmem_apply(const struct api *a, arcvm *vm);
/* api_shares.c: /shared-dirs/{tag} (arcvm's own) */
extern const struct api_schema api_share_put_schema;
api_handler api_share_put;
/* @s as GET /vm/config shows it. */
json_t *api_share_json(const struct api_share *s);
/* Free what @s holds and zero it. */
void api_share_release(struct api_share *s);

/* api_balloon.c: /balloon, /balloon/statistics */
extern const struct api_schema api_balloon_put_schema, api_balloon_patch_schema,
    api_balloon_stats_patch_schema;
api_handler api_balloon_get, api_balloon_put, api_balloon_patch, api_balloon_stats_get,
    api_balloon_stats_patch;
json_t *api_balloon_json(const struct api *a); /* null when unset */
/* ... and /balloon/hinting/start, /stop, /status */
extern const struct api_schema api_balloon_hint_start_schema, api_balloon_hint_stop_schema;
api_handler api_balloon_hint_start, api_balloon_hint_stop, api_balloon_hint_status;

/* api_hotplug.c: /hotplug/memory */
extern const struct api_schema api_memhp_put_schema, api_memhp_patch_schema;
api_handler api_memhp_get, api_memhp_put, api_memhp_patch;
json_t *api_memhp_json(const struct api *a); /* null when unset */
/* api_mmds.c: /mmds, /mmds/config */
extern const struct api_schema api_mmds_config_schema;
api_handler api_mmds_get, api_mmds_put, api_mmds_patch, api_mmds_config_put;
json_t *api_mmds_config_json(const struct api *a); /* null when unset */
/* Hand /mmds/config to the library handle @vm (its NICs added): 0 or -errno
 * with arcvm_last_error() saying why. */
int api_mmds_apply(struct api *a, arcvm *vm);
void api_mmds_release(struct api *a);

/* api_sinks.c: /logger, /metrics */
extern const struct api_schema api_sinks_logger_schema, api_sinks_metrics_schema;
api_handler api_sinks_logger_put, api_sinks_metrics_put;
json_t *api_sinks_logger_json(const struct api *a);  /* null when unset */
json_t *api_sinks_metrics_json(const struct api *a); /* null when unset */
/* Give the process its log sink back and close the log and metrics files. */
void api_sinks_release(struct api *a);
/* api_sinks.c: /serial, the guest console's output file */
extern const struct api_schema api_serial_schema;
api_handler api_serial_put;
/* Close the serial output file: the console goes back to the process's. */
void api_serial_release(struct api *a);

/* api_snapshot.c: /snapshot/create, /snapshot/load */
extern const struct api_schema api_snapshot_create_schema, api_snapshot_load_schema;
api_handler api_snapshot_create, api_snapshot_load;

/* api_cpu.c: /cpu-config */
extern const struct api_schema api_cpu_config_schema;
api_handler api_cpu_config_put;
json_t *api_cpu_json(const struct api *a); /* null when unset */
/* Hand the template to the library at InstanceStart: 0 or its -errno. */
int api_cpu_apply(struct api *a, arcvm *vm);
/* The config file's "cpu-config" as a path: the file's JSON object, or
 * NULL with a sentence in @err. */
json_t *api_cpu_template_file(const char *path, char *err, size_t errlen);
void api_cpu_release(struct api *a);

/* api_instance.c: /, /version, /actions, /vm, /vm/config, /vcpus */
extern const struct api_schema api_actions_schema, api_vm_patch_schema;
api_handler api_instance_get, api_version_get, api_actions_put, api_vm_patch, api_vm_config_get,
    api_vcpus_get;

#endif
