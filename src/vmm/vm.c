/* vm.c - VM creation, start, pause/resume, stop and teardown; see vm.h. */
#include "vmm/vm.h"

#include "arch/arch.h"
#include "vmm/hostcheck.h"
#include "base/log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* How long vm_pause() waits for every vCPU to park. A vCPU leaves the guest
 * within one signal delivery; this only bounds a pathological host. */
#define PAUSE_TIMEOUT_MS 5000

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}


/* Set the state and tell waiters; vm->lock held. */
void vm_set_state(struct vm *vm, enum vm_state s)
{
    if (vm->state == s)
        return;
    if (!vm_state_allowed(vm->state, s)) {
        log_err("internal: illegal transition %s -> %s", vm_state_name(vm->state),
                vm_state_name(s));
        return;
    }
    vm->state = s;
    pthread_cond_broadcast(&vm->cond);
    uint64_t one = 1;
    (void)!write(vm->state_fd, &one, sizeof(one));
}

/* The KVM capabilities a CPU template asks for (Firecracker checks them
 * before it builds the VM): each present, or -ENOTSUP naming the first
 * that is not. */
static int check_template_caps(struct vm *vm, char *err, size_t errlen)
{
    const struct cpu_template *t = vm->cfg.cpu_template;
    for (unsigned i = 0; t && i < t->ncaps; i++) {
        if (hv_backend_cap(vm->hv, t->caps[i]) <= 0) {
            snprintf(err, errlen,
                     "this host's KVM lacks capability %u, which the CPU template requires",
                     t->caps[i]);
            return -ENOTSUP;
        }
    }
    return 0;
}

/* The VM object for @cfg with the hypervisor open; @validate: check the
 * configuration first (a restore checks the one its snapshot brings). */
static int vm_alloc(struct vm **out, const struct vm_config *cfg, bool validate, char *err,
                    size_t errlen)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    bool oom = config_copy(&vm->cfg, cfg) < 0;
    vm->state_fd = -1;
    vm->mem.fd = -1;
    pthread_mutex_init(&vm->lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
    int r = -ENOMEM;
    if (oom) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    vm->start_wall_us = cfg->t0_wall_us ? cfg->t0_wall_us : clock_us(CLOCK_MONOTONIC);
    vm->start_cpu_us = cfg->t0_cpu_us ? cfg->t0_cpu_us : clock_us(CLOCK_PROCESS_CPUTIME_ID);

    /* Input first, so a bad file or size is reported as such even on a host
     * without KVM; then the limits only the hypervisor knows. */
    r = validate ? config_validate(&vm->cfg, 0, config_host_memory(), err, errlen) : 0;
    if (r < 0)
        goto fail;
    if (!vm->cfg.no_seccomp) {
        r = seccomp_prog_build(&vm->seccomp_vcpu, SECCOMP_VCPU, vm->cfg.seccomp_file, err, errlen);
        if (r == 0)
            r = seccomp_prog_build(&vm->seccomp_evloop, SECCOMP_EVLOOP, vm->cfg.seccomp_file, err,
                                   errlen);
        if (r == 0 && vm->cfg.nshares)
            r = seccomp_prog_build(&vm->seccomp_fs, SECCOMP_FS, vm->cfg.seccomp_file, err, errlen);
        if (r < 0)
            goto fail;
    }
    const char *dev = vm->cfg.hv_device ? vm->cfg.hv_device : "/dev/kvm";
    r = hostcheck_open(dev, &vm->hv, err, errlen);
    if (r < 0)
        goto fail;
    /* A KVM that cannot run a stock guest (a paravirtual one, say) is
     * refused here, in milliseconds, not by a guest dying a minute later. */
    r = hostcheck_for_start(vm->hv, dev, !vm->cfg.skip_kvm_check, err, errlen);
    if (r < 0)
        goto fail;
    r = check_template_caps(vm, err, errlen);
    if (r < 0)
        goto fail;
    r = validate ? config_validate(&vm->cfg, hv_caps(vm->hv)->max_vcpus, config_host_memory(),
                                   err, errlen)
                 : 0;
    if (r < 0)
        goto fail;
    vm->state_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->state_fd < 0) {
        r = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    r = hv_kick_signal();
    if (r < 0) {
        snprintf(err, errlen, "sigaction: %s", strerror(-r));
        goto fail;
    }
    vm->kick_signal = r;
    vm->nvcpus = vm->cfg.vcpus;
    vm->state = VM_CREATED;
    *out = vm;
    return 0;
fail:
    vm_destroy(vm);
    return r;
}

int vm_create(struct vm **out, const struct vm_config *cfg, char *err, size_t errlen)
{
    return vm_alloc(out, cfg, true, err, errlen);
}

int vm_create_for_restore(struct vm **out, const struct vm_config *cfg, char *err, size_t errlen)
{
    return vm_alloc(out, cfg, false, err, errlen);
}

const struct vm_config *vm_get_config(const struct vm *vm)
{
    return &vm->cfg;
}

enum vm_state vm_get_state(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    enum vm_state s = vm->state;
    pthread_mutex_unlock(&vm->lock);
    return s;
}

static void *loop_thread(void *arg)
{
    struct vm *vm = arg;
    pthread_setname_np(pthread_self(), "arcvm-evloop");
    char err[256];
    if (seccomp_prog_apply(&vm->seccomp_evloop, SECCOMP_EVLOOP, err, sizeof(err)) < 0) {
        vm_request_stop(vm, VM_EXIT_ERROR, "event loop: %s", err);
        return NULL;
    }
    evloop_run(&vm->loop);
    return NULL;
}

/* The machine's power-off and reset requests (ACPI PM, i8042). */
static void machine_request(void *opaque, enum hw_request req)
{
    if (req == HW_REQ_POWEROFF)
        vm_request_stop(opaque, VM_EXIT_POWEROFF, "guest powered off");
    else
        vm_request_stop(opaque, VM_EXIT_REBOOT, "guest rebooted");
}

static void console_quit(void *opaque)
{
    vm_request_stop(opaque, VM_EXIT_STOPPED, "stopped from the console (Ctrl-A x)");
}

int vm_build_platform(struct vm *vm, int mem_fd, const char *uffd_sock, char *err,
                      size_t errlen)
{
    struct hv_vm_config hc;
    arch_vm_config(vm->nvcpus, &hc);
    int r = hv_vm_create(vm->hv, &hc, &vm->hvm);
    if (r < 0) {
        snprintf(err, errlen, "creating the VM failed: %s", strerror(-r));
        if (mem_fd >= 0)
            close(mem_fd);
        return r;
    }
    struct guest_mem_region layout[GUEST_MEM_MAX_REGIONS];
    r = arch_mem_layout(vm->cfg.mem_bytes, layout, GUEST_MEM_MAX_REGIONS);
    if (r < 0) {
        snprintf(err, errlen, "no memory layout for %llu MiB",
                 (unsigned long long)(vm->cfg.mem_bytes >> 20));
        if (mem_fd >= 0)
            close(mem_fd);
        return r;
    }
    if (vm->cfg.memhp.enabled && r < GUEST_MEM_MAX_REGIONS) {
        /* The hotplug region: a window of the same memfd, past the RAM in
         * it, never touched until the guest plugs a block. */
        layout[r] = (struct guest_mem_region){arch_memhp_base(vm->cfg.mem_bytes),
                                              (uint64_t)vm->cfg.memhp.total_mib << 20, NULL};
        r++;
    }
    uint64_t ram_total = 0;
    for (int i = 0; i < r; i++)
        ram_total += layout[i].size;
    if (uffd_sock) {
        /* Its sentence is already in @err. */
        if ((r = guest_mem_init_uffd(&vm->mem, layout, (unsigned)r, uffd_sock, err, errlen)) < 0)
            return r;
    } else {
        r = mem_fd < 0 ? guest_mem_init_pages(&vm->mem, layout, (unsigned)r, vm->cfg.mem_pages)
                       : guest_mem_init_file(&vm->mem, layout, (unsigned)r, mem_fd);
    }
    if (r < 0 && mem_fd < 0 && vm->cfg.mem_pages == GUEST_MEM_HUGE_2M) {
        snprintf(err, errlen, "huge_pages 2M: the guest's memory needs %llu free 2 MiB huge "
                 "pages and this host's pool has %ld (%s): raise /proc/sys/vm/nr_hugepages",
                 (unsigned long long)(ram_total / GUEST_MEM_HUGE_SIZE), guest_mem_free_huge_pages(),
                 strerror(-r));
        return r;
    }
    if (r == -ENODATA) {
        snprintf(err, errlen, "the memory file is smaller than the snapshot's %llu MiB of RAM",
                 (unsigned long long)(vm->cfg.mem_bytes >> 20));
        return r;
    }
    if (r < 0) {
        snprintf(err, errlen, "allocating %llu MiB of guest memory failed: %s",
                 (unsigned long long)(vm->cfg.mem_bytes >> 20), strerror(-r));
        return r;
    }
    if (mem_fd < 0 && vm->cfg.mem_pages == GUEST_MEM_TRANSPARENT && !hostcheck_shmem_thp())
        log_warn("huge_pages Transparent: this host gives no transparent huge pages to shared "
                 "memory (/sys/kernel/mm/transparent_hugepage/shmem_enabled): the guest gets "
                 "4 KiB pages; write 'advise' there to change that");
    if (vm->cfg.track_dirty && !(hv_caps(vm->hv)->features & HV_FEAT_DIRTY_LOG)) {
        snprintf(err, errlen, "this hypervisor cannot track dirty pages (needed for Diff "
                 "snapshots)");
        return -ENOTSUP;
    }
    if (vm->cfg.track_dirty && (r = guest_mem_track_dirty(&vm->mem, true)) < 0) {
        snprintf(err, errlen, "out of memory for the dirty page bitmap");
        return r;
    }
    if (vm->cfg.memhp.enabled) {
        vm->memhp_nslots = vm->cfg.memhp.total_mib / vm->cfg.memhp.slot_mib;
        vm->memhp_slot = calloc(vm->memhp_nslots, sizeof(int));
        if (!vm->memhp_slot) {
            snprintf(err, errlen, "out of memory for the hotplug slots");
            return -ENOMEM;
        }
    }
    for (unsigned i = 0; i < vm->mem.count; i++) {
        /* RAM in one slot per region; the hotplug region (the last) in
         * slots of the configured slot size, as Firecracker maps it, each
         * reserved now and left out of the guest's map until virtio-mem
         * plugs a block in it. */
        bool hp = vm->cfg.memhp.enabled && i == vm->mem.count - 1;
        uint64_t step = hp ? (uint64_t)vm->cfg.memhp.slot_mib << 20 : vm->mem.r[i].size;
        for (uint64_t off = 0; off < vm->mem.r[i].size; off += step) {
            r = hv_vm_mem_add(vm->hvm, vm->mem.r[i].gpa + off, step, vm->mem.r[i].hva + off,
                              vm->cfg.track_dirty ? HV_MEM_DIRTY_LOG : 0);
            if (r == -ENOSPC && hp) {
                snprintf(err, errlen,
                         "the hypervisor has too few memory slots for %u MiB of hotplug memory "
                         "in %u MiB slots: give a larger slot size",
                         vm->cfg.memhp.total_mib, vm->cfg.memhp.slot_mib);
                return r;
            }
            if (r < 0) {
                snprintf(err, errlen, "mapping guest memory failed: %s", strerror(-r));
                return r;
            }
            if (!off)
                vm->mem_slot[i] = r;
            if (hp) {
                vm->memhp_slot[off / step] = r;
                if ((r = hv_vm_mem_enable(vm->hvm, r, false)) < 0) {
                    snprintf(err, errlen, "unmapping a hotplug slot failed: %s", strerror(-r));
                    return r;
                }
            }
        }
    }
    bus_init(&vm->pio, "pio");
    bus_init(&vm->mmio, "mmio");
    r = evloop_init(&vm->loop);
    if (r < 0) {
        snprintf(err, errlen, "event loop: %s", strerror(-r));
        return r;
    }
    vm->loop_started = false;
    int in = vm->cfg.console == CONSOLE_NONE ? -1 : vm->cfg.console_in;
    int outfd = vm->cfg.console == CONSOLE_NONE ? -1 : vm->cfg.console_out;
    r = console_init(&vm->console, in, outfd, vm->cfg.console_escape, &vm->loop);
    if (r < 0) {
        evloop_release(&vm->loop);
        snprintf(err, errlen, "console: %s", strerror(-r));
        return r;
    }
    console_limit_output(&vm->console, &vm->cfg.console_rl, vm->cfg.console_drop_when_full);
    vm->console.on_quit = console_quit;
    vm->console.quit_opaque = vm;
    vm->console_ready = true;

    vm->arch_ctx = (struct arch_ctx){
        .hv = vm->hv, .hvm = vm->hvm, .mem = &vm->mem, .pio = &vm->pio, .mmio = &vm->mmio,
        .loop = &vm->loop, .console = &vm->console, .stop = {machine_request, vm},
        .ncpus = vm->nvcpus, .start_wall_us = vm->start_wall_us,
        .start_cpu_us = vm->start_cpu_us};
    const struct vm_config *c = &vm->cfg;
    vm->arch_boot = (struct arch_boot){
        .kernel = c->kernel_path, .initrd = c->initrd_path, .cmdline = c->cmdline,
        .cmdline_replace = c->cmdline_replace, .kernel_cache = c->kernel_cache,
        .mem_bytes = c->mem_bytes, .boot_timer = c->boot_timer, .mmio_cmdline = c->mmio_cmdline,
        .console = c->console == CONSOLE_SERIAL   ? ARCH_CONSOLE_SERIAL
                   : c->console == CONSOLE_VIRTIO ? ARCH_CONSOLE_VIRTIO
                                                  : ARCH_CONSOLE_NONE,
        .virtio = vm->arch_virtio, .cpu_template = c->cpu_template};
    r = arch_vm_init(&vm->arch_ctx, &vm->arch_boot, &vm->arch);
    if (r < 0) {
        snprintf(err, errlen, "creating devices failed: %s", strerror(-r));
        return r;
    }
    return vm_devices_create(vm, err, errlen);
}

int vm_create_vcpus(struct vm *vm, bool boot, char *err, size_t errlen)
{
    int r;
    vm->vcpus = calloc(vm->nvcpus, sizeof(*vm->vcpus));
    if (!vm->vcpus) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        v->vm = vm;
        v->id = i;
        atomic_store(&v->last_exit, VCPU_EXIT_KINDS);
        r = hv_vcpu_create(vm->hvm, i, &v->hv);
        if (r < 0) {
            snprintf(err, errlen, "creating vCPU %u failed: %s", i, strerror(-r));
            return r;
        }
        char why[256] = "";
        r = boot ? arch_vcpu_init(vm->arch, v->hv, i, why, sizeof(why)) : 0;
        if (r < 0) {
            snprintf(err, errlen, "setting up vCPU %u failed: %s", i,
                     why[0] ? why : strerror(-r));
            return r;
        }
    }
    r = hv_vm_finalize(vm->hvm);
    if (r < 0) {
        snprintf(err, errlen, "setting up the interrupt controller failed: %s", strerror(-r));
        return r;
    }
    return 0;
}

int vm_start_loop(struct vm *vm, char *err, size_t errlen)
{
    int r = pthread_create(&vm->loop_thread, NULL, loop_thread, vm);
    if (r) {
        snprintf(err, errlen, "starting the event loop thread failed: %s", strerror(r));
        return -r;
    }
    vm->loop_started = true;
    return 0;
}

/* Everything up to running vCPU threads. On failure the caller marks the VM
 * failed; vm_destroy() releases whatever was built. */
static int vm_build(struct vm *vm, char *err, size_t errlen)
{
    /* A root pmem device names itself on the command line (a restored VM
     * keeps the command line it was saved with, so only here). */
    int r = config_pmem_root_cmdline(&vm->cfg);
    if (r < 0) {
        snprintf(err, errlen, "out of memory for the kernel command line");
        return r;
    }
    /* Where the time goes, for --log-level debug (the boot benchmarks). */
    uint64_t t0 = clock_us(CLOCK_MONOTONIC), t1, t2;
    r = vm_build_platform(vm, -1, NULL, err, errlen);
    if (r < 0)
        return r;
    /* The firmware tables and command line announce the virtio devices. */
    for (unsigned i = 0; i < vm->nvirtio; i++)
        vm->arch_virtio[i] = (struct arch_virtio_dev){vm->virtio[i].base, vm->virtio[i].gsi};
    vm->arch_boot.nvirtio = vm->nvirtio;
    t1 = clock_us(CLOCK_MONOTONIC);
    r = arch_load(vm->arch, err, errlen);
    if (r < 0)
        return r;
    t2 = clock_us(CLOCK_MONOTONIC);
    r = vm_create_vcpus(vm, true, err, errlen);
    log_debug("build: VM, memory and devices %llu us, kernel and initrd loaded %llu us, "
              "vCPUs %llu us", (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
              (unsigned long long)(clock_us(CLOCK_MONOTONIC) - t2));
    return r < 0 ? r : vm_start_loop(vm, err, errlen);
}

/* Start vCPU threads with the kick signal blocked; each unblocks it itself,
 * so that no other thread of the process ever receives it. */
int vm_start_vcpus(struct vm *vm, char *err, size_t errlen)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, vm->kick_signal);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int r = 0;
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        pthread_mutex_lock(&vm->lock);
        vm->running++;
        pthread_mutex_unlock(&vm->lock);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        /* Pinned from its first instruction when the user asked for it. */
        if (i < vm->cfg.naffinity && CPU_COUNT(&vm->cfg.affinity[i]))
            pthread_attr_setaffinity_np(&attr, sizeof(cpu_set_t), &vm->cfg.affinity[i]);
        r = pthread_create(&vm->vcpus[i].thread, &attr, vcpu_thread, &vm->vcpus[i]);
        pthread_attr_destroy(&attr);
        if (r) {
            pthread_mutex_lock(&vm->lock);
            vm->running--;
            pthread_mutex_unlock(&vm->lock);
            snprintf(err, errlen, "starting vCPU thread %u failed: %s", i, strerror(r));
            r = -r;
            break;
        }
        vm->vcpus[i].thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state != VM_CREATED) {
        snprintf(err, errlen, "cannot start a VM that is %s", vm_state_name(vm->state));
        pthread_mutex_unlock(&vm->lock);
        return -EINVAL;
    }
    vm_set_state(vm, VM_INITIALIZING);
    pthread_mutex_unlock(&vm->lock);

    uint64_t t0 = clock_us(CLOCK_MONOTONIC);
    int r = vm_build(vm, err, errlen);
    if (r == 0) {
        log_info("VM built in %llu us (%llu us after the VMM started)",
                 (unsigned long long)(clock_us(CLOCK_MONOTONIC) - t0),
                 (unsigned long long)(clock_us(CLOCK_MONOTONIC) - vm->start_wall_us));
        /* Running before the threads start, so that a guest that powers off
         * at once finds a state it may leave. */
        pthread_mutex_lock(&vm->lock);
        vm_set_state(vm, VM_RUNNING);
        pthread_mutex_unlock(&vm->lock);
        r = vm_start_vcpus(vm, err, errlen);
        if (r < 0)
            vm_request_stop(vm, VM_EXIT_ERROR, "%s", err);
        return r;
    }
    pthread_mutex_lock(&vm->lock);
    vm->exit.kind = VM_EXIT_ERROR;
    snprintf(vm->exit.message, sizeof(vm->exit.message), "%s", err);
    vm_set_state(vm, VM_FAILED);
    pthread_mutex_unlock(&vm->lock);
    return r;
}

void vm_kick_vcpus(struct vm *vm)
{
    if (!vm->vcpus)
        return;
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        if (!v->hv)
            continue;
        hv_vcpu_request_exit(v->hv);
        atomic_fetch_add_explicit(&v->kicks, 1, memory_order_relaxed);
        if (v->thread_started)
            pthread_kill(v->thread, vm->kick_signal);
    }
}

void vm_request_stop(struct vm *vm, enum vm_exit_kind kind, const char *fmt, ...)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state == VM_RUNNING || vm->state == VM_PAUSED) {
        vm->exit.kind = kind;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->exit.message, sizeof(vm->exit.message), fmt, ap);
        va_end(ap);
        vm_set_state(vm, VM_STOPPING);
        atomic_store(&vm->attention, true);
        /* A vCPU waiting for a stalled console reader must get out. */
        if (vm->console_ready)
            console_close(&vm->console);
    }
    pthread_mutex_unlock(&vm->lock);
    vm_kick_vcpus(vm);
}

int vm_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state != VM_RUNNING) {
        int r = vm->state == VM_PAUSED ? -EALREADY : -EINVAL;
        pthread_mutex_unlock(&vm->lock);
        return r;
    }
    vm->pause_requested = true;
    atomic_store(&vm->attention, true);
    pthread_mutex_unlock(&vm->lock);
    vm_kick_vcpus(vm);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += PAUSE_TIMEOUT_MS / 1000;
    int r = 0;
    pthread_mutex_lock(&vm->lock);
    while (vm->parked < vm->running && vm->state == VM_RUNNING && r == 0)
        r = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
    if (vm->state == VM_RUNNING && vm->parked >= vm->running) {
        vm_set_state(vm, VM_PAUSED);
        r = 0;
    } else {
        /* Timed out or stopped meanwhile: leave the VM as it was. */
        vm->pause_requested = false;
        pthread_cond_broadcast(&vm->cond);
        r = vm->state == VM_RUNNING ? -ETIMEDOUT : -EINVAL;
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

int vm_resume(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state != VM_PAUSED) {
        int r = vm->state == VM_RUNNING ? -EALREADY : -EINVAL;
        pthread_mutex_unlock(&vm->lock);
        return r;
    }
    vm->pause_requested = false;
    atomic_store(&vm->attention, false);
    vm_set_state(vm, VM_RUNNING);
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

static void join_threads(struct vm *vm)
{
    if (vm->threads_joined)
        return;
    vm->threads_joined = true;
    for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++) {
        if (vm->vcpus[i].thread_started)
            pthread_join(vm->vcpus[i].thread, NULL);
        vm->vcpus[i].thread_started = false;
    }
    if (vm->loop_started) {
        evloop_stop(&vm->loop);
        pthread_join(vm->loop_thread, NULL);
        vm->loop_started = false;
    }
}

void vm_wait(struct vm *vm, struct vm_exit_info *info)
{
    pthread_mutex_lock(&vm->lock);
    while (vm->state == VM_RUNNING || vm->state == VM_PAUSED || vm->state == VM_INITIALIZING)
        pthread_cond_wait(&vm->cond, &vm->lock);
    pthread_mutex_unlock(&vm->lock);

    join_threads(vm);

    pthread_mutex_lock(&vm->lock);
    if (vm->state == VM_STOPPING)
        vm_set_state(vm, vm->exit.kind == VM_EXIT_CRASH || vm->exit.kind == VM_EXIT_ERROR
                          ? VM_FAILED
                          : VM_STOPPED);
    if (info)
        *info = vm->exit;
    pthread_mutex_unlock(&vm->lock);
}

void vm_destroy(struct vm *vm)
{
    if (!vm)
        return;
    enum vm_state s = vm_get_state(vm);
    if (s == VM_RUNNING || s == VM_PAUSED)
        vm_request_stop(vm, VM_EXIT_STOPPED, "VM destroyed");
    if (s != VM_CREATED)
        vm_wait(vm, NULL);
    join_threads(vm);
    for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++)
        hv_vcpu_destroy(vm->vcpus[i].hv);
    free(vm->vcpus);
    vm_devices_release(vm);
    arch_vm_release(vm->arch);
    if (vm->console_ready) {
        console_release(&vm->console);
        evloop_release(&vm->loop);
        bus_release(&vm->pio);
        bus_release(&vm->mmio);
    }
    hv_vm_destroy(vm->hvm);
    guest_mem_release(&vm->mem);
    free(vm->memhp_slot);
    hv_close(vm->hv);
    if (vm->state_fd >= 0)
        close(vm->state_fd);
    config_release(&vm->cfg);
    seccomp_prog_release(&vm->seccomp_vcpu);
    seccomp_prog_release(&vm->seccomp_evloop);
    seccomp_prog_release(&vm->seccomp_fs);
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm);
}

void vm_get_metrics(struct vm *vm, struct vm_metrics *m)
{
    memset(m, 0, sizeof(*m));
    for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++) {
        const struct vcpu *v = &vm->vcpus[i];
        for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
            m->exits[k] += __atomic_load_n(&v->exits[k], __ATOMIC_RELAXED);
        m->io_reads += __atomic_load_n(&v->io_reads, __ATOMIC_RELAXED);
        m->mmio_reads += __atomic_load_n(&v->mmio_reads, __ATOMIC_RELAXED);
    }
    if (vm->console_ready)
        console_dropped(&vm->console, &m->console_dropped_rate, &m->console_dropped_room);
    for (unsigned i = 0; i < vm->nvirtio && i < VM_MAX_VIRTIO; i++) {
        struct virtio_device *d = vm->virtio[i].dev;
        if (!d)
            continue;
        struct vm_device_metrics *dm = &m->devices[m->ndevices++];
        dm->name = d->ops->name;
        dm->id = d->id;
        pthread_mutex_lock(&d->lock);
        dm->stats = d->stats;
        pthread_mutex_unlock(&d->lock);
    }
}

int vm_send_ctrl_alt_del(struct vm *vm)
{
    enum vm_state s = vm_get_state(vm);
    if (s != VM_RUNNING && s != VM_PAUSED)
        return -EINVAL;
    return arch_send_ctrl_alt_del(vm->arch);
}

int vm_read_guest(struct vm *vm, uint64_t gpa, void *buf, size_t len)
{
    return guest_mem_read(&vm->mem, gpa, buf, len) < 0 ? -EFAULT : 0;
}

int vm_write_guest(struct vm *vm, uint64_t gpa, const void *buf, size_t len)
{
    return guest_mem_write(&vm->mem, gpa, buf, len) < 0 ? -EFAULT : 0;
}
