/* guest_mem_dirty.c - which guest pages the VMM itself wrote, for Diff
 * snapshots (guest_mem.h). KVM's dirty log records the guest's writes; a
 * device writing through the host mapping (a used ring, a block read, a
 * received frame) is invisible to it, so the virtqueue code marks those
 * pages here. */
#include "base/guest_mem.h"

#include <errno.h>
#include <stdlib.h>

#define PAGE_SHIFT 12

int guest_mem_track_dirty(struct guest_mem *m, bool on)
{
    if (!on) {
        free(m->dirty);
        m->dirty = NULL;
        return 0;
    }
    if (m->dirty)
        return 0;
    uint64_t pages = m->total >> PAGE_SHIFT;
    m->dirty = calloc((pages + 63) / 64, sizeof(uint64_t));
    return m->dirty ? 0 : -ENOMEM;
}

void guest_mem_mark_dirty_slow(const struct guest_mem *m, const void *hva, uint64_t len)
{
    uintptr_t p = (uintptr_t)hva, b = (uintptr_t)m->base;
    if (!m->dirty || !len || p < b || p - b >= m->total || len > m->total - (p - b))
        return;
    uint64_t first = (p - b) >> PAGE_SHIFT, last = (p - b + len - 1) >> PAGE_SHIFT;
    for (uint64_t pg = first; pg <= last; pg++)
        __atomic_fetch_or(&m->dirty[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
}

void guest_mem_take_dirty(const struct guest_mem *m, unsigned i, uint64_t *bits)
{
    if (!m->dirty || i >= m->count)
        return;
    uint64_t first = (uint64_t)(m->r[i].hva - m->base) >> PAGE_SHIFT;
    uint64_t n = m->r[i].size >> PAGE_SHIFT;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t pg = first + k;
        uint64_t bit = 1ull << (pg % 64);
        if (__atomic_load_n(&m->dirty[pg / 64], __ATOMIC_RELAXED) & bit &&
            __atomic_fetch_and(&m->dirty[pg / 64], ~bit, __ATOMIC_RELAXED) & bit)
            bits[k / 64] |= 1ull << (k % 64);
    }
}
