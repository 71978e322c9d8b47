/* fuzz_kernel.c - libFuzzer target for the kernel loaders' parsers: the
 * bzImage header (arch/x86/boot.c), ELF program headers and PVH notes
 * (arch/x86/pvh.c), and the host-side unpacker (host/unpack.c) that turns a
 * bzImage's compressed payload into the ELF kernel arcvm boots directly and
 * keeps in the kernel cache (an entry read back from the cache goes through
 * the same x86_elf_parse()).
 *
 * Input: a mode byte, then the file.
 *   mode % 3 == 0: a bzImage: its header, the zero page built from it, and
 *                  its payload unpacked and parsed as ELF, as setup.c does;
 *   mode % 3 == 1: an ELF kernel;
 *   mode % 3 == 2: a compressed stream (gzip or xz) unpacked and parsed;
 * bit 7 of the mode bounds unpacking at 4 KiB, to reach the -EFBIG path.
 * The file is its own heap block (libFuzzer's copy), so ASan sees any read
 * past its end. Properties: what a parser accepts lies inside the file
 * (each described range is read here byte by byte), an ELF segment never
 * has more file bytes than memory bytes, the unpacker honours its bound and
 * returns only the errors it documents. Unpacking is bounded by FUZZ_UNPACK_MAX,
 * not UNPACK_MAX, so that a small bomb cannot make the fuzzer run out of memory.
 *
 * Run: FUZZ_TARGETS=fuzz_kernel tests/fuzz/run.sh
 */
#include "fuzz_check.h"

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "arch/x86/pvh.h"
#include "host/unpack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Enough for any kernel the seeds hold; far below the fuzzer's RSS limit. */
#define FUZZ_UNPACK_MAX (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

/* Read [off, off+len) of the @size-byte @img, as a loader's memcpy would. */
static void touch(const uint8_t *img, size_t size, uint64_t off, uint64_t len)
{
    CHECK(off <= size && len <= size - off);
    uint8_t x = 0;
    for (uint64_t i = 0; i < len; i++)
        x ^= img[off + i];
    sink = x;
}

static void elf(const uint8_t *img, size_t len)
{
    struct elf_kernel k;
    char err[256] = "";
    int r = x86_elf_parse(img, len, &k, err, sizeof(err));
    CHECK(r == 0 || r == -ENOEXEC || (r == -EINVAL && err[0]));
    if (r < 0)
        return;
    CHECK(k.nseg >= 1 && k.nseg <= ELF_MAX_SEGMENTS);
    for (unsigned i = 0; i < k.nseg; i++) {
        CHECK(k.seg[i].filesz <= k.seg[i].memsz && k.seg[i].memsz);
        touch(img, len, k.seg[i].offset, k.seg[i].filesz);
    }
}

static size_t unpack_max;

static void unpacked(const uint8_t *in, size_t len)
{
    uint8_t *out = NULL;
    size_t outlen = 0;
    char err[256] = "";
    size_t max = unpack_max;
    int r = unpack(in, len, max, &out, &outlen, err, sizeof(err));
    CHECK(r == 0 || r == -ENOTSUP || r == -EFBIG || r == -ENOMEM || (r == -EINVAL && err[0]));
    if (r < 0) {
        CHECK(!out);
        return;
    }
    CHECK(out && outlen <= max);
    elf(out, outlen);
    free(out);
}

static void bzimage(const uint8_t *img, size_t len)
{
    struct bzimage bz;
    char err[256] = "";
    int r = x86_bzimage_parse(img, len, &bz, err, sizeof(err));
    CHECK(r == 0 || r == -ENOEXEC || (r == -EINVAL && err[0]));
    if (r < 0)
        return;
    CHECK(bz.setup_size == bz.kernel_offset && bz.kernel_size);
    touch(img, len, bz.kernel_offset, bz.kernel_size);
    CHECK(bz.init_size >= bz.kernel_size);
    uint8_t zp[4096];
    struct e820_entry e820[E820_MAX];
    unsigned n = x86_e820_build(256ull << 20, e820, E820_MAX);
    x86_zero_page_fill(zp, img, X86_CMDLINE_ADDR, 0, 0, e820, n, 0);
    if (bz.payload_length) {
        CHECK(bz.payload_offset >= bz.kernel_offset);
        touch(img, len, bz.payload_offset, bz.payload_length);
        unpacked(img + bz.payload_offset, bz.payload_length);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    unpack_max = mode & 0x80 ? 4096 : FUZZ_UNPACK_MAX; /* the bound itself, too */
    /* Copy the file into a block of its own size: a read past it is caught. */
    uint8_t *img = malloc(size - 1);
    CHECK(img);
    memcpy(img, data + 1, size - 1);
    switch (mode % 3) {
    case 0:
        bzimage(img, size - 1);
        break;
    case 1:
        elf(img, size - 1);
        break;
    case 2:
        unpacked(img, size - 1);
        break;
    }
    free(img);
    return 0;
}
