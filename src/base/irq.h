/* irq.h - an interrupt line as devices see it.
 *
 * Devices raise interrupts only through this object, never through the
 * hypervisor. Whoever wires the device binds the line (hv_irq_line_init()):
 * to an eventfd the hypervisor turns into an edge (an irqfd: one write, no
 * system call into the hypervisor), or to the interrupt controller's
 * function that drives the line.
 */
#ifndef ARCVM_BASE_IRQ_H
#define ARCVM_BASE_IRQ_H

#include <stdbool.h>
#include <stdint.h>

/* What drives lines that have no eventfd. */
struct irq_chip {
    void (*set_level)(struct irq_chip *chip, uint32_t gsi, bool level);
};

struct irq_line {
    struct irq_chip *chip; /* used when @fd is -1 */
    uint32_t gsi;          /* the line's number at the interrupt controller */
    int fd;                /* eventfd whose writes are edges, or -1 */
};

/* Deliver one edge-triggered interrupt. Safe from any thread. */
void irq_line_pulse(struct irq_line *l);

#endif
