/* tests/unit/raftproc/test_fsm.c: the lock state machine fed hand-built
 * LogEntry payloads: the lock rules of API.md, fencing tokens, replay
 * idempotence, determinism across replicas and restarts, snapshots.
 * Every test works in its own mkdtemp() directory and removes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>

#include "common/errors.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/lockd.pb-c.h"
#include "raftproc/fsm.h"
#include "raftproc/store.h"
#include "shm/table.h"

#define T0 1700000000000ull /* a wall-clock ms, as a leader would propose */

enum {
    ACQ = LOCKD__OP__OP_ACQUIRE,
    REL = LOCKD__OP__OP_RELEASE,
    RD = LOCKD__OP__OP_READ,
    EXP = LOCKD__OP__OP_EXPIRE,
};
enum {
    OK = LOCKD__STATUS__ST_OK,
    CONFLICT = LOCKD__STATUS__ST_CONFLICT,
    NOT_FOUND = LOCKD__STATUS__ST_NOT_FOUND,
    FULL = LOCKD__STATUS__ST_FULL,
    BAD = LOCKD__STATUS__ST_BAD_REQUEST,
    QUEUED = LOCKD__STATUS__ST_QUEUED,
};

/* ---- helpers ------------------------------------------------------------- */

struct cmd {
    int op;
    const char *name;
    const char *owner; /* NULL: anonymous */
    uint64_t token;
    uint64_t ttl_ms;
    bool force;
    uint64_t revision;
    bool wait;       /* ACQUIRE: queue on conflict */
    uint64_t waiter; /* CANCEL */
};

/* One packed LogEntry (malloc'd). */
struct entry {
    uint8_t *buf;
    size_t len;
};

static struct entry pack_entry(uint64_t time_ms, const struct cmd *cmds, size_t n)
{
    Lockd__LogEntry e = LOCKD__LOG_ENTRY__INIT;
    Lockd__Command *c = calloc(n ? n : 1, sizeof(*c));
    Lockd__Command **p = calloc(n ? n : 1, sizeof(*p));
    assert_non_null(c);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        lockd__command__init(&c[i]);
        c[i].op = (Lockd__Op)cmds[i].op;
        c[i].name = (char *)cmds[i].name;
        c[i].owner = (char *)(cmds[i].owner ? cmds[i].owner : "");
        c[i].token = cmds[i].token;
        c[i].ttl_ms = cmds[i].ttl_ms;
        c[i].force = cmds[i].force;
        c[i].revision = cmds[i].revision;
        c[i].wait = cmds[i].wait;
        c[i].waiter = cmds[i].waiter;
        p[i] = &c[i];
    }
    e.time_ms = time_ms;
    e.n_commands = n;
    e.commands = p;
    /* The payload as the leader proposes it (fsm.h owns the encoding). */
    struct entry out;
    out.len = fsm_entry_size(&e);
    assert_int_equal(out.len % 8, 0);
    assert_true(out.len >= lockd__log_entry__get_packed_size(&e));
    out.buf = malloc(out.len);
    assert_non_null(out.buf);
    fsm_entry_encode(&e, out.buf, out.len);
    free(c);
    free(p);
    return out;
}

/* Applies a one-command entry at index; returns its single result. */
static struct fsm_result apply1(fsm *f, uint64_t index, uint64_t time_ms, struct cmd c)
{
    struct entry e = pack_entry(time_ms, &c, 1);
    const struct fsm_result *res = NULL;
    size_t n = 99;
    assert_int_equal(fsm_apply(f, index, e.buf, e.len, &res, &n), 0);
    free(e.buf);
    assert_int_equal(n, 1);
    assert_non_null(res);
    return res[0];
}

static struct cmd acq(const char *name, const char *owner, uint64_t ttl)
{
    return (struct cmd){.op = ACQ, .name = name, .owner = owner, .ttl_ms = ttl};
}

static struct cmd rel(const char *name, const char *owner, uint64_t token, bool force)
{
    return (struct cmd){.op = REL, .name = name, .owner = owner, .token = token, .force = force};
}

static struct cmd expire(const char *name, uint64_t revision)
{
    return (struct cmd){.op = EXP, .name = name, .revision = revision};
}

static struct cmd rd(const char *name) { return (struct cmd){.op = RD, .name = name}; }

static struct cmd acq_wait(const char *name, const char *owner, uint64_t ttl)
{
    return (struct cmd){.op = ACQ, .name = name, .owner = owner, .ttl_ms = ttl, .wait = true};
}

static struct cmd cancel(const char *name, uint64_t waiter)
{
    return (struct cmd){.op = LOCKD__OP__OP_CANCEL, .name = name, .waiter = waiter};
}

/* Waiter ids are (Raft index << 20 | command position) (lockd.proto). */
#define WAITER_ID(index, pos) ((uint64_t)(index) << 20 | (pos))

static shm_table *new_table(uint32_t cap)
{
    shm_table *t = NULL;
    assert_int_equal(shm_table_create(cap, &t), 0);
    shm_table_set_state(t, SHM_STATE_READY);
    return t;
}

/* A temporary directory for LMDB files; removed with everything in it by
 * the fixture's teardown, which cmocka runs even when the test failed. */
struct tmpdir {
    char dir[64];
};

static void tmpdir_make(struct tmpdir *d)
{
    const char *base = getenv("TMPDIR");
    snprintf(d->dir, sizeof(d->dir), "%s/lockd-fsm-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(d->dir));
}

static void tmpdir_remove(struct tmpdir *d)
{
    DIR *dir = opendir(d->dir);
    if (dir == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", d->dir, de->d_name);
        unlink(p);
    }
    closedir(dir);
    rmdir(d->dir);
}

/* Opens (creating) the LMDB file `name` inside d. */
static store *open_store(const struct tmpdir *d, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", d->dir, name);
    store *s = NULL;
    assert_int_equal(store_open(path, 1000, &s), 0);
    return s;
}

static fsm *new_fsm(shm_table *t, store *s)
{
    fsm *f = NULL;
    assert_int_equal(fsm_create(t, s, &f), 0);
    assert_non_null(f);
    return f;
}

static shm_lock lookup(shm_table *t, const char *name)
{
    shm_lock l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(shm_table_lookup(t, name, strlen(name), &l), 0);
    return l;
}

static bool held(shm_table *t, const char *name)
{
    shm_lock l;
    return shm_table_lookup(t, name, strlen(name), &l) == 0;
}

/* Whole-table dump sorted by name, for comparing two replicas. */
struct dump {
    shm_lock *v;
    size_t n, cap;
};

static int dump_one(const shm_lock *rec, void *arg)
{
    struct dump *d = arg;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->v = realloc(d->v, d->cap * sizeof(*d->v));
        assert_non_null(d->v);
    }
    d->v[d->n++] = *rec;
    return 0;
}

static int cmp_lock_name(const void *a, const void *b)
{
    return strcmp(((const shm_lock *)a)->name, ((const shm_lock *)b)->name);
}

static struct dump dump_table(const shm_table *t)
{
    struct dump d = {0};
    assert_int_equal(shm_table_foreach(t, dump_one, &d), 0);
    if (d.n > 1)
        qsort(d.v, d.n, sizeof(*d.v), cmp_lock_name);
    return d;
}

static void assert_same_lock(const shm_lock *a, const shm_lock *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->name_len, b->name_len);
    assert_string_equal(a->owner, b->owner);
    assert_int_equal(a->owner_len, b->owner_len);
    assert_int_equal(a->token, b->token);
    assert_int_equal(a->acquired_at_ms, b->acquired_at_ms);
    assert_int_equal(a->renewed_at_ms, b->renewed_at_ms);
    assert_int_equal(a->ttl_ms, b->ttl_ms);
    assert_int_equal(a->revision, b->revision);
}

static void assert_same_tables(const shm_table *a, const shm_table *b)
{
    struct dump da = dump_table(a), db = dump_table(b);
    assert_int_equal(da.n, db.n);
    for (size_t i = 0; i < da.n; i++)
        assert_same_lock(&da.v[i], &db.v[i]);
    free(da.v);
    free(db.v);
}

/* Waiters of an FSM, sorted by (name, id). */
struct wcopy {
    char name[LOCKD_NAME_MAX + 1];
    struct waiter w;
};

struct wlist {
    struct wcopy *v;
    size_t n, cap;
};

static int collect_waiter(const char *name, size_t len, const struct waiter *w, void *arg)
{
    struct wlist *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
    }
    memcpy(l->v[l->n].name, name, len);
    l->v[l->n].name[len] = '\0';
    l->v[l->n].w = *w;
    l->n++;
    return 0;
}

static int cmp_waiter(const void *a, const void *b)
{
    const struct wcopy *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->w.id < y->w.id ? -1 : x->w.id > y->w.id;
}

static void assert_same_waiters(fsm *a, fsm *b)
{
    assert_int_equal(fsm_waiters(a), fsm_waiters(b));
    struct wlist la = {0}, lb = {0};
    fsm_foreach_waiter(a, collect_waiter, &la);
    fsm_foreach_waiter(b, collect_waiter, &lb);
    assert_int_equal(la.n, lb.n);
    assert_int_equal(la.n, fsm_waiters(a));
    if (la.n > 1) {
        qsort(la.v, la.n, sizeof(*la.v), cmp_waiter);
        qsort(lb.v, lb.n, sizeof(*lb.v), cmp_waiter);
    }
    for (size_t i = 0; i < la.n; i++) {
        assert_string_equal(la.v[i].name, lb.v[i].name);
        assert_int_equal(la.v[i].w.id, lb.v[i].w.id);
        assert_string_equal(la.v[i].w.owner, lb.v[i].w.owner);
        assert_int_equal(la.v[i].w.ttl_ms, lb.v[i].w.ttl_ms);
    }
    free(la.v);
    free(lb.v);
}

static void assert_same_fsm(fsm *a, const shm_table *ta, fsm *b, const shm_table *tb)
{
    assert_same_tables(ta, tb);
    assert_int_equal(fsm_next_token(a), fsm_next_token(b));
    assert_int_equal(fsm_applied_index(a), fsm_applied_index(b));
    assert_same_waiters(a, b);
}

static uint64_t rng_next(uint64_t *s) /* xorshift64* */
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* A deterministic workload of n entries (index i+1 at out[i]) over a few
 * names and owners, with several commands per entry, hitting every op and
 * every branch (conflicts, renewals, token checks, stale expiries). */
static struct entry *make_workload(size_t n, uint64_t seed)
{
    static const char *names[] = {"a", "b", "c", "d", "e", "lock.1", "lock-2", "$x_y"};
    static const char *owners[] = {NULL, "alice", "bob", "carol:1@host"};
    struct entry *out = calloc(n, sizeof(*out));
    assert_non_null(out);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t index = i + 1;
        struct cmd cmds[4];
        size_t k = 1 + rng_next(&s) % 4;
        for (size_t j = 0; j < k; j++) {
            uint64_t r = rng_next(&s);
            struct cmd *c = &cmds[j];
            memset(c, 0, sizeof(*c));
            c->name = names[r % 8];
            c->owner = owners[(r >> 8) % 4];
            switch ((r >> 16) % 10) {
            case 0: case 1: case 2:
                c->op = ACQ;
                c->ttl_ms = (r >> 24) % 3 == 0 ? 0 : 1000 * ((r >> 26) % 30 + 1);
                c->wait = (r >> 40) % 3 == 0;
                break;
            case 3: case 4:
                c->op = REL;
                c->token = (r >> 24) % 3 == 0 ? (r >> 28) % 8 : 0;
                c->force = (r >> 32) % 7 == 0;
                break;
            case 5: case 6:
                c->op = EXP;
                c->revision = index - 1 - (r >> 24) % 4 % index;
                break;
            case 7:
                /* A waiter queued by one of the last few entries (or none). */
                c->op = LOCKD__OP__OP_CANCEL;
                c->waiter = WAITER_ID(index - 1 - (r >> 24) % 4 % index, (r >> 28) % 4);
                break;
            case 8:
                if ((r >> 24) % 50 == 0) {
                    c->op = LOCKD__OP__OP_RESET_WAITERS;
                    c->name = "";
                    c->owner = NULL;
                    break;
                }
                /* fall through */
            default:
                c->op = RD;
                break;
            }
        }
        out[i] = pack_entry(T0 + 10 * index + (rng_next(&s) % 10), cmds, k);
    }
    return out;
}

static void free_workload(struct entry *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i].buf);
    free(w);
}

static void apply_range(fsm *f, const struct entry *w, size_t from_index, size_t to_index)
{
    for (size_t idx = from_index; idx <= to_index; idx++) {
        const struct fsm_result *res;
        size_t n;
        assert_int_equal(fsm_apply(f, idx, w[idx - 1].buf, w[idx - 1].len, &res, &n), 0);
    }
}

/* The single-FSM fixture most tests use: table of 1000, LMDB store. */
struct fx {
    struct tmpdir d;
    shm_table *t;
    store *s;
    fsm *f;
};

static int fx_setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    tmpdir_make(&x->d);
    x->t = new_table(1000);
    x->s = open_store(&x->d, "locks.mdb");
    x->f = new_fsm(x->t, x->s);
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *x = *state;
    fsm_destroy(x->f);
    store_close(x->s);
    shm_table_destroy(x->t);
    tmpdir_remove(&x->d);
    free(x);
    return 0;
}

/* ---- acquire ------------------------------------------------------------- */

static void test_acquire_free_names_gets_tokens_1_2_3_strictly_increasing_across_names(void **state)
{
    struct fx *x = *state;
    const char *names[] = {"alpha", "beta", "gamma", "delta"};
    for (uint64_t i = 0; i < 4; i++) {
        struct fsm_result r = apply1(x->f, i + 1, T0 + i, acq(names[i], i % 2 ? "own" : NULL, 0));
        assert_int_equal(r.status, OK);
        assert_true(r.has_lock);
        assert_null(r.error);
        assert_int_equal(r.lock.token, i + 1);
        assert_string_equal(r.lock.name, names[i]);
        assert_int_equal(r.lock.acquired_at_ms, T0 + i);
        assert_int_equal(r.lock.renewed_at_ms, T0 + i);
        assert_int_equal(r.lock.revision, i + 1);
        assert_int_equal(lookup(x->t, names[i]).token, i + 1);
    }
    assert_int_equal(fsm_next_token(x->f), 5);
    assert_int_equal(fsm_applied_index(x->f), 4);
    /* Released and re-acquired: a new, larger token, never the old one. */
    assert_int_equal(apply1(x->f, 5, T0 + 5, rel("alpha", NULL, 0, false)).status, OK);
    struct fsm_result r = apply1(x->f, 6, T0 + 6, acq("alpha", NULL, 0));
    assert_int_equal(r.status, OK);
    assert_int_equal(r.lock.token, 5);
}

static void test_acquire_stores_owner_and_ttl(void **state)
{
    struct fx *x = *state;
    struct fsm_result r = apply1(x->f, 1, T0, acq("n", "carol:1@host", 30000));
    assert_int_equal(r.status, OK);
    shm_lock l = lookup(x->t, "n");
    assert_string_equal(l.owner, "carol:1@host");
    assert_int_equal(l.owner_len, 12);
    assert_int_equal(l.ttl_ms, 30000);
    assert_same_lock(&l, &r.lock);
}

static void test_anonymous_duplicate_acquire_conflicts_and_reports_holder(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", NULL, 0)).status, OK);
    struct fsm_result r = apply1(x->f, 2, T0 + 7, acq("n", NULL, 0));
    assert_int_equal(r.status, CONFLICT);
    assert_true(r.has_lock);
    assert_int_equal(r.lock.token, 1);
    assert_int_equal(r.lock.owner_len, 0);
    assert_int_equal(r.lock.acquired_at_ms, T0);
    /* Nothing changed, no token consumed. */
    shm_lock l = lookup(x->t, "n");
    assert_int_equal(l.revision, 1);
    assert_int_equal(l.renewed_at_ms, T0);
    assert_int_equal(fsm_next_token(x->f), 2);
    assert_int_equal(fsm_applied_index(x->f), 2);
}

static void test_same_owner_reacquire_keeps_token_and_renews_time_ttl_revision(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("other", NULL, 0)).status, OK);
    assert_int_equal(apply1(x->f, 2, T0 + 10, acq("n", "alice", 5000)).status, OK);
    struct fsm_result r = apply1(x->f, 9, T0 + 900, acq("n", "alice", 7000));
    assert_int_equal(r.status, OK);
    assert_true(r.has_lock);
    assert_int_equal(r.lock.token, 2);
    assert_int_equal(r.lock.acquired_at_ms, T0 + 10);
    assert_int_equal(r.lock.renewed_at_ms, T0 + 900);
    assert_int_equal(r.lock.ttl_ms, 7000);
    assert_int_equal(r.lock.revision, 9);
    shm_lock l = lookup(x->t, "n");
    assert_same_lock(&l, &r.lock);
    assert_int_equal(fsm_next_token(x->f), 3); /* renewal consumes no token */
}

static void test_other_owner_or_anonymous_acquire_of_owned_lock_conflicts(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", "alice", 5000)).status, OK);
    struct fsm_result r = apply1(x->f, 2, T0 + 1, acq("n", "bob", 5000));
    assert_int_equal(r.status, CONFLICT);
    assert_true(r.has_lock);
    assert_string_equal(r.lock.owner, "alice");
    assert_int_equal(r.lock.token, 1);
    r = apply1(x->f, 3, T0 + 2, acq("n", NULL, 0));
    assert_int_equal(r.status, CONFLICT);
    assert_string_equal(r.lock.owner, "alice");
    /* An owner that is a prefix of the holder is another owner. */
    assert_int_equal(apply1(x->f, 4, T0 + 3, acq("n", "alic", 0)).status, CONFLICT);
    /* And an owner cannot take an anonymous lock either. */
    assert_int_equal(apply1(x->f, 5, T0 + 4, acq("anon", NULL, 0)).status, OK);
    assert_int_equal(apply1(x->f, 6, T0 + 5, acq("anon", "alice", 0)).status, CONFLICT);
    shm_lock l = lookup(x->t, "n");
    assert_int_equal(l.revision, 1);
    assert_int_equal(fsm_next_token(x->f), 3);
}

/* ---- release ------------------------------------------------------------- */

static void test_release_of_unheld_name_is_not_found(void **state)
{
    struct fx *x = *state;
    struct fsm_result r = apply1(x->f, 1, T0, rel("nope", NULL, 0, false));
    assert_int_equal(r.status, NOT_FOUND);
    assert_false(r.has_lock);
    r = apply1(x->f, 2, T0, rel("nope", "alice", 0, true));
    assert_int_equal(r.status, NOT_FOUND);
    assert_int_equal(fsm_applied_index(x->f), 2);
}

static void test_anonymous_lock_is_released_by_anyone(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", NULL, 0)).status, OK);
    assert_int_equal(apply1(x->f, 2, T0, rel("n", "stranger", 0, false)).status, OK);
    assert_false(held(x->t, "n"));
    assert_int_equal(apply1(x->f, 3, T0, acq("n", NULL, 0)).status, OK);
    struct fsm_result r = apply1(x->f, 4, T0, rel("n", NULL, 0, false));
    assert_int_equal(r.status, OK);
    assert_false(held(x->t, "n"));
    assert_int_equal(apply1(x->f, 5, T0, rel("n", NULL, 0, false)).status, NOT_FOUND);
}

static void test_owned_lock_release_by_other_owner_or_no_owner_conflicts(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", "alice", 0)).status, OK);
    struct fsm_result r = apply1(x->f, 2, T0, rel("n", "bob", 0, false));
    assert_int_equal(r.status, CONFLICT);
    assert_true(r.has_lock);
    assert_string_equal(r.lock.owner, "alice");
    r = apply1(x->f, 3, T0, rel("n", NULL, 0, false));
    assert_int_equal(r.status, CONFLICT);
    assert_true(r.has_lock);
    /* Other owner with the right token is still another owner. */
    assert_int_equal(apply1(x->f, 4, T0, rel("n", "bob", 1, false)).status, CONFLICT);
    assert_true(held(x->t, "n"));
    r = apply1(x->f, 5, T0, rel("n", "alice", 0, false));
    assert_int_equal(r.status, OK);
    assert_false(held(x->t, "n"));
}

static void test_release_with_wrong_token_conflicts_with_token_mismatch(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", "alice", 0)).status, OK);
    assert_int_equal(apply1(x->f, 2, T0, acq("anon", NULL, 0)).status, OK);
    struct fsm_result r = apply1(x->f, 3, T0, rel("n", "alice", 2, false));
    assert_int_equal(r.status, CONFLICT);
    assert_true(r.has_lock);
    assert_non_null(r.error);
    assert_string_equal(r.error, "Token mismatch");
    assert_int_equal(r.lock.token, 1);
    r = apply1(x->f, 4, T0, rel("anon", NULL, 1, false));
    assert_int_equal(r.status, CONFLICT);
    assert_string_equal(r.error, "Token mismatch");
    assert_true(held(x->t, "n"));
    assert_true(held(x->t, "anon"));
    /* The right token releases; the error of the previous result is gone. */
    r = apply1(x->f, 5, T0, rel("n", "alice", 1, false));
    assert_int_equal(r.status, OK);
    assert_null(r.error);
    assert_int_equal(apply1(x->f, 6, T0, rel("anon", NULL, 2, false)).status, OK);
    assert_int_equal(shm_table_count(x->t), 0);
}

static void test_force_release_ignores_owner_and_token(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("a", "alice", 0)).status, OK);
    assert_int_equal(apply1(x->f, 2, T0, acq("b", "alice", 0)).status, OK);
    assert_int_equal(apply1(x->f, 3, T0, acq("c", "alice", 0)).status, OK);
    assert_int_equal(apply1(x->f, 4, T0, rel("a", NULL, 0, true)).status, OK);
    assert_int_equal(apply1(x->f, 5, T0, rel("b", "bob", 0, true)).status, OK);
    assert_int_equal(apply1(x->f, 6, T0, rel("c", "bob", 99, true)).status, OK);
    assert_int_equal(shm_table_count(x->t), 0);
}

/* ---- expire and read ----------------------------------------------------- */

static void test_expire_with_current_revision_and_ttl_removes_lock(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", "alice", 1000)).status, OK);
    struct fsm_result r = apply1(x->f, 2, T0 + 1000, expire("n", 1));
    assert_int_equal(r.status, OK);
    assert_false(held(x->t, "n"));
    assert_int_equal(apply1(x->f, 3, T0 + 1001, expire("n", 1)).status, NOT_FOUND);
}

static void test_expire_with_stale_revision_or_no_ttl_is_noop(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", "alice", 1000)).status, OK);
    assert_int_equal(apply1(x->f, 5, T0 + 900, acq("n", "alice", 1000)).status, OK); /* renewal */
    struct fsm_result r = apply1(x->f, 6, T0 + 1000, expire("n", 1));
    assert_int_equal(r.status, NOT_FOUND);
    shm_lock l = lookup(x->t, "n");
    assert_int_equal(l.revision, 5);
    assert_int_equal(l.token, 1);
    /* A lock without TTL is never expired, even at its revision. */
    assert_int_equal(apply1(x->f, 7, T0, acq("forever", NULL, 0)).status, OK);
    assert_int_equal(apply1(x->f, 8, T0 + 99999, expire("forever", 7)).status, NOT_FOUND);
    assert_true(held(x->t, "forever"));
    /* The current revision does expire the renewed lease. */
    assert_int_equal(apply1(x->f, 9, T0 + 1900, expire("n", 5)).status, OK);
    assert_false(held(x->t, "n"));
}

static void test_read_returns_lock_or_not_found_without_changing_it(void **state)
{
    struct fx *x = *state;
    struct fsm_result a = apply1(x->f, 1, T0, acq("n", "alice", 3000));
    struct fsm_result r = apply1(x->f, 2, T0 + 50, rd("n"));
    assert_int_equal(r.status, OK);
    assert_true(r.has_lock);
    assert_same_lock(&r.lock, &a.lock);
    r = apply1(x->f, 3, T0 + 60, rd("missing"));
    assert_int_equal(r.status, NOT_FOUND);
    assert_false(r.has_lock);
    shm_lock l = lookup(x->t, "n");
    assert_same_lock(&l, &a.lock);
    assert_int_equal(fsm_next_token(x->f), 2);
}

/* ---- limits and bad input ------------------------------------------------- */

static void test_full_table_returns_full_and_consumes_no_token(void **state)
{
    shm_table *t = new_table(2);
    fsm *f = new_fsm(t, NULL);
    assert_int_equal(apply1(f, 1, T0, acq("a", NULL, 0)).status, OK);
    assert_int_equal(apply1(f, 2, T0, acq("b", "o", 0)).status, OK);
    struct fsm_result r = apply1(f, 3, T0, acq("c", NULL, 0));
    assert_int_equal(r.status, FULL);
    assert_false(held(t, "c"));
    assert_int_equal(fsm_next_token(f), 3);
    /* A renewal of a held name still works at capacity. */
    assert_int_equal(apply1(f, 4, T0 + 1, acq("b", "o", 500)).status, OK);
    /* Once there is room, the next token is the one FULL did not use. */
    assert_int_equal(apply1(f, 5, T0, rel("a", NULL, 0, false)).status, OK);
    r = apply1(f, 6, T0, acq("c", NULL, 0));
    assert_int_equal(r.status, OK);
    assert_int_equal(r.lock.token, 3);
    fsm_destroy(f);
    shm_table_destroy(t);
}

static void test_invalid_command_is_bad_request_and_changes_nothing(void **state)
{
    struct fx *x = *state;
    char long_name[LOCKD_NAME_MAX + 2];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    char long_owner[LOCKD_OWNER_MAX + 2];
    memset(long_owner, 'o', sizeof(long_owner) - 1);
    long_owner[sizeof(long_owner) - 1] = '\0';
    struct cmd cmds[] = {
        acq("", NULL, 0),               /* empty name */
        acq("has space", NULL, 0),      /* bad byte */
        acq("caf\xc3\xa9", NULL, 0),    /* non-ascii */
        acq(long_name, NULL, 0),        /* 129 bytes */
        acq("ok", "bad owner", 0),      /* bad owner byte */
        acq("ok", long_owner, 0),       /* 129-byte owner */
        acq("ok", NULL, (uint64_t)UINT32_MAX + 1), /* ttl too large */
        {.op = LOCKD__OP__OP_NONE, .name = "ok"},
        {.op = 77, .name = "ok"},       /* an op this version does not know */
        rel("has/slash", NULL, 0, true),
        expire("a\x01", 1),
        rd("a b"),
        acq("ok", "alice", 1000),       /* the one valid command */
    };
    size_t n_cmds = sizeof(cmds) / sizeof(cmds[0]);
    struct entry e = pack_entry(T0, cmds, n_cmds);
    const struct fsm_result *res;
    size_t n;
    assert_int_equal(fsm_apply(x->f, 1, e.buf, e.len, &res, &n), 0);
    free(e.buf);
    assert_int_equal(n, n_cmds);
    for (size_t i = 0; i + 1 < n_cmds; i++) {
        assert_int_equal(res[i].status, BAD);
        assert_false(res[i].has_lock);
    }
    assert_int_equal(res[n_cmds - 1].status, OK);
    assert_int_equal(res[n_cmds - 1].lock.token, 1);
    assert_int_equal(shm_table_count(x->t), 1);
    assert_int_equal(fsm_applied_index(x->f), 1);
}

static void test_undecodable_payload_is_noop_but_advances_applied_index(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", NULL, 0)).status, OK);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80};
    const struct fsm_result *res;
    size_t n = 99;
    assert_int_equal(fsm_apply(x->f, 2, garbage, sizeof(garbage), &res, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fsm_applied_index(x->f), 2);
    /* A valid entry cut inside its message: the length header promises
     * more than the payload holds. */
    struct cmd c = acq("other", "alice", 1000);
    struct entry e = pack_entry(T0, &c, 1);
    /* Payload layout (fsm.c): 4-byte little-endian message length, the
     * packed LogEntry, zero padding to a multiple of 8. */
    size_t msg = (size_t)e.buf[0] | (size_t)e.buf[1] << 8;
    assert_true(msg > 0 && msg < e.len);
    assert_int_equal(fsm_apply(x->f, 3, e.buf, 4 + msg - 1, &res, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fsm_applied_index(x->f), 3);
    /* A plausible header in front of bytes that are not a LogEntry. */
    uint8_t bad[16] = {8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(fsm_apply(x->f, 4, bad, sizeof(bad), &res, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fsm_applied_index(x->f), 4);
    /* Shorter than any header. */
    assert_int_equal(fsm_apply(x->f, 5, bad, 2, &res, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fsm_applied_index(x->f), 5);
    free(e.buf);
    assert_int_equal(shm_table_count(x->t), 1);
    assert_true(held(x->t, "n"));
    assert_int_equal(fsm_next_token(x->f), 2);
    /* The next entry applies normally. */
    assert_int_equal(apply1(x->f, 6, T0, acq("m", NULL, 0)).lock.token, 2);
}

static void test_empty_entry_applies_with_no_results(void **state)
{
    struct fx *x = *state;
    struct entry e = pack_entry(T0, NULL, 0);
    const struct fsm_result *res;
    size_t n = 99;
    assert_int_equal(fsm_apply(x->f, 1, e.buf, e.len, &res, &n), 0);
    free(e.buf);
    assert_int_equal(n, 0);
    assert_int_equal(fsm_applied_index(x->f), 1);
}

/* ---- batches, replay ------------------------------------------------------ */

static void test_commands_of_one_entry_apply_in_order(void **state)
{
    struct fx *x = *state;
    struct cmd cmds[] = {
        acq("n", "alice", 0),     /* OK token 1 */
        acq("n", "bob", 0),       /* CONFLICT: sees the first */
        rel("n", "alice", 0, 0),  /* OK */
        acq("n", "bob", 2000),    /* OK token 2 */
        rd("n"),                  /* bob's */
    };
    struct entry e = pack_entry(T0, cmds, 5);
    const struct fsm_result *res;
    size_t n;
    assert_int_equal(fsm_apply(x->f, 1, e.buf, e.len, &res, &n), 0);
    free(e.buf);
    assert_int_equal(n, 5);
    assert_int_equal(res[0].status, OK);
    assert_int_equal(res[0].lock.token, 1);
    assert_int_equal(res[1].status, CONFLICT);
    assert_string_equal(res[1].lock.owner, "alice");
    assert_int_equal(res[2].status, OK);
    assert_int_equal(res[3].status, OK);
    assert_int_equal(res[3].lock.token, 2);
    assert_int_equal(res[4].status, OK);
    assert_string_equal(res[4].lock.owner, "bob");
    assert_int_equal(res[4].lock.revision, 1);
}

static void test_entry_at_or_below_applied_index_is_skipped(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", NULL, 0)).status, OK);
    assert_int_equal(apply1(x->f, 2, T0, acq("m", NULL, 0)).status, OK);
    struct dump before = dump_table(x->t);
    struct cmd c = rel("n", NULL, 0, true);
    struct entry e = pack_entry(T0, &c, 1);
    struct cmd c2 = acq("p", NULL, 0);
    struct entry e2 = pack_entry(T0, &c2, 1);
    const struct fsm_result *res;
    size_t n = 99;
    for (uint64_t idx = 0; idx <= 2; idx++) {
        n = 99;
        assert_int_equal(fsm_apply(x->f, idx, e.buf, e.len, &res, &n), 0);
        assert_int_equal(n, 0);
        n = 99;
        assert_int_equal(fsm_apply(x->f, idx, e2.buf, e2.len, &res, &n), 0);
        assert_int_equal(n, 0);
    }
    free(e.buf);
    free(e2.buf);
    assert_int_equal(fsm_applied_index(x->f), 2);
    assert_int_equal(fsm_next_token(x->f), 3);
    struct dump after = dump_table(x->t);
    assert_int_equal(before.n, after.n);
    for (size_t i = 0; i < before.n; i++)
        assert_same_lock(&before.v[i], &after.v[i]);
    free(before.v);
    free(after.v);
}

struct change_log {
    int calls;
    char last_name[LOCKD_NAME_MAX + 1];
    bool last_was_null;
    shm_lock last;
};

static void on_change(void *arg, const char *name, size_t len, const shm_lock *rec)
{
    struct change_log *c = arg;
    c->calls++;
    memcpy(c->last_name, name, len);
    c->last_name[len] = '\0';
    c->last_was_null = rec == NULL;
    if (rec != NULL)
        c->last = *rec;
}

static void test_change_callback_sees_acquire_renew_and_release_but_not_refusals(void **state)
{
    struct fx *x = *state;
    struct change_log cl = {0};
    fsm_set_change_cb(x->f, on_change, &cl);
    apply1(x->f, 1, T0, acq("n", "alice", 1000));
    assert_int_equal(cl.calls, 1);
    assert_string_equal(cl.last_name, "n");
    assert_false(cl.last_was_null);
    assert_int_equal(cl.last.revision, 1);
    apply1(x->f, 2, T0, acq("n", "alice", 1000));
    assert_int_equal(cl.calls, 2);
    assert_int_equal(cl.last.revision, 2);
    apply1(x->f, 3, T0, acq("n", "bob", 1000));     /* conflict */
    apply1(x->f, 4, T0, rel("n", "bob", 0, false)); /* conflict */
    apply1(x->f, 5, T0, rd("n"));
    apply1(x->f, 6, T0, expire("n", 1));            /* stale */
    assert_int_equal(cl.calls, 2);
    apply1(x->f, 7, T0, expire("n", 2));
    assert_int_equal(cl.calls, 3);
    assert_true(cl.last_was_null);
    assert_string_equal(cl.last_name, "n");
}

/* ---- wait queues (API.md: FIFO per lock, handed over in the same step) --- */

static void test_wait_on_free_lock_acquires_immediately(void **state)
{
    struct fx *x = *state;
    struct fsm_result r = apply1(x->f, 1, T0, acq_wait("n", "alice", 1000));
    assert_int_equal(r.status, OK);
    assert_int_equal(r.lock.token, 1);
    assert_int_equal(fsm_waiters(x->f), 0);
    /* The holder renewing with wait renews, it does not queue behind itself. */
    r = apply1(x->f, 2, T0 + 5, acq_wait("n", "alice", 2000));
    assert_int_equal(r.status, OK);
    assert_int_equal(r.lock.token, 1);
    assert_int_equal(r.lock.revision, 2);
    assert_int_equal(fsm_waiters(x->f), 0);
}

static void test_release_hands_lock_to_waiters_in_fifo_order(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", "alice", 0)).status, OK);
    struct cmd two[] = {acq_wait("n", "bob", 5000), acq_wait("n", NULL, 0)};
    struct entry e = pack_entry(T0 + 1, two, 2);
    const struct fsm_result *res;
    size_t n;
    assert_int_equal(fsm_apply(x->f, 2, e.buf, e.len, &res, &n), 0);
    free(e.buf);
    assert_int_equal(n, 2);
    assert_int_equal(res[0].status, QUEUED);
    assert_int_equal(res[0].waiter_id, WAITER_ID(2, 0));
    assert_true(res[0].has_lock); /* the holder */
    assert_string_equal(res[0].lock.owner, "alice");
    assert_int_equal(res[1].status, QUEUED);
    assert_int_equal(res[1].waiter_id, WAITER_ID(2, 1));
    struct fsm_result r = apply1(x->f, 3, T0 + 2, acq_wait("n", "carol", 0));
    assert_int_equal(r.status, QUEUED);
    assert_int_equal(r.waiter_id, WAITER_ID(3, 0));
    assert_int_equal(fsm_waiters(x->f), 3);
    /* A plain acquire does not queue and does not jump the queue. */
    assert_int_equal(apply1(x->f, 4, T0 + 3, acq("n", "dave", 0)).status, CONFLICT);
    assert_int_equal(fsm_waiters(x->f), 3);

    /* alice releases: bob has it in the same step, with a new token. */
    r = apply1(x->f, 10, T0 + 100, rel("n", "alice", 0, false));
    assert_int_equal(r.status, OK);
    assert_true(r.granted);
    assert_int_equal(r.waiter_id, WAITER_ID(2, 0));
    assert_string_equal(r.grant.name, "n");
    assert_string_equal(r.grant.owner, "bob");
    assert_int_equal(r.grant.token, 2);
    assert_int_equal(r.grant.ttl_ms, 5000);
    assert_int_equal(r.grant.acquired_at_ms, T0 + 100);
    assert_int_equal(r.grant.renewed_at_ms, T0 + 100);
    assert_int_equal(r.grant.revision, 10);
    shm_lock l = lookup(x->t, "n");
    assert_same_lock(&l, &r.grant);
    assert_int_equal(fsm_waiters(x->f), 2);
    /* Nobody slips in: the lock is bob's before any later command. */
    assert_int_equal(apply1(x->f, 11, T0 + 101, acq("n", "dave", 0)).status, CONFLICT);

    /* bob releases: the anonymous waiter; then carol. */
    r = apply1(x->f, 12, T0 + 102, rel("n", "bob", 2, false));
    assert_true(r.granted);
    assert_int_equal(r.grant.owner_len, 0);
    assert_int_equal(r.grant.token, 3);
    r = apply1(x->f, 13, T0 + 103, rel("n", "anyone", 0, false));
    assert_true(r.granted);
    assert_string_equal(r.grant.owner, "carol");
    assert_int_equal(r.grant.token, 4);
    assert_int_equal(fsm_waiters(x->f), 0);
    /* The last release leaves the lock free. */
    r = apply1(x->f, 14, T0 + 104, rel("n", "carol", 0, false));
    assert_int_equal(r.status, OK);
    assert_false(r.granted);
    assert_false(held(x->t, "n"));
    assert_int_equal(fsm_next_token(x->f), 5);
}

static void test_refused_release_does_not_serve_waiters(void **state)
{
    struct fx *x = *state;
    apply1(x->f, 1, T0, acq("n", "alice", 0));
    assert_int_equal(apply1(x->f, 2, T0, acq_wait("n", "bob", 0)).status, QUEUED);
    struct fsm_result r = apply1(x->f, 3, T0, rel("n", "bob", 0, false));
    assert_int_equal(r.status, CONFLICT);
    assert_false(r.granted);
    r = apply1(x->f, 4, T0, rel("n", "alice", 99, false));
    assert_int_equal(r.status, CONFLICT);
    assert_false(r.granted);
    assert_string_equal(lookup(x->t, "n").owner, "alice");
    assert_int_equal(fsm_waiters(x->f), 1);
    /* force does serve it. */
    r = apply1(x->f, 5, T0, rel("n", NULL, 0, true));
    assert_true(r.granted);
    assert_string_equal(r.grant.owner, "bob");
}

static void test_expiry_hands_lock_to_first_waiter_with_its_own_ttl(void **state)
{
    struct fx *x = *state;
    struct change_log cl = {0};
    apply1(x->f, 1, T0, acq("n", "alice", 1000));
    assert_int_equal(apply1(x->f, 2, T0 + 10, acq_wait("n", "bob", 7000)).status, QUEUED);
    fsm_set_change_cb(x->f, on_change, &cl);
    /* A stale expiry serves nobody. */
    struct fsm_result r = apply1(x->f, 3, T0 + 999, expire("n", 2));
    assert_int_equal(r.status, NOT_FOUND);
    assert_false(r.granted);
    r = apply1(x->f, 4, T0 + 1000, expire("n", 1));
    assert_int_equal(r.status, OK);
    assert_true(r.granted);
    assert_string_equal(r.grant.owner, "bob");
    assert_int_equal(r.grant.ttl_ms, 7000);
    assert_int_equal(r.grant.revision, 4);
    assert_int_equal(r.grant.token, 2);
    /* Observers see the new holder (its lease must be timed), not a release. */
    assert_int_equal(cl.calls, 1);
    assert_false(cl.last_was_null);
    assert_string_equal(cl.last.owner, "bob");
    assert_int_equal(cl.last.revision, 4);
}

static void test_cancel_removes_a_waiter_and_unknown_waiter_is_not_found(void **state)
{
    struct fx *x = *state;
    apply1(x->f, 1, T0, acq("n", "alice", 0));
    assert_int_equal(apply1(x->f, 2, T0, acq_wait("n", "bob", 0)).status, QUEUED);
    assert_int_equal(apply1(x->f, 3, T0, acq_wait("n", "carol", 0)).status, QUEUED);
    struct fsm_result r = apply1(x->f, 4, T0, cancel("n", WAITER_ID(2, 0)));
    assert_int_equal(r.status, OK);
    assert_int_equal(r.waiter_id, WAITER_ID(2, 0));
    assert_int_equal(fsm_waiters(x->f), 1);
    assert_int_equal(apply1(x->f, 5, T0, cancel("n", WAITER_ID(2, 0))).status, NOT_FOUND);
    assert_int_equal(apply1(x->f, 6, T0, cancel("other", WAITER_ID(3, 0))).status, NOT_FOUND);
    assert_int_equal(apply1(x->f, 7, T0, cancel("n", 12345)).status, NOT_FOUND);
    /* The cancelled waiter is skipped: carol is next. */
    r = apply1(x->f, 8, T0, rel("n", "alice", 0, false));
    assert_true(r.granted);
    assert_string_equal(r.grant.owner, "carol");
    assert_int_equal(fsm_waiters(x->f), 0);
}

static void test_reset_waiters_drops_every_queue(void **state)
{
    struct fx *x = *state;
    apply1(x->f, 1, T0, acq("a", "alice", 0));
    apply1(x->f, 2, T0, acq("b", "alice", 0));
    apply1(x->f, 3, T0, acq_wait("a", "bob", 0));
    apply1(x->f, 4, T0, acq_wait("b", "bob", 0));
    apply1(x->f, 5, T0, acq_wait("b", "carol", 0));
    assert_int_equal(fsm_waiters(x->f), 3);
    struct cmd reset = {.op = LOCKD__OP__OP_RESET_WAITERS, .name = ""};
    struct fsm_result r = apply1(x->f, 6, T0, reset);
    assert_int_equal(r.status, OK);
    assert_int_equal(fsm_waiters(x->f), 0);
    r = apply1(x->f, 7, T0, rel("b", "alice", 0, false));
    assert_int_equal(r.status, OK);
    assert_false(r.granted);
    assert_false(held(x->t, "b"));
    assert_true(held(x->t, "a"));
}

static void test_waiters_survive_restart_from_the_store(void **state)
{
    struct fx *x = *state;
    apply1(x->f, 1, T0, acq("n", "alice", 0));
    apply1(x->f, 2, T0, acq_wait("n", "bob", 3000));
    apply1(x->f, 3, T0, acq_wait("n", "carol", 0));
    apply1(x->f, 4, T0, cancel("n", WAITER_ID(3, 0)));
    apply1(x->f, 5, T0, acq_wait("n", "dave", 0));
    fsm_destroy(x->f);
    x->f = new_fsm(x->t, x->s);
    assert_int_equal(fsm_load(x->f), 0);
    shm_table_set_state(x->t, SHM_STATE_READY);
    assert_int_equal(fsm_waiters(x->f), 2);
    struct fsm_result r = apply1(x->f, 6, T0, rel("n", "alice", 0, false));
    assert_true(r.granted);
    assert_string_equal(r.grant.owner, "bob");
    assert_int_equal(r.grant.ttl_ms, 3000);
    r = apply1(x->f, 7, T0, rel("n", "bob", 0, false));
    assert_true(r.granted);
    assert_string_equal(r.grant.owner, "dave");
    assert_int_equal(fsm_waiters(x->f), 0);
}

/* ---- persistence, determinism -------------------------------------------- */

static int collect_store(const shm_lock *rec, void *arg) { return dump_one(rec, arg); }

static void test_every_applied_entry_is_in_the_store_with_meta(void **state)
{
    struct fx *x = *state;
    apply1(x->f, 1, T0, acq("a", "alice", 1000));
    apply1(x->f, 2, T0, acq("b", NULL, 0));
    apply1(x->f, 3, T0, acq("c", NULL, 0));
    apply1(x->f, 4, T0, rel("b", NULL, 0, false));
    apply1(x->f, 5, T0 + 5, acq("a", "alice", 2000));
    struct store_meta meta;
    struct dump d = {0};
    assert_int_equal(store_load(x->s, &meta, collect_store, &d), 0);
    assert_int_equal(meta.applied_index, 5);
    assert_int_equal(meta.next_token, 4);
    struct dump t = dump_table(x->t);
    assert_int_equal(d.n, 2);
    assert_int_equal(t.n, 2);
    for (size_t i = 0; i < d.n; i++)
        assert_same_lock(&d.v[i], &t.v[i]);
    free(d.v);
    free(t.v);
}

static void test_two_fresh_fsms_fed_the_same_entries_reach_identical_tables(void **state)
{
    const size_t N = 2000;
    struct fx *x = *state;
    struct entry *w = make_workload(N, 0x9e3779b97f4a7c15ull);
    shm_table *ta = new_table(1000), *tb = new_table(1000);
    store *s = open_store(&x->d, "a.mdb");
    fsm *a = new_fsm(ta, s), *b = new_fsm(tb, NULL);
    size_t oks = 0, conflicts = 0, queued = 0, granted = 0;
    for (size_t idx = 1; idx <= N; idx++) {
        const struct fsm_result *ra, *rb;
        size_t na, nb;
        assert_int_equal(fsm_apply(a, idx, w[idx - 1].buf, w[idx - 1].len, &ra, &na), 0);
        /* Copy a's results: b's apply must not share a's buffer. */
        struct fsm_result ca[4];
        assert_true(na <= 4);
        memcpy(ca, ra, na * sizeof(*ra));
        assert_int_equal(fsm_apply(b, idx, w[idx - 1].buf, w[idx - 1].len, &rb, &nb), 0);
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++) {
            assert_int_equal(ca[i].status, rb[i].status);
            assert_int_equal(ca[i].has_lock, rb[i].has_lock);
            if (ca[i].has_lock)
                assert_same_lock(&ca[i].lock, &rb[i].lock);
            assert_int_equal(ca[i].granted, rb[i].granted);
            assert_int_equal(ca[i].waiter_id, rb[i].waiter_id);
            if (ca[i].granted)
                assert_same_lock(&ca[i].grant, &rb[i].grant);
            oks += ca[i].status == OK;
            conflicts += ca[i].status == CONFLICT;
            queued += ca[i].status == QUEUED;
            granted += ca[i].granted;
        }
    }
    /* The workload exercised both outcomes. */
    assert_true(oks > 100);
    assert_true(conflicts > 100);
    assert_true(queued > 20);
    assert_true(granted > 20);
    assert_same_fsm(a, ta, b, tb);
    assert_int_equal(fsm_applied_index(a), N);
    assert_int_equal(fsm_applied_index(b), N);
    fsm_destroy(a);
    fsm_destroy(b);
    store_close(s);
    shm_table_destroy(ta);
    shm_table_destroy(tb);
    free_workload(w, N);
}

/* FSM A applies 1..k with a store and goes away; a new FSM over a new table
 * loads that store and is fed the whole log 1..n again (as raft replays it):
 * entries <= k are skipped, the rest applied. It must end where an FSM that
 * never restarted ends. ready_after_load: mark the table READY after
 * fsm_load, as a test harness could; without it, the table is left LOADING
 * exactly as raftproc leaves it while raft replays the log. */
static void restart_matches_uninterrupted(struct fx *x, bool ready_after_load)
{
    const size_t N = 1500;
    const size_t ks[] = {1, 7, 500, 1499};
    struct entry *w = make_workload(N, 0x1234567ull);
    shm_table *tr = new_table(1000);
    fsm *ref = new_fsm(tr, NULL);
    apply_range(ref, w, 1, N);
    for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
        size_t k = ks[ki];
        char db[32];
        snprintf(db, sizeof(db), "restart-%zu.mdb", k);
        shm_table *ta = new_table(1000);
        store *s = open_store(&x->d, db);
        fsm *a = new_fsm(ta, s);
        apply_range(a, w, 1, k);
        fsm_destroy(a);
        store_close(s);
        shm_table_destroy(ta);

        shm_table *tb = NULL;
        assert_int_equal(shm_table_create(1000, &tb), 0); /* LOADING, as created by the master */
        s = open_store(&x->d, db);
        fsm *b = new_fsm(tb, s);
        assert_int_equal(fsm_load(b), 0);
        assert_int_equal(fsm_applied_index(b), k);
        if (ready_after_load)
            shm_table_set_state(tb, SHM_STATE_READY);
        apply_range(b, w, 1, N); /* 1..k are replays: skipped */
        shm_table_set_state(tb, SHM_STATE_READY);
        assert_same_fsm(ref, tr, b, tb);
        assert_int_equal(fsm_applied_index(b), N);
        fsm_destroy(b);
        store_close(s);
        shm_table_destroy(tb);
    }
    fsm_destroy(ref);
    shm_table_destroy(tr);
    free_workload(w, N);
}

static void test_restart_from_store_then_replay_matches_uninterrupted_run(void **state)
{
    restart_matches_uninterrupted(*state, true);
}

static void test_restart_replay_while_table_is_loading_matches_uninterrupted_run(void **state)
{
    restart_matches_uninterrupted(*state, false);
}

/* fsm_load leaves the table LOADING (fsm.h), and raftproc applies the log
 * replay before consensus marks it READY. The lock rules must still see the
 * loaded locks: the outcome depends only on prior state and the entry. */
static void test_apply_right_after_load_sees_loaded_locks(void **state)
{
    struct fx *x = *state;
    assert_int_equal(apply1(x->f, 1, T0, acq("n", "alice", 0)).status, OK);
    assert_int_equal(fsm_load(x->f), 0); /* as raftproc starts: table LOADING now */
    assert_int_equal(fsm_applied_index(x->f), 1);
    struct fsm_result r = apply1(x->f, 2, T0 + 1, acq("n", "bob", 0));
    shm_table_set_state(x->t, SHM_STATE_READY);
    shm_lock l = lookup(x->t, "n");
    assert_string_equal(l.owner, "alice");
    assert_int_equal(l.token, 1);
    assert_int_equal(r.status, CONFLICT);
}

/* Same rule after a snapshot restore at start: raft 0.15 restores its last
 * snapshot and then replays the log after it, with the table LOADING. */
static void test_apply_right_after_restore_sees_restored_locks(void **state)
{
    struct fx *x = *state;
    shm_table *ts = new_table(100);
    fsm *src = new_fsm(ts, NULL);
    apply1(src, 1, T0, acq("n", "alice", 0));
    void *buf;
    size_t len;
    assert_int_equal(fsm_snapshot(src, &buf, &len), 0);
    fsm_destroy(src);
    shm_table_destroy(ts);
    assert_int_equal(fsm_load(x->f), 0);
    assert_int_equal(fsm_restore(x->f, buf, len, true), 0);
    raft_free(buf);
    struct fsm_result r = apply1(x->f, 2, T0 + 1, rel("n", "alice", 0, false));
    shm_table_set_state(x->t, SHM_STATE_READY);
    assert_int_equal(r.status, OK);
    assert_false(held(x->t, "n"));
}

static void test_load_without_store_starts_empty(void **state)
{
    shm_table *t = new_table(1000);
    fsm *f = new_fsm(t, NULL);
    apply1(f, 1, T0, acq("n", NULL, 0));
    assert_int_equal(fsm_load(f), 0);
    assert_int_equal(shm_table_count(t), 0);
    assert_int_equal(fsm_applied_index(f), 0);
    assert_int_equal(fsm_next_token(f), 1);
    fsm_destroy(f);
    shm_table_destroy(t);
}

/* ---- snapshots ----------------------------------------------------------- */

static void test_snapshot_then_restore_into_fresh_fsm_round_trips(void **state)
{
    const size_t N = 600;
    struct entry *w = make_workload(N, 42);
    shm_table *ta = new_table(1000);
    fsm *a = new_fsm(ta, NULL);
    apply_range(a, w, 1, N);
    /* Make sure there is an owner of full length in the snapshot. */
    char owner[LOCKD_OWNER_MAX + 1];
    memset(owner, 'w', LOCKD_OWNER_MAX);
    owner[LOCKD_OWNER_MAX] = '\0';
    assert_int_equal(apply1(a, N + 1, T0 + 99, acq("zz-long-owner", owner, 12345)).status, OK);
    assert_true(shm_table_count(ta) > 1);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(fsm_snapshot(a, &buf, &len), 0);
    assert_non_null(buf);

    struct fx *x = *state;
    shm_table *tb = new_table(1000);
    store *s = open_store(&x->d, "b.mdb");
    fsm *b = new_fsm(tb, s);
    apply1(b, 1, T0, acq("stale-before-restore", NULL, 0)); /* replaced by the restore */
    assert_int_equal(fsm_restore(b, buf, len, false), 0);
    raft_free(buf);
    shm_table_set_state(tb, SHM_STATE_READY);
    assert_true(fsm_waiters(a) > 0); /* the workload left some queued */
    assert_same_fsm(a, ta, b, tb);
    assert_int_equal(fsm_applied_index(b), N + 1);

    /* The restore was written through to the store. */
    struct store_meta meta;
    struct dump sd = {0};
    assert_int_equal(store_load(s, &meta, collect_store, &sd), 0);
    assert_int_equal(meta.applied_index, N + 1);
    assert_int_equal(meta.next_token, fsm_next_token(a));
    struct dump td = dump_table(ta);
    assert_int_equal(sd.n, td.n);
    for (size_t i = 0; i < sd.n; i++)
        assert_same_lock(&sd.v[i], &td.v[i]);
    free(sd.v);
    free(td.v);

    /* Both continue identically. */
    struct fsm_result ra = apply1(a, N + 2, T0 + 100, acq("after", NULL, 0));
    struct fsm_result rb = apply1(b, N + 2, T0 + 100, acq("after", NULL, 0));
    assert_int_equal(ra.status, OK);
    assert_int_equal(rb.status, OK);
    assert_int_equal(ra.lock.token, rb.lock.token);

    fsm_destroy(a);
    fsm_destroy(b);
    store_close(s);
    shm_table_destroy(ta);
    shm_table_destroy(tb);
    free_workload(w, N);
}

static void test_snapshot_of_empty_state_restores(void **state)
{
    shm_table *ta = new_table(10), *tb = new_table(10);
    fsm *a = new_fsm(ta, NULL), *b = new_fsm(tb, NULL);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(fsm_snapshot(a, &buf, &len), 0);
    assert_int_equal(fsm_restore(b, buf, len, false), 0);
    raft_free(buf);
    assert_int_equal(shm_table_count(tb), 0);
    assert_int_equal(fsm_next_token(b), 1);
    fsm_destroy(a);
    fsm_destroy(b);
    shm_table_destroy(ta);
    shm_table_destroy(tb);
}

static void test_restore_at_start_with_older_snapshot_keeps_the_store(void **state)
{
    struct fx *x = *state;
    /* Snapshot at index 2. */
    apply1(x->f, 1, T0, acq("a", NULL, 0));
    apply1(x->f, 2, T0, acq("b", NULL, 0));
    void *old = NULL;
    size_t old_len = 0;
    assert_int_equal(fsm_snapshot(x->f, &old, &old_len), 0);
    /* The store moves on to index 4. */
    apply1(x->f, 3, T0, rel("a", NULL, 0, false));
    apply1(x->f, 4, T0, acq("c", NULL, 0));

    /* Restart: load the store, then raft hands over its older snapshot. */
    shm_table *t2 = NULL;
    assert_int_equal(shm_table_create(1000, &t2), 0);
    fsm *f2 = new_fsm(t2, x->s);
    assert_int_equal(fsm_load(f2), 0);
    assert_int_equal(fsm_restore(f2, old, old_len, true), 0);
    shm_table_set_state(t2, SHM_STATE_READY);
    assert_same_tables(x->t, t2);
    assert_int_equal(fsm_applied_index(f2), 4);
    assert_int_equal(fsm_next_token(f2), 4);
    assert_false(held(t2, "a"));
    struct store_meta meta;
    struct dump sd = {0};
    assert_int_equal(store_load(x->s, &meta, collect_store, &sd), 0);
    assert_int_equal(meta.applied_index, 4);
    assert_int_equal(sd.n, 2);
    free(sd.v);

    /* Not at start (an install from the leader), the same snapshot wins. */
    assert_int_equal(fsm_restore(f2, old, old_len, false), 0);
    shm_table_set_state(t2, SHM_STATE_READY);
    assert_int_equal(fsm_applied_index(f2), 2);
    assert_true(held(t2, "a"));
    assert_false(held(t2, "c"));
    raft_free(old);
    fsm_destroy(f2);
    shm_table_destroy(t2);
}

static void test_restore_at_start_with_newer_snapshot_replaces_the_store(void **state)
{
    struct fx *x = *state;
    apply1(x->f, 1, T0, acq("old", NULL, 0));
    /* A newer snapshot from another FSM. */
    shm_table *ts = new_table(100);
    fsm *src = new_fsm(ts, NULL);
    apply1(src, 1, T0, acq("x", NULL, 0));
    apply1(src, 2, T0, acq("y", "alice", 500));
    apply1(src, 3, T0, acq("z", NULL, 0));
    void *buf;
    size_t len;
    assert_int_equal(fsm_snapshot(src, &buf, &len), 0);
    assert_int_equal(fsm_restore(x->f, buf, len, true), 0);
    raft_free(buf);
    shm_table_set_state(x->t, SHM_STATE_READY);
    assert_same_tables(ts, x->t);
    assert_int_equal(fsm_applied_index(x->f), 3);
    assert_int_equal(fsm_next_token(x->f), 4);
    struct store_meta meta;
    struct dump sd = {0};
    assert_int_equal(store_load(x->s, &meta, collect_store, &sd), 0);
    assert_int_equal(meta.applied_index, 3);
    assert_int_equal(sd.n, 3);
    free(sd.v);
    fsm_destroy(src);
    shm_table_destroy(ts);
}

static void test_restore_of_garbage_is_corrupt_and_keeps_state(void **state)
{
    struct fx *x = *state;
    apply1(x->f, 1, T0, acq("n", NULL, 0));
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(fsm_restore(x->f, garbage, sizeof(garbage), false), -LOCKD_ECORRUPT);
    assert_int_equal(fsm_applied_index(x->f), 1);
    assert_true(held(x->t, "n"));
}

static void test_restore_of_more_locks_than_capacity_is_full(void **state)
{
    shm_table *ta = new_table(10), *tb = new_table(2);
    fsm *a = new_fsm(ta, NULL), *b = new_fsm(tb, NULL);
    apply1(a, 1, T0, acq("a", NULL, 0));
    apply1(a, 2, T0, acq("b", NULL, 0));
    apply1(a, 3, T0, acq("c", NULL, 0));
    void *buf;
    size_t len;
    assert_int_equal(fsm_snapshot(a, &buf, &len), 0);
    assert_int_equal(fsm_restore(b, buf, len, false), -LOCKD_EFULL);
    raft_free(buf);
    fsm_destroy(a);
    fsm_destroy(b);
    shm_table_destroy(ta);
    shm_table_destroy(tb);
}

int main(void)
{
    log_set_level(LOG_ERROR);
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        FX(test_acquire_free_names_gets_tokens_1_2_3_strictly_increasing_across_names),
        FX(test_acquire_stores_owner_and_ttl),
        FX(test_anonymous_duplicate_acquire_conflicts_and_reports_holder),
        FX(test_same_owner_reacquire_keeps_token_and_renews_time_ttl_revision),
        FX(test_other_owner_or_anonymous_acquire_of_owned_lock_conflicts),
        FX(test_release_of_unheld_name_is_not_found),
        FX(test_anonymous_lock_is_released_by_anyone),
        FX(test_owned_lock_release_by_other_owner_or_no_owner_conflicts),
        FX(test_release_with_wrong_token_conflicts_with_token_mismatch),
        FX(test_force_release_ignores_owner_and_token),
        FX(test_expire_with_current_revision_and_ttl_removes_lock),
        FX(test_expire_with_stale_revision_or_no_ttl_is_noop),
        FX(test_read_returns_lock_or_not_found_without_changing_it),
        cmocka_unit_test(test_full_table_returns_full_and_consumes_no_token),
        FX(test_invalid_command_is_bad_request_and_changes_nothing),
        FX(test_undecodable_payload_is_noop_but_advances_applied_index),
        FX(test_empty_entry_applies_with_no_results),
        FX(test_commands_of_one_entry_apply_in_order),
        FX(test_entry_at_or_below_applied_index_is_skipped),
        FX(test_change_callback_sees_acquire_renew_and_release_but_not_refusals),
        FX(test_wait_on_free_lock_acquires_immediately),
        FX(test_release_hands_lock_to_waiters_in_fifo_order),
        FX(test_refused_release_does_not_serve_waiters),
        FX(test_expiry_hands_lock_to_first_waiter_with_its_own_ttl),
        FX(test_cancel_removes_a_waiter_and_unknown_waiter_is_not_found),
        FX(test_reset_waiters_drops_every_queue),
        FX(test_waiters_survive_restart_from_the_store),
        FX(test_every_applied_entry_is_in_the_store_with_meta),
        FX(test_two_fresh_fsms_fed_the_same_entries_reach_identical_tables),
        FX(test_restart_from_store_then_replay_matches_uninterrupted_run),
        FX(test_restart_replay_while_table_is_loading_matches_uninterrupted_run),
        FX(test_apply_right_after_load_sees_loaded_locks),
        FX(test_apply_right_after_restore_sees_restored_locks),
        cmocka_unit_test(test_load_without_store_starts_empty),
        FX(test_snapshot_then_restore_into_fresh_fsm_round_trips),
        cmocka_unit_test(test_snapshot_of_empty_state_restores),
        FX(test_restore_at_start_with_older_snapshot_keeps_the_store),
        FX(test_restore_at_start_with_newer_snapshot_replaces_the_store),
        FX(test_restore_of_garbage_is_corrupt_and_keeps_state),
        cmocka_unit_test(test_restore_of_more_locks_than_capacity_is_full),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
