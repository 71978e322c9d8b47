/* config_pmem.c - the virtio-pmem part of a VM's configuration: the
 * --pmem option, its checks, and the root device's command-line words. */
#include "vmm/config.h"
#include "vmm/config_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void config_release_pmem(struct pmem_config *p)
{
    free(p->path);
    free(p->id);
    memset(p, 0, sizeof(*p));
}

bool config_copy_pmem(struct pmem_config *dst, const struct pmem_config *src)
{
    dst->path = src->path ? strdup(src->path) : NULL;
    dst->id = src->id ? strdup(src->id) : NULL;
    return (!src->path || dst->path) && (!src->id || dst->id);
}

/* An id goes into messages and GET /vm/config: printable, no ','. */
static bool id_valid(const char *s, size_t len)
{
    if (len == 0 || len > CONFIG_PMEM_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return false;
    return true;
}

/* One option after the path; @ctx: the spec, @p in config_parse_pmem. */
struct pmem_spec {
    const char *s;
    struct pmem_config *p;
};

static int pmem_opt(void *ctx, const char *opt, size_t len, char *err, size_t errlen)
{
    struct pmem_spec *ps = ctx;
    struct pmem_config *p = ps->p;
    if (config_opt_is(opt, len, "ro")) {
        p->readonly = true;
    } else if (config_opt_is(opt, len, "rw")) {
        p->readonly = false;
    } else if (config_opt_is(opt, len, "root")) {
        p->root = true;
    } else if (len >= 3 && !strncmp(opt, "id=", 3)) {
        if (!id_valid(opt + 3, len - 3)) {
            snprintf(err, errlen, "--pmem '%s': the id must be 1 to %d printable characters",
                     ps->s, CONFIG_PMEM_ID_MAX);
            return -EINVAL;
        }
        free(p->id);
        if (!(p->id = strndup(opt + 3, len - 3))) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    } else {
        snprintf(err, errlen, "--pmem '%s': unknown option '%.*s' (use ro, rw, root or id=ID)",
                 ps->s, (int)len, opt);
        return -EINVAL;
    }
    return 0;
}

int config_parse_pmem(const char *s, struct pmem_config *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    const char *comma = strchr(s, ',');
    size_t plen = comma ? (size_t)(comma - s) : strlen(s);
    if (plen == 0) {
        snprintf(err, errlen, "--pmem '%s': give the file first: PATH[,ro][,root][,id=ID]", s);
        return -EINVAL;
    }
    struct pmem_spec ps = {s, p};
    if (!(p->path = strndup(s, plen)))
        snprintf(err, errlen, "out of memory");
    else if (!comma || config_each_opt(comma + 1, pmem_opt, &ps, err, errlen) == 0)
        return 0;
    config_release_pmem(p);
    return -EINVAL;
}

int config_validate_pmem(const struct vm_config *c, char *err, size_t errlen)
{
    if (c->npmems > CONFIG_MAX_PMEMS) {
        snprintf(err, errlen, "too many pmem devices: at most %d", CONFIG_MAX_PMEMS);
        return -E2BIG;
    }
    int root = -1;
    for (unsigned i = 0; i < c->npmems; i++) {
        const struct pmem_config *p = &c->pmems[i];
        struct stat st;
        if (!p->path || !*p->path) {
            snprintf(err, errlen, "pmem device %u has no file", i);
            return -EINVAL;
        }
        if (stat(p->path, &st) < 0) {
            int e = errno;
            snprintf(err, errlen, "pmem file '%s': %s", p->path, strerror(e));
            return -e;
        }
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "pmem file '%s' is not a regular file", p->path);
            return -EINVAL;
        }
        if (st.st_size == 0) {
            snprintf(err, errlen, "pmem file '%s' is empty", p->path);
            return -EINVAL;
        }
        if (rate_limiter_config_check(&p->rl) < 0) {
            snprintf(err, errlen, "pmem '%s': a rate limiter bucket with a size needs a "
                     "refill_time", p->path);
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++)
            if (p->id && c->pmems[j].id && !strcmp(p->id, c->pmems[j].id)) {
                snprintf(err, errlen, "pmem id '%s' is used twice", p->id);
                return -EINVAL;
            }
        if (p->root && root >= 0) {
            snprintf(err, errlen, "two pmem root devices: '%s' and '%s'", c->pmems[root].path,
                     p->path);
            return -EINVAL;
        }
        if (p->root)
            root = (int)i;
    }
    return 0;
}

int config_pmem_root_cmdline(struct vm_config *c)
{
    for (unsigned i = 0; i < c->npmems; i++) {
        if (!c->pmems[i].root)
            continue;
        const char *old = c->cmdline ? c->cmdline : "";
        size_t n = strlen(old) + 40;
        char *s = malloc(n);
        if (!s)
            return -ENOMEM;
        snprintf(s, n, "%s%sroot=/dev/pmem%u %s", old, *old ? " " : "", i,
                 c->pmems[i].readonly ? "ro" : "rw");
        free(c->cmdline);
        c->cmdline = s;
        return 0;
    }
    return 0;
}
