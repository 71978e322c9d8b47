/* pmem.c - the library's virtio-pmem calls (arcvm.h): configuration
 * before the start, flush rate limits at any time. */
#include "arcvm.h"

#include "lib/handle.h"
#include "lib/internal.h"

#include "vmm/config.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int arcvm_add_pmem_spec(arcvm *h, const char *spec)
{
    pthread_mutex_lock(&h->lock);
    int r = 0;
    struct pmem_config p;
    if (h->vm)
        r = lib_fail(h, -EBUSY, "the VM is already started: settings are fixed");
    else if (h->cfg.npmems == CONFIG_MAX_PMEMS)
        r = lib_fail(h, -E2BIG, "too many pmem devices: at most %d", CONFIG_MAX_PMEMS);
    else if (!spec)
        r = lib_fail(h, -EINVAL, "no pmem description");
    else if ((r = config_parse_pmem(spec, &p, h->err, sizeof(h->err))) == 0)
        h->cfg.pmems[h->cfg.npmems++] = p;
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_add_pmem(arcvm *h, const char *path, int readonly, int root, const char *id)
{
    char spec[4200];
    int n = snprintf(spec, sizeof(spec), "%s%s%s%s%s", path ? path : "", readonly ? ",ro" : "",
                     root ? ",root" : "", id ? ",id=" : "", id ? id : "");
    if (!path || !*path || strchr(path, ',') || (id && strchr(id, ',')) || n < 0 ||
        (size_t)n >= sizeof(spec)) {
        pthread_mutex_lock(&h->lock);
        int r = lib_fail(h, -EINVAL, "a pmem path and id must be non-empty and contain no commas");
        pthread_mutex_unlock(&h->lock);
        return r;
    }
    return arcvm_add_pmem_spec(h, spec);
}

int arcvm_set_pmem_rate_limiter(arcvm *h, const char *pmem_id,
                                const struct arcvm_rate_limiter *rl)
{
    struct rate_limiter_config c = lib_rl_config(rl);
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (!pmem_id || rate_limiter_config_check(&c) < 0) {
        r = lib_fail(h, -EINVAL, "pmem %s: a rate limiter bucket with a size needs a refill "
                     "time of 1 ms or more", pmem_id ? pmem_id : "");
    } else if (h->vm) {
        if ((r = vm_pmem_set_rate_limiter(h->vm, pmem_id, &c)) == -ENOENT)
            lib_fail(h, r, "no pmem device with id '%s'", pmem_id);
        else if (r < 0)
            lib_fail(h, r, "pmem %s: changing its rate limiter failed: %s", pmem_id,
                     strerror(-r));
    } else {
        unsigned i = 0;
        while (i < h->cfg.npmems && !(h->cfg.pmems[i].id && !strcmp(h->cfg.pmems[i].id, pmem_id)))
            i++;
        if (i == h->cfg.npmems)
            r = lib_fail(h, -ENOENT, "no pmem device with id '%s'", pmem_id);
        else
            h->cfg.pmems[i].rl = c;
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}
