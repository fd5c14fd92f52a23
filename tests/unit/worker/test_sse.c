/* tests/unit/worker/test_sse.c: GET /events' stream logic over a real ring:
 * ids, the exact text of each event type, the prefix filter, resume,
 * resets, heartbeats, slow (in-flight) streams and the per-worker cap. */
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
#include "shm/events.h"
#include "worker/sse.h"

static struct shm_event lock_event(uint64_t index, unsigned type, const char *name, const char *owner)
{
    struct shm_event ev;
    memset(&ev, 0, sizeof ev);
    ev.index = index;
    ev.type = (uint8_t)type;
    ev.name_len = (uint8_t)strlen(name);
    memcpy(ev.name, name, ev.name_len);
    ev.owner_len = (uint8_t)strlen(owner);
    memcpy(ev.owner, owner, ev.owner_len);
    ev.token = 77;
    ev.ttl_ms = 30000;
    ev.time_ms = 1700000005000;
    ev.acquired_at_ms = 1700000000000;
    ev.waiter_id = index << 20 | 1;
    return ev;
}

static void append(shm_events *r, uint64_t index, unsigned type, const char *name, const char *owner)
{
    struct shm_event ev = lock_event(index, type, name, owner);
    assert_int_equal(shm_events_append(r, &ev), 0);
}

static shm_events *ring_with_marker(uint32_t capacity)
{
    shm_events *r = NULL;
    assert_int_equal(shm_events_create(capacity, &r), 0);
    assert_int_equal(shm_events_reset(r, 0, 1), 0);
    return r;
}

/* The stream's current output as a NUL-terminated string. */
static const char *text(struct sse_stream *s)
{
    static char copy[SSE_BUF_CAP + 1];
    memcpy(copy, s->buf, s->len);
    copy[s->len] = '\0';
    return copy;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- ids ------------------------------------------------------------------- */

static void test_last_event_id_parses_index_dash_seq_or_a_bare_index(void **state)
{
    (void)state;
    struct sse_id id;
    assert_int_equal(sse_parse_id("12-3", 4, &id), 0);
    assert_int_equal(id.index, 12);
    assert_int_equal(id.seq, 3);
    assert_int_equal(sse_parse_id(" 12 ", 4, &id), 0);
    assert_int_equal(id.index, 12);
    assert_int_equal(id.seq, UINT32_MAX);
    assert_int_equal(sse_parse_id("18446744073709551615-4294967295", 31, &id), 0);
    assert_true(id.index == UINT64_MAX);
    assert_int_equal(id.seq, UINT32_MAX);
    assert_int_equal(sse_parse_id("0-0", 3, &id), 0);
    assert_int_equal(id.index, 0);
    static const char *const bad[] = {"",
                                      " ",
                                      "-1",
                                      "12-",
                                      "-",
                                      "a",
                                      "1a",
                                      "1-2-3",
                                      "+1",
                                      "1.5",
                                      "1 -2",
                                      "0x10",
                                      "18446744073709551616",
                                      "1-4294967296",
                                      "123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sse_parse_id(bad[i], strlen(bad[i]), &id), -LOCKD_EINVAL);
    char buf[32];
    size_t n = sse_format_id(UINT64_MAX, UINT32_MAX, buf);
    assert_int_equal(n, 31);
    assert_memory_equal(buf, "18446744073709551615-4294967295", 31);
}

/* ---- formatting ------------------------------------------------------------ */

static void expect_format(const struct shm_event *ev, const char *want)
{
    char buf[SSE_EVENT_MAX + 1];
    size_t n = sse_format_event(ev, buf, SSE_EVENT_MAX);
    buf[n] = '\0';
    assert_string_equal(buf, want);
    /* too small a buffer: 0, never a cut event */
    assert_int_equal(sse_format_event(ev, buf, n - 1), 0);
}

static void test_each_event_type_is_formatted_as_documented(void **state)
{
    (void)state;
    struct shm_event ev = lock_event(1234, SHM_EVENT_ACQUIRED, "job-7", "worker-a");
    ev.seq = 2;
    ev.acquired_at_ms = ev.time_ms;
    expect_format(&ev, "id: 1234-2\nevent: acquired\ndata: {\"type\":\"acquired\",\"index\":1234,\"seq\":2,"
                       "\"time_ms\":1700000005000,\"name\":\"job-7\",\"owner\":\"worker-a\",\"token\":77,"
                       "\"ttl_ms\":30000,\"acquired_at_ms\":1700000005000}\n\n");
    ev = lock_event(5, SHM_EVENT_RENEWED, "a", "");
    ev.ttl_ms = 0;
    expect_format(&ev, "id: 5-0\nevent: renewed\ndata: {\"type\":\"renewed\",\"index\":5,\"seq\":0,"
                       "\"time_ms\":1700000005000,\"name\":\"a\",\"owner\":null,\"token\":77,"
                       "\"ttl_ms\":null,\"acquired_at_ms\":1700000000000}\n\n");
    ev = lock_event(6, SHM_EVENT_RELEASED, "a", "o");
    expect_format(&ev, "id: 6-0\nevent: released\ndata: {\"type\":\"released\",\"index\":6,\"seq\":0,"
                       "\"time_ms\":1700000005000,\"name\":\"a\",\"owner\":\"o\",\"token\":77,"
                       "\"acquired_at_ms\":1700000000000,\"held_ms\":5000}\n\n");
    ev.type = SHM_EVENT_EXPIRED;
    char buf[SSE_EVENT_MAX];
    size_t n = sse_format_event(&ev, buf, sizeof buf);
    assert_true(n > 0 && memmem(buf, n, "event: expired\n", 15) != NULL);
    ev.type = SHM_EVENT_FORCED;
    n = sse_format_event(&ev, buf, sizeof buf);
    assert_true(n > 0 && memmem(buf, n, "\"type\":\"forced\"", 15) != NULL);
    ev = lock_event(7, SHM_EVENT_HANDED_OVER, "a", "w2");
    ev.waiter_id = 3ull << 20;
    ev.acquired_at_ms = ev.time_ms;
    expect_format(&ev, "id: 7-0\nevent: handed_over\ndata: {\"type\":\"handed_over\",\"index\":7,\"seq\":0,"
                       "\"time_ms\":1700000005000,\"name\":\"a\",\"owner\":\"w2\",\"token\":77,"
                       "\"ttl_ms\":30000,\"acquired_at_ms\":1700000005000,\"waiter\":3145728}\n\n");
    ev = lock_event(8, SHM_EVENT_WAITER_QUEUED, "a", "w3");
    expect_format(&ev, "id: 8-0\nevent: waiter_queued\ndata: {\"type\":\"waiter_queued\",\"index\":8,\"seq\":0,"
                       "\"time_ms\":1700000005000,\"name\":\"a\",\"owner\":\"w3\",\"ttl_ms\":30000,"
                       "\"waiter\":8388609}\n\n");
    ev = lock_event(9, SHM_EVENT_WAITER_LEFT, "a", "w3");
    expect_format(&ev, "id: 9-0\nevent: waiter_left\ndata: {\"type\":\"waiter_left\",\"index\":9,\"seq\":0,"
                       "\"time_ms\":1700000005000,\"name\":\"a\",\"owner\":\"w3\",\"waiter\":9437185}\n\n");
    memset(&ev, 0, sizeof ev);
    ev.type = SHM_EVENT_LEADER_CHANGED;
    ev.index = 10;
    ev.seq = 1;
    ev.time_ms = 99;
    ev.term = 4;
    expect_format(&ev, "id: 10-1\nevent: leader_changed\ndata: {\"type\":\"leader_changed\",\"index\":10,"
                       "\"seq\":1,\"time_ms\":99,\"leader\":null,\"term\":4}\n\n");
    ev.leader_id = 3;
    n = sse_format_event(&ev, buf, sizeof buf);
    assert_true(n > 0 && memmem(buf, n, "\"leader\":3,", 11) != NULL);
    ev.type = SHM_EVENT_RESET;
    expect_format(&ev, "id: 10-1\nevent: reset\ndata: {\"type\":\"reset\",\"index\":10,\"seq\":1,\"time_ms\":99,"
                       "\"reason\":\"restart\"}\n\n");
}

static void test_longest_event_fits_and_odd_bytes_are_escaped(void **state)
{
    (void)state;
    struct shm_event ev = lock_event(UINT64_MAX, SHM_EVENT_HANDED_OVER, "", "");
    ev.seq = UINT32_MAX;
    ev.token = ev.ttl_ms = ev.time_ms = ev.acquired_at_ms = ev.waiter_id = UINT64_MAX;
    memset(ev.name, '"', LOCKD_NAME_MAX); /* escaping doubles them: still fits */
    ev.name_len = LOCKD_NAME_MAX;
    memset(ev.owner, 1, LOCKD_OWNER_MAX); /* \u0001: six bytes each */
    ev.owner_len = LOCKD_OWNER_MAX;
    char buf[SSE_EVENT_MAX];
    size_t n = sse_format_event(&ev, buf, sizeof buf);
    assert_true(n > 0 && n <= SSE_EVENT_MAX);
    assert_non_null(memmem(buf, n, "\\\"\\\"", 4));
    assert_non_null(memmem(buf, n, "\\u0001", 6));
    assert_null(memchr(buf, 1, n));
}

static void test_prefix_filter_passes_matching_names_and_every_cluster_event(void **state)
{
    (void)state;
    struct shm_event ev = lock_event(1, SHM_EVENT_ACQUIRED, "deploy-prod", "o");
    assert_true(sse_prefix_match("deploy-", 7, &ev));
    assert_true(sse_prefix_match("deploy-prod", 11, &ev));
    assert_true(sse_prefix_match("", 0, &ev));
    assert_false(sse_prefix_match("deploy-prod-2", 13, &ev));
    assert_false(sse_prefix_match("job", 3, &ev));
    assert_false(sse_prefix_match("Deploy", 6, &ev));
    ev.type = SHM_EVENT_LEADER_CHANGED;
    ev.name_len = 0;
    assert_true(sse_prefix_match("job", 3, &ev));
    ev.type = SHM_EVENT_RESET;
    assert_true(sse_prefix_match("job", 3, &ev));
}

/* ---- streams ---------------------------------------------------------------- */

static struct sse_stream *new_stream(void)
{
    struct sse_stream *s = malloc(sizeof *s);
    assert_non_null(s);
    return s;
}

static void test_stream_starts_with_the_preamble_then_streams_new_events_in_order(void **state)
{
    (void)state;
    shm_events *r = ring_with_marker(64);
    append(r, 1, SHM_EVENT_ACQUIRED, "old", "o"); /* before the stream: not sent */
    struct sse_stream *s = new_stream();
    assert_int_equal(sse_stream_open(s, r, NULL, "", 0, 1000), 0);
    assert_int_equal(sse_stream_fill(s, r, 1000), 18);
    assert_string_equal(text(s), "retry: 1000\n: ok\n\n");
    sse_stream_sending(s);
    assert_int_equal(sse_stream_fill(s, r, 1000), 0); /* in flight: untouched */
    sse_stream_sent(s);
    assert_int_equal(sse_stream_fill(s, r, 1001), 0);
    append(r, 2, SHM_EVENT_ACQUIRED, "a", "o");
    append(r, 2, SHM_EVENT_WAITER_QUEUED, "b", "w");
    append(r, 3, SHM_EVENT_RELEASED, "a", "o");
    assert_true(sse_stream_fill(s, r, 1002) > 0);
    const char *t = text(s);
    const char *a = strstr(t, "id: 2-0\nevent: acquired\n");
    const char *b = strstr(t, "id: 2-1\nevent: waiter_queued\n");
    const char *c = strstr(t, "id: 3-0\nevent: released\n");
    assert_true(a != NULL && b != NULL && c != NULL && a < b && b < c);
    assert_null(strstr(t, "\"old\""));
    assert_int_equal(count(t, "\n\n"), 3);
    assert_int_equal(s->events, 3);
    free(s);
    shm_events_destroy(r);
}

static void test_stream_with_prefix_sends_only_matching_locks_and_leader_changes(void **state)
{
    (void)state;
    shm_events *r = ring_with_marker(64);
    struct sse_stream *s = new_stream();
    assert_int_equal(sse_stream_open(s, r, NULL, "job-", 4, 0), 0);
    sse_stream_fill(s, r, 0);
    sse_stream_sent(s);
    append(r, 1, SHM_EVENT_ACQUIRED, "job-1", "o");
    append(r, 1, SHM_EVENT_ACQUIRED, "other", "o");
    append(r, 2, SHM_EVENT_ACQUIRED, "job", "o");
    struct shm_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = SHM_EVENT_LEADER_CHANGED;
    ev.index = 2;
    ev.leader_id = 2;
    assert_int_equal(shm_events_append(r, &ev), 0);
    append(r, 3, SHM_EVENT_RELEASED, "job-1", "o");
    assert_true(sse_stream_fill(s, r, 0) > 0);
    const char *t = text(s);
    assert_non_null(strstr(t, "id: 1-0\n"));
    assert_null(strstr(t, "other"));
    assert_null(strstr(t, "\"job\""));
    assert_non_null(strstr(t, "id: 2-1\nevent: leader_changed\n"));
    assert_non_null(strstr(t, "id: 3-0\nevent: released\n"));
    assert_int_equal(count(t, "\n\n"), 3);
    char big[LOCKD_NAME_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_int_equal(sse_stream_open(s, r, NULL, big, sizeof big, 0), -LOCKD_EINVAL);
    free(s);
    shm_events_destroy(r);
}

static void test_stream_resumes_after_last_event_id_or_says_reset_when_it_is_gone(void **state)
{
    (void)state;
    shm_events *r = ring_with_marker(16);
    for (uint64_t i = 1; i <= 5; i++)
        append(r, i, SHM_EVENT_ACQUIRED, "n", "o");
    struct sse_stream *s = new_stream();
    struct sse_id id = {3, 0};
    assert_int_equal(sse_stream_open(s, r, &id, "", 0, 0), 0);
    sse_stream_fill(s, r, 0);
    const char *t = text(s);
    assert_null(strstr(t, "id: 3-0"));
    assert_non_null(strstr(t, "id: 4-0\n"));
    assert_non_null(strstr(t, "id: 5-0\n"));
    assert_null(strstr(t, "reset"));
    /* the ring moves on 20 events: id 3 is gone */
    for (uint64_t i = 6; i <= 25; i++)
        append(r, i, SHM_EVENT_ACQUIRED, "n", "o");
    assert_int_equal(sse_stream_open(s, r, &id, "", 0, 0), 0);
    sse_stream_fill(s, r, 0);
    t = text(s);
    assert_string_equal(t, "retry: 1000\n: ok\n\nid: 25-0\nevent: reset\ndata: {\"type\":\"reset\",\"index\":25,"
                           "\"seq\":0,\"reason\":\"resume\"}\n\n");
    assert_int_equal(s->resets, 1);
    sse_stream_sent(s);
    append(r, 26, SHM_EVENT_RELEASED, "n", "o");
    sse_stream_fill(s, r, 0);
    assert_non_null(strstr(text(s), "id: 26-0\nevent: released\n"));
    free(s);
    shm_events_destroy(r);
}

static void test_a_stream_left_in_flight_while_the_ring_laps_it_gets_one_reset_then_goes_on(void **state)
{
    (void)state;
    shm_events *r = ring_with_marker(16);
    struct sse_stream *s = new_stream();
    assert_int_equal(sse_stream_open(s, r, NULL, "", 0, 0), 0);
    sse_stream_fill(s, r, 0);
    sse_stream_sending(s); /* the client does not read */
    for (uint64_t i = 1; i <= 40; i++)
        append(r, i, SHM_EVENT_ACQUIRED, "n", "o");
    assert_int_equal(sse_stream_fill(s, r, 0), 0);
    sse_stream_sent(s); /* it reads again */
    sse_stream_fill(s, r, 0);
    assert_string_equal(text(s), "id: 40-0\nevent: reset\ndata: {\"type\":\"reset\",\"index\":40,\"seq\":0,"
                                 "\"reason\":\"behind\"}\n\n");
    sse_stream_sent(s);
    append(r, 41, SHM_EVENT_ACQUIRED, "n", "o");
    sse_stream_fill(s, r, 0);
    assert_non_null(strstr(text(s), "id: 41-0\n"));
    assert_null(strstr(text(s), "reset"));
    free(s);
    shm_events_destroy(r);
}

static void test_a_backlog_is_cut_into_buffer_sized_chunks_without_losing_an_event(void **state)
{
    (void)state;
    shm_events *r = ring_with_marker(1024);
    struct sse_stream *s = new_stream();
    assert_int_equal(sse_stream_open(s, r, NULL, "", 0, 0), 0);
    sse_stream_fill(s, r, 0);
    sse_stream_sent(s);
    char owner[LOCKD_OWNER_MAX + 1];
    memset(owner, 'w', LOCKD_OWNER_MAX);
    owner[LOCKD_OWNER_MAX] = '\0';
    for (uint64_t i = 1; i <= 500; i++)
        append(r, i, SHM_EVENT_ACQUIRED, "a-rather-long-lock-name-to-fill-buffers", owner);
    uint64_t seen = 0, chunks = 0, next = 1;
    while (sse_stream_fill(s, r, 0) > 0) {
        assert_true(s->len <= SSE_BUF_CAP);
        const char *t = text(s);
        for (const char *p = strstr(t, "id: "); p != NULL; p = strstr(p + 1, "\nid: ")) {
            unsigned long long idx = strtoull(p[0] == '\n' ? p + 5 : p + 4, NULL, 10);
            assert_int_equal(idx, next);
            next++;
            seen++;
        }
        chunks++;
        sse_stream_sent(s);
    }
    assert_int_equal(seen, 500);
    assert_true(chunks > 5);
    free(s);
    shm_events_destroy(r);
}

static void test_heartbeat_comment_after_quiet_period_only(void **state)
{
    (void)state;
    shm_events *r = ring_with_marker(16);
    struct sse_stream *s = new_stream();
    assert_int_equal(sse_stream_open(s, r, NULL, "", 0, 1000), 0);
    sse_stream_fill(s, r, 1000);
    sse_stream_sent(s);
    assert_int_equal(sse_stream_fill(s, r, 1000 + SSE_HEARTBEAT_MS - 1), 0);
    assert_true(sse_stream_fill(s, r, 1000 + SSE_HEARTBEAT_MS) > 0);
    assert_string_equal(text(s), ": heartbeat\n\n");
    sse_stream_sent(s);
    assert_int_equal(sse_stream_fill(s, r, 1000 + SSE_HEARTBEAT_MS + 10), 0);
    /* an event resets the quiet clock */
    append(r, 1, SHM_EVENT_ACQUIRED, "n", "o");
    assert_true(sse_stream_fill(s, r, 1000 + 2 * SSE_HEARTBEAT_MS - 5) > 0);
    assert_null(strstr(text(s), "heartbeat"));
    sse_stream_sent(s);
    assert_int_equal(sse_stream_fill(s, r, 1000 + 2 * SSE_HEARTBEAT_MS), 0);
    free(s);
    shm_events_destroy(r);
}

/* ---- the hub ---------------------------------------------------------------- */

struct sent_log {
    struct sse_stream *order[8];
    size_t n;
    struct sse_hub *hub;
    struct sse_stream *remove_on_send;
};

static void record_send(struct sse_stream *s, void *arg)
{
    struct sent_log *l = arg;
    assert_true(l->n < 8);
    l->order[l->n++] = s;
    sse_stream_sending(s);
    if (s == l->remove_on_send)
        sse_hub_remove(l->hub, s);
}

static void test_hub_caps_streams_and_polls_only_those_not_in_flight(void **state)
{
    (void)state;
    shm_events *r = ring_with_marker(64);
    struct sse_hub hub;
    sse_hub_init(&hub, 2);
    struct sse_stream *a = new_stream(), *b = new_stream(), *c = new_stream();
    assert_int_equal(sse_stream_open(a, r, NULL, "", 0, 0), 0);
    assert_int_equal(sse_stream_open(b, r, NULL, "x", 1, 0), 0);
    assert_int_equal(sse_stream_open(c, r, NULL, "", 0, 0), 0);
    assert_int_equal(sse_hub_add(&hub, a), 0);
    assert_int_equal(sse_hub_add(&hub, b), 0);
    assert_int_equal(sse_hub_add(&hub, c), -LOCKD_EFULL);
    assert_int_equal(hub.open, 2);
    assert_int_equal(hub.refused_total, 1);
    struct sent_log log = {.hub = &hub};
    assert_int_equal(sse_hub_poll(&hub, r, 0, record_send, &log), 2); /* both preambles */
    assert_int_equal(sse_hub_poll(&hub, r, 0, record_send, &log), 0); /* both in flight */
    sse_stream_sent(a);
    sse_stream_sent(b);
    append(r, 1, SHM_EVENT_ACQUIRED, "y", "o"); /* only a's filter passes it */
    log.n = 0;
    assert_int_equal(sse_hub_poll(&hub, r, 0, record_send, &log), 1);
    assert_ptr_equal(log.order[0], a);
    /* a send that removes its stream (the client went away) */
    sse_stream_sent(a);
    append(r, 2, SHM_EVENT_ACQUIRED, "x1", "o");
    log.n = 0;
    log.remove_on_send = a;
    assert_int_equal(sse_hub_poll(&hub, r, 0, record_send, &log), 2);
    assert_int_equal(hub.open, 1);
    assert_int_equal(hub.events_total, 2); /* a's two events, counted at removal */
    assert_int_equal(sse_hub_add(&hub, c), 0);
    sse_hub_remove(&hub, b);
    sse_hub_remove(&hub, b); /* twice: a no-op */
    sse_hub_remove(&hub, c);
    assert_int_equal(hub.open, 0);
    assert_null(hub.first);
    assert_int_equal(hub.opened_total, 3);
    free(a);
    free(b);
    free(c);
    shm_events_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_event_id_parses_index_dash_seq_or_a_bare_index),
        cmocka_unit_test(test_each_event_type_is_formatted_as_documented),
        cmocka_unit_test(test_longest_event_fits_and_odd_bytes_are_escaped),
        cmocka_unit_test(test_prefix_filter_passes_matching_names_and_every_cluster_event),
        cmocka_unit_test(test_stream_starts_with_the_preamble_then_streams_new_events_in_order),
        cmocka_unit_test(test_stream_with_prefix_sends_only_matching_locks_and_leader_changes),
        cmocka_unit_test(test_stream_resumes_after_last_event_id_or_says_reset_when_it_is_gone),
        cmocka_unit_test(test_a_stream_left_in_flight_while_the_ring_laps_it_gets_one_reset_then_goes_on),
        cmocka_unit_test(test_a_backlog_is_cut_into_buffer_sized_chunks_without_losing_an_event),
        cmocka_unit_test(test_heartbeat_comment_after_quiet_period_only),
        cmocka_unit_test(test_hub_caps_streams_and_polls_only_those_not_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
