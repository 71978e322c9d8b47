/* netuser.h - user-mode networking without root: the VMM side.
 *
 * The TCP/IP stack (libslirp) runs in a separate, dynamically linked helper
 * process, arcvm-net-user (src/netuser/): the arcvm CLI is a static PIE and
 * Debian has no static libslirp, and slirp parses everything the guest sends,
 * so it is better kept out of the VMM's address space. This side finds and
 * starts the helper, waits for its handshake (so a host port that cannot be
 * forwarded is an error at VM start), and hands the device a non-blocking
 * SOCK_SEQPACKET fd carrying one Ethernet frame per message, without
 * virtio-net headers (see src/netuser/protocol.h).
 *
 * The helper is found, in this order, at $ARCVM_NET_USER_HELPER, next to
 * the running executable (/proc/self/exe), then on $PATH. It runs in its own
 * process group (terminal signals are arcvm's to handle), exits when the
 * socket closes, and asks the kernel to kill it when the thread that
 * started it exits (PR_SET_PDEATHSIG).
 */
#ifndef ARCVM_HOST_NETUSER_H
#define ARCVM_HOST_NETUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One user-mode port forward: host [addr]:port -> guest port. */
struct net_hostfwd {
    bool udp;
    uint32_t host_addr;   /* IPv4, host byte order; 0: 127.0.0.1 */
    uint16_t host_port;
    uint16_t guest_port;
};

struct netuser {
    int fd;     /* frames; -1 when stopped */
    pid_t pid;  /* the helper; 0 once reaped */
    int status; /* its wait status once reaped */
};

/* Start the helper with @nfwd host port forwards (host address 0 means
 * 127.0.0.1; the guest side is the DHCP address 10.0.2.15). Returns 0 with
 * n->fd non-blocking and close-on-exec, or -errno with one sentence for the
 * user in @err (helper missing, port in use, ...); nothing is left running. */
int netuser_start(struct netuser *n, const struct net_hostfwd *fwd, unsigned nfwd, char *err,
                  size_t errlen);

/* Reap the helper if it has exited, without waiting. True once it is gone
 * (n->status then holds its wait status). */
bool netuser_reap(struct netuser *n);

/* Close the socket, which ends the helper, and reap it (SIGKILL after
 * 500 ms). Safe on a stopped or failed netuser, and twice. */
void netuser_stop(struct netuser *n);

/* Find the helper program as netuser_start() would: 0 with its path in
 * @out, or -ENOENT with a sentence saying where it was looked for. */
int netuser_find_helper(char *out, size_t len, char *err, size_t errlen);

#endif
