/* api_metrics.c - Firecracker-style metrics lines; see api_metrics.h. */
#include "api/api_metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *group, *name;
} ctr_names[API_CTR_COUNT] = {
    [API_CTR_GET_INSTANCE_INFO] = {"get_api_requests", "instance_info_count"},
    [API_CTR_GET_MACHINE_CFG] = {"get_api_requests", "machine_cfg_count"},
    [API_CTR_GET_VMM_VERSION] = {"get_api_requests", "vmm_version_count"},
    [API_CTR_GET_VM_CONFIG] = {"get_api_requests", "vm_config_count"},
    [API_CTR_PUT_ACTIONS] = {"put_api_requests", "actions_count"},
    [API_CTR_PUT_ACTIONS_FAILS] = {"put_api_requests", "actions_fails"},
    [API_CTR_PUT_BOOT_SOURCE] = {"put_api_requests", "boot_source_count"},
    [API_CTR_PUT_BOOT_SOURCE_FAILS] = {"put_api_requests", "boot_source_fails"},
    [API_CTR_PUT_DRIVE] = {"put_api_requests", "drive_count"},
    [API_CTR_PUT_DRIVE_FAILS] = {"put_api_requests", "drive_fails"},
    [API_CTR_PUT_LOGGER] = {"put_api_requests", "logger_count"},
    [API_CTR_PUT_LOGGER_FAILS] = {"put_api_requests", "logger_fails"},
    [API_CTR_PUT_MACHINE_CFG] = {"put_api_requests", "machine_cfg_count"},
    [API_CTR_PUT_MACHINE_CFG_FAILS] = {"put_api_requests", "machine_cfg_fails"},
    [API_CTR_PUT_METRICS] = {"put_api_requests", "metrics_count"},
    [API_CTR_PUT_METRICS_FAILS] = {"put_api_requests", "metrics_fails"},
    [API_CTR_PUT_NETWORK] = {"put_api_requests", "network_count"},
    [API_CTR_PUT_NETWORK_FAILS] = {"put_api_requests", "network_fails"},
    [API_CTR_PUT_VSOCK] = {"put_api_requests", "vsock_count"},
    [API_CTR_PUT_VSOCK_FAILS] = {"put_api_requests", "vsock_fails"},
    [API_CTR_PUT_ENTROPY] = {"put_api_requests", "entropy_count"},
    [API_CTR_PUT_ENTROPY_FAILS] = {"put_api_requests", "entropy_fails"},
    [API_CTR_PUT_BALLOON] = {"put_api_requests", "balloon_count"},
    [API_CTR_PUT_BALLOON_FAILS] = {"put_api_requests", "balloon_fails"},
    [API_CTR_PATCH_DRIVE] = {"patch_api_requests", "drive_count"},
    [API_CTR_PATCH_DRIVE_FAILS] = {"patch_api_requests", "drive_fails"},
    [API_CTR_PATCH_NETWORK] = {"patch_api_requests", "network_count"},
    [API_CTR_PATCH_NETWORK_FAILS] = {"patch_api_requests", "network_fails"},
    [API_CTR_PATCH_MACHINE_CFG] = {"patch_api_requests", "machine_cfg_count"},
    [API_CTR_PATCH_MACHINE_CFG_FAILS] = {"patch_api_requests", "machine_cfg_fails"},
    [API_CTR_PATCH_VM] = {"patch_api_requests", "vm_count"},
    [API_CTR_PATCH_VM_FAILS] = {"patch_api_requests", "vm_fails"},
    [API_CTR_PATCH_BALLOON] = {"patch_api_requests", "balloon_count"},
    [API_CTR_PATCH_BALLOON_FAILS] = {"patch_api_requests", "balloon_fails"},
    [API_CTR_PUT_PMEM] = {"put_api_requests", "pmem_count"},
    [API_CTR_PUT_PMEM_FAILS] = {"put_api_requests", "pmem_fails"},
    [API_CTR_PATCH_PMEM] = {"patch_api_requests", "pmem_count"},
    [API_CTR_PATCH_PMEM_FAILS] = {"patch_api_requests", "pmem_fails"},
    [API_CTR_OTHER] = {"api_server", "other_requests_count"},
    [API_CTR_OTHER_FAILS] = {"api_server", "other_requests_fails"},
};

/* Increase of a counter since @prev; a counter that went backwards (a new
 * VM after a failed start) counts from zero. */
static uint64_t delta(uint64_t now, uint64_t prev)
{
    return now >= prev ? now - prev : now;
}

static json_t *group(json_t *root, const char *name)
{
    json_t *g = json_object_get(root, name);
    if (!g) {
        g = json_object();
        json_object_set_new(root, name, g);
    }
    return g;
}

static void put(json_t *obj, const char *name, uint64_t v)
{
    json_object_set_new(obj, name, json_integer((json_int_t)v));
}

static void put_block(json_t *obj, const struct arcvm_device_metrics *now,
                      const struct arcvm_device_metrics *prev, uint64_t sum[4])
{
    uint64_t v[4] = {
        delta(now->in_bytes, prev->in_bytes),           /* disk reads: data to the guest */
        delta(now->out_bytes, prev->out_bytes),         /* disk writes: data from the guest */
        delta(now->notifications, prev->notifications), /* guest kicks of the queue */
        delta(now->errors, prev->errors),
    };
    static const char *const names[4] = {"read_bytes", "write_bytes", "queue_event_count",
                                         "execute_fails"};
    for (int i = 0; i < 4; i++) {
        put(obj, names[i], v[i]);
        sum[i] += v[i];
    }
}

char *api_metrics_render(struct api_metrics *m, const struct api_metrics_input *in)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    put(root, "utc_timestamp_ms", in->utc_ms);
    json_t *srv = group(root, "api_server");
    put(srv, "process_startup_time_us", in->startup_us);
    put(srv, "process_startup_time_cpu_us", in->startup_cpu_us);
    /* Groups in Firecracker's order, even when a group has no counter yet. */
    group(root, "get_api_requests");
    group(root, "put_api_requests");
    group(root, "patch_api_requests");
    for (int i = 0; i < API_CTR_COUNT; i++)
        put(group(root, ctr_names[i].group), ctr_names[i].name, delta(in->ctr[i], m->ctr[i]));

    const struct arcvm_metrics *vm = in->vm, *pv = &m->vm;
    json_t *vcpu = group(root, "vcpu");
    put(vcpu, "exit_io_in", delta(vm->exits_io_in, pv->exits_io_in));
    put(vcpu, "exit_io_out", delta(vm->exits_io_out, pv->exits_io_out));
    put(vcpu, "exit_mmio_read", delta(vm->exits_mmio_read, pv->exits_mmio_read));
    put(vcpu, "exit_mmio_write", delta(vm->exits_mmio_write, pv->exits_mmio_write));
    put(vcpu, "failures", delta(vm->exits_failures, pv->exits_failures));

    /* "block" aggregates every disk; "block_<drive_id>" is one disk, as in
     * Firecracker. The k-th virtio-blk device is the k-th drive added. */
    json_t *block = group(root, "block");
    json_t *entropy = group(root, "entropy");
    json_t *net = group(root, "net");
    json_t *vsock = group(root, "vsock");
    uint64_t sum[4] = {0}, nsum[3] = {0};
    unsigned nblk = 0;
    static const struct arcvm_device_metrics zero;
    for (unsigned i = 0; i < vm->ndevices && i < ARCVM_MAX_DEVICES; i++) {
        const struct arcvm_device_metrics *d = &vm->devices[i];
        const struct arcvm_device_metrics *p = i < pv->ndevices ? &pv->devices[i] : &zero;
        if (!strcmp(d->kind, "virtio-blk")) {
            char name[96];
            const char *id = nblk < in->ndrives ? in->drive_ids[nblk] : d->id;
            snprintf(name, sizeof(name), "block_%s", id);
            json_t *one = json_object();
            put_block(one, d, p, sum);
            json_object_set_new(root, name, one);
            nblk++;
        } else if (!strcmp(d->kind, "virtio-net")) {
            /* "net" sums every NIC, "net_<iface_id>" is one, as in Firecracker. */
            uint64_t v[3] = {delta(d->in_bytes, p->in_bytes), delta(d->out_bytes, p->out_bytes),
                             delta(d->errors, p->errors)};
            char name[96];
            snprintf(name, sizeof(name), "net_%s", d->id[0] ? d->id : "eth");
            json_t *one = json_object();
            put(one, "rx_bytes_count", v[0]);
            put(one, "tx_bytes_count", v[1]);
            put(one, "event_fails", v[2]);
            json_object_set_new(root, name, one);
            for (int k = 0; k < 3; k++)
                nsum[k] += v[k];
        } else if (!strcmp(d->kind, "virtio-vsock")) {
            put(vsock, "rx_bytes_count", delta(d->in_bytes, p->in_bytes));
            put(vsock, "tx_bytes_count", delta(d->out_bytes, p->out_bytes));
            put(vsock, "event_fails", delta(d->errors, p->errors));
        } else if (!strcmp(d->kind, "virtio-rng")) {
            put(entropy, "entropy_event_count", delta(d->notifications, p->notifications));
            put(entropy, "entropy_bytes", delta(d->in_bytes, p->in_bytes));
            put(entropy, "entropy_event_fails", delta(d->errors, p->errors));
        }
    }
    static const char *const names[4] = {"read_bytes", "write_bytes", "queue_event_count",
                                         "execute_fails"};
    for (int i = 0; i < 4; i++)
        put(block, names[i], sum[i]);
    put(net, "rx_bytes_count", nsum[0]);
    put(net, "tx_bytes_count", nsum[1]);
    put(net, "event_fails", nsum[2]);
    if (!json_object_size(vsock)) {
        put(vsock, "rx_bytes_count", 0);
        put(vsock, "tx_bytes_count", 0);
        put(vsock, "event_fails", 0);
    }
    if (!json_object_size(entropy)) {
        put(entropy, "entropy_event_count", 0);
        put(entropy, "entropy_bytes", 0);
        put(entropy, "entropy_event_fails", 0);
    }

    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    memcpy(m->ctr, in->ctr, sizeof(m->ctr));
    m->vm = *in->vm;
    return line;
}
