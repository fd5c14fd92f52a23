/* raftproc/server.h: raftproc's side of the worker connections. Accepts the
 * workers on the Unix socket the master bound, reads Request frames, gathers
 * every command that arrived in one loop turn into one Raft entry (group
 * commit), and answers each request when its entry is applied, or with a
 * timeout after --api-timeout. */
#ifndef LOCKD_RAFTPROC_SERVER_H
#define LOCKD_RAFTPROC_SERVER_H

#include <uv.h>

#include "common/config.h"
#include "proto/lockd.pb-c.h"
#include "shm/stats.h"
#include "raftproc/consensus.h"
#include "shm/table.h"

typedef struct rp_server rp_server;

/* Starts accepting on listen_fd (owned by the master: not closed here).
 * Errors: -LOCKD_EIO, -LOCKD_ENOMEM. */
int rp_server_start(uv_loop_t *loop, const struct lockd_config *cfg, int listen_fd, consensus *c, rp_server **out);

/* Stops reading new requests and answers queued ones with ST_UNAVAILABLE;
 * in-flight proposals are still answered when they complete. */
void rp_server_stop(rp_server *s);

/* Closes every handle; the loop must run once more to finish. */
void rp_server_close(rp_server *s);

/* Queues a command raftproc itself issues (OP_EXPIRE of a lease whose
 * revision is `revision`) into this turn's entry; nobody is answered.
 * Errors: -LOCKD_EINVAL (stopped, bad name), -LOCKD_ENOMEM. */
int rp_server_submit(rp_server *s, Lockd__Op op, const char *name, size_t len, uint64_t revision);

/* Queues OP_RESET_WAITERS: a new leader drops the queues it inherited
 * (their clients waited on the old leader, which answered them 503). */
int rp_server_reset_waiters(rp_server *s);

/* Queues OP_RESTART_LEASES: makes the full TTL a new leader gives every
 * lease visible in the replicated state (renewed_at_ms). */
int rp_server_restart_leases(rp_server *s);

/* Sends the follower's catch-up probe (see consensus_events). */
void rp_server_catch_up(rp_server *s);

/* The known leader changed: forwarded requests to the old one end now. */
void rp_server_leader_changed(rp_server *s, uint64_t leader_id);

/* Answers every queued waiter 503 (this node is no longer the leader). */
void rp_server_leadership_lost(rp_server *s);

/* Counters for /metrics and the benchmark notes. */
struct rp_server_stats {
    uint64_t entries;       /* Raft entries proposed */
    uint64_t commands;      /* commands in them */
    uint64_t timeouts;      /* requests answered 504 */
    unsigned max_batch;     /* largest entry, in commands */
    uint64_t queued;        /* acquires that waited in a queue */
    uint64_t handoffs;      /* locks handed from a release to a waiter */
    uint64_t entry_bytes;   /* payload bytes proposed */
    uint64_t commit_count;  /* proposals applied */
    uint64_t commit_sum_ns; /* propose-to-apply time, summed */
    uint64_t commit_buckets[SHM_STATS_BUCKETS];
};
void rp_server_stats(const rp_server *s, struct rp_server_stats *out);
size_t rp_server_waiting(const rp_server *s);

#endif
