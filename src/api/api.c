/* api.c - the Firecracker-compatible control plane: the struct api, the one
 * route table and the dispatcher that serves every endpoint in the same steps
 * (route, method, body, schema, boot rule, handler, counters), and the
 * endpoints themselves, resource by resource. See api_internal.h. */
#include "api/api_internal.h"

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

/* Firecracker's DEFAULT_MEM_SIZE_MIB: what a tool that never PUTs
 * /machine-config expects. */
#define FC_DEFAULT_MEM_MIB 128
/* The longest request path worth routing; every real one is far shorter. */
#define API_PATH_MAX 1024

const char API_MSG_POST_BOOT[] =
    "The requested operation is not supported after starting the microVM.";
static const char MSG_PRE_BOOT[] =
    "The requested operation is not supported before starting the microVM.";
static const char DEFAULT_INSTANCE_ID[] = "anonymous-instance";

/* ---- answering ---------------------------------------------------------- */

void api_log(struct api *a, int level, const char *fmt, ...)
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

char *api_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void api_reply_json(struct api_reply *r, int status, json_t *v)
{
    r->body = v ? json_dumps(v, JSON_COMPACT) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    r->status = r->body ? status : 500; /* no body: out of memory */
    json_decref(v);
}

void api_fault(struct api *a, struct api_reply *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->fault, sizeof(a->fault), fmt, ap);
    va_end(ap);
    api_reply_json(r, status, json_pack("{s:s}", "fault_message", a->fault));
}

/* A body that is not JSON or not of the schema: Firecracker words these as
 * serde errors. */
static void deserialize_fault(struct api *a, struct api_reply *r, const char *err)
{
    api_fault(a, r, 400, "An error occurred when deserializing the json body of a request: %s.",
              err);
}

void api_ok(struct api_reply *r)
{
    r->status = 204;
}

int api_variant(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

int api_can_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
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

bool api_resource_id_valid(struct api *a, struct api_reply *r, const char *id)
{
    if (!*id) {
        api_fault(a, r, 400, "The ID cannot be empty.");
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            api_fault(a, r, 400,
                      "API Resource IDs can only contain alphanumeric characters and underscores.");
            return false;
        }
    }
    return true;
}

bool api_id_known(struct api *a, struct api_reply *r, const char *what, const char *id, bool known)
{
    if (!known)
        api_fault(a, r, 400, "No %s with id '%s'.", what, id);
    return known;
}

/* ---- destroy and create ------------------------------------------------- */

void api_destroy(struct api *a)
{
    if (!a)
        return;
    /* The VM first: its threads may log until they are gone. */
    arcvm_destroy(a->vm);
    api_sinks_release(a);
    for (unsigned i = 0; i < a->ndrives; i++)
        api_drive_release(&a->drives[i]);
    for (unsigned i = 0; i < a->nnets; i++)
        api_net_release(&a->nets[i]);
    free(a->kernel);
    free(a->initrd);
    free(a->boot_args);
    free(a->hv_device);
    free(a->vsock.uds_path);
    free(a);
}

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
    a->ops = o->vm_ops ? o->vm_ops : &api_vm_lib_ops;
    snprintf(a->id, sizeof(a->id), "%s", id);
    if (!a->opt.max_body)
        a->opt.max_body = API_MAX_BODY_DEFAULT;
    a->opt.instance_id = a->id;
    a->hv_device = api_strdup(o->hv_device);
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

/* ---- the route table ---------------------------------------------------- */

#define PLAIN API_ROUTE_PLAIN
#define ID    API_ROUTE_ID
#define SUB   API_ROUTE_SUB
#define NONE  API_CTR_NONE
#define ANY   API_ANYTIME
#define PRE   API_PRE_BOOT
#define POST  API_POST_BOOT
/* Firecracker endpoints arcvm does not have at all: answered 400 with a
 * sentence rather than 404, since the path itself is right; counted as
 * "other" whatever the method. */
#define UNSUPPORTED(n, s, k, what)                                                                 \
    {                                                                                              \
        n, s, k, .unsupported = what                                                               \
    }

/* Each method: {handler, counter, boot rule, body schema}. */
static const struct api_route routes[] = {
    {"", NULL, PLAIN, .get = {api_instance_get, API_CTR_GET_INSTANCE_INFO, ANY, NULL}},
    {"version", NULL, PLAIN, .get = {api_version_get, API_CTR_GET_VMM_VERSION, ANY, NULL}},
    {"machine-config", NULL, PLAIN, .get = {api_machine_get, API_CTR_GET_MACHINE_CFG, ANY, NULL},
     .put = {api_machine_put, API_CTR_PUT_MACHINE_CFG, PRE, &api_machine_put_schema},
     .patch = {api_machine_put, API_CTR_PATCH_MACHINE_CFG, PRE, &api_machine_patch_schema}},
    {"boot-source", NULL, PLAIN,
     .put = {api_boot_source_put, API_CTR_PUT_BOOT_SOURCE, PRE, &api_boot_source_schema}},
    {"drives", NULL, ID, .put = {api_drive_put, API_CTR_PUT_DRIVE, PRE, &api_drive_put_schema},
     .patch = {api_drive_patch, API_CTR_PATCH_DRIVE, POST, &api_drive_patch_schema}},
    {"network-interfaces", NULL, ID,
     .put = {api_net_put, API_CTR_PUT_NETWORK, PRE, &api_net_put_schema},
     .patch = {api_net_patch, API_CTR_PATCH_NETWORK, POST, &api_net_patch_schema}},
    {"vsock", NULL, PLAIN, .put = {api_vsock_put, API_CTR_PUT_VSOCK, PRE, &api_vsock_schema}},
    /* Balloon updates change the configuration before boot, the device after. */
    {"balloon", NULL, PLAIN, .get = {api_balloon_get, NONE, ANY, NULL},
     .put = {api_balloon_put, API_CTR_PUT_BALLOON, PRE, &api_balloon_put_schema},
     .patch = {api_balloon_patch, API_CTR_PATCH_BALLOON, ANY, &api_balloon_patch_schema}},
    {"balloon", "statistics", SUB, .get = {api_balloon_stats_get, NONE, ANY, NULL},
     .patch = {api_balloon_stats_patch, API_CTR_PATCH_BALLOON, ANY,
               &api_balloon_stats_patch_schema}},
    {"entropy", NULL, PLAIN,
     .put = {api_entropy_put, API_CTR_PUT_ENTROPY, PRE, &api_entropy_schema}},
    {"logger", NULL, PLAIN,
     .put = {api_sinks_logger_put, API_CTR_PUT_LOGGER, PRE, &api_sinks_logger_schema}},
    {"metrics", NULL, PLAIN,
     .put = {api_sinks_metrics_put, API_CTR_PUT_METRICS, PRE, &api_sinks_metrics_schema}},
    /* Each action has its own boot rule: see api_instance.c. */
    {"actions", NULL, PLAIN,
     .put = {api_actions_put, API_CTR_PUT_ACTIONS, ANY, &api_actions_schema}},
    {"vm", NULL, PLAIN, .patch = {api_vm_patch, API_CTR_PATCH_VM, POST, &api_vm_patch_schema}},
    {"vm", "config", SUB, .get = {api_vm_config_get, API_CTR_GET_VM_CONFIG, ANY, NULL}},
    {"vcpus", NULL, PLAIN, .get = {api_vcpus_get, NONE, ANY, NULL}},
    UNSUPPORTED("cpu-config", NULL, PLAIN, "CPU templates (/cpu-config)"),
    UNSUPPORTED("mmds", NULL, PLAIN, "The microVM metadata service (/mmds)"),
    UNSUPPORTED("mmds", "config", SUB, "The microVM metadata service (/mmds/config)"),
    UNSUPPORTED("snapshot", "create", SUB, "Snapshots (/snapshot/create)"),
    UNSUPPORTED("snapshot", "load", SUB, "Snapshots (/snapshot/load)"),
    UNSUPPORTED("serial", NULL, PLAIN, "Serial output redirection (/serial)"),
    UNSUPPORTED("pmem", NULL, ID, "virtio-pmem devices (/pmem)"),
    UNSUPPORTED("hotplug", "memory", SUB, "Memory hotplug (/hotplug/memory)"),
};
#undef PLAIN
#undef ID
#undef SUB
#undef NONE
#undef ANY
#undef PRE
#undef POST
#undef UNSUPPORTED

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const struct api_route *api_route_find(const char *name)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (!strcmp(routes[i].name, name) && routes[i].kind != API_ROUTE_SUB)
            return &routes[i];
    return NULL;
}

/* ---- serving a request -------------------------------------------------- */

bool api_when_ok(struct api *a, enum api_when when, struct api_reply *r)
{
    if (when == API_PRE_BOOT && a->started)
        api_fault(a, r, 400, "%s", API_MSG_POST_BOOT);
    else if (when == API_POST_BOOT && !a->started)
        api_fault(a, r, 400, "%s", MSG_PRE_BOOT);
    else
        return true;
    return false;
}

/* @b against @s, in Firecracker's order; false with the fault in @r. */
static bool schema_ok(struct api *a, const struct api_schema *s, const char *id, const json_t *b,
                      struct api_reply *r)
{
    char err[512];
    if (api_json_check(b, s->fields, s->nfields, s->partial, s->what, err, sizeof(err)) < 0)
        goto refused;
    if (s->partial && !json_object_size(b)) {
        api_fault(a, r, 400, "Empty PATCH request.");
        return false;
    }
    for (size_t i = 0; i < sizeof(s->limiters) / sizeof(s->limiters[0]) && s->limiters[i]; i++) {
        const char *key = s->limiters[i];
        if (api_json_has(b, key) &&
            api_json_check_rate_limiter(json_object_get(b, key), key, err, sizeof(err)) < 0)
            goto refused;
    }
    if (s->id_field) {
        const char *body_id = api_json_str(b, s->id_field);
        if (!body_id || strcmp(id, body_id)) {
            api_fault(a, r, 400, "The id from the path does not match the id from the body!");
            return false;
        }
    }
    return !s->check || s->check(a, id, b, r);
refused:
    deserialize_fault(a, r, err);
    return false;
}

void api_endpoint_run(struct api *a, const struct api_endpoint *ep, const char *id, const json_t *b,
                      struct api_reply *r)
{
    if (ep->schema && !schema_ok(a, ep->schema, id, b, r))
        return;
    if (api_when_ok(a, ep->when, r))
        ep->fn(a, id, b, r);
}

static const char *allow_header(const struct api_route *rt)
{
    static const char *const allow[8] = {"",      "GET",        "PUT",        "GET, PUT",
                                         "PATCH", "GET, PATCH", "PUT, PATCH", "GET, PUT, PATCH"};
    if (rt->unsupported)
        return allow[7];
    return allow[(rt->get.fn ? 1 : 0) | (rt->put.fn ? 2 : 0) | (rt->patch.fn ? 4 : 0)];
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

/* The route for @path, with @id set for an /name/{id} path; NULL with the
 * fault in @r (404, or 400 for a missing id). */
static const struct api_route *route(struct api *a, const char *method, const char *path, char *buf,
                                     size_t buflen, const char **id, struct api_reply *r)
{
    char *seg[3];
    int nseg = strlen(path) < buflen ? (snprintf(buf, buflen, "%s", path), split(buf, seg)) : -1;
    const struct api_route *rt = NULL;
    bool known = false, empty_id = false;
    for (size_t i = 0; nseg > 0 && i < NROUTES; i++) {
        const struct api_route *c = &routes[i];
        if (strcmp(c->name, seg[0]))
            continue;
        known = true;
        if (nseg == 1 && c->kind == API_ROUTE_PLAIN)
            rt = c;
        else if (nseg == 1 && c->kind == API_ROUTE_ID && !rt)
            empty_id = true;
        else if (nseg == 2 && c->kind == API_ROUTE_SUB && !strcmp(c->sub, seg[1]))
            rt = c, *id = NULL;
        else if (nseg == 2 && c->kind == API_ROUTE_ID && !rt)
            rt = c, *id = seg[1];
        if (rt && rt->kind != API_ROUTE_ID)
            break;
    }
    if (!rt && known && empty_id)
        api_fault(a, r, 400, "The ID cannot be empty.");
    else if (!rt)
        api_fault(a, r, 404, "Invalid request method and/or path: %s %s.", method, path);
    return rt;
}

static void dispatch(struct api *a, const char *method, const char *path, const char *body,
                     size_t len, struct api_reply *r)
{
    char buf[API_PATH_MAX];
    const char *id = NULL;
    const struct api_route *rt = route(a, method, path, buf, sizeof(buf), &id, r);
    if (!rt) {
        count(a, -1, true, false);
        return;
    }
    int m = !strcmp(method, "GET")     ? 0
            : !strcmp(method, "PUT")   ? 1
            : !strcmp(method, "PATCH") ? 2
                                       : -1;
    const struct api_endpoint *ep = m == 0 ? &rt->get : m == 1 ? &rt->put : &rt->patch;
    if (m < 0 || (!rt->unsupported && !ep->fn)) {
        count(a, -1, true, false);
        r->allow = allow_header(rt);
        api_fault(a, r, 405, "Invalid request method and/or path: %s %s.", method, path);
        return;
    }
    if (m == 0 && len) {
        api_fault(a, r, 400, "GET request cannot have a body.");
    } else if (m > 0 && !len) {
        api_fault(a, r, 400, "Empty %s request.", method);
    } else if (len > a->opt.max_body) {
        api_fault(a, r, 413, "The request body is too large: at most %zu bytes.", a->opt.max_body);
    } else if (id && !api_resource_id_valid(a, r, id)) {
        /* answered */
    } else {
        json_t *b = NULL;
        char err[512];
        if (m > 0 && !(b = api_json_parse(body, len, err, sizeof(err))))
            deserialize_fault(a, r, err);
        else if (rt->unsupported)
            api_fault(a, r, 400, "%s is not supported by arcvm yet.", rt->unsupported);
        else
            api_endpoint_run(a, ep, id, b, r);
        json_decref(b);
    }
    /* Only PUT and PATCH counters have a matching _fails counter. */
    count(a, rt->unsupported ? API_CTR_NONE : (int)ep->ctr, r->status >= 400, m > 0);
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

/* ==== the VM behind the API: the library's calls as the default VM
 * operations, InstanceStart (the pre-boot configuration turned into library
 * calls), and watching the VM until it stops. See api.h. */

/* The virtio-blk serial (GET_ID) is 20 bytes: arcvm_add_disk()'s id limit. */
#define API_SERIAL_MAX 20

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

const struct api_vm_ops api_vm_lib_ops = {
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

/* ---- InstanceStart ---------------------------------------------------- */

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
        snprintf(err, errlen, "%s", API_MSG_POST_BOOT);
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

/* ---- the running VM --------------------------------------------------- */

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

int api_vcpu_info(struct api *a, struct arcvm_vcpu_info *out, unsigned max)
{
    if (!a->started || a->exited || !a->ops->get_vcpu_info)
        return -EINVAL;
    return a->ops->get_vcpu_info(a->opt.vm_ops_ctx, a->vm, out, max);
}

/* ==== the machine the guest gets: /machine-config (vCPUs and
 * memory), /boot-source (kernel, initrd, command line) and /entropy (the
 * virtio-rng device). */

/* Firecracker's MAX_SUPPORTED_VCPUS, the maximum in its swagger schema. */
#define FC_MAX_VCPUS 32
/* 16 TiB: far above any host, and MiB << 20 stays far inside 64 bits. */
#define API_MEM_MIB_MAX (1ull << 24)

/* ---- /machine-config ---------------------------------------------------- */

static const char *const machine_templates[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A", "V1N1"};
static const char *const machine_huge_pages[] = {"None", "2M", "Transparent"};
#define MACHINE_NTEMPLATES (int)(sizeof(machine_templates) / sizeof(machine_templates[0]))
#define MACHINE_NHUGE      (int)(sizeof(machine_huge_pages) / sizeof(machine_huge_pages[0]))

json_t *api_machine_json(const struct api *a)
{
    return json_pack("{s:I,s:I,s:b,s:b,s:s}", "vcpu_count", (json_int_t)a->vcpus, "mem_size_mib",
                     (json_int_t)a->mem_mib, "smt", 0, "track_dirty_pages", 0, "huge_pages",
                     "None");
}

void api_machine_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    api_reply_json(r, 200, api_machine_json(a));
}

/* Names that are no variant at all are refused even after boot. */
static bool machine_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *tmpl = api_json_str(b, "cpu_template"), *hp = api_json_str(b, "huge_pages");
    if (tmpl && api_variant(tmpl, machine_templates, MACHINE_NTEMPLATES) < 0) {
        api_fault(a, r, 400,
                  "cpu_template '%s' is not a CPU template: choose C3, T2, T2S, T2CL, T2A, V1N1 "
                  "or None.",
                  tmpl);
        return false;
    }
    if (hp && api_variant(hp, machine_huge_pages, MACHINE_NHUGE) < 0) {
        api_fault(a, r, 400, "huge_pages '%s' is not valid: choose None, 2M or Transparent.", hp);
        return false;
    }
    return true;
}

static const struct api_json_field machine_fields[] = {
    {"vcpu_count", API_JSON_UINT, true, UINT32_MAX},
    {"mem_size_mib", API_JSON_UINT, true, API_MEM_MIB_MAX},
    {"smt", API_JSON_BOOL, false, 0},
    {"track_dirty_pages", API_JSON_BOOL, false, 0},
    {"cpu_template", API_JSON_STRING, false, 0},
    {"huge_pages", API_JSON_STRING, false, 0},
};
const struct api_schema api_machine_put_schema = {
    .what = "machine-config", API_SCHEMA_FIELDS(machine_fields), .check = machine_check};
/* PATCH: the same fields, any of them. */
const struct api_schema api_machine_patch_schema = {.what = "machine-config",
                                                    API_SCHEMA_FIELDS(machine_fields),
                                                    .partial = true,
                                                    .check = machine_check};

/* PUT and PATCH: a field left out keeps its value. */
void api_machine_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    unsigned vcpus = (unsigned)api_json_uint(b, "vcpu_count", a->vcpus);
    uint64_t mem = api_json_uint(b, "mem_size_mib", a->mem_mib);
    const char *tmpl = api_json_str(b, "cpu_template"), *hp = api_json_str(b, "huge_pages");
    if (vcpus == 0 || vcpus > FC_MAX_VCPUS) {
        api_fault(a, r, 400, "The number of vCPUs must be between 1 and %d.", FC_MAX_VCPUS);
    } else if (api_json_bool(b, "smt", false)) {
        api_fault(a, r, 400,
                  "smt (simultaneous multithreading) is not supported by arcvm: it gives the "
                  "guest single-thread cores.");
    } else if (api_json_bool(b, "track_dirty_pages", false)) {
        api_fault(a, r, 400,
                  "track_dirty_pages is not supported by arcvm yet: it has no snapshots.");
    } else if (api_variant(tmpl, machine_templates, MACHINE_NTEMPLATES) > 0) {
        api_fault(a, r, 400,
                  "cpu_template '%s' is not supported by arcvm: the guest sees the host's CPU "
                  "features as KVM offers them.",
                  tmpl);
    } else if (api_variant(hp, machine_huge_pages, MACHINE_NHUGE) > 0) {
        api_fault(a, r, 400,
                  "huge_pages '%s' is not supported by arcvm yet: guest memory uses 4 KiB pages.",
                  hp);
    } else if (mem == 0) {
        api_fault(a, r, 400, "The memory size (MiB) must not be 0.");
    } else if (arcvm_set_memory(a->vm, mem << 20) < 0 || arcvm_set_vcpus(a->vm, vcpus) < 0) {
        /* The library's own limits (e.g. its minimum size), in its words. */
        api_fault(a, r, 400, "%s", arcvm_last_error(a->vm));
    } else {
        a->vcpus = vcpus;
        a->mem_mib = mem;
        api_ok(r);
    }
}

/* ---- /boot-source ------------------------------------------------------- */

static const struct api_json_field boot_source_fields[] = {
    {"kernel_image_path", API_JSON_STRING, true, 0},
    {"boot_args", API_JSON_STRING, false, 0},
    {"initrd_path", API_JSON_STRING, false, 0},
};
const struct api_schema api_boot_source_schema = {.what = "boot-source",
                                                  API_SCHEMA_FIELDS(boot_source_fields)};

void api_boot_source_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *kernel = api_json_str(b, "kernel_image_path");
    const char *initrd = api_json_str(b, "initrd_path"), *args = api_json_str(b, "boot_args");
    int e = api_can_open(kernel, O_RDONLY);
    if (e < 0) {
        api_fault(a, r, 400, "The kernel file cannot be opened: %s (%s)", strerror(-e), kernel);
        return;
    }
    if (initrd && (e = api_can_open(initrd, O_RDONLY)) < 0) {
        api_fault(a, r, 400, "The initrd file cannot be opened: %s (%s)", strerror(-e), initrd);
        return;
    }
    char *k = strdup(kernel), *i = api_strdup(initrd), *g = api_strdup(args);
    if (!k || (initrd && !i) || (args && !g)) {
        free(k), free(i), free(g);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    free(a->kernel), free(a->initrd), free(a->boot_args);
    a->kernel = k, a->initrd = i, a->boot_args = g;
    api_ok(r);
}

json_t *api_boot_source_json(const struct api *a)
{
    if (!a->kernel)
        return json_null();
    return json_pack("{s:s,s:o,s:o}", "kernel_image_path", a->kernel, "initrd_path",
                     api_json_string_or_null(a->initrd), "boot_args",
                     api_json_string_or_null(a->boot_args));
}

/* ---- /entropy ----------------------------------------------------------- */

static const struct api_json_field entropy_fields[] = {{"rate_limiter", API_JSON_OBJECT, false, 0}};
const struct api_schema api_entropy_schema = {
    .what = "entropy", API_SCHEMA_FIELDS(entropy_fields), .limiters = {"rate_limiter"}};

void api_entropy_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (api_json_has(b, "rate_limiter")) {
        api_fault(a, r, 400, "The entropy device's rate_limiter is not supported by arcvm yet.");
        return;
    }
    a->entropy = true;
    api_ok(r);
}

json_t *api_entropy_json(const struct api *a)
{
    return a->entropy ? json_pack("{s:n}", "rate_limiter") : json_null();
}

/* ==== /drives/{id}: the guest's virtio-blk disks, in
 * Firecracker's order (a root device first), and their view in GET
 * /vm/config. */

static const char *const cache_names[] = {"Unsafe", "Writeback"};
static const char *const engine_names[] = {"Sync", "Async"};

void api_drive_release(struct api_drive *d)
{
    free(d->id);
    free(d->path);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

static int drive_find(const struct api *a, const char *id)
{
    for (unsigned i = 0; i < a->ndrives; i++)
        if (!strcmp(a->drives[i].id, id))
            return (int)i;
    return -1;
}

json_t *api_drive_json(const struct api_drive *d)
{
    return json_pack("{s:s,s:o,s:b,s:s,s:b,s:s,s:n,s:s,s:n}", "drive_id", d->id, "partuuid",
                     api_json_string_or_null(d->partuuid), "is_root_device", d->root, "cache_type",
                     cache_names[d->cache], "is_read_only", d->ro, "path_on_host", d->path,
                     "rate_limiter", "io_engine", engine_names[d->engine], "socket");
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

/* cache_type and io_engine: absent means Unsafe and Sync, as in Firecracker. */
static int drive_cache(const json_t *b)
{
    const char *s = api_json_str(b, "cache_type");
    return s ? api_variant(s, cache_names, 2) : API_CACHE_UNSAFE;
}

static int drive_engine(const json_t *b)
{
    const char *s = api_json_str(b, "io_engine");
    return s ? api_variant(s, engine_names, 2) : API_IO_SYNC;
}

/* Enum names serde would refuse: refused before the boot rule, as in
 * Firecracker, where parsing the body comes first. */
static bool drive_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (drive_cache(b) < 0) {
        api_fault(a, r, 400, "cache_type '%s' is not valid: choose Unsafe or Writeback.",
                  api_json_str(b, "cache_type"));
        return false;
    }
    if (drive_engine(b) < 0) {
        api_fault(a, r, 400, "io_engine '%s' is not valid: choose Sync or Async.",
                  api_json_str(b, "io_engine"));
        return false;
    }
    return true;
}

static const struct api_json_field drive_fields[] = {
    {"drive_id", API_JSON_STRING, true, 0},     {"path_on_host", API_JSON_STRING, false, 0},
    {"is_root_device", API_JSON_BOOL, true, 0}, {"is_read_only", API_JSON_BOOL, false, 0},
    {"partuuid", API_JSON_STRING, false, 0},    {"cache_type", API_JSON_STRING, false, 0},
    {"io_engine", API_JSON_STRING, false, 0},   {"rate_limiter", API_JSON_OBJECT, false, 0},
    {"socket", API_JSON_STRING, false, 0},
};
const struct api_schema api_drive_put_schema = {.what = "drive",
                                                API_SCHEMA_FIELDS(drive_fields),
                                                .limiters = {"rate_limiter"},
                                                .id_field = "drive_id",
                                                .check = drive_check};

static const struct api_json_field drive_patch_fields[] = {
    {"drive_id", API_JSON_STRING, true, 0},
    {"path_on_host", API_JSON_STRING, false, 0},
    {"rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_drive_patch_schema = {.what = "drive",
                                                  API_SCHEMA_FIELDS(drive_patch_fields),
                                                  .limiters = {"rate_limiter"},
                                                  .id_field = "drive_id"};

/* Refuse what arcvm cannot do with the drive in @b, before touching it. */
static bool drive_supported(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *path = api_json_str(b, "path_on_host");
    const char *partuuid = api_json_str(b, "partuuid");
    if (api_json_has(b, "rate_limiter"))
        api_fault(a, r, 400, "Drive '%s': rate_limiter is not supported by arcvm yet.", id);
    else if (api_json_has(b, "socket"))
        api_fault(a, r, 400,
                  "Drive '%s': vhost-user block devices (socket) are not supported by arcvm.", id);
    else if (!path)
        api_fault(a, r, 400, "Drive '%s': path_on_host is required for a virtio-block drive.", id);
    else if (strchr(path, ','))
        api_fault(a, r, 400, "Drive '%s': arcvm cannot use a path_on_host that contains ','.", id);
    else if (partuuid && !partuuid_valid(partuuid))
        api_fault(a, r, 400, "Drive '%s': partuuid '%s' is not a partition UUID.", id, partuuid);
    else
        return true;
    return false;
}

/* Firecracker's order: a new root drive goes first, others last; an updated
 * drive keeps its place, except that a drive becoming root swaps places with
 * the first. */
static void drive_store(struct api *a, int pos, struct api_drive d)
{
    if (pos >= 0) {
        api_drive_release(&a->drives[pos]);
        a->drives[pos] = d;
        if (d.root && pos != 0) {
            struct api_drive t = a->drives[0];
            a->drives[0] = a->drives[pos];
            a->drives[pos] = t;
        }
    } else if (d.root) {
        memmove(&a->drives[1], &a->drives[0], a->ndrives * sizeof(a->drives[0]));
        a->drives[0] = d;
        a->ndrives++;
    } else {
        a->drives[a->ndrives++] = d;
    }
}

void api_drive_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!drive_supported(a, id, b, r))
        return;
    const char *path = api_json_str(b, "path_on_host");
    const char *partuuid = api_json_str(b, "partuuid");
    bool root = api_json_bool(b, "is_root_device", false);
    bool ro = api_json_bool(b, "is_read_only", false);
    int pos = drive_find(a, id);
    if (root && a->ndrives && a->drives[0].root && pos != 0) {
        api_fault(a, r, 400, "A root block device already exists!");
        return;
    }
    if (pos < 0 && a->ndrives == API_MAX_DRIVES) {
        api_fault(a, r, 400, "Drive '%s': arcvm supports at most %d drives.", id, API_MAX_DRIVES);
        return;
    }
    int err = api_can_open(path, ro ? O_RDONLY : O_RDWR);
    if (err < 0) {
        api_fault(a, r, 400, "Cannot open block device. Invalid permission/path: %s (%s)",
                  strerror(-err), path);
        return;
    }
    struct api_drive d = {.id = strdup(id),
                          .path = strdup(path),
                          .partuuid = api_strdup(partuuid),
                          .root = root,
                          .ro = ro,
                          .cache = (enum api_cache_type)drive_cache(b),
                          .engine = (enum api_io_engine)drive_engine(b)};
    if (!d.id || !d.path || (partuuid && !d.partuuid)) {
        api_drive_release(&d);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    drive_store(a, pos, d);
    api_ok(r);
}

void api_drive_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (api_id_known(a, r, "drive", id, drive_find(a, id) >= 0))
        api_fault(a, r, 400,
                  "Drive '%s': updating a drive after boot (path_on_host, rate_limiter) is not "
                  "supported by arcvm yet.",
                  id);
}

/* ==== the guest's ways to talk to the host: /network-interfaces/{id}
 * (virtio-net on a TAP device) and /vsock (virtio-vsock on a Unix socket),
 * and their views in GET /vm/config. */

/* vsock CIDs 0-2 are reserved (hypervisor, local, host). */
#define FC_VSOCK_CID_MIN 3

void api_net_release(struct api_net *n)
{
    free(n->id);
    free(n->tap);
    free(n->mac);
    *n = (struct api_net){0};
}

static int net_find(const struct api *a, const char *id)
{
    for (unsigned i = 0; i < a->nnets; i++)
        if (!strcmp(a->nets[i].id, id))
            return (int)i;
    return -1;
}

json_t *api_net_json(const struct api_net *n)
{
    return json_pack("{s:s,s:s,s:o,s:n,s:n}", "iface_id", n->id, "host_dev_name", n->tap,
                     "guest_mac", api_json_string_or_null(n->mac), "rx_rate_limiter",
                     "tx_rate_limiter");
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

/* ---- /network-interfaces/{id} ------------------------------------------ */

/* Firecracker checks the MAC and the device name while parsing the body:
 * before the boot rule. */
static bool net_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *mac = api_json_str(b, "guest_mac");
    const char *tap = api_json_str(b, "host_dev_name");
    if (mac && !mac_valid(mac))
        api_fault(a, r, 400, "guest_mac '%s' is not a MAC address (xx:xx:xx:xx:xx:xx).", mac);
    else if (mac && (strtoul(mac, NULL, 16) & 1))
        api_fault(a, r, 400, "guest_mac '%s' is a multicast address: a NIC needs a unicast one.",
                  mac);
    else if (!ifname_valid(tap))
        api_fault(a, r, 400,
                  "host_dev_name '%s' is not a network interface name (1 to 15 characters, no "
                  "'/', ':', ',', '=' or spaces).",
                  tap);
    else
        return true;
    return false;
}

static const struct api_json_field net_fields[] = {
    {"iface_id", API_JSON_STRING, true, 0},         {"host_dev_name", API_JSON_STRING, true, 0},
    {"guest_mac", API_JSON_STRING, false, 0},       {"rx_rate_limiter", API_JSON_OBJECT, false, 0},
    {"tx_rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_net_put_schema = {.what = "network interface",
                                              API_SCHEMA_FIELDS(net_fields),
                                              .limiters = {"rx_rate_limiter", "tx_rate_limiter"},
                                              .id_field = "iface_id",
                                              .check = net_check};

static const struct api_json_field net_patch_fields[] = {
    {"iface_id", API_JSON_STRING, true, 0},
    {"rx_rate_limiter", API_JSON_OBJECT, false, 0},
    {"tx_rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_net_patch_schema = {.what = "network interface",
                                                API_SCHEMA_FIELDS(net_patch_fields),
                                                .limiters = {"rx_rate_limiter", "tx_rate_limiter"},
                                                .id_field = "iface_id"};

/* Another interface than the one at @pos already using @tap or @mac:
 * false with the fault in @r. */
static bool net_unique(struct api *a, int pos, const char *tap, const char *mac,
                       struct api_reply *r)
{
    for (unsigned i = 0; i < a->nnets; i++) {
        if ((int)i == pos)
            continue;
        if (!strcmp(a->nets[i].tap, tap)) {
            api_fault(a, r, 400, "The host device name %s is already in use by interface '%s'.",
                      tap, a->nets[i].id);
            return false;
        }
        if (mac && a->nets[i].mac && !strcasecmp(a->nets[i].mac, mac)) {
            api_fault(a, r, 400, "The guest MAC address %s is already in use by interface '%s'.",
                      mac, a->nets[i].id);
            return false;
        }
    }
    return true;
}

void api_net_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *mac = api_json_str(b, "guest_mac");
    const char *tap = api_json_str(b, "host_dev_name");
    if (api_json_has(b, "rx_rate_limiter") || api_json_has(b, "tx_rate_limiter")) {
        api_fault(a, r, 400,
                  "Network interface '%s': rate limiters are not supported by arcvm yet.", id);
        return;
    }
    int pos = net_find(a, id);
    if (!net_unique(a, pos, tap, mac, r))
        return;
    if (pos < 0 && a->nnets == API_MAX_NETS) {
        api_fault(a, r, 400, "Network interface '%s': arcvm supports at most %d interfaces.", id,
                  API_MAX_NETS);
        return;
    }
    struct api_net n = {.id = strdup(id), .tap = strdup(tap), .mac = api_strdup(mac)};
    if (!n.id || !n.tap || (mac && !n.mac)) {
        api_net_release(&n);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    if (pos >= 0) {
        api_net_release(&a->nets[pos]);
        a->nets[pos] = n;
    } else {
        a->nets[a->nnets++] = n;
    }
    api_ok(r);
}

void api_net_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (api_id_known(a, r, "network interface", id, net_find(a, id) >= 0))
        api_fault(a, r, 400,
                  "Network interface '%s': rate limiters (the only setting PATCH changes) are not "
                  "supported by arcvm yet.",
                  id);
}

/* ---- /vsock ------------------------------------------------------------- */

/* Part of parsing the body in Firecracker: before the boot rule. */
static bool vsock_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (api_json_uint(b, "guest_cid", 0) >= FC_VSOCK_CID_MIN)
        return true;
    api_fault(a, r, 400, "guest_cid must be %d or more (0 to 2 are reserved).", FC_VSOCK_CID_MIN);
    return false;
}

static const struct api_json_field vsock_fields[] = {
    {"guest_cid", API_JSON_UINT, true, UINT32_MAX},
    {"uds_path", API_JSON_STRING, true, 0},
    {"vsock_id", API_JSON_STRING, false, 0},
};
const struct api_schema api_vsock_schema = {
    .what = "vsock", API_SCHEMA_FIELDS(vsock_fields), .check = vsock_check};

void api_vsock_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *uds = api_json_str(b, "uds_path");
    if (!uds || !*uds || strchr(uds, ',')) {
        api_fault(a, r, 400, "uds_path must be a non-empty path without commas.");
        return;
    }
    char *copy = strdup(uds);
    if (!copy) {
        api_fault(a, r, 500, "out of memory");
        return;
    }
    free(a->vsock.uds_path);
    a->vsock.uds_path = copy;
    a->vsock.cid = (uint32_t)api_json_uint(b, "guest_cid", 0);
    a->vsock.set = true;
    api_ok(r);
}

json_t *api_vsock_json(const struct api *a)
{
    if (!a->vsock.set)
        return json_null();
    return json_pack("{s:i,s:s}", "guest_cid", (json_int_t)a->vsock.cid, "uds_path",
                     a->vsock.uds_path);
}

/* ==== /balloon and /balloon/statistics: the virtio-balloon
 * device, configured before boot and steered after it. */

/* The updates need a balloon to update. */
static bool balloon_configured(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (a->balloon.set)
        return true;
    api_fault(a, r, 400, "No balloon device is configured: PUT /balloon first.");
    return false;
}

json_t *api_balloon_json(const struct api *a)
{
    if (!a->balloon.set)
        return json_null();
    return json_pack("{s:i,s:b,s:i,s:b}", "amount_mib", (json_int_t)a->balloon.amount_mib,
                     "deflate_on_oom", a->balloon.deflate_on_oom, "stats_polling_interval_s",
                     (json_int_t)a->balloon.stats_s, "free_page_reporting", a->balloon.reporting);
}

/* ---- /balloon ----------------------------------------------------------- */

static const struct api_json_field balloon_fields[] = {
    {"amount_mib", API_JSON_UINT, true, UINT32_MAX},
    {"deflate_on_oom", API_JSON_BOOL, true, 0},
    {"stats_polling_interval_s", API_JSON_UINT, false, UINT16_MAX},
    {"free_page_hinting", API_JSON_BOOL, false, 0},
    {"free_page_reporting", API_JSON_BOOL, false, 0},
};
const struct api_schema api_balloon_put_schema = {.what = "balloon",
                                                  API_SCHEMA_FIELDS(balloon_fields)};

void api_balloon_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (api_json_bool(b, "free_page_hinting", false)) {
        api_fault(a, r, 400, "Balloon free_page_hinting is not supported by arcvm.");
        return;
    }
    a->balloon = (struct api_balloon){
        .set = true,
        .amount_mib = (uint32_t)api_json_uint(b, "amount_mib", 0),
        .deflate_on_oom = api_json_bool(b, "deflate_on_oom", false),
        .stats_s = (unsigned)api_json_uint(b, "stats_polling_interval_s", 0),
        .reporting = api_json_bool(b, "free_page_reporting", false),
    };
    api_ok(r);
}

void api_balloon_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!a->balloon.set)
        api_fault(a, r, 400, "No balloon device is configured.");
    else
        api_reply_json(r, 200, api_balloon_json(a));
}

static const struct api_json_field balloon_patch_fields[] = {
    {"amount_mib", API_JSON_UINT, true, UINT32_MAX}};
const struct api_schema api_balloon_patch_schema = {
    .what = "balloon update", API_SCHEMA_FIELDS(balloon_patch_fields), .check = balloon_configured};

/* Before boot the configuration changes; after boot the device does. */
void api_balloon_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    uint32_t mib = (uint32_t)api_json_uint(b, "amount_mib", 0);
    if (a->started && arcvm_balloon_set_target(a->vm, mib) < 0) {
        api_fault(a, r, 400, "Cannot update the balloon: %s", arcvm_last_error(a->vm));
        return;
    }
    a->balloon.amount_mib = mib;
    api_ok(r);
}

/* ---- /balloon/statistics ------------------------------------------------ */

static const struct api_json_field balloon_stats_patch_fields[] = {
    {"stats_polling_interval_s", API_JSON_UINT, true, UINT16_MAX}};
const struct api_schema api_balloon_stats_patch_schema = {
    .what = "balloon statistics update",
    API_SCHEMA_FIELDS(balloon_stats_patch_fields),
    .check = balloon_configured};

/* As api_balloon_patch(), for the statistics' polling interval. */
void api_balloon_stats_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    unsigned secs = (unsigned)api_json_uint(b, "stats_polling_interval_s", 0);
    if (a->started && arcvm_balloon_set_stats_interval(a->vm, secs) < 0) {
        api_fault(a, r, 400, "Cannot update balloon statistics: %s", arcvm_last_error(a->vm));
        return;
    }
    a->balloon.stats_s = secs;
    api_ok(r);
}

void api_balloon_stats_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!a->balloon.set) {
        api_fault(a, r, 400, "No balloon device is configured.");
        return;
    }
    struct arcvm_balloon info;
    if (!a->started || arcvm_balloon_get(a->vm, &info) < 0 || !info.stats_enabled) {
        api_fault(a, r, 400, "Balloon statistics are not enabled%s.",
                  a->started ? "" : " (the microVM has not started)");
        return;
    }
    /* Firecracker counts 4 KiB pages: 256 to the MiB. */
    json_t *o = json_pack("{s:i,s:i,s:i,s:i}", "target_pages", (json_int_t)info.target_mib * 256,
                          "actual_pages", (json_int_t)info.actual_mib * 256, "target_mib",
                          (json_int_t)info.target_mib, "actual_mib", (json_int_t)info.actual_mib);
    for (unsigned t = 0; o && t < ARCVM_BALLOON_NSTATS; t++) {
        const char *name = arcvm_balloon_stat_name(t);
        if (name && (info.stats_valid & (1u << t)))
            json_object_set_new(o, name, json_integer((json_int_t)info.stats[t]));
    }
    api_reply_json(r, 200, o);
}

/* ==== where the process reports: the logger (/logger, the
 * library's log sink and level) and the metrics file (/metrics, the lines
 * api_metrics.c renders). See api.h. */

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

/* ==== the microVM as a whole: GET / and /version, /actions
 * (InstanceStart, SendCtrlAltDel, FlushMetrics), PATCH /vm (pause and
 * resume), GET /vm/config (every resource's view) and arcvm's GET /vcpus. */

/* Most vCPUs GET /vcpus reports; KVM's own limit is about this size. */
#define API_MAX_VCPUS 1024

void api_instance_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    /* Firecracker's state stays "Running" from InstanceStart until the
     * process exits, whatever the guest does; so does ours. */
    const char *state = "Not started";
    if (a->started)
        state = a->ops->get_state(a->opt.vm_ops_ctx, a->vm) == ARCVM_STATE_PAUSED ? "Paused"
                                                                                  : "Running";
    api_reply_json(r, 200,
                   json_pack("{s:s,s:s,s:s,s:s}", "id", a->id, "state", state, "vmm_version",
                             arcvm_version(), "app_name", "arcvm"));
}

void api_version_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    api_reply_json(r, 200, json_pack("{s:s}", "firecracker_version", arcvm_version()));
}

/* The whole configuration, in the config file's form (it loads back). */
void api_vm_config_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    json_t *drives = json_array();
    for (unsigned i = 0; drives && i < a->ndrives; i++)
        json_array_append_new(drives, api_drive_json(&a->drives[i]));
    json_t *nets = json_array();
    for (unsigned i = 0; nets && i < a->nnets; i++)
        json_array_append_new(nets, api_net_json(&a->nets[i]));
    api_reply_json(
        r, 200,
        json_pack("{s:o,s:o,s:o,s:n,s:o,s:o,s:o,s:n,s:o,s:o,s:o}", "balloon", api_balloon_json(a),
                  "drives", drives, "boot-source", api_boot_source_json(a), "cpu-config", "logger",
                  api_sinks_logger_json(a), "machine-config", api_machine_json(a), "metrics",
                  api_sinks_metrics_json(a), "mmds-config", "network-interfaces", nets, "vsock",
                  api_vsock_json(a), "entropy", api_entropy_json(a)));
}

/* arcvm's own: what each vCPU is doing, for telling a hung guest from a
 * hung host (see arcvm_get_vcpu_info()). */
void api_vcpus_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    struct arcvm_vcpu_info *v = calloc(API_MAX_VCPUS, sizeof(*v));
    if (!v) {
        api_fault(a, r, 500, "Out of memory.");
        return;
    }
    int n = api_vcpu_info(a, v, API_MAX_VCPUS);
    if (n < 0) {
        api_fault(a, r, 400, "The microVM is not running: vCPUs report only after InstanceStart.");
        free(v);
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n && arr; i++) {
        json_t *o =
            json_pack("{s:i,s:s,s:I,s:b,s:I,s:I,s:I}", "id", (json_int_t)v[i].id, "state",
                      arcvm_vcpu_where_name(v[i].where), "state_ms", (json_int_t)v[i].where_ms,
                      "answered", v[i].answered, "exits", (json_int_t)v[i].exits, "kicks",
                      (json_int_t)v[i].kicks, "interrupted_runs", (json_int_t)v[i].intr_exits);
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
    api_reply_json(r, 200, json_pack("{s:o}", "vcpus", arr));
}

/* ---- /actions ----------------------------------------------------------- */

static void action_start(struct api *a, struct api_reply *r)
{
    char err[512];
    if (api_start(a, err, sizeof(err)) < 0)
        api_fault(a, r, 400, "%s", err);
    else
        api_ok(r);
}

static void action_ctrl_alt_del(struct api *a, struct api_reply *r)
{
    if (a->ops->send_ctrl_alt_del(a->opt.vm_ops_ctx, a->vm) < 0)
        api_fault(a, r, 400, "%s", a->ops->last_error(a->opt.vm_ops_ctx, a->vm));
    else
        api_ok(r);
}

static void action_flush_metrics(struct api *a, struct api_reply *r)
{
    int e = api_flush_metrics(a);
    if (e == -ENOENT)
        api_fault(a, r, 400, "Metrics are not configured: PUT /metrics first.");
    else if (e < 0)
        api_fault(a, r, 400, "Cannot write metrics: %s", strerror(-e));
    else
        api_ok(r);
}

/* The actions, each with the boot rule an endpoint would have. */
static const struct action {
    const char *type;
    enum api_when when;
    void (*run)(struct api *a, struct api_reply *r);
} actions[] = {
    {"InstanceStart", API_PRE_BOOT, action_start},
    {"SendCtrlAltDel", API_POST_BOOT, action_ctrl_alt_del},
    {"FlushMetrics", API_ANYTIME, action_flush_metrics},
};

static const struct action *action_find(const json_t *b)
{
    const char *type = api_json_str(b, "action_type");
    for (size_t i = 0; type && i < sizeof(actions) / sizeof(actions[0]); i++)
        if (!strcmp(type, actions[i].type))
            return &actions[i];
    return NULL;
}

static bool actions_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (action_find(b))
        return true;
    api_fault(a, r, 400,
              "action_type '%s' is not valid: choose InstanceStart, SendCtrlAltDel or "
              "FlushMetrics.",
              api_json_str(b, "action_type"));
    return false;
}

static const struct api_json_field actions_fields[] = {{"action_type", API_JSON_STRING, true, 0}};
const struct api_schema api_actions_schema = {
    .what = "action", API_SCHEMA_FIELDS(actions_fields), .check = actions_check};

void api_actions_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const struct action *act = action_find(b);
    if (api_when_ok(a, act->when, r))
        act->run(a, r);
}

/* ---- PATCH /vm ---------------------------------------------------------- */

static const char *const vm_states[] = {"Paused", "Resumed"};

static bool vm_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *s = api_json_str(b, "state");
    if (api_variant(s, vm_states, 2) >= 0)
        return true;
    api_fault(a, r, 400, "state '%s' is not valid: choose Paused or Resumed.", s);
    return false;
}

static const struct api_json_field vm_fields[] = {{"state", API_JSON_STRING, true, 0}};
const struct api_schema api_vm_patch_schema = {
    .what = "vm", API_SCHEMA_FIELDS(vm_fields), .check = vm_check};

void api_vm_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    void *c = a->opt.vm_ops_ctx;
    bool pause = api_variant(api_json_str(b, "state"), vm_states, 2) == 0;
    if ((pause ? a->ops->pause(c, a->vm) : a->ops->resume(c, a->vm)) < 0)
        api_fault(a, r, 400, "%s", a->ops->last_error(c, a->vm));
    else
        api_ok(r);
}

/* ==== Firecracker's --config-file: each key served by the PUT
 * endpoint of the resource of that name, through the same route table and
 * checks as an HTTP request. See api.h. */

/* The keys arcvm takes, in the order they are applied: logging first, so
 * the rest is logged. Each names a route (api.c). */
static const char *const config_keys[] = {
    "logger", "metrics", "machine-config", "boot-source", "drives", "entropy", "network-interfaces",
    "vsock",  "balloon",
};
/* Firecracker's keys for what arcvm lacks: refused unless null. */
static const char *const config_unsupported[] = {"cpu-config", "mmds-config", "pmem", "serial",
                                                 "memory-hotplug"};

#define NKEYS        (sizeof(config_keys) / sizeof(config_keys[0]))
#define NUNSUPPORTED (sizeof(config_unsupported) / sizeof(config_unsupported[0]))

/* @v through @ep as a PUT would go; @id (NULL: none) is checked like a path
 * id unless the object lacks it, when the schema check names the missing
 * field. */
static int config_apply(struct api *a, const char *key, const struct api_endpoint *ep,
                        const char *id, bool check_id, const json_t *v, char *err, size_t errlen)
{
    struct api_reply r = {0};
    a->fault[0] = 0;
    if (!check_id || api_resource_id_valid(a, &r, id))
        api_endpoint_run(a, ep, id, v, &r);
    int status = r.status;
    api_reply_release(&r);
    if (status >= 200 && status < 300)
        return 0;
    snprintf(err, errlen, "\"%s\": %s", key, a->fault[0] ? a->fault : "failed");
    return -EINVAL;
}

/* @v for the resource of @key: an array of objects when its path takes an
 * id (/drives/{id}), each with the member the schema matches to the id. */
static int config_resource(struct api *a, const char *key, const json_t *v, char *err,
                           size_t errlen)
{
    const struct api_route *rt = api_route_find(key);
    if (rt->kind != API_ROUTE_ID)
        return config_apply(a, key, &rt->put, NULL, false, v, err, errlen);
    if (!json_is_array(v)) {
        snprintf(err, errlen, "\"%s\" must be an array", key);
        return -EINVAL;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *id = json_is_object(e) ? api_json_str(e, rt->put.schema->id_field) : NULL;
        int r = config_apply(a, key, &rt->put, id ? id : "", id != NULL, e, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Every key of @root known; 0, or -EINVAL with a sentence in @err. */
static int config_keys_known(const json_t *root, char *err, size_t errlen)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)root, key, v)
    {
        bool found = false;
        for (size_t i = 0; i < NKEYS; i++)
            found |= !strcmp(key, config_keys[i]);
        for (size_t i = 0; i < NUNSUPPORTED; i++) {
            if (!strcmp(key, config_unsupported[i]) && !json_is_null(v)) {
                snprintf(err, errlen, "\"%s\" is not supported by arcvm yet", key);
                return -EINVAL;
            }
            found |= !strcmp(key, config_unsupported[i]);
        }
        if (!found) {
            snprintf(err, errlen,
                     "unknown key \"%s\" in the configuration (expected boot-source, drives, "
                     "machine-config, logger, metrics, entropy, network-interfaces, vsock or "
                     "balloon)",
                     key);
            return -EINVAL;
        }
    }
    return 0;
}

int api_load_config(struct api *a, const char *json, size_t len, char *err, size_t errlen)
{
    char perr[256];
    json_t *root = api_json_parse(json, len, perr, sizeof(perr));
    if (!root) {
        snprintf(err, errlen, "the configuration is not valid JSON: %s", perr);
        return -EINVAL;
    }
    int r = config_keys_known(root, err, errlen);
    for (size_t i = 0; i < NKEYS && !r; i++) {
        const json_t *v = json_object_get(root, config_keys[i]);
        if (v && !json_is_null(v))
            r = config_resource(a, config_keys[i], v, err, errlen);
    }
    json_decref(root);
    return r;
}
