/* api_shares.c - /shared-dirs/{tag}: arcvm's extension for host directories
 * shared with the guest through virtio-fs (Firecracker has no such device),
 * shaped like the other resources, and its view in GET /vm/config. */
#include "api/api_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void api_share_release(struct api_share *s)
{
    free(s->tag);
    free(s->path);
    *s = (struct api_share){0};
}

static int share_find(const struct api *a, const char *tag)
{
    for (unsigned i = 0; i < a->nshares; i++)
        if (!strcmp(a->shares[i].tag, tag))
            return (int)i;
    return -1;
}

json_t *api_share_json(const struct api_share *s)
{
    return json_pack("{s:s,s:s,s:b}", "tag", s->tag, "host_path", s->path, "read_only", s->ro);
}

/* The tag is the path's id (letters, digits and '_', checked by the
 * dispatcher); virtio-fs allows 36 bytes of it. Part of parsing the body:
 * before the boot rule. */
static bool share_check(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (strlen(id) <= API_SHARE_TAG_MAX)
        return true;
    api_fault(a, r, 400, "Shared directory tag '%s' is longer than %d characters.", id,
              API_SHARE_TAG_MAX);
    return false;
}

static const struct api_json_field share_fields[] = {
    {"tag", API_JSON_STRING, true, 0},
    {"host_path", API_JSON_STRING, true, 0},
    {"read_only", API_JSON_BOOL, false, 0},
};
const struct api_schema api_share_put_schema = {.what = "shared directory",
                                                API_SCHEMA_FIELDS(share_fields),
                                                .id_field = "tag",
                                                .check = share_check};

/* @path names a directory this process can open: 0, or the fault in @r. */
static int share_dir_ok(struct api *a, const char *tag, const char *path, struct api_reply *r)
{
    struct stat st;
    int fd = *path ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int err = fd < 0 ? (*path ? errno : ENOENT) : fstat(fd, &st) < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    if (!err && S_ISDIR(st.st_mode))
        return 0;
    api_fault(a, r, 400, "Shared directory '%s': host_path '%s' is not a directory arcvm can open "
              "(%s).", tag, path, strerror(err ? err : ENOTDIR));
    return -1;
}

/* A PUT for a tag already configured replaces it and keeps its place, as
 * Firecracker's PUT /drives/{id} does. */
void api_share_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    const char *path = api_json_str(b, "host_path");
    int pos = share_find(a, id);
    if (pos < 0 && a->nshares == API_MAX_SHARES) {
        api_fault(a, r, 400, "Shared directory '%s': arcvm supports at most %d shared directories.",
                  id, API_MAX_SHARES);
        return;
    }
    if (share_dir_ok(a, id, path, r) < 0)
        return;
    struct api_share s = {
        .tag = strdup(id), .path = strdup(path), .ro = api_json_bool(b, "read_only", false)};
    if (!s.tag || !s.path) {
        api_share_release(&s);
        api_fault(a, r, 500, "out of memory");
        return;
    }
    if (pos >= 0) {
        api_share_release(&a->shares[pos]);
        a->shares[pos] = s;
    } else {
        a->shares[a->nshares++] = s;
    }
    api_ok(r);
}
