/* tap.c - TAP interfaces through /dev/net/tun; see tap.h. */
#include "host/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TUN_PATH "/dev/net/tun"

/* Offload sets to try, most capable first: which ones the kernel accepts
 * depends on its version (TUN_F_UFO was refused between 4.14 and 4.15). */
static const unsigned offload_probe[] = {
    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO,
    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
    TUN_F_CSUM,
};

/* Who to name in "ip tuntap add ... user WHO": $USER when set (a static
 * binary cannot use NSS to look the name up), else the numeric uid, which
 * ip(8) accepts too. */
static const char *user_name(char *buf, size_t len)
{
    const char *u = getenv("USER");
    if (u && *u && !strpbrk(u, " \t\n;|&$`'\""))
        return u;
    snprintf(buf, len, "%u", (unsigned)getuid());
    return buf;
}

static void attach_error(const char *name, bool existed, int e, char *err, size_t errlen)
{
    char ub[16];
    const char *user = user_name(ub, sizeof(ub));
    switch (e) {
    case EPERM:
    case EACCES:
        if (existed)
            snprintf(err, errlen,
                     "no permission to attach to TAP interface %s (it belongs to another "
                     "user); as root, recreate it for this user with: ip tuntap del %s mode tap; "
                     "ip tuntap add %s mode tap user %s",
                     name, name, name, user);
        else
            snprintf(err, errlen,
                     "TAP interface %s does not exist and creating it needs CAP_NET_ADMIN; as "
                     "root, create it with: ip tuntap add %s mode tap user %s",
                     name, name, user);
        break;
    case EBUSY:
        snprintf(err, errlen,
                 "TAP interface %s is in use by another process (a single-queue TAP takes one "
                 "reader); stop it or use another interface",
                 name);
        break;
    case EINVAL:
        snprintf(err, errlen,
                 "%s exists but is not a single-queue TAP interface (a TUN device, a "
                 "multi-queue TAP, or another kind of interface); give another name",
                 name);
        break;
    default:
        snprintf(err, errlen, "cannot attach to TAP interface %s: %s", name, strerror(e));
    }
}

int tap_open(struct tap *t, const char *name, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    if (!name || !*name || strlen(name) >= IF_NAMESIZE) {
        snprintf(err, errlen, "TAP interface name '%s': give 1 to %d characters", name ? name : "",
                 IF_NAMESIZE - 1);
        return -EINVAL;
    }
    int fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO)
            snprintf(err, errlen,
                     "%s is missing: load the tun module (modprobe tun) or, in a container, "
                     "create the node (mknod %s c 10 200)",
                     TUN_PATH, TUN_PATH);
        else
            snprintf(err, errlen, "cannot open %s: %s; this user must be able to read and write it",
                     TUN_PATH, strerror(e));
        return -e;
    }
    bool existed = if_nametoindex(name) != 0;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name, strlen(name));
    /* No packet-information prefix: frames are a vnet header and Ethernet. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        attach_error(name, existed, e, err, errlen);
        return -e;
    }
    /* 12 bytes: the VERSION_1 header, num_buffers included (the kernel's
     * default is the legacy 10). The kernel writes the first 10 and leaves
     * num_buffers for us. */
    int hdr = TAP_VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "TAP interface %s: the kernel refuses %d-byte virtio-net headers: %s",
                 name, hdr, strerror(e));
        return -e;
    }
    for (size_t i = 0; i < sizeof(offload_probe) / sizeof(offload_probe[0]); i++) {
        if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)offload_probe[i]) == 0) {
            t->offloads = offload_probe[i];
            break;
        }
    }
    /* Nothing until the guest accepts offloads: until then the kernel must
     * hand us complete, checksummed frames. */
    if (ioctl(fd, TUNSETOFFLOAD, 0ul) < 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "TAP interface %s: cannot turn offloads off: %s", name, strerror(e));
        return -e;
    }
    t->fd = fd;
    t->created = !existed;
    memcpy(t->name, ifr.ifr_name, IF_NAMESIZE - 1);
    return 0;
}

int tap_set_offloads(struct tap *t, unsigned offloads)
{
    if (t->fd < 0 || (offloads & ~t->offloads))
        return -EINVAL;
    return ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

void tap_close(struct tap *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

int tap_probe(void)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}
