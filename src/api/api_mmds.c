/* api_mmds.c - the microVM metadata service: /mmds (the data store: PUT
 * replaces, PATCH merges as RFC 7396 says, GET shows it; any time) and
 * /mmds/config (which NICs answer for it, V1 or V2, its address; before
 * InstanceStart), as Firecracker's API has them. The store itself lives in
 * the library handle (arcvm_mmds_*()); the configuration is kept here and
 * handed over at InstanceStart, when the NICs exist. */
#include "api/api_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const versions[] = {"V1", "V2"};

void api_mmds_release(struct api *a)
{
    for (unsigned i = 0; i < a->mmds.nifaces; i++)
        free(a->mmds.ifaces[i]);
    a->mmds = (struct api_mmds){0};
}

/* ---- /mmds -------------------------------------------------------------- */

void api_mmds_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    char *s = arcvm_mmds_get(a->vm);
    json_t *v = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    if (!v)
        api_fault(a, r, 500, "Out of memory.");
    else
        api_reply_json(r, 200, v);
}

/* The store's answer to PUT or PATCH: 204, or Firecracker's fault. */
static void store_reply(struct api *a, struct api_reply *r, int e)
{
    if (e == 0)
        api_ok(r);
    else if (e == -EFBIG)
        api_fault(a, r, 413, "The MMDS data store would exceed its size limit of %zu bytes.",
                  a->opt.mmds_size_limit);
    else if (e == -ENODATA)
        api_fault(a, r, 400, "The MMDS data store is not initialized.");
    else if (e == -EINVAL)
        api_fault(a, r, 400, "The MMDS data must be a JSON object.");
    else
        api_fault(a, r, 500, "Out of memory.");
}

static void mmds_write(struct api *a, const json_t *b, struct api_reply *r, bool patch)
{
    char *s = json_dumps(b, JSON_COMPACT);
    if (!s) {
        api_fault(a, r, 500, "Out of memory.");
        return;
    }
    store_reply(a, r, patch ? arcvm_mmds_patch(a->vm, s) : arcvm_mmds_put(a->vm, s));
    free(s);
}

void api_mmds_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    mmds_write(a, b, r, false);
}

void api_mmds_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    mmds_write(a, b, r, true);
}

int api_mmds_load(struct api *a, const char *json, size_t len, char *err, size_t errlen)
{
    char perr[256];
    json_t *v = api_json_parse(json, len, perr, sizeof(perr));
    if (!v) {
        snprintf(err, errlen, "the metadata is not a JSON object: %s", perr);
        return -EINVAL;
    }
    struct api_reply r = {0};
    mmds_write(a, v, &r, false);
    json_decref(v);
    int status = r.status;
    api_reply_release(&r);
    if (status == 204)
        return 0;
    snprintf(err, errlen, "%s", a->fault);
    return -EINVAL;
}

/* ---- /mmds/config ------------------------------------------------------- */

static const struct api_json_field config_fields[] = {
    {"version", API_JSON_STRING, false, 0},
    {"network_interfaces", API_JSON_ARRAY, true, 0},
    {"ipv4_address", API_JSON_STRING, false, 0},
    {"imds_compat", API_JSON_BOOL, false, 0},
};

/* RFC 3927's link-local range without its reserved first and last /24s,
 * the pattern Firecracker's API description gives: 169.254.1.0 to
 * 169.254.254.255. */
static bool link_local(uint32_t ip)
{
    return (ip >> 16) == 0xa9fe && ((ip >> 8) & 0xff) >= 1 && ((ip >> 8) & 0xff) <= 254;
}

/* Parsing and value checks: before the boot rule, as serde would. */
static bool config_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *v = api_json_str(b, "version");
    if (v && api_variant(v, versions, 2) < 0) {
        api_fault(a, r, 400,
                  "An error occurred when deserializing the json body of a request: unknown "
                  "variant `%s`, expected `V1` or `V2`.",
                  v);
        return false;
    }
    const char *ip = api_json_str(b, "ipv4_address");
    struct in_addr in;
    if (ip && inet_pton(AF_INET, ip, &in) != 1) {
        api_fault(a, r, 400,
                  "An error occurred when deserializing the json body of a request: invalid "
                  "IPv4 address syntax: '%s'.",
                  ip);
        return false;
    }
    if (ip && !link_local(ntohl(in.s_addr))) {
        api_fault(a, r, 400,
                  "The MMDS IPv4 address is not link-local: give one in 169.254.1.0 - "
                  "169.254.254.255.");
        return false;
    }
    const json_t *list = json_object_get(b, "network_interfaces");
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        if (!json_is_string(e)) {
            api_fault(a, r, 400,
                      "An error occurred when deserializing the json body of a request: "
                      "network_interfaces must be an array of strings.");
            return false;
        }
    }
    return true;
}

const struct api_schema api_mmds_config_schema = {
    .what = "MMDS configuration",
    API_SCHEMA_FIELDS(config_fields),
    .check = config_check,
};

void api_mmds_config_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const json_t *list = json_object_get(b, "network_interfaces");
    size_t n = json_array_size(list);
    if (!n) {
        api_fault(a, r, 400,
                  "The list of network interface IDs that allow forwarding MMDS requests is "
                  "empty.");
        return;
    }
    struct api_mmds m = {.set = true};
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *nid = json_string_value(e);
        bool known = false, dup = false;
        for (unsigned k = 0; k < a->nnets; k++)
            known |= !strcmp(a->nets[k].id, nid);
        for (unsigned k = 0; k < m.nifaces; k++)
            dup |= !strcmp(m.ifaces[k], nid);
        if (!known) {
            api_fault(a, r, 400,
                      "The list of network interface IDs provided contains at least one ID "
                      "that does not correspond to any existing network interface: '%s'.",
                      nid);
            goto fail;
        }
        if (dup)
            continue;
        /* Known and distinct: at most API_MAX_NETS of them. */
        if (!(m.ifaces[m.nifaces] = strdup(nid))) {
            api_fault(a, r, 500, "Out of memory.");
            goto fail;
        }
        m.nifaces++;
    }
    m.version = api_variant(api_json_str(b, "version"), versions, 2) == 1 ? 2 : 1;
    const char *ip = api_json_str(b, "ipv4_address");
    struct in_addr in = {htonl(0xa9fea9feu)}; /* Firecracker's default: 169.254.169.254 */
    if (ip)
        inet_pton(AF_INET, ip, &in);
    m.ipv4 = ntohl(in.s_addr);
    m.imds_compat = api_json_bool(b, "imds_compat", false);
    api_mmds_release(a);
    a->mmds = m;
    api_ok(r);
    return;
fail:
    for (unsigned k = 0; k < m.nifaces; k++)
        free(m.ifaces[k]);
}

json_t *api_mmds_config_json(const struct api *a)
{
    if (!a->mmds.set)
        return json_null();
    json_t *list = json_array();
    for (unsigned i = 0; list && i < a->mmds.nifaces; i++)
        json_array_append_new(list, json_string(a->mmds.ifaces[i]));
    struct in_addr in = {htonl(a->mmds.ipv4)};
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in, ip, sizeof(ip));
    return json_pack("{s:s,s:o,s:s,s:b}", "version", a->mmds.version == 2 ? "V2" : "V1",
                     "network_interfaces", list, "ipv4_address", ip, "imds_compat",
                     a->mmds.imds_compat);
}

int api_mmds_apply(struct api *a, arcvm *vm)
{
    if (!a->mmds.set)
        return 0;
    struct arcvm_mmds_config c = {
        .version = a->mmds.version == 2 ? ARCVM_MMDS_V2 : ARCVM_MMDS_V1,
        .ipv4 = a->mmds.ipv4,
        .imds_compat = a->mmds.imds_compat,
        .n_ifaces = a->mmds.nifaces,
        .iface_ids = (const char *const *)a->mmds.ifaces,
    };
    return arcvm_set_mmds(vm, &c);
}
