/* test_config.c - size parsing and configuration validation. */
#include "unit.h"

#include "base/snap.h"
#include "vmm/config.h"

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(config_parse_size("512M", &v), 0);
    assert_int_equal(v, 512ull << 20);
    assert_int_equal(config_parse_size("1G", &v), 0);
    assert_int_equal(v, 1ull << 30);
    assert_int_equal(config_parse_size("2GiB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(config_parse_size("1024", &v), 0); /* bare: MiB */
    assert_int_equal(v, 1024ull << 20);
    assert_int_equal(config_parse_size("4096k", &v), 0);
    assert_int_equal(v, 4096ull << 10);
    assert_int_equal(config_parse_size("1T", &v), 0);
    assert_int_equal(v, 1ull << 40);
    const char *bad[] = {"", "M", "-1G", " 1G", "1G ", "1X", "1.5G", "1GG", "0x10M", "abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_size(bad[i], &v), -EINVAL);
    assert_int_equal(config_parse_size("99999999999999999999999", &v), -ERANGE);
    assert_int_equal(config_parse_size("17179869184G", &v), -ERANGE); /* 2^34 GiB */
}

static void test_parse_uint(void **state)
{
    (void)state;
    unsigned v;
    assert_int_equal(config_parse_uint("4", &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(config_parse_uint("0", &v), 0);
    assert_int_equal(config_parse_uint("-1", &v), -EINVAL);
    assert_int_equal(config_parse_uint("4x", &v), -EINVAL);
    assert_int_equal(config_parse_uint("", &v), -EINVAL);
    assert_int_equal(config_parse_uint("99999999999", &v), -ERANGE);
}

static char kernel[] = "/tmp/arcvm-test-kernel-XXXXXX";

static int setup(void **state)
{
    (void)state;
    int fd = mkstemp(kernel);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(kernel);
    return 0;
}

static void test_validate(void **state)
{
    (void)state;
    struct vm_config c;
    char err[256];
    const uint64_t host = 8ull << 30;
    config_init(&c);
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--kernel"));

    c.kernel_path = kernel;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), 0);

    c.vcpus = 0;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "vCPU"));
    c.vcpus = 9;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -EINVAL);
    c.vcpus = 8;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), 0);

    c.mem_bytes = 32ull << 20;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too small"));
    c.mem_bytes = 16ull << 30;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -ENOMEM);
    assert_non_null(strstr(err, "more than this host"));
    c.mem_bytes = (256ull << 20) + 4096;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -EINVAL);
    c.mem_bytes = 256ull << 20;

    c.initrd_path = "/nonexistent/initrd";
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/initrd"));
    c.initrd_path = "/tmp"; /* a directory */
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -EINVAL);
    c.initrd_path = NULL;

    c.kernel_path = "/nonexistent/kernel";
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "No such file"));
    c.kernel_path = kernel;

    char longline[CONFIG_CMDLINE_MAX];
    memset(longline, 'a', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = 0;
    c.cmdline = longline;
    assert_int_equal(config_validate(&c, 8, host, err, sizeof(err)), -E2BIG);
}

static void test_parse_net(void **state)
{
    (void)state;
    struct net_config n;
    char err[256];
    assert_int_equal(config_parse_net("tap=tap0", &n, err, sizeof(err)), 0);
    assert_int_equal(n.backend, NET_TAP);
    assert_string_equal(n.tap, "tap0");
    assert_false(n.mac_set);
    config_release_net(&n);
    assert_int_equal(config_parse_net("tap=tap1,mac=06:00:AC:10:00:02", &n, err, sizeof(err)), 0);
    assert_true(n.mac_set);
    assert_int_equal(n.mac[0], 0x06);
    assert_int_equal(n.mac[5], 0x02);
    config_release_net(&n);
    assert_int_equal(config_parse_net("user,hostfwd=tcp::8080-:80,hostfwd=udp:10.1.2.3:53-:5353",
                                      &n, err, sizeof(err)),
                     0);
    assert_int_equal(n.backend, NET_USER);
    assert_int_equal(n.nhostfwd, 2);
    assert_false(n.hostfwd[0].udp);
    assert_int_equal(n.hostfwd[0].host_addr, 0);
    assert_int_equal(n.hostfwd[0].host_port, 8080);
    assert_int_equal(n.hostfwd[0].guest_port, 80);
    assert_true(n.hostfwd[1].udp);
    assert_int_equal(n.hostfwd[1].host_addr, 0x0a010203);
    assert_int_equal(n.hostfwd[1].guest_port, 5353);
    config_release_net(&n);
    const char *bad[] = {"", "tap", "tap=", "wifi", "tap=averyveryverylongname0",
                         "tap=t,mac=01:00:00:00:00:01", "tap=t,mac=06:00:00:00:00",
                         "tap=t,hostfwd=tcp::1-:2", "user,hostfwd=tcp::0-:80",
                         "user,hostfwd=tcp::80-:99999", "user,hostfwd=sctp::1-:2",
                         "user,hostfwd=tcp:300.1.1.1:1-:2", "user,bogus=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(config_parse_net(bad[i], &n, err, sizeof(err)), -EINVAL);
        assert_true(err[0] != 0);
    }
}

static void test_parse_vsock_balloon(void **state)
{
    (void)state;
    struct vsock_config v;
    char err[256];
    assert_int_equal(config_parse_vsock("cid=3,uds=/tmp/v.sock", &v, err, sizeof(err)), 0);
    assert_true(v.enabled);
    assert_int_equal(v.cid, 3);
    assert_string_equal(v.uds_path, "/tmp/v.sock");
    free(v.uds_path);
    const char *bad[] = {"cid=2,uds=/x", "cid=3", "uds=/x", "cid=x,uds=/x", "cid=3,uds=/x,y=1",
                         "cid=4294967295,uds=/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_vsock(bad[i], &v, err, sizeof(err)), -EINVAL);

    struct balloon_config b;
    assert_int_equal(config_parse_balloon("256M,deflate-on-oom,stats=5,free-page-reporting", &b,
                                          err, sizeof(err)),
                     0);
    assert_true(b.enabled && b.deflate_on_oom && b.free_page_reporting);
    assert_int_equal(b.target_mib, 256);
    assert_int_equal(b.stats_interval_s, 5);
    assert_int_equal(config_parse_balloon("0", &b, err, sizeof(err)), 0);
    assert_int_equal(b.target_mib, 0);
    const char *badb[] = {"", "x", "1K", "256M,stats=x", "256M,oom", "256M,stats="};
    for (size_t i = 0; i < sizeof(badb) / sizeof(badb[0]); i++)
        assert_int_equal(config_parse_balloon(badb[i], &b, err, sizeof(err)), -EINVAL);
}

static void test_parse_share(void **state)
{
    (void)state;
    struct fs_config f;
    char err[256];
    assert_int_equal(config_parse_share("/srv/data:data,ro", &f, err, sizeof(err)), 0);
    assert_string_equal(f.dir, "/srv/data");
    assert_string_equal(f.tag, "data");
    assert_true(f.readonly);
    free(f.dir);
    free(f.tag);
    /* The last ':' separates the tag; options come off the end. */
    assert_int_equal(config_parse_share("/a:b,c/d:t,rw", &f, err, sizeof(err)), 0);
    assert_string_equal(f.dir, "/a:b,c/d");
    assert_string_equal(f.tag, "t");
    assert_false(f.readonly);
    free(f.dir);
    free(f.tag);
    const char *bad[] = {"", "/x", ":tag", "/x:", "/x:,ro", "/x:t t",
                         "/x:0123456789012345678901234567890123456", "/x:t,x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_share(bad[i], &f, err, sizeof(err)), -EINVAL);
}

static void test_parse_cpulist(void **state)
{
    (void)state;
    cpu_set_t set;
    assert_int_equal(config_parse_cpulist("0-2,5", &set), 0);
    assert_int_equal(CPU_COUNT(&set), 4);
    assert_true(CPU_ISSET(5, &set));
    assert_false(CPU_ISSET(3, &set));
    const char *bad[] = {"", "a", "1-", "3-1", "1,,2", "99999", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_cpulist(bad[i], &set), -EINVAL);
}

/* A copy owns every string: it outlives the original (ASan checks that no
 * pointer is shared, which a missed field would do). */
static void test_copy(void **state)
{
    (void)state;
    struct vm_config a, b;
    config_init(&a);
    char err[256];
    a.kernel_path = strdup("/k");
    a.initrd_path = strdup("/i");
    a.cmdline = strdup("quiet");
    a.hv_device = strdup("/dev/kvm");
    a.kernel_cache = strdup("/cache");
    assert_int_equal(config_parse_disk("/d,id=x", &a.disks[0], err, sizeof(err)), 0);
    a.ndisks = 1;
    assert_int_equal(config_parse_net("tap=t0,id=eth0", &a.nets[0], err, sizeof(err)), 0);
    a.nnets = 1;
    assert_int_equal(config_parse_vsock("cid=3,uds=/v", &a.vsock, err, sizeof(err)), 0);
    a.affinity = calloc(2, sizeof(cpu_set_t));
    a.naffinity = 2;
    assert_int_equal(config_copy(&b, &a), 0);
    config_release(&a);
    assert_string_equal(b.kernel_path, "/k");
    assert_string_equal(b.initrd_path, "/i");
    assert_string_equal(b.cmdline, "quiet");
    assert_string_equal(b.hv_device, "/dev/kvm");
    assert_string_equal(b.kernel_cache, "/cache");
    assert_string_equal(b.disks[0].path, "/d");
    assert_string_equal(b.disks[0].id, "x");
    assert_string_equal(b.nets[0].tap, "t0");
    assert_string_equal(b.nets[0].id, "eth0");
    assert_string_equal(b.vsock.uds_path, "/v");
    assert_int_equal(b.naffinity, 2);
    config_release(&b);
    config_release(&b); /* twice is harmless */
}

/* The machine-defining configuration through a snapshot section and back;
 * the process-side settings of the loading side stay; hostile sections are
 * refused and leave a releasable config. */
static void test_snapshot_config(void **state)
{
    (void)state;
    struct vm_config c, d;
    config_init(&c);
    char err[256];
    c.kernel_path = strdup("/boot/vmlinuz");
    c.cmdline = strdup("quiet");
    c.vcpus = 3;
    c.mem_bytes = 512ull << 20;
    c.console = CONSOLE_VIRTIO;
    c.rng = true;
    assert_int_equal(config_parse_disk("/d.img,ro,id=root", &c.disks[0], err, sizeof(err)), 0);
    c.ndisks = 1;
    assert_int_equal(config_parse_net("user,hostfwd=tcp::8080-:80", &c.nets[0], err, sizeof(err)), 0);
    assert_int_equal(config_parse_net("tap=tap3,mac=02:00:00:00:00:07", &c.nets[1], err, sizeof(err)), 0);
    c.nnets = 2;
    assert_int_equal(config_parse_vsock("cid=5,uds=/v.sock", &c.vsock, err, sizeof(err)), 0);
    assert_int_equal(config_parse_balloon("64M,deflate-on-oom,stats=2", &c.balloon, err, sizeof(err)), 0);
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "config");
    config_save(&c, &w);
    snap_end(&w);
    assert_int_equal(w.err, 0);

    config_init(&d);
    d.console_in = 7; /* the loader's own */
    d.hv_device = strdup("/dev/kvm2");
    struct snap_r r;
    assert_int_equal(snap_find(w.buf, w.len, "config", &r), 0);
    assert_int_equal(config_load(&d, &r), 0);
    assert_string_equal(d.kernel_path, "/boot/vmlinuz");
    assert_string_equal(d.cmdline, "quiet");
    assert_int_equal(d.vcpus, 3);
    assert_int_equal(d.mem_bytes, 512ull << 20);
    assert_int_equal(d.console, CONSOLE_VIRTIO);
    assert_true(d.rng);
    assert_int_equal(d.ndisks, 1);
    assert_string_equal(d.disks[0].path, "/d.img");
    assert_true(d.disks[0].readonly);
    assert_string_equal(d.disks[0].id, "root");
    assert_int_equal(d.nnets, 2);
    assert_int_equal(d.nets[0].backend, NET_USER);
    assert_int_equal(d.nets[0].nhostfwd, 1);
    assert_int_equal(d.nets[0].hostfwd[0].host_port, 8080);
    assert_string_equal(d.nets[1].tap, "tap3");
    assert_true(d.nets[1].mac_set);
    assert_int_equal(d.nets[1].mac[5], 7);
    assert_int_equal(d.vsock.cid, 5);
    assert_string_equal(d.vsock.uds_path, "/v.sock");
    assert_int_equal(d.balloon.target_mib, 64);
    assert_int_equal(d.balloon.stats_interval_s, 2);
    assert_int_equal(d.console_in, 7);
    assert_string_equal(d.hv_device, "/dev/kvm2");
    config_release(&d);

    /* Every truncation of the section is refused, and what was read so far
     * is released (ASan and valgrind see leaks). */
    assert_int_equal(snap_find(w.buf, w.len, "config", &r), 0);
    size_t whole = r.left;
    for (size_t cut = 0; cut < whole; cut++) {
        struct snap_r t;
        assert_int_equal(snap_find(w.buf, w.len, "config", &t), 0);
        t.left = cut;
        config_init(&d);
        assert_int_equal(config_load(&d, &t), -EPROTO);
        config_release(&d);
    }
    /* A console kind or net back end out of range is refused. */
    uint8_t *bad = malloc(w.len);
    memcpy(bad, w.buf, w.len);
    assert_int_equal(snap_find(bad, w.len, "config", &r), 0);
    size_t at = (size_t)(r.p - bad) + 2 + strlen("/boot/vmlinuz") + 2 + 2 + strlen("quiet") + 1 +
                4 + 8; /* the console byte */
    bad[at] = 9;
    assert_int_equal(snap_find(bad, w.len, "config", &r), 0);
    config_init(&d);
    assert_int_equal(config_load(&d, &r), -EPROTO);
    config_release(&d);
    free(bad);
    snap_w_free(&w);
    config_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
        cmocka_unit_test(test_parse_net),
        cmocka_unit_test(test_parse_vsock_balloon),
        cmocka_unit_test(test_parse_share),
        cmocka_unit_test(test_parse_cpulist),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_snapshot_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
