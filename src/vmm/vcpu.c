/* vcpu.c - the vCPU threads: run the guest, route exits, park and stop.
 *
 * Each vCPU thread loops on hv_vcpu_run(). Port and MMIO exits go to the
 * buses; platform events end the VM through vm_request_stop(). Before each
 * entry the thread looks at vm->attention (one atomic load); only when it is
 * set does it take vm->lock to park for a pause or leave for a stop. Kickers
 * set attention first, then request an exit and signal the thread, so a
 * request is never lost between the check and KVM_RUN.
 */
#include "vmm/vm.h"

#include "arch/arch.h"
#include "vmm/log.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char *const exit_names[VCPU_EXIT_KINDS] = {
    [HV_EXIT_IO] = "io", [HV_EXIT_MMIO] = "mmio", [HV_EXIT_HALT] = "halt",
    [HV_EXIT_SHUTDOWN] = "shutdown", [HV_EXIT_SYSTEM_RESET] = "system_reset",
    [HV_EXIT_SYSTEM_OFF] = "system_off", [HV_EXIT_SYSTEM_EVENT] = "system_event",
    [HV_EXIT_HYPERCALL] = "hypercall", [HV_EXIT_INTERNAL_ERROR] = "internal_error",
    [HV_EXIT_FAIL_ENTRY] = "fail_entry", [HV_EXIT_INTR] = "intr", [HV_EXIT_UNKNOWN] = "unknown",
};

/* Park while a pause is requested; returns false when the thread must end. */
static bool vcpu_check_state(struct vcpu *v)
{
    struct vm *vm = v->vm;
    bool keep = true;
    pthread_mutex_lock(&vm->lock);
    bool told = false;
    while (vm->pause_requested && vm->state != VM_STOPPING && vm->state != VM_FAILED) {
        if (!told) {
            hv_vcpu_notify_paused(v->hv);
            told = true;
        }
        vm->parked++;
        pthread_cond_broadcast(&vm->cond);
        pthread_cond_wait(&vm->cond, &vm->lock);
        vm->parked--;
    }
    if (vm->state == VM_STOPPING || vm->state == VM_FAILED || vm->state == VM_STOPPED)
        keep = false;
    pthread_mutex_unlock(&vm->lock);
    return keep;
}

/* Where the vCPU was, as "at RIP 0x..." (with CS:RIP outside long mode), or
 * why that is unknown. */
static const char *vcpu_where(struct vcpu *v, char *buf, size_t len)
{
#ifdef __x86_64__
    struct hv_x86_regs r;
    struct hv_x86_sregs s;
    if (hv_x86_vcpu_get_regs(v->hv, &r) < 0 || hv_x86_vcpu_get_sregs(v->hv, &s) < 0) {
        snprintf(buf, len, "(RIP unknown: registers unreadable)");
    } else if (r.rip == 0xfff0 && s.cs.selector == 0xf000 && s.cs.base == 0xffff0000) {
        /* The reset vector: on AMD, KVM reinitialises the vCPU on a
         * shutdown intercept, so the faulting RIP is gone. */
        snprintf(buf, len, "(RIP unknown: the hypervisor reset the vCPU)");
    } else {
        snprintf(buf, len, "at RIP 0x%" PRIx64, r.rip);
    }
#else
    (void)v;
    snprintf(buf, len, "(RIP unknown)");
#endif
    return buf;
}

/* Single-writer counter: a plain load and store, atomic so that readers
 * on other threads see whole values. */
static void count(uint64_t *c)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void handle_io(struct vcpu *v, const struct hv_exit *e)
{
    if (!e->io.write)
        count(&v->io_reads);
    /* count * size is bounded by the backend's run area (checked there). */
    for (uint32_t i = 0; i < e->io.count; i++) {
        uint8_t *d = e->io.data + (size_t)i * e->io.size;
        if (!bus_access(&v->vm->pio, e->io.port, d, e->io.size, e->io.write))
            log_debug("vcpu%u: unclaimed port %s 0x%x", v->id, e->io.write ? "write" : "read",
                      e->io.port);
    }
}

static void handle_mmio(struct vcpu *v, const struct hv_exit *e)
{
    if (!e->mmio.write)
        count(&v->mmio_reads);
    if (!bus_access(&v->vm->mmio, e->mmio.addr, e->mmio.data, e->mmio.len, e->mmio.write))
        log_guest("vcpu%u: %s of %u bytes at unclaimed address 0x%" PRIx64, v->id,
                  e->mmio.write ? "write" : "read", e->mmio.len, e->mmio.addr);
}

/* Handle one exit; returns false when the thread must end. */
static bool vcpu_handle_exit(struct vcpu *v, const struct hv_exit *e)
{
    struct vm *vm = v->vm;
    char where[64];
    switch (e->reason) {
    case HV_EXIT_IO:
        handle_io(v, e);
        return true;
    case HV_EXIT_MMIO:
        handle_mmio(v, e);
        return true;
    case HV_EXIT_INTR:
        hv_vcpu_clear_exit_request(v->hv);
        return true;
    case HV_EXIT_HALT:
        /* Only without an in-kernel irqchip; we always have one. */
        return true;
    case HV_EXIT_HYPERCALL:
        *e->hypercall.ret = (uint64_t)-1000; /* KVM_ENOSYS: no VMM hypercalls */
        return true;
    case HV_EXIT_SYSTEM_OFF:
        vm_request_stop(vm, VM_EXIT_POWEROFF, "guest powered off");
        return false;
    case HV_EXIT_SYSTEM_RESET:
        vm_request_stop(vm, VM_EXIT_REBOOT, "guest rebooted");
        return false;
    case HV_EXIT_SHUTDOWN:
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: triple fault %s", v->id,
                        vcpu_where(v, where, sizeof(where)));
        return false;
    case HV_EXIT_INTERNAL_ERROR:
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: KVM internal error (suberror %u) %s", v->id,
                        e->error.code, vcpu_where(v, where, sizeof(where)));
        return false;
    case HV_EXIT_FAIL_ENTRY:
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: hardware refused VM entry (reason 0x%x) %s",
                        v->id, e->error.code, vcpu_where(v, where, sizeof(where)));
        return false;
    case HV_EXIT_SYSTEM_EVENT:
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: platform event %u %s", v->id, e->event.type,
                        vcpu_where(v, where, sizeof(where)));
        return false;
    case HV_EXIT_UNKNOWN:
    default:
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: unexpected exit %u %s", v->id, e->raw,
                        vcpu_where(v, where, sizeof(where)));
        return false;
    }
}

void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    struct vm *vm = v->vm;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", v->id);
    pthread_setname_np(pthread_self(), name);
    /* Only vCPU threads take the kick signal. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, vm->kick_signal);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    atomic_store(&v->ready, true);

    for (;;) {
        if (atomic_load(&vm->attention) && !vcpu_check_state(v))
            break;
        struct hv_exit e;
        int r = hv_vcpu_run(v->hv, &e);
        if (r < 0) {
            vm_request_stop(vm, VM_EXIT_ERROR, "vcpu%u: running the guest failed: %s", v->id,
                            strerror(-r));
            break;
        }
        count(&v->exits[e.reason < VCPU_EXIT_KINDS ? e.reason : HV_EXIT_UNKNOWN]);
        if (!vcpu_handle_exit(v, &e))
            break;
    }

    if (log_get_level() >= LOG_DEBUG) {
        char buf[512];
        size_t n = 0;
        for (unsigned i = 0; i < VCPU_EXIT_KINDS && n < sizeof(buf); i++)
            if (v->exits[i])
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%" PRIu64, exit_names[i],
                                      v->exits[i]);
        buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = 0;
        log_debug("vcpu%u exits:%s", v->id, buf);
    }
    pthread_mutex_lock(&vm->lock);
    vm->running--;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    return NULL;
}
