/* cpu.c - x86 vCPU setup; see cpu.h. Register bits from the Intel SDM and
 * AMD APM; leaf meanings from both vendors' CPUID documentation. */
#include "arch/x86/cpu.h"

#include "arch/arch.h"

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define CPUID1_EDX_HTT (1u << 28)

/* Bits needed to hold APIC IDs 0..n-1. */
static unsigned id_bits(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

void x86_cpuid_fixup(struct hv_x86_cpuid *e, unsigned n, unsigned id, unsigned ncpus,
                     bool tsc_deadline)
{
    unsigned shift = id_bits(ncpus);
    for (unsigned i = 0; i < n; i++) {
        struct hv_x86_cpuid *c = &e[i];
        switch (c->function) {
        case 1:
            c->ecx |= CPUID1_ECX_HYPERVISOR;
            if (tsc_deadline)
                c->ecx |= CPUID1_ECX_TSC_DEADLINE;
            /* EBX: initial APIC ID [31:24], logical CPUs per package
             * [23:16], CLFLUSH line size in qwords [15:8] (64 bytes). */
            c->ebx = (id << 24) | ((ncpus & 0xff) << 16) | (8u << 8);
            if (ncpus > 1)
                c->edx |= CPUID1_EDX_HTT;
            else
                c->edx &= ~CPUID1_EDX_HTT;
            break;
        case 4:
            /* Intel cache parameters: EAX[31:26] cores per package - 1,
             * [25:14] threads sharing this cache - 1 (all, for L3). */
            if (c->eax & 0x1f) {
                unsigned level = (c->eax >> 5) & 7;
                unsigned sharing = level >= 3 ? ncpus - 1 : 0;
                c->eax = (c->eax & 0x3fff) | ((ncpus - 1) << 26) | (sharing << 14);
            }
            break;
        case 0xb:
        case 0x1f:
            /* Extended topology: subleaf 0 the thread level, 1 the core
             * level, then the terminating invalid level. */
            c->edx = id;
            if (c->index == 0) {
                c->eax = 0;
                c->ebx = 1;
                c->ecx = (1u << 8) | 0;
            } else if (c->index == 1) {
                c->eax = shift;
                c->ebx = ncpus;
                c->ecx = (2u << 8) | 1;
            } else {
                c->eax = c->ebx = 0;
                c->ecx = c->index;
            }
            break;
        case 0x80000008:
            /* AMD: ECX[15:12] APIC ID bits, [7:0] cores - 1. */
            c->ecx = (c->ecx & ~0xf0ffu) | (shift << 12) | ((ncpus - 1) & 0xff);
            break;
        case 0x8000001e:
            /* AMD extended APIC ID, core ID (one thread per core), node 0. */
            c->eax = id;
            c->ebx = id & 0xff;
            c->ecx = 0;
            break;
        default:
            break;
        }
    }
}

/* MSR numbers (Intel SDM vol. 4). */
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MISC_ENABLE_FAST_STRING 1u
#define MTRR_ENABLE (1u << 11)
#define MTRR_TYPE_WB 6

int x86_cpuid_apply_template(struct hv_x86_cpuid *e, unsigned n, const struct cpu_template *t,
                             char *err, size_t errlen)
{
    for (unsigned i = 0; t && i < t->ncpuid; i++) {
        const struct cpu_template_cpuid *m = &t->cpuid[i];
        struct hv_x86_cpuid *c = NULL;
        for (unsigned j = 0; j < n && !c; j++)
            if (e[j].function == m->leaf && e[j].index == m->subleaf)
                c = &e[j];
        if (!c) {
            snprintf(err, errlen,
                     "the CPU template changes CPUID leaf 0x%" PRIx32 " subleaf 0x%" PRIx32
                     ", which KVM does not offer on this host",
                     m->leaf, m->subleaf);
            return -ENOENT;
        }
        c->flags = m->flags & HV_CPUID_SIGNIFICANT_INDEX;
        uint32_t *reg[4] = {&c->eax, &c->ebx, &c->ecx, &c->edx};
        for (unsigned r = 0; r < 4; r++)
            *reg[r] = (uint32_t)cpu_template_bits(*reg[r], m->mask[r], m->value[r]);
    }
    return 0;
}

/* The template's MSRs: their values as KVM has them for a new vCPU, each
 * through its modifier, written back (Firecracker's order: before the boot
 * MSRs, which win). */
static int apply_msr_template(struct hv_vcpu *v, const struct cpu_template *t, char *err,
                              size_t errlen)
{
    struct hv_x86_msr m[CPU_TEMPLATE_MAX];
    unsigned n = t->nmsr;
    for (unsigned i = 0; i < n; i++)
        m[i] = (struct hv_x86_msr){t->msr[i].addr, 0};
    int r = hv_x86_vcpu_get_msrs(v, m, n);
    if (r >= 0 && (unsigned)r < n) {
        snprintf(err, errlen,
                 "the CPU template changes MSR 0x%" PRIx32 ", which KVM does not offer on this "
                 "host", m[r].index);
        return -ENOENT;
    }
    for (unsigned i = 0; r >= 0 && i < n; i++)
        m[i].data = cpu_template_bits(m[i].data, t->msr[i].mask, t->msr[i].value);
    if (r >= 0)
        r = hv_x86_vcpu_set_msrs(v, m, n);
    if (r < 0)
        snprintf(err, errlen, "KVM refused the CPU template's MSRs: %s", strerror(-r));
    return r;
}

int x86_vcpu_init(struct hv_vcpu *v, unsigned id, unsigned ncpus, const struct hv_x86_cpuid *base,
                  unsigned n, bool tsc_deadline, const struct cpu_template *t, char *err,
                  size_t errlen)
{
    struct hv_x86_cpuid *c = malloc(n * sizeof(*c));
    if (!c)
        return -ENOMEM;
    memcpy(c, base, n * sizeof(*c));
    x86_cpuid_fixup(c, n, id, ncpus, tsc_deadline);
    int r = hv_x86_vcpu_set_cpuid(v, c, n);
    free(c);
    if (r < 0) {
        snprintf(err, errlen, "KVM refused the vCPU's CPUID: %s", strerror(-r));
        return r;
    }
    if (t && t->nmsr && (r = apply_msr_template(v, t, err, errlen)) < 0)
        return r;
    /* Firmware leaves these for the kernel: fast strings on, MTRRs enabled
     * with write-back as the default type, syscall MSRs cleared. The TSC is
     * left alone: KVM zeroes and synchronises it across vCPUs at creation,
     * while writing it here, one vCPU after another, makes the guest see
     * unsynchronised TSCs when setup is slow. */
    const struct hv_x86_msr msrs[] = {
        {MSR_IA32_SYSENTER_CS, 0}, {MSR_IA32_SYSENTER_ESP, 0}, {MSR_IA32_SYSENTER_EIP, 0},
        {MSR_STAR, 0},             {MSR_CSTAR, 0},             {MSR_KERNEL_GS_BASE, 0},
        {MSR_SYSCALL_MASK, 0},     {MSR_LSTAR, 0},
        {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
        {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB},
    };
    r = hv_x86_vcpu_set_msrs(v, msrs, sizeof(msrs) / sizeof(msrs[0]));
    if (r < 0) {
        snprintf(err, errlen, "KVM refused the boot MSRs: %s", strerror(-r));
        return r;
    }
    /* x87: all exceptions masked, 64-bit precision (0x37f, the FNINIT
     * value); SSE: all exceptions masked (0x1f80, the reset value). */
    r = hv_x86_vcpu_set_fpu(v, 0x37f, 0x1f80);
    if (r < 0)
        return r;
    return hv_x86_vcpu_set_lint(v);
}

static struct hv_x86_segment seg_from_gdt(uint64_t d, uint16_t sel)
{
    struct hv_x86_segment s = {
        .base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24),
        .limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16)),
        .selector = sel,
        .type = (d >> 40) & 0xf,
        .s = (d >> 44) & 1,
        .dpl = (d >> 45) & 3,
        .present = (d >> 47) & 1,
        .avl = (d >> 52) & 1,
        .l = (d >> 53) & 1,
        .db = (d >> 54) & 1,
        .g = (d >> 55) & 1,
    };
    if (s.g)
        s.limit = (s.limit << 12) | 0xfff; /* KVM wants the limit in bytes */
    s.unusable = !s.present;
    return s;
}

/* Segments and descriptor tables shared by both entry paths. */
static void boot_segments(struct hv_x86_sregs *sr, uint16_t code_sel)
{
    uint64_t gdt[X86_GDT_ENTRIES];
    x86_gdt_build(gdt);
    sr->gdt = (struct hv_x86_dtable){X86_GDT_ADDR, sizeof(gdt) - 1};
    sr->idt = (struct hv_x86_dtable){0, 0};
    sr->cs = seg_from_gdt(gdt[code_sel >> 3], code_sel);
    sr->ds = sr->es = sr->fs = sr->gs = sr->ss = seg_from_gdt(gdt[X86_SEL_DATA >> 3], X86_SEL_DATA);
    sr->tr = seg_from_gdt(gdt[X86_SEL_TSS >> 3], X86_SEL_TSS);
}

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define RFLAGS_RESERVED 0x2ull /* bit 1 always reads 1 */

int x86_vcpu_boot_linux64(struct hv_vcpu *v, uint64_t entry, uint64_t zero_page)
{
    struct hv_x86_sregs sr;
    int r = hv_x86_vcpu_get_sregs(v, &sr);
    if (r < 0)
        return r;
    boot_segments(&sr, X86_SEL_CODE64);
    sr.cr3 = X86_PML4_ADDR;
    sr.cr4 = CR4_PAE;
    sr.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sr.efer = EFER_LME | EFER_LMA;
    r = hv_x86_vcpu_set_sregs(v, &sr);
    if (r < 0)
        return r;
    struct hv_x86_regs regs = {
        .rip = entry, .rsi = zero_page, .rsp = X86_BOOT_STACK, .rbp = X86_BOOT_STACK,
        .rflags = RFLAGS_RESERVED};
    return hv_x86_vcpu_set_regs(v, &regs);
}

int x86_vcpu_boot_pvh(struct hv_vcpu *v, uint32_t entry, uint32_t start_info)
{
    struct hv_x86_sregs sr;
    int r = hv_x86_vcpu_get_sregs(v, &sr);
    if (r < 0)
        return r;
    boot_segments(&sr, X86_SEL_CODE32);
    sr.cr0 = CR0_PE | CR0_ET;
    sr.cr3 = 0;
    sr.cr4 = 0;
    sr.efer = 0;
    r = hv_x86_vcpu_set_sregs(v, &sr);
    if (r < 0)
        return r;
    struct hv_x86_regs regs = {.rip = entry, .rbx = start_info, .rflags = RFLAGS_RESERVED};
    return hv_x86_vcpu_set_regs(v, &regs);
}

/* ---- describing a vCPU: crash reports and the vCPU report ---- */

int arch_vcpu_pc(struct hv_vcpu *v, uint64_t *pc)
{
    struct hv_x86_regs r;
    int e = hv_x86_vcpu_get_regs(v, &r);
    if (e == 0)
        *pc = r.rip;
    return e;
}

const char *arch_vcpu_where(struct hv_vcpu *v, char *buf, size_t len)
{
    struct hv_x86_regs r;
    struct hv_x86_sregs s;
    if (hv_x86_vcpu_get_regs(v, &r) < 0 || hv_x86_vcpu_get_sregs(v, &s) < 0) {
        snprintf(buf, len, "(RIP unknown: registers unreadable)");
    } else if (r.rip == 0xfff0 && s.cs.selector == 0xf000 && s.cs.base == 0xffff0000) {
        /* The reset vector: on AMD, KVM reinitialises the vCPU on a
         * shutdown intercept, so the faulting RIP is gone. */
        snprintf(buf, len, "(RIP unknown: the hypervisor reset the vCPU)");
    } else {
        snprintf(buf, len, "at RIP 0x%" PRIx64, r.rip);
    }
    return buf;
}

/* The CPU mode a crash happened in, from CR0.PE, EFER.LMA and CS.L. */
static const char *cpu_mode(const struct hv_x86_sregs *s)
{
    if (!(s->cr0 & 1))
        return "real mode";
    if (s->efer & (1u << 10))
        return s->cs.l ? "64-bit mode" : "compatibility mode";
    return "protected mode";
}

size_t arch_vcpu_dump(struct hv_vcpu *v, char *buf, size_t len)
{
    struct hv_x86_regs r;
    struct hv_x86_sregs s;
    if (hv_x86_vcpu_get_regs(v, &r) < 0 || hv_x86_vcpu_get_sregs(v, &s) < 0)
        return (size_t)snprintf(buf, len, "registers unreadable\n");
    int n = snprintf(
        buf, len,
        "RIP=%016" PRIx64 " RFLAGS=%08" PRIx64 " %s, CPL %u\n"
        "RAX=%016" PRIx64 " RBX=%016" PRIx64 " RCX=%016" PRIx64 " RDX=%016" PRIx64 "\n"
        "RSI=%016" PRIx64 " RDI=%016" PRIx64 " RBP=%016" PRIx64 " RSP=%016" PRIx64 "\n"
        "R8 =%016" PRIx64 " R9 =%016" PRIx64 " R10=%016" PRIx64 " R11=%016" PRIx64 "\n"
        "R12=%016" PRIx64 " R13=%016" PRIx64 " R14=%016" PRIx64 " R15=%016" PRIx64 "\n"
        "CS=%04x base %016" PRIx64 " SS=%04x DS=%04x ES=%04x FS=%04x GS=%04x TR=%04x\n"
        "CR0=%08" PRIx64 " CR2=%016" PRIx64 " CR3=%016" PRIx64 " CR4=%08" PRIx64
        " EFER=%" PRIx64 "\n"
        "GDT=%016" PRIx64 "/%x IDT=%016" PRIx64 "/%x APIC_BASE=%" PRIx64 "\n",
        r.rip, r.rflags, cpu_mode(&s), s.cs.dpl, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
        r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector, s.cs.base,
        s.ss.selector, s.ds.selector, s.es.selector, s.fs.selector, s.gs.selector, s.tr.selector,
        s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit,
        s.apic_base);
    return n < 0 ? 0 : (size_t)n;
}
