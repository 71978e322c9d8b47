/* tap.h - a Linux TAP interface as a frame back end for virtio-net.
 *
 * Frames are read and written whole on one non-blocking fd, each preceded by
 * a 12-byte virtio_net_hdr (IFF_VNET_HDR with TUNSETVNETHDRSZ 12, the
 * VERSION_1 header), so the guest's checksum and segmentation offloads pass
 * through the host kernel without any copy or parsing in arcvm. A read into
 * buffers too small for the frame returns the frame's full length (TUN
 * truncates and drops the rest), which is how callers detect it.
 *
 * Offloads are TUN_F_* bits (linux/if_tun.h): what the kernel may hand us
 * un-checksummed or unsegmented, i.e. what the guest said it can take.
 *
 * Not thread-safe; the owning device serializes calls.
 */
#ifndef ARCVM_HOST_TAP_H
#define ARCVM_HOST_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

/* Size of the virtio_net_hdr each frame carries (virtio 1.2, 5.1.6). */
#define TAP_VNET_HDR_LEN 12

struct tap {
    int fd;                  /* -1 when closed */
    char name[IF_NAMESIZE];  /* the interface attached to */
    bool created;            /* it did not exist before: it goes away with fd */
    unsigned offloads;       /* TUN_F_* the kernel accepts for TUNSETOFFLOAD */
};

/* Attach to TAP interface @name (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR),
 * creating it when it does not exist and the process may (CAP_NET_ADMIN; an
 * interface created here is not persistent and is unconfigured). The fd is
 * non-blocking and close-on-exec; offloads start off. Returns 0, or -errno
 * with one sentence for the user in @err (for a missing permission it says
 * how to create the interface for this user). */
int tap_open(struct tap *t, const char *name, char *err, size_t errlen);

/* Let the kernel hand us frames with the TUN_F_* offloads in @offloads (a
 * subset of t->offloads). 0 or -errno. */
int tap_set_offloads(struct tap *t, unsigned offloads);

/* Close the fd; safe on a closed or failed tap, and twice. */
void tap_close(struct tap *t);
/* Whether TAP devices can be used here: 0 when /dev/net/tun opens, else
 * -errno (-ENOENT: no tun driver; -EACCES: no permission). */
int tap_probe(void);

#endif
