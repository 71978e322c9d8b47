/* mmds_store.c - the metadata service's state: the JSON data store (jansson),
 * its configuration and the V2 session tokens, under one mutex. See mmds.h. */
#include "host/mmds.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct mmds_token {
    char val[MMDS_TOKEN_LEN + 1]; /* "" : free */
    uint64_t expires_ms;
};

struct mmds {
    pthread_mutex_t lock;
    json_t *data; /* NULL until the first PUT */
    size_t limit;
    enum mmds_version version;
    uint32_t ipv4;
    bool imds_compat;
    struct mmds_token tokens[MMDS_TOKENS_MAX];
};

struct mmds *mmds_create(size_t size_limit)
{
    struct mmds *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->limit = size_limit ? size_limit : MMDS_SIZE_LIMIT_DEFAULT;
    m->version = MMDS_V1;
    m->ipv4 = MMDS_IPV4_DEFAULT;
    return m;
}

void mmds_destroy(struct mmds *m)
{
    if (!m)
        return;
    json_decref(m->data);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void mmds_set_size_limit(struct mmds *m, size_t size_limit)
{
    pthread_mutex_lock(&m->lock);
    m->limit = size_limit ? size_limit : MMDS_SIZE_LIMIT_DEFAULT;
    pthread_mutex_unlock(&m->lock);
}

void mmds_set_config(struct mmds *m, enum mmds_version v, uint32_t ipv4, bool imds_compat)
{
    pthread_mutex_lock(&m->lock);
    m->version = v;
    m->ipv4 = ipv4;
    m->imds_compat = imds_compat;
    pthread_mutex_unlock(&m->lock);
}

uint32_t mmds_ipv4(struct mmds *m)
{
    pthread_mutex_lock(&m->lock);
    uint32_t ip = m->ipv4;
    pthread_mutex_unlock(&m->lock);
    return ip;
}

enum mmds_version mmds_version(struct mmds *m)
{
    pthread_mutex_lock(&m->lock);
    enum mmds_version v = m->version;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* ---- the data ------------------------------------------------------------ */

/* Serialized size of @v as Firecracker measures it: compact JSON. */
static size_t json_size(const json_t *v)
{
    return json_dumpb(v, NULL, 0, JSON_COMPACT);
}

static json_t *parse_object(const char *json, size_t len)
{
    json_t *v = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* Replace the data by @v (consumed) if it fits the limit. Under the lock. */
static int store_locked(struct mmds *m, json_t *v)
{
    if (json_size(v) > m->limit) {
        json_decref(v);
        return -EFBIG;
    }
    json_decref(m->data);
    m->data = v;
    return 0;
}

int mmds_put(struct mmds *m, const char *json, size_t len)
{
    json_t *v = parse_object(json, len);
    if (!v)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    int r = store_locked(m, v);
    pthread_mutex_unlock(&m->lock);
    return r;
}

/* RFC 7396 section 2: merge @patch into @target (an object, changed in
 * place). The depth is that of @patch, which jansson's parser bounds. */
static int merge(json_t *target, json_t *patch)
{
    const char *k;
    json_t *pv;
    json_object_foreach(patch, k, pv)
    {
        if (json_is_null(pv)) {
            json_object_del(target, k);
            continue;
        }
        if (!json_is_object(pv)) {
            if (json_object_set(target, k, pv) < 0)
                return -ENOMEM;
            continue;
        }
        json_t *tv = json_object_get(target, k);
        if (!json_is_object(tv)) {
            tv = json_object();
            if (!tv || json_object_set_new(target, k, tv) < 0)
                return -ENOMEM;
        }
        int r = merge(tv, pv);
        if (r < 0)
            return r;
    }
    return 0;
}

int mmds_patch(struct mmds *m, const char *json, size_t len)
{
    json_t *p = parse_object(json, len);
    if (!p)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    int r = -ENODATA;
    if (m->data) {
        /* On a copy: a patch that fails or does not fit changes nothing. */
        json_t *copy = json_deep_copy(m->data);
        r = copy ? merge(copy, p) : -ENOMEM;
        if (r == 0)
            r = store_locked(m, copy);
        else
            json_decref(copy);
    }
    pthread_mutex_unlock(&m->lock);
    json_decref(p);
    return r;
}

char *mmds_get(struct mmds *m)
{
    pthread_mutex_lock(&m->lock);
    char *s = m->data ? json_dumps(m->data, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* ---- rendering for the guest ----------------------------------------- */

/* The member of @obj named by the JSON pointer token @tok (@n bytes):
 * "~1" stands for '/', "~0" for '~' (RFC 6901). */
static json_t *member(json_t *obj, const char *tok, size_t n)
{
    char key[MMDS_REQ_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof(key) - 1; i++) {
        if (tok[i] == '~' && i + 1 < n && (tok[i + 1] == '0' || tok[i + 1] == '1'))
            key[k++] = tok[++i] == '0' ? '~' : '/';
        else
            key[k++] = tok[i];
    }
    key[k] = 0;
    return json_object_getn(obj, key, k);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* IMDS plain text for @v, or NULL with *@status 501 (another type) or 500. */
static char *imds_text(json_t *v, int *status)
{
    if (json_is_string(v))
        return strndup(json_string_value(v), json_string_length(v));
    if (!json_is_object(v)) {
        *status = 501;
        return NULL;
    }
    /* Keys sorted, as Firecracker's serde maps are. */
    size_t n = json_object_size(v), len = 1, i = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    if (!keys)
        goto oom;
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
    {
        keys[i++] = k;
        len += strlen(k) + 2;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    char *s = malloc(len), *p = s;
    if (!s) {
        free(keys);
        goto oom;
    }
    for (i = 0; i < n; i++) {
        size_t kl = strlen(keys[i]);
        memcpy(p, keys[i], kl);
        p += kl;
        if (json_is_object(json_object_get(v, keys[i])))
            *p++ = '/';
        if (i + 1 < n)
            *p++ = '\n';
    }
    *p = 0;
    free(keys);
    return s;
oom:
    *status = 500;
    return NULL;
}

struct mmds_render mmds_render(struct mmds *m, const char *path, size_t path_len, bool want_json)
{
    struct mmds_render out = {.status = 404};
    pthread_mutex_lock(&m->lock);
    json_t *v = m->data;
    bool json = want_json && !m->imds_compat;
    /* Each '/'-separated token a member; empty tokens (a trailing '/',
     * "//") are skipped. The loop is bounded by the path's length. */
    for (size_t i = 0; v && i < path_len;) {
        size_t j = i;
        while (j < path_len && path[j] != '/')
            j++;
        if (j > i)
            v = json_is_object(v) ? member(v, path + i, j - i) : NULL;
        i = j + 1;
    }
    if (v) {
        out.status = 200;
        out.json = json;
        out.body = json ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                        : imds_text(v, &out.status);
        if (!out.body && out.status == 200)
            out.status = 500;
    }
    pthread_mutex_unlock(&m->lock);
    return out;
}

/* ---- V2 session tokens ------------------------------------------------- */

int mmds_token_new(struct mmds *m, unsigned ttl_s, uint64_t now_ms, char out[MMDS_TOKEN_LEN + 1])
{
    uint8_t rnd[MMDS_TOKEN_LEN / 2];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    pthread_mutex_lock(&m->lock);
    /* A free or expired slot, else the one that expires first. */
    struct mmds_token *slot = &m->tokens[0];
    for (unsigned i = 0; i < MMDS_TOKENS_MAX; i++) {
        struct mmds_token *t = &m->tokens[i];
        if (!t->val[0] || t->expires_ms <= now_ms) {
            slot = t;
            break;
        }
        if (t->expires_ms < slot->expires_ms)
            slot = t;
    }
    memcpy(slot->val, out, MMDS_TOKEN_LEN + 1);
    slot->expires_ms = now_ms + (uint64_t)ttl_s * 1000;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

bool mmds_token_ok(struct mmds *m, const char *tok, size_t len, uint64_t now_ms)
{
    if (len != MMDS_TOKEN_LEN)
        return false;
    bool ok = false;
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < MMDS_TOKENS_MAX; i++) {
        const struct mmds_token *t = &m->tokens[i];
        /* Every byte compared: the time taken says nothing of the token. */
        unsigned diff = 0;
        for (size_t j = 0; j < MMDS_TOKEN_LEN; j++)
            diff |= (unsigned)(t->val[j] ^ tok[j]);
        ok |= t->val[0] && diff == 0 && now_ms < t->expires_ms;
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}
