/* api_machine.c - the machine the guest gets: /machine-config (vCPUs and
 * memory), /boot-source (kernel, initrd, command line) and /entropy (the
 * virtio-rng device). */
#include "api/api_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* Firecracker's MAX_SUPPORTED_VCPUS, the maximum in its swagger schema. */
#define FC_MAX_VCPUS 32
/* 16 TiB: far above any host, and MiB << 20 stays far inside 64 bits. */
#define API_MEM_MIB_MAX (1ull << 24)

/* ---- /machine-config ---------------------------------------------------- */

static const char *const machine_templates[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A", "V1N1"};
static const char *const machine_huge_pages[] = {"None", "2M", "Transparent"};
#define MACHINE_NTEMPLATES (int)(sizeof(machine_templates) / sizeof(machine_templates[0]))
#define MACHINE_NHUGE      (int)(sizeof(machine_huge_pages) / sizeof(machine_huge_pages[0]))

json_t *api_machine_json(const struct api *a)
{
    return json_pack("{s:I,s:I,s:b,s:b,s:s}", "vcpu_count", (json_int_t)a->vcpus, "mem_size_mib",
                     (json_int_t)a->mem_mib, "smt", 0, "track_dirty_pages", a->track_dirty,
                     "huge_pages", machine_huge_pages[a->huge_pages]);
}

void api_machine_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    api_reply_json(r, 200, api_machine_json(a));
}

/* Names that are no variant at all are refused even after boot. */
static bool machine_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *tmpl = api_json_str(b, "cpu_template"), *hp = api_json_str(b, "huge_pages");
    if (tmpl && api_variant(tmpl, machine_templates, MACHINE_NTEMPLATES) < 0) {
        api_fault(a, r, 400,
                  "cpu_template '%s' is not a CPU template: choose C3, T2, T2S, T2CL, T2A, V1N1 "
                  "or None.",
                  tmpl);
        return false;
    }
    if (hp && api_variant(hp, machine_huge_pages, MACHINE_NHUGE) < 0) {
        api_fault(a, r, 400, "huge_pages '%s' is not valid: choose None, 2M or Transparent.", hp);
        return false;
    }
    return true;
}

static const struct api_json_field machine_fields[] = {
    {"vcpu_count", API_JSON_UINT, true, UINT32_MAX},
    {"mem_size_mib", API_JSON_UINT, true, API_MEM_MIB_MAX},
    {"smt", API_JSON_BOOL, false, 0},
    {"track_dirty_pages", API_JSON_BOOL, false, 0},
    {"cpu_template", API_JSON_STRING, false, 0},
    {"huge_pages", API_JSON_STRING, false, 0},
};
const struct api_schema api_machine_put_schema = {
    .what = "machine-config", API_SCHEMA_FIELDS(machine_fields), .check = machine_check};
/* PATCH: the same fields, any of them. */
const struct api_schema api_machine_patch_schema = {.what = "machine-config",
                                                    API_SCHEMA_FIELDS(machine_fields),
                                                    .partial = true,
                                                    .check = machine_check};

/* PUT and PATCH: a field left out keeps its value. */
void api_machine_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    unsigned vcpus = (unsigned)api_json_uint(b, "vcpu_count", a->vcpus);
    uint64_t mem = api_json_uint(b, "mem_size_mib", a->mem_mib);
    const char *tmpl = api_json_str(b, "cpu_template"), *hp = api_json_str(b, "huge_pages");
    /* machine_check() let only known names through; left out: unchanged. */
    enum arcvm_huge_pages huge =
        hp ? (enum arcvm_huge_pages)api_variant(hp, machine_huge_pages, MACHINE_NHUGE) : a->huge_pages;
    if (vcpus == 0 || vcpus > FC_MAX_VCPUS) {
        api_fault(a, r, 400, "The number of vCPUs must be between 1 and %d.", FC_MAX_VCPUS);
    } else if (api_json_bool(b, "smt", false)) {
        api_fault(a, r, 400,
                  "smt (simultaneous multithreading) is not supported by arcvm: it gives the "
                  "guest single-thread cores.");
    } else if (api_variant(tmpl, machine_templates, MACHINE_NTEMPLATES) > 0) {
        api_fault(a, r, 400,
                  "cpu_template '%s' is not supported by arcvm: the guest sees the host's CPU "
                  "features as KVM offers them.",
                  tmpl);
    } else if (mem == 0) {
        api_fault(a, r, 400, "The memory size (MiB) must not be 0.");
    } else if (huge != ARCVM_HUGE_PAGES_NONE && mem % 2) {
        api_fault(a, r, 400,
                  "mem_size_mib %llu is not a multiple of 2, which huge_pages %s needs.",
                  (unsigned long long)mem, machine_huge_pages[huge]);
    } else if (arcvm_set_memory(a->vm, mem << 20) < 0 || arcvm_set_vcpus(a->vm, vcpus) < 0 ||
               arcvm_set_huge_pages(a->vm, huge) < 0) {
        /* The library's own limits (e.g. its minimum size), in its words. */
        api_fault(a, r, 400, "%s", arcvm_last_error(a->vm));
    } else {
        a->vcpus = vcpus;
        a->mem_mib = mem;
        a->track_dirty = api_json_bool(b, "track_dirty_pages", a->track_dirty);
        a->huge_pages = huge;
        a->machine_set = true;
        api_ok(r);
    }
}

/* ---- /boot-source ------------------------------------------------------- */

static const struct api_json_field boot_source_fields[] = {
    {"kernel_image_path", API_JSON_STRING, true, 0},
    {"boot_args", API_JSON_STRING, false, 0},
    {"initrd_path", API_JSON_STRING, false, 0},
};
const struct api_schema api_boot_source_schema = {.what = "boot-source",
                                                  API_SCHEMA_FIELDS(boot_source_fields)};

void api_boot_source_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *kernel = api_json_str(b, "kernel_image_path");
    const char *initrd = api_json_str(b, "initrd_path"), *args = api_json_str(b, "boot_args");
    int e = api_can_open(kernel, O_RDONLY);
    if (e < 0) {
        api_fault(a, r, 400, "The kernel file cannot be opened: %s (%s)", strerror(-e), kernel);
        return;
    }
    if (initrd && (e = api_can_open(initrd, O_RDONLY)) < 0) {
        api_fault(a, r, 400, "The initrd file cannot be opened: %s (%s)", strerror(-e), initrd);
        return;
    }
    char *k = strdup(kernel), *i = api_strdup(initrd), *g = api_strdup(args);
    if (!k || (initrd && !i) || (args && !g)) {
        free(k), free(i), free(g);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    free(a->kernel), free(a->initrd), free(a->boot_args);
    a->kernel = k, a->initrd = i, a->boot_args = g;
    api_ok(r);
}

json_t *api_boot_source_json(const struct api *a)
{
    if (!a->kernel)
        return json_null();
    return json_pack("{s:s,s:o,s:o}", "kernel_image_path", a->kernel, "initrd_path",
                     api_json_string_or_null(a->initrd), "boot_args",
                     api_json_string_or_null(a->boot_args));
}

/* ---- /entropy ----------------------------------------------------------- */

static const struct api_json_field entropy_fields[] = {{"rate_limiter", API_JSON_OBJECT, false, 0}};
const struct api_schema api_entropy_schema = {
    .what = "entropy", API_SCHEMA_FIELDS(entropy_fields), .limiters = {"rate_limiter"}};

void api_entropy_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    a->entropy = true;
    a->entropy_rl = (struct arcvm_rate_limiter){0};
    if (api_json_has(b, "rate_limiter"))
        api_json_rate_limiter(json_object_get(b, "rate_limiter"), &a->entropy_rl);
    api_ok(r);
}

json_t *api_entropy_json(const struct api *a)
{
    return a->entropy ? json_pack("{s:o}", "rate_limiter",
                                  api_json_rate_limiter_view(&a->entropy_rl))
                      : json_null();
}
