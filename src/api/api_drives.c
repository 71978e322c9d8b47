/* api_drives.c - /drives/{id}: the guest's virtio-blk disks, in
 * Firecracker's order (a root device first), and their view in GET
 * /vm/config. */
#include "api/api_internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

static const char *const cache_names[] = {"Unsafe", "Writeback"};
static const char *const engine_names[] = {"Sync", "Async"};

void api_drive_release(struct api_drive *d)
{
    free(d->id);
    free(d->path);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

static int drive_find(const struct api *a, const char *id)
{
    for (unsigned i = 0; i < a->ndrives; i++)
        if (!strcmp(a->drives[i].id, id))
            return (int)i;
    return -1;
}

json_t *api_drive_json(const struct api_drive *d)
{
    return json_pack("{s:s,s:o,s:b,s:s,s:b,s:s,s:o,s:s,s:n}", "drive_id", d->id, "partuuid",
                     api_json_string_or_null(d->partuuid), "is_root_device", d->root, "cache_type",
                     cache_names[d->cache], "is_read_only", d->ro, "path_on_host", d->path,
                     "rate_limiter", api_json_rate_limiter_view(&d->rl), "io_engine",
                     engine_names[d->engine], "socket");
}

/* A PARTUUID goes onto the kernel command line: hex digits and dashes only
 * (GPT UUIDs and MBR "SSSSSSSS-PP" forms), so it cannot add arguments; 64
 * characters is well above a UUID's 36. */
static bool partuuid_valid(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

/* cache_type and io_engine: absent means Unsafe and Sync, as in Firecracker. */
static int drive_cache(const json_t *b)
{
    const char *s = api_json_str(b, "cache_type");
    return s ? api_variant(s, cache_names, 2) : API_CACHE_UNSAFE;
}

static int drive_engine(const json_t *b)
{
    const char *s = api_json_str(b, "io_engine");
    return s ? api_variant(s, engine_names, 2) : API_IO_SYNC;
}

/* Enum names serde would refuse: refused before the boot rule, as in
 * Firecracker, where parsing the body comes first. */
static bool drive_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (drive_cache(b) < 0) {
        api_fault(a, r, 400, "cache_type '%s' is not valid: choose Unsafe or Writeback.",
                  api_json_str(b, "cache_type"));
        return false;
    }
    if (drive_engine(b) < 0) {
        api_fault(a, r, 400, "io_engine '%s' is not valid: choose Sync or Async.",
                  api_json_str(b, "io_engine"));
        return false;
    }
    return true;
}

static const struct api_json_field drive_fields[] = {
    {"drive_id", API_JSON_STRING, true, 0},     {"path_on_host", API_JSON_STRING, false, 0},
    {"is_root_device", API_JSON_BOOL, true, 0}, {"is_read_only", API_JSON_BOOL, false, 0},
    {"partuuid", API_JSON_STRING, false, 0},    {"cache_type", API_JSON_STRING, false, 0},
    {"io_engine", API_JSON_STRING, false, 0},   {"rate_limiter", API_JSON_OBJECT, false, 0},
    {"socket", API_JSON_STRING, false, 0},
};
const struct api_schema api_drive_put_schema = {.what = "drive",
                                                API_SCHEMA_FIELDS(drive_fields),
                                                .limiters = {"rate_limiter"},
                                                .id_field = "drive_id",
                                                .check = drive_check};

static const struct api_json_field drive_patch_fields[] = {
    {"drive_id", API_JSON_STRING, true, 0},
    {"path_on_host", API_JSON_STRING, false, 0},
    {"rate_limiter", API_JSON_OBJECT, false, 0},
};
const struct api_schema api_drive_patch_schema = {.what = "drive",
                                                  API_SCHEMA_FIELDS(drive_patch_fields),
                                                  .limiters = {"rate_limiter"},
                                                  .id_field = "drive_id"};

/* Refuse what arcvm cannot do with the drive in @b, before touching it. */
static bool drive_supported(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *path = api_json_str(b, "path_on_host");
    const char *partuuid = api_json_str(b, "partuuid");
    if (api_json_has(b, "socket"))
        api_fault(a, r, 400,
                  "Drive '%s': vhost-user block devices (socket) are not supported by arcvm.", id);
    else if (!path)
        api_fault(a, r, 400, "Drive '%s': path_on_host is required for a virtio-block drive.", id);
    else if (strchr(path, ','))
        api_fault(a, r, 400, "Drive '%s': arcvm cannot use a path_on_host that contains ','.", id);
    else if (partuuid && !partuuid_valid(partuuid))
        api_fault(a, r, 400, "Drive '%s': partuuid '%s' is not a partition UUID.", id, partuuid);
    else
        return true;
    return false;
}

/* Firecracker's order: a new root drive goes first, others last; an updated
 * drive keeps its place, except that a drive becoming root swaps places with
 * the first. */
static void drive_store(struct api *a, int pos, struct api_drive d)
{
    if (pos >= 0) {
        api_drive_release(&a->drives[pos]);
        a->drives[pos] = d;
        if (d.root && pos != 0) {
            struct api_drive t = a->drives[0];
            a->drives[0] = a->drives[pos];
            a->drives[pos] = t;
        }
    } else if (d.root) {
        memmove(&a->drives[1], &a->drives[0], a->ndrives * sizeof(a->drives[0]));
        a->drives[0] = d;
        a->ndrives++;
    } else {
        a->drives[a->ndrives++] = d;
    }
}

void api_drive_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!drive_supported(a, id, b, r))
        return;
    const char *path = api_json_str(b, "path_on_host");
    const char *partuuid = api_json_str(b, "partuuid");
    bool root = api_json_bool(b, "is_root_device", false);
    bool ro = api_json_bool(b, "is_read_only", false);
    int pos = drive_find(a, id);
    if (root && api_pmem_has_root(a)) {
        api_fault(a, r, 400, "Attempt to add block as a root device while the root device "
                             "defined as a pmem device");
        return;
    }
    if (root && a->ndrives && a->drives[0].root && pos != 0) {
        api_fault(a, r, 400, "A root block device already exists!");
        return;
    }
    if (pos < 0 && a->ndrives == API_MAX_DRIVES) {
        api_fault(a, r, 400, "Drive '%s': arcvm supports at most %d drives.", id, API_MAX_DRIVES);
        return;
    }
    int err = api_can_open(path, ro ? O_RDONLY : O_RDWR);
    if (err < 0) {
        api_fault(a, r, 400, "Cannot open block device. Invalid permission/path: %s (%s)",
                  strerror(-err), path);
        return;
    }
    struct api_drive d = {.id = strdup(id),
                          .path = strdup(path),
                          .partuuid = api_strdup(partuuid),
                          .root = root,
                          .ro = ro,
                          .cache = (enum api_cache_type)drive_cache(b),
                          .engine = (enum api_io_engine)drive_engine(b),
                          .has_rl = api_json_has(b, "rate_limiter")};
    if (d.has_rl)
        api_json_rate_limiter(json_object_get(b, "rate_limiter"), &d.rl);
    if (!d.id || !d.path || (partuuid && !d.partuuid)) {
        api_drive_release(&d);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    drive_store(a, pos, d);
    api_ok(r);
}

/* After boot (Firecracker's semantics): a new path_on_host swaps the
 * backing file, read-only as the drive is; the guest sees the new size at
 * once. A new rate limiter takes effect at once. The path goes first, so a
 * refused path changes nothing. */
void api_drive_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    int pos = drive_find(a, id);
    if (!api_id_known(a, r, "drive", id, pos >= 0))
        return;
    char serial[21];
    snprintf(serial, sizeof(serial), "%s", id); /* the disk id the library knows */
    const char *path = api_json_str(b, "path_on_host");
    if (path) {
        if (strchr(path, ',')) {
            api_fault(a, r, 400, "Drive '%s': arcvm cannot use a path_on_host that contains ','.",
                      id);
            return;
        }
        int err = api_can_open(path, a->drives[pos].ro ? O_RDONLY : O_RDWR);
        if (err < 0) {
            api_fault(a, r, 400, "Drive '%s': cannot open block device. Invalid permission/path: "
                                 "%s (%s)", id, strerror(-err), path);
            return;
        }
        if (!a->ops->disk_path || a->ops->disk_path(a->opt.vm_ops_ctx, a->vm, serial, path) < 0) {
            api_fault(a, r, 400, "Drive '%s': %s", id,
                      a->ops->disk_path ? a->ops->last_error(a->opt.vm_ops_ctx, a->vm)
                                        : "the backing file cannot be changed on this VM");
            return;
        }
        char *copy = strdup(path);
        if (copy) { /* else GET /vm/config keeps showing the old path */
            free(a->drives[pos].path);
            a->drives[pos].path = copy;
        }
    }
    if (!api_json_has(b, "rate_limiter")) {
        api_ok(r);
        return;
    }
    struct arcvm_rate_limiter rl;
    api_json_rate_limiter(json_object_get(b, "rate_limiter"), &rl);
    if (!a->ops->disk_rate_limiter ||
        a->ops->disk_rate_limiter(a->opt.vm_ops_ctx, a->vm, serial, &rl) < 0) {
        api_fault(a, r, 400, "Drive '%s': %s", id,
                  a->ops->disk_rate_limiter ? a->ops->last_error(a->opt.vm_ops_ctx, a->vm)
                                            : "rate limiters cannot be changed on this VM");
        return;
    }
    a->drives[pos].rl = rl;
    a->drives[pos].has_rl = true;
    api_ok(r);
}
