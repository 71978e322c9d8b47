/* mkelf.c - write a tiny PVH "kernel" for end-to-end tests of guest
 * failure paths: an ELF64 executable whose PVH entry (32-bit protected
 * mode, no IDT) runs the given machine code at 1 MiB.
 *
 * Usage: mkelf OUT triple-fault|emulation-failure|spin
 *   triple-fault: ud2 with no IDT -> #UD -> #GP -> #DF -> shutdown.
 *   emulation-failure: enables SSE, then adds from an address in the MMIO
 *     hole where no device lives: the hypervisor must emulate the access
 *     and cannot emulate paddd, so the vCPU exits with an internal error
 *     carrying the instruction bytes 66 0f fe 00.
 *   spin: loops at its entry forever (jmp $), for the vCPU report.
 */
#include <elf.h>
#include <stdio.h>
#include <string.h>

#define LOAD_ADDR 0x100000u

int main(int argc, char **argv)
{
    static const unsigned char triple[] = {0x0f, 0x0b}; /* ud2 */
    static const unsigned char emul[] = {
        0x0f, 0x20, 0xe0,             /* mov eax, cr4 */
        0x0d, 0x00, 0x06, 0x00, 0x00, /* or eax, 0x600: OSFXSR | OSXMMEXCPT */
        0x0f, 0x22, 0xe0,             /* mov cr4, eax */
        0x0f, 0x20, 0xc0,             /* mov eax, cr0 */
        0x83, 0xe0, 0xfb,             /* and eax, ~4: EM off */
        0x83, 0xc8, 0x02,             /* or eax, 2: MP on */
        0x0f, 0x22, 0xc0,             /* mov cr0, eax */
        0xb8, 0x00, 0x10, 0x00, 0xc0, /* mov eax, 0xc0001000 (unclaimed MMIO) */
        0x66, 0x0f, 0xfe, 0x00,       /* paddd xmm0, [eax] */
        0x0f, 0x0b,                   /* ud2: never reached */
    };
    static const unsigned char spin[] = {0xeb, 0xfe}; /* jmp $ */
    const unsigned char *code = NULL;
    size_t code_len = 0;
    if (argc == 3 && !strcmp(argv[2], "triple-fault"))
        code = triple, code_len = sizeof(triple);
    else if (argc == 3 && !strcmp(argv[2], "emulation-failure"))
        code = emul, code_len = sizeof(emul);
    else if (argc == 3 && !strcmp(argv[2], "spin"))
        code = spin, code_len = sizeof(spin);
    if (!code) {
        fprintf(stderr, "usage: mkelf OUT triple-fault|emulation-failure|spin\n");
        return 2;
    }
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
         .p_paddr = LOAD_ADDR, .p_filesz = code_len, .p_memsz = 4096, .p_align = 4096},
    };
    FILE *f = fopen(argv[1], "wb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    int ok = fwrite(&eh, sizeof(eh), 1, f) == 1 && fwrite(ph, sizeof(ph), 1, f) == 1 &&
             fwrite(&note, sizeof(note), 1, f) == 1 && fwrite(code, code_len, 1, f) == 1;
    if (fclose(f) != 0 || !ok) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
