/* vmgenid.h - the VM generation ID (Microsoft's "Virtual Machine Generation
 * ID" specification, as QEMU's vmgenid and Firecracker's VMGenID offer it).
 *
 * A random 128-bit value in guest memory that changes whenever the VM may
 * have been duplicated (every restore of a snapshot), and an edge on an
 * interrupt line that makes the guest read it again: Linux's vmgenid driver
 * then reseeds its random number generator. The firmware tables (the
 * architecture's) say where the value is and which line signals it (x86:
 * an ACPI Generic Event Device whose _EVT notifies the VGEN device); this
 * device only writes the value and raises the line. It has no registers.
 *
 * Threads: init, new, notify and load run while the machine is built or
 * restored, before any vCPU runs; save reads it while the VM is paused.
 * The guest only reads the ID, so there is nothing to lock.
 */
#ifndef ARCVM_VMGENID_H
#define ARCVM_VMGENID_H

#include <stddef.h>
#include <stdint.h>

#define VMGENID_LEN 16

struct guest_mem;
struct irq_line;
struct snap_r;
struct snap_w;

struct vmgenid {
    struct guest_mem *mem;
    uint64_t gpa;              /* where the guest reads the ID */
    struct irq_line *irq;      /* the line that tells the guest, or NULL */
    uint8_t id[VMGENID_LEN];   /* the value last written to @gpa */
    /* Fills @len bytes with random ones, 0 or -errno: getrandom() unless a
     * test replaces it. */
    int (*random)(uint8_t *buf, size_t len);
};

/* A device whose ID lives at guest-physical @gpa (VMGENID_LEN bytes, 8-byte
 * aligned, in memory the guest does not use as RAM) and is announced on
 * @irq. Writes nothing yet: vmgenid_new() does. */
void vmgenid_init(struct vmgenid *g, struct guest_mem *mem, uint64_t gpa, struct irq_line *irq);
/* Draw a new random ID, different from the current one, and write it to
 * guest memory. -EFAULT when @gpa is not guest memory, -errno from the
 * random source; the device keeps its old ID then. */
int vmgenid_new(struct vmgenid *g);
/* Tell the guest the ID changed: one edge on the line (nothing without
 * one). An edge while the guest has the line masked is lost; a guest that
 * binds its driver later reads the ID then. */
void vmgenid_notify(struct vmgenid *g);

/* Snapshot: the address, the line's GSI and the ID. A restore checks the
 * address and GSI against the ones this machine uses (the guest's firmware
 * tables, restored with its memory, name the snapshot's) and the caller
 * then makes a new ID with vmgenid_new(): a restored guest never keeps the
 * ID it was saved with. */
void vmgenid_save(const struct vmgenid *g, struct snap_w *w);
/* 0, or -EPROTO for a malformed section or one for another address or
 * GSI. */
int vmgenid_load(struct vmgenid *g, struct snap_r *r);

#endif
