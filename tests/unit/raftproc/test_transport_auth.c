/* tests/unit/raftproc/test_transport_auth.c: the cluster-key handshake on
 * libraft's real TCP transport, on loopback: two transports with the same
 * key hand each other clean streams (libraft's own preamble, id and
 * address included); a transport with another key, a plain libraft
 * transport, a preamble with an absurd address length and a silent
 * connection never reach libraft's accept callback; closing with a
 * handshake in flight cancels it and the loop closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "raftproc/transport_auth.h"

#define KEY1 "8f3a6b1c2d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e\n"
#define KEY2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"

struct fx {
    uv_loop_t loop;
    struct raft_uv_transport server, client;
    struct raft_uv_connect req;
    struct peer_keyring k1, k2;
    char address[32];
    int port;
    struct uv_stream_s *accepted, *connected;
    raft_id accepted_id;
    char accepted_address[64];
    int connect_status, connect_done;
    unsigned closed;
};

static struct fx *cur;

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address, struct uv_stream_s *stream)
{
    (void)t;
    cur->accepted = stream;
    cur->accepted_id = id;
    snprintf(cur->accepted_address, sizeof cur->accepted_address, "%s", address);
}

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    (void)req;
    cur->connect_status = status;
    cur->connected = stream;
    cur->connect_done = 1;
}

static void on_closed(struct raft_uv_transport *t)
{
    (void)t;
    cur->closed++;
}

static void free_handle(uv_handle_t *h)
{
    raft_free(h);
}

static void keyring(struct peer_keyring *k, const char *text)
{
    char err[128];
    assert_int_equal(peer_keyring_parse(text, strlen(text), "k", k, err, sizeof err), 0);
}

/* Runs the loop until pred() or 5 s (bounded, not a sleep). */
static void run_until(int (*pred)(void))
{
    uint64_t deadline = uv_now(&cur->loop) + 5000;
    while (!pred() && uv_now(&cur->loop) < deadline)
        uv_run(&cur->loop, UV_RUN_ONCE);
}

static uv_timer_t tick;
static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* A server transport (wrapped with server_keys) listening on a free port. */
static void fx_open(struct fx *f, const struct peer_keyring *server_keys)
{
    memset(f, 0, sizeof *f);
    cur = f;
    keyring(&f->k1, KEY1);
    keyring(&f->k2, KEY2);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    assert_int_equal(raft_uv_tcp_init(&f->server, &f->loop), 0);
    assert_int_equal(transport_auth_wrap(&f->server, &f->loop, server_keys ? server_keys : &f->k1), 0);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int rv = -1;
    for (int attempt = 0; attempt < 20 && rv != 0; attempt++) {
        f->port = 20000 + rand() % 10000;
        snprintf(f->address, sizeof f->address, "127.0.0.1:%d", f->port);
        assert_int_equal(f->server.init(&f->server, 1, f->address), 0);
        rv = f->server.listen(&f->server, on_accept);
    }
    assert_int_equal(rv, 0);
}

static int closed_one(void)
{
    return cur->closed >= 1;
}

static void fx_close(struct fx *f, bool client_used)
{
    if (f->accepted)
        uv_close((uv_handle_t *)f->accepted, free_handle);
    if (f->connected)
        uv_close((uv_handle_t *)f->connected, free_handle);
    unsigned want = client_used ? 2 : 1;
    f->closed = 0;
    f->server.close(&f->server, on_closed);
    if (client_used)
        f->client.close(&f->client, on_closed);
    uint64_t deadline = uv_now(&f->loop) + 5000;
    while (f->closed < want && uv_now(&f->loop) < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->closed, want);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    raft_uv_tcp_close(&f->server);
    if (client_used)
        raft_uv_tcp_close(&f->client);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    cur = NULL;
}

static int connect_finished(void)
{
    return cur->connect_done && (cur->connect_status != 0 || cur->accepted != NULL);
}

static void fx_connect(struct fx *f, const struct peer_keyring *client_keys)
{
    assert_int_equal(raft_uv_tcp_init(&f->client, &f->loop), 0);
    if (client_keys)
        assert_int_equal(transport_auth_wrap(&f->client, &f->loop, client_keys), 0);
    assert_int_equal(f->client.init(&f->client, 2, "127.0.0.1:2"), 0);
    assert_int_equal(f->client.connect(&f->client, &f->req, 1, f->address, on_connect), 0);
    run_until(connect_finished);
}

static int nodelay_of(struct uv_stream_s *stream)
{
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)stream, &fd), 0);
    int on = -1;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    return on != 0;
}

static void test_same_key_hands_clean_streams_to_libraft(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    fx_connect(&f, &f.k1);
    assert_int_equal(f.connect_status, 0);
    assert_non_null(f.accepted);
    assert_int_equal(f.accepted_id, 2);
    assert_string_equal(f.accepted_address, "127.0.0.1:2");
    assert_true(nodelay_of(f.accepted));
    assert_true(nodelay_of(f.connected));
    /* the first byte libraft would send arrives as the first byte read */
    uv_os_fd_t a, c;
    uv_fileno((uv_handle_t *)f.accepted, &a);
    uv_fileno((uv_handle_t *)f.connected, &c);
    assert_int_equal(send(c, "RAFT", 4, 0), 4);
    char buf[8] = {0};
    ssize_t n = 0;
    for (int i = 0; i < 500 && n <= 0; i++) {
        n = recv(a, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            uv_run(&f.loop, UV_RUN_ONCE);
    }
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "RAFT", 4);
    struct transport_auth_stats st;
    transport_auth_get_stats(&f.server, &st);
    assert_int_equal(st.accepted, 1);
    transport_auth_get_stats(&f.client, &st);
    assert_int_equal(st.connected, 1);
    fx_close(&f, true);
}

static void test_other_key_never_reaches_libraft(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    fx_connect(&f, &f.k2);
    assert_int_equal(f.connect_status, RAFT_NOCONNECTION);
    assert_null(f.connected);
    assert_null(f.accepted);
    struct transport_auth_stats st;
    transport_auth_get_stats(&f.client, &st);
    assert_int_equal(st.connect_refused, 1);
    fx_close(&f, true);
}

static int server_refused(void)
{
    struct transport_auth_stats st;
    transport_auth_get_stats(&cur->server, &st);
    return st.refused > 0;
}

static void test_plain_libraft_peer_is_refused(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    fx_connect(&f, NULL); /* libraft's connect succeeds once its preamble is written... */
    run_until(server_refused);
    assert_true(server_refused()); /* ...but the server closes it unproven */
    assert_null(f.accepted);
    fx_close(&f, true);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void test_absurd_preamble_and_silence_are_refused(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    /* protocol 1, id 7, address length 2^40: libraft would try to allocate it */
    uint8_t pre[24] = {1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
    int fd = raw_connect(f.port);
    assert_int_equal(send(fd, pre, sizeof pre, 0), (ssize_t)sizeof pre);
    run_until(server_refused);
    assert_true(server_refused());
    close(fd);
    /* a connection that says nothing is closed at the deadline */
    struct transport_auth_stats before, after;
    transport_auth_get_stats(&f.server, &before);
    fd = raw_connect(f.port);
    uint64_t deadline = uv_now(&f.loop) + 3 * TRANSPORT_AUTH_TIMEOUT_MS;
    do {
        uv_run(&f.loop, UV_RUN_ONCE);
        transport_auth_get_stats(&f.server, &after);
    } while (after.refused == before.refused && uv_now(&f.loop) < deadline);
    assert_int_equal(after.refused, before.refused + 1);
    close(fd);
    /* a flood of silent connections: beyond the pending bound, closed at once */
    int fds[TRANSPORT_AUTH_PENDING_MAX + 8];
    for (int i = 0; i < TRANSPORT_AUTH_PENDING_MAX + 8; i++)
        fds[i] = raw_connect(f.port);
    deadline = uv_now(&f.loop) + 2000;
    do {
        uv_run(&f.loop, UV_RUN_ONCE);
        transport_auth_get_stats(&f.server, &after);
    } while (after.dropped_pending < 8 && uv_now(&f.loop) < deadline);
    assert_true(after.dropped_pending >= 8);
    assert_null(f.accepted);
    for (int i = 0; i < TRANSPORT_AUTH_PENDING_MAX + 8; i++)
        close(fds[i]);
    fx_close(&f, false);
}

static void test_close_cancels_a_handshake_in_flight(void **state)
{
    (void)state;
    /* a "server" that accepts and never answers */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    assert_int_equal(listen(ls, 4), 0);

    struct fx f;
    fx_open(&f, NULL);
    snprintf(f.address, sizeof f.address, "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(raft_uv_tcp_init(&f.client, &f.loop), 0);
    assert_int_equal(transport_auth_wrap(&f.client, &f.loop, &f.k1), 0);
    assert_int_equal(f.client.init(&f.client, 2, "127.0.0.1:2"), 0);
    assert_int_equal(f.client.connect(&f.client, &f.req, 1, f.address, on_connect), 0);
    /* let the TCP connect and libraft's preamble complete: the handshake waits */
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_false(f.connect_done);
    f.closed = 0;
    f.client.close(&f.client, on_closed);
    uint64_t deadline = uv_now(&f.loop) + 5000;
    while ((!f.connect_done || f.closed < 1) && uv_now(&f.loop) < deadline)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_true(f.connect_done);
    assert_int_equal(f.connect_status, RAFT_CANCELED);
    assert_int_equal(f.closed, 1);
    raft_uv_tcp_close(&f.client);
    /* the server transport closes as usual */
    f.server.close(&f.server, on_closed);
    while (f.closed < 2 && uv_now(&f.loop) < deadline)
        uv_run(&f.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    raft_uv_tcp_close(&f.server);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    close(ls);
    (void)closed_one;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_hands_clean_streams_to_libraft),
        cmocka_unit_test(test_other_key_never_reaches_libraft),
        cmocka_unit_test(test_plain_libraft_peer_is_refused),
        cmocka_unit_test(test_absurd_preamble_and_silence_are_refused),
        cmocka_unit_test(test_close_cancels_a_handshake_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
