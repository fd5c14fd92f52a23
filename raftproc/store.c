/* raftproc/store.c: LMDB persistence of the applied lock state (see store.h
 * for the durability choice). Owns the MDB_env and the one open write
 * transaction; opened in the Raft process itself, never across fork(). */
#include "raftproc/store.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"

static const char META_KEY[] = "meta";

struct store {
    MDB_env *env;
    MDB_dbi locks;   /* name -> encoded value */
    MDB_dbi meta;    /* "meta" -> applied_index, next_token */
    MDB_dbi waiters; /* name 0x00 id -> ttl_ms, owner_len, owner */
    MDB_txn *txn;    /* the open write transaction, or NULL */
    MDB_txn *snap;   /* the snapshot's read transaction, or NULL */
    void *map_addr;  /* LMDB's mapping of the file (store_find_map), NULL if not found */
    size_t map_len;
    /* Pages mapped since the last store_release_pages (a commit, load or
     * snapshot); the snapshot thread sets it too. */
    _Atomic bool touched;
    struct store_meta snap_meta;
    uint64_t snap_locks, snap_waiters;
    char path[256];
};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Value layouts. Version 2 (written): version u8, then unsigned LEB128
 * varints token, acquired_at_ms, zigzag(renewed_at_ms - acquired_at_ms),
 * ttl_ms, revision, then owner_len u8 and the owner bytes: 17 bytes + owner
 * for a typical lock instead of 42. Version 1 (still read): version u8,
 * token, acquired_at_ms, renewed_at_ms, ttl_ms, revision as u64 little
 * endian, owner_len u8, owner bytes. */
#define STORE_VALUE_V1 1
#define STORE_VALUE_V2 2

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads one varint of at most 10 bytes from src[*pos..len); -1 if it is
 * truncated or overflows 64 bits. */
static int get_uvarint(const uint8_t *src, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = src[(*pos)++];
        if (shift == 63 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

size_t store_encode_value(const shm_lock *rec, uint8_t *dst)
{
    size_t n = 0;
    dst[n++] = STORE_VALUE_V2;
    int64_t delta = (int64_t)(rec->renewed_at_ms - rec->acquired_at_ms);
    n += put_uvarint(dst + n, rec->token);
    n += put_uvarint(dst + n, rec->acquired_at_ms);
    n += put_uvarint(dst + n, ((uint64_t)delta << 1) ^ (uint64_t)(delta >> 63));
    n += put_uvarint(dst + n, rec->ttl_ms);
    n += put_uvarint(dst + n, rec->revision);
    dst[n++] = rec->owner_len;
    memcpy(dst + n, rec->owner, rec->owner_len);
    return n + rec->owner_len;
}

static int store_decode_value_v1(const uint8_t *src, size_t len, shm_lock *rec)
{
    if (len < 42)
        return -LOCKD_ECORRUPT;
    size_t owner_len = src[41];
    if (owner_len > LOCKD_OWNER_MAX || len != 42 + owner_len)
        return -LOCKD_ECORRUPT;
    rec->token = get_u64(src + 1);
    rec->acquired_at_ms = get_u64(src + 9);
    rec->renewed_at_ms = get_u64(src + 17);
    rec->ttl_ms = get_u64(src + 25);
    rec->revision = get_u64(src + 33);
    rec->owner_len = (uint8_t)owner_len;
    memcpy(rec->owner, src + 42, owner_len);
    rec->owner[owner_len] = '\0';
    return 0;
}

int store_decode_value(const uint8_t *src, size_t len, shm_lock *rec)
{
    if (len < 1)
        return -LOCKD_ECORRUPT;
    if (src[0] == STORE_VALUE_V1)
        return store_decode_value_v1(src, len, rec);
    if (src[0] != STORE_VALUE_V2)
        return -LOCKD_ECORRUPT;
    size_t pos = 1;
    uint64_t token, acquired, zz, ttl, revision;
    if (get_uvarint(src, len, &pos, &token) != 0 || get_uvarint(src, len, &pos, &acquired) != 0 ||
        get_uvarint(src, len, &pos, &zz) != 0 || get_uvarint(src, len, &pos, &ttl) != 0 ||
        get_uvarint(src, len, &pos, &revision) != 0 || pos >= len)
        return -LOCKD_ECORRUPT;
    size_t owner_len = src[pos++];
    if (owner_len > LOCKD_OWNER_MAX || len != pos + owner_len)
        return -LOCKD_ECORRUPT;
    int64_t delta = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
    rec->token = token;
    rec->acquired_at_ms = acquired;
    rec->renewed_at_ms = acquired + (uint64_t)delta;
    rec->ttl_ms = ttl;
    rec->revision = revision;
    rec->owner_len = (uint8_t)owner_len;
    memcpy(rec->owner, src + pos, owner_len);
    rec->owner[owner_len] = '\0';
    return 0;
}

static int store_scan_locks(store *s, MDB_txn *txn, int (*fn)(const shm_lock *rec, void *arg), void *arg);
static int store_scan_waiters(store *s, MDB_txn *txn,
                              int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg), void *arg);

static int store_fail(const char *what, int rc)
{
    log_error("lmdb %s failed: %s", what, mdb_strerror(rc));
    return -LOCKD_EIO;
}

/* LMDB does not tell where it mapped the file (mdb_env_info's me_mapaddr is
 * only the MDB_FIXEDMAP address), but every key it returns points into the
 * map: take the first record of the main database (the names of our three
 * databases, committed by store_open) and find the /proc/self/maps range
 * that holds it. (Matching by device and inode instead fails on overlayfs
 * and btrfs, where the two disagree.) */
static void store_find_map(store *s)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned long addr = 0;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    MDB_dbi main_db;
    if (mdb_dbi_open(txn, NULL, 0, &main_db) == 0 && mdb_cursor_open(txn, main_db, &cur) == 0) {
        if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0)
            addr = (unsigned long)k.mv_data;
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    FILE *f = addr != 0 ? fopen("/proc/self/maps", "r") : NULL;
    if (f != NULL) {
        char line[512];
        unsigned long lo, hi;
        while (fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= addr && addr < hi) {
                s->map_addr = (void *)lo;
                s->map_len = hi - lo;
                break;
            }
        fclose(f);
    }
    if (s->map_addr == NULL)
        log_warn("LMDB map of %s not found in /proc/self/maps: its pages stay mapped", s->path);
}

int store_open(const char *path, uint32_t max_locks, store **out)
{
    store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -LOCKD_ENOMEM;
    snprintf(s->path, sizeof(s->path), "%s", path);
    int rc = mdb_env_create(&s->env);
    if (rc != 0) {
        free(s);
        return store_fail("env_create", rc);
    }
    /* Room for every lock at its largest (name + value + B-tree overhead),
     * never less than 64 MiB, twice over plus 1 GiB: while a snapshot's read
     * transaction is open (seconds, with a large state on a busy machine)
     * LMDB cannot reuse the pages commits free, and every commit copies its
     * path through the tree. A full map would stop the Raft process. The
     * file is sparse and the map is address space: size follows use. */
    size_t map = (size_t)max_locks * (LOCKD_NAME_MAX + STORE_VALUE_MAX + 96);
    if (map < ((size_t)64 << 20))
        map = (size_t)64 << 20;
    map = map * 2 + ((size_t)1 << 30);
    mdb_env_set_mapsize(s->env, map);
    mdb_env_set_maxdbs(s->env, 4);
    /* MDB_WRITEMAP: commits write into the shared file mapping instead of
     * pwrite()ing every dirty page (measured: the copies showed in the Raft
     * process's profile); with MDB_NOSYNC a process crash still loses
     * nothing, the page cache holds it. */
    rc = mdb_env_open(s->env, path, MDB_NOSUBDIR | MDB_NOSYNC | MDB_WRITEMAP | MDB_NOTLS, 0600);
    if (rc != 0)
        goto fail_env;
    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        goto fail_env;
    if ((rc = mdb_dbi_open(txn, "locks", MDB_CREATE, &s->locks)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "waiters", MDB_CREATE, &s->waiters)) != 0) {
        mdb_txn_abort(txn);
        goto fail_env;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail_env;
    store_find_map(s);
    *out = s;
    return 0;
fail_env:
    log_error("lmdb open %s failed: %s", path, mdb_strerror(rc));
    mdb_env_close(s->env);
    free(s);
    return -LOCKD_EIO;
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    if (s->txn != NULL)
        mdb_txn_abort(s->txn);
    store_snapshot_end(s);
    mdb_env_sync(s->env, 1);
    mdb_env_close(s->env);
    free(s);
}

/* Walks the locks table in name order inside txn. */
static int store_scan_locks(store *s, MDB_txn *txn, int (*fn)(const shm_lock *rec, void *arg), void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->locks, &cur);
    if (rc != 0)
        return store_fail("cursor_open", rc);
    int ret = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        shm_lock rec;
        if (k.mv_size == 0 || k.mv_size > LOCKD_NAME_MAX || store_decode_value(v.mv_data, v.mv_size, &rec) != 0) {
            log_error("lmdb %s: undecodable lock record (key %zu bytes)", s->path, k.mv_size);
            ret = -LOCKD_ECORRUPT;
            break;
        }
        memcpy(rec.name, k.mv_data, k.mv_size);
        rec.name[k.mv_size] = '\0';
        rec.name_len = (uint8_t)k.mv_size;
        if ((ret = fn(&rec, arg)) != 0)
            break;
    }
    if (ret == 0 && rc != MDB_NOTFOUND)
        ret = store_fail("cursor_get", rc);
    mdb_cursor_close(cur);
    return ret;
}

int store_load(store *s, struct store_meta *meta, int (*fn)(const shm_lock *rec, void *arg), void *arg)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return store_fail("txn_begin(read)", rc);
    int ret = 0;
    s->touched = true;
    MDB_val k = {sizeof(META_KEY) - 1, (void *)META_KEY}, v;
    memset(meta, 0, sizeof(*meta));
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == 0 && v.mv_size == 16) {
        meta->applied_index = get_u64(v.mv_data);
        meta->next_token = get_u64((const uint8_t *)v.mv_data + 8);
    } else if (rc != MDB_NOTFOUND) {
        ret = rc == 0 ? -LOCKD_ECORRUPT : store_fail("get(meta)", rc);
    }
    if (ret == 0)
        ret = store_scan_locks(s, txn, fn, arg);
    mdb_txn_abort(txn);
    return ret;
}

int store_begin(store *s)
{
    if (s->txn != NULL)
        return 0;
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->txn);
    if (rc != 0) {
        s->txn = NULL;
        return store_fail("txn_begin", rc);
    }
    return 0;
}

int store_put(store *s, const shm_lock *rec)
{
    uint8_t buf[STORE_VALUE_MAX];
    MDB_val k = {rec->name_len, (void *)rec->name};
    MDB_val v = {store_encode_value(rec, buf), buf};
    int rc = mdb_put(s->txn, s->locks, &k, &v, 0);
    return rc == 0 ? 0 : store_fail("put", rc);
}

int store_del(store *s, const char *name, size_t len)
{
    MDB_val k = {len, (void *)name};
    int rc = mdb_del(s->txn, s->locks, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return -LOCKD_ENOENT;
    return rc == 0 ? 0 : store_fail("del", rc);
}

int store_clear(store *s)
{
    int rc = mdb_drop(s->txn, s->locks, 0);
    if (rc == 0)
        rc = mdb_drop(s->txn, s->waiters, 0);
    return rc == 0 ? 0 : store_fail("drop", rc);
}

static size_t waiter_key(const char *name, size_t len, uint64_t id, uint8_t *key)
{
    memcpy(key, name, len);
    key[len] = 0;
    for (int i = 0; i < 8; i++)
        key[len + 1 + i] = (uint8_t)(id >> (56 - 8 * i));
    return len + 9;
}

int store_put_waiter(store *s, const char *name, size_t len, const struct waiter *w)
{
    uint8_t key[LOCKD_NAME_MAX + 9], val[9 + LOCKD_OWNER_MAX];
    put_u64(val, w->ttl_ms);
    val[8] = w->owner_len;
    memcpy(val + 9, w->owner, w->owner_len);
    MDB_val k = {waiter_key(name, len, w->id, key), key}, v = {9 + (size_t)w->owner_len, val};
    int rc = mdb_put(s->txn, s->waiters, &k, &v, 0);
    return rc == 0 ? 0 : store_fail("put(waiter)", rc);
}

int store_del_waiter(store *s, const char *name, size_t len, uint64_t id)
{
    uint8_t key[LOCKD_NAME_MAX + 9];
    MDB_val k = {waiter_key(name, len, id, key), key};
    int rc = mdb_del(s->txn, s->waiters, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return -LOCKD_ENOENT;
    return rc == 0 ? 0 : store_fail("del(waiter)", rc);
}

int store_clear_waiters(store *s)
{
    int rc = mdb_drop(s->txn, s->waiters, 0);
    return rc == 0 ? 0 : store_fail("drop(waiters)", rc);
}

/* Walks the waiters table (each queue in FIFO order) inside txn. */
static int store_scan_waiters(store *s, MDB_txn *txn,
                              int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg), void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->waiters, &cur);
    if (rc != 0)
        return store_fail("cursor_open(waiters)", rc);
    int ret = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data, *vp = v.mv_data;
        struct waiter w;
        if (k.mv_size < 10 || k.mv_size > LOCKD_NAME_MAX + 9 || kp[k.mv_size - 9] != 0 || v.mv_size < 9 ||
            vp[8] > LOCKD_OWNER_MAX || v.mv_size != 9u + vp[8]) {
            ret = -LOCKD_ECORRUPT;
            break;
        }
        w.id = 0;
        for (int i = 0; i < 8; i++)
            w.id = w.id << 8 | kp[k.mv_size - 8 + i];
        w.ttl_ms = get_u64(vp);
        w.owner_len = vp[8];
        memcpy(w.owner, vp + 9, w.owner_len);
        w.owner[w.owner_len] = '\0';
        if ((ret = fn((const char *)kp, k.mv_size - 9, &w, arg)) != 0)
            break;
    }
    if (ret == 0 && rc != MDB_NOTFOUND)
        ret = store_fail("cursor_get(waiters)", rc);
    mdb_cursor_close(cur);
    return ret;
}

int store_load_waiters(store *s, int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg), void *arg)
{
    s->touched = true;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return store_fail("txn_begin(read)", rc);
    rc = store_scan_waiters(s, txn, fn, arg);
    mdb_txn_abort(txn);
    return rc;
}

int store_commit(store *s, const struct store_meta *meta)
{
    uint8_t buf[16];
    put_u64(buf, meta->applied_index);
    put_u64(buf + 8, meta->next_token);
    MDB_val k = {sizeof(META_KEY) - 1, (void *)META_KEY}, v = {sizeof(buf), buf};
    int rc = mdb_put(s->txn, s->meta, &k, &v, 0);
    if (rc != 0) {
        store_abort(s);
        return store_fail("put(meta)", rc);
    }
    rc = mdb_txn_commit(s->txn);
    s->txn = NULL;
    s->touched = true;
    return rc == 0 ? 0 : store_fail("txn_commit", rc);
}

int store_release_pages(store *s)
{
    if (s->txn != NULL || s->map_addr == NULL || !atomic_exchange(&s->touched, false))
        return 0;
    /* A shared file mapping: this only drops our page-table entries. Dirty
     * pages stay dirty in the page cache, and a reader (the snapshot thread)
     * faults the same pages back in. The whole map, not just up to the last
     * page in use: an aborted transaction may have written beyond it, and
     * the kernel skips unpopulated ranges cheaply. */
    if (madvise(s->map_addr, s->map_len, MADV_DONTNEED) != 0) {
        log_warn("madvise(LMDB map, %zu bytes): %s", s->map_len, strerror(errno));
        s->touched = true;
        return -LOCKD_EIO;
    }
    return 0;
}
void store_abort(store *s)
{
    if (s->txn != NULL)
        mdb_txn_abort(s->txn);
    s->txn = NULL;
}
int store_sync(store *s)
{
    int rc = mdb_env_sync(s->env, 1);
    return rc == 0 ? 0 : store_fail("env_sync", rc);
}

/* ---- snapshots --------------------------------------------------------- */

int store_snapshot_begin(store *s, struct store_meta *meta, uint64_t *n_locks, uint64_t *n_waiters)
{
    if (s->snap != NULL)
        return -LOCKD_EAGAIN;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->snap);
    if (rc != 0) {
        s->snap = NULL;
        return store_fail("txn_begin(snapshot)", rc);
    }
    MDB_val k = {sizeof(META_KEY) - 1, (void *)META_KEY}, v;
    memset(meta, 0, sizeof(*meta));
    rc = mdb_get(s->snap, s->meta, &k, &v);
    if (rc == 0 && v.mv_size == 16) {
        meta->applied_index = get_u64(v.mv_data);
        meta->next_token = get_u64((const uint8_t *)v.mv_data + 8);
    } else if (rc != MDB_NOTFOUND) {
        store_snapshot_end(s);
        return -LOCKD_ECORRUPT;
    }
    MDB_stat st;
    if ((rc = mdb_stat(s->snap, s->locks, &st)) != 0) {
        store_snapshot_end(s);
        return store_fail("stat(locks)", rc);
    }
    *n_locks = st.ms_entries;
    if ((rc = mdb_stat(s->snap, s->waiters, &st)) != 0) {
        store_snapshot_end(s);
        return store_fail("stat(waiters)", rc);
    }
    *n_waiters = st.ms_entries;
    s->snap_meta = *meta;
    s->snap_locks = *n_locks;
    s->snap_waiters = *n_waiters;
    return 0;
}

int store_snapshot_info(store *s, struct store_meta *meta, uint64_t *n_locks, uint64_t *n_waiters)
{
    if (s->snap == NULL)
        return -LOCKD_EINVAL;
    *meta = s->snap_meta;
    *n_locks = s->snap_locks;
    *n_waiters = s->snap_waiters;
    return 0;
}

int store_snapshot_scan(store *s, int (*lock_fn)(const shm_lock *rec, void *arg),
                        int (*waiter_fn)(const char *name, size_t len, const struct waiter *w, void *arg), void *arg)
{
    if (s->snap == NULL)
        return -LOCKD_EINVAL;
    int rc = store_scan_locks(s, s->snap, lock_fn, arg);
    return rc != 0 ? rc : store_scan_waiters(s, s->snap, waiter_fn, arg);
}

void store_snapshot_end(store *s)
{
    if (s->snap != NULL)
        mdb_txn_abort(s->snap);
    s->snap = NULL;
    s->touched = true;
}
