/* fuzz_api.c - libFuzzer target for the Firecracker-compatible API core
 * (src/api/): the dispatcher, every endpoint's JSON schema and handler, the
 * boot rules, and the --config-file loader, driven by a hostile client.
 *
 * Input: a mode byte, then either (mode & 1) a configuration file for
 * api_load_config() followed by requests, or requests alone. A request is
 *   route (1 byte), method (1 byte), body length (1 byte, *4 + low bits of
 *   the method byte), body
 * where route picks one of the API's paths (or, past the table, takes a raw
 * path from the body up to its first '\n'). A sequence can configure,
 * InstanceStart (a fake VM: no KVM here) and then send post-boot requests.
 *
 * Properties checked on every reply: a status the API may give (500 only
 * for out-of-memory, which a fuzz run never hits), a JSON body exactly when
 * one is due, a fault_message in every error, Allow only with 405; on the
 * config loader: 0 or -EINVAL with a message. Files: the API opens paths
 * the client names (drives, kernel, log and metrics files); while it runs,
 * every open for writing goes to /dev/null so that a fuzz run creates or
 * appends to no file (see fuzz_open below).
 *
 * Not here: the HTTP request line and headers, which libevent's evhttp
 * parses with the settings api_http_configure() gives it: fuzz_http.
 *
 * Run: FUZZ_TARGETS=fuzz_api tests/fuzz/run.sh
 */
#include "fuzz_check.h"

#include "api/api.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_REQUESTS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- no files written ------------------------------------------------- */

static int sandboxed;

/* Every open of this process comes through here (the target defines the
 * libc entry points, so the API's opens, compiled or in libc, land here).
 * While the API runs, an open that could create or write a file opens
 * /dev/null instead; reads go through, so "no such kernel" stays true. */
static int fuzz_open(int dirfd, const char *path, int flags, mode_t mode)
{
    if (sandboxed && (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE))) {
        path = "/dev/null";
        dirfd = AT_FDCWD;
        flags = (flags & (O_CLOEXEC | O_NONBLOCK)) | O_WRONLY;
    }
    return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* The headers may map open() to open64() (_FILE_OFFSET_BITS=64): the
 * asm labels name each libc symbol whatever the headers say. */
#define OPEN_WRAPPER(fn, sym)                                                                      \
    int fn(const char *path, int flags, ...) __asm__(sym);                                         \
    int fn(const char *path, int flags, ...)                                                       \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode_t m = mode_arg(flags, ap);                                                            \
        va_end(ap);                                                                                \
        return fuzz_open(AT_FDCWD, path, flags, m);                                                \
    }
#define OPENAT_WRAPPER(fn, sym)                                                                    \
    int fn(int dirfd, const char *path, int flags, ...) __asm__(sym);                              \
    int fn(int dirfd, const char *path, int flags, ...)                                            \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode_t m = mode_arg(flags, ap);                                                            \
        va_end(ap);                                                                                \
        return fuzz_open(dirfd, path, flags, m);                                                   \
    }
#define OPEN2_WRAPPER(fn, sym)                                                                     \
    int fn(const char *path, int flags) __asm__(sym);                                              \
    int fn(const char *path, int flags)                                                            \
    {                                                                                              \
        return fuzz_open(AT_FDCWD, path, flags, 0);                                                \
    }
OPEN_WRAPPER(fuzz_libc_open, "open")
OPEN_WRAPPER(fuzz_libc_open64, "open64")
OPENAT_WRAPPER(fuzz_libc_openat, "openat")
OPENAT_WRAPPER(fuzz_libc_openat64, "openat64")
/* _FORTIFY_SOURCE's checked variants. */
OPEN2_WRAPPER(fuzz_libc_open_2, "__open_2")
OPEN2_WRAPPER(fuzz_libc_open64_2, "__open64_2")

/* ---- a VM that only pretends -------------------------------------------- */

struct fake {
    enum arcvm_state state;
    int starts;
};
static int state_fd = -1;

static int fake_start(void *c, arcvm *vm)
{
    (void)vm;
    struct fake *f = c;
    CHECK(f->starts++ == 0); /* the API starts a VM once */
    f->state = ARCVM_STATE_RUNNING;
    return 0;
}

static int fake_pause(void *c, arcvm *vm)
{
    (void)vm;
    struct fake *f = c;
    CHECK(f->starts);
    if (f->state != ARCVM_STATE_RUNNING)
        return -EINVAL;
    f->state = ARCVM_STATE_PAUSED;
    return 0;
}

static int fake_resume(void *c, arcvm *vm)
{
    (void)vm;
    struct fake *f = c;
    CHECK(f->starts);
    if (f->state != ARCVM_STATE_PAUSED)
        return -EINVAL;
    f->state = ARCVM_STATE_RUNNING;
    return 0;
}

static int fake_stop(void *c, arcvm *vm)
{
    (void)vm;
    ((struct fake *)c)->state = ARCVM_STATE_STOPPED;
    return 0;
}

static int fake_wait(void *c, arcvm *vm, struct arcvm_exit *e)
{
    (void)c, (void)vm;
    memset(e, 0, sizeof(*e));
    e->reason = ARCVM_EXIT_STOPPED;
    return 0;
}

static int fake_ok(void *c, arcvm *vm)
{
    (void)c, (void)vm;
    return 0;
}

static int fake_metrics(void *c, arcvm *vm, struct arcvm_metrics *m)
{
    (void)c, (void)vm;
    memset(m, 0, sizeof(*m));
    return 0;
}

static enum arcvm_state fake_state(void *c, arcvm *vm)
{
    (void)vm;
    return ((struct fake *)c)->state;
}

static int fake_state_fd(void *c, arcvm *vm)
{
    (void)c, (void)vm;
    return state_fd;
}

static const char *fake_error(void *c, const arcvm *vm)
{
    (void)c, (void)vm;
    return "fake failure";
}

static int fake_vcpu_info(void *c, arcvm *vm, struct arcvm_vcpu_info *out, unsigned max)
{
    (void)c, (void)vm;
    CHECK(max >= 1);
    memset(out, 0, sizeof(*out));
    return 1;
}

static int fake_snap_create(void *c, arcvm *vm, enum arcvm_snapshot_type type, const char *state,
                            const char *mem)
{
    (void)c, (void)vm, (void)type;
    CHECK(state && mem);
    return 0;
}

static int fake_snap_load(void *c, arcvm *vm, const struct arcvm_snapshot_load *p)
{
    (void)vm;
    struct fake *f = c;
    CHECK(p->state_path && (p->mem_path || p->uffd_path));
    for (unsigned i = 0; i < p->nnet_overrides; i++)
        CHECK(p->net_overrides[i].iface_id && p->net_overrides[i].host_dev_name);
    f->starts++;
    f->state = p->resume ? ARCVM_STATE_RUNNING : ARCVM_STATE_PAUSED;
    return 0;
}

static int fake_get_config(void *c, arcvm *vm, struct arcvm_config *o)
{
    (void)c, (void)vm;
    memset(o, 0, sizeof(*o));
    o->vcpus = 1;
    o->mem_bytes = 128ull << 20;
    o->kernel = "/k";
    return 0;
}

static int fake_disk_rl(void *c, arcvm *vm, const char *id, const struct arcvm_rate_limiter *rl)
{
    (void)c, (void)vm;
    CHECK(id && rl);
    return 0;
}

static int fake_net_rl(void *c, arcvm *vm, const char *id, const struct arcvm_rate_limiter *rx,
                       const struct arcvm_rate_limiter *tx)
{
    (void)c, (void)vm, (void)rx, (void)tx;
    CHECK(id);
    return 0;
}

static const struct api_vm_ops fake_ops = {
    .start = fake_start,
    .pause = fake_pause,
    .resume = fake_resume,
    .stop = fake_stop,
    .wait = fake_wait,
    .send_ctrl_alt_del = fake_ok,
    .get_metrics = fake_metrics,
    .get_state = fake_state,
    .state_fd = fake_state_fd,
    .last_error = fake_error,
    .get_vcpu_info = fake_vcpu_info,
    .snapshot_create = fake_snap_create,
    .snapshot_load = fake_snap_load,
    .get_config = fake_get_config,
    .disk_rate_limiter = fake_disk_rl,
    .net_rate_limiters = fake_net_rl,
};

/* ---- requests ----------------------------------------------------------- */

/* Every path of the route table (api.c), with ids where it takes one. */
static const char *const paths[] = {
    "/",
    "/version",
    "/machine-config",
    "/boot-source",
    "/drives/rootfs",
    "/drives/scratch",
    "/drives/",
    "/network-interfaces/eth0",
    "/network-interfaces/eth1",
    "/vsock",
    "/balloon",
    "/balloon/statistics",
    "/entropy",
    "/logger",
    "/metrics",
    "/actions",
    "/vm",
    "/vm/config",
    "/vcpus",
    "/cpu-config",
    "/mmds",
    "/mmds/config",
    "/snapshot/create",
    "/snapshot/load",
    "/serial",
    "/pmem/p0",
    "/hotplug/memory",
    "/shared-dirs/src",
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

static const char *const methods[] = {"PUT", "PATCH", "GET", "PUT", "PATCH", "DELETE", "POST", ""};

static void check_reply(const struct api_reply *r)
{
    CHECK(r->status == 200 || r->status == 204 || r->status == 400 || r->status == 404 ||
          r->status == 405 || r->status == 413);
    CHECK((r->allow != NULL) == (r->status == 405));
    if (r->status == 204) {
        CHECK(!r->body);
        return;
    }
    CHECK(r->body && r->len == strlen(r->body));
    json_error_t e;
    json_t *v = json_loadb(r->body, r->len, 0, &e);
    CHECK(v);
    if (r->status >= 400)
        CHECK(json_is_string(json_object_get(v, "fault_message")));
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (state_fd < 0) {
        log_set_level(LOG_ERROR);
        state_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        CHECK(state_fd >= 0);
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++, size--;

    struct fake f = {.state = ARCVM_STATE_CREATED};
    struct api_options o = {.console_in = -1, .console_out = -1, .no_kvm_check = true,
                            .max_body = (mode & 2) ? 64 : 0, .vm_ops = &fake_ops,
                            .vm_ops_ctx = &f};
    struct api *a;
    char err[512];
    sandboxed = 1;
    CHECK(api_create(&o, &a, err, sizeof(err)) == 0);

    if (mode & 1) { /* a config file first: u16 length, then its bytes */
        size_t n = size >= 2 ? (size_t)(data[0] | data[1] << 8) : 0;
        data += size >= 2 ? 2 : size, size -= size >= 2 ? 2 : size;
        n = n < size ? n : size;
        err[0] = 0;
        int r = api_load_config(a, (const char *)data, n, err, sizeof(err));
        CHECK(r == 0 || (r == -EINVAL && err[0]));
        data += n, size -= n;
    }

    char path[256];
    for (unsigned k = 0; k < MAX_REQUESTS && size >= 3; k++) {
        uint8_t route = data[0], m = data[1];
        size_t len = (size_t)data[2] * 4 + (m >> 6);
        data += 3, size -= 3;
        len = len < size ? len : size;
        const char *body = (const char *)data;
        data += len, size -= len;
        if (route < NPATHS) {
            snprintf(path, sizeof(path), "%s", paths[route]);
        } else { /* a raw path: the body up to its first newline */
            const char *nl = memchr(body, '\n', len);
            size_t pl = nl ? (size_t)(nl - body) : len;
            pl = pl < sizeof(path) - 1 ? pl : sizeof(path) - 1;
            memcpy(path, body, pl);
            path[pl] = 0;
            size_t skip = nl ? (size_t)(nl - body) + 1 : len;
            body += skip, len -= skip;
        }
        struct api_reply r;
        api_handle(a, methods[m & 7], path, len ? body : NULL, len, &r);
        if (getenv("FUZZ_API_TRACE"))
            fprintf(stderr, "%s %s %.*s -> %d %s\n", methods[m & 7], path, (int)len, body,
                    r.status, r.body ? r.body : "");
        check_reply(&r);
        api_reply_release(&r);
        CHECK(api_started(a) == (f.starts != 0));
    }
    /* What GET /vm/config serialises must stay valid JSON whatever was set. */
    struct api_reply r;
    api_handle(a, "GET", "/vm/config", NULL, 0, &r);
    check_reply(&r);
    api_reply_release(&r);
    api_destroy(a);
    sandboxed = 0;
    return 0;
}
