/* fdt.h - the device tree arcvm hands an arm64 guest, built with libfdt.
 * Pure: a description in, a flattened tree out (unit-tested on any host,
 * decompiled by dtc in the tests). */
#ifndef ARCVM_ARM64_FDT_H
#define ARCVM_ARM64_FDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_FDT_MAX_VIRTIO 32

struct arm64_fdt_dev {
    uint64_t base, size;
    uint32_t spi; /* SPI number: GIC interrupt ID minus 32 */
};

struct arm64_fdt_config {
    uint64_t ram_base, ram_size;
    unsigned ncpus;
    uint64_t gic_dist, gic_dist_size, gic_redist, gic_redist_size;
    struct arm64_fdt_dev uart; /* a 16550A, byte registers */
    uint32_t uart_clock;       /* its input clock, Hz */
    struct arm64_fdt_dev rtc;  /* a PL031 */
    bool stdout_uart;          /* /chosen/stdout-path names the UART */
    const char *bootargs;      /* the kernel command line, or NULL */
    uint64_t initrd_start, initrd_end; /* [start, end); both 0: none */
    unsigned nvirtio;
    struct arm64_fdt_dev virtio[ARM64_FDT_MAX_VIRTIO];
};

/* MPIDR_EL1's affinity for vCPU @id as KVM sets it at vCPU reset: Aff0 the
 * low 4 bits, Aff1 the next 8, Aff2 the next 8 (the cpu nodes' "reg"). */
uint64_t arm64_vcpu_mpidr(unsigned id);

/* Build the tree into @buf (@size bytes). Returns its size, or -ENOSPC
 * when @size is too small, -EINVAL for a description it cannot express. */
long arm64_fdt_build(void *buf, size_t size, const struct arm64_fdt_config *c);

#endif
