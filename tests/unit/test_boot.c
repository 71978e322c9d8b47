/* test_boot.c - bzImage header checks, zero page layout, e820, command
 * line, GDT and page tables. Offsets are those of the boot protocol. */
#include "unit.h"

#include "arch/arch.h"
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

#include <asm/bootparam.h>

static uint8_t img[64 * 1024];

static void put16(size_t off, uint16_t v)
{
    memcpy(img + off, &v, 2);
}

static void put32(size_t off, uint32_t v)
{
    memcpy(img + off, &v, 4);
}

/* A minimal well-formed bzImage: 4 setup sectors + boot sector, kernel. */
static size_t make_bzimage(void)
{
    memset(img, 0, sizeof(img));
    img[0x1f1] = 4;                       /* setup_sects */
    put32(0x1f4, (sizeof(img) - 5 * 512) / 16); /* syssize */
    put16(0x1fe, 0xaa55);
    img[0x201] = 0x62;                    /* header length: ends at 0x264 */
    put32(0x202, 0x53726448);             /* "HdrS" */
    put16(0x206, 0x020f);
    img[0x211] = 0x01;                    /* LOADED_HIGH */
    put32(0x22c, 0x7fffffff);             /* initrd_addr_max */
    img[0x234] = 1;                       /* relocatable */
    put16(0x236, XLF_KERNEL_64);
    put32(0x238, 2047);                   /* cmdline_size */
    uint64_t pref = 0x1000000;
    memcpy(img + 0x258, &pref, 8);
    put32(0x260, 0x100000);               /* init_size */
    img[0x250] = 0x77;                    /* a byte inside the header to be copied */
    return sizeof(img);
}

static void test_bzimage_ok(void **state)
{
    (void)state;
    struct bzimage bz;
    char err[256];
    size_t len = make_bzimage();
    assert_int_equal(x86_bzimage_parse(img, len, &bz, err, sizeof(err)), 0);
    assert_int_equal(bz.setup_size, 5 * 512);
    assert_int_equal(bz.kernel_offset, 5 * 512);
    assert_int_equal(bz.kernel_size, len - 5 * 512);
    assert_int_equal(bz.load_addr, 0x1000000);
    assert_int_equal(bz.init_size, 0x100000);
    assert_int_equal(bz.cmdline_size, 2047);
    assert_true(bz.relocatable);
    img[0x1f1] = 0; /* 0 setup sectors means 4 */
    assert_int_equal(x86_bzimage_parse(img, len, &bz, err, sizeof(err)), 0);
    assert_int_equal(bz.setup_size, 5 * 512);
}

static void test_bzimage_refused(void **state)
{
    (void)state;
    struct bzimage bz;
    char err[256];
    size_t len = make_bzimage();

    put16(0x236, 0); /* no XLF_KERNEL_64 */
    assert_int_equal(x86_bzimage_parse(img, len, &bz, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "64-bit"));

    make_bzimage();
    put16(0x206, 0x020b); /* protocol 2.11 */
    assert_int_equal(x86_bzimage_parse(img, len, &bz, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "2.11"));

    make_bzimage();
    assert_int_equal(x86_bzimage_parse(img, len / 2, &bz, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(x86_bzimage_parse(img, 5 * 512, &bz, err, sizeof(err)), -EINVAL);

    make_bzimage();
    img[0x211] = 0; /* zImage */
    assert_int_equal(x86_bzimage_parse(img, len, &bz, err, sizeof(err)), -EINVAL);

    make_bzimage();
    put32(0x202, 0); /* not a bzImage at all: the caller tries ELF */
    assert_int_equal(x86_bzimage_parse(img, len, &bz, err, sizeof(err)), -ENOEXEC);
    assert_int_equal(x86_bzimage_parse(img, 100, &bz, err, sizeof(err)), -ENOEXEC);

    make_bzimage();
    uint64_t bad = 0x1000; /* below 1 MiB */
    memcpy(img + 0x258, &bad, 8);
    assert_int_equal(x86_bzimage_parse(img, len, &bz, err, sizeof(err)), -EINVAL);
}

static void test_zero_page(void **state)
{
    (void)state;
    make_bzimage();
    struct e820_entry e[E820_MAX];
    unsigned n = x86_e820_build(512ull << 20, e, E820_MAX);
    static uint8_t zp[4096];
    x86_zero_page_fill(zp, img, 0x20000, 0x1f000000, 0x123456, e, n, 0xe0000);
    struct boot_params *bp = (struct boot_params *)zp;
    /* The layout our offsets assume: zero-page.rst. */
    assert_int_equal(offsetof(struct boot_params, hdr), 0x1f1);
    assert_int_equal(offsetof(struct boot_params, e820_table), 0x2d0);
    assert_int_equal(offsetof(struct boot_params, acpi_rsdp_addr), 0x070);
    assert_int_equal(bp->hdr.header, 0x53726448);
    assert_int_equal(bp->hdr.version, 0x020f);
    assert_int_equal(zp[0x250], 0x77); /* copied from the image */
    assert_int_equal(zp[0x210], 0xff); /* type_of_loader */
    assert_int_equal(bp->hdr.cmd_line_ptr, 0x20000);
    assert_int_equal(bp->hdr.ramdisk_image, 0x1f000000);
    assert_int_equal(bp->hdr.ramdisk_size, 0x123456);
    assert_int_equal(bp->acpi_rsdp_addr, 0xe0000);
    assert_int_equal(bp->e820_entries, n);
    assert_int_equal(bp->e820_table[0].addr, 0);
    assert_int_equal(bp->e820_table[0].type, E820_RAM);
    /* Nothing beyond the header was copied from the image. */
    for (size_t i = 0x264; i < 0x290; i++)
        assert_int_equal(zp[i], 0);

    /* 64-bit high halves. */
    x86_zero_page_fill(zp, img, 0x20000, 0x123400000ull, 0x1000, e, n, 0);
    assert_int_equal(bp->ext_ramdisk_image, 1);
    assert_int_equal(bp->hdr.ramdisk_image, 0x23400000);
}

static void test_e820(void **state)
{
    (void)state;
    struct e820_entry e[E820_MAX];
    unsigned n = x86_e820_build(256ull << 20, e, E820_MAX);
    assert_int_equal(n, 3);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, 0x9fc00);
    assert_int_equal(e[1].type, E820_RESERVED);
    assert_int_equal(e[1].addr + e[1].size, 0x100000);
    assert_int_equal(e[2].addr, 0x100000);
    assert_int_equal(e[2].addr + e[2].size, 256ull << 20);
    /* More than 3 GiB: the rest goes above 4 GiB, the hole stays free. */
    n = x86_e820_build(5ull << 30, e, E820_MAX);
    assert_int_equal(n, 4);
    assert_int_equal(e[2].addr + e[2].size, X86_MMIO_HOLE_START);
    assert_int_equal(e[3].addr, 4ull << 30);
    assert_int_equal(e[3].size, (5ull << 30) - X86_MMIO_HOLE_START);
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++)
        if (e[i].type == E820_RAM)
            total += e[i].size;
    assert_int_equal(total + (0x100000 - 0x9fc00), 5ull << 30);
    assert_int_equal(x86_e820_build(5ull << 30, e, 2), 2);
}

static void test_cmdline(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(x86_cmdline_build(out, sizeof(out), X86_CONSOLE_SERIAL, "quiet init=/bin/sh", false), 0);
    assert_true(!strncmp(out, "console=ttyS0 ", 14));
    assert_non_null(strstr(out, "reboot=k"));
    assert_non_null(strstr(out, "panic=1"));
    assert_non_null(strstr(out, " quiet init=/bin/sh"));
    assert_int_equal(out[strlen(out) - 1], 'h');
    assert_int_equal(x86_cmdline_build(out, sizeof(out), X86_CONSOLE_SERIAL, NULL, false), 0);
    assert_string_equal(out, x86_default_cmdline(X86_CONSOLE_SERIAL));
    assert_null(strstr(x86_default_cmdline(X86_CONSOLE_NONE), "console="));
    assert_non_null(strstr(x86_default_cmdline(X86_CONSOLE_VIRTIO), "console=hvc0"));
    strcpy(out, "a");
    assert_int_equal(x86_cmdline_append(out, sizeof(out), "b=1"), 0);
    assert_string_equal(out, "a b=1");
    out[0] = 0;
    assert_int_equal(x86_cmdline_append(out, sizeof(out), "c"), 0);
    assert_string_equal(out, "c");
    assert_int_equal(x86_cmdline_append(out, 4, "too long"), -E2BIG);
    assert_string_equal(out, "c");
    assert_int_equal(x86_cmdline_build(out, sizeof(out), X86_CONSOLE_SERIAL, "only this", true), 0);
    assert_string_equal(out, "only this");
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(x86_cmdline_build(out, sizeof(out), X86_CONSOLE_SERIAL, big, false), -E2BIG);
}

static void test_gdt_and_page_tables(void **state)
{
    (void)state;
    uint64_t gdt[X86_GDT_ENTRIES];
    x86_gdt_build(gdt);
    assert_int_equal(gdt[0], 0);
    /* 64-bit code: L set, D clear, present, DPL 0, execute/read. */
    uint64_t cs = gdt[X86_SEL_CODE64 >> 3];
    assert_true(cs & (1ull << 53));
    assert_false(cs & (1ull << 54));
    assert_true(cs & (1ull << 47));
    assert_int_equal((cs >> 40) & 0xf, 0xb);
    uint64_t ds = gdt[X86_SEL_DATA >> 3];
    assert_int_equal((ds >> 40) & 0xf, 0x3);
    assert_int_equal(X86_SEL_CODE64, 0x10); /* __BOOT_CS */
    assert_int_equal(X86_SEL_DATA, 0x18);   /* __BOOT_DS */

    static uint8_t pt[X86_PT_PAGES * 4096];
    x86_page_tables_build(pt, 0x9000);
    uint64_t *pml4 = (uint64_t *)pt, *pdpt = (uint64_t *)(pt + 4096), *pd = (uint64_t *)(pt + 8192);
    assert_int_equal(pml4[0], 0xa000 | 3);
    assert_int_equal(pml4[1], 0);
    for (int g = 0; g < 4; g++)
        assert_int_equal(pdpt[g], (0xb000 + g * 0x1000ull) | 3);
    assert_int_equal(pd[0], 0x83);
    assert_int_equal(pd[8], (8ull << 21) | 0x83); /* 16 MiB: the kernel */
    assert_int_equal(pd[2047], (2047ull << 21) | 0x83); /* last 2 MiB below 4 GiB */
}

static void test_initrd_addr(void **state)
{
    (void)state;
    assert_int_equal(x86_initrd_addr(0x1800, 0x100000, 0x10000000), 0x10000000 - 0x2000);
    assert_int_equal(x86_initrd_addr(0x1000, 0x100000, 0x10000000), 0x10000000 - 0x1000);
    assert_int_equal(x86_initrd_addr(0x10000000, 0x100000, 0x10000000), 0);
    assert_int_equal(x86_initrd_addr(UINT64_MAX, 0, 0x10000000), 0);
    assert_int_equal(x86_initrd_addr(0, 0, 0x10000000), 0);
}

/* The hotplug region: above RAM and 4 GiB, on a 2 GiB boundary, never in
 * the e820 map. */
static void test_memhp_base(void **state)
{
    (void)state;
    const uint64_t G = 1ull << 30;
    assert_int_equal(arch_memhp_base(512ull << 20), 4 * G);
    assert_int_equal(arch_memhp_base(3 * G), 4 * G);        /* RAM ends at the hole */
    assert_int_equal(arch_memhp_base(4 * G), 6 * G);        /* 1 GiB above 4 GiB */
    assert_int_equal(arch_memhp_base(7 * G), 8 * G);        /* ends exactly at 8 GiB */
    assert_int_equal(arch_memhp_base(7 * G + 4096), 10 * G);
    struct e820_entry e[8];
    unsigned n = x86_e820_build(4 * G, e, 8);
    for (unsigned i = 0; i < n; i++)
        assert_true(e[i].addr + e[i].size <= arch_memhp_base(4 * G));
}

int main(void)
{
    RUN(cmocka_unit_test(test_bzimage_ok), cmocka_unit_test(test_bzimage_refused),
        cmocka_unit_test(test_zero_page), cmocka_unit_test(test_e820),
        cmocka_unit_test(test_cmdline), cmocka_unit_test(test_gdt_and_page_tables),
        cmocka_unit_test(test_initrd_addr), cmocka_unit_test(test_memhp_base));
}
