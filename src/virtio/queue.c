/* queue.c - split virtqueue access with a hostile driver; see queue.h.
 * Ring layouts and rules: virtio 1.2, 2.7 "Split Virtqueues". */
#include "virtio/queue.h"

#include <errno.h>
#include <string.h>

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define DESC_F_INDIRECT 4
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
_Static_assert(sizeof(struct desc) == 16, "descriptor layout");

/* Ring fields are little-endian (VERSION_1) and x86 is too; guest-shared
 * words are read and written with single atomic accesses so a racing
 * driver can only make us see an old or a new value, never a torn one. */
static uint16_t ld16(const uint8_t *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static uint16_t ld16_acquire(const uint8_t *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void st16_release(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

void virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size)
{
    memset(q, 0, sizeof(*q));
    q->mem = mem;
    q->max_size = max_size;
}

void virtq_reset(struct virtq *q)
{
    virtq_init(q, q->mem, q->max_size);
}

bool virtq_enable(struct virtq *q, bool event_idx, bool indirect)
{
    uint16_t n = q->size;
    /* Split queues are a power of two in size (2.7). */
    if (n == 0 || n > q->max_size || (n & (n - 1)))
        return false;
    /* Alignment from 2.7: descriptors 16, available ring 2, used ring 4. */
    if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
        return false;
    uint8_t *desc = guest_mem_ptr(q->mem, q->desc_gpa, virtq_desc_bytes(n));
    uint8_t *avail = guest_mem_ptr(q->mem, q->avail_gpa, virtq_avail_bytes(n));
    uint8_t *used = guest_mem_ptr(q->mem, q->used_gpa, virtq_used_bytes(n));
    if (!desc || !avail || !used)
        return false;
    q->desc = desc;
    q->avail = avail;
    q->used = used;
    q->event_idx = event_idx;
    q->indirect = indirect;
    /* A freshly enabled queue starts at index 0 on both rings (2.7.13). */
    q->last_avail = q->used_idx = 0;
    q->signalled_valid = false;
    q->ready = true;
    return true;
}

/* Walk the chain starting at @head into @c. */
static int walk(const struct virtq *q, uint16_t head, struct virtq_chain *c)
{
    const uint8_t *table = q->desc;
    uint32_t table_n = q->size;
    bool in_indirect = false;
    uint32_t idx = head, steps = 0;

    c->head = head;
    c->nread = c->nwrite = 0;
    c->read_len = c->write_len = 0;
    for (;;) {
        /* A chain visits each descriptor of its table at most once: more
         * steps than entries means a loop. */
        if (++steps > table_n)
            return -EINVAL;
        struct desc d;
        memcpy(&d, table + 16u * idx, sizeof(d)); /* copy out, then check */
        if (d.flags & DESC_F_INDIRECT) {
            if (in_indirect || !q->indirect || (d.flags & DESC_F_NEXT))
                return -EINVAL;
            if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SIZE)
                return -EINVAL;
            table = guest_mem_ptr(q->mem, d.addr, d.len);
            if (!table)
                return -EINVAL;
            table_n = d.len / 16;
            in_indirect = true;
            idx = 0;
            steps = 0;
            continue;
        }
        if (d.len) {
            uint8_t *hva = guest_mem_ptr(q->mem, d.addr, d.len);
            if (!hva)
                return -EINVAL;
            unsigned i = c->nread + c->nwrite;
            if (i == VIRTQ_MAX_SIZE)
                return -EINVAL;
            if (d.flags & DESC_F_WRITE) {
                c->nwrite++;
                c->write_len += d.len;
                /* The device may fill it: a Diff snapshot must carry it. */
                guest_mem_mark_dirty(q->mem, hva, d.len);
            } else {
                if (c->nwrite) /* readable after writable: forbidden (2.7.4.2) */
                    return -EINVAL;
                c->nread++;
                c->read_len += d.len;
            }
            c->buf[i] = (struct virtq_buf){hva, d.len};
        }
        if (!(d.flags & DESC_F_NEXT))
            return 0;
        if (d.next >= table_n)
            return -EINVAL;
        idx = d.next;
    }
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
    if (!q->ready)
        return 0;
    uint16_t avail_idx = ld16_acquire(q->avail + 2);
    uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
    if (pending == 0)
        return 0;
    if (pending > q->size)
        return -EINVAL; /* the driver claims more buffers than the ring holds */
    uint16_t head = ld16(q->avail + 4 + 2u * (q->last_avail & (q->size - 1)));
    if (head >= q->size)
        return -EINVAL;
    int r = walk(q, head, c);
    if (r < 0)
        return r;
    q->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *q)
{
    q->last_avail--;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
    /* A queue the driver disabled (and may be resizing) is never written:
     * its ring pointers were checked for the old size only. */
    if (!q->ready)
        return;
    uint8_t *elem = q->used + 4 + 8u * (q->used_idx & (q->size - 1));
    uint32_t id = head;
    memcpy(elem, &id, 4);
    memcpy(elem + 4, &written, 4);
    q->used_idx++;
    /* The element must be visible before the index that publishes it. */
    st16_release(q->used + 2, q->used_idx);
    guest_mem_mark_dirty(q->mem, q->used, virtq_used_bytes(q->size));
}

bool virtq_should_notify(struct virtq *q)
{
    if (!q->ready)
        return false;
    /* Publishing used.idx must be ordered before reading the driver's
     * suppression fields (2.7.7.2, 2.7.10). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!q->event_idx)
        return !(ld16(q->avail) & AVAIL_F_NO_INTERRUPT);
    uint16_t old = q->signalled_used, now = q->used_idx;
    bool valid = q->signalled_valid;
    q->signalled_used = now;
    q->signalled_valid = true;
    if (!valid)
        return true;
    uint16_t event = ld16(q->avail + 4 + 2u * q->size); /* used_event */
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool virtq_enable_notify(struct virtq *q)
{
    if (!q->ready)
        return false;
    if (q->event_idx)
        st16_release(q->used + 4 + 8u * q->size, q->last_avail); /* avail_event */
    else
        st16_release(q->used, 0); /* clear USED_F_NO_NOTIFY */
    guest_mem_mark_dirty(q->mem, q->used, virtq_used_bytes(q->size));
    /* The store above must be visible before we look for new buffers, or
     * a buffer added in between would be missed with no notification. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return ld16_acquire(q->avail + 2) != q->last_avail;
}

/* Copy between @buf and the chain's buffers [first, first+count), starting
 * @off bytes into them. */
static size_t chain_copy(const struct virtq_chain *c, unsigned first, unsigned count,
                         uint64_t off, uint8_t *buf, size_t len, bool to_guest)
{
    size_t done = 0;
    for (unsigned i = first; i < first + count && done < len; i++) {
        const struct virtq_buf *b = &c->buf[i];
        if (off >= b->len) {
            off -= b->len;
            continue;
        }
        size_t n = b->len - off;
        if (n > len - done)
            n = len - done;
        if (to_guest)
            memcpy(b->hva + off, buf + done, n);
        else
            memcpy(buf + done, b->hva + off, n);
        done += n;
        off = 0;
    }
    return done;
}

void virtq_disable_notify(struct virtq *q)
{
    if (!q->ready)
        return;
    /* With EVENT_IDX the driver kicks when its index crosses avail_event;
     * one behind what we have taken is never crossed again (2.7.10). */
    if (q->event_idx)
        st16_release(q->used + 4 + 8u * q->size, (uint16_t)(q->last_avail - 1));
    else
        st16_release(q->used, USED_F_NO_NOTIFY);
    guest_mem_mark_dirty(q->mem, q->used, virtq_used_bytes(q->size));
}

size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, size_t len)
{
    return chain_copy(c, 0, c->nread, off, dst, len, false);
}

size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, size_t len)
{
    /* The cast is safe: with to_guest set, chain_copy only reads @src. */
    return chain_copy(c, c->nread, c->nwrite, off, (uint8_t *)(uintptr_t)src, len, true);
}
