/* vm.h - the VM object: one context that owns everything of one VM.
 *
 * Threads and what they own:
 *  - the controlling thread (library caller / CLI main) creates, starts,
 *    pauses, stops and destroys the VM; it holds vm->lock for state changes;
 *  - one thread per vCPU ("vcpuN") runs hv_vcpu_run() and device MMIO/PIO
 *    callbacks; devices lock their own state;
 *  - one event-loop thread ("arcvm-evloop") runs back-end callbacks;
 *  - one worker per shared directory ("arcvm-fs") serves its FUSE requests.
 * No globals: several VMs may live in one process.
 */
#ifndef ARCVM_VM_H
#define ARCVM_VM_H

#include "arch/arch.h"
#include "hv/hv.h"
#include "base/bus.h"
#include "vmm/config.h"
#include "base/console.h"
#include "vmm/devices.h"
#include "vmm/seccomp.h"
#include "base/evloop.h"
#include "base/guest_mem.h"
#include "vmm/state.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Why a VM stopped. */
enum vm_exit_kind {
    VM_EXIT_NONE,     /* still running */
    VM_EXIT_POWEROFF, /* the guest powered off */
    VM_EXIT_REBOOT,   /* the guest asked for a reset */
    VM_EXIT_CRASH,    /* triple fault, hypervisor emulation failure, ... */
    VM_EXIT_STOPPED,  /* stopped by the host (vm_stop(), escape key) */
    VM_EXIT_ERROR,    /* a host-side failure while running */
};

struct vm_exit_info {
    enum vm_exit_kind kind;
    char message[256];
};

#define VCPU_EXIT_KINDS (HV_EXIT_UNKNOWN + 1)

/* Where a vCPU thread is, for the vCPU report. */
enum vcpu_where {
    VCPU_NOT_STARTED, /* its thread has not run yet */
    VCPU_IN_GUEST,    /* inside hv_vcpu_run() */
    VCPU_IN_VMM,      /* handling an exit, or about to enter */
    VCPU_PARKED,      /* paused */
    VCPU_DONE,        /* its thread has ended */
};

struct vcpu {
    struct vm *vm;
    unsigned id;
    struct hv_vcpu *hv;
    pthread_t thread;
    bool thread_started;
    _Atomic bool ready;   /* its thread has started and set its signal mask */
    /* Exit counts by reason, and reads among the I/O and MMIO exits. Written
     * by the vCPU thread only; others read them with relaxed atomics. */
    uint64_t exits[VCPU_EXIT_KINDS];
    uint64_t io_reads, mmio_reads;
    /* For the vCPU report: written by the vCPU thread, read by anyone. */
    _Atomic int where;               /* enum vcpu_where */
    _Atomic uint64_t where_since_ms; /* CLOCK_MONOTONIC_COARSE, ms */
    _Atomic unsigned last_exit;      /* HV_EXIT_*, VCPU_EXIT_KINDS: none */
    _Atomic uint64_t kicks;          /* exit requests sent to it */
    /* A report request: the requester bumps report_req and kicks; the
     * vCPU thread fills report_pc* and then sets report_ack = report_req. */
    _Atomic unsigned report_req, report_ack;
    uint64_t report_pc;
    bool report_pc_ok;
};


struct vm {
    struct vm_config cfg;
    uint64_t start_wall_us, start_cpu_us; /* for the boot timer */

    struct hv *hv;
    struct hv_vm *hvm;
    struct guest_mem mem;
    int mem_slot[GUEST_MEM_MAX_REGIONS]; /* the hypervisor's slot of each region */
    /* The hotplug region's slots (cfg.memhp.slot_mib each), in order: the
     * hypervisor's handles; virtio-mem maps and unmaps them (devices.c). */
    int *memhp_slot;
    unsigned memhp_nslots;
    struct bus pio, mmio;
    struct evloop loop;
    pthread_t loop_thread;
    bool loop_started;
    struct console console;
    bool console_ready;
    struct arch_ctx arch_ctx;    /* what the architecture may use of us */
    struct arch_boot arch_boot;  /* how it boots the guest */
    struct arch_virtio_dev arch_virtio[VM_MAX_VIRTIO];
    struct arch_machine *arch;
    unsigned nvirtio;
    struct vm_virtio virtio[VM_MAX_VIRTIO];

    unsigned nvcpus;
    struct vcpu *vcpus;
    int kick_signal;      /* signal that interrupts a vCPU in the guest */
    /* Filters the vCPU, event-loop and virtio-fs worker threads install
     * first (empty with cfg.no_seccomp; the last only with shares). */
    struct seccomp_prog seccomp_vcpu, seccomp_evloop, seccomp_fs;

    _Atomic bool attention; /* vCPUs must look at state/pause before entering */
    pthread_mutex_t lock; /* state, exit, pause fields below */
    pthread_cond_t cond;  /* signalled on every state/park change */
    enum vm_state state;
    struct vm_exit_info exit;
    bool pause_requested;
    unsigned parked;      /* vCPUs parked for a pause */
    unsigned running;     /* vCPU threads not yet finished */
    int state_fd;         /* eventfd: written on every state change */
    bool threads_joined;
};

/* Create a VM from @cfg (copied; strings duplicated). Validates the config
 * and opens the hypervisor. On error writes a reason to @err and returns
 * -errno; nothing is left behind. */
int vm_create(struct vm **out, const struct vm_config *cfg, char *err, size_t errlen);
/* Build and boot: memory, devices, kernel, vCPU threads. created -> running.
 * On error the VM is failed and @err says why. */
int vm_start(struct vm *vm, char *err, size_t errlen);
/* Park every vCPU outside the guest (bounded wait). running -> paused. */
int vm_pause(struct vm *vm);
/* paused -> running. */
int vm_resume(struct vm *vm);
/* Ask the VM to stop (any thread, async-safe enough for signal-driven
 * callers: it only sets state and kicks). */
void vm_request_stop(struct vm *vm, enum vm_exit_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Wait until the VM has stopped; joins its threads. Returns the exit info. */
void vm_wait(struct vm *vm, struct vm_exit_info *info);
/* Current state. */
enum vm_state vm_get_state(struct vm *vm);
/* The configuration it runs (for a restored VM, the snapshot's); constant
 * for the VM's life. */
const struct vm_config *vm_get_config(const struct vm *vm);
/* Free everything. Stops the VM first if it still runs. */
void vm_destroy(struct vm *vm);

/* Counters for metrics, summed over vCPUs and devices. */
struct vm_device_metrics {
    const char *name;        /* "virtio-blk", ... */
    const char *id;          /* disk id, or NULL */
    struct virtio_stats stats;
};
struct vm_metrics {
    uint64_t exits[VCPU_EXIT_KINDS];
    uint64_t io_reads, mmio_reads;
    uint64_t console_dropped_rate, console_dropped_room; /* output bytes (console.h) */
    unsigned ndevices;
    struct vm_device_metrics devices[VM_MAX_VIRTIO];
};
void vm_get_metrics(struct vm *vm, struct vm_metrics *m);
/* Guest memory by guest-physical address: -EFAULT unless the whole range
 * is guest RAM. Any thread, concurrent with the guest (like DMA). */
int vm_read_guest(struct vm *vm, uint64_t gpa, void *buf, size_t len);
int vm_write_guest(struct vm *vm, uint64_t gpa, const void *buf, size_t len);
/* Deliver Ctrl-Alt-Del to a running guest. */
int vm_send_ctrl_alt_del(struct vm *vm);

/* What each vCPU is doing, without stopping the VM: every vCPU is kicked
 * out of the guest once and reports its program counter from its own
 * thread; one that does not answer within @timeout_ms is stuck inside the
 * hypervisor (a host problem, not the guest's). Fills up to @max entries;
 * returns the vCPU count, or -EINVAL before the VM is started. */
struct vcpu_report {
    unsigned id;
    enum vcpu_where where;
    uint64_t where_ms;     /* how long it has been there */
    bool answered;         /* answered the request within the timeout */
    bool pc_valid;
    uint64_t pc;           /* x86: RIP at the moment it answered */
    const char *last_exit; /* "io", "mmio", "intr", ..., "none" */
    uint64_t exits;        /* all exits so far */
    uint64_t kicks, intr_exits; /* exit requests sent / interrupted runs seen */
};
int vm_vcpu_report(struct vm *vm, struct vcpu_report *out, unsigned max, unsigned timeout_ms);
/* "not started", "in guest", "in vmm", "parked", "done". */
const char *vcpu_where_name(enum vcpu_where w);
/* The name of exit kind @kind (HV_EXIT_*; VCPU_EXIT_KINDS: "none"). */
const char *vcpu_exit_name(unsigned kind);

/* ---- snapshots (snapshot.c) ---- */
/* Save a paused VM: its state to @state_path and its RAM to @mem_path (a
 * sparse file). Both are written under temporary names and renamed at the
 * end, so a failure leaves nothing behind and the VM paused as it was. */
struct vm_snapshot_params {
    const char *state_path, *mem_path;
    bool diff; /* only the pages written since the last snapshot (needs
                * cfg.track_dirty); else every page */
};
int vm_snapshot_create(struct vm *vm, const struct vm_snapshot_params *p, char *err,
                       size_t errlen);
/* Bring a snapshot back as a new VM: the configuration comes from the
 * snapshot, with @runtime's process-side settings (console fds, hypervisor
 * device, pinning) and the overrides below. The VM comes up paused, or
 * running with @resume. Anything wrong with the files (corrupt, truncated,
 * another format version, another kind of host) is refused with one
 * sentence in @err and nothing is left behind. */
struct vm_net_override {
    const char *iface_id, *host_dev_name;
};
struct vm_restore_params {
    const char *state_path, *mem_path;
    bool mem_uffd;       /* @mem_path is the Unix socket of a page-fault handler
                          * (Firecracker's Uffd backend), not the memory file */
    bool clock_realtime; /* advance the guest clock by the time since the save */
    bool resume;
    bool track_dirty;    /* record written pages from now on (Diff snapshots) */
    unsigned nnet_overrides;
    const struct vm_net_override *net_overrides;
    const char *vsock_uds_path; /* NULL: the snapshot's */
};
int vm_restore(struct vm **out, const struct vm_config *runtime, const struct vm_restore_params *p,
               char *err, size_t errlen);
/* Apply Diff snapshots (@diff_states[i], @diff_mems[i], oldest first) onto
 * the memory file @base_mem of the snapshot they follow, in place, and
 * write the newest one's state as a Full snapshot's to @state_out: then
 * (@state_out, @base_mem) restore. Each diff is checked (format, checksum,
 * kind, size) before anything is written. */
int vm_snapshot_merge(const char *base_mem, unsigned n, const char *const *diff_states,
                      const char *const *diff_mems, const char *state_out, char *err,
                      size_t errlen);
/* What a snapshot file says about itself, for `arcvm snapshot-info` and
 * Firecracker's --describe-snapshot: its format version. */
int vm_snapshot_version(const char *state_path, unsigned *version, char *err, size_t errlen);

/* ---- the pieces vm_start() and vm_restore() share (vm.c) ---- */
/* Like vm_create() without validating @cfg (a restore validates the
 * configuration the snapshot brings). */
int vm_create_for_restore(struct vm **out, const struct vm_config *cfg, char *err, size_t errlen);
/* Hypervisor VM, guest RAM (fresh, or the snapshot memory file @mem_fd,
 * taken over), buses, event loop, console, platform and virtio devices. */
/* With @uffd_sock, guest RAM is served by the page-fault handler listening
 * there instead (Firecracker's Uffd backend; @mem_fd is then -1). */
int vm_build_platform(struct vm *vm, int mem_fd, const char *uffd_sock, char *err,
                      size_t errlen);
/* The vCPUs; @boot: in their boot state (a restore loads theirs). */
int vm_create_vcpus(struct vm *vm, bool boot, char *err, size_t errlen);
int vm_start_loop(struct vm *vm, char *err, size_t errlen);
int vm_start_vcpus(struct vm *vm, char *err, size_t errlen);
/* Change state and tell waiters; vm->lock held. */
void vm_set_state(struct vm *vm, enum vm_state s);

/* For vcpu.c: run loop of one vCPU thread. */
void *vcpu_thread(void *arg);
/* Interrupt every vCPU so it notices a state change. */
void vm_kick_vcpus(struct vm *vm);

#endif
