/* test_acpi.c - ACPI tables: layout, checksums, and a clean disassembly by
 * iasl (acpica-tools), the reference AML/table compiler. */
#include "arch/x86/acpi.h"

#include "arch/arch.h"
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE 0xe0000ull

static uint8_t buf[0x20000];

static struct acpi_config config(unsigned ncpus, unsigned nmmio)
{
    struct acpi_config c = {.ncpus = ncpus, .com1_port = 0x3f8, .com1_irq = 4, .pm_port = 0x600,
                            .pm_reset_value = 1, .s5_type = 5, .rtc_century = 0x32,
                            .rtc_port = 0x70,
                            .kbd_port = 0x60, .kbd_irq = 1,
                            .nmmio = nmmio,
                            .vmgenid_addr = X86_VMGENID_ADDR, .ged_gsi = X86_IRQ_GED};
    for (unsigned i = 0; i < nmmio; i++)
        c.mmio[i] = (struct acpi_mmio_dev){0xd0000000ull + i * 0x1000, 0x1000, 16 + i};
    return c;
}

static void build(unsigned ncpus, unsigned nmmio)
{
    struct acpi_config c = config(ncpus, nmmio);
    long n = acpi_build(buf, sizeof(buf), BASE, &c);
    assert_true(n > 36);
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static const uint8_t *table_at(uint64_t gpa)
{
    assert_true(gpa >= BASE && gpa < BASE + sizeof(buf));
    return buf + (gpa - BASE);
}

/* Find a table through RSDP -> XSDT (and FADT -> DSDT). */
static const uint8_t *find(const char *sig)
{
    const uint8_t *xsdt = table_at(rd64(buf + 24));
    assert_memory_equal(xsdt, "XSDT", 4);
    unsigned n = (rd32(xsdt + 4) - 36) / 8;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *t = table_at(rd64(xsdt + 36 + 8 * i));
        if (!memcmp(t, sig, 4))
            return t;
        if (!memcmp(sig, "DSDT", 4) && !memcmp(t, "FACP", 4))
            return table_at(rd64(t + 140));
    }
    fail_msg("table %s not found", sig);
    return NULL;
}

static void test_checksums(void **state)
{
    (void)state;
    build(4, 3);
    assert_memory_equal(buf, "RSD PTR ", 8);
    assert_int_equal(acpi_sum(buf, 20), 0);
    assert_int_equal(acpi_sum(buf, 36), 0);
    const char *sigs[] = {"XSDT", "FACP", "APIC", "DSDT"};
    for (int i = 0; i < 4; i++) {
        const uint8_t *t = !strcmp(sigs[i], "XSDT") ? table_at(rd64(buf + 24)) : find(sigs[i]);
        assert_memory_equal(t, sigs[i], 4);
        assert_int_equal(acpi_sum(t, rd32(t + 4)), 0);
    }
}

static void test_fadt(void **state)
{
    (void)state;
    build(1, 0);
    const uint8_t *f = find("FACP");
    assert_int_equal(rd32(f + 4), 276);
    assert_int_equal(f[8], 6);
    uint32_t flags = rd32(f + 112);
    assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
    assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
    /* Sleep control register: system I/O, port 0x600. */
    assert_int_equal(f[244], 1);
    assert_int_equal(rd64(f + 248), 0x600);
    assert_int_equal(rd64(f + 260), 0x601);
    assert_int_equal(rd64(f + 120), 0x602); /* reset register */
    assert_int_equal(f[128], 1);            /* reset value */
    assert_int_equal(f[108], 0x32);         /* CMOS century index */
    assert_int_equal(rd32(f + 40), rd64(f + 140)); /* DSDT == X_DSDT */
}

static void test_madt(void **state)
{
    (void)state;
    build(4, 0);
    const uint8_t *m = find("APIC");
    uint32_t len = rd32(m + 4);
    assert_int_equal(rd32(m + 36), 0xfee00000u);
    unsigned lapics = 0, ioapics = 0;
    for (uint32_t off = 44; off < len; off += m[off + 1]) {
        assert_true(m[off + 1] >= 2);
        if (m[off] == 0) {
            assert_int_equal(m[off + 3], lapics); /* APIC ID = vCPU index */
            assert_int_equal(rd32(m + off + 4), 1);
            lapics++;
        } else if (m[off] == 1) {
            assert_int_equal(rd32(m + off + 4), 0xfec00000u);
            ioapics++;
        }
    }
    assert_int_equal(lapics, 4);
    assert_int_equal(ioapics, 1);
}

static int contains(const uint8_t *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = 0; i + l <= n; i++)
        if (!memcmp(p + i, s, l))
            return 1;
    return 0;
}

static void test_dsdt_devices(void **state)
{
    (void)state;
    build(2, 2);
    const uint8_t *d = find("DSDT");
    uint32_t len = rd32(d + 4);
    assert_true(contains(d, len, "LNRO0005"));
    assert_true(contains(d, len, "VR00"));
    assert_true(contains(d, len, "VR01"));
    assert_false(contains(d, len, "VR02"));
    assert_true(contains(d, len, "COM1"));
    assert_true(contains(d, len, "_S5_"));
    assert_true(contains(d, len, "RTC_"));
    assert_true(contains(d, len, "KBD_"));
}

/* Where @what (@n bytes) occurs in @p/@len, or fail. */
static const uint8_t *find_bytes(const uint8_t *p, size_t len, const void *what, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(p + i, what, n))
            return p + i;
    fail_msg("byte pattern not found");
    return NULL;
}

static void test_dsdt_vmgenid(void **state)
{
    (void)state;
    build(1, 2);
    const uint8_t *d = find("DSDT");
    uint32_t len = rd32(d + 4);
    assert_true(contains(d, len, "VGEN"));
    assert_true(contains(d, len, "VM_GEN_COUNTER")); /* _CID: what Linux's driver matches */
    /* Method(ADDR, 0) { Return(Package(2) { DWord low, DWord high }) } */
    uint32_t a = (uint32_t)X86_VMGENID_ADDR;
    const uint8_t addr[] = {'A', 'D', 'D', 'R', 0x00, 0xa4, 0x12, 0x0c, 0x02,
                            0x0c, (uint8_t)a, (uint8_t)(a >> 8), (uint8_t)(a >> 16),
                            (uint8_t)(a >> 24), 0x0c, 0, 0, 0, 0};
    find_bytes(d, len, addr, sizeof(addr));
    /* The GED: its _HID, an Extended Interrupt descriptor (consumer, edge,
     * active high, exclusive) for the GSI, and _EVT(1 arg) comparing Arg0
     * with it and notifying \_SB.VGEN with 0x80. */
    assert_true(contains(d, len, "GED_"));
    assert_true(contains(d, len, "ACPI0013"));
    const uint8_t irq[] = {0x89, 6, 0, 0x03, 1, X86_IRQ_GED, 0, 0, 0};
    find_bytes(d, len, irq, sizeof(irq));
    const uint8_t evt[] = {'_', 'E', 'V', 'T', 0x01, 0xa0};
    const uint8_t *e = find_bytes(d, len, evt, sizeof(evt));
    const uint8_t body[] = {0x93, 0x68, 0x0a, X86_IRQ_GED, 0x86, 0x5c, 0x2e, '_', 'S', 'B', '_',
                            'V', 'G', 'E', 'N', 0x0a, 0x80};
    find_bytes(e, (size_t)(d + len - e), body, sizeof(body));

    /* No address: neither device. */
    struct acpi_config c = config(1, 2);
    c.vmgenid_addr = 0;
    assert_true(acpi_build(buf, sizeof(buf), BASE, &c) > 36);
    d = find("DSDT");
    len = rd32(d + 4);
    assert_false(contains(d, len, "VGEN"));
    assert_false(contains(d, len, "ACPI0013"));
    assert_true(contains(d, len, "VR01"));
    /* The specification: 8-byte aligned, not across a page. */
    c.vmgenid_addr = X86_VMGENID_ADDR + 4;
    assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c), -EINVAL);
    c.vmgenid_addr = 0xdfff8;
    assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c), -EINVAL);
}

/* The ID's page is one the guest never takes as RAM, apart from the ACPI
 * tables (acpi_build() clears its whole area); the GED's line is no other
 * device's. */
static void test_vmgenid_placement(void **state)
{
    (void)state;
    struct e820_entry e[E820_MAX];
    unsigned n = x86_e820_build(512ull << 20, e, E820_MAX);
    unsigned reserved = 0;
    for (unsigned i = 0; i < n; i++) {
        bool in = X86_VMGENID_ADDR >= e[i].addr && X86_VMGENID_ADDR + 16 <= e[i].addr + e[i].size;
        bool overlaps = X86_VMGENID_ADDR < e[i].addr + e[i].size && e[i].addr < X86_VMGENID_ADDR + 16;
        if (in && e[i].type == E820_RESERVED)
            reserved++;
        else
            assert_false(overlaps);
    }
    assert_int_equal(reserved, 1);
    assert_true(X86_VMGENID_ADDR + 16 <= X86_ACPI_ADDR ||
                X86_VMGENID_ADDR >= X86_ACPI_ADDR + X86_ACPI_MAX);
    /* Below 1 MiB: readable through /dev/mem under STRICT_DEVMEM. */
    assert_true(X86_VMGENID_ADDR + 16 <= X86_HIMEM_START);

    assert_int_not_equal(X86_IRQ_GED, X86_IRQ_COM1);
    assert_int_not_equal(X86_IRQ_GED, X86_IRQ_KBD);
    assert_true(X86_IRQ_GED > 2); /* 0: the PIT, 2: its override on a PC */
    uint64_t base;
    uint32_t gsi;
    for (unsigned i = 0; arch_virtio_slot(i, &base, &gsi) == 0; i++)
        assert_int_not_equal(gsi, X86_IRQ_GED);
}

static void test_too_small(void **state)
{
    (void)state;
    struct acpi_config c = {.ncpus = 1, .pm_port = 0x600, .s5_type = 5};
    static uint8_t small[100];
    assert_int_equal(acpi_build(small, sizeof(small), BASE, &c), -ENOSPC);
    c.ncpus = 0;
    assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c), -EINVAL);
}

/* Write one table to a file and have iasl disassemble it; any error fails. */
static void iasl_check(const char *dir, const char *name, const uint8_t *t, size_t len)
{
    char path[256], cmd[768];
    snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t, 1, len, f), len);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat > %s.log 2>&1", dir, name, name);
    int rc = system(cmd);
    char log[256];
    snprintf(log, sizeof(log), "%s/%s.log", dir, name);
    if (rc != 0) {
        snprintf(cmd, sizeof(cmd), "cat %s", log);
        (void)!system(cmd);
    }
    assert_int_equal(rc, 0);
    /* iasl exits 0 on some warnings; the log must also be free of errors. */
    snprintf(cmd, sizeof(cmd), "grep -Eiq '(^|[^a-z])error|warning|invalid|checksum is incorrect' %s",
             log);
    if (system(cmd) == 0) {
        snprintf(cmd, sizeof(cmd), "cat %s", log);
        (void)!system(cmd);
        fail_msg("iasl reported problems with %s", name);
    }
}

static void test_iasl(void **state)
{
    (void)state;
    if (system("command -v iasl >/dev/null") != 0)
        fail_msg("iasl not installed: run scripts/install-deps.sh (package acpica-tools)");
    char dir[] = "/tmp/arcvm-acpi-XXXXXX";
    assert_non_null(mkdtemp(dir));
    build(4, 3);
    iasl_check(dir, "dsdt", find("DSDT"), rd32(find("DSDT") + 4));
    iasl_check(dir, "facp", find("FACP"), rd32(find("FACP") + 4));
    iasl_check(dir, "apic", find("APIC"), rd32(find("APIC") + 4));
    const uint8_t *x = table_at(rd64(buf + 24));
    iasl_check(dir, "xsdt", x, rd32(x + 4));
    /* The disassembled DSDT names our devices. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "grep -q LNRO0005 %s/dsdt.dsl && grep -q 'Memory32Fixed' %s/dsdt.dsl && "
             "grep -q '_S5_' %s/dsdt.dsl && grep -q 'PNP0501' %s/dsdt.dsl && "
             "grep -q 'PNP0B00' %s/dsdt.dsl",
             dir, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    /* The VM generation ID device and its GED, as ASL. */
    snprintf(cmd, sizeof(cmd),
             "cd %s && grep -q 'Device (VGEN)' dsdt.dsl && "
             "grep -q '_CID, \"VM_GEN_COUNTER\"' dsdt.dsl && "
             "grep -q 'Method (ADDR, 0' dsdt.dsl && grep -q '0x%08llX,' dsdt.dsl && "
             "grep -q 'ACPI0013' dsdt.dsl && "
             "grep -q 'Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive' dsdt.dsl && "
             "grep -q '0x%08X,' dsdt.dsl && grep -q 'Method (_EVT, 1' dsdt.dsl && "
             "grep -q 'If ((Arg0 == 0x%02X))' dsdt.dsl && "
             "grep -q 'Notify (\\\\_SB.VGEN, 0x80)' dsdt.dsl",
             dir, (unsigned long long)X86_VMGENID_ADDR, X86_IRQ_GED, X86_IRQ_GED);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "cat %s/dsdt.dsl", dir);
        (void)!system(cmd);
        fail_msg("the disassembled DSDT lacks the VGEN or GED device");
    }
    /* The disassembly compiles again without a complaint: ASL's own checks
     * (well-formed _HID, resource templates, method arguments). */
    snprintf(cmd, sizeof(cmd), "cd %s && iasl -p again dsdt.dsl > again.log 2>&1", dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof(cmd), "grep -q ' 0 Errors, 0 Warnings, 0 Remarks' %s/again.log", dir);
    if (rc != 0 || system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "cat %s/again.log", dir);
        (void)!system(cmd);
        fail_msg("iasl does not compile the disassembled DSDT cleanly");
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksums), cmocka_unit_test(test_fadt),
        cmocka_unit_test(test_madt),      cmocka_unit_test(test_dsdt_devices),
        cmocka_unit_test(test_dsdt_vmgenid), cmocka_unit_test(test_vmgenid_placement),
        cmocka_unit_test(test_too_small), cmocka_unit_test(test_iasl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
