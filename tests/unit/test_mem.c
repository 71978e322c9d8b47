/* test_mem.c - guest memory regions and the checked accessor. */
#include "unit.h"

#include "base/guest_mem.h"

static void test_layout_rejects(void **state)
{
    (void)state;
    struct guest_mem m;
    struct guest_mem_region bad1[] = {{0, 4095, NULL}};
    assert_int_equal(guest_mem_init(&m, bad1, 1), -EINVAL);
    struct guest_mem_region bad2[] = {{0x2000, 0x2000, NULL}, {0x1000, 0x1000, NULL}};
    assert_int_equal(guest_mem_init(&m, bad2, 2), -EINVAL);
    struct guest_mem_region bad3[] = {{UINT64_MAX & ~0xfffull, 0x2000, NULL}};
    assert_int_equal(guest_mem_init(&m, bad3, 1), -EINVAL);
    assert_int_equal(guest_mem_init(&m, bad1, 0), -EINVAL);
}

static void test_accessor(void **state)
{
    (void)state;
    struct guest_mem m;
    struct guest_mem_region l[] = {{0, 0x10000, NULL}, {0x100000000ull, 0x4000, NULL}};
    assert_int_equal(guest_mem_init(&m, l, 2), 0);
    assert_int_equal(m.total, 0x14000);

    assert_ptr_equal(guest_mem_ptr(&m, 0, 1), m.base);
    assert_ptr_equal(guest_mem_ptr(&m, 0xffff, 1), m.base + 0xffff);
    assert_null(guest_mem_ptr(&m, 0xffff, 2));   /* crosses the end */
    assert_null(guest_mem_ptr(&m, 0x10000, 1));  /* the hole */
    assert_null(guest_mem_ptr(&m, 0, 0));
    assert_ptr_equal(guest_mem_ptr(&m, 0x100000000ull, 0x4000), m.base + 0x10000);
    assert_null(guest_mem_ptr(&m, 0x100000000ull, 0x4001));
    /* Hostile values: huge lengths, wrap-around, the top of the space. */
    assert_null(guest_mem_ptr(&m, 0x10, UINT64_MAX));
    assert_null(guest_mem_ptr(&m, UINT64_MAX, 1));
    assert_null(guest_mem_ptr(&m, UINT64_MAX - 0xf, 0x20));
    assert_null(guest_mem_ptr(&m, 0x100000000ull + 0x3fff, UINT64_MAX - 0x3ffe));
    assert_null(guest_mem_ptr(&m, 0xfff0, 0x100000000ull));
    /* And back: host pointer -> guest-physical, whole range in one region. */
    uint64_t gpa = 0;
    assert_int_equal(guest_mem_gpa(&m, m.base + 0x10000 + 0x10, 0x10, &gpa), 0);
    assert_true(gpa == 0x100000010ull);
    assert_int_equal(guest_mem_gpa(&m, m.base + 0xfff0, 0x20, &gpa), -EFAULT); /* spans both */
    assert_int_equal(guest_mem_gpa(&m, m.base + 0x10, UINT64_MAX, &gpa), -EFAULT);
    assert_int_equal(guest_mem_gpa(&m, m.base - 1, 1, &gpa), -EFAULT);
    assert_int_equal(guest_mem_gpa(&m, m.base + 0x14000, 1, &gpa), -EFAULT);

    uint8_t data[16] = "guest memory!";
    assert_int_equal(guest_mem_write(&m, 0x100000000ull + 8, data, sizeof(data)), 0);
    uint8_t back[16];
    assert_int_equal(guest_mem_read(&m, 0x100000000ull + 8, back, sizeof(back)), 0);
    assert_memory_equal(data, back, sizeof(data));
    assert_int_equal(guest_mem_write(&m, 0xfff8, data, 16), -EFAULT);
    assert_int_equal(guest_mem_read(&m, 0x10000, back, 1), -EFAULT);

    assert_int_equal(guest_mem_room(&m, 0xfff0), 0x10);
    assert_int_equal(guest_mem_room(&m, 0x10000), 0);
    guest_mem_release(&m);
    assert_int_equal(m.fd, -1);
}

/* Huge pages: regions must sit on 2 MiB; the pool is reserved up front,
 * so a short pool is an error now, not a SIGBUS later. */
static void test_huge_pages(void **state)
{
    (void)state;
    struct guest_mem m;
    struct guest_mem_region odd[] = {{0, 0x201000, NULL}};
    assert_int_equal(guest_mem_init_pages(&m, odd, 1, GUEST_MEM_HUGE_2M), -EINVAL);
    struct guest_mem_region off[] = {{0x1000, 0x200000, NULL}};
    assert_int_equal(guest_mem_init_pages(&m, off, 1, GUEST_MEM_HUGE_2M), -EINVAL);

    /* More than any pool here holds: 1 TiB. */
    struct guest_mem_region big[] = {{0, 1ull << 40, NULL}};
    long before = guest_mem_free_huge_pages();
    int r = guest_mem_init_pages(&m, big, 1, GUEST_MEM_HUGE_2M);
    assert_true(r == -ENOMEM || r == -EINVAL || r == -ENOENT); /* no pool; no hugetlbfs */
    assert_int_equal(m.fd, -1);
    assert_int_equal(guest_mem_free_huge_pages(), before); /* nothing kept */

    /* Where the pool has room, the RAM is reserved and usable at once. */
    struct guest_mem_region two[] = {{0, 0x400000, NULL}};
    if (before >= 2) {
        assert_int_equal(guest_mem_init_pages(&m, two, 1, GUEST_MEM_HUGE_2M), 0);
        assert_int_equal(guest_mem_free_huge_pages(), before - 2);
        assert_int_equal((uintptr_t)m.base & (GUEST_MEM_HUGE_SIZE - 1), 0);
        assert_int_equal(guest_mem_write(&m, 0x3ffff0, "tail", 4), 0);
        guest_mem_release(&m);
        assert_int_equal(guest_mem_free_huge_pages(), before);
    }
    /* Transparent: ordinary memory with advice; works on any host. */
    assert_int_equal(guest_mem_init_pages(&m, two, 1, GUEST_MEM_TRANSPARENT), 0);
    assert_int_equal(guest_mem_write(&m, 0x3ffff0, "tail", 4), 0);
    guest_mem_release(&m);
}

int main(void)
{
    RUN(cmocka_unit_test(test_layout_rejects), cmocka_unit_test(test_accessor),
        cmocka_unit_test(test_huge_pages));
}
