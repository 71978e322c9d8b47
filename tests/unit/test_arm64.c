/* test_arm64.c - the arm64 machine's pure parts on any host: the Image
 * header (Documentation/arch/arm64/booting.rst) and the device tree,
 * checked with libfdt and by decompiling it with dtc, which must not warn. */
#include "unit.h"

#include "arch/arm64/fdt.h"
#include "arch/arm64/image.h"
#include "hw/pl031.h"
#include "hv/hv.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t img[4096];

static void put64(size_t off, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        img[off + i] = (uint8_t)(v >> (8 * i));
}

/* A header as Linux >= 3.17 writes it: text_offset 0, its size, LE. */
static void make_image(uint64_t text_offset, uint64_t size, uint64_t flags)
{
    memset(img, 0, sizeof(img));
    put64(8, text_offset);
    put64(16, size);
    put64(24, flags);
    memcpy(img + 0x38, "ARM\x64", 4);
}

static void image_ok(void **state)
{
    (void)state;
    struct arm64_image k;
    char why[200] = "";
    make_image(0, 0x2000000, 2 | 8); /* 4K pages, anywhere */
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), 0);
    assert_int_equal(k.text_offset, 0);
    assert_int_equal(k.image_size, 0x2000000);
    assert_true(k.anywhere);
    /* The first 2 MiB aligned base, plus text_offset. */
    assert_int_equal(arm64_image_load_addr(&k, 0x80000000), 0x80000000);
    assert_int_equal(arm64_image_load_addr(&k, 0x80001000), 0x80200000);
    make_image(0x80000, 0x1000000, 0);
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), 0);
    assert_false(k.anywhere);
    assert_int_equal(arm64_image_load_addr(&k, 0x80000000), 0x80080000);
}

static void image_old_kernel(void **state)
{
    (void)state;
    struct arm64_image k;
    char why[200] = "";
    /* image_size 0: a kernel before 3.17, at the old fixed offset. */
    make_image(0x1234000, 0, 0);
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), 0);
    assert_int_equal(k.text_offset, 0x80000);
    assert_int_equal(k.image_size, sizeof(img));
}

static void image_refused(void **state)
{
    (void)state;
    struct arm64_image k;
    char why[200] = "";
    make_image(0, 0x100000, 0);
    img[0x3b] = 0x65; /* not "ARM\x64" */
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), -ENOEXEC);
    assert_int_equal(arm64_image_parse(img, 63, &k, why, sizeof(why)), -ENOEXEC);
    make_image(0, 0x100000, 1); /* big-endian */
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "big-endian"));
    make_image(0x200000, 0x100000, 0); /* text_offset beyond 2 MiB */
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), -EINVAL);
    make_image(0x80100, 0x100000, 0); /* not page aligned */
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), -EINVAL);
    make_image(0, 100, 0); /* smaller than the file */
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), -EINVAL);
    make_image(0, 1ull << 40, 0); /* absurd */
    assert_int_equal(arm64_image_parse(img, sizeof(img), &k, why, sizeof(why)), -EINVAL);
}

static void mpidr(void **state)
{
    (void)state;
    assert_int_equal(arm64_vcpu_mpidr(0), 0);
    assert_int_equal(arm64_vcpu_mpidr(15), 15);
    assert_int_equal(arm64_vcpu_mpidr(16), 0x100);
    assert_int_equal(arm64_vcpu_mpidr(0x1234), 0x012304);
}

static struct arm64_fdt_config config(unsigned ncpus, unsigned nvirtio)
{
    struct arm64_fdt_config c = {
        .ram_base = 0x80000000, .ram_size = 256 << 20, .ncpus = ncpus,
        .gic_dist = 0x08000000, .gic_dist_size = 0x10000, .gic_redist = 0x080a0000,
        .gic_redist_size = 0x20000ull * ncpus,
        .uart = {0x09000000, 0x1000, 1}, .uart_clock = 1843200,
        .rtc = {0x09010000, 0x1000, 2}, .stdout_uart = true,
        .bootargs = "console=ttyS0 panic=1",
        .initrd_start = 0x8f000000, .initrd_end = 0x8f123456, .nvirtio = nvirtio};
    for (unsigned i = 0; i < nvirtio; i++)
        c.virtio[i] = (struct arm64_fdt_dev){0x0a000000 + i * 0x1000ull, 0x1000, 16 + i};
    return c;
}

/* The @i-th 64-bit cell at @p: FDT properties are only 4-byte aligned. */
static uint64_t cell64(const void *p, int i)
{
    fdt64_t v;
    memcpy(&v, (const char *)p + 8 * i, sizeof(v));
    return fdt64_to_cpu(v);
}

static uint64_t get64(const void *fdt, const char *path, const char *name)
{
    int node = fdt_path_offset(fdt, path), len = 0;
    assert_true(node >= 0);
    const void *p = fdt_getprop(fdt, node, name, &len);
    assert_non_null(p);
    assert_int_equal(len, 8);
    return cell64(p, 0);
}

static const char *getstr(const void *fdt, const char *path, const char *name)
{
    int node = fdt_path_offset(fdt, path);
    assert_true(node >= 0);
    const char *s = fdt_getprop(fdt, node, name, NULL);
    assert_non_null(s);
    return s;
}

static void fdt_contents(void **state)
{
    (void)state;
    static uint8_t buf[64 * 1024];
    struct arm64_fdt_config c = config(2, 3);
    long n = arm64_fdt_build(buf, sizeof(buf), &c);
    assert_true(n > 0 && n < (long)sizeof(buf));
    assert_int_equal(fdt_check_header(buf), 0);
    assert_string_equal(getstr(buf, "/chosen", "bootargs"), "console=ttyS0 panic=1");
    assert_string_equal(getstr(buf, "/chosen", "stdout-path"), "/uart@9000000");
    assert_int_equal(get64(buf, "/chosen", "linux,initrd-start"), 0x8f000000);
    assert_int_equal(get64(buf, "/chosen", "linux,initrd-end"), 0x8f123456);
    assert_string_equal(getstr(buf, "/cpus/cpu@1", "enable-method"), "psci");
    assert_true(fdt_path_offset(buf, "/cpus/cpu@2") < 0);
    assert_string_equal(getstr(buf, "/psci", "method"), "hvc");
    assert_string_equal(getstr(buf, "/intc@8000000", "compatible"), "arm,gic-v3");
    assert_string_equal(getstr(buf, "/virtio_mmio@a002000", "compatible"), "virtio,mmio");
    assert_true(fdt_path_offset(buf, "/virtio_mmio@a003000") < 0);
    /* memory reg: base and size, two cells each. */
    int node = fdt_path_offset(buf, "/memory@80000000"), len;
    const void *reg = fdt_getprop(buf, node, "reg", &len);
    assert_int_equal(len, 16);
    assert_int_equal(cell64(reg, 0), 0x80000000);
    assert_int_equal(cell64(reg, 1), 256 << 20);
    /* The redistributor region covers every vCPU. */
    node = fdt_path_offset(buf, "/intc@8000000");
    reg = fdt_getprop(buf, node, "reg", &len);
    assert_int_equal(len, 32);
    assert_int_equal(cell64(reg, 3), 2 * 0x20000);
    /* The third virtio device's interrupt: SPI 18, edge rising. */
    node = fdt_path_offset(buf, "/virtio_mmio@a002000");
    const fdt32_t *irq = fdt_getprop(buf, node, "interrupts", &len);
    assert_int_equal(len, 12);
    assert_int_equal(fdt32_to_cpu(irq[0]), 0);
    assert_int_equal(fdt32_to_cpu(irq[1]), 18);
    assert_int_equal(fdt32_to_cpu(irq[2]), 1);
}

static void fdt_limits(void **state)
{
    (void)state;
    static uint8_t buf[64 * 1024];
    struct arm64_fdt_config c = config(1, 0);
    c.initrd_start = c.initrd_end = 0; /* no initrd: no properties */
    assert_true(arm64_fdt_build(buf, sizeof(buf), &c) > 0);
    int node = fdt_path_offset(buf, "/chosen");
    assert_null(fdt_getprop(buf, node, "linux,initrd-start", NULL));
    assert_int_equal(arm64_fdt_build(buf, 256, &c), -ENOSPC);
    c.ncpus = 0;
    assert_int_equal(arm64_fdt_build(buf, sizeof(buf), &c), -EINVAL);
    c = config(1, 0);
    c.nvirtio = ARM64_FDT_MAX_VIRTIO + 1;
    assert_int_equal(arm64_fdt_build(buf, sizeof(buf), &c), -EINVAL);
}

/* dtc decompiles the tree without a single warning (its checks cover
 * unit addresses against reg, interrupt and clock references, cells). */
static void fdt_dtc(void **state)
{
    (void)state;
    if (system("command -v dtc >/dev/null 2>&1") != 0) {
        fail_msg("dtc not found: install device-tree-compiler (scripts/install-deps.sh)");
    }
    static uint8_t buf[64 * 1024];
    struct arm64_fdt_config c = config(4, ARM64_FDT_MAX_VIRTIO);
    long n = arm64_fdt_build(buf, sizeof(buf), &c);
    assert_true(n > 0);
    char dtb[] = "/tmp/arcvm-test-dtb-XXXXXX";
    int fd = mkstemp(dtb);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, (size_t)n), n);
    close(fd);
    char cmd[512], out[64];
    snprintf(out, sizeof(out), "%s.err", dtb);
    snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o /dev/null %s 2>%s", dtb, out);
    int rc = system(cmd);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char text[4096] = "";
    size_t got = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    unlink(out);
    unlink(dtb);
    if (rc != 0 || got)
        fail_msg("dtc: exit %d, said: %s", rc, text);
}

static int64_t fixed_now(void)
{
    return 1700000000;
}

static uint32_t rd(struct pl031 *p, uint64_t off)
{
    uint8_t b[4];
    pl031_ops.read(p, off, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr(struct pl031 *p, uint64_t off, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pl031_ops.write(p, off, b, 4);
}

/* The PL031: host time, a guest-set time kept as an offset, the IDs the
 * AMBA bus matches, and nothing for odd accesses. */
static void pl031(void **state)
{
    (void)state;
    struct pl031 p;
    pl031_init(&p);
    p.now = fixed_now;
    assert_int_equal(rd(&p, 0x00), 1700000000);
    wr(&p, 0x08, 1800000000); /* load */
    assert_int_equal(rd(&p, 0x00), 1800000000);
    assert_int_equal(rd(&p, 0x0c), 1);    /* running */
    assert_int_equal(rd(&p, 0x14), 0);    /* no alarm ever */
    wr(&p, 0x10, 0xffffffff);
    assert_int_equal(rd(&p, 0x10), 1);    /* one mask bit */
    assert_int_equal(rd(&p, 0xfe0), 0x31); /* part number 0x031 */
    assert_int_equal(rd(&p, 0xfe4), 0x10);
    assert_int_equal(rd(&p, 0xff0), 0x0d); /* PrimeCell ID */
    assert_int_equal(rd(&p, 0xffc), 0xb1);
    uint8_t b[2] = {0xaa, 0xaa};
    pl031_ops.read(&p, 0x00, b, 2);
    assert_int_equal(b[0] | b[1], 0);
    pl031_ops.write(&p, 0x09, b, 1); /* ignored */
    assert_int_equal(rd(&p, 0x00), 1800000000);
    pl031_release(&p);
}

/* host_info_arm64.c: KVM on arm64 is hardware (EL2); a QEMU virt host (its
 * device tree's compatible) or a Xen guest (/hypervisor) is itself a VM; no
 * x86 words in what it prints. */
static void host_info(void **state)
{
    (void)state;
    char root[64], p[160];
    snprintf(root, sizeof(root), "/tmp/arcvm-arm64-host.XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(p, sizeof(p), "%s/proc/device-tree", root);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", p);
    assert_int_equal(system(cmd), 0);

    struct hv_host_info hi;
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_HARDWARE);
    assert_false(hi.in_vm);
    assert_non_null(strstr(hi.cpu_desc, "EL2"));

    snprintf(p, sizeof(p), "%s/proc/device-tree/compatible", root);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fwrite("linux,dummy-virt\0", 1, 17, f); /* as the kernel shows it */
    fclose(f);
    hv_host_info(root, &hi);
    assert_true(hi.in_vm);

    f = fopen(p, "w");
    assert_non_null(f);
    fwrite("vendor,board\0vendor,soc\0", 1, 24, f);
    fclose(f);
    hv_host_info(root, &hi);
    assert_false(hi.in_vm);
    snprintf(p, sizeof(p), "%s/proc/device-tree/hypervisor", root);
    assert_int_equal(mkdir(p, 0755), 0);
    hv_host_info(root, &hi);
    assert_true(hi.in_vm);

    const char *hint = hv_setup_hint();
    assert_non_null(strstr(hint, "EL2"));
    assert_null(strstr(hint, "VT-x"));
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_ok),      cmocka_unit_test(image_old_kernel),
        cmocka_unit_test(image_refused), cmocka_unit_test(mpidr),
        cmocka_unit_test(fdt_contents),  cmocka_unit_test(fdt_limits),
        cmocka_unit_test(fdt_dtc),       cmocka_unit_test(pl031),
        cmocka_unit_test(host_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
