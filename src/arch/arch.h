/* arch.h - what the VMM core asks of an architecture (x86-64, arm64).
 *
 * The core creates the hypervisor VM, guest RAM, buses, event loop and
 * console; the architecture decides the RAM layout, the platform devices,
 * how a kernel is loaded and what state vCPUs start in.
 */
#ifndef ARCVM_ARCH_H
#define ARCVM_ARCH_H

#include "hw/hw.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct console;
struct evloop;
struct guest_mem;
struct guest_mem_region;
struct hv;
struct hv_vm;
struct hv_vcpu;
struct arch_machine; /* the architecture's own state of one machine */
struct cpu_template; /* arch/cpu_template.h */

/* The pieces of one machine the VMM hands the architecture, never the VM
 * object itself. Owned by the VMM; must outlive the arch_machine. */
struct arch_ctx {
    struct hv *hv;
    struct hv_vm *hvm;
    struct guest_mem *mem;
    struct bus *pio, *mmio;
    struct evloop *loop;
    struct console *console;    /* the VM's console (host fds) */
    struct hw_machine stop;     /* power-off and reset requests, any thread */
    unsigned ncpus;
    uint64_t start_wall_us, start_cpu_us; /* the boot timer's reference */
};

/* Where the guest's console is. */
enum arch_console { ARCH_CONSOLE_SERIAL, ARCH_CONSOLE_VIRTIO, ARCH_CONSOLE_NONE };

/* A virtio-mmio device the firmware tables and command line announce. */
struct arch_virtio_dev {
    uint64_t base;
    uint32_t gsi;
};

/* How to boot, from the VM's configuration. Owned by the VMM, which fills
 * @virtio before arch_load(); must outlive the arch_machine. */
struct arch_boot {
    const char *kernel, *initrd; /* paths; @initrd may be NULL */
    const char *cmdline;         /* appended to the defaults, or NULL */
    bool cmdline_replace;        /* @cmdline alone, no defaults */
    const char *kernel_cache;    /* directory of unpacked kernels, or NULL */
    uint64_t mem_bytes;
    enum arch_console console;
    bool boot_timer;             /* Firecracker's boot timer device */
    bool mmio_cmdline;           /* also virtio_mmio.device= on the command line */
    unsigned nvirtio;
    const struct arch_virtio_dev *virtio;
    const struct cpu_template *cpu_template; /* applied to every vCPU, or NULL */
};

/* What the machine needs of the hypervisor's VM for @ncpus vCPUs
 * (interrupt controllers, timers, where their registers go). */
struct hv_vm_config;
void arch_vm_config(unsigned ncpus, struct hv_vm_config *cfg);
/* Guest RAM regions for @mem_bytes; returns the count (<= max) or -errno. */
int arch_mem_layout(uint64_t mem_bytes, struct guest_mem_region *out, unsigned max);
/* The first guest-physical address above RAM and every MMIO window for
 * @mem_bytes of RAM, 1 GiB aligned: where device memory (virtio-pmem
 * regions) goes. The guest's memory map and firmware tables leave it out. */
uint64_t arch_device_mem_base(uint64_t mem_bytes);
/* Guest-physical start of the memory hotplug (virtio-mem) region: the
 * start of device memory, aligned as the guest needs; virtio-pmem regions
 * come after it. Not in the memory map the guest boots with. */
uint64_t arch_memhp_base(uint64_t mem_bytes);
/* Create the platform devices and register them on @ctx's buses. On
 * failure *@out may be set: arch_vm_release() it. */
int arch_vm_init(const struct arch_ctx *ctx, const struct arch_boot *boot,
                 struct arch_machine **out);
/* Load kernel, initrd and command line, build firmware tables. On failure
 * writes a user-facing reason to @err. */
int arch_load(struct arch_machine *m, char *err, size_t errlen);
/* vCPU @id's state before its first run (after arch_load()), with the CPU
 * template applied. On failure a user-facing reason in @err. */
int arch_vcpu_init(struct arch_machine *m, struct hv_vcpu *v, unsigned id, char *err,
                   size_t errlen);
/* Guest-physical window and interrupt of the @index-th virtio-mmio device.
 * -ENOSPC when the machine has no room for it. */
int arch_virtio_slot(unsigned index, uint64_t *base, uint32_t *gsi);
/* Deliver Ctrl-Alt-Del to the guest (x86: through the i8042 keyboard). */
int arch_send_ctrl_alt_del(struct arch_machine *m);
/* Undo arch_vm_init(). Safe on a partially initialised machine and NULL. */
void arch_vm_release(struct arch_machine *m);

/* Snapshots (base/snap.h). The host facts a restore depends on (x86: the
 * CPU vendor and the feature bits KVM offers), into the caller's section;
 * arch_check_host() refuses, with a sentence in @err, a host that lacks
 * what the snapshot's host had. */
struct snap_w;
struct snap_r;
void arch_save_host(struct arch_machine *m, struct snap_w *w);
int arch_check_host(struct arch_machine *m, struct snap_r *r, char *err, size_t errlen);
/* The platform devices' state, a section each; restore reads them back
 * from the whole state @state/@len into a machine just made by
 * arch_vm_init() (arch_load() is not called on a restore). */
int arch_save(struct arch_machine *m, struct snap_w *w);
int arch_restore(struct arch_machine *m, const uint8_t *state, size_t len, char *err,
                 size_t errlen);

/* Describing a vCPU; each is called on the vCPU's own thread while it is
 * outside the guest. The program counter (x86: RIP). */
int arch_vcpu_pc(struct hv_vcpu *v, uint64_t *pc);
/* For help texts: the kernel files this machine boots, and its default
 * command line with the serial console. */
const char *arch_kernel_formats(void);
const char *arch_default_cmdline(void);
/* Where a crashed vCPU was, as "at RIP 0x..." or why that is unknown. */
const char *arch_vcpu_where(struct hv_vcpu *v, char *buf, size_t len);
/* Its registers as text for a crash report, a few lines ending in '\n';
 * returns the length written (truncated to fit @len). */
size_t arch_vcpu_dump(struct hv_vcpu *v, char *buf, size_t len);

#endif
