/* api_json.h - parsing request bodies with jansson and checking them against
 * Firecracker's schemas: unknown fields, missing fields and wrong types are
 * refused with a sentence naming the field. */
#ifndef ARCVM_API_JSON_H
#define ARCVM_API_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum api_json_kind {
    API_JSON_STRING,
    API_JSON_BOOL,
    API_JSON_UINT,   /* a non-negative integer no larger than the field's max */
    API_JSON_OBJECT, /* checked by the caller (e.g. a rate limiter) */
    API_JSON_ARRAY,  /* checked by the caller */
};

struct api_json_field {
    const char *name;
    enum api_json_kind kind;
    bool required;
    uint64_t max; /* API_JSON_UINT only: largest accepted value */
};

/* Parse @len bytes of @buf as one JSON object, refusing duplicate keys.
 * Returns a new reference, or NULL with a sentence in @err. */
json_t *api_json_parse(const char *buf, size_t len, char *err, size_t errlen);

/* Check that @obj is an object whose members are all among @fields and of
 * their kind, and (unless @partial) that every required field is present.
 * A member whose value is null counts as absent, as in Firecracker's schema
 * (optional fields). @what names the object in messages ("drive").
 * Returns 0, or -1 with a sentence in @err. */
int api_json_check(const json_t *obj, const struct api_json_field *fields, size_t nfields,
                   bool partial, const char *what, char *err, size_t errlen);

/* Check @v against Firecracker's RateLimiter schema ({bandwidth, ops} token
 * buckets of {size, one_time_burst, refill_time}). 0 or -1 with @err. */
int api_json_check_rate_limiter(const json_t *v, const char *what, char *err, size_t errlen);

/* A rate limiter @v already checked by api_json_check_rate_limiter() into
 * the library's form (refill_time is in milliseconds); absent buckets are
 * zero. The reverse for GET views: null when nothing is limited. */
struct arcvm_rate_limiter;
void api_json_rate_limiter(const json_t *v, struct arcvm_rate_limiter *out);
json_t *api_json_rate_limiter_view(const struct arcvm_rate_limiter *rl);

/* True when @obj has member @key with a non-null value. */
bool api_json_has(const json_t *obj, const char *key);
/* Member @key as a string; NULL when absent or null (call after checking). */
const char *api_json_str(const json_t *obj, const char *key);
/* Member @key as a boolean; @dflt when absent or null. */
bool api_json_bool(const json_t *obj, const char *key, bool dflt);
/* Member @key as an unsigned integer; @dflt when absent or null. */
uint64_t api_json_uint(const json_t *obj, const char *key, uint64_t dflt);
/* A new JSON string holding @s, or JSON null when @s is NULL (optional
 * fields in the views GET /vm/config returns). */
json_t *api_json_string_or_null(const char *s);

#endif
