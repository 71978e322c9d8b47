/* fdt.c - the arm64 guest's device tree, written with libfdt's sequential
 * writer. The bindings are Linux's (Documentation/devicetree/bindings):
 * arm/cpus.yaml and psci.yaml, timer/arm,arch_timer.yaml,
 * interrupt-controller/arm,gic-v3.yaml, serial/8250.yaml, rtc/arm,pl031,
 * virtio/mmio.yaml, chosen.yaml. */
#include "arch/arm64/fdt.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>

/* Interrupt specifiers of the GIC binding: type, number, flags. */
#define GIC_SPI 0
#define GIC_PPI 1
#define IRQ_EDGE_RISING 1
#define IRQ_LEVEL_HIGH 4
/* The architected timer's PPIs (interrupt IDs 29, 30, 27, 26 minus 16):
 * secure physical, non-secure physical, virtual, hypervisor. */
static const uint32_t timer_ppis[4] = {13, 14, 11, 10};

#define PHANDLE_GIC 1
#define PHANDLE_CLK 2
/* The AMBA bus enables a primecell's "apb_pclk" before probing it: a fixed
 * clock is enough (its rate does not matter to the PL031). */
#define APB_PCLK_HZ 24000000u

uint64_t arm64_vcpu_mpidr(unsigned id)
{
    return (uint64_t)(id & 0xf) | (uint64_t)((id >> 4) & 0xff) << 8 |
           (uint64_t)((id >> 12) & 0xff) << 16;
}

/* "reg" of two address and two size cells. */
static int prop_reg(void *f, const uint64_t *pairs, unsigned n)
{
    fdt64_t v[4];
    if (n > 2)
        return -FDT_ERR_BADVALUE;
    for (unsigned i = 0; i < 2 * n; i++)
        v[i] = cpu_to_fdt64(pairs[i]);
    return fdt_property(f, "reg", v, (int)(2 * n * sizeof(v[0])));
}

static int prop_irq(void *f, uint32_t type, uint32_t num, uint32_t flags)
{
    fdt32_t v[3] = {cpu_to_fdt32(type), cpu_to_fdt32(num), cpu_to_fdt32(flags)};
    return fdt_property(f, "interrupts", v, sizeof(v));
}

static int begin_dev(void *f, const char *name, const struct arm64_fdt_dev *d)
{
    char node[48];
    snprintf(node, sizeof(node), "%s@%llx", name, (unsigned long long)d->base);
    int r = fdt_begin_node(f, node);
    uint64_t reg[2] = {d->base, d->size};
    if (r == 0)
        r = prop_reg(f, reg, 1);
    if (r == 0)
        r = prop_irq(f, GIC_SPI, d->spi, IRQ_EDGE_RISING);
    return r;
}

static int cpus(void *f, const struct arm64_fdt_config *c)
{
    int r = fdt_begin_node(f, "cpus");
    r = r ? r : fdt_property_u32(f, "#address-cells", 1);
    r = r ? r : fdt_property_u32(f, "#size-cells", 0);
    for (unsigned i = 0; r == 0 && i < c->ncpus; i++) {
        char node[24];
        uint32_t mpidr = (uint32_t)arm64_vcpu_mpidr(i);
        snprintf(node, sizeof(node), "cpu@%x", mpidr);
        r = fdt_begin_node(f, node);
        r = r ? r : fdt_property_string(f, "device_type", "cpu");
        r = r ? r : fdt_property_string(f, "compatible", "arm,arm-v8");
        r = r ? r : fdt_property_string(f, "enable-method", "psci");
        r = r ? r : fdt_property_u32(f, "reg", mpidr);
        r = r ? r : fdt_end_node(f);
    }
    return r ? r : fdt_end_node(f);
}

static int chosen(void *f, const struct arm64_fdt_config *c)
{
    int r = fdt_begin_node(f, "chosen");
    if (r == 0 && c->bootargs)
        r = fdt_property_string(f, "bootargs", c->bootargs);
    if (r == 0 && c->stdout_uart) {
        char path[48];
        snprintf(path, sizeof(path), "/uart@%llx", (unsigned long long)c->uart.base);
        r = fdt_property_string(f, "stdout-path", path);
    }
    if (r == 0 && c->initrd_end > c->initrd_start) {
        r = fdt_property_u64(f, "linux,initrd-start", c->initrd_start);
        r = r ? r : fdt_property_u64(f, "linux,initrd-end", c->initrd_end);
    }
    return r ? r : fdt_end_node(f);
}

static int platform(void *f, const struct arm64_fdt_config *c)
{
    char node[48];
    uint64_t mem[2] = {c->ram_base, c->ram_size};
    snprintf(node, sizeof(node), "memory@%llx", (unsigned long long)c->ram_base);
    int r = fdt_begin_node(f, node);
    r = r ? r : fdt_property_string(f, "device_type", "memory");
    r = r ? r : prop_reg(f, mem, 1);
    r = r ? r : fdt_end_node(f);

    r = r ? r : fdt_begin_node(f, "psci");
    r = r ? r : fdt_property_string(f, "compatible", "arm,psci-0.2");
    r = r ? r : fdt_property_string(f, "method", "hvc");
    r = r ? r : fdt_end_node(f);

    fdt32_t t[12];
    for (int i = 0; i < 4; i++) {
        t[3 * i] = cpu_to_fdt32(GIC_PPI);
        t[3 * i + 1] = cpu_to_fdt32(timer_ppis[i]);
        t[3 * i + 2] = cpu_to_fdt32(IRQ_LEVEL_HIGH);
    }
    r = r ? r : fdt_begin_node(f, "timer");
    r = r ? r : fdt_property_string(f, "compatible", "arm,armv8-timer");
    r = r ? r : fdt_property(f, "interrupts", t, sizeof(t));
    r = r ? r : fdt_end_node(f);

    uint64_t gic[4] = {c->gic_dist, c->gic_dist_size, c->gic_redist, c->gic_redist_size};
    snprintf(node, sizeof(node), "intc@%llx", (unsigned long long)c->gic_dist);
    r = r ? r : fdt_begin_node(f, node);
    r = r ? r : fdt_property_string(f, "compatible", "arm,gic-v3");
    r = r ? r : fdt_property_u32(f, "#interrupt-cells", 3);
    r = r ? r : fdt_property(f, "interrupt-controller", NULL, 0);
    /* Cells for children (an ITS, none yet), as an interrupt provider
     * must say (dtc's interrupt_provider check). */
    r = r ? r : fdt_property_u32(f, "#address-cells", 2);
    r = r ? r : fdt_property_u32(f, "#size-cells", 2);
    r = r ? r : fdt_property(f, "ranges", NULL, 0);
    r = r ? r : prop_reg(f, gic, 2);
    r = r ? r : fdt_property_u32(f, "phandle", PHANDLE_GIC);
    r = r ? r : fdt_end_node(f);

    r = r ? r : fdt_begin_node(f, "apb-pclk");
    r = r ? r : fdt_property_string(f, "compatible", "fixed-clock");
    r = r ? r : fdt_property_u32(f, "#clock-cells", 0);
    r = r ? r : fdt_property_u32(f, "clock-frequency", APB_PCLK_HZ);
    r = r ? r : fdt_property_string(f, "clock-output-names", "clk24mhz");
    r = r ? r : fdt_property_u32(f, "phandle", PHANDLE_CLK);
    return r ? r : fdt_end_node(f);
}

static int devices(void *f, const struct arm64_fdt_config *c)
{
    int r = begin_dev(f, "uart", &c->uart);
    r = r ? r : fdt_property_string(f, "compatible", "ns16550a");
    r = r ? r : fdt_property_u32(f, "clock-frequency", c->uart_clock);
    r = r ? r : fdt_end_node(f);

    static const char pl031[] = "arm,pl031\0arm,primecell";
    r = r ? r : begin_dev(f, "rtc", &c->rtc);
    r = r ? r : fdt_property(f, "compatible", pl031, sizeof(pl031));
    r = r ? r : fdt_property_u32(f, "clocks", PHANDLE_CLK);
    r = r ? r : fdt_property_string(f, "clock-names", "apb_pclk");
    r = r ? r : fdt_end_node(f);

    for (unsigned i = 0; r == 0 && i < c->nvirtio; i++) {
        r = begin_dev(f, "virtio_mmio", &c->virtio[i]);
        r = r ? r : fdt_property_string(f, "compatible", "virtio,mmio");
        r = r ? r : fdt_property(f, "dma-coherent", NULL, 0);
        r = r ? r : fdt_end_node(f);
    }
    return r;
}

long arm64_fdt_build(void *buf, size_t size, const struct arm64_fdt_config *c)
{
    if (!c->ncpus || c->nvirtio > ARM64_FDT_MAX_VIRTIO || size > INT32_MAX ||
        c->initrd_end < c->initrd_start)
        return -EINVAL;
    int r = fdt_create(buf, (int)size);
    r = r ? r : fdt_finish_reservemap(buf);
    r = r ? r : fdt_begin_node(buf, "");
    r = r ? r : fdt_property_u32(buf, "#address-cells", 2);
    r = r ? r : fdt_property_u32(buf, "#size-cells", 2);
    r = r ? r : fdt_property_string(buf, "compatible", "linux,dummy-virt");
    r = r ? r : fdt_property_string(buf, "model", "arcvm");
    r = r ? r : fdt_property_u32(buf, "interrupt-parent", PHANDLE_GIC);
    r = r ? r : chosen(buf, c);
    r = r ? r : cpus(buf, c);
    r = r ? r : platform(buf, c);
    r = r ? r : devices(buf, c);
    r = r ? r : fdt_end_node(buf);
    r = r ? r : fdt_finish(buf);
    if (r == -FDT_ERR_NOSPACE)
        return -ENOSPC;
    if (r < 0)
        return -EINVAL;
    return (long)fdt_totalsize(buf);
}
