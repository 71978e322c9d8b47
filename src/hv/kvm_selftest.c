/* kvm_selftest.c - hv_selftest(): does this hypervisor really execute
 * guest code? A tiny guest in a VM of its own (the architecture's part of
 * the backend supplies it: kvm_selftest_guest), under a watchdog. */
#include "hv/kvm_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>


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
    /* Two exits are expected (the write, the end); a few spare. */
    for (int i = 0; i < 8; i++) {
        struct hv_exit e;
        int r = hv_vcpu_run(v, &e);
        if (r < 0) {
            snprintf(why, whylen, "KVM_RUN failed: %s", strerror(-r));
            return r;
        }
        if (e.reason == kvm_selftest_guest.end) {
            if (wrote)
                return 0;
            snprintf(why, whylen, "the test guest stopped without running its code");
            return -EIO;
        }
        if (kvm_arch_selftest_wrote(&e)) {
            wrote = true;
            continue;
        }
        switch (e.reason) {
        case HV_EXIT_IO:
        case HV_EXIT_MMIO:
            snprintf(why, whylen, "the test guest's write arrived wrong");
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
    const struct kvm_selftest_guest *g = &kvm_selftest_guest;
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
    memcpy(mem + (g->entry - g->mem_gpa), g->code, g->len);
    r = hv_vm_mem_add(vm, g->mem_gpa, SELFTEST_MEM, mem, 0);
    if (r < 0) {
        snprintf(why, whylen, "KVM_SET_USER_MEMORY_REGION failed: %s", strerror(-r));
        goto out_mem;
    }
    r = hv_vcpu_create(vm, 0, &v);
    if (r < 0) {
        snprintf(why, whylen, "KVM_CREATE_VCPU failed: %s", strerror(-r));
        goto out_mem;
    }
    if ((r = kvm_arch_selftest_vcpu(v)) < 0) {
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

const char *hv_selftest_what(void)
{
    return kvm_selftest_guest.what;
}
