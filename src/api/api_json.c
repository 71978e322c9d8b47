/* api_json.c - request body parsing and schema checks; see api_json.h. */
#include "api/api_json.h"

#include "arcvm.h"

#include <stdio.h>
#include <string.h>

json_t *api_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    /* Duplicate keys are refused: which of two values wins would be a guess. */
    json_t *v = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        snprintf(err, errlen, "%s at line %d, column %d", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        snprintf(err, errlen, "the body must be a JSON object");
        json_decref(v);
        return NULL;
    }
    return v;
}

static const char *kind_name(enum api_json_kind k)
{
    switch (k) {
    case API_JSON_STRING:
        return "a string";
    case API_JSON_BOOL:
        return "a boolean";
    case API_JSON_UINT:
        return "a non-negative integer";
    case API_JSON_OBJECT:
        return "an object";
    case API_JSON_ARRAY:
        return "an array";
    }
    return "?";
}

static bool kind_ok(const json_t *v, const struct api_json_field *f)
{
    switch (f->kind) {
    case API_JSON_STRING:
        return json_is_string(v);
    case API_JSON_BOOL:
        return json_is_boolean(v);
    case API_JSON_UINT:
        return json_is_integer(v) && json_integer_value(v) >= 0 &&
               (uint64_t)json_integer_value(v) <= f->max;
    case API_JSON_OBJECT:
        return json_is_object(v);
    case API_JSON_ARRAY:
        return json_is_array(v);
    }
    return false;
}

int api_json_check(const json_t *obj, const struct api_json_field *fields, size_t nfields,
                   bool partial, const char *what, char *err, size_t errlen)
{
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "%s must be a JSON object", what);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const struct api_json_field *f = NULL;
        for (size_t i = 0; i < nfields && !f; i++)
            if (!strcmp(fields[i].name, key))
                f = &fields[i];
        if (!f) {
            char allowed[512] = "";
            size_t n = 0;
            for (size_t i = 0; i < nfields && n < sizeof(allowed); i++) {
                int w = snprintf(allowed + n, sizeof(allowed) - n, "%s%s", i ? ", " : "",
                                 fields[i].name);
                n += w > 0 ? (size_t)w : 0;
            }
            snprintf(err, errlen, "unknown field '%s' in %s (expected one of: %s)", key, what,
                     allowed);
            return -1;
        }
        if (json_is_null(v))
            continue;
        if (!kind_ok(v, f)) {
            if (f->kind == API_JSON_UINT && json_is_integer(v) && json_integer_value(v) >= 0)
                snprintf(err, errlen, "field '%s' of %s is too large: at most %llu", key, what,
                         (unsigned long long)f->max);
            else
                snprintf(err, errlen, "field '%s' of %s must be %s", key, what, kind_name(f->kind));
            return -1;
        }
    }
    for (size_t i = 0; i < nfields && !partial; i++) {
        if (fields[i].required && !api_json_has(obj, fields[i].name)) {
            snprintf(err, errlen, "missing field '%s' in %s", fields[i].name, what);
            return -1;
        }
    }
    return 0;
}

int api_json_check_rate_limiter(const json_t *v, const char *what, char *err, size_t errlen)
{
    /* TokenBucket: integers in Firecracker's schema are int64 with minimum 0. */
    static const struct api_json_field bucket[] = {
        {"size", API_JSON_UINT, true, INT64_MAX},
        {"one_time_burst", API_JSON_UINT, false, INT64_MAX},
        {"refill_time", API_JSON_UINT, true, INT64_MAX},
    };
    static const struct api_json_field limiter[] = {
        {"bandwidth", API_JSON_OBJECT, false, 0},
        {"ops", API_JSON_OBJECT, false, 0},
    };
    if (api_json_check(v, limiter, 2, false, what, err, errlen) < 0)
        return -1;
    static const char *const buckets[] = {"bandwidth", "ops"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *b = json_object_get(v, buckets[i]);
        char name[128];
        snprintf(name, sizeof(name), "%s.%s", what, buckets[i]);
        if (b && !json_is_null(b) && api_json_check(b, bucket, 3, false, name, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static void bucket_from(const json_t *b, struct arcvm_token_bucket *out)
{
    *out = (struct arcvm_token_bucket){0};
    if (!b || json_is_null(b))
        return;
    out->size = api_json_uint(b, "size", 0);
    out->one_time_burst = api_json_uint(b, "one_time_burst", 0);
    out->refill_time_ms = api_json_uint(b, "refill_time", 0);
}

void api_json_rate_limiter(const json_t *v, struct arcvm_rate_limiter *out)
{
    bucket_from(json_object_get(v, "bandwidth"), &out->bandwidth);
    bucket_from(json_object_get(v, "ops"), &out->ops);
}

static json_t *bucket_view(const struct arcvm_token_bucket *b)
{
    if (!b->size)
        return json_null();
    return json_pack("{s:I,s:I,s:I}", "size", (json_int_t)b->size, "one_time_burst",
                     (json_int_t)b->one_time_burst, "refill_time", (json_int_t)b->refill_time_ms);
}

json_t *api_json_rate_limiter_view(const struct arcvm_rate_limiter *rl)
{
    if (!rl->bandwidth.size && !rl->ops.size)
        return json_null();
    return json_pack("{s:o,s:o}", "bandwidth", bucket_view(&rl->bandwidth), "ops",
                     bucket_view(&rl->ops));
}

bool api_json_has(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v);
}

const char *api_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

bool api_json_bool(const json_t *obj, const char *key, bool dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

uint64_t api_json_uint(const json_t *obj, const char *key, uint64_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v)
                                                            : dflt;
}

json_t *api_json_string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}
