/* raftproc/forward.h: a follower's connection to the leader's raftproc (its
 * peer port), so that any node serves the whole API behind a load balancer.
 * Requests are relayed unchanged but for their id, pipelined on one TCP
 * connection, batched per loop turn; answers come back matched by id. The
 * connection follows the leader: a leader change closes it and every request
 * in flight on it ends with an unknown outcome. */
#ifndef LOCKD_RAFTPROC_FORWARD_H
#define LOCKD_RAFTPROC_FORWARD_H

#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "proto/lockd.pb-c.h"

typedef struct forwarder forwarder;

/* Called once per forwarded request: resp is the leader's answer (valid
 * during the call) or NULL when the outcome is unknown (connection lost,
 * leader changed, no answer within the API timeout); `why` says which. */
typedef void (*forward_cb)(void *arg, const Lockd__Response *resp, const char *why);

int forwarder_create(uv_loop_t *loop, const struct lockd_config *cfg, forwarder **out);

/* Relays req to the leader `leader_id` whose Raft address is
 * leader_raft_address (its peer port is that port + 1000). req->id is replaced
 * (and restored before return). Returns a forward handle > 0 (used by
 * forwarder_cancel), or -LOCKD_ENOENT (unknown leader), -LOCKD_EAGAIN
 * (connection backlog full), -LOCKD_ENOMEM. cb is called only after a
 * successful return. */
int64_t forwarder_send(forwarder *f, uint64_t leader_id, const char *leader_raft_address, Lockd__Request *req,
                       forward_cb cb, void *arg);

/* Tells the leader that the client of forward handle `fid` left (its queued
 * acquire must leave the queue). Best effort. */
void forwarder_cancel(forwarder *f, int64_t fid);

/* Drops the connection and ends everything in flight (outcome unknown). */
void forwarder_reset(forwarder *f, const char *why);

/* The leader is now leader_id (0: none known): requests in flight to
 * another node end with an unknown outcome right away instead of at their
 * deadline (the old leader may be gone or stopped). */
void forwarder_leader_changed(forwarder *f, uint64_t leader_id);

void forwarder_close(forwarder *f);

#endif
