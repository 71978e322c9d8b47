/* arcvm.c - the public C library: a thin layer over the VMM core.
 *
 * The handle holds a configuration until arcvm_start() turns it into a VM.
 * A handle lock serializes calls; it is never held while waiting for the
 * VM to stop, so arcvm_stop() from another thread always gets through.
 */
#include "arcvm.h"

#include "arch/arch.h"

#include "lib/handle.h"
#include "lib/internal.h"

#include "host/mmds.h"
#include "vmm/config.h"
#include "vmm/hostcheck.h"
#include "base/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((int)ARCVM_STATE_FAILED == (int)VM_FAILED, "state enums agree");
_Static_assert((int)ARCVM_EXIT_ERROR == (int)VM_EXIT_ERROR, "exit enums agree");

const char *arcvm_version(void)
{
    return ARCVM_VERSION;
}

const char *arcvm_kernel_formats(void)
{
    return arch_kernel_formats();
}

const char *arcvm_default_cmdline(void)
{
    return arch_default_cmdline();
}

int lib_fail(arcvm *h, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
    return err;
}

int arcvm_create(arcvm **out)
{
    arcvm *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    config_init(&h->cfg);
    h->mmds = mmds_create(0);
    if (!h->mmds) {
        free(h);
        return -ENOMEM;
    }
    *out = h;
    return 0;
}

void arcvm_destroy(arcvm *h)
{
    if (!h)
        return;
    vm_destroy(h->vm);
    mmds_destroy(h->mmds); /* after the NICs that borrowed it */
    config_release(&h->cfg);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

const char *arcvm_last_error(const arcvm *h)
{
    return h->err;
}

/* Run a setter under the lock, only before start. Variadic so that the body
 * may contain commas. */
#define SETTER(h, ...)                                                                             \
    do {                                                                                           \
        pthread_mutex_lock(&(h)->lock);                                                            \
        int r_ = 0;                                                                                \
        if ((h)->vm)                                                                               \
            r_ = lib_fail((h), -EBUSY, "the VM is already started: settings are fixed");               \
        else {                                                                                     \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
        pthread_mutex_unlock(&(h)->lock);                                                          \
        return r_;                                                                                 \
    } while (0)

static int set_str(arcvm *h, char **field, const char *v)
{
    char *d = NULL;
    if (v && !(d = strdup(v)))
        return lib_fail(h, -ENOMEM, "out of memory");
    free(*field);
    *field = d;
    return 0;
}

int arcvm_set_kernel(arcvm *h, const char *path)
{
    SETTER(h, r_ = set_str(h, &h->cfg.kernel_path, path));
}

int arcvm_set_initrd(arcvm *h, const char *path)
{
    SETTER(h, r_ = set_str(h, &h->cfg.initrd_path, path));
}

int arcvm_set_kernel_cache(arcvm *h, const char *dir)
{
    SETTER(h, r_ = set_str(h, &h->cfg.kernel_cache, dir));
}

int arcvm_set_cmdline(arcvm *h, const char *cmdline, int replace_defaults)
{
    SETTER(h, {
        r_ = set_str(h, &h->cfg.cmdline, cmdline);
        h->cfg.cmdline_replace = replace_defaults != 0;
    });
}

int arcvm_set_vcpus(arcvm *h, unsigned count)
{
    SETTER(h, {
        if (count == 0)
            r_ = lib_fail(h, -EINVAL, "0 vCPUs: a VM needs at least one");
        else
            h->cfg.vcpus = count;
    });
}

int arcvm_set_memory(arcvm *h, uint64_t bytes)
{
    SETTER(h, {
        if (bytes < CONFIG_MEM_MIN)
            r_ = lib_fail(h, -EINVAL, "memory %llu MiB is too small: give at least %llu MiB",
                      (unsigned long long)(bytes >> 20),
                      (unsigned long long)(CONFIG_MEM_MIN >> 20));
        else if (bytes & ((1ull << 20) - 1))
            r_ = lib_fail(h, -EINVAL, "memory must be a whole number of MiB");
        else
            h->cfg.mem_bytes = bytes;
    });
}

int arcvm_set_console(arcvm *h, enum arcvm_console mode, int in_fd, int out_fd)
{
    SETTER(h, {
        if (mode != ARCVM_CONSOLE_SERIAL && mode != ARCVM_CONSOLE_VIRTIO &&
            mode != ARCVM_CONSOLE_NONE) {
            r_ = lib_fail(h, -EINVAL, "unknown console mode %d", (int)mode);
        } else {
            h->cfg.console = mode == ARCVM_CONSOLE_SERIAL   ? CONSOLE_SERIAL
                             : mode == ARCVM_CONSOLE_VIRTIO ? CONSOLE_VIRTIO
                                                            : CONSOLE_NONE;
            h->cfg.console_in = in_fd;
            h->cfg.console_out = out_fd;
        }
    });
}

int arcvm_set_console_escape(arcvm *h, int on)
{
    SETTER(h, h->cfg.console_escape = on != 0);
}

int arcvm_add_disk_spec(arcvm *h, const char *spec)
{
    SETTER(h, {
        struct disk_config d;
        if (h->cfg.ndisks == CONFIG_MAX_DISKS)
            r_ = lib_fail(h, -E2BIG, "too many disks: at most %d", CONFIG_MAX_DISKS);
        else if (!spec)
            r_ = lib_fail(h, -EINVAL, "no disk description");
        else if (config_parse_disk(spec, &d, h->err, sizeof(h->err)) < 0)
            r_ = -EINVAL;
        else
            h->cfg.disks[h->cfg.ndisks++] = d;
    });
}

int arcvm_add_disk(arcvm *h, const char *path, int readonly, const char *id)
{
    char spec[4096];
    int n = snprintf(spec, sizeof(spec), "%s%s%s%s", path ? path : "", readonly ? ",ro" : "",
                     id ? ",id=" : "", id ? id : "");
    if (!path || !*path || strchr(path, ',') || (id && strchr(id, ',')) || n < 0 ||
        (size_t)n >= sizeof(spec))
        SETTER(h, r_ = lib_fail(h, -EINVAL, "disk path and id must be non-empty and contain no commas"));
    return arcvm_add_disk_spec(h, spec);
}

int arcvm_add_share_spec(arcvm *h, const char *spec)
{
    SETTER(h, {
        struct fs_config f;
        if (h->cfg.nshares == CONFIG_MAX_SHARES)
            r_ = lib_fail(h, -E2BIG, "too many shared directories: at most %d", CONFIG_MAX_SHARES);
        else if (!spec)
            r_ = lib_fail(h, -EINVAL, "no shared directory description");
        else if ((r_ = config_parse_share(spec, &f, h->err, sizeof(h->err))) == 0)
            h->cfg.shares[h->cfg.nshares++] = f;
    });
}

int arcvm_add_share(arcvm *h, const char *host_dir, const char *tag, int readonly)
{
    char spec[4200];
    int n = snprintf(spec, sizeof(spec), "%s:%s%s", host_dir ? host_dir : "", tag ? tag : "",
                     readonly ? ",ro" : "");
    if (!host_dir || !*host_dir || !tag || strchr(tag, ':') || n < 0 || (size_t)n >= sizeof(spec))
        SETTER(h, r_ = lib_fail(h, -EINVAL, "a share needs a directory and a tag without ':'"));
    return arcvm_add_share_spec(h, spec);
}

struct rate_limiter_config lib_rl_config(const struct arcvm_rate_limiter *rl)
{
    return (struct rate_limiter_config){
        .bandwidth = {rl->bandwidth.size, rl->bandwidth.one_time_burst,
                      rl->bandwidth.refill_time_ms},
        .ops = {rl->ops.size, rl->ops.one_time_burst, rl->ops.refill_time_ms}};
}

static int rl_bad(arcvm *h, const char *what, const char *id)
{
    return lib_fail(h, -EINVAL, "%s %s: a rate limiter bucket with a size needs a refill time "
                                "of 1 ms or more", what, id);
}

int arcvm_set_rng_rate_limiter(arcvm *h, const struct arcvm_rate_limiter *rl)
{
    struct rate_limiter_config c = lib_rl_config(rl);
    if (rate_limiter_config_check(&c) < 0)
        return rl_bad(h, "the entropy device", "");
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (h->vm)
        r = lib_fail(h, -EBUSY, "the entropy device's rate limiter is set before the start");
    else
        h->cfg.rng_rl = c;
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_set_net_rate_limiters(arcvm *h, const char *iface_id,
                                const struct arcvm_rate_limiter *rx,
                                const struct arcvm_rate_limiter *tx)
{
    struct rate_limiter_config crx = rx ? lib_rl_config(rx) : (struct rate_limiter_config){0};
    struct rate_limiter_config ctx = tx ? lib_rl_config(tx) : (struct rate_limiter_config){0};
    if (rate_limiter_config_check(&crx) < 0 || rate_limiter_config_check(&ctx) < 0)
        return rl_bad(h, "network interface", iface_id);
    pthread_mutex_lock(&h->lock);
    const struct vm_config *live = h->vm ? vm_get_config(h->vm) : &h->cfg;
    unsigned i = 0;
    while (i < live->nnets && !(live->nets[i].id && !strcmp(live->nets[i].id, iface_id)))
        i++;
    int r = 0;
    if (i == live->nnets) {
        r = lib_fail(h, -ENOENT, "no network interface with id '%s'", iface_id);
    } else if (!h->vm) {
        if (rx)
            h->cfg.nets[i].rx_rl = crx;
        if (tx)
            h->cfg.nets[i].tx_rl = ctx;
    } else if ((r = vm_net_set_rate_limiters(h->vm, i, rx ? &crx : NULL, tx ? &ctx : NULL)) < 0) {
        lib_fail(h, r, "network interface %s: changing its rate limiters failed: %s", iface_id,
                 strerror(-r));
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}

/* The position of the disk with id @id in @c, or c->ndisks. */
static unsigned disk_index(const struct vm_config *c, const char *id)
{
    unsigned i = 0;
    while (i < c->ndisks && !(c->disks[i].id && !strcmp(c->disks[i].id, id)))
        i++;
    return i;
}

int arcvm_set_disk_rate_limiter(arcvm *h, const char *disk_id,
                                const struct arcvm_rate_limiter *rl)
{
    struct rate_limiter_config c = lib_rl_config(rl);
    if (rate_limiter_config_check(&c) < 0)
        return rl_bad(h, "disk", disk_id);
    pthread_mutex_lock(&h->lock);
    struct vm_config *cfg = h->vm ? NULL : &h->cfg;
    const struct vm_config *live = h->vm ? vm_get_config(h->vm) : &h->cfg;
    unsigned i = disk_index(live, disk_id);
    int r = 0;
    if (i == live->ndisks)
        r = lib_fail(h, -ENOENT, "no disk with id '%s'", disk_id);
    else if (cfg)
        cfg->disks[i].rl = c;
    else if ((r = vm_disk_set_rate_limiter(h->vm, i, &c)) < 0)
        lib_fail(h, r, "disk %s: changing its rate limiter failed: %s", disk_id, strerror(-r));
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_update_disk_path(arcvm *h, const char *disk_id, const char *path)
{
    if (!disk_id || !path || !*path)
        return lib_fail(h, -EINVAL, "a disk id and a non-empty image path are needed");
    pthread_mutex_lock(&h->lock);
    const struct vm_config *live = h->vm ? vm_get_config(h->vm) : &h->cfg;
    unsigned i = disk_index(live, disk_id);
    int r = 0;
    char *copy;
    if (i == live->ndisks) {
        r = lib_fail(h, -ENOENT, "no disk with id '%s'", disk_id);
    } else if (h->vm) {
        char err[512];
        if ((r = vm_disk_swap_image(h->vm, i, path, err, sizeof(err))) < 0)
            lib_fail(h, r, "disk %s: %s", disk_id, err);
    } else if (!(copy = strdup(path))) {
        r = lib_fail(h, -ENOMEM, "out of memory");
    } else {
        free(h->cfg.disks[i].path);
        h->cfg.disks[i].path = copy;
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_add_net(arcvm *h, const char *spec)
{
    SETTER(h, {
        struct net_config n;
        if (h->cfg.nnets == CONFIG_MAX_NETS)
            r_ = lib_fail(h, -E2BIG, "too many network interfaces: at most %d", CONFIG_MAX_NETS);
        else if (!spec || config_parse_net(spec, &n, h->err, sizeof(h->err)) < 0)
            r_ = spec ? -EINVAL : lib_fail(h, -EINVAL, "no network interface description");
        else
            h->cfg.nets[h->cfg.nnets++] = n;
    });
}

int arcvm_set_vsock_spec(arcvm *h, const char *spec)
{
    SETTER(h, {
        struct vsock_config v;
        if (!spec)
            r_ = lib_fail(h, -EINVAL, "no vsock description");
        else if (config_parse_vsock(spec, &v, h->err, sizeof(h->err)) < 0)
            r_ = -EINVAL;
        else {
            free(h->cfg.vsock.uds_path);
            h->cfg.vsock = v;
        }
    });
}

int arcvm_set_vsock(arcvm *h, uint32_t cid, const char *uds_path)
{
    char spec[4200];
    int n = snprintf(spec, sizeof(spec), "cid=%u,uds=%s", cid, uds_path ? uds_path : "");
    if (n < 0 || (size_t)n >= sizeof(spec) || (uds_path && strchr(uds_path, ',')))
        SETTER(h, r_ = lib_fail(h, -EINVAL, "vsock socket path is too long or contains a comma"));
    return arcvm_set_vsock_spec(h, spec);
}

int arcvm_set_balloon_spec(arcvm *h, const char *spec)
{
    SETTER(h, {
        struct balloon_config b;
        if (!spec)
            r_ = lib_fail(h, -EINVAL, "no balloon description");
        else if (config_parse_balloon(spec, &b, h->err, sizeof(h->err)) < 0)
            r_ = -EINVAL;
        else
            h->cfg.balloon = b;
    });
}

int arcvm_set_balloon(arcvm *h, uint32_t target_mib, int deflate_on_oom,
                      unsigned stats_interval_s, int free_page_reporting)
{
    SETTER(h, {
        h->cfg.balloon = (struct balloon_config){
            .enabled = true,
            .target_mib = target_mib,
            .deflate_on_oom = deflate_on_oom != 0,
            .stats_interval_s = stats_interval_s,
            .free_page_reporting = free_page_reporting != 0,
        };
    });
}

int arcvm_set_rng(arcvm *h, int on)
{
    SETTER(h, h->cfg.rng = on != 0);
}

int arcvm_set_virtio_cmdline(arcvm *h, int on)
{
    SETTER(h, h->cfg.mmio_cmdline = on != 0);
}

int arcvm_set_vcpu_affinity(arcvm *h, int vcpu, const char *cpulist)
{
    SETTER(h, {
        cpu_set_t set;
        if (config_parse_cpulist(cpulist, &set) < 0)
            r_ = lib_fail(h, -EINVAL, "CPU list '%s': give CPU numbers and ranges such as 0-3,6",
                      cpulist ? cpulist : "");
        else if (vcpu < -1 || vcpu >= CONFIG_MAX_AFFINITY)
            r_ = lib_fail(h, -EINVAL, "vCPU %d: no such vCPU index", vcpu);
        else if ((r_ = config_set_affinity(&h->cfg, vcpu < 0 ? CONFIG_ALL_VCPUS : (unsigned)vcpu,
                                           &set)) < 0)
            lib_fail(h, r_, "out of memory");
    });
}

int arcvm_set_hypervisor_device(arcvm *h, const char *path)
{
    SETTER(h, r_ = set_str(h, &h->cfg.hv_device, path));
}

int arcvm_set_kvm_check(arcvm *h, int on)
{
    SETTER(h, h->cfg.skip_kvm_check = !on);
}

int arcvm_set_boot_timer(arcvm *h, int on)
{
    SETTER(h, h->cfg.boot_timer = on != 0);
}

uint64_t arcvm_default_memory(void)
{
    return CONFIG_MEM_DEFAULT;
}

int arcvm_parse_size(const char *s, uint64_t *bytes)
{
    return config_parse_size(s, bytes);
}

int arcvm_parse_uint(const char *s, unsigned *out)
{
    return config_parse_uint(s, out);
}

int arcvm_log_level_parse(const char *s, int *level)
{
    enum log_level l;
    int r = log_level_parse(s, &l);
    if (r == 0)
        *level = (int)l;
    return r;
}

void arcvm_log(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg((enum log_level)level, "%s", msg);
}

void arcvm_set_start_time(arcvm *h, uint64_t wall_us, uint64_t cpu_us)
{
    pthread_mutex_lock(&h->lock);
    h->cfg.t0_wall_us = wall_us;
    h->cfg.t0_cpu_us = cpu_us;
    pthread_mutex_unlock(&h->lock);
}

int arcvm_start(arcvm *h)
{
    pthread_mutex_lock(&h->lock);
    int r;
    if (h->vm) {
        r = lib_fail(h, -EINVAL, "the VM is already %s: it can be started once",
                 vm_state_name(vm_get_state(h->vm)));
        goto out;
    }
    struct vm *vm;
    r = vm_create(&vm, &h->cfg, h->err, sizeof(h->err));
    if (r < 0)
        goto out;
    h->vm = vm;
    r = vm_start(vm, h->err, sizeof(h->err));
out:
    pthread_mutex_unlock(&h->lock);
    return r;
}

struct vm *lib_started(arcvm *h, const char *what)
{
    pthread_mutex_lock(&h->lock);
    struct vm *vm = h->vm;
    if (!vm)
        lib_fail(h, -EINVAL, "cannot %s: the VM is not started", what);
    pthread_mutex_unlock(&h->lock);
    return vm;
}

int arcvm_pause(arcvm *h)
{
    struct vm *vm = lib_started(h, "pause");
    if (!vm)
        return -EINVAL;
    int r = vm_pause(vm);
    if (r == -ETIMEDOUT)
        return lib_fail(h, r, "pausing timed out: a vCPU did not leave the guest");
    if (r < 0)
        return lib_fail(h, r, "cannot pause a VM that is %s", vm_state_name(vm_get_state(vm)));
    return 0;
}

int arcvm_resume(arcvm *h)
{
    struct vm *vm = lib_started(h, "resume");
    if (!vm)
        return -EINVAL;
    int r = vm_resume(vm);
    if (r < 0)
        return lib_fail(h, r, "cannot resume a VM that is %s", vm_state_name(vm_get_state(vm)));
    return 0;
}

int arcvm_stop(arcvm *h)
{
    struct vm *vm = lib_started(h, "stop");
    if (!vm)
        return -EINVAL;
    enum vm_state s = vm_get_state(vm);
    if (s != VM_RUNNING && s != VM_PAUSED)
        return lib_fail(h, -EINVAL, "cannot stop a VM that is %s", vm_state_name(s));
    vm_request_stop(vm, VM_EXIT_STOPPED, "stopped by request");
    return 0;
}

int arcvm_wait(arcvm *h, struct arcvm_exit *exit)
{
    struct vm *vm = lib_started(h, "wait");
    if (!vm)
        return -EINVAL;
    struct vm_exit_info info;
    vm_wait(vm, &info);
    if (exit) {
        exit->reason = (enum arcvm_exit_reason)info.kind;
        snprintf(exit->message, sizeof(exit->message), "%s", info.message);
    }
    return 0;
}

int arcvm_send_ctrl_alt_del(arcvm *h)
{
    struct vm *vm = lib_started(h, "send Ctrl-Alt-Del");
    if (!vm)
        return -EINVAL;
    int r = vm_send_ctrl_alt_del(vm);
    if (r == -EAGAIN)
        return lib_fail(h, r, "the guest has not read the previous key presses yet");
    if (r == -ENOTSUP)
        return lib_fail(h, r, "this machine has no keyboard controller to send Ctrl-Alt-Del "
                              "to (as Firecracker's arm64 machine): stop the VM instead");
    if (r < 0)
        return lib_fail(h, r, "cannot send Ctrl-Alt-Del to a VM that is %s",
                    vm_state_name(vm_get_state(vm)));
    return 0;
}

int arcvm_read_guest(arcvm *h, uint64_t gpa, void *buf, size_t len)
{
    struct vm *vm = lib_started(h, "read guest memory");
    if (!vm)
        return -EINVAL;
    if (vm_read_guest(vm, gpa, buf, len) < 0)
        return lib_fail(h, -EFAULT, "0x%llx+%zu is not guest RAM", (unsigned long long)gpa, len);
    return 0;
}

int arcvm_write_guest(arcvm *h, uint64_t gpa, const void *buf, size_t len)
{
    struct vm *vm = lib_started(h, "write guest memory");
    if (!vm)
        return -EINVAL;
    if (vm_write_guest(vm, gpa, buf, len) < 0)
        return lib_fail(h, -EFAULT, "0x%llx+%zu is not guest RAM", (unsigned long long)gpa, len);
    return 0;
}

int arcvm_get_metrics(arcvm *h, struct arcvm_metrics *m)
{
    memset(m, 0, sizeof(*m));
    struct vm *vm = lib_started(h, "read metrics");
    if (!vm)
        return -EINVAL;
    struct vm_metrics vmm;
    vm_get_metrics(vm, &vmm);
    const uint64_t *e = vmm.exits;
    m->exits_io_in = vmm.io_reads;
    m->exits_io_out = e[HV_EXIT_IO] - vmm.io_reads;
    m->exits_mmio_read = vmm.mmio_reads;
    m->exits_mmio_write = e[HV_EXIT_MMIO] - vmm.mmio_reads;
    m->exits_halt = e[HV_EXIT_HALT];
    m->exits_shutdown = e[HV_EXIT_SHUTDOWN];
    m->exits_system_event =
        e[HV_EXIT_SYSTEM_RESET] + e[HV_EXIT_SYSTEM_OFF] + e[HV_EXIT_SYSTEM_EVENT];
    m->exits_hypercall = e[HV_EXIT_HYPERCALL];
    m->exits_intr = e[HV_EXIT_INTR];
    m->exits_failures = e[HV_EXIT_INTERNAL_ERROR] + e[HV_EXIT_FAIL_ENTRY] + e[HV_EXIT_UNKNOWN];
    m->console_dropped_rate = vmm.console_dropped_rate;
    m->console_dropped_room = vmm.console_dropped_room;
    for (unsigned i = 0; i < vmm.ndevices && i < ARCVM_MAX_DEVICES; i++) {
        struct arcvm_device_metrics *d = &m->devices[m->ndevices++];
        const struct vm_device_metrics *s = &vmm.devices[i];
        snprintf(d->kind, sizeof(d->kind), "%s", s->name);
        snprintf(d->id, sizeof(d->id), "%s", s->id ? s->id : "");
        d->notifications = s->stats.notifications;
        d->interrupts = s->stats.interrupts;
        d->requests = s->stats.requests;
        d->in_bytes = s->stats.in_bytes;
        d->out_bytes = s->stats.out_bytes;
        d->errors = s->stats.errors;
    }
    return 0;
}

void arcvm_log_set_level(int level)
{
    if (level < LOG_ERROR)
        level = LOG_ERROR;
    if (level > LOG_DEBUG)
        level = LOG_DEBUG;
    log_set_level((enum log_level)level);
}

void arcvm_log_set_fd(int fd)
{
    log_set_fd(fd);
}

/* A balloon call's -ENODEV (no balloon) or -EINVAL (not started), said. */
static int balloon_missing(arcvm *h, int r, const char *what)
{
    if (r == -ENODEV)
        return lib_fail(h, r, "cannot %s: the VM has no balloon (configure one before start)", what);
    return r;
}

int arcvm_balloon_set_target(arcvm *h, uint32_t target_mib)
{
    struct vm *vm = lib_started(h, "change the balloon");
    if (!vm)
        return -EINVAL;
    int r = vm_balloon_set_target(vm, target_mib);
    if (r == -EINVAL)
        return lib_fail(h, r, "balloon target %u MiB is more than the guest's memory", target_mib);
    return balloon_missing(h, r, "change the balloon");
}

int arcvm_balloon_set_stats_interval(arcvm *h, unsigned seconds)
{
    struct vm *vm = lib_started(h, "change balloon statistics");
    if (!vm)
        return -EINVAL;
    int r = vm_balloon_set_stats_interval(vm, seconds);
    if (r == -ENOTSUP)
        return lib_fail(h, r, "balloon statistics were not enabled at start; they cannot be now");
    if (r == -EINVAL)
        return lib_fail(h, r, "statistics cannot be switched off after start: give an interval > 0");
    return balloon_missing(h, r, "change balloon statistics");
}

int arcvm_balloon_get(arcvm *h, struct arcvm_balloon *out)
{
    memset(out, 0, sizeof(*out));
    struct vm *vm = lib_started(h, "read the balloon");
    if (!vm)
        return -EINVAL;
    struct virtio_balloon_info info;
    int r = vm_balloon_get(vm, &info);
    if (r < 0)
        return balloon_missing(h, r, "read the balloon");
    out->target_mib = info.target_mib;
    out->actual_mib = info.actual_mib;
    out->deflate_on_oom = info.deflate_on_oom;
    out->free_page_reporting = info.free_page_reporting;
    out->stats_enabled = info.stats_enabled;
    out->stats_interval_s = info.stats_interval_s;
    out->stats_updates = info.stats_updates;
    out->stats_valid = info.stats.valid;
    _Static_assert((int)ARCVM_BALLOON_NSTATS == (int)VIRTIO_BALLOON_S_NR, "balloon stat counts agree");
    memcpy(out->stats, info.stats.val, sizeof(out->stats));
    return 0;
}

const char *arcvm_balloon_stat_name(unsigned tag)
{
    return virtio_balloon_stat_name(tag);
}

enum arcvm_state arcvm_get_state(arcvm *h)
{
    pthread_mutex_lock(&h->lock);
    enum arcvm_state s = h->vm ? (enum arcvm_state)vm_get_state(h->vm) : ARCVM_STATE_CREATED;
    pthread_mutex_unlock(&h->lock);
    return s;
}

const char *arcvm_state_name(enum arcvm_state s)
{
    return vm_state_name((enum vm_state)s);
}

int arcvm_state_fd(arcvm *h)
{
    pthread_mutex_lock(&h->lock);
    int fd = h->vm ? h->vm->state_fd : -1;
    pthread_mutex_unlock(&h->lock);
    return fd;
}

_Static_assert((int)ARCVM_CHECK_FAIL == (int)HOSTCHECK_FAIL, "check enums agree");
_Static_assert(ARCVM_CHECK_MAX == HOSTCHECK_MAX, "check sizes agree");
_Static_assert((int)ARCVM_VCPU_DONE == (int)VCPU_DONE, "vCPU place enums agree");

/* How long vCPUs get to answer arcvm_get_vcpu_info(): a kicked vCPU leaves
 * the guest within one signal delivery, even nested. */
#define VCPU_INFO_TIMEOUT_MS 500

int arcvm_get_vcpu_info(arcvm *h, struct arcvm_vcpu_info *out, unsigned max)
{
    struct vm *vm = lib_started(h, "report on vCPUs");
    if (!vm)
        return -EINVAL;
    struct vcpu_report *rep = calloc(max ? max : 1, sizeof(*rep));
    if (!rep)
        return lib_fail(h, -ENOMEM, "out of memory");
    int n = vm_vcpu_report(vm, rep, max, VCPU_INFO_TIMEOUT_MS);
    if (n == -EINVAL)
        lib_fail(h, n, "the VM is not running");
    for (int i = 0; i < n && (unsigned)i < max; i++) {
        const struct vcpu_report *r = &rep[i];
        out[i] = (struct arcvm_vcpu_info){
            .id = r->id, .where = (enum arcvm_vcpu_where)r->where, .where_ms = r->where_ms,
            .answered = r->answered, .pc_valid = r->pc_valid, .pc = r->pc, .exits = r->exits,
            .kicks = r->kicks, .intr_exits = r->intr_exits};
        snprintf(out[i].last_exit, sizeof(out[i].last_exit), "%s", r->last_exit);
    }
    free(rep);
    return n;
}

const char *arcvm_vcpu_where_name(enum arcvm_vcpu_where where)
{
    return vcpu_where_name((enum vcpu_where)where);
}

int arcvm_vcpu_info_format(const struct arcvm_vcpu_info *v, char *buf, size_t len)
{
    char pc[64] = "";
    if (!v->answered && (v->where == ARCVM_VCPU_IN_GUEST || v->where == ARCVM_VCPU_IN_VMM))
        snprintf(pc, sizeof(pc), ", NO ANSWER within %d ms (stuck in the hypervisor?)",
                 VCPU_INFO_TIMEOUT_MS);
    else if (v->pc_valid)
        snprintf(pc, sizeof(pc), ", pc 0x%" PRIx64, v->pc);
    return snprintf(buf, len,
                    "vcpu%u: %s for %" PRIu64 " ms%s, last exit %s, %" PRIu64 " exits, %" PRIu64
                    " kicks, %" PRIu64 " interrupted runs",
                    v->id, arcvm_vcpu_where_name(v->where), v->where_ms, pc, v->last_exit,
                    v->exits, v->kicks, v->intr_exits);
}

int arcvm_check_host(const char *kvm_device, const char *kernel_cache,
                     struct arcvm_check_report *out)
{
    struct hostcheck *hc = calloc(1, sizeof(*hc));
    memset(out, 0, sizeof(*out));
    if (!hc)
        return -ENOMEM;
    hostcheck_run(hc, kvm_device, kernel_cache);
    out->count = hc->count;
    out->warns = hc->warns;
    out->fails = hc->fails;
    for (unsigned i = 0; i < hc->count; i++) {
        struct arcvm_check_item *o = &out->items[i];
        const struct hostcheck_item *it = &hc->items[i];
        o->status = (enum arcvm_check_status)it->status;
        snprintf(o->name, sizeof(o->name), "%s", it->name);
        snprintf(o->detail, sizeof(o->detail), "%s", it->detail);
        snprintf(o->hint, sizeof(o->hint), "%s", it->hint);
    }
    free(hc);
    return out->fails ? -ENOTSUP : 0;
}

const char *arcvm_check_status_name(enum arcvm_check_status status)
{
    return hostcheck_status_name((enum hostcheck_status)status);
}
