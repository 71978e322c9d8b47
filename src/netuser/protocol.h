/* protocol.h - how arcvm and its user-mode network helper talk.
 *
 * arcvm (src/host/netuser.c) starts the helper (src/netuser/main.c) as
 *
 *   arcvm-net-user --fd 3 --parent PID [--hostfwd PROTO:HOSTADDR:HOSTPORT:GUESTPORT]...
 *
 * with fd 3 one end of a socketpair(AF_UNIX, SOCK_SEQPACKET). The helper
 * sets itself up (libslirp, host port forwards), then sends exactly one
 * handshake message, NETUSER_HELLO_OK or NETUSER_HELLO_ERR followed by one
 * sentence for the user, and exits after an error. After OK every message in
 * either direction is one Ethernet frame (no virtio-net header, no FCS). The
 * helper exits when the socket closes.
 */
#ifndef ARCVM_NETUSER_PROTOCOL_H
#define ARCVM_NETUSER_PROTOCOL_H

#define NETUSER_HELPER_NAME "arcvm-net-user"
/* Environment variable naming the helper explicitly (tests, packagers). */
#define NETUSER_HELPER_ENV "ARCVM_NET_USER_HELPER"
/* The fd number the socket has in the helper. */
#define NETUSER_FD 3

#define NETUSER_HELLO_OK "ARCVM-NET-USER/1 OK"
#define NETUSER_HELLO_ERR "ARCVM-NET-USER/1 ERR "
/* Longest handshake message. */
#define NETUSER_HELLO_MAX 512

/* The network the helper emulates: QEMU's user-mode defaults, which guest
 * images and users already know. */
#define NETUSER_NET "10.0.2.0"
#define NETUSER_MASK "255.255.255.0"
#define NETUSER_HOST "10.0.2.2"  /* gateway; the host's loopback from the guest */
#define NETUSER_DNS "10.0.2.3"   /* forwards to the host's resolver */
#define NETUSER_GUEST "10.0.2.15" /* the first (only) DHCP lease */

/* Largest frame either side accepts: 64 KiB plus an Ethernet header and a
 * VLAN tag (the guest may send that much; slirp itself uses 1514). */
#define NETUSER_FRAME_MAX (65536 + 14 + 4)

#endif
