/* vdev_harness.c - the guest driver's side of the virtio device tests; see
 * vdev_harness.h. */
#include "vdev_harness.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

/* ---- fake transport ------------------------------------------------------ */

static void t_interrupt(struct virtio_device *d, uint32_t reason)
{
    struct vdev_harness *h = d->transport_data;
    if (reason & VIRTIO_INT_USED)
        h->used_irqs++;
    if (reason & VIRTIO_INT_CONFIG)
        h->config_irqs++;
}

/* A device asks for a queue to be served again from the event loop, maybe
 * from another thread (an I/O completion): remember which, wake the loop. */
static void t_requeue(struct virtio_device *d, unsigned q)
{
    struct vdev_harness *h = d->transport_data;
    uint64_t one = 1;
    atomic_fetch_or(&h->requeued, 1u << q);
    (void)!write(h->requeue_fd, &one, sizeof(one));
}

static const struct virtio_transport_ops transport = {.interrupt = t_interrupt,
                                                      .requeue = t_requeue};

void vh_kick(struct vdev_harness *h, unsigned q)
{
    struct virtio_device *d = h->dev;
    pthread_mutex_lock(&d->lock);
    if (virtio_device_live(d) && d->vq[q].ready)
        d->ops->queue_notify(d, q);
    pthread_mutex_unlock(&d->lock);
}

static void on_requeue(void *opaque, uint32_t events)
{
    struct vdev_harness *h = opaque;
    uint64_t v;
    (void)events;
    (void)!read(h->requeue_fd, &v, sizeof(v));
    unsigned m = atomic_exchange(&h->requeued, 0);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        if (m & (1u << q))
            vh_kick(h, q);
}

/* ---- set-up -------------------------------------------------------------- */

static void on_tick(void *opaque, uint32_t events);

void vh_init(struct vdev_harness *h, const struct guest_mem_region *ram, unsigned n)
{
    assert_int_equal(guest_mem_init(&h->mem, ram, n), 0);
    assert_int_equal(evloop_init(&h->loop), 0);
    h->requeue_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    h->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    assert_true(h->requeue_fd >= 0 && h->tick_fd >= 0);
    struct itimerspec its = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}}; /* 1 ms */
    assert_int_equal(timerfd_settime(h->tick_fd, 0, &its, NULL), 0);
    assert_int_equal(evloop_add(&h->loop, h->requeue_fd, EPOLLIN, on_requeue, h), 0);
    assert_int_equal(evloop_add(&h->loop, h->tick_fd, EPOLLIN, on_tick, h), 0);
}

void vh_release(struct vdev_harness *h)
{
    vh_drop_dev(h);
    evloop_del(&h->loop, h->requeue_fd);
    evloop_del(&h->loop, h->tick_fd);
    close(h->requeue_fd);
    close(h->tick_fd);
    evloop_release(&h->loop);
    guest_mem_release(&h->mem);
}

void vh_rings(struct vdev_harness *h, unsigned nq, uint16_t size, uint64_t base, uint64_t stride)
{
    assert_true(nq <= VIRTIO_MAX_QUEUES);
    uint64_t avail = 16ull * size, used = (avail + 6 + 2ull * size + 4095) & ~4095ull;
    /* Queues must not overlap. */
    assert_true(nq <= 1 || stride >= used + 6 + 8ull * size);
    for (unsigned q = 0; q < nq; q++) {
        uint64_t desc = base + stride * q;
        h->q[q] = (struct vh_queue){
            .desc = desc, .avail = desc + avail, .used = desc + used, .size = size};
    }
    h->nq = nq;
}

void vh_heap(struct vdev_harness *h, uint64_t start, uint64_t end)
{
    h->heap = start;
    h->heap_end = end;
}

void vh_attach(struct vdev_harness *h, struct virtio_device *dev)
{
    h->dev = dev;
    dev->transport = &transport;
    dev->transport_data = h;
}

void vh_drop_dev(struct vdev_harness *h)
{
    if (h->dev)
        h->dev->ops->release(h->dev);
    h->dev = NULL;
}

/* ---- the driver's initialisation ------------------------------------------- */

static void zero(struct vdev_harness *h, uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(&h->mem, gpa, len);
    assert_non_null(p);
    memset(p, 0, len);
}

/* Fresh rings: the device must see nothing a driver left before the reset. */
static void clear_rings(struct vdev_harness *h, struct vh_queue *vq)
{
    uint64_t n = vq->size;
    zero(h, vq->desc, 16 * n);
    zero(h, vq->avail, 6 + 2 * n);
    zero(h, vq->used, 6 + 8 * n);
    vq->avail_idx = vq->next_desc = 0;
}

bool vh_negotiate(struct vdev_harness *h, uint64_t want, unsigned qmask)
{
    struct virtio_device *d = h->dev;
    assert_true((qmask >> h->nq) == 0); /* only queues vh_rings() laid out */
    for (unsigned q = 0; q < h->nq; q++)
        clear_rings(h, &h->q[q]);
    pthread_mutex_lock(&d->lock);
    /* A reset first (step 1), so that a test may initialise a device again. */
    virtio_set_status(d, 0);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    d->guest_features = (d->host_features & want) | VIRTIO_BIT(VIRTIO_F_VERSION_1);
    virtio_set_status(d,
                      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(d->status & VIRTIO_STATUS_FEATURES_OK)) {
        pthread_mutex_unlock(&d->lock);
        return false;
    }
    bool enabled = true;
    for (unsigned q = 0; q < h->nq; q++) {
        if (!(qmask & (1u << q)))
            continue;
        d->vq[q].size = h->q[q].size;
        d->vq[q].desc_gpa = h->q[q].desc;
        d->vq[q].avail_gpa = h->q[q].avail;
        d->vq[q].used_gpa = h->q[q].used;
        enabled &= virtio_queue_enable(d, q);
    }
    pthread_mutex_unlock(&d->lock);
    assert_true(enabled);
    return true;
}

void vh_driver_ok(struct vdev_harness *h)
{
    struct virtio_device *d = h->dev;
    pthread_mutex_lock(&d->lock);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    bool live = virtio_device_live(d);
    pthread_mutex_unlock(&d->lock);
    assert_true(live);
}

bool vh_driver_init(struct vdev_harness *h, uint64_t want, unsigned qmask)
{
    if (!vh_negotiate(h, want, qmask))
        return false;
    vh_driver_ok(h);
    return true;
}

/* ---- guest memory -------------------------------------------------------- */

uint8_t *vh_ptr(struct vdev_harness *h, uint64_t gpa)
{
    uint8_t *p = guest_mem_ptr(&h->mem, gpa, 1);
    assert_non_null(p);
    return p;
}

uint64_t vh_alloc(struct vdev_harness *h, uint64_t len)
{
    uint64_t gpa = h->heap;
    h->heap = (h->heap + len + 63) & ~63ull;
    assert_true(h->heap <= h->heap_end);
    return gpa;
}

/* ---- rings --------------------------------------------------------------- */

void vh_put_desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    uint8_t *p = table + 16u * i;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

void vh_set_desc(struct vdev_harness *h, unsigned q, unsigned i, uint64_t addr, uint32_t len,
                 uint16_t flags, uint16_t next)
{
    vh_put_desc(vh_ptr(h, h->q[q].desc), i, addr, len, flags, next);
}

void vh_publish(struct vdev_harness *h, unsigned q, uint16_t head)
{
    struct vh_queue *vq = &h->q[q];
    uint8_t *avail = vh_ptr(h, vq->avail);
    memcpy(avail + 4 + 2u * (vq->avail_idx % vq->size), &head, 2);
    vq->avail_idx++;
    /* Release: the device must see the entry before the index. */
    __atomic_store_n((uint16_t *)(avail + 2), vq->avail_idx, __ATOMIC_RELEASE);
}

static uint16_t seg_flags(const struct vh_seg *s, unsigned i, unsigned n)
{
    return (uint16_t)((s[i].write ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0));
}

uint16_t vh_post(struct vdev_harness *h, unsigned q, const struct vh_seg *s, unsigned n)
{
    struct vh_queue *vq = &h->q[q];
    uint8_t *table = vh_ptr(h, vq->desc);
    uint16_t head = vq->next_desc % vq->size;
    for (unsigned i = 0; i < n; i++) {
        uint16_t idx = (uint16_t)((head + i) % vq->size);
        vh_put_desc(table, idx, s[i].gpa, s[i].len, seg_flags(s, i, n),
                    (uint16_t)((idx + 1) % vq->size));
    }
    vq->next_desc = (uint16_t)(vq->next_desc + n);
    vh_publish(h, q, head);
    return head;
}

uint16_t vh_post_table(struct vdev_harness *h, unsigned q, uint64_t table, unsigned n)
{
    struct vh_queue *vq = &h->q[q];
    uint16_t head = vq->next_desc++ % vq->size;
    vh_set_desc(h, q, head, table, 16u * n, DESC_F_INDIRECT, 0);
    vh_publish(h, q, head);
    return head;
}

uint16_t vh_post_indirect(struct vdev_harness *h, unsigned q, uint64_t table,
                          const struct vh_seg *s, unsigned n)
{
    uint8_t *t = guest_mem_ptr(&h->mem, table, 16u * n);
    assert_non_null(t);
    for (unsigned i = 0; i < n; i++)
        vh_put_desc(t, i, s[i].gpa, s[i].len, seg_flags(s, i, n), (uint16_t)(i + 1));
    return vh_post_table(h, q, table, n);
}

uint16_t vh_used_idx(struct vdev_harness *h, unsigned q)
{
    /* Acquire: the entries the device wrote before the index are visible. */
    return __atomic_load_n((uint16_t *)vh_ptr(h, h->q[q].used + 2), __ATOMIC_ACQUIRE);
}

void vh_used_elem(struct vdev_harness *h, unsigned q, uint16_t i, uint32_t *id, uint32_t *len)
{
    uint8_t *e = vh_ptr(h, h->q[q].used + 4 + 8u * (i % h->q[q].size));
    memcpy(id, e, 4);
    memcpy(len, e + 4, 4);
}

/* ---- the event loop ------------------------------------------------------ */

/* Every millisecond: stop the loop once the condition holds or time is up,
 * so that a device that never answers fails the test instead of hanging it. */
static void on_tick(void *opaque, uint32_t events)
{
    struct vdev_harness *h = opaque;
    uint64_t v;
    (void)events;
    (void)!read(h->tick_fd, &v, sizeof(v));
    h->ticks++;
    if ((h->until && h->until(h->arg)) || h->ticks >= h->limit)
        evloop_stop(&h->loop);
}

bool vh_run_until(struct vdev_harness *h, vh_until_fn until, void *arg, unsigned ms)
{
    if (until && until(arg))
        return true;
    h->until = until;
    h->arg = arg;
    h->ticks = 0;
    h->limit = ms;
    atomic_store(&h->loop.stop, false);
    evloop_run(&h->loop);
    h->until = NULL;
    return until && until(arg);
}

void vh_run_for(struct vdev_harness *h, unsigned ms)
{
    vh_run_until(h, NULL, NULL, ms);
}

static bool used_reached(void *arg)
{
    struct vdev_harness *h = arg;
    return (uint16_t)(vh_used_idx(h, h->want_q) - h->want) < 0x8000;
}

bool vh_run_used(struct vdev_harness *h, unsigned q, uint16_t target, unsigned ms)
{
    h->want_q = q;
    h->want = target;
    return vh_run_until(h, used_reached, h, ms);
}

void vh_wait_used(struct vdev_harness *h, unsigned q, uint16_t target)
{
    assert_true(vh_run_used(h, q, target, VH_WAIT_MS));
    assert_int_equal(vh_used_idx(h, q), target);
}
