/* cpu.h - x86 vCPU setup: CPUID, boot MSRs, FPU and entry registers. */
#ifndef ARCVM_X86_CPU_H
#define ARCVM_X86_CPU_H

#include "arch/cpu_template.h"
#include "hv/hv.h"

#include <stdbool.h>
#include <stdint.h>

/* Room for every leaf/subleaf KVM reports on current CPUs. */
#define X86_CPUID_MAX 256

/* Fix up a copy of the supported CPUID for vCPU @id of @ncpus: hypervisor
 * bit, APIC IDs, topology (one socket, @ncpus cores, one thread each) and
 * the TSC-deadline timer when @tsc_deadline. Pure. */
void x86_cpuid_fixup(struct hv_x86_cpuid *e, unsigned n, unsigned id, unsigned ncpus,
                     bool tsc_deadline);

/* Apply the CPUID modifiers of @t (NULL: none) to @e, the CPUID KVM
 * offers, before x86_cpuid_fixup() (which wins where both touch a bit, as
 * Firecracker's normalization does after its templates). A modifier must
 * name a leaf/subleaf of @e: -ENOENT with a sentence in @err if not. Pure. */
int x86_cpuid_apply_template(struct hv_x86_cpuid *e, unsigned n, const struct cpu_template *t,
                             char *err, size_t errlen);

/* CPUID, MSRs, FPU and LAPIC LINT setup common to every vCPU. @base is the
 * CPUID (with any template already applied); @t's MSR modifiers (NULL:
 * none) are applied to the values KVM reports, before the boot MSRs. On
 * failure a sentence in @err. */
int x86_vcpu_init(struct hv_vcpu *v, unsigned id, unsigned ncpus, const struct hv_x86_cpuid *base,
                  unsigned n, bool tsc_deadline, const struct cpu_template *t, char *err,
                  size_t errlen);

/* Entry state of the boot vCPU for the Linux 64-bit boot protocol: long
 * mode, paging on with the identity tables, RSI = zero page. */
int x86_vcpu_boot_linux64(struct hv_vcpu *v, uint64_t entry, uint64_t zero_page);
/* Entry state for PVH: 32-bit protected mode, paging off, EBX = start info. */
int x86_vcpu_boot_pvh(struct hv_vcpu *v, uint32_t entry, uint32_t start_info);

#endif
