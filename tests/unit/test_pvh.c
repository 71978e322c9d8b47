/* test_pvh.c - ELF parsing and the PVH entry note, including hostile files. */
#include "unit.h"

#include "arch/x86/pvh.h"

#include <elf.h>

static uint8_t img[8192];

/* ELF with one PT_LOAD at 16 MiB and one PT_NOTE holding @notes. */
static size_t make_elf(const uint8_t *notes, size_t notes_len)
{
    memset(img, 0, sizeof(img));
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_entry = 0x1000000;
    eh.e_phoff = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 2;
    memcpy(img, &eh, sizeof(eh));
    Elf64_Phdr load = {.p_type = PT_LOAD, .p_offset = 0x1000, .p_paddr = 0x1000000,
                       .p_filesz = 0x800, .p_memsz = 0x2000};
    Elf64_Phdr note = {.p_type = PT_NOTE, .p_offset = 0x400, .p_filesz = notes_len};
    memcpy(img + sizeof(eh), &load, sizeof(load));
    memcpy(img + sizeof(eh) + sizeof(load), &note, sizeof(note));
    memcpy(img + 0x400, notes, notes_len);
    return 0x1800;
}

static size_t note(uint8_t *out, const char *name, uint32_t type, const void *desc,
                   uint32_t descsz)
{
    Elf64_Nhdr nh = {(uint32_t)strlen(name) + 1, descsz, type};
    size_t n = 0;
    memcpy(out, &nh, sizeof(nh));
    n += sizeof(nh);
    memcpy(out + n, name, nh.n_namesz);
    n += (nh.n_namesz + 3) & ~3u;
    memcpy(out + n, desc, descsz);
    n += (descsz + 3) & ~3u;
    return n;
}

static void test_pvh_note(void **state)
{
    (void)state;
    uint8_t notes[256];
    uint32_t entry = 0x1000a40, other = 0xdead;
    size_t n = note(notes, "GNU", 3, &other, 4);
    n += note(notes + n, "Xen", 6, &other, 4); /* another Xen note first */
    n += note(notes + n, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
    size_t len = make_elf(notes, n);
    struct elf_kernel k;
    char err[128];
    assert_int_equal(x86_elf_parse(img, len, &k, err, sizeof(err)), 0);
    assert_true(k.has_pvh);
    assert_int_equal(k.pvh_entry, entry);
    assert_int_equal(k.entry, 0x1000000);
    assert_int_equal(k.nseg, 1);
    assert_int_equal(k.seg[0].paddr, 0x1000000);
    assert_int_equal(k.seg[0].filesz, 0x800);
    assert_int_equal(k.seg[0].memsz, 0x2000);
}

static void test_no_pvh(void **state)
{
    (void)state;
    uint8_t notes[64];
    uint32_t v = 1;
    size_t n = note(notes, "GNU", XEN_ELFNOTE_PHYS32_ENTRY, &v, 4); /* wrong owner */
    struct elf_kernel k;
    char err[128];
    assert_int_equal(x86_elf_parse(img, make_elf(notes, n), &k, err, sizeof(err)), 0);
    assert_false(k.has_pvh);
}

static void test_hostile_notes(void **state)
{
    (void)state;
    /* namesz/descsz that run far past the segment must stop the walk. */
    uint8_t notes[64] = {0};
    Elf64_Nhdr nh = {0xfffffff0u, 4, XEN_ELFNOTE_PHYS32_ENTRY};
    memcpy(notes, &nh, sizeof(nh));
    struct elf_kernel k;
    char err[128];
    assert_int_equal(x86_elf_parse(img, make_elf(notes, 64), &k, err, sizeof(err)), 0);
    assert_false(k.has_pvh);
    Elf64_Nhdr nh2 = {4, 0xffffffffu, XEN_ELFNOTE_PHYS32_ENTRY};
    memcpy(notes, &nh2, sizeof(nh2));
    memcpy(notes + sizeof(nh2), "Xen", 4);
    assert_int_equal(x86_elf_parse(img, make_elf(notes, 64), &k, err, sizeof(err)), 0);
    assert_false(k.has_pvh);
    /* A note segment pointing outside the file is ignored. */
    size_t len = make_elf(notes, 16);
    Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr)) + 1;
    ph->p_offset = UINT64_MAX - 8;
    assert_int_equal(x86_elf_parse(img, len, &k, err, sizeof(err)), 0);
    assert_false(k.has_pvh);
}

static void test_refused(void **state)
{
    (void)state;
    struct elf_kernel k;
    char err[128];
    uint8_t notes[16] = {0};
    size_t len = make_elf(notes, 0);
    assert_int_equal(x86_elf_parse(img, 3, &k, err, sizeof(err)), -ENOEXEC);
    assert_int_equal(x86_elf_parse(img, 32, &k, err, sizeof(err)), -EINVAL); /* truncated */

    Elf64_Phdr *load = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));
    load->p_filesz = 0x10000; /* beyond the file */
    assert_int_equal(x86_elf_parse(img, len, &k, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "truncated"));
    make_elf(notes, 0);
    load->p_filesz = 0x3000; /* more than memsz */
    assert_int_equal(x86_elf_parse(img, len, &k, err, sizeof(err)), -EINVAL);

    make_elf(notes, 0);
    ((Elf64_Ehdr *)img)->e_phnum = 0xffff; /* program headers past the end */
    assert_int_equal(x86_elf_parse(img, len, &k, err, sizeof(err)), -EINVAL);

    make_elf(notes, 0);
    ((Elf64_Ehdr *)img)->e_machine = EM_386;
    assert_int_equal(x86_elf_parse(img, len, &k, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "x86-64"));

    make_elf(notes, 0);
    load->p_type = PT_NULL; /* nothing to load */
    assert_int_equal(x86_elf_parse(img, len, &k, err, sizeof(err)), -EINVAL);
}

static void test_struct_layout(void **state)
{
    (void)state;
    assert_int_equal(offsetof(struct hvm_start_info, modlist_paddr), 16);
    assert_int_equal(offsetof(struct hvm_start_info, cmdline_paddr), 24);
    assert_int_equal(offsetof(struct hvm_start_info, rsdp_paddr), 32);
    assert_int_equal(offsetof(struct hvm_start_info, memmap_paddr), 40);
    assert_int_equal(offsetof(struct hvm_start_info, memmap_entries), 48);
}

int main(void)
{
    RUN(cmocka_unit_test(test_pvh_note), cmocka_unit_test(test_no_pvh),
        cmocka_unit_test(test_hostile_notes), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_struct_layout));
}
