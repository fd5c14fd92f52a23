/* shm/stats.h: the node's counters for GET /metrics, in a second shared
 * mapping that every process may write (the lock table itself is read-only
 * in the workers). Each worker owns one slot (index = worker number), padded
 * to cache lines so that two workers never write the same line; it adds to
 * its own slot with relaxed atomic adds and the scraping worker sums all
 * slots. raftproc publishes its figures into a slot of its own. Nothing here
 * blocks or takes a lock.
 *
 * The segment is created together with the lock table (shm_table_create,
 * in the master before it forks), so it outlives every child: counters stay
 * monotonic across worker and raftproc restarts. Reach it through
 * shm_table_stats().
 *
 * The segment only knows array sizes; what each index means (route, method,
 * status code, bucket bound) belongs to the HTTP layer (worker/metrics.c),
 * which checks at compile time that its label sets fit. */
#ifndef LOCKD_SHM_STATS_H
#define LOCKD_SHM_STATS_H

#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"

typedef struct shm_stats shm_stats; /* the shared segment; opaque */

/* Worker slots: index = worker number (1..LOCKD_MAX_WORKERS); 0 is spare
 * (tests, tools). */
#define SHM_STATS_SLOTS (LOCKD_MAX_WORKERS + 1)

/* Capacities of the per-slot HTTP arrays. */
#define SHM_STATS_ROUTES 8
#define SHM_STATS_METHODS 8
#define SHM_STATS_CODES 16
#define SHM_STATS_BUCKETS 20 /* per route, the last one is the +Inf overflow */

/* A plain snapshot (or sum over slots) of the HTTP counters. Buckets are
 * NOT cumulative: buckets[r][b] counts the requests that fell into bucket b
 * alone; the renderer accumulates. */
struct shm_stats_http {
    uint64_t requests[SHM_STATS_ROUTES][SHM_STATS_METHODS][SHM_STATS_CODES];
    uint64_t buckets[SHM_STATS_ROUTES][SHM_STATS_BUCKETS];
    uint64_t sum_ns[SHM_STATS_ROUTES];
};

/* raftproc's figures. Counters (c_*) are made monotonic across raftproc
 * restarts by shm_stats_raft_started; gauges (g_*) are published as is. */
struct shm_stats_raft {
    uint64_t c_entries;                           /* Raft entries proposed by this node */
    uint64_t c_commands;                          /* commands in those entries */
    uint64_t c_timeouts;                          /* requests answered 504 */
    uint64_t c_queued;                            /* acquires that waited in a queue */
    uint64_t c_handoffs;                          /* locks handed from a release to a waiter */
    uint64_t c_expirations;                       /* lease expiry commands issued as leader */
    uint64_t c_entry_bytes;                       /* payload bytes of the entries proposed */
    uint64_t c_commit_count;                      /* proposals that were committed and applied */
    uint64_t c_commit_sum_ns;                     /* their propose-to-apply time (the log's fsync included) */
    uint64_t c_commit_buckets[SHM_STATS_BUCKETS]; /* same bounds as the HTTP histograms */
    uint64_t g_waiters;                           /* acquires waiting in queues (replicated state) */
    uint64_t g_max_batch;                         /* largest entry so far, in commands */
};

enum shm_stats_kind { SHM_STATS_WORKER = 0, SHM_STATS_RAFT = 1 };

/* Maps a zeroed segment. Called by shm_table_create; *out is owned by the
 * caller (shm_stats_destroy) and stays valid in children after fork().
 * Errors: -LOCKD_ENOMEM (mmap failed). */
int shm_stats_create(shm_stats **out);
void shm_stats_destroy(shm_stats *s);

/* ---- workers ------------------------------------------------------------ */

/* Counts one request of route/method/code (indices below the capacities;
 * larger ones are clamped to the last index) that took ns nanoseconds and
 * falls in latency bucket `bucket`. Three relaxed atomic adds on the slot's
 * own cache lines; safe when two processes share a slot (a worker and its
 * replacement during a reload). slot >= SHM_STATS_SLOTS is ignored. */
void shm_stats_http_record(shm_stats *s, unsigned slot, unsigned route, unsigned method, unsigned code, unsigned bucket,
                           uint64_t ns);

/* Sums every slot into *out. Each word is read atomically; the sum is not a
 * snapshot across words (a request recorded meanwhile may be half in it),
 * but every counter is monotonic from one call to the next. */
void shm_stats_http_sum(const shm_stats *s, struct shm_stats_http *out);

/* Records that process `pid` now runs in worker slot `slot` (or in the
 * raftproc slot for SHM_STATS_RAFT, slot ignored) and returns the pid that
 * held it before (0: none since the segment was created). */
pid_t shm_stats_claim(shm_stats *s, enum shm_stats_kind kind, unsigned slot, pid_t pid);

/* Counts one restart of a process of this kind. */
void shm_stats_count_restart(shm_stats *s, enum shm_stats_kind kind);

/* Restarts counted so far. */
uint64_t shm_stats_restarts(const shm_stats *s, enum shm_stats_kind kind);

/* ---- raftproc ----------------------------------------------------------- */

/* Called once when a raftproc starts: claims the raftproc slot (a previous
 * holder means this is a restart: counted), and makes the counters that the
 * new process publishes (starting again from 0) continue from the totals
 * already published. */
void shm_stats_raft_started(shm_stats *s, pid_t pid);

/* Publishes raftproc's current figures (its counters since it started). */
void shm_stats_publish_raft(shm_stats *s, const struct shm_stats_raft *cur);

/* Reads the published figures (totals since the segment was created). */
void shm_stats_read_raft(const shm_stats *s, struct shm_stats_raft *out);

/* The log level every process should use (lockctl log-level): written by
 * the master, read by the children once per loop turn; -1 until set. */
void shm_stats_set_log_level(shm_stats *s, int level);
int shm_stats_log_level(const shm_stats *s);

#endif
