/* shm/table.h: the applied lock state, mirrored into one shared mapping.
 * Exactly one writer (raftproc) and many readers (HTTP workers, and the
 * writer itself). Readers never block the writer and never see a torn
 * record: every record has a sequence counter (seqlock), and structural
 * index changes bump a table-wide counter that readers re-check.
 *
 * The mapping is created by the master before it forks (MAP_SHARED |
 * MAP_ANONYMOUS | MAP_NORESERVE), so it survives the restart of any child;
 * pages are only backed as records are used, so memory follows what is held.
 *
 * Layout (all offsets inside the one mapping, see table.c):
 *   header     magic, layout version, capacity, count, applied index/term,
 *              node status (role, leader, term, commit) under its own seqlock
 *   index      2^k buckets (k: the smallest with >= capacity * 10/7), each a
 *              64-bit word: 32-bit hash tag | 32-bit record id + 1 (0 = empty)
 *   records    capacity fixed-size records (32..64 bytes), allocated densely
 *   arena      name + owner bytes of each record, in 16-byte size classes
 */
#ifndef LOCKD_SHM_TABLE_H
#define LOCKD_SHM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "shm/stats.h"

typedef struct shm_table shm_table; /* process-local handle; opaque */

/* A reader's private copy of one lock record. */
typedef struct shm_lock {
    char name[LOCKD_NAME_MAX + 1];   /* NUL-terminated */
    char owner[LOCKD_OWNER_MAX + 1]; /* "" for an anonymous lock */
    uint8_t name_len;
    uint8_t owner_len;
    uint64_t token;          /* fencing token */
    uint64_t acquired_at_ms; /* wall clock, from the acquiring log entry */
    uint64_t renewed_at_ms;  /* wall clock, from the last acquire/renew entry */
    uint64_t ttl_ms;         /* 0 = no lease; at most 2^32-1 */
    uint64_t revision;       /* Raft index of the last acquire/renew */
} shm_lock;

/* States of the table as a whole, published in the header. */
enum shm_table_state {
    SHM_STATE_LOADING = 0, /* writer is (re)building: readers answer 503 */
    SHM_STATE_READY = 1,
};

/* Raft status as last published by raftproc (read with shm_table_status). */
typedef struct shm_node_status {
    uint64_t node_id;
    uint64_t leader_id; /* 0: unknown */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t
        last_contact_ms; /* CLOCK_MONOTONIC ms of the last leader contact (or, on the leader, of the last quorum) */
    uint32_t role;       /* 0 unavailable, 1 follower, 2 candidate, 3 leader (RAFT_* values) */
    uint32_t state;      /* enum shm_table_state */
    uint64_t next_token;
    char leader_address[64]; /* leader's HTTP "host:port", "" if unknown */
} shm_node_status;

/* "follower", "candidate", "leader" or "unavailable" for a status role. */
const char *shm_role_name(uint32_t role);

/* Bytes the mapping needs for max_locks records (for logs and tests). */
size_t shm_table_segment_size(uint32_t max_locks);

/* Creates the anonymous shared mapping for up to max_locks (1..2^28)
 * records, initialised empty, state LOADING. *out is owned by the caller
 * (shm_table_destroy) and stays valid in children after fork().
 * Errors: -LOCKD_EINVAL, -LOCKD_ENOMEM (mmap failed). */
int shm_table_create(uint32_t max_locks, shm_table **out);

/* Unmaps and frees the handle. */
void shm_table_destroy(shm_table *t);

/* Makes this process's view read-only (mprotect); call in every worker after
 * fork so that only raftproc can write. Returns 0 or -LOCKD_EIO. */
int shm_table_make_readonly(shm_table *t);

uint32_t shm_table_capacity(const shm_table *t);
uint32_t shm_table_count(const shm_table *t);

/* The node's counters for /metrics (shm/stats.h): a second mapping created
 * and destroyed with the table, writable in every process (make_readonly
 * does not touch it). Never NULL for a table from shm_table_create. */
shm_stats *shm_table_stats(const shm_table *t);

/* ---- readers (any process) ------------------------------------------- */

/* Looks up name[0..len). On success copies the record into *out and returns
 * 0; -LOCKD_ENOENT if not held; -LOCKD_EAGAIN if the table is LOADING or a
 * consistent copy could not be taken within a bounded number of retries
 * (the writer was mid-update every time: practically never). Never blocks,
 * never writes shared memory. */
int shm_table_lookup(const shm_table *t, const char *name, size_t len, shm_lock *out);

/* Copies the node status block consistently. */
void shm_table_status(const shm_table *t, shm_node_status *out);

/* Calls fn(rec, arg) with a consistent private copy of every held record, in
 * record-id order (not name order), until fn returns non-zero (returned;
 * fn should return a positive value). Walks the record array once: the
 * cost is one pass over every record ever used since the last clear
 * (O(capacity in use)), whatever fn keeps. Each record is copied under its
 * own seqlock and retried (bounded) while the writer changes it, so a copy
 * is never torn; a record the writer was preempted in the middle of is
 * retried at the end of the walk, yielding the CPU, for up to 50 ms. Guarantees, with the writer running concurrently:
 * a lock held for the whole scan is passed exactly once; a lock added or removed meanwhile may or may not be, and a
 * name released and acquired again meanwhile may be passed twice (once per record it lived in). Returns -LOCKD_EAGAIN
 * if the table is LOADING, was cleared during the scan, or a record stayed mid-update through every retry: the caller
 * must then discard what fn received. Never blocks, never writes shared memory. */
int shm_table_scan(const shm_table *t, int (*fn)(const shm_lock *rec, void *arg), void *arg);

/* ---- writer (raftproc only) ------------------------------------------ */

/* Inserts or replaces the record for rec->name. The strings are copied.
 * Errors: -LOCKD_EFULL (a new name and count == capacity; nothing changed),
 * -LOCKD_EINVAL (empty/oversize name or owner, ttl_ms > UINT32_MAX, or a
 * timestamp/revision above 2^48-1: they are stored in 48 bits). */
int shm_table_put(shm_table *t, const shm_lock *rec);

/* Removes name; -LOCKD_ENOENT if absent. */
int shm_table_remove(shm_table *t, const char *name, size_t len);

/* The writer's lookup: as shm_table_lookup, but answers in every state
 * (raftproc applies the log while readers still see LOADING). */
int shm_table_get(const shm_table *t, const char *name, size_t len, shm_lock *out);

/* Empties the table and sets state LOADING (readers answer 503 until
 * shm_table_set_state(t, SHM_STATE_READY)). */
void shm_table_clear(shm_table *t);

void shm_table_set_state(shm_table *t, enum shm_table_state state);

/* Publishes the node status block (state field is ignored; see set_state). */
void shm_table_publish_status(shm_table *t, const shm_node_status *st);

/* Calls fn(rec, arg) for every record, in no particular order, until fn
 * returns non-zero (that value is returned). Writer only (no concurrent
 * mutation). */
int shm_table_foreach(const shm_table *t, int (*fn)(const shm_lock *rec, void *arg), void *arg);

#endif
