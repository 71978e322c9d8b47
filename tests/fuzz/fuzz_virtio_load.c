/* fuzz_virtio_load.c - libFuzzer target for virtio_mmio_load(): a snapshot
 * section from a hostile file, loaded into a fresh virtio-rng behind the
 * mmio transport, then used as a driver would use the restored device.
 *
 * Input: a little-endian u16 length L, L bytes of guest RAM contents, then
 * the section's bytes. A load must either refuse (and leave a device that
 * can be released) or give a device whose every ring lies in guest RAM;
 * the restored device is then kicked and its registers read, so that a
 * state that passed the checks but points the device anywhere it must not
 * go shows up under ASan.
 *
 * Guest RAM and the transport are set up as in fuzz_virtio_mmio.c.
 * Run: FUZZ_TARGETS=fuzz_virtio_load tests/fuzz/run.sh
 */
#include "virtio/rng.h"
#include "virtio/virtio_mmio.h"
#include "base/log.h"
#include "base/snap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#define R0_GPA  0x0ull
#define R0_SIZE 0x2000ull
#define R1_GPA  0x10000ull
#define R1_SIZE 0x1000ull

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_virtio_load: check failed at line %d: %s\n", __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static struct virtio_mmio m;
static int irq_fd = -1;

/* Deterministic stand-in for the host's entropy: same input, same run. */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    (void)flags;
    memset(buf, 0x5a, len);
    return (ssize_t)len;
}

static void standin_interrupt(struct virtio_device *d, uint32_t reason)
{
    struct virtio_mmio *mm = d->transport_data;
    CHECK(reason == VIRTIO_INT_USED || reason == VIRTIO_INT_CONFIG);
    mm->interrupt_status |= reason;
    irq_line_pulse(&mm->irq);
}

static void standin_requeue(struct virtio_device *d, unsigned q)
{
    CHECK(q < d->ops->num_queues && d->vq[q].ready);
}

static const struct virtio_transport_ops standin = {.interrupt = standin_interrupt,
                                                    .requeue = standin_requeue};

static void once(void)
{
    if (mem.count)
        return;
    log_set_level(LOG_ERROR); /* refusals warn, and are the normal case here */
    mem.fd = -1;
    mem.count = 2;
    mem.r[0] = (struct guest_mem_region){R0_GPA, R0_SIZE, malloc(R0_SIZE)};
    mem.r[1] = (struct guest_mem_region){R1_GPA, R1_SIZE, malloc(R1_SIZE)};
    irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(mem.r[0].hva && mem.r[1].hva && irq_fd >= 0);
}

static int in_ram(const uint8_t *p, uint64_t len)
{
    for (unsigned i = 0; i < mem.count; i++) {
        const struct guest_mem_region *r = &mem.r[i];
        if (p >= r->hva && p < r->hva + r->size && len <= (uint64_t)(r->hva + r->size - p))
            return 1;
    }
    return 0;
}

/* What a successful load must leave: what a driver could have brought about. */
static void check_loaded(const struct virtio_device *d)
{
    CHECK((m.interrupt_status & ~(uint32_t)(VIRTIO_INT_USED | VIRTIO_INT_CONFIG)) == 0);
    CHECK(!(d->guest_features & ~d->host_features));
    if (d->status & VIRTIO_STATUS_FEATURES_OK)
        CHECK(d->guest_features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
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
    }
}

/* A failed load leaves the device as created. */
static void check_refused(const struct virtio_device *d)
{
    CHECK(d->status == 0 && d->guest_features == 0);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        CHECK(!d->vq[i].ready);
}

static void use(void)
{
    uint32_t v = 0;
    /* QueueNotify, InterruptStatus, Status, QueueNumMax of the saved
     * QueueSel, and the device's config (rng has none). */
    virtio_mmio_write(&m, 0x050, (const uint8_t *)&v, 4);
    static const uint64_t regs[] = {0x060, 0x070, 0x034, 0x044, 0x010, 0x0fc, 0x100};
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
        virtio_mmio_read(&m, regs[i], (uint8_t *)&v, 4);
    v = 3;
    virtio_mmio_write(&m, 0x064, (const uint8_t *)&v, 4); /* InterruptACK */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    once();
    uint16_t img_len;
    memcpy(&img_len, data, 2);
    data += 2;
    size -= 2;
    if (img_len > size)
        img_len = (uint16_t)size;
    if (img_len > R0_SIZE + R1_SIZE)
        img_len = (uint16_t)(R0_SIZE + R1_SIZE);
    memset(mem.r[0].hva, 0, R0_SIZE);
    memset(mem.r[1].hva, 0, R1_SIZE);
    size_t n0 = img_len < R0_SIZE ? img_len : R0_SIZE;
    memcpy(mem.r[0].hva, data, n0);
    memcpy(mem.r[1].hva, data + n0, img_len - n0);
    data += img_len;
    size -= img_len;

    struct virtio_device *d = virtio_rng_create(&mem);
    CHECK(d);
    memset(&m, 0, sizeof(m));
    m.dev = d;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        m.notify_fd[i] = -1;
    m.irq = (struct irq_line){NULL, 5, irq_fd};
    d->transport = &standin;
    d->transport_data = &m;

    struct snap_r r = {.p = data, .left = size};
    int e = virtio_mmio_load(&m, &r);
    CHECK(e == 0 || e == -EPROTO || e == -EINVAL);
    if (e == 0) {
        check_loaded(d);
        use();
        check_loaded(d);
    } else {
        check_refused(d);
    }
    uint64_t drain;
    (void)!read(irq_fd, &drain, sizeof(drain));
    d->ops->release(d);
    return 0;
}
