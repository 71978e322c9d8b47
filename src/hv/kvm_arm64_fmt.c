/* kvm_arm64_fmt.c - the arm64 KVM state's snapshot records and their
 * checks; see kvm_arm64_fmt.h. Register offsets: Arm's GICv3/v4
 * architecture specification (distributor, redistributor SGI frame) and
 * KVM's devices/arm-vgic-v3.rst (what the attribute groups reach).
 */
#include "hv/kvm_arm64_fmt.h"

#include "base/snap.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

unsigned a64_reg_size(uint64_t id)
{
    unsigned shift = (unsigned)((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
    return shift <= 4 ? 1u << shift : 0; /* 2^4 = 16 bytes: U128 */
}

void a64_regs_put(struct snap_w *w, const struct a64_reg *regs, unsigned n)
{
    snap_put_u32(w, n);
    for (unsigned i = 0; i < n; i++) {
        unsigned sz = a64_reg_size(regs[i].id);
        snap_put_u64(w, regs[i].id);
        snap_put_u32(w, sz);
        snap_put(w, regs[i].val, sz);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int a64_regs_get(struct snap_r *r, const uint64_t *known, unsigned nknown, struct a64_reg **out,
                 unsigned *n, uint64_t *bad)
{
    *out = NULL;
    *n = 0;
    *bad = 0;
    uint32_t count = snap_get_u32(r);
    if (r->err || count > A64_MAX_REGS || count > nknown)
        return -EPROTO;
    /* The known IDs sorted, and which of them the file named already. */
    uint64_t *sorted = malloc((nknown ? nknown : 1) * sizeof(*sorted));
    bool *seen = calloc(nknown ? nknown : 1, sizeof(*seen));
    struct a64_reg *regs = calloc(count ? count : 1, sizeof(*regs));
    int ret = -ENOMEM;
    if (!sorted || !seen || !regs)
        goto out;
    memcpy(sorted, known, nknown * sizeof(*sorted));
    qsort(sorted, nknown, sizeof(*sorted), cmp_u64);
    ret = -EPROTO;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t id = snap_get_u64(r);
        uint32_t sz = snap_get_u32(r);
        if (r->err)
            goto out;
        const uint64_t *k = bsearch(&id, sorted, nknown, sizeof(*sorted), cmp_u64);
        unsigned want = a64_reg_size(id);
        if (!k || seen[k - sorted] || want == 0 || sz != want) {
            *bad = id;
            goto out;
        }
        seen[k - sorted] = true;
        regs[i].id = id;
        snap_get(r, regs[i].val, sz);
    }
    if (r->err)
        goto out;
    *out = regs;
    *n = count;
    regs = NULL;
    ret = 0;
out:
    free(sorted);
    free(seen);
    free(regs);
    return ret;
}

/* ---- the vGICv3 ---- */

/* Distributor (GICD_*) offsets. */
#define GICD_CTLR 0x0000
#define GICD_IIDR 0x0008
#define GICD_IGROUPR 0x0080
#define GICD_ISENABLER 0x0100
#define GICD_ISPENDR 0x0200
#define GICD_ISACTIVER 0x0300
#define GICD_IPRIORITYR 0x0400
#define GICD_ICFGR 0x0c00
#define GICD_IGRPMODR 0x0d00
#define GICD_IROUTER 0x6000
/* Redistributor: the SGI/PPI frame is the second 64 KiB page; its
 * registers sit at the distributor's offsets for interrupts 0-31. */
#define GICR_SGI 0x10000
/* ICC_* registers by instruction encoding: op0, op1, CRn, CRm, op2 at the
 * bit positions of arm-vgic-v3.rst's "instr" field. */
#define ICC(op0, op1, crn, crm, op2)                                                       \
    ((uint32_t)((op0) << 14 | (op1) << 11 | (crn) << 7 | (crm) << 3 | (op2)))

struct builder {
    struct a64_gic_item *out;
    unsigned max, n;
};

static void add(struct builder *b, uint8_t kind, bool set_clear, uint32_t reg)
{
    if (b->n < b->max)
        b->out[b->n] = (struct a64_gic_item){.kind = kind, .set_clear = set_clear, .reg = reg};
    b->n++;
}

/* The 32-bit words of a per-interrupt register at @base with @bits per
 * interrupt, for interrupts @first..@last-1 (64-bit IROUTER: two words
 * each, as the API asks). */
static void span(struct builder *b, uint8_t kind, bool set_clear, uint32_t base, unsigned bits,
                 unsigned first, unsigned last)
{
    for (uint32_t off = first * bits / 8; off < last * bits / 8; off += 4)
        add(b, kind, set_clear, base + off);
}

unsigned a64_gic_items(bool cpu, unsigned nr_irqs, struct a64_gic_item *out, unsigned max)
{
    struct builder b = {out, max, 0};
    /* Configuration before state: the group, trigger mode, priority and
     * target of each interrupt decide how its pending and active state
     * behave; enabling comes last. */
    if (!cpu) {
        /* GICD_IIDR first: it tells KVM which revision of its behaviour
         * the saved state assumes (arm-vgic-v3.rst). */
        add(&b, A64_GIC_DIST, false, GICD_IIDR);
        add(&b, A64_GIC_DIST, false, GICD_CTLR);
        /* The SPIs, 32 up: interrupts 0-31 are the redistributors'. */
        span(&b, A64_GIC_DIST, false, GICD_IGROUPR, 1, 32, nr_irqs);
        span(&b, A64_GIC_DIST, false, GICD_ICFGR, 2, 32, nr_irqs);
        span(&b, A64_GIC_DIST, false, GICD_IPRIORITYR, 8, 32, nr_irqs);
        span(&b, A64_GIC_DIST, false, GICD_IROUTER, 64, 32, nr_irqs);
        span(&b, A64_GIC_DIST, false, GICD_IGRPMODR, 1, 32, nr_irqs);
        for (unsigned irq = 32; irq < nr_irqs; irq += 32)
            add(&b, A64_GIC_LEVEL, false, irq);
        span(&b, A64_GIC_DIST, false, GICD_ISPENDR, 1, 32, nr_irqs);
        span(&b, A64_GIC_DIST, true, GICD_ISACTIVER, 1, 32, nr_irqs);
        span(&b, A64_GIC_DIST, true, GICD_ISENABLER, 1, 32, nr_irqs);
        return b.n;
    }
    /* The CPU interface: ICC_SRE_EL1 first, then ICC_CTLR_EL1 (it sets
     * how many priority bits, hence active-priority registers, there
     * are), the AP0Rn before the AP1Rn as the architecture asks, the
     * group enables last. An APnR beyond the priority bits is refused by
     * KVM at save and so never stored. */
    add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 12, 5)); /* ICC_SRE_EL1 */
    add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 12, 4)); /* ICC_CTLR_EL1 */
    add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 4, 6, 0));   /* ICC_PMR_EL1 */
    add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 8, 3));  /* ICC_BPR0_EL1 */
    add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 12, 3)); /* ICC_BPR1_EL1 */
    for (unsigned i = 0; i < 4; i++)
        add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 8, 4 + i)); /* ICC_AP0Rn_EL1 */
    for (unsigned i = 0; i < 4; i++)
        add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 9, i)); /* ICC_AP1Rn_EL1 */
    add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 12, 6)); /* ICC_IGRPEN0_EL1 */
    add(&b, A64_GIC_SYSREG, false, ICC(3, 0, 12, 12, 7)); /* ICC_IGRPEN1_EL1 */
    /* The redistributor's SGIs and PPIs (no LPIs: this machine has no
     * ITS, so GICR_CTLR, PROPBASER and PENDBASER hold nothing). */
    span(&b, A64_GIC_REDIST, false, GICR_SGI + GICD_IGROUPR, 1, 0, 32);
    span(&b, A64_GIC_REDIST, false, GICR_SGI + GICD_ICFGR, 2, 0, 32);
    span(&b, A64_GIC_REDIST, false, GICR_SGI + GICD_IPRIORITYR, 8, 0, 32);
    span(&b, A64_GIC_REDIST, false, GICR_SGI + GICD_IGRPMODR, 1, 0, 32);
    add(&b, A64_GIC_LEVEL, false, 0); /* the PPIs' lines (the timers') */
    span(&b, A64_GIC_REDIST, false, GICR_SGI + GICD_ISPENDR, 1, 0, 32);
    span(&b, A64_GIC_REDIST, true, GICR_SGI + GICD_ISACTIVER, 1, 0, 32);
    span(&b, A64_GIC_REDIST, true, GICR_SGI + GICD_ISENABLER, 1, 0, 32);
    return b.n;
}

void a64_gic_put(struct snap_w *w, const struct a64_gic_item *items, unsigned n,
                 const bool *have, const uint64_t *vals)
{
    uint32_t count = 0;
    for (unsigned i = 0; i < n; i++)
        count += have[i];
    snap_put_u32(w, count);
    for (unsigned i = 0; i < n; i++) {
        if (!have[i])
            continue;
        snap_put_u8(w, items[i].kind);
        snap_put_u32(w, items[i].reg);
        snap_put_u64(w, vals[i]);
    }
}

int a64_gic_get(struct snap_r *r, const struct a64_gic_item *items, unsigned n, bool *have,
                uint64_t *vals)
{
    memset(have, 0, n * sizeof(*have));
    memset(vals, 0, n * sizeof(*vals));
    uint32_t count = snap_get_u32(r);
    if (r->err || count > n)
        return -EPROTO;
    unsigned at = 0; /* records come in item order: look there first */
    for (uint32_t k = 0; k < count; k++) {
        uint8_t kind = snap_get_u8(r);
        uint32_t reg = snap_get_u32(r);
        uint64_t val = snap_get_u64(r);
        if (r->err)
            return -EPROTO;
        unsigned i = 0, j = at;
        for (; i < n; i++, j = j + 1 < n ? j + 1 : 0)
            if (items[j].kind == kind && items[j].reg == reg)
                break;
        if (i == n || have[j] || (kind != A64_GIC_SYSREG && val > UINT32_MAX))
            return -EPROTO;
        have[j] = true;
        vals[j] = val;
        at = j + 1 < n ? j + 1 : 0;
    }
    return 0;
}
