/* tests/unit/raftproc/test_leases.c: the leader's lease timers against a
 * real shm table: deadline order, renewals and releases discarded lazily,
 * the per-call bound, rebuild with full TTLs, and heap compaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/limits.h"
#include "raftproc/leases.h"
#include "shm/table.h"

/* ---- helpers ------------------------------------------------------------- */

struct fx {
    shm_table *t;
    leases *l;
    uint64_t next_rev;
};

static int fx_setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    assert_int_equal(shm_table_create(1000, &x->t), 0);
    shm_table_set_state(x->t, SHM_STATE_READY);
    assert_int_equal(leases_create(x->t, &x->l), 0);
    x->next_rev = 1;
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *x = *state;
    leases_destroy(x->l);
    shm_table_destroy(x->t);
    free(x);
    return 0;
}

/* Puts (or renews) name in the table with a fresh revision, as an applied
 * acquire would, and returns the record. Does not track it. */
static shm_lock put(struct fx *x, const char *name, uint64_t ttl_ms)
{
    shm_lock r;
    memset(&r, 0, sizeof(r));
    r.name_len = (uint8_t)strlen(name);
    memcpy(r.name, name, r.name_len);
    r.token = x->next_rev;
    r.ttl_ms = ttl_ms;
    r.revision = x->next_rev++;
    assert_int_equal(shm_table_put(x->t, &r), 0);
    return r;
}

static shm_lock put_track(struct fx *x, const char *name, uint64_t ttl_ms, uint64_t now)
{
    shm_lock r = put(x, name, ttl_ms);
    assert_int_equal(leases_track(x->l, &r, now), 0);
    return r;
}

struct fired {
    char names[64][LOCKD_NAME_MAX + 1];
    uint64_t revs[64];
    size_t n;
};

static void on_expire(void *arg, const char *name, size_t len, uint64_t revision)
{
    struct fired *f = arg;
    assert_true(f->n < 64);
    assert_int_equal(strlen(name), len); /* NUL-terminated copy */
    memcpy(f->names[f->n], name, len);
    f->names[f->n][len] = '\0';
    f->revs[f->n++] = revision;
}

static size_t expire_at(struct fx *x, uint64_t now, size_t max, struct fired *f)
{
    return leases_expire_due(x->l, now, max, on_expire, f);
}

/* Expires everything due at now, however many calls it takes. */
static size_t drain(struct fx *x, uint64_t now, struct fired *f)
{
    size_t total = 0;
    for (int i = 0; i < 100000 && leases_next_deadline(x->l) <= now; i++)
        total += expire_at(x, now, 100, f);
    assert_true(leases_next_deadline(x->l) > now);
    return total;
}

/* ---- tests --------------------------------------------------------------- */

static void test_expire_due_fires_leases_in_deadline_order(void **state)
{
    struct fx *x = *state;
    const uint64_t now = 1000;
    /* Tracked out of deadline order. */
    put_track(x, "c", 3000, now);
    put_track(x, "a", 1000, now);
    put_track(x, "e", 5000, now);
    put_track(x, "b", 2000, now);
    put_track(x, "d", 4000, now);
    put_track(x, "no-ttl", 0, now); /* never timed */
    assert_int_equal(leases_pending(x->l), 5);
    assert_int_equal(leases_next_deadline(x->l), 2000);

    struct fired f = {0};
    assert_int_equal(expire_at(x, 1999, 100, &f), 0);
    assert_int_equal(expire_at(x, 2000, 100, &f), 1);
    assert_string_equal(f.names[0], "a");
    assert_int_equal(f.revs[0], 2);
    assert_int_equal(leases_next_deadline(x->l), 3000);
    assert_int_equal(expire_at(x, 4500, 100, &f), 2);
    assert_string_equal(f.names[1], "b"); /* 1000 + 2000 */
    assert_string_equal(f.names[2], "c"); /* 1000 + 3000 */
    assert_int_equal(expire_at(x, 100000, 100, &f), 2);
    assert_string_equal(f.names[3], "d");
    assert_string_equal(f.names[4], "e");
    assert_int_equal(f.revs[3], 5);
    assert_int_equal(leases_pending(x->l), 0);
    assert_int_equal(leases_next_deadline(x->l), UINT64_MAX);
}

static void test_renewed_lease_does_not_fire_at_its_old_deadline(void **state)
{
    struct fx *x = *state;
    put_track(x, "n", 1000, 0);                    /* deadline 1000, rev 1 */
    shm_lock r = put_track(x, "n", 1000, 800);     /* renewed: deadline 1800, rev 2 */
    struct fired f = {0};
    assert_int_equal(expire_at(x, 1000, 100, &f), 0);
    assert_int_equal(expire_at(x, 1799, 100, &f), 0);
    assert_int_equal(expire_at(x, 1800, 100, &f), 1);
    assert_string_equal(f.names[0], "n");
    assert_int_equal(f.revs[0], r.revision);
    assert_int_equal(leases_pending(x->l), 0);
    assert_int_equal(leases_next_deadline(x->l), UINT64_MAX);
}

static void test_renewal_without_ttl_stops_the_lease(void **state)
{
    struct fx *x = *state;
    put_track(x, "n", 1000, 0);
    put_track(x, "n", 0, 500); /* now held without a lease */
    struct fired f = {0};
    assert_int_equal(expire_at(x, 1000000, 100, &f), 0);
}

static void test_released_lease_never_fires(void **state)
{
    struct fx *x = *state;
    put_track(x, "gone", 1000, 0);
    put_track(x, "stays", 1500, 0);
    assert_int_equal(shm_table_remove(x->t, "gone", 4), 0);
    struct fired f = {0};
    assert_int_equal(expire_at(x, 1000000, 100, &f), 1);
    assert_string_equal(f.names[0], "stays");
    /* Released then re-acquired (new revision, untracked): the old timer
     * still does not fire for the new holder. */
    put_track(x, "again", 1000, 0);
    assert_int_equal(shm_table_remove(x->t, "again", 5), 0);
    put(x, "again", 1000);
    assert_int_equal(expire_at(x, 2000000, 100, &f), 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(leases_pending(x->l), 0);
}

static void test_max_bounds_expiries_per_call_and_rest_fire_later(void **state)
{
    struct fx *x = *state;
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        put_track(x, name, 100 + (uint64_t)i, 0);
    }
    struct fired f = {0};
    assert_int_equal(expire_at(x, 1000, 3, &f), 3);
    assert_int_equal(expire_at(x, 1000, 3, &f), 3);
    assert_int_equal(expire_at(x, 1000, 3, &f), 3);
    assert_int_equal(expire_at(x, 1000, 3, &f), 1);
    assert_int_equal(expire_at(x, 1000, 3, &f), 0);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        assert_string_equal(f.names[i], name);
    }
    assert_int_equal(expire_at(x, 1000, 0, &f), 0);
}

static void test_stale_timers_are_bounded_per_call_too(void **state)
{
    struct fx *x = *state;
    /* 100 stale timers ahead of one live one: each call visits at most
     * 4 * max timers, and the live one still fires eventually. */
    for (int i = 0; i < 100; i++)
        put_track(x, "hot", 100, (uint64_t)i); /* deadlines 100..199, only the last is live */
    put_track(x, "cold", 500, 0);
    struct fired f = {0};
    size_t calls = 0, total = 0;
    while (leases_pending(x->l) > 0 && calls < 1000) {
        size_t before = leases_pending(x->l);
        total += expire_at(x, 10000, 2, &f);
        assert_true(before - leases_pending(x->l) <= 8);
        calls++;
    }
    assert_int_equal(total, 2);
    assert_string_equal(f.names[0], "hot");
    assert_int_equal(f.revs[0], 100);
    assert_string_equal(f.names[1], "cold");
}

static void test_rebuild_gives_every_lease_its_full_ttl_from_now(void **state)
{
    struct fx *x = *state;
    /* Old timers at deadline 100; rebuild at 5000 must not keep them. */
    put_track(x, "a", 100, 0);
    put_track(x, "b", 300, 0);
    put(x, "c", 200);        /* never tracked here (e.g. applied as follower) */
    put(x, "forever", 0);
    assert_int_equal(leases_rebuild(x->l, 5000), 0);
    assert_int_equal(leases_pending(x->l), 3);
    assert_int_equal(leases_next_deadline(x->l), 5100);
    struct fired f = {0};
    assert_int_equal(expire_at(x, 5099, 100, &f), 0);
    assert_int_equal(expire_at(x, 5100, 100, &f), 1);
    assert_string_equal(f.names[0], "a");
    assert_int_equal(expire_at(x, 5299, 100, &f), 1);
    assert_string_equal(f.names[1], "c");
    assert_int_equal(expire_at(x, 5300, 100, &f), 1);
    assert_string_equal(f.names[2], "b");
    assert_int_equal(leases_pending(x->l), 0);
}

static void test_clear_drops_every_timer(void **state)
{
    struct fx *x = *state;
    for (int i = 0; i < 3000; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i % 10);
        put_track(x, name, 100, (uint64_t)i);
    }
    leases_clear(x->l);
    assert_int_equal(leases_pending(x->l), 0);
    assert_int_equal(leases_next_deadline(x->l), UINT64_MAX);
    struct fired f = {0};
    assert_int_equal(expire_at(x, UINT64_MAX / 2, 100, &f), 0);
    /* Usable after a clear that freed the heap. */
    put_track(x, "z", 10, 0);
    assert_int_equal(expire_at(x, 10, 100, &f), 1);
}

static void test_compaction_keeps_live_deadlines(void **state)
{
    struct fx *x = *state;
    shm_lock first = put_track(x, "first", 1000000, 0); /* deadline 1000000 */
    /* Renew another lease far more often than 2 * live + 1024 so the heap
     * compacts (several times) while "first" is waiting. */
    const int renewals = 10000;
    for (int i = 0; i < renewals; i++)
        put_track(x, "renewed", 5000000, (uint64_t)i);
    assert_true(leases_pending(x->l) < (size_t)renewals); /* compaction ran */
    assert_int_equal(leases_next_deadline(x->l), 1000000);
    struct fired f = {0};
    assert_int_equal(expire_at(x, 999999, 100, &f), 0);
    assert_int_equal(expire_at(x, 1000000, 100, &f), 1);
    assert_string_equal(f.names[0], "first");
    assert_int_equal(f.revs[0], first.revision);
    /* The renewed lease fires at its last deadline, not an earlier one
     * (stale timers are popped at most 4 * max per call: drain). */
    assert_int_equal(drain(x, 5000000 + renewals - 2, &f), 0);
    assert_int_equal(drain(x, 5000000 + renewals - 1, &f), 1);
    assert_string_equal(f.names[1], "renewed");
    assert_int_equal(leases_pending(x->l), 0);
}

static void test_compaction_with_many_live_leases_keeps_every_deadline(void **state)
{
    struct fx *x = *state;
    /* 500 live leases with distinct deadlines, then churn one name. */
    for (int i = 0; i < 500; i++) {
        char name[16];
        snprintf(name, sizeof(name), "live%03d", i);
        put_track(x, name, 10000 + (uint64_t)i * 7, 0);
    }
    for (int i = 0; i < 6000; i++)
        put_track(x, "churn", 1000000, (uint64_t)i);
    struct fired f;
    uint64_t prev = 0;
    size_t fired = 0;
    for (uint64_t now = 10000; now < 10000 + 500 * 7; now++) {
        f.n = 0;
        size_t k = expire_at(x, now, 100, &f);
        if (k > 0) {
            assert_int_equal(k, 1);
            assert_int_equal((now - 10000) % 7, 0); /* exactly at its deadline */
            assert_true(now > prev || fired == 0);
            prev = now;
            fired++;
        }
    }
    assert_int_equal(fired, 500);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        FX(test_expire_due_fires_leases_in_deadline_order),
        FX(test_renewed_lease_does_not_fire_at_its_old_deadline),
        FX(test_renewal_without_ttl_stops_the_lease),
        FX(test_released_lease_never_fires),
        FX(test_max_bounds_expiries_per_call_and_rest_fire_later),
        FX(test_stale_timers_are_bounded_per_call_too),
        FX(test_rebuild_gives_every_lease_its_full_ttl_from_now),
        FX(test_clear_drops_every_timer),
        FX(test_compaction_keeps_live_deadlines),
        FX(test_compaction_with_many_live_leases_keeps_every_deadline),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
