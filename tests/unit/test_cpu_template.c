/* test_cpu_template.c - CPU templates without KVM: checking a template,
 * applying its CPUID modifiers to a CPUID table (before arcvm's fixups,
 * which win), and the library's setter. */
#include "unit.h"

#include "arcvm.h"
#include "arch/cpu_template.h"
#include "arch/x86/cpu.h"

/* A small CPUID as KVM might offer it. */
static void table(struct hv_x86_cpuid *e, unsigned *n)
{
    const struct hv_x86_cpuid t[] = {
        {0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
        {1, 0, 0, 0x00a20f12, 0, 0x7ed8320b, 0x178bfbff},
        {7, 0, HV_CPUID_SIGNIFICANT_INDEX, 0, 0x219c97a9, 0x0040069c, 0},
        {7, 1, HV_CPUID_SIGNIFICANT_INDEX, 0, 0, 0, 0},
    };
    memcpy(e, t, sizeof(t));
    *n = sizeof(t) / sizeof(t[0]);
}

static void test_apply(void **state)
{
    (void)state;
    struct hv_x86_cpuid e[8];
    unsigned n;
    table(e, &n);
    static struct cpu_template t;
    memset(&t, 0, sizeof(t));
    /* Leaf 1: clear ECX bit 30 (RDRAND), set EAX bits 3:0 to 0101; leaf 7.0:
     * clear EBX bit 5 (AVX2) and the significant-index flag. */
    t.cpuid[0] = (struct cpu_template_cpuid){.leaf = 1,
                                             .subleaf = 0,
                                             .flags = 0,
                                             .mask = {0xf, 0, 1u << 30, 0},
                                             .value = {0x5, 0, 0, 0}};
    t.cpuid[1] = (struct cpu_template_cpuid){
        .leaf = 7, .subleaf = 0, .flags = 0, .mask = {0, 1u << 5, 0, 0}};
    t.ncpuid = 2;
    char err[256] = "";
    assert_int_equal(cpu_template_check(&t, err, sizeof(err)), 0);
    assert_int_equal(x86_cpuid_apply_template(e, n, &t, err, sizeof(err)), 0);
    assert_int_equal(e[1].eax, 0x00a20f15);
    assert_int_equal(e[1].ecx, 0x7ed8320b & ~(1u << 30));
    assert_int_equal(e[1].edx, 0x178bfbff); /* untouched */
    assert_int_equal(e[2].ebx, 0x219c97a9 & ~(1u << 5));
    assert_int_equal(e[2].flags, 0);
    assert_int_equal(e[3].flags, HV_CPUID_SIGNIFICANT_INDEX); /* 7.1 not named */
    /* arcvm's fixups come after and win: the template cannot hide the
     * hypervisor bit or fake the APIC ID. */
    t.cpuid[0].mask[2] = 1u << 31;
    t.cpuid[0].value[2] = 0;
    table(e, &n);
    assert_int_equal(x86_cpuid_apply_template(e, n, &t, err, sizeof(err)), 0);
    x86_cpuid_fixup(e, n, 1, 2, false);
    assert_true(e[1].ecx & (1u << 31));
    assert_int_equal(e[1].ebx >> 24, 1);

    /* A leaf KVM does not offer fails, naming it. */
    t.cpuid[1].subleaf = 5;
    table(e, &n);
    assert_int_equal(x86_cpuid_apply_template(e, n, &t, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "leaf 0x7 subleaf 0x5"));
    /* No template: nothing changes. */
    struct hv_x86_cpuid before[8];
    table(e, &n);
    memcpy(before, e, sizeof(before));
    assert_int_equal(x86_cpuid_apply_template(e, n, NULL, err, sizeof(err)), 0);
    assert_memory_equal(e, before, n * sizeof(e[0]));
    assert_int_equal(cpu_template_bits(0xf0f0, 0x00ff, 0x0012), 0xf012);
}

static void test_check(void **state)
{
    (void)state;
    static struct cpu_template t;
    char err[256];
    memset(&t, 0, sizeof(t));
    t.cpuid[0] = (struct cpu_template_cpuid){.leaf = 1};
    t.cpuid[1] = (struct cpu_template_cpuid){.leaf = 1, .subleaf = 1};
    t.ncpuid = 2;
    assert_int_equal(cpu_template_check(&t, err, sizeof(err)), 0);
    t.cpuid[1].subleaf = 0;
    assert_int_equal(cpu_template_check(&t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "appears twice"));
    t.ncpuid = 1;
    t.cpuid[0].mask[3] = 0x1;
    t.cpuid[0].value[3] = 0x3;
    assert_int_equal(cpu_template_check(&t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "edx: value bits 0x3 lie outside the mask 0x1"));
    t.ncpuid = 0;
    t.msr[0] = (struct cpu_template_msr){0x10a, 0xff, 0x1};
    t.msr[1] = (struct cpu_template_msr){0x10a, 0xff, 0x2};
    t.nmsr = 2;
    assert_int_equal(cpu_template_check(&t, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "MSR 0x10a appears twice"));
    t.nmsr = 1;
    t.msr[0].value = 0x100;
    assert_int_equal(cpu_template_check(&t, err, sizeof(err)), -EINVAL);
    t.nmsr = CPU_TEMPLATE_MAX + 1;
    assert_int_equal(cpu_template_check(&t, err, sizeof(err)), -EINVAL);
}

/* The library copies and checks the template; settings are fixed once
 * the VM exists (not testable without KVM), NULL clears. */
static void test_library(void **state)
{
    (void)state;
    arcvm *vm;
    assert_int_equal(arcvm_create(&vm), 0);
    struct arcvm_cpuid_modifier c[2] = {
        {.leaf = 1, .mask = {0, 0, 1u << 30, 0}},
        {.leaf = 7, .mask = {0, 1u << 5, 0, 0}},
    };
    uint32_t caps[] = {171};
    struct arcvm_cpu_template t = {.cpuid = c, .ncpuid = 2, .kvm_caps = caps, .nkvm_caps = 1};
    assert_int_equal(arcvm_set_cpu_template(vm, &t), 0);
    c[1].leaf = 1;
    assert_int_equal(arcvm_set_cpu_template(vm, &t), -EINVAL);
    assert_non_null(strstr(arcvm_last_error(vm), "appears twice"));
    t.ncpuid = ARCVM_CPU_TEMPLATE_MAX + 1;
    assert_int_equal(arcvm_set_cpu_template(vm, &t), -EINVAL);
    t.ncpuid = 1;
    t.cpuid = NULL;
    assert_int_equal(arcvm_set_cpu_template(vm, &t), -EINVAL);
    assert_int_equal(arcvm_set_cpu_template(vm, NULL), 0);
    arcvm_destroy(vm);
}

int main(void)
{
    RUN(cmocka_unit_test(test_apply), cmocka_unit_test(test_check), cmocka_unit_test(test_library));
}
