/* arcvm.h - embed the arcvm virtual machine monitor in a C program.
 *
 * Lifecycle: arcvm_create() -> arcvm_set_*() -> arcvm_start() ->
 * [arcvm_pause()/arcvm_resume()] -> arcvm_stop() or the guest powers off ->
 * arcvm_wait() -> arcvm_destroy().
 *
 * Every function that can fail returns 0 or a negative errno value;
 * arcvm_last_error() then holds one sentence saying what went wrong and what
 * to do. Setters work only before arcvm_start() (-EBUSY after).
 * A handle may be used from several threads; calls on it are serialized.
 * Several VMs may run in one process. vCPU threads use the signal SIGRTMIN
 * internally: do not handle it yourself.
 */
#ifndef ARCVM_H
#define ARCVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct arcvm arcvm;

enum arcvm_state {
    ARCVM_STATE_CREATED,
    ARCVM_STATE_INITIALIZING,
    ARCVM_STATE_RUNNING,
    ARCVM_STATE_PAUSED,
    ARCVM_STATE_STOPPING,
    ARCVM_STATE_STOPPED,
    ARCVM_STATE_FAILED,
};

enum arcvm_exit_reason {
    ARCVM_EXIT_NONE,     /* not stopped yet */
    ARCVM_EXIT_POWEROFF, /* the guest powered off */
    ARCVM_EXIT_REBOOT,   /* the guest rebooted (or panicked with panic=N) */
    ARCVM_EXIT_CRASH,    /* triple fault or emulation failure */
    ARCVM_EXIT_STOPPED,  /* stopped by arcvm_stop() or the console escape */
    ARCVM_EXIT_ERROR,    /* a host-side failure */
};

struct arcvm_exit {
    enum arcvm_exit_reason reason;
    char message[256];
};

enum arcvm_console {
    ARCVM_CONSOLE_SERIAL, /* 16550 UART on COM1 (ttyS0) */
    ARCVM_CONSOLE_VIRTIO, /* virtio console (hvc0) */
    ARCVM_CONSOLE_NONE,
};

/* The library version, e.g. "0.1.0". */
const char *arcvm_version(void);

/* For help texts, in this build's architecture's words: the kernel files
 * --kernel accepts, and the default kernel command line with the serial
 * console (what arcvm_set_cmdline() appends to). */
const char *arcvm_kernel_formats(void);
const char *arcvm_default_cmdline(void);

/* A new VM with defaults: 1 vCPU, 256 MiB, serial console on no fds. */
int arcvm_create(arcvm **out);
/* Stop the VM if it runs, then free everything. NULL is allowed. */
void arcvm_destroy(arcvm *vm);
/* The last error's message ("" if none). Valid until the next call. */
const char *arcvm_last_error(const arcvm *vm);

/* Kernel: a bzImage (64-bit entry) or an ELF vmlinux (PVH note). */
int arcvm_set_kernel(arcvm *vm, const char *path);
int arcvm_set_initrd(arcvm *vm, const char *path);
/* Directory where a compressed bzImage's kernel is kept unpacked (xz or
 * gzip; created on first use, 8 most recent kernels kept), so that later
 * boots enter it directly through its PVH note instead of letting the guest
 * decompress it at every boot. NULL (the default) boots bzImages as they
 * are. The unpacked boot skips the decompressor's physical KASLR, like any
 * vmlinux boot (Firecracker, Cloud Hypervisor). */
int arcvm_set_kernel_cache(arcvm *vm, const char *dir);
/* Kernel command line appended to arcvm's defaults (console=ttyS0 reboot=k
 * panic=1 pci=off ...); with @replace_defaults non-zero it is used alone. */
int arcvm_set_cmdline(arcvm *vm, const char *cmdline, int replace_defaults);
int arcvm_set_vcpus(arcvm *vm, unsigned count);
/* Guest RAM in bytes: at least 64 MiB, a whole number of MiB. */
int arcvm_set_memory(arcvm *vm, uint64_t bytes);
/* What backs guest RAM (Firecracker's machine-config huge_pages). */
enum arcvm_huge_pages {
    ARCVM_HUGE_PAGES_NONE,        /* 4 KiB pages, committed as the guest touches them */
    ARCVM_HUGE_PAGES_2M,          /* hugetlbfs 2 MiB pages: all of RAM (and a hotplug
                                   * region) reserved from the host's pool at start,
                                   * which fails with a message when the pool is short */
    ARCVM_HUGE_PAGES_TRANSPARENT, /* 4 KiB memory advised for transparent huge pages
                                   * (the host's shmem_enabled decides) */
};
/* Memory must then be a multiple of 2 MiB (checked at start). A snapshot of
 * such a VM restores into 4 KiB pages. Before start. */
int arcvm_set_huge_pages(arcvm *vm, enum arcvm_huge_pages pages);
/* Console device and the fds it reads and writes (-1: none). The fds stay
 * owned by the caller and must outlive the VM. */
int arcvm_set_console(arcvm *vm, enum arcvm_console mode, int in_fd, int out_fd);
/* Non-zero: the two-key sequence Ctrl-A x on console input stops the VM. */
int arcvm_set_console_escape(arcvm *vm, int on);
/* Add a virtio-blk disk backed by the raw image @path (at most 8). With
 * @readonly the image is opened read-only and guest writes fail. @id (at
 * most 20 printable characters, NULL: derived from the path) is the serial
 * number the guest sees. The image is locked against other writers when
 * the VM starts. */
int arcvm_add_disk(arcvm *vm, const char *path, int readonly, const char *id);
/* Share the host directory @host_dir with the guest through virtio-fs (at
 * most 4 shares): the guest mounts it with "mount -t virtiofs TAG /mnt".
 * @tag is 1 to 36 printable characters without ',' or ':'. With @readonly
 * every change is refused (EROFS) by arcvm itself. The guest never reaches
 * anything outside @host_dir (symlinks are not followed on the host). While
 * a share is attached, arcvm_snapshot_create() is refused. */
int arcvm_add_share(arcvm *vm, const char *host_dir, const char *tag, int readonly);
/* Add a virtio-pmem device (at most 4): the file @path (regular, not
 * empty) mapped into the guest's physical memory above RAM, which the
 * guest's virtio_pmem driver shows as /dev/pmemN, N in the order added.
 * The guest's writes go to the file directly (MAP_SHARED); its flushes
 * sync it. @readonly maps it read-only (guest writes are dropped); @root
 * adds "root=/dev/pmemN ro|rw" to the command line (one root device).
 * @id (NULL: none) names it for arcvm_set_pmem_rate_limiter(). While a
 * pmem device is attached, arcvm_snapshot_create() is refused. */
int arcvm_add_pmem(arcvm *vm, const char *path, int readonly, int root, const char *id);
/* Limit the flushes of the pmem device @pmem_id (each counts one op and
 * the file's size in bytes): before the start or at run time (Firecracker's
 * PATCH /pmem). All zeros lifts it. -ENOENT for no such device. */
struct arcvm_rate_limiter;
int arcvm_set_pmem_rate_limiter(arcvm *vm, const char *pmem_id,
                                const struct arcvm_rate_limiter *rl);
/* Add a virtio-net NIC (at most 4), described as on the command line:
 * "tap=NAME[,mac=MAC]" (an existing TAP interface) or
 * "user[,mac=MAC][,hostfwd=tcp::HOSTPORT-:GUESTPORT]..." (user-mode
 * networking without root: DHCP gives the guest 10.0.2.15). */
int arcvm_add_net(arcvm *vm, const char *spec);
/* A virtio-vsock device with guest CID @cid (>= 3), hybrid like
 * Firecracker's: host programs connect to the Unix socket @uds_path and
 * write "CONNECT <port>\n"; guest connections to host port P go to the
 * Unix socket "<uds_path>_P". */
int arcvm_set_vsock(arcvm *vm, uint32_t cid, const char *uds_path);
/* A virtio-balloon device, inflated to @target_mib at start. Non-zero
 * @deflate_on_oom lets the guest take pages back under memory pressure;
 * @stats_interval_s > 0 enables the statistics queue; non-zero
 * @free_page_reporting lets the guest report free pages for the host to
 * reclaim. */
int arcvm_set_balloon(arcvm *vm, uint32_t target_mib, int deflate_on_oom,
                      unsigned stats_interval_s, int free_page_reporting);
/* Non-zero: the balloon also offers free page hinting (call after
 * arcvm_set_balloon(); snapshots of such a VM are refused). */
int arcvm_set_balloon_hinting(arcvm *vm, int on);
/* Free page hinting at run time, as Firecracker's /balloon/hinting/start
 * and stop: start asks the guest to hint its free pages (which arcvm gives
 * back to the host) under a new command id; non-zero @ack_on_stop answers
 * the guest's end of the run with DONE at once. Stop says DONE: the guest
 * takes the hinted pages back into use. */
int arcvm_balloon_hint_start(arcvm *vm, int ack_on_stop);
int arcvm_balloon_hint_stop(arcvm *vm);
struct arcvm_balloon_hint {
    uint32_t host_cmd;     /* 0 STOP, 1 DONE, else the run's id */
    uint32_t guest_cmd;    /* the last id the guest sent, if guest_cmd_valid */
    int guest_cmd_valid;
    uint64_t hinted_pages; /* 4 KiB pages hinted and given back since start */
};
int arcvm_balloon_hint_status(arcvm *vm, struct arcvm_balloon_hint *out);
/* Balloon at run time. Set the target (MiB the guest should give back). */
int arcvm_balloon_set_target(arcvm *vm, uint32_t target_mib);
/* Change the statistics interval (only when statistics were enabled). */
int arcvm_balloon_set_stats_interval(arcvm *vm, unsigned seconds);
/* Statistics tags, numbered as in the virtio spec (5.5.6.3). */
enum {
    ARCVM_BALLOON_SWAP_IN, ARCVM_BALLOON_SWAP_OUT, ARCVM_BALLOON_MAJOR_FAULTS,
    ARCVM_BALLOON_MINOR_FAULTS, ARCVM_BALLOON_FREE_MEMORY, ARCVM_BALLOON_TOTAL_MEMORY,
    ARCVM_BALLOON_AVAILABLE_MEMORY, ARCVM_BALLOON_DISK_CACHES, ARCVM_BALLOON_HUGETLB_ALLOCATIONS,
    ARCVM_BALLOON_HUGETLB_FAILURES, ARCVM_BALLOON_NSTATS = 16
};
struct arcvm_balloon {
    uint32_t target_mib, actual_mib;  /* asked for / given by the guest */
    int deflate_on_oom, free_page_reporting, stats_enabled;
    unsigned stats_interval_s;
    uint64_t stats_updates;           /* 0: no statistics received yet */
    uint32_t stats_valid;             /* bit n: stats[n] was sent */
    uint64_t stats[ARCVM_BALLOON_NSTATS];
};
int arcvm_balloon_get(arcvm *vm, struct arcvm_balloon *out);
/* The JSON name Firecracker uses for statistics tag @tag, or NULL. */
const char *arcvm_balloon_stat_name(unsigned tag);
/* Memory hotplug (virtio-mem), Firecracker's model: a region of
 * @total_mib above RAM (not in the guest's boot memory map) that the guest
 * plugs and unplugs in blocks of @block_mib (a power of 2, at least 2; 0:
 * 2) on request, mapped into the guest in slots of @slot_mib (at least 128,
 * a multiple of the block; 0: 128); @total_mib is a multiple of the slot.
 * The guest needs a virtio-mem driver and its memory hotplug on (Linux:
 * CONFIG_VIRTIO_MEM, memhp_default_state=online_movable to use new memory
 * at once). Snapshots of such a VM are refused. Before start. */
int arcvm_set_memory_hotplug(arcvm *vm, uint32_t total_mib, uint32_t block_mib,
                             uint32_t slot_mib);
/* Ask the guest to have @mib of the region plugged: a multiple of the block
 * size, at most the total. The guest plugs or unplugs towards it in its
 * own time (see plugged_mib). After start. */
int arcvm_memory_hotplug_request(arcvm *vm, uint32_t mib);
struct arcvm_memory_hotplug {
    uint32_t total_mib, block_mib, slot_mib;
    uint32_t requested_mib; /* what the host asked for */
    uint32_t plugged_mib;   /* what the guest has plugged (0 before start) */
    uint64_t addr;          /* guest-physical start of the region (0 before start) */
    uint64_t plugs, unplugs; /* blocks plugged / unplugged since start */
};
/* The configuration before start, the device's state after. -ENODEV when
 * no hotplug memory is configured. */
int arcvm_memory_hotplug_get(arcvm *vm, struct arcvm_memory_hotplug *out);
/* Non-zero: add a virtio-rng entropy device fed from getrandom(). */
int arcvm_set_rng(arcvm *vm, int on);
/* Non-zero: also list the virtio-mmio devices on the kernel command line
 * (virtio_mmio.device=...), for kernels built with
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES. ACPI describes them either way. */
int arcvm_set_virtio_cmdline(arcvm *vm, int on);
/* Pin vCPU @vcpu's thread (every vCPU's when @vcpu is -1) to the host CPUs
 * in @cpulist, e.g. "2" or "0-3,8". */
int arcvm_set_vcpu_affinity(arcvm *vm, int vcpu, const char *cpulist);

/* A CPU template (Firecracker's custom CPU templates, x86-64): bits forced
 * in every vCPU's CPUID and MSRs, and KVM capabilities the host must have.
 * CPUID changes are made to what KVM offers, before arcvm's own fixups
 * (hypervisor bit, APIC IDs, topology), which win where both touch a bit;
 * MSR changes to the values KVM gives a new vCPU, before the boot MSRs. A
 * template naming a CPUID leaf/subleaf or MSR that KVM lacks fails the
 * start. The API's PUT /cpu-config fills one from JSON. */
#define ARCVM_CPU_TEMPLATE_MAX 256 /* entries of each kind */
enum arcvm_cpuid_reg { ARCVM_CPUID_EAX, ARCVM_CPUID_EBX, ARCVM_CPUID_ECX, ARCVM_CPUID_EDX };
struct arcvm_cpuid_modifier {
    uint32_t leaf, subleaf;
    uint32_t flags;    /* KVM CPUID entry flags: 1 when the subleaf is significant */
    uint32_t mask[4];  /* per register (enum arcvm_cpuid_reg): bits the template sets */
    uint32_t value[4]; /* and what they become (no bits outside mask) */
};
struct arcvm_msr_modifier {
    uint32_t addr;
    uint64_t mask, value;
};
struct arcvm_cpu_template {
    const struct arcvm_cpuid_modifier *cpuid;
    unsigned ncpuid; /* each leaf/subleaf at most once */
    const struct arcvm_msr_modifier *msrs;
    unsigned nmsrs;  /* each MSR at most once */
    const uint32_t *kvm_caps; /* KVM_CAP_* numbers the start requires */
    unsigned nkvm_caps;
};
/* Set (copied and checked now: -EINVAL with the reason) or, with @t NULL,
 * clear the template. Before the start. */
int arcvm_set_cpu_template(arcvm *vm, const struct arcvm_cpu_template *t);
/* Hypervisor device node (default "/dev/kvm"). */
int arcvm_set_hypervisor_device(arcvm *vm, const char *path);
/* Zero: arcvm_start() skips asking whether the hypervisor can run a stock
 * Linux guest (arcvm_check_host()'s KVM part: the kind of KVM and a test
 * guest) and tries anyway. For experts; the default (non-zero) refuses such
 * a host at once with a reason. */
int arcvm_set_kvm_check(arcvm *vm, int on);
/* Non-zero: log boot time when the guest writes 123 to MMIO 0xc0000000. */
int arcvm_set_boot_timer(arcvm *vm, int on);

/* System call filters (docs/security.md), on by default: each vCPU thread
 * and the event-loop thread install a seccomp filter before their first
 * guest input; a forbidden call stops the process with SIGSYS after one log
 * line. @on zero turns them off (also for arcvm_seccomp_thread()).
 * @filter_file, if not NULL, replaces the built-in filters with the ones in
 * a file in Firecracker's compiled format (seccompiler-bin output, thread
 * categories "vmm", "api" and "vcpu"); it is checked now. Before the start. */
int arcvm_set_seccomp(arcvm *vm, int on, const char *filter_file);
enum arcvm_thread {
    ARCVM_THREAD_VMM, /* the thread that controls a started or restored VM */
    ARCVM_THREAD_API  /* a thread that serves an API for it, from before its first request */
};
/* Install the filter for threads of @kind, as configured for @vm, on the
 * calling thread, for the rest of its life (nothing if filters are off).
 * ARCVM_THREAD_VMM allows what controlling a running VM takes (pause,
 * resume, snapshots, stop, destroy) but not creating a VM. */
int arcvm_seccomp_thread(arcvm *vm, enum arcvm_thread kind);

/* Build the VM and run it: returns once the vCPUs run (-errno on failure,
 * the VM is then failed). */
int arcvm_start(arcvm *vm);
/* Park all vCPUs (running -> paused) / let them go (paused -> running).
 * -EINVAL in any other state, -EALREADY when already there. */
int arcvm_pause(arcvm *vm);
int arcvm_resume(arcvm *vm);
/* Ask a running or paused VM to stop; returns at once. */
int arcvm_stop(arcvm *vm);
/* Block until the VM has stopped; fills @exit if not NULL. */
int arcvm_wait(arcvm *vm, struct arcvm_exit *exit);

/* Press Ctrl-Alt-Del on the guest's keyboard (running or paused VM). What
 * happens is the guest's business: Linux signals init, or reboots at once
 * when /proc/sys/kernel/ctrl-alt-del is 1. */
int arcvm_send_ctrl_alt_del(arcvm *vm);

/* Guest memory by guest-physical address (axvm's read_from_guest_of /
 * write_to_guest_of): the whole range must be guest RAM, else -EFAULT.
 * Only once started. Concurrent with the running guest, like DMA. */
int arcvm_read_guest(arcvm *vm, uint64_t gpa, void *buf, size_t len);
int arcvm_write_guest(arcvm *vm, uint64_t gpa, const void *buf, size_t len);

/* Counters since the VM started. */
#define ARCVM_MAX_DEVICES 16
struct arcvm_device_metrics {
    char kind[16];            /* "virtio-blk", "virtio-net", "virtio-rng", ... */
    char id[24];              /* disk or NIC id, or "" */
    uint64_t notifications;   /* guest kicks */
    uint64_t interrupts;      /* interrupts raised */
    uint64_t requests;        /* requests handled */
    uint64_t in_bytes;        /* data to the guest (disk reads, rng, console input) */
    uint64_t out_bytes;       /* data from the guest (disk writes, console output) */
    uint64_t errors;          /* failed requests, malformed queues */
};
struct arcvm_metrics {
    uint64_t exits_io_in, exits_io_out, exits_mmio_read, exits_mmio_write;
    uint64_t exits_halt, exits_shutdown, exits_system_event, exits_hypercall;
    uint64_t exits_intr, exits_failures; /* internal errors, failed entries, unknown */
    /* Console output dropped (arcvm_set_console_limits()), in bytes: over
     * the rate, and because the reader was behind. */
    uint64_t console_dropped_rate, console_dropped_room;
    unsigned ndevices;
    struct arcvm_device_metrics devices[ARCVM_MAX_DEVICES];
};
int arcvm_get_metrics(arcvm *vm, struct arcvm_metrics *m);

/* Process-wide logging (all VMs): messages up to @level
 * (0 error, 1 warning, 2 info, 3 debug) go to @fd (default: 2). */
void arcvm_log_set_level(int level);
void arcvm_log_set_fd(int fd);

/* What each vCPU is doing, without stopping the VM: every vCPU is kicked
 * out of the guest once and answers from its own thread. One that does not
 * answer within half a second is stuck inside the hypervisor (a host
 * problem); one that answers with the same program counter again and again
 * is spinning in the guest. Running, paused or stopping VMs only. */
enum arcvm_vcpu_where {
    ARCVM_VCPU_NOT_STARTED, ARCVM_VCPU_IN_GUEST, ARCVM_VCPU_IN_VMM, ARCVM_VCPU_PARKED,
    ARCVM_VCPU_DONE,
};
struct arcvm_vcpu_info {
    unsigned id;
    enum arcvm_vcpu_where where;
    uint64_t where_ms;       /* how long it has been there */
    int answered;            /* answered the kick within the timeout */
    int pc_valid;
    uint64_t pc;             /* x86: RIP when it answered */
    char last_exit[16];      /* "io", "mmio", "intr", "halt", ..., "none" */
    uint64_t exits;          /* all exits so far */
    uint64_t kicks;          /* exit requests sent to it */
    uint64_t intr_exits;     /* runs it left because of a request */
};
/* Fills up to @max entries; returns the vCPU count or -errno. */
int arcvm_get_vcpu_info(arcvm *vm, struct arcvm_vcpu_info *out, unsigned max);
/* "not started", "in guest", "in vmm", "parked", "done". */
const char *arcvm_vcpu_where_name(enum arcvm_vcpu_where where);
/* One line (no newline) describing @v, e.g. "vcpu0: in guest for 12 ms,
 * pc 0xffffffff81a3c2b4, last exit io, 5012 exits, 3 kicks, 3 interrupted
 * runs", saying so when it did not answer. Returns snprintf's count. */
int arcvm_vcpu_info_format(const struct arcvm_vcpu_info *v, char *buf, size_t len);

/* Can this host run arcvm's VMs? One verdict per requirement, as libvirt's
 * virt-host-validate gives: the hypervisor device, its permissions and
 * API, real hardware virtualization behind it (not a paravirtual KVM such
 * as PVM, which cannot run stock kernels), a test guest that must run,
 * every hypervisor feature arcvm needs or can use, io_uring, /dev/net/tun,
 * the user-mode network helper and the kernel cache directory. */
enum arcvm_check_status { ARCVM_CHECK_PASS, ARCVM_CHECK_WARN, ARCVM_CHECK_FAIL };
struct arcvm_check_item {
    char name[24];           /* stable and short: "kvm-device", "hardware-virt", ... */
    enum arcvm_check_status status;
    char detail[224];        /* what was found */
    char hint[224];          /* what to do; "" when it passed */
};
#define ARCVM_CHECK_MAX 32
struct arcvm_check_report {
    unsigned count, warns, fails;
    struct arcvm_check_item items[ARCVM_CHECK_MAX];
};
/* Check the hypervisor device @kvm_device (NULL: /dev/kvm) and, unless
 * NULL, the kernel cache directory @kernel_cache. Returns 0 when a stock
 * Linux guest can run here (no FAIL), -ENOTSUP otherwise; @out always
 * holds the report. Takes up to a second (the test guest is bounded). The
 * test guest is a VM of its own: call this before starting VMs in this
 * process (under nested QEMU/TCG, a test VM beside running ones in one
 * process was seen to lock up the outer kernel). */
int arcvm_check_host(const char *kvm_device, const char *kernel_cache,
                     struct arcvm_check_report *out);
/* "PASS", "WARN", "FAIL". */
const char *arcvm_check_status_name(enum arcvm_check_status status);

/* ---- rate limiters ----
 * Firecracker's token buckets: a bucket holds @size tokens, refills from
 * empty in @refill_time_ms, and starts with @one_time_burst extra tokens;
 * size 0 means no bucket. Bandwidth counts bytes, ops counts requests. */
struct arcvm_token_bucket {
    uint64_t size, one_time_burst, refill_time_ms;
};
struct arcvm_rate_limiter {
    struct arcvm_token_bucket bandwidth, ops;
};
/* Limit the disk with id @disk_id (arcvm_add_disk's @id): before the start,
 * or at run time (Firecracker's PATCH /drives). All zeros lifts it.
 * -ENOENT for no such disk, -EINVAL for a bucket without a refill time. */
int arcvm_set_disk_rate_limiter(arcvm *vm, const char *disk_id,
                                const struct arcvm_rate_limiter *rl);
/* Back the disk with id @disk_id by the raw image @path instead
 * (Firecracker's PATCH /drives path_on_host). Before the start it only
 * changes the configuration. On a running VM the image is opened now
 * (read-only if the disk is) and locked; requests in flight finish on the
 * old image, then the disk's capacity becomes the new image's size and the
 * guest gets a configuration-change interrupt. @path may be the current
 * image, to show the guest a size the host changed. The path that
 * arcvm_get_config() returned for this disk is freed. 0, or -errno with
 * the old image still in use: -ENOENT for no such disk, the open's error
 * (-ENOENT, -EACCES, -EBUSY for an image another process locks, ...). */
int arcvm_update_disk_path(arcvm *vm, const char *disk_id, const char *path);
/* Limit the entropy device (arcvm_set_rng()), before the start. */
int arcvm_set_rng_rate_limiter(arcvm *vm, const struct arcvm_rate_limiter *rl);
/* Console output limits, as Firecracker's serial device has them (PUT
 * /serial): output over @bandwidth (NULL or size 0: none) is dropped, not
 * delayed; with @drop_when_full non-zero, output the reader of a pipe or
 * FIFO is too far behind to take is dropped too, instead of holding the
 * guest back (the default, which loses nothing). Counted in
 * arcvm_get_metrics(). Before the start; -EINVAL for a bucket with a size
 * but no refill time. */
int arcvm_set_console_limits(arcvm *vm, const struct arcvm_token_bucket *bandwidth,
                             int drop_when_full);
/* The same for each direction of the NIC with id @iface_id (its "id=" in
 * arcvm_add_net()): @rx limits what the guest receives, @tx what it sends;
 * NULL leaves that direction as it is. */
int arcvm_set_net_rate_limiters(arcvm *vm, const char *iface_id,
                                const struct arcvm_rate_limiter *rx,
                                const struct arcvm_rate_limiter *tx);

/* ---- the microVM metadata service (Firecracker's MMDS) ----
 * A JSON document the guest reads over HTTP at a link-local address
 * (169.254.169.254 by default) through the NICs named in
 * arcvm_set_mmds(); arcvm answers ARP, TCP and HTTP there itself, and
 * that traffic never reaches the host. The data may change at any time. */
enum arcvm_mmds_version {
    ARCVM_MMDS_V1, /* plain GETs */
    ARCVM_MMDS_V2, /* GETs need a session token from PUT /latest/api/token */
};
struct arcvm_mmds_config {
    enum arcvm_mmds_version version;
    uint32_t ipv4;   /* host byte order; 0: 169.254.169.254 */
    int imds_compat; /* always answer IMDS text, whatever Accept says */
    unsigned n_ifaces;
    const char *const *iface_ids; /* ids given with arcvm_add_net()'s "id=" */
};
/* Serve the metadata service on the NICs @c names; before the start. The
 * NICs must exist: -ENOENT otherwise; -EINVAL for no NIC at all. */
int arcvm_set_mmds(arcvm *vm, const struct arcvm_mmds_config *c);
/* The largest document the store takes, bytes (0: 51200, Firecracker's). */
int arcvm_mmds_set_size_limit(arcvm *vm, size_t bytes);
/* Replace the document with @json, a JSON object. Any time. 0; -EINVAL (not
 * a JSON object) or -EFBIG (over the size limit; the store unchanged). */
int arcvm_mmds_put(arcvm *vm, const char *json);
/* Merge @json into the document (RFC 7396 JSON merge patch). As
 * arcvm_mmds_put(), and -ENODATA when no document was put yet. */
int arcvm_mmds_patch(arcvm *vm, const char *json);
/* The document as compact JSON ("{}" before the first put); free() it.
 * NULL when out of memory. */
char *arcvm_mmds_get(arcvm *vm);

/* ---- snapshots ----
 * A snapshot is two files: the state (vCPUs, interrupt controllers, clocks,
 * devices, configuration; a few hundred KiB) and the guest's RAM (sparse
 * where pages are zero). Firecracker's PUT /snapshot/create and /load. */

/* Save a paused VM (arcvm_pause() first). Both files are written under
 * temporary names and renamed when complete: on failure nothing is left
 * behind and the VM stays paused as it was. */
enum arcvm_snapshot_type {
    ARCVM_SNAPSHOT_FULL, /* every page of RAM (sparse where zero) */
    ARCVM_SNAPSHOT_DIFF, /* only the pages written since the last snapshot:
                          * needs arcvm_set_dirty_tracking() (or a load with
                          * track_dirty_pages); merge onto its base before
                          * restoring (arcvm_snapshot_merge) */
};
int arcvm_snapshot_create(arcvm *vm, enum arcvm_snapshot_type type, const char *state_path,
                          const char *mem_path);
/* Record the pages the guest and the devices write, from the start (before
 * arcvm_start()), so Diff snapshots can be taken. Off by default: it costs
 * a write-protection fault on the first write to each page after every
 * snapshot. */
int arcvm_set_dirty_tracking(arcvm *vm, int on);
/* Apply Diff snapshots (states[i], mems[i], oldest first) onto @base_mem,
 * the memory file of the snapshot they follow, in place; write the newest
 * one's state as a Full snapshot's to @state_out. (@state_out, @base_mem)
 * then restore. Every Diff is checked before the base is written. */
int arcvm_snapshot_merge(const char *base_mem, unsigned n, const char *const *states,
                         const char *const *mems, const char *state_out, char *err,
                         size_t errlen);

struct arcvm_net_override {
    const char *iface_id;      /* the network interface's id in the snapshot */
    const char *host_dev_name; /* the TAP device to use instead */
};
struct arcvm_snapshot_load {
    const char *state_path;
    const char *mem_path;      /* mapped copy-on-write: never written */
    const char *uffd_path;     /* instead of @mem_path: the Unix socket of a
                                * page-fault handler that serves the guest's
                                * RAM (Firecracker's Uffd backend; see
                                * arcvm-uffd-handler) */
    int clock_realtime;        /* advance the guest clock by the time since
                                * the snapshot (default: it resumes where it
                                * stopped, as in Firecracker) */
    int resume;                /* run at once; default: paused */
    int track_dirty_pages;     /* record written pages (for Diff snapshots) */
    unsigned nnet_overrides;
    const struct arcvm_net_override *net_overrides;
    const char *vsock_uds_path; /* NULL: the snapshot's */
};
/* Restore instead of arcvm_start(), on a handle never started. The machine
 * (vCPUs, memory, devices and their host files) comes from the snapshot;
 * settings of this process made before apply (console, hypervisor device,
 * KVM check, vCPU pinning). A corrupt, truncated, other-version or
 * other-host snapshot is refused with -EPROTO / -ENOTSUP and nothing runs. */
int arcvm_snapshot_load(arcvm *vm, const struct arcvm_snapshot_load *params);
/* The snapshot format this arcvm writes and reads (Firecracker's
 * --snapshot-version prints it as vN.0.0). */
#define ARCVM_SNAPSHOT_VERSION 1
/* The format version of snapshot state file @path, without restoring it. */
int arcvm_snapshot_version(const char *path, unsigned *version, char *err, size_t errlen);

/* The machine a VM runs (after start or load): for a restored VM, what the
 * snapshot brought. Strings belong to @vm and live as long as it does (a
 * disk's path until arcvm_update_disk_path() changes it). */
#define ARCVM_MAX_DISKS 8
#define ARCVM_MAX_NETS 4
struct arcvm_config {
    unsigned vcpus;
    uint64_t mem_bytes;
    const char *kernel, *initrd, *cmdline;
    unsigned ndisks;
    struct {
        const char *path, *id;
        int readonly;
    } disks[ARCVM_MAX_DISKS];
    unsigned nnets;
    struct {
        const char *id, *tap;  /* tap NULL: user-mode networking */
        uint8_t mac[6];
        int mac_set;
    } nets[ARCVM_MAX_NETS];
    int vsock;
    uint32_t vsock_cid;
    const char *vsock_uds_path;
    int balloon;
    uint32_t balloon_mib;
    int balloon_deflate_on_oom, balloon_free_page_reporting;
    unsigned balloon_stats_s;
    int rng;
};
int arcvm_get_config(arcvm *vm, struct arcvm_config *out);

enum arcvm_state arcvm_get_state(arcvm *vm);
/* "created", "initializing", "running", "paused", "stopping", "stopped",
 * "failed". */
const char *arcvm_state_name(enum arcvm_state state);
/* A file descriptor that becomes readable on every state change (poll it,
 * then call arcvm_get_state()); -1 before arcvm_start(). Owned by @vm. */
int arcvm_state_fd(arcvm *vm);

#ifdef __cplusplus
}
#endif

#endif
