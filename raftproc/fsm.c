/* raftproc/fsm.c: the deterministic lock state machine (see fsm.h). Owns the
 * applied index and the fencing-token counter; the lock records themselves
 * live in the shm table (the readers' view) and the LMDB store (the restart
 * copy). Never reads a clock: time comes from the entry. */
#include "raftproc/fsm.h"

#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/log.h"
#include "common/names.h"
#include "proto/lockd.pb-c.h"
#include "raftproc/waitq.h"

#define FSM_MAX_COMMANDS 65536

struct fsm {
    shm_table *table;
    store *st;
    uint64_t applied_index;
    uint64_t next_token;
    waitq *wq; /* FIFO queues of waiting acquires (replicated state) */
    fsm_change_cb change_cb;
    void *change_arg;
    struct fsm_result *results;
    size_t results_cap;
};

int fsm_create(shm_table *table, store *st, fsm **out)
{
    fsm *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -LOCKD_ENOMEM;
    f->table = table;
    f->st = st;
    f->next_token = 1;
    if (waitq_create(&f->wq) != 0) {
        free(f);
        return -LOCKD_ENOMEM;
    }
    *out = f;
    return 0;
}

void fsm_destroy(fsm *f)
{
    if (f == NULL)
        return;
    free(f->results);
    waitq_destroy(f->wq);
    free(f);
}

void fsm_set_change_cb(fsm *f, fsm_change_cb cb, void *arg)
{
    f->change_cb = cb;
    f->change_arg = arg;
}

uint64_t fsm_applied_index(const fsm *f)
{
    return f->applied_index;
}
uint64_t fsm_next_token(const fsm *f)
{
    return f->next_token;
}
size_t fsm_waiters(const fsm *f)
{
    return waitq_total(f->wq);
}

static int fsm_load_waiter(const char *name, size_t len, const struct waiter *w, void *arg)
{
    fsm *f = arg;
    return waitq_push(f->wq, name, len, w);
}

static int fsm_load_one(const shm_lock *rec, void *arg)
{
    fsm *f = arg;
    int rc = shm_table_put(f->table, rec);
    if (rc != 0) {
        log_error("loading lock %s into the table failed: %s (raise --max-locks?)", rec->name, lockd_strerror(rc));
        return rc;
    }
    return 0;
}

int fsm_load(fsm *f)
{
    shm_table_clear(f->table);
    waitq_clear(f->wq);
    f->applied_index = 0;
    f->next_token = 1;
    if (f->st == NULL)
        return 0;
    struct store_meta meta;
    int rc = store_load(f->st, &meta, fsm_load_one, f);
    if (rc == 0)
        rc = store_load_waiters(f->st, fsm_load_waiter, f);
    if (rc != 0)
        return rc;
    f->applied_index = meta.applied_index;
    if (meta.next_token > f->next_token)
        f->next_token = meta.next_token;
    log_info("loaded %u locks from the store applied_index=%llu next_token=%llu", shm_table_count(f->table),
             (unsigned long long)f->applied_index, (unsigned long long)f->next_token);
    return 0;
}

static int fsm_reserve(fsm *f, size_t n)
{
    if (n <= f->results_cap)
        return 0;
    size_t cap = f->results_cap ? f->results_cap : 64;
    while (cap < n)
        cap *= 2;
    struct fsm_result *r = realloc(f->results, cap * sizeof(*r));
    if (r == NULL)
        return -LOCKD_ENOMEM;
    f->results = r;
    f->results_cap = cap;
    return 0;
}

static void fsm_notify(fsm *f, const char *name, size_t len, const shm_lock *rec)
{
    if (f->change_cb != NULL)
        f->change_cb(f->change_arg, name, len, rec);
}

/* A command's strings were checked by the worker that sent it; check again
 * because the log is input too (a buggy or older peer must not be able to
 * put an impossible record into the table). Deterministic. */
static bool fsm_command_valid(const Lockd__Command *c)
{
    char err[96];
    size_t nlen = strlen(c->name), olen = strlen(c->owner);
    if (names_check_lock(c->name, nlen, err, sizeof(err)) != 0)
        return false;
    if (olen > 0 && names_check_owner(c->owner, olen, err, sizeof(err)) != 0)
        return false;
    return c->ttl_ms <= UINT32_MAX;
}

static int fsm_acquire(fsm *f, uint64_t index, uint64_t time_ms, const Lockd__Command *c, size_t pos,
                       struct fsm_result *res)
{
    size_t nlen = strlen(c->name), olen = strlen(c->owner);
    shm_lock *cur = &res->lock;
    int rc = shm_table_get(f->table, c->name, nlen, cur);
    if (rc == 0) {
        bool same_owner = olen > 0 && cur->owner_len == olen && memcmp(cur->owner, c->owner, olen) == 0;
        if (!same_owner) {
            res->status = LOCKD__STATUS__ST_CONFLICT;
            res->has_lock = true;
            if (c->wait) {
                /* Join the lock's FIFO queue; a release hands it over. */
                struct waiter w = {.id = index << 20 | pos, .ttl_ms = c->ttl_ms, .owner_len = (uint8_t)olen};
                memcpy(w.owner, c->owner, olen + 1);
                if (waitq_push(f->wq, c->name, nlen, &w) != 0)
                    return -LOCKD_ENOMEM;
                if (f->st != NULL && (rc = store_put_waiter(f->st, c->name, nlen, &w)) != 0)
                    return rc;
                res->status = LOCKD__STATUS__ST_QUEUED;
                res->waiter_id = w.id;
            }
            return 0;
        }
        /* Renewal by the holder: same token, fresh lease. */
        cur->renewed_at_ms = time_ms;
        cur->ttl_ms = c->ttl_ms;
        cur->revision = index;
    } else {
        memset(cur, 0, sizeof(*cur));
        memcpy(cur->name, c->name, nlen);
        cur->name_len = (uint8_t)nlen;
        memcpy(cur->owner, c->owner, olen);
        cur->owner_len = (uint8_t)olen;
        cur->token = f->next_token;
        cur->acquired_at_ms = time_ms;
        cur->renewed_at_ms = time_ms;
        cur->ttl_ms = c->ttl_ms;
        cur->revision = index;
    }
    rc = shm_table_put(f->table, cur);
    if (rc == -LOCKD_EFULL) {
        res->status = LOCKD__STATUS__ST_FULL;
        return 0;
    }
    if (rc != 0) {
        res->status = LOCKD__STATUS__ST_INTERNAL;
        return 0;
    }
    if (cur->token == f->next_token)
        f->next_token++;
    if (f->st != NULL && (rc = store_put(f->st, cur)) != 0)
        return rc;
    res->status = LOCKD__STATUS__ST_OK;
    res->has_lock = true;
    fsm_notify(f, cur->name, cur->name_len, cur);
    return 0;
}

/* Releases name; if acquires are queued on it, the first one gets the lock
 * in the same step, so nobody else can slip in between. */
static int fsm_remove(fsm *f, uint64_t index, uint64_t time_ms, const char *name, size_t nlen, struct fsm_result *res)
{
    int rc = shm_table_remove(f->table, name, nlen);
    if (rc != 0) {
        res->status = LOCKD__STATUS__ST_INTERNAL;
        return 0;
    }
    if (f->st != NULL && (rc = store_del(f->st, name, nlen)) != 0 && rc != -LOCKD_ENOENT)
        return rc;
    res->status = LOCKD__STATUS__ST_OK;
    struct waiter w;
    if (waitq_pop(f->wq, name, nlen, &w) != 0) {
        fsm_notify(f, name, nlen, NULL);
        return 0;
    }
    if (f->st != NULL && (rc = store_del_waiter(f->st, name, nlen, w.id)) != 0)
        return rc;
    shm_lock *g = &res->grant;
    memset(g, 0, sizeof(*g));
    memcpy(g->name, name, nlen);
    g->name_len = (uint8_t)nlen;
    memcpy(g->owner, w.owner, (size_t)w.owner_len + 1);
    g->owner_len = w.owner_len;
    g->token = f->next_token++;
    g->acquired_at_ms = time_ms;
    g->renewed_at_ms = time_ms;
    g->ttl_ms = w.ttl_ms;
    g->revision = index;
    if ((rc = shm_table_put(f->table, g)) != 0) /* a slot was just freed */
        return rc;
    if (f->st != NULL && (rc = store_put(f->st, g)) != 0)
        return rc;
    res->granted = true;
    res->waiter_id = w.id;
    fsm_notify(f, name, nlen, g);
    return 0;
}

static int fsm_cancel(fsm *f, const Lockd__Command *c, struct fsm_result *res)
{
    size_t nlen = strlen(c->name);
    res->has_lock = shm_table_get(f->table, c->name, nlen, &res->lock) == 0;
    if (waitq_remove(f->wq, c->name, nlen, c->waiter) != 0) {
        res->status = LOCKD__STATUS__ST_NOT_FOUND; /* served or gone already */
        return 0;
    }
    res->status = LOCKD__STATUS__ST_OK;
    res->waiter_id = c->waiter;
    if (f->st != NULL) {
        int rc = store_del_waiter(f->st, c->name, nlen, c->waiter);
        if (rc != 0 && rc != -LOCKD_ENOENT)
            return rc;
    }
    return 0;
}

struct fsm_names {
    char (*names)[LOCKD_NAME_MAX + 1];
    uint8_t *lens;
    size_t n, cap;
};

static int fsm_collect_leased(const shm_lock *rec, void *arg)
{
    struct fsm_names *c = arg;
    if (rec->ttl_ms == 0)
        return 0;
    if (c->n == c->cap)
        return -LOCKD_EFULL;
    memcpy(c->names[c->n], rec->name, (size_t)rec->name_len + 1);
    c->lens[c->n++] = rec->name_len;
    return 0;
}

/* A new leader cannot know how much of each lease ran under the old one, so
 * it times every lease afresh; this makes that visible (renewed_at_ms, so
 * expires_in_ms) identically on every replica. Revisions stay: expiry
 * commands already timed against them remain valid. O(leases), once per
 * leader change. */
static int fsm_restart_leases(fsm *f, uint64_t time_ms, struct fsm_result *res)
{
    struct fsm_names c = {0};
    c.cap = shm_table_count(f->table);
    c.names = malloc((c.cap ? c.cap : 1) * sizeof(*c.names));
    c.lens = malloc(c.cap ? c.cap : 1);
    int rc = -LOCKD_ENOMEM;
    if (c.names == NULL || c.lens == NULL)
        goto out;
    if ((rc = shm_table_foreach(f->table, fsm_collect_leased, &c)) != 0)
        goto out;
    for (size_t i = 0; i < c.n; i++) {
        shm_lock rec;
        if (shm_table_get(f->table, c.names[i], c.lens[i], &rec) != 0)
            continue;
        rec.renewed_at_ms = time_ms;
        if ((rc = shm_table_put(f->table, &rec)) != 0)
            goto out;
        if (f->st != NULL && (rc = store_put(f->st, &rec)) != 0)
            goto out;
    }
    res->status = LOCKD__STATUS__ST_OK;
    rc = 0;
out:
    free(c.names);
    free(c.lens);
    return rc;
}

static int fsm_reset_waiters(fsm *f, struct fsm_result *res)
{
    waitq_clear(f->wq);
    res->status = LOCKD__STATUS__ST_OK;
    return f->st != NULL ? store_clear_waiters(f->st) : 0;
}

static int fsm_release(fsm *f, uint64_t index, uint64_t time_ms, const Lockd__Command *c, struct fsm_result *res)
{
    size_t nlen = strlen(c->name), olen = strlen(c->owner);
    shm_lock *cur = &res->lock;
    if (shm_table_get(f->table, c->name, nlen, cur) != 0) {
        res->status = LOCKD__STATUS__ST_NOT_FOUND;
        return 0;
    }
    if (!c->force) {
        /* An anonymous lock may be released by anyone (the original's rule);
         * an owned one only by its owner. A given token must match. */
        if (cur->owner_len > 0 && (cur->owner_len != olen || memcmp(cur->owner, c->owner, olen) != 0)) {
            res->status = LOCKD__STATUS__ST_CONFLICT;
            res->has_lock = true;
            return 0;
        }
        if (c->token != 0 && c->token != cur->token) {
            res->status = LOCKD__STATUS__ST_CONFLICT;
            res->has_lock = true;
            res->error = "Token mismatch";
            return 0;
        }
    }
    return fsm_remove(f, index, time_ms, c->name, nlen, res);
}

static int fsm_expire(fsm *f, uint64_t index, uint64_t time_ms, const Lockd__Command *c, struct fsm_result *res)
{
    size_t nlen = strlen(c->name);
    shm_lock *cur = &res->lock;
    /* Only the lease the leader timed: a renewal after it changed revision. */
    if (shm_table_get(f->table, c->name, nlen, cur) != 0 || cur->revision != c->revision || cur->ttl_ms == 0) {
        res->status = LOCKD__STATUS__ST_NOT_FOUND;
        return 0;
    }
    return fsm_remove(f, index, time_ms, c->name, nlen, res);
}

static int fsm_read(fsm *f, const Lockd__Command *c, struct fsm_result *res)
{
    if (shm_table_get(f->table, c->name, strlen(c->name), &res->lock) != 0) {
        res->status = LOCKD__STATUS__ST_NOT_FOUND;
        return 0;
    }
    res->status = LOCKD__STATUS__ST_OK;
    res->has_lock = true;
    return 0;
}

/* Entry payload: a 4-byte little-endian length, the packed LogEntry, then
 * zeros up to a multiple of 8 bytes: libraft 0.15 lays entries out in 8-byte
 * units and only asserts it in debug builds; an unpadded entry corrupts the
 * segment file on disk (found by the restart tests). */
#define FSM_ENTRY_HEADER 4

size_t fsm_entry_size(const Lockd__LogEntry *e)
{
    return (lockd__log_entry__get_packed_size(e) + FSM_ENTRY_HEADER + 7) & ~(size_t)7;
}

void fsm_entry_encode(const Lockd__LogEntry *e, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t n = lockd__log_entry__pack(e, p + FSM_ENTRY_HEADER);
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 24);
    memset(p + FSM_ENTRY_HEADER + n, 0, len - FSM_ENTRY_HEADER - n);
}

int fsm_apply(fsm *f, uint64_t index, const void *buf, size_t len, const struct fsm_result **results, size_t *n)
{
    *results = f->results;
    *n = 0;
    if (index <= f->applied_index)
        return 0; /* replay of an entry the store already holds */
    Lockd__LogEntry *e = NULL;
    if (len >= FSM_ENTRY_HEADER) {
        const uint8_t *p = buf;
        size_t plen = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (plen <= len - FSM_ENTRY_HEADER)
            e = lockd__log_entry__unpack(NULL, plen, p + FSM_ENTRY_HEADER);
    }
    if (e == NULL || e->n_commands > FSM_MAX_COMMANDS) {
        log_error("raft entry %llu (%zu bytes) does not decode; applied as a no-op", (unsigned long long)index, len);
        if (e != NULL)
            lockd__log_entry__free_unpacked(e, NULL);
        f->applied_index = index;
        return 0;
    }
    int rc = fsm_reserve(f, e->n_commands);
    if (rc != 0) {
        lockd__log_entry__free_unpacked(e, NULL);
        return -LOCKD_EIO; /* cannot apply deterministically: stop */
    }
    *results = f->results;
    if (f->st != NULL && (rc = store_begin(f->st)) != 0)
        goto out;
    for (size_t i = 0; i < e->n_commands; i++) {
        const Lockd__Command *c = e->commands[i];
        struct fsm_result *res = &f->results[i];
        res->has_lock = false;
        res->error = NULL;
        res->granted = false;
        res->waiter_id = 0;
        if (c->op == LOCKD__OP__OP_RESET_WAITERS || c->op == LOCKD__OP__OP_RESTART_LEASES) {
            rc = c->op == LOCKD__OP__OP_RESET_WAITERS ? fsm_reset_waiters(f, res)
                                                      : fsm_restart_leases(f, e->time_ms, res);
            if (rc != 0)
                goto out;
            continue;
        }
        if (!fsm_command_valid(c)) {
            res->status = LOCKD__STATUS__ST_BAD_REQUEST;
            continue;
        }
        switch (c->op) {
        case LOCKD__OP__OP_ACQUIRE:
            rc = fsm_acquire(f, index, e->time_ms, c, i, res);
            break;
        case LOCKD__OP__OP_RELEASE:
            rc = fsm_release(f, index, e->time_ms, c, res);
            break;
        case LOCKD__OP__OP_EXPIRE:
            rc = fsm_expire(f, index, e->time_ms, c, res);
            break;
        case LOCKD__OP__OP_CANCEL:
            rc = fsm_cancel(f, c, res);
            break;
        case LOCKD__OP__OP_READ:
            rc = fsm_read(f, c, res);
            break;
        default:
            res->status = LOCKD__STATUS__ST_BAD_REQUEST;
            break;
        }
        if (rc != 0)
            goto out;
    }
    f->applied_index = index;
    if (f->st != NULL) {
        struct store_meta meta = {.applied_index = index, .next_token = f->next_token};
        rc = store_commit(f->st, &meta);
    }
    *n = e->n_commands;
out:
    if (rc != 0 && f->st != NULL)
        store_abort(f->st);
    lockd__log_entry__free_unpacked(e, NULL);
    return rc == 0 ? 0 : -LOCKD_EIO;
}

/* ---- snapshots ----------------------------------------------------------
 * A compact binary format, written in one pass without a per-lock
 * allocation (a protobuf message of a million locks cost a malloc per lock
 * and stalled the loop for hundreds of milliseconds):
 *   "LKSN" u8 version | applied_index u64 | next_token u64 | n_locks u64 | n_waiters u64
 *   n_locks x  { name_len u8, owner_len u8, token, acquired_at_ms,
 *                renewed_at_ms, ttl_ms, revision (u64 each), name, owner }
 *   n_waiters x { name_len u8, owner_len u8, id, ttl_ms (u64 each), name, owner }
 * Integers little endian. */
#define SNAP_MAGIC "LKSN"
#define SNAP_VERSION 1
#define SNAP_HEADER (4 + 1 + 8 * 4)

struct snap_buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
};

static void snap_reserve(struct snap_buf *b, size_t n)
{
    if (b->failed || b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = raft_realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void snap_u64(struct snap_buf *b, uint64_t v)
{
    snap_reserve(b, 8);
    if (b->failed)
        return;
    for (int i = 0; i < 8; i++)
        b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void snap_bytes(struct snap_buf *b, const void *src, size_t n)
{
    snap_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static int snap_lock(const shm_lock *rec, void *arg)
{
    struct snap_buf *b = arg;
    uint8_t lens[2] = {rec->name_len, rec->owner_len};
    snap_bytes(b, lens, 2);
    snap_u64(b, rec->token);
    snap_u64(b, rec->acquired_at_ms);
    snap_u64(b, rec->renewed_at_ms);
    snap_u64(b, rec->ttl_ms);
    snap_u64(b, rec->revision);
    snap_bytes(b, rec->name, rec->name_len);
    snap_bytes(b, rec->owner, rec->owner_len);
    return b->failed ? -LOCKD_ENOMEM : 0;
}

static int snap_waiter(const char *name, size_t len, const struct waiter *w, void *arg)
{
    struct snap_buf *b = arg;
    uint8_t lens[2] = {(uint8_t)len, w->owner_len};
    snap_bytes(b, lens, 2);
    snap_u64(b, w->id);
    snap_u64(b, w->ttl_ms);
    snap_bytes(b, name, len);
    snap_bytes(b, w->owner, w->owner_len);
    return b->failed ? -LOCKD_ENOMEM : 0;
}

static void snap_header(struct snap_buf *b, uint64_t applied, uint64_t next_token, uint64_t n_locks, uint64_t n_waiters)
{
    snap_bytes(b, SNAP_MAGIC, 4);
    uint8_t v = SNAP_VERSION;
    snap_bytes(b, &v, 1);
    snap_u64(b, applied);
    snap_u64(b, next_token);
    snap_u64(b, n_locks);
    snap_u64(b, n_waiters);
}

int fsm_snapshot(fsm *f, void **buf, size_t *len)
{
    struct snap_buf b = {0};
    snap_header(&b, f->applied_index, f->next_token, shm_table_count(f->table), waitq_total(f->wq));
    int rc = shm_table_foreach(f->table, snap_lock, &b);
    if (rc == 0)
        rc = waitq_foreach(f->wq, snap_waiter, &b);
    if (rc != 0 || b.failed) {
        raft_free(b.p);
        return -LOCKD_ENOMEM;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}

int fsm_snapshot_store_from_open(store *st, void **buf, size_t *len)
{
    struct snap_buf b = {0};
    struct store_meta meta;
    uint64_t n_locks, n_waiters;
    int rc = store_snapshot_info(st, &meta, &n_locks, &n_waiters);
    if (rc != 0) {
        store_snapshot_end(st);
        return rc;
    }
    snap_header(&b, meta.applied_index, meta.next_token, n_locks, n_waiters);
    rc = store_snapshot_scan(st, snap_lock, snap_waiter, &b);
    store_snapshot_end(st);
    if (rc != 0 || b.failed) {
        raft_free(b.p);
        return rc != 0 ? rc : -LOCKD_ENOMEM;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}

int fsm_foreach_waiter(const fsm *f, int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg),
                       void *arg)
{
    return waitq_foreach(f->wq, fn, arg);
}

struct snap_reader {
    const uint8_t *p;
    size_t len, off;
};

static int snap_get(struct snap_reader *r, void *dst, size_t n)
{
    if (r->len - r->off < n)
        return -LOCKD_ECORRUPT;
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return 0;
}

static int snap_get_u64(struct snap_reader *r, uint64_t *v)
{
    uint8_t b[8];
    if (snap_get(r, b, 8) != 0)
        return -LOCKD_ECORRUPT;
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = *v << 8 | b[i];
    return 0;
}

int fsm_restore(fsm *f, const void *buf, size_t len, bool at_start)
{
    struct snap_reader r = {.p = buf, .len = len};
    char magic[4];
    uint8_t version;
    uint64_t applied, next_token, n_locks, n_waiters;
    if (snap_get(&r, magic, 4) != 0 || memcmp(magic, SNAP_MAGIC, 4) != 0 || snap_get(&r, &version, 1) != 0 ||
        version != SNAP_VERSION || snap_get_u64(&r, &applied) != 0 || snap_get_u64(&r, &next_token) != 0 ||
        snap_get_u64(&r, &n_locks) != 0 || snap_get_u64(&r, &n_waiters) != 0) {
        log_error("snapshot (%zu bytes) does not decode", len);
        return -LOCKD_ECORRUPT;
    }
    if (at_start && applied <= f->applied_index) {
        log_info("store (applied %llu) is newer than the snapshot (%llu): keeping the store",
                 (unsigned long long)f->applied_index, (unsigned long long)applied);
        return 0;
    }
    int rc = 0;
    shm_table_clear(f->table);
    waitq_clear(f->wq);
    if (f->st != NULL && ((rc = store_begin(f->st)) != 0 || (rc = store_clear(f->st)) != 0))
        goto out;
    for (uint64_t i = 0; i < n_locks; i++) {
        shm_lock rec;
        uint8_t lens[2];
        memset(&rec, 0, sizeof(rec));
        if ((rc = snap_get(&r, lens, 2)) != 0 || lens[0] == 0 || lens[0] > LOCKD_NAME_MAX ||
            lens[1] > LOCKD_OWNER_MAX || (rc = snap_get_u64(&r, &rec.token)) != 0 ||
            (rc = snap_get_u64(&r, &rec.acquired_at_ms)) != 0 || (rc = snap_get_u64(&r, &rec.renewed_at_ms)) != 0 ||
            (rc = snap_get_u64(&r, &rec.ttl_ms)) != 0 || (rc = snap_get_u64(&r, &rec.revision)) != 0 ||
            (rc = snap_get(&r, rec.name, lens[0])) != 0 || (rc = snap_get(&r, rec.owner, lens[1])) != 0) {
            rc = -LOCKD_ECORRUPT;
            goto out;
        }
        rec.name_len = lens[0];
        rec.owner_len = lens[1];
        if ((rc = shm_table_put(f->table, &rec)) != 0)
            goto out;
        if (f->st != NULL && (rc = store_put(f->st, &rec)) != 0)
            goto out;
        fsm_notify(f, rec.name, rec.name_len, &rec);
    }
    for (uint64_t i = 0; i < n_waiters; i++) {
        struct waiter w;
        char name[LOCKD_NAME_MAX + 1];
        uint8_t lens[2];
        memset(&w, 0, sizeof(w));
        if ((rc = snap_get(&r, lens, 2)) != 0 || lens[0] == 0 || lens[0] > LOCKD_NAME_MAX ||
            lens[1] > LOCKD_OWNER_MAX || (rc = snap_get_u64(&r, &w.id)) != 0 ||
            (rc = snap_get_u64(&r, &w.ttl_ms)) != 0 || (rc = snap_get(&r, name, lens[0])) != 0 ||
            (rc = snap_get(&r, w.owner, lens[1])) != 0) {
            rc = -LOCKD_ECORRUPT;
            goto out;
        }
        w.owner_len = lens[1];
        if ((rc = waitq_push(f->wq, name, lens[0], &w)) != 0)
            goto out;
        if (f->st != NULL && (rc = store_put_waiter(f->st, name, lens[0], &w)) != 0)
            goto out;
    }
    if (r.off != r.len) {
        rc = -LOCKD_ECORRUPT;
        goto out;
    }
    f->applied_index = applied;
    f->next_token = next_token;
    if (f->st != NULL) {
        struct store_meta meta = {.applied_index = f->applied_index, .next_token = f->next_token};
        rc = store_commit(f->st, &meta);
    }
    log_info("restored snapshot: %llu locks, %llu waiters, applied_index=%llu", (unsigned long long)n_locks,
             (unsigned long long)n_waiters, (unsigned long long)applied);
out:
    if (rc != 0) {
        log_error("snapshot restore failed: %s", lockd_strerror(rc));
        if (f->st != NULL)
            store_abort(f->st);
    }
    return rc;
}
