/* kvm_arm64.c - the KVM backend's arm64 part: the in-kernel GICv3, vCPU
 * init (preferred target, PSCI 0.2, secondaries powered off), registers
 * through the one-reg interface and the self-test guest (snapshots:
 * kvm_arm64_state.c). KVM's API: Documentation/virt/kvm/api.rst and
 * devices/arm-vgic-v3.rst. */
#include "hv/kvm_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A core register's one-reg ID: its offset in struct kvm_regs in 32-bit
 * words (asm/kvm.h). */
#define CORE_REG(field)                                                                    \
    (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |                               \
     (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))
/* MPIDR_EL1: op0 3, op1 0, CRn 0, CRm 0, op2 5. */
#define REG_MPIDR_EL1 ARM64_SYS_REG(3, 0, 0, 0, 5)

/* PSTATE at entry: EL1 with SP_EL1 (EL1h), and debug, SError, IRQ and FIQ
 * masked, as Linux's boot protocol asks. */
#define PSR_MODE_EL1H 0x5ull
#define PSR_DAIF_MASKED (0xfull << 6)

/* SPIs: GIC interrupt IDs 32 up; the GIC's line count is a multiple of 32
 * (arm-vgic-v3.rst, KVM_DEV_ARM_VGIC_GRP_NR_IRQS: 64..1024). */
#define GIC_SPI_BASE 32u
#define GIC_MAX_IRQS 1024u

static int gic_attr(int fd, uint32_t group, uint64_t attr, void *addr)
{
    struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uintptr_t)addr};
    return xioctl(fd, KVM_SET_DEVICE_ATTR, &a);
}

uint32_t kvm_arch_features(int kvm_fd)
{
    (void)kvm_fd;
    /* The architected timer (the "legacy timer" Linux calibrates against
     * on x86 is the PIT) is always KVM's, with the in-kernel GIC. */
    return HV_FEAT_TIMER;
}

int kvm_arch_vm_init(struct hv_vm *vm, const struct hv_vm_config *cfg)
{
    if (!cfg->irqchip) {
        vm->chip_ready = true; /* no irqchip: no irqfds either */
        return 0;
    }
    struct kvm_create_device d = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
    int r = xioctl(vm->fd, KVM_CREATE_DEVICE, &d);
    if (r < 0)
        return r;
    vm->chip_fd = (int)d.fd;
    uint64_t dist = cfg->irqchip_regs[0], redist = cfg->irqchip_regs[1];
    uint32_t lines = cfg->irqchip_lines ? cfg->irqchip_lines : 64;
    /* Rounded up to whole groups of 32, the SGIs and PPIs in front. */
    uint32_t nr_irqs = (GIC_SPI_BASE + lines + 31) / 32 * 32;
    if (nr_irqs > GIC_MAX_IRQS)
        return -EINVAL;
    vm->chip_lines = nr_irqs - GIC_SPI_BASE;
    if ((r = gic_attr(vm->chip_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST,
                      &dist)) < 0 ||
        (r = gic_attr(vm->chip_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST,
                      &redist)) < 0 ||
        (r = gic_attr(vm->chip_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs)) < 0)
        return r;
    return 0;
}

void kvm_arch_vm_release(struct hv_vm *vm)
{
    if (vm->chip_fd >= 0)
        close(vm->chip_fd);
    vm->chip_fd = -1;
}

/* Every SPI to itself (irqchip 0, pin = SPI number), the routing irqfds
 * take their GSI through. */
static int gic_routing(struct hv_vm *vm)
{
    size_t n = vm->chip_lines;
    struct kvm_irq_routing *rt = calloc(1, sizeof(*rt) + n * sizeof(rt->entries[0]));
    if (!rt)
        return -ENOMEM;
    rt->nr = (uint32_t)n;
    for (uint32_t i = 0; i < n; i++) {
        rt->entries[i].gsi = i;
        rt->entries[i].type = KVM_IRQ_ROUTING_IRQCHIP;
        rt->entries[i].u.irqchip.irqchip = 0;
        rt->entries[i].u.irqchip.pin = i;
    }
    int r = xioctl(vm->fd, KVM_SET_GSI_ROUTING, rt);
    free(rt);
    return r < 0 ? r : 0;
}

int kvm_arch_vm_finalize(struct hv_vm *vm)
{
    if (vm->chip_fd < 0)
        return 0;
    /* The redistributors are sized by the vCPUs that exist now. */
    int r = gic_attr(vm->chip_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
    if (r < 0)
        return r;
    if ((r = gic_routing(vm)) < 0)
        return r;
    return kvm_irqfds_attach(vm);
}

uint32_t kvm_arch_irq_line(uint32_t gsi)
{
    /* KVM_IRQ_LINE on arm64: type in bits 24-31, interrupt ID in 0-15. */
    return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) |
           ((gsi + GIC_SPI_BASE) & KVM_ARM_IRQ_NUM_MASK);
}

int kvm_arch_vcpu_init(struct hv_vcpu *v)
{
    struct kvm_vcpu_init init;
    memset(&init, 0, sizeof(init));
    int r = xioctl(v->vm->fd, KVM_ARM_PREFERRED_TARGET, &init);
    if (r < 0)
        return r;
    /* PSCI 0.2 (SYSTEM_OFF and SYSTEM_RESET reach us as system events,
     * CPU_ON starts secondaries); every vCPU but the first waits, powered
     * off, for the guest's CPU_ON. */
    init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
    if (v->id != 0)
        init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
    r = xioctl(v->fd, KVM_ARM_VCPU_INIT, &init);
    return r < 0 ? r : 0;
}

static int get_reg(struct hv_vcpu *v, uint64_t id, uint64_t *val)
{
    struct kvm_one_reg r = {.id = id, .addr = (uintptr_t)val};
    int e = xioctl(v->fd, KVM_GET_ONE_REG, &r);
    return e < 0 ? e : 0;
}

static int set_reg(struct hv_vcpu *v, uint64_t id, uint64_t val)
{
    struct kvm_one_reg r = {.id = id, .addr = (uintptr_t)&val};
    int e = xioctl(v->fd, KVM_SET_ONE_REG, &r);
    return e < 0 ? e : 0;
}

int hv_arm64_vcpu_get_regs(struct hv_vcpu *v, struct hv_arm64_regs *o)
{
    int r;
    for (unsigned i = 0; i < 31; i++)
        if ((r = get_reg(v, CORE_REG(regs.regs[0]) + i * 2, &o->x[i])) < 0)
            return r;
    if ((r = get_reg(v, CORE_REG(regs.sp), &o->sp)) < 0 ||
        (r = get_reg(v, CORE_REG(regs.pc), &o->pc)) < 0 ||
        (r = get_reg(v, CORE_REG(regs.pstate), &o->pstate)) < 0)
        return r;
    return 0;
}

int hv_arm64_vcpu_set_boot(struct hv_vcpu *v, uint64_t pc, uint64_t x0)
{
    int r;
    if ((r = set_reg(v, CORE_REG(regs.pstate), PSR_MODE_EL1H | PSR_DAIF_MASKED)) < 0 ||
        (r = set_reg(v, CORE_REG(regs.regs[0]), x0)) < 0 ||
        (r = set_reg(v, CORE_REG(regs.regs[1]), 0)) < 0 ||
        (r = set_reg(v, CORE_REG(regs.regs[2]), 0)) < 0 ||
        (r = set_reg(v, CORE_REG(regs.regs[3]), 0)) < 0 ||
        (r = set_reg(v, CORE_REG(regs.pc), pc)) < 0)
        return r;
    return 0;
}

int hv_arm64_vcpu_mpidr(struct hv_vcpu *v, uint64_t *mpidr)
{
    return get_reg(v, REG_MPIDR_EL1, mpidr);
}

static const unsigned long vcpu_ioctls[] = {
    KVM_GET_ONE_REG, /* registers for a crash report */
};
static const unsigned long vmm_ioctls[] = {
    KVM_GET_REG_LIST,     /* snapshot: which registers each vCPU has */
    KVM_GET_ONE_REG,      /* the same: their values */
    KVM_GET_MP_STATE,     /* the same: whether a vCPU is powered off */
    KVM_GET_DEVICE_ATTR,  /* snapshot: the vGIC's registers */
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

/* ---- the self-test guest ----
 * At 0x1000 of 64 KiB of RAM at 0: store the byte 0x5a at 0x20000 (no
 * memory there: an MMIO exit), then PSCI SYSTEM_OFF through HVC (a system
 * event), then spin. Instruction words, little-endian. */
#define SELFTEST_MMIO 0x20000u
static const uint8_t selftest_code[] = {
    0x40, 0x0b, 0x80, 0x52, /* movz w0, #0x5a */
    0x41, 0x00, 0xa0, 0xd2, /* movz x1, #0x2, lsl #16 */
    0x20, 0x00, 0x00, 0x39, /* strb w0, [x1] */
    0x00, 0x01, 0x80, 0x52, /* movz w0, #0x8 */
    0x00, 0x80, 0xb0, 0x72, /* movk w0, #0x8400, lsl #16: PSCI SYSTEM_OFF */
    0x02, 0x00, 0x00, 0xd4, /* hvc #0 */
    0x00, 0x00, 0x00, 0x14, /* b . */
};
const struct kvm_selftest_guest kvm_selftest_guest = {
    .code = selftest_code, .len = sizeof(selftest_code),
    .mem_gpa = 0, .entry = 0x1000, .end = HV_EXIT_SYSTEM_OFF,
    .what = "ran EL1 code, wrote to MMIO and powered off through PSCI"};

const struct hv_feat_desc hv_feat_desc[HV_FEAT_COUNT] = {
    {"irqchip", "the GICv3 in the kernel"},
    {"irqfd", "device interrupts without a system call from the vCPU"},
    {"ioeventfd", "guest notifications without a userspace exit"},
    {"readonly-memory", "read-only guest memory (not used yet)"},
    {"dirty-log", "dirty-page tracking, for Diff snapshots"},
    {NULL, NULL}, /* the TSC-deadline timer is x86's */
    {"immediate-exit", "vCPU kicks that are never lost"},
    {"user-memory", "guest RAM from host memory"},
    {"arch-timer", "the architected timer, emulated in the kernel"},
};

int kvm_arch_selftest_vcpu(struct hv_vcpu *v)
{
    return set_reg(v, CORE_REG(regs.pc), kvm_selftest_guest.entry);
}

bool kvm_arch_selftest_wrote(const struct hv_exit *e)
{
    return e->reason == HV_EXIT_MMIO && e->mmio.addr == SELFTEST_MMIO && e->mmio.write &&
           e->mmio.len == 1 && e->mmio.data[0] == SELFTEST_VALUE;
}
