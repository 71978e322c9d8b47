/* virtio_mmio.c - virtio-mmio v2 register file; see virtio_mmio.h.
 * Register offsets: virtio 1.2, 4.2.2 "MMIO Device Register Layout". */
#include "virtio/virtio_mmio.h"

#include "hv/hv.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/snap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum {
    REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
    REG_DEVICE_FEATURES = 0x010, REG_DEVICE_FEATURES_SEL = 0x014,
    REG_DRIVER_FEATURES = 0x020, REG_DRIVER_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
    REG_INTERRUPT_STATUS = 0x060, REG_INTERRUPT_ACK = 0x064, REG_STATUS = 0x070,
    REG_QUEUE_DESC_LOW = 0x080, REG_QUEUE_DESC_HIGH = 0x084,
    REG_QUEUE_DRIVER_LOW = 0x090, REG_QUEUE_DRIVER_HIGH = 0x094,
    REG_QUEUE_DEVICE_LOW = 0x0a0, REG_QUEUE_DEVICE_HIGH = 0x0a4,
    REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LOW = 0x0b0, REG_SHM_LEN_HIGH = 0x0b4,
    REG_SHM_BASE_LOW = 0x0b8, REG_SHM_BASE_HIGH = 0x0bc,
    REG_QUEUE_RESET = 0x0c0, REG_CONFIG_GENERATION = 0x0fc, REG_CONFIG = 0x100,
};
#define MMIO_MAGIC 0x74726976u /* "virt" */
#define MMIO_VERSION 2

static void mmio_interrupt(struct virtio_device *d, uint32_t reason)
{
    struct virtio_mmio *m = d->transport_data;
    m->interrupt_status |= reason;
    d->stats.interrupts++;
    irq_line_pulse(&m->irq);
}

static void mmio_requeue(struct virtio_device *d, unsigned q)
{
    struct virtio_mmio *m = d->transport_data;
    uint64_t one = 1;
    /* As if the driver had kicked again; handled after other events. */
    if (q < VIRTIO_MAX_QUEUES && m->notify_fd[q] >= 0)
        (void)!write(m->notify_fd[q], &one, sizeof(one));
}

static const struct virtio_transport_ops mmio_transport = {.interrupt = mmio_interrupt,
                                                           .requeue = mmio_requeue};

static struct virtq *cur_queue(struct virtio_mmio *m)
{
    return m->queue_sel < m->dev->ops->num_queues ? &m->dev->vq[m->queue_sel] : NULL;
}

static uint32_t read_reg(struct virtio_mmio *m, uint64_t off)
{
    struct virtio_device *d = m->dev;
    struct virtq *q = cur_queue(m);
    switch (off) {
    case REG_MAGIC: return MMIO_MAGIC;
    case REG_VERSION: return MMIO_VERSION;
    case REG_DEVICE_ID: return d->ops->device_id;
    case REG_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
    case REG_DEVICE_FEATURES:
        if (m->device_features_sel > 1)
            return 0;
        return (uint32_t)(d->host_features >> (32 * m->device_features_sel));
    case REG_QUEUE_NUM_MAX: return q ? q->max_size : 0;
    case REG_QUEUE_READY: return q ? q->ready : 0;
    case REG_INTERRUPT_STATUS: return m->interrupt_status;
    case REG_STATUS: return d->status;
    case REG_SHM_LEN_LOW:
    case REG_SHM_LEN_HIGH: return 0xffffffffu; /* no shared memory regions */
    case REG_CONFIG_GENERATION: return d->config_generation;
    default:
        log_guest("%s: read of write-only or unknown register 0x%llx", d->ops->name,
                  (unsigned long long)off);
        return 0;
    }
}

/* Apply a queue address/size write; refused while the queue is live. */
static void queue_field(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
    struct virtq *q = cur_queue(m);
    if (!q || q->ready) {
        log_guest("%s: queue %u setup write while %s", m->dev->ops->name, m->queue_sel,
                  q ? "ready" : "out of range");
        return;
    }
    uint64_t *field = NULL;
    switch (off) {
    case REG_QUEUE_NUM: q->size = v > 0xffff ? 0 : (uint16_t)v; return;
    case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH: field = &q->desc_gpa; break;
    case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH: field = &q->avail_gpa; break;
    case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH: field = &q->used_gpa; break;
    }
    if (off & 4) /* the HIGH halves sit 4 bytes above the LOW ones */
        *field = (*field & 0xffffffffu) | ((uint64_t)v << 32);
    else
        *field = (*field & ~0xffffffffull) | v;
}

static void write_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
    struct virtio_device *d = m->dev;
    switch (off) {
    case REG_DEVICE_FEATURES_SEL: m->device_features_sel = v; break;
    case REG_DRIVER_FEATURES_SEL: m->driver_features_sel = v; break;
    case REG_DRIVER_FEATURES:
        /* Only while negotiating; afterwards the set is fixed. */
        if (d->status & VIRTIO_STATUS_FEATURES_OK || m->driver_features_sel > 1)
            break;
        if (m->driver_features_sel)
            d->guest_features = (d->guest_features & 0xffffffffu) | ((uint64_t)v << 32);
        else
            d->guest_features = (d->guest_features & ~0xffffffffull) | v;
        break;
    case REG_QUEUE_SEL: m->queue_sel = v; break;
    case REG_QUEUE_NUM:
    case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
    case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
    case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
        queue_field(m, off, v);
        break;
    case REG_QUEUE_READY: {
        struct virtq *q = cur_queue(m);
        if (!q)
            break;
        if (v == 1 && !q->ready) {
            if (!virtio_queue_enable(d, m->queue_sel))
                log_guest("%s: queue %u refused: bad size or ring addresses", d->ops->name,
                          m->queue_sel); /* QueueReady reads back 0 */
        } else if (v == 0) {
            q->ready = false;
        }
        break;
    }
    case REG_QUEUE_NOTIFY:
        /* Normally caught by the ioeventfd; here only if it was not. */
        if (v < d->ops->num_queues && virtio_device_live(d) && d->vq[v].ready &&
            d->ops->queue_notify)
            d->ops->queue_notify(d, v);
        break;
    case REG_INTERRUPT_ACK: m->interrupt_status &= ~v; break;
    case REG_STATUS:
        /* Only the low byte is defined; a write whose low byte is 0 is a
         * reset, whatever the upper bits say. */
        virtio_set_status(d, (uint8_t)v);
        if ((uint8_t)v == 0)
            m->interrupt_status = 0;
        break;
    case REG_SHM_SEL: break;
    default:
        log_guest("%s: write to read-only or unknown register 0x%llx", d->ops->name,
                  (unsigned long long)off);
        break;
    }
}

void virtio_mmio_read(struct virtio_mmio *m, uint64_t off, uint8_t *data, uint32_t len)
{
    struct virtio_device *d = m->dev;
    memset(data, 0, len);
    pthread_mutex_lock(&d->lock);
    if (off >= REG_CONFIG) {
        uint64_t c = off - REG_CONFIG;
        if (c < d->ops->config_size && len <= d->ops->config_size - c && d->ops->config_read)
            d->ops->config_read(d, (uint32_t)c, data, len);
    } else if (len == 4 && !(off & 3)) {
        uint32_t v = read_reg(m, off);
        memcpy(data, &v, 4);
    } else {
        log_guest("%s: %u-byte register read at 0x%llx", d->ops->name, len,
                  (unsigned long long)off);
    }
    pthread_mutex_unlock(&d->lock);
}

void virtio_mmio_write(struct virtio_mmio *m, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct virtio_device *d = m->dev;
    pthread_mutex_lock(&d->lock);
    if (off >= REG_CONFIG) {
        uint64_t c = off - REG_CONFIG;
        if (c < d->ops->config_size && len <= d->ops->config_size - c && d->ops->config_write)
            d->ops->config_write(d, (uint32_t)c, data, len);
    } else if (len == 4 && !(off & 3)) {
        uint32_t v;
        memcpy(&v, data, 4);
        write_reg(m, off, v);
    } else {
        log_guest("%s: %u-byte register write at 0x%llx", d->ops->name, len,
                  (unsigned long long)off);
    }
    pthread_mutex_unlock(&d->lock);
}

static void bus_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    virtio_mmio_read(opaque, off, data, len);
}

static void bus_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    virtio_mmio_write(opaque, off, data, len);
}

const struct bus_ops virtio_mmio_ops = {.read = bus_read, .write = bus_write};

/* Event-loop side of a queue's ioeventfd. */
static void on_notify(void *opaque, uint32_t events)
{
    struct virtio_mmio_notify *n = opaque;
    struct virtio_mmio *m = n->m;
    unsigned q = n->q;
    uint64_t v;
    (void)events;
    (void)!read(m->notify_fd[q], &v, sizeof(v));
    struct virtio_device *d = m->dev;
    pthread_mutex_lock(&d->lock);
    d->stats.notifications++;
    if (virtio_device_live(d) && d->vq[q].ready && d->ops->queue_notify)
        d->ops->queue_notify(d, q);
    pthread_mutex_unlock(&d->lock);
}

int virtio_mmio_init(struct virtio_mmio *m, struct virtio_device *dev, struct hv_vm *hv,
                     struct evloop *loop, struct bus *bus, uint64_t base, uint32_t gsi)
{
    memset(m, 0, sizeof(*m));
    m->dev = dev;
    m->hv = hv;
    m->loop = loop;
    m->base = base;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        m->notify_fd[i] = -1;
    dev->transport = &mmio_transport;
    dev->transport_data = m;
    int r = hv_irq_line_init(hv, &m->irq, gsi, true);
    if (r < 0)
        return r;
    for (unsigned q = 0; q < dev->ops->num_queues && q < VIRTIO_MAX_QUEUES; q++) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
            r = -errno;
            goto fail;
        }
        m->notify_fd[q] = fd;
        /* Datamatch on the queue index: a write of q to QueueNotify signals
         * exactly this eventfd, inside the hypervisor. */
        r = hv_vm_ioeventfd(hv, fd, base + REG_QUEUE_NOTIFY, 4, q, HV_IOEV_DATAMATCH);
        if (r < 0) {
            close(fd);
            m->notify_fd[q] = -1;
            goto fail;
        }
        m->notify_ctx[q] = (struct virtio_mmio_notify){m, q};
        r = evloop_add(loop, fd, EPOLLIN, on_notify, &m->notify_ctx[q]);
        if (r < 0) {
            (void)hv_vm_ioeventfd(hv, fd, base + REG_QUEUE_NOTIFY, 4, q,
                                  HV_IOEV_DATAMATCH | HV_IOEV_DEASSIGN);
            close(fd);
            m->notify_fd[q] = -1;
            goto fail;
        }
    }
    r = bus_register(bus, base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, m, dev->ops->name);
    if (r < 0)
        goto fail;
    return 0;
fail:
    virtio_mmio_release(m);
    return r;
}

void virtio_mmio_release(struct virtio_mmio *m)
{
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        int fd = m->notify_fd[q];
        if (fd < 0)
            continue;
        evloop_del(m->loop, fd);
        (void)hv_vm_ioeventfd(m->hv, fd, m->base + REG_QUEUE_NOTIFY, 4, q,
                              HV_IOEV_DATAMATCH | HV_IOEV_DEASSIGN);
        close(fd);
        m->notify_fd[q] = -1;
    }
    hv_irq_line_release(&m->irq);
}

void virtio_mmio_save(struct virtio_mmio *m, struct snap_w *w)
{
    struct virtio_device *d = m->dev;
    pthread_mutex_lock(&d->lock);
    /* First: finishing work may raise InterruptStatus bits saved below. */
    if (d->ops->quiesce)
        d->ops->quiesce(d);
    snap_put_u32(w, m->device_features_sel);
    snap_put_u32(w, m->driver_features_sel);
    snap_put_u32(w, m->queue_sel);
    snap_put_u32(w, m->interrupt_status);
    virtio_device_save(d, w);
    pthread_mutex_unlock(&d->lock);
}

int virtio_mmio_load(struct virtio_mmio *m, struct snap_r *r)
{
    struct virtio_device *d = m->dev;
    /* The selects are guest-written u32s that every register access
     * bounds-checks (read_reg, cur_queue): any value is one a driver could
     * have written. InterruptStatus holds only the reasons we raise. */
    uint32_t dsel = snap_get_u32(r), gsel = snap_get_u32(r), qsel = snap_get_u32(r);
    uint32_t isr = snap_get_u32(r);
    if (r->err || (isr & ~(uint32_t)(VIRTIO_INT_USED | VIRTIO_INT_CONFIG)))
        return -EPROTO;
    pthread_mutex_lock(&d->lock);
    /* Set before the device loads: it may raise interrupts of its own. */
    m->device_features_sel = dsel;
    m->driver_features_sel = gsel;
    m->queue_sel = qsel;
    m->interrupt_status = isr;
    int e = virtio_device_load(d, r);
    if (e == 0)
        e = virtio_device_resume(d);
    /* The edge that announced a pending reason went with the old machine
     * (or sits in its restored interrupt controller): one more is harmless,
     * the driver reads InterruptStatus and finds what to do or nothing. */
    if (e == 0 && m->interrupt_status)
        irq_line_pulse(&m->irq);
    pthread_mutex_unlock(&d->lock);
    return e;
}

int virtio_mmio_cmdline(char *out, size_t len, uint64_t base, uint32_t gsi)
{
    int n = snprintf(out, len, "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)base, gsi);
    return n < 0 || (size_t)n >= len ? -E2BIG : 0;
}
