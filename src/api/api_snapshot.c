/* api_snapshot.c - /snapshot/create and /snapshot/load, as Firecracker
 * serves them: create on a paused microVM; load instead of configuring and
 * starting one, after which GET /vm/config shows the restored machine. */
#include "api/api_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const snapshot_types[] = {"Full", "Diff"};
static const char *const backend_types[] = {"File", "Uffd"};

/* ---- /snapshot/create ---------------------------------------------------- */

static bool create_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *t = api_json_str(b, "snapshot_type");
    if (t && api_variant(t, snapshot_types, 2) < 0) {
        api_fault(a, r, 400, "unknown variant `%s`, expected `Full` or `Diff`", t);
        return false;
    }
    return true;
}

static const struct api_json_field create_fields[] = {
    {"snapshot_type", API_JSON_STRING, false, 0},
    {"snapshot_path", API_JSON_STRING, true, 0},
    {"mem_file_path", API_JSON_STRING, true, 0},
    {"version", API_JSON_STRING, false, 0}, /* Firecracker < 1.4 sent one */
};
const struct api_schema api_snapshot_create_schema = {
    .what = "snapshot create", API_SCHEMA_FIELDS(create_fields), .check = create_check};

void api_snapshot_create(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *type = api_json_str(b, "snapshot_type");
    bool diff = type && !strcmp(type, "Diff");
    if (diff && !a->track_dirty) {
        api_fault(a, r, 400, "Diff snapshots need dirty page tracking: set track_dirty_pages "
                             "in /machine-config before boot (or in /snapshot/load).");
        return;
    }
    if (!a->ops->snapshot_create) {
        api_fault(a, r, 400, "Snapshots are not supported by this VM.");
        return;
    }
    if (a->ops->get_state(a->opt.vm_ops_ctx, a->vm) != ARCVM_STATE_PAUSED) {
        api_fault(a, r, 400, "Cannot create a snapshot of a microVM that is not paused: "
                             "PATCH /vm {\"state\": \"Paused\"} first.");
        return;
    }
    const char *state = api_json_str(b, "snapshot_path"), *mem = api_json_str(b, "mem_file_path");
    if (a->ops->snapshot_create(a->opt.vm_ops_ctx, a->vm,
                                diff ? ARCVM_SNAPSHOT_DIFF : ARCVM_SNAPSHOT_FULL, state, mem) < 0) {
        api_fault(a, r, 400, "Cannot create the snapshot: %s",
                  a->ops->last_error(a->opt.vm_ops_ctx, a->vm));
        return;
    }
    api_log(a, 2, "snapshot saved to %s and %s", state, mem);
    api_ok(r);
}

/* ---- /snapshot/load ------------------------------------------------------ */

static bool object_ok(struct api *a, struct api_reply *r, const json_t *v, const char *what,
                      const struct api_json_field *f, size_t n)
{
    char err[256];
    if (api_json_check(v, f, n, false, what, err, sizeof(err)) < 0) {
        api_fault(a, r, 400, "%s", err);
        return false;
    }
    return true;
}

static const struct api_json_field backend_fields[] = {
    {"backend_type", API_JSON_STRING, true, 0},
    {"backend_path", API_JSON_STRING, true, 0},
};
static const struct api_json_field override_fields[] = {
    {"iface_id", API_JSON_STRING, true, 0},
    {"host_dev_name", API_JSON_STRING, true, 0},
};
static const struct api_json_field vsock_override_fields[] = {
    {"uds_path", API_JSON_STRING, true, 0},
};

static bool load_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    bool file = api_json_has(b, "mem_file_path"), backend = api_json_has(b, "mem_backend");
    if (file == backend) {
        api_fault(a, r, 400, "Give exactly one of mem_backend and mem_file_path.");
        return false;
    }
    if (backend) {
        const json_t *m = json_object_get(b, "mem_backend");
        if (!object_ok(a, r, m, "mem_backend", backend_fields, 2))
            return false;
        const char *t = api_json_str(m, "backend_type");
        if (api_variant(t, backend_types, 2) < 0) {
            api_fault(a, r, 400, "unknown variant `%s`, expected `File` or `Uffd`", t);
            return false;
        }
    }
    const json_t *nets = json_object_get(b, "network_overrides");
    if (nets && !json_is_null(nets)) {
        if (json_array_size(nets) > API_MAX_NETS) {
            api_fault(a, r, 400, "At most %d network overrides.", API_MAX_NETS);
            return false;
        }
        size_t i;
        const json_t *o;
        json_array_foreach(nets, i, o) if (!object_ok(a, r, o, "network override",
                                                      override_fields, 2)) return false;
    }
    const json_t *vs = json_object_get(b, "vsock_override");
    if (vs && !json_is_null(vs) && !object_ok(a, r, vs, "vsock override", vsock_override_fields, 1))
        return false;
    return true;
}

static const struct api_json_field load_fields[] = {
    {"snapshot_path", API_JSON_STRING, true, 0},
    {"mem_file_path", API_JSON_STRING, false, 0},
    {"mem_backend", API_JSON_OBJECT, false, 0},
    {"enable_diff_snapshots", API_JSON_BOOL, false, 0},
    {"track_dirty_pages", API_JSON_BOOL, false, 0},
    {"resume_vm", API_JSON_BOOL, false, 0},
    {"network_overrides", API_JSON_ARRAY, false, 0},
    {"vsock_override", API_JSON_OBJECT, false, 0},
    {"clock_realtime", API_JSON_BOOL, false, 0},
};
const struct api_schema api_snapshot_load_schema = {
    .what = "snapshot load", API_SCHEMA_FIELDS(load_fields), .check = load_check};

/* Firecracker loads a snapshot only into a microVM nothing was configured
 * for: the snapshot brings the whole machine. */
static bool configured(const struct api *a)
{
    return a->kernel || a->ndrives || a->nnets || a->vsock.set || a->balloon.set || a->entropy ||
           a->machine_set;
}

/* GET /vm/config after a load: the machine the snapshot brought. */
static void adopt_config(struct api *a, const struct arcvm_config *c)
{
    a->vcpus = c->vcpus;
    a->mem_mib = c->mem_bytes >> 20;
    a->kernel = api_strdup(c->kernel);
    a->initrd = api_strdup(c->initrd);
    a->boot_args = api_strdup(c->cmdline);
    a->entropy = c->rng;
    for (unsigned i = 0; i < c->ndisks && i < API_MAX_DRIVES; i++) {
        struct api_drive *d = &a->drives[a->ndrives++];
        d->id = api_strdup(c->disks[i].id ? c->disks[i].id : "");
        d->path = api_strdup(c->disks[i].path);
        d->ro = c->disks[i].readonly;
    }
    for (unsigned i = 0; i < c->nnets && i < API_MAX_NETS; i++) {
        struct api_net *n = &a->nets[a->nnets++];
        n->id = api_strdup(c->nets[i].id ? c->nets[i].id : "");
        n->tap = api_strdup(c->nets[i].tap);
        if (c->nets[i].mac_set) {
            char mac[18];
            const uint8_t *m = c->nets[i].mac;
            snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                     m[4], m[5]);
            n->mac = api_strdup(mac);
        }
    }
    if (c->vsock)
        a->vsock = (struct api_vsock){true, c->vsock_cid, api_strdup(c->vsock_uds_path)};
    if (c->balloon)
        a->balloon = (struct api_balloon){true, c->balloon_mib, c->balloon_deflate_on_oom,
                                          c->balloon_free_page_reporting, c->balloon_stats_s, false};
}

void api_snapshot_load(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (configured(a)) {
        api_fault(a, r, 400, "Loading a microVM snapshot not allowed after configuring "
                             "boot-specific resources.");
        return;
    }
    const json_t *m = json_object_get(b, "mem_backend");
    bool uffd = m && !strcmp(api_json_str(m, "backend_type"), "Uffd");
    if (!a->ops->snapshot_load) {
        api_fault(a, r, 400, "Snapshots are not supported by this VM.");
        return;
    }
    struct arcvm_net_override nets[API_MAX_NETS];
    struct arcvm_snapshot_load p = {
        .state_path = api_json_str(b, "snapshot_path"),
        .mem_path = uffd ? NULL : m ? api_json_str(m, "backend_path") : api_json_str(b, "mem_file_path"),
        .uffd_path = uffd ? api_json_str(m, "backend_path") : NULL,
        .clock_realtime = api_json_bool(b, "clock_realtime", false),
        .resume = api_json_bool(b, "resume_vm", false),
        /* enable_diff_snapshots: its name before Firecracker 1.6 */
        .track_dirty_pages = api_json_bool(b, "track_dirty_pages", false) ||
                             api_json_bool(b, "enable_diff_snapshots", false),
        .net_overrides = nets};
    const json_t *ov = json_object_get(b, "network_overrides");
    size_t i;
    const json_t *o;
    json_array_foreach(ov, i, o) nets[p.nnet_overrides++] = (struct arcvm_net_override){
        api_json_str(o, "iface_id"), api_json_str(o, "host_dev_name")};
    const json_t *vs = json_object_get(b, "vsock_override");
    p.vsock_uds_path = vs ? api_json_str(vs, "uds_path") : NULL;

    arcvm *vm = a->vm;
    int rc = api_set_process_side(a, vm);
    if (rc == 0)
        rc = a->ops->snapshot_load(a->opt.vm_ops_ctx, vm, &p);
    if (rc < 0) {
        api_fault(a, r, 400, "Cannot load the snapshot: %s",
                  a->ops->last_error(a->opt.vm_ops_ctx, vm));
        api_fresh_handle(a);
        return;
    }
    struct arcvm_config c;
    if (a->ops->get_config && a->ops->get_config(a->opt.vm_ops_ctx, vm, &c) == 0)
        adopt_config(a, &c);
    a->track_dirty = p.track_dirty_pages;
    a->started = true;
    api_log(a, 2, "the microVM was restored from %s%s", p.state_path,
            p.resume ? " and runs" : " and is paused");
    if (a->opt.vm_started)
        a->opt.vm_started(a->opt.vm_started_arg);
    api_ok(r);
}
