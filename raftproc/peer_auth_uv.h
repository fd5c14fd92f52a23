/* raftproc/peer_auth_uv.h: runs the cluster-key handshake (peer_auth.h) on
 * a connected libuv stream, with a deadline, reading exactly the
 * handshake's bytes so that whatever the peer sends next stays in the
 * socket for libraft or the forwarding protocol. Used by the Raft transport
 * wrapper (both directions) and by the peer port (server.c accepts,
 * forward.c connects). */
#ifndef LOCKD_RAFTPROC_PEER_AUTH_UV_H
#define LOCKD_RAFTPROC_PEER_AUTH_UV_H

#include <stdint.h>

#include <uv.h>

#include "raftproc/peer_auth.h"

typedef struct peer_auth_uv peer_auth_uv;

/* Called exactly once. status 0: authenticated, h->peer_id is the peer's
 * node id and peer_handshake_session(h, ...) gives the frame keys.
 * Negative: -LOCKD_ETIMEDOUT-like failures come as -LOCKD_EAGAIN (deadline),
 * -LOCKD_EIO (the peer closed or a socket error), -LOCKD_ESHUTDOWN
 * (peer_auth_uv_cancel), or the handshake's own error, with h->error.
 * The stream is left open with reading stopped and its `data` restored; it
 * is the caller's to use or close. h is valid during the callback only. */
typedef void (*peer_auth_uv_cb)(void *arg, uv_stream_t *stream, int status, const struct peer_handshake *h);

/* Starts the handshake on stream (connected, not reading). keys must
 * outlive the handshake. Returns 0 (cb will be called) or a negative error
 * (cb will not be called). *out (may be NULL) is valid until cb runs. */
int peer_auth_uv_start(uv_stream_t *stream, const struct peer_keyring *keys, enum peer_role role,
                       enum peer_purpose purpose, uint64_t self_id, uint64_t expect_id, uint64_t timeout_ms,
                       peer_auth_uv_cb cb, void *arg, peer_auth_uv **out);

/* Ends a handshake in progress now: cb runs before this returns, with
 * -LOCKD_ESHUTDOWN. (For a transport closing with handshakes in flight.) */
void peer_auth_uv_cancel(peer_auth_uv *a);

#endif
