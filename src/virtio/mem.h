/* mem.h - virtio-mem (virtio 1.2, 5.15): a region of guest-physical memory
 * above RAM that the guest plugs and unplugs in blocks, on the host's
 * request. Plugged blocks are ordinary guest RAM (a window of the RAM memfd,
 * mapped into the guest); unplugged ones are given back to the host (a hole
 * punched in the memfd). */
#ifndef ARCVM_VIRTIO_MEM_H
#define ARCVM_VIRTIO_MEM_H

#include "virtio/virtio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_MEM 24

/* --memory-hotplug SIZE[,block=SIZE][,slot=SIZE][,requested=SIZE], or
 * Firecracker's PUT /hotplug/memory. Sizes in MiB. */
struct memhp_config {
    bool enabled;
    uint32_t total_mib;     /* the region: a multiple of slot_mib */
    uint32_t block_mib;     /* what the guest plugs at a time: a power of two >= 2 */
    uint32_t slot_mib;      /* the hypervisor slots the region is mapped in: >= 128 */
    uint32_t requested_mib; /* asked of the guest at boot: a multiple of block_mib */
};
/* Firecracker's defaults and lower bounds (its MemoryHotplugConfig). */
#define MEMHP_BLOCK_MIB_MIN 2
#define MEMHP_SLOT_MIB_MIN  128
/* Largest region arcvm takes: 1 TiB, so a block bitmap stays small. */
#define MEMHP_TOTAL_MIB_MAX (1u << 20)

/* Check @c as Firecracker does: 0, or -EINVAL with one sentence in @err. */
int memhp_config_check(const struct memhp_config *c, char *err, size_t errlen);

/* Feature bits (5.15.3). arcvm never offers ACPI_PXM (node_id means
 * nothing without it); UNPLUGGED_INACCESSIBLE when slots are taken out of
 * the guest's map as they empty (a mapper is given). */
#define VIRTIO_MEM_F_ACPI_PXM               0
#define VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE 1

/* Requests and responses (5.15.6). */
enum {
    VIRTIO_MEM_REQ_PLUG = 0,
    VIRTIO_MEM_REQ_UNPLUG = 1,
    VIRTIO_MEM_REQ_UNPLUG_ALL = 2,
    VIRTIO_MEM_REQ_STATE = 3,
};
enum {
    VIRTIO_MEM_RESP_ACK = 0,
    VIRTIO_MEM_RESP_NACK = 1,
    VIRTIO_MEM_RESP_BUSY = 2,
    VIRTIO_MEM_RESP_ERROR = 3,
};
enum {
    VIRTIO_MEM_STATE_PLUGGED = 0,
    VIRTIO_MEM_STATE_UNPLUGGED = 1,
    VIRTIO_MEM_STATE_MIXED = 2,
};
/* A request: le16 type, 6 bytes padding, le64 addr, le16 nb_blocks, 6 bytes
 * padding. A response: le16 type, 6 bytes padding, le16 state. */
#define VIRTIO_MEM_REQ_SIZE  24
#define VIRTIO_MEM_RESP_SIZE 10

/* The device configuration (5.15.4), little-endian fields. */
struct virtio_mem_config {
    uint64_t block_size;
    uint16_t node_id;
    uint8_t padding[6];
    uint64_t addr;
    uint64_t region_size;
    uint64_t usable_region_size;
    uint64_t plugged_size;
    uint64_t requested_size;
};
_Static_assert(sizeof(struct virtio_mem_config) == 56, "virtio_mem_config layout (5.15.4)");

/* The state for the library and GET /hotplug/memory. */
struct virtio_mem_info {
    uint64_t addr, region_size, block_size;
    uint64_t plugged_size, requested_size;
    uint64_t plugs, unplugs;   /* blocks plugged and unplugged since creation */
    uint64_t refused;          /* requests answered NACK or ERROR */
};

/* How the device maps the region's slots into the guest: map(@opaque,
 * @slot, @on) puts slot number @slot (the region cut in slot_size pieces)
 * into the guest's physical map or takes it out; 0 or -errno. Called with
 * the device lock held, from the thread serving the request queue. */
struct virtio_mem_mapper {
    int (*map)(void *opaque, unsigned slot, bool on);
    void *opaque;
};

/* A virtio-mem device for the region [@addr, @addr + @size) of @mem (which
 * must be one region of @mem, block-aligned), blocks of @block_size bytes
 * (a power of two, at least 4 KiB), asking the guest for @requested bytes
 * at first. Every block starts unplugged (the memfd behind it holds
 * nothing). With @mapper, the region is cut in slots of @slot_size bytes (a
 * multiple of the block dividing @size) that are mapped into the guest
 * while at least one of their blocks is plugged, and the caller must have
 * left every slot unmapped; NULL: the whole region stays mapped. NULL with
 * errno and one sentence in @err. Freed through ops->release. */
struct virtio_device *virtio_mem_create(const struct guest_mem *mem, uint64_t addr, uint64_t size,
                                        uint64_t block_size, uint64_t requested,
                                        uint64_t slot_size,
                                        const struct virtio_mem_mapper *mapper, char *err,
                                        size_t errlen);

/* Ask the guest for @bytes of plugged memory (a configuration-change
 * interrupt once the driver runs). Any thread; takes d->lock. 0, -EINVAL
 * when @bytes is not a multiple of the block size or exceeds the region,
 * -ENODEV when @d is not a virtio-mem device. */
int virtio_mem_set_requested(struct virtio_device *d, uint64_t bytes);

/* Fill @out. Any thread; takes d->lock. 0 or -ENODEV. */
int virtio_mem_get(struct virtio_device *d, struct virtio_mem_info *out);

#endif
