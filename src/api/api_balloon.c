/* api_balloon.c - /balloon, /balloon/statistics and /balloon/hinting/...:
 * the virtio-balloon device, configured before boot and steered after it. */
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
    return json_pack("{s:i,s:b,s:i,s:b,s:b}", "amount_mib", (json_int_t)a->balloon.amount_mib,
                     "deflate_on_oom", a->balloon.deflate_on_oom, "stats_polling_interval_s",
                     (json_int_t)a->balloon.stats_s, "free_page_reporting", a->balloon.reporting,
                     "free_page_hinting", a->balloon.hinting);
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
    a->balloon = (struct api_balloon){
        .set = true,
        .amount_mib = (uint32_t)api_json_uint(b, "amount_mib", 0),
        .deflate_on_oom = api_json_bool(b, "deflate_on_oom", false),
        .stats_s = (unsigned)api_json_uint(b, "stats_polling_interval_s", 0),
        .reporting = api_json_bool(b, "free_page_reporting", false),
        .hinting = api_json_bool(b, "free_page_hinting", false),
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

/* ---- /balloon/hinting/{start,stop,status} --------------------------------- */

/* Hinting needs a balloon that offers it. */
static bool hinting_configured(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!balloon_configured(a, id, b, r))
        return false;
    if (a->balloon.hinting)
        return true;
    api_fault(a, r, 400, "Free page hinting is not enabled on the balloon (free_page_hinting).");
    return false;
}

static const struct api_json_field hint_start_fields[] = {
    {"acknowledge_on_stop", API_JSON_BOOL, false, 0}};
const struct api_schema api_balloon_hint_start_schema = {
    .what = "balloon hinting start",
    API_SCHEMA_FIELDS(hint_start_fields),
    .check = hinting_configured,
    .body_optional = true};
const struct api_schema api_balloon_hint_stop_schema = {
    .what = "balloon hinting stop", .check = hinting_configured, .body_optional = true};

void api_balloon_hint_start(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    /* Firecracker acknowledges the guest's end of a run unless told not to. */
    if (arcvm_balloon_hint_start(a->vm, api_json_bool(b, "acknowledge_on_stop", true)) < 0)
        api_fault(a, r, 400, "Cannot start free page hinting: %s", arcvm_last_error(a->vm));
    else
        api_ok(r);
}

void api_balloon_hint_stop(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (arcvm_balloon_hint_stop(a->vm) < 0)
        api_fault(a, r, 400, "Cannot stop free page hinting: %s", arcvm_last_error(a->vm));
    else
        api_ok(r);
}

void api_balloon_hint_status(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    struct arcvm_balloon_hint s;
    if (!hinting_configured(a, id, b, r))
        return;
    if (arcvm_balloon_hint_status(a->vm, &s) < 0) {
        api_fault(a, r, 400, "Cannot read free page hinting: %s", arcvm_last_error(a->vm));
        return;
    }
    /* Firecracker's two fields (guest_cmd only once the guest sent one),
     * and arcvm's count of pages given back. */
    json_t *o = json_pack("{s:i,s:I}", "host_cmd", (json_int_t)s.host_cmd, "hinted_pages",
                          (json_int_t)s.hinted_pages);
    if (o && s.guest_cmd_valid)
        json_object_set_new(o, "guest_cmd", json_integer((json_int_t)s.guest_cmd));
    api_reply_json(r, 200, o);
}
