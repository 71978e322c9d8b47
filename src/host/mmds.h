/* mmds.h - the microVM metadata service (Firecracker's MMDS): a JSON data
 * store the host fills through the API, and the HTTP service the guest
 * reads it from. The network stack that carries the guest's HTTP requests
 * here is per NIC: host/mmds_net.h.
 *
 *   mmds_store.c  the store: PUT (replace), PATCH (RFC 7396 merge patch),
 *                 GET, its size limit, and rendering a path as JSON or as
 *                 IMDS plain text
 *   mmds_http.c   the guest's HTTP requests: V1 and V2 (session tokens)
 *
 * Threads: the API thread writes the store and the configuration, the
 * event loop (the NICs' transmit paths) reads them; one mutex inside
 * struct mmds covers the data, the configuration and the tokens, so a
 * guest sees either the old or the new document, never a mix.
 */
#ifndef ARCVM_HOST_MMDS_H
#define ARCVM_HOST_MMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Firecracker's default data store limit (and its API payload limit). */
#define MMDS_SIZE_LIMIT_DEFAULT 51200
/* 169.254.169.254, host byte order: Firecracker's default address. */
#define MMDS_IPV4_DEFAULT 0xa9fea9feu
/* Firecracker's bounds for a V2 token's time to live, seconds. */
#define MMDS_TOKEN_TTL_MAX 21600
/* Live V2 tokens kept: a new one replaces the one closest to expiry when
 * all are taken, so a guest asking for tokens in a loop costs nothing. */
#define MMDS_TOKENS_MAX 64
/* A token: 32 random bytes as 64 hex digits. */
#define MMDS_TOKEN_LEN 64
/* Largest HTTP request (line, headers and body) the service reads; an
 * IMDS request is a line and a few headers. */
#define MMDS_REQ_MAX 2048

enum mmds_version { MMDS_V1, MMDS_V2 };

struct mmds;

/* A service with an empty (uninitialised) store, version V1, the default
 * address and @size_limit bytes of data at most (0: the default). NULL
 * when out of memory. */
struct mmds *mmds_create(size_t size_limit);
void mmds_destroy(struct mmds *m);

/* The data store limit, bytes (0: the default). */
void mmds_set_size_limit(struct mmds *m, size_t size_limit);
/* What /mmds/config sets: @ipv4 in host byte order. */
void mmds_set_config(struct mmds *m, enum mmds_version v, uint32_t ipv4, bool imds_compat);
/* The service's IPv4 address, host byte order. */
uint32_t mmds_ipv4(struct mmds *m);

/* Replace the data with @json (@len bytes), which must be one JSON object.
 * 0; -EINVAL (not a JSON object), -EFBIG (larger than the limit, the store
 * unchanged) or -ENOMEM. */
int mmds_put(struct mmds *m, const char *json, size_t len);
/* Merge @json into the data as RFC 7396 says. As mmds_put(), and -ENODATA
 * when no PUT came before (Firecracker: the store is not initialised). */
int mmds_patch(struct mmds *m, const char *json, size_t len);
/* The data as compact JSON ("{}" before the first PUT), malloc()ed; NULL
 * when out of memory. */
char *mmds_get(struct mmds *m);

/* ---- the guest's side (mmds_http.c) ---------------------------------- */

/* Serve the HTTP request at the start of @req (@len bytes) at monotonic
 * time @now_ms. Returns 0 when the request is incomplete (unless @full:
 * the reader has no room for more, and the request is answered as too
 * large); otherwise 1 with the whole response (status line, headers, body)
 * malloc()ed in *@resp, *@resp_len bytes (NULL: out of memory, the caller
 * closes the connection). */
int mmds_http_serve(struct mmds *m, const char *req, size_t len, bool full, uint64_t now_ms,
                    char **resp, size_t *resp_len);

/* ---- for mmds_http.c ---------------------------------------------------- */

/* How a path renders: the body, or an HTTP status on failure. */
struct mmds_render {
    int status;   /* 200, 404 (no such path), 501 (IMDS cannot show the type) */
    char *body;   /* malloc()ed on 200; NULL otherwise */
    bool json;    /* the body is JSON (else plain text) */
};
/* Look @path (an URI path: '/'-separated keys, JSON pointer escapes) up in
 * the data and render it as JSON when @want_json (and not imds_compat),
 * else as IMDS text: an object lists its keys, one a line, those of
 * objects with a trailing '/'; a string is itself. */
struct mmds_render mmds_render(struct mmds *m, const char *path, size_t path_len, bool want_json);

/* Version and token checks, under the service's lock. */
enum mmds_version mmds_version(struct mmds *m);
/* A new token living @ttl_s seconds from @now_ms into @out (NUL-ended).
 * 0 or -errno (no randomness). */
int mmds_token_new(struct mmds *m, unsigned ttl_s, uint64_t now_ms, char out[MMDS_TOKEN_LEN + 1]);
/* Whether @tok (@len bytes) is a token that lives at @now_ms. */
bool mmds_token_ok(struct mmds *m, const char *tok, size_t len, uint64_t now_ms);

#endif
