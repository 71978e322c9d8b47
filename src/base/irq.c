/* irq.c - delivering an edge on an interrupt line; see irq.h. */
#include "base/irq.h"

#include <unistd.h>

void irq_line_pulse(struct irq_line *l)
{
    if (l->fd >= 0) {
        uint64_t one = 1;
        /* EAGAIN only when the counter is saturated: an edge is pending. */
        (void)!write(l->fd, &one, sizeof(one));
        return;
    }
    l->chip->set_level(l->chip, l->gsi, true);
    l->chip->set_level(l->chip, l->gsi, false);
}
