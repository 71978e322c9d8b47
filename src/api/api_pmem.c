/* api_pmem.c - /pmem/{id}: the guest's virtio-pmem devices as Firecracker
 * defines them (PUT before boot creates or replaces one; PATCH after boot
 * changes its flush rate limiter), their view in GET /vm/config, and their
 * hand-over to the library at InstanceStart. */
#include "api/api_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void api_pmem_release(struct api_pmem *p)
{
    free(p->id);
    free(p->path);
    memset(p, 0, sizeof(*p));
}

void api_pmem_release_all(struct api *a)
{
    for (unsigned i = 0; i < a->npmems; i++)
        api_pmem_release(&a->pmems[i]);
    a->npmems = 0;
}

static int pmem_find(const struct api *a, const char *id)
{
    for (unsigned i = 0; i < a->npmems; i++)
        if (!strcmp(a->pmems[i].id, id))
            return (int)i;
    return -1;
}

bool api_pmem_has_root(const struct api *a)
{
    for (unsigned i = 0; i < a->npmems; i++)
        if (a->pmems[i].root)
            return true;
    return false;
}

/* Firecracker's PmemConfig, as GET /vm/config shows it. */
json_t *api_pmem_json(const struct api *a)
{
    json_t *arr = json_array();
    for (unsigned i = 0; arr && i < a->npmems; i++) {
        const struct api_pmem *p = &a->pmems[i];
        json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:b,s:o}", "id", p->id, "path_on_host",
                                             p->path, "root_device", p->root, "read_only", p->ro,
                                             "rate_limiter",
                                             api_json_rate_limiter_view(&p->rl)));
    }
    return arr;
}

static const struct api_json_field pmem_fields[] = {
    {"id", API_JSON_STRING, true, 0},
    {"path_on_host", API_JSON_STRING, true, 0},
    {"root_device", API_JSON_BOOL, false, 0},
    {"read_only", API_JSON_BOOL, false, 0},
    {"rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_pmem_put_schema = {.what = "pmem",
                                               API_SCHEMA_FIELDS(pmem_fields),
                                               .limiters = {"rate_limiter"},
                                               .id_field = "id"};

/* PartialPmem: only the rate limiter changes after boot. */
static const struct api_json_field pmem_patch_fields[] = {
    {"id", API_JSON_STRING, true, 0},
    {"rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_pmem_patch_schema = {.what = "pmem",
                                                 API_SCHEMA_FIELDS(pmem_patch_fields),
                                                 .limiters = {"rate_limiter"},
                                                 .id_field = "id"};

/* The backing file must be a non-empty regular file the VM can open as
 * the device will: checked now, so the fault comes with the request. */
static bool pmem_file_ok(struct api *a, struct api_reply *r, const char *id, const char *path,
                         bool ro)
{
    struct stat st;
    int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        api_fault(a, r, 400, "Pmem '%s': cannot open the backing file %s: %s", id, path,
                  strerror(errno));
        return false;
    }
    int err = fstat(fd, &st) < 0 ? errno : 0;
    close(fd);
    if (err)
        api_fault(a, r, 400, "Pmem '%s': %s: %s", id, path, strerror(err));
    else if (!S_ISREG(st.st_mode))
        api_fault(a, r, 400, "Pmem '%s': the backing file %s is not a regular file", id, path);
    else if (st.st_size == 0)
        api_fault(a, r, 400, "Pmem '%s': the backing file %s is empty", id, path);
    else
        return true;
    return false;
}

void api_pmem_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *path = api_json_str(b, "path_on_host");
    bool root = api_json_bool(b, "root_device", false);
    bool ro = api_json_bool(b, "read_only", false);
    int pos = pmem_find(a, id);
    /* Firecracker's PmemBuilder rules: one root, pmem or block. */
    if (root && a->ndrives && a->drives[0].root) {
        api_fault(a, r, 400, "Pmem config error: Attempt to add pmem as a root device while the "
                             "root device defined as a block device");
        return;
    }
    if (root && api_pmem_has_root(a) && !(pos >= 0 && a->pmems[pos].root)) {
        api_fault(a, r, 400, "Pmem config error: A root pmem device already exist");
        return;
    }
    if (pos < 0 && a->npmems == API_MAX_PMEMS) {
        api_fault(a, r, 400, "Pmem '%s': arcvm supports at most %d pmem devices.", id,
                  API_MAX_PMEMS);
        return;
    }
    if (strchr(path, ',')) {
        api_fault(a, r, 400, "Pmem '%s': arcvm cannot use a path_on_host that contains ','.", id);
        return;
    }
    if (!pmem_file_ok(a, r, id, path, ro))
        return;
    struct api_pmem p = {.id = strdup(id), .path = strdup(path), .root = root, .ro = ro};
    if (api_json_has(b, "rate_limiter"))
        api_json_rate_limiter(json_object_get(b, "rate_limiter"), &p.rl);
    if (!p.id || !p.path) {
        api_pmem_release(&p);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    /* A replaced device keeps its place (and so its /dev/pmemN). */
    if (pos >= 0) {
        api_pmem_release(&a->pmems[pos]);
        a->pmems[pos] = p;
    } else {
        a->pmems[a->npmems++] = p;
    }
    api_ok(r);
}

void api_pmem_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    int pos = pmem_find(a, id);
    if (!api_id_known(a, r, "pmem", id, pos >= 0))
        return;
    if (!api_json_has(b, "rate_limiter")) {
        api_ok(r); /* nothing to change, as Firecracker answers */
        return;
    }
    struct arcvm_rate_limiter rl;
    api_json_rate_limiter(json_object_get(b, "rate_limiter"), &rl);
    if (!a->ops->pmem_rate_limiter ||
        a->ops->pmem_rate_limiter(a->opt.vm_ops_ctx, a->vm, id, &rl) < 0) {
        api_fault(a, r, 400, "Pmem '%s': %s", id,
                  a->ops->pmem_rate_limiter ? a->ops->last_error(a->opt.vm_ops_ctx, a->vm)
                                            : "rate limiters cannot be changed on this VM");
        return;
    }
    a->pmems[pos].rl = rl;
    api_ok(r);
}

int api_pmem_apply(const struct api *a, arcvm *vm)
{
    int r = 0;
    for (unsigned i = 0; !r && i < a->npmems; i++) {
        const struct api_pmem *p = &a->pmems[i];
        r = arcvm_add_pmem(vm, p->path, p->ro, p->root, p->id);
        if (!r)
            r = arcvm_set_pmem_rate_limiter(vm, p->id, &p->rl);
    }
    return r;
}
