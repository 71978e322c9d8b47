/* memhp.c - the library's memory calls beyond the size: huge pages, memory
 * hotplug (virtio-mem) and balloon free page hinting; see arcvm.h.
 * Kept apart from arcvm.c, which holds the rest of the configuration. */
#include "arcvm.h"

#include "lib/handle.h"
#include "lib/internal.h"

#include "vmm/config.h"
#include "vmm/devices.h"
#include "virtio/balloon.h"
#include "virtio/mem.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

_Static_assert((int)ARCVM_HUGE_PAGES_2M == (int)GUEST_MEM_HUGE_2M &&
                   (int)ARCVM_HUGE_PAGES_TRANSPARENT == (int)GUEST_MEM_TRANSPARENT,
               "huge page enums agree");

int arcvm_set_huge_pages(arcvm *h, enum arcvm_huge_pages pages)
{
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (h->vm)
        r = lib_fail(h, -EBUSY, "the VM is already started: settings are fixed");
    else if ((unsigned)pages > ARCVM_HUGE_PAGES_TRANSPARENT)
        r = lib_fail(h, -EINVAL, "unknown huge_pages setting %d", (int)pages);
    else
        h->cfg.mem_pages = (enum guest_mem_pages)pages;
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_parse_huge_pages(const char *s, enum arcvm_huge_pages *pages)
{
    enum guest_mem_pages p;
    if (config_parse_mem_pages(s, &p) < 0)
        return -EINVAL;
    *pages = (enum arcvm_huge_pages)p;
    return 0;
}

const char *arcvm_huge_pages_name(enum arcvm_huge_pages pages)
{
    return config_mem_pages_name((enum guest_mem_pages)pages);
}

/* Take @m as the configuration, checked, if the VM is not started yet. */
static int set_memhp(arcvm *h, const struct memhp_config *m, const char *spec)
{
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (h->vm)
        r = lib_fail(h, -EBUSY, "the VM is already started: settings are fixed");
    else if (spec)
        r = config_parse_memhp(spec, &h->cfg.memhp, h->err, sizeof(h->err));
    else if ((r = memhp_config_check(m, h->err, sizeof(h->err))) == 0)
        h->cfg.memhp = *m;
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_set_memory_hotplug(arcvm *h, uint32_t total_mib, uint32_t block_mib,
                             uint32_t slot_mib)
{
    struct memhp_config m = {
        .enabled = true,
        .total_mib = total_mib,
        .block_mib = block_mib ? block_mib : MEMHP_BLOCK_MIB_MIN,
        .slot_mib = slot_mib ? slot_mib : MEMHP_SLOT_MIB_MIN,
    };
    return set_memhp(h, &m, NULL);
}

int arcvm_set_memory_hotplug_spec(arcvm *h, const char *spec)
{
    if (!spec)
        return set_memhp(h, NULL, "");
    return set_memhp(h, NULL, spec);
}

int arcvm_memory_hotplug_request(arcvm *h, uint32_t mib)
{
    struct vm *vm = lib_started(h, "change the hotplugged memory");
    if (!vm)
        return -EINVAL;
    /* The configuration never changes after start: no lock needed. */
    const struct memhp_config *c = &h->cfg.memhp;
    if (!c->enabled)
        return lib_fail(h, -ENODEV, "the VM has no hotplug memory (configure it before start)");
    if (mib > c->total_mib || mib % c->block_mib)
        return lib_fail(h, -EINVAL,
                        "%u MiB of hotplug memory: give a multiple of the %u MiB block size, at "
                        "most the %u MiB total",
                        mib, c->block_mib, c->total_mib);
    int r = vm_memhp_set_requested(vm, (uint64_t)mib << 20);
    return r < 0 ? lib_fail(h, r, "cannot change the hotplugged memory: %s", strerror(-r)) : 0;
}

int arcvm_memory_hotplug_get(arcvm *h, struct arcvm_memory_hotplug *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&h->lock);
    const struct memhp_config c = h->cfg.memhp;
    struct vm *vm = h->vm;
    pthread_mutex_unlock(&h->lock);
    if (!c.enabled)
        return lib_fail(h, -ENODEV, "the VM has no hotplug memory");
    out->total_mib = c.total_mib;
    out->block_mib = c.block_mib;
    out->slot_mib = c.slot_mib;
    out->requested_mib = c.requested_mib;
    if (!vm)
        return 0;
    struct virtio_mem_info info;
    int r = vm_memhp_get(vm, &info);
    if (r < 0)
        return lib_fail(h, r, "cannot read the hotplug memory: %s", strerror(-r));
    out->requested_mib = (uint32_t)(info.requested_size >> 20);
    out->plugged_mib = (uint32_t)(info.plugged_size >> 20);
    out->addr = info.addr;
    out->plugs = info.plugs;
    out->unplugs = info.unplugs;
    return 0;
}

/* ---- balloon free page hinting ------------------------------------------- */

int arcvm_set_balloon_hinting(arcvm *h, int on)
{
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (h->vm)
        r = lib_fail(h, -EBUSY, "the VM is already started: settings are fixed");
    else if (!h->cfg.balloon.enabled)
        r = lib_fail(h, -EINVAL, "free page hinting needs a balloon: configure one first");
    else
        h->cfg.balloon.free_page_hinting = on != 0;
    pthread_mutex_unlock(&h->lock);
    return r;
}

/* A hinting call's -ENODEV (no balloon) or -ENOTSUP (no hinting), said. */
static int hint_fail(arcvm *h, int r)
{
    if (r == -ENODEV)
        return lib_fail(h, r, "the VM has no balloon (configure one before start)");
    if (r == -ENOTSUP)
        return lib_fail(h, r, "free page hinting was not enabled on the balloon at start");
    return r < 0 ? lib_fail(h, r, "free page hinting: %s", strerror(-r)) : 0;
}

int arcvm_balloon_hint_start(arcvm *h, int ack_on_stop)
{
    struct vm *vm = lib_started(h, "start free page hinting");
    return vm ? hint_fail(h, vm_balloon_hint(vm, true, ack_on_stop != 0)) : -EINVAL;
}

int arcvm_balloon_hint_stop(arcvm *h)
{
    struct vm *vm = lib_started(h, "stop free page hinting");
    return vm ? hint_fail(h, vm_balloon_hint(vm, false, false)) : -EINVAL;
}

int arcvm_balloon_hint_status(arcvm *h, struct arcvm_balloon_hint *out)
{
    memset(out, 0, sizeof(*out));
    struct vm *vm = lib_started(h, "read free page hinting");
    if (!vm)
        return -EINVAL;
    struct virtio_balloon_hint s;
    int r = vm_balloon_hint_status(vm, &s);
    if (r < 0)
        return hint_fail(h, r);
    out->host_cmd = s.host_cmd;
    out->guest_cmd = s.guest_cmd;
    out->guest_cmd_valid = s.guest_cmd_valid;
    out->hinted_pages = s.hinted_pages;
    return 0;
}
