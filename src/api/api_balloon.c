/* api_balloon.c - /balloon and /balloon/statistics: the virtio-balloon
 * device, configured before boot and steered after it. */
#include "api/api_internal.h"

/* The updates need a balloon to update. */
static bool balloon_configured(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (a->balloon.set)
        return true;
    api_fault(a, r, 400, "No balloon device is configured: PUT /balloon first.");
    return false;
}

json_t *api_balloon_json(const struct api *a)
{
    if (!a->balloon.set)
        return json_null();
    return json_pack("{s:i,s:b,s:i,s:b}", "amount_mib", (json_int_t)a->balloon.amount_mib,
                     "deflate_on_oom", a->balloon.deflate_on_oom, "stats_polling_interval_s",
                     (json_int_t)a->balloon.stats_s, "free_page_reporting", a->balloon.reporting);
}

/* ---- /balloon ----------------------------------------------------------- */

static const struct api_json_field balloon_fields[] = {
    {"amount_mib", API_JSON_UINT, true, UINT32_MAX},
    {"deflate_on_oom", API_JSON_BOOL, true, 0},
    {"stats_polling_interval_s", API_JSON_UINT, false, UINT16_MAX},
    {"free_page_hinting", API_JSON_BOOL, false, 0},
    {"free_page_reporting", API_JSON_BOOL, false, 0},
};
const struct api_schema api_balloon_put_schema = {.what = "balloon",
                                                  API_SCHEMA_FIELDS(balloon_fields)};

void api_balloon_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (api_json_bool(b, "free_page_hinting", false)) {
        api_fault(a, r, 400, "Balloon free_page_hinting is not supported by arcvm.");
        return;
    }
    a->balloon = (struct api_balloon){
        .set = true,
        .amount_mib = (uint32_t)api_json_uint(b, "amount_mib", 0),
        .deflate_on_oom = api_json_bool(b, "deflate_on_oom", false),
        .stats_s = (unsigned)api_json_uint(b, "stats_polling_interval_s", 0),
        .reporting = api_json_bool(b, "free_page_reporting", false),
    };
    api_ok(r);
}

void api_balloon_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!a->balloon.set)
        api_fault(a, r, 400, "No balloon device is configured.");
    else
        api_reply_json(r, 200, api_balloon_json(a));
}

static const struct api_json_field balloon_patch_fields[] = {
    {"amount_mib", API_JSON_UINT, true, UINT32_MAX}};
const struct api_schema api_balloon_patch_schema = {
    .what = "balloon update", API_SCHEMA_FIELDS(balloon_patch_fields), .check = balloon_configured};

/* Before boot the configuration changes; after boot the device does. */
void api_balloon_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    uint32_t mib = (uint32_t)api_json_uint(b, "amount_mib", 0);
    if (a->started && arcvm_balloon_set_target(a->vm, mib) < 0) {
        api_fault(a, r, 400, "Cannot update the balloon: %s", arcvm_last_error(a->vm));
        return;
    }
    a->balloon.amount_mib = mib;
    api_ok(r);
}

/* ---- /balloon/statistics ------------------------------------------------ */

static const struct api_json_field balloon_stats_patch_fields[] = {
    {"stats_polling_interval_s", API_JSON_UINT, true, UINT16_MAX}};
const struct api_schema api_balloon_stats_patch_schema = {
    .what = "balloon statistics update",
    API_SCHEMA_FIELDS(balloon_stats_patch_fields),
    .check = balloon_configured};

/* As api_balloon_patch(), for the statistics' polling interval. */
void api_balloon_stats_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    unsigned secs = (unsigned)api_json_uint(b, "stats_polling_interval_s", 0);
    if (a->started && arcvm_balloon_set_stats_interval(a->vm, secs) < 0) {
        api_fault(a, r, 400, "Cannot update balloon statistics: %s", arcvm_last_error(a->vm));
        return;
    }
    a->balloon.stats_s = secs;
    api_ok(r);
}

void api_balloon_stats_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!a->balloon.set) {
        api_fault(a, r, 400, "No balloon device is configured.");
        return;
    }
    struct arcvm_balloon info;
    if (!a->started || arcvm_balloon_get(a->vm, &info) < 0 || !info.stats_enabled) {
        api_fault(a, r, 400, "Balloon statistics are not enabled%s.",
                  a->started ? "" : " (the microVM has not started)");
        return;
    }
    /* Firecracker counts 4 KiB pages: 256 to the MiB. */
    json_t *o = json_pack("{s:i,s:i,s:i,s:i}", "target_pages", (json_int_t)info.target_mib * 256,
                          "actual_pages", (json_int_t)info.actual_mib * 256, "target_mib",
                          (json_int_t)info.target_mib, "actual_mib", (json_int_t)info.actual_mib);
    for (unsigned t = 0; o && t < ARCVM_BALLOON_NSTATS; t++) {
        const char *name = arcvm_balloon_stat_name(t);
        if (name && (info.stats_valid & (1u << t)))
            json_object_set_new(o, name, json_integer((json_int_t)info.stats[t]));
    }
    api_reply_json(r, 200, o);
}
