/* tests/unit/shm/test_events.c: the shared event ring: ids and their order,
 * resuming from an id, learning of overwrites and resets, the read-only view,
 * and forked readers against a writer that laps them. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/limits.h"
#include "shm/events.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char owner_byte(uint64_t v, size_t k)
{
    return (char)('A' + ((v + k) & 31));
}

/* Every field is a function of (index, seq), so a copy that mixes two
 * events cannot pass `consistent`. */
static void versioned_event(struct shm_event *ev, uint64_t index, uint32_t seq)
{
    uint64_t v = index << 8 | seq;
    memset(ev, 0, sizeof(*ev));
    ev->index = index;
    ev->type = (uint8_t)(1 + v % 9); /* acquired .. leader_changed */
    int n = snprintf(ev->name, sizeof ev->name, "ev-%llu-", (unsigned long long)(v % 1000));
    size_t nl = (size_t)n + v % (LOCKD_NAME_MAX - 16);
    for (size_t k = (size_t)n; k < nl; k++)
        ev->name[k] = (char)('a' + (v + k) % 26);
    ev->name[nl] = '\0';
    ev->name_len = (uint8_t)nl;
    ev->owner_len = (uint8_t)(v % (LOCKD_OWNER_MAX + 1));
    for (size_t k = 0; k < ev->owner_len; k++)
        ev->owner[k] = owner_byte(v, k);
    ev->token = v * 3;
    ev->ttl_ms = v * 5;
    ev->time_ms = v * 7;
    ev->acquired_at_ms = v * 11;
    ev->waiter_id = v * 13;
    ev->leader_id = v * 17;
    ev->term = v * 19;
}

static bool consistent(const struct shm_event *got)
{
    struct shm_event want;
    versioned_event(&want, got->index, got->seq);
    return got->type == want.type && got->name_len == want.name_len &&
           memcmp(got->name, want.name, (size_t)want.name_len + 1) == 0 && got->owner_len == want.owner_len &&
           memcmp(got->owner, want.owner, want.owner_len) == 0 && got->owner[got->owner_len] == '\0' &&
           got->token == want.token && got->ttl_ms == want.ttl_ms && got->time_ms == want.time_ms &&
           got->acquired_at_ms == want.acquired_at_ms && got->waiter_id == want.waiter_id &&
           got->leader_id == want.leader_id && got->term == want.term;
}

static shm_events *new_ring(uint32_t capacity)
{
    shm_events *r = NULL;
    assert_int_equal(shm_events_create(capacity, &r), 0);
    assert_non_null(r);
    return r;
}

/* Appends events for index (n of them) and checks the seqs they got. */
static void append_entry(shm_events *r, uint64_t index, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct shm_event ev;
        uint64_t li;
        uint32_t ls;
        bool had = shm_events_last_id(r, &li, &ls);
        uint32_t want = had && li == index ? ls + 1 : 0;
        versioned_event(&ev, index, want);
        ev.seq = 12345; /* ignored: the ring assigns it */
        assert_int_equal(shm_events_append(r, &ev), 0);
        assert_true(shm_events_last_id(r, &li, &ls));
        assert_int_equal(li, index);
        assert_int_equal(ls, want);
    }
}

static void expect_next(shm_events *r, struct shm_events_cursor *c, uint64_t index, uint32_t seq)
{
    struct shm_event got;
    memset(&got, 0x5a, sizeof got);
    assert_int_equal(shm_events_next(r, c, &got), 0);
    assert_int_equal(got.index, index);
    assert_int_equal(got.seq, seq);
    if (got.type != SHM_EVENT_RESET)
        assert_true(consistent(&got));
}

/* ---- basics -------------------------------------------------------------- */

static void test_create_rejects_capacities_that_are_not_powers_of_two_in_range(void **state)
{
    (void)state;
    shm_events *r = NULL;
    assert_int_equal(shm_events_create(0, &r), -LOCKD_EINVAL);
    assert_int_equal(shm_events_create(8, &r), -LOCKD_EINVAL);
    assert_int_equal(shm_events_create(100, &r), -LOCKD_EINVAL);
    assert_int_equal(shm_events_create(SHM_EVENTS_MAX_CAPACITY * 2u, &r), -LOCKD_EINVAL);
    assert_null(r);
    assert_int_equal(shm_events_segment_size(100), 0);
    assert_true(shm_events_segment_size(16) < shm_events_segment_size(32));
    /* the default ring is about 5.25 MiB */
    assert_true(shm_events_segment_size(SHM_EVENTS_DEFAULT_CAPACITY) < 6u * 1024 * 1024);
    r = new_ring(16);
    assert_int_equal(shm_events_capacity(r), 16);
    assert_int_equal(shm_events_head(r), 0);
    uint64_t i;
    uint32_t s;
    assert_false(shm_events_last_id(r, &i, &s));
    shm_events_destroy(r);
    shm_events_destroy(NULL);
}

static void test_type_names_are_the_documented_ones(void **state)
{
    (void)state;
    static const char *const want[] = {"acquired", "renewed",       "released",    "expired",        "handed_over",
                                       "forced",   "waiter_queued", "waiter_left", "leader_changed", "reset"};
    for (unsigned t = 1; t <= SHM_EVENT_TYPE_MAX; t++)
        assert_string_equal(shm_event_type_name(t), want[t - 1]);
    assert_string_equal(shm_event_type_name(0), "unknown");
    assert_string_equal(shm_event_type_name(SHM_EVENT_TYPE_MAX + 1), "unknown");
}

static void test_events_round_trip_with_every_field_and_128_byte_name_and_owner(void **state)
{
    (void)state;
    shm_events *r = new_ring(16);
    struct shm_events_cursor c;
    shm_events_cursor_head(r, &c);
    struct shm_event ev, got;
    memset(&ev, 0, sizeof ev);
    ev.index = 42;
    ev.type = SHM_EVENT_HANDED_OVER;
    memset(ev.name, 'n', LOCKD_NAME_MAX);
    ev.name_len = LOCKD_NAME_MAX;
    memset(ev.owner, '@', LOCKD_OWNER_MAX);
    ev.owner_len = LOCKD_OWNER_MAX;
    ev.token = UINT64_MAX;
    ev.ttl_ms = 86400000;
    ev.time_ms = 1700000000123;
    ev.acquired_at_ms = 1700000000000;
    ev.waiter_id = 42ull << 20 | 3;
    ev.leader_id = 7;
    ev.term = 9;
    assert_int_equal(shm_events_append(r, &ev), 0);
    memset(&got, 0x5a, sizeof got);
    assert_int_equal(shm_events_next(r, &c, &got), 0);
    assert_int_equal(got.index, 42);
    assert_int_equal(got.seq, 0);
    assert_int_equal(got.type, SHM_EVENT_HANDED_OVER);
    assert_int_equal(got.name_len, LOCKD_NAME_MAX);
    assert_memory_equal(got.name, ev.name, LOCKD_NAME_MAX);
    assert_int_equal(got.name[LOCKD_NAME_MAX], '\0');
    assert_int_equal(got.owner_len, LOCKD_OWNER_MAX);
    assert_memory_equal(got.owner, ev.owner, LOCKD_OWNER_MAX);
    assert_int_equal(got.owner[LOCKD_OWNER_MAX], '\0');
    assert_true(got.token == UINT64_MAX);
    assert_int_equal(got.ttl_ms, 86400000);
    assert_int_equal(got.time_ms, 1700000000123);
    assert_int_equal(got.acquired_at_ms, 1700000000000);
    assert_int_equal(got.waiter_id, 42ull << 20 | 3);
    assert_int_equal(got.leader_id, 7);
    assert_int_equal(got.term, 9);
    /* an anonymous event of a short name: no bytes of the previous one show */
    memset(&ev, 0, sizeof ev);
    ev.index = 43;
    ev.type = SHM_EVENT_RELEASED;
    memcpy(ev.name, "x", 2);
    ev.name_len = 1;
    assert_int_equal(shm_events_append(r, &ev), 0);
    assert_int_equal(shm_events_next(r, &c, &got), 0);
    assert_string_equal(got.name, "x");
    assert_string_equal(got.owner, "");
    assert_int_equal(got.owner_len, 0);
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_EAGAIN);
    shm_events_destroy(r);
}

static void test_seq_counts_events_within_an_index_and_restarts_at_zero(void **state)
{
    (void)state;
    shm_events *r = new_ring(64);
    struct shm_events_cursor c;
    shm_events_cursor_head(r, &c);
    append_entry(r, 5, 3);
    append_entry(r, 6, 1);
    append_entry(r, 9, 2);
    expect_next(r, &c, 5, 0);
    expect_next(r, &c, 5, 1);
    expect_next(r, &c, 5, 2);
    expect_next(r, &c, 6, 0);
    expect_next(r, &c, 9, 0);
    expect_next(r, &c, 9, 1);
    struct shm_event got;
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_EAGAIN);
    assert_int_equal(shm_events_head(r), 6);
    shm_events_destroy(r);
}

static void test_append_rejects_bad_events_and_an_index_going_back(void **state)
{
    (void)state;
    shm_events *r = new_ring(16);
    struct shm_event ev;
    versioned_event(&ev, 10, 0);
    assert_int_equal(shm_events_append(r, &ev), 0);
    versioned_event(&ev, 9, 0);
    assert_int_equal(shm_events_append(r, &ev), -LOCKD_EINVAL);
    versioned_event(&ev, 11, 0);
    ev.type = 0;
    assert_int_equal(shm_events_append(r, &ev), -LOCKD_EINVAL);
    ev.type = SHM_EVENT_TYPE_MAX + 1;
    assert_int_equal(shm_events_append(r, &ev), -LOCKD_EINVAL);
    ev.type = SHM_EVENT_RESET; /* only shm_events_reset appends markers */
    assert_int_equal(shm_events_append(r, &ev), -LOCKD_EINVAL);
    versioned_event(&ev, 11, 0);
    ev.name_len = LOCKD_NAME_MAX + 1;
    assert_int_equal(shm_events_append(r, &ev), -LOCKD_EINVAL);
    versioned_event(&ev, 11, 0);
    ev.owner_len = LOCKD_OWNER_MAX + 1;
    assert_int_equal(shm_events_append(r, &ev), -LOCKD_EINVAL);
    assert_int_equal(shm_events_head(r), 1);
    /* after a reset the index may go back */
    assert_int_equal(shm_events_reset(r, 3, 1000), 0);
    versioned_event(&ev, 4, 0);
    assert_int_equal(shm_events_append(r, &ev), 0);
    assert_int_equal(shm_events_head(r), 3);
    shm_events_destroy(r);
}

static void test_reader_that_falls_a_ring_behind_learns_it_and_restarts_at_head(void **state)
{
    (void)state;
    shm_events *r = new_ring(16);
    struct shm_events_cursor c;
    shm_events_cursor_head(r, &c);
    for (uint64_t i = 1; i <= 16; i++)
        append_entry(r, i, 1);
    expect_next(r, &c, 1, 0); /* exactly full: the oldest is still there */
    append_entry(r, 17, 2);   /* overwrites positions 0 and 1 */
    struct shm_event got;
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_ENOENT);
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_ENOENT); /* the cursor stays put */
    shm_events_cursor_head(r, &c);
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_EAGAIN);
    append_entry(r, 18, 1);
    expect_next(r, &c, 18, 0);
    shm_events_destroy(r);
}

/* ---- resuming from an id -------------------------------------------------- */

static void test_seek_resumes_right_after_an_id_the_ring_still_holds(void **state)
{
    (void)state;
    shm_events *r = new_ring(64);
    assert_int_equal(shm_events_reset(r, 0, 1), 0);
    append_entry(r, 1, 2);
    append_entry(r, 2, 3);
    append_entry(r, 4, 1);
    struct shm_events_cursor c;
    assert_int_equal(shm_events_seek(r, 2, 0, &c), 0);
    expect_next(r, &c, 2, 1);
    expect_next(r, &c, 2, 2);
    expect_next(r, &c, 4, 0);
    /* a bare index: after every event of that entry */
    assert_int_equal(shm_events_seek(r, 2, UINT32_MAX, &c), 0);
    expect_next(r, &c, 4, 0);
    /* an id between two ids that exist (from another node's local event) */
    assert_int_equal(shm_events_seek(r, 3, 7, &c), 0);
    expect_next(r, &c, 4, 0);
    /* the newest id: nothing until the next append */
    assert_int_equal(shm_events_seek(r, 4, 0, &c), 0);
    struct shm_event got;
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_EAGAIN);
    append_entry(r, 5, 1);
    expect_next(r, &c, 5, 0);
    /* an id from the future (a node further ahead): skipped until past it */
    assert_int_equal(shm_events_seek(r, 6, 0, &c), 0);
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_EAGAIN);
    append_entry(r, 6, 2);
    expect_next(r, &c, 6, 1);
    /* id 0: the whole segment after the marker */
    assert_int_equal(shm_events_seek(r, 0, 0, &c), 0);
    expect_next(r, &c, 1, 0);
    shm_events_destroy(r);
}

static void test_seek_refuses_an_id_older_than_what_the_ring_holds(void **state)
{
    (void)state;
    shm_events *r = new_ring(16);
    struct shm_events_cursor c;
    struct shm_event got;
    /* nothing ever appended: what came before is unknown */
    assert_int_equal(shm_events_seek(r, 5, 0, &c), -LOCKD_ENOENT);
    assert_int_equal(shm_events_reset(r, 100, 1), 0);
    for (uint64_t i = 101; i <= 140; i++)
        append_entry(r, i, 1); /* the marker and 101..124 are overwritten */
    assert_int_equal(shm_events_seek(r, 110, 0, &c), -LOCKD_ENOENT);
    assert_int_equal(shm_events_next(r, &c, &got), -LOCKD_EAGAIN); /* at the head */
    /* (124, 1) may have existed (a node-local event) and been overwritten */
    assert_int_equal(shm_events_seek(r, 124, 0, &c), -LOCKD_ENOENT);
    assert_int_equal(shm_events_seek(r, 125, 0, &c), 0); /* the oldest held */
    expect_next(r, &c, 126, 0);
    /* "all of 124": nothing can lie between it and (125, 0) */
    assert_int_equal(shm_events_seek(r, 124, UINT32_MAX, &c), 0);
    expect_next(r, &c, 125, 0);
    shm_events_destroy(r);
}

static void test_reset_marker_sends_older_clients_to_reload_and_lets_newer_ones_resume(void **state)
{
    (void)state;
    shm_events *r = new_ring(64);
    assert_int_equal(shm_events_reset(r, 0, 1), 0);
    append_entry(r, 1, 1);
    append_entry(r, 2, 1);
    append_entry(r, 3, 1);
    struct shm_events_cursor live; /* a stream reading along, past its resume point */
    assert_int_equal(shm_events_seek(r, 2, 0, &live), 0);
    expect_next(r, &live, 3, 0);
    /* raftproc restarts from a store at applied index 2 and replays 3, 4 */
    assert_int_equal(shm_events_reset(r, 2, 2), 0);
    append_entry(r, 3, 1);
    append_entry(r, 4, 1);
    struct shm_event got;
    /* a client at 3: the marker (2 <= 3) and the replayed 3 are skipped */
    struct shm_events_cursor c;
    assert_int_equal(shm_events_seek(r, 3, 0, &c), 0);
    expect_next(r, &c, 4, 0);
    /* a client at 1 missed the jump to 2: reload */
    assert_int_equal(shm_events_seek(r, 1, 0, &c), -LOCKD_ENOENT);
    /* a client at exactly the marker's state resumes */
    assert_int_equal(shm_events_seek(r, 2, UINT32_MAX, &c), 0);
    expect_next(r, &c, 3, 0);
    /* a stream that was reading along meets the marker and is told */
    assert_int_equal(shm_events_next(r, &live, &got), 0);
    assert_int_equal(got.type, SHM_EVENT_RESET);
    assert_int_equal(got.index, 2);
    assert_int_equal(got.time_ms, 2);
    expect_next(r, &live, 3, 0);
    expect_next(r, &live, 4, 0);
    /* a reset that goes back to 0 (memory store) and the same index again */
    assert_int_equal(shm_events_reset(r, 0, 3), 0);
    append_entry(r, 1, 1);
    assert_int_equal(shm_events_next(r, &live, &got), 0);
    assert_int_equal(got.type, SHM_EVENT_RESET);
    expect_next(r, &live, 1, 0);
    uint64_t li;
    uint32_t ls;
    assert_true(shm_events_last_id(r, &li, &ls));
    assert_int_equal(li, 1);
    assert_int_equal(ls, 0);
    shm_events_destroy(r);
}

/* ---- workers map the ring read-only ---------------------------------------- */

static void on_segv(int sig)
{
    (void)sig;
    _exit(3);
}

static void test_readonly_view_reads_and_faults_on_write(void **state)
{
    (void)state;
    shm_events *r = new_ring(16);
    assert_int_equal(shm_events_reset(r, 0, 1), 0);
    append_entry(r, 1, 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct shm_events_cursor c;
        struct shm_event got;
        if (shm_events_make_readonly(r) != 0 || shm_events_seek(r, 0, 0, &c) != 0 ||
            shm_events_next(r, &c, &got) != 0 || got.index != 1)
            _exit(1);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        struct shm_event ev;
        versioned_event(&ev, 2, 0);
        shm_events_append(r, &ev);
        _exit(4); /* the write went through */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    assert_int_equal(shm_events_head(r), 2);
    shm_events_destroy(r);
}

/* ---- forked readers against a writer that laps them ------------------------ */

struct race {
    uint32_t capacity;
    uint64_t ms;
    int readers;
    bool stall;        /* readers stall at random points, as if preempted mid-copy */
    uint32_t burst;    /* the writer appends this many events back to back ... */
    uint32_t pause_us; /* ... then pauses, so that readers get CPU on a busy machine */
};

struct reader_report {
    _Atomic int started;
    _Atomic int *stop;
    uint64_t events, lost, torn, out_of_order, gaps;
};

static void stall_20us(int sig)
{
    (void)sig;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 20000);
}

/* The writer appends entries i = 1, 2, ... with 1 + i % 4 events each, so a
 * reader that was not told of a loss must see exactly the next id. */
static void next_id(uint64_t *index, uint32_t *seq)
{
    if (*seq + 1 < 1 + *index % 4) {
        (*seq)++;
    } else {
        (*index)++;
        *seq = 0;
    }
}

static void reader_main(const struct race *rc, shm_events *r, struct reader_report *rep)
{
    if (shm_events_make_readonly(r) != 0)
        _exit(2);
    if (rc->stall) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = stall_20us;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 70}, {0, 70}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
    struct shm_events_cursor c;
    shm_events_cursor_head(r, &c);
    bool have = false;
    uint64_t want_index = 0;
    uint32_t want_seq = 0;
    struct shm_event ev;
    atomic_store(&rep->started, 1);
    while (!atomic_load_explicit(rep->stop, memory_order_relaxed)) {
        int n = shm_events_next(r, &c, &ev);
        if (n == -LOCKD_EAGAIN)
            continue;
        if (n == -LOCKD_ENOENT) {
            rep->lost++;
            shm_events_cursor_head(r, &c);
            have = false;
            continue;
        }
        if (n != 0) {
            rep->torn++;
            continue;
        }
        rep->events++;
        if (!consistent(&ev))
            rep->torn++;
        if (have && (ev.index != want_index || ev.seq != want_seq))
            rep->gaps++;
        want_index = ev.index;
        want_seq = ev.seq;
        next_id(&want_index, &want_seq);
        have = true;
    }
    _exit(rep->torn == 0 && rep->gaps == 0 ? 0 : 1);
}

static void race_readers_against_writer(const struct race *rc, bool expect_losses)
{
    enum { MAX_READERS = 4 };
    shm_events *r = new_ring(rc->capacity);
    size_t rep_size = sizeof(struct reader_report) * MAX_READERS + sizeof(_Atomic int);
    struct reader_report *reps = mmap(NULL, rep_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(reps != MAP_FAILED);
    assert_true(rc->readers <= MAX_READERS);
    _Atomic int *stop = (_Atomic int *)&reps[MAX_READERS];
    atomic_init(stop, 0);
    pid_t pids[MAX_READERS];
    for (int k = 0; k < rc->readers; k++) {
        memset(&reps[k], 0, sizeof reps[k]);
        reps[k].stop = stop;
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0)
            reader_main(rc, r, &reps[k]);
    }
    for (int k = 0; k < rc->readers; k++)
        while (!atomic_load(&reps[k].started))
            usleep(1000);

    uint64_t end = now_ms() + rc->ms, index = 1, appended = 0, pause_at = 8, bursts = 0;
    uint32_t seq = 0;
    struct shm_event ev;
    for (;;) {
        if (++appended % 256 == 0 && now_ms() >= end)
            break;
        versioned_event(&ev, index, seq);
        assert_int_equal(shm_events_append(r, &ev), 0);
        uint64_t li;
        uint32_t ls;
        assert_true(shm_events_last_id(r, &li, &ls));
        assert_int_equal(ls, seq);
        next_id(&index, &seq);
        if (appended == pause_at) {
            /* short bursts the readers can follow, long ones that lap them */
            usleep(rc->pause_us);
            pause_at += ++bursts % 2 ? rc->burst : 8;
        }
    }
    atomic_store(stop, 1);
    uint64_t lost = 0;
    for (int k = 0; k < rc->readers; k++) {
        const struct reader_report *rep = &reps[k];
        int status = 0;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(rep->torn, 0);
        assert_int_equal(rep->gaps, 0);
        assert_int_equal(WEXITSTATUS(status), 0);
        if (rep->events < 20) /* the run did overlap */
            fail_msg("reader %d saw only %llu events (%llu losses)", k, (unsigned long long)rep->events,
                     (unsigned long long)rep->lost);
        lost += rep->lost;
        print_message("reader %d: %llu events, %llu losses\n", k, (unsigned long long)rep->events,
                      (unsigned long long)rep->lost);
    }
    if (expect_losses)
        assert_true(lost > 0); /* the writer did lap a reader, which noticed */
    munmap(reps, rep_size);
    shm_events_destroy(r);
}

static void test_forked_readers_never_see_torn_events_or_silent_gaps_while_writer_laps_them(void **state)
{
    (void)state;
    /* a roomy ring: readers mostly keep up, and must see every id in order */
    const struct race roomy = {4096, 600, 2, false, 64, 50};
    race_readers_against_writer(&roomy, false);
    /* 16 slots, bursts of 40 and readers stalled mid-copy: the writer laps
     * them in every burst; every overwrite must be detected, never passed
     * on as data */
    const struct race tiny = {16, 700, 2, true, 40, 300};
    race_readers_against_writer(&tiny, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_capacities_that_are_not_powers_of_two_in_range),
        cmocka_unit_test(test_type_names_are_the_documented_ones),
        cmocka_unit_test(test_events_round_trip_with_every_field_and_128_byte_name_and_owner),
        cmocka_unit_test(test_seq_counts_events_within_an_index_and_restarts_at_zero),
        cmocka_unit_test(test_append_rejects_bad_events_and_an_index_going_back),
        cmocka_unit_test(test_reader_that_falls_a_ring_behind_learns_it_and_restarts_at_head),
        cmocka_unit_test(test_seek_resumes_right_after_an_id_the_ring_still_holds),
        cmocka_unit_test(test_seek_refuses_an_id_older_than_what_the_ring_holds),
        cmocka_unit_test(test_reset_marker_sends_older_clients_to_reload_and_lets_newer_ones_resume),
        cmocka_unit_test(test_readonly_view_reads_and_faults_on_write),
        cmocka_unit_test(test_forked_readers_never_see_torn_events_or_silent_gaps_while_writer_laps_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
