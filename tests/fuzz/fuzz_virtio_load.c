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
 * Guest RAM and the transport come from fuzz_mmio_fixture.h.
 * Run: FUZZ_TARGETS=fuzz_virtio_load tests/fuzz/run.sh
 */
#include "fuzz_mmio_fixture.h"

#include "base/snap.h"

#include <sys/random.h>
#include <unistd.h>



/* Deterministic stand-in for the host's entropy: same input, same run. */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    (void)flags;
    memset(buf, 0x5a, len);
    return (ssize_t)len;
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
    fixture_once();
    requeue_needs_ready = 1;
    if (!fixture_load_ram(&data, &size))
        return 0;
    struct virtio_device *d = fixture_device();

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
