/* raftproc/fsm.h: the lock state machine. Applies committed Raft entries
 * (LogEntry payloads) in index order to the shared-memory table and the LMDB
 * store. Deterministic: the outcome depends only on the prior state and the
 * entry (time comes from the entry's time_ms, never from this node's clock),
 * so every replica and every replay agree. Idempotent on replay: entries at
 * or below the stored applied index are skipped. */
#ifndef LOCKD_RAFTPROC_FSM_H
#define LOCKD_RAFTPROC_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/lockd.pb-c.h"
#include "raftproc/store.h"
#include "shm/table.h"

typedef struct fsm fsm;

/* The outcome of one command of an applied entry. */
struct fsm_result {
    int status;    /* LOCKD__STATUS__ST_* */
    bool has_lock; /* lock is meaningful: the lock after the command, or
                      the holder on a conflict */
    shm_lock lock;
    const char *error;  /* static detail for a conflict ("Token mismatch") or NULL */
    uint64_t waiter_id; /* ST_QUEUED: the new waiter's id; granted: the waiter served */
    bool granted;       /* a release/expire handed the lock to the first waiter */
    shm_lock grant;     /* granted: the waiter's new lock */
};

/* Observer of state changes, called during apply (after the table changed):
 * rec is the new record (acquire/renew) or NULL (released/expired). Used by
 * the lease timers and waiter queues; may be NULL. */
typedef void (*fsm_change_cb)(void *arg, const char *name, size_t name_len, const shm_lock *rec);

/* Creates the FSM over table (owned by the caller) and st (may be NULL for
 * --store memory; owned by the caller). */
int fsm_create(shm_table *table, store *st, fsm **out);
void fsm_destroy(fsm *f);
void fsm_set_change_cb(fsm *f, fsm_change_cb cb, void *arg);

/* Empties the table, then loads it from the store (if any). Leaves the table
 * in LOADING state. Errors from store_load. */
int fsm_load(fsm *f);

uint64_t fsm_applied_index(const fsm *f);
uint64_t fsm_next_token(const fsm *f);
size_t fsm_waiters(const fsm *f);

/* The Raft entry payload of a LogEntry: fsm_entry_size bytes (a multiple of
 * 8), written by fsm_entry_encode into buf[0..len). */
size_t fsm_entry_size(const Lockd__LogEntry *e);
void fsm_entry_encode(const Lockd__LogEntry *e, void *buf, size_t len);

/* Applies the entry payload buf[0..len) at Raft index `index`. On return
 * *results points at *n results (one per command, in order; owned by the FSM,
 * valid until the next call). An entry at or below the applied index is
 * skipped (*n = 0). An undecodable entry is logged and applied as a no-op
 * (the same on every node). Returns 0, or -LOCKD_EIO when the store failed:
 * the caller must stop the process without acknowledging anything (the
 * table may be ahead of the store; a restart reloads from store + log). */
int fsm_apply(fsm *f, uint64_t index, const void *buf, size_t len, const struct fsm_result **results, size_t *n);

/* Serialises the whole state (format in fsm.c) into a raft_malloc'd buffer
 * that the caller hands to raft, from the shm table (loop thread only).
 * Errors: -LOCKD_ENOMEM. */
int fsm_snapshot(fsm *f, void **buf, size_t *len);

/* The same, from the store's read transaction already opened (on the loop,
 * right after the applied entry) by store_snapshot_begin; runs on any thread
 * (MVCC keeps the view while the loop applies further entries) and ends the
 * transaction. Errors: -LOCKD_ENOMEM, -LOCKD_EIO. */
int fsm_snapshot_store_from_open(store *st, void **buf, size_t *len);

/* Every queued waiter (tests and diagnostics). */
int fsm_foreach_waiter(const fsm *f, int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg),
                       void *arg);

/* Replaces the state with a snapshot buf[0..len). With at_start, a snapshot
 * older than what the store already holds is ignored (the store is newer;
 * the log replay skips what it has). Errors: -LOCKD_ECORRUPT, -LOCKD_EIO,
 * -LOCKD_EFULL (snapshot holds more locks than --max-locks). */
int fsm_restore(fsm *f, const void *buf, size_t len, bool at_start);

#endif
