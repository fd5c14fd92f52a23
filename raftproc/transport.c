/* raftproc/transport.c: interposes on the libraft TCP transport's listen and
 * connect to set TCP_NODELAY on every peer stream (see transport.h). */
#include "raftproc/transport.h"

#include <uv.h>

#include "common/log.h"

static struct {
    int (*listen)(struct raft_uv_transport *t, raft_uv_accept_cb cb);
    int (*connect)(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id, const char *address,
                   raft_uv_connect_cb cb);
    raft_uv_accept_cb accept_cb;
    raft_uv_connect_cb connect_cb; /* libraft passes the same callback to every connect */
} orig;

static void transport_set_nodelay(struct uv_stream_s *stream)
{
    if (stream == NULL || stream->type != UV_TCP)
        return;
    int rc = uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    if (rc != 0)
        log_warn("TCP_NODELAY on a raft peer connection: %s", uv_strerror(rc));
}

static void transport_on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                                struct uv_stream_s *stream)
{
    transport_set_nodelay(stream);
    orig.accept_cb(t, id, address, stream);
}

static int transport_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    orig.accept_cb = cb;
    return orig.listen(t, transport_on_accept);
}

static void transport_on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    if (status == 0)
        transport_set_nodelay(stream);
    orig.connect_cb(req, stream, status);
}

static int transport_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id, const char *address,
                             raft_uv_connect_cb cb)
{
    if (orig.connect_cb != NULL && orig.connect_cb != cb) {
        /* Not how 0.15 behaves; pass it through untouched rather than mix up callbacks. */
        log_warn("raft transport: connect with an unexpected callback; TCP_NODELAY not set on it");
        return orig.connect(t, req, id, address, cb);
    }
    orig.connect_cb = cb;
    return orig.connect(t, req, id, address, transport_on_connect);
}

void transport_nodelay_wrap(struct raft_uv_transport *t)
{
    orig.listen = t->listen;
    orig.connect = t->connect;
    t->listen = transport_listen;
    t->connect = transport_connect;
}
