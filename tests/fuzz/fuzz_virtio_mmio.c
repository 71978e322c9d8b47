/* fuzz_virtio_mmio.c - libFuzzer target for the virtio-mmio register file
 * with virtio-rng behind it, driven by a hostile guest.
 *
 * Input: a little-endian u16 length L, L bytes of guest RAM contents, then
 * 8-byte operations: register reads and writes of any size at any offset,
 * aligned register accesses, pokes into guest RAM (the driver filling its
 * rings between notifications), a "well-behaved driver init" shortcut that
 * negotiates and sets up queue 0 so the fuzzer reaches the ring code
 * quickly, notifications and configuration changes. After every operation
 * the device's invariants are checked.
 *
 * Guest RAM is heap blocks described by a hand-made struct guest_mem, so
 * ASan sees any access outside it. The transport is set up without KVM as
 * in tests/unit/test_virtio_mmio.c: an eventfd of ours as the interrupt line
 * and a stand-in for the (static) mmio interrupt callback. getrandom() is
 * replaced by a deterministic fill so that runs reproduce.
 *
 * Run: tests/fuzz/run.sh, or build-fuzz/tests/fuzz/fuzz_virtio_mmio CORPUS_DIR
 */
#include "fuzz_mmio_fixture.h"

#include <sys/random.h>
#include <unistd.h>

/* Where the init shortcut puts queue 0's rings. */
#define DESC_GPA  0x0ull
#define AVAIL_GPA 0x800ull
#define USED_GPA  0xa00ull
#define MAX_OPS   512

enum {
    REG_DRV_FEATURES = 0x020,
    REG_DRV_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030,
    REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044,
    REG_QUEUE_NOTIFY = 0x050,
    REG_STATUS = 0x070,
    REG_DESC_LO = 0x080,
    REG_DESC_HI = 0x084,
    REG_DRIVER_LO = 0x090,
    REG_DRIVER_HI = 0x094,
    REG_DEVICE_LO = 0x0a0,
    REG_DEVICE_HI = 0x0a4,
};


static uint32_t rand_state;

/* Deterministic stand-in for the host's entropy: same input, same run. */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    (void)flags;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        rand_state = rand_state * 1103515245u + 12345u;
        p[i] = (uint8_t)(rand_state >> 16);
    }
    return (ssize_t)len;
}



static void wr(uint64_t off, uint32_t v)
{
    virtio_mmio_write(&m, off, (const uint8_t *)&v, 4);
}

static uint32_t rd(uint64_t off)
{
    uint32_t v;
    virtio_mmio_read(&m, off, (uint8_t *)&v, 4);
    return v;
}

/* What must hold whatever the guest did. */
static void check_invariants(const struct virtio_device *d)
{
    CHECK((m.interrupt_status & ~(uint32_t)(VIRTIO_INT_USED | VIRTIO_INT_CONFIG)) == 0);
    /* Interrupts need DRIVER_OK (or NEEDS_RESET), and the only way back to
     * status 0 is a reset, which clears InterruptStatus too. */
    if (d->status == 0)
        CHECK(m.interrupt_status == 0);
    if (d->status & VIRTIO_STATUS_FEATURES_OK) {
        CHECK(!(d->guest_features & ~d->host_features));
        CHECK(d->guest_features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    }
    if ((d->status & VIRTIO_STATUS_DRIVER_OK) && !(d->status & VIRTIO_STATUS_NEEDS_RESET))
        CHECK(d->status & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        const struct virtq *q = &d->vq[i];
        if (!q->ready)
            continue;
        CHECK(i < d->ops->num_queues);
        CHECK(q->size && q->size <= q->max_size && !(q->size & (q->size - 1)));
        CHECK(in_ram(q->desc, virtq_desc_bytes(q->size)));
        CHECK(in_ram(q->avail, virtq_avail_bytes(q->size)));
        CHECK(in_ram(q->used, virtq_used_bytes(q->size)));
        CHECK(q->desc == guest_mem_ptr(&mem, q->desc_gpa, virtq_desc_bytes(q->size)));
        CHECK(q->avail == guest_mem_ptr(&mem, q->avail_gpa, virtq_avail_bytes(q->size)));
        CHECK(q->used == guest_mem_ptr(&mem, q->used_gpa, virtq_used_bytes(q->size)));
    }
}

/* A driver doing 3.1.1 properly, with choices from the input. */
static void driver_init(uint8_t fsel, uint8_t qsel)
{
    uint64_t f = VIRTIO_BIT(VIRTIO_F_VERSION_1);
    if (fsel & 1)
        f |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    if (fsel & 2)
        f |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    wr(REG_STATUS, 0);
    wr(REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(REG_DRV_FEATURES_SEL, 0);
    wr(REG_DRV_FEATURES, (uint32_t)f);
    wr(REG_DRV_FEATURES_SEL, 1);
    wr(REG_DRV_FEATURES, (uint32_t)(f >> 32));
    wr(REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    wr(REG_QUEUE_SEL, 0);
    wr(REG_QUEUE_NUM, 1u << (qsel % 9));
    wr(REG_DESC_LO, (uint32_t)DESC_GPA);
    wr(REG_DESC_HI, 0);
    wr(REG_DRIVER_LO, (uint32_t)AVAIL_GPA);
    wr(REG_DRIVER_HI, 0);
    wr(REG_DEVICE_LO, (uint32_t)USED_GPA);
    wr(REG_DEVICE_HI, 0);
    wr(REG_QUEUE_READY, 1);
    if (!(fsel & 4)) /* else the fuzzer gets to kick before DRIVER_OK */
        wr(REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                           VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fixture_once();
    if (!fixture_load_ram(&data, &size))
        return 0;
    rand_state = 1;
    struct virtio_device *d = fixture_device();

    static const uint32_t lens[] = {1, 2, 4, 8};
    for (unsigned i = 0; i + 8 <= size && i / 8 < MAX_OPS; i += 8) {
        const uint8_t *op = data + i;
        uint16_t off16 = (uint16_t)(op[1] | op[2] << 8);
        uint32_t v;
        memcpy(&v, op + 4, 4);
        uint8_t buf[8];
        switch (op[0] % 8) {
        case 0: { /* any read */
            uint32_t off = off16 & 0x1fff, len = lens[op[3] & 3];
            memset(buf, 0xee, sizeof(buf));
            virtio_mmio_read(&m, off, buf, len);
            /* Odd-sized or misaligned register reads and config reads
             * (rng has no config) give zeros. */
            if (off >= 0x100 || len != 4 || (off & 3))
                for (unsigned k = 0; k < len; k++)
                    CHECK(buf[k] == 0);
            if (off == 0 && len == 4)
                CHECK(!memcmp(buf, "virt", 4));
            break;
        }
        case 1: /* any write */
            memcpy(buf, op + 4, 4);
            memcpy(buf + 4, op + 4, 4);
            virtio_mmio_write(&m, off16 & 0x1fff, buf, lens[op[3] & 3]);
            break;
        case 2: /* register write */
            wr((op[1] % 0x44) * 4u, v);
            break;
        case 3: /* register read */
            (void)rd((op[1] % 0x44) * 4u);
            break;
        case 4: /* the driver writes its rings or buffers */
            fixture_poke(off16, op + 4);
            break;
        case 5:
            driver_init(op[1], op[2]);
            break;
        case 6:
            if (op[1] & 1)
                virtio_notify_config(d);
            else
                wr(REG_QUEUE_NOTIFY, op[2] & 3 ? op[2] % 3 : v);
            break;
        case 7: /* status register, the busiest one */
            wr(REG_STATUS, op[1]);
            break;
        }
        check_invariants(d);
    }
    uint64_t drain;
    (void)!read(irq_fd, &drain, sizeof(drain));
    d->ops->release(d);
    return 0;
}
