/* kvm_arm64_fmt.h - how an arm64 VM's KVM state is laid out in a snapshot:
 * the vCPU registers as (one-reg ID, size, value) records and the vGICv3
 * registers as (kind, register, value) records, with the checks a load
 * makes before anything reaches KVM. No ioctl here (kvm_arm64_state.c
 * does those), so that every host builds and unit-tests it.
 */
#ifndef ARCVM_HV_KVM_ARM64_FMT_H
#define ARCVM_HV_KVM_ARM64_FMT_H

#include <stdbool.h>
#include <stdint.h>

struct snap_w;
struct snap_r;

/* ---- vCPU registers ---- */

/* Bounds on what a file may hold: KVM lists about 300 registers on arm64
 * (6.1, without SVE or the PMU); the largest arcvm takes are the 128-bit
 * FP/SIMD V registers (SVE's larger ones are never enabled here). */
#define A64_MAX_REGS 4096
#define A64_REG_MAX_BYTES 16

struct a64_reg {
    uint64_t id; /* KVM one-reg ID: its size is in bits 52-55 */
    uint8_t val[A64_REG_MAX_BYTES];
};

/* Bytes of the register @id names (KVM_REG_SIZE), 0 for a size arcvm does
 * not store (above A64_REG_MAX_BYTES). */
unsigned a64_reg_size(uint64_t id);

/* @n registers: a count, then each as u64 ID, u32 size, size bytes. */
void a64_regs_put(struct snap_w *w, const struct a64_reg *regs, unsigned n);

/* Read what a64_regs_put() wrote into a new array *@out of *@n. Each ID
 * must be one of the @nknown this vCPU has (KVM_GET_REG_LIST), sized as
 * the ID says, at most once. -EPROTO otherwise, with the offending ID in
 * *@bad (0 when the fault is the count or a short section); -ENOMEM. */
int a64_regs_get(struct snap_r *r, const uint64_t *known, unsigned nknown, struct a64_reg **out,
                 unsigned *n, uint64_t *bad);

/* ---- the vGICv3 ---- */

/* Where a vGIC register is reached (kvm_arm64_state.c maps these to the
 * device's attribute groups). */
enum a64_gic_kind {
    A64_GIC_DIST,   /* distributor register at an offset, 32 bits */
    A64_GIC_REDIST, /* a vCPU's redistributor register at an offset, 32 bits */
    A64_GIC_SYSREG, /* a vCPU's ICC_* register, by its instruction encoding, 64 bits */
    A64_GIC_LEVEL,  /* the input levels of 32 interrupts from an ID, 32 bits */
};

struct a64_gic_item {
    uint8_t kind;  /* enum a64_gic_kind */
    bool set_clear; /* a set-enable/set-active register: restored by writing
                     * the inverse to its clear twin (+0x80) first, since a
                     * write of 0 to the set register changes nothing */
    uint32_t reg;  /* offset, instruction encoding or first interrupt ID */
};

/* The vGIC registers a snapshot holds, in the order a restore writes
 * them: for the distributor with @nr_irqs interrupts (@cpu false; 64..1024,
 * a multiple of 32) or for one vCPU's redistributor and CPU interface
 * (@cpu true). Fills up to @max of @out; returns how many there are. */
unsigned a64_gic_items(bool cpu, unsigned nr_irqs, struct a64_gic_item *out, unsigned max);
/* Enough for any a64_gic_items() call. */
#define A64_GIC_MAX_ITEMS 2560

/* The registers of @items whose @have is set, with their @vals: a count,
 * then each as u8 kind, u32 register, u64 value. */
void a64_gic_put(struct snap_w *w, const struct a64_gic_item *items, unsigned n,
                 const bool *have, const uint64_t *vals);
/* Read what a64_gic_put() wrote: each record must name one of @items at
 * most once, with a value that fits its width; it sets @have and @vals at
 * that item's index (both cleared first). -EPROTO otherwise. */
int a64_gic_get(struct snap_r *r, const struct a64_gic_item *items, unsigned n, bool *have,
                uint64_t *vals);

#endif
