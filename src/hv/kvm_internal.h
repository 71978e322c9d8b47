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

struct hv {
    int fd;
    int run_size;
    struct hv_caps caps;
};

/* irqfds a VM may hold before its irqchip is ready: one per device line. */
#define KVM_PENDING_IRQFDS 64

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
    int chip_fd; /* the in-kernel irqchip's device (arm64 GIC), or -1 */
    uint32_t chip_lines; /* device interrupt lines it has (arm64: SPIs) */
    /* Whether irqfds attach at once. An irqchip that must be initialised
     * after the vCPUs exist (arm64's GIC: KVM_IRQFD says EAGAIN before)
     * gets them at hv_vm_finalize(), from this list. */
    bool chip_ready;
    struct {
        int fd;
        uint32_t gsi;
    } pending[KVM_PENDING_IRQFDS];
    unsigned npending;
    unsigned nslots;
    struct kvm_slot *slots;
    /* A restore's real time since the snapshot, added to each vCPU's
     * virtual counter as it is loaded (arm64; hv_vm_load's clock_realtime). */
    uint64_t clock_advance_ns;
};

struct hv_vcpu {
    struct hv_vm *vm;
    int fd;
    unsigned id;
    struct kvm_run *run;
};

/* ---- what each architecture's part of the backend provides ----
 * (kvm_x86.c, kvm_arm64.c; kvm.c and kvm_selftest.c are the same on all) */

/* KVM_CHECK_EXTENSION on @fd: the extension's value, 0 when absent. */
int kvm_check_ext(int fd, long ext);
/* The HV_FEAT_* bits of the architecture's platform (x86: PIT,
 * TSC-deadline timer; arm64: the architected timer, always in the kernel). */
uint32_t kvm_arch_features(int kvm_fd);
/* After KVM_CREATE_VM: the platform pieces @cfg asks for (x86: TSS and
 * identity map, PIC/IOAPIC, PIT; arm64: the GICv3 device). */
int kvm_arch_vm_init(struct hv_vm *vm, const struct hv_vm_config *cfg);
/* Release what kvm_arch_vm_init() made beyond the VM fd. */
void kvm_arch_vm_release(struct hv_vm *vm);
/* After KVM_CREATE_VCPU: the vCPU's own setup (arm64: KVM_ARM_VCPU_INIT). */
int kvm_arch_vcpu_init(struct hv_vcpu *v);
/* hv_vm_finalize(): once every vCPU exists (arm64: initialise the GIC). */
int kvm_arch_vm_finalize(struct hv_vm *vm);
/* Mark @vm's irqchip ready and attach the irqfds that waited for it. */
int kvm_irqfds_attach(struct hv_vm *vm);
/* KVM_IRQ_LINE's irq field for @gsi (arm64 encodes the interrupt type). */
uint32_t kvm_arch_irq_line(uint32_t gsi);

/* The self-test guest of hv_selftest(): code placed at @entry in
 * SELFTEST_MEM bytes of RAM at @mem_gpa, which writes SELFTEST_VALUE
 * somewhere only the VMM sees and then ends with the exit @end. */
#define SELFTEST_VALUE 0x5a
#define SELFTEST_MEM 0x10000u
struct kvm_selftest_guest {
    const uint8_t *code;
    size_t len;
    uint64_t mem_gpa, entry;
    enum hv_exit_reason end;
    const char *what; /* hv_selftest_what() */
};
extern const struct kvm_selftest_guest kvm_selftest_guest;
/* Point vCPU @v (of a VM without irqchip) at the guest's entry. */
int kvm_arch_selftest_vcpu(struct hv_vcpu *v);
/* Whether @e is the guest's write of SELFTEST_VALUE (and nothing else). */
bool kvm_arch_selftest_wrote(const struct hv_exit *e);

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
