/* tests/unit/worker/test_history.c: a name's recent holdings read back from
 * a real event ring: newest first, how each ended, replays counted once,
 * lost ends reported as unknown, bounded by the ring, exact JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shm/events.h"
#include "worker/history.h"

static void ev(shm_events *r, uint64_t index, unsigned type, const char *name, const char *owner, uint64_t token,
               uint64_t acquired, uint64_t time)
{
    struct shm_event e;
    memset(&e, 0, sizeof e);
    e.index = index;
    e.type = (uint8_t)type;
    e.name_len = (uint8_t)strlen(name);
    memcpy(e.name, name, e.name_len);
    e.owner_len = (uint8_t)strlen(owner);
    memcpy(e.owner, owner, e.owner_len);
    e.token = token;
    e.acquired_at_ms = acquired;
    e.time_ms = time;
    assert_int_equal(shm_events_append(r, &e), 0);
}

static shm_events *story(void)
{
    shm_events *r = NULL;
    assert_int_equal(shm_events_create(64, &r), 0);
    assert_int_equal(shm_events_reset(r, 0, 1), 0);
    ev(r, 1, SHM_EVENT_ACQUIRED, "a", "alice", 1, 100, 100);
    ev(r, 2, SHM_EVENT_RELEASED, "a", "alice", 1, 100, 150);
    ev(r, 3, SHM_EVENT_ACQUIRED, "ab", "zed", 2, 160, 160); /* another name, a prefix of none */
    ev(r, 4, SHM_EVENT_ACQUIRED, "a", "bob", 3, 200, 200);
    ev(r, 5, SHM_EVENT_RENEWED, "a", "bob", 3, 200, 210);
    ev(r, 6, SHM_EVENT_WAITER_QUEUED, "a", "carol", 0, 0, 220);
    ev(r, 7, SHM_EVENT_EXPIRED, "a", "bob", 3, 200, 300);
    ev(r, 7, SHM_EVENT_HANDED_OVER, "a", "carol", 4, 300, 300);
    ev(r, 8, SHM_EVENT_FORCED, "a", "carol", 4, 300, 400);
    ev(r, 9, SHM_EVENT_ACQUIRED, "a", "", 5, 500, 500);
    return r;
}

static void test_holdings_come_newest_first_with_how_each_ended(void **state)
{
    (void)state;
    shm_events *r = story();
    struct history_entry e[HISTORY_MAX];
    size_t n = 99;
    assert_int_equal(history_collect(r, "a", 1, 5, e, HISTORY_MAX, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(e[0].token, 5);
    assert_null(e[0].ended);
    assert_int_equal(e[0].owner_len, 0);
    assert_int_equal(e[1].token, 4);
    assert_string_equal(e[1].owner, "carol");
    assert_string_equal(e[1].ended, "forced");
    assert_int_equal(e[1].acquired_at_ms, 300);
    assert_int_equal(e[1].ended_at_ms, 400);
    assert_string_equal(e[2].owner, "bob");
    assert_string_equal(e[2].ended, "expired");
    assert_string_equal(e[3].owner, "alice");
    assert_string_equal(e[3].ended, "released");
    assert_int_equal(e[3].ended_at_ms, 150);
    /* bounded by max */
    assert_int_equal(history_collect(r, "a", 1, 5, e, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(e[1].token, 4);
    /* a name with no event */
    assert_int_equal(history_collect(r, "nope", 4, 0, e, HISTORY_MAX, &n), 0);
    assert_int_equal(n, 0);
    shm_events_destroy(r);
}

static void test_replayed_events_count_once_and_a_lost_end_is_unknown(void **state)
{
    (void)state;
    shm_events *r = story();
    /* raftproc restarts at 6 and replays 7..9: the same holdings again */
    assert_int_equal(shm_events_reset(r, 6, 2), 0);
    ev(r, 7, SHM_EVENT_EXPIRED, "a", "bob", 3, 200, 300);
    ev(r, 7, SHM_EVENT_HANDED_OVER, "a", "carol", 4, 300, 300);
    ev(r, 8, SHM_EVENT_FORCED, "a", "carol", 4, 300, 400);
    ev(r, 9, SHM_EVENT_ACQUIRED, "a", "", 5, 500, 500);
    struct history_entry e[HISTORY_MAX];
    size_t n = 0;
    history_collect(r, "a", 1, 5, e, HISTORY_MAX, &n);
    assert_int_equal(n, 4);
    /* the table now says token 6 (a snapshot jumped past 5's end) */
    history_collect(r, "a", 1, 6, e, HISTORY_MAX, &n);
    assert_int_equal(e[0].token, 5);
    assert_string_equal(e[0].ended, "unknown");
    assert_int_equal(e[0].ended_at_ms, 0);
    shm_events_destroy(r);
}

static void test_history_reaches_only_as_far_back_as_the_ring(void **state)
{
    (void)state;
    shm_events *r = story();
    for (uint64_t i = 10; i < 10 + 60; i++)
        ev(r, i, SHM_EVENT_ACQUIRED, "noise", "x", 100 + i, i, i);
    struct history_entry e[HISTORY_MAX];
    size_t n = 0;
    history_collect(r, "a", 1, 5, e, HISTORY_MAX, &n);
    assert_true(n < 4); /* alice's holding fell off the 64-event ring */
    shm_events_destroy(r);
}

static void test_json_is_exact_and_escaped(void **state)
{
    (void)state;
    shm_events *r = story();
    struct history_entry e[HISTORY_MAX];
    size_t n = 0;
    history_collect(r, "a", 1, 5, e, 2, &n);
    char buf[4096];
    size_t len = history_format("a", 1, e, n, buf, sizeof buf);
    buf[len] = '\0';
    assert_string_equal(buf, "{\"name\":\"a\",\"history\":[{\"owner\":null,\"token\":5,\"acquired_at_ms\":500,"
                             "\"ended_at_ms\":null,\"ended\":null},{\"owner\":\"carol\",\"token\":4,"
                             "\"acquired_at_ms\":300,\"ended_at_ms\":400,\"ended\":\"forced\"}]}");
    /* too small: the needed length, nothing written past cap */
    char small[16];
    memset(small, '#', sizeof small);
    assert_int_equal(history_format("a", 1, e, n, small, 10), len);
    assert_int_equal(small[10], '#');
    len = history_format("q\"", 2, NULL, 0, buf, sizeof buf);
    buf[len] = '\0';
    assert_string_equal(buf, "{\"name\":\"q\\\"\",\"history\":[]}");
    shm_events_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holdings_come_newest_first_with_how_each_ended),
        cmocka_unit_test(test_replayed_events_count_once_and_a_lost_end_is_unknown),
        cmocka_unit_test(test_history_reaches_only_as_far_back_as_the_ring),
        cmocka_unit_test(test_json_is_exact_and_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
