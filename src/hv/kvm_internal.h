/* kvm_internal.h - what the files of the KVM backend share: its handles
 * and the ioctl wrapper. Nothing outside src/hv/kvm*.c includes this. */
#ifndef ARCVM_HV_KVM_INTERNAL_H
#define ARCVM_HV_KVM_INTERNAL_H

#include "base/irq.h"
#include "hv/hv.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <sys/ioctl.h>

/* KVM's stable API version since Linux 2.6.22. */
#define KVM_API_EXPECTED 12
/* Placement of the VMX real-mode TSS (three pages) and identity-map page:
 * just below the 4 GiB boundary, inside the MMIO hole that arch/x86 keeps
 * free of devices. Ignored on AMD but harmless. */
#define KVM_TSS_ADDR 0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

struct hv {
    int fd;
    int run_size;
    struct hv_caps caps;
};

struct kvm_slot {
    bool used;
    uint64_t gpa, size;
    void *hva;
    uint32_t flags;
};

struct hv_vm {
    struct hv *hv;
    struct irq_chip chip; /* the in-kernel irqchip's lines, for irq_line */
    int fd;
    unsigned nslots;
    struct kvm_slot *slots;
};

struct hv_vcpu {
    struct hv_vm *vm;
    int fd;
    struct kvm_run *run;
};

/* ioctl() that retries EINTR (except for KVM_RUN, whose EINTR means a
 * kick) and returns -errno on failure. */
static inline int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR && req != KVM_RUN);
    return r < 0 ? -errno : r;
}


#endif
