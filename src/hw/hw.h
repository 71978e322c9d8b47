/* hw.h - what legacy devices may ask of the machine they sit in.
 *
 * Devices do not know the VM object; they get this small callback pair.
 */
#ifndef ARCVM_HW_H
#define ARCVM_HW_H

enum hw_request {
    HW_REQ_POWEROFF, /* the guest turned the machine off */
    HW_REQ_RESET,    /* the guest asked for a reset (reboot) */
};

struct hw_machine {
    void (*request)(void *opaque, enum hw_request req);
    void *opaque;
};

static inline void hw_machine_request(const struct hw_machine *m, enum hw_request req)
{
    if (m && m->request)
        m->request(m->opaque, req);
}

#endif
