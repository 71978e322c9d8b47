/* bus.h - port-I/O and MMIO buses: address ranges to device callbacks.
 *
 * A bus is a sorted array of non-overlapping ranges searched by bisection.
 * Ranges are registered while the VM is being built; the array is read-only
 * once vCPUs run, so lookups take no lock. Device callbacks run on the vCPU
 * thread that trapped the access and must do their own locking.
 */
#ifndef ARCVM_BASE_BUS_H
#define ARCVM_BASE_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* A device's access handlers. @off is relative to the registered base;
 * 1 <= len <= 8 and [off, off+len) lies inside the range. A read handler
 * must fill all @len bytes. */
struct bus_ops {
    void (*read)(void *dev, uint64_t off, uint8_t *data, uint32_t len);
    void (*write)(void *dev, uint64_t off, const uint8_t *data, uint32_t len);
};

struct bus_range {
    uint64_t base;
    uint64_t len;
    const struct bus_ops *ops;
    void *dev;
    const char *name;
};

struct bus {
    const char *name;        /* "pio" or "mmio", for messages */
    struct bus_range *ranges;
    unsigned count, cap;
};

void bus_init(struct bus *b, const char *name);
void bus_release(struct bus *b);
/* Add [base, base+len). -EEXIST if it overlaps a registered range,
 * -EINVAL for an empty or wrapping range. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev,
                 const char *name);
int bus_unregister(struct bus *b, uint64_t base);
/* The range containing @addr, or NULL. */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr);
/* Route an access. Returns false when no device covers all of
 * [addr, addr+len); reads of unclaimed addresses then return all ones,
 * as on a real bus with nothing decoding the address. */
bool bus_access(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool write);

#endif
