/* pmem.c - wiring virtio-pmem devices into a VM: each device's file
 * mapping becomes a memory slot of the guest at the next place of the
 * device-memory area above RAM (arch_device_mem_base()); see devices.h. */
#include "vmm/devices.h"

#include "base/log.h"
#include "virtio/pmem.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct virtio_device *vm_pmem_create(struct vm *vm, const struct pmem_config *cfg, uint64_t *gpa,
                                     char *err, size_t errlen)
{
    struct virtio_device *d = virtio_pmem_create(&vm->mem, cfg, *gpa, &vm->loop, err, errlen);
    if (!d)
        return NULL;
    uint64_t at, size;
    void *hva;
    bool ro;
    (void)virtio_pmem_region(d, &at, &hva, &size, &ro);
    int r = hv_vm_mem_add(vm->hvm, at, size, hva, ro ? HV_MEM_READONLY : 0);
    if (r < 0) {
        if (r == -ENOTSUP)
            snprintf(err, errlen, "pmem %s: this hypervisor cannot map memory read-only; "
                     "drop ro", cfg->path);
        else
            snprintf(err, errlen, "pmem %s: mapping it into the guest failed: %s", cfg->path,
                     strerror(-r));
        d->ops->release(d);
        errno = -r;
        return NULL;
    }
    log_debug("virtio-pmem %s: %llu MiB at guest 0x%llx%s", cfg->path,
              (unsigned long long)(size >> 20), (unsigned long long)at, ro ? ", read-only" : "");
    *gpa = at + size;
    return d;
}

int vm_pmem_set_rate_limiter(struct vm *vm, const char *id, const struct rate_limiter_config *c)
{
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        struct virtio_device *d = vm->virtio[i].dev;
        if (d && d->ops->device_id == VIRTIO_ID_PMEM && d->id && !strcmp(d->id, id))
            return virtio_pmem_set_rate_limiter(d, c);
    }
    return -ENOENT;
}
