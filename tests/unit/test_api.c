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

static const struct api_vm_ops fake_ops = {
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
        {"PUT", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"huge_pages\": \"2M\"}",
         "not supported"},
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
        {"PUT", "/balloon", "{\"amount_mib\": 10, \"deflate_on_oom\": true, "
                            "\"free_page_hinting\": true}",
         "free_page_hinting is not supported"},
        {"PATCH", "/balloon", "{\"amount_mib\": 10}", "No balloon device is configured"},
        {"GET", "/balloon", NULL, "No balloon device is configured"},
        {"GET", "/balloon/statistics", NULL, "No balloon device is configured"},
        {"PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 1}",
         "No balloon device is configured"},
        {"PUT", "/mmds", "{\"a\": 1}", "not supported by arcvm yet"},
        {"PUT", "/snapshot/create", "{\"snapshot_path\": \"x\", \"mem_file_path\": \"y\"}",
         "before starting the microVM"},
        {"PUT", "/cpu-config", "{}", "CPU templates"},
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
             " \"logger\": null, \"metrics\": null, \"cpu-config\": null}",
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
        {"{\"mmds-config\": {\"network_interfaces\": []}}", "\"mmds-config\" is not supported"},
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
        cmocka_unit_test_setup_teardown(test_start_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure_real, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drive_patch, setup, teardown));
}
