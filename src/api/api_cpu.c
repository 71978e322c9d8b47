/* api_cpu.c - PUT /cpu-config: Firecracker's custom CPU templates (x86-64:
 * CPUID and MSR modifiers, KVM capabilities), parsed and checked as
 * Firecracker's schema describes them (docs/cpu_templates/), kept until
 * InstanceStart hands them to the library (arcvm_set_cpu_template()), and
 * shown by GET /vm/config in the same form. */
#include "api/api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The config file may name a template file instead of holding it. */
#define CPU_TEMPLATE_FILE_MAX (1u << 20)

static const char *const reg_names[4] = {"eax", "ebx", "ecx", "edx"};

struct api_cpu {
    unsigned ncpuid, nmsr, ncaps;
    struct arcvm_cpuid_modifier cpuid[ARCVM_CPU_TEMPLATE_MAX];
    uint8_t regs_given[ARCVM_CPU_TEMPLATE_MAX]; /* bit r: register r was named */
    struct arcvm_msr_modifier msr[ARCVM_CPU_TEMPLATE_MAX];
    struct api_cpu_cap {
        uint32_t cap;
        bool remove; /* "!N" */
    } caps[ARCVM_CPU_TEMPLATE_MAX];
};

/* ---- parsing ------------------------------------------------------------ */

/* A leaf, subleaf or address: a string with Firecracker's "0x" or "0b"
 * prefix, or (arcvm's leniency) a JSON integer; at most @max. */
static int parse_number(const json_t *v, uint64_t max, uint64_t *out, const char *where, char *err,
                        size_t errlen)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        (uint64_t)json_integer_value(v) <= max) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s) {
        snprintf(err, errlen, "%s must be a string such as \"0x1\"", where);
        return -EINVAL;
    }
    unsigned base = !strncmp(s, "0x", 2) ? 16 : !strncmp(s, "0b", 2) ? 2 : 0;
    if (!base) {
        snprintf(err, errlen,
                 "%s: no number system prefix in '%s': write hexadecimal numbers as 0x1f and "
                 "binary ones as 0b101",
                 where, s);
        return -EINVAL;
    }
    uint64_t n = 0;
    const char *p = s + 2;
    for (; *p; p++) {
        unsigned d = *p >= '0' && *p <= '9'   ? (unsigned)(*p - '0')
                     : *p >= 'a' && *p <= 'f' ? (unsigned)(*p - 'a' + 10)
                     : *p >= 'A' && *p <= 'F' ? (unsigned)(*p - 'A' + 10)
                                              : 16;
        if (d >= base || n > (max - d) / base)
            break;
        n = n * base + d;
    }
    if (*p || p == s + 2) {
        snprintf(err, errlen, "%s: '%s' is not a number of at most %" PRIu64 " (0x%" PRIx64 ")",
                 where, s, max, max);
        return -EINVAL;
    }
    *out = n;
    return 0;
}

/* A bitmap "0b01x..." of at most @bits characters besides '_', from the
 * lowest bit on the right; missing high bits are 'x'. */
static int parse_bitmap(const json_t *v, unsigned bits, uint64_t *mask, uint64_t *value,
                        const char *where, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    if (!s) {
        snprintf(err, errlen, "%s must be a string such as \"0bxxxx0001\"", where);
        return -EINVAL;
    }
    const char *p = strncmp(s, "0b", 2) ? s : s + 2;
    unsigned i = 0;
    *mask = *value = 0;
    for (size_t k = strlen(p); k-- > 0;) {
        char c = p[k];
        if (c == '_')
            continue;
        if (c != '0' && c != '1' && c != 'x') {
            snprintf(err, errlen, "%s: bitmap '%s' has '%c': use 0 (clear), 1 (set), x (keep) or _",
                     where, s, c);
            return -EINVAL;
        }
        if (i == bits) {
            snprintf(err, errlen, "%s: bitmap '%s' is too long: at most %u bits", where, s, bits);
            return -EINVAL;
        }
        if (c != 'x')
            *mask |= 1ull << i;
        if (c == '1')
            *value |= 1ull << i;
        i++;
    }
    return 0;
}

/* An array of at most ARCVM_CPU_TEMPLATE_MAX entries: 0, or -EINVAL. */
static int count_ok(const json_t *arr, const char *what, char *err, size_t errlen)
{
    if (json_array_size(arr) <= ARCVM_CPU_TEMPLATE_MAX)
        return 0;
    snprintf(err, errlen, "%s: at most %d entries", what, ARCVM_CPU_TEMPLATE_MAX);
    return -EINVAL;
}

/* Member @key of element @i of the array @arr names, a number (leaf,
 * subleaf, address: parse_number()). */
static int member_number(const json_t *e, const char *arr, size_t i, const char *key, uint64_t *out,
                         char *err, size_t errlen)
{
    char where[80];
    snprintf(where, sizeof(where), "%s[%zu].%s", arr, i, key);
    return parse_number(json_object_get(e, key), UINT32_MAX, out, where, err, errlen);
}

static const struct api_json_field reg_fields[] = {{"register", API_JSON_STRING, true, 0},
                                                   {"bitmap", API_JSON_STRING, true, 0}};

static int parse_registers(const json_t *mods, struct arcvm_cpuid_modifier *m, uint8_t *given,
                           const char *leaf_where, char *err, size_t errlen)
{
    size_t i;
    const json_t *e;
    json_array_foreach(mods, i, e)
    {
        char where[96];
        snprintf(where, sizeof(where), "%s.modifiers[%zu]", leaf_where, i);
        if (api_json_check(e, reg_fields, 2, false, where, err, errlen) < 0)
            return -EINVAL;
        int r = api_variant(api_json_str(e, "register"), reg_names, 4);
        if (r < 0) {
            snprintf(err, errlen, "%s: register '%s' is not one of eax, ebx, ecx, edx", where,
                     api_json_str(e, "register"));
            return -EINVAL;
        }
        if (*given & (1u << r)) {
            snprintf(err, errlen, "%s: register %s is modified twice in this leaf", where,
                     reg_names[r]);
            return -EINVAL;
        }
        *given |= (uint8_t)(1u << r);
        uint64_t mask, value;
        char bw[112];
        snprintf(bw, sizeof(bw), "%s.bitmap", where);
        if (parse_bitmap(json_object_get(e, "bitmap"), 32, &mask, &value, bw, err, errlen) < 0)
            return -EINVAL;
        m->mask[r] = (uint32_t)mask;
        m->value[r] = (uint32_t)value;
    }
    return 0;
}

static const struct api_json_field leaf_fields[] = {{"leaf", API_JSON_STRING, true, 0},
                                                    {"subleaf", API_JSON_STRING, true, 0},
                                                    {"flags", API_JSON_UINT, true, UINT32_MAX},
                                                    {"modifiers", API_JSON_ARRAY, true, 0}};

static int parse_cpuid(const json_t *arr, struct api_cpu *c, char *err, size_t errlen)
{
    /* Leaves may be integers too: check them against a copy that says so. */
    struct api_json_field f[4];
    memcpy(f, leaf_fields, sizeof(f));
    size_t i;
    const json_t *e;
    if (count_ok(arr, "cpuid_modifiers", err, errlen) < 0)
        return -EINVAL;
    json_array_foreach(arr, i, e)
    {
        char where[64];
        snprintf(where, sizeof(where), "cpuid_modifiers[%zu]", i);
        f[0].kind = json_is_integer(json_object_get(e, "leaf")) ? API_JSON_UINT : API_JSON_STRING;
        f[1].kind =
            json_is_integer(json_object_get(e, "subleaf")) ? API_JSON_UINT : API_JSON_STRING;
        f[0].max = f[1].max = UINT32_MAX;
        if (api_json_check(e, f, 4, false, where, err, errlen) < 0)
            return -EINVAL;
        struct arcvm_cpuid_modifier *m = &c->cpuid[i];
        uint64_t leaf, subleaf;
        if (member_number(e, "cpuid_modifiers", i, "leaf", &leaf, err, errlen) < 0 ||
            member_number(e, "cpuid_modifiers", i, "subleaf", &subleaf, err, errlen) < 0)
            return -EINVAL;
        *m = (struct arcvm_cpuid_modifier){.leaf = (uint32_t)leaf,
                                           .subleaf = (uint32_t)subleaf,
                                           .flags = (uint32_t)api_json_uint(e, "flags", 0)};
        if (parse_registers(json_object_get(e, "modifiers"), m, &c->regs_given[i], where, err,
                            errlen) < 0)
            return -EINVAL;
        c->ncpuid = (unsigned)i + 1;
    }
    return 0;
}

static int parse_msrs(const json_t *arr, struct api_cpu *c, char *err, size_t errlen)
{
    size_t i;
    const json_t *e;
    if (count_ok(arr, "msr_modifiers", err, errlen) < 0)
        return -EINVAL;
    json_array_foreach(arr, i, e)
    {
        char where[64], w[80];
        snprintf(where, sizeof(where), "msr_modifiers[%zu]", i);
        const struct api_json_field f[] = {
            {"addr", json_is_integer(json_object_get(e, "addr")) ? API_JSON_UINT : API_JSON_STRING,
             true, UINT32_MAX},
            {"bitmap", API_JSON_STRING, true, 0}};
        if (api_json_check(e, f, 2, false, where, err, errlen) < 0)
            return -EINVAL;
        uint64_t addr;
        if (member_number(e, "msr_modifiers", i, "addr", &addr, err, errlen) < 0)
            return -EINVAL;
        struct arcvm_msr_modifier *m = &c->msr[i];
        m->addr = (uint32_t)addr;
        snprintf(w, sizeof(w), "%s.bitmap", where);
        if (parse_bitmap(json_object_get(e, "bitmap"), 64, &m->mask, &m->value, w, err, errlen) < 0)
            return -EINVAL;
        c->nmsr = (unsigned)i + 1;
    }
    return 0;
}

/* "N" adds KVM capability N to the checks, "!N" removes it (decimal). */
static int parse_caps(const json_t *arr, struct api_cpu *c, char *err, size_t errlen)
{
    size_t i;
    const json_t *e;
    if (count_ok(arr, "kvm_capabilities", err, errlen) < 0)
        return -EINVAL;
    json_array_foreach(arr, i, e)
    {
        const char *s = json_string_value(e);
        bool remove = s && *s == '!';
        const char *p = s ? s + remove : NULL;
        uint64_t n = 0;
        bool ok = p && *p;
        for (; ok && *p; p++) {
            ok = *p >= '0' && *p <= '9' && n <= (UINT32_MAX - (uint64_t)(*p - '0')) / 10;
            n = n * 10 + (uint64_t)(*p - '0');
        }
        if (!ok) {
            snprintf(err, errlen,
                     "kvm_capabilities[%zu]: give a KVM capability number as a string, \"N\" to "
                     "require it or \"!N\" to drop the check",
                     i);
            return -EINVAL;
        }
        c->caps[i] = (struct api_cpu_cap){(uint32_t)n, remove};
        c->ncaps = (unsigned)i + 1;
    }
    return 0;
}

/* @b into @c (zeroed by the caller); 0, or -EINVAL with a sentence. */
static int cpu_parse(const json_t *b, struct api_cpu *c, char *err, size_t errlen)
{
    for (const char *const *k = (const char *const[]){"vcpu_features", "reg_modifiers", NULL}; *k;
         k++) {
        if (api_json_has(b, *k)) {
            snprintf(err, errlen, "%s is for aarch64 CPU templates; this is an x86_64 host", *k);
            return -EINVAL;
        }
    }
    const json_t *v;
    if ((v = json_object_get(b, "cpuid_modifiers")) && parse_cpuid(v, c, err, errlen) < 0)
        return -EINVAL;
    if ((v = json_object_get(b, "msr_modifiers")) && parse_msrs(v, c, err, errlen) < 0)
        return -EINVAL;
    if ((v = json_object_get(b, "kvm_capabilities")) && parse_caps(v, c, err, errlen) < 0)
        return -EINVAL;
    for (unsigned i = 0; i < c->ncpuid; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (c->cpuid[j].leaf == c->cpuid[i].leaf &&
                c->cpuid[j].subleaf == c->cpuid[i].subleaf) {
                snprintf(err, errlen,
                         "cpuid_modifiers[%u]: leaf 0x%" PRIx32 " subleaf 0x%" PRIx32
                         " is already cpuid_modifiers[%u]: give each leaf once",
                         i, c->cpuid[i].leaf, c->cpuid[i].subleaf, j);
                return -EINVAL;
            }
        }
    }
    for (unsigned i = 0; i < c->nmsr; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (c->msr[j].addr == c->msr[i].addr) {
                snprintf(err, errlen,
                         "msr_modifiers[%u]: MSR 0x%" PRIx32
                         " is already msr_modifiers[%u]: give each MSR once",
                         i, c->msr[i].addr, j);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* ---- the endpoint ------------------------------------------------------- */

static bool cpu_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    (void)id;
    struct api_cpu *c = calloc(1, sizeof(*c));
    char err[400];
    int e = c ? cpu_parse(b, c, err, sizeof(err)) : -ENOMEM;
    free(c);
    if (e == -ENOMEM)
        api_fault(a, r, 500, "Out of memory.");
    else if (e < 0)
        api_fault(a, r, 400, "The CPU template is not valid: %s.", err);
    return e == 0;
}

static const struct api_json_field cpu_fields[] = {
    {"kvm_capabilities", API_JSON_ARRAY, false, 0}, {"cpuid_modifiers", API_JSON_ARRAY, false, 0},
    {"msr_modifiers", API_JSON_ARRAY, false, 0},    {"vcpu_features", API_JSON_ARRAY, false, 0},
    {"reg_modifiers", API_JSON_ARRAY, false, 0},
};
const struct api_schema api_cpu_config_schema = {
    .what = "cpu-config", API_SCHEMA_FIELDS(cpu_fields), .check = cpu_check};

void api_cpu_config_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    (void)id;
    struct api_cpu *c = calloc(1, sizeof(*c));
    char err[400];
    if (!c || cpu_parse(b, c, err, sizeof(err)) < 0) { /* checked: only out of memory */
        free(c);
        api_fault(a, r, 500, "Out of memory.");
        return;
    }
    free(a->cpu);
    a->cpu = c;
    api_ok(r);
}

void api_cpu_release(struct api *a)
{
    free(a->cpu);
    a->cpu = NULL;
}

int api_cpu_apply(struct api *a, arcvm *vm)
{
    const struct api_cpu *c = a->cpu;
    if (!c)
        return 0;
    /* Firecracker's order: each "N" adds a check, each "!N" drops it. */
    uint32_t caps[ARCVM_CPU_TEMPLATE_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < c->ncaps; i++) {
        unsigned k = 0;
        while (k < n && caps[k] != c->caps[i].cap)
            k++;
        if (!c->caps[i].remove && k == n)
            caps[n++] = c->caps[i].cap;
        else if (c->caps[i].remove && k < n)
            caps[k] = caps[--n];
    }
    const struct arcvm_cpu_template t = {.cpuid = c->cpuid,
                                         .ncpuid = c->ncpuid,
                                         .msrs = c->msr,
                                         .nmsrs = c->nmsr,
                                         .kvm_caps = caps,
                                         .nkvm_caps = n};
    return arcvm_set_cpu_template(vm, &t);
}

/* ---- the view ----------------------------------------------------------- */

static json_t *hex(uint64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "0x%" PRIx64, v);
    return json_string(s);
}

static json_t *bitmap(uint64_t mask, uint64_t value, unsigned bits)
{
    char s[2 + 64 + 1] = "0b";
    for (unsigned i = 0; i < bits; i++) {
        unsigned b = bits - 1 - i;
        s[2 + i] = !(mask >> b & 1) ? 'x' : (value >> b & 1) ? '1' : '0';
    }
    s[2 + bits] = 0;
    return json_string(s);
}

json_t *api_cpu_json(const struct api *a)
{
    const struct api_cpu *c = a->cpu;
    if (!c)
        return json_null();
    json_t *caps = json_array(), *leaves = json_array(), *msrs = json_array();
    for (unsigned i = 0; caps && i < c->ncaps; i++) {
        char s[16];
        snprintf(s, sizeof(s), "%s%" PRIu32, c->caps[i].remove ? "!" : "", c->caps[i].cap);
        json_array_append_new(caps, json_string(s));
    }
    for (unsigned i = 0; leaves && i < c->ncpuid; i++) {
        const struct arcvm_cpuid_modifier *m = &c->cpuid[i];
        json_t *mods = json_array();
        for (unsigned r = 0; mods && r < 4; r++)
            if (c->regs_given[i] & (1u << r))
                json_array_append_new(mods,
                                      json_pack("{s:s,s:o}", "register", reg_names[r], "bitmap",
                                                bitmap(m->mask[r], m->value[r], 32)));
        json_array_append_new(leaves, json_pack("{s:o,s:o,s:I,s:o}", "leaf", hex(m->leaf),
                                                "subleaf", hex(m->subleaf), "flags",
                                                (json_int_t)m->flags, "modifiers", mods));
    }
    for (unsigned i = 0; msrs && i < c->nmsr; i++)
        json_array_append_new(msrs, json_pack("{s:o,s:o}", "addr", hex(c->msr[i].addr), "bitmap",
                                              bitmap(c->msr[i].mask, c->msr[i].value, 64)));
    return json_pack("{s:o,s:o,s:o}", "kvm_capabilities", caps, "cpuid_modifiers", leaves,
                     "msr_modifiers", msrs);
}

json_t *api_cpu_template_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot open the CPU template file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CPU_TEMPLATE_FILE_MAX);
    size_t n = buf ? fread(buf, 1, CPU_TEMPLATE_FILE_MAX, f) : 0;
    bool big = buf && n == CPU_TEMPLATE_FILE_MAX;
    fclose(f);
    json_t *v = NULL;
    char perr[256];
    if (!buf)
        snprintf(err, errlen, "out of memory");
    else if (big)
        snprintf(err, errlen, "the CPU template file %s is larger than %u bytes", path,
                 CPU_TEMPLATE_FILE_MAX - 1);
    else if (!(v = api_json_parse(buf, n, perr, sizeof(perr))))
        snprintf(err, errlen, "the CPU template file %s is not a JSON object: %s", path, perr);
    free(buf);
    return v;
}
