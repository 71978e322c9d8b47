/* pm.c - hardware-reduced ACPI sleep/reset registers; see pm.h.
 * Bit layout of the sleep control register: ACPI 6.4, section 4.8.3.7. */
#include "hw/pm.h"

#include "base/log.h"
#include "base/snap.h"

#include <string.h>

#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK 0x1c
#define SLP_EN 0x20

void pm_init(struct pm *p, const struct hw_machine *m)
{
    p->machine = m;
}

static void pm_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)opaque;
    (void)off;
    memset(data, 0, len); /* no wake status ever set */
}

static void pm_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct pm *p = opaque;
    uint8_t v = data[0];
    (void)len;
    if (off == PM_SLEEP_CTL - PM_PORT_BASE && (v & SLP_EN)) {
        unsigned type = (v & SLP_TYP_MASK) >> SLP_TYP_SHIFT;
        if (type == PM_S5_TYPE)
            hw_machine_request(p->machine, HW_REQ_POWEROFF);
        else
            log_guest("sleep state type %u is not supported; ignored", type);
    } else if (off == PM_RESET - PM_PORT_BASE && v == PM_RESET_VALUE) {
        hw_machine_request(p->machine, HW_REQ_RESET);
    }
}

const struct bus_ops pm_ops = {.read = pm_read, .write = pm_write};

void pm_save(struct pm *p, struct snap_w *w)
{
    (void)p;
    (void)w;
}

int pm_load(struct pm *p, struct snap_r *r)
{
    (void)p;
    return snap_r_done(r);
}
