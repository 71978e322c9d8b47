/* snap.h - machine state as named sections of little-endian fields.
 *
 * A snapshot's state is a list of sections ("vcpu0", "serial", "virtio2",
 * ...), each a name and a run of bytes that one component writes and reads
 * back field by field with fixed widths. Writers never fail part-way: an
 * allocation failure is remembered (snap_w.err) and reported once at the
 * end. Readers treat the bytes as untrusted: every get is bounded by its
 * section, a short section sets snap_r.err (-EPROTO) and yields zeros, and
 * each component checks the values it reads before it uses them.
 */
#ifndef ARCVM_BASE_SNAP_H
#define ARCVM_BASE_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_NAME_MAX 32 /* section name bytes, NUL included */

struct snap_w {
    uint8_t *buf;
    size_t len, cap;
    size_t section; /* offset of the open section's length field, 0: none */
    int err;        /* first failure (-ENOMEM), sticky */
};

void snap_w_init(struct snap_w *w);
void snap_w_free(struct snap_w *w);
/* Open section @name (shorter than SNAP_NAME_MAX); puts go into it until
 * snap_end(). Sections do not nest. */
void snap_begin(struct snap_w *w, const char *name);
void snap_end(struct snap_w *w);
void snap_put(struct snap_w *w, const void *p, size_t len);
void snap_put_u8(struct snap_w *w, uint8_t v);
void snap_put_u16(struct snap_w *w, uint16_t v);
void snap_put_u32(struct snap_w *w, uint32_t v);
void snap_put_u64(struct snap_w *w, uint64_t v);
/* A string of at most 65535 bytes (NULL is written as an empty one). */
void snap_put_str(struct snap_w *w, const char *s);

struct snap_r {
    const uint8_t *p;
    size_t left;
    int err; /* -EPROTO once a get ran past the end, sticky */
};

/* The whole state @buf/@len: find section @name in it. -ENOENT when absent,
 * -EPROTO when the section list itself is malformed. */
int snap_find(const uint8_t *buf, size_t len, const char *name, struct snap_r *out);
/* Iterate: the section at *@off (start with 0) into @name and @body, and
 * advance *@off. 1 while there is one, 0 at the end, -EPROTO if malformed. */
int snap_next(const uint8_t *buf, size_t len, size_t *off, char name[SNAP_NAME_MAX],
              struct snap_r *body);
/* Check that @buf/@len is a well-formed list of sections. */
int snap_check(const uint8_t *buf, size_t len);
void snap_get(struct snap_r *r, void *p, size_t len);
uint8_t snap_get_u8(struct snap_r *r);
uint16_t snap_get_u16(struct snap_r *r);
uint32_t snap_get_u32(struct snap_r *r);
uint64_t snap_get_u64(struct snap_r *r);
bool snap_get_bool(struct snap_r *r); /* a u8; anything but 0/1 sets err */
/* A string put by snap_put_str() into @out (@max bytes, NUL included);
 * longer than that sets err. */
void snap_get_str(struct snap_r *r, char *out, size_t max);
/* A string as a new allocation (NULL for the empty string); err on failure. */
char *snap_get_strdup(struct snap_r *r);
/* 0 when every get succeeded and the section was used up exactly, else
 * -EPROTO: a reader that knows its fields also knows their total length. */
int snap_r_done(const struct snap_r *r);

/* CRC-32C (Castagnoli) of @len bytes, continuing from @crc (start with 0). */
uint32_t snap_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
