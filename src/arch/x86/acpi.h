/* acpi.h - the ACPI tables arcvm gives an x86 guest.
 *
 * RSDP -> XSDT -> {FADT -> DSDT, MADT}. The FADT declares a hardware-reduced
 * platform whose sleep/reset registers are hw/pm.c's ports; the MADT lists
 * one local APIC per vCPU and the IOAPIC; the DSDT holds COM1, the RTC, the
 * keyboard controller, one
 * "LNRO0005" device per virtio-mmio window (how a stock kernel without
 * virtio_mmio.device= finds them), the VM generation ID device (VGEN) with
 * the Generic Event Device (GED_) whose interrupt notifies it, and the \_S5
 * soft-off package.
 * Built into a caller's buffer by a pure function, so tests can check bytes.
 */
#ifndef ARCVM_X86_ACPI_H
#define ARCVM_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct acpi_mmio_dev {
    uint64_t base;
    uint32_t size;
    uint32_t gsi;
};

#define ACPI_MAX_MMIO_DEVS 32

struct acpi_config {
    unsigned ncpus;              /* APIC IDs 0..ncpus-1 */
    uint16_t com1_port;          /* 0: no COM1 */
    uint8_t com1_irq;
    uint16_t pm_port;            /* sleep control; status at +1, reset at +2 */
    uint8_t pm_reset_value;
    uint8_t s5_type;             /* SLP_TYP for soft off */
    uint8_t rtc_century;         /* CMOS index of the century, 0: none */
    uint16_t rtc_port;           /* CMOS RTC index port (data at +1), 0: none */
    uint16_t kbd_port;           /* i8042 data port (command at +4), 0: none */
    uint8_t kbd_irq;
    unsigned nmmio;
    struct acpi_mmio_dev mmio[ACPI_MAX_MMIO_DEVS];
    /* VM generation ID (hw/vmgenid.h): the guest-physical address of its
     * 16 bytes (8-byte aligned, within one page), 0: no VGEN device and no
     * GED. The GED's interrupt (edge, active high) makes its _EVT method
     * Notify(VGEN, 0x80). */
    uint64_t vmgenid_addr;
    uint32_t ged_gsi;
};

/* Lay the tables out in @buf as they will sit at guest address @gpa (the
 * RSDP first, at @gpa). Returns the bytes used, -ENOSPC if @len is too
 * small, or -EINVAL for a configuration the tables cannot describe. */
long acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg);

/* Byte sum of @len bytes (a valid table sums to 0 mod 256). */
uint8_t acpi_sum(const uint8_t *p, size_t len);

#endif
