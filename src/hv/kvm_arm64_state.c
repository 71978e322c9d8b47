/* kvm_arm64_state.c - a paused arm64 VM's KVM state, saved and loaded for
 * snapshots (hv.h: hv_vcpu_save/load, hv_vm_save/load).
 *
 * A vCPU is every register KVM_GET_REG_LIST names (core, FP/SIMD, system,
 * timer and firmware registers), its MP state (a secondary the guest never
 * started stays off) and its part of the vGICv3: its redistributor and CPU
 * interface. The VM is the distributor and the SPIs' line levels. Records
 * and their checks: kvm_arm64_fmt.c. What KVM accepts back it validates
 * itself; a hostile state file can hurt only the guest it describes.
 *
 * Restore order (arm-vgic-v3.rst): the vGIC must be initialised before
 * its registers are accessed, which hv_vm_finalize() did when the vCPUs
 * were made; then the distributor (hv_vm_load), then each vCPU.
 */
#include "hv/kvm_internal.h"
#include "hv/kvm_arm64_fmt.h"

#include "base/log.h"
#include "base/snap.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REG_MPIDR_EL1 ARM64_SYS_REG(3, 0, 0, 0, 5)
/* The GIC's interrupt IDs below the SPIs (SGIs and PPIs). */
#define GIC_PRIVATE_IRQS 32u

static int one_reg(struct hv_vcpu *v, unsigned long req, uint64_t id, void *val)
{
    struct kvm_one_reg r = {.id = id, .addr = (uintptr_t)val};
    int e = xioctl(v->fd, req, &r);
    return e < 0 ? e : 0;
}

/* This vCPU's register IDs (KVM_GET_REG_LIST), a new array. */
static int reg_list(struct hv_vcpu *v, uint64_t **ids, unsigned *n)
{
    struct kvm_reg_list probe = {.n = 0};
    int r = xioctl(v->fd, KVM_GET_REG_LIST, &probe);
    if (r < 0 && r != -E2BIG)
        return r;
    if (probe.n > A64_MAX_REGS) {
        log_err("snapshot: KVM lists %" PRIu64 " vCPU registers, more than arcvm takes (%u)",
                (uint64_t)probe.n, A64_MAX_REGS);
        return -ENOTSUP;
    }
    struct kvm_reg_list *l = calloc(1, sizeof(*l) + probe.n * sizeof(uint64_t));
    if (!l)
        return -ENOMEM;
    l->n = probe.n;
    if ((r = xioctl(v->fd, KVM_GET_REG_LIST, l)) < 0) {
        free(l);
        return r;
    }
    uint64_t *out = malloc((l->n ? l->n : 1) * sizeof(*out));
    if (!out) {
        free(l);
        return -ENOMEM;
    }
    memcpy(out, l->reg, l->n * sizeof(*out));
    *ids = out;
    *n = (unsigned)l->n;
    free(l);
    return 0;
}

/* ---- the vGIC ---- */

/* The attribute of @it for the CPU whose MPIDR_EL1 is @mpidr, and its
 * group (arm-vgic-v3.rst: affinity 3..0 in bits 63..32). */
static uint64_t gic_attr_of(const struct a64_gic_item *it, uint64_t mpidr, uint32_t *group)
{
    uint64_t aff = (mpidr & 0xffffff) | ((mpidr >> 8) & 0xff000000);
    uint64_t cpu = it->kind == A64_GIC_DIST ? 0 : aff << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT;
    switch (it->kind) {
    case A64_GIC_DIST:
        *group = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;
        return it->reg;
    case A64_GIC_REDIST:
        *group = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS;
        return cpu | it->reg;
    case A64_GIC_SYSREG:
        *group = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
        return cpu | it->reg;
    default:
        *group = KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO;
        return cpu | ((uint64_t)VGIC_LEVEL_INFO_LINE_LEVEL << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) |
               it->reg;
    }
}

/* Get (@set false) or set one register of @it; 32-bit ones through a
 * u32 as the API wants. */
static int gic_access(struct hv_vm *vm, const struct a64_gic_item *it, uint64_t mpidr,
                      uint64_t *val, bool set)
{
    struct kvm_device_attr a;
    uint32_t v32 = (uint32_t)*val;
    a.flags = 0;
    a.attr = gic_attr_of(it, mpidr, &a.group);
    a.addr = it->kind == A64_GIC_SYSREG ? (uintptr_t)val : (uintptr_t)&v32;
    int r = xioctl(vm->chip_fd, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, &a);
    if (r >= 0 && !set && it->kind != A64_GIC_SYSREG)
        *val = v32;
    return r < 0 ? r : 0;
}

/* The vGIC registers of the distributor (@cpu false) or of a vCPU, with
 * room for their values. */
struct gic_set {
    struct a64_gic_item *items;
    uint64_t *vals;
    bool *have;
    unsigned n;
};

static void gic_set_free(struct gic_set *s)
{
    free(s->items);
    free(s->vals);
    free(s->have);
}

static int gic_set_make(struct hv_vm *vm, bool cpu, struct gic_set *s)
{
    s->items = calloc(A64_GIC_MAX_ITEMS, sizeof(*s->items));
    s->vals = calloc(A64_GIC_MAX_ITEMS, sizeof(*s->vals));
    s->have = calloc(A64_GIC_MAX_ITEMS, sizeof(*s->have));
    if (!s->items || !s->vals || !s->have) {
        gic_set_free(s);
        return -ENOMEM;
    }
    s->n = a64_gic_items(cpu, vm->chip_lines + GIC_PRIVATE_IRQS, s->items, A64_GIC_MAX_ITEMS);
    return 0;
}

/* Save the registers of @cpu (a vCPU's with its @mpidr, else the
 * distributor's). One KVM does not offer here (-ENXIO) or in this
 * configuration (-EINVAL: an active-priority register beyond the CPU's
 * priority bits) is left out; the load then leaves it at its reset value. */
static int gic_save(struct hv_vm *vm, bool cpu, uint64_t mpidr, struct snap_w *w)
{
    struct gic_set s = {0};
    int r = gic_set_make(vm, cpu, &s);
    for (unsigned i = 0; r == 0 && i < s.n; i++) {
        r = gic_access(vm, &s.items[i], mpidr, &s.vals[i], false);
        s.have[i] = r == 0;
        if (r == -ENXIO || r == -EINVAL)
            r = 0;
        else if (r < 0)
            log_err("snapshot: reading vGIC register %u:%#x failed: %s", s.items[i].kind,
                    s.items[i].reg, strerror(-r));
    }
    if (r == 0)
        a64_gic_put(w, s.items, s.n, s.have, s.vals);
    gic_set_free(&s);
    return r;
}

static int gic_load(struct hv_vm *vm, bool cpu, uint64_t mpidr, struct snap_r *rd)
{
    struct gic_set s = {0};
    int r = gic_set_make(vm, cpu, &s);
    if (r < 0)
        return r;
    if ((r = a64_gic_get(rd, s.items, s.n, s.have, s.vals)) < 0)
        log_err("restore: the snapshot's vGIC %s state is malformed",
                cpu ? "redistributor" : "distributor");
    for (unsigned i = 0; i < s.n && r == 0; i++) {
        const struct a64_gic_item *it = &s.items[i];
        if (!s.have[i])
            continue;
        if (it->set_clear) {
            /* Clear what must be clear (the twin 0x80 up), then set. */
            struct a64_gic_item twin = *it;
            uint64_t inv = ~s.vals[i] & 0xffffffffu;
            twin.reg += 0x80;
            r = gic_access(vm, &twin, mpidr, &inv, true);
        }
        if (r == 0)
            r = gic_access(vm, it, mpidr, &s.vals[i], true);
        if (r < 0)
            log_err("restore: KVM refused vGIC register %u:%#x = %#" PRIx64 ": %s", it->kind,
                    it->reg, s.vals[i], strerror(-r));
    }
    gic_set_free(&s);
    return r;
}

/* ---- vCPUs ---- */

int hv_vcpu_save(struct hv_vcpu *v, struct snap_w *w)
{
    uint64_t *ids = NULL, mpidr = 0;
    unsigned n = 0;
    struct kvm_mp_state mp;
    int r = reg_list(v, &ids, &n);
    if (r < 0)
        return r;
    struct a64_reg *regs = calloc(n ? n : 1, sizeof(*regs));
    if (!regs) {
        free(ids);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n && r == 0; i++) {
        regs[i].id = ids[i];
        if (a64_reg_size(ids[i]) == 0) {
            log_err("snapshot: vCPU register %#" PRIx64 " is wider than arcvm stores", ids[i]);
            r = -ENOTSUP;
        } else if ((r = one_reg(v, KVM_GET_ONE_REG, ids[i], regs[i].val)) < 0) {
            log_err("snapshot: reading vCPU register %#" PRIx64 " failed: %s", ids[i],
                    strerror(-r));
        }
    }
    if (r == 0)
        r = xioctl(v->fd, KVM_GET_MP_STATE, &mp);
    if (r >= 0)
        r = one_reg(v, KVM_GET_ONE_REG, REG_MPIDR_EL1, &mpidr);
    if (r == 0) {
        snap_put_u32(w, mp.mp_state);
        a64_regs_put(w, regs, n);
        snap_put_u8(w, v->vm->chip_fd >= 0);
        if (v->vm->chip_fd >= 0)
            r = gic_save(v->vm, true, mpidr, w);
    }
    free(regs);
    free(ids);
    return r < 0 ? r : 0;
}

/* Ticks of the virtual counter in @ns: its frequency is the host's
 * (CNTFRQ_EL0, which KVM gives guests unchanged). */
static uint64_t counter_ticks(uint64_t ns)
{
    uint64_t hz;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
    return ns / 1000000000u * hz + ns % 1000000000u * hz / 1000000000u;
}

int hv_vcpu_load(struct hv_vcpu *v, struct snap_r *rd)
{
    uint64_t *ids = NULL, bad = 0, mpidr = 0;
    unsigned nids = 0, n = 0;
    struct a64_reg *regs = NULL;
    struct kvm_mp_state mp = {.mp_state = snap_get_u32(rd)};
    int r = reg_list(v, &ids, &nids);
    if (r < 0)
        return r;
    r = a64_regs_get(rd, ids, nids, &regs, &n, &bad);
    free(ids);
    if (r < 0) {
        if (r == -EPROTO && bad)
            log_err("restore: the snapshot's vCPU register %#" PRIx64 " is unknown to this "
                    "host's KVM, sized wrongly or repeated", bad);
        return r;
    }
    bool gic = snap_get_bool(rd);
    if (rd->err || gic != (v->vm->chip_fd >= 0)) {
        r = -EPROTO;
        goto out;
    }
    /* Registers in the order KVM listed them at the save (core registers
     * first). The virtual counter (TIMER_CNT: writing it sets the VM's
     * counter offset) goes on from the snapshot, or is moved on by the
     * real time since when the restore asked for that. */
    for (unsigned i = 0; i < n && r == 0; i++) {
        if (regs[i].id == KVM_REG_ARM_TIMER_CNT && v->vm->clock_advance_ns) {
            uint64_t cnt;
            memcpy(&cnt, regs[i].val, sizeof(cnt));
            cnt += counter_ticks(v->vm->clock_advance_ns);
            memcpy(regs[i].val, &cnt, sizeof(cnt));
        }
        if ((r = one_reg(v, KVM_SET_ONE_REG, regs[i].id, regs[i].val)) < 0)
            log_err("restore: KVM refused vCPU register %#" PRIx64 ": %s (a snapshot of a "
                    "host of another kind?)", regs[i].id, strerror(-r));
    }
    if (r == 0 && (r = xioctl(v->fd, KVM_SET_MP_STATE, &mp)) < 0)
        log_err("restore: KVM refused the vCPU's MP state %u: %s", mp.mp_state, strerror(-r));
    if (r == 0 && gic && (r = one_reg(v, KVM_GET_ONE_REG, REG_MPIDR_EL1, &mpidr)) == 0)
        r = gic_load(v->vm, true, mpidr, rd);
    if (r == 0)
        r = snap_r_done(rd);
out:
    free(regs);
    return r < 0 ? r : 0;
}

/* ---- the VM ---- */

static uint64_t realtime_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

int hv_vm_save(struct hv_vm *vm, struct snap_w *w)
{
    bool gic = vm->chip_fd >= 0;
    snap_put_u32(w, gic ? vm->chip_lines + GIC_PRIVATE_IRQS : 0);
    int r = gic ? gic_save(vm, false, 0, w) : 0;
    /* When it was taken, for a restore that moves the clock on. */
    snap_put_u64(w, realtime_ns());
    return r;
}

int hv_vm_load(struct hv_vm *vm, struct snap_r *rd, bool clock_realtime)
{
    bool gic = vm->chip_fd >= 0;
    uint32_t nr_irqs = snap_get_u32(rd);
    if (rd->err || nr_irqs != (gic ? vm->chip_lines + GIC_PRIVATE_IRQS : 0)) {
        log_err("restore: the snapshot's interrupt controller has %u interrupts, this "
                "machine's has %u", nr_irqs, gic ? vm->chip_lines + GIC_PRIVATE_IRQS : 0);
        return -EPROTO;
    }
    int r = gic ? gic_load(vm, false, 0, rd) : 0;
    if (r < 0)
        return r;
    uint64_t saved_ns = snap_get_u64(rd);
    if ((r = snap_r_done(rd)) < 0)
        return r;
    /* By default the guest's clocks go on from the snapshot (its virtual
     * counter resumes where it stopped); with @clock_realtime each vCPU's
     * counter is moved on by the real time elapsed since (hv_vcpu_load). */
    uint64_t now = realtime_ns();
    vm->clock_advance_ns = clock_realtime && now > saved_ns ? now - saved_ns : 0;
    return 0;
}
