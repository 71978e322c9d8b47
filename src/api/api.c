/* api.c - the core of the Firecracker-compatible control plane: the struct
 * api, the one route table and the dispatcher that serves every endpoint in
 * the same steps (route, method, body, schema, boot rule, handler, counters).
 * The endpoints live in a file per resource; see api_internal.h. */
#include "api/api_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    api_pmem_release_all(a);
    api_mmds_release(a);
    for (unsigned i = 0; i < a->nshares; i++)
        api_share_release(&a->shares[i]);
    free(a->kernel);
    free(a->initrd);
    free(a->boot_args);
    free(a->hv_device);
    free(a->vsock.uds_path);
    api_cpu_release(a);
    api_serial_release(a);
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
    a->serial_fd = -1;
    if (!a->opt.mmds_size_limit)
        a->opt.mmds_size_limit = a->opt.max_body;
    if (arcvm_create(&a->vm) < 0)
        goto oom;
    arcvm_mmds_set_size_limit(a->vm, a->opt.mmds_size_limit);
    /* A bad filter file is refused now, before the API serves anything. */
    if ((o->no_seccomp || o->seccomp_filter) &&
        arcvm_set_seccomp(a->vm, !o->no_seccomp, o->seccomp_filter) < 0) {
        snprintf(err, errlen, "%s", arcvm_last_error(a->vm));
        api_destroy(a);
        return -EINVAL;
    }
    *out = a;
    return 0;
oom:
    api_destroy(a);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

int api_sandbox(struct api *a, int kind, char *err, size_t errlen)
{
    int r = arcvm_seccomp_thread(a->vm, (enum arcvm_thread)kind);
    if (r < 0)
        snprintf(err, errlen, "%s", arcvm_last_error(a->vm));
    return r;
}

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

/* Replace with '?' every byte of @s that does not start a whole, valid UTF-8
 * sequence (RFC 3629: no overlongs, surrogates or code points past
 * U+10FFFF), as jansson checks. A fault may quote the request path, which
 * is raw bytes from the client, and truncation to a->fault may split a
 * character: without this json_pack() refuses the message and the client
 * gets a bodiless 500 instead of its 4xx (found by tests/fuzz/fuzz_api). */
static void utf8_scrub(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        unsigned n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3
                                 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
        uint32_t c = n == 1 ? *p : n == 2 ? *p & 0x1fu : n == 3 ? *p & 0x0fu : *p & 0x07u;
        for (unsigned i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) { /* also stops at the NUL */
                n = 0;
                break;
            }
            c = c << 6 | (p[i] & 0x3fu);
        }
        if (n == 0 || (n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
            (n == 4 && (c < 0x10000 || c > 0x10ffff))) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void api_fault(struct api *a, struct api_reply *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->fault, sizeof(a->fault), fmt, ap);
    va_end(ap);
    utf8_scrub(a->fault);
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

/* ---- the route table ---------------------------------------------------- */

#define PLAIN API_ROUTE_PLAIN
#define ID    API_ROUTE_ID
#define SUB   API_ROUTE_SUB
#define NONE  API_CTR_NONE
#define ANY   API_ANYTIME
#define PRE   API_PRE_BOOT
#define POST  API_POST_BOOT
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
    /* arcvm's own: virtio-fs shares, keyed by their tag. */
    {"shared-dirs", NULL, ID, .put = {api_share_put, NONE, PRE, &api_share_put_schema}},
    {"vsock", NULL, PLAIN, .put = {api_vsock_put, API_CTR_PUT_VSOCK, PRE, &api_vsock_schema}},
    /* Balloon updates change the configuration before boot, the device after. */
    {"balloon", NULL, PLAIN, .get = {api_balloon_get, NONE, ANY, NULL},
     .put = {api_balloon_put, API_CTR_PUT_BALLOON, PRE, &api_balloon_put_schema},
     .patch = {api_balloon_patch, API_CTR_PATCH_BALLOON, ANY, &api_balloon_patch_schema}},
    {"balloon", "statistics", SUB, .get = {api_balloon_stats_get, NONE, ANY, NULL},
     .patch = {api_balloon_stats_patch, API_CTR_PATCH_BALLOON, ANY,
               &api_balloon_stats_patch_schema}},
    {"balloon", "hinting/start", SUB,
     .patch = {api_balloon_hint_start, NONE, POST, &api_balloon_hint_start_schema}},
    {"balloon", "hinting/stop", SUB,
     .patch = {api_balloon_hint_stop, NONE, POST, &api_balloon_hint_stop_schema}},
    {"balloon", "hinting/status", SUB, .get = {api_balloon_hint_status, NONE, POST, NULL}},
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
    {"cpu-config", NULL, PLAIN,
     .put = {api_cpu_config_put, API_CTR_PUT_CPU_CONFIG, PRE, &api_cpu_config_schema}},
    /* The metadata store changes any time; its configuration before boot. */
    {"mmds", NULL, PLAIN, .get = {api_mmds_get, NONE, ANY, NULL},
     .put = {api_mmds_put, NONE, ANY, NULL}, .patch = {api_mmds_patch, NONE, ANY, NULL}},
    {"mmds", "config", SUB,
     .put = {api_mmds_config_put, NONE, PRE, &api_mmds_config_schema}},
    {"snapshot", "create", SUB,
     .put = {api_snapshot_create, NONE, POST, &api_snapshot_create_schema}},
    {"snapshot", "load", SUB,
     .put = {api_snapshot_load, NONE, PRE, &api_snapshot_load_schema}},
    {"serial", NULL, PLAIN, .put = {api_serial_put, API_CTR_PUT_SERIAL, PRE, &api_serial_schema}},
    {"pmem", NULL, ID, .put = {api_pmem_put, API_CTR_PUT_PMEM, PRE, &api_pmem_put_schema},
     .patch = {api_pmem_patch, API_CTR_PATCH_PMEM, POST, &api_pmem_patch_schema}},
    /* PUT configures the region before boot; PATCH asks the guest to plug. */
    {"hotplug", "memory", SUB, .get = {api_memhp_get, NONE, ANY, NULL},
     .put = {api_memhp_put, NONE, PRE, &api_memhp_put_schema},
     .patch = {api_memhp_patch, NONE, POST, &api_memhp_patch_schema}},
};
#undef PLAIN
#undef ID
#undef SUB
#undef NONE
#undef ANY
#undef PRE
#undef POST

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const struct api_route *api_route_find_sub(const char *name, const char *sub)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (!strcmp(routes[i].name, name) && routes[i].kind == API_ROUTE_SUB &&
            !strcmp(routes[i].sub, sub))
            return &routes[i];
    return NULL;
}

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

/* Whether the path segments after the first, @seg[1..@nseg), are @sub
 * ("statistics", or "hinting/start" for a three-segment path). */
static bool sub_is(const char *sub, char *const seg[3], int nseg)
{
    size_t n = strlen(seg[1]);
    if (nseg == 2)
        return !strcmp(sub, seg[1]);
    return !strncmp(sub, seg[1], n) && sub[n] == '/' && !strcmp(sub + n + 1, seg[2]);
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
        else if (nseg >= 2 && c->kind == API_ROUTE_SUB && sub_is(c->sub, seg, nseg))
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
    if (m < 0 || !ep->fn) {
        count(a, -1, true, false);
        r->allow = allow_header(rt);
        api_fault(a, r, 405, "Invalid request method and/or path: %s %s.", method, path);
        return;
    }
    if (m == 0 && len) {
        api_fault(a, r, 400, "GET request cannot have a body.");
    } else if (m > 0 && !len && ep->schema && !ep->schema->body_optional) {
        api_fault(a, r, 400, "Empty %s request.", method);
    } else if (len > a->opt.max_body) {
        api_fault(a, r, 413, "The request body is too large: at most %zu bytes.", a->opt.max_body);
    } else if (id && !api_resource_id_valid(a, r, id)) {
        /* answered */
    } else {
        json_t *b = NULL;
        char err[512];
        /* An optional body left out reads as an empty object. */
        if (m > 0 && !len)
            b = json_object();
        if (m > 0 && len && !(b = api_json_parse(body, len, err, sizeof(err))))
            deserialize_fault(a, r, err);
        else
            api_endpoint_run(a, ep, id, b, r);
        json_decref(b);
    }
    /* Only PUT and PATCH counters have a matching _fails counter. */
    count(a, (int)ep->ctr, r->status >= 400, m > 0);
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
