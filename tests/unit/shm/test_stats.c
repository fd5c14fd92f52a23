/* tests/unit/shm/test_stats.c: the /metrics counters segment. Worker slots
 * summed across processes (including two processes sharing a slot, as a
 * worker and its replacement do during a reload), writable from a worker
 * whose lock-table view is read-only, raftproc's counters continuing across
 * a raftproc restart, and restart counting by slot claims. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "shm/stats.h"
#include "shm/table.h"

static shm_table *new_table(void)
{
    shm_table *t = NULL;
    assert_int_equal(shm_table_create(16, &t), 0);
    assert_non_null(shm_table_stats(t));
    return t;
}

static void test_fresh_segment_sums_to_zero(void **state)
{
    (void)state;
    shm_table *t = new_table();
    struct shm_stats_http *h = malloc(sizeof *h);
    memset(h, 0xff, sizeof *h);
    shm_stats_http_sum(shm_table_stats(t), h);
    const uint64_t *w = (const uint64_t *)h;
    for (size_t i = 0; i < sizeof *h / 8; i++)
        assert_int_equal(w[i], 0);
    struct shm_stats_raft r;
    shm_stats_read_raft(shm_table_stats(t), &r);
    assert_int_equal(r.c_entries, 0);
    assert_int_equal(shm_stats_restarts(shm_table_stats(t), SHM_STATS_WORKER), 0);
    assert_int_equal(shm_stats_restarts(shm_table_stats(t), SHM_STATS_RAFT), 0);
    free(h);
    shm_table_destroy(t);
}

static void test_records_in_several_slots_are_summed_and_indices_clamped(void **state)
{
    (void)state;
    shm_table *t = new_table();
    shm_stats *s = shm_table_stats(t);
    shm_stats_http_record(s, 1, 0, 0, 0, 3, 1000);
    shm_stats_http_record(s, 2, 0, 0, 0, 3, 2000);
    shm_stats_http_record(s, 2, 1, 2, 3, 0, 5);
    /* out of range: clamped to the last index, or (slot) ignored */
    shm_stats_http_record(s, 3, 99, 99, 99, 99, 7);
    shm_stats_http_record(s, SHM_STATS_SLOTS, 0, 0, 0, 0, 1);
    struct shm_stats_http *h = malloc(sizeof *h);
    shm_stats_http_sum(s, h);
    assert_int_equal(h->requests[0][0][0], 2);
    assert_int_equal(h->requests[1][2][3], 1);
    assert_int_equal(
        h->requests[SHM_STATS_ROUTES - 1][SHM_STATS_METHODS - 1][SHM_STATS_CODES - 1], 1);
    assert_int_equal(h->buckets[0][3], 2);
    assert_int_equal(h->buckets[1][0], 1);
    assert_int_equal(h->buckets[SHM_STATS_ROUTES - 1][SHM_STATS_BUCKETS - 1], 1);
    assert_int_equal(h->sum_ns[0], 3000);
    assert_int_equal(h->sum_ns[1], 5);
    uint64_t total = 0;
    const uint64_t *w = &h->requests[0][0][0];
    for (size_t i = 0; i < sizeof h->requests / 8; i++)
        total += w[i];
    assert_int_equal(total, 4);
    free(h);
    shm_table_destroy(t);
}

enum { CHILDREN = 6, PER_CHILD = 200000 };

static void test_forked_workers_add_concurrently_and_the_sum_is_exact(void **state)
{
    (void)state;
    shm_table *t = new_table();
    shm_stats *s = shm_table_stats(t);
    pid_t pids[CHILDREN];
    for (int k = 0; k < CHILDREN; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            /* a worker maps the table read-only; its stats stay writable */
            if (shm_table_make_readonly(t) != 0)
                _exit(2);
            /* children 4 and 5 share slot 4: a worker and its replacement */
            unsigned slot = k < 4 ? (unsigned)k + 1 : 4;
            shm_stats_claim(s, SHM_STATS_WORKER, slot, getpid());
            for (int i = 0; i < PER_CHILD; i++)
                shm_stats_http_record(s, slot, (unsigned)i % 3, 0, (unsigned)k, (unsigned)i % 5, 10);
            _exit(0);
        }
    }
    /* a scraper sums while they run: every counter only grows */
    struct shm_stats_http *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    shm_stats_http_sum(s, a);
    for (int round = 0; round < 50; round++) {
        shm_stats_http_sum(s, b);
        for (int k = 0; k < CHILDREN; k++)
            for (unsigned r = 0; r < 3; r++)
                assert_true(b->requests[r][0][k] >= a->requests[r][0][k]);
        for (unsigned r = 0; r < 3; r++)
            assert_true(b->sum_ns[r] >= a->sum_ns[r]);
        memcpy(a, b, sizeof *a);
    }
    for (int k = 0; k < CHILDREN; k++) {
        int status = 0;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    shm_stats_http_sum(s, b);
    uint64_t requests = 0, buckets = 0, sum = 0;
    for (int k = 0; k < CHILDREN; k++) {
        uint64_t per = 0;
        for (unsigned r = 0; r < 3; r++)
            per += b->requests[r][0][k];
        assert_int_equal(per, PER_CHILD);
        requests += per;
    }
    for (unsigned r = 0; r < 3; r++) {
        for (unsigned k = 0; k < 5; k++)
            buckets += b->buckets[r][k];
        sum += b->sum_ns[r];
    }
    assert_int_equal(requests, (uint64_t)CHILDREN * PER_CHILD);
    assert_int_equal(buckets, (uint64_t)CHILDREN * PER_CHILD);
    assert_int_equal(sum, (uint64_t)CHILDREN * PER_CHILD * 10);
    free(a);
    free(b);
    shm_table_destroy(t);
}

static void test_claim_returns_the_previous_holder(void **state)
{
    (void)state;
    shm_table *t = new_table();
    shm_stats *s = shm_table_stats(t);
    assert_int_equal(shm_stats_claim(s, SHM_STATS_WORKER, 3, 100), 0);
    assert_int_equal(shm_stats_claim(s, SHM_STATS_WORKER, 3, 200), 100);
    assert_int_equal(shm_stats_claim(s, SHM_STATS_WORKER, 4, 300), 0);
    assert_int_equal(shm_stats_claim(s, SHM_STATS_WORKER, SHM_STATS_SLOTS, 300), 0);
    shm_stats_count_restart(s, SHM_STATS_WORKER);
    shm_stats_count_restart(s, SHM_STATS_WORKER);
    assert_int_equal(shm_stats_restarts(s, SHM_STATS_WORKER), 2);
    assert_int_equal(shm_stats_restarts(s, SHM_STATS_RAFT), 0);
    shm_table_destroy(t);
}

static void test_raft_counters_continue_across_a_raftproc_restart(void **state)
{
    (void)state;
    shm_table *t = new_table();
    shm_stats *s = shm_table_stats(t);
    struct shm_stats_raft cur = {0}, got;

    shm_stats_raft_started(s, 1000); /* first start: not a restart */
    assert_int_equal(shm_stats_restarts(s, SHM_STATS_RAFT), 0);
    cur.c_entries = 10;
    cur.c_commands = 40;
    cur.c_expirations = 2;
    cur.g_waiters = 5;
    cur.g_max_batch = 9;
    shm_stats_publish_raft(s, &cur);
    shm_stats_read_raft(s, &got);
    assert_int_equal(got.c_entries, 10);
    assert_int_equal(got.c_commands, 40);
    assert_int_equal(got.g_waiters, 5);

    /* the new process counts from zero again; published totals go on */
    shm_stats_raft_started(s, 1001);
    assert_int_equal(shm_stats_restarts(s, SHM_STATS_RAFT), 1);
    shm_stats_read_raft(s, &got);
    assert_int_equal(got.c_entries, 10);
    memset(&cur, 0, sizeof cur);
    cur.c_entries = 3;
    cur.g_waiters = 1;
    cur.g_max_batch = 2;
    shm_stats_publish_raft(s, &cur);
    shm_stats_read_raft(s, &got);
    assert_int_equal(got.c_entries, 13);
    assert_int_equal(got.c_commands, 40);
    assert_int_equal(got.c_expirations, 2);
    /* gauges are the current process's */
    assert_int_equal(got.g_waiters, 1);
    assert_int_equal(got.g_max_batch, 2);

    /* a counter going back (a caller bug) never makes the total go back */
    cur.c_entries = 1;
    shm_stats_publish_raft(s, &cur);
    shm_stats_read_raft(s, &got);
    assert_int_equal(got.c_entries, 13);
    shm_table_destroy(t);
}

static void test_raftproc_in_a_child_publishes_to_the_parent(void **state)
{
    (void)state;
    shm_table *t = new_table();
    shm_stats *s = shm_table_stats(t);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm_stats_raft_started(s, getpid());
        struct shm_stats_raft cur = {.c_entries = 7, .c_handoffs = 3};
        shm_stats_publish_raft(s, &cur);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct shm_stats_raft got;
    shm_stats_read_raft(s, &got);
    assert_int_equal(got.c_entries, 7);
    assert_int_equal(got.c_handoffs, 3);
    shm_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_segment_sums_to_zero),
        cmocka_unit_test(test_records_in_several_slots_are_summed_and_indices_clamped),
        cmocka_unit_test(test_forked_workers_add_concurrently_and_the_sum_is_exact),
        cmocka_unit_test(test_claim_returns_the_previous_holder),
        cmocka_unit_test(test_raft_counters_continue_across_a_raftproc_restart),
        cmocka_unit_test(test_raftproc_in_a_child_publishes_to_the_parent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
