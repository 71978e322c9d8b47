/* hv.h - hypervisor abstraction: capabilities, VMs, memory, interrupts, vCPUs.
 *
 * The VMM core talks to the hypervisor only through this header. A backend
 * (today: KVM on x86-64 and on arm64, hv/kvm*.c) implements it; a
 * Hypervisor.framework backend would implement the same calls. Nothing here knows
 * about devices or about how a guest is booted.
 *
 * All functions return 0 or a negative errno unless documented otherwise.
 * Thread rules: a vCPU object is used by the one thread that runs it, except
 * hv_vcpu_request_exit(), which any thread may call.
 */
#ifndef ARCVM_HV_H
#define ARCVM_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hv;
struct hv_vm;
struct hv_vcpu;

/* Optional features a backend may offer (hv_caps.features bits). */
enum {
    HV_FEAT_IRQCHIP = 1u << 0,       /* in-kernel interrupt controller */
    HV_FEAT_IRQFD = 1u << 1,         /* eventfd -> guest interrupt */
    HV_FEAT_IOEVENTFD = 1u << 2,     /* guest write -> eventfd, no exit */
    HV_FEAT_READONLY_MEM = 1u << 3,  /* read-only memory regions */
    HV_FEAT_DIRTY_LOG = 1u << 4,     /* dirty-page tracking */
    HV_FEAT_TSC_DEADLINE = 1u << 5,  /* LAPIC TSC-deadline timer (x86) */
    HV_FEAT_IMMEDIATE_EXIT = 1u << 6, /* race-free vCPU kick */
    HV_FEAT_USER_MEMORY = 1u << 7,    /* guest RAM from host virtual memory */
    HV_FEAT_TIMER = 1u << 8,          /* in-kernel timer (x86: PIT; arm64: arch timer) */
};

/* The HV_FEAT_* bits as this architecture has them, indexed by bit number:
 * a short name ("irqchip", "irqfd", ...) and what it gives, for people.
 * name NULL: the architecture has no such thing (arm64: tsc-deadline). */
#define HV_FEAT_COUNT 9
struct hv_feat_desc {
    const char *name, *why;
};
extern const struct hv_feat_desc hv_feat_desc[HV_FEAT_COUNT];

struct hv_caps {
    int api_version;
    unsigned max_vcpus;        /* hard limit per VM */
    unsigned recommended_vcpus;
    unsigned max_mem_slots;
    uint32_t features;         /* HV_FEAT_* */
};

/* Open the hypervisor. @dev is the device path (NULL: the backend default,
 * /dev/kvm). -ENOENT: no hypervisor; -EACCES: no permission; -EPROTO: the
 * device does not speak the API this backend knows. Optional features are
 * reported in hv_caps(), never refused here. */
int hv_open(struct hv **out, const char *dev);
void hv_close(struct hv *hv);
const struct hv_caps *hv_caps(const struct hv *hv);
/* A capability of the backend by its own number (KVM: KVM_CHECK_EXTENSION
 * with a KVM_CAP_* value, as Firecracker's CPU templates name them): its
 * value, 0 when absent. */
int hv_backend_cap(struct hv *hv, unsigned cap);

/* What is behind the hypervisor device, as far as the host can tell without
 * running a guest. Read from @root/proc/cpuinfo and @root/sys/module (@root
 * NULL or "": the real /proc and /sys; tests pass a fake tree). */
enum hv_host_kind {
    HV_HOST_HARDWARE,  /* a backend on the CPU's VT-x / AMD-V (maybe nested) */
    HV_HOST_PARAVIRT,  /* a paravirtual or emulating backend (e.g. KVM PVM):
                        * it cannot run stock guest kernels */
    HV_HOST_UNKNOWN,   /* no backend module and no CPU support seen */
};
struct hv_host_info {
    enum hv_host_kind kind;
    char driver[24];     /* backend module: "kvm_intel", "kvm_amd", "kvm_pvm", "" */
    char cpu_virt[8];    /* CPU flag seen in cpuinfo: "vmx", "svm" or "" */
    char cpu_desc[40];   /* the same for people: "AMD-V (svm)", ... */
    bool in_vm;          /* the CPU says this host is itself a virtual machine */
};
void hv_host_info(const char *root, struct hv_host_info *out);
/* What a user does to get this backend a hypervisor that runs stock
 * guests: one sentence without a full stop, for error messages. */
const char *hv_setup_hint(void);

/* Run a minimal guest (a few instructions in the CPU's reset mode, then an
 * I/O write and a halt) in a VM of its own, bounded by @timeout_ms, to show
 * that the hypervisor really executes guest code. Returns 0 when the guest
 * did what it should (@us: time taken), else -errno with one sentence in
 * @why. The calling thread's signal mask must not block hv_kick_signal(). */
int hv_selftest(struct hv *hv, unsigned timeout_ms, uint64_t *us, char *why, size_t whylen);
/* What that guest does, for people: "ran real-mode code, wrote a port and
 * halted" (x86). */
const char *hv_selftest_what(void);

/* The signal that interrupts a thread inside hv_vcpu_run() (SIGRTMIN). Its
 * handler, which does nothing and is installed without SA_RESTART, is set up
 * on the first call. Returns the signal number or -errno. */
int hv_kick_signal(void);
/* Platform pieces emulated in the hypervisor, chosen at VM creation. */
struct hv_vm_config {
    bool irqchip; /* interrupt controllers (x86: PIC, IOAPIC, LAPICs;
                   * arm64: a GICv3) */
    bool timer;   /* legacy timer (x86: PIT; arm64 has its architected timer anyway) */
    /* Where the machine puts the interrupt controller's register windows,
     * when the machine chooses (arm64: GIC distributor, then the
     * redistributors of all vCPUs); ignored where they are fixed (x86). */
    uint64_t irqchip_regs[2];
    /* Device interrupt lines the machine uses (arm64: SPIs); 0: the
     * backend's default. */
    unsigned irqchip_lines;
};

int hv_vm_create(struct hv *hv, const struct hv_vm_config *cfg, struct hv_vm **out);
void hv_vm_destroy(struct hv_vm *vm);
/* Once every vCPU of @vm exists and before any runs (also on a restore):
 * finish what needs them all (arm64: initialise the GIC). */
int hv_vm_finalize(struct hv_vm *vm);

/* Memory regions. */
enum {
    HV_MEM_READONLY = 1u << 0,  /* guest writes exit as MMIO writes */
    HV_MEM_DIRTY_LOG = 1u << 1, /* track written pages */
};

/* Map [gpa, gpa+size) of the guest to host memory @hva. @size and @gpa must be
 * page aligned. Returns a slot handle (>= 0) or -errno. */
int hv_vm_mem_add(struct hv_vm *vm, uint64_t gpa, uint64_t size, void *hva, uint32_t flags);

/* Take slot @slot (from hv_vm_mem_add) out of the guest's physical map
 * (!@on: its addresses then exit as MMIO) or put it back (@on), same
 * address and memory. Any thread, one at a time per slot. 0 or -errno. */
int hv_vm_mem_enable(struct hv_vm *vm, int slot, bool on);

/* The pages of slot @slot (added with HV_MEM_DIRTY_LOG) the guest wrote
 * since the last call or since the slot was added, ORed into @bits (one bit
 * per page of the slot); the log starts over. */
int hv_vm_mem_dirty_take(struct hv_vm *vm, int slot, uint64_t *bits);

/* Interrupts. @gsi is the global system interrupt (x86: IOAPIC pin; arm64:
 * SPI number, that is the GIC interrupt ID minus 32). */
int hv_vm_irq_line(struct hv_vm *vm, uint32_t gsi, bool level);
/* Each write to @fd injects an edge on @gsi (assign) / stops doing so. */
int hv_vm_irqfd(struct hv_vm *vm, int fd, uint32_t gsi, bool assign);
/* Bind the device-facing line @l (base/irq.h) to @gsi of @vm: through an
 * irqfd when @use_irqfd, else through hv_vm_irq_line(). Release undoes it
 * (safe on a line that was never bound or already released). */
struct irq_line;
int hv_irq_line_init(struct hv_vm *vm, struct irq_line *l, uint32_t gsi, bool use_irqfd);
void hv_irq_line_release(struct irq_line *l);

/* Guest writes that hit [addr, addr+len) signal @fd instead of exiting. */
enum {
    HV_IOEV_PIO = 1u << 0,       /* port I/O space instead of MMIO */
    HV_IOEV_DATAMATCH = 1u << 1, /* only when the written value == datamatch */
    HV_IOEV_DEASSIGN = 1u << 2,
};
int hv_vm_ioeventfd(struct hv_vm *vm, int fd, uint64_t addr, uint32_t len, uint64_t datamatch,
                    uint32_t flags);

/* Normalised vCPU exit record. For I/O and MMIO, @data points into the
 * backend's per-vCPU run area: on a read the VMM fills it before the next
 * hv_vcpu_run(); it is valid only until then. */
enum hv_exit_reason {
    HV_EXIT_IO,
    HV_EXIT_MMIO,
    HV_EXIT_HALT,
    HV_EXIT_SHUTDOWN,        /* triple fault or equivalent */
    HV_EXIT_SYSTEM_RESET,    /* the hypervisor saw a reset request */
    HV_EXIT_SYSTEM_OFF,      /* the hypervisor saw a power-off request */
    HV_EXIT_SYSTEM_EVENT,    /* another platform event (crash, ...) */
    HV_EXIT_HYPERCALL,
    HV_EXIT_INTERNAL_ERROR,  /* the hypervisor failed to emulate */
    HV_EXIT_FAIL_ENTRY,      /* the hardware refused to enter the guest */
    HV_EXIT_INTR,            /* interrupted: an exit was requested */
    HV_EXIT_UNKNOWN,
};

struct hv_exit {
    enum hv_exit_reason reason;
    union {
        struct {
            uint16_t port;
            uint8_t size;   /* 1, 2 or 4 */
            bool write;
            uint32_t count; /* > 1 for string I/O: count * size bytes */
            uint8_t *data;
        } io;
        struct {
            uint64_t addr;
            uint8_t len;    /* 1..8 */
            bool write;
            uint8_t *data;
        } mmio;
        struct {
            uint64_t nr;
            uint64_t args[6];
            uint64_t *ret;
        } hypercall;
        struct {
            uint32_t type;
            uint64_t data;
        } event;
        struct {
            uint32_t code;    /* backend sub-error or hardware reason */
            const char *what; /* its name, e.g. "emulation failure", or NULL */
            uint8_t insn_len; /* bytes of the failing instruction, when known */
            uint8_t insn[15];
        } error;
        uint32_t raw;       /* HV_EXIT_UNKNOWN: backend reason number */
    };
};

int hv_vcpu_create(struct hv_vm *vm, unsigned id, struct hv_vcpu **out);
void hv_vcpu_destroy(struct hv_vcpu *vcpu);
/* Enter the guest until the next exit. Returns 0 with @exit filled, or -errno
 * for a host failure. A pending hv_vcpu_request_exit() returns HV_EXIT_INTR. */
int hv_vcpu_run(struct hv_vcpu *vcpu, struct hv_exit *exit);
/* Make the current or next hv_vcpu_run() return HV_EXIT_INTR. Async-safe;
 * the caller also interrupts the thread (signal) if it may be in the guest. */
void hv_vcpu_request_exit(struct hv_vcpu *vcpu);
/* Forget a request after HV_EXIT_INTR has been handled. */
void hv_vcpu_clear_exit_request(struct hv_vcpu *vcpu);
/* Tell the guest's paravirtual clock that this vCPU was paused by the host,
 * so the guest does not mistake the gap for a soft lockup. Called from the
 * vCPU's own thread when it parks; a no-op where unsupported. */
void hv_vcpu_notify_paused(struct hv_vcpu *vcpu);

/* The hypervisor requests (ioctl numbers) a kind of VMM thread issues
 * through this backend beyond the generic ones the VMM's seccomp filters
 * list themselves: on a vCPU thread for its crash report (registers), on
 * the VMM thread for snapshots. Returns the count, *@out a static array. */
enum hv_thread { HV_THREAD_VCPU, HV_THREAD_VMM };
unsigned hv_arch_ioctls(enum hv_thread t, const unsigned long **out);

/* ---- snapshots ----
 * A paused machine's hypervisor state, written to and read from one section
 * each (base/snap.h). Save is called with every vCPU outside the guest; load
 * on a VM and vCPUs just created, before any vCPU runs. Load refuses a state
 * this backend or host cannot take (-EPROTO malformed, -ENOTSUP another kind
 * of host) and leaves the object fit only for destruction. */
struct snap_w;
struct snap_r;
/* Finish an I/O or MMIO access the guest is in the middle of (the backend
 * completes it only on the next entry), without running the guest. From the
 * vCPU's own thread, before it parks. 0 when nothing is pending any more;
 * 1 with @exit filled when the access needs the VMM once more (string I/O):
 * handle it and call again. */
int hv_vcpu_complete_pending(struct hv_vcpu *vcpu, struct hv_exit *exit);
/* Everything of one vCPU (x86: CPUID, MP state, registers, XSAVE, XCRs,
 * debug registers, LAPIC, every MSR the backend lists, events, TSC rate). */
int hv_vcpu_save(struct hv_vcpu *vcpu, struct snap_w *w);
int hv_vcpu_load(struct hv_vcpu *vcpu, struct snap_r *r);
/* The VM-wide state emulated in the hypervisor (x86: PIC, IOAPIC, PIT,
 * kvmclock). @clock_realtime: advance the guest clock by the real time
 * elapsed since the save, instead of resuming it where it stopped. */
int hv_vm_save(struct hv_vm *vm, struct snap_w *w);
int hv_vm_load(struct hv_vm *vm, struct snap_r *r, bool clock_realtime);

#if defined(__x86_64__)
#include "hv/hv_x86.h"
#elif defined(__aarch64__)
#include "hv/hv_arm64.h"
#endif

#endif
