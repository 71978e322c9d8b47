/* kvm_x86_state.c - a paused x86 VM's KVM state, saved and loaded for
 * snapshots (hv.h: hv_vcpu_save/load, hv_vm_save/load).
 *
 * KVM's own structures are a stable kernel ABI, so each is stored as its
 * bytes behind a length; a length that differs from this kernel's is
 * refused. What KVM accepts back it validates itself: a hostile state file
 * can hurt only the guest it describes.
 */
#include "hv/kvm_internal.h"

#include "base/log.h"
#include "base/snap.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bounds on counts read from a file: far above what KVM reports (about 60
 * CPUID leaves and 100 MSRs today), far below anything that hurts. */
#define MAX_CPUID 512
#define MAX_MSRS 2048
/* Chunk for KVM_GET_MSRS. */
#define MSR_CHUNK 64

static void put_blob(struct snap_w *w, const void *p, uint32_t len)
{
    snap_put_u32(w, len);
    snap_put(w, p, len);
}

/* A blob of exactly @len bytes, else r->err. */
static void get_blob(struct snap_r *r, void *p, uint32_t len)
{
    if (snap_get_u32(r) != len) {
        r->err = -EPROTO;
        memset(p, 0, len);
        return;
    }
    snap_get(r, p, len);
}

/* Bytes of the XSAVE area on this host: KVM_CAP_XSAVE2 reports more than
 * the legacy 4 KiB when the CPU has larger states (AMX). */
static size_t xsave_size(struct hv_vcpu *v)
{
    int n = ioctl(v->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* Every MSR KVM lists that it also lets us read. */
static int get_msrs(struct hv_vcpu *v, struct kvm_msrs **out)
{
    struct kvm_msr_list probe = {.nmsrs = 0};
    int r = xioctl(v->vm->hv->fd, KVM_GET_MSR_INDEX_LIST, &probe);
    if (r < 0 && r != -E2BIG)
        return r;
    unsigned n = probe.nmsrs;
    if (n > MAX_MSRS)
        n = MAX_MSRS;
    struct kvm_msr_list *list = calloc(1, sizeof(*list) + n * sizeof(uint32_t));
    struct kvm_msrs *all = calloc(1, sizeof(*all) + n * sizeof(struct kvm_msr_entry));
    struct kvm_msrs *chunk = calloc(1, sizeof(*chunk) + MSR_CHUNK * sizeof(struct kvm_msr_entry));
    r = -ENOMEM;
    if (!list || !all || !chunk)
        goto out;
    list->nmsrs = n;
    if ((r = xioctl(v->vm->hv->fd, KVM_GET_MSR_INDEX_LIST, list)) < 0)
        goto out;
    n = list->nmsrs < n ? list->nmsrs : n;
    for (unsigned i = 0; i < n;) {
        unsigned c = n - i < MSR_CHUNK ? n - i : MSR_CHUNK;
        chunk->nmsrs = c;
        for (unsigned k = 0; k < c; k++)
            chunk->entries[k] = (struct kvm_msr_entry){.index = list->indices[i + k]};
        r = xioctl(v->fd, KVM_GET_MSRS, chunk);
        if (r < 0)
            goto out;
        /* KVM stops at the first MSR it cannot read: keep those before it,
         * skip that one (listed but not readable on this CPU). */
        for (int k = 0; k < r; k++)
            all->entries[all->nmsrs++] = chunk->entries[k];
        i += (unsigned)r < c ? (unsigned)r + 1 : c;
    }
    *out = all;
    all = NULL;
    r = 0;
out:
    free(list);
    free(all);
    free(chunk);
    return r;
}

/* Set the MSRs, MSR_CHUNK at a time (KVM refuses more than 255 in one
 * call); one KVM refuses (a host of a slightly different kind) is named
 * and left out rather than failing the restore. */
static int set_msrs(struct hv_vcpu *v, struct kvm_msrs *m)
{
    unsigned done = 0, n = m->nmsrs;
    struct kvm_msrs *chunk = calloc(1, sizeof(*chunk) + MSR_CHUNK * sizeof(m->entries[0]));
    if (!chunk)
        return -ENOMEM;
    while (done < n) {
        chunk->nmsrs = n - done < MSR_CHUNK ? n - done : MSR_CHUNK;
        memcpy(chunk->entries, &m->entries[done], chunk->nmsrs * sizeof(m->entries[0]));
        int r = xioctl(v->fd, KVM_SET_MSRS, chunk);
        if (r < 0) {
            free(chunk);
            return r;
        }
        done += (unsigned)r;
        if ((unsigned)r < chunk->nmsrs) {
            log_warn("restore: KVM refused MSR 0x%x; left at its default",
                     m->entries[done].index);
            done++;
        }
    }
    free(chunk);
    return 0;
}

/* One vCPU's state as KVM hands it out. */
struct vstate {
    struct kvm_mp_state mp;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs dregs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    size_t xs; /* bytes of *xsave on this host */
    struct kvm_xsave *xsave;
    struct kvm_cpuid2 *cpuid;
    struct kvm_msrs *msrs;
};

enum part_kind { PART_FIXED, PART_CPUID, PART_XSAVE, PART_MSRS };

/* The parts, in the order they are saved, stored and set: Firecracker's.
 * CPUID first (it shapes what the others may hold), MP state before the
 * events (getting it may flush pending APIC events), events last. */
static const struct part {
    const char *name;
    enum part_kind kind;
    unsigned long get, set;
    size_t off, size; /* PART_FIXED: where in struct vstate */
} parts[] = {
#define FIXED(n, g, s, f) {n, PART_FIXED, g, s, offsetof(struct vstate, f), sizeof(((struct vstate *)0)->f)}
    {"CPUID", PART_CPUID, KVM_GET_CPUID2, KVM_SET_CPUID2, 0, 0},
    FIXED("MP state", KVM_GET_MP_STATE, KVM_SET_MP_STATE, mp),
    FIXED("registers", KVM_GET_REGS, KVM_SET_REGS, regs),
    FIXED("special registers", KVM_GET_SREGS, KVM_SET_SREGS, sregs),
    {"XSAVE", PART_XSAVE, KVM_GET_XSAVE, KVM_SET_XSAVE, 0, 0},
    FIXED("XCRs", KVM_GET_XCRS, KVM_SET_XCRS, xcrs),
    FIXED("debug registers", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, dregs),
    FIXED("LAPIC", KVM_GET_LAPIC, KVM_SET_LAPIC, lapic),
    {"MSRs", PART_MSRS, 0, 0, 0, 0},
    FIXED("events", KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, events),
#undef FIXED
};
#define NPARTS (sizeof(parts) / sizeof(parts[0]))

static void vstate_free(struct vstate *s)
{
    free(s->xsave);
    free(s->cpuid);
    free(s->msrs);
}

static int get_cpuid(struct hv_vcpu *v, struct vstate *s)
{
    s->cpuid = calloc(1, sizeof(*s->cpuid) + MAX_CPUID * sizeof(struct kvm_cpuid_entry2));
    if (!s->cpuid)
        return -ENOMEM;
    s->cpuid->nent = MAX_CPUID;
    int r = xioctl(v->fd, KVM_GET_CPUID2, s->cpuid);
    if (r < 0)
        return r;
    /* Seen on Debian's 6.1 (nested): KVM_GET_CPUID2 succeeds without
     * writing the entry count back. The buffer was zeroed and no real
     * entry is all zeros (leaf 0 names the vendor): drop the tail. */
    struct kvm_cpuid2 *c = s->cpuid;
    while (c->nent &&
           !memcmp(&c->entries[c->nent - 1], &(struct kvm_cpuid_entry2){0}, sizeof(c->entries[0])))
        c->nent--;
    return 0;
}

/* Get part @p from KVM into @s. */
static int get_part(struct hv_vcpu *v, const struct part *p, struct vstate *s)
{
    switch (p->kind) {
    case PART_CPUID:
        return get_cpuid(v, s);
    case PART_XSAVE:
        return xioctl(v->fd, s->xs > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
                      s->xsave);
    case PART_MSRS:
        return get_msrs(v, &s->msrs);
    default:
        return xioctl(v->fd, p->get, (char *)s + p->off);
    }
}

static void put_part(struct snap_w *w, const struct part *p, const struct vstate *s)
{
    switch (p->kind) {
    case PART_CPUID:
        snap_put_u32(w, s->cpuid->nent);
        snap_put(w, s->cpuid->entries, s->cpuid->nent * sizeof(struct kvm_cpuid_entry2));
        break;
    case PART_XSAVE:
        put_blob(w, s->xsave, (uint32_t)s->xs);
        break;
    case PART_MSRS:
        snap_put_u32(w, s->msrs->nmsrs);
        for (unsigned i = 0; i < s->msrs->nmsrs; i++) {
            snap_put_u32(w, s->msrs->entries[i].index);
            snap_put_u64(w, s->msrs->entries[i].data);
        }
        break;
    default:
        put_blob(w, (const char *)s + p->off, (uint32_t)p->size);
    }
}

/* Read part @p into @s, bounded: -EPROTO (malformed), -ENOTSUP (another
 * kind of CPU), -ENOMEM. */
static int read_part(struct snap_r *r, const struct part *p, struct vstate *s)
{
    uint32_t n;
    switch (p->kind) {
    case PART_CPUID:
        n = snap_get_u32(r);
        if (r->err || n > MAX_CPUID)
            return -EPROTO;
        if (!(s->cpuid = calloc(1, sizeof(*s->cpuid) + n * sizeof(struct kvm_cpuid_entry2))))
            return -ENOMEM;
        s->cpuid->nent = n;
        snap_get(r, s->cpuid->entries, n * sizeof(struct kvm_cpuid_entry2));
        break;
    case PART_XSAVE:
        if (snap_get_u32(r) != s->xs) {
            log_err("restore: the snapshot's XSAVE area differs from this host's (%zu bytes): "
                    "it was taken on a CPU of another kind", s->xs);
            return -ENOTSUP;
        }
        snap_get(r, s->xsave, (uint32_t)s->xs);
        break;
    case PART_MSRS:
        n = snap_get_u32(r);
        if (r->err || n > MAX_MSRS)
            return -EPROTO;
        if (!(s->msrs = calloc(1, sizeof(*s->msrs) + n * sizeof(struct kvm_msr_entry))))
            return -ENOMEM;
        s->msrs->nmsrs = n;
        for (unsigned i = 0; i < n; i++) {
            s->msrs->entries[i].index = snap_get_u32(r);
            s->msrs->entries[i].data = snap_get_u64(r);
        }
        break;
    default:
        get_blob(r, (char *)s + p->off, (uint32_t)p->size);
    }
    return r->err;
}

static int set_part(struct hv_vcpu *v, const struct part *p, struct vstate *s)
{
    switch (p->kind) {
    case PART_CPUID:
        return xioctl(v->fd, KVM_SET_CPUID2, s->cpuid);
    case PART_XSAVE:
        return xioctl(v->fd, KVM_SET_XSAVE, s->xsave);
    case PART_MSRS:
        return set_msrs(v, s->msrs);
    default:
        return xioctl(v->fd, p->set, (char *)s + p->off);
    }
}

int hv_vcpu_save(struct hv_vcpu *v, struct snap_w *w)
{
    struct vstate s = {.xs = xsave_size(v)};
    int r = (s.xsave = calloc(1, s.xs)) ? 0 : -ENOMEM;
    for (size_t i = 0; i < NPARTS && r >= 0; i++)
        r = get_part(v, &parts[i], &s);
    if (r >= 0) {
        int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
        snap_put_u32(w, (uint32_t)(khz > 0 ? khz : 0));
        for (size_t i = 0; i < NPARTS; i++)
            put_part(w, &parts[i], &s);
        r = 0;
    }
    vstate_free(&s);
    return r;
}

int hv_vcpu_load(struct hv_vcpu *v, struct snap_r *r)
{
    struct vstate s = {.xs = xsave_size(v)};
    int ret = (s.xsave = calloc(1, s.xs)) ? 0 : -ENOMEM;
    uint32_t khz = snap_get_u32(r);
    for (size_t i = 0; i < NPARTS && ret >= 0; i++)
        ret = read_part(r, &parts[i], &s);
    if (ret >= 0)
        ret = snap_r_done(r);
    if (ret < 0)
        goto out;
    /* The guest calibrated against this TSC rate; keep it where KVM can
     * scale (a host without TSC scaling keeps its own rate). */
    int cur = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
    if (khz && cur > 0 && (uint32_t)cur != khz &&
        ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
        log_warn("restore: TSC runs at %d kHz here, the guest expects %u kHz", cur, khz);
    for (size_t i = 0; i < NPARTS && ret >= 0; i++)
        if ((ret = set_part(v, &parts[i], &s)) < 0)
            log_err("restore: KVM refused the vCPU's %s: %s", parts[i].name, strerror(-ret));
out:
    vstate_free(&s);
    return ret < 0 ? ret : 0;
}

int hv_vm_save(struct hv_vm *vm, struct snap_w *w)
{
    struct kvm_irqchip chip[3];
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
    memset(chip, 0, sizeof(chip));
    int r;
    for (unsigned i = 0; i < 3; i++) {
        chip[i].chip_id = i; /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */
        if ((r = xioctl(vm->fd, KVM_GET_IRQCHIP, &chip[i])) < 0)
            return r;
    }
    if ((r = xioctl(vm->fd, KVM_GET_PIT2, &pit)) < 0 ||
        (r = xioctl(vm->fd, KVM_GET_CLOCK, &clock)) < 0)
        return r;
    for (unsigned i = 0; i < 3; i++)
        put_blob(w, &chip[i], sizeof(chip[i]));
    put_blob(w, &pit, sizeof(pit));
    put_blob(w, &clock, sizeof(clock));
    /* Our own real-time stamp: KVM gives one (KVM_CLOCK_REALTIME) only on
     * hosts whose clocksource is the TSC. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snap_put_u64(w, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec);
    return 0;
}

int hv_vm_load(struct hv_vm *vm, struct snap_r *r, bool clock_realtime)
{
    struct kvm_irqchip chip[3];
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
    for (unsigned i = 0; i < 3; i++) {
        get_blob(r, &chip[i], sizeof(chip[i]));
        if (chip[i].chip_id != i)
            r->err = -EPROTO;
    }
    get_blob(r, &pit, sizeof(pit));
    get_blob(r, &clock, sizeof(clock));
    uint64_t saved_ns = snap_get_u64(r);
    int ret = snap_r_done(r);
    if (ret < 0)
        return ret;
    /* kvmclock: by default the guest's clock goes on from the moment of the
     * snapshot (its monotonic time has no jump); with @clock_realtime it is
     * advanced by the real time elapsed since, so the guest's wall clock is
     * right (as KVM_CLOCK_REALTIME would, on any host). */
    if (clock_realtime) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
        if (now_ns > saved_ns)
            clock.clock += now_ns - saved_ns;
    }
    clock.flags = 0;
    clock.host_tsc = 0;
    if ((ret = xioctl(vm->fd, KVM_SET_PIT2, &pit)) < 0 ||
        (ret = xioctl(vm->fd, KVM_SET_CLOCK, &clock)) < 0)
        return ret;
    for (unsigned i = 0; i < 3; i++)
        if ((ret = xioctl(vm->fd, KVM_SET_IRQCHIP, &chip[i])) < 0)
            return ret;
    return 0;
}
