/* cpu_template.h - a CPU template as plain data (Firecracker's custom CPU
 * templates): which bits of which CPUID registers and MSRs every vCPU gets
 * forced to, and the KVM capabilities the host must have. The VMM holds
 * one in its configuration; the architecture applies it when it sets up
 * each vCPU (x86: arch/x86/cpu.c). The CPUID and MSR parts are x86's; an
 * aarch64 port would add its register modifiers here.
 */
#ifndef ARCVM_ARCH_CPU_TEMPLATE_H
#define ARCVM_ARCH_CPU_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

/* Entries of each kind a template may hold. KVM offers fewer CPUID leaves
 * than this (arch/x86/cpu.h: X86_CPUID_MAX) and lists about 100 MSRs. */
#define CPU_TEMPLATE_MAX 256

/* One CPUID leaf/subleaf: for register r (0 eax, 1 ebx, 2 ecx, 3 edx) the
 * bits set in mask[r] become value[r]'s, the others stay as KVM offers. */
struct cpu_template_cpuid {
    uint32_t leaf, subleaf;
    uint32_t flags; /* KVM's CPUID entry flags: bit 0, the subleaf is significant */
    uint32_t mask[4], value[4];
};

struct cpu_template_msr {
    uint32_t addr;
    uint64_t mask, value;
};

struct cpu_template {
    unsigned ncpuid, nmsr, ncaps;
    struct cpu_template_cpuid cpuid[CPU_TEMPLATE_MAX];
    struct cpu_template_msr msr[CPU_TEMPLATE_MAX];
    uint32_t caps[CPU_TEMPLATE_MAX]; /* KVM capabilities the host must have */
};

/* (value & ~mask) | (bits & mask): a register through a modifier. */
static inline uint64_t cpu_template_bits(uint64_t value, uint64_t mask, uint64_t bits)
{
    return (value & ~mask) | (bits & mask);
}

/* @t well formed: counts within CPU_TEMPLATE_MAX, no leaf/subleaf or MSR
 * twice, no value bit outside its mask. 0, or -EINVAL with a sentence in
 * @err. Pure. */
int cpu_template_check(const struct cpu_template *t, char *err, size_t errlen);

#endif
