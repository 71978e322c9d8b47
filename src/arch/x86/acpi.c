/* acpi.c - builds RSDP, XSDT, FADT, MADT and DSDT; see acpi.h.
 * Layouts: ACPI 6.4 chapters 5.2 (tables) and 20 (AML encoding); the
 * resource descriptors: chapter 6.4. */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define OEM_ID "ARCVM "      /* 6 bytes */
#define OEM_TABLE_ID "ARCVM   " /* 8 bytes */
#define CREATOR_ID "ARCV"
#define HDR_LEN 36

uint8_t acpi_sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

/* ---- a small append-only byte writer with overflow tracking ---- */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put8(struct wbuf *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put16(struct wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(w, b, 2);
}

static void put32(struct wbuf *w, uint32_t v)
{
    put16(w, (uint16_t)v);
    put16(w, (uint16_t)(v >> 16));
}

static void put64(struct wbuf *w, uint64_t v)
{
    put32(w, (uint32_t)v);
    put32(w, (uint32_t)(v >> 32));
}

static void set32(struct wbuf *w, size_t at, uint32_t v)
{
    if (!w->overflow && at + 4 <= w->len)
        for (int i = 0; i < 4; i++)
            w->p[at + i] = (uint8_t)(v >> (8 * i));
}

/* ---- AML ---- */

enum {
    AML_ZERO = 0x00, AML_ONE = 0x01, AML_NAME = 0x08, AML_BYTE = 0x0a, AML_WORD = 0x0b,
    AML_DWORD = 0x0c, AML_STRING = 0x0d, AML_QWORD = 0x0e, AML_SCOPE = 0x10, AML_BUFFER = 0x11,
    AML_PACKAGE = 0x12, AML_METHOD = 0x14, AML_DUAL_NAME = 0x2e, AML_EXT = 0x5b,
    AML_DEVICE = 0x82, AML_ROOT = 0x5c, AML_ARG0 = 0x68, AML_NOTIFY = 0x86, AML_LEQUAL = 0x93,
    AML_IF = 0xa0, AML_RETURN = 0xa4,
};

/* Start a PkgLength-prefixed body; returns where it begins. */
static size_t pkg_open(struct wbuf *w)
{
    return w->len;
}

/* Close the body started at @start: insert its PkgLength (1-4 bytes, which
 * count themselves) in front of it. */
static void pkg_close(struct wbuf *w, size_t start)
{
    if (w->overflow)
        return;
    size_t body = w->len - start;
    unsigned nb = body + 1 < 64 ? 1 : body + 2 < (1u << 12) ? 2 : body + 3 < (1u << 20) ? 3 : 4;
    size_t total = body + nb;
    if (nb > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memmove(w->p + start + nb, w->p + start, body);
    if (nb == 1) {
        w->p[start] = (uint8_t)total;
    } else {
        w->p[start] = (uint8_t)(((nb - 1) << 6) | (total & 0xf));
        for (unsigned i = 1; i < nb; i++)
            w->p[start + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    }
    w->len += nb;
}

static void aml_int(struct wbuf *w, uint64_t v)
{
    if (v == 0) {
        put8(w, AML_ZERO);
    } else if (v == 1) {
        put8(w, AML_ONE);
    } else if (v <= 0xff) {
        put8(w, AML_BYTE);
        put8(w, (uint8_t)v);
    } else if (v <= 0xffff) {
        put8(w, AML_WORD);
        put16(w, (uint16_t)v);
    } else if (v <= 0xffffffffu) {
        put8(w, AML_DWORD);
        put32(w, (uint32_t)v);
    } else {
        put8(w, AML_QWORD);
        put64(w, v);
    }
}

static void aml_string(struct wbuf *w, const char *s)
{
    put8(w, AML_STRING);
    put(w, s, strlen(s) + 1);
}

/* Name(NAME, <value written by the caller next>) */
static void aml_name(struct wbuf *w, const char name[4])
{
    put8(w, AML_NAME);
    put(w, name, 4);
}

/* EISA ID "PNP0501" -> its 32-bit compressed form. */
static uint32_t eisa_id(const char *id)
{
    unsigned c1 = (unsigned)(id[0] - 0x40), c2 = (unsigned)(id[1] - 0x40),
             c3 = (unsigned)(id[2] - 0x40);
    unsigned hex = 0;
    for (int i = 3; i < 7; i++) {
        char c = id[i];
        hex = (hex << 4) | (unsigned)(c <= '9' ? c - '0' : c - 'A' + 10);
    }
    uint8_t b0 = (uint8_t)((c1 << 2) | (c2 >> 3));
    uint8_t b1 = (uint8_t)(((c2 & 7) << 5) | c3);
    return b0 | (uint32_t)b1 << 8 | (uint32_t)(hex >> 8) << 16 | (uint32_t)(hex & 0xff) << 24;
}

/* Name(_CRS, ResourceTemplate() { ... }) from raw descriptor bytes. */
static void aml_crs(struct wbuf *w, const uint8_t *res, size_t n)
{
    aml_name(w, "_CRS");
    put8(w, AML_BUFFER);
    size_t b = pkg_open(w);
    aml_int(w, n + 2);
    put(w, res, n);
    put8(w, 0x79); /* end tag */
    put8(w, 0x00); /* checksum 0: "treat as correct" */
    pkg_close(w, b);
}

static size_t res_io(uint8_t *r, uint16_t port, uint8_t len)
{
    /* Small I/O port descriptor: 16-bit decode, fixed min = max. */
    uint8_t d[8] = {0x47, 0x01, (uint8_t)port, (uint8_t)(port >> 8), (uint8_t)port,
                    (uint8_t)(port >> 8), 0x01, len};
    memcpy(r, d, sizeof(d));
    return sizeof(d);
}

static size_t res_irq_noflags(uint8_t *r, unsigned irq)
{
    /* Small IRQ descriptor, two-byte form: edge, active high, exclusive. */
    uint16_t mask = (uint16_t)(1u << irq);
    r[0] = 0x22;
    r[1] = (uint8_t)mask;
    r[2] = (uint8_t)(mask >> 8);
    return 3;
}

static size_t res_mem32_fixed(uint8_t *r, uint32_t base, uint32_t len)
{
    /* Large Memory32Fixed descriptor, read/write. */
    uint8_t d[12] = {0x86, 9, 0, 0x01};
    for (int i = 0; i < 4; i++) {
        d[4 + i] = (uint8_t)(base >> (8 * i));
        d[8 + i] = (uint8_t)(len >> (8 * i));
    }
    memcpy(r, d, sizeof(d));
    return sizeof(d);
}

static size_t res_ext_irq(uint8_t *r, uint32_t gsi)
{
    /* Large Extended Interrupt descriptor: consumer (bit 0), edge
     * (bit 1), active high (bit 2 clear), exclusive; one interrupt. */
    uint8_t d[9] = {0x89, 6, 0, 0x03, 1};
    for (int i = 0; i < 4; i++)
        d[5 + i] = (uint8_t)(gsi >> (8 * i));
    memcpy(r, d, sizeof(d));
    return sizeof(d);
}

static void aml_device_open(struct wbuf *w, const char name[4], size_t *start)
{
    put8(w, AML_EXT);
    put8(w, AML_DEVICE);
    *start = pkg_open(w);
    put(w, name, 4);
}

/* Method(NAME, @nargs, NotSerialized) { body written by the caller, closed
 * with pkg_close(*@start) }. */
static void aml_method_open(struct wbuf *w, const char name[4], unsigned nargs, size_t *start)
{
    put8(w, AML_METHOD);
    *start = pkg_open(w);
    put(w, name, 4);
    put8(w, (uint8_t)(nargs & 7)); /* MethodFlags: ArgCount, not serialized, SyncLevel 0 */
}

/* The VM generation ID device, as Microsoft's specification and Linux's
 * vmgenid driver want it: found by its _CID "VM_GEN_COUNTER", with an ADDR
 * method returning the ID's guest-physical address as
 * Package(){low 32 bits, high 32 bits}. The _HID is ours, like QEMU's
 * "QEMUVGID", but a well-formed ACPI ID (vendor "ARCV" as in the tables'
 * creator ID, four hex digits), so the disassembled DSDT compiles again;
 * Linux's other ID, "VMGENCTR", is not one. */
static void dsdt_vmgenid(struct wbuf *w, uint64_t addr)
{
    size_t dev, m, pkg;
    aml_device_open(w, "VGEN", &dev);
    aml_name(w, "_HID");
    aml_string(w, "ARCV0001");
    aml_name(w, "_CID");
    aml_string(w, "VM_GEN_COUNTER");
    aml_name(w, "_DDN");
    aml_string(w, "VM_GEN_COUNTER");
    aml_method_open(w, "ADDR", 0, &m);
    put8(w, AML_RETURN);
    put8(w, AML_PACKAGE);
    pkg = pkg_open(w);
    put8(w, 2);
    put8(w, AML_DWORD);
    put32(w, (uint32_t)addr);
    put8(w, AML_DWORD);
    put32(w, (uint32_t)(addr >> 32));
    pkg_close(w, pkg);
    pkg_close(w, m);
    pkg_close(w, dev);
}

/* A Generic Event Device (ACPI 6.4, 5.6.9 "Interrupt-signaled ACPI
 * events") with one interrupt: when it fires, the OS runs _EVT(GSI), which
 * sends the VGEN device Notify 0x80 ("the ID changed"; Linux's driver then
 * reads it again). No status register: one line means one event. */
static void dsdt_ged(struct wbuf *w, uint32_t gsi)
{
    size_t dev, m, cond;
    aml_device_open(w, "GED_", &dev);
    aml_name(w, "_HID");
    aml_string(w, "ACPI0013");
    uint8_t res[16];
    size_t n = res_ext_irq(res, gsi);
    aml_crs(w, res, n);
    aml_method_open(w, "_EVT", 1, &m);
    put8(w, AML_IF);
    cond = pkg_open(w);
    put8(w, AML_LEQUAL); /* If (Arg0 == gsi) */
    put8(w, AML_ARG0);
    aml_int(w, gsi);
    put8(w, AML_NOTIFY); /* Notify(\_SB.VGEN, 0x80) */
    put8(w, AML_ROOT);
    put8(w, AML_DUAL_NAME);
    put(w, "_SB_VGEN", 8);
    aml_int(w, 0x80);
    pkg_close(w, cond);
    pkg_close(w, m);
    pkg_close(w, dev);
}

static void dsdt_body(struct wbuf *w, const struct acpi_config *c)
{
    put8(w, AML_SCOPE);
    size_t scope = pkg_open(w);
    put8(w, AML_ROOT);
    put(w, "_SB_", 4);

    if (c->com1_port) {
        size_t dev;
        aml_device_open(w, "COM1", &dev);
        aml_name(w, "_HID");
        put8(w, AML_DWORD);
        put32(w, eisa_id("PNP0501")); /* 16550A-compatible COM port */
        aml_name(w, "_UID");
        aml_int(w, 1);
        uint8_t res[16];
        size_t n = res_io(res, c->com1_port, 8);
        n += res_irq_noflags(res + n, c->com1_irq);
        aml_crs(w, res, n);
        pkg_close(w, dev);
    }
    if (c->rtc_port) {
        /* The CMOS clock, ports only. Without an interrupt resource Linux's
         * rtc_cmos runs without alarms on a platform with no legacy IRQs;
         * its static fallback (IRQ 8) has no mapping there and fails. */
        size_t dev;
        aml_device_open(w, "RTC_", &dev);
        aml_name(w, "_HID");
        put8(w, AML_DWORD);
        put32(w, eisa_id("PNP0B00")); /* AT real-time clock */
        uint8_t res[8];
        size_t n = res_io(res, c->rtc_port, 2);
        aml_crs(w, res, n);
        pkg_close(w, dev);
    }
    if (c->kbd_port) {
        /* The PS/2 keyboard controller: listed so Linux's i8042 driver gets
         * its interrupt through ACPI; on a platform without legacy IRQs its
         * built-in fallback (IRQ 1) has no mapping. */
        size_t dev;
        aml_device_open(w, "KBD_", &dev);
        aml_name(w, "_HID");
        put8(w, AML_DWORD);
        put32(w, eisa_id("PNP0303")); /* IBM enhanced keyboard (101/102-key) */
        uint8_t res[24];
        size_t n = res_io(res, c->kbd_port, 1);
        n += res_io(res + n, (uint16_t)(c->kbd_port + 4), 1);
        n += res_irq_noflags(res + n, c->kbd_irq);
        aml_crs(w, res, n);
        pkg_close(w, dev);
    }
    for (unsigned i = 0; i < c->nmmio && i < ACPI_MAX_MMIO_DEVS; i++) {
        char name[5];
        snprintf(name, sizeof(name), "VR%02X", i);
        size_t dev;
        aml_device_open(w, name, &dev);
        aml_name(w, "_HID");
        aml_string(w, "LNRO0005"); /* virtio-mmio, as Linux's driver matches it */
        aml_name(w, "_UID");
        aml_int(w, i);
        uint8_t res[32];
        size_t n = res_mem32_fixed(res, (uint32_t)c->mmio[i].base, c->mmio[i].size);
        n += res_ext_irq(res + n, c->mmio[i].gsi);
        aml_crs(w, res, n);
        pkg_close(w, dev);
    }
    if (c->vmgenid_addr) {
        dsdt_vmgenid(w, c->vmgenid_addr);
        dsdt_ged(w, c->ged_gsi);
    }
    pkg_close(w, scope);

    /* \_S5: soft-off sleep type for SLP_TYPa and SLP_TYPb. */
    aml_name(w, "_S5_");
    put8(w, AML_PACKAGE);
    size_t pkg = pkg_open(w);
    put8(w, 2);
    aml_int(w, c->s5_type);
    aml_int(w, c->s5_type);
    pkg_close(w, pkg);
}

/* ---- tables ---- */

static size_t header(struct wbuf *w, const char sig[4], uint8_t rev)
{
    size_t at = w->len;
    put(w, sig, 4);
    put32(w, 0); /* length, set by finish() */
    put8(w, rev);
    put8(w, 0);  /* checksum, set by finish() */
    put(w, OEM_ID, 6);
    put(w, OEM_TABLE_ID, 8);
    put32(w, 1); /* OEM revision */
    put(w, CREATOR_ID, 4);
    put32(w, 1); /* creator revision */
    return at;
}

static void finish(struct wbuf *w, size_t at)
{
    if (w->overflow)
        return;
    set32(w, at + 4, (uint32_t)(w->len - at));
    w->p[at + 9] = (uint8_t)(0 - acpi_sum(w->p + at, w->len - at));
}

static void align(struct wbuf *w, size_t a)
{
    while (!w->overflow && w->len % a)
        put8(w, 0);
}

/* Generic Address Structure for a byte-wide I/O port. */
static void gas_io8(struct wbuf *w, uint16_t port)
{
    put8(w, 1); /* address space: system I/O */
    put8(w, 8); /* register bit width */
    put8(w, 0); /* bit offset */
    put8(w, 1); /* access size: byte */
    put64(w, port);
}

static void gas_none(struct wbuf *w)
{
    for (int i = 0; i < 12; i++)
        put8(w, 0);
}

#define FADT_WBINVD (1u << 0)
#define FADT_PWR_BUTTON (1u << 4) /* no fixed power button */
#define FADT_SLP_BUTTON (1u << 5) /* no fixed sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED (1u << 20)
#define IAPC_NO_VGA (1u << 2)

static void fadt(struct wbuf *w, uint64_t dsdt, const struct acpi_config *c)
{
    size_t at = header(w, "FACP", 6);
    put32(w, 0);                  /* FIRMWARE_CTRL: no FACS (hardware-reduced) */
    put32(w, (uint32_t)dsdt);     /* DSDT */
    put8(w, 0);                   /* reserved */
    put8(w, 0);                   /* preferred PM profile: unspecified */
    put16(w, 0);                  /* SCI_INT: none, no fixed hardware */
    put32(w, 0);                  /* SMI_CMD: no SMM, ACPI always on */
    for (int i = 0; i < 4; i++)   /* ACPI_ENABLE/DISABLE, S4BIOS_REQ, PSTATE_CNT */
        put8(w, 0);
    for (int i = 0; i < 8; i++)   /* PM1a/b EVT/CNT, PM2_CNT, PM_TMR, GPE0/1 blocks */
        put32(w, 0);
    for (int i = 0; i < 8; i++)   /* their lengths, GPE1_BASE, CST_CNT */
        put8(w, 0);
    put16(w, 0);                  /* P_LVL2_LAT */
    put16(w, 0);                  /* P_LVL3_LAT */
    put16(w, 0);                  /* FLUSH_SIZE */
    put16(w, 0);                  /* FLUSH_STRIDE */
    put8(w, 0);                   /* DUTY_OFFSET */
    put8(w, 0);                   /* DUTY_WIDTH */
    put8(w, 0);                   /* DAY_ALRM */
    put8(w, 0);                   /* MON_ALRM */
    put8(w, c->rtc_century);      /* CENTURY */
    /* No i8042 bit: Linux then skips probing a keyboard controller. */
    put16(w, IAPC_NO_VGA);        /* IAPC_BOOT_ARCH */
    put8(w, 0);                   /* reserved */
    put32(w, FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP |
                 FADT_HW_REDUCED);
    gas_io8(w, (uint16_t)(c->pm_port + 2)); /* RESET_REG */
    put8(w, c->pm_reset_value);   /* RESET_VALUE */
    put16(w, 0);                  /* ARM_BOOT_ARCH */
    put8(w, 5);                   /* FADT minor version: 6.5 */
    put64(w, 0);                  /* X_FIRMWARE_CTRL */
    put64(w, dsdt);               /* X_DSDT */
    for (int i = 0; i < 8; i++)   /* X_PM1a_EVT .. X_GPE1: none */
        gas_none(w);
    gas_io8(w, c->pm_port);       /* SLEEP_CONTROL_REG */
    gas_io8(w, (uint16_t)(c->pm_port + 1)); /* SLEEP_STATUS_REG */
    put(w, "ARCVM\0\0\0", 8);     /* hypervisor vendor identity */
    finish(w, at);
}

static void madt(struct wbuf *w, const struct acpi_config *c)
{
    size_t at = header(w, "APIC", 5);
    put32(w, 0xfee00000u); /* local APIC address */
    put32(w, 0);           /* flags: no PC-AT 8259s in use (hardware-reduced) */
    for (unsigned i = 0; i < c->ncpus; i++) {
        put8(w, 0);        /* processor local APIC */
        put8(w, 8);
        put8(w, (uint8_t)i); /* ACPI processor UID */
        put8(w, (uint8_t)i); /* APIC ID */
        put32(w, 1);       /* enabled */
    }
    put8(w, 1);            /* I/O APIC */
    put8(w, 12);
    put8(w, 0);            /* I/O APIC ID */
    put8(w, 0);
    put32(w, 0xfec00000u); /* address */
    put32(w, 0);           /* GSI base */
    put8(w, 4);            /* local APIC NMI: all processors, LINT1 */
    put8(w, 6);
    put8(w, 0xff);
    put16(w, 0);           /* flags: bus-conformant polarity/trigger */
    put8(w, 1);
    finish(w, at);
}

long acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *c)
{
    struct wbuf w = {buf, 0, len, false};
    if (c->ncpus == 0 || c->ncpus > 255 || c->nmmio > ACPI_MAX_MMIO_DEVS)
        return -EINVAL;
    /* The specification wants the ID 8-byte aligned and in one page. */
    if (c->vmgenid_addr && (c->vmgenid_addr % 8 || (c->vmgenid_addr & 0xfff) + 16 > 0x1000))
        return -EINVAL;
    memset(buf, 0, len);

    /* RSDP (36 bytes), then the tables, each 16-byte aligned. */
    w.len = 48;
    size_t dsdt_at = w.len;
    size_t at = header(&w, "DSDT", 2);
    dsdt_body(&w, c);
    finish(&w, at);
    align(&w, 16);

    size_t fadt_at = w.len;
    fadt(&w, gpa + dsdt_at, c);
    align(&w, 16);

    size_t madt_at = w.len;
    madt(&w, c);
    align(&w, 16);

    size_t xsdt_at = w.len;
    at = header(&w, "XSDT", 1);
    put64(&w, gpa + fadt_at);
    put64(&w, gpa + madt_at);
    finish(&w, at);
    align(&w, 16);
    if (w.overflow)
        return -ENOSPC;

    /* RSDP: checksum over the first 20 bytes, extended over all 36. */
    struct wbuf r = {buf, 0, 36, false};
    put(&r, "RSD PTR ", 8);
    put8(&r, 0);
    put(&r, OEM_ID, 6);
    put8(&r, 2);     /* revision: ACPI 2.0+ with XSDT */
    put32(&r, 0);    /* RSDT address: none */
    put32(&r, 36);   /* length */
    put64(&r, gpa + xsdt_at);
    put8(&r, 0);     /* extended checksum */
    put8(&r, 0);
    put16(&r, 0);
    buf[8] = (uint8_t)(0 - acpi_sum(buf, 20));
    buf[32] = (uint8_t)(0 - acpi_sum(buf, 36));
    return (long)w.len;
}
