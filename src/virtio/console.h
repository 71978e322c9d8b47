/* console.h - virtio console device (virtio 1.2, 5.3), a single port: the
 * guest's hvc0, connected to a host console (vmm/console.h). */
#ifndef ARCVM_VIRTIO_CONSOLE_H
#define ARCVM_VIRTIO_CONSOLE_H

#include "virtio/virtio.h"

struct console;

/* A new console device on @con; freed through its ops->release. */
struct virtio_device *virtio_console_create(const struct guest_mem *mem, struct console *con);
/* Console input hook (the event loop calls it through the console). */
size_t virtio_console_rx(void *dev, const uint8_t *buf, size_t len);

#endif
