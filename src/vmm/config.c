/* config.c - configuration defaults, parsing helpers and validation. */
#include "vmm/config.h"
#include "vmm/config_opts.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

void config_init(struct vm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->vcpus = 1;
    c->mem_bytes = CONFIG_MEM_DEFAULT;
    c->console = CONSOLE_SERIAL;
    c->console_in = -1;
    c->console_out = -1;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = true;
    return d;
}

int config_copy(struct vm_config *dst, const struct vm_config *src)
{
    bool oom = false;
    *dst = *src;
    dst->kernel_path = dup_or_null(src->kernel_path, &oom);
    dst->initrd_path = dup_or_null(src->initrd_path, &oom);
    dst->cmdline = dup_or_null(src->cmdline, &oom);
    dst->hv_device = dup_or_null(src->hv_device, &oom);
    dst->kernel_cache = dup_or_null(src->kernel_cache, &oom);
    dst->seccomp_file = dup_or_null(src->seccomp_file, &oom);
    for (unsigned i = 0; i < src->ndisks && i < CONFIG_MAX_DISKS; i++) {
        dst->disks[i].path = dup_or_null(src->disks[i].path, &oom);
        dst->disks[i].id = dup_or_null(src->disks[i].id, &oom);
    }
    for (unsigned i = 0; i < src->nnets && i < CONFIG_MAX_NETS; i++) {
        dst->nets[i].tap = dup_or_null(src->nets[i].tap, &oom);
        dst->nets[i].id = dup_or_null(src->nets[i].id, &oom);
    }
    dst->vsock.uds_path = dup_or_null(src->vsock.uds_path, &oom);
    for (unsigned i = 0; i < src->nshares && i < CONFIG_MAX_SHARES; i++) {
        dst->shares[i].dir = dup_or_null(src->shares[i].dir, &oom);
        dst->shares[i].tag = dup_or_null(src->shares[i].tag, &oom);
    }
    for (unsigned i = 0; i < src->npmems && i < CONFIG_MAX_PMEMS; i++)
        if (!config_copy_pmem(&dst->pmems[i], &src->pmems[i]))
            oom = true;
    dst->cpu_template = NULL;
    if (src->cpu_template && (dst->cpu_template = malloc(sizeof(*src->cpu_template))))
        memcpy(dst->cpu_template, src->cpu_template, sizeof(*src->cpu_template));
    else if (src->cpu_template)
        oom = true;
    dst->affinity = NULL;
    dst->naffinity = 0;
    if (src->naffinity) {
        dst->affinity = malloc(src->naffinity * sizeof(cpu_set_t));
        if (dst->affinity) {
            memcpy(dst->affinity, src->affinity, src->naffinity * sizeof(cpu_set_t));
            dst->naffinity = src->naffinity;
        } else {
            oom = true;
        }
    }
    if (oom) {
        config_release(dst);
        return -ENOMEM;
    }
    return 0;
}

void config_release(struct vm_config *c)
{
    free(c->kernel_path);
    free(c->initrd_path);
    free(c->cmdline);
    free(c->hv_device);
    free(c->kernel_cache);
    free(c->seccomp_file);
    c->kernel_path = c->initrd_path = c->cmdline = c->hv_device = c->kernel_cache = NULL;
    c->seccomp_file = NULL;
    for (unsigned i = 0; i < c->ndisks && i < CONFIG_MAX_DISKS; i++) {
        free(c->disks[i].path);
        free(c->disks[i].id);
        c->disks[i].path = c->disks[i].id = NULL;
    }
    c->ndisks = 0;
    free(c->affinity);
    c->affinity = NULL;
    c->naffinity = 0;
    free(c->cpu_template);
    c->cpu_template = NULL;
    for (unsigned i = 0; i < c->nnets && i < CONFIG_MAX_NETS; i++)
        config_release_net(&c->nets[i]);
    c->nnets = 0;
    free(c->vsock.uds_path);
    c->vsock.uds_path = NULL;
    for (unsigned i = 0; i < c->nshares && i < CONFIG_MAX_SHARES; i++) {
        free(c->shares[i].dir);
        free(c->shares[i].tag);
        c->shares[i].dir = c->shares[i].tag = NULL;
    }
    c->nshares = 0;
    for (unsigned i = 0; i < c->npmems && i < CONFIG_MAX_PMEMS; i++)
        config_release_pmem(&c->pmems[i]);
    c->npmems = 0;
}

void config_release_net(struct net_config *n)
{
    free(n->tap);
    free(n->id);
    n->tap = n->id = NULL;
}

int config_parse_disk(const char *s, struct disk_config *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    const char *comma = strchr(s, ',');
    size_t plen = comma ? (size_t)(comma - s) : strlen(s);
    if (plen == 0) {
        snprintf(err, errlen, "--disk '%s': give the image path first: PATH[,ro][,id=NAME]", s);
        return -EINVAL;
    }
    d->path = strndup(s, plen);
    if (!d->path)
        goto oom;
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t olen = comma ? (size_t)(comma - opt) : strlen(opt);
        if (olen == 2 && !strncmp(opt, "ro", 2)) {
            d->readonly = true;
        } else if (olen == 2 && !strncmp(opt, "rw", 2)) {
            d->readonly = false;
        } else if (olen > 3 && !strncmp(opt, "id=", 3)) {
            size_t ilen = olen - 3;
            if (ilen > CONFIG_DISK_ID_MAX) {
                snprintf(err, errlen, "--disk '%s': id is longer than %d characters", s,
                         CONFIG_DISK_ID_MAX);
                goto fail;
            }
            for (size_t i = 0; i < ilen; i++) {
                char ch = opt[3 + i];
                if (ch < 0x21 || ch > 0x7e) {
                    snprintf(err, errlen, "--disk '%s': id must be printable ASCII", s);
                    goto fail;
                }
            }
            free(d->id);
            d->id = strndup(opt + 3, ilen);
            if (!d->id)
                goto oom;
        } else {
            snprintf(err, errlen, "--disk '%s': unknown option '%.*s' (use ro, rw or id=NAME)", s,
                     (int)olen, opt);
            goto fail;
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    free(d->path);
    free(d->id);
    d->path = d->id = NULL;
    return -EINVAL;
}

int config_parse_share(const char *s, struct fs_config *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    size_t len = strlen(s);
    /* Options from the end, so that a directory may contain commas. */
    for (;;) {
        if (len >= 3 && !strncmp(s + len - 3, ",ro", 3))
            f->readonly = true;
        else if (!(len >= 3 && !strncmp(s + len - 3, ",rw", 3)))
            break;
        len -= 3;
    }
    const char *colon = memrchr(s, ':', len);
    size_t dlen = colon ? (size_t)(colon - s) : 0, tlen = colon ? len - dlen - 1 : 0;
    if (!colon || dlen == 0 || tlen == 0) {
        snprintf(err, errlen, "--share '%s': give HOSTDIR:TAG[,ro]", s);
        return -EINVAL;
    }
    if (tlen > VIRTIO_FS_TAG_MAX) {
        snprintf(err, errlen, "--share '%s': the tag is longer than %d bytes", s,
                 VIRTIO_FS_TAG_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < tlen; i++) {
        char ch = colon[1 + i];
        if (ch < 0x21 || ch > 0x7e || ch == ',') {
            snprintf(err, errlen, "--share '%s': the tag must be printable ASCII without ',' "
                     "(options are ro and rw)", s);
            return -EINVAL;
        }
    }
    f->dir = strndup(s, dlen);
    f->tag = strndup(colon + 1, tlen);
    if (!f->dir || !f->tag) {
        free(f->dir);
        free(f->tag);
        f->dir = f->tag = NULL;
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int config_parse_cpulist(const char *s, cpu_set_t *set)
{
    CPU_ZERO(set);
    if (!s || !*s)
        return -EINVAL;
    const char *p = s;
    for (;;) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        if (*end == '-') {
            if (!isdigit((unsigned char)end[1]))
                return -EINVAL;
            hi = strtoul(end + 1, &end, 10);
        }
        if (lo > hi || hi >= CPU_SETSIZE)
            return -EINVAL;
        for (unsigned long c = lo; c <= hi; c++)
            CPU_SET(c, set);
        if (*end == 0)
            return 0;
        if (*end != ',')
            return -EINVAL;
        p = end + 1;
    }
}

int config_set_affinity(struct vm_config *c, unsigned vcpu, const cpu_set_t *set)
{
    unsigned need = vcpu == CONFIG_ALL_VCPUS ? CONFIG_MAX_AFFINITY : vcpu + 1;
    if (vcpu != CONFIG_ALL_VCPUS && vcpu >= CONFIG_MAX_AFFINITY)
        return -EINVAL;
    if (need > c->naffinity) {
        cpu_set_t *n = realloc(c->affinity, need * sizeof(*n));
        if (!n)
            return -ENOMEM;
        for (unsigned i = c->naffinity; i < need; i++)
            CPU_ZERO(&n[i]);
        c->affinity = n;
        c->naffinity = need;
    }
    if (vcpu == CONFIG_ALL_VCPUS) {
        for (unsigned i = 0; i < c->naffinity; i++)
            c->affinity[i] = *set;
    } else {
        c->affinity[vcpu] = *set;
    }
    return 0;
}

int config_each_opt(const char *s, config_opt_fn fn, void *ctx, char *err, size_t errlen)
{
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int r = fn(ctx, p, len, err, errlen);
        if (r < 0)
            return r;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

bool config_opt_is(const char *opt, size_t len, const char *name)
{
    return strlen(name) == len && !strncmp(opt, name, len);
}

const char *config_opt_value(const char *opt, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncmp(opt, name, n) || opt[n] != '=')
        return NULL;
    *vlen = len - n - 1;
    return opt + n + 1;
}

static int parse_mac(const char *v, size_t len, uint8_t mac[6])
{
    unsigned b[6];
    char tmp[18];
    if (len != 17)
        return -EINVAL;
    memcpy(tmp, v, 17);
    tmp[17] = 0;
    int n = 0;
    if (sscanf(tmp, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n) !=
            6 ||
        n != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    /* A multicast address (low bit of the first byte) cannot be a NIC's. */
    return (mac[0] & 1) ? -EINVAL : 0;
}

/* "tcp::8080-:80", "udp::53-:53", "tcp:127.0.0.1:8080-:80" */
static int parse_hostfwd(const char *v, size_t len, struct net_hostfwd *f)
{
    char tmp[64], addr[32] = "";
    unsigned hp, gp;
    if (len >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, v, len);
    tmp[len] = 0;
    memset(f, 0, sizeof(*f));
    char *p = tmp;
    if (!strncmp(p, "tcp:", 4)) {
        p += 4;
    } else if (!strncmp(p, "udp:", 4)) {
        f->udp = true;
        p += 4;
    } else {
        return -EINVAL;
    }
    char *colon = strchr(p, ':');
    if (!colon || (size_t)(colon - p) >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, p, (size_t)(colon - p));
    addr[colon - p] = 0;
    int n = 0;
    if (sscanf(colon + 1, "%u-:%u%n", &hp, &gp, &n) != 2 || colon[1 + n] != 0 || !hp || !gp ||
        hp > 65535 || gp > 65535)
        return -EINVAL;
    if (*addr) {
        unsigned a, b, c, d;
        int m = 0;
        if (sscanf(addr, "%u.%u.%u.%u%n", &a, &b, &c, &d, &m) != 4 || addr[m] || a > 255 ||
            b > 255 || c > 255 || d > 255)
            return -EINVAL;
        f->host_addr = a << 24 | b << 16 | c << 8 | d;
    }
    f->host_port = (uint16_t)hp;
    f->guest_port = (uint16_t)gp;
    return 0;
}

static int net_opt(void *ctx, const char *opt, size_t len, char *err, size_t errlen)
{
    struct net_config *n = ctx;
    size_t vlen;
    const char *v;
    if ((v = config_opt_value(opt, len, "mac", &vlen))) {
        if (parse_mac(v, vlen, n->mac) < 0) {
            snprintf(err, errlen, "mac '%.*s': give a unicast address like 06:00:ac:10:00:02",
                     (int)vlen, v);
            return -EINVAL;
        }
        n->mac_set = true;
    } else if ((v = config_opt_value(opt, len, "hostfwd", &vlen))) {
        if (n->backend != NET_USER) {
            snprintf(err, errlen, "hostfwd is for user-mode networking (--net user,...)");
            return -EINVAL;
        }
        if (n->nhostfwd == CONFIG_MAX_HOSTFWD) {
            snprintf(err, errlen, "at most %d hostfwd rules", CONFIG_MAX_HOSTFWD);
            return -EINVAL;
        }
        if (parse_hostfwd(v, vlen, &n->hostfwd[n->nhostfwd]) < 0) {
            snprintf(err, errlen,
                     "hostfwd '%.*s': give tcp::HOSTPORT-:GUESTPORT (or udp:, or tcp:ADDR:...)",
                     (int)vlen, v);
            return -EINVAL;
        }
        n->nhostfwd++;
    } else if ((v = config_opt_value(opt, len, "id", &vlen))) {
        free(n->id);
        n->id = strndup(v, vlen);
    } else {
        snprintf(err, errlen, "unknown option '%.*s' (use mac=, hostfwd= or id=)", (int)len, opt);
        return -EINVAL;
    }
    return 0;
}

int config_parse_net(const char *s, struct net_config *n, char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    char e[256] = "";
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    size_t vlen;
    const char *v;
    int r = 0;
    if (config_opt_is(s, len, "user")) {
        n->backend = NET_USER;
    } else if ((v = config_opt_value(s, len, "tap", &vlen)) && vlen < 16) { /* IFNAMSIZ */
        n->backend = NET_TAP;
        n->tap = strndup(v, vlen);
    } else {
        snprintf(err, errlen, "--net '%s': start with tap=NAME or user", s);
        return -EINVAL;
    }
    if (comma)
        r = config_each_opt(comma + 1, net_opt, n, e, sizeof(e));
    if (r < 0) {
        snprintf(err, errlen, "--net '%s': %s", s, e);
        config_release_net(n);
        return r;
    }
    return 0;
}

static int vsock_opt(void *ctx, const char *opt, size_t len, char *err, size_t errlen)
{
    struct vsock_config *v = ctx;
    size_t vlen;
    const char *val;
    if ((val = config_opt_value(opt, len, "cid", &vlen))) {
        char tmp[16];
        unsigned cid;
        if (vlen >= sizeof(tmp))
            goto bad;
        memcpy(tmp, val, vlen);
        tmp[vlen] = 0;
        /* 0-2 are reserved (hypervisor, local, host); -1 is "any". */
        if (config_parse_uint(tmp, &cid) < 0 || cid < 3 || cid == 0xffffffffu)
            goto bad;
        v->cid = cid;
    } else if ((val = config_opt_value(opt, len, "uds", &vlen))) {
        free(v->uds_path);
        v->uds_path = strndup(val, vlen);
    } else {
        snprintf(err, errlen, "unknown option '%.*s' (use cid=N,uds=PATH)", (int)len, opt);
        return -EINVAL;
    }
    return 0;
bad:
    snprintf(err, errlen, "cid '%.*s': give a number from 3 to 4294967294", (int)len, opt);
    return -EINVAL;
}

int config_parse_vsock(const char *s, struct vsock_config *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof(*v));
    char e[256] = "";
    int r = config_each_opt(s, vsock_opt, v, e, sizeof(e));
    if (r == 0 && (!v->cid || !v->uds_path || !*v->uds_path)) {
        snprintf(e, sizeof(e), "both cid=N and uds=PATH are needed");
        r = -EINVAL;
    }
    if (r < 0) {
        snprintf(err, errlen, "--vsock '%s': %s", s, e);
        free(v->uds_path);
        v->uds_path = NULL;
        return r;
    }
    v->enabled = true;
    return 0;
}

static int balloon_opt(void *ctx, const char *opt, size_t len, char *err, size_t errlen)
{
    struct balloon_config *b = ctx;
    size_t vlen;
    const char *v;
    if (config_opt_is(opt, len, "deflate-on-oom")) {
        b->deflate_on_oom = true;
    } else if (config_opt_is(opt, len, "free-page-reporting")) {
        b->free_page_reporting = true;
    } else if (config_opt_is(opt, len, "free-page-hinting")) {
        b->free_page_hinting = true;
    } else if ((v = config_opt_value(opt, len, "stats", &vlen))) {
        char tmp[16];
        unsigned secs;
        if (vlen >= sizeof(tmp))
            goto bad;
        memcpy(tmp, v, vlen);
        tmp[vlen] = 0;
        if (config_parse_uint(tmp, &secs) < 0)
            goto bad;
        b->stats_interval_s = secs;
    } else {
        snprintf(err, errlen,
                 "unknown option '%.*s' (use deflate-on-oom, stats=SECONDS, free-page-reporting, "
                 "free-page-hinting)",
                 (int)len, opt);
        return -EINVAL;
    }
    return 0;
bad:
    snprintf(err, errlen, "'%.*s': stats= takes a number of seconds", (int)len, opt);
    return -EINVAL;
}

int config_parse_balloon(const char *s, struct balloon_config *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    char size[32], e[256] = "";
    uint64_t bytes;
    if (len >= sizeof(size)) {
        snprintf(err, errlen, "--balloon '%s': give a size first, e.g. 256M", s);
        return -EINVAL;
    }
    memcpy(size, s, len);
    size[len] = 0;
    if (config_parse_size(size, &bytes) < 0 || bytes % (1ull << 20) || (bytes >> 20) > 0xffffffffu) {
        snprintf(err, errlen, "--balloon '%s': give a size in whole MiB first, e.g. 256M", s);
        return -EINVAL;
    }
    b->target_mib = (uint32_t)(bytes >> 20);
    if (comma && config_each_opt(comma + 1, balloon_opt, b, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "--balloon '%s': %s", s, e);
        return -EINVAL;
    }
    b->enabled = true;
    return 0;
}

int config_parse_uint(const char *s, unsigned *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE || v > 0xffffffffull)
        return -ERANGE;
    *out = (unsigned)v;
    return 0;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    unsigned shift = 20; /* bare number: MiB */
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'B': shift = 0; break;
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        case 'T': shift = 40; break;
        default: return -EINVAL;
        }
        end++;
        if (shift && (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib") ||
                      !strcmp(end, "b")))
            end += strlen(end);
        if (*end)
            return -EINVAL;
    }
    if (v > (UINT64_MAX >> shift))
        return -ERANGE;
    *bytes = (uint64_t)v << shift;
    return 0;
}

static int check_file(const char *what, const char *path, char *err, size_t errlen)
{
    struct stat st;
    /* Open rather than access(): it checks what we will actually do. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(e));
        return -e;
    }
    int r = fstat(fd, &st);
    close(fd);
    if (r < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s '%s': not a regular file", what, path);
        return -EINVAL;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "%s '%s': file is empty", what, path);
        return -EINVAL;
    }
    return 0;
}

/* stat(2) a host path the user named as @what: "@what 'path': reason". */
static int stat_input(const char *what, const char *path, struct stat *st, char *err,
                      size_t errlen)
{
    if (path && stat(path, st) == 0)
        return 0;
    int e = path ? errno : EINVAL;
    snprintf(err, errlen, "%s '%s': %s", what, path ? path : "", strerror(e));
    return -e;
}

static int fail_einval(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_einval(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int config_validate(const struct vm_config *c, unsigned max_vcpus, uint64_t host_mem, char *err,
                    size_t errlen)
{
    if (!c->kernel_path || !*c->kernel_path) {
        snprintf(err, errlen, "no kernel given: pass --kernel PATH (a bzImage or a PVH vmlinux)");
        return -EINVAL;
    }
    int r = check_file("kernel", c->kernel_path, err, errlen);
    if (r < 0)
        return r;
    if (c->initrd_path) {
        r = check_file("initrd", c->initrd_path, err, errlen);
        if (r < 0)
            return r;
    }
    if (c->vcpus < 1 || (max_vcpus && c->vcpus > max_vcpus)) {
        snprintf(err, errlen, "%u vCPUs: choose between 1 and %u (the hypervisor's limit)",
                 c->vcpus, max_vcpus);
        return -EINVAL;
    }
    if (c->mem_bytes < CONFIG_MEM_MIN) {
        snprintf(err, errlen, "memory %llu MiB is too small: give at least %llu MiB",
                 (unsigned long long)(c->mem_bytes >> 20),
                 (unsigned long long)(CONFIG_MEM_MIN >> 20));
        return -EINVAL;
    }
    if (c->mem_bytes & ((1ull << 20) - 1)) {
        snprintf(err, errlen, "memory must be a whole number of MiB");
        return -EINVAL;
    }
    if (c->mem_pages != GUEST_MEM_4K && c->mem_bytes & (GUEST_MEM_HUGE_SIZE - 1)) {
        snprintf(err, errlen, "memory %llu MiB is not a multiple of 2 MiB, which huge pages (%s) need",
                 (unsigned long long)(c->mem_bytes >> 20), config_mem_pages_name(c->mem_pages));
        return -EINVAL;
    }
    if (host_mem && c->mem_bytes > host_mem) {
        snprintf(err, errlen, "memory %llu MiB is more than this host has (%llu MiB)",
                 (unsigned long long)(c->mem_bytes >> 20), (unsigned long long)(host_mem >> 20));
        return -ENOMEM;
    }
    if (c->cmdline && strlen(c->cmdline) >= CONFIG_CMDLINE_MAX / 2) {
        snprintf(err, errlen, "kernel command line is too long (limit %d bytes)",
                 CONFIG_CMDLINE_MAX / 2 - 1);
        return -E2BIG;
    }
    if (c->ndisks > CONFIG_MAX_DISKS) {
        snprintf(err, errlen, "too many disks: at most %d", CONFIG_MAX_DISKS);
        return -E2BIG;
    }
    for (unsigned i = 0; i < c->ndisks; i++) {
        const struct disk_config *d = &c->disks[i];
        /* Opened for real (with a lock) when the device is created; here
         * only what can be said without side effects. */
        struct stat st;
        r = stat_input("disk", d->path, &st, err, errlen);
        if (r < 0)
            return r;
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            snprintf(err, errlen, "disk '%s': not a regular file or block device", d->path);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++)
            if (d->id && c->disks[j].id && !strcmp(d->id, c->disks[j].id))
                return fail_einval(err, errlen, "disk id '%s' is used twice", d->id);
    }
    cpu_set_t allowed;
    if (c->naffinity && sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
        for (unsigned i = 0; i < c->naffinity && i < c->vcpus; i++) {
            if (!CPU_COUNT(&c->affinity[i]))
                continue;
            cpu_set_t both;
            CPU_AND(&both, &c->affinity[i], &allowed);
            if (!CPU_COUNT(&both)) {
                snprintf(err, errlen,
                         "vCPU %u's CPU affinity names no CPU this process may run on", i);
                return -EINVAL;
            }
        }
    }
    for (unsigned i = c->vcpus; i < c->naffinity && i < CONFIG_MAX_AFFINITY; i++) {
        /* Sets for vCPUs that do not exist: a typo, unless set for all. */
        if (CPU_COUNT(&c->affinity[i]) && c->naffinity != CONFIG_MAX_AFFINITY) {
            snprintf(err, errlen, "CPU affinity given for vCPU %u, but there are only %u vCPUs",
                     i, c->vcpus);
            return -EINVAL;
        }
    }
    if (c->nnets > CONFIG_MAX_NETS) {
        snprintf(err, errlen, "too many network interfaces: at most %d", CONFIG_MAX_NETS);
        return -E2BIG;
    }
    if (c->nshares > CONFIG_MAX_SHARES) {
        snprintf(err, errlen, "too many shared directories: at most %d", CONFIG_MAX_SHARES);
        return -E2BIG;
    }
    for (unsigned i = 0; i < c->nshares; i++) {
        const struct fs_config *f = &c->shares[i];
        struct stat st;
        r = stat_input("shared directory", f->dir, &st, err, errlen);
        if (r < 0)
            return r;
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "shared directory '%s' is not a directory", f->dir);
            return -ENOTDIR;
        }
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(f->tag, c->shares[j].tag))
                return fail_einval(err, errlen, "share tag '%s' is used twice", f->tag);
    }
    if ((r = config_validate_pmem(c, err, errlen)) < 0)
        return r;
    if (c->balloon.enabled && ((uint64_t)c->balloon.target_mib << 20) >= c->mem_bytes) {
        snprintf(err, errlen, "balloon of %u MiB would take all of the guest's %llu MiB",
                 c->balloon.target_mib, (unsigned long long)(c->mem_bytes >> 20));
        return -EINVAL;
    }
    if ((r = config_memhp_validate(c, err, errlen)) < 0)
        return r;
    if (c->console != CONSOLE_SERIAL && c->console != CONSOLE_VIRTIO &&
        c->console != CONSOLE_NONE) {
        snprintf(err, errlen, "unknown console mode");
        return -EINVAL;
    }
    return 0;
}

uint64_t config_host_memory(void)
{
    struct sysinfo si;
    if (sysinfo(&si) < 0)
        return 0;
    return (uint64_t)si.totalram * si.mem_unit;
}
