/* mmds.c - the library's side of the microVM metadata service: its
 * configuration (which NICs answer for it, version, address) and the data
 * store, which the handle owns from arcvm_create() to arcvm_destroy() so
 * the data may be set before the VM exists and changed while it runs. */
#include "arcvm.h"

#include "host/mmds.h"
#include "lib/handle.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

int arcvm_set_mmds(arcvm *h, const struct arcvm_mmds_config *c)
{
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (h->vm) {
        r = lib_fail(h, -EBUSY, "the VM is already started: settings are fixed");
        goto out;
    }
    if (!c->n_ifaces) {
        r = lib_fail(h, -EINVAL, "the metadata service needs at least one network interface");
        goto out;
    }
    bool on[CONFIG_MAX_NETS] = {0};
    for (unsigned k = 0; k < c->n_ifaces; k++) {
        unsigned i = 0;
        while (i < h->cfg.nnets &&
               !(h->cfg.nets[i].id && c->iface_ids[k] && !strcmp(h->cfg.nets[i].id, c->iface_ids[k])))
            i++;
        if (i == h->cfg.nnets) {
            r = lib_fail(h, -ENOENT, "no network interface with id '%s'",
                         c->iface_ids[k] ? c->iface_ids[k] : "");
            goto out;
        }
        on[i] = true;
    }
    for (unsigned i = 0; i < h->cfg.nnets; i++)
        h->cfg.nets[i].mmds = on[i] ? h->mmds : NULL;
    mmds_set_config(h->mmds, c->version == ARCVM_MMDS_V2 ? MMDS_V2 : MMDS_V1,
                    c->ipv4 ? c->ipv4 : MMDS_IPV4_DEFAULT, c->imds_compat);
out:
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_mmds_set_size_limit(arcvm *h, size_t bytes)
{
    mmds_set_size_limit(h->mmds, bytes);
    return 0;
}

/* The store's answer to a put or patch, as the library reports it. */
static int store_result(arcvm *h, int r)
{
    if (r >= 0)
        return 0;
    pthread_mutex_lock(&h->lock); /* the last error is the handle's */
    if (r == -EINVAL)
        lib_fail(h, r, "the metadata must be a JSON object");
    else if (r == -EFBIG)
        lib_fail(h, r, "the metadata would exceed the data store's size limit");
    else if (r == -ENODATA)
        lib_fail(h, r, "the metadata store is not initialised: put a document first");
    else
        lib_fail(h, r, "out of memory");
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_mmds_put(arcvm *h, const char *json)
{
    return store_result(h, mmds_put(h->mmds, json, strlen(json)));
}

int arcvm_mmds_patch(arcvm *h, const char *json)
{
    return store_result(h, mmds_patch(h->mmds, json, strlen(json)));
}

char *arcvm_mmds_get(arcvm *h)
{
    return mmds_get(h->mmds);
}
