/* iov.h - copies between a flat buffer and a byte range of an iovec array
 * (guest buffers already checked, or any host memory). */
#ifndef ARCVM_BASE_IOV_H
#define ARCVM_BASE_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Copy @len bytes from @src to the bytes starting at @off of the @cnt
 * iovecs; returns how many fitted. */
size_t iov_copy_to(const struct iovec *iov, unsigned cnt, size_t off, const void *src, size_t len);
/* Copy up to @len bytes starting at @off of the iovecs to @dst; returns
 * how many there were. */
size_t iov_copy_from(const struct iovec *iov, unsigned cnt, size_t off, void *dst, size_t len);

#endif
