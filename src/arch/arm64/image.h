/* image.h - the arm64 Linux Image header (Documentation/arch/arm64/
 * booting.rst): where the kernel goes and how much memory it claims. */
#ifndef ARCVM_ARM64_IMAGE_H
#define ARCVM_ARM64_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_MAGIC 0x644d5241u /* "ARM\x64", little-endian at 0x38 */
#define ARM64_IMAGE_HEADER 64
/* The kernel's base is 2 MiB aligned; text_offset is added to it. */
#define ARM64_IMAGE_ALIGN 0x200000ull

struct arm64_image {
    uint64_t text_offset; /* from a 2 MiB aligned base */
    uint64_t image_size;  /* bytes from the load address the kernel uses
                           * (its BSS included), >= the file */
    bool anywhere;        /* flags bit 3: any 2 MiB aligned base in RAM */
};

/* Check @img (@len bytes) is a little-endian arm64 Image and read its
 * header. 0, -ENOEXEC when it is no Image at all, or -EINVAL with a
 * sentence in @why when its header is unusable. */
int arm64_image_parse(const uint8_t *img, size_t len, struct arm64_image *out, char *why,
                      size_t whylen);
/* Where the kernel goes in RAM at @ram_base: the first 2 MiB aligned base,
 * plus text_offset. */
uint64_t arm64_image_load_addr(const struct arm64_image *k, uint64_t ram_base);

#endif
