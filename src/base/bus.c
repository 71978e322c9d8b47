/* bus.c - sorted-range device bus; see bus.h. */
#include "base/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
    memset(b, 0, sizeof(*b));
    b->name = name;
}

void bus_release(struct bus *b)
{
    free(b->ranges);
    b->ranges = NULL;
    b->count = b->cap = 0;
}

/* Index of the first range whose base is > addr. */
static unsigned upper_bound(const struct bus *b, uint64_t addr)
{
    unsigned lo = 0, hi = b->count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (b->ranges[mid].base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev,
                 const char *name)
{
    if (!len || base + len - 1 < base || !ops)
        return -EINVAL;
    unsigned i = upper_bound(b, base);
    /* Overlap with the predecessor (which starts at or below base) or with
     * the successor (which starts above base). */
    if (i > 0 && b->ranges[i - 1].base + (b->ranges[i - 1].len - 1) >= base)
        return -EEXIST;
    if (i < b->count && base + (len - 1) >= b->ranges[i].base)
        return -EEXIST;
    if (b->count == b->cap) {
        unsigned cap = b->cap ? b->cap * 2 : 16;
        struct bus_range *n = realloc(b->ranges, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        b->ranges = n;
        b->cap = cap;
    }
    memmove(&b->ranges[i + 1], &b->ranges[i], (b->count - i) * sizeof(*b->ranges));
    b->ranges[i] = (struct bus_range){base, len, ops, dev, name};
    b->count++;
    return 0;
}

int bus_unregister(struct bus *b, uint64_t base)
{
    unsigned i = upper_bound(b, base);
    if (i == 0 || b->ranges[i - 1].base != base)
        return -ENOENT;
    i--;
    memmove(&b->ranges[i], &b->ranges[i + 1], (b->count - i - 1) * sizeof(*b->ranges));
    b->count--;
    return 0;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr)
{
    unsigned i = upper_bound(b, addr);
    if (i == 0)
        return NULL;
    const struct bus_range *r = &b->ranges[i - 1];
    return addr - r->base < r->len ? r : NULL;
}

bool bus_access(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool write)
{
    const struct bus_range *r = bus_find(b, addr);
    uint64_t off = r ? addr - r->base : 0;
    if (!r || len == 0 || len > 8 || len > r->len - off) {
        if (!write)
            memset(data, 0xff, len);
        return false;
    }
    if (write) {
        if (r->ops->write)
            r->ops->write(r->dev, off, data, len);
    } else if (r->ops->read) {
        r->ops->read(r->dev, off, data, len);
    } else {
        memset(data, 0xff, len);
    }
    return true;
}
