/* tests/unit/shm/test_table.c: the shared lock table against a reference
 * model, at its limits, under a concurrent reader in another process, and
 * for how much memory a held lock costs. */
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

/* ---- helpers ------------------------------------------------------------- */

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

static void make_lock(shm_lock *l, const char *name, size_t nl, const char *owner, size_t ol,
                      uint64_t token)
{
    memset(l, 0, sizeof *l);
    memcpy(l->name, name, nl);
    l->name_len = (uint8_t)nl;
    memcpy(l->owner, owner, ol);
    l->owner_len = (uint8_t)ol;
    l->token = token;
    l->acquired_at_ms = 1700000000000ull + token;
    l->renewed_at_ms = 1700000000000ull + 2 * token;
    l->ttl_ms = 1000 + token % 100000;
    l->revision = 7 * token + 1;
}

static shm_table *new_ready_table(uint32_t capacity)
{
    shm_table *t = NULL;
    assert_int_equal(shm_table_create(capacity, &t), 0);
    assert_non_null(t);
    shm_table_set_state(t, SHM_STATE_READY);
    return t;
}

static void assert_same_lock(const shm_lock *got, const shm_lock *want)
{
    assert_int_equal(got->name_len, want->name_len);
    assert_memory_equal(got->name, want->name, want->name_len);
    assert_int_equal(got->name[got->name_len], '\0');
    assert_int_equal(got->owner_len, want->owner_len);
    if (want->owner_len > 0)
        assert_memory_equal(got->owner, want->owner, want->owner_len);
    assert_int_equal(got->owner[got->owner_len], '\0');
    assert_int_equal(got->token, want->token);
    assert_int_equal(got->acquired_at_ms, want->acquired_at_ms);
    assert_int_equal(got->renewed_at_ms, want->renewed_at_ms);
    assert_int_equal(got->ttl_ms, want->ttl_ms);
    assert_int_equal(got->revision, want->revision);
}

static void assert_found(shm_table *t, const shm_lock *want)
{
    shm_lock got;
    memset(&got, 0xa5, sizeof got);
    assert_int_equal(shm_table_lookup(t, want->name, want->name_len, &got), 0);
    assert_same_lock(&got, want);
}

static void assert_absent(shm_table *t, const char *name, size_t len)
{
    shm_lock got;
    assert_int_equal(shm_table_lookup(t, name, len, &got), -LOCKD_ENOENT);
}

/* ---- basics -------------------------------------------------------------- */

static void test_create_rejects_bad_capacity(void **state)
{
    (void)state;
    shm_table *t = NULL;
    assert_int_equal(shm_table_create(0, &t), -LOCKD_EINVAL);
    assert_int_equal(shm_table_create((1u << 28) + 1, &t), -LOCKD_EINVAL);
    assert_null(t);
    assert_int_equal(shm_table_segment_size(0), 0);
    assert_true(shm_table_segment_size(1) > 0);
    assert_true(shm_table_segment_size(1000) < shm_table_segment_size(2000));
    assert_int_equal(shm_table_create(1, &t), 0);
    assert_int_equal(shm_table_capacity(t), 1);
    assert_int_equal(shm_table_count(t), 0);
    shm_table_destroy(t);
    shm_table_destroy(NULL);
}

static void test_put_lookup_replace_remove_round_trip_with_owners_of_various_lengths(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(64);
    static const size_t owner_lens[] = {0,  1,  7,  8,  15,  16,  17,  31, 32,
                                        33, 48, 64, 99, 100, 127, 128, 3,  0};
    char owner[LOCKD_OWNER_MAX];
    shm_lock beta, alpha;
    make_lock(&beta, "beta", 4, "steady-owner", 12, 999);
    assert_int_equal(shm_table_put(t, &beta), 0);
    for (size_t i = 0; i < sizeof owner_lens / sizeof owner_lens[0]; i++) {
        for (size_t k = 0; k < owner_lens[i]; k++)
            owner[k] = (char)('a' + (i + k) % 26);
        make_lock(&alpha, "alpha", 5, owner, owner_lens[i], i + 1);
        assert_int_equal(shm_table_put(t, &alpha), 0);
        assert_int_equal(shm_table_count(t), 2);
        assert_found(t, &alpha);
        assert_found(t, &beta);
    }
    assert_int_equal(shm_table_remove(t, "alpha", 5), 0);
    assert_absent(t, "alpha", 5);
    assert_int_equal(shm_table_remove(t, "alpha", 5), -LOCKD_ENOENT);
    assert_int_equal(shm_table_count(t), 1);
    assert_found(t, &beta);
    /* and back again, reusing the freed record and block */
    assert_int_equal(shm_table_put(t, &alpha), 0);
    assert_found(t, &alpha);
    assert_int_equal(shm_table_count(t), 2);
    shm_table_destroy(t);
}

static void test_lookup_of_absent_name_returns_enoent(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(16);
    assert_absent(t, "nope", 4);
    shm_lock l;
    make_lock(&l, "abc", 3, "", 0, 1);
    assert_int_equal(shm_table_put(t, &l), 0);
    assert_absent(t, "ab", 2);
    assert_absent(t, "abcd", 4);
    assert_absent(t, "abd", 3);
    assert_absent(t, "abc", 0);
    char big[LOCKD_NAME_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_absent(t, big, sizeof big);
    assert_found(t, &l);
    assert_int_equal(shm_table_remove(t, "zzz", 3), -LOCKD_ENOENT);
    assert_int_equal(shm_table_count(t), 1);
    shm_table_destroy(t);
}

static void test_lookup_returns_eagain_until_ready_and_after_clear(void **state)
{
    (void)state;
    shm_table *t = NULL;
    shm_lock l, got;
    assert_int_equal(shm_table_create(16, &t), 0);
    make_lock(&l, "held", 4, "me", 2, 5);
    assert_int_equal(shm_table_put(t, &l), 0); /* the writer loads while LOADING */
    assert_int_equal(shm_table_lookup(t, "held", 4, &got), -LOCKD_EAGAIN);
    assert_int_equal(shm_table_lookup(t, "other", 5, &got), -LOCKD_EAGAIN);
    shm_table_set_state(t, SHM_STATE_READY);
    assert_found(t, &l);
    shm_table_set_state(t, SHM_STATE_LOADING);
    assert_int_equal(shm_table_lookup(t, "held", 4, &got), -LOCKD_EAGAIN);
    shm_table_set_state(t, SHM_STATE_READY);
    shm_table_clear(t);
    assert_int_equal(shm_table_lookup(t, "held", 4, &got), -LOCKD_EAGAIN);
    assert_int_equal(shm_table_count(t), 0);
    shm_table_set_state(t, SHM_STATE_READY);
    assert_absent(t, "held", 4);
    shm_table_destroy(t);
}

static void test_new_name_at_capacity_returns_efull_and_changes_nothing(void **state)
{
    (void)state;
    enum { CAP = 8 };
    shm_table *t = new_ready_table(CAP);
    shm_lock locks[CAP], l;
    char name[16];
    for (int i = 0; i < CAP; i++) {
        int n = snprintf(name, sizeof name, "n%d", i);
        make_lock(&locks[i], name, (size_t)n, "owner", 5, (uint64_t)i + 1);
        assert_int_equal(shm_table_put(t, &locks[i]), 0);
    }
    make_lock(&l, "newcomer", 8, "x", 1, 100);
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EFULL);
    assert_int_equal(shm_table_count(t), CAP);
    assert_absent(t, "newcomer", 8);
    for (int i = 0; i < CAP; i++)
        assert_found(t, &locks[i]);
    /* replacing an existing name (with a bigger owner) still works */
    char owner[LOCKD_OWNER_MAX];
    memset(owner, 'o', sizeof owner);
    char same[16];
    memcpy(same, locks[3].name, locks[3].name_len);
    make_lock(&locks[3], same, locks[3].name_len, owner, sizeof owner, 77);
    assert_int_equal(shm_table_put(t, &locks[3]), 0);
    assert_int_equal(shm_table_count(t), CAP);
    for (int i = 0; i < CAP; i++)
        assert_found(t, &locks[i]);
    /* one out, the newcomer fits */
    assert_int_equal(shm_table_remove(t, locks[0].name, locks[0].name_len), 0);
    assert_int_equal(shm_table_put(t, &l), 0);
    assert_found(t, &l);
    shm_table_destroy(t);
}

static void test_put_rejects_invalid_records(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(8);
    shm_lock l;
    make_lock(&l, "x", 1, "", 0, 1);
    l.name_len = 0;
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EINVAL);
    make_lock(&l, "x", 1, "", 0, 1);
    l.name_len = LOCKD_NAME_MAX + 1;
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EINVAL);
    make_lock(&l, "x", 1, "", 0, 1);
    l.owner_len = LOCKD_OWNER_MAX + 1;
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EINVAL);
    make_lock(&l, "x", 1, "", 0, 1);
    l.ttl_ms = (uint64_t)UINT32_MAX + 1;
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EINVAL);
    make_lock(&l, "x", 1, "", 0, 1);
    l.acquired_at_ms = BITS48 + 1;
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EINVAL);
    make_lock(&l, "x", 1, "", 0, 1);
    l.renewed_at_ms = BITS48 + 1;
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EINVAL);
    make_lock(&l, "x", 1, "", 0, 1);
    l.revision = BITS48 + 1;
    assert_int_equal(shm_table_put(t, &l), -LOCKD_EINVAL);
    assert_int_equal(shm_table_put(t, NULL), -LOCKD_EINVAL);
    assert_int_equal(shm_table_count(t), 0);
    assert_absent(t, "x", 1);
    shm_table_destroy(t);
}

static void test_name_and_owner_of_128_bytes_and_extreme_fields_round_trip(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(8);
    char name[LOCKD_NAME_MAX], owner[LOCKD_OWNER_MAX];
    for (int i = 0; i < LOCKD_NAME_MAX; i++)
        name[i] = (char)(i * 37 + 1); /* every byte value kind, including NUL and 0xff */
    for (int i = 0; i < LOCKD_OWNER_MAX; i++)
        owner[i] = (char)(255 - i);
    shm_lock a, b;
    make_lock(&a, name, sizeof name, owner, sizeof owner, UINT64_MAX);
    a.acquired_at_ms = BITS48;
    a.renewed_at_ms = BITS48 - 1;
    a.ttl_ms = UINT32_MAX;
    a.revision = BITS48;
    assert_int_equal(shm_table_put(t, &a), 0);
    name[LOCKD_NAME_MAX - 1] ^= 1; /* differs only in the last byte */
    make_lock(&b, name, sizeof name, "", 0, 0);
    b.acquired_at_ms = b.renewed_at_ms = b.ttl_ms = b.revision = 0;
    assert_int_equal(shm_table_put(t, &b), 0);
    assert_found(t, &a);
    assert_found(t, &b);
    assert_int_equal(shm_table_count(t), 2);
    assert_int_equal(shm_table_remove(t, a.name, a.name_len), 0);
    assert_absent(t, a.name, a.name_len);
    assert_found(t, &b);
    shm_table_destroy(t);
}

struct visit {
    int seen;
    int stop_after;
    uint64_t token_sum;
};

static int visit_fn(const shm_lock *rec, void *arg)
{
    struct visit *v = arg;
    v->seen++;
    v->token_sum += rec->token;
    assert_int_equal(rec->name[rec->name_len], '\0');
    return v->seen == v->stop_after ? 42 : 0;
}

static void test_foreach_visits_every_record_once_and_stops_on_nonzero(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(100);
    char name[16];
    shm_lock l;
    uint64_t sum = 0;
    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof name, "f%d", i);
        make_lock(&l, name, (size_t)n, "", 0, (uint64_t)i + 1);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    for (int i = 0; i < 100; i += 3) {
        int n = snprintf(name, sizeof name, "f%d", i);
        assert_int_equal(shm_table_remove(t, name, (size_t)n), 0);
    }
    for (int i = 1; i < 100; i++)
        if (i % 3 != 0)
            sum += (uint64_t)i + 1;
    struct visit v = {0, -1, 0};
    assert_int_equal(shm_table_foreach(t, visit_fn, &v), 0);
    assert_int_equal(v.seen, shm_table_count(t));
    assert_int_equal(v.token_sum, sum);
    struct visit w = {0, 5, 0};
    assert_int_equal(shm_table_foreach(t, visit_fn, &w), 42);
    assert_int_equal(w.seen, 5);
    shm_table_clear(t);
    struct visit e = {0, -1, 0};
    assert_int_equal(shm_table_foreach(t, visit_fn, &e), 0);
    assert_int_equal(e.seen, 0);
    shm_table_destroy(t);
}

static void test_status_round_trips_and_reports_table_state(void **state)
{
    (void)state;
    shm_table *t = NULL;
    assert_int_equal(shm_table_create(4, &t), 0);
    shm_node_status st, got;
    memset(&got, 0x5a, sizeof got);
    shm_table_status(t, &got);
    assert_int_equal(got.role, 0);
    assert_int_equal(got.leader_id, 0);
    assert_int_equal(got.state, SHM_STATE_LOADING);
    memset(&st, 0, sizeof st);
    st.node_id = 2;
    st.leader_id = 3;
    st.term = 9;
    st.commit_index = 1234;
    st.applied_index = 1200;
    st.last_contact_ms = 55;
    st.role = 1;
    st.state = 77; /* ignored: state comes from set_state */
    st.next_token = 8888;
    memset(st.leader_address, 'z', sizeof st.leader_address); /* unterminated */
    shm_table_publish_status(t, &st);
    shm_table_set_state(t, SHM_STATE_READY);
    shm_table_status(t, &got);
    assert_int_equal(got.node_id, 2);
    assert_int_equal(got.leader_id, 3);
    assert_int_equal(got.term, 9);
    assert_int_equal(got.commit_index, 1234);
    assert_int_equal(got.applied_index, 1200);
    assert_int_equal(got.last_contact_ms, 55);
    assert_int_equal(got.role, 1);
    assert_int_equal(got.next_token, 8888);
    assert_int_equal(got.state, SHM_STATE_READY);
    assert_int_equal(strlen(got.leader_address), sizeof got.leader_address - 1);
    shm_table_clear(t); /* keeps the status, reports LOADING */
    shm_table_status(t, &got);
    assert_int_equal(got.term, 9);
    assert_int_equal(got.state, SHM_STATE_LOADING);
    shm_table_destroy(t);
}

static void test_clear_empties_the_table_and_it_refills(void **state)
{
    (void)state;
    enum { CAP = 500 };
    shm_table *t = new_ready_table(CAP);
    char name[32], owner[64];
    shm_lock l;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < CAP; i++) {
            int n = snprintf(name, sizeof name, "r%d-%d", round, i);
            int o = snprintf(owner, sizeof owner, "owner-%d", i * (round + 1));
            make_lock(&l, name, (size_t)n, owner, (size_t)o, (uint64_t)i);
            assert_int_equal(shm_table_put(t, &l), 0);
        }
        assert_int_equal(shm_table_count(t), CAP);
        for (int i = 0; i < CAP; i++) {
            int n = snprintf(name, sizeof name, "r%d-%d", round, i);
            int o = snprintf(owner, sizeof owner, "owner-%d", i * (round + 1));
            make_lock(&l, name, (size_t)n, owner, (size_t)o, (uint64_t)i);
            assert_found(t, &l);
        }
        shm_table_clear(t);
        assert_int_equal(shm_table_count(t), 0);
        shm_table_set_state(t, SHM_STATE_READY);
        for (int i = 0; i < CAP; i += 7) {
            int n = snprintf(name, sizeof name, "r%d-%d", round, i);
            assert_absent(t, name, (size_t)n);
        }
    }
    shm_table_destroy(t);
}

/* ---- churn against a reference model -------------------------------------- */

struct model_entry {
    char name[48];
    uint8_t name_len;
    bool held;
    shm_lock lock;
};

static void random_name(uint64_t *rng, struct model_entry *e, int i)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-_.$";
    /* a unique prefix, then random bytes of random length */
    int n = snprintf(e->name, sizeof e->name, "%x.", i);
    size_t len = (size_t)n + rng_next(rng) % (sizeof e->name - (size_t)n);
    for (size_t k = (size_t)n; k < len; k++)
        e->name[k] = alphabet[rng_next(rng) % (sizeof alphabet - 1)];
    e->name_len = (uint8_t)len;
}

static void test_churn_of_a_million_ops_matches_reference_model(void **state)
{
    (void)state;
    enum { CAP = 1000, POOL = 2000, OPS = 1000000 };
    shm_table *t = new_ready_table(CAP);
    struct model_entry *m = calloc(POOL, sizeof *m);
    assert_non_null(m);
    uint64_t rng = 0x1234567887654321ull;
    for (int i = 0; i < POOL; i++)
        random_name(&rng, &m[i], i);
    uint32_t held = 0;
    char owner[LOCKD_OWNER_MAX];
    shm_lock got;
    int efull = 0;
    for (uint64_t op = 1; op <= OPS; op++) {
        uint64_t r = rng_next(&rng);
        struct model_entry *e = &m[(r >> 8) % POOL];
        unsigned kind = r % 100;
        if (kind < 45) {
            size_t ol = (r >> 40) % 8 == 0 ? (r >> 44) % (LOCKD_OWNER_MAX + 1) : (r >> 44) % 24;
            for (size_t k = 0; k < ol; k++)
                owner[k] = (char)('A' + (op + k) % 26);
            shm_lock l;
            make_lock(&l, e->name, e->name_len, owner, ol, op);
            int rc = shm_table_put(t, &l);
            if (!e->held && held == CAP) {
                assert_int_equal(rc, -LOCKD_EFULL);
                efull++;
            } else {
                assert_int_equal(rc, 0);
                held += !e->held;
                e->held = true;
                e->lock = l;
            }
        } else if (kind < 80) {
            int rc = shm_table_remove(t, e->name, e->name_len);
            assert_int_equal(rc, e->held ? 0 : -LOCKD_ENOENT);
            held -= e->held;
            e->held = false;
        } else {
            int rc = shm_table_lookup(t, e->name, e->name_len, &got);
            assert_int_equal(rc, e->held ? 0 : -LOCKD_ENOENT);
            if (e->held)
                assert_same_lock(&got, &e->lock);
        }
        if (op % 100000 == 0) {
            assert_int_equal(shm_table_count(t), held);
            for (int i = 0; i < POOL; i++) {
                if (m[i].held)
                    assert_found(t, &m[i].lock);
                else
                    assert_absent(t, m[i].name, m[i].name_len);
            }
        }
    }
    assert_true(efull > 0); /* the pool is larger than the table: it did fill */
    struct visit v = {0, -1, 0};
    uint64_t sum = 0;
    for (int i = 0; i < POOL; i++)
        if (m[i].held)
            sum += m[i].lock.token;
    assert_int_equal(shm_table_foreach(t, visit_fn, &v), 0);
    assert_int_equal(v.seen, held);
    assert_int_equal(v.token_sum, sum);
    free(m);
    shm_table_destroy(t);
}

/* ---- backward shift -------------------------------------------------------- */

/* At load 0.7 linear probing makes long runs, many wrapping around the end of
 * the index, so deletes shift entries across runs and the wrap. Every table
 * gets fresh hash keys, so each round is a different collision pattern. */
static void shift_round(uint32_t cap, uint64_t seed)
{
    shm_table *t = new_ready_table(cap);
    char(*names)[48] = calloc(cap, sizeof *names);
    bool *held = calloc(cap, sizeof *held);
    assert_non_null(names);
    assert_non_null(held);
    shm_lock l;
    for (uint32_t i = 0; i < cap; i++) {
        snprintf(names[i], sizeof names[i], "shift-%llx-%u", (unsigned long long)seed, i);
        make_lock(&l, names[i], strlen(names[i]), "", 0, i);
        assert_int_equal(shm_table_put(t, &l), 0);
        held[i] = true;
    }
    uint64_t rng = seed;
    for (uint32_t step = 0; step < cap * 2; step++) {
        uint32_t i = (uint32_t)(rng_next(&rng) % cap);
        if (held[i]) {
            assert_int_equal(shm_table_remove(t, names[i], strlen(names[i])), 0);
            held[i] = false;
        } else if (rng_next(&rng) % 2) {
            make_lock(&l, names[i], strlen(names[i]), "", 0, i);
            assert_int_equal(shm_table_put(t, &l), 0);
            held[i] = true;
        }
        for (uint32_t k = 0; k < cap; k++) {
            if (held[k]) {
                make_lock(&l, names[k], strlen(names[k]), "", 0, k);
                assert_found(t, &l);
            } else {
                assert_absent(t, names[k], strlen(names[k]));
            }
        }
    }
    free(held);
    free(names);
    shm_table_destroy(t);
}

static void test_backward_shift_keeps_every_colliding_name_findable(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++)
        shift_round(358, seed * 0x9e3779b97f4a7c15ull); /* 512 buckets, load 0.7 */
    for (uint64_t seed = 1; seed <= 50; seed++)
        shift_round(3, seed); /* 8 buckets: wrap-around in nearly every run */
}

/* ---- a forked reader against the writer ------------------------------------ */

/* One run: names [0, hot) are rewritten all the time (to catch torn copies),
 * names [0, stable) are never removed (to catch a lookup that misses an
 * entry a backward shift moved), the rest come and go, keeping the index
 * near load 0.7 so that runs are long and every remove shifts something. */
struct race {
    uint32_t capacity, hot, stable, names, fill_to;
    uint64_t ms;
    int readers;
    bool stall; /* readers stall at random points, as if preempted mid-probe */
};

struct reader_report {
    _Atomic int started;
    _Atomic int *stop;
    uint64_t lookups, found, churn_found, churn_absent, eagain;
    uint64_t torn, stable_missing;
};

static void versioned_name(const struct race *rc, char *buf, size_t cap, uint32_t idx, size_t *len)
{
    *len = (size_t)snprintf(buf, cap, idx < rc->stable ? "stable-%u" : "churn-%u", idx);
}

static char owner_byte(uint64_t v, size_t k)
{
    return (char)('A' + ((v + k) & 31));
}

/* Every field of a record is a function of its version v, and v names the
 * lock, so a copy mixing two versions, or another lock's, cannot pass. */
static void versioned_lock(const struct race *rc, shm_lock *l, uint32_t idx, uint64_t serial)
{
    uint64_t v = serial << 16 | idx;
    char name[32], owner[LOCKD_OWNER_MAX];
    size_t nl, ol = v % (LOCKD_OWNER_MAX + 1);
    versioned_name(rc, name, sizeof name, idx, &nl);
    for (size_t k = 0; k < ol; k++)
        owner[k] = owner_byte(v, k);
    make_lock(l, name, nl, owner, ol, v);
    l->acquired_at_ms = (v * 2654435761u) & BITS48;
    l->renewed_at_ms = (v * 40503u + 11) & BITS48;
    l->ttl_ms = (uint32_t)(v * 97);
    l->revision = v & BITS48;
}

/* versioned_lock's inverse, cheap so that the reader spends its time in
 * lookups rather than in checking them. */
static bool consistent(const shm_lock *got, uint32_t idx, const char *name, size_t nl)
{
    uint64_t v = got->token;
    if ((v & 0xffff) != idx || got->name_len != nl || memcmp(got->name, name, nl) != 0 ||
        got->name[nl] != '\0' || got->owner_len != v % (LOCKD_OWNER_MAX + 1) ||
        got->owner[got->owner_len] != '\0' || got->acquired_at_ms != ((v * 2654435761u) & BITS48) ||
        got->renewed_at_ms != ((v * 40503u + 11) & BITS48) || got->ttl_ms != (uint32_t)(v * 97) ||
        got->revision != (v & BITS48))
        return false;
    for (size_t k = 0; k < got->owner_len; k++)
        if (got->owner[k] != owner_byte(v, k))
            return false;
    return true;
}

/* A timer signal stops the reader at arbitrary points (mid-probe, mid-copy)
 * for 20 us, as a preemption would, while the writer carries on. */
static void stall_20us(int sig)
{
    (void)sig;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 20000);
}

static void reader_main(const struct race *rc, shm_table *t, struct reader_report *rep,
                        uint64_t seed)
{
    if (shm_table_make_readonly(t) != 0)
        _exit(2);
    if (rc->stall) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = stall_20us;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 70}, {0, 70}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
    char(*names)[16] = calloc(rc->names, sizeof *names);
    size_t *lens = calloc(rc->names, sizeof *lens);
    if (names == NULL || lens == NULL)
        _exit(2);
    for (uint32_t i = 0; i < rc->names; i++)
        versioned_name(rc, names[i], sizeof names[i], i, &lens[i]);
    atomic_store(&rep->started, 1);
    uint64_t rng = seed;
    shm_lock got;
    while (!atomic_load_explicit(rep->stop, memory_order_relaxed)) {
        for (int k = 0; k < 64; k++) {
            uint64_t r = rng_next(&rng);
            uint32_t pick = r % 10, idx = (uint32_t)(r >> 8);
            idx = pick < 2   ? idx % rc->hot
                  : pick < 9 ? idx % rc->stable
                             : rc->stable + idx % (rc->names - rc->stable);
            int r2 = shm_table_lookup(t, names[idx], lens[idx], &got);
            rep->lookups++;
            if (r2 == 0) {
                rep->found++;
                rep->churn_found += idx >= rc->stable;
                if (!consistent(&got, idx, names[idx], lens[idx]))
                    rep->torn++;
            } else if (r2 == -LOCKD_ENOENT) {
                if (idx < rc->stable)
                    rep->stable_missing++;
                else
                    rep->churn_absent++;
            } else if (r2 == -LOCKD_EAGAIN) {
                rep->eagain++;
            } else {
                rep->torn++;
            }
        }
    }
    _exit(rep->torn == 0 && rep->stable_missing == 0 ? 0 : 1);
}

static void race_reader_against_writer(const struct race *rc)
{
    enum { MAX_READERS = 4 };
    shm_table *t = new_ready_table(rc->capacity);
    size_t rep_size = sizeof(struct reader_report) * MAX_READERS + sizeof(_Atomic int);
    struct reader_report *reps =
        mmap(NULL, rep_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(reps != MAP_FAILED);
    assert_true(rc->readers <= MAX_READERS);
    _Atomic int *stop = (_Atomic int *)&reps[MAX_READERS];
    atomic_init(stop, 0);
    bool *held = calloc(rc->names, sizeof *held);
    assert_non_null(held);
    uint64_t serial = 1;
    shm_lock l;
    for (uint32_t i = 0; i < rc->names && shm_table_count(t) < rc->fill_to; i++) {
        versioned_lock(rc, &l, i, serial++);
        assert_int_equal(shm_table_put(t, &l), 0);
        held[i] = true;
    }
    assert_true(held[rc->stable - 1]);

    pid_t pids[MAX_READERS];
    for (int k = 0; k < rc->readers; k++) {
        memset(&reps[k], 0, sizeof reps[k]);
        reps[k].stop = stop;
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0)
            reader_main(rc, t, &reps[k], 99 + (uint64_t)k);
    }
    for (int k = 0; k < rc->readers; k++)
        while (!atomic_load(&reps[k].started))
            usleep(1000);

    uint64_t rng = 7, end = now_ms() + rc->ms, ops = 0, removes = 0;
    char name[32];
    size_t nl;
    for (;;) {
        if (++ops % 256 == 0 && now_ms() >= end)
            break;
        uint64_t r = rng_next(&rng);
        uint32_t kind = r % 100;
        if (kind < 20) { /* new owner, token and times for a hot lock */
            versioned_lock(rc, &l, (uint32_t)(r >> 8) % rc->hot, serial++);
            assert_int_equal(shm_table_put(t, &l), 0);
            continue;
        }
        uint32_t idx = rc->stable + (uint32_t)(r >> 8) % (rc->names - rc->stable);
        if (kind < 45) {
            if (held[idx]) {
                versioned_name(rc, name, sizeof name, idx, &nl);
                assert_int_equal(shm_table_remove(t, name, nl), 0);
                held[idx] = false;
                removes++;
            }
        } else {
            versioned_lock(rc, &l, idx, serial++);
            int r2 = shm_table_put(t, &l);
            assert_true(r2 == 0 || (r2 == -LOCKD_EFULL && !held[idx]));
            held[idx] |= r2 == 0;
        }
    }
    atomic_store(stop, 1);
    assert_true(removes > 10000);
    for (int k = 0; k < rc->readers; k++) {
        const struct reader_report *rep = &reps[k];
        int status = 0;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(rep->torn, 0);
        assert_int_equal(rep->stable_missing, 0);
        assert_int_equal(WEXITSTATUS(status), 0);
        /* the run did overlap: the reader saw churn names come and go */
        assert_true(rep->lookups > 10000);
        assert_true(rep->churn_found > 0 && rep->churn_absent > 0);
        assert_true(rep->eagain * 100 < rep->lookups);
    }
    free(held);
    munmap(reps, rep_size);
    shm_table_destroy(t);
}

static void test_forked_reader_never_sees_torn_or_missing_records_while_writer_churns(void **state)
{
    (void)state;
    /* 2860 locks in 4096 buckets: long runs, realistic sizes */
    const struct race big = {2860, 4, 1024, 3400, 2760, 900, 1, false};
    race_reader_against_writer(&big);
    /* 11 locks in 16 buckets: every remove shifts the run the readers are
     * in, and a reader stalled mid-probe resumes in a reshuffled index */
    const struct race tiny = {11, 1, 4, 24, 11, 700, 1, true};
    race_reader_against_writer(&tiny);
}

/* ---- workers map the table read-only -------------------------------------- */

static void on_segv(int sig)
{
    (void)sig;
    _exit(3);
}

static void test_readonly_view_serves_lookups_and_faults_on_write(void **state)
{
    (void)state;
    shm_table *t = new_ready_table(8);
    shm_lock l;
    make_lock(&l, "ro", 2, "reader", 6, 4);
    assert_int_equal(shm_table_put(t, &l), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm_lock got;
        if (shm_table_make_readonly(t) != 0 || shm_table_lookup(t, "ro", 2, &got) != 0 ||
            got.token != 4)
            _exit(1);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        make_lock(&l, "ro", 2, "intruder", 8, 5);
        shm_table_put(t, &l);
        _exit(4); /* the write went through */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    make_lock(&l, "ro", 2, "reader", 6, 4);
    assert_found(t, &l);
    shm_table_destroy(t);
}

/* ---- memory follows what is held ------------------------------------------ */

static long rss_shmem_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "RssShmem: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void test_memory_touched_per_held_lock_is_under_100_bytes(void **state)
{
    (void)state;
    enum { N = 100000 };
    shm_table *t = new_ready_table(N);
    long before = rss_shmem_kb();
    if (before < 0) {
        shm_table_destroy(t);
        skip();
    }
    char name[32];
    shm_lock l;
    for (int i = 0; i < N; i++) {
        int n = snprintf(name, sizeof name, "lock-%015d", i); /* 20 bytes */
        make_lock(&l, name, (size_t)n, "", 0, (uint64_t)i);
        assert_int_equal(shm_table_put(t, &l), 0);
    }
    long after = rss_shmem_kb();
    double per_lock = (double)(after - before) * 1024.0 / N;
    /* 40-byte record + 32-byte block + 2^18 buckets * 8 / 100,000 = 93 */
    assert_true(per_lock > 50.0); /* the measurement sees the table at all */
    assert_true(per_lock < 100.0);
    /* a tiny table reserves the same way but only touches a few pages */
    shm_table *small = new_ready_table(1u << 20);
    long before_small = rss_shmem_kb();
    make_lock(&l, "one", 3, "", 0, 1);
    assert_int_equal(shm_table_put(small, &l), 0);
    assert_true(rss_shmem_kb() - before_small < 64);
    shm_table_destroy(small);
    shm_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_bad_capacity),
        cmocka_unit_test(test_put_lookup_replace_remove_round_trip_with_owners_of_various_lengths),
        cmocka_unit_test(test_lookup_of_absent_name_returns_enoent),
        cmocka_unit_test(test_lookup_returns_eagain_until_ready_and_after_clear),
        cmocka_unit_test(test_new_name_at_capacity_returns_efull_and_changes_nothing),
        cmocka_unit_test(test_put_rejects_invalid_records),
        cmocka_unit_test(test_name_and_owner_of_128_bytes_and_extreme_fields_round_trip),
        cmocka_unit_test(test_foreach_visits_every_record_once_and_stops_on_nonzero),
        cmocka_unit_test(test_status_round_trips_and_reports_table_state),
        cmocka_unit_test(test_clear_empties_the_table_and_it_refills),
        cmocka_unit_test(test_churn_of_a_million_ops_matches_reference_model),
        cmocka_unit_test(test_backward_shift_keeps_every_colliding_name_findable),
        cmocka_unit_test(test_forked_reader_never_sees_torn_or_missing_records_while_writer_churns),
        cmocka_unit_test(test_readonly_view_serves_lookups_and_faults_on_write),
        cmocka_unit_test(test_memory_touched_per_held_lock_is_under_100_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
