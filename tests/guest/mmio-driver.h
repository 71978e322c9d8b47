/* mmio-driver.h - a user-space virtio-mmio driver for the hostile test
 * programs (virtq-attack.c, fuse-attack.c), run as root in a test guest.
 *
 * It takes a device away from the kernel (unbinds its virtio-mmio platform
 * device, LNRO0005:NN), maps its registers through /dev/mem (only once
 * unbound: the kernel's IO_STRICT_DEVMEM refuses busy regions), and builds
 * split virtqueues in locked anonymous pages whose physical addresses come
 * from /proc/self/pagemap. Failures print "ATTACK-FAIL <what>" and exit 1.
 * Everything is static inline: each program includes it once.
 */
#ifndef ARCVM_TESTS_GUEST_MMIO_DRIVER_H
#define ARCVM_TESTS_GUEST_MMIO_DRIVER_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* virtio-mmio v2 registers (virtio 1.2, 4.2.2). */
#define REG_MAGIC 0x000
#define REG_DEVICE_ID 0x008
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC 0x080
#define REG_QUEUE_DRIVER 0x090
#define REG_QUEUE_DEVICE 0x0a0
#define REG_CONFIG 0x100
#define MMIO_MAGIC 0x74726976 /* "virt" */

/* Device status bits. */
#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 64

/* Descriptor flags. */
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static volatile uint32_t *regs;

static inline void die(const char *what)
{
    printf("ATTACK-FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static inline uint32_t rd(unsigned off)
{
    return regs[off / 4];
}

static inline void wr(unsigned off, uint32_t v)
{
    regs[off / 4] = v;
    __sync_synchronize();
}

static inline uint64_t virt_to_phys(void *p)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0)
        die("pagemap");
    uint64_t e, vpn = (uintptr_t)p / 4096;
    if (pread(fd, &e, 8, (off_t)(vpn * 8)) != 8)
        die("pagemap read");
    close(fd);
    if (!(e & (1ull << 63)))
        die("page not present");
    return (e & ((1ull << 55) - 1)) * 4096 + (uintptr_t)p % 4096;
}

/* @n locked, zeroed pages; their physical addresses in @phys[0..n). */
static inline uint8_t *dma_pages(unsigned n, uint64_t *phys)
{
    uint8_t *m = mmap(NULL, (size_t)n * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
    if (m == MAP_FAILED)
        die("mmap rings");
    for (unsigned i = 0; i < n; i++)
        phys[i] = virt_to_phys(m + 4096 * i);
    return m;
}

static inline void sysfs_write(const char *path, const char *val)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, val, strlen(val)) < 0)
        die(path);
    close(fd);
}

/* The MMIO base of platform device @plat (LNRO0005:NN), from /proc/iomem. */
static inline int iomem_base(const char *plat, uint64_t *base)
{
    FILE *f = fopen("/proc/iomem", "r");
    if (!f)
        die("/proc/iomem");
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        unsigned long long lo, hi;
        char name[128];
        if (sscanf(line, " %llx-%llx : %127s", &lo, &hi, name) == 3 && !strcmp(name, plat)) {
            *base = lo;
            fclose(f);
            return 0;
        }
    }
    fclose(f);
    return -1;
}

/* Take @plat from the kernel and map its registers (regs). */
static inline void mmio_take(const char *plat, uint64_t base)
{
    sysfs_write("/sys/bus/platform/drivers/virtio-mmio/unbind", plat);
    int fd = open("/dev/mem", O_RDWR | O_SYNC);
    if (fd < 0)
        die("/dev/mem");
    void *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
    if (r == MAP_FAILED)
        die("mmap registers");
    close(fd); /* the mapping stays */
    regs = r;
}

/* Reset the device and hand it back to the kernel's driver. */
static inline void mmio_give_back(const char *plat)
{
    wr(REG_STATUS, 0);
    munmap((void *)regs, 4096);
    regs = NULL;
    sysfs_write("/sys/bus/platform/drivers/virtio-mmio/bind", plat);
}

/* Reset, then ACKNOWLEDGE, DRIVER, the features, FEATURES_OK. */
static inline void mmio_begin(uint32_t features_lo, uint32_t features_hi)
{
    wr(REG_STATUS, 0);
    wr(REG_STATUS, ST_ACK);
    wr(REG_STATUS, ST_ACK | ST_DRIVER);
    wr(REG_DRIVER_FEATURES_SEL, 0);
    wr(REG_DRIVER_FEATURES, features_lo);
    wr(REG_DRIVER_FEATURES_SEL, 1);
    wr(REG_DRIVER_FEATURES, features_hi);
    wr(REG_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
}

/* Queue @q with @size entries: descriptor table, driver (avail) and
 * device (used) areas at the given physical addresses; then ready. */
static inline void mmio_queue(unsigned q, unsigned size, uint64_t desc, uint64_t avail,
                              uint64_t used)
{
    wr(REG_QUEUE_SEL, q);
    wr(REG_QUEUE_NUM, size);
    wr(REG_QUEUE_DESC, (uint32_t)desc);
    wr(REG_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
    wr(REG_QUEUE_DRIVER, (uint32_t)avail);
    wr(REG_QUEUE_DRIVER + 4, (uint32_t)(avail >> 32));
    wr(REG_QUEUE_DEVICE, (uint32_t)used);
    wr(REG_QUEUE_DEVICE + 4, (uint32_t)(used >> 32));
    wr(REG_QUEUE_READY, 1);
}

/* DRIVER_OK; returns the status read back. */
static inline uint32_t mmio_live(void)
{
    wr(REG_STATUS, ST_ACK | ST_DRIVER | ST_DRIVER_OK | ST_FEATURES_OK);
    return rd(REG_STATUS);
}

#endif
