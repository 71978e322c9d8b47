/* setup.c - the x86-64 machine: RAM layout, legacy devices, kernel loading
 * (bzImage, PVH vmlinux, or plain ELF at its 64-bit entry), firmware tables
 * and vCPU entry state. Implements arch/arch.h.
 */
#include "arch/arch.h"

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "arch/x86/cpu.h"
#include "arch/x86/layout.h"
#include "arch/x86/pvh.h"
#include "host/file.h"
#include "host/kcache.h"
#include "hw/boot_timer.h"
#include "hw/hw.h"
#include "hw/i8042.h"
#include "hw/pm.h"
#include "hw/rtc.h"
#include "hw/serial.h"
#include "hw/vmgenid.h"
#include "virtio/virtio_mmio.h"
#include "base/console.h"
#include "base/irq.h"
#include "base/log.h"
#include "base/snap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct arch_machine {
    const struct arch_ctx *ctx;   /* the VM's pieces (owned by the VMM) */
    const struct arch_boot *boot; /* how to boot (owned by the VMM) */
    struct hw_machine machine;
    struct console null_console; /* the UART's when the console is elsewhere */
    bool null_console_ready;
    struct irq_line irq_com1, irq_kbd;
    bool irqs_ready;
    struct serial serial;
    struct i8042 kbd;
    struct rtc rtc;
    struct pm pm;
    struct boot_timer boot_timer;
    bool devices_ready;
    /* The VM generation ID and the GED's line that announces a new one
     * (hw/vmgenid.h). The line has no irqfd: nothing to release. */
    struct irq_line irq_ged;
    struct vmgenid vmgenid;

    struct hv_x86_cpuid cpuid[X86_CPUID_MAX];
    unsigned ncpuid;

    /* Entry point of the boot vCPU. */
    bool pvh;
    uint64_t entry;
    uint64_t boot_info; /* zero page or hvm_start_info */
};

void arch_vm_config(unsigned ncpus, struct hv_vm_config *cfg)
{
    (void)ncpus;
    *cfg = (struct hv_vm_config){.irqchip = true, .timer = true};
}

int arch_mem_layout(uint64_t mem_bytes, struct guest_mem_region *out, unsigned max)
{
    uint64_t gpa[2], size[2];
    unsigned n = x86_ram_layout(mem_bytes, gpa, size);
    if (n > max)
        return -E2BIG;
    for (unsigned i = 0; i < n; i++)
        out[i] = (struct guest_mem_region){gpa[i], size[i], NULL};
    return (int)n;
}

uint64_t arch_device_mem_base(uint64_t mem_bytes)
{
    uint64_t gpa[2], size[2], end = X86_HIGH_RAM_START;
    unsigned n = x86_ram_layout(mem_bytes, gpa, size);
    for (unsigned i = 0; i < n; i++)
        if (gpa[i] + size[i] > end)
            end = gpa[i] + size[i];
    return (end + X86_DEVICE_MEM_ALIGN - 1) & ~(X86_DEVICE_MEM_ALIGN - 1);
}

uint64_t arch_memhp_base(uint64_t mem_bytes)
{
    /* On a boundary of Linux's largest x86 memory block (2 GiB, used from
     * 64 GiB of RAM up; 128 MiB below), so that every block of the region
     * can be added to Linux whatever block size it picked. */
    return (arch_device_mem_base(mem_bytes) + X86_MEMHP_ALIGN - 1) & ~(X86_MEMHP_ALIGN - 1);
}


/* Port 0x80 (POST codes, also Linux's I/O delay) and friends: accept and
 * ignore, without an "unclaimed" message per access. */
static void nop_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)dev;
    (void)off;
    memset(data, 0xff, len);
}

static void nop_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
    (void)dev;
    (void)off;
    (void)data;
    (void)len;
}

static const struct bus_ops nop_ops = {.read = nop_read, .write = nop_write};

int arch_vm_init(const struct arch_ctx *ctx, const struct arch_boot *boot,
                 struct arch_machine **out)
{
    struct arch_machine *m = calloc(1, sizeof(*m)), *a = m;
    if (!a)
        return -ENOMEM;
    *out = m;
    m->ctx = ctx;
    m->boot = boot;
    a->irq_com1.fd = a->irq_kbd.fd = -1;
    int r = hv_x86_supported_cpuid(m->ctx->hv, a->cpuid, X86_CPUID_MAX);
    if (r < 0)
        return r;
    a->ncpuid = (unsigned)r;

    /* The devices' power-off and reset requests go straight to the VMM. */
    a->machine = ctx->stop;
    r = hv_irq_line_init(m->ctx->hvm, &a->irq_com1, X86_IRQ_COM1, true);
    if (r < 0)
        return r;
    r = hv_irq_line_init(m->ctx->hvm, &a->irq_kbd, X86_IRQ_KBD, true);
    if (r < 0) {
        hv_irq_line_release(&a->irq_com1);
        return r;
    }
    a->irqs_ready = true;
    /* Driven through the interrupt controller, not an irqfd: it fires once
     * per restore, from the restoring thread, and the edge has reached the
     * IOAPIC when the ioctl returns. */
    r = hv_irq_line_init(m->ctx->hvm, &a->irq_ged, X86_IRQ_GED, false);
    if (r < 0)
        return r;
    vmgenid_init(&a->vmgenid, m->ctx->mem, X86_VMGENID_ADDR, &a->irq_ged);
    struct console *com1_con = m->ctx->console;
    if (m->boot->console != ARCH_CONSOLE_SERIAL) {
        r = console_init(&a->null_console, -1, -1, false, m->ctx->loop);
        if (r < 0)
            return r;
        a->null_console_ready = true;
        com1_con = &a->null_console;
    }
    serial_init(&a->serial, com1_con, &a->irq_com1);
    i8042_init(&a->kbd, &a->machine, &a->irq_kbd);
    rtc_init(&a->rtc);
    pm_init(&a->pm, &a->machine);
    boot_timer_init(&a->boot_timer, m->boot->boot_timer, m->ctx->start_wall_us, m->ctx->start_cpu_us);
    a->devices_ready = true;

    struct {
        struct bus *bus;
        uint64_t base, len;
        const struct bus_ops *ops;
        void *dev;
        const char *name;
    } devs[] = {
        {m->ctx->pio, X86_COM1_PORT, X86_COM1_LEN, &serial_ops, &a->serial, "com1"},
        {m->ctx->pio, I8042_PORT_BASE, I8042_PORT_LEN, &i8042_ops, &a->kbd, "i8042"},
        {m->ctx->pio, RTC_PORT_BASE, RTC_PORT_LEN, &rtc_ops, &a->rtc, "rtc"},
        {m->ctx->pio, PM_PORT_BASE, PM_PORT_LEN, &pm_ops, &a->pm, "acpi-pm"},
        {m->ctx->pio, X86_POST_PORT, 1, &nop_ops, NULL, "post"},
        {m->ctx->mmio, BOOT_TIMER_ADDR, BOOT_TIMER_LEN, &boot_timer_ops, &a->boot_timer,
         "boot-timer"},
    };
    for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
        r = bus_register(devs[i].bus, devs[i].base, devs[i].len, devs[i].ops, devs[i].dev,
                         devs[i].name);
        if (r < 0)
            return r;
    }
    return console_attach(com1_con, serial_rx, &a->serial);
}

/* Virtio-mmio windows: one 4 KiB page each from X86_VIRTIO_MMIO_BASE.
 * Interrupts: the ISA lines no PC device of ours uses, then the IOAPIC's
 * upper pins. Edge-triggered and never shared. */
static const uint8_t virtio_gsis[] = {5, 6, 7, 9, 10, 11, 12, 13, 14, 15,
                                      16, 17, 18, 19, 20, 21, 22, 23};

int arch_virtio_slot(unsigned index, uint64_t *base, uint32_t *gsi)
{
    if (index >= sizeof(virtio_gsis))
        return -ENOSPC;
    *base = X86_VIRTIO_MMIO_BASE + index * X86_VIRTIO_MMIO_SIZE;
    *gsi = virtio_gsis[index];
    return 0;
}

int arch_send_ctrl_alt_del(struct arch_machine *m)
{
    return m ? i8042_send_ctrl_alt_del(&m->kbd) : -EINVAL;
}

void arch_vm_release(struct arch_machine *m)
{
    struct arch_machine *a = m;
    if (!a)
        return;
    if (a->devices_ready) {
        serial_release(&a->serial);
        i8042_release(&a->kbd);
        rtc_release(&a->rtc);
    }
    if (a->null_console_ready)
        console_release(&a->null_console);
    if (a->irqs_ready) {
        hv_irq_line_release(&a->irq_com1);
        hv_irq_line_release(&a->irq_kbd);
    }
    free(a);
}

static uint64_t low_ram_end(const struct arch_machine *m)
{
    return m->ctx->mem->r[0].size;
}

/* Copy @len bytes to guest @gpa, naming @what in the error. */
static int put_guest(struct arch_machine *m, uint64_t gpa, const void *src, uint64_t len, const char *what,
                     char *err, size_t errlen)
{
    if (guest_mem_write(m->ctx->mem, gpa, src, len) < 0) {
        snprintf(err, errlen,
                 "%s (%llu KiB at 0x%llx) does not fit in guest memory: give more --memory",
                 what, (unsigned long long)(len >> 10), (unsigned long long)gpa);
        return -ENOMEM;
    }
    return 0;
}

/* Load the initrd at the top of low RAM under @max_end (exclusive),
 * above @floor. */
static int load_initrd(struct arch_machine *m, uint64_t floor, uint64_t max_end, uint64_t *gpa,
                       uint64_t *size, char *err, size_t errlen)
{
    *gpa = *size = 0;
    if (!m->boot->initrd)
        return 0;
    size_t len;
    uint8_t *img = host_map_file("initrd", m->boot->initrd, &len, NULL, err, errlen);
    if (!img)
        return -EINVAL;
    uint64_t limit = low_ram_end(m) < max_end ? low_ram_end(m) : max_end;
    uint64_t at = x86_initrd_addr(len, floor, limit);
    int r = 0;
    if (!at) {
        snprintf(err, errlen,
                 "initrd (%zu MiB) does not fit in guest memory above the kernel: give more "
                 "--memory",
                 len >> 20);
        r = -ENOMEM;
    } else {
        r = put_guest(m, at, img, len, "initrd", err, errlen);
    }
    munmap(img, len);
    *gpa = at;
    *size = len;
    return r;
}

static int build_acpi(struct arch_machine *m, uint64_t *rsdp, char *err, size_t errlen)
{
    struct acpi_config ac = {
        .ncpus = m->ctx->ncpus,
        .com1_port = X86_COM1_PORT,
        .com1_irq = X86_IRQ_COM1,
        .pm_port = PM_PORT_BASE,
        .pm_reset_value = PM_RESET_VALUE,
        .s5_type = PM_S5_TYPE,
        .rtc_century = RTC_REG_CENTURY,
        .rtc_port = RTC_PORT_BASE,
        .kbd_port = I8042_PORT_BASE,
        .kbd_irq = X86_IRQ_KBD,
        .nmmio = m->boot->nvirtio,
        .vmgenid_addr = X86_VMGENID_ADDR,
        .ged_gsi = X86_IRQ_GED,
    };
    for (unsigned i = 0; i < m->boot->nvirtio && i < ACPI_MAX_MMIO_DEVS; i++)
        ac.mmio[i] = (struct acpi_mmio_dev){m->boot->virtio[i].base, X86_VIRTIO_MMIO_SIZE,
                                            m->boot->virtio[i].gsi};
    uint8_t *tables = guest_mem_ptr(m->ctx->mem, X86_ACPI_ADDR, X86_ACPI_MAX);
    long n = tables ? acpi_build(tables, X86_ACPI_MAX, X86_ACPI_ADDR, &ac) : -ENOSPC;
    if (n < 0) {
        snprintf(err, errlen, "building ACPI tables failed: %s", strerror((int)-n));
        return (int)n;
    }
    /* The ID the VGEN device's ADDR names: a new one for every boot. */
    int r = vmgenid_new(&m->vmgenid);
    if (r < 0) {
        snprintf(err, errlen, "writing the VM generation ID failed: %s", strerror(-r));
        return r;
    }
    *rsdp = X86_ACPI_ADDR;
    return 0;
}

/* Identity page tables and the GDT, used by both entry paths. */
static int write_boot_structures(struct arch_machine *m, char *err, size_t errlen)
{
    uint64_t gdt[X86_GDT_ENTRIES];
    x86_gdt_build(gdt);
    int r = put_guest(m, X86_GDT_ADDR, gdt, sizeof(gdt), "GDT", err, errlen);
    if (r < 0)
        return r;
    uint8_t *pt = guest_mem_ptr(m->ctx->mem, X86_PML4_ADDR, X86_PT_PAGES * 4096);
    if (!pt)
        return put_guest(m, X86_PML4_ADDR, "", X86_PT_PAGES * 4096, "page tables", err, errlen);
    x86_page_tables_build(pt, X86_PML4_ADDR);
    return 0;
}

static int load_bzimage(struct arch_machine *m, const uint8_t *img, size_t len, const struct bzimage *bz,
                        const char *cmdline, uint64_t rsdp, char *err, size_t errlen)
{
    struct arch_machine *a = m;
    uint64_t end = bz->load_addr + bz->init_size;
    if (end > low_ram_end(m)) {
        snprintf(err, errlen,
                 "the kernel needs %llu MiB of guest memory to unpack itself: give at least "
                 "--memory %lluM",
                 (unsigned long long)(end >> 20), (unsigned long long)((end >> 20) + 32));
        return -ENOMEM;
    }
    if (strlen(cmdline) > bz->cmdline_size) {
        snprintf(err, errlen, "kernel command line is longer than this kernel accepts (%u bytes)",
                 bz->cmdline_size);
        return -E2BIG;
    }
    int r = put_guest(m, bz->load_addr, img + bz->kernel_offset, bz->kernel_size, "kernel", err,
                      errlen);
    if (r < 0)
        return r;
    uint64_t initrd, initrd_size;
    uint64_t max_end = (uint64_t)bz->initrd_addr_max + 1;
    r = load_initrd(m, end, max_end, &initrd, &initrd_size, err, errlen);
    if (r < 0)
        return r;
    struct e820_entry e820[E820_MAX];
    unsigned n = x86_e820_build(m->boot->mem_bytes, e820, E820_MAX);
    uint8_t *zp = guest_mem_ptr(m->ctx->mem, X86_ZERO_PAGE_ADDR, 4096);
    if (!zp)
        return -EFAULT;
    x86_zero_page_fill(zp, img, X86_CMDLINE_ADDR, initrd, initrd_size, e820, n, rsdp);
    a->pvh = false;
    a->entry = bz->load_addr + 0x200; /* the 64-bit entry: startup_64 */
    a->boot_info = X86_ZERO_PAGE_ADDR;
    return 0;
}

static int load_elf_segments(struct arch_machine *m, const uint8_t *img, const struct elf_kernel *k,
                             uint64_t *end, char *err, size_t errlen)
{
    *end = 0;
    for (unsigned i = 0; i < k->nseg; i++) {
        const struct elf_segment *s = &k->seg[i];
        uint8_t *dst = guest_mem_ptr(m->ctx->mem, s->paddr, s->memsz);
        if (!dst || s->paddr < X86_HIMEM_START) {
            snprintf(err, errlen,
                     "kernel segment at 0x%llx (%llu KiB) is outside guest RAM: give more "
                     "--memory",
                     (unsigned long long)s->paddr, (unsigned long long)(s->memsz >> 10));
            return -ENOMEM;
        }
        memcpy(dst, img + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
        if (s->paddr + s->memsz > *end)
            *end = s->paddr + s->memsz;
    }
    return 0;
}

static int load_elf(struct arch_machine *m, const uint8_t *img, const struct elf_kernel *k,
                    uint64_t rsdp, char *err, size_t errlen)
{
    struct arch_machine *a = m;
    uint64_t end;
    int r = load_elf_segments(m, img, k, &end, err, errlen);
    if (r < 0)
        return r;
    uint64_t initrd, initrd_size;
    /* Linux's initrd limit for 64-bit kernels without a header to ask. */
    r = load_initrd(m, end, 0x80000000ull, &initrd, &initrd_size, err, errlen);
    if (r < 0)
        return r;
    struct e820_entry e820[E820_MAX];
    unsigned n = x86_e820_build(m->boot->mem_bytes, e820, E820_MAX);
    if (!k->has_pvh) {
        uint8_t *zp = guest_mem_ptr(m->ctx->mem, X86_ZERO_PAGE_ADDR, 4096);
        if (!zp)
            return -EFAULT;
        x86_zero_page_fill_bare(zp, X86_CMDLINE_ADDR, initrd, initrd_size, e820, n, rsdp);
        a->pvh = false;
        a->entry = k->entry;
        a->boot_info = X86_ZERO_PAGE_ADDR;
        return 0;
    }
    struct hvm_start_info si = {
        .magic = HVM_START_MAGIC,
        .version = 1,
        .cmdline_paddr = X86_CMDLINE_ADDR,
        .rsdp_paddr = rsdp,
        .memmap_paddr = X86_PVH_MEMMAP_ADDR,
        .memmap_entries = n,
    };
    if (initrd_size) {
        struct hvm_modlist_entry mod = {.paddr = initrd, .size = initrd_size};
        si.nr_modules = 1;
        si.modlist_paddr = X86_PVH_MODLIST_ADDR;
        r = put_guest(m, X86_PVH_MODLIST_ADDR, &mod, sizeof(mod), "PVH module list", err,
                      errlen);
        if (r < 0)
            return r;
    }
    struct hvm_memmap_table_entry mm[E820_MAX];
    for (unsigned i = 0; i < n; i++)
        mm[i] = (struct hvm_memmap_table_entry){e820[i].addr, e820[i].size, e820[i].type, 0};
    _Static_assert(X86_PVH_MEMMAP_ADDR + E820_MAX * sizeof(struct hvm_memmap_table_entry) <=
                       X86_ZERO_PAGE_ADDR,
                   "PVH memory map overlaps the zero page");
    r = put_guest(m, X86_PVH_MEMMAP_ADDR, mm, n * sizeof(mm[0]), "PVH memory map", err, errlen);
    if (r < 0)
        return r;
    r = put_guest(m, X86_PVH_INFO_ADDR, &si, sizeof(si), "PVH start info", err, errlen);
    if (r < 0)
        return r;
    a->pvh = true;
    a->entry = k->pvh_entry;
    a->boot_info = X86_PVH_INFO_ADDR;
    return 0;
}

/* kcache_usable_fn: an ELF kernel with a PVH entry; parsed into @arg. */
static int pvh_elf(const uint8_t *data, size_t len, void *arg, char *why, size_t whylen)
{
    struct elf_kernel *k = arg;
    if (x86_elf_parse(data, len, k, why, whylen) < 0)
        return -1;
    if (!k->has_pvh) {
        snprintf(why, whylen, "an ELF without a PVH entry (CONFIG_PVH)");
        return -1;
    }
    return 0;
}

/* Boot the kernel inside bzImage @img without its decompressor: unpacked
 * on the host once, kept in the kernel cache, entered through its PVH
 * note. The guest skips unpacking itself, most of a microVM's boot under
 * emulation and a good part of it on hardware. 0 when booted that way;
 * -1 when not possible (no cache, unknown compression, no PVH entry, ...):
 * the caller boots the bzImage as it is. Nothing here fails a boot. */
static int load_unpacked(struct arch_machine *m, const uint8_t *img, const struct bzimage *bz,
                         const struct stat *st, uint64_t rsdp)
{
    const char *dir = m->boot->kernel_cache;
    if (!dir || !*dir || !bz->payload_length)
        return -1;
    struct kcache_kernel kk;
    struct elf_kernel k;
    char why[256] = "";
    int r = kcache_unpacked(dir, st, img + bz->payload_offset, bz->payload_length, pvh_elf, &k,
                            &kk, why, sizeof(why));
    if (r < 0) {
        log_debug("kernel not unpacked on the host (%s): booting the bzImage",
                  r == -ENOTSUP ? "compression other than xz or gzip" : why);
        return -1;
    }
    char err[256];
    r = load_elf(m, kk.data, &k, rsdp, err, sizeof(err));
    kcache_kernel_free(&kk);
    if (r < 0) {
        log_debug("booting the unpacked kernel failed (%s): booting the bzImage", err);
        return -1;
    }
    return 0;
}

const char *arch_default_cmdline(void)
{
    return x86_default_cmdline(X86_CONSOLE_SERIAL);
}

const char *arch_kernel_formats(void)
{
    return "bzImage or ELF vmlinux (PVH)";
}

int arch_load(struct arch_machine *m, char *err, size_t errlen)
{
    /* Once, into the CPUID every vCPU starts from (and a snapshot records
     * as this host's: the guest saw the templated bits). */
    if (x86_cpuid_apply_template(m->cpuid, m->ncpuid, m->boot->cpu_template, err, errlen) < 0)
        return -EINVAL;
    char cmdline[X86_CMDLINE_MAX];
    enum x86_console con = m->boot->console == ARCH_CONSOLE_SERIAL   ? X86_CONSOLE_SERIAL
                           : m->boot->console == ARCH_CONSOLE_VIRTIO ? X86_CONSOLE_VIRTIO
                                                               : X86_CONSOLE_NONE;
    int r = x86_cmdline_build(cmdline, sizeof(cmdline), con, NULL, m->boot->cmdline_replace);
    /* For kernels with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES (off in Debian's,
     * which find the devices in the DSDT instead). */
    for (unsigned i = 0; r == 0 && m->boot->mmio_cmdline && i < m->boot->nvirtio; i++) {
        char dev[64];
        r = virtio_mmio_cmdline(dev, sizeof(dev), m->boot->virtio[i].base, m->boot->virtio[i].gsi);
        if (r == 0)
            r = x86_cmdline_append(cmdline, sizeof(cmdline), dev);
    }
    if (r == 0 && m->boot->cmdline && *m->boot->cmdline)
        r = x86_cmdline_append(cmdline, sizeof(cmdline), m->boot->cmdline);
    if (r < 0) {
        snprintf(err, errlen, "kernel command line is too long (limit %d bytes)",
                 X86_CMDLINE_MAX - 1);
        return r;
    }
    r = put_guest(m, X86_CMDLINE_ADDR, cmdline, strlen(cmdline) + 1, "command line", err,
                  errlen);
    if (r < 0)
        return r;
    r = write_boot_structures(m, err, errlen);
    if (r < 0)
        return r;
    uint64_t rsdp;
    r = build_acpi(m, &rsdp, err, errlen);
    if (r < 0)
        return r;

    size_t len;
    struct stat st;
    uint8_t *img = host_map_file("kernel", m->boot->kernel, &len, &st, err, errlen);
    if (!img)
        return -EINVAL;
    struct bzimage bz;
    struct elf_kernel elf;
    char why[200] = "";
    r = x86_bzimage_parse(img, len, &bz, why, sizeof(why));
    if (r == 0 && load_unpacked(m, img, &bz, &st, rsdp) == 0) {
        r = 0;
    } else if (r == 0) {
        r = load_bzimage(m, img, len, &bz, cmdline, rsdp, err, errlen);
    } else if (r == -ENOEXEC) {
        r = x86_elf_parse(img, len, &elf, why, sizeof(why));
        if (r == 0)
            r = load_elf(m, img, &elf, rsdp, err, errlen);
        else if (r == -ENOEXEC)
            snprintf(err, errlen,
                     "kernel '%s' is neither a bzImage nor an ELF vmlinux: pass a Linux kernel "
                     "image",
                     m->boot->kernel);
        else
            snprintf(err, errlen, "kernel '%s': %s", m->boot->kernel, why);
        if (r == -ENOEXEC)
            r = -EINVAL;
    } else {
        snprintf(err, errlen, "kernel '%s': %s", m->boot->kernel, why);
    }
    munmap(img, len);
    return r;
}

int arch_vcpu_init(struct arch_machine *m, struct hv_vcpu *v, unsigned id, char *err,
                   size_t errlen)
{
    struct arch_machine *a = m;
    bool deadline = hv_caps(m->ctx->hv)->features & HV_FEAT_TSC_DEADLINE;
    int r = x86_vcpu_init(v, id, m->ctx->ncpus, a->cpuid, a->ncpuid, deadline,
                          m->boot->cpu_template, err, errlen);
    if (r < 0 || id != 0)
        return r; /* application processors wait for INIT/SIPI from the BSP */
    r = a->pvh ? x86_vcpu_boot_pvh(v, (uint32_t)a->entry, (uint32_t)a->boot_info)
               : x86_vcpu_boot_linux64(v, a->entry, a->boot_info);
    if (r < 0)
        snprintf(err, errlen, "KVM refused the boot vCPU's entry state: %s", strerror(-r));
    return r;
}

/* ---- snapshots ---- */

/* CPUID leaves whose feature bits the guest may have used; a host that
 * lacks one the snapshot's host had cannot run the guest. */
static const struct {
    uint32_t leaf;
    const char *name;
    uint8_t regs; /* which of ebx (1), ecx (2), edx (4) hold feature bits:
                   * leaf 1's ebx holds the APIC ID of the CPU that asked */
} feature_leaves[] = {{1, "1", 6}, {7, "7.0", 7}, {0x80000001u, "0x80000001", 6}};

static const struct hv_x86_cpuid *find_leaf(const struct arch_machine *m, uint32_t leaf)
{
    for (unsigned i = 0; i < m->ncpuid; i++)
        if (m->cpuid[i].function == leaf && m->cpuid[i].index == 0)
            return &m->cpuid[i];
    return NULL;
}

void arch_save_host(struct arch_machine *m, struct snap_w *w)
{
    static const struct hv_x86_cpuid none;
    const struct hv_x86_cpuid *v = find_leaf(m, 0);
    v = v ? v : &none;
    snap_put_u32(w, v->ebx); /* "GenuineIntel" / "AuthenticAMD" */
    snap_put_u32(w, v->edx);
    snap_put_u32(w, v->ecx);
    for (size_t i = 0; i < sizeof(feature_leaves) / sizeof(feature_leaves[0]); i++) {
        const struct hv_x86_cpuid *l = find_leaf(m, feature_leaves[i].leaf);
        l = l ? l : &none;
        snap_put_u32(w, l->ebx);
        snap_put_u32(w, l->ecx);
        snap_put_u32(w, l->edx);
    }
}

int arch_check_host(struct arch_machine *m, struct snap_r *r, char *err, size_t errlen)
{
    static const struct hv_x86_cpuid none;
    const struct hv_x86_cpuid *v = find_leaf(m, 0);
    v = v ? v : &none;
    char saved[13] = {0}, here[13] = {0};
    uint32_t sv[3] = {snap_get_u32(r), snap_get_u32(r), snap_get_u32(r)};
    uint32_t hv[3] = {v->ebx, v->edx, v->ecx};
    memcpy(saved, sv, 12);
    memcpy(here, hv, 12);
    for (size_t i = 0; i < sizeof(feature_leaves) / sizeof(feature_leaves[0]); i++) {
        const struct hv_x86_cpuid *l = find_leaf(m, feature_leaves[i].leaf);
        l = l ? l : &none;
        uint32_t want[3] = {snap_get_u32(r), snap_get_u32(r), snap_get_u32(r)};
        uint32_t have[3] = {l->ebx, l->ecx, l->edx};
        static const char *const regs[3] = {"ebx", "ecx", "edx"};
        for (unsigned k = 0; k < 3 && !r->err; k++)
            if ((feature_leaves[i].regs & (1u << k)) && (want[k] & ~have[k])) {
                snprintf(err, errlen,
                         "the snapshot was taken on a host whose CPU has features this one lacks "
                         "(CPUID leaf %s %s bits 0x%x): restore it on a host of the same kind",
                         feature_leaves[i].name, regs[k], want[k] & ~have[k]);
                return -ENOTSUP;
            }
    }
    if (snap_r_done(r) < 0) {
        snprintf(err, errlen, "the snapshot's host description is malformed");
        return -EPROTO;
    }
    if (memcmp(sv, hv, 12)) {
        snprintf(err, errlen, "the snapshot was taken on a %s CPU, this host has a %s CPU",
                 saved, here);
        return -ENOTSUP;
    }
    return 0;
}

int arch_save(struct arch_machine *m, struct snap_w *w)
{
    snap_begin(w, "x86.serial");
    serial_save(&m->serial, w);
    snap_end(w);
    snap_begin(w, "x86.i8042");
    i8042_save(&m->kbd, w);
    snap_end(w);
    snap_begin(w, "x86.rtc");
    rtc_save(&m->rtc, w);
    snap_end(w);
    snap_begin(w, "x86.pm");
    pm_save(&m->pm, w);
    snap_end(w);
    snap_begin(w, "x86.vmgenid");
    vmgenid_save(&m->vmgenid, w);
    snap_end(w);
    return w->err;
}

int arch_restore(struct arch_machine *m, const uint8_t *state, size_t len, char *err,
                 size_t errlen)
{
    struct snap_r r[4];
    static const char *const names[4] = {"x86.serial", "x86.i8042", "x86.rtc", "x86.pm"};
    for (unsigned i = 0; i < 4; i++)
        if (snap_find(state, len, names[i], &r[i]) < 0) {
            snprintf(err, errlen, "the snapshot has no %s state", names[i]);
            return -EPROTO;
        }
    int res[4] = {serial_load(&m->serial, &r[0]), i8042_load(&m->kbd, &r[1]),
                  rtc_load(&m->rtc, &r[2]), pm_load(&m->pm, &r[3])};
    for (unsigned i = 0; i < 4; i++)
        if (res[i] < 0) {
            snprintf(err, errlen, "the snapshot's %s state is malformed", names[i]);
            return res[i];
        }

    /* A restored guest may run beside the VM it was saved from, or be
     * restored again: give it a new generation ID and tell it. No vCPU runs
     * yet, but the interrupt controllers hold the snapshot's state, so the
     * edge reaches the guest's local APIC and waits there. A snapshot
     * without the section comes from an arcvm whose guests had no VGEN
     * device: nothing to renew. */
    struct snap_r gen;
    if (snap_find(state, len, "x86.vmgenid", &gen) < 0) {
        log_info("the snapshot's guest has no VM generation ID device; not renewing it");
        return 0;
    }
    int ret = vmgenid_load(&m->vmgenid, &gen);
    if (ret < 0) {
        snprintf(err, errlen, "the snapshot's x86.vmgenid state is malformed or names another "
                 "address or interrupt than this arcvm's");
        return ret;
    }
    if ((ret = vmgenid_new(&m->vmgenid)) < 0) {
        snprintf(err, errlen, "writing a new VM generation ID failed: %s", strerror(-ret));
        return ret;
    }
    vmgenid_notify(&m->vmgenid);
    return 0;
}
