/* devices.c - builds the configured virtio devices and attaches each to a
 * virtio-mmio window; see devices.h. */
#include "vmm/devices.h"

#include "arch/arch.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/fs.h"
#include "virtio/mem.h"
#include "virtio/net.h"
#include "virtio/pmem.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "base/console.h"
#include "base/log.h"
#include "host/fuse.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Attach @dev, just built by its virtio_*_create() (NULL with errno set on
 * failure), to the next virtio-mmio window. */
static int attach(struct vm *vm, struct virtio_device *dev, char *err, size_t errlen)
{
    if (!dev) {
        int e = errno ? errno : ENOMEM;
        if (!*err)
            snprintf(err, errlen, "creating a virtio device failed: %s", strerror(e));
        return -e;
    }
    if (vm->nvirtio == VM_MAX_VIRTIO) {
        dev->ops->release(dev);
        snprintf(err, errlen, "too many virtio devices (at most %d)", VM_MAX_VIRTIO);
        return -ENOSPC;
    }
    struct vm_virtio *v = &vm->virtio[vm->nvirtio];
    int r = arch_virtio_slot(vm->nvirtio, &v->base, &v->gsi);
    if (r < 0) {
        dev->ops->release(dev);
        snprintf(err, errlen, "no room for another virtio device on this machine");
        return r;
    }
    v->dev = dev;
    vm->nvirtio++;
    r = virtio_mmio_init(&v->mmio, dev, vm->hvm, &vm->loop, &vm->mmio, v->base, v->gsi);
    if (r < 0) {
        snprintf(err, errlen, "attaching %s failed: %s", dev->ops->name, strerror(-r));
        return r;
    }
    v->attached = true;
    log_debug("%s at 0x%llx, GSI %u", dev->ops->name, (unsigned long long)v->base, v->gsi);
    return 0;
}

/* First thing on a virtio-fs worker: its seccomp filter, before it reads
 * a request. */
static int fs_thread_init(void *opaque)
{
    struct vm *vm = opaque;
    char err[256];
    if (seccomp_prog_apply(&vm->seccomp_fs, SECCOMP_FS, err, sizeof(err)) < 0) {
        vm_request_stop(vm, VM_EXIT_ERROR, "virtio-fs worker: %s", err);
        return -1;
    }
    return 0;
}

/* virtio-mem's mapper: hotplug slot @slot into the guest's map or out. */
static int memhp_map(void *opaque, unsigned slot, bool on)
{
    struct vm *vm = opaque;
    if (slot >= vm->memhp_nslots)
        return -EINVAL;
    return hv_vm_mem_enable(vm->hvm, vm->memhp_slot[slot], on);
}

int vm_devices_create(struct vm *vm, char *err, size_t errlen)
{
    const struct vm_config *c = &vm->cfg;
    int r = 0;
    *err = '\0';
    for (unsigned i = 0; i < c->ndisks && r == 0; i++)
        r = attach(vm, virtio_blk_create(&vm->mem, &c->disks[i], &vm->loop, err, errlen), err,
                   errlen);
    for (unsigned i = 0; i < c->nnets && r == 0; i++)
        r = attach(vm, virtio_net_create(&vm->mem, &c->nets[i], i, &vm->loop, err, errlen), err,
                   errlen);
    if (r == 0 && c->console == CONSOLE_VIRTIO) {
        struct virtio_device *d = virtio_console_create(&vm->mem, &vm->console);
        if ((r = attach(vm, d, err, errlen)) == 0 &&
            (r = console_attach(&vm->console, virtio_console_rx, d)) < 0)
            snprintf(err, errlen, "console input: %s", strerror(-r));
    }
    if (r == 0 && c->rng) {
        struct virtio_device *d = virtio_rng_create(&vm->mem);
        if ((r = attach(vm, d, err, errlen)) == 0 && rate_limiter_config_set(&c->rng_rl) &&
            (r = virtio_rng_set_rate_limiter(d, &vm->loop, &c->rng_rl)) < 0)
            snprintf(err, errlen, "the entropy device's rate limiter: %s", strerror(-r));
    }
    if (r == 0 && c->vsock.enabled)
        r = attach(vm, virtio_vsock_create(&vm->mem, &c->vsock, &vm->loop, err, errlen), err,
                   errlen);
    if (r == 0 && c->balloon.enabled)
        r = attach(vm, virtio_balloon_create(&vm->mem, &c->balloon, &vm->loop, err, errlen), err,
                   errlen);
    unsigned max_inodes = 0, max_handles = 0;
    if (c->nshares)
        fuse_default_limits(c->nshares, &max_inodes, &max_handles);
    for (unsigned i = 0; i < c->nshares && r == 0; i++)
        r = attach(vm,
                   virtio_fs_create(&vm->mem, &c->shares[i], max_inodes, max_handles,
                                    fs_thread_init, vm, err, errlen),
                   err, errlen);
    if (r == 0 && c->memhp.enabled) {
        /* The last region of guest memory (vm_build_platform put it there,
         * its slots reserved and unmapped). */
        const struct guest_mem_region *hp = &vm->mem.r[vm->mem.count - 1];
        const struct virtio_mem_mapper mapper = {memhp_map, vm};
        r = attach(vm,
                   virtio_mem_create(&vm->mem, hp->gpa, hp->size, (uint64_t)c->memhp.block_mib << 20,
                                     (uint64_t)c->memhp.requested_mib << 20,
                                     (uint64_t)c->memhp.slot_mib << 20, &mapper, err, errlen),
                   err, errlen);
    }
    /* Last, so that disks and NICs keep their indexes (see below). */
    uint64_t pmem_gpa = arch_device_mem_base(c->mem_bytes);
    if (c->memhp.enabled) /* pmem regions go after the hotplug region */
        pmem_gpa = vm->mem.r[vm->mem.count - 1].gpa + vm->mem.r[vm->mem.count - 1].size;
    for (unsigned i = 0; i < c->npmems && r == 0; i++)
        r = attach(vm, vm_pmem_create(vm, &c->pmems[i], &pmem_gpa, err, errlen), err, errlen);
    return r;
}

/* The first device of kind @device_id (VIRTIO_ID_*), or NULL. */
static struct virtio_device *device_find(struct vm *vm, uint32_t device_id)
{
    for (unsigned i = 0; i < vm->nvirtio; i++)
        if (vm->virtio[i].dev && vm->virtio[i].dev->ops->device_id == device_id)
            return vm->virtio[i].dev;
    return NULL;
}

int vm_disk_set_rate_limiter(struct vm *vm, unsigned index, const struct rate_limiter_config *c)
{
    /* Disks are created first, in configuration order. */
    if (index >= vm->cfg.ndisks || index >= vm->nvirtio)
        return -ENOENT;
    return virtio_blk_set_rate_limiter(vm->virtio[index].dev, c);
}

int vm_disk_swap_image(struct vm *vm, unsigned index, const char *path, char *err, size_t errlen)
{
    if (index >= vm->cfg.ndisks || index >= vm->nvirtio) {
        snprintf(err, errlen, "no disk number %u", index);
        return -ENOENT;
    }
    char *copy = strdup(path);
    if (!copy) {
        snprintf(err, errlen, "out of memory for disk image %s", path);
        return -ENOMEM;
    }
    int r = virtio_blk_swap_image(vm->virtio[index].dev, path, err, errlen);
    if (r < 0) {
        free(copy);
        return r;
    }
    /* The configuration a snapshot saves, and arcvm_get_config() shows. */
    free(vm->cfg.disks[index].path);
    vm->cfg.disks[index].path = copy;
    return 0;
}

int vm_net_set_rate_limiters(struct vm *vm, unsigned index, const struct rate_limiter_config *rx,
                             const struct rate_limiter_config *tx)
{
    /* NICs come right after the disks, in configuration order. */
    unsigned at = vm->cfg.ndisks + index;
    if (index >= vm->cfg.nnets || at >= vm->nvirtio)
        return -ENOENT;
    return virtio_net_set_rate_limiters(vm->virtio[at].dev, rx, tx);
}

int vm_balloon_set_target(struct vm *vm, uint32_t target_mib)
{
    struct virtio_device *d = device_find(vm, VIRTIO_ID_BALLOON);
    return d ? virtio_balloon_set_target(d, target_mib) : -ENODEV;
}

int vm_balloon_set_stats_interval(struct vm *vm, unsigned seconds)
{
    struct virtio_device *d = device_find(vm, VIRTIO_ID_BALLOON);
    return d ? virtio_balloon_set_stats_interval(d, seconds) : -ENODEV;
}

int vm_balloon_get(struct vm *vm, struct virtio_balloon_info *out)
{
    struct virtio_device *d = device_find(vm, VIRTIO_ID_BALLOON);
    return d ? virtio_balloon_get(d, out) : -ENODEV;
}

int vm_balloon_hint(struct vm *vm, bool start, bool ack_on_stop)
{
    struct virtio_device *d = device_find(vm, VIRTIO_ID_BALLOON);
    return d ? virtio_balloon_hint(d, start, ack_on_stop) : -ENODEV;
}

int vm_balloon_hint_status(struct vm *vm, struct virtio_balloon_hint *out)
{
    struct virtio_device *d = device_find(vm, VIRTIO_ID_BALLOON);
    return d ? virtio_balloon_hint_status(d, out) : -ENODEV;
}

int vm_memhp_set_requested(struct vm *vm, uint64_t bytes)
{
    struct virtio_device *d = device_find(vm, VIRTIO_ID_MEM);
    return d ? virtio_mem_set_requested(d, bytes) : -ENODEV;
}

int vm_memhp_get(struct vm *vm, struct virtio_mem_info *out)
{
    struct virtio_device *d = device_find(vm, VIRTIO_ID_MEM);
    return d ? virtio_mem_get(d, out) : -ENODEV;
}

void vm_devices_release(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        struct vm_virtio *v = &vm->virtio[i];
        if (v->attached)
            virtio_mmio_release(&v->mmio);
        v->attached = false;
        if (v->dev)
            v->dev->ops->release(v->dev);
        v->dev = NULL;
    }
    vm->nvirtio = 0;
}
