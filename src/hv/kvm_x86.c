/* kvm_x86.c - the KVM backend's x86-64 part: VM setup (TSS, irqchip,
 * PIT), the self-test guest, and the register state of hv_x86.h (CPUID,
 * MSRs, general and special registers, FPU, LAPIC LINT pins), translated
 * between KVM's structures and our own. */
#include "hv/kvm_internal.h"

#include <stdlib.h>
#include <string.h>

/* Placement of the VMX real-mode TSS (three pages) and identity-map page:
 * just below the 4 GiB boundary, inside the MMIO hole that arch/x86 keeps
 * free of devices. Ignored on AMD but harmless. */
#define KVM_TSS_ADDR 0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

uint32_t kvm_arch_features(int kvm_fd)
{
    uint32_t f = 0;
    if (kvm_check_ext(kvm_fd, KVM_CAP_PIT2))
        f |= HV_FEAT_TIMER;
    if (kvm_check_ext(kvm_fd, KVM_CAP_TSC_DEADLINE_TIMER))
        f |= HV_FEAT_TSC_DEADLINE;
    return f;
}

int kvm_arch_vm_init(struct hv_vm *vm, const struct hv_vm_config *cfg)
{
    vm->chip_ready = true; /* the PIC and IOAPIC take irqfds at once */
    int r = xioctl(vm->fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)KVM_TSS_ADDR);
    if (r < 0)
        return r;
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    r = xioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
    if (r < 0)
        return r;
    if (cfg->irqchip) {
        r = xioctl(vm->fd, KVM_CREATE_IRQCHIP, NULL);
        if (r < 0)
            return r;
    }
    if (cfg->timer) {
        /* SPEAKER_DUMMY: KVM also answers port 0x61 (PIT gate/speaker),
         * which Linux reads while calibrating; no exit for it. */
        struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
        r = xioctl(vm->fd, KVM_CREATE_PIT2, &pit);
        if (r < 0)
            return r;
    }
    return 0;
}

void kvm_arch_vm_release(struct hv_vm *vm)
{
    (void)vm; /* everything lives in the VM fd */
}

int kvm_arch_vcpu_init(struct hv_vcpu *v)
{
    (void)v; /* arch/x86 sets CPUID and registers itself */
    return 0;
}

int kvm_arch_vm_finalize(struct hv_vm *vm)
{
    (void)vm;
    return 0;
}

uint32_t kvm_arch_irq_line(uint32_t gsi)
{
    return gsi; /* IOAPIC pins are GSIs */
}

static const unsigned long vcpu_ioctls[] = {
    KVM_GET_REGS,  /* registers for a crash report */
    KVM_GET_SREGS, /* the same */
};
static const unsigned long vmm_ioctls[] = {
    KVM_GET_MSR_INDEX_LIST, /* snapshot: the MSRs to save */
    KVM_GET_CLOCK,          /* snapshot: VM state */
    KVM_GET_IRQCHIP,        /* the same */
    KVM_GET_PIT2,           /* the same */
    KVM_GET_TSC_KHZ,        /* snapshot: each vCPU's state */
    KVM_GET_CPUID2,         /* the same */
    KVM_GET_MP_STATE,       /* the same */
    KVM_GET_REGS,           /* the same */
    KVM_GET_SREGS,          /* the same */
    KVM_GET_XSAVE,          /* the same */
    KVM_GET_XSAVE2,         /* the same, larger XSAVE areas */
    KVM_GET_XCRS,           /* the same */
    KVM_GET_DEBUGREGS,      /* the same */
    KVM_GET_LAPIC,          /* the same */
    KVM_GET_MSRS,           /* the same */
    KVM_GET_VCPU_EVENTS,    /* the same */
};

unsigned hv_arch_ioctls(enum hv_thread t, const unsigned long **out)
{
    if (t == HV_THREAD_VCPU) {
        *out = vcpu_ioctls;
        return sizeof(vcpu_ioctls) / sizeof(vcpu_ioctls[0]);
    }
    *out = vmm_ioctls;
    return sizeof(vmm_ioctls) / sizeof(vmm_ioctls[0]);
}

/* The self-test guest, entered in real mode at 0000:1000 (the state KVM
 * gives a new vCPU, which only hardware virtualization or a full emulator
 * can run): mov al, 0x5a; out 0x80, al; hlt. */
#define SELFTEST_PORT 0x80
static const uint8_t selftest_code[] = {0xb0, SELFTEST_VALUE, 0xe6, SELFTEST_PORT, 0xf4};
const struct kvm_selftest_guest kvm_selftest_guest = {
    .code = selftest_code, .len = sizeof(selftest_code),
    .mem_gpa = 0, .entry = 0x1000, .end = HV_EXIT_HALT,
    .what = "ran real-mode code, wrote a port and halted"};

const struct hv_feat_desc hv_feat_desc[HV_FEAT_COUNT] = {
    {"irqchip", "interrupt controllers in the kernel"},
    {"irqfd", "device interrupts without a system call from the vCPU"},
    {"ioeventfd", "guest notifications without a userspace exit"},
    {"readonly-memory", "read-only guest memory (not used yet)"},
    {"dirty-log", "dirty-page tracking, for Diff snapshots"},
    {"tsc-deadline", "the LAPIC TSC-deadline timer; without it the guest uses a slower timer"},
    {"immediate-exit", "vCPU kicks that are never lost"},
    {"user-memory", "guest RAM from host memory"},
    {"pit", "the PIT, which Linux calibrates its clocks against"},
};

int kvm_arch_selftest_vcpu(struct hv_vcpu *v)
{
    struct kvm_sregs sr;
    struct kvm_regs regs = {.rip = kvm_selftest_guest.entry, .rflags = 2};
    int r = xioctl(v->fd, KVM_GET_SREGS, &sr);
    if (r < 0)
        return r;
    sr.cs.base = 0;
    sr.cs.selector = 0;
    if ((r = xioctl(v->fd, KVM_SET_SREGS, &sr)) < 0 || (r = xioctl(v->fd, KVM_SET_REGS, &regs)) < 0)
        return r;
    return 0;
}

bool kvm_arch_selftest_wrote(const struct hv_exit *e)
{
    return e->reason == HV_EXIT_IO && e->io.port == SELFTEST_PORT && e->io.write &&
           e->io.size == 1 && e->io.data[0] == SELFTEST_VALUE;
}

int hv_x86_supported_cpuid(struct hv *hv, struct hv_x86_cpuid *out, unsigned max)
{
    size_t sz = sizeof(struct kvm_cpuid2) + max * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = calloc(1, sz);
    if (!c)
        return -ENOMEM;
    c->nent = max;
    int r = xioctl(hv->fd, KVM_GET_SUPPORTED_CPUID, c);
    if (r >= 0) {
        for (unsigned i = 0; i < c->nent; i++) {
            const struct kvm_cpuid_entry2 *k = &c->entries[i];
            out[i] = (struct hv_x86_cpuid){
                .function = k->function, .index = k->index,
                .flags = (k->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ? HV_CPUID_SIGNIFICANT_INDEX : 0,
                .eax = k->eax, .ebx = k->ebx, .ecx = k->ecx, .edx = k->edx};
        }
        r = (int)c->nent;
    }
    free(c);
    return r;
}

int hv_x86_vcpu_set_cpuid(struct hv_vcpu *v, const struct hv_x86_cpuid *e, unsigned n)
{
    size_t sz = sizeof(struct kvm_cpuid2) + n * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = calloc(1, sz);
    if (!c)
        return -ENOMEM;
    c->nent = n;
    for (unsigned i = 0; i < n; i++) {
        c->entries[i] = (struct kvm_cpuid_entry2){
            .function = e[i].function, .index = e[i].index,
            .flags = (e[i].flags & HV_CPUID_SIGNIFICANT_INDEX) ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
            .eax = e[i].eax, .ebx = e[i].ebx, .ecx = e[i].ecx, .edx = e[i].edx};
    }
    int r = xioctl(v->fd, KVM_SET_CPUID2, c);
    free(c);
    return r < 0 ? r : 0;
}

int hv_x86_vcpu_set_msrs(struct hv_vcpu *v, const struct hv_x86_msr *m, unsigned n)
{
    struct kvm_msrs *k = calloc(1, sizeof(*k) + n * sizeof(struct kvm_msr_entry));
    if (!k)
        return -ENOMEM;
    k->nmsrs = n;
    for (unsigned i = 0; i < n; i++) {
        k->entries[i].index = m[i].index;
        k->entries[i].data = m[i].data;
    }
    int r = xioctl(v->fd, KVM_SET_MSRS, k);
    free(k);
    /* KVM returns how many it set, stopping at the first it refused. */
    if (r >= 0 && (unsigned)r != n)
        return -EINVAL;
    return r < 0 ? r : 0;
}

int hv_x86_vcpu_get_msrs(struct hv_vcpu *v, struct hv_x86_msr *m, unsigned n)
{
    struct kvm_msrs *k = calloc(1, sizeof(*k) + n * sizeof(struct kvm_msr_entry));
    if (!k)
        return -ENOMEM;
    k->nmsrs = n;
    for (unsigned i = 0; i < n; i++)
        k->entries[i].index = m[i].index;
    /* KVM returns how many it read, stopping at the first it cannot. */
    int r = xioctl(v->fd, KVM_GET_MSRS, k);
    for (int i = 0; i < r && (unsigned)i < n; i++)
        m[i].data = k->entries[i].data;
    free(k);
    return r;
}

int hv_x86_vcpu_get_regs(struct hv_vcpu *v, struct hv_x86_regs *o)
{
    struct kvm_regs k;
    int r = xioctl(v->fd, KVM_GET_REGS, &k);
    if (r < 0)
        return r;
    *o = (struct hv_x86_regs){k.rax, k.rbx, k.rcx, k.rdx, k.rsi, k.rdi, k.rsp, k.rbp,
                              k.r8,  k.r9,  k.r10, k.r11, k.r12, k.r13, k.r14, k.r15,
                              k.rip, k.rflags};
    return 0;
}

int hv_x86_vcpu_set_regs(struct hv_vcpu *v, const struct hv_x86_regs *i)
{
    struct kvm_regs k = {
        .rax = i->rax, .rbx = i->rbx, .rcx = i->rcx, .rdx = i->rdx,
        .rsi = i->rsi, .rdi = i->rdi, .rsp = i->rsp, .rbp = i->rbp,
        .r8 = i->r8, .r9 = i->r9, .r10 = i->r10, .r11 = i->r11,
        .r12 = i->r12, .r13 = i->r13, .r14 = i->r14, .r15 = i->r15,
        .rip = i->rip, .rflags = i->rflags};
    int r = xioctl(v->fd, KVM_SET_REGS, &k);
    return r < 0 ? r : 0;
}

static void seg_from_kvm(struct hv_x86_segment *o, const struct kvm_segment *k)
{
    *o = (struct hv_x86_segment){.base = k->base, .limit = k->limit, .selector = k->selector,
                                 .type = k->type, .present = k->present, .dpl = k->dpl,
                                 .db = k->db, .s = k->s, .l = k->l, .g = k->g, .avl = k->avl,
                                 .unusable = k->unusable};
}

static void seg_to_kvm(struct kvm_segment *k, const struct hv_x86_segment *i)
{
    *k = (struct kvm_segment){.base = i->base, .limit = i->limit, .selector = i->selector,
                              .type = i->type, .present = i->present, .dpl = i->dpl,
                              .db = i->db, .s = i->s, .l = i->l, .g = i->g, .avl = i->avl,
                              .unusable = i->unusable};
}

int hv_x86_vcpu_get_sregs(struct hv_vcpu *v, struct hv_x86_sregs *o)
{
    struct kvm_sregs k;
    int r = xioctl(v->fd, KVM_GET_SREGS, &k);
    if (r < 0)
        return r;
    seg_from_kvm(&o->cs, &k.cs);
    seg_from_kvm(&o->ds, &k.ds);
    seg_from_kvm(&o->es, &k.es);
    seg_from_kvm(&o->fs, &k.fs);
    seg_from_kvm(&o->gs, &k.gs);
    seg_from_kvm(&o->ss, &k.ss);
    seg_from_kvm(&o->tr, &k.tr);
    seg_from_kvm(&o->ldt, &k.ldt);
    o->gdt = (struct hv_x86_dtable){k.gdt.base, k.gdt.limit};
    o->idt = (struct hv_x86_dtable){k.idt.base, k.idt.limit};
    o->cr0 = k.cr0;
    o->cr2 = k.cr2;
    o->cr3 = k.cr3;
    o->cr4 = k.cr4;
    o->cr8 = k.cr8;
    o->efer = k.efer;
    o->apic_base = k.apic_base;
    return 0;
}

int hv_x86_vcpu_set_sregs(struct hv_vcpu *v, const struct hv_x86_sregs *i)
{
    struct kvm_sregs k;
    /* Read first so the pending-interrupt bitmap is preserved. */
    int r = xioctl(v->fd, KVM_GET_SREGS, &k);
    if (r < 0)
        return r;
    seg_to_kvm(&k.cs, &i->cs);
    seg_to_kvm(&k.ds, &i->ds);
    seg_to_kvm(&k.es, &i->es);
    seg_to_kvm(&k.fs, &i->fs);
    seg_to_kvm(&k.gs, &i->gs);
    seg_to_kvm(&k.ss, &i->ss);
    seg_to_kvm(&k.tr, &i->tr);
    seg_to_kvm(&k.ldt, &i->ldt);
    k.gdt.base = i->gdt.base;
    k.gdt.limit = i->gdt.limit;
    k.idt.base = i->idt.base;
    k.idt.limit = i->idt.limit;
    k.cr0 = i->cr0;
    k.cr2 = i->cr2;
    k.cr3 = i->cr3;
    k.cr4 = i->cr4;
    k.cr8 = i->cr8;
    k.efer = i->efer;
    k.apic_base = i->apic_base;
    r = xioctl(v->fd, KVM_SET_SREGS, &k);
    return r < 0 ? r : 0;
}

int hv_x86_vcpu_set_fpu(struct hv_vcpu *v, uint16_t fcw, uint32_t mxcsr)
{
    struct kvm_fpu f;
    memset(&f, 0, sizeof(f));
    f.fcw = fcw;
    f.mxcsr = mxcsr;
    int r = xioctl(v->fd, KVM_SET_FPU, &f);
    return r < 0 ? r : 0;
}

/* Local APIC register offsets and delivery modes (Intel SDM vol. 3, 10.5.1). */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void lvt_set_mode(struct kvm_lapic_state *s, unsigned off, uint32_t mode)
{
    uint32_t reg;
    memcpy(&reg, &s->regs[off], 4);
    reg = (reg & ~0x700u) | (mode << 8);
    memcpy(&s->regs[off], &reg, 4);
}

int hv_x86_vcpu_set_lint(struct hv_vcpu *v)
{
    struct kvm_lapic_state s;
    int r = xioctl(v->fd, KVM_GET_LAPIC, &s);
    if (r < 0)
        return r;
    lvt_set_mode(&s, APIC_LVT0, APIC_MODE_EXTINT);
    lvt_set_mode(&s, APIC_LVT1, APIC_MODE_NMI);
    r = xioctl(v->fd, KVM_SET_LAPIC, &s);
    return r < 0 ? r : 0;
}
