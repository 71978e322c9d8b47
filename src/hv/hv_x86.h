/* hv_x86.h - x86-64 register state in the hypervisor abstraction.
 *
 * Plain structures of our own, so that arch/x86 code never sees a KVM type.
 */
#ifndef ARCVM_HV_X86_H
#define ARCVM_HV_X86_H

#include <stdint.h>

struct hv_x86_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
};

struct hv_x86_segment {
    uint64_t base;
    uint32_t limit;
    uint16_t selector;
    uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct hv_x86_dtable {
    uint64_t base;
    uint16_t limit;
};

struct hv_x86_sregs {
    struct hv_x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct hv_x86_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

struct hv_x86_cpuid {
    uint32_t function, index;
    uint32_t flags; /* HV_CPUID_SIGNIFICANT_INDEX when @index matters */
    uint32_t eax, ebx, ecx, edx;
};
#define HV_CPUID_SIGNIFICANT_INDEX 1u

struct hv_x86_msr {
    uint32_t index;
    uint64_t data;
};

/* The CPUID leaves the hypervisor can virtualise on this host. Fills up to
 * @max entries; returns the count or -errno (-E2BIG: @max too small). */
int hv_x86_supported_cpuid(struct hv *hv, struct hv_x86_cpuid *out, unsigned max);

int hv_x86_vcpu_get_regs(struct hv_vcpu *vcpu, struct hv_x86_regs *regs);
int hv_x86_vcpu_set_regs(struct hv_vcpu *vcpu, const struct hv_x86_regs *regs);
int hv_x86_vcpu_get_sregs(struct hv_vcpu *vcpu, struct hv_x86_sregs *sregs);
int hv_x86_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct hv_x86_sregs *sregs);
int hv_x86_vcpu_set_cpuid(struct hv_vcpu *vcpu, const struct hv_x86_cpuid *e, unsigned n);
int hv_x86_vcpu_set_msrs(struct hv_vcpu *vcpu, const struct hv_x86_msr *m, unsigned n);
/* Read the MSRs named by @m[i].index into @m[i].data. Returns how many were
 * read (fewer than @n: m[return].index is one the hypervisor lacks) or
 * -errno. */
int hv_x86_vcpu_get_msrs(struct hv_vcpu *vcpu, struct hv_x86_msr *m, unsigned n);
/* x87 control word and SSE control/status, the rest of the FPU state zeroed. */
int hv_x86_vcpu_set_fpu(struct hv_vcpu *vcpu, uint16_t fcw, uint32_t mxcsr);
/* Program the local APIC's LINT0 as ExtINT and LINT1 as NMI, as firmware
 * does, so the legacy PIC and NMIs reach the CPU (needs the in-kernel irqchip). */
int hv_x86_vcpu_set_lint(struct hv_vcpu *vcpu);

#endif
