/* layout.h - where arcvm puts things in an x86-64 guest's physical space.
 *
 *   0x0000_0500  GDT (boot segments for both entry paths)
 *   0x0000_6000  PVH hvm_start_info, module list and memory map
 *   0x0000_7000  Linux zero page (struct boot_params)
 *   0x0000_8ff0  boot stack top
 *   0x0000_9000  PML4, PDPT, 4 PDs: identity map of the first 4 GiB
 *   0x0002_0000  kernel command line
 *   0x0009_fc00  reserved up to 1 MiB (EBDA, legacy ROM area)
 *   0x000d_f000  VM generation ID (16 bytes), inside the reserved area
 *   0x000e_0000  ACPI: RSDP and tables, inside the reserved area
 *   0x0010_0000  RAM: kernel (at its preferred address), initrd at the top
 *   0xc000_0000  32-bit MMIO hole: boot timer, virtio devices, IOAPIC, LAPIC
 *   0x1_0000_0000 RAM above 3 GiB continues here
 *   next 1 GiB boundary at or above both 4 GiB and the end of RAM:
 *                device memory: the virtio-mem hotplug region first (on
 *                a 2 GiB boundary), then virtio-pmem regions, one after
 *                another, each 2 MiB aligned; no e820 entry, no ACPI resource
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
/* The VM generation ID's 16 bytes (hw/vmgenid.h), named by the DSDT's
 * VGEN device: the last page of the option-ROM area before the ACPI
 * tables. The e820 map reserves 0x9fc00-1 MiB, so the guest never uses it
 * as RAM (Linux maps it write-back through its ISA-range rules), and
 * acpi_build() clears only its own X86_ACPI_ADDR..1 MiB. Below 1 MiB
 * /dev/mem may read it even with STRICT_DEVMEM (tests use busybox devmem). */
#define X86_VMGENID_ADDR 0xdf000ull
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
/* Device memory starts on this boundary above RAM (arch_device_mem_base()). */
#define X86_DEVICE_MEM_ALIGN (1ull << 30)
/* The virtio-mem hotplug region starts on this boundary in device memory;
 * it is not in the e820 map: the guest learns of it from the device
 * (arch_memhp_base()). */
#define X86_MEMHP_ALIGN 0x80000000ull

/* ISA interrupt lines (IOAPIC pins, identity-mapped GSIs). */
#define X86_IRQ_KBD 1
#define X86_IRQ_COM1 4
/* The ACPI Generic Event Device's line: tells the guest the VM generation
 * ID changed. ISA line 3 is COM2's on a PC; we have no COM2 (the 8250
 * driver finds no UART at its ports and never claims the line) and the
 * virtio list (setup.c) skips it, so no virtio device loses a GSI. 0 and 2
 * are the PIT's, 8 the RTC's on a PC. Edge-triggered, active high, as the
 * GED's _CRS says. */
#define X86_IRQ_GED 3
/* First GSI for virtio devices: above the 16 ISA lines. */
#define X86_IRQ_VIRTIO_BASE 16
#define X86_IOAPIC_PINS 24

#define X86_COM1_PORT 0x3f8
#define X86_COM1_LEN 8
#define X86_POST_PORT 0x80

#endif
