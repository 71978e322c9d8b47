/* arch.h - what the VMM core asks of an architecture (x86 today).
 *
 * The core creates the hypervisor VM, guest RAM, buses, event loop and
 * console; the architecture decides the RAM layout, the platform devices,
 * how a kernel is loaded and what state vCPUs start in.
 */
#ifndef ARCVM_ARCH_H
#define ARCVM_ARCH_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct guest_mem_region;
struct hv_vcpu;

/* Guest RAM regions for @mem_bytes; returns the count (<= max) or -errno. */
int arch_mem_layout(uint64_t mem_bytes, struct guest_mem_region *out, unsigned max);
/* Create platform devices and register them on vm's buses. */
int arch_vm_init(struct vm *vm);
/* Load kernel, initrd and command line, build firmware tables. On failure
 * writes a user-facing reason to @err. */
int arch_load(struct vm *vm, char *err, size_t errlen);
/* Per-vCPU state before its first run (after arch_load()). */
int arch_vcpu_init(struct vm *vm, struct vcpu *v);
/* Guest-physical window and interrupt of the @index-th virtio-mmio device.
 * -ENOSPC when the machine has no room for it. */
int arch_virtio_slot(unsigned index, uint64_t *base, uint32_t *gsi);
/* Deliver Ctrl-Alt-Del to the guest (x86: through the i8042 keyboard). */
int arch_send_ctrl_alt_del(struct vm *vm);
/* Undo arch_vm_init(). Safe on a partially initialised VM. */
void arch_vm_release(struct vm *vm);

/* Describing a vCPU; each is called on the vCPU's own thread while it is
 * outside the guest. The program counter (x86: RIP). */
int arch_vcpu_pc(struct hv_vcpu *v, uint64_t *pc);
/* Where a crashed vCPU was, as "at RIP 0x..." or why that is unknown. */
const char *arch_vcpu_where(struct hv_vcpu *v, char *buf, size_t len);
/* Its registers as text for a crash report, a few lines ending in '\n';
 * returns the length written (truncated to fit @len). */
size_t arch_vcpu_dump(struct hv_vcpu *v, char *buf, size_t len);

#endif
