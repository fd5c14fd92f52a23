/* raftproc/transport_auth.h: the cluster-key handshake (peer_auth.h) on the
 * C Raft library's TCP transport, so that libraft never reads a byte from a
 * connection that has not proven the key.
 *
 * libraft's own listener reads its preamble (protocol, server id, address
 * length, address) from anyone, allocates the address length it read, and
 * has no deadline. So `listen` is replaced, not wrapped: our listener
 * accepts, reads the preamble itself (address at most 256 bytes), runs the
 * server handshake, checks that the id the preamble claims is the id the
 * handshake proved, and only then hands the stream to libraft's accept
 * callback, exactly as libraft's listener would have. `connect` is
 * wrapped: libraft connects and writes its preamble, then we run the
 * client handshake (expecting the node we meant to reach) before libraft
 * gets the stream; a failure is RAFT_NOCONNECTION and libraft retries as
 * for any failed connection. `close` cancels handshakes in flight and
 * closes our handles before libraft's own close runs.
 *
 * Every stream handed to libraft has TCP_NODELAY (transport.h's reason).
 * The transport interface is the same in libraft 0.15 and 0.22.1. */
#ifndef LOCKD_RAFTPROC_TRANSPORT_AUTH_H
#define LOCKD_RAFTPROC_TRANSPORT_AUTH_H

#include <stdint.h>

#include <raft/uv.h>
#include <uv.h>

#include "raftproc/peer_auth.h"

/* Handshakes a listener runs at once; more connections are closed at
 * accept (a flood of silent connections cannot exhaust raftproc). */
#define TRANSPORT_AUTH_PENDING_MAX 32
/* Preamble + handshake must finish within this. */
#define TRANSPORT_AUTH_TIMEOUT_MS 2000

struct transport_auth_stats {
    uint64_t accepted, refused, connected, connect_refused, dropped_pending;
};

/* Call after raft_uv_tcp_init and before raft_uv_init (instead of
 * transport_nodelay_wrap), with the transport's loop. keys must outlive
 * the transport. One transport
 * per process in lockd (up to 4: tests run a pair). Returns 0,
 * -LOCKD_EINVAL or -LOCKD_EFULL. */
int transport_auth_wrap(struct raft_uv_transport *t, uv_loop_t *loop, const struct peer_keyring *keys);

void transport_auth_get_stats(const struct raft_uv_transport *t, struct transport_auth_stats *out);

#endif
