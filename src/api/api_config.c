/* api_config.c - Firecracker's --config-file: each key served by the PUT
 * endpoint of the resource of that name, through the same route table and
 * checks as an HTTP request. See api.h. */
#include "api/api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The keys arcvm takes, in the order they are applied: logging first, so
 * the rest is logged. Each names a route (api.c). */
static const char *const config_keys[] = {
    "logger", "metrics", "machine-config", "boot-source", "drives", "pmem", "entropy",
    "network-interfaces", "vsock", "balloon", "cpu-config", "serial", "memory-hotplug",
    "mmds-config", "shared-dirs",
};

#define NKEYS        (sizeof(config_keys) / sizeof(config_keys[0]))

/* @v through @ep as a PUT would go; @id (NULL: none) is checked like a path
 * id unless the object lacks it, when the schema check names the missing
 * field. */
static int config_apply(struct api *a, const char *key, const struct api_endpoint *ep,
                        const char *id, bool check_id, const json_t *v, char *err, size_t errlen)
{
    struct api_reply r = {0};
    a->fault[0] = 0;
    if (!check_id || api_resource_id_valid(a, &r, id))
        api_endpoint_run(a, ep, id, v, &r);
    int status = r.status;
    api_reply_release(&r);
    if (status >= 200 && status < 300)
        return 0;
    snprintf(err, errlen, "\"%s\": %s", key, a->fault[0] ? a->fault : "failed");
    return -EINVAL;
}

/* @v for the resource of @key: an array of objects when its path takes an
 * id (/drives/{id}), each with the member the schema matches to the id. */
static int config_resource(struct api *a, const char *key, const json_t *v, char *err,
                           size_t errlen)
{
    /* Two keys name a /name/sub path: /hotplug/memory and /mmds/config. */
    const struct api_route *rt = !strcmp(key, "memory-hotplug")
                                     ? api_route_find_sub("hotplug", "memory")
                                 : !strcmp(key, "mmds-config") ? api_route_find_sub("mmds", "config")
                                                               : api_route_find(key);
    if (!strcmp(key, "cpu-config") && json_is_string(v)) {
        /* Firecracker's "cpu-config" may name a template file instead. */
        json_t *t = api_cpu_template_file(json_string_value(v), err, errlen);
        int r = t ? config_apply(a, key, &rt->put, NULL, false, t, err, errlen) : -EINVAL;
        json_decref(t);
        return r;
    }
    if (rt->kind != API_ROUTE_ID)
        return config_apply(a, key, &rt->put, NULL, false, v, err, errlen);
    if (!json_is_array(v)) {
        snprintf(err, errlen, "\"%s\" must be an array", key);
        return -EINVAL;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *id = json_is_object(e) ? api_json_str(e, rt->put.schema->id_field) : NULL;
        /* A PUT of a known id replaces it; twice in one file is a mistake. */
        for (size_t j = 0; id && j < i; j++) {
            const char *prev = api_json_str(json_array_get(v, j), rt->put.schema->id_field);
            if (prev && !strcmp(prev, id)) {
                snprintf(err, errlen, "\"%s\": %s '%s' is given twice", key,
                         rt->put.schema->id_field, id);
                return -EINVAL;
            }
        }
        int r = config_apply(a, key, &rt->put, id ? id : "", id != NULL, e, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Every key of @root known; 0, or -EINVAL with a sentence in @err. */
static int config_keys_known(const json_t *root, char *err, size_t errlen)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)root, key, v)
    {
        bool found = false;
        for (size_t i = 0; i < NKEYS; i++)
            found |= !strcmp(key, config_keys[i]);
        if (!found) {
            snprintf(err, errlen,
                     "unknown key \"%s\" in the configuration (expected boot-source, drives, "
                     "machine-config, pmem, logger, metrics, entropy, network-interfaces, vsock, "
                     "balloon, cpu-config, serial, memory-hotplug, mmds-config or shared-dirs)",
                     key);
            return -EINVAL;
        }
    }
    return 0;
}

int api_load_config(struct api *a, const char *json, size_t len, char *err, size_t errlen)
{
    char perr[256];
    json_t *root = api_json_parse(json, len, perr, sizeof(perr));
    if (!root) {
        snprintf(err, errlen, "the configuration is not valid JSON: %s", perr);
        return -EINVAL;
    }
    int r = config_keys_known(root, err, errlen);
    for (size_t i = 0; i < NKEYS && !r; i++) {
        const json_t *v = json_object_get(root, config_keys[i]);
        if (v && !json_is_null(v))
            r = config_resource(a, config_keys[i], v, err, errlen);
    }
    json_decref(root);
    return r;
}
