/* layout.h - where arcvm puts things in an x86-64 guest's physical space.
 *
 *   0x0000_0500  GDT (boot segments for both entry paths)
 *   0x0000_6000  PVH hvm_start_info, module list and memory map
 *   0x0000_7000  Linux zero page (struct boot_params)
 *   0x0000_8ff0  boot stack top
 *   0x0000_9000  PML4, PDPT, 4 PDs: identity map of the first 4 GiB
 *   0x0002_0000  kernel command line
 *   0x0009_fc00  reserved up to 1 MiB (EBDA, legacy ROM area)
 *   0x000e_0000  ACPI: RSDP and tables, inside the reserved area
 *   0x0010_0000  RAM: kernel (at its preferred address), initrd at the top
 *   0xc000_0000  32-bit MMIO hole: boot timer, virtio devices, IOAPIC, LAPIC
 *   0x1_0000_0000 RAM above 3 GiB continues here
 */
#ifndef ARCVM_X86_LAYOUT_H
#define ARCVM_X86_LAYOUT_H

#define X86_GDT_ADDR 0x500ull
#define X86_PVH_INFO_ADDR 0x6000ull
#define X86_PVH_MODLIST_ADDR 0x6040ull
#define X86_PVH_MEMMAP_ADDR 0x6080ull
#define X86_ZERO_PAGE_ADDR 0x7000ull
#define X86_BOOT_STACK 0x8ff0ull
#define X86_PML4_ADDR 0x9000ull
#define X86_PDPT_ADDR 0xa000ull
#define X86_PD_ADDR 0xb000ull /* four pages, one per GiB */
#define X86_CMDLINE_ADDR 0x20000ull
#define X86_CMDLINE_MAX 4096
#define X86_EBDA_START 0x9fc00ull
#define X86_ACPI_ADDR 0xe0000ull
#define X86_ACPI_MAX 0x20000ull /* up to 1 MiB */
#define X86_HIMEM_START 0x100000ull
#define X86_MMIO_HOLE_START 0xc0000000ull
#define X86_MMIO_HOLE_END 0x100000000ull
/* Virtio-mmio windows, after the boot timer's page. */
#define X86_VIRTIO_MMIO_BASE 0xd0000000ull
#define X86_VIRTIO_MMIO_SIZE 0x1000ull
#define X86_IOAPIC_ADDR 0xfec00000ull
#define X86_LAPIC_ADDR 0xfee00000ull
#define X86_HIGH_RAM_START 0x100000000ull

/* ISA interrupt lines (IOAPIC pins, identity-mapped GSIs). */
#define X86_IRQ_KBD 1
#define X86_IRQ_COM1 4
/* First GSI for virtio devices: above the 16 ISA lines. */
#define X86_IRQ_VIRTIO_BASE 16
#define X86_IOAPIC_PINS 24

#define X86_COM1_PORT 0x3f8
#define X86_COM1_LEN 8
#define X86_POST_PORT 0x80

#endif
