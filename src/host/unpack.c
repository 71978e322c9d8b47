/* unpack.c - xz and gzip decompression of kernel payloads; see unpack.h. */
#include "host/unpack.h"

#include <errno.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const uint8_t xz_magic[6] = {0xfd, '7', 'z', 'X', 'Z', 0};
static const uint8_t gz_magic[2] = {0x1f, 0x8b};

/* The output buffer: grown by doubling up to the caller's bound. */
struct outbuf {
    uint8_t *p;
    size_t cap, max;
};

/* Make room for more output. 0, -EFBIG at the bound, -ENOMEM. */
static int grow(struct outbuf *o)
{
    if (o->cap >= o->max)
        return -EFBIG;
    size_t cap = o->cap > o->max / 2 ? o->max : o->cap * 2;
    uint8_t *p = realloc(o->p, cap);
    if (!p)
        return -ENOMEM;
    o->p = p;
    o->cap = cap;
    return 0;
}

static int unxz(const uint8_t *in, size_t len, struct outbuf *o, size_t *outlen, char *err,
                size_t errlen)
{
    lzma_stream s = LZMA_STREAM_INIT;
    /* One stream; the kernel's build appends the unpacked size after it,
     * which LZMA_CONCATENATED would take for a broken second stream. */
    if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
        snprintf(err, errlen, "cannot start the xz decoder");
        return -ENOMEM;
    }
    s.next_in = in;
    s.avail_in = len;
    int r = 0;
    for (;;) {
        if (s.total_out == o->cap && (r = grow(o)) < 0)
            break;
        s.next_out = o->p + s.total_out;
        s.avail_out = o->cap - s.total_out;
        lzma_ret x = lzma_code(&s, LZMA_FINISH);
        if (x == LZMA_STREAM_END) {
            *outlen = s.total_out;
            break;
        }
        if (x == LZMA_OK && s.avail_out == 0)
            continue; /* output full: grow and go on */
        if (x == LZMA_MEM_ERROR) {
            r = -ENOMEM;
        } else {
            snprintf(err, errlen, "the xz stream is %s (liblzma error %d)",
                     x == LZMA_OK || x == LZMA_BUF_ERROR ? "truncated" : "corrupt", (int)x);
            r = -EINVAL;
        }
        break;
    }
    lzma_end(&s);
    return r;
}

static int ungzip(const uint8_t *in, size_t len, struct outbuf *o, size_t *outlen, char *err,
                  size_t errlen)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) { /* 16: a gzip wrapper */
        snprintf(err, errlen, "cannot start the gzip decoder");
        return -ENOMEM;
    }
    size_t in_done = 0, out_done = 0;
    int r = 0;
    for (;;) {
        if (out_done == o->cap && (r = grow(o)) < 0)
            break;
        /* zlib counts in uInt: feed at most 1 GiB at a time. */
        size_t in_chunk = len - in_done < (1u << 30) ? len - in_done : (1u << 30);
        size_t out_chunk = o->cap - out_done < (1u << 30) ? o->cap - out_done : (1u << 30);
        s.next_in = (Bytef *)(uintptr_t)(in + in_done);
        s.avail_in = (uInt)in_chunk;
        s.next_out = o->p + out_done;
        s.avail_out = (uInt)out_chunk;
        int z = inflate(&s, Z_NO_FLUSH);
        in_done += in_chunk - s.avail_in;
        out_done += out_chunk - s.avail_out;
        if (z == Z_STREAM_END) {
            *outlen = out_done;
            break;
        }
        if (z == Z_OK || (z == Z_BUF_ERROR && s.avail_out == 0)) {
            if (in_done == len && s.avail_out != 0) {
                snprintf(err, errlen, "the gzip stream is truncated");
                r = -EINVAL;
                break;
            }
            continue;
        }
        if (z == Z_MEM_ERROR) {
            r = -ENOMEM;
        } else {
            snprintf(err, errlen, "the gzip stream is %s (zlib error %d)",
                     z == Z_BUF_ERROR ? "truncated" : "corrupt", z);
            r = -EINVAL;
        }
        break;
    }
    inflateEnd(&s);
    return r;
}

int unpack(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *outlen, char *err,
           size_t errlen)
{
    bool xz = len >= sizeof(xz_magic) && !memcmp(in, xz_magic, sizeof(xz_magic));
    bool gz = len >= sizeof(gz_magic) && !memcmp(in, gz_magic, sizeof(gz_magic));
    if (!xz && !gz)
        return -ENOTSUP;
    /* Kernels unpack to 3-5 times their compressed size. */
    struct outbuf o = {.cap = len < max / 4 ? len * 4 : max, .max = max};
    if (o.cap == 0)
        o.cap = 1;
    o.p = malloc(o.cap);
    if (!o.p)
        return -ENOMEM;
    size_t n = 0;
    int r = xz ? unxz(in, len, &o, &n, err, errlen) : ungzip(in, len, &o, &n, err, errlen);
    if (r == -EFBIG)
        snprintf(err, errlen, "it unpacks to more than %zu MiB", max >> 20);
    else if (r == -ENOMEM)
        snprintf(err, errlen, "out of memory unpacking it");
    if (r < 0) {
        free(o.p);
        return r;
    }
    *out = o.p;
    *outlen = n;
    return 0;
}
