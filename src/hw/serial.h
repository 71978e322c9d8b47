/* serial.h - a 16550A UART (the PC's COM1), interrupt driven.
 *
 * Guest side: eight registers on the port-I/O bus. Host side: a console
 * (vmm/console.h) for bytes in and out, and an interrupt line. Transmit is
 * instantaneous, so the transmitter is always empty; receive goes through a
 * bounded FIFO filled by the console.
 */
#ifndef ARCVM_SERIAL_H
#define ARCVM_SERIAL_H

#include "base/bus.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct console;
struct irq_line;
struct snap_r;
struct snap_w;

#define SERIAL_NREGS 8
/* Receive buffer: room for a pasted line without stalling the host side;
 * the guest drains it one byte per RBR read. */
#define SERIAL_RX_SIZE 1024

struct serial {
    pthread_mutex_t lock; /* registers; taken on vCPU and event-loop threads */
    struct console *con;
    struct irq_line *irq;

    /* Register file: plain data. */
    uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm;
    bool fifo_enabled;
    bool thre_pending; /* THR-empty interrupt latched, cleared by IIR read */
    uint8_t rx[SERIAL_RX_SIZE];
    unsigned rx_head, rx_len;
};

extern const struct bus_ops serial_ops;

void serial_init(struct serial *s, struct console *con, struct irq_line *irq);
void serial_release(struct serial *s);
/* Console input: takes up to @len bytes; returns how many it took. */
size_t serial_rx(void *s, const uint8_t *buf, size_t len);

/* Snapshot: the register file and the receive FIFO's bytes, as fields of
 * the section the caller opened. Takes s->lock. */
void serial_save(struct serial *s, struct snap_w *w);
/* Restore what serial_save() wrote into a serial_init()ed UART. Every value
 * is checked (register bits the UART never sets, FIFO length): 0, or
 * -EPROTO with @s unchanged. A pending interrupt (IIR) is pulsed once more:
 * whether the old machine's edge reached the guest is unknown, and the 8250
 * driver reads IIR until it is clear, so an extra edge costs nothing. */
int serial_load(struct serial *s, struct snap_r *r);

#endif
