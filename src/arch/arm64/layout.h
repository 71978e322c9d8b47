/* layout.h - where arcvm puts things in an arm64 guest's physical space.
 * Close to QEMU's virt machine and Firecracker: devices in the first GiB,
 * RAM from 2 GiB.
 *
 *   0x0800_0000  GICv3 distributor (64 KiB)
 *   0x080a_0000  GICv3 redistributors, 128 KiB per vCPU (up to 123 vCPUs)
 *   0x0900_0000  16550A UART (ttyS0)
 *   0x0901_0000  PL031 real-time clock
 *   0x0a00_0000  virtio-mmio devices, a 4 KiB page each
 *   0x4000_0000  Firecracker's boot timer (its arm64 address)
 *   0x8000_0000  RAM: kernel at the start (+ text_offset), then the initrd
 *                and the device tree at the end
 */
#ifndef ARCVM_ARM64_LAYOUT_H
#define ARCVM_ARM64_LAYOUT_H

#define ARM64_GIC_DIST 0x08000000ull
#define ARM64_GIC_DIST_SIZE 0x10000ull
#define ARM64_GIC_REDIST 0x080a0000ull
#define ARM64_GIC_REDIST_PER_CPU 0x20000ull /* RD_base + SGI_base frames */
#define ARM64_GIC_REDIST_MAX 0xf60000ull    /* up to the UART */
#define ARM64_MAX_CPUS (ARM64_GIC_REDIST_MAX / ARM64_GIC_REDIST_PER_CPU)
#define ARM64_UART_BASE 0x09000000ull
#define ARM64_UART_SIZE 0x1000ull
#define ARM64_RTC_BASE 0x09010000ull
#define ARM64_RTC_SIZE 0x1000ull
#define ARM64_VIRTIO_BASE 0x0a000000ull
#define ARM64_VIRTIO_SIZE 0x1000ull
#define ARM64_BOOT_TIMER 0x40000000ull
#define ARM64_RAM_BASE 0x80000000ull
/* Device memory (pmem, the virtio-mem region) starts on this boundary
 * above RAM (arch_device_mem_base()). */
#define ARM64_DEVICE_MEM_ALIGN (1ull << 30)
/* The guest-physical address space KVM gives a VM by default (40 bits). */
#define ARM64_PHYS_LIMIT (1ull << 40)

/* Device interrupts: SPI numbers (GIC interrupt ID minus 32). */
#define ARM64_SPI_UART 1
#define ARM64_SPI_RTC 2
#define ARM64_SPI_VIRTIO 16
#define ARM64_MAX_VIRTIO 32
#define ARM64_SPI_LINES (ARM64_SPI_VIRTIO + ARM64_MAX_VIRTIO)

/* The device tree: at most 2 MiB (the boot protocol's limit), in the last
 * 2 MiB of RAM, so no 2 MiB block the kernel maps holds anything else. */
#define ARM64_FDT_MAX 0x200000ull

#endif
