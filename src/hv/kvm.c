/* kvm.c - the KVM backend of the hypervisor abstraction, the part every
 * architecture shares (kvm_x86.c and kvm_arm64.c hold the rest).
 *
 * Only src/hv/kvm*.c issue KVM ioctls. They translate hv.h calls and
 * structures to KVM's and back, and nothing more: policy lives in the VMM.
 */
#include "hv/kvm_internal.h"

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

int kvm_check_ext(int fd, long ext)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, ext);
    return r < 0 ? 0 : r;
}

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
    c->recommended_vcpus = kvm_check_ext(hv->fd, KVM_CAP_NR_VCPUS);
    c->max_vcpus = kvm_check_ext(hv->fd, KVM_CAP_MAX_VCPUS);
    if (!c->max_vcpus)
        c->max_vcpus = c->recommended_vcpus ? c->recommended_vcpus : 4;
    if (!c->recommended_vcpus)
        c->recommended_vcpus = c->max_vcpus;
    c->max_mem_slots = kvm_check_ext(hv->fd, KVM_CAP_NR_MEMSLOTS);
    if (!c->max_mem_slots)
        c->max_mem_slots = 32;
    /* Dirty logging is part of every KVM's memory-slot interface. */
    c->features = HV_FEAT_DIRTY_LOG;
    /* Without immediate_exit a vCPU kick can be lost (Linux < 4.11). */
    if (kvm_check_ext(hv->fd, KVM_CAP_IMMEDIATE_EXIT))
        c->features |= HV_FEAT_IMMEDIATE_EXIT;
    if (kvm_check_ext(hv->fd, KVM_CAP_USER_MEMORY))
        c->features |= HV_FEAT_USER_MEMORY;
    c->features |= kvm_arch_features(hv->fd);
    if (kvm_check_ext(hv->fd, KVM_CAP_IRQCHIP))
        c->features |= HV_FEAT_IRQCHIP;
    if (kvm_check_ext(hv->fd, KVM_CAP_IRQFD))
        c->features |= HV_FEAT_IRQFD;
    if (kvm_check_ext(hv->fd, KVM_CAP_IOEVENTFD))
        c->features |= HV_FEAT_IOEVENTFD;
    if (kvm_check_ext(hv->fd, KVM_CAP_READONLY_MEM))
        c->features |= HV_FEAT_READONLY_MEM;
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

int hv_backend_cap(struct hv *hv, unsigned cap)
{
    return kvm_check_ext(hv->fd, (long)cap);
}

int hv_vm_create(struct hv *hv, const struct hv_vm_config *cfg, struct hv_vm **out)
{
    struct hv_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->hv = hv;
    vm->chip_fd = -1;
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
    static const struct hv_vm_config none;
    r = kvm_arch_vm_init(vm, cfg ? cfg : &none);
    if (r < 0)
        goto fail;
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
    kvm_arch_vm_release(vm);
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

int hv_vm_mem_enable(struct hv_vm *vm, int slot, bool on)
{
    if (slot < 0 || (unsigned)slot >= vm->nslots || !vm->slots[slot].used)
        return -EINVAL;
    /* A size of 0 deletes the slot in KVM; the table keeps it for later. */
    const struct kvm_slot *s = &vm->slots[slot];
    return set_slot(vm, (unsigned)slot, s, on ? s->size : 0);
}

int hv_vm_mem_dirty_take(struct hv_vm *vm, int slot, uint64_t *bits)
{
    if (slot < 0 || (unsigned)slot >= vm->nslots || !vm->slots[slot].used ||
        !(vm->slots[slot].flags & HV_MEM_DIRTY_LOG))
        return -EINVAL;
    size_t words = (vm->slots[slot].size / 4096 + 63) / 64;
    uint64_t *log = calloc(words, sizeof(uint64_t));
    if (!log)
        return -ENOMEM;
    struct kvm_dirty_log d = {.slot = (uint32_t)slot, .dirty_bitmap = log};
    int r = xioctl(vm->fd, KVM_GET_DIRTY_LOG, &d);
    for (size_t i = 0; r >= 0 && i < words; i++)
        bits[i] |= log[i];
    free(log);
    return r < 0 ? r : 0;
}

int hv_vm_irq_line(struct hv_vm *vm, uint32_t gsi, bool level)
{
    struct kvm_irq_level l = {.irq = kvm_arch_irq_line(gsi), .level = level};
    return xioctl(vm->fd, KVM_IRQ_LINE, &l);
}

/* Before the irqchip is ready: remember (or forget) the irqfd. */
static int irqfd_defer(struct hv_vm *vm, int fd, uint32_t gsi, bool assign)
{
    for (unsigned i = 0; i < vm->npending; i++) {
        if (vm->pending[i].fd == fd && vm->pending[i].gsi == gsi) {
            if (assign)
                return -EEXIST;
            vm->pending[i] = vm->pending[--vm->npending];
            return 0;
        }
    }
    if (!assign)
        return -ENOENT;
    if (vm->npending >= KVM_PENDING_IRQFDS)
        return -ENOSPC;
    vm->pending[vm->npending].fd = fd;
    vm->pending[vm->npending].gsi = gsi;
    vm->npending++;
    return 0;
}

int kvm_irqfds_attach(struct hv_vm *vm)
{
    vm->chip_ready = true;
    for (unsigned i = 0; i < vm->npending; i++) {
        int r = hv_vm_irqfd(vm, vm->pending[i].fd, vm->pending[i].gsi, true);
        if (r < 0)
            return r;
    }
    vm->npending = 0;
    return 0;
}

int hv_vm_irqfd(struct hv_vm *vm, int fd, uint32_t gsi, bool assign)
{
    if (!vm->chip_ready)
        return irqfd_defer(vm, fd, gsi, assign);
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
    v->id = id;
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
    r = kvm_arch_vcpu_init(v);
    if (r < 0) {
        hv_vcpu_destroy(v);
        return r;
    }
    *out = v;
    return 0;
fail_free:
    free(v);
    return r;
}

int hv_vm_finalize(struct hv_vm *vm)
{
    return kvm_arch_vm_finalize(vm);
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

int hv_vcpu_complete_pending(struct hv_vcpu *v, struct hv_exit *e)
{
    /* KVM finishes an I/O or MMIO access the guest started (the data we
     * supplied for a read lands in its register) only on the next KVM_RUN;
     * with immediate_exit set that run returns EINTR before any guest
     * instruction (KVM API, "immediate_exit"). Without it a snapshot would
     * lose the access. A string I/O instruction may need another round
     * with userspace first: that exit is returned to the caller. */
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    int r = hv_vcpu_run(v, e);
    __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    if (r < 0)
        return r;
    return e->reason == HV_EXIT_INTR ? 0 : 1;
}
