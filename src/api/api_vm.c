/* api_vm.c - the VM behind the API: the library's calls as the default VM
 * operations, InstanceStart (the pre-boot configuration turned into library
 * calls), and watching the VM until it stops. See api.h. */
#include "api/api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int lib_snapshot_create(void *c, arcvm *vm, enum arcvm_snapshot_type type,
                               const char *state, const char *mem)
{
    (void)c;
    return arcvm_snapshot_create(vm, type, state, mem);
}
static int lib_snapshot_load(void *c, arcvm *vm, const struct arcvm_snapshot_load *p)
{
    (void)c;
    return arcvm_snapshot_load(vm, p);
}
static int lib_get_config(void *c, arcvm *vm, struct arcvm_config *out)
{
    (void)c;
    return arcvm_get_config(vm, out);
}
static int lib_net_rate_limiters(void *c, arcvm *vm, const char *id,
                                 const struct arcvm_rate_limiter *rx,
                                 const struct arcvm_rate_limiter *tx)
{
    (void)c;
    return arcvm_set_net_rate_limiters(vm, id, rx, tx);
}
static int lib_disk_rate_limiter(void *c, arcvm *vm, const char *id,
                                 const struct arcvm_rate_limiter *rl)
{
    (void)c;
    return arcvm_set_disk_rate_limiter(vm, id, rl);
}

static int lib_disk_path(void *c, arcvm *vm, const char *id, const char *path)
{
    (void)c;
    return arcvm_update_disk_path(vm, id, path);
}

static int lib_pmem_rate_limiter(void *c, arcvm *vm, const char *id,
                                 const struct arcvm_rate_limiter *rl)
{
    (void)c;
    return arcvm_set_pmem_rate_limiter(vm, id, rl);
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
    .snapshot_create = lib_snapshot_create,
    .snapshot_load = lib_snapshot_load,
    .get_config = lib_get_config,
    .disk_rate_limiter = lib_disk_rate_limiter,
    .disk_path = lib_disk_path,
    .net_rate_limiters = lib_net_rate_limiters,
    .pmem_rate_limiter = lib_pmem_rate_limiter,
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

int api_set_process_side(struct api *a, arcvm *vm)
{
    /* PUT /serial: output to its file and, as in Firecracker, no input. */
    int in = a->serial_fd >= 0 ? -1 : a->opt.console_in;
    int out = a->serial_fd >= 0 ? a->serial_fd : a->opt.console_out;
    int r = arcvm_set_console(vm, in < 0 && out < 0 ? ARCVM_CONSOLE_NONE : ARCVM_CONSOLE_SERIAL,
                              in, out);
    if (!r)
        r = arcvm_set_console_limits(vm, &a->serial_rl, a->serial_fd >= 0);
    if (!r)
        r = arcvm_set_boot_timer(vm, a->opt.boot_timer);
    if (!r && a->hv_device)
        r = arcvm_set_hypervisor_device(vm, a->hv_device);
    if (!r && a->opt.no_kvm_check)
        r = arcvm_set_kvm_check(vm, 0);
    if (!r && (a->opt.no_seccomp || a->opt.seccomp_filter))
        r = arcvm_set_seccomp(vm, !a->opt.no_seccomp, a->opt.seccomp_filter);
    if (!r && a->track_dirty)
        r = arcvm_set_dirty_tracking(vm, 1);
    return r;
}

void api_fresh_handle(struct api *a)
{
    arcvm *fresh;
    if (arcvm_create(&fresh) == 0) {
        /* The metadata is not configuration: it carries over. */
        char *data = arcvm_mmds_get(a->vm);
        arcvm_mmds_set_size_limit(fresh, a->opt.mmds_size_limit);
        if (data && strcmp(data, "{}"))
            arcvm_mmds_put(fresh, data);
        free(data);
        arcvm_destroy(a->vm);
        a->vm = fresh;
    }
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
        r = arcvm_set_huge_pages(vm, a->huge_pages);
    if (!r)
        r = api_set_process_side(a, vm);
    for (unsigned i = 0; !r && i < a->ndrives; i++) {
        char serial[API_SERIAL_MAX + 1];
        snprintf(serial, sizeof(serial), "%s", a->drives[i].id);
        r = arcvm_add_disk(vm, a->drives[i].path, a->drives[i].ro, serial);
        if (!r && a->drives[i].has_rl)
            r = arcvm_set_disk_rate_limiter(vm, serial, &a->drives[i].rl);
    }
    if (!r) /* a root pmem device adds root=/dev/pmemN itself */
        r = api_pmem_apply(a, vm);
    for (unsigned i = 0; !r && i < a->nnets; i++) {
        /* The fields were checked when set: no ',' can reach the spec. */
        char spec[160];
        const struct api_net *n = &a->nets[i];
        snprintf(spec, sizeof(spec), "tap=%s%s%s,id=%s", n->tap, n->mac ? ",mac=" : "",
                 n->mac ? n->mac : "", n->id);
        r = arcvm_add_net(vm, spec);
        if (!r)
            r = arcvm_set_net_rate_limiters(vm, n->id, &n->rx, &n->tx);
    }
    for (unsigned i = 0; !r && i < a->nshares; i++)
        r = arcvm_add_share(vm, a->shares[i].path, a->shares[i].tag, a->shares[i].ro);
    if (!r)
        r = api_mmds_apply(a, vm);
    if (!r)
        r = arcvm_set_rng(vm, a->entropy);
    if (!r && a->entropy)
        r = arcvm_set_rng_rate_limiter(vm, &a->entropy_rl);
    if (!r && a->vsock.set)
        r = arcvm_set_vsock(vm, a->vsock.cid, a->vsock.uds_path);
    if (!r)
        r = api_cpu_apply(a, vm);
    if (!r && a->memhp.set)
        r = arcvm_set_memory_hotplug(vm, a->memhp.total_mib, a->memhp.block_mib,
                                     a->memhp.slot_mib);
    if (!r && a->balloon.set)
        r = arcvm_set_balloon(vm, a->balloon.amount_mib, a->balloon.deflate_on_oom,
                              a->balloon.stats_s, a->balloon.reporting);
    if (!r && a->balloon.set && a->balloon.hinting)
        r = arcvm_set_balloon_hinting(vm, 1);
    free(cl);
    if (r < 0) {
        snprintf(err, errlen, "Cannot start microvm: %s",
                 r == -ENOMEM ? "out of memory" : arcvm_last_error(vm));
    } else if ((r = a->ops->start(a->opt.vm_ops_ctx, vm)) < 0) {
        snprintf(err, errlen, "Cannot start microvm: %s",
                 a->ops->last_error(a->opt.vm_ops_ctx, vm));
    }
    if (r < 0) {
        api_fresh_handle(a);
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
