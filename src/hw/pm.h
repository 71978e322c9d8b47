/* pm.h - ACPI power management registers of a hardware-reduced platform.
 *
 * The FADT points the guest's sleep control, sleep status and reset
 * registers here. Writing SLP_EN with the S5 sleep type powers the machine
 * off; writing the reset value resets it.
 */
#ifndef ARCVM_PM_H
#define ARCVM_PM_H

#include "hw/hw.h"
#include "base/bus.h"

/* I/O ports: free on a PC, announced in the FADT only. */
#define PM_PORT_BASE 0x600
#define PM_PORT_LEN 3
#define PM_SLEEP_CTL (PM_PORT_BASE + 0)
#define PM_SLEEP_STS (PM_PORT_BASE + 1)
#define PM_RESET (PM_PORT_BASE + 2)
#define PM_RESET_VALUE 0x01
/* SLP_TYP value for S5 (soft off) that the DSDT's \_S5 package declares. */
#define PM_S5_TYPE 5

struct pm {
    const struct hw_machine *machine;
};

struct snap_r;
struct snap_w;

extern const struct bus_ops pm_ops;
void pm_init(struct pm *p, const struct hw_machine *m);

/* Snapshot: nothing, today. The registers keep no state (sleep status
 * always reads 0, control and reset act at once); the pair exists so that
 * the machine saves every device alike, and a section that is not empty
 * is refused. */
void pm_save(struct pm *p, struct snap_w *w);
/* 0 for the empty section pm_save() writes, -EPROTO for anything else. */
int pm_load(struct pm *p, struct snap_r *r);

#endif
