/* tests/unit/worker/test_h2o_guard.c: the h2o interposers against a real
 * h2o 2.2.5 context in this process, clients on socketpairs: h2o's
 * plain-text errors become JSON only when enabled, and an HTTP/2
 * connection that resets streams faster than the bound is closed (with the
 * frames it had already sent dropped) while a calm one stays open. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <h2o.h>

#include "common/errors.h"
#include "worker/h2o_guard.h"

static h2o_globalconf_t gconf;
static h2o_context_t ctx;
static h2o_accept_ctx_t actx;
static unsigned handled;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    static h2o_generator_t gen = {NULL, NULL};
    handled++;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_start_response(req, &gen);
    h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT("{\"ok\":true}"));
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as in every lockd process: h2o writes to closed peers */
    h2o_config_init(&gconf);
    gconf.max_request_entity_size = 1024;
    gconf.http1.upgrade_to_http2 = 1; /* this test needs h2c to reach HTTP/2 */
    h2o_hostconf_t *host = h2o_config_register_host(&gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof *h);
    h->on_req = on_req;
    h2o_context_init(&ctx, h2o_evloop_create(), &gconf);
    actx.ctx = &ctx;
    actx.hosts = gconf.hosts;
    return 0;
}

/* A client socket whose other end h2o serves. */
static int client(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    h2o_socket_t *sock = h2o_evloop_socket_create(ctx.loop, sv[0], 0);
    h2o_accept(&actx, sock);
    return sv[1];
}

/* Runs h2o and reads what it sends to fd until `until` is seen, the peer
 * closes (*closed = 1), or 5 s pass (bounded, not a sleep). */
static size_t exchange(int fd, const void *req, size_t len, char *out, size_t cap, const char *until, int *closed)
{
    size_t off = 0, got = 0;
    *closed = 0;
    for (int turn = 0; turn < 500; turn++) {
        if (off < len) {
            ssize_t w = send(fd, (const char *)req + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
        }
        h2o_evloop_run(ctx.loop, 10);
        for (;;) {
            ssize_t r = recv(fd, out + got, cap - 1 - got, MSG_DONTWAIT);
            if (r > 0) {
                got += (size_t)r;
                continue;
            }
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                *closed = 1;
            break;
        }
        out[got] = '\0';
        if (*closed || (until && memmem(out, got, until, strlen(until)) != NULL) || got == cap - 1)
            break;
    }
    return got;
}

static void expect_answer(const char *req, size_t len, const char *status_line, const char *ctype, const char *body)
{
    int fd = client();
    char out[4096];
    int closed;
    exchange(fd, req, len, out, sizeof out, body, &closed);
    if (strncmp(out, status_line, strlen(status_line)) != 0 || strstr(out, ctype) == NULL || strstr(out, body) == NULL)
        fail_msg("request %.40s...: got\n%s", req, out);
    close(fd);
}

static void test_interposition_is_in_effect(void **state)
{
    (void)state;
    assert_true(h2o_guard_interposed());
}

static char many_headers[8192];
static size_t many_headers_len;

static void build_many_headers(void)
{
    size_t o = (size_t)snprintf(many_headers, sizeof many_headers, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 101; i++)
        o += (size_t)snprintf(many_headers + o, sizeof many_headers - o, "X-H%d: v\r\n", i);
    o += (size_t)snprintf(many_headers + o, sizeof many_headers - o, "\r\n");
    many_headers_len = o;
}

static void test_disabled_passes_h2o_answers_through(void **state)
{
    (void)state;
    h2o_guard_disable();
    const char garbage[] = "GARBAGE\r\n\r\n";
    expect_answer(garbage, sizeof garbage - 1, "HTTP/1.1 400", "text/plain", "Bad Request");
    const char big[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    expect_answer(big, sizeof big - 1, "HTTP/1.1 413", "text/plain", "request entity is too large");
    const char ok[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_answer(ok, sizeof ok - 1, "HTTP/1.1 200", "application/json", "{\"ok\":true}");
}

static void test_enabled_every_h2o_answer_is_json(void **state)
{
    (void)state;
    struct h2o_guard_options o;
    h2o_guard_defaults(&o);
    assert_int_equal(h2o_guard_enable(&o), 0);
    build_many_headers();
    static const struct {
        const char *req, *status, *body;
    } cases[] = {
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400", "{\"error\":\"Malformed HTTP request\"}"},
        {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400", "{\"error\":\"Malformed HTTP request\"}"},
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", "HTTP/1.1 400", "{\"error\":\"Malformed HTTP request\"}"},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", "HTTP/1.1 413",
         "{\"error\":\"Request body too large (max 4096 bytes)\"}"},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "HTTP/1.1 400",
         "{\"error\":\"Malformed Content-Length header\"}"},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 400",
         "{\"error\":\"Unsupported Transfer-Encoding (only chunked)\"}"},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400",
         "{\"error\":\"Malformed chunked request body\"}"},
        {"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", "HTTP/1.1 417",
         "{\"error\":\"Unsupported Expect header (only 100-continue)\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_answer(cases[i].req, strlen(cases[i].req), cases[i].status, "application/json", cases[i].body);
    expect_answer(many_headers, many_headers_len, "HTTP/1.1 400", "application/json",
                  "{\"error\":\"Too many header fields (max 100)\"}");
    /* the handler's own answers are untouched */
    const char ok[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_answer(ok, sizeof ok - 1, "HTTP/1.1 200", "application/json", "{\"ok\":true}");
    struct h2o_guard_stats st;
    h2o_guard_get_stats(&st);
    assert_true(st.bad_requests_replaced >= 4);
    assert_true(st.errors_rewritten >= 5);
    /* the body's length is right (the client reads exactly the JSON) */
    int fd = client();
    char out[1024];
    int closed;
    exchange(fd, "GARBAGE\r\n\r\n", 11, out, sizeof out, NULL, &closed);
    assert_true(closed);
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "{\"error\":\"Malformed HTTP request\"}");
    close(fd);
    h2o_guard_disable();
}

static void test_message_mapping(void **state)
{
    (void)state;
    char buf[128];
    assert_string_equal(h2o_guard_message(400, "invalid request", 15, buf, sizeof buf), "Invalid request");
    assert_string_equal(h2o_guard_message(400, "a\"b\\c\x01", 6, buf, sizeof buf), "Abc");
    assert_string_equal(h2o_guard_message(502, "", 0, buf, sizeof buf), "HTTP error 502");
}

/* ---- HTTP/2 ------------------------------------------------------------------------ */

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static size_t frame(uint8_t *p, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *payload, size_t len)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(sid >> 24);
    p[6] = (uint8_t)(sid >> 16);
    p[7] = (uint8_t)(sid >> 8);
    p[8] = (uint8_t)sid;
    if (len)
        memcpy(p + 9, payload, len);
    return 9 + len;
}

/* preface, SETTINGS, then n x (HEADERS GET / ; RST_STREAM CANCEL), then a PING */
static uint8_t *rapid_reset(unsigned n, size_t *len)
{
    static const uint8_t hpack[] = {0x82, 0x84, 0x86, 0x01, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'};
    static const uint8_t cancel[] = {0, 0, 0, 8};
    static const uint8_t ping[] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t *b = malloc(64 + n * (9 + sizeof hpack + 13) + 17);
    assert_non_null(b);
    size_t o = sizeof PREFACE - 1;
    memcpy(b, PREFACE, o);
    o += frame(b + o, 4, 0, 0, NULL, 0);
    for (unsigned i = 0; i < n; i++) {
        uint32_t sid = 1 + 2 * i;
        o += frame(b + o, 1, 0x5, sid, hpack, sizeof hpack);
        o += frame(b + o, 3, 0, sid, cancel, sizeof cancel);
    }
    o += frame(b + o, 6, 0, 0, ping, sizeof ping);
    *len = o;
    return b;
}

/* Does out hold a PING ACK (type 6, flags 1)? */
static int has_ping_ack(const char *out, size_t len)
{
    for (size_t i = 0; i + 9 <= len;) {
        const uint8_t *f = (const uint8_t *)out + i;
        size_t fl = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (f[3] == 6 && (f[4] & 1))
            return 1;
        i += 9 + fl;
    }
    return 0;
}

static void test_rapid_reset_closes_only_the_fast_connection(void **state)
{
    (void)state;
    struct h2o_guard_options o;
    h2o_guard_defaults(&o);
    o.reset_rate.burst = 50;
    o.reset_rate.per_sec = 10;
    o.now_ms = fake_clock;
    fake_now = 1000;
    assert_int_equal(h2o_guard_enable(&o), 0);

    /* a calm client: 20 resets, then a PING that is answered */
    size_t len;
    uint8_t *calm = rapid_reset(20, &len);
    int fd = client();
    static char out[1 << 20];
    int closed;
    handled = 0;
    size_t got = exchange(fd, calm, len, out, sizeof out, NULL, &closed);
    for (int i = 0; i < 50 && !has_ping_ack(out, got) && !closed; i++)
        got += exchange(fd, "", 0, out + got, sizeof out - got, NULL, &closed);
    assert_false(closed);
    assert_true(has_ping_ack(out, got));
    close(fd);
    free(calm);
    struct h2o_guard_stats st;
    h2o_guard_get_stats(&st);
    assert_int_equal(st.h2_conns_closed, 0);

    /* an attacker: 2000 streams reset in one burst */
    handled = 0;
    uint8_t *attack = rapid_reset(2000, &len);
    fd = client();
    got = exchange(fd, attack, len, out, sizeof out, NULL, &closed);
    for (int i = 0; i < 100 && !closed; i++)
        got += exchange(fd, "", 0, out + got, sizeof out - got, NULL, &closed);
    assert_true(closed);
    assert_false(has_ping_ack(out, got)); /* the rest of its frames were dropped */
    h2o_guard_get_stats(&st);
    assert_int_equal(st.h2_conns_closed, 1);
    assert_true(handled < 2000);
    close(fd);

    /* the same attack without the bound is served to the end */
    h2o_guard_disable();
    handled = 0;
    fd = client();
    got = exchange(fd, attack, len, out, sizeof out, NULL, &closed);
    for (int i = 0; i < 100 && !has_ping_ack(out, got) && !closed; i++)
        got += exchange(fd, "", 0, out + got, sizeof out - got, NULL, &closed);
    assert_false(closed);
    assert_true(has_ping_ack(out, got));
    close(fd);
    free(attack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interposition_is_in_effect),
        cmocka_unit_test(test_disabled_passes_h2o_answers_through),
        cmocka_unit_test(test_enabled_every_h2o_answer_is_json),
        cmocka_unit_test(test_message_mapping),
        cmocka_unit_test(test_rapid_reset_closes_only_the_fast_connection),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
