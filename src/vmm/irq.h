/* irq.h - an interrupt line as devices see it.
 *
 * Devices raise interrupts only through this object, never through the
 * hypervisor directly. An edge is delivered through an irqfd when the
 * hypervisor has one (an eventfd write, no ioctl), else by toggling the line.
 */
#ifndef ARCVM_IRQ_H
#define ARCVM_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct hv_vm;

struct irq_line {
    struct hv_vm *hv;
    uint32_t gsi;
    int fd; /* irqfd eventfd, or -1 */
};

/* Bind @l to @gsi; uses an irqfd when @use_irqfd. -errno on failure. */
int irq_line_init(struct irq_line *l, struct hv_vm *hv, uint32_t gsi, bool use_irqfd);
void irq_line_release(struct irq_line *l);
/* Deliver one edge-triggered interrupt. Safe from any thread. */
void irq_line_pulse(struct irq_line *l);
/* Drive a level-triggered line. */
void irq_line_set(struct irq_line *l, bool level);

#endif
