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
#include "base/log.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const exit_names[VCPU_EXIT_KINDS] = {
    [HV_EXIT_IO] = "io", [HV_EXIT_MMIO] = "mmio", [HV_EXIT_HALT] = "halt",
    [HV_EXIT_SHUTDOWN] = "shutdown", [HV_EXIT_SYSTEM_RESET] = "system_reset",
    [HV_EXIT_SYSTEM_OFF] = "system_off", [HV_EXIT_SYSTEM_EVENT] = "system_event",
    [HV_EXIT_HYPERCALL] = "hypercall", [HV_EXIT_INTERNAL_ERROR] = "internal_error",
    [HV_EXIT_FAIL_ENTRY] = "fail_entry", [HV_EXIT_INTR] = "intr", [HV_EXIT_UNKNOWN] = "unknown",
};

/* A crash report users can file: the registers, one log line each (the
 * exit message that follows names the reason). */
static void log_registers(struct vcpu *v)
{
    char buf[1024];
    arch_vcpu_dump(v->hv, buf, sizeof(buf));
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = 0;
        log_err("vcpu%u: %s", v->id, line);
    }
}

/* "emulation failure (suberror 1), instruction bytes 66 0f fe 00" */
static const char *internal_error_text(const struct hv_exit *e, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s (suberror %u)", e->error.what ? e->error.what : "unknown",
                     e->error.code);
    if (e->error.insn_len && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ", instruction bytes");
    for (unsigned i = 0; i < e->error.insn_len && n > 0 && (size_t)n < len; i++)
        n += snprintf(buf + n, len - (size_t)n, " %02x", e->error.insn[i]);
    return buf;
}

/* Answer a report request (vm_vcpu_report()) on this vCPU's own thread:
 * the vCPU is outside the guest, so its registers can be read. */
static void vcpu_answer_report(struct vcpu *v)
{
    unsigned req = atomic_load(&v->report_req);
    if (req == atomic_load_explicit(&v->report_ack, memory_order_relaxed))
        return;
    uint64_t pc = 0;
    v->report_pc_ok = arch_vcpu_pc(v->hv, &pc) == 0;
    v->report_pc = pc;
    /* Release: the requester reads report_pc after seeing the ack. */
    atomic_store_explicit(&v->report_ack, req, memory_order_release);
}

static void vcpu_set_where(struct vcpu *v, enum vcpu_where w)
{
    struct timespec ts;
    /* The coarse clock is a vDSO read of a few ns: cheap enough for every
     * exit, precise enough (a few ms) for "how long has it been there". */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    atomic_store_explicit(&v->where_since_ms,
                          (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u,
                          memory_order_relaxed);
    atomic_store_explicit(&v->where, w, memory_order_relaxed);
}

static bool vcpu_handle_exit(struct vcpu *v, const struct hv_exit *e);

/* A paused VM may be snapshotted: no guest access may be left half done.
 * Bounded: a string I/O needs one round per run-area page at most. */
static void vcpu_complete_pending(struct vcpu *v)
{
    for (unsigned round = 0; round < 64; round++) {
        struct hv_exit e;
        int r = hv_vcpu_complete_pending(v->hv, &e);
        if (r < 0)
            log_warn("vcpu%u: completing its last access failed: %s", v->id, strerror(-r));
        if (r <= 0 || !vcpu_handle_exit(v, &e))
            return;
    }
}

/* Park while a pause is requested; returns false when the thread must end. */
static bool vcpu_check_state(struct vcpu *v)
{
    struct vm *vm = v->vm;
    bool keep = true;
    /* Outside the lock: finishing an access may run device code that
     * stops the VM. Attention is rare (pause, stop), the cost one ioctl. */
    vcpu_complete_pending(v);
    pthread_mutex_lock(&vm->lock);
    bool told = false;
    while (vm->pause_requested && vm->state != VM_STOPPING && vm->state != VM_FAILED) {
        if (!told) {
            hv_vcpu_notify_paused(v->hv);
            vcpu_set_where(v, VCPU_PARKED);
            told = true;
        }
        vm->parked++;
        pthread_cond_broadcast(&vm->cond);
        pthread_cond_wait(&vm->cond, &vm->lock);
        vm->parked--;
        /* A report request broadcasts on vm->cond too. */
        vcpu_answer_report(v);
    }
    if (told)
        vcpu_set_where(v, VCPU_IN_VMM);
    if (vm->state == VM_STOPPING || vm->state == VM_FAILED || vm->state == VM_STOPPED)
        keep = false;
    pthread_mutex_unlock(&vm->lock);
    return keep;
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
                        arch_vcpu_where(v->hv, where, sizeof(where)));
        return false;
    case HV_EXIT_INTERNAL_ERROR: {
        char what[128];
        log_registers(v);
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: KVM internal error: %s %s", v->id,
                        internal_error_text(e, what, sizeof(what)),
                        arch_vcpu_where(v->hv, where, sizeof(where)));
        return false;
    }
    case HV_EXIT_FAIL_ENTRY:
        log_registers(v);
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: hardware refused VM entry (reason 0x%x) %s",
                        v->id, e->error.code, arch_vcpu_where(v->hv, where, sizeof(where)));
        return false;
    case HV_EXIT_SYSTEM_EVENT:
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: platform event %u %s", v->id, e->event.type,
                        arch_vcpu_where(v->hv, where, sizeof(where)));
        return false;
    case HV_EXIT_UNKNOWN:
    default:
        vm_request_stop(vm, VM_EXIT_CRASH, "vcpu%u: unexpected exit %u %s", v->id, e->raw,
                        arch_vcpu_where(v->hv, where, sizeof(where)));
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
    char err[256];
    if (seccomp_prog_apply(&vm->seccomp_vcpu, SECCOMP_VCPU, err, sizeof(err)) < 0) {
        vm_request_stop(vm, VM_EXIT_ERROR, "vcpu%u: %s", v->id, err);
        atomic_store(&v->ready, true);
        goto done;
    }
    atomic_store(&v->ready, true);

    for (;;) {
        if (atomic_load(&vm->attention) && !vcpu_check_state(v))
            break;
        vcpu_answer_report(v);
        struct hv_exit e;
        vcpu_set_where(v, VCPU_IN_GUEST);
        int r = hv_vcpu_run(v->hv, &e);
        vcpu_set_where(v, VCPU_IN_VMM);
        if (r < 0) {
            vm_request_stop(vm, VM_EXIT_ERROR, "vcpu%u: running the guest failed: %s", v->id,
                            strerror(-r));
            break;
        }
        unsigned kind = e.reason < VCPU_EXIT_KINDS ? e.reason : HV_EXIT_UNKNOWN;
        count(&v->exits[kind]);
        atomic_store_explicit(&v->last_exit, kind, memory_order_relaxed);
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
done:
    vcpu_set_where(v, VCPU_DONE);
    pthread_mutex_lock(&vm->lock);
    vm->running--;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    return NULL;
}

const char *vcpu_exit_name(unsigned kind)
{
    return kind < VCPU_EXIT_KINDS && exit_names[kind] ? exit_names[kind] : "none";
}

/* ---- the vCPU report (vm.h) ---- */

const char *vcpu_where_name(enum vcpu_where w)
{
    static const char *const names[] = {
        [VCPU_NOT_STARTED] = "not started", [VCPU_IN_GUEST] = "in guest",
        [VCPU_IN_VMM] = "in vmm", [VCPU_PARKED] = "parked", [VCPU_DONE] = "done"};
    return (unsigned)w < sizeof(names) / sizeof(names[0]) ? names[w] : "?";
}

static uint64_t coarse_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* What a vCPU publishes about itself, as it was before the report's kick
 * (after it, every vCPU would be "in the VMM for 0 ms" after an "intr"). */
static void vcpu_snapshot(struct vcpu *v, unsigned id, uint64_t now_ms, struct vcpu_report *o)
{
    memset(o, 0, sizeof(*o));
    o->id = id;
    o->where = (enum vcpu_where)atomic_load(&v->where);
    uint64_t since = atomic_load(&v->where_since_ms);
    o->where_ms = since && now_ms > since ? now_ms - since : 0;
    o->last_exit = vcpu_exit_name(atomic_load(&v->last_exit));
    for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
        o->exits += __atomic_load_n(&v->exits[k], __ATOMIC_RELAXED);
    o->intr_exits = __atomic_load_n(&v->exits[HV_EXIT_INTR], __ATOMIC_RELAXED);
    o->kicks = atomic_load_explicit(&v->kicks, memory_order_relaxed);
}

/* Whether vCPU @v has answered request number @want. */
static bool vcpu_answered(struct vcpu *v, unsigned want)
{
    return (int)(atomic_load_explicit(&v->report_ack, memory_order_acquire) - want) >= 0;
}

int vm_vcpu_report(struct vm *vm, struct vcpu_report *out, unsigned max, unsigned timeout_ms)
{
    unsigned n = vm->nvcpus < max ? vm->nvcpus : max;
    unsigned *want = calloc(n ? n : 1, sizeof(*want));
    if (!want)
        return -ENOMEM;
    pthread_mutex_lock(&vm->lock);
    bool live = vm->vcpus && (vm->state == VM_RUNNING || vm->state == VM_PAUSED ||
                              vm->state == VM_STOPPING);
    if (live) {
        uint64_t now_ms = coarse_ms();
        for (unsigned i = 0; i < n; i++) {
            vcpu_snapshot(&vm->vcpus[i], i, now_ms, &out[i]);
            want[i] = atomic_fetch_add(&vm->vcpus[i].report_req, 1) + 1;
        }
        /* Parked vCPUs wait on vm->cond and answer when woken. */
        pthread_cond_broadcast(&vm->cond);
        /* Kick every live thread, not only those seen in the guest: one
         * seen in the VMM may be entering right now, past its look at the
         * request; a spare kick costs one interrupted entry. Under vm->lock,
         * a thread not yet DONE cannot have ended: it takes the lock last. */
        for (unsigned i = 0; i < n; i++) {
            struct vcpu *v = &vm->vcpus[i];
            int w = atomic_load(&v->where);
            if (w != VCPU_DONE && w != VCPU_NOT_STARTED && v->thread_started) {
                hv_vcpu_request_exit(v->hv);
                atomic_fetch_add_explicit(&v->kicks, 1, memory_order_relaxed);
                pthread_kill(v->thread, vm->kick_signal);
            }
        }
    }
    pthread_mutex_unlock(&vm->lock);
    if (!live) {
        free(want);
        return -EINVAL;
    }
    /* Poll for the answers: a diagnostic, so 1 ms steps are fine. */
    uint64_t deadline = coarse_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        for (unsigned i = 0; i < n; i++) {
            int w = atomic_load(&vm->vcpus[i].where);
            if (w != VCPU_DONE && w != VCPU_NOT_STARTED && !vcpu_answered(&vm->vcpus[i], want[i]))
                all = false;
        }
        if (all || coarse_ms() >= deadline)
            break;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    for (unsigned i = 0; i < n; i++) {
        struct vcpu *v = &vm->vcpus[i];
        out[i].answered = vcpu_answered(v, want[i]);
        if (out[i].answered) {
            out[i].pc_valid = v->report_pc_ok;
            out[i].pc = v->report_pc;
        }
    }
    free(want);
    return (int)n;
}
