/* test_jailer.c - arcvm-jailer's pure parts (src/jailer/args.c): flag
 * parsing and validation, path building, cgroup values and resource
 * limits, /proc/mounts and /proc/self/cgroup parsing, the static-ELF check.
 * The jail itself is tested as root by tests/jailer.sh. */
#include "unit.h"

#include "jailer/args.h"

#include <elf.h>

/* Parse the flags given (after argv[0]), expecting success or an error. */
/* Static: the parsed arguments point into the vector (as into main's argv). */
#define PARSE_OK(a, ...)                                                                           \
    do {                                                                                           \
        static char *v_[] = {"arcvm-jailer", __VA_ARGS__, NULL};                                   \
        parse_ok(v_, (int)(sizeof(v_) / sizeof(v_[0])) - 1, a);                                    \
    } while (0)
#define PARSE_BAD(needle, ...)                                                                     \
    do {                                                                                           \
        char *v_[] = {"arcvm-jailer", __VA_ARGS__, NULL};                                          \
        parse_bad(v_, (int)(sizeof(v_) / sizeof(v_[0])) - 1, needle);                              \
    } while (0)

/* Parse @argv; expect success. */
static void parse_ok(char **argv, int argc, struct jailer_args *a)
{
    char err[256] = "";
    int r = jailer_parse(argc, argv, a, err, sizeof(err));
    if (r != 0)
        fail_msg("unexpected error: %s", err);
}

/* Parse @argv; expect an error mentioning @needle, on one line. */
static void parse_bad(char **argv, int argc, const char *needle)
{
    struct jailer_args a;
    char err[256] = "";
    assert_int_equal(jailer_parse(argc, argv, &a, err, sizeof(err)), -1);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_null(strchr(err, '\n'));
}

static void test_parse_full(void **state)
{
    (void)state;
    struct jailer_args a;
    PARSE_OK(&a, "--id", "vm-1", "--exec-file", "/usr/bin/arcvm", "--uid", "123", "--gid=100",
             "--chroot-base-dir", "/tmp/j", "--netns", "/run/netns/x", "--daemonize",
             "--new-pid-ns", "--cgroup-version", "2", "--cgroup", "memory.max=1000", "--cgroup",
             "cpu.max=max 100000", "--parent-cgroup", "vms/ext", "--resource-limit", "fsize=4096",
             "--resource-limit=no-file=64", "--", "--api-sock", "/api.sock");
    assert_string_equal(a.id, "vm-1");
    assert_string_equal(a.exec_file, "/usr/bin/arcvm");
    assert_int_equal(a.uid, 123);
    assert_int_equal(a.gid, 100);
    assert_string_equal(a.chroot_base, "/tmp/j");
    assert_string_equal(a.netns, "/run/netns/x");
    assert_true(a.daemonize && a.new_pid_ns);
    assert_int_equal(a.cgroup_version, 2);
    assert_int_equal(a.n_cgroups, 2);
    assert_string_equal(a.cgroups[0].file, "memory.max");
    assert_string_equal(a.cgroups[0].value, "1000");
    assert_string_equal(a.cgroups[1].file, "cpu.max");
    assert_string_equal(a.cgroups[1].value, "max 100000");
    assert_string_equal(a.parent_cgroup, "vms/ext");
    assert_true(a.have_fsize);
    assert_int_equal(a.fsize, 4096);
    assert_int_equal(a.nofile, 64);
    assert_int_equal(a.n_extra, 2);
    assert_string_equal(a.extra[0], "--api-sock");
    assert_string_equal(a.extra[1], "/api.sock");
}

static void test_parse_defaults(void **state)
{
    (void)state;
    struct jailer_args a;
    PARSE_OK(&a, "--id", "a", "--exec-file", "arcvm", "--uid", "0", "--gid", "0");
    assert_string_equal(a.chroot_base, "/srv/jailer");
    assert_int_equal(a.cgroup_version, 1);
    assert_int_equal(a.nofile, 2048);
    assert_false(a.have_fsize || a.daemonize || a.new_pid_ns);
    assert_null(a.netns);
    assert_null(a.parent_cgroup);
    assert_int_equal(a.n_cgroups, 0);
    assert_int_equal(a.n_extra, 0);
}

static void test_parse_errors(void **state)
{
    (void)state;
    PARSE_BAD("--id is required", "--exec-file", "/a", "--uid", "1", "--gid", "1");
    PARSE_BAD("--exec-file is required", "--id", "x", "--uid", "1", "--gid", "1");
    PARSE_BAD("--uid is required", "--id", "x", "--exec-file", "/a", "--gid", "1");
    PARSE_BAD("--gid is required", "--id", "x", "--exec-file", "/a", "--uid", "1");
    PARSE_BAD("--id 'a_b'", "--id", "a_b");
    PARSE_BAD("--id ''", "--id", "");
    PARSE_BAD("more than once", "--id", "a", "--id", "b");
    PARSE_BAD("--uid '-1'", "--uid", "-1");
    PARSE_BAD("--uid", "--uid", "4294967295");
    PARSE_BAD("--gid '12a'", "--gid", "12a");
    PARSE_BAD("--uid needs a value", "--uid");
    PARSE_BAD("takes no value", "--daemonize=yes");
    PARSE_BAD("unknown argument '--bogus'", "--bogus");
    PARSE_BAD("unknown argument 'stray'", "stray");
    PARSE_BAD("--exec-file", "--exec-file", "/usr/bin/");
    PARSE_BAD("--exec-file", "--exec-file", "..");
    PARSE_BAD("absolute", "--chroot-base-dir", "rel/dir");
    PARSE_BAD("'..'", "--chroot-base-dir", "/srv/../etc");
    PARSE_BAD("'..'", "--chroot-base-dir", "/srv/..");
    PARSE_BAD("give 1 or 2", "--cgroup-version", "3");
    PARSE_BAD("--parent-cgroup", "--parent-cgroup", "../x");
    PARSE_BAD("--parent-cgroup", "--parent-cgroup", "/abs");
    PARSE_BAD("fsize or no-file", "--resource-limit", "stack=1");
    PARSE_BAD("RESOURCE=NUMBER", "--resource-limit", "fsize=-1");
    PARSE_BAD("RESOURCE=NUMBER", "--resource-limit", "fsize");
    /* cgroup v1 is refused only when a cgroup is asked for. */
    PARSE_BAD("cgroup v1 is not supported", "--id", "x", "--exec-file", "/a", "--uid", "1", "--gid",
              "1", "--cgroup", "pids.max=5");
    PARSE_BAD("cgroup v1 is not supported", "--id", "x", "--exec-file", "/a", "--uid", "1", "--gid",
              "1", "--parent-cgroup", "p");
}

static void test_parse_help(void **state)
{
    (void)state;
    struct jailer_args a;
    PARSE_OK(&a, "--help");
    assert_true(a.help);
    PARSE_OK(&a, "--version");
    assert_true(a.version);
}

static void test_id(void **state)
{
    (void)state;
    char id[JAILER_ID_MAX + 2];
    memset(id, 'a', sizeof(id));
    id[JAILER_ID_MAX] = 0;
    assert_true(jailer_id_valid(id));
    id[JAILER_ID_MAX] = 'a';
    id[JAILER_ID_MAX + 1] = 0;
    assert_false(jailer_id_valid(id));
    assert_true(jailer_id_valid("551e7604-e35c-42b3-b825-416853441234"));
    assert_true(jailer_id_valid("-"));
    assert_false(jailer_id_valid(""));
    assert_false(jailer_id_valid("a/b"));
    assert_false(jailer_id_valid(".."));
    assert_false(jailer_id_valid("a b"));
    assert_false(jailer_id_valid("caf\xc3\xa9"));

    uint32_t n;
    assert_int_equal(jailer_parse_id_number("0", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(jailer_parse_id_number("4294967294", &n), 0);
    assert_int_equal(n, 4294967294u);
    assert_int_equal(jailer_parse_id_number("4294967295", &n), -1);
    assert_int_equal(jailer_parse_id_number("99999999999999999999999", &n), -1);
    assert_int_equal(jailer_parse_id_number("", &n), -1);
    assert_int_equal(jailer_parse_id_number("+1", &n), -1);
    assert_int_equal(jailer_parse_id_number(" 1", &n), -1);
}

static void test_cgroup_values(void **state)
{
    (void)state;
    struct jailer_cgroup c;
    char err[256];
    assert_int_equal(jailer_parse_cgroup("pids.max=10", &c, err, sizeof(err)), 0);
    assert_string_equal(c.file, "pids.max");
    assert_string_equal(c.value, "10");
    assert_int_equal(jailer_parse_cgroup("cpuset.cpus=0-1,3", &c, err, sizeof(err)), 0);
    assert_string_equal(c.value, "0-1,3");
    assert_int_equal(jailer_parse_cgroup("memory.max=", &c, err, sizeof(err)), 0);
    assert_string_equal(c.value, "");
    assert_int_equal(jailer_parse_cgroup("a.b=x=y", &c, err, sizeof(err)), 0);
    assert_string_equal(c.file, "a.b");
    assert_string_equal(c.value, "x=y");
    static const char *const bad[] = {
        "pids.max",      "=1",
        "pids=1",        ".max=1",
        "pids.=1",       "../x.y=1",
        "a/b.c=1",       "Pids.max=1",
        "pids.max=1\n2", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.max=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        if (jailer_parse_cgroup(bad[i], &c, err, sizeof(err)) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(strstr(err, "--cgroup"));
    }
}

static void test_rlimits(void **state)
{
    (void)state;
    struct jailer_args a = {0};
    char err[256];
    assert_int_equal(jailer_parse_rlimit("fsize=250000000", &a, err, sizeof(err)), 0);
    assert_true(a.have_fsize);
    assert_int_equal(a.fsize, 250000000);
    assert_int_equal(jailer_parse_rlimit("no-file=1024", &a, err, sizeof(err)), 0);
    assert_int_equal(a.nofile, 1024);
    assert_int_equal(jailer_parse_rlimit("nofile=1", &a, err, sizeof(err)), -1);
    assert_int_equal(jailer_parse_rlimit("fsize=1k", &a, err, sizeof(err)), -1);
    assert_int_equal(jailer_parse_rlimit("fsize=", &a, err, sizeof(err)), -1);
    assert_int_equal(jailer_parse_rlimit("no-file=99999999999999999999", &a, err, sizeof(err)), -1);
}

static void test_paths(void **state)
{
    (void)state;
    assert_true(jailer_relpath_valid("firecracker"));
    assert_true(jailer_relpath_valid("all_uvms/external-uvms/v1.2"));
    assert_false(jailer_relpath_valid(""));
    assert_false(jailer_relpath_valid("/a"));
    assert_false(jailer_relpath_valid("a/"));
    assert_false(jailer_relpath_valid("a//b"));
    assert_false(jailer_relpath_valid("a/./b"));
    assert_false(jailer_relpath_valid("a/.."));
    assert_false(jailer_relpath_valid("a b"));

    assert_string_equal(jailer_exec_name("/usr/bin/arcvm"), "arcvm");
    assert_string_equal(jailer_exec_name("arcvm"), "arcvm");
    assert_string_equal(jailer_exec_name("./firecracker"), "firecracker");
    assert_null(jailer_exec_name("/usr/bin/"));
    assert_null(jailer_exec_name(""));
    assert_null(jailer_exec_name("/a/.."));

    char out[64];
    assert_int_equal(jailer_join3(out, sizeof(out), "/srv/jailer", "arcvm", "vm1"), 0);
    assert_string_equal(out, "/srv/jailer/arcvm/vm1");
    assert_int_equal(jailer_join3(out, sizeof(out), "/srv/jailer//", "arcvm", "vm1"), 0);
    assert_string_equal(out, "/srv/jailer/arcvm/vm1");
    assert_int_equal(jailer_join3(out, sizeof(out), "/", "arcvm", "vm1"), 0);
    assert_string_equal(out, "/arcvm/vm1");
    assert_int_equal(jailer_join3(out, 12, "/srv/jailer", "arcvm", "vm1"), -1);
}

static void test_mounts(void **state)
{
    (void)state;
    char out[128];
    const char *hybrid = "sysfs /sys sysfs rw 0 0\n"
                         "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
                         "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
    assert_int_equal(jailer_cgroup2_root(hybrid, out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/cgroup/unified");
    assert_int_equal(jailer_cgroup2_root("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0", out, sizeof(out)),
                     0);
    assert_string_equal(out, "/sys/fs/cgroup");
    assert_int_equal(jailer_cgroup2_root("none /my\\040cg cgroup2 rw 0 0\n", out, sizeof(out)), 0);
    assert_string_equal(out, "/my cg");
    assert_int_equal(jailer_cgroup2_root("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"
                                         "cgroup2x /x cgroup2x rw 0 0\n",
                                         out, sizeof(out)),
                     -1);
    assert_int_equal(jailer_cgroup2_root("", out, sizeof(out)), -1);
    assert_int_equal(jailer_cgroup2_root("cgroup2 /a/very/long/path cgroup2 rw 0 0", out, 8), -1);

    assert_int_equal(jailer_own_cgroup("4:memory:/x\n0::/user.slice/a\n", out, sizeof(out)), 0);
    assert_string_equal(out, "/user.slice/a");
    assert_int_equal(jailer_own_cgroup("0::/", out, sizeof(out)), 0);
    assert_string_equal(out, "/");
    assert_int_equal(jailer_own_cgroup("1:cpu:/\n", out, sizeof(out)), -1);
}

/* A minimal ELF64 header with @n program headers, the last of @type. */
static size_t make_elf(unsigned char *buf, size_t len, unsigned n, uint32_t last_type)
{
    memset(buf, 0, len);
    Elf64_Ehdr eh = {.e_phoff = sizeof(Elf64_Ehdr),
                     .e_phentsize = sizeof(Elf64_Phdr),
                     .e_phnum = (Elf64_Half)n,
                     .e_type = ET_DYN};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    memcpy(buf, &eh, sizeof(eh));
    for (unsigned i = 0; i < n; i++) {
        Elf64_Phdr ph = {.p_type = i + 1 == n ? last_type : PT_LOAD};
        memcpy(buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
    }
    return sizeof(eh) + n * sizeof(Elf64_Phdr);
}

static void test_elf(void **state)
{
    (void)state;
    unsigned char buf[1024];
    size_t n = make_elf(buf, sizeof(buf), 4, PT_DYNAMIC);
    assert_int_equal(jailer_elf_static(buf, n), 1);
    n = make_elf(buf, sizeof(buf), 4, PT_INTERP);
    assert_int_equal(jailer_elf_static(buf, n), 0);
    assert_int_equal(jailer_elf_static(buf, n - 1), -1); /* headers cut short */
    assert_int_equal(jailer_elf_static("#!/bin/sh\n", 10), -1);
    assert_int_equal(jailer_elf_static(buf, 10), -1);
    n = make_elf(buf, sizeof(buf), 1, PT_LOAD);
    Elf64_Ehdr eh;
    memcpy(&eh, buf, sizeof(eh));
    eh.e_phoff = UINT64_MAX - 8; /* hostile offset */
    memcpy(buf, &eh, sizeof(eh));
    assert_int_equal(jailer_elf_static(buf, n), -1);
}

int main(void)
{
    RUN(cmocka_unit_test(test_parse_full), cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parse_help),
        cmocka_unit_test(test_id), cmocka_unit_test(test_cgroup_values),
        cmocka_unit_test(test_rlimits), cmocka_unit_test(test_paths), cmocka_unit_test(test_mounts),
        cmocka_unit_test(test_elf));
}
