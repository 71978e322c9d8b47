/* devices.h - the VM's virtio devices: built from the configuration, each
 * attached to a virtio-mmio window and interrupt the architecture assigns. */
#ifndef ARCVM_DEVICES_H
#define ARCVM_DEVICES_H

#include "virtio/virtio_mmio.h"

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

/* Virtio devices per VM: disks + console + rng + room for networking. */
#define VM_MAX_VIRTIO 16

struct vm_virtio {
    struct virtio_device *dev;
    struct virtio_mmio mmio;
    bool attached;          /* mmio transport initialised */
    uint64_t base;
    uint32_t gsi;
};

/* Create every configured virtio device and attach it. -errno with @err. */
int vm_devices_create(struct vm *vm, char *err, size_t errlen);
/* The balloon at run time (the library's arcvm_balloon_*()): -ENODEV when
 * the VM has none, else what virtio/balloon.h's functions return. */
struct virtio_balloon_info;
int vm_balloon_set_target(struct vm *vm, uint32_t target_mib);
int vm_balloon_set_stats_interval(struct vm *vm, unsigned seconds);
int vm_balloon_get(struct vm *vm, struct virtio_balloon_info *out);
struct virtio_balloon_hint;
int vm_balloon_hint(struct vm *vm, bool start, bool ack_on_stop);
int vm_balloon_hint_status(struct vm *vm, struct virtio_balloon_hint *out);
/* The memory hotplug device at run time (the library's
 * arcvm_memory_hotplug_*()): -ENODEV when the VM has none, else what
 * virtio/mem.h's functions return. */
struct virtio_mem_info;
int vm_memhp_set_requested(struct vm *vm, uint64_t bytes);
int vm_memhp_get(struct vm *vm, struct virtio_mem_info *out);
/* New rate limits for disk number @index (configuration order) at run time. */
struct rate_limiter_config;
int vm_disk_set_rate_limiter(struct vm *vm, unsigned index, const struct rate_limiter_config *c);
/* Back disk number @index with the image at @path from now on
 * (virtio_blk_swap_image()), and record the path in the VM's configuration.
 * -errno with @err and nothing changed: -ENOENT for no such disk. */
int vm_disk_swap_image(struct vm *vm, unsigned index, const char *path, char *err, size_t errlen);
/* ... and for NIC number @index (NULL: leave that direction). */
int vm_net_set_rate_limiters(struct vm *vm, unsigned index, const struct rate_limiter_config *rx,
                             const struct rate_limiter_config *tx);
/* A virtio-pmem device for @cfg at guest-physical *@gpa, its region
 * mapped into the guest (read-only slot for a read-only device); *@gpa
 * moves past the region. NULL with errno set and one sentence in @err
 * (vmm/pmem.c). */
struct pmem_config;
struct virtio_device *vm_pmem_create(struct vm *vm, const struct pmem_config *cfg, uint64_t *gpa,
                                     char *err, size_t errlen);
/* New flush rate limits for the pmem device @id at run time: -ENOENT for
 * no such device. */
struct rate_limiter_config;
int vm_pmem_set_rate_limiter(struct vm *vm, const char *id, const struct rate_limiter_config *c);
/* Detach and free them (safe on a partial set). */
void vm_devices_release(struct vm *vm);

#endif
