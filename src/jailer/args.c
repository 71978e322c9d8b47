/* args.c - arcvm-jailer's flags (Firecracker's jailer's set) and the pure
 * checks behind them. A small hand-written parser instead of getopt: it has
 * no global state, so tests can call it again and again. */
#include "jailer/args.h"

#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum jopt {
    J_ID,
    J_EXEC,
    J_UID,
    J_GID,
    J_BASE,
    J_NETNS,
    J_DAEMON,
    J_PIDNS,
    J_CGROUP,
    J_CGVER,
    J_PARENT,
    J_RLIMIT,
    J_HELP,
    J_VERSION,
    J_COUNT
};

static const struct {
    const char *name;
    bool value;      /* takes a value */
    bool repeatable; /* may be given more than once */
} jopts[J_COUNT] = {
    [J_ID] = {"id", true, false},
    [J_EXEC] = {"exec-file", true, false},
    [J_UID] = {"uid", true, false},
    [J_GID] = {"gid", true, false},
    [J_BASE] = {"chroot-base-dir", true, false},
    [J_NETNS] = {"netns", true, false},
    [J_DAEMON] = {"daemonize", false, false},
    [J_PIDNS] = {"new-pid-ns", false, false},
    [J_CGROUP] = {"cgroup", true, true},
    [J_CGVER] = {"cgroup-version", true, false},
    [J_PARENT] = {"parent-cgroup", true, false},
    [J_RLIMIT] = {"resource-limit", true, true},
    [J_HELP] = {"help", false, false},
    [J_VERSION] = {"version", false, false},
};

int jailer_errf(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

bool jailer_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > JAILER_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-')
            return false;
    return true;
}

/* Strict decimal: digits only, no sign, no spaces, no overflow. */
static int parse_dec(const char *s, uint64_t *out)
{
    if (!*s)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

int jailer_parse_id_number(const char *s, uint32_t *out)
{
    uint64_t v;
    if (parse_dec(s, &v) < 0 || v >= UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int jailer_parse_cgroup(const char *s, struct jailer_cgroup *c, char *err, size_t errlen)
{
    const char *eq = strchr(s, '=');
    size_t n = eq ? (size_t)(eq - s) : 0;
    if (!eq || n == 0 || n >= sizeof(c->file))
        return jailer_errf(err, errlen, "--cgroup '%s': give FILE=VALUE, e.g. memory.max=536870912",
                           s);
    bool dot = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.')
            dot = i > 0 && i + 1 < n;
        else if (!islower((unsigned char)ch) && !isdigit((unsigned char)ch) && ch != '_')
            return jailer_errf(err, errlen,
                               "--cgroup '%s': the file name may only hold a-z, 0-9, "
                               "'_' and '.'",
                               s);
    }
    if (!dot || s[0] == '.')
        return jailer_errf(err, errlen, "--cgroup '%s': the file is controller.name, e.g. pids.max",
                           s);
    for (const char *v = eq + 1; *v; v++)
        if (*v == '\n')
            return jailer_errf(err, errlen, "--cgroup '%.*s': the value may not hold a newline",
                               (int)n, s);
    memcpy(c->file, s, n);
    c->file[n] = 0;
    c->value = eq + 1;
    return 0;
}

int jailer_parse_rlimit(const char *s, struct jailer_args *a, char *err, size_t errlen)
{
    const char *eq = strchr(s, '=');
    uint64_t v;
    if (!eq || parse_dec(eq + 1, &v) < 0)
        return jailer_errf(err, errlen,
                           "--resource-limit '%s': give RESOURCE=NUMBER, e.g. "
                           "no-file=1024",
                           s);
    size_t n = (size_t)(eq - s);
    if (n == 5 && !strncmp(s, "fsize", 5)) {
        a->fsize = v;
        a->have_fsize = true;
    } else if (n == 7 && !strncmp(s, "no-file", 7)) {
        a->nofile = v;
    } else {
        return jailer_errf(err, errlen, "--resource-limit '%s': the resource is fsize or no-file",
                           s);
    }
    return 0;
}

bool jailer_relpath_valid(const char *p)
{
    if (!*p || *p == '/')
        return false;
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)c[i]) && !strchr("._-", c[i]))
                return false;
        c += n;
        if (*c == '/' && !*++c)
            return false; /* trailing slash */
    }
    return true;
}

const char *jailer_exec_name(const char *path)
{
    const char *s = strrchr(path, '/');
    const char *name = s ? s + 1 : path;
    if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
        return NULL;
    return name;
}

int jailer_join3(char *out, size_t len, const char *a, const char *b, const char *c)
{
    size_t na = strlen(a);
    while (na > 1 && a[na - 1] == '/')
        na--;
    const char *sep = (na == 1 && a[0] == '/') ? "" : "/";
    int n = snprintf(out, len, "%.*s%s%s/%s", (int)na, a, sep, b, c);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int jailer_pathf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Copy a /proc/mounts field, decoding the kernel's \ooo escapes. */
static int unescape_field(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            ch = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        }
        if (o + 1 >= len)
            return -1;
        out[o++] = ch;
    }
    out[o] = 0;
    return 0;
}

int jailer_cgroup2_root(const char *mounts, char *out, size_t len)
{
    for (const char *line = mounts; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        /* device mountpoint fstype options ... */
        const char *f[3];
        size_t fl[3], k = 0, i = 0;
        while (k < 3 && i < ll) {
            while (i < ll && line[i] == ' ')
                i++;
            size_t st = i;
            while (i < ll && line[i] != ' ')
                i++;
            if (i > st) {
                f[k] = line + st;
                fl[k++] = i - st;
            }
        }
        if (k == 3 && fl[2] == 7 && !strncmp(f[2], "cgroup2", 7))
            return unescape_field(f[1], fl[1], out, len);
        line = end ? end + 1 : NULL;
    }
    return -1;
}

int jailer_own_cgroup(const char *text, char *out, size_t len)
{
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll >= 4 && !strncmp(line, "0::/", 4)) {
            if (ll - 3 >= len)
                return -1;
            memcpy(out, line + 3, ll - 3);
            out[ll - 3] = 0;
            return 0;
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

int jailer_elf_static(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    if (len < sizeof(Elf64_Ehdr) || memcmp(b, ELFMAG, SELFMAG) || b[EI_CLASS] != ELFCLASS64)
        return -1;
    Elf64_Ehdr eh;
    memcpy(&eh, b, sizeof(eh));
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
        (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return -1;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, b + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_INTERP)
            return 0;
    }
    return 1;
}

/* True if some component of @p is "..". */
static bool has_dotdot(const char *p)
{
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return true;
        c += n;
        c += strspn(c, "/");
    }
    return false;
}

/* Find "--name" or "--name=value" in the table. */
static int lookup(const char *arg, const char **inline_val)
{
    const char *name = arg + 2;
    size_t n = strcspn(name, "=");
    for (int i = 0; i < J_COUNT; i++)
        if (strlen(jopts[i].name) == n && !strncmp(name, jopts[i].name, n)) {
            *inline_val = name[n] == '=' ? name + n + 1 : NULL;
            return i;
        }
    return -1;
}

/* Store one flag's value. */
static int apply(struct jailer_args *a, int opt, const char *v, char *err, size_t errlen)
{
    uint32_t num;
    switch (opt) {
    case J_ID:
        if (!jailer_id_valid(v))
            return jailer_errf(err, errlen,
                               "--id '%s': give 1-%d characters, letters, digits and '-'", v,
                               JAILER_ID_MAX);
        a->id = v;
        return 0;
    case J_EXEC:
        if (!jailer_exec_name(v))
            return jailer_errf(err, errlen, "--exec-file '%s': give the path of a file", v);
        a->exec_file = v;
        return 0;
    case J_UID:
    case J_GID:
        if (jailer_parse_id_number(v, &num) < 0)
            return jailer_errf(err, errlen, "--%s '%s': give a number from 0 to 4294967294",
                               jopts[opt].name, v);
        if (opt == J_UID)
            a->uid = num;
        else
            a->gid = num;
        return 0;
    case J_BASE:
        if (v[0] != '/' || has_dotdot(v))
            return jailer_errf(err, errlen,
                               "--chroot-base-dir '%s': give an absolute path without '..'", v);
        a->chroot_base = v;
        return 0;
    case J_NETNS:
        if (!*v)
            return jailer_errf(err, errlen, "--netns: give the path of a network namespace");
        a->netns = v;
        return 0;
    case J_CGROUP:
        if (a->n_cgroups == JAILER_MAX_CGROUPS)
            return jailer_errf(err, errlen, "--cgroup: at most %d are accepted",
                               JAILER_MAX_CGROUPS);
        return jailer_parse_cgroup(v, &a->cgroups[a->n_cgroups++], err, errlen);
    case J_CGVER:
        if (strcmp(v, "1") && strcmp(v, "2"))
            return jailer_errf(err, errlen, "--cgroup-version '%s': give 1 or 2", v);
        a->cgroup_version = v[0] - '0';
        return 0;
    case J_PARENT:
        if (!jailer_relpath_valid(v))
            return jailer_errf(err, errlen,
                               "--parent-cgroup '%s': give a relative path of plain names", v);
        a->parent_cgroup = v;
        return 0;
    case J_RLIMIT:
        return jailer_parse_rlimit(v, a, err, errlen);
    case J_DAEMON:
        a->daemonize = true;
        return 0;
    case J_PIDNS:
        a->new_pid_ns = true;
        return 0;
    case J_HELP:
        a->help = true;
        return 0;
    default:
        a->version = true;
        return 0;
    }
}

/* The checks that need all flags. */
static int check_whole(const struct jailer_args *a, const bool *seen, char *err, size_t errlen)
{
    static const int required[] = {J_ID, J_EXEC, J_UID, J_GID};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (!seen[required[i]])
            return jailer_errf(err, errlen, "--%s is required", jopts[required[i]].name);
    if (a->cgroup_version == 1 && (a->n_cgroups || a->parent_cgroup))
        return jailer_errf(err, errlen,
                           "cgroup v1 is not supported: give --cgroup-version 2 "
                           "(a cgroup v2 hierarchy must be mounted)");
    return 0;
}

int jailer_parse(int argc, char **argv, struct jailer_args *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->chroot_base = JAILER_DEFAULT_BASE;
    a->cgroup_version = 1;
    a->nofile = JAILER_DEFAULT_NOFILE;
    bool seen[J_COUNT] = {false};
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--")) {
            i++;
            break;
        }
        const char *v = NULL;
        int opt = strncmp(arg, "--", 2) ? -1 : lookup(arg, &v);
        if (opt < 0)
            return jailer_errf(err, errlen,
                               "unknown argument '%s' (arguments for the exec file go "
                               "after '--')",
                               arg);
        if (seen[opt] && !jopts[opt].repeatable)
            return jailer_errf(err, errlen, "--%s was given more than once", jopts[opt].name);
        seen[opt] = true;
        if (!jopts[opt].value && v)
            return jailer_errf(err, errlen, "--%s takes no value", jopts[opt].name);
        if (jopts[opt].value && !v) {
            if (i + 1 >= argc)
                return jailer_errf(err, errlen, "--%s needs a value", jopts[opt].name);
            v = argv[++i];
        }
        if (apply(a, opt, v, err, errlen) < 0)
            return -1;
    }
    a->extra = argv + i;
    a->n_extra = argc - i;
    if (a->help || a->version)
        return 0;
    return check_whole(a, seen, err, errlen);
}
