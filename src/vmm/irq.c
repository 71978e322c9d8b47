/* irq.c - interrupt lines over the hypervisor's irqfd / irq-line calls. */
#include "vmm/irq.h"

#include "hv/hv.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

int irq_line_init(struct irq_line *l, struct hv_vm *hv, uint32_t gsi, bool use_irqfd)
{
    l->hv = hv;
    l->gsi = gsi;
    l->fd = -1;
    if (!use_irqfd)
        return 0;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    int r = hv_vm_irqfd(hv, fd, gsi, true);
    if (r < 0) {
        close(fd);
        return r;
    }
    l->fd = fd;
    return 0;
}

void irq_line_release(struct irq_line *l)
{
    if (l->fd >= 0) {
        (void)hv_vm_irqfd(l->hv, l->fd, l->gsi, false);
        close(l->fd);
        l->fd = -1;
    }
}

void irq_line_pulse(struct irq_line *l)
{
    if (l->fd >= 0) {
        uint64_t one = 1;
        /* EAGAIN only when the counter is saturated: an edge is pending. */
        (void)!write(l->fd, &one, sizeof(one));
        return;
    }
    (void)hv_vm_irq_line(l->hv, l->gsi, true);
    (void)hv_vm_irq_line(l->hv, l->gsi, false);
}

void irq_line_set(struct irq_line *l, bool level)
{
    (void)hv_vm_irq_line(l->hv, l->gsi, level);
}
