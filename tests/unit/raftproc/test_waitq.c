/* tests/unit/raftproc/test_waitq.c: the per-lock FIFO wait queues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/errors.h"
#include "raftproc/waitq.h"

static struct waiter w_of(uint64_t id, const char *owner)
{
    struct waiter w = {.id = id, .ttl_ms = id * 10, .owner_len = (uint8_t)strlen(owner)};
    memcpy(w.owner, owner, strlen(owner) + 1);
    return w;
}

static void test_pop_returns_waiters_in_fifo_order_per_lock(void **state)
{
    waitq *q;
    assert_int_equal(waitq_create(&q), 0);
    for (uint64_t i = 1; i <= 5; i++) {
        struct waiter w = w_of(i, "a");
        assert_int_equal(waitq_push(q, "x", 1, &w), 0);
        w = w_of(100 + i, "b");
        assert_int_equal(waitq_push(q, "y", 1, &w), 0);
    }
    assert_int_equal(waitq_total(q), 10);
    assert_int_equal(waitq_length(q, "x", 1), 5);
    struct waiter out;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(waitq_pop(q, "x", 1, &out), 0);
        assert_int_equal(out.id, i);
        assert_int_equal(out.ttl_ms, i * 10);
        assert_string_equal(out.owner, "a");
    }
    assert_int_equal(waitq_pop(q, "x", 1, &out), -LOCKD_ENOENT);
    assert_int_equal(waitq_length(q, "y", 1), 5);
    waitq_destroy(q);
}

static void test_out_of_order_push_is_kept_sorted_by_id(void **state)
{
    waitq *q;
    waitq_create(&q);
    uint64_t ids[] = {5, 1, 4, 2, 3};
    for (int i = 0; i < 5; i++) {
        struct waiter w = w_of(ids[i], "o");
        waitq_push(q, "n", 1, &w);
    }
    struct waiter out;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(waitq_pop(q, "n", 1, &out), 0);
        assert_int_equal(out.id, i);
    }
    waitq_destroy(q);
}

static void test_remove_takes_one_waiter_from_anywhere_in_the_queue(void **state)
{
    waitq *q;
    waitq_create(&q);
    for (uint64_t i = 1; i <= 4; i++) {
        struct waiter w = w_of(i, "o");
        waitq_push(q, "n", 1, &w);
    }
    assert_int_equal(waitq_remove(q, "n", 1, 4), 0); /* tail */
    assert_int_equal(waitq_remove(q, "n", 1, 2), 0); /* middle */
    assert_int_equal(waitq_remove(q, "n", 1, 2), -LOCKD_ENOENT);
    assert_int_equal(waitq_remove(q, "other", 5, 1), -LOCKD_ENOENT);
    struct waiter w = w_of(9, "o"); /* the tail pointer survived the removals */
    waitq_push(q, "n", 1, &w);
    struct waiter out;
    uint64_t want[] = {1, 3, 9};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(waitq_pop(q, "n", 1, &out), 0);
        assert_int_equal(out.id, want[i]);
    }
    assert_int_equal(waitq_total(q), 0);
    waitq_destroy(q);
}

static int count_cb(const char *name, size_t len, const struct waiter *w, void *arg)
{
    (*(size_t *)arg)++;
    return 0;
}

static void test_many_queues_grow_the_map_and_clear_empties_it(void **state)
{
    waitq *q;
    waitq_create(&q);
    char name[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(name, sizeof name, "lock-%d", i);
        struct waiter w = w_of((uint64_t)i + 1, "o");
        assert_int_equal(waitq_push(q, name, (size_t)n, &w), 0);
    }
    size_t seen = 0;
    waitq_foreach(q, count_cb, &seen);
    assert_int_equal(seen, 10000);
    assert_int_equal(waitq_length(q, "lock-4242", 9), 1);
    waitq_clear(q);
    assert_int_equal(waitq_total(q), 0);
    assert_int_equal(waitq_length(q, "lock-4242", 9), 0);
    waitq_destroy(q);
}

static void test_bad_names_are_refused(void **state)
{
    waitq *q;
    waitq_create(&q);
    struct waiter w = w_of(1, "o");
    char big[200];
    memset(big, 'a', sizeof big);
    assert_int_equal(waitq_push(q, "", 0, &w), -LOCKD_EINVAL);
    assert_int_equal(waitq_push(q, big, 129, &w), -LOCKD_EINVAL);
    assert_int_equal(waitq_push(q, big, 128, &w), 0);
    waitq_destroy(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pop_returns_waiters_in_fifo_order_per_lock),
        cmocka_unit_test(test_out_of_order_push_is_kept_sorted_by_id),
        cmocka_unit_test(test_remove_takes_one_waiter_from_anywhere_in_the_queue),
        cmocka_unit_test(test_many_queues_grow_the_map_and_clear_empties_it),
        cmocka_unit_test(test_bad_names_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
