/* raftproc/store.h: the LMDB copy of the applied lock state. Written only by
 * raftproc, one write transaction per applied Raft entry, with the applied
 * index and the next fencing token stored in the same transaction so they can
 * never disagree with the locks.
 *
 * Durability choice: the environment is opened with MDB_NOSYNC. The Raft log
 * (fsync'd before any 200 leaves) is the durable record; LMDB is a
 * materialised view that makes restarts fast. A process crash loses nothing
 * (the page cache survives it); after a machine crash LMDB may lag, and the
 * entries after its stored applied index are replayed from the Raft log
 * (apply is idempotent by index). If the file cannot be opened at all it is
 * moved aside and rebuilt from the Raft snapshot and log. */
#ifndef LOCKD_RAFTPROC_STORE_H
#define LOCKD_RAFTPROC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "raftproc/waitq.h"
#include "shm/table.h"

typedef struct store store;

struct store_meta {
    uint64_t applied_index; /* last Raft index whose effects are stored */
    uint64_t next_token;    /* next fencing token to hand out */
};

/* Opens (creating if needed) the LMDB file at path (MDB_NOSUBDIR; the lock
 * file is path + "-lock"), sized for max_locks. *out is owned by the caller
 * (store_close). Errors: -LOCKD_EIO (logged with the LMDB message). */
int store_open(const char *path, uint32_t max_locks, store **out);
void store_close(store *s);

/* Reads the meta record and calls fn(rec, arg) for every stored lock in name
 * order; stops early with fn's non-zero return. Errors: -LOCKD_EIO,
 * -LOCKD_ECORRUPT (a record that does not decode). */
int store_load(store *s, struct store_meta *meta, int (*fn)(const shm_lock *rec, void *arg), void *arg);

/* Write transaction for one applied entry. Between begin and commit, put and
 * del may be called any number of times. abort discards. */
int store_begin(store *s);
int store_put(store *s, const shm_lock *rec);
int store_del(store *s, const char *name, size_t len);
/* Wait queues (inside the open transaction). Key: name, 0x00, id (8 bytes
 * big endian) so a cursor walks each queue in FIFO order. */
int store_put_waiter(store *s, const char *name, size_t len, const struct waiter *w);
int store_del_waiter(store *s, const char *name, size_t len, uint64_t id);
int store_clear_waiters(store *s);
/* Calls fn for every stored waiter (read transaction of its own). */
int store_load_waiters(store *s, int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg), void *arg);

/* Deletes every lock and waiter (inside the open transaction): used by
 * snapshot restore. */
int store_clear(store *s);
int store_commit(store *s, const struct store_meta *meta);
void store_abort(store *s);

/* Unmaps (MADV_DONTNEED) the file pages of the LMDB map this process has
 * touched since the last call, if any transaction committed since. Nothing
 * serves reads from LMDB (the shm table does), so the B-tree pages a commit
 * walked are of no use in this process's resident set: they stay in the
 * kernel's page cache, reclaimable, and fault back in when a later commit
 * walks them again. Call between transactions (a no-op while one is open).
 * Returns 0 or -LOCKD_EIO (logged). */
int store_release_pages(store *s);

/* Snapshot support: begin opens a read transaction (a consistent view of
 * the last committed entry) and reports the meta record and the number of
 * locks and waiters; scan walks both tables inside it (from any thread:
 * the environment is MDB_NOTLS); end closes it. One at a time. */
int store_snapshot_begin(store *s, struct store_meta *meta, uint64_t *n_locks, uint64_t *n_waiters);
/* What begin reported, for the thread that encodes. */
int store_snapshot_info(store *s, struct store_meta *meta, uint64_t *n_locks, uint64_t *n_waiters);
int store_snapshot_scan(store *s, int (*lock_fn)(const shm_lock *rec, void *arg),
                        int (*waiter_fn)(const char *name, size_t len, const struct waiter *w, void *arg), void *arg);
void store_snapshot_end(store *s);

/* Flushes to disk (mdb_env_sync force): called after a Raft snapshot so the
 * store is at least as durable as the snapshot. */
int store_sync(store *s);

/* Encodes/decodes the stored value of a lock (everything but the name).
 * Exposed for the unit test. encode returns the length (<= STORE_VALUE_MAX). */
#define STORE_VALUE_MAX (1 + 5 * 10 + 1 + LOCKD_OWNER_MAX)
size_t store_encode_value(const shm_lock *rec, uint8_t *dst);
int store_decode_value(const uint8_t *src, size_t len, shm_lock *rec);

#endif
