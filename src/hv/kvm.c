/* kvm.c - the KVM backend of the hypervisor abstraction (x86-64).
 *
 * The only file in arcvm that issues KVM ioctls. It translates hv.h calls and
 * structures to KVM's and back, and nothing more: policy lives in the VMM.
 */
#include "hv/hv.h"

#include "base/irq.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* KVM's stable API version since Linux 2.6.22. */
#define KVM_API_EXPECTED 12
/* Placement of the VMX real-mode TSS (three pages) and identity-map page:
 * just below the 4 GiB boundary, inside the MMIO hole that arch/x86 keeps
 * free of devices. Ignored on AMD but harmless. */
#define KVM_TSS_ADDR 0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

struct hv {
    int fd;
    int run_size;
    struct hv_caps caps;
};

struct kvm_slot {
    bool used;
    uint64_t gpa, size;
    void *hva;
    uint32_t flags;
};

struct hv_vm {
    struct hv *hv;
    struct irq_chip chip; /* the in-kernel irqchip's lines, for irq_line */
    int fd;
    unsigned nslots;
    struct kvm_slot *slots;
};

struct hv_vcpu {
    struct hv_vm *vm;
    int fd;
    struct kvm_run *run;
};

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR && req != KVM_RUN);
    return r < 0 ? -errno : r;
}

static int check_ext(int fd, long ext)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, ext);
    return r < 0 ? 0 : r;
}

const char *const hv_feat_names[HV_FEAT_COUNT] = {
    "irqchip", "irqfd", "ioeventfd", "readonly-memory", "dirty-log",
    "tsc-deadline", "immediate-exit", "user-memory", "pit",
};

static void kick_handler(int sig)
{
    (void)sig; /* its only job is to make KVM_RUN return EINTR */
}

static int kick_installed;

static void install_kick(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: blocking calls on vCPU threads (console writes) return
     * EINTR too, so a kicked thread always gets back to its loop. */
    kick_installed = sigaction(SIGRTMIN, &sa, NULL) < 0 ? -errno : 1;
}

int hv_kick_signal(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_kick);
    return kick_installed < 0 ? kick_installed : SIGRTMIN;
}

int hv_open(struct hv **out, const char *dev)
{
    struct hv *hv = calloc(1, sizeof(*hv));
    if (!hv)
        return -ENOMEM;
    hv->fd = open(dev ? dev : "/dev/kvm", O_RDWR | O_CLOEXEC);
    if (hv->fd < 0) {
        int e = -errno;
        free(hv);
        return e;
    }
    /* Anything that answers otherwise (another driver at this path, an
     * ancient KVM) is not a hypervisor this backend can drive. */
    int r = ioctl(hv->fd, KVM_GET_API_VERSION, 0);
    if (r != KVM_API_EXPECTED) {
        r = -EPROTO;
        goto fail;
    }
    hv->run_size = ioctl(hv->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (hv->run_size < (int)sizeof(struct kvm_run)) {
        r = -EPROTO;
        goto fail;
    }
    struct hv_caps *c = &hv->caps;
    c->api_version = KVM_API_EXPECTED;
    c->recommended_vcpus = check_ext(hv->fd, KVM_CAP_NR_VCPUS);
    c->max_vcpus = check_ext(hv->fd, KVM_CAP_MAX_VCPUS);
    if (!c->max_vcpus)
        c->max_vcpus = c->recommended_vcpus ? c->recommended_vcpus : 4;
    if (!c->recommended_vcpus)
        c->recommended_vcpus = c->max_vcpus;
    c->max_mem_slots = check_ext(hv->fd, KVM_CAP_NR_MEMSLOTS);
    if (!c->max_mem_slots)
        c->max_mem_slots = 32;
    /* Dirty logging is part of every KVM's memory-slot interface. */
    c->features = HV_FEAT_DIRTY_LOG;
    /* Without immediate_exit a vCPU kick can be lost (Linux < 4.11). */
    if (check_ext(hv->fd, KVM_CAP_IMMEDIATE_EXIT))
        c->features |= HV_FEAT_IMMEDIATE_EXIT;
    if (check_ext(hv->fd, KVM_CAP_USER_MEMORY))
        c->features |= HV_FEAT_USER_MEMORY;
    if (check_ext(hv->fd, KVM_CAP_PIT2))
        c->features |= HV_FEAT_TIMER;
    if (check_ext(hv->fd, KVM_CAP_IRQCHIP))
        c->features |= HV_FEAT_IRQCHIP;
    if (check_ext(hv->fd, KVM_CAP_IRQFD))
        c->features |= HV_FEAT_IRQFD;
    if (check_ext(hv->fd, KVM_CAP_IOEVENTFD))
        c->features |= HV_FEAT_IOEVENTFD;
    if (check_ext(hv->fd, KVM_CAP_READONLY_MEM))
        c->features |= HV_FEAT_READONLY_MEM;
    if (check_ext(hv->fd, KVM_CAP_TSC_DEADLINE_TIMER))
        c->features |= HV_FEAT_TSC_DEADLINE;
    *out = hv;
    return 0;
fail:
    close(hv->fd);
    free(hv);
    return r;
}

void hv_close(struct hv *hv)
{
    if (!hv)
        return;
    close(hv->fd);
    free(hv);
}

const struct hv_caps *hv_caps(const struct hv *hv)
{
    return &hv->caps;
}

int hv_vm_create(struct hv *hv, const struct hv_vm_config *cfg, struct hv_vm **out)
{
    struct hv_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->hv = hv;
    vm->nslots = hv->caps.max_mem_slots;
    vm->slots = calloc(vm->nslots, sizeof(*vm->slots));
    int r = -ENOMEM;
    if (!vm->slots)
        goto fail_free;
    /* The VM fd is close-on-exec so guest state never leaks into children. */
    vm->fd = ioctl(hv->fd, KVM_CREATE_VM, 0);
    if (vm->fd < 0) {
        r = -errno;
        goto fail_free;
    }
    (void)fcntl(vm->fd, F_SETFD, FD_CLOEXEC);
    r = xioctl(vm->fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)KVM_TSS_ADDR);
    if (r < 0)
        goto fail;
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    r = xioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
    if (r < 0)
        goto fail;
    if (cfg && cfg->irqchip) {
        r = xioctl(vm->fd, KVM_CREATE_IRQCHIP, NULL);
        if (r < 0)
            goto fail;
    }
    if (cfg && cfg->timer) {
        /* SPEAKER_DUMMY: KVM also answers port 0x61 (PIT gate/speaker),
         * which Linux reads while calibrating; no exit for it. */
        struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
        r = xioctl(vm->fd, KVM_CREATE_PIT2, &pit);
        if (r < 0)
            goto fail;
    }
    *out = vm;
    return 0;
fail:
    close(vm->fd);
fail_free:
    free(vm->slots);
    free(vm);
    return r;
}

void hv_vm_destroy(struct hv_vm *vm)
{
    if (!vm)
        return;
    close(vm->fd);
    free(vm->slots);
    free(vm);
}

static int set_slot(struct hv_vm *vm, unsigned slot, const struct kvm_slot *s, uint64_t size)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .guest_phys_addr = s->gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)s->hva,
    };
    if (s->flags & HV_MEM_READONLY)
        r.flags |= KVM_MEM_READONLY;
    if (s->flags & HV_MEM_DIRTY_LOG)
        r.flags |= KVM_MEM_LOG_DIRTY_PAGES;
    return xioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int hv_vm_mem_add(struct hv_vm *vm, uint64_t gpa, uint64_t size, void *hva, uint32_t flags)
{
    const uint64_t page = 4096;
    if (!size || (gpa | size | (uintptr_t)hva) & (page - 1) || gpa + size < gpa)
        return -EINVAL;
    if ((flags & HV_MEM_READONLY) && !(vm->hv->caps.features & HV_FEAT_READONLY_MEM))
        return -ENOTSUP;
    for (unsigned i = 0; i < vm->nslots; i++) {
        if (vm->slots[i].used)
            continue;
        struct kvm_slot s = {true, gpa, size, hva, flags};
        int r = set_slot(vm, i, &s, size);
        if (r < 0)
            return r;
        vm->slots[i] = s;
        return (int)i;
    }
    return -ENOSPC;
}

int hv_vm_mem_remove(struct hv_vm *vm, int slot)
{
    if (slot < 0 || (unsigned)slot >= vm->nslots || !vm->slots[slot].used)
        return -EINVAL;
    /* Size 0 deletes the slot in KVM. */
    int r = set_slot(vm, (unsigned)slot, &vm->slots[slot], 0);
    if (r < 0)
        return r;
    vm->slots[slot].used = false;
    return 0;
}

int hv_vm_dirty_log(struct hv_vm *vm, int slot, uint64_t *bitmap)
{
    if (slot < 0 || (unsigned)slot >= vm->nslots || !vm->slots[slot].used ||
        !(vm->slots[slot].flags & HV_MEM_DIRTY_LOG))
        return -EINVAL;
    struct kvm_dirty_log log = {.slot = (uint32_t)slot, .dirty_bitmap = bitmap};
    return xioctl(vm->fd, KVM_GET_DIRTY_LOG, &log);
}

int hv_vm_irq_line(struct hv_vm *vm, uint32_t gsi, bool level)
{
    struct kvm_irq_level l = {.irq = gsi, .level = level};
    return xioctl(vm->fd, KVM_IRQ_LINE, &l);
}

int hv_vm_irqfd(struct hv_vm *vm, int fd, uint32_t gsi, bool assign)
{
    struct kvm_irqfd f = {.fd = (uint32_t)fd, .gsi = gsi};
    if (!assign)
        f.flags = KVM_IRQFD_FLAG_DEASSIGN;
    return xioctl(vm->fd, KVM_IRQFD, &f);
}

static void chip_set_level(struct irq_chip *chip, uint32_t gsi, bool level)
{
    struct hv_vm *vm = (struct hv_vm *)((char *)chip - offsetof(struct hv_vm, chip));
    (void)hv_vm_irq_line(vm, gsi, level);
}

int hv_irq_line_init(struct hv_vm *vm, struct irq_line *l, uint32_t gsi, bool use_irqfd)
{
    vm->chip.set_level = chip_set_level;
    *l = (struct irq_line){.chip = &vm->chip, .gsi = gsi, .fd = -1};
    if (!use_irqfd)
        return 0;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    int r = hv_vm_irqfd(vm, fd, gsi, true);
    if (r < 0) {
        close(fd);
        return r;
    }
    l->fd = fd;
    return 0;
}

void hv_irq_line_release(struct irq_line *l)
{
    if (l->fd < 0)
        return;
    struct hv_vm *vm = (struct hv_vm *)((char *)l->chip - offsetof(struct hv_vm, chip));
    (void)hv_vm_irqfd(vm, l->fd, l->gsi, false);
    close(l->fd);
    l->fd = -1;
}

int hv_vm_ioeventfd(struct hv_vm *vm, int fd, uint64_t addr, uint32_t len, uint64_t datamatch,
                    uint32_t flags)
{
    struct kvm_ioeventfd e = {
        .datamatch = datamatch, .addr = addr, .len = len, .fd = fd};
    if (flags & HV_IOEV_PIO)
        e.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (flags & HV_IOEV_DATAMATCH)
        e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    if (flags & HV_IOEV_DEASSIGN)
        e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    return xioctl(vm->fd, KVM_IOEVENTFD, &e);
}

int hv_vcpu_create(struct hv_vm *vm, unsigned id, struct hv_vcpu **out)
{
    struct hv_vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->vm = vm;
    v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
    int r;
    if (v->fd < 0) {
        r = -errno;
        goto fail_free;
    }
    (void)fcntl(v->fd, F_SETFD, FD_CLOEXEC);
    v->run = mmap(NULL, (size_t)vm->hv->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        r = -errno;
        close(v->fd);
        goto fail_free;
    }
    *out = v;
    return 0;
fail_free:
    free(v);
    return r;
}

void hv_vcpu_destroy(struct hv_vcpu *v)
{
    if (!v)
        return;
    munmap(v->run, (size_t)v->vm->hv->run_size);
    close(v->fd);
    free(v);
}

void hv_vcpu_request_exit(struct hv_vcpu *v)
{
    /* KVM checks immediate_exit on entry, so a request made just before
     * KVM_RUN is not lost; the caller's signal covers a vCPU already inside. */
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void hv_vcpu_clear_exit_request(struct hv_vcpu *v)
{
    __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

void hv_vcpu_notify_paused(struct hv_vcpu *v)
{
    /* KVM_KVMCLOCK_CTRL sets the PVCLOCK_GUEST_STOPPED flag the guest's
     * watchdogs honour; EINVAL when the guest does not use kvmclock. */
    (void)ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0);
}

/* KVM's internal-error sub-codes (Documentation/virt/kvm/api.rst) by name,
 * and the failing instruction's bytes that emulation failures carry. */
static void internal_error(const struct kvm_run *run, struct hv_exit *e)
{
    static const char *const names[] = {
        [KVM_INTERNAL_ERROR_EMULATION] = "emulation failure",
        [KVM_INTERNAL_ERROR_SIMUL_EX] = "exception while delivering an exception",
        [KVM_INTERNAL_ERROR_DELIVERY_EV] = "exit during event delivery",
        [KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON] = "unexpected exit reason",
    };
    uint32_t sub = run->internal.suberror;
    e->error.code = sub;
    e->error.what = sub < sizeof(names) / sizeof(names[0]) ? names[sub] : NULL;
    e->error.insn_len = 0;
    /* The bytes are there only when KVM says so; copy at most what the ABI
     * reserves for them, whatever size the kernel claims. */
    if (sub == KVM_INTERNAL_ERROR_EMULATION && run->emulation_failure.ndata >= 3 &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        uint8_t n = run->emulation_failure.insn_size;
        if (n > sizeof(e->error.insn))
            n = sizeof(e->error.insn);
        memcpy(e->error.insn, run->emulation_failure.insn_bytes, n);
        e->error.insn_len = n;
    }
}

int hv_vcpu_run(struct hv_vcpu *v, struct hv_exit *e)
{
    struct kvm_run *run = v->run;
    if (ioctl(v->fd, KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            e->reason = HV_EXIT_INTR;
            return 0;
        }
        return -errno;
    }
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        e->reason = HV_EXIT_IO;
        e->io.port = run->io.port;
        e->io.size = run->io.size;
        e->io.write = run->io.direction == KVM_EXIT_IO_OUT;
        e->io.count = run->io.count;
        /* KVM keeps the data inside the shared run area; double-check. */
        uint64_t end = run->io.data_offset + (uint64_t)run->io.size * run->io.count;
        if (end > (uint64_t)v->vm->hv->run_size)
            return -EIO;
        e->io.data = (uint8_t *)run + run->io.data_offset;
        break;
    }
    case KVM_EXIT_MMIO:
        e->reason = HV_EXIT_MMIO;
        e->mmio.addr = run->mmio.phys_addr;
        e->mmio.len = (uint8_t)(run->mmio.len > 8 ? 8 : run->mmio.len);
        e->mmio.write = run->mmio.is_write;
        e->mmio.data = run->mmio.data;
        break;
    case KVM_EXIT_HLT:
        e->reason = HV_EXIT_HALT;
        break;
    case KVM_EXIT_SHUTDOWN:
        e->reason = HV_EXIT_SHUTDOWN;
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        e->event.type = run->system_event.type;
        e->event.data = run->system_event.ndata ? run->system_event.data[0] : 0;
        if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
            e->reason = HV_EXIT_SYSTEM_OFF;
        else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            e->reason = HV_EXIT_SYSTEM_RESET;
        else
            e->reason = HV_EXIT_SYSTEM_EVENT;
        break;
    case KVM_EXIT_HYPERCALL:
        e->reason = HV_EXIT_HYPERCALL;
        e->hypercall.nr = run->hypercall.nr;
        memcpy(e->hypercall.args, run->hypercall.args, sizeof(e->hypercall.args));
        e->hypercall.ret = (uint64_t *)&run->hypercall.ret;
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        e->reason = HV_EXIT_INTERNAL_ERROR;
        internal_error(run, e);
        break;
    case KVM_EXIT_FAIL_ENTRY:
        e->reason = HV_EXIT_FAIL_ENTRY;
        e->error.code = (uint32_t)run->fail_entry.hardware_entry_failure_reason;
        e->error.what = NULL;
        e->error.insn_len = 0;
        break;
    case KVM_EXIT_INTR:
        e->reason = HV_EXIT_INTR;
        break;
    default:
        e->reason = HV_EXIT_UNKNOWN;
        e->raw = run->exit_reason;
        break;
    }
    return 0;
}

/* ---- x86 register state ---- */

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

/* ---- self-test: does this hypervisor execute guest code? ---- */

/* The test guest, entered in real mode at 0000:1000 (the state KVM gives a
 * new vCPU, which only hardware virtualization or a full emulator can run):
 * mov al, 0x5a; out 0x80, al; hlt. */
#define SELFTEST_ENTRY 0x1000u
#define SELFTEST_PORT 0x80
#define SELFTEST_VALUE 0x5a
#define SELFTEST_MEM 0x10000u

struct selftest_watch {
    pthread_t runner;
    struct hv_vcpu *vcpu;
    int sig;
    unsigned timeout_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done, fired;
};

/* Kick the runner out of KVM_RUN, repeatedly, once the deadline passes. */
static void *selftest_watchdog(void *arg)
{
    struct selftest_watch *w = arg;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += w->timeout_ms / 1000;
    dl.tv_nsec += (long)(w->timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cond, &w->lock, &dl) == ETIMEDOUT) {
            w->fired = true;
            hv_vcpu_request_exit(w->vcpu);
            pthread_kill(w->runner, w->sig);
            /* Again every 50 ms until the runner notices. */
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 50000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Run the test guest to its halt; 0 or -errno with @why set. */
static int selftest_run(struct hv_vcpu *v, struct selftest_watch *w, char *why, size_t whylen)
{
    bool wrote = false;
    /* Three exits are expected (the write, the halt); a few spare. */
    for (int i = 0; i < 8; i++) {
        struct hv_exit e;
        int r = hv_vcpu_run(v, &e);
        if (r < 0) {
            snprintf(why, whylen, "KVM_RUN failed: %s", strerror(-r));
            return r;
        }
        switch (e.reason) {
        case HV_EXIT_IO:
            if (e.io.port != SELFTEST_PORT || !e.io.write || e.io.size != 1 ||
                e.io.data[0] != SELFTEST_VALUE) {
                snprintf(why, whylen, "the test guest's port write arrived wrong (port 0x%x)",
                         e.io.port);
                return -EIO;
            }
            wrote = true;
            break;
        case HV_EXIT_HALT:
            if (wrote)
                return 0;
            snprintf(why, whylen, "the test guest halted without running its code");
            return -EIO;
        case HV_EXIT_INTR:
            if (w->fired) {
                snprintf(why, whylen, "the test guest did not finish within %u ms",
                         w->timeout_ms);
                return -ETIMEDOUT;
            }
            hv_vcpu_clear_exit_request(v);
            break;
        case HV_EXIT_INTERNAL_ERROR:
            snprintf(why, whylen, "KVM could not run the test guest: internal error (%s)",
                     e.error.what ? e.error.what : "unknown sub-error");
            return -EIO;
        default:
            snprintf(why, whylen, "the test guest stopped with exit reason %d", (int)e.reason);
            return -EIO;
        }
    }
    snprintf(why, whylen, "the test guest did not halt");
    return -EIO;
}

int hv_selftest(struct hv *hv, unsigned timeout_ms, uint64_t *us, char *why, size_t whylen)
{
    static const uint8_t code[] = {0xb0, SELFTEST_VALUE, 0xe6, SELFTEST_PORT, 0xf4};
    int sig = hv_kick_signal();
    if (sig < 0) {
        snprintf(why, whylen, "cannot install the vCPU kick signal: %s", strerror(-sig));
        return sig;
    }
    struct hv_vm *vm = NULL;
    struct hv_vcpu *v = NULL;
    /* No irqchip: the halt then exits to us. */
    struct hv_vm_config cfg = {.irqchip = false, .timer = false};
    int r = hv_vm_create(hv, &cfg, &vm);
    if (r < 0) {
        snprintf(why, whylen, "KVM_CREATE_VM failed: %s", strerror(-r));
        return r;
    }
    uint8_t *mem = mmap(NULL, SELFTEST_MEM, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        r = -errno;
        snprintf(why, whylen, "cannot map the test guest's memory: %s", strerror(-r));
        goto out_vm;
    }
    memcpy(mem + SELFTEST_ENTRY, code, sizeof(code));
    r = hv_vm_mem_add(vm, 0, SELFTEST_MEM, mem, 0);
    if (r < 0) {
        snprintf(why, whylen, "KVM_SET_USER_MEMORY_REGION failed: %s", strerror(-r));
        goto out_mem;
    }
    r = hv_vcpu_create(vm, 0, &v);
    if (r < 0) {
        snprintf(why, whylen, "KVM_CREATE_VCPU failed: %s", strerror(-r));
        goto out_mem;
    }
    struct kvm_sregs sr;
    struct kvm_regs regs = {.rip = SELFTEST_ENTRY, .rflags = 2};
    if ((r = xioctl(v->fd, KVM_GET_SREGS, &sr)) < 0) {
        snprintf(why, whylen, "KVM_GET_SREGS failed: %s", strerror(-r));
        goto out_vcpu;
    }
    sr.cs.base = 0;
    sr.cs.selector = 0;
    if ((r = xioctl(v->fd, KVM_SET_SREGS, &sr)) < 0 ||
        (r = xioctl(v->fd, KVM_SET_REGS, &regs)) < 0) {
        snprintf(why, whylen, "setting the test vCPU's registers failed: %s", strerror(-r));
        goto out_vcpu;
    }

    struct selftest_watch w = {.runner = pthread_self(), .vcpu = v, .sig = sig,
                               .timeout_ms = timeout_ms};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    pthread_t wd;
    sigset_t kick, old;
    sigemptyset(&kick);
    sigaddset(&kick, sig);
    pthread_sigmask(SIG_UNBLOCK, &kick, &old);
    uint64_t t0 = now_us();
    r = pthread_create(&wd, NULL, selftest_watchdog, &w);
    if (r) {
        r = -r;
        snprintf(why, whylen, "cannot start the self-test watchdog: %s", strerror(-r));
    } else {
        r = selftest_run(v, &w, why, whylen);
        *us = now_us() - t0;
        pthread_mutex_lock(&w.lock);
        w.done = true;
        pthread_cond_signal(&w.cond);
        pthread_mutex_unlock(&w.lock);
        pthread_join(wd, NULL);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
out_vcpu:
    hv_vcpu_destroy(v);
out_mem:
    hv_vm_destroy(vm);
    munmap(mem, SELFTEST_MEM);
    return r;
out_vm:
    hv_vm_destroy(vm);
    return r;
}
