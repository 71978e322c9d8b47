/* test_api.c - the Firecracker-compatible API core without sockets or KVM:
 * every endpoint, schema and lifecycle rule, the config file, metrics. */
#include "unit.h"

#include "api/api.h"
#include "api/api_metrics.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

/* A VM that only pretends, so post-boot rules run without KVM. */
struct fake {
    int fd; /* state eventfd */
    enum arcvm_state state;
    int start_rc;
    int starts, cads;
    char err[128];
    struct arcvm_metrics m;
    char snap_state[64], snap_mem[64], snap_tap[64];
    int snap_resume, snap_realtime, snap_dirty;
    enum arcvm_snapshot_type snap_type;
    char rl_disk[32];
    char path_disk[32], path[128]; /* the last disk_path call */
    struct arcvm_rate_limiter rl;
    bool rl_rx_given;
    unsigned snap_overrides;
};

static void fake_notify(struct fake *f)
{
    uint64_t one = 1;
    assert_int_equal(write(f->fd, &one, sizeof(one)), sizeof(one));
}

static int fake_start(void *c, arcvm *vm)
{
    (void)vm;
    struct fake *f = c;
    f->starts++;
    if (f->start_rc < 0) {
        snprintf(f->err, sizeof(f->err), "fake start failure");
        return f->start_rc;
    }
    f->state = ARCVM_STATE_RUNNING;
    fake_notify(f);
    return 0;
}

static int fake_pause(void *c, arcvm *vm)
{
    (void)vm;
    struct fake *f = c;
    if (f->state != ARCVM_STATE_RUNNING) {
        snprintf(f->err, sizeof(f->err), "cannot pause a VM that is %s",
                 arcvm_state_name(f->state));
        return f->state == ARCVM_STATE_PAUSED ? -EALREADY : -EINVAL;
    }
    f->state = ARCVM_STATE_PAUSED;
    return 0;
}

static int fake_resume(void *c, arcvm *vm)
{
    (void)vm;
    struct fake *f = c;
    if (f->state != ARCVM_STATE_PAUSED) {
        snprintf(f->err, sizeof(f->err), "cannot resume a VM that is %s",
                 arcvm_state_name(f->state));
        return f->state == ARCVM_STATE_RUNNING ? -EALREADY : -EINVAL;
    }
    f->state = ARCVM_STATE_RUNNING;
    return 0;
}

static int fake_stop(void *c, arcvm *vm)
{
    (void)vm;
    struct fake *f = c;
    f->state = ARCVM_STATE_STOPPED;
    fake_notify(f);
    return 0;
}

static int fake_wait(void *c, arcvm *vm, struct arcvm_exit *e)
{
    (void)vm;
    struct fake *f = c;
    assert_int_equal(f->state, ARCVM_STATE_STOPPED);
    e->reason = ARCVM_EXIT_STOPPED;
    snprintf(e->message, sizeof(e->message), "stopped by request");
    return 0;
}

static int fake_cad(void *c, arcvm *vm)
{
    (void)vm;
    ((struct fake *)c)->cads++;
    return 0;
}

static int fake_metrics(void *c, arcvm *vm, struct arcvm_metrics *m)
{
    (void)vm;
    *m = ((struct fake *)c)->m;
    return 0;
}

static enum arcvm_state fake_state(void *c, arcvm *vm)
{
    (void)vm;
    return ((struct fake *)c)->state;
}

static int fake_state_fd(void *c, arcvm *vm)
{
    (void)vm;
    return ((struct fake *)c)->fd;
}

static const char *fake_error(void *c, const arcvm *vm)
{
    (void)vm;
    return ((struct fake *)c)->err;
}

/* Two vCPUs: one answering from the guest, one stuck in the hypervisor. */
static int fake_vcpu_info(void *c, arcvm *vm, struct arcvm_vcpu_info *out, unsigned max)
{
    (void)c, (void)vm;
    assert_true(max >= 2);
    out[0] = (struct arcvm_vcpu_info){.id = 0, .where = ARCVM_VCPU_IN_GUEST, .where_ms = 12,
                                      .answered = 1, .pc_valid = 1,
                                      .pc = 0xffffffff81a3c2b4ull, .exits = 5012, .kicks = 3,
                                      .intr_exits = 3};
    snprintf(out[0].last_exit, sizeof(out[0].last_exit), "io");
    out[1] = (struct arcvm_vcpu_info){.id = 1, .where = ARCVM_VCPU_IN_GUEST, .where_ms = 20004,
                                      .exits = 7, .kicks = 1};
    snprintf(out[1].last_exit, sizeof(out[1].last_exit), "halt");
    return 2;
}

/* Snapshots: remembers what it was asked; a load brings a machine of 2
 * vCPUs, 512 MiB and one drive. */
static int fake_snap_create(void *c, arcvm *vm, enum arcvm_snapshot_type type, const char *state,
                            const char *mem)
{
    (void)vm;
    struct fake *f = c;
    f->snap_type = type;
    snprintf(f->snap_state, sizeof(f->snap_state), "%s", state);
    snprintf(f->snap_mem, sizeof(f->snap_mem), "%s", mem);
    return 0;
}

static int fake_snap_load(void *c, arcvm *vm, const struct arcvm_snapshot_load *p)
{
    (void)vm;
    struct fake *f = c;
    if (!strcmp(p->state_path, "/bad")) {
        snprintf(f->err, sizeof(f->err), "/bad is corrupt");
        return -EPROTO;
    }
    snprintf(f->snap_state, sizeof(f->snap_state), "%s", p->state_path);
    snprintf(f->snap_mem, sizeof(f->snap_mem), "%s%s", p->uffd_path ? "uffd:" : "",
             p->uffd_path ? p->uffd_path : p->mem_path);
    f->snap_resume = p->resume;
    f->snap_realtime = p->clock_realtime;
    f->snap_dirty = p->track_dirty_pages;
    f->snap_overrides = p->nnet_overrides;
    if (p->nnet_overrides)
        snprintf(f->snap_tap, sizeof(f->snap_tap), "%s=%s", p->net_overrides[0].iface_id,
                 p->net_overrides[0].host_dev_name);
    f->state = p->resume ? ARCVM_STATE_RUNNING : ARCVM_STATE_PAUSED;
    return 0;
}

static int fake_get_config(void *c, arcvm *vm, struct arcvm_config *o)
{
    (void)c, (void)vm;
    memset(o, 0, sizeof(*o));
    o->vcpus = 2;
    o->mem_bytes = 512ull << 20;
    o->kernel = "/k";
    o->ndisks = 1;
    o->disks[0].path = "/d.img";
    o->disks[0].id = "rootfs";
    return 0;
}

static int fake_disk_rl(void *c, arcvm *vm, const char *id, const struct arcvm_rate_limiter *rl)
{
    (void)vm;
    struct fake *f = c;
    snprintf(f->rl_disk, sizeof(f->rl_disk), "%s", id);
    f->rl = *rl;
    return 0;
}

static int fake_disk_path(void *c, arcvm *vm, const char *id, const char *path)
{
    (void)vm;
    struct fake *f = c;
    if (strstr(path, "busy")) { /* what the library says of an image another process locks */
        snprintf(f->err, sizeof(f->err), "disk %s: disk image %s is in use by another process",
                 id, path);
        return -EBUSY;
    }
    snprintf(f->path_disk, sizeof(f->path_disk), "%s", id);
    snprintf(f->path, sizeof(f->path), "%s", path);
    return 0;
}

static int fake_net_rl(void *c, arcvm *vm, const char *id, const struct arcvm_rate_limiter *rx,
                       const struct arcvm_rate_limiter *tx)
{
    (void)vm;
    struct fake *f = c;
    snprintf(f->rl_disk, sizeof(f->rl_disk), "net:%s", id);
    f->rl_rx_given = rx != NULL;
    if (tx)
        f->rl = *tx;
    return 0;
}

static int fake_pmem_rl(void *c, arcvm *vm, const char *id, const struct arcvm_rate_limiter *rl)
{
    (void)vm;
    struct fake *f = c;
    snprintf(f->rl_disk, sizeof(f->rl_disk), "pmem:%s", id);
    f->rl = *rl;
    return 0;
}

static const struct api_vm_ops fake_ops = {
    .pmem_rate_limiter = fake_pmem_rl,
    .disk_rate_limiter = fake_disk_rl,
    .disk_path = fake_disk_path,
    .net_rate_limiters = fake_net_rl,
    .snapshot_create = fake_snap_create,
    .snapshot_load = fake_snap_load,
    .get_config = fake_get_config,
    .start = fake_start,
    .pause = fake_pause,
    .resume = fake_resume,
    .stop = fake_stop,
    .wait = fake_wait,
    .send_ctrl_alt_del = fake_cad,
    .get_metrics = fake_metrics,
    .get_state = fake_state,
    .state_fd = fake_state_fd,
    .last_error = fake_error,
    .get_vcpu_info = fake_vcpu_info,
};

struct t {
    char dir[64];
    char kernel[128], initrd[128], disk[10][128], log[128], metrics[128];
    struct fake f;
    struct api *a;
    int started_hook;
    char body[8192]; /* the last reply's body */
    json_t *json;    /* ... parsed */
};

static void started_hook(void *arg)
{
    ((struct t *)arg)->started_hook++;
}

static void touch(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
}

static struct api *new_api(struct t *t, const struct api_vm_ops *ops, const char *hv)
{
    struct api_options o = {
        .instance_id = "test-vm-1",
        .console_in = -1,
        .console_out = -1,
        .hv_device = hv,
        .vm_ops = ops,
        .vm_ops_ctx = &t->f,
        .vm_started = started_hook,
        .vm_started_arg = t,
    };
    struct api *a;
    char err[256];
    assert_int_equal(api_create(&o, &a, err, sizeof(err)), 0);
    return a;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    snprintf(t->dir, sizeof(t->dir), "/tmp/arcvm-test-api-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->kernel, sizeof(t->kernel), "%s/vmlinux", t->dir);
    snprintf(t->initrd, sizeof(t->initrd), "%s/initrd", t->dir);
    snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
    snprintf(t->metrics, sizeof(t->metrics), "%s/metrics", t->dir);
    touch(t->kernel);
    touch(t->initrd);
    for (int i = 0; i < 10; i++) {
        snprintf(t->disk[i], sizeof(t->disk[i]), "%s/disk%d.img", t->dir, i);
        touch(t->disk[i]);
    }
    t->f.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(t->f.fd >= 0);
    t->f.state = ARCVM_STATE_CREATED;
    t->a = new_api(t, &fake_ops, NULL);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    api_destroy(t->a);
    json_decref(t->json);
    close(t->f.fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

/* One request; the reply body lands in t->body and t->json. */
static int req_on(struct t *t, struct api *a, const char *method, const char *path,
                  const char *body)
{
    struct api_reply r;
    api_handle(a, method, path, body, body ? strlen(body) : 0, &r);
    snprintf(t->body, sizeof(t->body), "%s", r.body ? r.body : "");
    json_decref(t->json);
    t->json = r.body ? json_loads(r.body, 0, NULL) : NULL;
    if (r.body)
        assert_non_null(t->json); /* every body is JSON */
    if (r.status >= 400)          /* every error carries a fault_message */
        assert_non_null(json_string_value(json_object_get(t->json, "fault_message")));
    if (r.status == 204)
        assert_null(r.body);
    int status = r.status;
    api_reply_release(&r);
    return status;
}

static int req(struct t *t, const char *method, const char *path, const char *body)
{
    return req_on(t, t->a, method, path, body);
}

#define FAULT_HAS(t, s) assert_non_null(strstr((t)->body, (s)))

static const char *jstr(struct t *t, const char *key)
{
    return json_string_value(json_object_get(t->json, key));
}

static json_int_t jint(struct t *t, const char *key)
{
    return json_integer_value(json_object_get(t->json, key));
}

static void put_kernel(struct t *t)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0 reboot=k\"}",
             t->kernel);
    assert_int_equal(req(t, "PUT", "/boot-source", body), 204);
}

static void put_drive(struct t *t, const char *id, int disk, bool root, int expect)
{
    char path[64], body[512];
    snprintf(path, sizeof(path), "/drives/%s", id);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", \"is_root_device\": %s, "
             "\"is_read_only\": false}",
             id, t->disk[disk], root ? "true" : "false");
    assert_int_equal(req(t, "PUT", path, body), expect);
}

/* ---- tests --------------------------------------------------------------- */

static void test_instance_info(void **state)
{
    struct t *t = *state;
    assert_int_equal(req(t, "GET", "/", NULL), 200);
    assert_string_equal(jstr(t, "id"), "test-vm-1");
    assert_string_equal(jstr(t, "state"), "Not started");
    assert_string_equal(jstr(t, "vmm_version"), arcvm_version());
    assert_string_equal(jstr(t, "app_name"), "arcvm");
    assert_int_equal(req(t, "GET", "/version", NULL), 200);
    assert_string_equal(jstr(t, "firecracker_version"), arcvm_version());
    assert_false(api_instance_id_valid(""));
    assert_false(api_instance_id_valid("a_b"));
    assert_false(
        api_instance_id_valid("0123456789012345678901234567890123456789012345678901234567890123X"));
    assert_true(api_instance_id_valid("abc-123"));
}

static void test_machine_config(void **state)
{
    struct t *t = *state;
    assert_int_equal(req(t, "GET", "/machine-config", NULL), 200);
    assert_int_equal(jint(t, "vcpu_count"), 1);
    assert_int_equal(jint(t, "mem_size_mib"), 128); /* Firecracker's default */
    assert_true(json_is_false(json_object_get(t->json, "smt")));
    assert_string_equal(jstr(t, "huge_pages"), "None");

    assert_int_equal(req(t, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"),
                     204);
    assert_int_equal(req(t, "PATCH", "/machine-config", "{\"mem_size_mib\": 512}"), 204);
    assert_int_equal(req(t, "GET", "/machine-config/", NULL), 200); /* trailing '/' */
    assert_int_equal(jint(t, "vcpu_count"), 2);
    assert_int_equal(jint(t, "mem_size_mib"), 512);
    assert_int_equal(req(t, "PUT", "/machine-config",
                         "{\"vcpu_count\": 4, \"mem_size_mib\": 256, \"smt\": false, "
                         "\"track_dirty_pages\": false, \"cpu_template\": \"None\", "
                         "\"huge_pages\": \"None\"}"),
                     204);

    static const struct {
        const char *method, *body, *says;
    } bad[] = {
        {"PUT", "{\"mem_size_mib\": 256}", "missing field 'vcpu_count'"},
        {"PUT", "{\"vcpu_count\": 1, \"mem_size_mib\": 256, \"x\": 1}", "unknown field 'x'"},
        {"PUT", "{\"vcpu_count\": 0, \"mem_size_mib\": 256}", "vCPUs"},
        {"PUT", "{\"vcpu_count\": 33, \"mem_size_mib\": 256}", "vCPUs"},
        {"PUT", "{\"vcpu_count\": -1, \"mem_size_mib\": 256}", "non-negative integer"},
        {"PUT", "{\"vcpu_count\": \"2\", \"mem_size_mib\": 256}", "non-negative integer"},
        {"PUT", "{\"vcpu_count\": 1.5, \"mem_size_mib\": 256}", "non-negative integer"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"smt\": true}", "smt"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"track_dirty_pages\": 1}",
         "track_dirty_pages"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"cpu_template\": \"T2\"}",
         "not supported"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"cpu_template\": \"Q9\"}",
         "not a CPU template"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 257, \"huge_pages\": \"2M\"}",
         "not a multiple of 2"},
        {"PATCH", "{\"huge_pages\": \"Transparent\", \"mem_size_mib\": 129}", "not a multiple of 2"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"huge_pages\": \"2m\"}", "not valid"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"huge_pages\": \"1G\"}", "not valid"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 0}", "must not be 0"},
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 32}", "too small"}, /* the library's */
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 99999999999999}", "too large"},
        {"PATCH", "{}", "Empty PATCH request"},
        {"PATCH", "{\"smt\": true}", "smt"},
        {"PATCH", "{\"vcpu_count\": 64}", "vCPUs"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(req(t, bad[i].method, "/machine-config", bad[i].body), 400);
        if (!strstr(t->body, bad[i].says))
            fail_msg("%s %s: '%s' lacks '%s'", bad[i].method, bad[i].body, t->body, bad[i].says);
    }
    /* A failed update changes nothing. */
    assert_int_equal(req(t, "GET", "/machine-config", NULL), 200);
    assert_int_equal(jint(t, "vcpu_count"), 4);
    assert_int_equal(jint(t, "mem_size_mib"), 256);
    assert_string_equal(jstr(t, "huge_pages"), "None");
    /* Huge pages: kept until changed, a PATCH without them leaves them. */
    assert_int_equal(req(t, "PATCH", "/machine-config", "{\"huge_pages\": \"2M\"}"), 204);
    assert_int_equal(req(t, "PATCH", "/machine-config", "{\"vcpu_count\": 3}"), 204);
    assert_int_equal(req(t, "GET", "/machine-config", NULL), 200);
    assert_string_equal(jstr(t, "huge_pages"), "2M");
    assert_int_equal(req(t, "PATCH", "/machine-config", "{\"mem_size_mib\": 255}"), 400);
    assert_int_equal(req(t, "PUT", "/machine-config",
                         "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"huge_pages\": \"Transparent\"}"),
                     204);
    assert_int_equal(req(t, "GET", "/machine-config", NULL), 200);
    assert_string_equal(jstr(t, "huge_pages"), "Transparent");
}

static void test_bodies_and_paths(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *method, *path, *body;
        int status;
        const char *says;
    } cases[] = {
        {"PUT", "/machine-config", "{\"vcpu_count\": 2,", 400, "deserializing"},
        {"PUT", "/machine-config", "{\"vcpu_count\": 2, \"vcpu_count\": 3, \"mem_size_mib\": 256}",
         400, "duplicate"},
        {"PUT", "/machine-config", "[1, 2]", 400, "JSON object"},
        {"PUT", "/machine-config", "{} {}", 400, "deserializing"},
        {"PUT", "/machine-config", "nul\x01", 400, "deserializing"},
        {"PUT", "/machine-config", NULL, 400, "Empty PUT request"},
        {"PATCH", "/vm", NULL, 400, "Empty PATCH request"},
        {"GET", "/machine-config", "{}", 400, "GET request cannot have a body"},
        {"GET", "/nope", NULL, 404, "Invalid request method and/or path: GET /nope."},
        {"GET", "/machine-config/extra", NULL, 404, "Invalid request"},
        {"GET", "/a/b/c/d", NULL, 404, "Invalid request"},
        {"GET", "machine-config", NULL, 404, "Invalid request"},
        {"DELETE", "/machine-config", NULL, 405, "Invalid request method and/or path"},
        {"POST", "/actions", "{}", 405, "Invalid request"},
        {"GET", "/boot-source", NULL, 405, "Invalid request"},
        {"GET", "/drives", NULL, 400, "The ID cannot be empty."},
        {"PUT", "/drives/", "{}", 400, "The ID cannot be empty."},
        {"PUT", "/drives/a-b", "{}", 400, "alphanumeric characters and underscores"},
        {"PUT", "/drives/a%20b", "{}", 400, "alphanumeric"},
        {"PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400, "not valid"},
        {"PUT", "/actions", "{\"action_type\": 1}", 400, "must be a string"},
        {"PUT", "/actions", "{}", 400, "missing field 'action_type'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int s = req(t, cases[i].method, cases[i].path, cases[i].body);
        if (s != cases[i].status || !strstr(t->body, cases[i].says))
            fail_msg("%s %s: %d '%s', want %d '%s'", cases[i].method, cases[i].path, s, t->body,
                     cases[i].status, cases[i].says);
    }
    /* The Allow header's methods for a 405. */
    struct api_reply r;
    api_handle(t->a, "DELETE", "/machine-config", NULL, 0, &r);
    assert_string_equal(r.allow, "GET, PUT, PATCH");
    api_reply_release(&r);
    api_handle(t->a, "GET", "/actions", NULL, 0, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "PUT");
    api_reply_release(&r);

    /* A body over the cap (Firecracker's 51200 bytes by default): 413. */
    size_t big = API_MAX_BODY_DEFAULT + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    api_handle(t->a, "PUT", "/machine-config", huge, big, &r);
    assert_int_equal(r.status, 413);
    api_reply_release(&r);
    free(huge);

    /* A long path is refused, not truncated. */
    char path[2048];
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[sizeof(path) - 1] = 0;
    assert_int_equal(req(t, "GET", path, NULL), 404);

    /* A path that is not UTF-8, or a quoted one cut inside a character,
     * still gets its 404 with a JSON fault (found by fuzz_api). */
    assert_int_equal(req(t, "GET", "/\xff\xc3x\xed\xa0\x80", NULL), 404);
    FAULT_HAS(t, "GET /??x???.");
    for (size_t i = 1; i + 2 < sizeof(path); i += 2)
        memcpy(path + i, "\xc3\xa9", 2); /* 'e' with an acute accent */
    assert_int_equal(req(t, "GET", path, NULL), 404);
}

static void test_boot_source(void **state)
{
    struct t *t = *state;
    char body[512];
    assert_int_equal(req(t, "PUT", "/boot-source", "{\"kernel_image_path\": \"/nonexistent/k\"}"),
                     400);
    FAULT_HAS(t, "The kernel file cannot be opened");
    assert_int_equal(req(t, "PUT", "/boot-source", "{\"boot_args\": \"x\"}"), 400);
    FAULT_HAS(t, "missing field 'kernel_image_path'");
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"/no/initrd\"}",
             t->kernel);
    assert_int_equal(req(t, "PUT", "/boot-source", body), 400);
    FAULT_HAS(t, "The initrd file cannot be opened");
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"kernel\": 1}", t->kernel);
    assert_int_equal(req(t, "PUT", "/boot-source", body), 400);
    FAULT_HAS(t, "unknown field 'kernel'");
    snprintf(body, sizeof(body),
             "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", \"boot_args\": null}",
             t->kernel, t->initrd);
    assert_int_equal(req(t, "PUT", "/boot-source", body), 204);

    /* Without boot_args: appended to arcvm's defaults. */
    int replace = -1;
    char *cl = api_kernel_cmdline(t->a, &replace);
    assert_string_equal(cl, "");
    assert_int_equal(replace, 0);
    free(cl);
    put_drive(t, "rootfs", 0, true, 204);
    cl = api_kernel_cmdline(t->a, &replace);
    assert_string_equal(cl, "root=/dev/vda rw");
    assert_int_equal(replace, 0);
    free(cl);
    /* With boot_args: they replace the defaults, root= follows. */
    put_kernel(t);
    cl = api_kernel_cmdline(t->a, &replace);
    assert_string_equal(cl, "console=ttyS0 reboot=k root=/dev/vda rw");
    assert_int_equal(replace, 1);
    free(cl);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
             "\"is_read_only\": true, \"partuuid\": \"0eaa91a0-01\"}",
             t->disk[0]);
    assert_int_equal(req(t, "PUT", "/drives/rootfs", body), 204);
    cl = api_kernel_cmdline(t->a, &replace);
    assert_string_equal(cl, "console=ttyS0 reboot=k root=PARTUUID=0eaa91a0-01 ro");
    free(cl);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *bs = json_object_get(t->json, "boot-source");
    assert_string_equal(json_string_value(json_object_get(bs, "kernel_image_path")), t->kernel);
    assert_string_equal(json_string_value(json_object_get(bs, "boot_args")),
                        "console=ttyS0 reboot=k");
}

static const char *drive_at(struct t *t, size_t i)
{
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *d = json_array_get(json_object_get(t->json, "drives"), i);
    return json_string_value(json_object_get(d, "drive_id"));
}

static void test_drives(void **state)
{
    struct t *t = *state;
    put_drive(t, "data1", 1, false, 204);
    put_drive(t, "data2", 2, false, 204);
    put_drive(t, "rootfs", 0, true, 204);
    /* Firecracker's order: the root drive first, the others as PUT. */
    assert_string_equal(drive_at(t, 0), "rootfs");
    assert_string_equal(drive_at(t, 1), "data1");
    assert_string_equal(drive_at(t, 2), "data2");
    assert_null(drive_at(t, 3));
    put_drive(t, "root2", 3, true, 400);
    FAULT_HAS(t, "A root block device already exists!");
    put_drive(t, "data1", 4, false, 204); /* an update keeps its place */
    assert_string_equal(drive_at(t, 1), "data1");
    json_t *d = json_array_get(json_object_get(t->json, "drives"), 1);
    assert_string_equal(json_string_value(json_object_get(d, "path_on_host")), t->disk[4]);
    assert_string_equal(json_string_value(json_object_get(d, "cache_type")), "Unsafe");
    assert_string_equal(json_string_value(json_object_get(d, "io_engine")), "Sync");
    assert_true(json_is_null(json_object_get(d, "rate_limiter")));

    char body[1024];
    static const struct {
        const char *path, *extra, *says;
    } bad[] = {
        {"/drives/other", "", "does not match the id from the body"},
        {"/drives/d9", ", \"rate_limiter\": {\"bandwidth\": {\"size\": 1}}",
         "missing field 'refill_time'"},
        {"/drives/d9", ", \"rate_limiter\": {\"speed\": 1}", "unknown field 'speed'"},
        {"/drives/d9", ", \"socket\": \"/tmp/vhost.sock\"", "vhost-user"},
        {"/drives/d9", ", \"cache_type\": \"Fast\"", "cache_type 'Fast' is not valid"},
        {"/drives/d9", ", \"io_engine\": \"Uring\"", "io_engine 'Uring' is not valid"},
        {"/drives/d9", ", \"partuuid\": \"1234 init=/bin/sh\"", "not a partition UUID"},
        {"/drives/d9", ", \"is_read_only\": \"no\"", "must be a boolean"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"drive_id\": \"d9\", \"path_on_host\": \"%s\", \"is_root_device\": false%s}",
                 t->disk[5], bad[i].extra);
        assert_int_equal(req(t, "PUT", bad[i].path, body), 400);
        if (!strstr(t->body, bad[i].says))
            fail_msg("%s: '%s' lacks '%s'", bad[i].extra, t->body, bad[i].says);
    }
    assert_int_equal(req(t, "PUT", "/drives/d9",
                         "{\"drive_id\": \"d9\", \"path_on_host\": \"/no/such.img\", "
                         "\"is_root_device\": false}"),
                     400);
    FAULT_HAS(t, "Cannot open block device");
    assert_int_equal(req(t, "PUT", "/drives/d9",
                         "{\"drive_id\": \"d9\", \"path_on_host\": \"/tmp/a,b\", "
                         "\"is_root_device\": false}"),
                     400);
    assert_int_equal(
        req(t, "PUT", "/drives/d9", "{\"drive_id\": \"d9\", \"is_root_device\": false}"), 400);
    FAULT_HAS(t, "path_on_host is required");
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"d9\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
             "\"cache_type\": \"Writeback\", \"io_engine\": \"Async\", \"rate_limiter\": null}",
             t->disk[5]);
    assert_int_equal(req(t, "PUT", "/drives/d9", body), 204);
    /* A rate limiter is kept and shown as given. */
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"d9\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
             "\"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"one_time_burst\": 7, "
             "\"refill_time\": 100}}}",
             t->disk[5]);
    assert_int_equal(req(t, "PUT", "/drives/d9", body), 204);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *drives = json_object_get(t->json, "drives");
    json_t *rl = json_object_get(json_array_get(drives, json_array_size(drives) - 1), "rate_limiter");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rl, "bandwidth"), "size")),
                     1048576);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(rl, "bandwidth"), "refill_time")), 100);
    assert_true(json_is_null(json_object_get(rl, "ops")));
    /* At most 8 drives (arcvm's limit). */
    for (int i = 6; i < 11; i++) {
        char id[8];
        snprintf(id, sizeof(id), "x%d", i);
        put_drive(t, id, i % 10, false, i < 10 ? 204 : 400);
    }
    FAULT_HAS(t, "at most 8 drives");
    /* PATCH is a post-boot operation. */
    assert_int_equal(
        req(t, "PATCH", "/drives/data1", "{\"drive_id\": \"data1\", \"path_on_host\": \"/x\"}"),
        400);
    FAULT_HAS(t, "not supported before starting the microVM");
    /* A long drive id is kept whole by the API (the guest's serial is cut
     * to 20 characters). */
    api_destroy(t->a);
    t->a = new_api(t, &fake_ops, NULL);
    put_drive(t, "a_very_long_drive_id_of_40_characters_xx", 1, false, 204);
    assert_string_equal(drive_at(t, 0), "a_very_long_drive_id_of_40_characters_xx");
}

static int put_share(struct t *t, const char *tag, const char *path, const char *extra)
{
    char url[128], body[1024];
    snprintf(url, sizeof(url), "/shared-dirs/%s", tag);
    snprintf(body, sizeof(body), "{\"tag\": \"%s\", \"host_path\": \"%s\"%s}", tag, path,
             extra ? extra : "");
    return req(t, "PUT", url, body);
}

/* The shared directory at @i in GET /vm/config (NULL past the end). */
static json_t *share_at(struct t *t, size_t i)
{
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    return json_array_get(json_object_get(t->json, "shared-dirs"), i);
}

/* PUT /shared-dirs/{tag}: arcvm's virtio-fs extension, checked as
 * Firecracker checks its resources, kept in order, shown in GET /vm/config
 * and handed to the library at InstanceStart. */
static void test_shared_dirs(void **state)
{
    struct t *t = *state;
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    assert_int_equal(json_array_size(json_object_get(t->json, "shared-dirs")), 0);
    assert_int_equal(put_share(t, "src", t->dir, NULL), 204);
    assert_int_equal(put_share(t, "data_2", "/tmp", ", \"read_only\": true"), 204);
    json_t *s = share_at(t, 0);
    assert_string_equal(json_string_value(json_object_get(s, "tag")), "src");
    assert_string_equal(json_string_value(json_object_get(s, "host_path")), t->dir);
    assert_true(json_is_false(json_object_get(s, "read_only")));
    s = share_at(t, 1);
    assert_string_equal(json_string_value(json_object_get(s, "tag")), "data_2");
    assert_true(json_is_true(json_object_get(s, "read_only")));
    assert_null(share_at(t, 2));
    /* A PUT of a known tag replaces it in its place. */
    assert_int_equal(put_share(t, "src", "/", ", \"read_only\": true"), 204);
    s = share_at(t, 0);
    assert_string_equal(json_string_value(json_object_get(s, "host_path")), "/");
    assert_true(json_is_true(json_object_get(s, "read_only")));
    assert_null(share_at(t, 2));

    char long_tag[40];
    memset(long_tag, 'a', 37);
    long_tag[37] = 0;
    static const struct {
        const char *path, *body, *says;
    } bad[] = {
        {"/shared-dirs/x", "{\"host_path\": \"/tmp\"}", "missing field 'tag'"},
        {"/shared-dirs/x", "{\"tag\": \"x\"}", "missing field 'host_path'"},
        {"/shared-dirs/x", "{\"tag\": \"x\", \"host_path\": 7}", "host_path"},
        {"/shared-dirs/x", "{\"tag\": \"x\", \"host_path\": \"/tmp\", \"read_only\": \"yes\"}",
         "must be a boolean"},
        {"/shared-dirs/x", "{\"tag\": \"x\", \"host_path\": \"/tmp\", \"cache\": \"always\"}",
         "unknown field 'cache'"},
        {"/shared-dirs/x", "{\"tag\": \"y\", \"host_path\": \"/tmp\"}",
         "does not match the id from the body"},
        {"/shared-dirs/a-b", "{\"tag\": \"a-b\", \"host_path\": \"/tmp\"}", "alphanumeric"},
        {"/shared-dirs/", "{\"tag\": \"\", \"host_path\": \"/tmp\"}", "The ID cannot be empty."},
        {"/shared-dirs/x", "{\"tag\": \"x\", \"host_path\": \"/no/such/dir\"}",
         "is not a directory arcvm can open (No such file or directory)"},
        {"/shared-dirs/x", "{\"tag\": \"x\", \"host_path\": \"\"}", "is not a directory"},
        {"/shared-dirs/x", "{\"tag\": \"x\", \"host_path\": \"/dev/null\"}",
         "is not a directory arcvm can open (Not a directory)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(req(t, "PUT", bad[i].path, bad[i].body), 400);
        if (!strstr(t->body, bad[i].says))
            fail_msg("%s: '%s' lacks '%s'", bad[i].body, t->body, bad[i].says);
    }
    assert_int_equal(put_share(t, long_tag, "/tmp", NULL), 400);
    FAULT_HAS(t, "longer than 36 characters");
    long_tag[36] = 0;
    assert_int_equal(put_share(t, long_tag, "/tmp", NULL), 204); /* 36 is the limit */
    /* A file refused does not take a place; at most 4 (the CLI's limit). */
    assert_int_equal(put_share(t, "four", "/tmp", NULL), 204);
    assert_int_equal(put_share(t, "five", "/tmp", NULL), 400);
    FAULT_HAS(t, "at most 4 shared directories");
    assert_int_equal(put_share(t, "four", t->dir, NULL), 204); /* replacing still works */
    /* Handed to the library at InstanceStart: arcvm_add_share() took all
     * four (a refusal would fail the start). */
    put_kernel(t);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(put_share(t, "five", "/tmp", NULL), 400);
    FAULT_HAS(t, "not supported after starting the microVM");
    assert_int_equal(req(t, "GET", "/shared-dirs/src", NULL), 405);
}

/* A network interface's JSON in GET /vm/config, at @i. */
static const char *net_field(struct t *t, size_t i, const char *key)
{
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *n = json_array_get(json_object_get(t->json, "network-interfaces"), i);
    return json_string_value(json_object_get(n, key));
}

static int put_net(struct t *t, const char *id, const char *tap, const char *mac)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"iface_id\": \"%s\", \"host_dev_name\": \"%s\"%s%s%s}", id,
             tap, mac ? ", \"guest_mac\": \"" : "", mac ? mac : "", mac ? "\"" : "");
    char path[64];
    snprintf(path, sizeof(path), "/network-interfaces/%s", id);
    return req(t, "PUT", path, body);
}

static void test_network_interfaces(void **state)
{
    struct t *t = *state;
    assert_int_equal(put_net(t, "eth0", "tap0", "AA:FC:00:00:00:01"), 204);
    assert_string_equal(net_field(t, 0, "host_dev_name"), "tap0");
    assert_string_equal(net_field(t, 0, "guest_mac"), "AA:FC:00:00:00:01");
    /* One TAP and one MAC per interface. */
    assert_int_equal(put_net(t, "eth1", "tap0", NULL), 400);
    FAULT_HAS(t, "tap0 is already in use by interface 'eth0'");
    assert_int_equal(put_net(t, "eth1", "tap1", "aa:fc:00:00:00:01"), 400);
    FAULT_HAS(t, "already in use by interface 'eth0'");
    assert_int_equal(put_net(t, "eth1", "tap1", "01:00:5e:00:00:01"), 400);
    FAULT_HAS(t, "multicast");
    /* Names the kernel would refuse, or that would break arcvm's syntax. */
    static const char *bad[] = {"", "tap0123456789abc", "a/b", "a,b", "a b", "..", "a:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (put_net(t, "eth1", bad[i], NULL) != 400 ||
            !strstr(t->body, "not a network interface name"))
            fail_msg("host_dev_name '%s': '%s'", bad[i], t->body);
    }
    /* PUT again replaces, keeping the place. */
    assert_int_equal(put_net(t, "eth1", "tap1", NULL), 204);
    assert_int_equal(put_net(t, "eth0", "tap2", NULL), 204);
    assert_string_equal(net_field(t, 0, "iface_id"), "eth0");
    assert_string_equal(net_field(t, 0, "host_dev_name"), "tap2");
    assert_null(net_field(t, 0, "guest_mac"));
    assert_string_equal(net_field(t, 1, "host_dev_name"), "tap1");
    assert_int_equal(put_net(t, "eth2", "tap3", NULL), 204);
    assert_int_equal(put_net(t, "eth3", "tap4", NULL), 204);
    assert_int_equal(put_net(t, "eth4", "tap5", NULL), 400);
    FAULT_HAS(t, "at most 4 interfaces");
    /* They reach the library: the start succeeds with all four. */
    put_kernel(t);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(t->f.starts, 1);
    assert_int_equal(put_net(t, "eth0", "tap0", NULL), 400);
    FAULT_HAS(t, "not supported after starting the microVM");
    /* PATCH changes the rate limiters named, the others stay. */
    assert_int_equal(req(t, "PATCH", "/network-interfaces/eth0",
                         "{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"bandwidth\": "
                         "{\"size\": 2500000, \"refill_time\": 1000}}}"),
                     204);
    assert_string_equal(t->f.rl_disk, "net:eth0");
    assert_false(t->f.rl_rx_given);
    assert_int_equal(t->f.rl.bandwidth.size, 2500000);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *n0 = json_array_get(json_object_get(t->json, "network-interfaces"), 0);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(n0, "tx_rate_limiter"), "bandwidth"),
                         "size")),
                     2500000);
    assert_true(json_is_null(json_object_get(n0, "rx_rate_limiter")));
}

static void test_unsupported_devices(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *method, *path, *body;
        const char *says;
    } cases[] = {
        {"PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}",
         "missing field 'host_dev_name'"},
        {"PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap0\"}",
         "does not match"},
        {"PUT", "/network-interfaces/eth0",
         "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"zz\"}",
         "not a MAC address"},
        {"PUT", "/network-interfaces/eth0",
         "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"mtu\": 1500}",
         "unknown field 'mtu'"},
        {"PUT", "/network-interfaces/eth0",
         "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"rx_rate_limiter\": "
         "{\"ops\": {\"size\": -1, \"refill_time\": 1}}}",
         "non-negative"},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", "before starting"},
        {"PUT", "/vsock", "{\"guest_cid\": 2, \"uds_path\": \"/tmp/v.sock\"}", "reserved"},
        {"PUT", "/vsock", "{\"uds_path\": \"/tmp/v.sock\"}", "missing field 'guest_cid'"},
        {"PUT", "/balloon", "{\"amount_mib\": 10}", "missing field 'deflate_on_oom'"},
        {"PATCH", "/balloon", "{\"amount_mib\": 10}", "No balloon device is configured"},
        {"GET", "/balloon", NULL, "No balloon device is configured"},
        {"GET", "/balloon/statistics", NULL, "No balloon device is configured"},
        {"PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 1}",
         "No balloon device is configured"},
        {"PATCH", "/mmds", "{\"a\": 1}", "not initialized"},
        {"PUT", "/snapshot/create", "{\"snapshot_path\": \"x\", \"mem_file_path\": \"y\"}",
         "before starting the microVM"},
        {"PUT", "/entropy", "{\"rate_limiter\": {\"ops\": {\"size\": 1}}}",
         "missing field 'refill_time'"},
        {"PUT", "/entropy", "{\"rate\": 1}", "unknown field 'rate'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int s = req(t, cases[i].method, cases[i].path, cases[i].body);
        if (s != 400 || !strstr(t->body, cases[i].says))
            fail_msg("%s %s: %d '%s' lacks '%s'", cases[i].method, cases[i].path, s, t->body,
                     cases[i].says);
    }
    assert_int_equal(req(t, "PUT", "/entropy",
                         "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}}}"),
                     204);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(json_object_get(t->json, "entropy"),
                                                         "rate_limiter"),
                                         "bandwidth"),
                         "size")),
                     1000);
    assert_int_equal(req(t, "PUT", "/entropy", "{}"), 204);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    assert_true(json_is_object(json_object_get(t->json, "entropy")));
    assert_true(json_is_null(json_object_get(json_object_get(t->json, "entropy"), "rate_limiter")));
    assert_int_equal(json_array_size(json_object_get(t->json, "network-interfaces")), 0);
    assert_true(json_is_null(json_object_get(t->json, "vsock")));
    assert_true(json_is_null(json_object_get(t->json, "balloon")));

    /* vsock before boot: kept and shown. */
    assert_int_equal(req(t, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"}"),
                     204);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(t->json, "vsock"), "guest_cid")), 3);

    /* The balloon before boot: configured, updated, shown. */
    assert_int_equal(req(t, "PUT", "/balloon",
                         "{\"amount_mib\": 10, \"deflate_on_oom\": true, "
                         "\"stats_polling_interval_s\": 2}"),
                     204);
    assert_int_equal(req(t, "PATCH", "/balloon", "{\"amount_mib\": 32}"), 204);
    assert_int_equal(req(t, "GET", "/balloon", NULL), 200);
    assert_int_equal(json_integer_value(json_object_get(t->json, "amount_mib")), 32);
    assert_true(json_is_true(json_object_get(t->json, "deflate_on_oom")));
    assert_int_equal(json_integer_value(json_object_get(t->json, "stats_polling_interval_s")), 2);
    assert_int_equal(req(t, "GET", "/balloon/statistics", NULL), 400);
    assert_non_null(strstr(t->body, "has not started"));
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(t->json, "balloon"), "amount_mib")), 32);
}

static char *slurp(const char *path)
{
    static char buf[65536];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n >= 0);
    buf[n] = 0;
    close(fd);
    return buf;
}

static void test_logger(void **state)
{
    struct t *t = *state;
    char body[512];
    snprintf(body, sizeof(body),
             "{\"log_path\": \"%s\", \"level\": \"dEbUg\", \"show_level\": true, "
             "\"show_log_origin\": false, \"module\": \"api_server\"}",
             t->log);
    assert_int_equal(req(t, "PUT", "/logger", body), 204);
    assert_int_equal(req(t, "GET", "/machine-config", NULL), 200);
    assert_int_equal(req(t, "GET", "/nowhere", NULL), 404);
    const char *log = slurp(t->log);
    assert_non_null(strstr(log, "arcvm: debug: api: GET /machine-config: 200"));
    assert_non_null(strstr(log, "arcvm: info: api: GET /nowhere: 404"));
    assert_int_equal(req(t, "PUT", "/logger", "{\"level\": \"Loud\"}"), 400);
    FAULT_HAS(t, "Invalid value for logger level: Loud");
    assert_int_equal(req(t, "PUT", "/logger", "{\"log_path\": \"/nonexistent/dir/log\"}"), 400);
    FAULT_HAS(t, "cannot open the log file");
    /* Off: nothing more reaches the file. */
    assert_int_equal(req(t, "PUT", "/logger", "{\"level\": \"Off\"}"), 204);
    size_t before = strlen(slurp(t->log));
    assert_int_equal(req(t, "GET", "/nowhere", NULL), 404);
    assert_int_equal(strlen(slurp(t->log)), before);
    assert_int_equal(req(t, "PUT", "/logger", "{\"level\": \"Info\"}"), 204);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *l = json_object_get(t->json, "logger");
    assert_string_equal(json_string_value(json_object_get(l, "level")), "Info");
    assert_string_equal(json_string_value(json_object_get(l, "log_path")), t->log);
    assert_int_equal(req(t, "GET", "/nowhere", NULL), 404);
    assert_true(strlen(slurp(t->log)) > before);
}

static void test_metrics(void **state)
{
    struct t *t = *state;
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), 400);
    FAULT_HAS(t, "Metrics are not configured");
    char body[512];
    snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", t->metrics);
    assert_int_equal(req(t, "PUT", "/metrics", body), 204);
    assert_int_equal(req(t, "PUT", "/metrics", body), 400);
    FAULT_HAS(t, "Reinitialization of metrics not allowed.");
    assert_int_equal(req(t, "GET", "/", NULL), 200);
    assert_int_equal(req(t, "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 1}"),
                     400);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), 204);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), 204);
    /* Two lines; the second counts only what happened after the first. */
    char *text = slurp(t->metrics);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = 0;
    json_t *m1 = json_loads(text, 0, NULL), *m2 = json_loads(nl + 1, 0, NULL);
    assert_non_null(m1);
    assert_non_null(m2);
    assert_true(json_integer_value(json_object_get(m1, "utc_timestamp_ms")) > 1600000000000ll);
    json_t *put1 = json_object_get(m1, "put_api_requests");
    assert_int_equal(json_integer_value(json_object_get(put1, "metrics_count")), 2);
    assert_int_equal(json_integer_value(json_object_get(put1, "metrics_fails")), 1);
    assert_int_equal(json_integer_value(json_object_get(put1, "machine_cfg_fails")), 1);
    assert_int_equal(json_integer_value(json_object_get(put1, "actions_count")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m1, "get_api_requests"),
                                                        "instance_info_count")),
                     1);
    json_t *put2 = json_object_get(m2, "put_api_requests");
    assert_int_equal(json_integer_value(json_object_get(put2, "metrics_count")), 0);
    assert_int_equal(json_integer_value(json_object_get(put2, "actions_count")), 1);
    assert_non_null(json_object_get(m2, "vcpu"));
    assert_non_null(json_object_get(m2, "block"));
    json_decref(m1);
    json_decref(m2);
}

static void test_metrics_render(void **state)
{
    (void)state;
    struct api_metrics m;
    memset(&m, 0, sizeof(m));
    uint64_t ctr[API_CTR_COUNT] = {0};
    struct arcvm_metrics vm;
    memset(&vm, 0, sizeof(vm));
    vm.exits_io_in = 10;
    vm.exits_mmio_write = 7;
    vm.ndevices = 5;
    snprintf(vm.devices[3].kind, sizeof(vm.devices[3].kind), "virtio-net");
    snprintf(vm.devices[3].id, sizeof(vm.devices[3].id), "eth0");
    vm.devices[3].in_bytes = 1500;
    vm.devices[3].out_bytes = 60;
    snprintf(vm.devices[4].kind, sizeof(vm.devices[4].kind), "virtio-net");
    snprintf(vm.devices[4].id, sizeof(vm.devices[4].id), "eth1");
    vm.devices[4].in_bytes = 100;
    snprintf(vm.devices[0].kind, sizeof(vm.devices[0].kind), "virtio-blk");
    snprintf(vm.devices[1].kind, sizeof(vm.devices[1].kind), "virtio-rng");
    snprintf(vm.devices[2].kind, sizeof(vm.devices[2].kind), "virtio-blk");
    vm.devices[0].in_bytes = 4096;
    vm.devices[2].in_bytes = 512;
    vm.devices[2].out_bytes = 1024;
    vm.devices[1].in_bytes = 64;
    vm.console_dropped_rate = 300;
    vm.console_dropped_room = 7;
    const char *ids[] = {"rootfs", "scratch"};
    struct api_metrics_input in = {
        .utc_ms = 1, .ctr = ctr, .vm = &vm, .drive_ids = ids, .ndrives = 2};
    ctr[API_CTR_PUT_DRIVE] = 2;
    char *line = api_metrics_render(&m, &in);
    assert_non_null(line);
    assert_int_equal(line[strlen(line) - 1], '\n');
    json_t *j = json_loads(line, 0, NULL);
    free(line);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "vcpu"), "exit_io_in")),
                     10);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "block"), "read_bytes")),
                     4608);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "block_rootfs"), "read_bytes")),
        4096);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "block_scratch"), "write_bytes")),
        1024);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "entropy"), "entropy_bytes")), 64);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "net_eth0"), "tx_bytes_count")), 60);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "net"), "rx_bytes_count")), 1600);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "put_api_requests"), "drive_count")),
        2);
    json_t *uart = json_object_get(j, "uart");
    assert_int_equal(json_integer_value(json_object_get(uart, "rate_limiter_dropped_bytes")), 300);
    assert_int_equal(json_integer_value(json_object_get(uart, "missed_write_count")), 7);
    json_decref(j);
    /* The next line holds differences only. */
    vm.exits_io_in = 15;
    vm.devices[0].in_bytes = 5000;
    line = api_metrics_render(&m, &in);
    j = json_loads(line, 0, NULL);
    free(line);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "vcpu"), "exit_io_in")),
                     5);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "block_rootfs"), "read_bytes")), 904);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "put_api_requests"), "drive_count")),
        0);
    json_decref(j);
}

static void test_lifecycle(void **state)
{
    struct t *t = *state;
    /* Before start: the post-boot operations are refused. */
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 400);
    FAULT_HAS(t, "not supported before starting the microVM");
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}"), 400);
    FAULT_HAS(t, "not supported before starting the microVM");
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 400);
    FAULT_HAS(t, "Cannot start microvm without kernel configuration.");
    assert_int_equal(t->f.starts, 0);
    assert_int_equal(api_vm_fd(t->a), -1);
    assert_int_equal(api_stop(t->a), -EINVAL);
    assert_int_equal(req(t, "GET", "/vcpus", NULL), 400);
    FAULT_HAS(t, "not running");

    put_kernel(t);
    put_drive(t, "rootfs", 0, true, 204);
    assert_int_equal(req(t, "PUT", "/entropy", "{}"), 204);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(t->f.starts, 1);
    assert_int_equal(t->started_hook, 1);
    assert_true(api_started(t->a));
    assert_int_equal(api_vm_fd(t->a), t->f.fd);
    assert_false(api_vm_event(t->a)); /* running: nothing to do */
    assert_int_equal(req(t, "GET", "/", NULL), 200);
    assert_string_equal(jstr(t, "state"), "Running");

    /* The vCPU report: every field, the program counter in hex (a 64-bit
     * address is past JSON's safe integers), null when unknown. */
    assert_int_equal(req(t, "GET", "/vcpus", NULL), 200);
    json_t *v = json_object_get(t->json, "vcpus");
    assert_int_equal(json_array_size(v), 2);
    json_t *v0 = json_array_get(v, 0), *v1 = json_array_get(v, 1);
    assert_string_equal(json_string_value(json_object_get(v0, "pc")), "0xffffffff81a3c2b4");
    assert_string_equal(json_string_value(json_object_get(v0, "state")), "in guest");
    assert_string_equal(json_string_value(json_object_get(v0, "last_exit")), "io");
    assert_true(json_is_true(json_object_get(v0, "answered")));
    assert_int_equal(json_integer_value(json_object_get(v0, "exits")), 5012);
    assert_int_equal(json_integer_value(json_object_get(v0, "interrupted_runs")), 3);
    assert_true(json_is_null(json_object_get(v1, "pc")));
    assert_true(json_is_false(json_object_get(v1, "answered")));
    assert_int_equal(json_integer_value(json_object_get(v1, "state_ms")), 20004);
    assert_int_equal(req(t, "PUT", "/vcpus", "{}"), 405);
    struct arcvm_vcpu_info vi[2];
    char line[256];
    assert_int_equal(api_vcpu_info(t->a, vi, 2), 2);
    arcvm_vcpu_info_format(&vi[0], line, sizeof(line));
    assert_string_equal(line, "vcpu0: in guest for 12 ms, pc 0xffffffff81a3c2b4, last exit io, "
                              "5012 exits, 3 kicks, 3 interrupted runs");
    arcvm_vcpu_info_format(&vi[1], line, sizeof(line));
    assert_non_null(strstr(line, "vcpu1: in guest for 20004 ms, NO ANSWER within 500 ms"));

    /* After start: pre-boot operations are refused, the VM untouched. */
    static const struct {
        const char *method, *path, *body;
    } pre[] = {
        {"PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"},
        {"PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"},
        {"PATCH", "/machine-config", "{\"vcpu_count\": 2}"},
        {"PUT", "/boot-source", "{\"kernel_image_path\": \"/x\"}"},
        {"PUT", "/drives/rootfs",
         "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/x\", \"is_root_device\": true}"},
        {"PUT", "/entropy", "{}"},
        {"PUT", "/logger", "{\"level\": \"Debug\"}"},
        {"PUT", "/metrics", "{\"metrics_path\": \"/tmp/m\"}"},
        {"PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\"}"},
        {"PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"}"},
        {"PUT", "/balloon", "{\"amount_mib\": 10, \"deflate_on_oom\": true}"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 1024}"},
    };
    for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
        assert_int_equal(req(t, pre[i].method, pre[i].path, pre[i].body), 400);
        if (!strstr(t->body,
                    "The requested operation is not supported after starting the microVM."))
            fail_msg("%s %s: '%s'", pre[i].method, pre[i].path, t->body);
    }
    assert_int_equal(t->f.starts, 1);
    assert_int_equal(req(t, "GET", "/machine-config", NULL), 200);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);

    /* Pause and resume, and the illegal transitions with the VM's message. */
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 400);
    FAULT_HAS(t, "cannot resume a VM that is running");
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
    assert_int_equal(req(t, "GET", "/", NULL), 200);
    assert_string_equal(jstr(t, "state"), "Paused");
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 400);
    FAULT_HAS(t, "cannot pause a VM that is paused");
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 204);
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Running\"}"), 400);
    FAULT_HAS(t, "choose Paused or Resumed");
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}"), 204);
    assert_int_equal(t->f.cads, 1);

    /* A new backing file that does not exist. */
    assert_int_equal(
        req(t, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/x\"}"),
        400);
    FAULT_HAS(t, "Invalid permission/path");
    assert_int_equal(req(t, "PATCH", "/drives/nope", "{\"drive_id\": \"nope\"}"), 400);
    FAULT_HAS(t, "No drive with id 'nope'");
    assert_int_equal(req(t, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}"), 400);
    FAULT_HAS(t, "No network interface with id 'eth0'");

    /* Stop: the state fd reports it, the exit is recorded. */
    assert_int_equal(api_stop(t->a), 0);
    assert_true(api_vm_event(t->a));
    const struct arcvm_exit *ex = api_exit(t->a);
    assert_non_null(ex);
    assert_int_equal(ex->reason, ARCVM_EXIT_STOPPED);
    assert_int_equal(api_vm_fd(t->a), -1);
    assert_int_equal(api_stop(t->a), -EINVAL);
    assert_int_equal(req(t, "GET", "/", NULL), 200);
    assert_string_equal(jstr(t, "state"), "Running"); /* as Firecracker until exit */
}

/* /hotplug/memory and /balloon/hinting: Firecracker's checks, the boot
 * rules, and what GET and GET /vm/config show. */
static void test_memory_hotplug(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *method, *path, *body, *says;
    } bad[] = {
        {"GET", "/hotplug/memory", NULL, "not configured"},
        {"PATCH", "/hotplug/memory", "{\"requested_size_mib\": 2}", "not configured"},
        {"PUT", "/hotplug/memory", "{\"block_size_mib\": 2}", "missing field 'total_size_mib'"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 1024, \"foo\": 1}", "unknown field"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": \"1G\"}", "total_size_mib"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": -128}", "total_size_mib"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 1024, \"block_size_mib\": 1}",
         "Block size must not be lower than 2 MiB"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 1024, \"block_size_mib\": 6}",
         "Block size must be a power of 2"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 1024, \"slot_size_mib\": 64}",
         "Slot size must not be lower than 128 MiB"},
        {"PUT", "/hotplug/memory",
         "{\"total_size_mib\": 1024, \"block_size_mib\": 256, \"slot_size_mib\": 384}",
         "Slot size must be a multiple of block size"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 64}",
         "Total size must not be lower than slot size"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 1000}",
         "Total size must be a multiple of slot size"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\": 2097152}", "total_size_mib"},
        {"PATCH", "/balloon/hinting/start", NULL, "No balloon device is configured"},
        {"PATCH", "/balloon/hinting/stop", NULL, "No balloon device is configured"},
        {"GET", "/balloon/hinting/status", NULL, "not supported before starting"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int s = req(t, bad[i].method, bad[i].path, bad[i].body);
        if (s != 400 || !strstr(t->body, bad[i].says))
            fail_msg("%s %s %s: %d '%s' lacks '%s'", bad[i].method, bad[i].path,
                     bad[i].body ? bad[i].body : "", s, t->body, bad[i].says);
    }
    assert_int_equal(req(t, "PUT", "/hotplug/memory", "{\"total_size_mib\": 1024}"), 204);
    assert_int_equal(req(t, "GET", "/hotplug/memory", NULL), 200);
    assert_int_equal(jint(t, "total_size_mib"), 1024);
    assert_int_equal(jint(t, "block_size_mib"), 2);
    assert_int_equal(jint(t, "slot_size_mib"), 128);
    assert_int_equal(jint(t, "plugged_size_mib"), 0);
    assert_int_equal(jint(t, "requested_size_mib"), 0);
    assert_int_equal(req(t, "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 2}"), 400);
    FAULT_HAS(t, "not supported before starting");
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(t->json, "memory-hotplug"), "total_size_mib")),
                     1024);

    /* Hinting needs a balloon that offers it. */
    assert_int_equal(req(t, "PUT", "/balloon", "{\"amount_mib\": 0, \"deflate_on_oom\": false}"),
                     204);
    assert_int_equal(req(t, "PATCH", "/balloon/hinting/start", NULL), 400);
    FAULT_HAS(t, "not enabled on the balloon");
    assert_int_equal(req(t, "PUT", "/balloon",
                         "{\"amount_mib\": 0, \"deflate_on_oom\": false, "
                         "\"free_page_hinting\": true}"),
                     204);
    assert_int_equal(req(t, "GET", "/balloon", NULL), 200);
    assert_true(json_is_true(json_object_get(t->json, "free_page_hinting")));
    assert_int_equal(req(t, "PATCH", "/balloon/hinting/start", NULL), 400);
    FAULT_HAS(t, "not supported before starting");
    assert_int_equal(req(t, "PATCH", "/balloon/hinting/start", "{\"acknowledge_on_stop\": 1}"),
                     400);
    FAULT_HAS(t, "acknowledge_on_stop");
    assert_int_equal(req(t, "PATCH", "/balloon/hinting/begin", "{}"), 404);

    /* After start: the size update's own checks come first. */
    put_kernel(t);
    put_drive(t, "rootfs", 0, true, 204);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(req(t, "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 3}"), 400);
    FAULT_HAS(t, "multiple of the block size");
    assert_int_equal(req(t, "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 2048}"), 400);
    FAULT_HAS(t, "must not exceed the total size");
    assert_int_equal(req(t, "PATCH", "/hotplug/memory", "{}"), 400);
    assert_int_equal(req(t, "PUT", "/hotplug/memory", "{\"total_size_mib\": 1024}"), 400);
    FAULT_HAS(t, "not supported after starting");
}

static void test_start_failure(void **state)
{
    struct t *t = *state;
    t->f.start_rc = -EIO;
    put_kernel(t);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 400);
    FAULT_HAS(t, "Cannot start microvm: fake start failure");
    assert_false(api_started(t->a));
    assert_int_equal(t->started_hook, 0);
    /* Still configurable, and a new start may be tried. */
    assert_int_equal(req(t, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"),
                     204);
    t->f.start_rc = 0;
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(t->f.starts, 2);
}

/* The real library with a hypervisor node that does not exist: InstanceStart
 * fails with a clear 400, and the instance is still not started. */
static void test_start_failure_real(void **state)
{
    struct t *t = *state;
    api_destroy(t->a);
    t->a = new_api(t, NULL, "/nonexistent/kvm");
    put_kernel(t);
    put_drive(t, "rootfs", 0, true, 204);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 400);
    FAULT_HAS(t, "Cannot start microvm: ");
    assert_true(strlen(jstr(t, "fault_message")) > strlen("Cannot start microvm: "));
    assert_int_equal(req(t, "GET", "/", NULL), 200);
    assert_string_equal(jstr(t, "state"), "Not started");
    /* The drives were given to a VM that failed; a retry gets them again. */
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 400);
    FAULT_HAS(t, "Cannot start microvm: ");
    assert_null(strstr(t->body, "too many disks"));
}

static void test_config_file(void **state)
{
    struct t *t = *state;
    char cfg[2048], err[512];
    snprintf(cfg, sizeof(cfg),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"},"
             " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\","
             "   \"is_root_device\": true, \"is_read_only\": false},"
             "  {\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false,"
             "   \"is_read_only\": true}],"
             " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 256},"
             " \"entropy\": {}, \"vsock\": null, \"balloon\": null,"
             " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
             "   \"guest_mac\": \"06:00:AC:10:00:02\"}],"
             " \"shared-dirs\": [{\"tag\": \"src\", \"host_path\": \"%s\"},"
             "  {\"tag\": \"etc\", \"host_path\": \"/etc\", \"read_only\": true}],"
             " \"logger\": null, \"metrics\": null, \"cpu-config\": null,"
             " \"memory-hotplug\": {\"total_size_mib\": 512, \"block_size_mib\": 4}}",
             t->kernel, t->disk[0], t->disk[1], t->dir);
    assert_int_equal(api_load_config(t->a, cfg, strlen(cfg), err, sizeof(err)), 0);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    char first[8192];
    snprintf(first, sizeof(first), "%s", t->body);
    assert_int_equal(json_array_size(json_object_get(t->json, "drives")), 2);
    assert_int_equal(json_array_size(json_object_get(t->json, "network-interfaces")), 1);
    json_t *sd = json_object_get(t->json, "shared-dirs");
    assert_int_equal(json_array_size(sd), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sd, 1), "host_path")),
                        "/etc");
    assert_true(json_is_true(json_object_get(json_array_get(sd, 1), "read_only")));
    json_t *mc = json_object_get(t->json, "machine-config");
    assert_int_equal(json_integer_value(json_object_get(mc, "vcpu_count")), 2);
    json_t *hp = json_object_get(t->json, "memory-hotplug");
    assert_int_equal(json_integer_value(json_object_get(hp, "total_size_mib")), 512);
    assert_int_equal(json_integer_value(json_object_get(hp, "block_size_mib")), 4);
    assert_int_equal(json_integer_value(json_object_get(hp, "slot_size_mib")), 128);

    /* GET /vm/config feeds a new instance to the same configuration. */
    struct api *b = new_api(t, &fake_ops, NULL);
    assert_int_equal(api_load_config(b, first, strlen(first), err, sizeof(err)), 0);
    assert_int_equal(req_on(t, b, "GET", "/vm/config", NULL), 200);
    assert_string_equal(t->body, first);
    api_destroy(b);

    static const struct {
        const char *json, *says;
    } bad[] = {
        {"{\"boot-source\": {\"kernel_image_path\": \"/nonexistent\"}}", "kernel file"},
        {"{\"vsock\": {\"guest_cid\": 2, \"uds_path\": \"/tmp/v\"}}", "reserved"},
        {"{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t/0\"}]}",
         "not a network interface name"},
        {"{\"mmds-config\": {\"network_interfaces\": []}}", "IDs that allow forwarding MMDS requests is empty"},
        {"{\"mmds-config\": {\"network_interfaces\": [\"eth9\"]}}", "any existing network interface"},
        {"{\"machine\": {}}", "unknown key \"machine\""},
        {"{\"drives\": {}}", "must be an array"},
        {"{\"drives\": [{\"path_on_host\": \"/x\", \"is_root_device\": false}]}",
         "missing field 'drive_id'"},
        {"{\"drives\": [{\"drive_id\": \"a-b\", \"path_on_host\": \"/x\", \"is_root_device\": "
         "false}]}",
         "alphanumeric"},
        {"{\"machine-config\": {\"vcpu_count\": 2}}", "missing field 'mem_size_mib'"},
        {"{\"shared-dirs\": {\"tag\": \"a\", \"host_path\": \"/tmp\"}}",
         "\"shared-dirs\" must be an array"},
        {"{\"shared-dirs\": [{\"tag\": \"a\", \"host_path\": \"/tmp\"},"
         " {\"tag\": \"a\", \"host_path\": \"/etc\"}]}",
         "\"shared-dirs\": tag 'a' is given twice"},
        {"{\"shared-dirs\": [{\"tag\": \"a\", \"host_path\": \"/no/such\"}]}",
         "\"shared-dirs\": Shared directory 'a': host_path '/no/such' is not a directory"},
        {"{\"shared-dirs\": [{\"host_path\": \"/tmp\"}]}", "missing field 'tag'"},
        {"{\"boot-source\": ", "not valid JSON"},
        {"[]", "not valid JSON"},
        {"{\"memory-hotplug\": {\"total_size_mib\": 100}}", "\"memory-hotplug\": Invalid memory"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct api *c = new_api(t, &fake_ops, NULL);
        assert_int_equal(api_load_config(c, bad[i].json, strlen(bad[i].json), err, sizeof(err)),
                         -EINVAL);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: '%s' lacks '%s'", bad[i].json, err, bad[i].says);
        api_destroy(c);
    }
}

/* /mmds and /mmds/config: the store (PUT, RFC 7396 PATCH, GET, the size
 * limit) any time, the configuration checked as Firecracker's and only
 * before InstanceStart, its view in GET /vm/config. */
static void test_mmds(void **state)
{
    struct t *t = *state;
    assert_int_equal(req(t, "GET", "/mmds", NULL), 200);
    assert_string_equal(t->body, "{}");
    assert_int_equal(req(t, "PATCH", "/mmds", "{\"a\": 1}"), 400);
    FAULT_HAS(t, "not initialized");
    assert_int_equal(req(t, "PUT", "/mmds", "{\"latest\": {\"meta-data\": {\"ami-id\": \"a\", "
                                            "\"r\": \"b\"}}, \"gone\": [1, 2]}"), 204);
    assert_int_equal(req(t, "PATCH", "/mmds", "{\"latest\": {\"meta-data\": {\"ami-id\": null, "
                                              "\"x\": {\"y\": true}}}, \"gone\": null, \"n\": 5}"),
                     204);
    assert_int_equal(req(t, "GET", "/mmds", NULL), 200);
    assert_string_equal(t->body, "{\"latest\":{\"meta-data\":{\"r\":\"b\",\"x\":{\"y\":true}}},\"n\":5}");
    /* A patch that replaces a value by an object, and an object by a value. */
    assert_int_equal(req(t, "PATCH", "/mmds", "{\"n\": {\"m\": 1}, \"latest\": \"s\"}"), 204);
    assert_int_equal(req(t, "GET", "/mmds", NULL), 200);
    assert_string_equal(t->body, "{\"latest\":\"s\",\"n\":{\"m\":1}}");
    assert_int_equal(req(t, "PUT", "/mmds", "[1]"), 400);
    /* The size limit (the largest body by default, 51200): a patch that
     * would pass it is refused and changes nothing. */
    size_t big = 30000;
    char *body = malloc(big + 64);
    assert_non_null(body);
    int n = snprintf(body, big + 64, "{\"k1\": \"");
    memset(body + n, 'x', big);
    snprintf(body + n + big, 64, "\"}");
    assert_int_equal(req(t, "PUT", "/mmds", body), 204);
    body[3] = '2'; /* "k2": another 30000 bytes */
    assert_int_equal(req(t, "PATCH", "/mmds", body), 413);
    FAULT_HAS(t, "size limit");
    assert_int_equal(req(t, "GET", "/mmds", NULL), 200);
    assert_null(strstr(t->body, "k2"));
    assert_non_null(strstr(t->body, "k1"));
    free(body);

    /* /mmds/config */
    static const struct {
        const char *body, *says;
    } bad[] = {
        {"{}", "missing field 'network_interfaces'"},
        {"{\"network_interfaces\": []}", "is empty"},
        {"{\"network_interfaces\": [\"eth0\"]}", "does not correspond"},
        {"{\"network_interfaces\": [1]}", "array of strings"},
        {"{\"network_interfaces\": [\"eth0\"], \"version\": \"V3\"}", "unknown variant `V3`"},
        {"{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": \"10.0.0.1\"}", "link-local"},
        {"{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": \"169.254.0.9\"}", "link-local"},
        {"{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": \"169.254.1\"}", "IPv4 address"},
        {"{\"network_interfaces\": [\"eth0\"], \"imds_compat\": 1}", "imds_compat"},
        {"{\"network_interfaces\": [\"eth0\"], \"other\": 1}", "unknown field"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = req(t, "PUT", "/mmds/config", bad[i].body);
        if (st != 400 || !strstr(t->body, bad[i].says))
            fail_msg("%s: %d '%s' lacks '%s'", bad[i].body, st, t->body, bad[i].says);
    }
    assert_int_equal(req(t, "GET", "/mmds/config", NULL), 405);
    assert_int_equal(req(t, "PUT", "/network-interfaces/eth0",
                         "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}"), 204);
    assert_int_equal(req(t, "PUT", "/mmds/config",
                         "{\"network_interfaces\": [\"eth0\", \"eth0\"], \"version\": \"V2\", "
                         "\"ipv4_address\": \"169.254.170.2\", \"imds_compat\": true}"),
                     204);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *m = json_object_get(t->json, "mmds-config");
    assert_string_equal(json_string_value(json_object_get(m, "version")), "V2");
    assert_string_equal(json_string_value(json_object_get(m, "ipv4_address")), "169.254.170.2");
    assert_int_equal(json_array_size(json_object_get(m, "network_interfaces")), 1);
    assert_true(json_is_true(json_object_get(m, "imds_compat")));
    put_kernel(t);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(req(t, "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}"), 400);
    FAULT_HAS(t, "not supported after starting");
    assert_int_equal(req(t, "PUT", "/mmds", "{\"after\": \"boot\"}"), 204);
    assert_int_equal(req(t, "GET", "/mmds", NULL), 200);
    assert_string_equal(t->body, "{\"after\":\"boot\"}");

    /* The config file's "mmds-config", after its NICs; the defaults. */
    struct api *c = new_api(t, &fake_ops, NULL);
    const char *cfg = "{\"mmds-config\": {\"network_interfaces\": [\"eth1\"]}, "
                      "\"network-interfaces\": [{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\"}]}";
    char err[256];
    assert_int_equal(api_load_config(c, cfg, strlen(cfg), err, sizeof(err)), 0);
    assert_int_equal(req_on(t, c, "GET", "/vm/config", NULL), 200);
    m = json_object_get(t->json, "mmds-config");
    assert_string_equal(json_string_value(json_object_get(m, "version")), "V1");
    assert_string_equal(json_string_value(json_object_get(m, "ipv4_address")), "169.254.169.254");
    assert_true(json_is_false(json_object_get(m, "imds_compat")));
    /* --metadata: a JSON object, else refused with a sentence. */
    assert_int_equal(api_mmds_load(c, "{\"k\": \"v\"}", 10, err, sizeof(err)), 0);
    assert_int_equal(req_on(t, c, "GET", "/mmds", NULL), 200);
    assert_string_equal(t->body, "{\"k\":\"v\"}");
    assert_int_equal(api_mmds_load(c, "[]", 2, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "JSON object"));
    api_destroy(c);
}

/* PUT /snapshot/load: the body checked as Firecracker's, the library asked
 * with what it said, then GET /vm/config shows the restored machine. */
static void test_snapshot_load(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *body, *says;
    } bad[] = {
        {"{\"snapshot_path\": \"/s\"}", "exactly one of mem_backend and mem_file_path"},
        {"{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"mem_backend\": "
         "{\"backend_type\": \"File\", \"backend_path\": \"/m\"}}",
         "exactly one"},
        {"{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"Disk\", "
         "\"backend_path\": \"/m\"}}",
         "unknown variant `Disk`"},
        {"{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"File\"}}",
         "backend_path"},
        {"{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"network_overrides\": "
         "[{\"iface_id\": \"eth0\"}]}",
         "host_dev_name"},
        {"{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"vsock_override\": {}}",
         "uds_path"},
        {"{\"snapshot_path\": \"/bad\", \"mem_file_path\": \"/m\"}", "/bad is corrupt"},
        {"{\"mem_file_path\": \"/m\"}", "snapshot_path"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int s = req(t, "PUT", "/snapshot/load", bad[i].body);
        if (s != 400 || !strstr(t->body, bad[i].says))
            fail_msg("load %s: %d '%s' lacks '%s'", bad[i].body, s, t->body, bad[i].says);
    }
    assert_int_equal(t->started_hook, 0);
    assert_int_equal(req(t, "PUT", "/snapshot/load",
                         "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": "
                         "\"File\", \"backend_path\": \"/m\"}, \"clock_realtime\": true, "
                         "\"track_dirty_pages\": true, "
                         "\"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
                         "\"tap7\"}]}"),
                     204);
    assert_string_equal(t->f.snap_state, "/s");
    assert_string_equal(t->f.snap_mem, "/m");
    assert_string_equal(t->f.snap_tap, "eth0=tap7");
    assert_int_equal(t->f.snap_realtime, 1);
    assert_int_equal(t->f.snap_resume, 0); /* paused unless resume_vm */
    assert_int_equal(t->f.snap_dirty, 1);
    assert_int_equal(t->started_hook, 1);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *mc = json_object_get(t->json, "machine-config");
    assert_int_equal(json_integer_value(json_object_get(mc, "vcpu_count")), 2);
    assert_int_equal(json_integer_value(json_object_get(mc, "mem_size_mib")), 512);
    json_t *d = json_array_get(json_object_get(t->json, "drives"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "drive_id")), "rootfs");
    assert_string_equal(json_string_value(json_object_get(d, "path_on_host")), "/d.img");
    /* The Uffd backend: the handler's socket goes to the library. */
    struct api *u = new_api(t, &fake_ops, NULL);
    assert_int_equal(req_on(t, u, "PUT", "/snapshot/load",
                            "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": "
                            "\"Uffd\", \"backend_path\": \"/u.sock\"}, \"resume_vm\": true}"),
                     204);
    assert_string_equal(t->f.snap_mem, "uffd:/u.sock");
    assert_int_equal(t->f.snap_resume, 1);
    api_destroy(u);
    t->f.state = ARCVM_STATE_PAUSED;

    /* Loaded: no second load, no configuration, resume works. */
    assert_int_equal(req(t, "PUT", "/snapshot/load",
                         "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}"),
                     400);
    assert_int_equal(req(t, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128}"),
                     400);
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 204);

    /* A configured microVM takes no snapshot. */
    struct api *b = new_api(t, &fake_ops, NULL);
    assert_int_equal(req_on(t, b, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128}"),
                     204);
    assert_int_equal(req_on(t, b, "PUT", "/snapshot/load",
                            "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}"),
                     400);
    FAULT_HAS(t, "not allowed after configuring boot-specific resources");
    api_destroy(b);
}

/* PUT /snapshot/create: after start, only while paused, Full only. */
static void test_snapshot_create(void **state)
{
    struct t *t = *state;
    const char *body = "{\"snapshot_path\": \"/s2\", \"mem_file_path\": \"/m2\"}";
    char bs[256];
    snprintf(bs, sizeof(bs), "{\"kernel_image_path\": \"%s\"}", t->kernel);
    assert_int_equal(req(t, "PUT", "/boot-source", bs), 204);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(req(t, "PUT", "/snapshot/create", body), 400);
    FAULT_HAS(t, "not paused");
    assert_int_equal(req(t, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
    assert_int_equal(req(t, "PUT", "/snapshot/create",
                         "{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"/s2\", "
                         "\"mem_file_path\": \"/m2\"}"),
                     400);
    FAULT_HAS(t, "Diff snapshots need dirty page tracking");
    assert_int_equal(req(t, "PUT", "/snapshot/create",
                         "{\"snapshot_type\": \"Half\", \"snapshot_path\": \"/s2\", "
                         "\"mem_file_path\": \"/m2\"}"),
                     400);
    FAULT_HAS(t, "unknown variant `Half`");
    assert_int_equal(req(t, "PUT", "/snapshot/create", "{\"snapshot_path\": \"/s2\"}"), 400);
    assert_int_equal(req(t, "PUT", "/snapshot/create", body), 204);
    assert_string_equal(t->f.snap_state, "/s2");
    assert_string_equal(t->f.snap_mem, "/m2");
    assert_int_equal(t->f.snap_type, ARCVM_SNAPSHOT_FULL);

    /* With track_dirty_pages at configuration, a Diff is taken. */
    struct api *b = new_api(t, &fake_ops, NULL);
    assert_int_equal(req_on(t, b, "PUT", "/machine-config",
                            "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"track_dirty_pages\": true}"),
                     204);
    assert_int_equal(req_on(t, b, "GET", "/machine-config", NULL), 200);
    assert_true(json_is_true(json_object_get(t->json, "track_dirty_pages")));
    assert_int_equal(req_on(t, b, "PUT", "/boot-source", bs), 204);
    t->f.state = ARCVM_STATE_CREATED;
    assert_int_equal(req_on(t, b, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(req_on(t, b, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
    assert_int_equal(req_on(t, b, "PUT", "/snapshot/create",
                            "{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"/d\", "
                            "\"mem_file_path\": \"/dm\"}"),
                     204);
    assert_int_equal(t->f.snap_type, ARCVM_SNAPSHOT_DIFF);
    api_destroy(b);
}

/* PATCH /drives/{id} after boot: a new rate limiter and a new backing file
 * reach the disk at once and GET /vm/config shows them; refusals change
 * nothing. */
static void test_drive_patch(void **state)
{
    struct t *t = *state;
    char bs[256];
    snprintf(bs, sizeof(bs), "{\"kernel_image_path\": \"%s\"}", t->kernel);
    assert_int_equal(req(t, "PUT", "/boot-source", bs), 204);
    put_drive(t, "data", 1, false, 204);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(req(t, "PATCH", "/drives/data",
                         "{\"drive_id\": \"data\", \"rate_limiter\": {\"ops\": {\"size\": 100, "
                         "\"refill_time\": 1000}}}"),
                     204);
    assert_string_equal(t->f.rl_disk, "data");
    assert_int_equal(t->f.rl.ops.size, 100);
    assert_int_equal(t->f.rl.ops.refill_time_ms, 1000);
    assert_int_equal(t->f.rl.bandwidth.size, 0);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *d = json_array_get(json_object_get(t->json, "drives"), 0);
    json_t *ops = json_object_get(json_object_get(d, "rate_limiter"), "ops");
    assert_int_equal(json_integer_value(json_object_get(ops, "size")), 100);
    /* A new backing file: the library gets it, GET /vm/config shows it. */
    char body[512];
    snprintf(body, sizeof(body), "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
             t->disk[2]);
    assert_int_equal(req(t, "PATCH", "/drives/data", body), 204);
    assert_string_equal(t->f.path_disk, "data");
    assert_string_equal(t->f.path, t->disk[2]);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    d = json_array_get(json_object_get(t->json, "drives"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "path_on_host")), t->disk[2]);
    /* Refusals change nothing: a missing file, a path with a comma, one
     * the library refuses (its message is the fault), an unknown drive. */
    t->f.path[0] = '\0';
    assert_int_equal(req(t, "PATCH", "/drives/data",
                         "{\"drive_id\": \"data\", \"path_on_host\": \"/no/such.img\"}"),
                     400);
    FAULT_HAS(t, "Invalid permission/path: No such file or directory (/no/such.img)");
    snprintf(body, sizeof(body), "{\"drive_id\": \"data\", \"path_on_host\": \"%s,x\"}",
             t->disk[3]);
    assert_int_equal(req(t, "PATCH", "/drives/data", body), 400);
    FAULT_HAS(t, "contains ','");
    char busy[160];
    snprintf(busy, sizeof(busy), "%s/busy.img", t->dir);
    touch(busy);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"rate_limiter\": "
             "{\"ops\": {\"size\": 7, \"refill_time\": 10}}}",
             busy);
    assert_int_equal(req(t, "PATCH", "/drives/data", body), 400);
    FAULT_HAS(t, "Drive 'data': disk data: disk image");
    FAULT_HAS(t, "is in use by another process");
    unlink(busy);
    assert_string_equal(t->f.path, "");
    assert_int_equal(t->f.rl.ops.size, 100); /* the limiter in the same body did not apply */
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    d = json_array_get(json_object_get(t->json, "drives"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "path_on_host")), t->disk[2]);
    ops = json_object_get(json_object_get(d, "rate_limiter"), "ops");
    assert_int_equal(json_integer_value(json_object_get(ops, "size")), 100);
    assert_int_equal(req(t, "PATCH", "/drives/nope", "{\"drive_id\": \"nope\"}"), 400);
}

static int put_pmem(struct t *t, const char *id, const char *file, const char *extra)
{
    char path[96], body[1024];
    snprintf(path, sizeof(path), "/pmem/%s", id);
    snprintf(body, sizeof(body), "{\"id\": \"%s\", \"path_on_host\": \"%s\"%s}", id, file,
             extra);
    return req(t, "PUT", path, body);
}

/* /pmem/{id}: Firecracker's Pmem body and rules before boot (one root
 * device, pmem or block; a PUT of a known id replaces it in place), the
 * backing file checked at once, the view in GET /vm/config, and PATCH of
 * the rate limiter after boot only. */
static void test_pmem(void **state)
{
    struct t *t = *state;
    assert_int_equal(put_pmem(t, "root", t->disk[0], ", \"root_device\": true, \"read_only\": true"),
                     204);
    assert_int_equal(put_pmem(t, "data", t->disk[1], ""), 204);
    assert_int_equal(put_pmem(t, "data2", t->disk[2], ", \"root_device\": true"), 400);
    FAULT_HAS(t, "A root pmem device already exist");
    put_drive(t, "rootfs", 3, true, 400);
    FAULT_HAS(t, "root device defined as a pmem device");
    /* Replacing the root device by itself is fine; it keeps its place. */
    assert_int_equal(put_pmem(t, "root", t->disk[4], ", \"root_device\": true"), 204);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *pm = json_object_get(t->json, "pmem");
    assert_int_equal(json_array_size(pm), 2);
    json_t *p0 = json_array_get(pm, 0), *p1 = json_array_get(pm, 1);
    assert_string_equal(json_string_value(json_object_get(p0, "id")), "root");
    assert_string_equal(json_string_value(json_object_get(p0, "path_on_host")), t->disk[4]);
    assert_true(json_is_true(json_object_get(p0, "root_device")));
    assert_true(json_is_false(json_object_get(p0, "read_only")));
    assert_true(json_is_null(json_object_get(p0, "rate_limiter")));
    assert_string_equal(json_string_value(json_object_get(p1, "id")), "data");
    assert_true(json_is_false(json_object_get(p1, "root_device")));

    char empty[160], dir_path[160];
    snprintf(empty, sizeof(empty), "%s/empty.img", t->dir);
    int fd = open(empty, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(dir_path, sizeof(dir_path), "%s", t->dir);
    static const struct {
        const char *path, *body, *says;
    } bad[] = {
        {"/pmem/x", "{\"id\": \"x\"}", "missing field 'path_on_host'"},
        {"/pmem/x", "{\"path_on_host\": \"/tmp\"}", "missing field 'id'"},
        {"/pmem/x", "{\"id\": \"y\", \"path_on_host\": \"/tmp\"}", "does not match"},
        {"/pmem/x", "{\"id\": \"x\", \"path_on_host\": 7}", "path_on_host"},
        {"/pmem/x", "{\"id\": \"x\", \"path_on_host\": \"/x\", \"read_only\": \"yes\"}",
         "must be a boolean"},
        {"/pmem/x", "{\"id\": \"x\", \"path_on_host\": \"/x\", \"dax\": true}",
         "unknown field 'dax'"},
        {"/pmem/x", "{\"id\": \"x\", \"path_on_host\": \"/x\", \"rate_limiter\": "
                    "{\"ops\": {\"size\": 1}}}",
         "missing field 'refill_time'"},
        {"/pmem/x", "{\"id\": \"x\", \"path_on_host\": \"/no/such.img\"}",
         "No such file or directory"},
        {"/pmem/x", "{\"id\": \"x\", \"path_on_host\": \"/tmp/a,b\"}", "contains ','"},
        {"/pmem/a-b", "{\"id\": \"a-b\", \"path_on_host\": \"/x\"}", "alphanumeric"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(req(t, "PUT", bad[i].path, bad[i].body), 400);
        if (!strstr(t->body, bad[i].says))
            fail_msg("%s: '%s' lacks '%s'", bad[i].body, t->body, bad[i].says);
    }
    assert_int_equal(put_pmem(t, "x", empty, ""), 400);
    FAULT_HAS(t, "is empty");
    assert_int_equal(put_pmem(t, "x", dir_path, ", \"read_only\": true"), 400);
    FAULT_HAS(t, "not a regular file");
    /* At most 4 devices (the core's limit). */
    assert_int_equal(put_pmem(t, "p3", t->disk[5], ""), 204);
    assert_int_equal(put_pmem(t, "p4", t->disk[6], ""), 204);
    assert_int_equal(put_pmem(t, "p5", t->disk[7], ""), 400);
    FAULT_HAS(t, "at most 4 pmem devices");
    /* PATCH is post-boot only, and takes only id and rate_limiter. */
    const char *patch = "{\"id\": \"data\", \"rate_limiter\": {\"ops\": {\"size\": 5, "
                        "\"refill_time\": 100}}}";
    assert_int_equal(req(t, "PATCH", "/pmem/data", patch), 400);
    FAULT_HAS(t, "not supported before starting the microVM");

    put_kernel(t);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(put_pmem(t, "late", t->disk[8], ""), 400);
    FAULT_HAS(t, "not supported after starting the microVM");
    assert_int_equal(req(t, "PATCH", "/pmem/data", patch), 204);
    assert_string_equal(t->f.rl_disk, "pmem:data");
    assert_int_equal(t->f.rl.ops.size, 5);
    assert_int_equal(t->f.rl.ops.refill_time_ms, 100);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *rl = json_object_get(json_array_get(json_object_get(t->json, "pmem"), 1),
                                 "rate_limiter");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rl, "ops"), "size")), 5);
    assert_int_equal(req(t, "PATCH", "/pmem/data",
                         "{\"id\": \"data\", \"path_on_host\": \"/x\"}"),
                     400);
    FAULT_HAS(t, "unknown field 'path_on_host'");
    assert_int_equal(req(t, "PATCH", "/pmem/nope", "{\"id\": \"nope\"}"), 400);

    /* The config file's "pmem" key goes through the same checks. */
    api_destroy(t->a);
    t->a = new_api(t, &fake_ops, NULL);
    char cfg[1024], err[512];
    snprintf(cfg, sizeof(cfg),
             "{\"pmem\": [{\"id\": \"a\", \"path_on_host\": \"%s\", \"root_device\": true},"
             " {\"id\": \"b\", \"path_on_host\": \"%s\", \"root_device\": true}]}",
             t->disk[0], t->disk[1]);
    assert_int_equal(api_load_config(t->a, cfg, strlen(cfg), err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "\"pmem\": Pmem config error: A root pmem device already exist"));
    api_destroy(t->a);
    t->a = new_api(t, &fake_ops, NULL);
    snprintf(cfg, sizeof(cfg),
             "{\"drives\": [{\"drive_id\": \"r\", \"path_on_host\": \"%s\", "
             "\"is_root_device\": true}], \"pmem\": [{\"id\": \"a\", \"path_on_host\": \"%s\", "
             "\"root_device\": true}]}",
             t->disk[0], t->disk[1]);
    assert_int_equal(api_load_config(t->a, cfg, strlen(cfg), err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "root device defined as a block device"));
    api_destroy(t->a);
    t->a = new_api(t, &fake_ops, NULL);
    snprintf(cfg, sizeof(cfg),
             "{\"pmem\": [{\"id\": \"a\", \"path_on_host\": \"%s\", \"read_only\": true}]}",
             t->disk[0]);
    assert_int_equal(api_load_config(t->a, cfg, strlen(cfg), err, sizeof(err)), 0);
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    json_t *only = json_array_get(json_object_get(t->json, "pmem"), 0);
    assert_true(json_is_true(json_object_get(only, "read_only")));
}

/* ---- PUT /cpu-config ----------------------------------------------------- */

/* Firecracker's own example (docs/cpu_templates/cpu-templates.md). */
static const char FC_TEMPLATE[] =
    "{\"kvm_capabilities\": [\"!56\"],"
    " \"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0,"
    "   \"modifiers\": [{\"register\": \"eax\", \"bitmap\": \"0bxxxx000000000011xx00011011110010\"}]}],"
    " \"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": "
    "\"0b0000000000000000000000000000000000000000000000000000000000000000\"}]}";

static json_t *cpu_config_view(struct t *t)
{
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    return json_object_get(t->json, "cpu-config");
}

static const char *leaf_bitmap(json_t *cc, size_t leaf, size_t mod)
{
    json_t *l = json_array_get(json_object_get(cc, "cpuid_modifiers"), leaf);
    return json_string_value(
        json_object_get(json_array_get(json_object_get(l, "modifiers"), mod), "bitmap"));
}

static void test_cpu_config(void **state)
{
    struct t *t = *state;
    assert_true(json_is_null(cpu_config_view(t)));
    assert_int_equal(req(t, "PUT", "/cpu-config", FC_TEMPLATE), 204);
    json_t *cc = cpu_config_view(t);
    json_t *l0 = json_array_get(json_object_get(cc, "cpuid_modifiers"), 0);
    assert_string_equal(json_string_value(json_object_get(l0, "leaf")), "0x1");
    assert_string_equal(json_string_value(json_object_get(l0, "subleaf")), "0x0");
    assert_int_equal(json_integer_value(json_object_get(l0, "flags")), 0);
    assert_string_equal(leaf_bitmap(cc, 0, 0), "0bxxxx000000000011xx00011011110010");
    json_t *m0 = json_array_get(json_object_get(cc, "msr_modifiers"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "addr")), "0x10a");
    assert_int_equal(strlen(json_string_value(json_object_get(m0, "bitmap"))), 66);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(cc, "kvm_capabilities"), 0)), "!56");

    /* Short bitmaps are padded with x, '_' only separates; leaves and
     * addresses in hex, binary or (arcvm's leniency) as integers; a later
     * PUT replaces the whole template. */
    assert_int_equal(
        req(t, "PUT", "/cpu-config",
            "{\"cpuid_modifiers\": [{\"leaf\": 7, \"subleaf\": \"0b0\", \"flags\": 1,"
            " \"modifiers\": [{\"register\": \"ebx\", \"bitmap\": \"0b1_0x\"},"
            "                 {\"register\": \"ecx\", \"bitmap\": \"\"}]},"
            " {\"leaf\": \"0x80000001\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": []}],"
            " \"kvm_capabilities\": [\"171\"], \"msr_modifiers\": [{\"addr\": 16, \"bitmap\": "
            "\"1\"}]}"),
        204);
    cc = cpu_config_view(t);
    assert_string_equal(leaf_bitmap(cc, 0, 0), "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxx10x");
    assert_string_equal(leaf_bitmap(cc, 0, 1), "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    l0 = json_array_get(json_object_get(cc, "cpuid_modifiers"), 0);
    assert_string_equal(json_string_value(json_object_get(l0, "leaf")), "0x7");
    assert_string_equal(json_string_value(json_object_get(json_array_get(
                            json_object_get(cc, "cpuid_modifiers"), 1), "leaf")),
                        "0x80000001");
    m0 = json_array_get(json_object_get(cc, "msr_modifiers"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "addr")), "0x10");
    assert_non_null(strstr(json_string_value(json_object_get(m0, "bitmap")), "xxxx1"));

    /* GET /vm/config loads back through the config file, unchanged. */
    char first[8192], err[512];
    assert_int_equal(req(t, "GET", "/vm/config", NULL), 200);
    snprintf(first, sizeof(first), "%s", t->body);
    struct api *b = new_api(t, &fake_ops, NULL);
    assert_int_equal(api_load_config(b, first, strlen(first), err, sizeof(err)), 0);
    assert_int_equal(req_on(t, b, "GET", "/vm/config", NULL), 200);
    assert_string_equal(t->body, first);
    api_destroy(b);

    /* The config file may name a template file, as Firecracker's does. */
    char path[160], cfg[256];
    snprintf(path, sizeof(path), "%s/template.json", t->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(FC_TEMPLATE, f);
    fclose(f);
    b = new_api(t, &fake_ops, NULL);
    snprintf(cfg, sizeof(cfg), "{\"cpu-config\": \"%s\"}", path);
    assert_int_equal(api_load_config(b, cfg, strlen(cfg), err, sizeof(err)), 0);
    assert_int_equal(req_on(t, b, "GET", "/vm/config", NULL), 200);
    assert_string_equal(leaf_bitmap(json_object_get(t->json, "cpu-config"), 0, 0),
                        "0bxxxx000000000011xx00011011110010");
    snprintf(cfg, sizeof(cfg), "{\"cpu-config\": \"%s/none.json\"}", t->dir);
    assert_int_equal(api_load_config(b, cfg, strlen(cfg), err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cannot open the CPU template file"));
    api_destroy(b);

#define LEAF(extra, mods)                                                                          \
    "{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0" extra          \
    ", \"modifiers\": [" mods "]}]}"
#define MOD(reg, bm) "{\"register\": \"" reg "\", \"bitmap\": \"" bm "\"}"
    static const struct {
        const char *body, *says;
    } bad[] = {
        {LEAF("", MOD("eax", "0b12")), "has '2'"},
        {LEAF("", MOD("eax", "0b111111111111111111111111111111111")), "too long: at most 32"},
        {LEAF("", MOD("rax", "0b1")), "register 'rax' is not one of eax"},
        {LEAF("", MOD("eax", "0b1") "," MOD("eax", "0b0")), "modified twice"},
        {LEAF("", "{\"register\": \"eax\"}"), "missing field 'bitmap'"},
        {LEAF("", "{\"register\": \"eax\", \"bitmap\": 3}"), "must be a string"},
        {LEAF(", \"extra\": 1", ""), "unknown field 'extra'"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}",
         "no number system prefix"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x100000000\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}",
         "is not a number of at most 4294967295"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0xg\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}",
         "is not a number"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}",
         "is not a number"},
        {"{\"cpuid_modifiers\": [{\"leaf\": -1, \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}",
         "non-negative integer"},
        {"{\"cpuid_modifiers\": [{\"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": []}]}",
         "missing field 'leaf'"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"modifiers\": []}]}",
         "missing field 'flags'"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": \"0\", "
         "\"modifiers\": []}]}",
         "field 'flags' of cpuid_modifiers[0] must be a non-negative integer"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}, {\"leaf\": \"0b1\", \"subleaf\": \"0x0\", \"flags\": 0, "
         "\"modifiers\": []}]}",
         "give each leaf once"},
        {"{\"cpuid_modifiers\": {}}", "field 'cpuid_modifiers' of cpu-config must be an array"},
        {"{\"cpuid_modifiers\": [1]}", "cpuid_modifiers[0] must be a JSON object"},
        {"{\"msr_modifiers\": [{\"addr\": \"0x10\", \"bitmap\": \"0b1\"}, {\"addr\": \"0x10\", "
         "\"bitmap\": \"0b0\"}]}",
         "give each MSR once"},
        {"{\"msr_modifiers\": [{\"addr\": \"0x10\", \"bitmap\": "
         "\"0b00000000000000000000000000000000000000000000000000000000000000000\"}]}",
         "too long: at most 64"},
        {"{\"msr_modifiers\": [{\"bitmap\": \"0b1\"}]}", "missing field 'addr'"},
        {"{\"kvm_capabilities\": [\"abc\"]}", "KVM capability number"},
        {"{\"kvm_capabilities\": [\"!\"]}", "KVM capability number"},
        {"{\"kvm_capabilities\": [\"99999999999\"]}", "KVM capability number"},
        {"{\"kvm_capabilities\": [5]}", "KVM capability number"},
        {"{\"vcpu_features\": [{\"index\": 0, \"bitmap\": \"0b1\"}]}", "aarch64"},
        {"{\"reg_modifiers\": []}", "aarch64"},
        {"{\"cpu_template\": \"T2\"}", "unknown field 'cpu_template'"},
    };
#undef LEAF
#undef MOD
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int s = req(t, "PUT", "/cpu-config", bad[i].body);
        if (s != 400 || !strstr(t->body, bad[i].says))
            fail_msg("%s: %d '%s' lacks '%s'", bad[i].body, s, t->body, bad[i].says);
    }
    /* A refused template leaves the last good one in place. */
    assert_string_equal(leaf_bitmap(cpu_config_view(t), 0, 0),
                        "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxx10x");
    assert_int_equal(req(t, "PUT", "/cpu-config", "{}"), 204);
    cc = cpu_config_view(t);
    assert_int_equal(json_array_size(json_object_get(cc, "cpuid_modifiers")), 0);

    /* Pre-boot only. */
    put_kernel(t);
    assert_int_equal(req(t, "PUT", "/cpu-config", FC_TEMPLATE), 204);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    assert_int_equal(req(t, "PUT", "/cpu-config", FC_TEMPLATE), 400);
    FAULT_HAS(t, "not supported after starting the microVM");
}

/* ---- PUT /serial -------------------------------------------------------- */

static void test_serial(void **state)
{
    struct t *t = *state;
    char path[160], fifo[160], body[400];
    struct stat st;
    snprintf(path, sizeof(path), "%s/serial.out", t->dir);
    snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", path);
    assert_int_equal(req(t, "PUT", "/serial", body), 204);
    /* Created now, owner-only: the console may show secrets. */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A FIFO with no reader yet opens at once (read-write, as Firecracker). */
    snprintf(fifo, sizeof(fifo), "%s/serial.fifo", t->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", fifo);
    assert_int_equal(req(t, "PUT", "/serial", body), 204);
    /* No path: back to the process's console. A rate limit, Firecracker's
     * TokenBucket, with or without a path. */
    assert_int_equal(req(t, "PUT", "/serial", "{}"), 204);
    assert_int_equal(req(t, "PUT", "/serial",
                         "{\"rate_limiter\": {\"size\": 1024, \"one_time_burst\": 65536, "
                         "\"refill_time\": 1000}}"),
                     204);

    static const struct {
        const char *body, *says;
    } bad[] = {
        {"{\"serial_out_path\": 5}", "field 'serial_out_path' of serial must be a string"},
        {"{\"serial_out\": \"/tmp/x\"}", "unknown field 'serial_out'"},
        {"{\"serial_out_path\": \"/nonexistent/dir/out\"}",
         "cannot open the serial output file /nonexistent/dir/out"},
        {"{\"rate_limiter\": {\"size\": 1}}", "missing field 'refill_time' in rate_limiter"},
        {"{\"rate_limiter\": {\"size\": 1, \"refill_time\": 0}}", "refill_time of 1 ms"},
        {"{\"rate_limiter\": {\"size\": 1, \"refill_time\": 1, \"ops\": 2}}",
         "unknown field 'ops'"},
        {"{\"rate_limiter\": 5}", "field 'rate_limiter' of serial must be an object"},
        {"[]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int s = req(t, "PUT", "/serial", bad[i].body);
        if (s != 400 || !strstr(t->body, bad[i].says))
            fail_msg("%s: %d '%s' lacks '%s'", bad[i].body, s, t->body, bad[i].says);
    }
    assert_int_equal(req(t, "GET", "/serial", NULL), 405);

    /* The config file takes it too (an arcvm extension: Firecracker's
     * configuration has no serial key). */
    char cfg[300], err[512];
    struct api *b = new_api(t, &fake_ops, NULL);
    snprintf(cfg, sizeof(cfg), "{\"serial\": {\"serial_out_path\": \"%s/cfg.out\"}}", t->dir);
    assert_int_equal(api_load_config(b, cfg, strlen(cfg), err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/cfg.out", t->dir);
    assert_int_equal(stat(path, &st), 0);
    api_destroy(b);

    /* Pre-boot only. */
    put_kernel(t);
    assert_int_equal(req(t, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
    snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", path);
    assert_int_equal(req(t, "PUT", "/serial", body), 400);
    FAULT_HAS(t, "not supported after starting the microVM");
}

int main(void)
{
    RUN(cmocka_unit_test_setup_teardown(test_instance_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bodies_and_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network_interfaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_hotplug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure_real, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drive_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pmem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmds, setup, teardown));
}
