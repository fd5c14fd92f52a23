/* tests/unit/shm/test_scan.c: shm_table_scan, the reader-side walk that
 * GET /locks is built on: every held record once, consistent copies only,
 * LOADING and clear() reported as EAGAIN, and, against a writer churning in
 * another process, never a torn record and never a miss or a repeat of a
 * lock held throughout the scan. */
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
#include "shm/table.h"

#define BITS48 ((1ull << 48) - 1)

static uint64_t rng_next(uint64_t *s) /* xorshift64* */
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static shm_table *new_ready_table(uint32_t capacity)
{
    shm_table *t = NULL;
    assert_int_equal(shm_table_create(capacity, &t), 0);
    shm_table_set_state(t, SHM_STATE_READY);
    return t;
}

/* Names: "s%04u" (stable: held from before the race to after it) and
 * "c%04u" (churned). Every other field is a function of the token, whose
 * low 16 bits are the name's number and bit 16 says stable, so a reader can
 * check that a copy is one whole version of one record. */
enum { STABLE_BIT = 1u << 16 };

static void name_of(uint32_t idx, bool stable, char *buf, size_t cap, size_t *len)
{
    *len = (size_t)snprintf(buf, cap, "%c%04u", stable ? 's' : 'c', idx);
}

static char owner_byte(uint64_t v, size_t k)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    return alphabet[(v + k * 7) % 36];
}

static void versioned_lock(shm_lock *l, uint32_t idx, bool stable, uint64_t serial)
{
    memset(l, 0, sizeof *l);
    size_t nl;
    name_of(idx, stable, l->name, sizeof l->name, &nl);
    l->name_len = (uint8_t)nl;
    uint64_t v = serial << 17 | (stable ? STABLE_BIT : 0) | idx;
    l->token = v;
    /* owner length 0..128 changes the arena size class between versions */
    l->owner_len = (uint8_t)(v % (LOCKD_OWNER_MAX + 1));
    for (size_t k = 0; k < l->owner_len; k++)
        l->owner[k] = owner_byte(v, k);
    l->acquired_at_ms = (v * 2654435761u) & BITS48;
    l->renewed_at_ms = (v * 40503u + 11) & BITS48;
    l->ttl_ms = (uint32_t)(v * 97);
    l->revision = v & BITS48;
}

static bool consistent(const shm_lock *got)
{
    uint64_t v = got->token;
    uint32_t idx = (uint32_t)(v & 0xffff);
    bool stable = (v & STABLE_BIT) != 0;
    char name[16];
    size_t nl;
    name_of(idx, stable, name, sizeof name, &nl);
    if (got->name_len != nl || memcmp(got->name, name, nl) != 0 || got->name[nl] != '\0' ||
        got->owner_len != v % (LOCKD_OWNER_MAX + 1) || got->owner[got->owner_len] != '\0' ||
        got->acquired_at_ms != ((v * 2654435761u) & BITS48) ||
        got->renewed_at_ms != ((v * 40503u + 11) & BITS48) || got->ttl_ms != (uint32_t)(v * 97) ||
        got->revision != (v & BITS48))
        return false;
    for (size_t k = 0; k < got->owner_len; k++)
        if (got->owner[k] != owner_byte(v, k))
            return false;
    return true;
}

/* ---- single process --------------------------------------------------------- */

struct seen {
    uint32_t stable_count[4096];
    uint32_t churn_count[4096];
    uint64_t records;
    uint64_t torn;
    int stop_after; /* return 7 after this many records; 0: never */
};

static int on_record(const shm_lock *rec, void *arg)
{
    struct seen *s = arg;
    s->records++;
    if (!consistent(rec)) {
        s->torn++;
        return 0;
    }
    uint32_t idx = (uint32_t)(rec->token & 0xffff);
    if (rec->token & STABLE_BIT)
        s->stable_count[idx]++;
    else
        s->churn_count[idx]++;
    if (s->stop_after && s->records == (uint64_t)s->stop_after)
        return 7;
    return 0;
}

static void test_scan_of_loading_table_is_eagain_and_empty_table_visits_nothing(void **state)
{
    (void)state;
    shm_table *t = NULL;
    assert_int_equal(shm_table_create(16, &t), 0);
    struct seen *s = calloc(1, sizeof *s);
    assert_int_equal(shm_table_scan(t, on_record, s), -LOCKD_EAGAIN);
    shm_table_set_state(t, SHM_STATE_READY);
    assert_int_equal(shm_table_scan(t, on_record, s), 0);
    assert_int_equal(s->records, 0);
    free(s);
    shm_table_destroy(t);
}

static void test_scan_visits_every_held_record_once_skips_freed_ones_and_stops_on_nonzero(
    void **state)
{
    (void)state;
    shm_table *t = new_ready_table(1000);
    shm_lock l;
    for (uint32_t i = 0; i < 1000; i++) {
        versioned_lock(&l, i, true, i + 1);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    /* free every third record, replace every fifth with a new version */
    for (uint32_t i = 0; i < 1000; i += 3) {
        char name[16];
        size_t nl;
        name_of(i, true, name, sizeof name, &nl);
        assert_int_equal(shm_table_remove(t, name, nl), 0);
    }
    for (uint32_t i = 1; i < 1000; i += 5) {
        if (i % 3 == 0)
            continue;
        versioned_lock(&l, i, true, 5000 + i);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    struct seen *s = calloc(1, sizeof *s);
    assert_int_equal(shm_table_scan(t, on_record, s), 0);
    assert_int_equal(s->torn, 0);
    assert_int_equal(s->records, shm_table_count(t));
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(s->stable_count[i], i % 3 == 0 ? 0 : 1);

    memset(s, 0, sizeof *s);
    s->stop_after = 10;
    assert_int_equal(shm_table_scan(t, on_record, s), 7);
    assert_int_equal(s->records, 10);
    free(s);
    shm_table_destroy(t);
}

static shm_table *clear_target;

static int clear_midway(const shm_lock *rec, void *arg)
{
    (void)rec;
    int *n = arg;
    if (++*n == 5) {
        /* the writer reloads the table while a worker is mid-scan */
        shm_table_clear(clear_target);
        shm_lock l;
        versioned_lock(&l, 1, true, 99);
        shm_table_put(clear_target, &l);
        shm_table_set_state(clear_target, SHM_STATE_READY);
    }
    return 0;
}

static void test_scan_reports_eagain_when_the_table_is_cleared_under_it(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(64);
    shm_lock l;
    for (uint32_t i = 0; i < 20; i++) {
        versioned_lock(&l, i, true, i + 1);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    clear_target = t;
    int n = 0;
    assert_int_equal(shm_table_scan(t, clear_midway, &n), -LOCKD_EAGAIN);
    /* and the next scan sees the reloaded table */
    struct seen *s = calloc(1, sizeof *s);
    assert_int_equal(shm_table_scan(t, on_record, s), 0);
    assert_int_equal(s->records, 1);
    assert_int_equal(s->stable_count[1], 1);
    free(s);
    shm_table_destroy(t);
}

static void test_scan_after_clear_and_refill_sees_only_the_new_records(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(256);
    shm_lock l;
    for (uint32_t i = 0; i < 200; i++) {
        versioned_lock(&l, i, false, i + 1);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    shm_table_clear(t);
    for (uint32_t i = 0; i < 10; i++) {
        versioned_lock(&l, i, true, i + 1);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    struct seen *s = calloc(1, sizeof *s);
    assert_int_equal(shm_table_scan(t, on_record, s), -LOCKD_EAGAIN); /* still LOADING */
    shm_table_set_state(t, SHM_STATE_READY);
    assert_int_equal(shm_table_scan(t, on_record, s), 0);
    assert_int_equal(s->records, 10);
    for (uint32_t i = 0; i < 200; i++)
        assert_int_equal(s->churn_count[i], 0);
    free(s);
    shm_table_destroy(t);
}

/* ---- a writer in another process ------------------------------------------- */

struct race_ctl {
    _Atomic int stop;
    _Atomic int started;
    _Atomic uint64_t ops;
};

enum { RACE_STABLE = 800, RACE_CHURN = 2400, RACE_CAPACITY = 3000 };

/* The writer (raftproc's role): renews stable locks with new versions (in
 * place, often switching arena size class) and adds, replaces and removes
 * churn locks, as fast as it can. */
static void writer_main(shm_table *t, struct race_ctl *ctl)
{
    bool *held = calloc(RACE_CHURN, sizeof *held);
    if (held == NULL)
        _exit(2);
    uint64_t rng = 12345, serial = 1000000;
    shm_lock l;
    atomic_store(&ctl->started, 1);
    while (!atomic_load_explicit(&ctl->stop, memory_order_relaxed)) {
        uint64_t r = rng_next(&rng);
        uint32_t kind = r % 100;
        if (kind < 25) {
            versioned_lock(&l, (uint32_t)(r >> 8) % RACE_STABLE, true, serial++);
            if (shm_table_put(t, &l) != 0)
                _exit(3);
        } else {
            uint32_t idx = (uint32_t)(r >> 8) % RACE_CHURN;
            if (kind < 60 && held[idx]) {
                char name[16];
                size_t nl;
                name_of(idx, false, name, sizeof name, &nl);
                if (shm_table_remove(t, name, nl) != 0)
                    _exit(4);
                held[idx] = false;
            } else if (kind >= 60) {
                versioned_lock(&l, idx, false, serial++);
                int rc = shm_table_put(t, &l);
                if (rc == 0)
                    held[idx] = true;
                else if (rc != -LOCKD_EFULL)
                    _exit(5);
            }
        }
        atomic_fetch_add_explicit(&ctl->ops, 1, memory_order_relaxed);
    }
    _exit(0);
}

static void stall_20us(int sig)
{
    (void)sig;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 20000);
}

static void race_scans_against_writer(unsigned ms, bool stall)
{
    shm_table *t = new_ready_table(RACE_CAPACITY);
    shm_lock l;
    for (uint32_t i = 0; i < RACE_STABLE; i++) {
        versioned_lock(&l, i, true, i + 1);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    for (uint32_t i = 0; i < RACE_CHURN; i += 2) {
        versioned_lock(&l, i, false, i + 1);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    struct race_ctl *ctl =
        mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(ctl != MAP_FAILED);
    atomic_init(&ctl->stop, 0);
    atomic_init(&ctl->started, 0);
    atomic_init(&ctl->ops, 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        writer_main(t, ctl);
    /* From here this process only reads, through a read-only view (as a
     * worker does): a scan that wrote shared memory would fault. */
    assert_int_equal(shm_table_make_readonly(t), 0);
    while (!atomic_load(&ctl->started))
        usleep(1000);
    if (stall) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = stall_20us;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 70}, {0, 70}};
        setitimer(ITIMER_REAL, &it, NULL);
    }

    struct seen *s = calloc(1, sizeof *s);
    uint64_t scans = 0, eagain = 0, churn_seen = 0, torn = 0, stable_bad = 0;
    uint64_t end = now_ms() + ms;
    uint64_t ops_before = atomic_load(&ctl->ops);
    while (now_ms() < end) {
        memset(s, 0, sizeof *s);
        int rc = shm_table_scan(t, on_record, s);
        if (rc == -LOCKD_EAGAIN) {
            eagain++;
            continue;
        }
        assert_int_equal(rc, 0);
        scans++;
        torn += s->torn;
        for (uint32_t i = 0; i < RACE_STABLE; i++)
            stable_bad += s->stable_count[i] != 1;
        for (uint32_t i = 0; i < RACE_CHURN; i++)
            churn_seen += s->churn_count[i];
    }
    uint64_t ops_during = atomic_load(&ctl->ops) - ops_before;
    if (stall) {
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        signal(SIGALRM, SIG_DFL);
    }
    atomic_store(&ctl->stop, 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* every copy was one whole version; every stable lock exactly once per scan */
    print_message("scans %llu eagain %llu writer ops %llu\n", (unsigned long long)scans,
                  (unsigned long long)eagain, (unsigned long long)ops_during);
    assert_int_equal(torn, 0);
    assert_int_equal(stable_bad, 0);
    /* the race did happen */
    assert_true(scans > 20);
    assert_true(ops_during > 10000);
    assert_true(churn_seen > 0);
    assert_true(eagain * 10 <= scans);
    free(s);
    munmap(ctl, sizeof *ctl);
    shm_table_destroy(t);
}

static void test_forked_writer_churning_never_tears_a_scan_nor_hides_a_held_lock(void **state)
{
    (void)state;
    race_scans_against_writer(800, false);
}

static void test_reader_preempted_mid_scan_still_sees_held_locks_exactly_once(void **state)
{
    (void)state;
    race_scans_against_writer(600, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_of_loading_table_is_eagain_and_empty_table_visits_nothing),
        cmocka_unit_test(
            test_scan_visits_every_held_record_once_skips_freed_ones_and_stops_on_nonzero),
        cmocka_unit_test(test_scan_reports_eagain_when_the_table_is_cleared_under_it),
        cmocka_unit_test(test_scan_after_clear_and_refill_sees_only_the_new_records),
        cmocka_unit_test(test_forked_writer_churning_never_tears_a_scan_nor_hides_a_held_lock),
        cmocka_unit_test(test_reader_preempted_mid_scan_still_sees_held_locks_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
