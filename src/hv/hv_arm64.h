/* hv_arm64.h - arm64 vCPU state in the hypervisor abstraction.
 *
 * Plain structures of our own, so that arch/arm64 code never sees a KVM
 * type.
 */
#ifndef ARCVM_HV_ARM64_H
#define ARCVM_HV_ARM64_H

#include <stdint.h>

/* The general registers, stack pointer, program counter and PSTATE. */
struct hv_arm64_regs {
    uint64_t x[31];
    uint64_t sp, pc, pstate;
};

int hv_arm64_vcpu_get_regs(struct hv_vcpu *vcpu, struct hv_arm64_regs *regs);
/* Linux's arm64 boot state (Documentation/arch/arm64/booting.rst): PC at
 * @pc, X0 = @x0 (the device tree's address), X1-X3 zero, EL1h with DAIF
 * masked; the MMU and caches are off after vCPU init. */
int hv_arm64_vcpu_set_boot(struct hv_vcpu *vcpu, uint64_t pc, uint64_t x0);
/* The vCPU's MPIDR_EL1, whose affinity fields the device tree's cpu nodes
 * name in "reg". */
int hv_arm64_vcpu_mpidr(struct hv_vcpu *vcpu, uint64_t *mpidr);

#endif
