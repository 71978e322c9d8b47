/* boot.c - Linux/x86 boot protocol pieces; see boot.h.
 * Offsets and flags: Documentation/arch/x86/boot.rst and zero-page.rst. */
#include "arch/x86/boot.h"

#include "arch/x86/layout.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define HDR_MAGIC 0x53726448u /* "HdrS" at 0x202 */
#define MIN_PROTOCOL 0x020c   /* 2.12: xloadflags and the 64-bit entry */
#define LOADER_UNDEFINED 0xff /* type_of_loader for loaders without an ID */

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

int x86_bzimage_parse(const uint8_t *img, size_t len, struct bzimage *bz, char *err,
                      size_t errlen)
{
    memset(bz, 0, sizeof(*bz));
    /* The header we read ends with init_size at 0x260..0x264. */
    if (len < 0x264 || rd32(img + 0x202) != HDR_MAGIC || rd16(img + 0x1fe) != 0xaa55)
        return -ENOEXEC;
    bz->version = rd16(img + 0x206);
    if (bz->version < MIN_PROTOCOL) {
        snprintf(err, errlen,
                 "kernel uses boot protocol %u.%02u; arcvm needs 2.12 or later (Linux >= 3.8)",
                 bz->version >> 8, bz->version & 0xff);
        return -EINVAL;
    }
    uint16_t xlf = rd16(img + 0x236);
    if (!(xlf & XLF_KERNEL_64)) {
        snprintf(err, errlen,
                 "kernel has no 64-bit entry point (XLF_KERNEL_64 not set): use an x86-64 kernel");
        return -EINVAL;
    }
    if (!(img[0x211] & LOADED_HIGH)) {
        snprintf(err, errlen, "kernel is a zImage, not a bzImage: it must load at 1 MiB or above");
        return -EINVAL;
    }
    unsigned setup_sects = img[0x1f1] ? img[0x1f1] : 4; /* 0 means 4, per boot.rst */
    bz->setup_size = (setup_sects + 1) * 512;
    uint64_t syssize = (uint64_t)rd32(img + 0x1f4) * 16; /* in 16-byte paragraphs */
    if (bz->setup_size >= len || syssize == 0 || syssize > len - bz->setup_size) {
        snprintf(err, errlen, "kernel image is truncated (%zu bytes, header promises %llu)", len,
                 (unsigned long long)(bz->setup_size + syssize));
        return -EINVAL;
    }
    bz->kernel_offset = bz->setup_size;
    bz->kernel_size = len - bz->setup_size;
    bz->relocatable = img[0x234] != 0;
    bz->initrd_addr_max = rd32(img + 0x22c);
    bz->cmdline_size = rd32(img + 0x238);
    bz->init_size = rd32(img + 0x260);
    uint64_t pref;
    memcpy(&pref, img + 0x258, 8);
    /* Loading at pref_address spares the decompressor a self-move; it is
     * also where non-relocatable kernels must go. */
    bz->load_addr = pref;
    if (bz->load_addr < X86_HIMEM_START || bz->load_addr >= X86_MMIO_HOLE_START ||
        bz->init_size < bz->kernel_size) {
        snprintf(err, errlen, "kernel header is inconsistent (load address 0x%llx, init size %u)",
                 (unsigned long long)bz->load_addr, bz->init_size);
        return -EINVAL;
    }
    /* The compressed kernel inside (protocol 2.08+, which MIN_PROTOCOL
     * implies); offset from the start of the protected-mode part. Only
     * described, not needed for booting: zero when it does not fit. */
    uint64_t po = rd32(img + 0x248), pl = rd32(img + 0x24c);
    if (pl && po < bz->kernel_size && pl <= bz->kernel_size - po) {
        bz->payload_offset = bz->kernel_offset + po;
        bz->payload_length = pl;
    }
    return 0;
}

unsigned x86_ram_layout(uint64_t mem_bytes, uint64_t gpa[2], uint64_t size[2])
{
    uint64_t low = mem_bytes < X86_MMIO_HOLE_START ? mem_bytes : X86_MMIO_HOLE_START;
    gpa[0] = 0;
    size[0] = low;
    if (mem_bytes == low)
        return 1;
    gpa[1] = X86_HIGH_RAM_START;
    size[1] = mem_bytes - low;
    return 2;
}

unsigned x86_e820_build(uint64_t mem_bytes, struct e820_entry *e, unsigned max)
{
    uint64_t gpa[2], size[2];
    unsigned nr = x86_ram_layout(mem_bytes, gpa, size), n = 0;
    const struct e820_entry all[] = {
        {0, X86_EBDA_START, E820_RAM},
        /* EBDA, VGA hole, ROMs: firmware's area; our ACPI tables live here. */
        {X86_EBDA_START, X86_HIMEM_START - X86_EBDA_START, E820_RESERVED},
        {X86_HIMEM_START, size[0] - X86_HIMEM_START, E820_RAM},
        {X86_HIGH_RAM_START, nr > 1 ? size[1] : 0, E820_RAM},
    };
    for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
        if (all[i].size)
            e[n++] = all[i];
    return n;
}

/* Why each default flag:
 *  console=ttyS0  kernel messages and the shell on the emulated 16550;
 *  reboot=k       reboot through the i8042 reset line, which arcvm turns into
 *                 its "guest rebooted" exit (the other methods probe BIOS/PCI);
 *  panic=1        a panicked guest reboots after a second instead of hanging,
 *                 so arcvm exits rather than leaving a dead VM running;
 *  pci=off        there is no PCI bus: skip probing config space through
 *                 port I/O, which costs an exit per access;
 *  8250.nr_uarts=1  only COM1 exists; don't probe COM2-4 port by port;
 *                 =0 when the console is elsewhere: no serial driver at all;
 *  console=hvc0   the virtio console, once its driver (a module in stock
 *                 kernels) has loaded;
 *  i8042.dumbkbd i8042.noaux i8042.nomux
 *                 the keyboard controller (in the DSDT) as a keyboard that is
 *                 never sent commands (no probe delays) and no mouse port:
 *                 what Ctrl-Alt-Del from the host needs. */
#define KBD_FLAGS "i8042.dumbkbd i8042.noaux i8042.nomux"
static const char default_serial[] =
    "console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 " KBD_FLAGS;
static const char default_virtio[] =
    "console=hvc0 reboot=k panic=1 pci=off 8250.nr_uarts=0 " KBD_FLAGS;
static const char default_none[] = "reboot=k panic=1 pci=off 8250.nr_uarts=0 " KBD_FLAGS;

const char *x86_default_cmdline(enum x86_console con)
{
    return con == X86_CONSOLE_SERIAL ? default_serial
           : con == X86_CONSOLE_VIRTIO ? default_virtio
                                       : default_none;
}

int x86_cmdline_append(char *out, size_t outlen, const char *piece)
{
    size_t used = strlen(out);
    int n = snprintf(out + used, outlen - used, "%s%s", used ? " " : "", piece);
    if (n < 0 || (size_t)n >= outlen - used) {
        out[used] = 0;
        return -E2BIG;
    }
    return 0;
}

int x86_cmdline_build(char *out, size_t outlen, enum x86_console con, const char *user,
                      bool replace)
{
    const char *def = replace ? "" : x86_default_cmdline(con);
    const char *sep = (*def && user && *user) ? " " : "";
    int n = snprintf(out, outlen, "%s%s%s", def, sep, user ? user : "");
    if (n < 0 || (size_t)n >= outlen)
        return -E2BIG;
    return 0;
}

static void zp_common(struct boot_params *bp, uint64_t cmdline_gpa, uint64_t initrd_gpa,
                      uint64_t initrd_size, const struct e820_entry *e, unsigned n,
                      uint64_t rsdp_gpa)
{
    bp->hdr.type_of_loader = LOADER_UNDEFINED;
    bp->hdr.cmd_line_ptr = (uint32_t)cmdline_gpa;
    bp->ext_cmd_line_ptr = (uint32_t)(cmdline_gpa >> 32);
    bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
    bp->ext_ramdisk_image = (uint32_t)(initrd_gpa >> 32);
    bp->hdr.ramdisk_size = (uint32_t)initrd_size;
    bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
    if (n > E820_MAX_ENTRIES_ZEROPAGE)
        n = E820_MAX_ENTRIES_ZEROPAGE;
    bp->e820_entries = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        bp->e820_table[i].addr = e[i].addr;
        bp->e820_table[i].size = e[i].size;
        bp->e820_table[i].type = e[i].type;
    }
    bp->acpi_rsdp_addr = rsdp_gpa;
}

void x86_zero_page_fill(uint8_t zp[4096], const uint8_t *img, uint64_t cmdline_gpa,
                        uint64_t initrd_gpa, uint64_t initrd_size, const struct e820_entry *e,
                        unsigned n, uint64_t rsdp_gpa)
{
    struct boot_params *bp = (struct boot_params *)zp;
    memset(zp, 0, 4096);
    /* The header runs from 0x1f1 to 0x202 + the byte at 0x201 (its length). */
    size_t end = 0x202 + (size_t)img[0x201];
    if (end > sizeof(*bp))
        end = sizeof(*bp);
    memcpy(zp + 0x1f1, img + 0x1f1, end - 0x1f1);
    zp_common(bp, cmdline_gpa, initrd_gpa, initrd_size, e, n, rsdp_gpa);
}

void x86_zero_page_fill_bare(uint8_t zp[4096], uint64_t cmdline_gpa, uint64_t initrd_gpa,
                             uint64_t initrd_size, const struct e820_entry *e, unsigned n,
                             uint64_t rsdp_gpa)
{
    struct boot_params *bp = (struct boot_params *)zp;
    memset(zp, 0, 4096);
    bp->hdr.boot_flag = 0xaa55;
    bp->hdr.header = HDR_MAGIC;
    bp->hdr.version = MIN_PROTOCOL;
    bp->hdr.kernel_alignment = 0x200000; /* 2 MiB: the x86-64 minimum */
    bp->hdr.cmdline_size = X86_CMDLINE_MAX - 1;
    zp_common(bp, cmdline_gpa, initrd_gpa, initrd_size, e, n, rsdp_gpa);
}

void x86_gdt_build(uint64_t gdt[X86_GDT_ENTRIES])
{
    gdt[0] = 0;
    gdt[1] = 0x00cf9b000000ffffull; /* 0x08: 32-bit flat code (PVH entry) */
    gdt[2] = 0x00af9b000000ffffull; /* 0x10: 64-bit code, L=1 */
    gdt[3] = 0x00cf93000000ffffull; /* 0x18: flat read/write data */
    gdt[4] = 0x00008b0000000067ull; /* 0x20: 32-bit busy TSS, base 0, limit 0x67 */
}

void x86_page_tables_build(uint8_t *pt, uint64_t pt_gpa)
{
    const uint64_t present_rw = 0x3, page_2m = 0x80;
    uint64_t *pml4 = (uint64_t *)pt;
    uint64_t *pdpt = (uint64_t *)(pt + 4096);
    uint64_t *pd = (uint64_t *)(pt + 2 * 4096);
    memset(pt, 0, X86_PT_PAGES * 4096);
    pml4[0] = (pt_gpa + 4096) | present_rw;
    for (unsigned g = 0; g < 4; g++)
        pdpt[g] = (pt_gpa + (2 + g) * 4096ull) | present_rw;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | present_rw | page_2m;
}

uint64_t x86_initrd_addr(uint64_t size, uint64_t floor, uint64_t limit)
{
    const uint64_t page = 4096;
    if (size == 0 || size > limit || limit - size < floor)
        return 0;
    uint64_t addr = (limit - size) & ~(page - 1);
    return addr >= floor ? addr : 0;
}
