/* fuzz_config.c - libFuzzer target for the CLI's option parsers
 * (vmm/config.c: --disk, --net, --vsock, --balloon, sizes, CPU lists,
 * numbers) and the VM configuration section of a snapshot state file
 * (vmm/config_state.c: config_load()).
 *
 * Input: a selector byte, then the option string (the bytes up to the first
 * NUL, in a block of their own so ASan sees a read past the terminator) or
 * the snapshot section. Properties: a refusal comes with a message and
 * leaves nothing allocated (LeakSanitizer), an accepted spec has the shape
 * its consumers rely on (a disk path without ',', ids within their limits,
 * hostfwd counts within the array, a CID >= 3, a balloon target in MiB).
 *
 * Run: FUZZ_TARGETS=fuzz_config tests/fuzz/run.sh
 */
#include "fuzz_check.h"

#include "base/snap.h"
#include "vmm/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void disk(const char *s)
{
    struct disk_config d;
    char err[256] = "";
    if (config_parse_disk(s, &d, err, sizeof(err)) < 0) {
        CHECK(err[0] && !d.path && !d.id);
        return;
    }
    CHECK(d.path && *d.path && !strchr(d.path, ','));
    CHECK(!d.id || (strlen(d.id) <= CONFIG_DISK_ID_MAX && !strchr(d.id, ',')));
    free(d.path);
    free(d.id);
}

static void net(const char *s)
{
    struct net_config n;
    char err[256] = "";
    if (config_parse_net(s, &n, err, sizeof(err)) < 0) {
        CHECK(err[0] && !n.tap && !n.id);
        return;
    }
    CHECK(n.backend == NET_USER || (n.tap && strlen(n.tap) < 16));
    CHECK(n.nhostfwd <= CONFIG_MAX_HOSTFWD);
    for (unsigned i = 0; i < n.nhostfwd; i++)
        CHECK(n.hostfwd[i].host_port && n.hostfwd[i].guest_port);
    if (n.mac_set)
        CHECK(!(n.mac[0] & 1));
    config_release_net(&n);
}

static void vsock(const char *s)
{
    struct vsock_config v;
    char err[256] = "";
    if (config_parse_vsock(s, &v, err, sizeof(err)) < 0) {
        CHECK(err[0] && !v.uds_path);
        return;
    }
    CHECK(v.enabled && v.cid >= 3 && v.cid != 0xffffffffu && v.uds_path && *v.uds_path);
    free(v.uds_path);
}

static void balloon(const char *s)
{
    struct balloon_config b;
    char err[256] = "";
    if (config_parse_balloon(s, &b, err, sizeof(err)) < 0) {
        CHECK(err[0]);
        return;
    }
    CHECK(b.enabled);
}

static void numbers(const char *s)
{
    uint64_t bytes;
    int r = config_parse_size(s, &bytes);
    CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
    unsigned u;
    r = config_parse_uint(s, &u);
    CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
    cpu_set_t set;
    r = config_parse_cpulist(s, &set);
    CHECK(r == 0 || r == -EINVAL);
    if (r == 0)
        CHECK(CPU_COUNT(&set) > 0);
}

/* The machine section of a state file: refused or a configuration that can
 * be copied and released. */
static void state_section(const uint8_t *p, size_t n)
{
    struct vm_config c, copy;
    config_init(&c);
    struct snap_r r = {.p = p, .left = n};
    if (config_load(&c, &r) == 0) {
        CHECK(c.ndisks <= CONFIG_MAX_DISKS && c.nnets <= CONFIG_MAX_NETS);
        config_init(&copy);
        if (config_copy(&copy, &c) == 0)
            config_release(&copy);
    }
    config_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0] % 6;
    data++, size--;
    if (sel == 5) {
        state_section(data, size);
        return 0;
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    char *s = malloc(n + 1);
    CHECK(s);
    memcpy(s, data, n);
    s[n] = 0;
    switch (sel) {
    case 0:
        disk(s);
        break;
    case 1:
        net(s);
        break;
    case 2:
        vsock(s);
        break;
    case 3:
        balloon(s);
        break;
    case 4:
        numbers(s);
        break;
    }
    free(s);
    return 0;
}
