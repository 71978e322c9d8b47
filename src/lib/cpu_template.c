/* cpu_template.c - the library's CPU templates (arcvm_set_cpu_template()):
 * the public structures turned into the VMM's, checked before they are
 * kept. */
#include "arcvm.h"

#include "lib/handle.h"

#include "arch/cpu_template.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(ARCVM_CPU_TEMPLATE_MAX == CPU_TEMPLATE_MAX, "template limits agree");

static int convert(const struct arcvm_cpu_template *t, struct cpu_template *out)
{
    if (t->ncpuid > CPU_TEMPLATE_MAX || t->nmsrs > CPU_TEMPLATE_MAX ||
        t->nkvm_caps > CPU_TEMPLATE_MAX || (t->ncpuid && !t->cpuid) || (t->nmsrs && !t->msrs) ||
        (t->nkvm_caps && !t->kvm_caps))
        return -EINVAL;
    out->ncpuid = t->ncpuid;
    out->nmsr = t->nmsrs;
    out->ncaps = t->nkvm_caps;
    for (unsigned i = 0; i < t->ncpuid; i++) {
        const struct arcvm_cpuid_modifier *c = &t->cpuid[i];
        out->cpuid[i] =
            (struct cpu_template_cpuid){.leaf = c->leaf, .subleaf = c->subleaf, .flags = c->flags};
        memcpy(out->cpuid[i].mask, c->mask, sizeof(c->mask));
        memcpy(out->cpuid[i].value, c->value, sizeof(c->value));
    }
    for (unsigned i = 0; i < t->nmsrs; i++)
        out->msr[i] = (struct cpu_template_msr){t->msrs[i].addr, t->msrs[i].mask, t->msrs[i].value};
    for (unsigned i = 0; i < t->nkvm_caps; i++)
        out->caps[i] = t->kvm_caps[i];
    return 0;
}

int arcvm_set_cpu_template(arcvm *h, const struct arcvm_cpu_template *t)
{
    struct cpu_template *ct = NULL;
    int r = 0;
    if (t && !(ct = calloc(1, sizeof(*ct))))
        return lib_fail(h, -ENOMEM, "out of memory");
    if (t && convert(t, ct) < 0)
        r = lib_fail(h, -EINVAL,
                     "CPU template: at most %d entries of each kind, and an array for each count",
                     CPU_TEMPLATE_MAX);
    pthread_mutex_lock(&h->lock);
    if (!r && ct && cpu_template_check(ct, h->err, sizeof(h->err)) < 0)
        r = -EINVAL;
    if (!r && h->vm)
        r = lib_fail(h, -EBUSY, "the VM is already started: settings are fixed");
    if (!r) {
        free(h->cfg.cpu_template);
        h->cfg.cpu_template = ct;
        ct = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    free(ct);
    return r;
}
