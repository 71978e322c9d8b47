/* test_hostcheck.c - telling a hardware KVM from a paravirtual one (PVM)
 * from fake /proc/cpuinfo and /sys/module trees; the kernel cache probe;
 * and the report `arcvm check` prints for devices that are missing or are
 * not KVM (no KVM needed for those). */
#include "unit.h"

#include "host/kcache.h"
#include "hv/hv.h"
#include "vmm/hostcheck.h"

#include <stdbool.h>
#include <sys/stat.h>

static char root[64];

static void put(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *rel)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
}

/* A fresh fake root with the given cpuinfo flags and loaded modules. */
static void host(const char *flags, const char *const *modules)
{
    char cmd[128];
    if (root[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(root, sizeof(root), "/tmp/arcvm-hostcheck.XXXXXX");
    assert_non_null(mkdtemp(root));
    mkdirs("proc");
    mkdirs("sys/module");
    if (flags) {
        char text[1024];
        snprintf(text, sizeof(text),
                 "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: %s\n\n"
                 "processor\t: 1\nflags\t\t: %s\n",
                 flags, flags);
        put("proc/cpuinfo", text);
    }
    for (; modules && *modules; modules++) {
        char d[128];
        snprintf(d, sizeof(d), "sys/module/%s", *modules);
        mkdirs(d);
    }
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    if (root[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        (void)!system(cmd);
        root[0] = 0;
    }
    return 0;
}

static void test_pvm(void **state)
{
    (void)state;
    /* As on this project's development machines: kvm_pvm, no vmx/svm. */
    host("fpu vme de pse tsc msr pae sse sse2 hypervisor lahf_lm avx2",
         (const char *const[]){"kvm", "kvm_pvm", NULL});
    struct hv_host_info hi;
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_PARAVIRT);
    assert_string_equal(hi.driver, "kvm_pvm");
    assert_string_equal(hi.cpu_virt, "");
    assert_true(hi.in_vm);
}

static void test_nested_amd(void **state)
{
    (void)state;
    /* The harness's outer guest: QEMU/TCG's emulated SVM, kvm_amd. */
    host("fpu sse2 hypervisor svm npt", (const char *const[]){"kvm", "kvm_amd", NULL});
    struct hv_host_info hi;
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_HARDWARE);
    assert_string_equal(hi.driver, "kvm_amd");
    assert_string_equal(hi.cpu_virt, "svm");
    assert_true(hi.in_vm);
}

static void test_bare_intel(void **state)
{
    (void)state;
    host("fpu vmx ept sse2", (const char *const[]){"kvm", "kvm_intel", NULL});
    struct hv_host_info hi;
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_HARDWARE);
    assert_string_equal(hi.driver, "kvm_intel");
    assert_string_equal(hi.cpu_virt, "vmx");
    assert_false(hi.in_vm);
}

static void test_vendor_module_wins(void **state)
{
    (void)state;
    /* Both loaded on a CPU with VT-x: KVM runs on kvm_intel. */
    host("fpu vmx sse2", (const char *const[]){"kvm", "kvm_pvm", "kvm_intel", NULL});
    struct hv_host_info hi;
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_HARDWARE);
    assert_string_equal(hi.driver, "kvm_intel");
}

static void test_idle_vendor_module(void **state)
{
    (void)state;
    /* kvm_intel loaded but VT-x off in the firmware: no hardware backend;
     * with kvm_pvm beside it, PVM is what /dev/kvm is. */
    host("fpu sse2", (const char *const[]){"kvm", "kvm_intel", NULL});
    struct hv_host_info hi;
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_UNKNOWN);
    assert_string_equal(hi.driver, "");
    host("fpu sse2", (const char *const[]){"kvm", "kvm_intel", "kvm_pvm", NULL});
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_PARAVIRT);
}

static void test_flag_words(void **state)
{
    (void)state;
    /* Whole words only: "svm_lock" or "nsvm" is not "svm". */
    host("fpu svm_lock nsvm vmxx hypervisorx", NULL);
    struct hv_host_info hi;
    hv_host_info(root, &hi);
    assert_string_equal(hi.cpu_virt, "");
    assert_false(hi.in_vm);
    assert_int_equal(hi.kind, HV_HOST_UNKNOWN);
    /* Built-in KVM shows no module: the CPU flag decides. */
    host("fpu svm", NULL);
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_HARDWARE);
    assert_string_equal(hi.driver, "");
    /* No cpuinfo at all. */
    host(NULL, NULL);
    hv_host_info(root, &hi);
    assert_int_equal(hi.kind, HV_HOST_UNKNOWN);
}

static void test_kcache_probe(void **state)
{
    (void)state;
    host(NULL, NULL);
    char p[256];
    assert_int_equal(kcache_probe(root), 0);
    /* Not there yet: the nearest existing ancestor decides. */
    snprintf(p, sizeof(p), "%s/a/b/c", root);
    assert_int_equal(kcache_probe(p), 0);
    /* A file in the way. */
    put("file", "x");
    snprintf(p, sizeof(p), "%s/file/kernels", root);
    assert_int_equal(kcache_probe(p), -ENOTDIR);
    assert_int_equal(kcache_probe(""), -EINVAL);
}

static const struct hostcheck_item *item(const struct hostcheck *hc, const char *name)
{
    for (unsigned i = 0; i < hc->count; i++)
        if (!strcmp(hc->items[i].name, name))
            return &hc->items[i];
    return NULL;
}

static void test_report_without_kvm(void **state)
{
    (void)state;
    static struct hostcheck hc;
    /* A missing device: one FAIL with a hint, the host back ends still
     * reported. */
    host("fpu svm", (const char *const[]){"kvm_amd", NULL});
    setenv(HOSTCHECK_ROOT_ENV, root, 1);
    hostcheck_run(&hc, "/nonexistent/kvm", NULL);
    const struct hostcheck_item *it = item(&hc, "kvm-device");
    assert_non_null(it);
    assert_int_equal(it->status, HOSTCHECK_FAIL);
    assert_non_null(strstr(it->detail, "does not exist"));
    assert_true(it->hint[0]);
    assert_int_equal(item(&hc, "hardware-virt")->status, HOSTCHECK_PASS);
    assert_null(item(&hc, "guest-run")); /* nothing to run it on */
    assert_non_null(item(&hc, "io-uring"));
    assert_null(item(&hc, "kernel-cache"));
    assert_true(hc.fails >= 1);

    /* /dev/null opens but is no KVM; on a PVM host that FAILs as well. */
    host("fpu hypervisor", (const char *const[]){"kvm_pvm", NULL});
    setenv(HOSTCHECK_ROOT_ENV, root, 1);
    hostcheck_run(&hc, "/dev/null", root);
    assert_int_equal(item(&hc, "kvm-device")->status, HOSTCHECK_PASS);
    it = item(&hc, "kvm-api");
    assert_non_null(it);
    assert_int_equal(it->status, HOSTCHECK_FAIL);
    assert_non_null(strstr(it->detail, "not a KVM device"));
    it = item(&hc, "hardware-virt");
    assert_int_equal(it->status, HOSTCHECK_FAIL);
    assert_non_null(strstr(it->detail, "kvm_pvm"));
    assert_int_equal(item(&hc, "kernel-cache")->status, HOSTCHECK_PASS);
    for (unsigned i = 0; i < hc.count; i++) {
        /* Every verdict says what was found; every non-PASS what to do. */
        assert_true(hc.items[i].detail[0]);
        assert_true(hc.items[i].status == HOSTCHECK_PASS || hc.items[i].hint[0]);
    }
    unsetenv(HOSTCHECK_ROOT_ENV);
}

int main(void)
{
    RUN(cmocka_unit_test_teardown(test_pvm, teardown),
        cmocka_unit_test_teardown(test_nested_amd, teardown),
        cmocka_unit_test_teardown(test_bare_intel, teardown),
        cmocka_unit_test_teardown(test_vendor_module_wins, teardown),
        cmocka_unit_test_teardown(test_idle_vendor_module, teardown),
        cmocka_unit_test_teardown(test_flag_words, teardown),
        cmocka_unit_test_teardown(test_kcache_probe, teardown),
        cmocka_unit_test_teardown(test_report_without_kvm, teardown));
}
