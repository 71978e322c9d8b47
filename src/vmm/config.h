/* config.h - a VM's configuration as plain data, and its validation.
 *
 * Front ends (CLI, API, library setters) fill a struct vm_config; the VMM
 * validates it once, before anything is created, so a bad value never leaves
 * a half-built VM behind.
 */
#ifndef ARCVM_CONFIG_H
#define ARCVM_CONFIG_H

#include "arch/cpu_template.h"
#include "base/guest_mem.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/fs.h"
#include "virtio/mem.h"
#include "virtio/net.h"
#include "virtio/pmem.h"
#include "virtio/vsock.h"

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Below this the stock kernels we target cannot even unpack themselves. */
#define CONFIG_MEM_MIN (64ull << 20)
/* Firecracker's default is 128 MiB; a Debian kernel plus its initramfs
 * modules wants a bit more headroom. */
#define CONFIG_MEM_DEFAULT (256ull << 20)
/* The guest command line is copied into a fixed page-sized area. */
#define CONFIG_CMDLINE_MAX 4096

enum console_mode { CONSOLE_SERIAL, CONSOLE_VIRTIO, CONSOLE_NONE };

/* Most virtio-blk disks one VM may have. */
#define CONFIG_MAX_DISKS 8

/* Network interfaces per VM. */
#define CONFIG_MAX_NETS 4

/* Shared directories (virtio-fs) per VM. */
#define CONFIG_MAX_SHARES 4

/* Persistent-memory devices (virtio-pmem) per VM. */
#define CONFIG_MAX_PMEMS 4

struct vm_config {
    char *kernel_path;       /* required */
    char *initrd_path;       /* optional */
    char *cmdline;           /* appended to the defaults, or replaces them */
    char *hv_device;         /* hypervisor device node, NULL: /dev/kvm */
    char *kernel_cache;      /* directory of unpacked kernels, NULL: none */
    bool cmdline_replace;    /* true: use @cmdline verbatim, no defaults */
    unsigned vcpus;          /* 1 .. hypervisor limit */
    uint64_t mem_bytes;      /* guest RAM, multiple of 1 MiB */
    enum guest_mem_pages mem_pages; /* what backs it (huge pages: 2 MiB multiple) */
    enum console_mode console;
    int console_in;          /* fd the guest console reads, -1: none */
    int console_out;         /* fd the guest console writes, -1: discard */
    struct rate_limiter_config console_rl; /* output over its bandwidth dropped; zero: none */
    bool console_drop_when_full; /* drop output a slow reader cannot take (console.h) */
    bool boot_timer;         /* log time to the guest's boot-done write */
    unsigned ndisks;
    struct disk_config disks[CONFIG_MAX_DISKS];
    unsigned nnets;
    struct net_config nets[CONFIG_MAX_NETS];
    struct vsock_config vsock;
    struct balloon_config balloon;
    struct memhp_config memhp; /* virtio-mem hotplug region (config_memhp.c) */
    unsigned nshares;
    struct fs_config shares[CONFIG_MAX_SHARES];
    unsigned npmems;
    struct pmem_config pmems[CONFIG_MAX_PMEMS]; /* /dev/pmem0.. in this order */
    bool rng;                /* virtio-rng entropy device */
    struct rate_limiter_config rng_rl; /* its rate limiter; zero: none */
    /* Host CPUs each vCPU thread may run on (axvm's phys_cpu_sets):
     * affinity[i] for vCPU i < naffinity; an empty set means unpinned. */
    unsigned naffinity;
    cpu_set_t *affinity;
    bool mmio_cmdline;       /* also announce virtio-mmio devices with
                              * virtio_mmio.device= on the command line */
    bool console_escape;     /* Ctrl-A x on console input stops the VM */
    bool skip_kvm_check;     /* start without asking whether KVM can run a
                              * stock guest (hostcheck_for_start()) */
    bool track_dirty;        /* record written pages, for Diff snapshots */
    bool no_seccomp;         /* run threads without seccomp filters */
    char *seccomp_file;      /* custom filters (seccomp.h), NULL: built-in */
    struct cpu_template *cpu_template; /* every vCPU's CPUID and MSR changes, NULL: none */
    /* Reference for the boot timer: CLOCK_MONOTONIC and process CPU time in
     * microseconds when the front end started; 0: when the VM was created. */
    uint64_t t0_wall_us, t0_cpu_us;
};

/* Fill @c with defaults: 1 vCPU, CONFIG_MEM_DEFAULT, serial console on no fds. */
void config_init(struct vm_config *c);
/* Free the strings @c owns (it stays initialised). */
void config_release(struct vm_config *c);
/* Make @dst a deep copy of @src (every owned string and array duplicated;
 * a field added to struct vm_config is copied and released here). 0, or
 * -ENOMEM with @dst released. */
int config_copy(struct vm_config *dst, const struct vm_config *src);

/* Parse a memory size: a number with an optional binary suffix K, M, G or T
 * (optionally followed by "iB" or "B"); a bare number means MiB, as in QEMU's
 * -m. Returns 0, -EINVAL for garbage or -ERANGE for overflow. */
int config_parse_size(const char *s, uint64_t *bytes);
/* Parse "PATH[,ro][,id=NAME]" into @d (strings allocated). -EINVAL with a
 * reason in @err for an empty path, unknown option or bad id. */
int config_parse_disk(const char *s, struct disk_config *d, char *err, size_t errlen);
/* Parse "tap=NAME[,mac=MAC]" or "user[,hostfwd=tcp::HOSTPORT-:GUESTPORT]..."
 * (hostfwd also "udp:", and "tcp:ADDR:HOSTPORT-:GUESTPORT"). */
int config_parse_net(const char *s, struct net_config *n, char *err, size_t errlen);
/* Parse "cid=N,uds=PATH". */
int config_parse_vsock(const char *s, struct vsock_config *v, char *err, size_t errlen);
/* Parse "SIZE[,deflate-on-oom][,stats=SECONDS][,free-page-reporting]"
 * (SIZE as config_parse_size, a bare number is MiB). */
int config_parse_balloon(const char *s, struct balloon_config *b, char *err, size_t errlen);
/* Parse "SIZE[,block=SIZE][,slot=SIZE][,requested=SIZE]" (sizes as
 * config_parse_size, whole MiB; block 2 MiB and slot 128 MiB by default)
 * and check it with memhp_config_check(). */
int config_parse_memhp(const char *s, struct memhp_config *m, char *err, size_t errlen);
/* Parse a huge_pages setting: "None", "2M" or "Transparent" (Firecracker's
 * words, any case); -EINVAL for anything else. */
int config_parse_mem_pages(const char *s, enum guest_mem_pages *pages);
/* The same setting's name as Firecracker writes it. */
const char *config_mem_pages_name(enum guest_mem_pages pages);
/* config_validate()'s part for memory hotplug. */
int config_memhp_validate(const struct vm_config *c, char *err, size_t errlen);
/* Parse "HOSTDIR:TAG[,ro]" (the last ':' separates the tag; TAG is 1 to
 * VIRTIO_FS_TAG_MAX printable characters without ':' or ','). */
int config_parse_share(const char *s, struct fs_config *f, char *err, size_t errlen);
/* ---- virtio-pmem (config_pmem.c) ---- */
/* Longest pmem id: Firecracker's resource ids are up to 64 characters. */
#define CONFIG_PMEM_ID_MAX 64
/* Parse "PATH[,ro][,rw][,root][,id=ID]" into @p (strings allocated; ID 1 to
 * CONFIG_PMEM_ID_MAX printable characters). -EINVAL with a reason in @err. */
int config_parse_pmem(const char *s, struct pmem_config *p, char *err, size_t errlen);
/* Free what @p holds and zero it. */
void config_release_pmem(struct pmem_config *p);
/* Deep copy of @src's strings into @dst (already a shallow copy); false on
 * out of memory. */
bool config_copy_pmem(struct pmem_config *dst, const struct pmem_config *src);
/* The pmem part of config_validate(): at most CONFIG_MAX_PMEMS, each file
 * a non-empty regular file, ids unique, at most one root device. */
int config_validate_pmem(const struct vm_config *c, char *err, size_t errlen);
/* With a root pmem device N: append "root=/dev/pmemN ro|rw" to c->cmdline
 * (as Firecracker does; the guest names pmem devices in this order). 0, or
 * -ENOMEM. Call once, when the VM is built. */
int config_pmem_root_cmdline(struct vm_config *c);

/* Free the strings of one net / vsock config. */
void config_release_net(struct net_config *n);

/* Longest disk id: the virtio-blk GET_ID answer is 20 bytes. */
#define CONFIG_DISK_ID_MAX 20

/* Parse a CPU list such as "0-3,6" into @set (cleared first). -EINVAL for
 * garbage or a CPU number >= CPU_SETSIZE. */
int config_parse_cpulist(const char *s, cpu_set_t *set);
/* Pin vCPU @vcpu (or every configured vCPU when @vcpu is CONFIG_ALL_VCPUS)
 * to @set. -ENOMEM, or -EINVAL for an index out of range. */
#define CONFIG_ALL_VCPUS (~0u)
#define CONFIG_MAX_AFFINITY 1024
int config_set_affinity(struct vm_config *c, unsigned vcpu, const cpu_set_t *set);

/* Parse a decimal unsigned integer with no sign, space or suffix. */
int config_parse_uint(const char *s, unsigned *out);

/* Check @c against the host: vCPUs within 1..max_vcpus (0: no upper bound
 * known yet), memory within
 * CONFIG_MEM_MIN..host_mem and MiB-aligned, kernel and initrd are readable
 * regular files, command line fits. On error returns -errno and writes one
 * user-facing sentence to @err. */
int config_validate(const struct vm_config *c, unsigned max_vcpus, uint64_t host_mem, char *err,
                    size_t errlen);

/* Snapshots (config_state.c): the machine-defining fields of @c (kernel,
 * command line, vCPUs, memory, console kind, devices and their back ends)
 * into the caller's section; load replaces those fields of @c and keeps
 * the process-side ones (console fds, hypervisor device, pinning). Load
 * returns -EPROTO for a malformed section and leaves @c releasable. */
struct snap_w;
struct snap_r;
void config_save(const struct vm_config *c, struct snap_w *w);
int config_load(struct vm_config *c, struct snap_r *r);

/* Physical memory of this host in bytes (0 if unknown). */
uint64_t config_host_memory(void);

#endif
