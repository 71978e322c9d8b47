/* config.c - configuration defaults, parsing helpers and validation. */
#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
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

void config_release(struct vm_config *c)
{
    free(c->kernel_path);
    free(c->initrd_path);
    free(c->cmdline);
    free(c->hv_device);
    c->kernel_path = c->initrd_path = c->cmdline = c->hv_device = NULL;
    for (unsigned i = 0; i < c->ndisks && i < CONFIG_MAX_DISKS; i++) {
        free(c->disks[i].path);
        free(c->disks[i].id);
        c->disks[i].path = c->disks[i].id = NULL;
    }
    c->ndisks = 0;
    free(c->affinity);
    c->affinity = NULL;
    c->naffinity = 0;
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
        if (!d->path || stat(d->path, &st) < 0) {
            int e = d->path ? errno : EINVAL;
            snprintf(err, errlen, "disk '%s': %s", d->path ? d->path : "", strerror(e));
            return -e;
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            snprintf(err, errlen, "disk '%s': not a regular file or block device", d->path);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++) {
            if (d->id && c->disks[j].id && !strcmp(d->id, c->disks[j].id)) {
                snprintf(err, errlen, "disk id '%s' is used twice", d->id);
                return -EINVAL;
            }
        }
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
