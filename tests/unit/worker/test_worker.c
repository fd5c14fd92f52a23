/* tests/unit/worker/test_worker.c: one real worker process (worker_main in a
 * forked child) against a scripted raftproc played by this test over the
 * real Unix socket protocol, and raw HTTP/1.1 clients. Protects the status
 * mapping of raftproc answers, the shm read path, out-of-order matching,
 * loss of raftproc, the backstop timer, client disconnects and the drain. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/limits.h"
#include "proto/frame.h"
#include "proto/lockd.pb-c.h"
#include "shm/stats.h"
#include "shm/table.h"
#include "worker/metrics.h"
#include "worker/worker.h"

#define API_TIMEOUT_MS 300
#define IO_TIMEOUT_MS 5000

/* ---- fixture -------------------------------------------------------------- */

struct raft_conn {
    int fd;
    uint8_t buf[LOCKD_FRAME_MAX + 64];
    size_t len;
};

struct fixture {
    struct lockd_config cfg;
    shm_table *table;
    char dir[64];
    int raft_listen;
    int http_port;
    pid_t worker;
    struct raft_conn raft;
};

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    do
        rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc;
}

static int raft_accept(struct fixture *f)
{
    if (wait_fd(f->raft_listen, POLLIN, IO_TIMEOUT_MS) <= 0)
        return -1;
    f->raft.fd = accept(f->raft_listen, NULL, NULL);
    f->raft.len = 0;
    return f->raft.fd;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/lockd-test-worker-XXXXXX");
    assert_non_null(mkdtemp(f->dir));

    struct lockd_config *cfg = &f->cfg;
    cfg->node_id = 1;
    cfg->n_nodes = 1;
    cfg->nodes[0].id = 1;
    snprintf(cfg->nodes[0].http_host, sizeof cfg->nodes[0].http_host, "127.0.0.1");
    cfg->nodes[0].http_port = 2080;
    cfg->self = &cfg->nodes[0];
    cfg->workers = 1;
    snprintf(cfg->raft_socket, sizeof cfg->raft_socket, "%s/raft.sock", f->dir);
    cfg->api_timeout_ms = API_TIMEOUT_MS;
    cfg->ttl_min_ms = LOCKD_TTL_MIN_MS;
    cfg->ttl_max_ms = LOCKD_TTL_MAX_MS;
    cfg->wait_max_ms = LOCKD_WAIT_MAX_MS;
    cfg->log_level = LOG_ERROR;

    assert_int_equal(shm_table_create(64, &f->table), 0);
    shm_node_status st = {.node_id = 1,
                          .leader_id = 1,
                          .term = 3,
                          .commit_index = 7,
                          .applied_index = 7,
                          .role = 3,
                          .next_token = 10};
    shm_table_publish_status(f->table, &st);
    shm_table_set_state(f->table, SHM_STATE_READY);

    struct sockaddr_un ua = {.sun_family = AF_UNIX};
    snprintf(ua.sun_path, sizeof ua.sun_path, "%s/raft.sock", f->dir);
    f->raft_listen = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(f->raft_listen, (struct sockaddr *)&ua, sizeof ua), 0);
    assert_int_equal(listen(f->raft_listen, 16), 0);

    int http = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ia = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(http, (struct sockaddr *)&ia, sizeof ia), 0);
    assert_int_equal(listen(http, 128), 0);
    socklen_t len = sizeof ia;
    getsockname(http, (struct sockaddr *)&ia, &len);
    f->http_port = ntohs(ia.sin_port);

    f->worker = fork();
    assert_true(f->worker >= 0);
    if (f->worker == 0) {
        close(f->raft_listen);
        _exit(worker_main(&f->cfg, f->table, http, 1));
    }
    close(http);
    assert_true(raft_accept(f) >= 0);
    *state = f;
    return 0;
}

static int stop_worker(struct fixture *f)
{
    int status = -1;
    if (f->worker > 0) {
        kill(f->worker, SIGTERM);
        waitpid(f->worker, &status, 0);
        f->worker = 0;
    }
    return status;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    stop_worker(f);
    if (f->raft.fd > 0)
        close(f->raft.fd);
    close(f->raft_listen);
    unlink(f->cfg.raft_socket);
    rmdir(f->dir);
    shm_table_destroy(f->table);
    free(f);
    return 0;
}

/* ---- scripted raftproc ---------------------------------------------------- */

/* Next Request from the worker, or NULL on timeout/EOF. Free with
 * lockd__request__free_unpacked. */
static Lockd__Request *raft_recv(struct fixture *f, int timeout_ms)
{
    struct raft_conn *c = &f->raft;
    for (;;) {
        const uint8_t *payload;
        size_t plen;
        int n = frame_peek(c->buf, c->len, &payload, &plen);
        assert_true(n >= 0);
        if (n > 0) {
            Lockd__Request *r = lockd__request__unpack(NULL, plen, payload);
            assert_non_null(r);
            memmove(c->buf, c->buf + n, c->len - (size_t)n);
            c->len -= (size_t)n;
            return r;
        }
        if (wait_fd(c->fd, POLLIN, timeout_ms) <= 0)
            return NULL;
        ssize_t got = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (got <= 0)
            return NULL;
        c->len += (size_t)got;
    }
}

static void raft_send(struct fixture *f, Lockd__Response *r)
{
    uint8_t buf[1024];
    int n = frame_encode(&r->base, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(write(f->raft.fd, buf, (size_t)n), n);
}

static void raft_answer(struct fixture *f, uint64_t id, Lockd__Status status, Lockd__Lock *lock,
                        const char *error)
{
    Lockd__Response r = LOCKD__RESPONSE__INIT;
    r.id = id;
    r.status = status;
    r.leader_id = 1;
    if (lock) {
        r.lock = lock;
        r.has_lock = 1;
    }
    if (error)
        r.error = (char *)error;
    raft_send(f, &r);
}

/* ---- HTTP client ------------------------------------------------------------ */

struct http_resp {
    int status;
    char head[4096];
    char body[65536]; /* a /metrics page is ~15 KiB */
    size_t body_len;
};

static int http_open(struct fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)f->http_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void http_write(int fd, const char *method, const char *target, const char *body)
{
    char req[8192];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s",
                     method, target, body ? strlen(body) : 0, body ? body : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
}

/* Reads one response (no body after HEAD); returns 0, or -1 on timeout/EOF. */
static int http_read_ex(int fd, struct http_resp *r, int timeout_ms, int head)
{
    static char buf[sizeof r->head + sizeof r->body];
    size_t len = 0;
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (end) {
            size_t hl = (size_t)(end - buf) + 4;
            const char *cl = memmem(buf, hl, "Content-Length: ", 16);
            size_t blen = cl && !head ? strtoul(cl + 16, NULL, 10) : 0;
            assert_true(blen < sizeof r->body);
            if (len >= hl + blen) {
                size_t copy = hl < sizeof r->head - 1 ? hl : sizeof r->head - 1;
                memcpy(r->head, buf, copy);
                r->status = atoi(buf + 9);
                memcpy(r->body, buf + hl, blen);
                r->body_len = blen;
                return 0;
            }
        }
        if (wait_fd(fd, POLLIN, timeout_ms) <= 0)
            return -1;
        ssize_t got = read(fd, buf + len, sizeof buf - len);
        if (got <= 0)
            return -1;
        len += (size_t)got;
    }
}

static int http_read(int fd, struct http_resp *r, int timeout_ms)
{
    return http_read_ex(fd, r, timeout_ms, 0);
}

static struct http_resp *http_do(struct fixture *f, const char *method, const char *target,
                                 const char *body)
{
    static struct http_resp r;
    int fd = http_open(f);
    http_write(fd, method, target, body);
    assert_int_equal(http_read_ex(fd, &r, IO_TIMEOUT_MS, strcmp(method, "HEAD") == 0), 0);
    close(fd);
    return &r;
}

static void assert_header(const struct http_resp *r, const char *line)
{
    if (!strstr(r->head, line))
        fail_msg("header \"%s\" missing in:\n%s", line, r->head);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_get_reads_shm_without_raftproc(void **state)
{
    struct fixture *f = *state;
    shm_lock rec = {.name = "held",
                    .name_len = 4,
                    .owner = "me",
                    .owner_len = 2,
                    .token = 5,
                    .acquired_at_ms = 1000,
                    .renewed_at_ms = clock_wall_ms(),
                    .ttl_ms = 60000,
                    .revision = 6};
    assert_int_equal(shm_table_put(f->table, &rec), 0);

    struct http_resp *r = http_do(f, "GET", "/lock/held", NULL);
    assert_int_equal(r->status, 200);
    assert_header(r, "Content-Type: application/json");
    assert_header(r, "X-Lockd-Leader: 1");
    assert_header(r, "X-Lockd-Applied-Index: 7");
    assert_non_null(strstr(r->body,
                           "{\"name\":\"held\",\"locked\":true,\"owner\":\"me\",\"token\":5,"
                           "\"acquired_at_ms\":1000,\"ttl_ms\":60000,\"expires_in_ms\":"));

    r = http_do(f, "GET", "/lock/free", NULL);
    assert_int_equal(r->status, 404);
    assert_string_equal(r->body, "{\"error\":\"Not Found\",\"name\":\"free\",\"locked\":false}");

    r = http_do(f, "GET", "/lock/held", NULL);
    char cl[64];
    snprintf(cl, sizeof cl, "Content-Length: %zu", r->body_len);
    r = http_do(f, "HEAD", "/lock/held", NULL);
    assert_int_equal(r->status, 200);
    assert_header(r, cl);
    assert_header(r, "X-Lockd-Leader: 1");

    /* nothing reached raftproc */
    Lockd__Request *q = raft_recv(f, 50);
    assert_null(q);
}

static void test_loading_table_is_503(void **state)
{
    struct fixture *f = *state;
    shm_table_set_state(f->table, SHM_STATE_LOADING);
    struct http_resp *r = http_do(f, "GET", "/lock/x", NULL);
    assert_int_equal(r->status, 503);
    assert_header(r, "Retry-After: 1");
    assert_string_equal(r->body, "{\"error\":\"Service starting\"}");
    r = http_do(f, "GET", "/readyz", NULL);
    assert_int_equal(r->status, 503);
    assert_string_equal(r->body, "{\"status\":\"not ready\",\"reason\":\"Lock table is loading\"}");
    shm_table_set_state(f->table, SHM_STATE_READY);
    r = http_do(f, "GET", "/readyz", NULL);
    assert_int_equal(r->status, 200);
}

static void test_post_sends_acquire_and_renders_200(void **state)
{
    struct fixture *f = *state;
    int fd = http_open(f);
    http_write(fd, "POST", "/lock/job?owner=w1", "{\"ttl\":\"30s\",\"wait\":\"2s\"}");
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    assert_int_equal(q->op, LOCKD__OP__OP_ACQUIRE);
    assert_string_equal(q->name, "job");
    assert_string_equal(q->owner, "w1");
    assert_int_equal(q->ttl_ms, 30000);
    assert_int_equal(q->wait_ms, 2000);

    Lockd__Lock lk = LOCKD__LOCK__INIT;
    lk.name = "job";
    lk.owner = "w1";
    lk.token = 42;
    lk.ttl_ms = 30000;
    raft_answer(f, q->id, LOCKD__STATUS__ST_OK, &lk, NULL);
    lockd__request__free_unpacked(q, NULL);

    struct http_resp r;
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    close(fd);
    assert_int_equal(r.status, 200);
    assert_header(&r, "X-Lockd-Token: 42");
    assert_string_equal(r.body, "{\"name\":\"job\",\"locked\":true,\"owner\":\"w1\",\"token\":42,"
                                "\"ttl_ms\":30000,\"expires_in_ms\":30000}");
}

struct mapping_case {
    const char *method;
    Lockd__Status status;
    int with_lock;
    const char *error;
    int http;
    const char *body;
    const char *header;
};

static void test_raftproc_statuses_map_to_http(void **state)
{
    struct fixture *f = *state;
    static const struct mapping_case cases[] = {
        {"DELETE", LOCKD__STATUS__ST_OK, 0, NULL, 200, "{\"name\":\"m\",\"locked\":false}", NULL},
        {"POST", LOCKD__STATUS__ST_CONFLICT, 1, NULL, 409,
         "{\"error\":\"Lock conflict\",\"name\":\"m\",\"owner\":\"holder\"}", NULL},
        {"DELETE", LOCKD__STATUS__ST_CONFLICT, 1, "Token mismatch", 409,
         "{\"error\":\"Token mismatch\",\"name\":\"m\",\"owner\":\"holder\"}", NULL},
        {"DELETE", LOCKD__STATUS__ST_NOT_FOUND, 0, NULL, 404,
         "{\"error\":\"Not Found\",\"name\":\"m\",\"locked\":false}", NULL},
        {"POST", LOCKD__STATUS__ST_FULL, 0, NULL, 507,
         "{\"error\":\"Lock table is full (capacity 64)\"}", NULL},
        {"POST", LOCKD__STATUS__ST_NOT_LEADER, 0, NULL, 503,
         "{\"error\":\"No leader\",\"leader\":1}", "Retry-After: 1"},
        {"POST", LOCKD__STATUS__ST_UNAVAILABLE, 0, "Starting", 503, "{\"error\":\"Starting\"}",
         "Retry-After: 1"},
        {"POST", LOCKD__STATUS__ST_TIMEOUT, 0, NULL, 504,
         "{\"error\":\"Consensus timeout\",\"outcome\":\"unknown\"}", NULL},
        {"POST", LOCKD__STATUS__ST_BAD_REQUEST, 0, "Bad name", 400, "{\"error\":\"Bad name\"}",
         NULL},
        {"POST", LOCKD__STATUS__ST_INTERNAL, 0, NULL, 500, "{\"error\":\"Internal error\"}", NULL},
        {"GET", LOCKD__STATUS__ST_NOT_FOUND, 0, NULL, 404,
         "{\"error\":\"Not Found\",\"name\":\"m\",\"locked\":false}", "X-Lockd-Applied-Index: 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct mapping_case *c = &cases[i];
        int fd = http_open(f);
        http_write(fd, c->method, strcmp(c->method, "GET") ? "/lock/m" : "/lock/m?consistent=true",
                   NULL);
        Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
        assert_non_null(q);
        Lockd__Lock lk = LOCKD__LOCK__INIT;
        lk.name = "m";
        lk.owner = "holder";
        lk.token = 9;
        raft_answer(f, q->id, c->status, c->with_lock ? &lk : NULL, c->error);
        lockd__request__free_unpacked(q, NULL);
        struct http_resp r;
        assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
        close(fd);
        assert_int_equal(r.status, c->http);
        assert_string_equal(r.body, c->body);
        if (c->header)
            assert_header(&r, c->header);
    }
}

/* Many requests in flight on the one connection, answered in reverse. */
static void test_answers_matched_by_id_out_of_order(void **state)
{
    struct fixture *f = *state;
    enum { N = 40 };
    int fds[N];
    uint64_t ids[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        char target[32];
        snprintf(target, sizeof target, "/lock/n%d", i);
        fds[i] = http_open(f);
        http_write(fds[i], "POST", target, NULL);
    }
    for (int i = 0; i < N; i++) {
        Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
        assert_non_null(q);
        ids[i] = q->id;
        snprintf(names[i], sizeof names[i], "%s", q->name);
        lockd__request__free_unpacked(q, NULL);
    }
    for (int i = N - 1; i >= 0; i--) {
        Lockd__Lock lk = LOCKD__LOCK__INIT;
        lk.name = names[i];
        lk.token = 1000 + (uint64_t)atoi(names[i] + 1);
        raft_answer(f, ids[i], LOCKD__STATUS__ST_OK, &lk, NULL);
    }
    for (int i = 0; i < N; i++) {
        struct http_resp r;
        char expect[160];
        assert_int_equal(http_read(fds[i], &r, IO_TIMEOUT_MS), 0);
        close(fds[i]);
        assert_int_equal(r.status, 200);
        snprintf(expect, sizeof expect,
                 "{\"name\":\"n%d\",\"locked\":true,\"owner\":null,\"token\":%d,\"ttl_ms\":null,"
                 "\"expires_in_ms\":null}",
                 i, 1000 + i);
        assert_string_equal(r.body, expect);
    }
}

static void test_lost_raftproc_fails_inflight_and_reconnects(void **state)
{
    struct fixture *f = *state;
    int fd = http_open(f);
    http_write(fd, "POST", "/lock/lost", NULL);
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    lockd__request__free_unpacked(q, NULL);
    close(f->raft.fd);
    f->raft.fd = -1;

    struct http_resp r;
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    close(fd);
    assert_int_equal(r.status, 503);
    assert_header(&r, "Retry-After: 1");
    assert_string_equal(r.body, "{\"error\":\"Raft process unavailable\",\"outcome\":\"unknown\"}");

    /* it comes back by itself */
    assert_true(raft_accept(f) >= 0);
    fd = http_open(f);
    http_write(fd, "DELETE", "/lock/lost?force=true", NULL);
    q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    assert_int_equal(q->op, LOCKD__OP__OP_RELEASE);
    assert_true(q->force);
    raft_answer(f, q->id, LOCKD__STATUS__ST_OK, NULL, NULL);
    lockd__request__free_unpacked(q, NULL);
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    close(fd);
    assert_int_equal(r.status, 200);
}

static void test_oversized_frame_drops_connection(void **state)
{
    struct fixture *f = *state;
    int fd = http_open(f);
    http_write(fd, "POST", "/lock/big", NULL);
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    lockd__request__free_unpacked(q, NULL);
    uint8_t hdr[4] = {0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(write(f->raft.fd, hdr, 4), 4);
    struct http_resp r;
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    close(fd);
    assert_int_equal(r.status, 503);
    close(f->raft.fd);
    assert_true(raft_accept(f) >= 0);
}

static void test_unanswered_request_gets_504_and_late_answer_is_dropped(void **state)
{
    struct fixture *f = *state;
    int fd = http_open(f);
    uint64_t t0 = clock_monotonic_ms();
    http_write(fd, "POST", "/lock/slow", NULL);
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    uint64_t id = q->id;
    lockd__request__free_unpacked(q, NULL);
    struct http_resp r;
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    uint64_t took = clock_monotonic_ms() - t0;
    close(fd);
    assert_int_equal(r.status, 504);
    assert_string_equal(r.body, "{\"error\":\"Consensus timeout\",\"outcome\":\"unknown\"}");
    assert_true(took >= API_TIMEOUT_MS + 1000 - 50);

    raft_answer(f, id, LOCKD__STATUS__ST_OK, NULL, NULL); /* late: dropped */
    struct http_resp *h = http_do(f, "GET", "/healthz", NULL);
    assert_int_equal(h->status, 200);
    assert_string_equal(h->body, "{\"status\":\"ok\"}");
}

static void test_client_gone_before_answer_is_harmless(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 20; i++) {
        int fd = http_open(f);
        http_write(fd, "POST", "/lock/gone?wait=1s", NULL);
        Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
        assert_non_null(q);
        close(fd); /* the client leaves first */
        usleep(2000);
        Lockd__Lock lk = LOCKD__LOCK__INIT;
        lk.name = "gone";
        lk.token = 1;
        raft_answer(f, q->id, LOCKD__STATUS__ST_OK, &lk, NULL);
        lockd__request__free_unpacked(q, NULL);
    }
    struct http_resp *h = http_do(f, "GET", "/healthz", NULL);
    assert_int_equal(h->status, 200);
}

/* HTTP/2 (prior knowledge) lets a client cancel a stream while its request
 * waits for raftproc: h2o clears the request's pool before the answer. */
static void h2_frame(int fd, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                     size_t len)
{
    uint8_t hdr[9] = {(uint8_t)(len >> 16),
                      (uint8_t)(len >> 8),
                      (uint8_t)len,
                      type,
                      flags,
                      (uint8_t)(stream >> 24),
                      (uint8_t)(stream >> 16),
                      (uint8_t)(stream >> 8),
                      (uint8_t)stream};
    assert_int_equal(write(fd, hdr, 9), 9);
    if (len)
        assert_int_equal(write(fd, payload, len), (ssize_t)len);
}

static void test_http2_stream_cancelled_before_answer_is_harmless(void **state)
{
    struct fixture *f = *state;
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for (int round = 0; round < 2; round++) {
        int fd = http_open(f);
        assert_int_equal(write(fd, preface, sizeof preface - 1), (ssize_t)(sizeof preface - 1));
        h2_frame(fd, 4, 0, 0, NULL, 0); /* SETTINGS */
        /* HPACK: :method POST (idx 3), :scheme http (idx 6), then literal
         * :path (name idx 4) and :authority (name idx 1), no Huffman. */
        uint8_t hb[64];
        size_t n = 0;
        hb[n++] = 0x83;
        hb[n++] = 0x86;
        hb[n++] = 0x04;
        hb[n++] = 10;
        memcpy(hb + n, "/lock/h2go", 10);
        n += 10;
        hb[n++] = 0x01;
        hb[n++] = 1;
        hb[n++] = 't';
        h2_frame(fd, 1, 0x05, 1, hb, n); /* HEADERS, END_STREAM | END_HEADERS */
        Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
        assert_non_null(q);
        assert_string_equal(q->name, "h2go");
        if (round == 0) {
            uint8_t cancel[4] = {0, 0, 0, 8};
            h2_frame(fd, 3, 0, 1, cancel, 4); /* RST_STREAM CANCEL */
        }
        usleep(50000);
        close(fd);
        usleep(50000);
        Lockd__Lock lk = LOCKD__LOCK__INIT;
        lk.name = "h2go";
        lk.token = 3;
        raft_answer(f, q->id, LOCKD__STATUS__ST_OK, &lk, NULL);
        lockd__request__free_unpacked(q, NULL);
    }
    struct http_resp *h = http_do(f, "GET", "/healthz", NULL);
    assert_int_equal(h->status, 200);
}

static void test_sigterm_drains_inflight_then_exits_0(void **state)
{
    struct fixture *f = *state;
    int fd = http_open(f);
    http_write(fd, "POST", "/lock/d", NULL);
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    kill(f->worker, SIGTERM);
    usleep(50000);
    Lockd__Lock lk = LOCKD__LOCK__INIT;
    lk.name = "d";
    lk.token = 77;
    raft_answer(f, q->id, LOCKD__STATUS__ST_OK, &lk, NULL);
    lockd__request__free_unpacked(q, NULL);
    struct http_resp r;
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    close(fd);
    assert_int_equal(r.status, 200);
    assert_header(&r, "X-Lockd-Token: 77");
    /* draining: the connection is not kept alive */
    assert_header(&r, "Connection: close");
    int status;
    waitpid(f->worker, &status, 0);
    f->worker = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_sigterm_answers_stuck_requests_503(void **state)
{
    struct fixture *f = *state;
    int fd = http_open(f);
    http_write(fd, "POST", "/lock/stuck", NULL);
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    lockd__request__free_unpacked(q, NULL);
    uint64_t t0 = clock_monotonic_ms();
    kill(f->worker, SIGTERM);
    struct http_resp r;
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    close(fd);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"error\":\"Shutting down\",\"outcome\":\"unknown\"}");
    assert_true(clock_monotonic_ms() - t0 < API_TIMEOUT_MS + 500);
    int status;
    waitpid(f->worker, &status, 0);
    f->worker = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_routes_and_input_errors(void **state)
{
    struct fixture *f = *state;
    struct http_resp *r = http_do(f, "GET", "/lock/", NULL);
    assert_int_equal(r->status, 404);
    assert_string_equal(r->body, "{\"error\":\"Not Found\"}");
    r = http_do(f, "GET", "/nope", NULL);
    assert_int_equal(r->status, 404);
    r = http_do(f, "PUT", "/lock/x", NULL);
    assert_int_equal(r->status, 405);
    assert_header(r, "Allow: GET, HEAD, POST, DELETE");
    assert_string_equal(r->body, "{\"error\":\"Method Not Allowed\"}");
    r = http_do(f, "GET", "/lock/a%2Bb", NULL);
    assert_int_equal(r->status, 400);
    assert_string_equal(
        r->body, "{\"error\":\"Name contains non-printable/non-ascii byte 43 at offset 1\"}");
    r = http_do(f, "GET", "/lock/a/b", NULL);
    assert_string_equal(
        r->body, "{\"error\":\"Name contains non-printable/non-ascii byte 47 at offset 1\"}");
    r = http_do(f, "POST", "/lock/x?owner=a", "{\"owner\":\"b\"}");
    assert_int_equal(r->status, 400);
    assert_string_equal(r->body,
                        "{\"error\":\"Field \\\"owner\\\" given in both query string and body\"}");
    r = http_do(f, "POST", "/lock/x?%C3%A9%FF=1", NULL);
    assert_int_equal(r->status, 400);
    /* valid UTF-8 passes, the lone 0xff becomes U+FFFD: the body stays JSON */
    assert_string_equal(r->body, "{\"error\":\"Unknown field \\\"\xc3\xa9\\ufffd\\\"\"}");

    char body[LOCKD_BODY_MAX + 2];
    memset(body, ' ', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    r = http_do(f, "POST", "/lock/x", body);
    assert_int_equal(r->status, 413);
    assert_string_equal(r->body, "{\"error\":\"Request body too large (max 4096 bytes)\"}");

    r = http_do(f, "GET", "/status", NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body,
                           "{\"id\":1,\"role\":\"leader\",\"leader\":{\"id\":1,\"address\":"
                           "\"127.0.0.1:2080\"},\"term\":3,\"commit_index\":7,"
                           "\"applied_index\":7,\"locks\":"));
    assert_non_null(strstr(r->body, "\"version\":\"0.1.0\",\"worker\":1,\"members\":["));
    Lockd__Request *q = raft_recv(f, 50);
    assert_null(q);
}

static struct http_resp *http_raw(struct fixture *f, const char *raw)
{
    static struct http_resp r;
    int fd = http_open(f);
    assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    assert_int_equal(http_read(fd, &r, IO_TIMEOUT_MS), 0);
    close(fd);
    return &r;
}

static void test_ambiguous_http1_framing_is_rejected_and_closes(void **state)
{
    struct fixture *f = *state;
    struct http_resp *r = http_raw(f, "POST /lock/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                      "content-length: 5\r\n\r\n{}");
    assert_int_equal(r->status, 400);
    assert_string_equal(r->body, "{\"error\":\"Conflicting Content-Length headers\"}");
    assert_header(r, "Connection: close");
    r = http_raw(f, "DELETE /lock/cl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Length: 3\r\n\r\n0\r\n\r\n");
    assert_int_equal(r->status, 400);
    assert_string_equal(r->body, "{\"error\":\"Both Transfer-Encoding and Content-Length given\"}");
    /* nothing reached raftproc */
    assert_null(raft_recv(f, 50));

    /* the same value twice, or chunked alone, is fine */
    int fd = http_open(f);
    const char *ok =
        "POST /lock/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}";
    assert_int_equal(write(fd, ok, strlen(ok)), (ssize_t)strlen(ok));
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    raft_answer(f, q->id, LOCKD__STATUS__ST_CONFLICT, NULL, NULL);
    lockd__request__free_unpacked(q, NULL);
    struct http_resp rr;
    assert_int_equal(http_read(fd, &rr, IO_TIMEOUT_MS), 0);
    assert_int_equal(rr.status, 409);
    const char *chunked = "POST /lock/ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "e\r\n{\"owner\":\"cc\"}\r\n0\r\n\r\n";
    assert_int_equal(write(fd, chunked, strlen(chunked)), (ssize_t)strlen(chunked));
    q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    assert_string_equal(q->owner, "cc");
    raft_answer(f, q->id, LOCKD__STATUS__ST_CONFLICT, NULL, NULL);
    lockd__request__free_unpacked(q, NULL);
    assert_int_equal(http_read(fd, &rr, IO_TIMEOUT_MS), 0);
    assert_int_equal(rr.status, 409);
    close(fd);
}


/* ---- /locks and /metrics --------------------------------------------------------- */

static void put_lock(struct fixture *f, const char *name, const char *owner, uint64_t token)
{
    shm_lock rec;
    memset(&rec, 0, sizeof rec);
    rec.name_len = (uint8_t)strlen(name);
    memcpy(rec.name, name, rec.name_len);
    rec.owner_len = (uint8_t)strlen(owner);
    memcpy(rec.owner, owner, rec.owner_len);
    rec.token = token;
    rec.acquired_at_ms = 1000 + token;
    rec.renewed_at_ms = clock_wall_ms();
    rec.revision = token;
    assert_int_equal(shm_table_put(f->table, &rec), 0);
}

static void test_locks_pages_shm_in_name_order_without_raftproc(void **state)
{
    struct fixture *f = *state;
    put_lock(f, "job.b", "w1", 3);
    put_lock(f, "job.a", "", 4);
    put_lock(f, "other", "w2", 5);
    put_lock(f, "job.c", "w3", 6);

    struct http_resp *r = http_do(f, "GET", "/locks", NULL);
    assert_int_equal(r->status, 200);
    assert_header(r, "Content-Type: application/json");
    assert_header(r, "X-Lockd-Applied-Index: 7");
    assert_string_equal(
        r->body, "{\"locks\":[{\"name\":\"job.a\",\"locked\":true,\"owner\":null,\"token\":4,"
                 "\"acquired_at_ms\":1004,\"ttl_ms\":null,\"expires_in_ms\":null},"
                 "{\"name\":\"job.b\",\"locked\":true,\"owner\":\"w1\",\"token\":3,"
                 "\"acquired_at_ms\":1003,\"ttl_ms\":null,\"expires_in_ms\":null},"
                 "{\"name\":\"job.c\",\"locked\":true,\"owner\":\"w3\",\"token\":6,"
                 "\"acquired_at_ms\":1006,\"ttl_ms\":null,\"expires_in_ms\":null},"
                 "{\"name\":\"other\",\"locked\":true,\"owner\":\"w2\",\"token\":5,"
                 "\"acquired_at_ms\":1005,\"ttl_ms\":null,\"expires_in_ms\":null}],"
                 "\"next\":null}");

    r = http_do(f, "GET", "/locks?prefix=job.&limit=2", NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"name\":\"job.a\""));
    assert_non_null(strstr(r->body, "\"name\":\"job.b\""));
    assert_null(strstr(r->body, "job.c"));
    assert_non_null(strstr(r->body, "],\"next\":\"job.b\"}"));
    r = http_do(f, "GET", "/locks?prefix=job.&limit=2&after=job.b", NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "{\"locks\":[{\"name\":\"job.c\""));
    assert_non_null(strstr(r->body, "}],\"next\":null}"));
    r = http_do(f, "GET", "/locks?prefix=nothing", NULL);
    assert_string_equal(r->body, "{\"locks\":[],\"next\":null}");

    r = http_do(f, "GET", "/locks?limit=0", NULL);
    assert_int_equal(r->status, 400);
    assert_string_equal(r->body, "{\"error\":\"limit must be between 1 and 10000\"}");
    r = http_do(f, "GET", "/locks?after=a%2Fb", NULL);
    assert_int_equal(r->status, 400);
    assert_string_equal(
        r->body, "{\"error\":\"\\\"after\\\" contains non-printable/non-ascii byte 47 at offset 1\"}");
    r = http_do(f, "POST", "/locks", NULL);
    assert_int_equal(r->status, 405);
    assert_header(r, "Allow: GET, HEAD");
    r = http_do(f, "HEAD", "/locks", NULL);
    assert_int_equal(r->status, 200);
    assert_null(raft_recv(f, 50));

    shm_table_set_state(f->table, SHM_STATE_LOADING);
    r = http_do(f, "GET", "/locks", NULL);
    assert_int_equal(r->status, 503);
    assert_header(r, "Retry-After: 1");
}

static void test_metrics_counts_requests_in_shared_memory(void **state)
{
    struct fixture *f = *state;
    struct http_resp *r = http_do(f, "GET", "/lock/none", NULL);
    assert_int_equal(r->status, 404);
    http_do(f, "GET", "/lock/none", NULL);
    http_do(f, "GET", "/nowhere", NULL);

    /* a write answered by raftproc later is counted when it is answered */
    int fd = http_open(f);
    http_write(fd, "POST", "/lock/w", NULL);
    Lockd__Request *q = raft_recv(f, IO_TIMEOUT_MS);
    assert_non_null(q);
    Lockd__Lock lk = LOCKD__LOCK__INIT;
    lk.name = "w";
    lk.owner = "";
    lk.token = 9;
    raft_answer(f, q->id, LOCKD__STATUS__ST_OK, &lk, NULL);
    lockd__request__free_unpacked(q, NULL);
    struct http_resp rr;
    assert_int_equal(http_read(fd, &rr, IO_TIMEOUT_MS), 0);
    assert_int_equal(rr.status, 200);
    close(fd);

    /* the parent sees the worker's counts through the shared segment */
    struct shm_stats_http *h = malloc(sizeof *h);
    shm_stats_http_sum(shm_table_stats(f->table), h);
    unsigned get = metrics_method_index("GET", 3), post = metrics_method_index("POST", 4);
    assert_int_equal(h->requests[METRICS_ROUTE_LOCK][get][metrics_code_index(404)], 2);
    assert_int_equal(h->requests[METRICS_ROUTE_OTHER][get][metrics_code_index(404)], 1);
    assert_int_equal(h->requests[METRICS_ROUTE_LOCK][post][metrics_code_index(200)], 1);
    uint64_t lock_count = 0;
    for (unsigned b = 0; b < SHM_STATS_BUCKETS; b++)
        lock_count += h->buckets[METRICS_ROUTE_LOCK][b];
    assert_int_equal(lock_count, 3);
    assert_true(h->sum_ns[METRICS_ROUTE_LOCK] > 0);
    free(h);

    r = http_do(f, "GET", "/metrics", NULL);
    assert_int_equal(r->status, 200);
    assert_header(r, "Content-Type: text/plain; version=0.0.4\r\n");
    assert_non_null(strstr(r->body, "# TYPE lockd_http_requests_total counter\n"));
    assert_non_null(
        strstr(r->body, "lockd_http_requests_total{route=\"lock\",method=\"GET\",code=\"404\"} 2\n"));
    assert_non_null(
        strstr(r->body, "lockd_http_requests_total{route=\"lock\",method=\"POST\",code=\"200\"} 1\n"));
    assert_non_null(strstr(r->body, "lockd_http_request_duration_seconds_count{route=\"lock\"} 3\n"));
    assert_non_null(strstr(r->body, "lockd_raft_term 3\n"));
    assert_non_null(strstr(r->body, "lockd_raft_leader 1\n"));
    /* the scrape itself is counted once it is answered */
    r = http_do(f, "GET", "/metrics", NULL);
    assert_non_null(strstr(
        r->body, "lockd_http_requests_total{route=\"metrics\",method=\"GET\",code=\"200\"} 1\n"));
    r = http_do(f, "DELETE", "/metrics", NULL);
    assert_int_equal(r->status, 405);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_reads_shm_without_raftproc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loading_table_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_sends_acquire_and_renders_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raftproc_statuses_map_to_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_matched_by_id_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_raftproc_fails_inflight_and_reconnects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_oversized_frame_drops_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unanswered_request_gets_504_and_late_answer_is_dropped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_before_answer_is_harmless, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_http2_stream_cancelled_before_answer_is_harmless,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_drains_inflight_then_exits_0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_answers_stuck_requests_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_and_input_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_http1_framing_is_rejected_and_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_locks_pages_shm_in_name_order_without_raftproc, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metrics_counts_requests_in_shared_memory, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
