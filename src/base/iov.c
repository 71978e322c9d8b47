/* iov.c - copies to and from iovec arrays; see iov.h. */
#include "base/iov.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static size_t copy(const struct iovec *iov, unsigned cnt, size_t off, uint8_t *buf, size_t len,
                   bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < cnt && done < len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t k = iov[i].iov_len - off;
        if (k > len - done)
            k = len - done;
        uint8_t *p = (uint8_t *)iov[i].iov_base + off;
        if (to_iov)
            memcpy(p, buf + done, k);
        else
            memcpy(buf + done, p, k);
        done += k;
        off = 0;
    }
    return done;
}

size_t iov_copy_to(const struct iovec *iov, unsigned cnt, size_t off, const void *src, size_t len)
{
    return copy(iov, cnt, off, (uint8_t *)(uintptr_t)src, len, true);
}

size_t iov_copy_from(const struct iovec *iov, unsigned cnt, size_t off, void *dst, size_t len)
{
    return copy(iov, cnt, off, dst, len, false);
}
