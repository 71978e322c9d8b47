/* virtq-attack.c - a hostile virtio driver, run as root inside a test guest.
 *
 * It takes a virtio-blk device away from the kernel (unbinds its
 * virtio-mmio platform device), drives the device's registers through
 * /dev/mem, and feeds it malformed virtqueues: descriptor loops, huge
 * lengths, addresses outside RAM, 64-bit overflow, bad indices, indirect
 * abuse. After each attack it prints what the device said and resets it.
 * Finally it hands the device back to the kernel. The test around it checks
 * that arcvm survived and the disk is intact.
 *
 * Usage: virtq-attack SERIAL [ro]  (the disk's id as given to --disk ...,id=;
 *        "ro": the disk is read-only, so a well-formed write must fail too)
 * Output: one "ATTACK <name> status=0x.. blk=.." line per attack, then
 * "ATTACK-DONE ok=N" or "ATTACK-FAIL <why>".
 */
#include "mmio-driver.h"

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>

#define QSIZE 8

static uint8_t *mem;       /* 4 pages: desc, avail, used, data */
static uint64_t page_phys[4]; /* their physical addresses */

/* Find the virtio device whose blk serial is @serial: returns the platform
 * device name (LNRO0005:NN) and its MMIO base. */
static int find_device(const char *serial, char *plat, size_t plen, uint64_t *base)
{
    DIR *d = opendir("/sys/block");
    if (!d)
        die("/sys/block");
    struct dirent *e;
    char path[PATH_MAX], buf[PATH_MAX];
    int found = 0;
    while (!found && (e = readdir(d))) {
        if (strncmp(e->d_name, "vd", 2))
            continue;
        snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char s[64] = "";
        if (fgets(s, sizeof(s), f))
            s[strcspn(s, "\n")] = 0;
        fclose(f);
        if (strcmp(s, serial))
            continue;
        snprintf(path, sizeof(path), "/sys/block/%s/device", e->d_name);
        /* .../platform/LNRO0005:NN/virtioM: the platform device is the parent. */
        if (!realpath(path, buf))
            continue;
        char *v = strrchr(buf, '/');
        if (!v)
            continue;
        *v = 0;
        char *p = strrchr(buf, '/');
        p = p ? p + 1 : buf;
        if (strlen(p) >= plen)
            continue;
        memcpy(plat, p, strlen(p) + 1);
        found = 1;
    }
    closedir(d);
    if (!found)
        return -1;
    return iomem_base(plat, base);
}

static struct desc *dt(void) { return (struct desc *)mem; }
static uint16_t *avail(void) { return (uint16_t *)(mem + 4096); }
static uint8_t *data(void) { return mem + 12288; }

/* Reset and bring the device up with one queue of QSIZE entries. Returns
 * the status read back. */
static uint32_t setup(uint32_t features_lo, uint32_t features_hi)
{
    wr(REG_STATUS, 0);
    memset(mem, 0, 4 * 4096);
    mmio_begin(features_lo, features_hi);
    mmio_queue(0, QSIZE, page_phys[0], page_phys[1], page_phys[2]);
    return mmio_live();
}

/* Publish head @h in the avail ring (avail idx += 1 unless @idx_jump), kick,
 * wait a little, return the status register. */
static uint32_t kick(uint16_t h, uint16_t idx_jump)
{
    uint16_t idx = avail()[1];
    avail()[2 + idx % QSIZE] = h;
    __sync_synchronize();
    avail()[1] = (uint16_t)(idx + (idx_jump ? idx_jump : 1));
    __sync_synchronize();
    wr(REG_QUEUE_NOTIFY, 0);
    usleep(200 * 1000);
    wr(REG_INTERRUPT_ACK, rd(REG_INTERRUPT_STATUS));
    return rd(REG_STATUS);
}

/* A blk request header (type, reserved, sector) in data page at @off. */
static uint64_t put_hdr(unsigned off, uint32_t type, uint64_t sector)
{
    memcpy(data() + off, &type, 4);
    memset(data() + off + 4, 0, 4);
    memcpy(data() + off + 8, &sector, 8);
    return page_phys[3] + off;
}

static int ok_count;

/* @want_blk: the request's status byte (0 OK, 1 IOERR), or -1 when the
 * device must refuse the queue instead (NEEDS_RESET). */
static void report(const char *name, uint32_t status, int want_blk)
{
    int reset = (status & 64) != 0;
    uint8_t blk = data()[4000];
    int good = want_blk < 0 ? reset : !reset && blk == want_blk;
    printf("ATTACK %s status=0x%02x blk=%u %s\n", name, status, blk,
           good ? "as-expected" : "UNEXPECTED");
    ok_count += good;
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "ro"))) {
        fprintf(stderr, "usage: virtq-attack SERIAL [ro]\n");
        return 2;
    }
    int readonly = argc == 3;
    char plat[64];
    uint64_t base;
    if (find_device(argv[1], plat, sizeof(plat), &base) < 0) {
        printf("ATTACK-FAIL no virtio-blk disk with serial %s\n", argv[1]);
        return 1;
    }
    printf("ATTACK target %s at 0x%" PRIx64 "\n", plat, base);
    mmio_take(plat, base);
    if (rd(REG_MAGIC) != MMIO_MAGIC || rd(REG_DEVICE_ID) != 2) {
        printf("ATTACK-FAIL not a virtio-blk register window\n");
        return 1;
    }
    mem = dma_pages(4, page_phys);
    const uint32_t f_lo = 1u << 28 /* INDIRECT_DESC */, f_hi = 1 /* VERSION_1 */;

    /* 1. A well-formed read of sector 0, to show the driver works at all. */
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){put_hdr(0, 0, 0), 16, F_NEXT, 1};
    dt()[1] = (struct desc){page_phys[3] + 512, 512, F_NEXT | F_WRITE, 2};
    dt()[2] = (struct desc){page_phys[3] + 4000, 1, F_WRITE, 0};
    data()[4000] = 0xee;
    report("valid-read", kick(0, 0), 0);

    /* 2. A descriptor loop in the ring. */
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){put_hdr(0, 0, 0), 16, F_NEXT, 1};
    dt()[1] = (struct desc){page_phys[3] + 512, 512, F_NEXT | F_WRITE, 0};
    report("ring-loop", kick(0, 0), -1);

    /* 3. A huge length. */
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){put_hdr(0, 0, 0), 0xffffffffu, 0, 0};
    report("huge-length", kick(0, 0), -1);

    /* 4. Addresses outside guest RAM: far above it, in the MMIO hole, and
     * wrapping past 2^64. */
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){0x7ffffffff000ull, 16, 0, 0};
    report("addr-beyond-ram", kick(0, 0), -1);
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){base, 16, 0, 0};
    report("addr-in-mmio", kick(0, 0), -1);
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){0xfffffffffffff000ull, 0x2000, 0, 0};
    report("addr-overflow", kick(0, 0), -1);

    /* 5. Bad indices: head beyond the queue, next beyond it, avail idx
     * claiming more buffers than the ring holds. */
    setup(f_lo, f_hi);
    report("head-out-of-range", kick(200, 0), -1);
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){put_hdr(0, 0, 0), 16, F_NEXT, 77};
    report("next-out-of-range", kick(0, 0), -1);
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){put_hdr(0, 0, 0), 16, 0, 0};
    report("avail-idx-jump", kick(0, 1000), -1);

    /* 6. Indirect abuse: a loop inside the table, a nested table, a table
     * length that is not a multiple of 16, INDIRECT without the feature. */
    struct desc *ind = (struct desc *)(data() + 1024);
    uint64_t ind_phys = page_phys[3] + 1024;
    setup(f_lo, f_hi);
    ind[0] = (struct desc){put_hdr(0, 0, 0), 16, F_NEXT, 1};
    ind[1] = (struct desc){page_phys[3] + 512, 512, F_NEXT | F_WRITE, 0};
    dt()[0] = (struct desc){ind_phys, 32, F_INDIRECT, 0};
    report("indirect-loop", kick(0, 0), -1);
    setup(f_lo, f_hi);
    ind[0] = (struct desc){ind_phys, 32, F_INDIRECT, 0};
    dt()[0] = (struct desc){ind_phys, 32, F_INDIRECT, 0};
    report("indirect-nested", kick(0, 0), -1);
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){ind_phys, 33, F_INDIRECT, 0};
    report("indirect-bad-len", kick(0, 0), -1);
    setup(0, f_hi);
    ind[0] = (struct desc){put_hdr(0, 0, 0), 16, 0, 0};
    dt()[0] = (struct desc){ind_phys, 16, F_INDIRECT, 0};
    report("indirect-not-negotiated", kick(0, 0), -1);

    /* 7. Well-formed chains with bad requests: the request fails (status
     * byte 1, IOERR), the device stays live. A read past the end of the
     * disk; a write whose sector * 512 overflows 64 bits. */
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){put_hdr(0, 0, 1ull << 40), 16, F_NEXT, 1};
    dt()[1] = (struct desc){page_phys[3] + 512, 512, F_NEXT | F_WRITE, 2};
    dt()[2] = (struct desc){page_phys[3] + 4000, 1, F_WRITE, 0};
    data()[4000] = 0xee;
    report("read-past-end", kick(0, 0), 1);
    setup(f_lo, f_hi);
    dt()[0] = (struct desc){put_hdr(0, 1, UINT64_MAX / 256), 16, F_NEXT, 1};
    dt()[1] = (struct desc){page_phys[3] + 512, 512, F_NEXT, 2};
    dt()[2] = (struct desc){page_phys[3] + 4000, 1, F_WRITE, 0};
    data()[4000] = 0xee;
    report("write-sector-overflow", kick(0, 0), 1);

    /* 8. On a read-only disk a well-formed write fails in the host, whatever
     * the driver thinks of the F_RO feature it was offered. */
    int total = 15;
    if (readonly) {
        setup(f_lo, f_hi);
        memset(data() + 512, 0xa5, 512);
        dt()[0] = (struct desc){put_hdr(0, 1, 0), 16, F_NEXT, 1};
        dt()[1] = (struct desc){page_phys[3] + 512, 512, F_NEXT, 2};
        dt()[2] = (struct desc){page_phys[3] + 4000, 1, F_WRITE, 0};
        data()[4000] = 0xee;
        report("write-readonly", kick(0, 0), 1);
        total++;
    }

    /* Give the device back to the kernel. */
    mmio_give_back(plat);
    printf("ATTACK-DONE ok=%d of %d\n", ok_count, total);
    return ok_count == total ? 0 : 1;
}
