/* fuzz_mmio_fixture.h - what the virtio-mmio fuzz targets share
 * (fuzz_virtio_mmio.c, fuzz_virtio_load.c, fuzz_virtio_dev.c): two regions
 * of fake guest RAM with a hole between them, a device (virtio-rng unless
 * the target brings its own) behind the mmio transport with a stand-in for
 * its (static) interrupt callback, and the input's leading guest-RAM image. Included once per target: everything here is static. */
#ifndef ARCVM_FUZZ_MMIO_FIXTURE_H
#define ARCVM_FUZZ_MMIO_FIXTURE_H

#include "fuzz_check.h"

#include "virtio/rng.h"
#include "virtio/virtio_mmio.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#define R0_GPA  0x0ull
#define R0_SIZE 0x2000ull
#define R1_GPA  0x10000ull
#define R1_SIZE 0x1000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static struct virtio_mmio m;
static int irq_fd = -1;

static void standin_interrupt(struct virtio_device *d, uint32_t reason)
{
    struct virtio_mmio *mm = d->transport_data;
    CHECK(reason == VIRTIO_INT_USED || reason == VIRTIO_INT_CONFIG);
    mm->interrupt_status |= reason;
    irq_line_pulse(&mm->irq);
}

/* Set by a target whose devices may ask to be served again only for
 * queues that are ready (a restored device). */
static int requeue_needs_ready;

static void standin_requeue(struct virtio_device *d, unsigned q)
{
    CHECK(q < d->ops->num_queues);
    CHECK(!requeue_needs_ready || d->vq[q].ready);
}

static const struct virtio_transport_ops standin = {.interrupt = standin_interrupt,
                                                    .requeue = standin_requeue};

/* Guest RAM and the interrupt eventfd, once per process. */
static void fixture_once(void)
{
    if (mem.count)
        return;
    log_set_level(LOG_ERROR); /* guest-misbehaviour warnings are the normal case here */
    mem.fd = -1;
    mem.count = 2;
    mem.r[0] = (struct guest_mem_region){R0_GPA, R0_SIZE, malloc(R0_SIZE)};
    mem.r[1] = (struct guest_mem_region){R1_GPA, R1_SIZE, malloc(R1_SIZE)};
    irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(mem.r[0].hva && mem.r[1].hva && irq_fd >= 0);
}

/* Whether [p, p+len) lies inside one region. */
static int in_ram(const uint8_t *p, uint64_t len)
{
    for (unsigned i = 0; i < mem.count; i++) {
        const struct guest_mem_region *r = &mem.r[i];
        if (p >= r->hva && p < r->hva + r->size && len <= (uint64_t)(r->hva + r->size - p))
            return 1;
    }
    return 0;
}

/* The input's head: a little-endian u16 length L and L bytes of guest RAM
 * (the rest zeros). Moves @data and @size past it; false if too short. */
static int fixture_load_ram(const uint8_t **data, size_t *size)
{
    if (*size < 2)
        return 0;
    uint16_t img_len;
    memcpy(&img_len, *data, 2);
    *data += 2;
    *size -= 2;
    if (img_len > *size)
        img_len = (uint16_t)*size;
    if (img_len > R0_SIZE + R1_SIZE)
        img_len = (uint16_t)(R0_SIZE + R1_SIZE);
    memset(mem.r[0].hva, 0, R0_SIZE);
    memset(mem.r[1].hva, 0, R1_SIZE);
    size_t n0 = img_len < R0_SIZE ? img_len : R0_SIZE;
    memcpy(mem.r[0].hva, *data, n0);
    memcpy(mem.r[1].hva, *data + n0, img_len - n0);
    *data += img_len;
    *size -= img_len;
    return 1;
}

/* The driver writes 4 bytes of guest RAM at a fuzzer-chosen place inside
 * it (fewer at a region's end). */
__attribute__((unused)) static void fixture_poke(uint16_t where, const uint8_t *v)
{
    uint64_t off = where % (R0_SIZE + R1_SIZE);
    const struct guest_mem_region *r = off < R0_SIZE ? &mem.r[0] : &mem.r[1];
    if (off >= R0_SIZE)
        off -= R0_SIZE;
    size_t n = r->size - off < 4 ? r->size - off : 4;
    memcpy(r->hva + off, v, n);
}

/* Put @d behind the stand-in transport in @m (fresh). */
__attribute__((unused)) static void fixture_attach(struct virtio_device *d)
{
    memset(&m, 0, sizeof(m));
    m.dev = d;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        m.notify_fd[i] = -1;
    m.irq = (struct irq_line){NULL, 5, irq_fd};
    d->transport = &standin;
    d->transport_data = &m;
}

/* A fresh virtio-rng behind the stand-in transport in @m. */
__attribute__((unused)) static struct virtio_device *fixture_device(void)
{
    struct virtio_device *d = virtio_rng_create(&mem);
    CHECK(d);
    fixture_attach(d);
    return d;
}

#endif
