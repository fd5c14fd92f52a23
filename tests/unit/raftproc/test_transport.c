/* tests/unit/raftproc/test_transport.c: transport_nodelay_wrap. Two real
 * libraft TCP transports on loopback, one listening and one connecting (the
 * library's own handshake runs), both wrapped: the stream each hands over
 * must have TCP_NODELAY set, and an unwrapped pair must not (so the check
 * can tell the difference). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "raftproc/transport.h"

struct pair {
    uv_loop_t loop;
    struct raft_uv_transport server, client;
    struct raft_uv_connect req;
    struct uv_stream_s *accepted, *connected;
    int connect_status;
    bool connect_done;
    unsigned closed;
};

static struct pair *current;

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address, struct uv_stream_s *stream)
{
    assert_int_equal(id, 2);
    current->accepted = stream;
}

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    current->connect_status = status;
    current->connected = stream;
    current->connect_done = true;
}

static void on_stream_closed(uv_handle_t *h)
{
    raft_free(h);
}

static void on_transport_closed(struct raft_uv_transport *t)
{
    current->closed++;
}

static int nodelay_of(struct uv_stream_s *stream)
{
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)stream, &fd), 0);
    int on = -1;
    socklen_t len = sizeof(on);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    return on != 0;
}

/* Connects a client transport to a listening one; returns the stream
 * options seen on each side through *accepted_nodelay / *connected_nodelay. */
static void connect_pair(bool wrap, int *accepted_nodelay, int *connected_nodelay)
{
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    current = p;
    assert_int_equal(uv_loop_init(&p->loop), 0);
    assert_int_equal(raft_uv_tcp_init(&p->server, &p->loop), 0);
    assert_int_equal(raft_uv_tcp_init(&p->client, &p->loop), 0);
    if (wrap) {
        transport_nodelay_wrap(&p->server);
        transport_nodelay_wrap(&p->client);
    }
    /* A port below the ephemeral range; retry a few on a clash. */
    char address[32];
    int rv = -1;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int attempt = 0; attempt < 20 && rv != 0; attempt++) {
        snprintf(address, sizeof(address), "127.0.0.1:%d", 20000 + rand() % 10000);
        assert_int_equal(p->server.init(&p->server, 1, address), 0);
        rv = p->server.listen(&p->server, on_accept);
        if (rv != 0) {
            p->server.close(&p->server, on_transport_closed);
            uv_run(&p->loop, UV_RUN_NOWAIT);
            raft_uv_tcp_close(&p->server);
            assert_int_equal(raft_uv_tcp_init(&p->server, &p->loop), 0);
            if (wrap)
                transport_nodelay_wrap(&p->server);
        }
    }
    assert_int_equal(rv, 0);
    assert_int_equal(p->client.init(&p->client, 2, "127.0.0.1:1"), 0);
    assert_int_equal(p->client.connect(&p->client, &p->req, 1, address, on_connect), 0);
    for (int i = 0; i < 5000 && (!p->connect_done || p->accepted == NULL); i++)
        uv_run(&p->loop, UV_RUN_ONCE);
    assert_true(p->connect_done);
    assert_int_equal(p->connect_status, 0);
    assert_non_null(p->accepted);
    *accepted_nodelay = nodelay_of(p->accepted);
    *connected_nodelay = nodelay_of(p->connected);

    uv_close((uv_handle_t *)p->accepted, on_stream_closed);
    uv_close((uv_handle_t *)p->connected, on_stream_closed);
    p->server.close(&p->server, on_transport_closed);
    p->client.close(&p->client, on_transport_closed);
    while (p->closed < 2)
        uv_run(&p->loop, UV_RUN_ONCE);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    raft_uv_tcp_close(&p->server);
    raft_uv_tcp_close(&p->client);
    assert_int_equal(uv_loop_close(&p->loop), 0);
    free(p);
    current = NULL;
}

static void test_wrapped_transport_streams_have_nodelay(void **state)
{
    int accepted, connected;
    connect_pair(true, &accepted, &connected);
    assert_true(accepted);
    assert_true(connected);
}

static void test_unwrapped_transport_streams_do_not(void **state)
{
    /* What libraft 0.15 does on its own: if this starts failing, the library
     * sets TCP_NODELAY itself and the wrapper can go. */
    int accepted, connected;
    connect_pair(false, &accepted, &connected);
    assert_false(accepted);
    assert_false(connected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrapped_transport_streams_have_nodelay),
        cmocka_unit_test(test_unwrapped_transport_streams_do_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
