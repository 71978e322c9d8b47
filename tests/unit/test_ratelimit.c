/* test_ratelimit.c - token buckets: rate, burst, debt, waits, updates. */
#include "unit.h"

#include "base/ratelimit.h"
#include "vdev_harness.h"
#include "virtio/rng.h"

#include <time.h>

#define MS 1000000ull
#define S (1000 * MS)

/* Bytes let through in @secs seconds by a limiter asked every @step_ns
 * for @chunk bytes. */
static uint64_t pump(struct rate_limiter *rl, uint64_t chunk, uint64_t step_ns, uint64_t secs)
{
    uint64_t sent = 0, wait;
    for (uint64_t t = 0; t < secs * S; t += step_ns)
        if (rate_limiter_take(rl, chunk, t, &wait))
            sent += chunk;
    return sent;
}

static void test_bandwidth(void **state)
{
    (void)state;
    /* 1 MiB per 100 ms = 10 MiB/s. */
    struct rate_limiter_config c = {.bandwidth = {.size = 1 << 20, .refill_time_ms = 100}};
    struct rate_limiter rl;
    rate_limiter_init(&rl, &c, 0);
    uint64_t sent = pump(&rl, 64 << 10, 100000, 10); /* asked every 0.1 ms */
    /* 10 s at 10 MiB/s plus the first full bucket, within a chunk or two. */
    uint64_t want = (100ull << 20) + (1 << 20);
    assert_true(sent >= want - (128 << 10) && sent <= want + (128 << 10));
}

static void test_ops_rate_asked_often(void **state)
{
    (void)state;
    /* 100 ops per second, asked every 1 ms: the fraction of a token between
     * two asks must not be lost, or the rate would fall far short. */
    struct rate_limiter_config c = {.ops = {.size = 100, .refill_time_ms = 1000}};
    struct rate_limiter rl;
    rate_limiter_init(&rl, &c, 0);
    uint64_t ops = pump(&rl, 1, MS, 10);
    assert_true(ops >= 100 + 995 && ops <= 100 + 1002);
}

static void test_burst_and_debt(void **state)
{
    (void)state;
    struct rate_limiter_config c = {
        .bandwidth = {.size = 1000, .one_time_burst = 5000, .refill_time_ms = 1000}};
    struct rate_limiter rl;
    uint64_t wait;
    rate_limiter_init(&rl, &c, 0);
    /* The burst and the bucket: 6000 at once. */
    assert_true(rate_limiter_take(&rl, 5500, 0, &wait));
    assert_true(rate_limiter_take(&rl, 400, 0, &wait));
    /* 100 left: 200 must wait for 100 more (0.1 s at 1000/s). */
    assert_false(rate_limiter_take(&rl, 200, 0, &wait));
    assert_true(wait >= 99 * MS && wait <= 101 * MS);
    /* 3000, more than a full bucket, waits for a full one (0.9 s) and then
     * leaves a debt of 2000. */
    assert_false(rate_limiter_take(&rl, 3000, 0, &wait));
    assert_true(wait >= 899 * MS && wait <= 901 * MS);
    assert_true(rate_limiter_take(&rl, 3000, 900 * MS, &wait));
    assert_false(rate_limiter_take(&rl, 1, 900 * MS, &wait));
    /* Paying the debt and one token at 1000/s takes 2.001 s. */
    assert_true(wait >= 2000 * MS && wait <= 2002 * MS);
    assert_false(rate_limiter_take(&rl, 1, 2 * S, &wait));
    assert_true(rate_limiter_take(&rl, 1, 2 * S + 902 * MS, &wait));
    /* The burst never comes back: after a long idle only the bucket. */
    assert_true(rate_limiter_take(&rl, 1000, 100 * S, &wait));
    assert_false(rate_limiter_take(&rl, 1, 100 * S, &wait));
}

static void test_both_buckets(void **state)
{
    (void)state;
    struct rate_limiter_config c = {.bandwidth = {.size = 1 << 20, .refill_time_ms = 1000},
                                    .ops = {.size = 10, .refill_time_ms = 1000}};
    struct rate_limiter rl;
    uint64_t wait;
    rate_limiter_init(&rl, &c, 0);
    for (int i = 0; i < 10; i++)
        assert_true(rate_limiter_take(&rl, 512, 0, &wait));
    /* Bytes are left, operations are not: nothing is taken from either. */
    assert_false(rate_limiter_take(&rl, 512, 0, &wait));
    assert_true(wait >= 99 * MS && wait <= 101 * MS);
    assert_int_equal(rl.bandwidth.budget, (1 << 20) - 10 * 512);
}

static void test_unlimited_update_check(void **state)
{
    (void)state;
    struct rate_limiter_config none = {0}, bad = {.ops = {.size = 5}};
    struct rate_limiter rl;
    uint64_t wait = 77;
    assert_false(rate_limiter_config_set(&none));
    assert_int_equal(rate_limiter_config_check(&none), 0);
    assert_int_equal(rate_limiter_config_check(&bad), -EINVAL);
    rate_limiter_init(&rl, &none, 0);
    for (int i = 0; i < 1000; i++)
        assert_true(rate_limiter_take(&rl, 1ull << 40, 0, &wait));
    assert_int_equal(wait, 0);
    /* Limits set at run time start full. */
    struct rate_limiter_config c = {.ops = {.size = 2, .refill_time_ms = 1000}};
    rate_limiter_update(&rl, &c, 5 * S);
    assert_true(rate_limiter_take(&rl, 1, 5 * S, &wait));
    assert_true(rate_limiter_take(&rl, 1, 5 * S, &wait));
    assert_false(rate_limiter_take(&rl, 1, 5 * S, &wait));
    /* Huge values do not overflow. */
    struct rate_limiter_config big = {.bandwidth = {.size = 1ull << 62, .refill_time_ms = 1ull << 32}};
    assert_int_equal(rate_limiter_config_check(&big), 0);
    rate_limiter_init(&rl, &big, 0);
    assert_true(rate_limiter_take(&rl, UINT64_MAX, 0, &wait));
    assert_false(rate_limiter_take(&rl, 1, 0, &wait)); /* the debt is the whole bucket */
    assert_true(wait > 0 && wait < 1000); /* 2^62 tokens per 2^32 ms: one comes in < 1 us */
}

/* The entropy device under a limiter of 4 KiB per 100 ms: a request of
 * 4 KiB goes, the next waits for the refill and then goes by itself. */
static void test_rng_throttled(void **state)
{
    (void)state;
    struct vdev_harness h;
    struct guest_mem_region l[] = {{0, 1 << 20, NULL}};
    vh_init(&h, l, 1);
    vh_rings(&h, 1, 16, 0x10000, 0);
    vh_heap(&h, 0x20000, 1 << 20);
    struct virtio_device *d = virtio_rng_create(&h.mem);
    assert_non_null(d);
    struct rate_limiter_config c = {.bandwidth = {.size = 4096, .refill_time_ms = 100}};
    assert_int_equal(virtio_rng_set_rate_limiter(d, &h.loop, &c), 0);
    vh_attach(&h, d);
    assert_true(vh_driver_init(&h, ~0ull, 1));
    for (int i = 0; i < 3; i++) {
        struct vh_seg s[] = {{vh_alloc(&h, 4096), 4096, true}};
        vh_post(&h, 0, s, 1);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vh_kick(&h, 0);
    vh_run_for(&h, 30);
    assert_int_equal(vh_used_idx(&h, 0), 1);
    assert_true(vh_run_used(&h, 0, 3, VH_WAIT_MS));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 190); /* two more bucketfuls */
    assert_int_equal(virtio_rng_set_rate_limiter(NULL, &h.loop, &c), -ENODEV);
    vh_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_throttled),
        cmocka_unit_test(test_bandwidth),
        cmocka_unit_test(test_ops_rate_asked_often),
        cmocka_unit_test(test_burst_and_debt),
        cmocka_unit_test(test_both_buckets),
        cmocka_unit_test(test_unlimited_update_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
