/* mkelf.c - write a tiny PVH "kernel" for end-to-end tests of guest
 * failure paths: an ELF64 executable whose PVH entry (32-bit protected
 * mode, no IDT) runs the given machine code at 1 MiB.
 *
 * Usage: mkelf OUT triple-fault
 *   triple-fault: ud2 with no IDT -> #UD -> #GP -> #DF -> shutdown.
 */
#include <elf.h>
#include <stdio.h>
#include <string.h>

#define LOAD_ADDR 0x100000u

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[2], "triple-fault")) {
        fprintf(stderr, "usage: mkelf OUT triple-fault\n");
        return 2;
    }
    static const unsigned char code[] = {0x0f, 0x0b}; /* ud2 */
    /* Note: namesz 4 "Xen\0", descsz 4, type 18 (XEN_ELFNOTE_PHYS32_ENTRY). */
    struct {
        Elf64_Nhdr h;
        char name[4];
        uint32_t entry;
    } note = {{4, 4, 18}, "Xen", LOAD_ADDR};

    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = LOAD_ADDR;
    eh.e_phoff = sizeof(eh);
    eh.e_ehsize = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 2;
    uint64_t note_off = sizeof(eh) + 2 * sizeof(Elf64_Phdr);
    uint64_t code_off = note_off + sizeof(note);
    Elf64_Phdr ph[2] = {
        {.p_type = PT_NOTE, .p_offset = note_off, .p_filesz = sizeof(note), .p_align = 4},
        {.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = code_off, .p_vaddr = LOAD_ADDR,
         .p_paddr = LOAD_ADDR, .p_filesz = sizeof(code), .p_memsz = 4096, .p_align = 4096},
    };
    FILE *f = fopen(argv[1], "wb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    int ok = fwrite(&eh, sizeof(eh), 1, f) == 1 && fwrite(ph, sizeof(ph), 1, f) == 1 &&
             fwrite(&note, sizeof(note), 1, f) == 1 && fwrite(code, sizeof(code), 1, f) == 1;
    if (fclose(f) != 0 || !ok) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
