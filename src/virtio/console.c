/* console.c - virtio-console with one port and no multiport control queue:
 * queue 0 carries host input to the guest, queue 1 guest output to the host.
 */
#include "virtio/console.h"

#include "base/console.h"

#include <stdlib.h>
#include <string.h>

enum { RXQ = 0, TXQ = 1 };
/* Output chains handled per notification before other devices get a turn. */
#define TX_BATCH 64

struct vconsole {
    struct virtio_device vdev; /* first: the ops receive &vdev */
    struct console *con;
    struct virtq_chain chain;
};

/* virtio_console_config: cols, rows, max_nr_ports, emerg_wr. We offer no
 * feature that makes the driver read it; it reads as zeros. */
#define CONFIG_SIZE 12

static void vcon_config_read(struct virtio_device *d, uint32_t off, void *buf, uint32_t len)
{
    (void)d;
    (void)off;
    memset(buf, 0, len);
}

static long tx_chain(struct virtio_device *d, unsigned q, struct virtq_chain *c)
{
    struct vconsole *v = (struct vconsole *)d;
    (void)q;
    for (unsigned i = 0; i < c->nread; i++)
        console_write(v->con, c->buf[i].hva, c->buf[i].len);
    d->stats.out_bytes += c->read_len;
    return 0;
}

static void vcon_notify(struct virtio_device *d, unsigned q)
{
    struct vconsole *v = (struct vconsole *)d;
    if (q == TXQ)
        virtio_queue_serve(d, q, &v->chain, TX_BATCH, tx_chain);
    else if (q == RXQ)
        console_rx_ready(v->con); /* new receive buffers: pending input may flow */
}

size_t virtio_console_rx(void *opaque, const uint8_t *buf, size_t len)
{
    struct vconsole *v = opaque;
    struct virtio_device *d = &v->vdev;
    size_t done = 0;
    pthread_mutex_lock(&d->lock);
    struct virtq *q = &d->vq[RXQ];
    while (done < len && virtio_device_live(d) && q->ready) {
        int r = virtq_pop(q, &v->chain);
        if (r < 0) {
            virtio_set_needs_reset(d, "malformed receive queue");
            break;
        }
        if (r == 0)
            break; /* no buffer: the console holds the rest until RXQ is kicked */
        size_t n = virtq_chain_write(&v->chain, 0, buf + done, len - done);
        virtq_push(q, v->chain.head, (uint32_t)n);
        done += n;
        if (n == 0)
            break; /* a chain with no writable space: don't spin on it */
    }
    if (done) {
        d->stats.in_bytes += done;
        virtio_notify_used(d, RXQ);
    }
    pthread_mutex_unlock(&d->lock);
    return done;
}

static void vcon_release(struct virtio_device *d)
{
    virtio_device_release(d);
    free(d);
}

static const struct virtio_dev_ops vcon_ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .num_queues = 2,
    .queue_max_size = 256,
    .config_size = CONFIG_SIZE,
    .config_read = vcon_config_read,
    .queue_notify = vcon_notify,
    .release = vcon_release,
};

struct virtio_device *virtio_console_create(const struct guest_mem *mem, struct console *con)
{
    struct vconsole *v = calloc(1, sizeof(*v));
    if (!v)
        return virtio_fail(ENOMEM);
    v->con = con;
    virtio_device_init(&v->vdev, &vcon_ops, mem, 0);
    return &v->vdev;
}
