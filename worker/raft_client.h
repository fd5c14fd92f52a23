/* worker/raft_client.h: a worker's one persistent Unix stream connection to
 * raftproc. Sends Lockd__Request frames, matches Lockd__Response frames to
 * their callers by id, many in flight; never blocks the event loop.
 * Reconnects by itself with backoff when raftproc goes away. */
#ifndef LOCKD_WORKER_RAFT_CLIENT_H
#define LOCKD_WORKER_RAFT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "common/config.h"
#include "proto/lockd.pb-c.h"

typedef struct raft_client raft_client;

/* How a call ended. */
enum raft_client_outcome {
    RAFT_CLIENT_ANSWERED = 0, /* resp is raftproc's answer */
    RAFT_CLIENT_UNAVAILABLE,  /* connection lost before the answer: outcome unknown */
    RAFT_CLIENT_TIMEOUT,      /* the backstop ran out: outcome unknown */
    RAFT_CLIENT_SHUTDOWN,     /* the worker is stopping: outcome unknown */
};

/* Called exactly once per accepted call, from the event loop (never from
 * inside raft_client_send). resp is only valid during the call and is NULL
 * unless outcome == RAFT_CLIENT_ANSWERED. Not called at all if the pool the
 * call was allocated from is cleared first (the client went away). */
typedef void (*raft_client_cb)(void *arg, const Lockd__Response *resp, enum raft_client_outcome outcome);

/* Creates the client on loop and starts connecting to cfg->raft_socket.
 * cfg must outlive the client. Returns 0 and *out (owned by the caller), or
 * -LOCKD_EINVAL (socket path does not fit a sockaddr_un). */
int raft_client_create(h2o_loop_t *loop, const struct lockd_config *cfg, raft_client **out);

/* Queues msg (its id is assigned here; the strings are copied into the
 * output buffer before return) and returns 0; the frames queued during one
 * loop turn leave in one write. The call's record is allocated from pool so
 * that clearing the pool (the HTTP request ended) cancels the call: a later
 * answer is dropped. A backstop timer of cfg->api_timeout_ms + extra_ms +
 * 1 s ends the call with RAFT_CLIENT_TIMEOUT if raftproc never answers.
 * Errors (cb is then never called): -LOCKD_EAGAIN not connected or the
 * output buffer is over its bound (raftproc is not reading),
 * -LOCKD_ETOOBIG msg over LOCKD_FRAME_MAX. */
int raft_client_send(raft_client *c, h2o_mem_pool_t *pool, Lockd__Request *msg, uint64_t extra_ms, raft_client_cb cb,
                     void *arg);

/* The caller of call `id` (msg->id after raft_client_send) is gone: its
 * callback will not be called, and a queued acquire leaves its queue. */
void raft_client_abandon(raft_client *c, uint64_t id);

/* 1 when connected (or connecting) and accepting calls. */
int raft_client_is_up(const raft_client *c);

/* Number of calls waiting for an answer. */
size_t raft_client_inflight(const raft_client *c);

/* Ends every waiting call with RAFT_CLIENT_SHUTDOWN (used at the end of the
 * drain). */
void raft_client_cancel_all(raft_client *c);

/* Closes the connection, stops the timers and frees c. Calls still waiting
 * are ended with RAFT_CLIENT_SHUTDOWN first. */
void raft_client_destroy(raft_client *c);

#endif
