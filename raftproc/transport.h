/* raftproc/transport.h: TCP_NODELAY for the C Raft library's TCP transport.
 *
 * libraft 0.15's raft_uv_tcp never disables Nagle's algorithm. An
 * AppendEntries (or its result) written while the previous segment is
 * unacknowledged then waits for the peer's delayed ACK, up to 40 ms: a
 * 3-node try-lock benchmark had p99 41 ms (1 node: 7 ms) and 0.6x of the
 * 1-node throughput. transport_nodelay_wrap interposes on the transport's
 * listen and connect so that every stream it hands to libraft, accepted or
 * connected, has TCP_NODELAY set first. */
#ifndef LOCKD_RAFTPROC_TRANSPORT_H
#define LOCKD_RAFTPROC_TRANSPORT_H

#include <raft/uv.h>

/* Call after raft_uv_tcp_init and before raft_uv_init. The wrapper keeps the
 * original callbacks in static storage: one transport per process (raftproc
 * has exactly one). */
void transport_nodelay_wrap(struct raft_uv_transport *t);

#endif
