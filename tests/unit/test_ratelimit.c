/* test_ratelimit.c - token buckets: rate, burst, debt, waits, updates. */
#include "unit.h"

#include "base/ratelimit.h"

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
    /* 100 left: a request of 3000 still passes and leaves a debt of 2900. */
    assert_true(rate_limiter_take(&rl, 3000, 0, &wait));
    assert_false(rate_limiter_take(&rl, 1, 0, &wait));
    /* Paying 2901 tokens at 1000/s takes 2.901 s. */
    assert_true(wait >= 2900 * MS && wait <= 2902 * MS);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bandwidth),
        cmocka_unit_test(test_ops_rate_asked_often),
        cmocka_unit_test(test_burst_and_debt),
        cmocka_unit_test(test_both_buckets),
        cmocka_unit_test(test_unlimited_update_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
