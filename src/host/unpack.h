/* unpack.h - decompressing a kernel payload on the host (xz, gzip).
 *
 * A bzImage carries the real kernel compressed; the guest normally unpacks
 * it itself, which is a large part of a microVM's boot time (most of it
 * under emulation). arcvm can unpack it once on the host and keep the result
 * (host/kcache.h). The formats are the ones Linux's x86 build offers that
 * distributions use: xz (Debian, Ubuntu) and gzip. Others are reported as
 * unsupported, and the caller boots the bzImage as it is.
 */
#ifndef ARCVM_HOST_UNPACK_H
#define ARCVM_HOST_UNPACK_H

#include <stddef.h>
#include <stdint.h>

/* Largest unpacked kernel accepted: a bound for a hostile or broken image. */
#define UNPACK_MAX (512u << 20)

/* Decompress @in (@len bytes: one xz or gzip stream, anything after it
 * ignored) into a new malloc'd buffer of at most @max bytes. Returns 0 with
 * *out and *outlen set; -ENOTSUP when @in is neither format; -EINVAL with a
 * reason in @err when the stream is corrupt or truncated, -EFBIG when it
 * unpacks to more than @max, -ENOMEM. */
int unpack(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *outlen, char *err,
           size_t errlen);

#endif
