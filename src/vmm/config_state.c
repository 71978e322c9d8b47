/* config_state.c - the machine-defining part of a VM's configuration in a
 * snapshot (config.h: config_save, config_load).
 *
 * What defines the machine the guest saw is saved: kernel and command line
 * (for GET /vm/config), vCPUs, memory, console kind, every device and its
 * host back end. What belongs to the process that restores is not: console
 * fds, the hypervisor device, CPU pinning, the kernel cache.
 */
#include "vmm/config.h"

#include "base/snap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put_limiter(struct snap_w *w, const struct rate_limiter_config *rl)
{
    const struct rl_bucket_config *b[2] = {&rl->bandwidth, &rl->ops};
    for (unsigned i = 0; i < 2; i++) {
        snap_put_u64(w, b[i]->size);
        snap_put_u64(w, b[i]->one_time_burst);
        snap_put_u64(w, b[i]->refill_time_ms);
    }
}

static void get_limiter(struct snap_r *r, struct rate_limiter_config *rl)
{
    struct rl_bucket_config *b[2] = {&rl->bandwidth, &rl->ops};
    for (unsigned i = 0; i < 2; i++) {
        b[i]->size = snap_get_u64(r);
        b[i]->one_time_burst = snap_get_u64(r);
        b[i]->refill_time_ms = snap_get_u64(r);
    }
    if (rate_limiter_config_check(rl) < 0)
        r->err = -EPROTO;
}

void config_save(const struct vm_config *c, struct snap_w *w)
{
    snap_put_str(w, c->kernel_path);
    snap_put_str(w, c->initrd_path);
    snap_put_str(w, c->cmdline);
    snap_put_u8(w, c->cmdline_replace);
    snap_put_u32(w, c->vcpus);
    snap_put_u64(w, c->mem_bytes);
    snap_put_u8(w, (uint8_t)c->console);
    snap_put_u8(w, c->boot_timer);
    snap_put_u8(w, c->mmio_cmdline);
    snap_put_u8(w, c->rng);
    put_limiter(w, &c->rng_rl);
    snap_put_u32(w, c->ndisks);
    for (unsigned i = 0; i < c->ndisks; i++) {
        snap_put_str(w, c->disks[i].path);
        snap_put_u8(w, c->disks[i].readonly);
        snap_put_str(w, c->disks[i].id);
        put_limiter(w, &c->disks[i].rl);
    }
    snap_put_u32(w, c->nnets);
    for (unsigned i = 0; i < c->nnets; i++) {
        const struct net_config *n = &c->nets[i];
        snap_put_u8(w, (uint8_t)n->backend);
        snap_put_str(w, n->tap);
        snap_put(w, n->mac, 6);
        snap_put_u8(w, n->mac_set);
        snap_put_u32(w, n->nhostfwd);
        for (unsigned k = 0; k < n->nhostfwd; k++) {
            snap_put_u8(w, n->hostfwd[k].udp);
            snap_put_u32(w, n->hostfwd[k].host_addr);
            snap_put_u16(w, n->hostfwd[k].host_port);
            snap_put_u16(w, n->hostfwd[k].guest_port);
        }
        snap_put_str(w, n->id);
        put_limiter(w, &n->rx_rl);
        put_limiter(w, &n->tx_rl);
    }
    snap_put_u8(w, c->vsock.enabled);
    snap_put_u32(w, c->vsock.cid);
    snap_put_str(w, c->vsock.uds_path);
    snap_put_u8(w, c->balloon.enabled);
    snap_put_u32(w, c->balloon.target_mib);
    snap_put_u8(w, c->balloon.deflate_on_oom);
    snap_put_u32(w, c->balloon.stats_interval_s);
    snap_put_u8(w, c->balloon.free_page_reporting);
}

/* Replace string *@dst with one read from @r. */
static void get_str(struct snap_r *r, char **dst)
{
    free(*dst);
    *dst = snap_get_strdup(r);
}

int config_load(struct vm_config *c, struct snap_r *r)
{
    /* Strings the caller set for these fields are replaced; counts are
     * cleared first so a failure part-way leaves a releasable config. */
    for (unsigned i = 0; i < c->ndisks; i++) {
        free(c->disks[i].path);
        free(c->disks[i].id);
    }
    for (unsigned i = 0; i < c->nnets; i++)
        config_release_net(&c->nets[i]);
    c->ndisks = c->nnets = 0;
    memset(c->disks, 0, sizeof(c->disks));
    memset(c->nets, 0, sizeof(c->nets));

    get_str(r, &c->kernel_path);
    get_str(r, &c->initrd_path);
    get_str(r, &c->cmdline);
    c->cmdline_replace = snap_get_bool(r);
    c->vcpus = snap_get_u32(r);
    c->mem_bytes = snap_get_u64(r);
    uint8_t console = snap_get_u8(r);
    if (console > CONSOLE_NONE)
        r->err = -EPROTO;
    c->console = (enum console_mode)console;
    c->boot_timer = snap_get_bool(r);
    c->mmio_cmdline = snap_get_bool(r);
    c->rng = snap_get_bool(r);
    get_limiter(r, &c->rng_rl);
    uint32_t ndisks = snap_get_u32(r);
    if (ndisks > CONFIG_MAX_DISKS)
        return -EPROTO;
    for (unsigned i = 0; i < ndisks && !r->err; i++) {
        c->ndisks = i + 1;
        c->disks[i].path = snap_get_strdup(r);
        c->disks[i].readonly = snap_get_bool(r);
        c->disks[i].id = snap_get_strdup(r);
        get_limiter(r, &c->disks[i].rl);
        if (!c->disks[i].path)
            r->err = -EPROTO;
    }
    uint32_t nnets = snap_get_u32(r);
    if (nnets > CONFIG_MAX_NETS)
        return -EPROTO;
    for (unsigned i = 0; i < nnets && !r->err; i++) {
        struct net_config *n = &c->nets[i];
        c->nnets = i + 1;
        uint8_t be = snap_get_u8(r);
        if (be != NET_TAP && be != NET_USER)
            r->err = -EPROTO;
        n->backend = (enum net_backend)be;
        n->tap = snap_get_strdup(r);
        snap_get(r, n->mac, 6);
        n->mac_set = snap_get_bool(r);
        n->nhostfwd = snap_get_u32(r);
        if (n->nhostfwd > CONFIG_MAX_HOSTFWD) {
            n->nhostfwd = 0;
            r->err = -EPROTO;
        }
        for (unsigned k = 0; k < n->nhostfwd; k++) {
            n->hostfwd[k].udp = snap_get_bool(r);
            n->hostfwd[k].host_addr = snap_get_u32(r);
            n->hostfwd[k].host_port = snap_get_u16(r);
            n->hostfwd[k].guest_port = snap_get_u16(r);
        }
        n->id = snap_get_strdup(r);
        get_limiter(r, &n->rx_rl);
        get_limiter(r, &n->tx_rl);
        if (n->backend == NET_TAP && !n->tap)
            r->err = -EPROTO;
    }
    c->vsock.enabled = snap_get_bool(r);
    c->vsock.cid = snap_get_u32(r);
    get_str(r, &c->vsock.uds_path);
    c->balloon.enabled = snap_get_bool(r);
    c->balloon.target_mib = snap_get_u32(r);
    c->balloon.deflate_on_oom = snap_get_bool(r);
    c->balloon.stats_interval_s = snap_get_u32(r);
    c->balloon.free_page_reporting = snap_get_bool(r);
    return snap_r_done(r);
}
