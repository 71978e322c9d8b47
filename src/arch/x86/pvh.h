/* pvh.h - ELF vmlinux loading and the PVH boot entry.
 *
 * A vmlinux built with CONFIG_PVH carries an ELF note (owner "Xen", type
 * XEN_ELFNOTE_PHYS32_ENTRY) with a 32-bit entry point that takes a
 * struct hvm_start_info instead of a zero page. Parsing is pure; every
 * offset and size from the file is checked against the file's length.
 */
#ifndef ARCVM_X86_PVH_H
#define ARCVM_X86_PVH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u
#define ELF_MAX_SEGMENTS 16

struct elf_segment {
    uint64_t offset, filesz; /* in the file */
    uint64_t paddr, memsz;   /* in the guest */
};

struct elf_kernel {
    uint64_t entry;          /* e_entry: the 64-bit entry */
    bool has_pvh;
    uint32_t pvh_entry;      /* from the PVH note */
    unsigned nseg;
    struct elf_segment seg[ELF_MAX_SEGMENTS];
};

/* Parse an x86-64 ELF executable. Returns 0, -ENOEXEC if @img is not ELF at
 * all, or -EINVAL with a reason in @err. */
int x86_elf_parse(const uint8_t *img, size_t len, struct elf_kernel *k, char *err, size_t errlen);

/* hvm_start_info and friends (xen/include/public/arch-x86/hvm/start_info.h),
 * version 1 with the memory map. */
struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

#endif
