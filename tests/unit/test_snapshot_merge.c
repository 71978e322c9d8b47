/* test_snapshot_merge.c - Diff snapshots merged onto their base: only the
 * pages each Diff lists are copied, in order; the output state is a Full
 * one's; a bad Diff is refused before the base is written. */
#include "unit.h"

#include "base/snap.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGES 16

static char dir[64];

static void path(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

/* A memory file of PAGES pages, page p filled with fill(p). */
static void write_mem(const char *p, int (*fill)(unsigned))
{
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    uint8_t page[SNAP_PAGE];
    for (unsigned i = 0; i < PAGES; i++) {
        int v = fill(i);
        if (v < 0)
            continue; /* a hole */
        memset(page, v, sizeof(page));
        assert_int_equal(pwrite(fd, page, sizeof(page), (off_t)i * SNAP_PAGE), (ssize_t)SNAP_PAGE);
    }
    assert_int_equal(ftruncate(fd, PAGES * SNAP_PAGE), 0);
    close(fd);
}

/* A Diff's state: a "memory" section listing @runs, plus a "cpu" section
 * the merged state must keep. */
static void write_diff_state(const char *p, const uint64_t *runs, unsigned nruns, uint8_t kind)
{
    struct snap_w w;
    snap_w_init(&w);
    snap_begin(&w, "cpu");
    snap_put_u32(&w, 0xc0ffee);
    snap_end(&w);
    snap_begin(&w, "memory");
    snap_put_u8(&w, kind);
    snap_put_u32(&w, 1);
    snap_put_u64(&w, 0);
    snap_put_u64(&w, PAGES * SNAP_PAGE);
    snap_put_u64(&w, nruns);
    for (unsigned i = 0; i < nruns; i++) {
        snap_put_u64(&w, runs[2 * i]);
        snap_put_u64(&w, runs[2 * i + 1]);
    }
    snap_end(&w);
    assert_int_equal(w.err, 0);
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(snapfile_write(fd, &w), 0);
    close(fd);
    snap_w_free(&w);
}

static int fill_base(unsigned p) { return 'A'; }
static int fill_d1(unsigned p) { return p == 2 || p == 3 ? 'B' : -1; }
static int fill_d2(unsigned p) { return p == 3 || p == 4 ? 'C' : (p == 9 ? 0 : -1); }

static uint8_t page_byte(const char *p, unsigned page)
{
    int fd = open(p, O_RDONLY);
    uint8_t b = 0xff;
    assert_int_equal(pread(fd, &b, 1, (off_t)page * SNAP_PAGE + 100), 1);
    close(fd);
    return b;
}

static void test_merge(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/arcvm-test-merge-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char base[128], d1s[128], d1m[128], d2s[128], d2m[128], out[128], bad[128];
    path(base, "base.mem");
    path(d1s, "d1.state");
    path(d1m, "d1.mem");
    path(d2s, "d2.state");
    path(d2m, "d2.mem");
    path(out, "full.state");
    path(bad, "bad.state");
    write_mem(base, fill_base);
    write_mem(d1m, fill_d1);
    write_mem(d2m, fill_d2);
    static const uint64_t r1[] = {2, 2}, r2[] = {3, 2, 9, 1};
    write_diff_state(d1s, r1, 1, MEM_DIFF);
    write_diff_state(d2s, r2, 2, MEM_DIFF);
    char err[512];

    /* A Full snapshot is no Diff: refused, the base untouched. */
    write_diff_state(bad, r1, 1, MEM_FULL);
    const char *bs[] = {d1s, bad}, *bm[] = {d1m, d2m};
    assert_int_equal(vm_snapshot_merge(base, 2, bs, bm, out, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a Diff snapshot"));
    assert_int_equal(page_byte(base, 2), 'A');
    /* A run beyond the memory: malformed. */
    static const uint64_t rbad[] = {15, 2};
    write_diff_state(bad, rbad, 1, MEM_DIFF);
    bs[1] = bad;
    assert_int_equal(vm_snapshot_merge(base, 2, bs, bm, out, err, sizeof(err)), -EPROTO);
    assert_int_equal(page_byte(base, 2), 'A');
    assert_true(access(out, F_OK) < 0);

    const char *ss[] = {d1s, d2s}, *ms[] = {d1m, d2m};
    assert_int_equal(vm_snapshot_merge(base, 2, ss, ms, out, err, sizeof(err)), 0);
    const uint8_t want[PAGES] = {'A', 'A', 'B', 'C', 'C', 'A', 'A', 'A',
                                 'A', 0,   'A', 'A', 'A', 'A', 'A', 'A'};
    for (unsigned p = 0; p < PAGES; p++)
        if (page_byte(base, p) != want[p])
            fail_msg("page %u is '%c', want '%c'", p, page_byte(base, p), want[p]);

    /* The merged state: Full, the newest diff's other sections kept. */
    uint8_t *st;
    size_t len;
    assert_int_equal(snapfile_read(out, &st, &len, NULL, err, sizeof(err)), 0);
    struct snap_r r;
    assert_int_equal(snap_find(st, len, "memory", &r), 0);
    assert_int_equal(snap_get_u8(&r), MEM_FULL);
    assert_int_equal(snap_get_u32(&r), 1);
    assert_int_equal(snap_get_u64(&r), 0);
    assert_int_equal(snap_get_u64(&r), PAGES * SNAP_PAGE);
    assert_int_equal(snap_r_done(&r), 0);
    assert_int_equal(snap_find(st, len, "cpu", &r), 0);
    assert_int_equal(snap_get_u32(&r), 0xc0ffee);
    free(st);

    /* A Diff of another size is refused. */
    assert_int_equal(truncate(d1m, 4 * SNAP_PAGE), 0);
    assert_true(vm_snapshot_merge(base, 2, ss, ms, out, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "not as long"));
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_merge)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
