/* test_virtio_mmio.c - the virtio-mmio v2 register file as a driver (and a
 * hostile guest) sees it, ending with virtio-rng driven end to end.
 *
 * No KVM: the struct virtio_mmio is filled in by hand the way
 * virtio_mmio_init() does, with an eventfd we own as the interrupt line and
 * no ioeventfds. virtio_mmio_init() is the only way to install the mmio
 * transport callbacks (they are static in virtio_mmio.c), so the device gets
 * a stand-in doing what mmio_interrupt() does: latch the reason in
 * InterruptStatus and pulse the line.
 */
#include "unit.h"

#include "virtio/rng.h"
#include "virtio/virtio_mmio.h"
#include "base/log.h"

#include <sys/eventfd.h>

/* Register offsets (virtio 1.2, 4.2.2). */
enum {
    MAGIC = 0x000,
    VERSION = 0x004,
    DEVICE_ID = 0x008,
    VENDOR_ID = 0x00c,
    DEV_FEATURES = 0x010,
    DEV_FEATURES_SEL = 0x014,
    DRV_FEATURES = 0x020,
    DRV_FEATURES_SEL = 0x024,
    QUEUE_SEL = 0x030,
    QUEUE_NUM_MAX = 0x034,
    QUEUE_NUM = 0x038,
    QUEUE_READY = 0x044,
    QUEUE_NOTIFY = 0x050,
    INT_STATUS = 0x060,
    INT_ACK = 0x064,
    STATUS = 0x070,
    DESC_LO = 0x080,
    DESC_HI = 0x084,
    DRIVER_LO = 0x090,
    DRIVER_HI = 0x094,
    DEVICE_LO = 0x0a0,
    DEVICE_HI = 0x0a4,
    CONFIG_GEN = 0x0fc,
    CONFIG = 0x100,
};

#define S_ACK         VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRIVER      VIRTIO_STATUS_DRIVER
#define S_FEATURES_OK VIRTIO_STATUS_FEATURES_OK
#define S_DRIVER_OK   VIRTIO_STATUS_DRIVER_OK
#define S_NEEDS_RESET VIRTIO_STATUS_NEEDS_RESET

#define RAM_SIZE 0x100000ull /* 1 MiB at gpa 0 */
#define DESC     0x1000ull
#define AVAIL    0x2000ull
#define USED     0x3000ull
#define DATA     0x10000ull

#define F_NEXT  1
#define F_WRITE 2

static void standin_interrupt(struct virtio_device *d, uint32_t reason)
{
    struct virtio_mmio *m = d->transport_data;
    m->interrupt_status |= reason;
    irq_line_pulse(&m->irq);
}

/* No event loop here: requeued queues are remembered, and served when the
 * test says so (as the loop would, soon after). */
static unsigned requeued;

static void standin_requeue(struct virtio_device *d, unsigned q)
{
    (void)d;
    requeued |= 1u << q;
}

static const struct virtio_transport_ops standin = {.interrupt = standin_interrupt,
                                                    .requeue = standin_requeue};

static struct guest_mem mem;
static struct virtio_device *dev;
static struct virtio_mmio m;

static void serve_requeued(void)
{
    for (unsigned q = 0; q < dev->ops->num_queues; q++)
        if (requeued & (1u << q)) {
            pthread_mutex_lock(&dev->lock);
            dev->ops->queue_notify(dev, q);
            pthread_mutex_unlock(&dev->lock);
        }
    requeued = 0;
}
static uint16_t avail_idx;

static void attach(struct virtio_device *d)
{
    memset(&m, 0, sizeof(m));
    m.dev = d;
    m.base = 0xd0000000;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        m.notify_fd[i] = -1;
    m.irq = (struct irq_line){NULL, 5, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    assert_true(m.irq.fd >= 0);
    d->transport = &standin;
    d->transport_data = &m;
}

static int setup(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR); /* guest-misbehaviour warnings are the point here */
    struct guest_mem_region l[] = {{0, RAM_SIZE, NULL}};
    assert_int_equal(guest_mem_init(&mem, l, 1), 0);
    dev = virtio_rng_create(&mem);
    assert_non_null(dev);
    attach(dev);
    avail_idx = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(m.irq.fd);
    dev->ops->release(dev);
    guest_mem_release(&mem);
    return 0;
}

static uint32_t rd(uint64_t off)
{
    uint32_t v;
    virtio_mmio_read(&m, off, (uint8_t *)&v, 4);
    return v;
}

static void wr(uint64_t off, uint32_t v)
{
    virtio_mmio_write(&m, off, (const uint8_t *)&v, 4);
}

/* Interrupt edges since the last call. */
static uint64_t edges(void)
{
    uint64_t n = 0;
    if (read(m.irq.fd, &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

static uint8_t *gp(uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(&mem, gpa, len);
    assert_non_null(p);
    return p;
}

static uint16_t get16(uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, gp(gpa, 2), 2);
    return v;
}

static uint32_t get32(uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, gp(gpa, 4), 4);
    return v;
}

static void put16(uint64_t gpa, uint16_t v)
{
    memcpy(gp(gpa, 2), &v, 2);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = gp(DESC + 16ull * i, 16);
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static void post(uint16_t size, uint16_t head)
{
    put16(AVAIL + 4 + 2u * (avail_idx % size), head);
    avail_idx++;
    put16(AVAIL + 2, avail_idx);
}

/* The driver side of 3.1.1 up to FEATURES_OK; returns the status read back. */
static uint32_t negotiate(uint64_t features)
{
    wr(STATUS, 0);
    wr(STATUS, S_ACK);
    wr(STATUS, S_ACK | S_DRIVER);
    wr(DRV_FEATURES_SEL, 0);
    wr(DRV_FEATURES, (uint32_t)features);
    wr(DRV_FEATURES_SEL, 1);
    wr(DRV_FEATURES, (uint32_t)(features >> 32));
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    return rd(STATUS);
}

static void queue_regs(uint32_t q, uint32_t num, uint64_t desc_gpa, uint64_t avail_gpa,
                       uint64_t used_gpa)
{
    wr(QUEUE_SEL, q);
    wr(QUEUE_NUM, num);
    wr(DESC_LO, (uint32_t)desc_gpa);
    wr(DESC_HI, (uint32_t)(desc_gpa >> 32));
    wr(DRIVER_LO, (uint32_t)avail_gpa);
    wr(DRIVER_HI, (uint32_t)(avail_gpa >> 32));
    wr(DEVICE_LO, (uint32_t)used_gpa);
    wr(DEVICE_HI, (uint32_t)(used_gpa >> 32));
}

/* Set up queue @q and try to make it ready; returns QueueReady read back. */
static uint32_t queue_setup(uint32_t q, uint32_t num, uint64_t desc_gpa, uint64_t avail_gpa,
                            uint64_t used_gpa)
{
    queue_regs(q, num, desc_gpa, avail_gpa, used_gpa);
    wr(QUEUE_READY, 1);
    return rd(QUEUE_READY);
}

static const uint64_t V1 = VIRTIO_BIT(VIRTIO_F_VERSION_1);

static void test_identity(void **state)
{
    (void)state;
    assert_int_equal(rd(MAGIC), 0x74726976);
    assert_int_equal(rd(VERSION), 2);
    assert_int_equal(rd(DEVICE_ID), VIRTIO_ID_RNG);
    assert_int_equal(rd(VENDOR_ID), VIRTIO_MMIO_VENDOR);
    assert_int_equal(rd(STATUS), 0);
    assert_int_equal(rd(INT_STATUS), 0);
    /* Read-only registers ignore writes. */
    wr(MAGIC, 0);
    wr(VERSION, 1);
    wr(DEVICE_ID, 7);
    assert_int_equal(rd(MAGIC), 0x74726976);
    assert_int_equal(rd(VERSION), 2);
    assert_int_equal(rd(DEVICE_ID), VIRTIO_ID_RNG);
    /* Write-only and unknown registers read as 0. */
    assert_int_equal(rd(QUEUE_NOTIFY), 0);
    assert_int_equal(rd(DESC_LO), 0);
    assert_int_equal(rd(0x0f0), 0);
}

static void test_feature_banks(void **state)
{
    (void)state;
    const uint64_t offered = dev->host_features;
    assert_true(offered & V1);
    assert_true(offered & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    assert_true(offered & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    wr(DEV_FEATURES_SEL, 0);
    assert_int_equal(rd(DEV_FEATURES), (uint32_t)offered);
    wr(DEV_FEATURES_SEL, 1);
    assert_int_equal(rd(DEV_FEATURES), (uint32_t)(offered >> 32));
    assert_true(rd(DEV_FEATURES) & 1); /* VERSION_1 is bit 32 */
    wr(DEV_FEATURES_SEL, 2);
    assert_int_equal(rd(DEV_FEATURES), 0);
    wr(DEV_FEATURES_SEL, 0xffffffff);
    assert_int_equal(rd(DEV_FEATURES), 0);

    /* DriverFeatures: two banks, others ignored. */
    wr(STATUS, S_ACK | S_DRIVER);
    wr(DRV_FEATURES_SEL, 0);
    wr(DRV_FEATURES, VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    wr(DRV_FEATURES_SEL, 1);
    wr(DRV_FEATURES, 1);
    wr(DRV_FEATURES_SEL, 2);
    wr(DRV_FEATURES, 0xffffffff);
    assert_int_equal(dev->guest_features, V1 | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    wr(DRV_FEATURES_SEL, 0); /* rewriting a bank replaces it */
    wr(DRV_FEATURES, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    assert_int_equal(dev->guest_features, V1 | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));

    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    assert_int_equal(rd(STATUS), S_ACK | S_DRIVER | S_FEATURES_OK);
    /* Fixed once FEATURES_OK is set. */
    wr(DRV_FEATURES, 0);
    wr(DRV_FEATURES_SEL, 1);
    wr(DRV_FEATURES, 0);
    assert_int_equal(dev->guest_features, V1 | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
}

static void test_features_ok_refused(void **state)
{
    (void)state;
    /* Unoffered bits: rng offers no device-specific feature bit 0. */
    assert_false(dev->host_features & 1);
    assert_int_equal(negotiate(V1 | 1), S_ACK | S_DRIVER);
    /* Unoffered high bit. */
    assert_int_equal(negotiate(V1 | VIRTIO_BIT(63)), S_ACK | S_DRIVER);
    /* No VERSION_1: a legacy driver. */
    assert_int_equal(negotiate(VIRTIO_BIT(VIRTIO_F_EVENT_IDX)), S_ACK | S_DRIVER);
    assert_int_equal(negotiate(0), S_ACK | S_DRIVER);
    /* While refused, the driver may fix its choice and try again. */
    wr(DRV_FEATURES_SEL, 1);
    wr(DRV_FEATURES, 1);
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    assert_int_equal(rd(STATUS), S_ACK | S_DRIVER | S_FEATURES_OK);
    assert_int_equal(dev->guest_features, V1);

    /* DRIVER_OK without FEATURES_OK: the device needs a reset. */
    assert_int_equal(negotiate(0), S_ACK | S_DRIVER);
    wr(STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
    assert_true(rd(STATUS) & S_NEEDS_RESET);
    /* The driver cannot clear bits, NEEDS_RESET included, except by reset. */
    wr(STATUS, S_ACK);
    assert_true(rd(STATUS) & S_NEEDS_RESET);
    assert_true(rd(STATUS) & S_DRIVER);
    wr(STATUS, 0);
    assert_int_equal(rd(STATUS), 0);
    /* Nor can the driver set NEEDS_RESET itself. */
    wr(STATUS, S_ACK | S_NEEDS_RESET);
    assert_int_equal(rd(STATUS), S_ACK);
}

static void test_queue_registers(void **state)
{
    (void)state;
    struct virtq *q = &dev->vq[0];
    wr(QUEUE_SEL, 0);
    assert_int_equal(rd(QUEUE_NUM_MAX), 256);
    assert_int_equal(rd(QUEUE_READY), 0);
    /* rng has one queue: others have no maximum and never become ready. */
    wr(QUEUE_SEL, 1);
    assert_int_equal(rd(QUEUE_NUM_MAX), 0);
    assert_int_equal(queue_setup(1, 8, DESC, AVAIL, USED), 0);
    wr(QUEUE_SEL, VIRTIO_MAX_QUEUES);
    assert_int_equal(queue_setup(VIRTIO_MAX_QUEUES, 8, DESC, AVAIL, USED), 0);
    assert_int_equal(queue_setup(0xffffffff, 8, DESC, AVAIL, USED), 0);
    assert_int_equal(dev->vq[1].size, 0);
    assert_false(dev->vq[1].ready);

    /* Before FEATURES_OK a queue cannot be made ready. */
    assert_int_equal(queue_setup(0, 8, DESC, AVAIL, USED), 0);
    assert_int_equal(negotiate(V1), S_ACK | S_DRIVER | S_FEATURES_OK);

    /* 64-bit addresses from LOW/HIGH halves, in either order. */
    wr(QUEUE_SEL, 0);
    wr(DESC_HI, 0x12345678);
    wr(DESC_LO, 0x9abcdef0);
    wr(DRIVER_LO, 0x11111112);
    wr(DRIVER_HI, 0x22222222);
    wr(DEVICE_HI, 0xffffffff);
    wr(DEVICE_LO, 0xfffffffc);
    assert_int_equal(q->desc_gpa, 0x123456789abcdef0ull);
    assert_int_equal(q->avail_gpa, 0x2222222211111112ull);
    assert_int_equal(q->used_gpa, 0xfffffffffffffffcull);
    wr(DESC_HI, 0);
    assert_int_equal(q->desc_gpa, 0x9abcdef0ull);
    /* Out of RAM, so not ready. */
    wr(QUEUE_NUM, 8);
    wr(QUEUE_READY, 1);
    assert_int_equal(rd(QUEUE_READY), 0);

    /* Invalid setups read back 0. */
    static const struct {
        uint32_t num;
        uint64_t desc, avail, used;
    } bad[] = {
        {0, DESC, AVAIL, USED},
        {3, DESC, AVAIL, USED},
        {512, DESC, AVAIL, USED},         /* above QueueNumMax */
        {0x10000 | 8, DESC, AVAIL, USED}, /* a 17-bit size is not 8 */
        {8, DESC + 4, AVAIL, USED},
        {8, DESC, AVAIL + 1, USED},
        {8, DESC, AVAIL, USED + 2},
        {8, 0x100000000ull + DESC, AVAIL, USED}, /* HIGH half set: beyond RAM */
        {8, DESC, RAM_SIZE - 8, USED},
        {8, DESC, AVAIL, RAM_SIZE},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(queue_setup(0, bad[i].num, bad[i].desc, bad[i].avail, bad[i].used), 0);
        assert_false(q->ready);
    }
    /* A valid one reads back 1 ... */
    assert_int_equal(queue_setup(0, 8, DESC, AVAIL, USED), 1);
    assert_int_equal(q->size, 8);
    /* ... and is frozen while ready. */
    queue_regs(0, 16, 0x5000, 0x6000, 0x7000);
    assert_int_equal(q->size, 8);
    assert_int_equal(q->desc_gpa, DESC);
    assert_int_equal(q->avail_gpa, AVAIL);
    assert_int_equal(q->used_gpa, USED);
    wr(QUEUE_READY, 1); /* again: no change */
    assert_int_equal(rd(QUEUE_READY), 1);
    wr(QUEUE_READY, 2); /* not a defined value: ignored */
    assert_int_equal(rd(QUEUE_READY), 1);
    /* QueueReady = 0 lets the driver change it again. */
    wr(QUEUE_READY, 0);
    assert_int_equal(rd(QUEUE_READY), 0);
    assert_int_equal(queue_setup(0, 16, 0x5000, 0x6000, 0x7000), 1);
    assert_int_equal(q->size, 16);
    assert_int_equal(q->desc_gpa, 0x5000);
    assert_true(q->event_idx == false && q->indirect == false); /* not negotiated */
    assert_int_equal(rd(QUEUE_NUM_MAX), 256);

    /* Selecting another queue does not disturb this one. */
    wr(QUEUE_SEL, 3);
    assert_int_equal(rd(QUEUE_READY), 0);
    wr(QUEUE_SEL, 0);
    assert_int_equal(rd(QUEUE_READY), 1);
}

static void test_notify_out_of_range(void **state)
{
    (void)state;
    assert_int_equal(negotiate(V1), S_ACK | S_DRIVER | S_FEATURES_OK);
    assert_int_equal(queue_setup(0, 8, DESC, AVAIL, USED), 1);
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    edges();
    static const uint32_t idx[] = {1, 7, 8, 0x10000, 0xffffffff};
    for (unsigned i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
        wr(QUEUE_NOTIFY, idx[i]);
    wr(QUEUE_NOTIFY, 0); /* in range but nothing posted */
    assert_int_equal(rd(STATUS), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    assert_int_equal(rd(INT_STATUS), 0);
    assert_int_equal(edges(), 0);
    assert_int_equal(get16(USED + 2), 0);
}

static void test_interrupt_and_config_generation(void **state)
{
    (void)state;
    uint32_t gen = rd(CONFIG_GEN);
    /* Before DRIVER_OK a config change bumps the generation, no interrupt. */
    virtio_notify_config(dev);
    assert_int_equal(rd(CONFIG_GEN), gen + 1);
    assert_int_equal(rd(INT_STATUS), 0);
    assert_int_equal(edges(), 0);

    assert_int_equal(negotiate(V1), S_ACK | S_DRIVER | S_FEATURES_OK);
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    gen = rd(CONFIG_GEN);
    virtio_notify_config(dev);
    assert_int_equal(rd(CONFIG_GEN), gen + 1);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_CONFIG);
    assert_int_equal(edges(), 1);
    dev->transport->interrupt(dev, VIRTIO_INT_USED);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_CONFIG | VIRTIO_INT_USED);
    /* ACK clears exactly the bits written. */
    wr(INT_ACK, VIRTIO_INT_USED);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_CONFIG);
    wr(INT_ACK, 0);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_CONFIG);
    wr(INT_ACK, 0xffffffff);
    assert_int_equal(rd(INT_STATUS), 0);
    /* InterruptStatus is read-only. */
    wr(INT_STATUS, 3);
    assert_int_equal(rd(INT_STATUS), 0);
}

static void test_odd_accesses(void **state)
{
    (void)state;
    /* Registers take 32-bit aligned accesses only. */
    static const uint32_t lens[] = {1, 2, 3, 8};
    for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t buf[8];
        memset(buf, 0xaa, sizeof(buf));
        virtio_mmio_read(&m, MAGIC, buf, lens[i]);
        for (unsigned k = 0; k < lens[i]; k++)
            assert_int_equal(buf[k], 0);
        assert_int_equal(buf[lens[i] < 8 ? lens[i] : 7], lens[i] < 8 ? 0xaa : 0);
    }
    uint8_t buf[4] = {0xaa, 0xaa, 0xaa, 0xaa};
    virtio_mmio_read(&m, MAGIC + 1, buf, 4); /* misaligned */
    assert_int_equal(buf[0] | buf[1] | buf[2] | buf[3], 0);
    virtio_mmio_read(&m, VERSION + 2, buf, 2);
    assert_int_equal(buf[0] | buf[1], 0);

    const uint8_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        virtio_mmio_write(&m, STATUS, ones, lens[i]);
        virtio_mmio_write(&m, QUEUE_SEL, ones, lens[i]);
        virtio_mmio_write(&m, DEV_FEATURES_SEL, ones, lens[i]);
    }
    virtio_mmio_write(&m, STATUS + 1, ones, 4);
    virtio_mmio_write(&m, QUEUE_SEL + 2, ones, 4);
    assert_int_equal(rd(STATUS), 0);
    assert_int_equal(m.queue_sel, 0);
    assert_int_equal(m.device_features_sel, 0);
    assert_int_equal(rd(QUEUE_NUM_MAX), 256);
}

/* A device with 8 bytes of configuration, to check the window's bounds. */
static uint8_t cfg_bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static unsigned cfg_writes;

static void cfg_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    (void)d;
    assert_true(off + (uint64_t)len <= sizeof(cfg_bytes));
    memcpy(buf, cfg_bytes + off, len);
}

static void cfg_write(struct virtio_device *d, uint32_t off, const void *buf, uint32_t len)
{
    (void)d;
    assert_true(off + (uint64_t)len <= sizeof(cfg_bytes));
    memcpy(cfg_bytes + off, buf, len);
    cfg_writes++;
}

static const struct virtio_dev_ops cfg_ops = {
    .name = "cfg-dev",
    .device_id = 0x42,
    .num_queues = 1,
    .queue_max_size = 16,
    .config_size = sizeof(cfg_bytes),
    .config_read = cfg_read,
    .config_write = cfg_write,
};

static void test_config_space(void **state)
{
    (void)state;
    /* rng has no configuration: every config read is zeros. */
    uint8_t buf[8];
    static const uint64_t offs[] = {CONFIG, CONFIG + 4, CONFIG + 0x100, VIRTIO_MMIO_SIZE - 4,
                                    UINT64_MAX - 3};
    for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        memset(buf, 0xaa, sizeof(buf));
        virtio_mmio_read(&m, offs[i], buf, 4);
        assert_int_equal(buf[0] | buf[1] | buf[2] | buf[3], 0);
        virtio_mmio_write(&m, offs[i], buf, 4); /* no config_write: ignored */
    }

    struct virtio_device cd;
    struct virtio_mmio saved = m;
    virtio_device_init(&cd, &cfg_ops, &mem, 0);
    m.dev = &cd;
    cd.transport = &standin;
    cd.transport_data = &m;
    assert_int_equal(rd(DEVICE_ID), 0x42);
    assert_int_equal(rd(QUEUE_NUM_MAX), 16);

    memset(buf, 0, sizeof(buf));
    virtio_mmio_read(&m, CONFIG, buf, 8);
    assert_memory_equal(buf, cfg_bytes, 8);
    virtio_mmio_read(&m, CONFIG + 4, buf, 4);
    assert_memory_equal(buf, "\5\6\7\10", 4);
    virtio_mmio_read(&m, CONFIG + 7, buf, 1);
    assert_int_equal(buf[0], 8);
    /* Partly or wholly past config_size: zeros, config_read not called. */
    static const struct {
        uint64_t off;
        uint32_t len;
    } past[] = {{CONFIG + 6, 4},
                {CONFIG + 8, 1},
                {CONFIG + 5, 8},
                {CONFIG + 0xefc, 4},
                {UINT64_MAX, 1},
                {UINT64_MAX - 7, 8},
                {CONFIG + 0x100000000ull, 4}};
    for (unsigned i = 0; i < sizeof(past) / sizeof(past[0]); i++) {
        memset(buf, 0xaa, sizeof(buf));
        virtio_mmio_read(&m, past[i].off, buf, past[i].len);
        for (unsigned k = 0; k < past[i].len; k++)
            assert_int_equal(buf[k], 0);
        virtio_mmio_write(&m, past[i].off, (const uint8_t *)"zzzzzzzz", past[i].len);
    }
    assert_int_equal(cfg_writes, 0);
    assert_memory_equal(cfg_bytes, "\1\2\3\4\5\6\7\10", 8);
    virtio_mmio_write(&m, CONFIG + 6, (const uint8_t *)"ab", 2);
    assert_int_equal(cfg_writes, 1);
    assert_memory_equal(cfg_bytes + 6, "ab", 2);

    virtio_device_release(&cd);
    m = saved;
}

/* Drive everything, then write 0 to Status: all of it is forgotten. */
static void test_reset(void **state)
{
    (void)state;
    assert_int_equal(negotiate(V1 | VIRTIO_BIT(VIRTIO_F_EVENT_IDX)),
                     S_ACK | S_DRIVER | S_FEATURES_OK);
    assert_int_equal(queue_setup(0, 8, DESC, AVAIL, USED), 1);
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    desc(0, DATA, 16, F_WRITE, 0);
    post(8, 0);
    post(8, 0);
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 2);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_USED);
    assert_int_equal(dev->vq[0].last_avail, 2);
    virtio_notify_config(dev);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_USED | VIRTIO_INT_CONFIG);

    wr(STATUS, 0);
    assert_int_equal(rd(STATUS), 0);
    assert_int_equal(rd(INT_STATUS), 0);
    assert_int_equal(dev->guest_features, 0);
    wr(QUEUE_SEL, 0);
    assert_int_equal(rd(QUEUE_READY), 0);
    assert_int_equal(rd(QUEUE_NUM_MAX), 256);
    const struct virtq *q = &dev->vq[0];
    assert_false(q->ready);
    assert_int_equal(q->size, 0);
    assert_int_equal(q->desc_gpa, 0);
    assert_int_equal(q->avail_gpa, 0);
    assert_int_equal(q->used_gpa, 0);
    assert_int_equal(q->last_avail, 0);
    assert_int_equal(q->used_idx, 0);
    assert_false(q->event_idx);
    /* Kicks do nothing now. */
    post(8, 0);
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 2);

    /* The driver starts again from scratch over fresh rings. */
    memset(gp(0, 0x4000), 0, 0x4000);
    avail_idx = 0;
    assert_int_equal(negotiate(V1), S_ACK | S_DRIVER | S_FEATURES_OK);
    assert_int_equal(queue_setup(0, 8, DESC, AVAIL, USED), 1);
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    desc(0, DATA, 16, F_WRITE, 0);
    post(8, 0);
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 1);
    assert_int_equal(get32(USED + 8), 16);
}

/* Status is 8 bits of flags in a 32-bit register. A write whose low byte is
 * 0 but which is not 0 (0x100) must not half-reset the device. Either it is
 * not a reset (4.2.2: only writing zero resets) or it is a complete one,
 * InterruptStatus included, like a write of 0. (The bug this catches:
 * virtio_set_status((uint8_t)v) resetting the device while InterruptStatus
 * was cleared only for v == 0, so Status read 0 and InterruptStatus 2.) */
static void test_status_high_bits(void **state)
{
    (void)state;
    const uint32_t live = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    static const uint32_t writes[] = {0x100, 0x80000000u, 0xffffff00u};
    for (unsigned i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        assert_int_equal(negotiate(V1), S_ACK | S_DRIVER | S_FEATURES_OK);
        wr(STATUS, live);
        virtio_notify_config(dev);
        assert_int_equal(rd(INT_STATUS), VIRTIO_INT_CONFIG);
        wr(STATUS, writes[i]);
        if (rd(STATUS) == 0) { /* treated as a reset: then a whole one */
            assert_int_equal(rd(INT_STATUS), 0);
            assert_int_equal(dev->guest_features, 0);
        } else { /* not a reset: nothing lost */
            assert_int_equal(rd(STATUS), live);
            assert_int_equal(rd(INT_STATUS), VIRTIO_INT_CONFIG);
            assert_int_equal(dev->guest_features, V1);
        }
        wr(STATUS, 0);
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* virtio-rng end to end, as Linux's virtio_rng driver would use it. */
static void test_rng_flow(void **state)
{
    (void)state;
    wr(STATUS, 0);
    wr(STATUS, S_ACK);
    wr(STATUS, S_ACK | S_DRIVER);
    wr(DEV_FEATURES_SEL, 0);
    uint64_t offered = rd(DEV_FEATURES);
    wr(DEV_FEATURES_SEL, 1);
    offered |= (uint64_t)rd(DEV_FEATURES) << 32;
    uint64_t want =
        offered & (V1 | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    assert_int_equal(want,
                     V1 | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    wr(DRV_FEATURES_SEL, 0);
    wr(DRV_FEATURES, (uint32_t)want);
    wr(DRV_FEATURES_SEL, 1);
    wr(DRV_FEATURES, (uint32_t)(want >> 32));
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    assert_true(rd(STATUS) & S_FEATURES_OK);
    wr(QUEUE_SEL, 0);
    assert_int_equal(rd(QUEUE_READY), 0);
    uint32_t num = rd(QUEUE_NUM_MAX) < 64 ? rd(QUEUE_NUM_MAX) : 64;
    assert_int_equal(queue_setup(0, num, DESC, AVAIL, USED), 1);
    assert_true(dev->vq[0].event_idx && dev->vq[0].indirect);

    /* A buffer posted (and kicked) before DRIVER_OK is served after
     * DRIVER_OK, by the event loop: never on the vCPU writing the status. */
    desc(0, DATA, 64, F_WRITE, 0);
    post((uint16_t)num, 0);
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 0);
    assert_int_equal(edges(), 0);
    requeued = 0;
    wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    assert_int_equal(rd(STATUS), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    assert_int_equal(get16(USED + 2), 0);
    assert_int_equal(requeued, 1u);
    serve_requeued();
    assert_int_equal(get16(USED + 2), 1);
    assert_int_equal(get32(USED + 4), 0);  /* id */
    assert_int_equal(get32(USED + 8), 64); /* len */
    assert_false(all_zero(gp(DATA, 64), 64));
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_USED);
    assert_int_equal(edges(), 1);
    wr(INT_ACK, VIRTIO_INT_USED);
    /* EVENT_IDX: avail_event tells the driver to kick for entry 1. */
    assert_int_equal(get16(USED + 4 + 8 * num), 1);

    /* A chain of two writable buffers, the second in the middle of RAM,
     * preceded by a readable one the device must leave alone. */
    memset(gp(DATA + 0x100, 16), 0x5a, 16);
    desc(1, DATA + 0x100, 16, F_NEXT, 2);
    desc(2, DATA + 0x1000, 100, F_WRITE | F_NEXT, 3);
    desc(3, 0x80000, 28, F_WRITE, 0);
    post((uint16_t)num, 1);
    put16(AVAIL + 4 + 2 * num, 1); /* used_event: interrupt once idx passes 1 */
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 2);
    assert_int_equal(get32(USED + 4 + 8), 1);
    assert_int_equal(get32(USED + 4 + 8 + 4), 128);
    assert_false(all_zero(gp(DATA + 0x1000, 100), 100));
    assert_false(all_zero(gp(0x80000, 28), 28));
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(gp(DATA + 0x100, 16)[i], 0x5a);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_USED);
    assert_int_equal(edges(), 1);
    wr(INT_ACK, VIRTIO_INT_USED);

    /* The driver suppresses the next interrupt with used_event. */
    desc(4, DATA + 0x2000, 8, F_WRITE, 0);
    post((uint16_t)num, 4);
    put16(AVAIL + 4 + 2 * num, 10);
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 3);
    assert_int_equal(rd(INT_STATUS), 0);
    assert_int_equal(edges(), 0);

    /* A huge buffer gets a partial fill of at most 64 KiB (5.4.6.1). */
    put16(AVAIL + 4 + 2 * num, 3);
    desc(5, 0x20000, 0x30000, F_WRITE, 0);
    post((uint16_t)num, 5);
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 4);
    uint32_t got = get32(USED + 4 + 8 * 3 + 4);
    assert_true(got > 0 && got <= 0x10000);
    assert_true(all_zero(gp(0x20000 + 0x10000, 0x20000), 0x20000));
    assert_int_equal(edges(), 1);

    /* A malformed chain: NEEDS_RESET and a configuration interrupt. */
    wr(INT_ACK, 3);
    uint32_t gen = rd(CONFIG_GEN);
    desc(6, DATA, 16, F_WRITE | F_NEXT, 6);
    post((uint16_t)num, 6);
    wr(QUEUE_NOTIFY, 0);
    assert_true(rd(STATUS) & S_NEEDS_RESET);
    assert_int_equal(rd(INT_STATUS), VIRTIO_INT_CONFIG);
    assert_int_equal(rd(CONFIG_GEN), gen + 1);
    assert_int_equal(edges(), 1);
    assert_int_equal(get16(USED + 2), 4);
    /* No more service until reset. */
    desc(6, DATA, 16, F_WRITE, 0);
    wr(QUEUE_NOTIFY, 0);
    assert_int_equal(get16(USED + 2), 4);
    wr(STATUS, 0);
    assert_int_equal(rd(STATUS), 0);
    assert_int_equal(rd(INT_STATUS), 0);
}

/* The virtio_mmio.device= form Linux's virtio_mmio module parses:
 * <size>@<base>:<irq> (drivers/virtio/virtio_mmio.c). */
static void test_cmdline_form(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(virtio_mmio_cmdline(out, sizeof(out), 0xd0001000ull, 6), 0);
    assert_string_equal(out, "virtio_mmio.device=4K@0xd0001000:6");
    assert_int_equal(virtio_mmio_cmdline(out, 10, 0xd0001000ull, 6), -E2BIG);
}

int main(void)
{
    RUN(cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_banks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_ok_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_and_config_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_accesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_high_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rng_flow, setup, teardown),
        cmocka_unit_test(test_cmdline_form));
}
