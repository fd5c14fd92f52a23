/* tests/unit/common/test_ratelimit.c: token buckets (burst, refill, no
 * overflow, clock going backwards), the per-connection table (exact while
 * it has room, evicts refilled entries first, counts lossy evictions), and
 * per-client counters with their ceiling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/ratelimit.h"

static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    struct rl_rate r = {.burst = 100, .per_sec = 50};
    struct rl_bucket b;
    rl_bucket_init(&b, &r, 1000);
    assert_true(rl_bucket_full(&b, &r, 1000));
    for (int i = 0; i < 100; i++)
        assert_true(rl_bucket_take(&b, &r, 1000));
    assert_false(rl_bucket_take(&b, &r, 1000));
    assert_false(rl_bucket_full(&b, &r, 1000));
    /* 50/s: one token per 20 ms */
    assert_false(rl_bucket_take(&b, &r, 1019));
    assert_true(rl_bucket_take(&b, &r, 1020));
    assert_false(rl_bucket_take(&b, &r, 1020));
    /* a sustained 50/s is fine forever */
    uint64_t now = 1020;
    for (int i = 0; i < 1000; i++) {
        now += 20;
        assert_true(rl_bucket_take(&b, &r, now));
    }
    /* refill caps at the burst */
    now += 3600 * 1000;
    assert_true(rl_bucket_full(&b, &r, now));
    int taken = 0;
    while (rl_bucket_take(&b, &r, now))
        taken++;
    assert_int_equal(taken, 100);
    /* a clock that steps back takes nothing back and adds nothing */
    assert_false(rl_bucket_take(&b, &r, now - 500));
    /* huge rates and gaps do not overflow */
    struct rl_rate big = {.burst = UINT32_MAX, .per_sec = UINT32_MAX};
    rl_bucket_init(&b, &big, 0);
    assert_true(rl_bucket_take(&b, &big, UINT64_MAX / 2));
    assert_true(rl_bucket_full(&b, &big, UINT64_MAX));
}

static void test_table_is_exact_per_key(void **state)
{
    (void)state;
    struct rl_rate r = {.burst = 10, .per_sec = 10};
    rl_table *t;
    assert_int_equal(rl_table_create(1024, &r, &t), 0);
    /* 500 connections, each resets 10 times: all within the burst */
    for (uint64_t k = 0; k < 500; k++)
        for (int i = 0; i < 10; i++)
            assert_true(rl_table_hit(t, k, 0));
    /* the 11th of each is over */
    for (uint64_t k = 0; k < 500; k++)
        assert_false(rl_table_hit(t, k, 0));
    assert_int_equal(rl_table_lossy_evictions(t), 0);
    /* forgetting a key (its connection closed) starts it afresh */
    rl_table_forget(t, 7);
    assert_true(rl_table_hit(t, 7, 0));
    rl_table_forget(t, 123456); /* unknown: harmless */
    rl_table_destroy(t);
    struct rl_rate zero = {0, 0};
    assert_int_equal(rl_table_create(16, &zero, &t), -LOCKD_EINVAL);
    assert_int_equal(rl_table_create(0, &r, &t), -LOCKD_EINVAL);
}

static void test_table_evicts_refilled_entries_first(void **state)
{
    (void)state;
    struct rl_rate r = {.burst = 5, .per_sec = 100};
    rl_table *t;
    assert_int_equal(rl_table_create(16, &r, &t), 0); /* one probe window */
    /* 1000 connections reset once each at t=0 (they crowd each other out:
     * all are active at once in 16 slots) */
    for (uint64_t k = 0; k < 1000; k++)
        rl_table_hit(t, k, 0);
    uint64_t lossy = rl_table_lossy_evictions(t);
    /* at t=1 s all of them have refilled; an attacker's connection drains */
    for (int i = 0; i < 5; i++)
        assert_true(rl_table_hit(t, 999999, 1000));
    assert_false(rl_table_hit(t, 999999, 1000));
    /* it took a refilled slot, losing nothing, and stays drained */
    assert_int_equal(rl_table_lossy_evictions(t), lossy);
    assert_false(rl_table_hit(t, 999999, 1000));
    /* 17 keys over their rate at once in a 16-slot table: one is lost,
     * and the table says so */
    for (uint64_t k = 2000; k < 2017; k++)
        for (int i = 0; i < 6; i++)
            rl_table_hit(t, k, 5000);
    assert_true(rl_table_lossy_evictions(t) > 0);
    rl_table_destroy(t);
}

static void test_counter_limits_per_key(void **state)
{
    (void)state;
    rl_counter *c;
    assert_int_equal(rl_counter_create(&c), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rl_counter_acquire(c, "ci-deploy", 9, 3), 0);
    assert_int_equal(rl_counter_acquire(c, "ci-deploy", 9, 3), -LOCKD_EFULL);
    assert_int_equal(rl_counter_acquire(c, "10.0.0.7", 8, 3), 0);
    assert_int_equal(rl_counter_get(c, "ci-deploy", 9), 3);
    assert_int_equal(rl_counter_keys(c), 2);
    assert_int_equal(rl_counter_total(c), 4);
    rl_counter_release(c, "ci-deploy", 9);
    assert_int_equal(rl_counter_acquire(c, "ci-deploy", 9, 3), 0);
    for (int i = 0; i < 3; i++)
        rl_counter_release(c, "ci-deploy", 9);
    assert_int_equal(rl_counter_get(c, "ci-deploy", 9), 0);
    assert_int_equal(rl_counter_keys(c), 1);
    rl_counter_release(c, "ci-deploy", 9); /* nothing held: ignored */
    rl_counter_release(c, "nobody", 6);
    assert_int_equal(rl_counter_total(c), 1);
    assert_int_equal(rl_counter_acquire(c, "", 0, 3), -LOCKD_EINVAL);
    assert_int_equal(rl_counter_acquire(c, "x", 1, 0), -LOCKD_EFULL);
    char big[300];
    memset(big, 'a', sizeof big);
    assert_int_equal(rl_counter_acquire(c, big, sizeof big, 3), -LOCKD_EINVAL);

    /* many keys: the table grows and keeps every count */
    for (int i = 0; i < 5000; i++) {
        char k[32];
        int n = snprintf(k, sizeof k, "client-%d", i);
        assert_int_equal(rl_counter_acquire(c, k, (size_t)n, 10), 0);
        assert_int_equal(rl_counter_acquire(c, k, (size_t)n, 10), 0);
    }
    assert_int_equal(rl_counter_keys(c), 5001);
    for (int i = 0; i < 5000; i++) {
        char k[32];
        int n = snprintf(k, sizeof k, "client-%d", i);
        assert_int_equal(rl_counter_get(c, k, (size_t)n), 2);
    }
    rl_counter_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_table_is_exact_per_key),
        cmocka_unit_test(test_table_evicts_refilled_entries_first),
        cmocka_unit_test(test_counter_limits_per_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
