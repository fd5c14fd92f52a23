/* tests/unit/raftproc/test_store.c: the LMDB copy of the lock state: the
 * value encoding, transactions (commit, abort) and the meta record. Every
 * test works in its own mkdtemp() directory, removed by the teardown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/limits.h"
#include "common/log.h"
#include "raftproc/store.h"

/* ---- helpers ------------------------------------------------------------- */

static shm_lock make_lock(const char *name, const char *owner, uint64_t token)
{
    shm_lock l;
    memset(&l, 0, sizeof(l));
    l.name_len = (uint8_t)strlen(name);
    memcpy(l.name, name, l.name_len);
    l.owner_len = (uint8_t)strlen(owner);
    memcpy(l.owner, owner, l.owner_len);
    l.token = token;
    l.acquired_at_ms = 1700000000000ull + token;
    l.renewed_at_ms = 1700000000500ull + token;
    l.ttl_ms = token % 2 ? 30000 : 0;
    l.revision = 10 * token;
    return l;
}

static void assert_same_value(const shm_lock *a, const shm_lock *b)
{
    assert_int_equal(a->owner_len, b->owner_len);
    assert_memory_equal(a->owner, b->owner, b->owner_len);
    assert_int_equal(a->owner[a->owner_len], '\0');
    assert_int_equal(a->token, b->token);
    assert_int_equal(a->acquired_at_ms, b->acquired_at_ms);
    assert_int_equal(a->renewed_at_ms, b->renewed_at_ms);
    assert_int_equal(a->ttl_ms, b->ttl_ms);
    assert_int_equal(a->revision, b->revision);
}

static void assert_same_lock(const shm_lock *a, const shm_lock *b)
{
    assert_int_equal(a->name_len, b->name_len);
    assert_string_equal(a->name, b->name);
    assert_same_value(a, b);
}

struct fx {
    char dir[64];
    char db[96];
};

static int fx_setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    const char *base = getenv("TMPDIR");
    snprintf(x->dir, sizeof(x->dir), "%s/lockd-store-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->db, sizeof(x->db), "%s/locks.mdb", x->dir);
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *x = *state;
    DIR *d = opendir(x->dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", x->dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(x->dir);
    free(x);
    return 0;
}

/* Collects store_load's records (in the order given). */
struct coll {
    shm_lock v[64];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static int collect(const shm_lock *rec, void *arg)
{
    struct coll *c = arg;
    assert_true(c->n < 64);
    c->v[c->n++] = *rec;
    if (c->stop_after != 0 && c->n == c->stop_after)
        return 42;
    return 0;
}

static store *open_store(const struct fx *x)
{
    store *s = NULL;
    assert_int_equal(store_open(x->db, 1000, &s), 0);
    assert_non_null(s);
    return s;
}

/* ---- value encoding ------------------------------------------------------ */

/* The version 1 layout (fixed 64-bit fields), which files written before
 * version 2 hold: decode must keep reading it. */
static size_t encode_value_v1(const shm_lock *rec, uint8_t *dst)
{
    uint64_t f[5] = {rec->token, rec->acquired_at_ms, rec->renewed_at_ms, rec->ttl_ms, rec->revision};
    dst[0] = 1;
    for (int i = 0; i < 5; i++)
        for (int b = 0; b < 8; b++)
            dst[1 + 8 * i + b] = (uint8_t)(f[i] >> (8 * b));
    dst[41] = rec->owner_len;
    memcpy(dst + 42, rec->owner, rec->owner_len);
    return 42 + (size_t)rec->owner_len;
}

static void test_value_round_trips_anonymous_and_128_byte_owner(void **state)
{
    char owner[LOCKD_OWNER_MAX + 1];
    memset(owner, 'q', LOCKD_OWNER_MAX);
    owner[LOCKD_OWNER_MAX] = '\0';
    shm_lock renewed_earlier = make_lock("e", "bob", 4); /* a leader whose clock is behind */
    renewed_earlier.renewed_at_ms = renewed_earlier.acquired_at_ms - 12345;
    shm_lock extremes = make_lock("f", "o", UINT64_MAX);
    extremes.acquired_at_ms = UINT64_MAX;
    extremes.renewed_at_ms = 0;
    extremes.ttl_ms = UINT32_MAX;
    extremes.revision = UINT64_MAX;
    const shm_lock cases[] = {
        make_lock("a", "", 1),
        make_lock("b", "alice", 2),
        make_lock("c", "x:y@z", UINT64_MAX),
        make_lock("d", owner, 7),
        renewed_earlier,
        extremes,
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[STORE_VALUE_MAX];
        size_t n = store_encode_value(&cases[i], buf);
        assert_true(n <= STORE_VALUE_MAX);
        shm_lock out;
        memset(&out, 0xa5, sizeof(out));
        assert_int_equal(store_decode_value(buf, n, &out), 0);
        assert_same_value(&out, &cases[i]);
    }
}

static void test_typical_value_is_compact(void **state)
{
    /* Token and revision in the millions, a wall-clock timestamp, no TTL,
     * anonymous: what a million try-locks store. */
    shm_lock l = make_lock("n", "", 1);
    l.token = 1000000;
    l.revision = 2000000;
    l.acquired_at_ms = l.renewed_at_ms = 1795000000000ull;
    l.ttl_ms = 0;
    uint8_t buf[STORE_VALUE_MAX];
    assert_true(store_encode_value(&l, buf) <= 20);
}

static void test_version_1_values_still_decode(void **state)
{
    const shm_lock cases[] = {make_lock("a", "", 1), make_lock("b", "alice", UINT64_MAX)};
    for (size_t i = 0; i < 2; i++) {
        uint8_t buf[64];
        size_t n = encode_value_v1(&cases[i], buf);
        shm_lock out;
        assert_int_equal(store_decode_value(buf, n, &out), 0);
        assert_same_value(&out, &cases[i]);
        assert_int_equal(store_decode_value(buf, n - 1, &out), -LOCKD_ECORRUPT);
    }
}

static void test_value_with_longest_owner_fits_value_max(void **state)
{
    char owner[LOCKD_OWNER_MAX + 1];
    memset(owner, 'o', LOCKD_OWNER_MAX);
    owner[LOCKD_OWNER_MAX] = '\0';
    shm_lock in = make_lock("n", owner, UINT64_MAX);
    in.acquired_at_ms = in.revision = UINT64_MAX;
    in.renewed_at_ms = 0; /* largest zigzag delta */
    /* Guard bytes after the buffer must stay untouched. */
    uint8_t buf[STORE_VALUE_MAX + 16];
    memset(buf, 0xee, sizeof(buf));
    size_t n = store_encode_value(&in, buf);
    assert_true(n <= STORE_VALUE_MAX);
    for (size_t i = n; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xee);
}

static void test_decode_rejects_truncated_values(void **state)
{
    shm_lock in = make_lock("n", "alice", 9);
    uint8_t buf[STORE_VALUE_MAX];
    size_t n = store_encode_value(&in, buf);
    shm_lock out;
    for (size_t len = 0; len < n; len++)
        assert_int_equal(store_decode_value(buf, len, &out), -LOCKD_ECORRUPT);
    /* One byte too many is as wrong as one too few. */
    uint8_t longer[STORE_VALUE_MAX + 1];
    memcpy(longer, buf, n);
    longer[n] = 'x';
    assert_int_equal(store_decode_value(longer, n + 1, &out), -LOCKD_ECORRUPT);
    assert_int_equal(store_decode_value(buf, n, &out), 0);
}

static void test_decode_rejects_garbage_values(void **state)
{
    shm_lock in = make_lock("n", "alice", 9);
    uint8_t buf[STORE_VALUE_MAX];
    size_t n = store_encode_value(&in, buf);
    size_t owner_at = n - in.owner_len - 1; /* the owner length byte */
    shm_lock out;
    /* Unknown versions. */
    uint8_t bad[STORE_VALUE_MAX];
    memcpy(bad, buf, n);
    bad[0] = 0;
    assert_int_equal(store_decode_value(bad, n, &out), -LOCKD_ECORRUPT);
    bad[0] = 3;
    assert_int_equal(store_decode_value(bad, n, &out), -LOCKD_ECORRUPT);
    /* Owner length that disagrees with the value length. */
    memcpy(bad, buf, n);
    bad[owner_at] = 6;
    assert_int_equal(store_decode_value(bad, n, &out), -LOCKD_ECORRUPT);
    /* Owner length over the limit, with the bytes to match. */
    uint8_t big[STORE_VALUE_MAX + 200];
    memset(big, 'o', sizeof(big));
    memcpy(big, buf, owner_at);
    big[owner_at] = 200;
    assert_int_equal(store_decode_value(big, owner_at + 1 + 200, &out), -LOCKD_ECORRUPT);
    /* A varint longer than 10 bytes, and one that overflows 64 bits. */
    uint8_t v[16] = {2};
    memset(v + 1, 0xff, 11);
    v[12] = 0x01;
    assert_int_equal(store_decode_value(v, 13, &out), -LOCKD_ECORRUPT);
    memset(v + 1, 0xff, 9);
    v[10] = 0x02; /* the 10th byte may only carry bit 63 */
    assert_int_equal(store_decode_value(v, 11, &out), -LOCKD_ECORRUPT);
    /* Random bytes never crash and rarely decode; when they decode, the
     * owner is NUL-terminated within bounds. */
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        uint8_t r[STORE_VALUE_MAX];
        size_t len = 0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        len = s % sizeof(r);
        for (size_t j = 0; j < len; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            r[j] = (uint8_t)s;
        }
        if (i % 3 == 0 && len >= 42) { /* often a plausible version 1 header */
            r[0] = 1;
            r[41] = (uint8_t)(len - 42);
        } else if (i % 3 == 1 && len >= 8) { /* or a version 2 one: 5 one-byte varints */
            r[0] = 2;
            for (int k = 1; k <= 5; k++)
                r[k] &= 0x7f;
            r[6] = (uint8_t)(len - 7);
        }
        if (store_decode_value(r, len, &out) == 0) {
            assert_true(out.owner_len <= LOCKD_OWNER_MAX);
            assert_int_equal(out.owner[out.owner_len], '\0');
            assert_true(len >= 1u + out.owner_len);
        }
    }
}

/* ---- transactions -------------------------------------------------------- */

/* Resident kB of this process's mappings of path (from /proc/self/smaps:
 * a mapping's header line is "start-end perms offset dev inode path"). */
static long mapped_rss_kb(const char *path)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    bool in = false;
    long kb, total = 0;
    unsigned long lo, hi;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            line[strcspn(line, "\n")] = '\0';
            size_t n = strlen(line), p = strlen(path);
            in = n >= p && strcmp(line + n - p, path) == 0;
        } else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) {
            total += kb;
        }
    }
    fclose(f);
    return total;
}

static int count_lock(const shm_lock *rec, void *arg)
{
    (*(unsigned *)arg)++;
    return 0;
}

static void test_release_pages_unmaps_what_commits_touched_and_keeps_the_data(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    assert_int_equal(store_begin(s), 0);
    for (unsigned i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "release-%06u", i);
        shm_lock l = make_lock(name, "owner", i + 1);
        assert_int_equal(store_put(s, &l), 0);
    }
    struct store_meta meta = {.applied_index = 5, .next_token = 1001};
    assert_int_equal(store_commit(s, &meta), 0);
    long before = mapped_rss_kb(x->db);
    assert_true(before >= 40); /* 1000 values of ~40 bytes, mapped by the commit */
    /* While a transaction is open it is a no-op. */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_release_pages(s), 0);
    store_abort(s);
    assert_int_equal(store_release_pages(s), 0);
    long after = mapped_rss_kb(x->db);
    assert_true(after < before / 4);
    /* The data is all there (from the page cache), in this process and after reopening. */
    struct store_meta got;
    unsigned n = 0;
    assert_int_equal(store_load(s, &got, count_lock, &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(got.applied_index, 5);
    store_close(s);
    s = open_store(x);
    n = 0;
    assert_int_equal(store_load(s, &got, count_lock, &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(got.next_token, 1001);
    store_close(s);
}

static void test_put_commit_close_reopen_load_round_trips_locks_and_meta(void **state)
{
    struct fx *x = *state;
    char owner[LOCKD_OWNER_MAX + 1];
    memset(owner, 'w', LOCKD_OWNER_MAX);
    owner[LOCKD_OWNER_MAX] = '\0';
    char long_name[LOCKD_NAME_MAX + 1];
    memset(long_name, 'n', LOCKD_NAME_MAX);
    long_name[LOCKD_NAME_MAX] = '\0';
    /* In name order, as store_load returns them. */
    shm_lock want[] = {
        make_lock("$a", "", 1),
        make_lock("b.c", "alice", 2),
        make_lock(long_name, owner, 3),
        make_lock("z", "bob:1@h", 4),
    };
    size_t nw = sizeof(want) / sizeof(want[0]);
    store *s = open_store(x);
    assert_int_equal(store_begin(s), 0);
    for (size_t i = nw; i-- > 0;)
        assert_int_equal(store_put(s, &want[i]), 0);
    struct store_meta meta = {.applied_index = 77, .next_token = 5};
    assert_int_equal(store_commit(s, &meta), 0);
    store_close(s);

    s = open_store(x);
    struct store_meta got;
    struct coll c = {0};
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(got.applied_index, 77);
    assert_int_equal(got.next_token, 5);
    assert_int_equal(c.n, nw);
    for (size_t i = 0; i < nw; i++)
        assert_same_lock(&c.v[i], &want[i]);
    store_close(s);
}

static void test_fresh_store_loads_empty_with_zero_meta(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    struct store_meta got = {.applied_index = 9, .next_token = 9};
    struct coll c = {0};
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(got.applied_index, 0);
    assert_int_equal(got.next_token, 0);
    assert_int_equal(c.n, 0);
    store_close(s);
}

static void test_put_replaces_value_of_same_name(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    shm_lock a = make_lock("n", "a-much-longer-owner-name", 1), b = make_lock("n", "b", 2);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, &a), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){1, 2}), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, &b), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){2, 3}), 0);
    struct store_meta got;
    struct coll c = {0};
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_same_lock(&c.v[0], &b);
    store_close(s);
}

static void test_abort_discards_puts_dels_and_meta(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    shm_lock a = make_lock("a", "", 1), b = make_lock("b", "o", 2);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, &a), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){1, 2}), 0);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, &b), 0);
    assert_int_equal(store_del(s, "a", 1), 0);
    store_abort(s);

    struct store_meta got;
    struct coll c = {0};
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(got.applied_index, 1);
    assert_int_equal(got.next_token, 2);
    assert_int_equal(c.n, 1);
    assert_same_lock(&c.v[0], &a);
    /* The store is usable after an abort; abort twice is harmless. */
    store_abort(s);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, &b), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){3, 3}), 0);
    c.n = 0;
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(got.applied_index, 3);
    store_close(s);
}

static void test_close_with_open_transaction_discards_it(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    shm_lock a = make_lock("a", "", 1);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, &a), 0);
    store_close(s);
    s = open_store(x);
    struct store_meta got;
    struct coll c = {0};
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(got.applied_index, 0);
    store_close(s);
}

static void test_del_of_absent_name_is_enoent_and_present_is_removed(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    shm_lock a = make_lock("a", "", 1);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_del(s, "nope", 4), -LOCKD_ENOENT);
    assert_int_equal(store_put(s, &a), 0);
    assert_int_equal(store_del(s, "ab", 2), -LOCKD_ENOENT); /* not a prefix match */
    assert_int_equal(store_del(s, "a", 1), 0);
    assert_int_equal(store_del(s, "a", 1), -LOCKD_ENOENT);
    /* An ENOENT does not spoil the transaction. */
    assert_int_equal(store_put(s, &a), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){1, 2}), 0);
    struct store_meta got;
    struct coll c = {0};
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_del(s, "a", 1), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){2, 2}), 0);
    c.n = 0;
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(c.n, 0);
    store_close(s);
}

static void test_clear_removes_every_lock_but_commit_sets_meta(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    assert_int_equal(store_begin(s), 0);
    for (uint64_t i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "lock%02llu", (unsigned long long)i);
        shm_lock l = make_lock(name, "o", i + 1);
        assert_int_equal(store_put(s, &l), 0);
    }
    assert_int_equal(store_commit(s, &(struct store_meta){20, 21}), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_clear(s), 0);
    shm_lock k = make_lock("kept", "", 100);
    assert_int_equal(store_put(s, &k), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){500, 101}), 0);
    struct store_meta got;
    struct coll c = {0};
    assert_int_equal(store_load(s, &got, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_same_lock(&c.v[0], &k);
    assert_int_equal(got.applied_index, 500);
    assert_int_equal(got.next_token, 101);
    assert_int_equal(store_sync(s), 0);
    store_close(s);
}

static void test_load_stops_early_with_callbacks_return(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    assert_int_equal(store_begin(s), 0);
    for (uint64_t i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof(name), "n%llu", (unsigned long long)i);
        shm_lock l = make_lock(name, "", i + 1);
        assert_int_equal(store_put(s, &l), 0);
    }
    assert_int_equal(store_commit(s, &(struct store_meta){5, 6}), 0);
    struct store_meta got;
    struct coll c = {.stop_after = 2};
    assert_int_equal(store_load(s, &got, collect, &c), 42);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.v[0].name, "n0");
    assert_string_equal(c.v[1].name, "n1");
    store_close(s);
}

static void test_open_of_unopenable_path_is_eio(void **state)
{
    struct fx *x = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/no/such/dir/locks.mdb", x->dir);
    store *s = NULL;
    assert_int_equal(store_open(path, 10, &s), -LOCKD_EIO);
    /* A directory where the file should be (its lock file, path + "-lock",
     * lands inside our directory too). */
    snprintf(path, sizeof(path), "%s/sub", x->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(store_open(path, 10, &s), -LOCKD_EIO);
    assert_int_equal(rmdir(path), 0);
}

/* ---- wait queues --------------------------------------------------------- */

struct wcoll {
    char names[16][LOCKD_NAME_MAX + 1];
    struct waiter w[16];
    size_t n;
};

static int collect_waiter(const char *name, size_t len, const struct waiter *w, void *arg)
{
    struct wcoll *c = arg;
    assert_true(c->n < 16);
    assert_true(len <= LOCKD_NAME_MAX);
    memcpy(c->names[c->n], name, len);
    c->names[c->n][len] = '\0';
    c->w[c->n++] = *w;
    return 0;
}

static struct waiter make_waiter(uint64_t id, const char *owner, uint64_t ttl)
{
    struct waiter w;
    memset(&w, 0, sizeof(w));
    w.id = id;
    w.ttl_ms = ttl;
    w.owner_len = (uint8_t)strlen(owner);
    memcpy(w.owner, owner, w.owner_len);
    return w;
}

static void test_waiters_load_per_name_in_id_order_with_owner_and_ttl(void **state)
{
    struct fx *x = *state;
    char owner[LOCKD_OWNER_MAX + 1];
    memset(owner, 'w', LOCKD_OWNER_MAX);
    owner[LOCKD_OWNER_MAX] = '\0';
    store *s = open_store(x);
    assert_int_equal(store_begin(s), 0);
    /* Out of order, ids that differ in their high bytes, and a name that
     * is a prefix of another. */
    struct waiter a3 = make_waiter(3ull << 20, "carol", 0), a1 = make_waiter(1ull << 20 | 5, owner, 1000),
                  a2 = make_waiter(2ull << 40, "", 0), ab = make_waiter(1, "bob", 30000);
    assert_int_equal(store_put_waiter(s, "a", 1, &a3), 0);
    assert_int_equal(store_put_waiter(s, "ab", 2, &ab), 0);
    assert_int_equal(store_put_waiter(s, "a", 1, &a1), 0);
    assert_int_equal(store_put_waiter(s, "a", 1, &a2), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){4, 1}), 0);
    struct wcoll c = {0};
    assert_int_equal(store_load_waiters(s, collect_waiter, &c), 0);
    assert_int_equal(c.n, 4);
    size_t ia = 0;
    const struct waiter *want_a[] = {&a1, &a3, &a2};
    for (size_t i = 0; i < c.n; i++) {
        if (strcmp(c.names[i], "ab") == 0) {
            assert_int_equal(c.w[i].id, 1);
            assert_string_equal(c.w[i].owner, "bob");
            assert_int_equal(c.w[i].ttl_ms, 30000);
            continue;
        }
        assert_string_equal(c.names[i], "a");
        const struct waiter *w = want_a[ia++];
        assert_int_equal(c.w[i].id, w->id);
        assert_int_equal(c.w[i].ttl_ms, w->ttl_ms);
        assert_int_equal(c.w[i].owner_len, w->owner_len);
        assert_string_equal(c.w[i].owner, w->owner);
    }
    assert_int_equal(ia, 3);
    store_close(s);
}

static void test_waiter_del_clear_and_store_clear(void **state)
{
    struct fx *x = *state;
    store *s = open_store(x);
    struct waiter w1 = make_waiter(1, "a", 0), w2 = make_waiter(2, "b", 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_del_waiter(s, "n", 1, 1), -LOCKD_ENOENT);
    assert_int_equal(store_put_waiter(s, "n", 1, &w1), 0);
    assert_int_equal(store_put_waiter(s, "n", 1, &w2), 0);
    assert_int_equal(store_put_waiter(s, "m", 1, &w1), 0);
    assert_int_equal(store_del_waiter(s, "n", 1, 3), -LOCKD_ENOENT);
    assert_int_equal(store_del_waiter(s, "n", 1, 1), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){1, 1}), 0);
    struct wcoll c = {0};
    assert_int_equal(store_load_waiters(s, collect_waiter, &c), 0);
    assert_int_equal(c.n, 2);

    /* clear_waiters drops waiters only. */
    shm_lock l = make_lock("n", "a", 1);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, &l), 0);
    assert_int_equal(store_clear_waiters(s), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){2, 2}), 0);
    c.n = 0;
    assert_int_equal(store_load_waiters(s, collect_waiter, &c), 0);
    assert_int_equal(c.n, 0);
    struct store_meta meta;
    struct coll lc = {0};
    assert_int_equal(store_load(s, &meta, collect, &lc), 0);
    assert_int_equal(lc.n, 1);

    /* store_clear drops locks and waiters. */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_waiter(s, "n", 1, &w2), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){3, 2}), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_clear(s), 0);
    assert_int_equal(store_commit(s, &(struct store_meta){4, 2}), 0);
    c.n = 0;
    lc.n = 0;
    assert_int_equal(store_load_waiters(s, collect_waiter, &c), 0);
    assert_int_equal(store_load(s, &meta, collect, &lc), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(lc.n, 0);
    store_close(s);
}

int main(void)
{
    log_set_level(LOG_ERROR);
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_round_trips_anonymous_and_128_byte_owner),
        cmocka_unit_test(test_typical_value_is_compact),
        cmocka_unit_test(test_version_1_values_still_decode),
        cmocka_unit_test(test_value_with_longest_owner_fits_value_max),
        cmocka_unit_test(test_decode_rejects_truncated_values),
        cmocka_unit_test(test_decode_rejects_garbage_values),
        FX(test_put_commit_close_reopen_load_round_trips_locks_and_meta),
        FX(test_fresh_store_loads_empty_with_zero_meta),
        FX(test_put_replaces_value_of_same_name),
        FX(test_abort_discards_puts_dels_and_meta),
        FX(test_close_with_open_transaction_discards_it),
        FX(test_del_of_absent_name_is_enoent_and_present_is_removed),
        FX(test_clear_removes_every_lock_but_commit_sets_meta),
        FX(test_load_stops_early_with_callbacks_return),
        FX(test_open_of_unopenable_path_is_eio),
        FX(test_waiters_load_per_name_in_id_order_with_owner_and_ttl),
        FX(test_waiter_del_clear_and_store_clear),
        FX(test_release_pages_unmaps_what_commits_touched_and_keeps_the_data),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
