/* vmgenid.c - the VM generation ID's value and notification; see vmgenid.h. */
#include "hw/vmgenid.h"

#include "base/guest_mem.h"
#include "base/irq.h"
#include "base/snap.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* No GSI: a device without a line (saved so a restore can compare). */
#define NO_GSI 0xffffffffu

static int host_random(uint8_t *buf, size_t len)
{
    /* Flags 0: blocks only until the host's pool is initialised, which a
     * host running VMs is long past. Up to 256 bytes never come short, but
     * a signal may interrupt the wait. */
    while (len) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

void vmgenid_init(struct vmgenid *g, struct guest_mem *mem, uint64_t gpa, struct irq_line *irq)
{
    *g = (struct vmgenid){.mem = mem, .gpa = gpa, .irq = irq, .random = host_random};
}

int vmgenid_new(struct vmgenid *g)
{
    /* Linux ignores a notification whose ID equals the one it holds: never
     * hand it the same value twice (the first differs from all zeros, the
     * ID before it). Two equal draws of 128 random bits do not happen; the
     * bound keeps a broken source from looping forever. */
    uint8_t id[VMGENID_LEN];
    int r, tries = 0;
    do {
        if ((r = g->random(id, sizeof(id))) < 0)
            return r;
    } while (!memcmp(id, g->id, sizeof(id)) && ++tries < 4);
    if (!memcmp(id, g->id, sizeof(id)))
        return -EIO;
    if ((r = guest_mem_write(g->mem, g->gpa, id, sizeof(id))) < 0)
        return r;
    memcpy(g->id, id, sizeof(id));
    return 0;
}

void vmgenid_notify(struct vmgenid *g)
{
    if (g->irq)
        irq_line_pulse(g->irq);
}

void vmgenid_save(const struct vmgenid *g, struct snap_w *w)
{
    snap_put_u64(w, g->gpa);
    snap_put_u32(w, g->irq ? g->irq->gsi : NO_GSI);
    snap_put(w, g->id, sizeof(g->id));
}

int vmgenid_load(struct vmgenid *g, struct snap_r *r)
{
    uint64_t gpa = snap_get_u64(r);
    uint32_t gsi = snap_get_u32(r);
    uint8_t id[VMGENID_LEN];
    snap_get(r, id, sizeof(id));
    if (snap_r_done(r) < 0 || gpa != g->gpa || gsi != (g->irq ? g->irq->gsi : NO_GSI))
        return -EPROTO;
    memcpy(g->id, id, sizeof(id));
    return 0;
}
