/* api_instance.c - the microVM as a whole: GET / and /version, /actions
 * (InstanceStart, SendCtrlAltDel, FlushMetrics), PATCH /vm (pause and
 * resume), GET /vm/config (every resource's view) and arcvm's GET /vcpus. */
#include "api/api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    json_t *shares = json_array();
    for (unsigned i = 0; shares && i < a->nshares; i++)
        json_array_append_new(shares, api_share_json(&a->shares[i]));
    json_t *cfg =
        json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "balloon", api_balloon_json(a),
                  "drives", drives, "boot-source", api_boot_source_json(a), "cpu-config", api_cpu_json(a), "logger",
                  api_sinks_logger_json(a), "machine-config", api_machine_json(a), "metrics",
                  api_sinks_metrics_json(a), "mmds-config", api_mmds_config_json(a), "network-interfaces", nets, "vsock",
                  api_vsock_json(a), "entropy", api_entropy_json(a));
    if (cfg) {
        json_object_set_new(cfg, "pmem", api_pmem_json(a));
        json_object_set_new(cfg, "memory-hotplug", api_memhp_json(a));
        json_object_set_new(cfg, "shared-dirs", shares);
    } else {
        json_decref(shares);
    }
    api_reply_json(r, 200, cfg);
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
