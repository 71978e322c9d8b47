/* cpu_template.c - checking a CPU template; see cpu_template.h. */
#include "arch/cpu_template.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

int cpu_template_check(const struct cpu_template *t, char *err, size_t errlen)
{
    static const char *const reg[4] = {"eax", "ebx", "ecx", "edx"};
    if (t->ncpuid > CPU_TEMPLATE_MAX || t->nmsr > CPU_TEMPLATE_MAX || t->ncaps > CPU_TEMPLATE_MAX) {
        snprintf(err, errlen,
                 "a CPU template holds at most %d CPUID leaves, MSRs and KVM "
                 "capabilities each",
                 CPU_TEMPLATE_MAX);
        return -EINVAL;
    }
    for (unsigned i = 0; i < t->ncpuid; i++) {
        const struct cpu_template_cpuid *c = &t->cpuid[i];
        for (unsigned j = 0; j < i; j++) {
            if (t->cpuid[j].leaf == c->leaf && t->cpuid[j].subleaf == c->subleaf) {
                snprintf(err, errlen,
                         "CPUID leaf 0x%" PRIx32 " subleaf 0x%" PRIx32
                         " appears twice in the CPU template: give each leaf once",
                         c->leaf, c->subleaf);
                return -EINVAL;
            }
        }
        for (unsigned r = 0; r < 4; r++) {
            if (c->value[r] & ~c->mask[r]) {
                snprintf(err, errlen,
                         "CPUID leaf 0x%" PRIx32 " subleaf 0x%" PRIx32 " %s: value bits 0x%" PRIx32
                         " lie outside the mask 0x%" PRIx32,
                         c->leaf, c->subleaf, reg[r], c->value[r], c->mask[r]);
                return -EINVAL;
            }
        }
    }
    for (unsigned i = 0; i < t->nmsr; i++) {
        const struct cpu_template_msr *m = &t->msr[i];
        for (unsigned j = 0; j < i; j++) {
            if (t->msr[j].addr == m->addr) {
                snprintf(err, errlen,
                         "MSR 0x%" PRIx32 " appears twice in the CPU template: give each MSR once",
                         m->addr);
                return -EINVAL;
            }
        }
        if (m->value & ~m->mask) {
            snprintf(err, errlen,
                     "MSR 0x%" PRIx32 ": value bits 0x%" PRIx64 " lie outside the mask 0x%" PRIx64,
                     m->addr, m->value, m->mask);
            return -EINVAL;
        }
    }
    return 0;
}
