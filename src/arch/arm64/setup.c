/* setup.c - the arm64 machine: RAM layout, platform devices (16550A UART
 * and PL031 RTC on MMIO, boot timer), kernel loading (the arm64 Image boot
 * protocol), the device tree and vCPU entry state. Implements arch/arch.h.
 */
#include "arch/arch.h"

#include "arch/arm64/fdt.h"
#include "arch/arm64/image.h"
#include "arch/arm64/layout.h"
#include "host/file.h"
#include "host/kcache.h"
#include "hw/boot_timer.h"
#include "hw/pl031.h"
#include "hw/serial.h"
#include "virtio/virtio_mmio.h"
#include "base/console.h"
#include "base/guest_mem.h"
#include "base/irq.h"
#include "base/snap.h"
#include "hv/hv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The 16550's input clock as the 8250 driver expects it (1.8432 MHz,
 * divisor 1 = 115200 baud); only the divisor the guest computes uses it. */
#define UART_CLOCK_HZ 1843200u
#define CMDLINE_MAX 2048 /* COMMAND_LINE_SIZE on arm64 */

struct arch_machine {
    const struct arch_ctx *ctx;
    const struct arch_boot *boot;
    struct console null_console; /* the UART's when the console is elsewhere */
    bool null_console_ready;
    struct irq_line irq_uart;
    bool irq_ready;
    struct serial serial;
    struct pl031 rtc;
    struct boot_timer boot_timer;
    bool devices_ready;
    uint64_t entry, fdt_addr; /* the boot vCPU's PC and X0 */
};

void arch_vm_config(unsigned ncpus, struct hv_vm_config *cfg)
{
    (void)ncpus; /* KVM sizes the redistributor region by the vCPUs */
    *cfg = (struct hv_vm_config){
        .irqchip = true,
        .irqchip_regs = {ARM64_GIC_DIST, ARM64_GIC_REDIST},
        .irqchip_lines = ARM64_SPI_LINES};
}

int arch_mem_layout(uint64_t mem_bytes, struct guest_mem_region *out, unsigned max)
{
    if (max < 1 || mem_bytes > ARM64_PHYS_LIMIT - ARM64_RAM_BASE)
        return -E2BIG;
    out[0] = (struct guest_mem_region){ARM64_RAM_BASE, mem_bytes, NULL};
    return 1;
}

int arch_vm_init(const struct arch_ctx *ctx, const struct arch_boot *boot,
                 struct arch_machine **out)
{
    if (ctx->ncpus > ARM64_MAX_CPUS)
        return -E2BIG;
    struct arch_machine *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    *out = m;
    m->ctx = ctx;
    m->boot = boot;
    m->irq_uart.fd = -1;
    int r = hv_irq_line_init(ctx->hvm, &m->irq_uart, ARM64_SPI_UART, true);
    if (r < 0)
        return r;
    m->irq_ready = true;
    struct console *con = ctx->console;
    if (boot->console != ARCH_CONSOLE_SERIAL) {
        r = console_init(&m->null_console, -1, -1, false, ctx->loop);
        if (r < 0)
            return r;
        m->null_console_ready = true;
        con = &m->null_console;
    }
    serial_init(&m->serial, con, &m->irq_uart);
    pl031_init(&m->rtc);
    boot_timer_init(&m->boot_timer, boot->boot_timer, ctx->start_wall_us, ctx->start_cpu_us);
    m->devices_ready = true;
    if ((r = bus_register(ctx->mmio, ARM64_UART_BASE, SERIAL_NREGS, &serial_ops, &m->serial,
                          "uart")) < 0 ||
        (r = bus_register(ctx->mmio, ARM64_RTC_BASE, PL031_LEN, &pl031_ops, &m->rtc,
                          "pl031")) < 0 ||
        (r = bus_register(ctx->mmio, ARM64_BOOT_TIMER, BOOT_TIMER_LEN, &boot_timer_ops,
                          &m->boot_timer, "boot-timer")) < 0)
        return r;
    return console_attach(con, serial_rx, &m->serial);
}

int arch_virtio_slot(unsigned index, uint64_t *base, uint32_t *gsi)
{
    if (index >= ARM64_MAX_VIRTIO)
        return -ENOSPC;
    *base = ARM64_VIRTIO_BASE + index * ARM64_VIRTIO_SIZE;
    *gsi = ARM64_SPI_VIRTIO + index;
    return 0;
}

int arch_send_ctrl_alt_del(struct arch_machine *m)
{
    (void)m; /* no keyboard controller on this machine (nor on Firecracker's) */
    return -ENOTSUP;
}

void arch_vm_release(struct arch_machine *m)
{
    if (!m)
        return;
    if (m->devices_ready) {
        serial_release(&m->serial);
        pl031_release(&m->rtc);
    }
    if (m->null_console_ready)
        console_release(&m->null_console);
    if (m->irq_ready)
        hv_irq_line_release(&m->irq_uart);
    free(m);
}

/* Why each default flag:
 *  console=ttyS0  kernel messages and the shell on the 16550 (the device
 *                 tree's stdout-path names it too);
 *  console=hvc0   the virtio console, once its driver has loaded;
 *  panic=1        a panicked guest reboots after a second instead of hanging,
 *                 so arcvm exits rather than leaving a dead VM running;
 *  8250.nr_uarts=1  only the one UART of the device tree. */
static const char default_serial[] = "console=ttyS0 panic=1 8250.nr_uarts=1";

const char *arch_default_cmdline(void)
{
    return default_serial;
}

const char *arch_kernel_formats(void)
{
    return "arm64 Image, or one gzipped or xz'd whole (Image.gz)";
}

static int cmdline_build(const struct arch_boot *b, char *out, size_t len)
{
    const char *def = b->cmdline_replace                  ? ""
                      : b->console == ARCH_CONSOLE_SERIAL ? default_serial
                      : b->console == ARCH_CONSOLE_VIRTIO ? "console=hvc0 panic=1 8250.nr_uarts=1"
                                                          : "panic=1 8250.nr_uarts=1";
    size_t n = (size_t)snprintf(out, len, "%s", def);
    for (unsigned i = 0; n < len && b->mmio_cmdline && i < b->nvirtio; i++) {
        char dev[64];
        if (virtio_mmio_cmdline(dev, sizeof(dev), b->virtio[i].base, b->virtio[i].gsi) < 0)
            return -E2BIG;
        n += (size_t)snprintf(out + n, len - n, "%s%s", n ? " " : "", dev);
    }
    if (n < len && b->cmdline && *b->cmdline)
        n += (size_t)snprintf(out + n, len - n, "%s%s", n ? " " : "", b->cmdline);
    return n < len ? 0 : -E2BIG;
}

/* Copy a file's bytes to guest @gpa, saying what did not fit. */
static int copy_in(struct arch_machine *m, uint64_t gpa, const uint8_t *src, size_t len,
                   const char *what, char *err, size_t errlen)
{
    if (guest_mem_write(m->ctx->mem, gpa, src, len) == 0)
        return 0;
    snprintf(err, errlen, "the %s (%zu KiB at 0x%" PRIx64 ") does not fit in guest memory: "
             "give more --memory", what, len >> 10, gpa);
    return -ENOMEM;
}

/* kcache_usable_fn: an arm64 Image; its header parsed into @arg. */
static int arm64_image(const uint8_t *data, size_t len, void *arg, char *why, size_t whylen)
{
    return arm64_image_parse(data, len, arg, why, whylen) == 0 ? 0 : -1;
}

/* The kernel at its place in RAM; *@end is the first byte after the memory
 * it claims (its BSS included). An Image compressed as a whole with gzip
 * or xz (Image.gz, as Ubuntu's vmlinuz is) is unpacked first, once: later
 * boots take it from the kernel cache (unpacking a 33 MiB Image.gz took
 * 1.9 s of a nested boot, the cached copy 0.5 s). */
static int load_kernel(struct arch_machine *m, uint64_t limit, uint64_t *end, char *err,
                       size_t errlen)
{
    size_t maplen;
    struct stat st;
    uint8_t *map = host_map_file("kernel", m->boot->kernel, &maplen, &st, err, errlen);
    if (!map)
        return -EINVAL;
    const uint8_t *img = map;
    size_t len = maplen;
    struct kcache_kernel kk = {0}; /* the unpacked Image, when it was compressed */
    struct arm64_image k;
    char why[200] = "";
    int r = arm64_image_parse(map, maplen, &k, why, sizeof(why));
    if (r == -ENOEXEC) {
        int u = kcache_unpacked(m->boot->kernel_cache, &st, map, maplen, arm64_image, &k, &kk,
                                why, sizeof(why));
        if (u == 0) {
            img = kk.data;
            len = kk.len;
            r = 0;
        } else if (u != -ENOTSUP && u != -ENOEXEC) {
            r = -EINVAL; /* a corrupt or oversized stream: its reason is in why */
        }
    }
    if (r == -ENOEXEC)
        snprintf(err, errlen, "kernel '%s' is not an arm64 Image (no \"ARM\\x64\" magic at "
                 "0x38): pass an arm64 Linux Image", m->boot->kernel);
    else if (r < 0)
        snprintf(err, errlen, "kernel '%s': %s", m->boot->kernel, why);
    if (r == 0) {
        m->entry = arm64_image_load_addr(&k, ARM64_RAM_BASE);
        *end = m->entry + k.image_size;
        if (*end > limit) {
            uint64_t mib = (*end - (uint64_t)ARM64_RAM_BASE) >> 20;
            snprintf(err, errlen, "the kernel needs %" PRIu64 " MiB of guest memory: give at "
                     "least --memory %" PRIu64 "M", mib, mib + 32);
            r = -ENOMEM;
        } else {
            r = copy_in(m, m->entry, img, len, "kernel", err, errlen);
        }
    } else {
        r = -EINVAL;
    }
    if (kk.data)
        kcache_kernel_free(&kk);
    munmap(map, maplen);
    return r;
}

/* The initrd just below @top, page aligned, above @floor. */
static int load_initrd(struct arch_machine *m, uint64_t floor, uint64_t top, uint64_t *start,
                       uint64_t *end, char *err, size_t errlen)
{
    *start = *end = 0;
    if (!m->boot->initrd)
        return 0;
    size_t len;
    uint8_t *img = host_map_file("initrd", m->boot->initrd, &len, NULL, err, errlen);
    if (!img)
        return -EINVAL;
    int r = 0;
    if (len > top - floor) {
        snprintf(err, errlen, "the initrd (%zu MiB) does not fit in guest memory beside the "
                 "kernel: give more --memory", len >> 20);
        r = -ENOMEM;
    } else {
        *start = (top - len) & ~0xfffull;
        *end = *start + len;
        r = copy_in(m, *start, img, len, "initrd", err, errlen);
    }
    munmap(img, len);
    return r;
}

uint64_t arch_device_mem_base(uint64_t mem_bytes)
{
    uint64_t end = ARM64_RAM_BASE + mem_bytes;
    return (end + ARM64_DEVICE_MEM_ALIGN - 1) & ~(ARM64_DEVICE_MEM_ALIGN - 1);
}

uint64_t arch_memhp_base(uint64_t mem_bytes)
{
    /* arm64 Linux's memory blocks are 128 MiB (4K pages); a 1 GiB boundary
     * serves any block size up to that. */
    return arch_device_mem_base(mem_bytes);
}

int arch_load(struct arch_machine *m, char *err, size_t errlen)
{
    const struct arch_boot *b = m->boot;
    char cmdline[CMDLINE_MAX];
    if (cmdline_build(b, cmdline, sizeof(cmdline)) < 0) {
        snprintf(err, errlen, "kernel command line is too long (limit %d bytes)",
                 CMDLINE_MAX - 1);
        return -E2BIG;
    }
    if (b->cpu_template) {
        snprintf(err, errlen, "CPU templates (--cpu-config, /cpu-config) are x86-64 only in arcvm "
                              "so far; start without one");
        return -ENOTSUP;
    }
    uint64_t ram_end = ARM64_RAM_BASE + b->mem_bytes;
    if (b->mem_bytes < 2 * ARM64_FDT_MAX) {
        snprintf(err, errlen, "give at least --memory 64M");
        return -ENOMEM;
    }
    m->fdt_addr = ram_end - ARM64_FDT_MAX;
    uint64_t kernel_end, initrd_start, initrd_end;
    int r = load_kernel(m, m->fdt_addr, &kernel_end, err, errlen);
    if (r < 0)
        return r;
    r = load_initrd(m, kernel_end, m->fdt_addr, &initrd_start, &initrd_end, err, errlen);
    if (r < 0)
        return r;

    struct arm64_fdt_config fc = {
        .ram_base = ARM64_RAM_BASE, .ram_size = b->mem_bytes, .ncpus = m->ctx->ncpus,
        .gic_dist = ARM64_GIC_DIST, .gic_dist_size = ARM64_GIC_DIST_SIZE,
        .gic_redist = ARM64_GIC_REDIST,
        .gic_redist_size = ARM64_GIC_REDIST_PER_CPU * m->ctx->ncpus,
        .uart = {ARM64_UART_BASE, ARM64_UART_SIZE, ARM64_SPI_UART},
        .uart_clock = UART_CLOCK_HZ,
        .rtc = {ARM64_RTC_BASE, ARM64_RTC_SIZE, ARM64_SPI_RTC},
        .stdout_uart = b->console == ARCH_CONSOLE_SERIAL,
        .bootargs = cmdline, .initrd_start = initrd_start, .initrd_end = initrd_end,
        .nvirtio = b->nvirtio};
    for (unsigned i = 0; i < b->nvirtio && i < ARM64_FDT_MAX_VIRTIO; i++)
        fc.virtio[i] = (struct arm64_fdt_dev){b->virtio[i].base, ARM64_VIRTIO_SIZE,
                                              b->virtio[i].gsi};
    void *fdt = guest_mem_ptr(m->ctx->mem, m->fdt_addr, ARM64_FDT_MAX);
    long n = fdt ? arm64_fdt_build(fdt, ARM64_FDT_MAX, &fc) : -EFAULT;
    if (n < 0) {
        snprintf(err, errlen, "building the device tree failed: %s", strerror((int)-n));
        return (int)n;
    }
    return 0;
}

int arch_vcpu_init(struct arch_machine *m, struct hv_vcpu *v, unsigned id, char *err,
                   size_t errlen)
{
    /* The device tree names each CPU by the MPIDR KVM gives it; check. */
    uint64_t mpidr;
    int r = hv_arm64_vcpu_mpidr(v, &mpidr);
    if (r < 0) {
        snprintf(err, errlen, "vCPU %u: reading its MPIDR failed: %s", id, strerror(-r));
        return r;
    }
    if ((mpidr & 0xffffff) != arm64_vcpu_mpidr(id)) {
        snprintf(err, errlen, "vCPU %u: KVM gave MPIDR %#llx, the device tree says %#llx", id,
                 (unsigned long long)(mpidr & 0xffffff),
                 (unsigned long long)arm64_vcpu_mpidr(id));
        return -EPROTO;
    }
    /* The others wait, powered off, for the guest's PSCI CPU_ON. */
    return id == 0 ? hv_arm64_vcpu_set_boot(v, m->entry, m->fdt_addr) : 0;
}

/* ---- snapshots ----
 * The vCPUs and the vGIC are the hypervisor's (hv_vcpu_save, hv_vm_save);
 * the machine's own devices are the UART and the RTC (the boot timer has
 * no state beyond its configuration). */

void arch_save_host(struct arch_machine *m, struct snap_w *w)
{
    /* Nothing beyond architecture and page size (the "host" section's
     * common part): the vCPU's ID registers travel with its registers, and
     * KVM refuses, at restore, values this host's CPU cannot give. */
    (void)m;
    (void)w;
}

int arch_check_host(struct arch_machine *m, struct snap_r *r, char *err, size_t errlen)
{
    (void)m;
    if (snap_r_done(r) < 0) {
        snprintf(err, errlen, "the snapshot's host description is malformed");
        return -EPROTO;
    }
    return 0;
}

int arch_save(struct arch_machine *m, struct snap_w *w)
{
    snap_begin(w, "arm64.serial");
    serial_save(&m->serial, w);
    snap_end(w);
    snap_begin(w, "arm64.rtc");
    pl031_save(&m->rtc, w);
    snap_end(w);
    return w->err;
}

int arch_restore(struct arch_machine *m, const uint8_t *state, size_t len, char *err,
                 size_t errlen)
{
    static const char *const names[2] = {"arm64.serial", "arm64.rtc"};
    struct snap_r r[2];
    for (unsigned i = 0; i < 2; i++)
        if (snap_find(state, len, names[i], &r[i]) < 0) {
            snprintf(err, errlen, "the snapshot has no %s state", names[i]);
            return -EPROTO;
        }
    int res[2] = {serial_load(&m->serial, &r[0]), pl031_load(&m->rtc, &r[1])};
    for (unsigned i = 0; i < 2; i++)
        if (res[i] < 0) {
            snprintf(err, errlen, "the snapshot's %s state is malformed", names[i]);
            return res[i];
        }
    return 0;
}

/* ---- describing a vCPU ---- */

int arch_vcpu_pc(struct hv_vcpu *v, uint64_t *pc)
{
    struct hv_arm64_regs r;
    int e = hv_arm64_vcpu_get_regs(v, &r);
    if (e == 0)
        *pc = r.pc;
    return e;
}

const char *arch_vcpu_where(struct hv_vcpu *v, char *buf, size_t len)
{
    struct hv_arm64_regs r;
    if (hv_arm64_vcpu_get_regs(v, &r) < 0)
        snprintf(buf, len, "(PC unknown: registers unreadable)");
    else
        snprintf(buf, len, "at PC 0x%" PRIx64, r.pc);
    return buf;
}

size_t arch_vcpu_dump(struct hv_vcpu *v, char *buf, size_t len)
{
    struct hv_arm64_regs r;
    if (hv_arm64_vcpu_get_regs(v, &r) < 0)
        return (size_t)snprintf(buf, len, "registers unreadable\n");
    size_t n = (size_t)snprintf(buf, len, "PC=%016" PRIx64 " SP=%016" PRIx64 " PSTATE=%08" PRIx64
                                "\n", r.pc, r.sp, r.pstate);
    for (unsigned i = 0; i < 31 && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "X%-2u=%016" PRIx64 "%s", i, r.x[i],
                              i % 4 == 3 || i == 30 ? "\n" : " ");
    return n < len ? n : len;
}
