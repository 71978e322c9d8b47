/* snap.c - named state sections and their checksum; see snap.h.
 *
 * Layout of one section: name (SNAP_NAME_MAX bytes, NUL padded), u32 length,
 * then that many bytes. All integers little-endian.
 */
#include "base/snap.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HDR (SNAP_NAME_MAX + 4)

void snap_w_init(struct snap_w *w)
{
    memset(w, 0, sizeof(*w));
}

void snap_w_free(struct snap_w *w)
{
    free(w->buf);
    snap_w_init(w);
}

static uint8_t *grow(struct snap_w *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > SIZE_MAX / 2 - w->len) {
        w->err = -ENOMEM;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            w->err = -ENOMEM;
            return NULL;
        }
        w->buf = b;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

void snap_begin(struct snap_w *w, const char *name)
{
    uint8_t *p = grow(w, HDR);
    if (!p)
        return;
    memset(p, 0, HDR);
    strncpy((char *)p, name, SNAP_NAME_MAX - 1);
    w->section = w->len - 4;
}

void snap_end(struct snap_w *w)
{
    if (w->err || !w->section)
        return;
    size_t n = w->len - w->section - 4;
    if (n > UINT32_MAX) {
        w->err = -E2BIG;
        return;
    }
    uint32_t le = htole32((uint32_t)n);
    memcpy(w->buf + w->section, &le, 4);
    w->section = 0;
}

void snap_put(struct snap_w *w, const void *p, size_t len)
{
    uint8_t *d = grow(w, len);
    if (d && len)
        memcpy(d, p, len);
}

void snap_put_u8(struct snap_w *w, uint8_t v)
{
    snap_put(w, &v, 1);
}

void snap_put_u16(struct snap_w *w, uint16_t v)
{
    v = htole16(v);
    snap_put(w, &v, 2);
}

void snap_put_u32(struct snap_w *w, uint32_t v)
{
    v = htole32(v);
    snap_put(w, &v, 4);
}

void snap_put_u64(struct snap_w *w, uint64_t v)
{
    v = htole64(v);
    snap_put(w, &v, 8);
}

void snap_put_str(struct snap_w *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > UINT16_MAX) {
        if (!w->err)
            w->err = -ENAMETOOLONG;
        return;
    }
    snap_put_u16(w, (uint16_t)n);
    snap_put(w, s, n);
}

/* Walk the list; stop at @name (out filled) or at the end. */
static int walk(const uint8_t *buf, size_t len, const char *name, struct snap_r *out)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < HDR)
            return -EPROTO;
        const uint8_t *h = buf + off;
        if (memchr(h, 0, SNAP_NAME_MAX) == NULL)
            return -EPROTO; /* an unterminated name */
        uint32_t n;
        memcpy(&n, h + SNAP_NAME_MAX, 4);
        n = le32toh(n);
        if (n > len - off - HDR)
            return -EPROTO;
        if (name && !strcmp((const char *)h, name)) {
            *out = (struct snap_r){.p = h + HDR, .left = n};
            return 0;
        }
        off += HDR + n;
    }
    return name ? -ENOENT : 0;
}

int snap_next(const uint8_t *buf, size_t len, size_t *off, char name[SNAP_NAME_MAX],
              struct snap_r *body)
{
    if (*off >= len)
        return 0;
    if (len - *off < HDR || !memchr(buf + *off, 0, SNAP_NAME_MAX))
        return -EPROTO;
    uint32_t n;
    memcpy(&n, buf + *off + SNAP_NAME_MAX, 4);
    n = le32toh(n);
    if (n > len - *off - HDR)
        return -EPROTO;
    memcpy(name, buf + *off, SNAP_NAME_MAX);
    *body = (struct snap_r){.p = buf + *off + HDR, .left = n};
    *off += HDR + n;
    return 1;
}

int snap_find(const uint8_t *buf, size_t len, const char *name, struct snap_r *out)
{
    return walk(buf, len, name, out);
}

int snap_check(const uint8_t *buf, size_t len)
{
    return walk(buf, len, NULL, NULL);
}

void snap_get(struct snap_r *r, void *p, size_t len)
{
    if (r->err || len > r->left) {
        r->err = -EPROTO;
        r->left = 0;
        memset(p, 0, len);
        return;
    }
    memcpy(p, r->p, len);
    r->p += len;
    r->left -= len;
}

uint8_t snap_get_u8(struct snap_r *r)
{
    uint8_t v;
    snap_get(r, &v, 1);
    return v;
}

uint16_t snap_get_u16(struct snap_r *r)
{
    uint16_t v;
    snap_get(r, &v, 2);
    return le16toh(v);
}

uint32_t snap_get_u32(struct snap_r *r)
{
    uint32_t v;
    snap_get(r, &v, 4);
    return le32toh(v);
}

uint64_t snap_get_u64(struct snap_r *r)
{
    uint64_t v;
    snap_get(r, &v, 8);
    return le64toh(v);
}

bool snap_get_bool(struct snap_r *r)
{
    uint8_t v = snap_get_u8(r);
    if (v > 1)
        r->err = -EPROTO;
    return v == 1;
}

void snap_get_str(struct snap_r *r, char *out, size_t max)
{
    uint16_t n = snap_get_u16(r);
    if (r->err || n >= max || n > r->left) {
        r->err = -EPROTO;
        if (max)
            out[0] = 0;
        return;
    }
    snap_get(r, out, n);
    out[n] = 0;
}

char *snap_get_strdup(struct snap_r *r)
{
    uint16_t n = snap_get_u16(r);
    if (r->err || n > r->left) {
        r->err = -EPROTO;
        return NULL;
    }
    if (!n)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->err = -ENOMEM;
        return NULL;
    }
    snap_get(r, s, n);
    s[n] = 0;
    if (memchr(s, 0, n)) { /* a NUL inside: not a string we wrote */
        r->err = -EPROTO;
        free(s);
        return NULL;
    }
    return s;
}

int snap_r_done(const struct snap_r *r)
{
    if (r->err)
        return r->err;
    return r->left ? -EPROTO : 0;
}

/* Table-driven, reflected polynomial 0x82F63B78; built on first use (the
 * race of two threads building it is benign: both write the same values). */
uint32_t snap_crc32c(uint32_t crc, const void *buf, size_t len)
{
    static uint32_t table[256];
    static _Atomic int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = buf;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
