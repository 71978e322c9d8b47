/* api_net.c - the guest's ways to talk to the host: /network-interfaces/{id}
 * (virtio-net on a TAP device) and /vsock (virtio-vsock on a Unix socket),
 * and their views in GET /vm/config. */
#include "api/api_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* vsock CIDs 0-2 are reserved (hypervisor, local, host). */
#define FC_VSOCK_CID_MIN 3

void api_net_release(struct api_net *n)
{
    free(n->id);
    free(n->tap);
    free(n->mac);
    *n = (struct api_net){0};
}

static int net_find(const struct api *a, const char *id)
{
    for (unsigned i = 0; i < a->nnets; i++)
        if (!strcmp(a->nets[i].id, id))
            return (int)i;
    return -1;
}

json_t *api_net_json(const struct api_net *n)
{
    return json_pack("{s:s,s:s,s:o,s:o,s:o}", "iface_id", n->id, "host_dev_name", n->tap,
                     "guest_mac", api_json_string_or_null(n->mac), "rx_rate_limiter",
                     api_json_rate_limiter_view(&n->rx), "tx_rate_limiter",
                     api_json_rate_limiter_view(&n->tx));
}

/* Firecracker's MAC form: six two-digit hex bytes separated by ':', 17
 * characters in all. */
static bool mac_valid(const char *s)
{
    if (strlen(s) != 17)
        return false;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* A Linux interface name: 1-15 characters, none of '/', ':', ',' or
 * white space (',' would also break arcvm's own option syntax). */
static bool ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (!n || n >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (; *s; s++)
        if (*s == '/' || *s == ':' || *s == ',' || *s == '=' || isspace((unsigned char)*s) ||
            !isprint((unsigned char)*s))
            return false;
    return true;
}

/* ---- /network-interfaces/{id} ------------------------------------------ */

/* Firecracker checks the MAC and the device name while parsing the body:
 * before the boot rule. */
static bool net_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *mac = api_json_str(b, "guest_mac");
    const char *tap = api_json_str(b, "host_dev_name");
    if (mac && !mac_valid(mac))
        api_fault(a, r, 400, "guest_mac '%s' is not a MAC address (xx:xx:xx:xx:xx:xx).", mac);
    else if (mac && (strtoul(mac, NULL, 16) & 1))
        api_fault(a, r, 400, "guest_mac '%s' is a multicast address: a NIC needs a unicast one.",
                  mac);
    else if (!ifname_valid(tap))
        api_fault(a, r, 400,
                  "host_dev_name '%s' is not a network interface name (1 to 15 characters, no "
                  "'/', ':', ',', '=' or spaces).",
                  tap);
    else
        return true;
    return false;
}

static const struct api_json_field net_fields[] = {
    {"iface_id", API_JSON_STRING, true, 0},         {"host_dev_name", API_JSON_STRING, true, 0},
    {"guest_mac", API_JSON_STRING, false, 0},       {"rx_rate_limiter", API_JSON_OBJECT, false, 0},
    {"tx_rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_net_put_schema = {.what = "network interface",
                                              API_SCHEMA_FIELDS(net_fields),
                                              .limiters = {"rx_rate_limiter", "tx_rate_limiter"},
                                              .id_field = "iface_id",
                                              .check = net_check};

static const struct api_json_field net_patch_fields[] = {
    {"iface_id", API_JSON_STRING, true, 0},
    {"rx_rate_limiter", API_JSON_OBJECT, false, 0},
    {"tx_rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_net_patch_schema = {.what = "network interface",
                                                API_SCHEMA_FIELDS(net_patch_fields),
                                                .limiters = {"rx_rate_limiter", "tx_rate_limiter"},
                                                .id_field = "iface_id"};

/* Another interface than the one at @pos already using @tap or @mac:
 * false with the fault in @r. */
static bool net_unique(struct api *a, int pos, const char *tap, const char *mac,
                       struct api_reply *r)
{
    for (unsigned i = 0; i < a->nnets; i++) {
        if ((int)i == pos)
            continue;
        if (!strcmp(a->nets[i].tap, tap)) {
            api_fault(a, r, 400, "The host device name %s is already in use by interface '%s'.",
                      tap, a->nets[i].id);
            return false;
        }
        if (mac && a->nets[i].mac && !strcasecmp(a->nets[i].mac, mac)) {
            api_fault(a, r, 400, "The guest MAC address %s is already in use by interface '%s'.",
                      mac, a->nets[i].id);
            return false;
        }
    }
    return true;
}

void api_net_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *mac = api_json_str(b, "guest_mac");
    const char *tap = api_json_str(b, "host_dev_name");
    int pos = net_find(a, id);
    if (!net_unique(a, pos, tap, mac, r))
        return;
    if (pos < 0 && a->nnets == API_MAX_NETS) {
        api_fault(a, r, 400, "Network interface '%s': arcvm supports at most %d interfaces.", id,
                  API_MAX_NETS);
        return;
    }
    struct api_net n = {.id = strdup(id), .tap = strdup(tap), .mac = api_strdup(mac)};
    if (api_json_has(b, "rx_rate_limiter"))
        api_json_rate_limiter(json_object_get(b, "rx_rate_limiter"), &n.rx);
    if (api_json_has(b, "tx_rate_limiter"))
        api_json_rate_limiter(json_object_get(b, "tx_rate_limiter"), &n.tx);
    if (!n.id || !n.tap || (mac && !n.mac)) {
        api_net_release(&n);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    if (pos >= 0) {
        api_net_release(&a->nets[pos]);
        a->nets[pos] = n;
    } else {
        a->nets[a->nnets++] = n;
    }
    api_ok(r);
}

/* After boot: new rate limiters take effect at once (the only setting
 * Firecracker's PATCH changes). */
void api_net_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    int pos = net_find(a, id);
    if (!api_id_known(a, r, "network interface", id, pos >= 0))
        return;
    struct api_net *n = &a->nets[pos];
    struct arcvm_rate_limiter rx = n->rx, tx = n->tx;
    bool has_rx = api_json_has(b, "rx_rate_limiter"), has_tx = api_json_has(b, "tx_rate_limiter");
    if (has_rx)
        api_json_rate_limiter(json_object_get(b, "rx_rate_limiter"), &rx);
    if (has_tx)
        api_json_rate_limiter(json_object_get(b, "tx_rate_limiter"), &tx);
    if (!a->ops->net_rate_limiters ||
        a->ops->net_rate_limiters(a->opt.vm_ops_ctx, a->vm, id, has_rx ? &rx : NULL,
                                  has_tx ? &tx : NULL) < 0) {
        api_fault(a, r, 400, "Network interface '%s': %s", id,
                  a->ops->net_rate_limiters ? a->ops->last_error(a->opt.vm_ops_ctx, a->vm)
                                            : "rate limiters cannot be changed on this VM");
        return;
    }
    n->rx = rx;
    n->tx = tx;
    api_ok(r);
}

/* ---- /vsock ------------------------------------------------------------- */

/* Part of parsing the body in Firecracker: before the boot rule. */
static bool vsock_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (api_json_uint(b, "guest_cid", 0) >= FC_VSOCK_CID_MIN)
        return true;
    api_fault(a, r, 400, "guest_cid must be %d or more (0 to 2 are reserved).", FC_VSOCK_CID_MIN);
    return false;
}

static const struct api_json_field vsock_fields[] = {
    {"guest_cid", API_JSON_UINT, true, UINT32_MAX},
    {"uds_path", API_JSON_STRING, true, 0},
    {"vsock_id", API_JSON_STRING, false, 0},
};
const struct api_schema api_vsock_schema = {
    .what = "vsock", API_SCHEMA_FIELDS(vsock_fields), .check = vsock_check};

void api_vsock_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *uds = api_json_str(b, "uds_path");
    if (!uds || !*uds || strchr(uds, ',')) {
        api_fault(a, r, 400, "uds_path must be a non-empty path without commas.");
        return;
    }
    char *copy = strdup(uds);
    if (!copy) {
        api_fault(a, r, 500, "out of memory");
        return;
    }
    free(a->vsock.uds_path);
    a->vsock.uds_path = copy;
    a->vsock.cid = (uint32_t)api_json_uint(b, "guest_cid", 0);
    a->vsock.set = true;
    api_ok(r);
}

json_t *api_vsock_json(const struct api *a)
{
    if (!a->vsock.set)
        return json_null();
    return json_pack("{s:i,s:s}", "guest_cid", (json_int_t)a->vsock.cid, "uds_path",
                     a->vsock.uds_path);
}
