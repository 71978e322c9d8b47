/* i8042.h - the PC keyboard controller, as much of it as Linux needs.
 *
 * Enough for `reboot=k` (command 0xfe pulses the CPU reset line), for the
 * kernel's driver to probe a controller with a keyboard that answers ACK to
 * every command, and for the host to press Ctrl-Alt-Del.
 */
#ifndef ARCVM_I8042_H
#define ARCVM_I8042_H

#include "hw/hw.h"
#include "base/bus.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct irq_line;
struct snap_r;
struct snap_w;

/* Decoded at 0x60 (data) through 0x64 (status/command). */
#define I8042_PORT_BASE 0x60
#define I8042_PORT_LEN 5

struct i8042 {
    pthread_mutex_t lock;
    const struct hw_machine *machine;
    struct irq_line *irq; /* IRQ 1 */
    uint8_t ctr;          /* controller configuration ("command byte") */
    uint8_t outp;         /* output port */
    uint8_t pending_cmd;  /* command waiting for its data byte, 0: none */
    uint8_t out[16];      /* output buffer queue (replies and key codes) */
    unsigned out_len;
};

extern const struct bus_ops i8042_ops;
void i8042_init(struct i8042 *k, const struct hw_machine *m, struct irq_line *irq);
void i8042_release(struct i8042 *k);
/* Press Ctrl, Alt and Delete on the keyboard (scan code set 2, as the
 * controller delivers them untranslated), as Firecracker's SendCtrlAltDel
 * does. -EAGAIN if the guest has not drained earlier key codes. */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/* Snapshot: the command byte, output port, a command waiting for its data
 * byte and the output queue. Takes k->lock. */
void i8042_save(struct i8042 *k, struct snap_w *w);
/* Restore what i8042_save() wrote into an i8042_init()ed controller. Checks
 * every value (a pending command must be one that takes data, the queue
 * fits): 0, or -EPROTO with @k unchanged. Bytes waiting with the keyboard
 * interrupt enabled get one more edge: the guest's handler takes one byte
 * per interrupt, and the old machine's edge may not have reached it. */
int i8042_load(struct i8042 *k, struct snap_r *r);

#endif
