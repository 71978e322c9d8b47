/* test_config.c - size parsing and configuration validation. */
#include "unit.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
