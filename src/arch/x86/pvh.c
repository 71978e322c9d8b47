/* pvh.c - ELF64 parsing and PVH note lookup; see pvh.h.
 * ELF layout: the System V gABI and the x86-64 psABI; the note: Xen's
 * docs/misc/pvh.pandoc. */
#include "arch/x86/pvh.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist entries are 32 bytes");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entries are 24 bytes");

/* Does [off, off+size) lie inside a file of @len bytes? Overflow-safe. */
static bool in_file(uint64_t off, uint64_t size, size_t len)
{
    return off <= len && size <= len - off;
}

/* Walk the notes in [off, off+size) for the PVH entry. Each note is
 * namesz, descsz, type, then name and desc padded to 4 bytes. */
static void find_pvh_note(const uint8_t *img, uint64_t off, uint64_t size, struct elf_kernel *k)
{
    uint64_t pos = 0;
    /* Each iteration advances pos by at least 12: bounded by size / 12. */
    while (size - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, img + off + pos, sizeof(nh));
        pos += sizeof(nh);
        uint64_t name_sz = ((uint64_t)nh.n_namesz + 3) & ~3ull;
        uint64_t desc_sz = ((uint64_t)nh.n_descsz + 3) & ~3ull;
        if (name_sz > size - pos || desc_sz > size - pos - name_sz)
            return; /* malformed: stop looking */
        const uint8_t *name = img + off + pos;
        const uint8_t *desc = name + name_sz;
        if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
            !memcmp(name, "Xen", 4) && nh.n_descsz >= 4) {
            uint32_t entry;
            memcpy(&entry, desc, 4);
            k->has_pvh = true;
            k->pvh_entry = entry;
            return;
        }
        pos += name_sz + desc_sz;
    }
}

int x86_elf_parse(const uint8_t *img, size_t len, struct elf_kernel *k, char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    if (len < SELFMAG || memcmp(img, ELFMAG, SELFMAG))
        return -ENOEXEC;
    Elf64_Ehdr eh;
    if (len < sizeof(eh)) {
        snprintf(err, errlen, "ELF kernel is truncated");
        return -EINVAL;
    }
    memcpy(&eh, img, sizeof(eh));
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64) {
        snprintf(err, errlen, "ELF kernel is not a 64-bit x86-64 image");
        return -EINVAL;
    }
    if (eh.e_type != ET_EXEC || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0) {
        snprintf(err, errlen, "ELF kernel is not an executable with program headers");
        return -EINVAL;
    }
    if (!in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len)) {
        snprintf(err, errlen, "ELF kernel is truncated (program headers)");
        return -EINVAL;
    }
    k->entry = eh.e_entry;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_NOTE) {
            if (in_file(ph.p_offset, ph.p_filesz, len) && !k->has_pvh)
                find_pvh_note(img, ph.p_offset, ph.p_filesz, k);
            continue;
        }
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (!in_file(ph.p_offset, ph.p_filesz, len) || ph.p_filesz > ph.p_memsz) {
            snprintf(err, errlen, "ELF kernel is truncated (segment %u)", i);
            return -EINVAL;
        }
        if (k->nseg == ELF_MAX_SEGMENTS) {
            snprintf(err, errlen, "ELF kernel has more than %d loadable segments",
                     ELF_MAX_SEGMENTS);
            return -EINVAL;
        }
        k->seg[k->nseg++] = (struct elf_segment){ph.p_offset, ph.p_filesz, ph.p_paddr,
                                                 ph.p_memsz};
    }
    if (!k->nseg) {
        snprintf(err, errlen, "ELF kernel has no loadable segment");
        return -EINVAL;
    }
    return 0;
}
