/* image.c - parsing the arm64 Image header. Pure: unit-tested on any host. */
#include "arch/arm64/image.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Sanity bounds: text_offset was 0x80000 before Linux 3.17 and is 0 now;
 * an image claiming more than 1 GiB is not a kernel we can place. */
#define TEXT_OFFSET_MAX ARM64_IMAGE_ALIGN
#define IMAGE_SIZE_MAX (1ull << 30)

int arm64_image_parse(const uint8_t *img, size_t len, struct arm64_image *out, char *why,
                      size_t whylen)
{
    if (len < ARM64_IMAGE_HEADER)
        return -ENOEXEC;
    uint32_t magic = (uint32_t)img[0x38] | (uint32_t)img[0x39] << 8 |
                     (uint32_t)img[0x3a] << 16 | (uint32_t)img[0x3b] << 24;
    if (magic != ARM64_IMAGE_MAGIC)
        return -ENOEXEC;
    uint64_t text_offset = le64(img + 8), image_size = le64(img + 16), flags = le64(img + 24);
    if (image_size == 0) {
        /* Before Linux 3.17 the header had no size and the offset was
         * fixed; the file's size is all we know. */
        text_offset = 0x80000;
        image_size = len;
    }
    if (flags & 1) {
        snprintf(why, whylen, "the kernel is big-endian; arcvm boots little-endian kernels");
        return -EINVAL;
    }
    if (text_offset >= TEXT_OFFSET_MAX || (text_offset & 0xfff)) {
        snprintf(why, whylen, "the Image header's text_offset 0x%llx is not a page offset "
                 "below 2 MiB", (unsigned long long)text_offset);
        return -EINVAL;
    }
    if (image_size < len || image_size > IMAGE_SIZE_MAX) {
        snprintf(why, whylen, "the Image header's image_size (%llu bytes) does not fit the "
                 "file (%zu bytes)", (unsigned long long)image_size, len);
        return -EINVAL;
    }
    out->text_offset = text_offset;
    out->image_size = image_size;
    out->anywhere = flags & 8;
    return 0;
}

uint64_t arm64_image_load_addr(const struct arm64_image *k, uint64_t ram_base)
{
    uint64_t base = (ram_base + ARM64_IMAGE_ALIGN - 1) & ~(ARM64_IMAGE_ALIGN - 1);
    return base + k->text_offset;
}
