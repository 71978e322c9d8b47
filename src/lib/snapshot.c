/* snapshot.c - the library's snapshot calls and the machine it runs
 * (arcvm.h: arcvm_snapshot_*, arcvm_get_config). */
#include "arcvm.h"

#include "lib/handle.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"

_Static_assert(ARCVM_SNAPSHOT_VERSION == SNAP_FORMAT_VERSION, "snapshot versions agree");

#include <errno.h>
#include <stdio.h>
#include <string.h>

int arcvm_snapshot_create(arcvm *h, enum arcvm_snapshot_type type, const char *state_path,
                          const char *mem_path)
{
    struct vm *vm = lib_started(h, "create a snapshot");
    if (!vm)
        return -EINVAL;
    if (type != ARCVM_SNAPSHOT_FULL && type != ARCVM_SNAPSHOT_DIFF)
        return lib_fail(h, -EINVAL, "unknown snapshot type %d", (int)type);
    char err[sizeof(h->err)];
    struct vm_snapshot_params p = {.state_path = state_path, .mem_path = mem_path,
                                   .diff = type == ARCVM_SNAPSHOT_DIFF};
    int r = vm_snapshot_create(vm, &p, err, sizeof(err));
    return r < 0 ? lib_fail(h, r, "%s", err) : 0;
}

int arcvm_snapshot_load(arcvm *h, const struct arcvm_snapshot_load *a)
{
    if (!a)
        return lib_fail(h, -EINVAL, "no snapshot to load");
    if (!a->mem_path == !a->uffd_path)
        return lib_fail(h, -EINVAL, "give the snapshot's memory as a file or as a page-fault "
                                    "handler's socket (one of the two)");
    if (a->nnet_overrides > ARCVM_MAX_NETS)
        return lib_fail(h, -EINVAL, "at most %d network overrides", ARCVM_MAX_NETS);
    struct vm_net_override nets[ARCVM_MAX_NETS];
    for (unsigned i = 0; i < a->nnet_overrides; i++) {
        const struct arcvm_net_override *o = &a->net_overrides[i];
        if (!o->iface_id || !o->host_dev_name || !*o->host_dev_name)
            return lib_fail(h, -EINVAL, "a network override needs an interface id and a "
                                        "host device name");
        nets[i] = (struct vm_net_override){o->iface_id, o->host_dev_name};
    }
    struct vm_restore_params p = {
        .state_path = a->state_path, .mem_path = a->mem_path ? a->mem_path : a->uffd_path,
        .mem_uffd = a->uffd_path != NULL,
        .clock_realtime = a->clock_realtime, .resume = a->resume,
        .track_dirty = a->track_dirty_pages,
        .nnet_overrides = a->nnet_overrides, .net_overrides = nets,
        .vsock_uds_path = a->vsock_uds_path};
    pthread_mutex_lock(&h->lock);
    int r;
    if (h->vm) {
        r = lib_fail(h, -EINVAL, "a snapshot is loaded into a VM that was never started; this "
                                 "one is %s", vm_state_name(vm_get_state(h->vm)));
    } else {
        struct vm *vm;
        r = vm_restore(&vm, &h->cfg, &p, h->err, sizeof(h->err));
        if (r == 0)
            h->vm = vm;
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_set_dirty_tracking(arcvm *h, int on)
{
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (h->vm)
        r = lib_fail(h, -EBUSY, "dirty page tracking is chosen before the VM starts");
    else
        h->cfg.track_dirty = on != 0;
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_snapshot_merge(const char *base_mem, unsigned n, const char *const *states,
                         const char *const *mems, const char *state_out, char *err,
                         size_t errlen)
{
    return vm_snapshot_merge(base_mem, n, states, mems, state_out, err, errlen);
}

int arcvm_snapshot_version(const char *path, unsigned *version, char *err, size_t errlen)
{
    return vm_snapshot_version(path, version, err, errlen);
}

int arcvm_get_config(arcvm *h, struct arcvm_config *o)
{
    pthread_mutex_lock(&h->lock);
    const struct vm_config *c = h->vm ? vm_get_config(h->vm) : &h->cfg;
    memset(o, 0, sizeof(*o));
    o->vcpus = c->vcpus;
    o->mem_bytes = c->mem_bytes;
    o->kernel = c->kernel_path;
    o->initrd = c->initrd_path;
    o->cmdline = c->cmdline;
    o->ndisks = c->ndisks;
    for (unsigned i = 0; i < c->ndisks && i < ARCVM_MAX_DISKS; i++) {
        o->disks[i].path = c->disks[i].path;
        o->disks[i].id = c->disks[i].id;
        o->disks[i].readonly = c->disks[i].readonly;
    }
    o->nnets = c->nnets;
    for (unsigned i = 0; i < c->nnets && i < ARCVM_MAX_NETS; i++) {
        o->nets[i].id = c->nets[i].id;
        o->nets[i].tap = c->nets[i].backend == NET_TAP ? c->nets[i].tap : NULL;
        memcpy(o->nets[i].mac, c->nets[i].mac, 6);
        o->nets[i].mac_set = c->nets[i].mac_set;
    }
    o->vsock = c->vsock.enabled;
    o->vsock_cid = c->vsock.cid;
    o->vsock_uds_path = c->vsock.uds_path;
    o->balloon = c->balloon.enabled;
    o->balloon_mib = c->balloon.target_mib;
    o->balloon_deflate_on_oom = c->balloon.deflate_on_oom;
    o->balloon_free_page_reporting = c->balloon.free_page_reporting;
    o->balloon_stats_s = c->balloon.stats_interval_s;
    o->rng = c->rng;
    pthread_mutex_unlock(&h->lock);
    return 0;
}
