/* virtio_mmio.h - the virtio-mmio transport, version 2 (virtio 1.2, 4.2).
 *
 * One instance per device: a 4 KiB register window on the MMIO bus, one
 * interrupt line, and one ioeventfd per queue so that QueueNotify writes
 * reach the event loop without a userspace exit. Interrupts leave through
 * an irqfd, so raising one is an eventfd write, not an ioctl.
 */
#ifndef ARCVM_VIRTIO_MMIO_H
#define ARCVM_VIRTIO_MMIO_H

#include "virtio/virtio.h"
#include "base/bus.h"
#include "base/irq.h"

#include <stddef.h>
#include <stdint.h>

struct hv_vm;
struct evloop;
struct snap_r;
struct snap_w;

#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_MMIO_VENDOR 0x56435241u /* "ARCV" */

struct virtio_mmio;
struct virtio_mmio_notify {
    struct virtio_mmio *m;
    unsigned q;
};

struct virtio_mmio {
    struct virtio_device *dev;
    struct hv_vm *hv;
    struct evloop *loop;
    uint64_t base;
    struct irq_line irq;
    int notify_fd[VIRTIO_MAX_QUEUES];
    struct virtio_mmio_notify notify_ctx[VIRTIO_MAX_QUEUES];
    /* Register state (under dev->lock). */
    uint32_t device_features_sel, driver_features_sel, queue_sel;
    uint32_t interrupt_status;
};

extern const struct bus_ops virtio_mmio_ops;

/* Attach @dev at @base with interrupt @gsi: registers the window on @bus,
 * creates the irqfd and per-queue ioeventfds, watches them on @loop. On
 * failure everything done is undone. */
int virtio_mmio_init(struct virtio_mmio *m, struct virtio_device *dev, struct hv_vm *hv,
                     struct evloop *loop, struct bus *bus, uint64_t base, uint32_t gsi);
/* Undo virtio_mmio_init() (the bus itself is released by its owner). */
void virtio_mmio_release(struct virtio_mmio *m);

/* Register file access, for tests and fuzzers (the bus ops call these). */
void virtio_mmio_read(struct virtio_mmio *m, uint64_t off, uint8_t *data, uint32_t len);
void virtio_mmio_write(struct virtio_mmio *m, uint64_t off, const uint8_t *data, uint32_t len);

/* Snapshot of the transport's registers (feature and queue selects,
 * InterruptStatus) and of the device behind it (virtio_device_save()),
 * as fields of the section the caller opened. Call with every vCPU out of
 * the guest and the event loop held, before guest memory is saved: the
 * device first finishes its work in flight (ops->quiesce), which may write
 * used rings and raise interrupts. The device keeps running afterwards.
 * Takes the device lock. */
void virtio_mmio_save(struct virtio_mmio *m, struct snap_w *w);
/* Restore what virtio_mmio_save() wrote into a transport just attached
 * (virtio_mmio_init()) to a device created from the same configuration,
 * after guest memory is restored and before any vCPU runs; the event loop
 * may run. Everything read is checked (virtio_device_load()). A device the
 * driver had running is live again on return: activated, each ready queue
 * served once from the event loop, and the interrupt line pulsed if
 * InterruptStatus has a reason pending. 0; -EPROTO (malformed), -EINVAL (a
 * device of another configuration), or an activation's -errno: then the
 * device is fit only for release. Takes the device lock. */
int virtio_mmio_load(struct virtio_mmio *m, struct snap_r *r);

/* Kernel command-line form of this device for kernels with
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES: "virtio_mmio.device=4K@0x...:N". */
int virtio_mmio_cmdline(char *out, size_t len, uint64_t base, uint32_t gsi);

#endif
