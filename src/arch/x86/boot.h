/* boot.h - x86 Linux boot: bzImage parsing, zero page, e820, command line,
 * boot GDT and page tables. Pure functions over byte buffers, so that each
 * is unit-tested without a hypervisor.
 */
#ifndef ARCVM_X86_BOOT_H
#define ARCVM_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the loader needs from a bzImage's setup header. */
struct bzimage {
    uint16_t version;         /* boot protocol, e.g. 0x020f */
    uint32_t setup_size;      /* bytes of real-mode setup, incl. the boot sector */
    uint64_t kernel_offset;   /* file offset of the protected-mode kernel */
    uint64_t kernel_size;     /* its size in the file */
    uint64_t load_addr;       /* where to put it: pref_address */
    uint32_t init_size;       /* memory it needs from load_addr while booting */
    uint32_t initrd_addr_max; /* highest address the initrd may end at, inclusive */
    uint32_t cmdline_size;    /* longest command line, without the NUL */
    bool relocatable;
    uint64_t payload_offset;  /* file offset of the compressed kernel, or 0 */
    uint64_t payload_length;  /* its length (0: none described) */
};

/* Validate @img as a bzImage this loader can boot. Returns 0, -ENOEXEC when
 * it is not a bzImage at all (try another format), or -EINVAL with the
 * reason in @err (too old, no 64-bit entry, truncated, ...). */
int x86_bzimage_parse(const uint8_t *img, size_t len, struct bzimage *bz, char *err,
                      size_t errlen);

/* One e820 entry, as in the zero page. */
struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX 128

/* The memory map for @mem_bytes of RAM laid out as in layout.h. Returns the
 * entry count (at most @max). */
unsigned x86_e820_build(uint64_t mem_bytes, struct e820_entry *e, unsigned max);

/* Guest RAM regions (gpa, size) for @mem_bytes: below the MMIO hole, then
 * above 4 GiB. Returns how many (1 or 2). */
unsigned x86_ram_layout(uint64_t mem_bytes, uint64_t gpa[2], uint64_t size[2]);

/* Which console the default command line points the kernel at. */
enum x86_console { X86_CONSOLE_SERIAL, X86_CONSOLE_VIRTIO, X86_CONSOLE_NONE };
/* The default command line arcvm gives a Linux guest; see boot.c for why each
 * flag is there. */
const char *x86_default_cmdline(enum x86_console con);
/* Join defaults and user text into @out: "defaults user". With @replace the
 * user text alone is used. -E2BIG if the result (plus NUL) exceeds @outlen. */
int x86_cmdline_build(char *out, size_t outlen, enum x86_console con, const char *user,
                      bool replace);
/* Append " @piece" to the command line in @out (no leading space when
 * empty). -E2BIG if it does not fit. */
int x86_cmdline_append(char *out, size_t outlen, const char *piece);

/* Fill a 4 KiB zero page for @bz: copy the setup header, set loader type,
 * command line, initrd, e820 and RSDP address. */
void x86_zero_page_fill(uint8_t zp[4096], const uint8_t *img, uint64_t cmdline_gpa,
                        uint64_t initrd_gpa, uint64_t initrd_size, const struct e820_entry *e,
                        unsigned n, uint64_t rsdp_gpa);
/* A zero page for a kernel booted at its 64-bit entry without a setup
 * header of its own (ELF vmlinux without a PVH note). */
void x86_zero_page_fill_bare(uint8_t zp[4096], uint64_t cmdline_gpa, uint64_t initrd_gpa,
                             uint64_t initrd_size, const struct e820_entry *e, unsigned n,
                             uint64_t rsdp_gpa);

/* Boot GDT selectors (layout of x86_gdt_build()). Linux's 64-bit boot
 * protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18. */
#define X86_SEL_CODE32 0x08
#define X86_SEL_CODE64 0x10
#define X86_SEL_DATA 0x18
#define X86_SEL_TSS 0x20
#define X86_GDT_ENTRIES 5
void x86_gdt_build(uint64_t gdt[X86_GDT_ENTRIES]);

/* Identity page tables for the first 4 GiB with 2 MiB pages: PML4 page,
 * PDPT page, four PD pages, laid out consecutively in @pt (6 pages) that
 * will live at guest address @pt_gpa. */
#define X86_PT_PAGES 6
void x86_page_tables_build(uint8_t *pt, uint64_t pt_gpa);

/* Highest page-aligned address at which @size bytes fit below @limit
 * (exclusive) and at or above @floor; 0 if none. */
uint64_t x86_initrd_addr(uint64_t size, uint64_t floor, uint64_t limit);

#endif
