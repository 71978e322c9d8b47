/* hostcheck.h - can this host run arcvm's VMs? One verdict per requirement.
 *
 * In the spirit of libvirt's virt-host-validate and Ubuntu's kvm-ok: each
 * requirement gets PASS, WARN (works, with less) or FAIL (a stock Linux
 * guest cannot run), a sentence saying what was found and, unless it
 * passed, what to do. `arcvm check` prints the full report; vm_create()
 * runs the KVM part before a VM is built, so a host that cannot run a guest
 * is refused at once instead of a guest dying a minute later.
 */
#ifndef ARCVM_VMM_HOSTCHECK_H
#define ARCVM_VMM_HOSTCHECK_H

#include "hv/hv.h"

#include <stdbool.h>
#include <stddef.h>

/* What a VM cannot do without: the interrupt controller, its fast paths,
 * race-free kicks, RAM from our memfd, the legacy timer Linux calibrates
 * against. */
#define HOSTCHECK_REQUIRED_FEATURES                                                              \
    (HV_FEAT_IRQCHIP | HV_FEAT_IRQFD | HV_FEAT_IOEVENTFD | HV_FEAT_IMMEDIATE_EXIT |               \
     HV_FEAT_USER_MEMORY | HV_FEAT_TIMER)

/* How long the test guest may take before the check gives up on it. A real
 * hypervisor needs well under a millisecond, a nested one a few. */
#define HOSTCHECK_SELFTEST_MS 1000

/* Environment variable naming a directory that stands in for / when the
 * check reads /proc/cpuinfo and /sys/module: for tests only. */
#define HOSTCHECK_ROOT_ENV "ARCVM_HOST_ROOT"

enum hostcheck_status { HOSTCHECK_PASS, HOSTCHECK_WARN, HOSTCHECK_FAIL };

struct hostcheck_item {
    char name[24];      /* short and stable, e.g. "hardware-virt" */
    enum hostcheck_status status;
    char detail[224];   /* what was found */
    char hint[224];     /* what to do about it; "" when it passed */
};

#define HOSTCHECK_MAX 32
struct hostcheck {
    unsigned count, warns, fails;
    struct hostcheck_item items[HOSTCHECK_MAX];
};

/* The full report for the hypervisor device @dev (NULL: /dev/kvm) and the
 * kernel cache directory @kernel_cache (NULL: not checked). */
void hostcheck_run(struct hostcheck *hc, const char *dev, const char *kernel_cache);

/* Open the hypervisor device @dev for a VM, with the verdicts of `arcvm
 * check` as the error: 0, or hv_open()'s -errno with one sentence in @err
 * (what was found, what to do). */
int hostcheck_open(const char *dev, struct hv **out, char *err, size_t errlen);

/* The part a VM start needs, on an opened hypervisor: its kind (unless
 * @check_kind_too is false, the expert's --no-kvm-check) and the features
 * no guest runs without (no test guest: see hostcheck.c). 0, or -ENOTSUP
 * with one sentence in @err naming the first failure and what to do. */
int hostcheck_for_start(struct hv *hv, const char *dev, bool check_kind_too, char *err,
                        size_t errlen);

/* "PASS", "WARN", "FAIL". */
const char *hostcheck_status_name(enum hostcheck_status s);
/* Whether this host gives transparent huge pages to shared memory (what
 * guest RAM is) when asked with madvise: its shmem_enabled setting is not
 * "never" or "deny". */
bool hostcheck_shmem_thp(void);

#endif
