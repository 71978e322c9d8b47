/* config_memhp.c - the guest memory parts of the VM configuration beyond
 * its size: --memory-hotplug's parser and its checks at start (virtio-mem),
 * and the huge_pages setting's names. */
#include "vmm/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* @s (a size, bare number = MiB) as whole MiB into @mib; false if it is
 * not a whole number of MiB that fits 32 bits. */
static bool parse_mib(const char *s, uint32_t *mib)
{
    uint64_t bytes;
    if (config_parse_size(s, &bytes) < 0 || bytes % (1ull << 20) || (bytes >> 20) > UINT32_MAX)
        return false;
    *mib = (uint32_t)(bytes >> 20);
    return true;
}

int config_parse_memhp(const char *s, struct memhp_config *m, char *err, size_t errlen)
{
    *m = (struct memhp_config){.block_mib = MEMHP_BLOCK_MIB_MIN, .slot_mib = MEMHP_SLOT_MIB_MIN};
    char *copy = strdup(s), *save = NULL, *tok;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = 0;
    bool first = true;
    for (tok = strtok_r(copy, ",", &save); tok && !r; tok = strtok_r(NULL, ",", &save)) {
        uint32_t *field = NULL;
        const char *v = tok;
        if (first)
            field = &m->total_mib;
        else if (!strncmp(tok, "block=", 6))
            field = &m->block_mib, v = tok + 6;
        else if (!strncmp(tok, "slot=", 5))
            field = &m->slot_mib, v = tok + 5;
        else if (!strncmp(tok, "requested=", 10))
            field = &m->requested_mib, v = tok + 10;
        if (!field) {
            snprintf(err, errlen,
                     "--memory-hotplug '%s': unknown option '%s' (use block=SIZE, slot=SIZE, "
                     "requested=SIZE)",
                     s, tok);
            r = -EINVAL;
        } else if (!parse_mib(v, field)) {
            snprintf(err, errlen, "--memory-hotplug '%s': '%s' is not a size in whole MiB", s,
                     tok);
            r = -EINVAL;
        }
        first = false;
    }
    free(copy);
    if (!r && first) {
        snprintf(err, errlen, "--memory-hotplug '%s': give a size first, e.g. 1G", s);
        r = -EINVAL;
    }
    if (!r && (r = memhp_config_check(m, err, errlen)) == 0)
        m->enabled = true;
    return r;
}

int config_memhp_validate(const struct vm_config *c, char *err, size_t errlen)
{
    if (!c->memhp.enabled)
        return 0;
    int r = memhp_config_check(&c->memhp, err, errlen);
    if (r < 0)
        return r;
    /* Snapshots do not carry the hotplug region (yet): a Diff snapshot
     * could never be taken, so refuse the combination up front. */
    if (c->track_dirty) {
        snprintf(err, errlen, "memory hotplug cannot be combined with dirty page tracking: "
                              "snapshots of a VM with hotpluggable memory are not supported");
        return -EINVAL;
    }
    return 0;
}

int config_parse_mem_pages(const char *s, enum guest_mem_pages *pages)
{
    for (int i = GUEST_MEM_4K; i <= GUEST_MEM_TRANSPARENT; i++) {
        if (!strcasecmp(s, config_mem_pages_name((enum guest_mem_pages)i))) {
            *pages = (enum guest_mem_pages)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *config_mem_pages_name(enum guest_mem_pages pages)
{
    return pages == GUEST_MEM_HUGE_2M      ? "2M"
           : pages == GUEST_MEM_TRANSPARENT ? "Transparent"
                                            : "None";
}
