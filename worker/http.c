/* worker/http.c: every route of API.md served from one h2o handler. Reads
 * (GET /lock/:name, GET /locks) come from the shared-memory table (no
 * syscall beyond the response), writes and consistent reads go to raftproc
 * through raft_client and are answered from its callback. Every answer is
 * counted in this worker's slot of the shared stats segment, which
 * GET /metrics sums over all workers. Per-request memory comes from req->pool only; nothing
 * here touches a request after its pool may have been cleared. */
#include "worker/http.h"

#include <inttypes.h>
#include <stdio.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/decimal.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/names.h"
#include "worker/list.h"
#include "worker/metrics.h"

struct http_handler {
    h2o_handler_t super;
    struct http_ctx *ctx;
};

/* A request waiting for raftproc; allocated from its pool. */
struct http_pending {
    struct http_ctx *ctx;
    h2o_req_t *req;
    enum params_method method;
    char *name; /* decoded, validated, NUL-terminated */
    size_t name_len;
    unsigned metric_method; /* ctx->cur_* of the request, restored for the answer */
    uint64_t start_ns;
    uint64_t call_id;          /* raft_client call, for abandoning it */
    h2o_timeout_entry_t watch; /* HTTP/1 waits: is the client still there? */
    int answered;
    int waits; /* an acquire with wait > 0 */
};

/* h2o's HTTP/1 side does not read the socket while a request is being
 * handled, so it never notices a client that hangs up during a long wait;
 * a queued acquire must not outlive its client (the lock would be handed to
 * nobody). Waits are checked every HTTP_WATCH_MS with a zero-timeout poll. */
#define HTTP_WATCH_MS 200

static void http_watch_dispose(void *arg)
{
    struct http_pending *p = arg;
    if (h2o_timeout_is_linked(&p->watch))
        h2o_timeout_unlink(&p->watch);
}

static int http_client_gone(h2o_req_t *req)
{
    if (req->conn->callbacks->get_socket == NULL)
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL)
        return 0;
    struct pollfd pfd = {.fd = h2o_socket_get_fd(sock), .events = POLLRDHUP};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void http_error(struct http_ctx *ctx, h2o_req_t *req, int status, const char *msg, unsigned flags);

static void http_ignore_answer(void *arg, const Lockd__Response *resp, enum raft_client_outcome outcome)
{
    (void)arg;
    (void)resp;
    (void)outcome;
}

static void http_watch_cb(h2o_timeout_entry_t *entry)
{
    struct http_pending *p = H2O_STRUCT_FROM_MEMBER(struct http_pending, watch, entry);
    if (p->answered)
        return;
    if (!http_client_gone(p->req)) {
        h2o_timeout_link(p->req->conn->ctx->loop, &p->ctx->watch_timeout, &p->watch);
        return;
    }
    p->answered = 1;
    raft_client_abandon(p->ctx->raft, p->call_id);
    /* Finish the request so h2o closes the dead connection. */
    http_error(p->ctx, p->req, 409, "Client went away while waiting", 0);
}

/* ---- JSON writer into pool memory ---------------------------------------- */

struct http_json {
    h2o_mem_pool_t *pool;
    char *buf;
    size_t len, cap;
};

static void http_json_init(struct http_json *j, h2o_mem_pool_t *pool, size_t cap)
{
    j->pool = pool;
    j->buf = h2o_mem_alloc_pool(pool, cap);
    j->len = 0;
    j->cap = cap;
}

/* Grows by copying into a bigger pool block; the old one goes with the pool.
 * Bodies are a few hundred bytes, so this practically never runs. */
static void http_json_reserve(struct http_json *j, size_t n)
{
    if (j->cap - j->len >= n)
        return;
    size_t cap = j->cap * 2;
    while (cap - j->len < n)
        cap *= 2;
    char *b = h2o_mem_alloc_pool(j->pool, cap);
    memcpy(b, j->buf, j->len);
    j->buf = b;
    j->cap = cap;
}

static void http_json_raw(struct http_json *j, const char *s, size_t n)
{
    http_json_reserve(j, n);
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

#define http_json_lit(j, s) http_json_raw((j), (s), sizeof(s) - 1)

static void http_json_u64(struct http_json *j, uint64_t v)
{
    http_json_reserve(j, DECIMAL_U64_MAX);
    j->len += decimal_u64(j->buf + j->len, v);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t http_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* A quoted JSON string. Unlike json_escape (common/json.h), also replaces
 * invalid UTF-8 with U+FFFD: error messages can echo client bytes, and the
 * body must stay valid JSON for every client. */
static void http_json_str(struct http_json *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    http_json_reserve(j, n + 2);
    j->buf[j->len++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            size_t k = i + 1;
            while (k < n && p[k] >= 0x20 && p[k] < 0x7f && p[k] != '"' && p[k] != '\\')
                k++;
            http_json_raw(j, s + i, k - i);
            i = k;
        } else if (c == '"') {
            http_json_lit(j, "\\\"");
            i++;
        } else if (c == '\\') {
            http_json_lit(j, "\\\\");
            i++;
        } else if (c == '\n') {
            http_json_lit(j, "\\n");
            i++;
        } else if (c == '\r') {
            http_json_lit(j, "\\r");
            i++;
        } else if (c == '\t') {
            http_json_lit(j, "\\t");
            i++;
        } else if (c < 0x80) { /* other control bytes and DEL */
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            http_json_raw(j, e, sizeof e);
            i++;
        } else {
            size_t u = http_utf8_len(p + i, n - i);
            if (u) {
                http_json_raw(j, s + i, u);
                i += u;
            } else {
                http_json_lit(j, "\\ufffd");
                i++;
            }
        }
    }
    http_json_lit(j, "\"");
}

static void http_json_cstr(struct http_json *j, const char *s)
{
    http_json_str(j, s, strlen(s));
}

/* "owner": null for an anonymous lock (empty owner), as API.md says. */
static void http_json_str_or_null(struct http_json *j, const char *s, size_t n)
{
    if (n == 0)
        http_json_lit(j, "null");
    else
        http_json_str(j, s, n);
}

static void http_json_u64_or_null(struct http_json *j, uint64_t v, int present)
{
    if (present)
        http_json_u64(j, v);
    else
        http_json_lit(j, "null");
}

/* ---- responses ------------------------------------------------------------ */

static const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

static int http_method_is(const h2o_req_t *req, const char *m, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, m, len);
}

#define HTTP_METHOD_IS(req, lit) http_method_is((req), (lit), sizeof(lit) - 1)

/* name_lc must be lower case (HTTP/2); orig is what HTTP/1 prints. */
static void http_header_u64(h2o_req_t *req, const char *name_lc, const char *orig, uint64_t v)
{
    char *buf = h2o_mem_alloc_pool(&req->pool, DECIMAL_U64_MAX);
    size_t n = decimal_u64(buf, v);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name_lc, strlen(name_lc), 0, orig, buf, n);
}

static void http_header_retry_after(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, "Retry-After", H2O_STRLIT("1"));
}

static uint64_t http_now_ns(void)
{
    /* vDSO: ~20 ns. Not h2o's per-turn clock: it has millisecond steps,
     * and most answers from shm take ~10 us (the first bucket is 100 us). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Counts the response to ctx->cur_req (if req is it) in this worker's stats
 * slot: three relaxed atomic adds. Responses h2o makes without our handler
 * (malformed HTTP, bodies over WORKER_ENTITY_MAX) are not seen here. */
static void http_count(struct http_ctx *ctx, h2o_req_t *req, int status)
{
    if (ctx->cur_req != req)
        return;
    ctx->cur_req = NULL;
    uint64_t now = http_now_ns();
    uint64_t ns = now > ctx->cur_start_ns ? now - ctx->cur_start_ns : 0;
    shm_stats_http_record(shm_table_stats(ctx->table), ctx->worker_index, ctx->cur_route, ctx->cur_method,
                          metrics_code_index(status), metrics_bucket_index(ns), ns);
    if (ctx->cfg->access_log) {
        /* One line per answer (--access-log): peer, method, path, status,
         * duration. The path is the client's bytes: %.*s with its length. */
        char peer[NI_MAXHOST] = "-";
        struct sockaddr_storage ss;
        socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
        if (sl != 0)
            h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, peer);
        log_info("access %s %.*s %.*s %d %" PRIu64 "us", peer, (int)req->method.len, req->method.base,
                 (int)(req->path.len > 512 ? 512 : req->path.len), req->path.base, status, ns / 1000);
    }
}

/* Sends body[0..len) as the whole response. leader_id 0: take it from shm.
 * HEAD gets the same headers (Content-Length included) and no body. */
static void http_send_body(struct http_ctx *ctx, h2o_req_t *req, int status, const char *ctype, size_t ctype_len,
                           char *body, size_t len, uint64_t leader_id)
{
    static h2o_generator_t generator = {NULL, NULL};

    http_count(ctx, req, status);
    if (leader_id == 0) {
        shm_node_status st;
        shm_table_status(ctx->table, &st);
        leader_id = st.leader_id;
    }
    if (leader_id != 0)
        http_header_u64(req, "x-lockd-leader", "X-Lockd-Leader", leader_id);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, "Content-Type", ctype, ctype_len);
    /* h2o decides keep-alive when the request is parsed; a request that was
     * already waiting when the drain began must not keep its connection. */
    if (ctx->draining)
        req->http1_is_persistent = 0;
    req->res.status = status;
    req->res.reason = http_reason(status);
    req->res.content_length = len;
    h2o_start_response(req, &generator);
    if (HTTP_METHOD_IS(req, "HEAD")) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_iovec_t iov = h2o_iovec_init(body, len);
        h2o_send(req, &iov, 1, H2O_SEND_STATE_FINAL);
    }
}

/* Sends j (pool memory) as a JSON response. */
static void http_send(struct http_ctx *ctx, h2o_req_t *req, int status, struct http_json *j, uint64_t leader_id)
{
    http_send_body(ctx, req, status, H2O_STRLIT("application/json"), j->buf, j->len, leader_id);
}

enum { HTTP_RETRY = 1 };

/* {"error":"<msg>"} */
static void http_error(struct http_ctx *ctx, h2o_req_t *req, int status, const char *msg, unsigned flags)
{
    struct http_json j;
    http_json_init(&j, &req->pool, 128);
    http_json_lit(&j, "{\"error\":");
    http_json_cstr(&j, msg);
    http_json_lit(&j, "}");
    if (flags & HTTP_RETRY)
        http_header_retry_after(req);
    http_send(ctx, req, status, &j, 0);
}

/* {"error":"<msg>","name":"<name>","locked":false}: 404 of a lock. */
static void http_not_locked(struct http_ctx *ctx, h2o_req_t *req, const char *name, size_t len, uint64_t leader_id)
{
    struct http_json j;
    http_json_init(&j, &req->pool, 256);
    http_json_lit(&j, "{\"error\":\"Not Found\",\"name\":");
    http_json_str(&j, name, len);
    http_json_lit(&j, ",\"locked\":false}");
    http_send(ctx, req, 404, &j, leader_id);
}

static void http_method_not_allowed(struct http_ctx *ctx, h2o_req_t *req, const char *allow, size_t allow_len)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, "Allow", allow, allow_len);
    http_error(ctx, req, 405, "Method Not Allowed", 0);
}

/* The lock object of GET: expires_in_ms counts down on this node's wall
 * clock from renewed_at_ms (the leader's clock in the log entry); 0 once
 * due, until the leader's expiry removes it. */
static void http_json_lock_at(struct http_json *j, const char *name, size_t name_len, const char *owner,
                              size_t owner_len, uint64_t token, uint64_t acquired_at_ms, uint64_t renewed_at_ms,
                              uint64_t ttl_ms, uint64_t now)
{
    http_json_lit(j, "{\"name\":");
    http_json_str(j, name, name_len);
    http_json_lit(j, ",\"locked\":true,\"owner\":");
    http_json_str_or_null(j, owner, owner_len);
    http_json_lit(j, ",\"token\":");
    http_json_u64(j, token);
    http_json_lit(j, ",\"acquired_at_ms\":");
    http_json_u64(j, acquired_at_ms);
    http_json_lit(j, ",\"ttl_ms\":");
    http_json_u64_or_null(j, ttl_ms, ttl_ms != 0);
    http_json_lit(j, ",\"expires_in_ms\":");
    if (ttl_ms) {
        uint64_t end = renewed_at_ms + ttl_ms;
        http_json_u64(j, end > now ? end - now : 0);
    } else {
        http_json_lit(j, "null");
    }
    http_json_lit(j, "}");
}

static void http_json_lock(struct http_json *j, const char *name, size_t name_len, const char *owner, size_t owner_len,
                           uint64_t token, uint64_t acquired_at_ms, uint64_t renewed_at_ms, uint64_t ttl_ms)
{
    http_json_lock_at(j, name, name_len, owner, owner_len, token, acquired_at_ms, renewed_at_ms, ttl_ms,
                      clock_wall_ms());
}

/* ---- raftproc answers ----------------------------------------------------- */

static const char *http_nonempty(const char *s, const char *fallback)
{
    return s && s[0] ? s : fallback;
}

/* A call that ended without raftproc's answer. For a write the outcome is
 * unknown (it may have been committed), and the body says so as 504 does. */
static void http_reply_lost(struct http_pending *p, enum raft_client_outcome outcome)
{
    h2o_req_t *req = p->req;
    struct http_json j;
    http_json_init(&j, &req->pool, 128);
    if (outcome == RAFT_CLIENT_TIMEOUT) {
        http_json_lit(&j, "{\"error\":\"Consensus timeout\",\"outcome\":\"unknown\"}");
        http_send(p->ctx, req, 504, &j, 0);
        return;
    }
    if (outcome == RAFT_CLIENT_SHUTDOWN)
        http_json_lit(&j, "{\"error\":\"Shutting down\"");
    else
        http_json_lit(&j, "{\"error\":\"Raft process unavailable\"");
    if (p->method != PARAMS_GET)
        http_json_lit(&j, ",\"outcome\":\"unknown\"");
    http_json_lit(&j, "}");
    http_header_retry_after(req);
    http_send(p->ctx, req, 503, &j, 0);
}

static void http_answer_raft(struct http_pending *p, const Lockd__Response *resp, enum raft_client_outcome outcome)
{
    struct http_ctx *ctx = p->ctx;
    h2o_req_t *req = p->req;

    if (outcome != RAFT_CLIENT_ANSWERED) {
        http_reply_lost(p, outcome);
        return;
    }

    uint64_t leader = resp->leader_id;
    const Lockd__Lock *lk = resp->has_lock ? resp->lock : NULL;
    struct http_json j;
    http_json_init(&j, &req->pool, 384);

    switch (resp->status) {
    case LOCKD__STATUS__ST_OK:
        if (p->method == PARAMS_GET) {
            shm_node_status st;
            shm_table_status(ctx->table, &st);
            http_header_u64(req, "x-lockd-applied-index", "X-Lockd-Applied-Index",
                            st.applied_index > resp->index ? st.applied_index : resp->index);
            if (!lk) {
                http_not_locked(ctx, req, p->name, p->name_len, leader);
                return;
            }
            http_json_lock(&j, p->name, p->name_len, lk->owner, strlen(lk->owner), lk->token, lk->acquired_at_ms,
                           lk->renewed_at_ms, lk->ttl_ms);
            http_send(ctx, req, 200, &j, leader);
        } else if (p->method == PARAMS_POST) {
            if (!lk) {
                log_error("raftproc answered an acquire of %s without the lock", p->name);
                http_error(ctx, req, 500, "Internal error: acquire answered without the lock", 0);
                return;
            }
            /* The lease runs ttl_ms from this 200 (API.md's TTL promise). */
            http_json_lit(&j, "{\"name\":");
            http_json_str(&j, p->name, p->name_len);
            http_json_lit(&j, ",\"locked\":true,\"owner\":");
            http_json_str_or_null(&j, lk->owner, strlen(lk->owner));
            http_json_lit(&j, ",\"token\":");
            http_json_u64(&j, lk->token);
            http_json_lit(&j, ",\"ttl_ms\":");
            http_json_u64_or_null(&j, lk->ttl_ms, lk->ttl_ms != 0);
            http_json_lit(&j, ",\"expires_in_ms\":");
            http_json_u64_or_null(&j, lk->ttl_ms, lk->ttl_ms != 0);
            http_json_lit(&j, "}");
            http_header_u64(req, "x-lockd-token", "X-Lockd-Token", lk->token);
            http_send(ctx, req, 200, &j, leader);
        } else {
            http_json_lit(&j, "{\"name\":");
            http_json_str(&j, p->name, p->name_len);
            http_json_lit(&j, ",\"locked\":false}");
            http_send(ctx, req, 200, &j, leader);
        }
        return;
    case LOCKD__STATUS__ST_CONFLICT:
        http_json_lit(&j, "{\"error\":");
        http_json_cstr(&j, http_nonempty(resp->error, "Lock conflict"));
        http_json_lit(&j, ",\"name\":");
        http_json_str(&j, p->name, p->name_len);
        http_json_lit(&j, ",\"owner\":");
        if (lk)
            http_json_str_or_null(&j, lk->owner, strlen(lk->owner));
        else
            http_json_lit(&j, "null");
        http_json_lit(&j, "}");
        http_send(ctx, req, 409, &j, leader);
        return;
    case LOCKD__STATUS__ST_NOT_FOUND:
        if (p->method == PARAMS_GET) {
            shm_node_status st;
            shm_table_status(ctx->table, &st);
            http_header_u64(req, "x-lockd-applied-index", "X-Lockd-Applied-Index",
                            st.applied_index > resp->index ? st.applied_index : resp->index);
        }
        http_not_locked(ctx, req, p->name, p->name_len, leader);
        return;
    case LOCKD__STATUS__ST_FULL: {
        char msg[64];
        snprintf(msg, sizeof msg, "Lock table is full (capacity %" PRIu32 ")", shm_table_capacity(ctx->table));
        http_json_lit(&j, "{\"error\":");
        http_json_cstr(&j, msg);
        http_json_lit(&j, "}");
        http_send(ctx, req, 507, &j, leader);
        return;
    }
    case LOCKD__STATUS__ST_NOT_LEADER:
        http_json_lit(&j, "{\"error\":\"No leader\",\"leader\":");
        http_json_u64_or_null(&j, leader, leader != 0);
        http_json_lit(&j, "}");
        http_header_retry_after(req);
        http_send(ctx, req, 503, &j, leader);
        return;
    case LOCKD__STATUS__ST_UNAVAILABLE:
        http_json_lit(&j, "{\"error\":");
        http_json_cstr(&j, http_nonempty(resp->error, "Service unavailable"));
        http_json_lit(&j, "}");
        http_header_retry_after(req);
        http_send(ctx, req, 503, &j, leader);
        return;
    case LOCKD__STATUS__ST_TIMEOUT:
        http_json_lit(&j, "{\"error\":\"Consensus timeout\",\"outcome\":\"unknown\"}");
        http_send(ctx, req, 504, &j, leader);
        return;
    case LOCKD__STATUS__ST_BAD_REQUEST:
        http_json_lit(&j, "{\"error\":");
        http_json_cstr(&j, http_nonempty(resp->error, "Bad request"));
        http_json_lit(&j, "}");
        http_send(ctx, req, 400, &j, leader);
        return;
    case LOCKD__STATUS__ST_INTERNAL:
    default:
        http_json_lit(&j, "{\"error\":");
        http_json_cstr(&j, http_nonempty(resp->error, "Internal error"));
        http_json_lit(&j, "}");
        http_send(ctx, req, 500, &j, leader);
        return;
    }
}

static void http_on_raft_answer(void *arg, const Lockd__Response *resp, enum raft_client_outcome outcome)
{
    struct http_pending *p = arg;
    struct http_ctx *ctx = p->ctx;
    p->answered = 1;
    if (h2o_timeout_is_linked(&p->watch))
        h2o_timeout_unlink(&p->watch);
    /* The lock was handed over to a waiter whose client hung up before the
     * watch noticed: give it back (token-checked) rather than leave it held
     * by nobody. */
    if (p->waits && outcome == RAFT_CLIENT_ANSWERED && resp->status == LOCKD__STATUS__ST_OK && resp->lock != NULL &&
        http_client_gone(p->req)) {
        Lockd__Request rel = LOCKD__REQUEST__INIT;
        rel.op = LOCKD__OP__OP_RELEASE;
        rel.name = resp->lock->name;
        rel.owner = resp->lock->owner;
        rel.token = resp->lock->token;
        if (raft_client_send(ctx->raft, &p->req->pool, &rel, 0, http_ignore_answer, NULL) == 0)
            log_info("waiter for %s left before its hand-over arrived: releasing token %" PRIu64, p->name,
                     resp->lock->token);
    }
    /* The request metrics of the answer: route, method and start time of
     * the request as it was routed (see http_count). */
    ctx->cur_req = p->req;
    ctx->cur_route = METRICS_ROUTE_LOCK;
    ctx->cur_method = p->metric_method;
    ctx->cur_start_ns = p->start_ns;
    http_answer_raft(p, resp, outcome);
    ctx->cur_req = NULL;
}

/* ---- /lock/:name ------------------------------------------------------------ */

static void http_lock_read_shm(struct http_ctx *ctx, h2o_req_t *req, const char *name, size_t len)
{
    shm_node_status st;
    shm_lock lk;
    /* Status first: the applied index sent is one the lookup has seen. */
    shm_table_status(ctx->table, &st);
    /* A follower answers from what it has applied only while it hears from
     * a leader: cut off longer than an election timeout (partitioned, or
     * just back from a stop), it may be arbitrarily stale. */
    if (ctx->cfg->n_nodes > 1 && st.role != 3 /* leader */ &&
        (st.leader_id == 0 || clock_monotonic_ms() - st.last_contact_ms > ctx->cfg->election_timeout_ms)) {
        http_error(ctx, req, 503, "No recent contact with a leader; use ?consistent=true or retry", HTTP_RETRY);
        return;
    }
    int rc = shm_table_lookup(ctx->table, name, len, &lk);
    if (rc == -LOCKD_EAGAIN) {
        /* The writer was mid-update every time we looked (descheduled):
         * one more try before giving up. */
        rc = shm_table_lookup(ctx->table, name, len, &lk);
    }
    if (rc == -LOCKD_EAGAIN) {
        http_error(ctx, req, 503, "Service starting", HTTP_RETRY);
        return;
    }
    http_header_u64(req, "x-lockd-applied-index", "X-Lockd-Applied-Index", st.applied_index);
    if (rc == -LOCKD_ENOENT) {
        http_not_locked(ctx, req, name, len, st.leader_id);
        return;
    }
    if (rc != 0) {
        log_error("shm lookup of %.*s failed: %s", (int)len, name, lockd_strerror(rc));
        http_error(ctx, req, 500, "Internal error", 0);
        return;
    }
    struct http_json j;
    http_json_init(&j, &req->pool, 384);
    http_json_lock(&j, name, len, lk.owner, lk.owner_len, lk.token, lk.acquired_at_ms, lk.renewed_at_ms, lk.ttl_ms);
    http_send(ctx, req, 200, &j, st.leader_id);
}

static void http_lock_via_raft(struct http_ctx *ctx, h2o_req_t *req, enum params_method method, char *name, size_t len,
                               const struct params *prm)
{
    /* Draining (SIGTERM or a reload): still served; raftproc is there, and
     * the connection closes after this answer (http_send). */
    struct http_pending *p = h2o_mem_alloc_shared(&req->pool, sizeof *p, http_watch_dispose);
    memset(p, 0, sizeof *p);
    p->watch.cb = http_watch_cb;
    p->ctx = ctx;
    p->req = req;
    p->method = method;
    p->name = name;
    p->name_len = len;
    p->metric_method = ctx->cur_method;
    p->start_ns = ctx->cur_start_ns;

    Lockd__Request msg = LOCKD__REQUEST__INIT;
    msg.name = name;
    switch (method) {
    case PARAMS_GET:
        msg.op = LOCKD__OP__OP_READ;
        break;
    case PARAMS_POST:
        msg.op = LOCKD__OP__OP_ACQUIRE;
        msg.owner = (char *)prm->owner;
        msg.ttl_ms = prm->ttl_ms;
        msg.wait_ms = prm->wait_ms;
        break;
    case PARAMS_DELETE:
        msg.op = LOCKD__OP__OP_RELEASE;
        msg.owner = (char *)prm->owner;
        msg.token = prm->token;
        msg.force = prm->force;
        break;
    }
    int rc = raft_client_send(ctx->raft, &req->pool, &msg, prm->wait_ms, http_on_raft_answer, p);
    if (rc == 0) {
        p->call_id = msg.id;
        p->waits = msg.op == LOCKD__OP__OP_ACQUIRE && msg.wait_ms > 0;
        if (p->waits && req->version < 0x200) {
            if (!ctx->watch_ready) {
                h2o_timeout_init(req->conn->ctx->loop, &ctx->watch_timeout, HTTP_WATCH_MS);
                ctx->watch_ready = 1;
            }
            h2o_timeout_link(req->conn->ctx->loop, &ctx->watch_timeout, &p->watch);
        }
    } else if (rc == -LOCKD_EAGAIN) {
        http_error(ctx, req, 503, "Raft process unavailable", HTTP_RETRY);
    } else if (rc < 0) {
        log_error("cannot queue request for %s: %s", name, lockd_strerror(rc));
        http_error(ctx, req, 500, "Internal error", 0);
    }
}

static int http_body_may_be_form(const h2o_req_t *req)
{
    static const char form[] = "application/x-www-form-urlencoded";
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i == -1)
        return 0;
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    return v->len >= sizeof form - 1 && h2o_lcstris(v->base, sizeof form - 1, form, sizeof form - 1);
}

static void http_lock(struct http_ctx *ctx, h2o_req_t *req, const char *raw, size_t raw_len, const char *query,
                      size_t query_len)
{
    enum params_method method;

    /* "/lock/" is not a route (API.md), whatever the method. */
    if (raw_len == 0) {
        http_error(ctx, req, 404, "Not Found", 0);
        return;
    }
    if (HTTP_METHOD_IS(req, "GET") || HTTP_METHOD_IS(req, "HEAD"))
        method = PARAMS_GET;
    else if (HTTP_METHOD_IS(req, "POST"))
        method = PARAMS_POST;
    else if (HTTP_METHOD_IS(req, "DELETE"))
        method = PARAMS_DELETE;
    else {
        http_method_not_allowed(ctx, req, H2O_STRLIT("GET, HEAD, POST, DELETE"));
        return;
    }

    /* Decoding never lengthens, so raw_len + 1 holds the name and its NUL;
     * the real decoded length is needed for "Name is too long (N bytes...)". */
    char *name = h2o_mem_alloc_pool(&req->pool, raw_len + 1);
    int n = names_percent_decode(raw, raw_len, name, raw_len);
    if (n < 0) {
        http_error(ctx, req, 400, "Name has a malformed percent-encoding", 0);
        return;
    }
    name[n] = '\0';
    char err[PARAMS_ERR_MAX];
    if (names_check_lock(name, (size_t)n, err, sizeof err) != 0) {
        http_error(ctx, req, 400, err, 0);
        return;
    }

    struct params prm;
    int rc = params_parse(method, query, query_len, req->entity.base, req->entity.len, http_body_may_be_form(req),
                          &ctx->limits, &prm, err, sizeof err);
    if (rc == -LOCKD_ETOOBIG) {
        http_error(ctx, req, 413, err, 0);
        return;
    }
    if (rc != 0) {
        http_error(ctx, req, 400, err, 0);
        return;
    }

    if (method == PARAMS_GET && !prm.consistent)
        http_lock_read_shm(ctx, req, name, (size_t)n);
    else
        http_lock_via_raft(ctx, req, method, name, (size_t)n, &prm);
}

/* ---- operations routes ------------------------------------------------------ */

static void http_healthz(struct http_ctx *ctx, h2o_req_t *req)
{
    struct http_json j;
    http_json_init(&j, &req->pool, 32);
    http_json_lit(&j, "{\"status\":\"ok\"}");
    http_send(ctx, req, 200, &j, 0);
}

static void http_readyz(struct http_ctx *ctx, h2o_req_t *req)
{
    shm_node_status st;
    const char *reason = NULL;
    shm_table_status(ctx->table, &st);
    if (ctx->draining)
        reason = "Shutting down";
    else if (st.state != SHM_STATE_READY)
        reason = "Lock table is loading";
    else if (st.leader_id == 0)
        reason = "No leader known";
    else if (!raft_client_is_up(ctx->raft))
        reason = "Raft process unavailable";

    struct http_json j;
    http_json_init(&j, &req->pool, 128);
    if (!reason) {
        http_json_lit(&j, "{\"status\":\"ready\"}");
        http_send(ctx, req, 200, &j, st.leader_id);
        return;
    }
    http_json_lit(&j, "{\"status\":\"not ready\",\"reason\":");
    http_json_cstr(&j, reason);
    http_json_lit(&j, "}");
    http_header_retry_after(req);
    http_send(ctx, req, 503, &j, st.leader_id);
}

static void http_status(struct http_ctx *ctx, h2o_req_t *req)
{
    shm_node_status st;
    shm_table_status(ctx->table, &st);

    struct http_json j;
    http_json_init(&j, &req->pool, 512);
    http_json_lit(&j, "{\"id\":");
    http_json_u64(&j, ctx->cfg->node_id);
    http_json_lit(&j, ",\"role\":");
    http_json_cstr(&j, shm_role_name(st.role));
    http_json_lit(&j, ",\"leader\":");
    if (st.leader_id == 0) {
        http_json_lit(&j, "null");
    } else {
        http_json_lit(&j, "{\"id\":");
        http_json_u64(&j, st.leader_id);
        http_json_lit(&j, ",\"address\":");
        size_t alen = strnlen(st.leader_address, sizeof st.leader_address);
        if (alen) {
            http_json_str(&j, st.leader_address, alen);
        } else {
            /* raftproc has not published it: the cluster file knows it. */
            const struct cluster_node *node = NULL;
            for (unsigned i = 0; i < ctx->cfg->n_nodes && i < LOCKD_MAX_NODES; i++)
                if (ctx->cfg->nodes[i].id == st.leader_id)
                    node = &ctx->cfg->nodes[i];
            if (node) {
                char addr[LOCKD_ADDR_MAX + 8];
                snprintf(addr, sizeof addr, "%.*s:%u", LOCKD_ADDR_MAX, node->http_host, (unsigned)node->http_port);
                http_json_cstr(&j, addr);
            } else {
                http_json_lit(&j, "null");
            }
        }
        http_json_lit(&j, "}");
    }
    http_json_lit(&j, ",\"term\":");
    http_json_u64(&j, st.term);
    http_json_lit(&j, ",\"commit_index\":");
    http_json_u64(&j, st.commit_index);
    http_json_lit(&j, ",\"applied_index\":");
    http_json_u64(&j, st.applied_index);
    http_json_lit(&j, ",\"locks\":");
    http_json_u64(&j, shm_table_count(ctx->table));
    http_json_lit(&j, ",\"capacity\":");
    http_json_u64(&j, shm_table_capacity(ctx->table));
    http_json_lit(&j, ",\"next_token\":");
    http_json_u64(&j, st.next_token);
    http_json_lit(&j, ",\"uptime_ms\":");
    uint64_t now = http_boottime_ms();
    http_json_u64(&j, now > ctx->node_started_ms ? now - ctx->node_started_ms : 0);
    http_json_lit(&j, ",\"version\":\"" LOCKD_VERSION "\",\"worker\":");
    http_json_u64(&j, ctx->worker_index);
    /* The members of the cluster file (`lockctl members` shows the live
     * Raft configuration, including nodes added at run time). */
    http_json_lit(&j, ",\"members\":[");
    for (unsigned i = 0; i < ctx->cfg->n_nodes && i < LOCKD_MAX_NODES; i++) {
        const struct cluster_node *m = &ctx->cfg->nodes[i];
        char addr[LOCKD_ADDR_MAX + 8];
        if (i)
            http_json_lit(&j, ",");
        http_json_lit(&j, "{\"id\":");
        http_json_u64(&j, m->id);
        snprintf(addr, sizeof addr, "%.*s:%u", LOCKD_ADDR_MAX, m->http_host, (unsigned)m->http_port);
        http_json_lit(&j, ",\"address\":");
        http_json_cstr(&j, addr);
        snprintf(addr, sizeof addr, "%.*s:%u", LOCKD_ADDR_MAX, m->raft_host, (unsigned)m->raft_port);
        http_json_lit(&j, ",\"raft_address\":");
        http_json_cstr(&j, addr);
        http_json_lit(&j, ",\"role\":");
        http_json_cstr(&j, m->id == st.leader_id ? "leader" : st.leader_id ? "follower" : "unknown");
        if (m->id == ctx->cfg->node_id)
            http_json_lit(&j, ",\"self\":true}");
        else
            http_json_lit(&j, ",\"self\":false}");
    }
    http_json_lit(&j, "]}");
    http_send(ctx, req, 200, &j, st.leader_id);
}

/* ---- /locks ------------------------------------------------------------------ */

/* A page of locks in name order (see worker/list.h): one pass over the
 * shared table per page, answered from this worker without raftproc. The
 * scan is retried a few times if the writer cleared the table under it. */
#define HTTP_LIST_SCAN_TRIES 3

static void http_locks(struct http_ctx *ctx, h2o_req_t *req, const char *query, size_t query_len)
{
    if (!HTTP_METHOD_IS(req, "GET") && !HTTP_METHOD_IS(req, "HEAD")) {
        http_method_not_allowed(ctx, req, H2O_STRLIT("GET, HEAD"));
        return;
    }
    struct list_query q;
    char err[LIST_ERR_MAX];
    if (list_parse_query(query, query_len, &q, err, sizeof err) != 0) {
        http_error(ctx, req, 400, err, 0);
        return;
    }
    /* Up to ~3 MiB for limit=10000; freed before we return. */
    void *mem = malloc(list_sel_mem_size(&q));
    if (mem == NULL) {
        http_error(ctx, req, 503, "Out of memory", HTTP_RETRY);
        return;
    }
    shm_node_status st;
    struct list_sel sel;
    int rc = -LOCKD_EAGAIN;
    for (int i = 0; i < HTTP_LIST_SCAN_TRIES && rc == -LOCKD_EAGAIN; i++) {
        /* Status first: the applied index sent is one the scan has seen. */
        shm_table_status(ctx->table, &st);
        list_sel_init(&sel, &q, mem);
        rc = shm_table_scan(ctx->table, list_sel_offer, &sel);
        if (rc == -LOCKD_EAGAIN && st.state != SHM_STATE_READY)
            break;
    }
    if (rc != 0) {
        free(mem);
        http_error(ctx, req, 503, "Service starting", HTTP_RETRY);
        return;
    }
    shm_lock *const *page;
    bool more;
    size_t n = list_sel_finish(&sel, &page, &more);

    struct http_json j;
    http_json_init(&j, &req->pool, 64 + n * 200);
    http_json_lit(&j, "{\"locks\":[");
    uint64_t now = clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const shm_lock *lk = page[i];
        if (i > 0)
            http_json_lit(&j, ",");
        http_json_lock_at(&j, lk->name, lk->name_len, lk->owner, lk->owner_len, lk->token, lk->acquired_at_ms,
                          lk->renewed_at_ms, lk->ttl_ms, now);
    }
    http_json_lit(&j, "],\"next\":");
    if (more && n > 0)
        http_json_str(&j, page[n - 1]->name, page[n - 1]->name_len);
    else
        http_json_lit(&j, "null");
    http_json_lit(&j, "}");
    free(mem);
    http_header_u64(req, "x-lockd-applied-index", "X-Lockd-Applied-Index", st.applied_index);
    http_send(ctx, req, 200, &j, st.leader_id);
}

/* ---- /metrics ----------------------------------------------------------------- */

static void http_metrics(struct http_ctx *ctx, h2o_req_t *req)
{
    struct metrics_snapshot *snap = malloc(sizeof *snap);
    char *text = NULL;
    size_t len = 0;
    if (snap != NULL) {
        metrics_snapshot_take(ctx->table, snap);
        if (metrics_render(snap, &text, &len) != 0)
            text = NULL;
    }
    free(snap);
    if (text == NULL) {
        http_error(ctx, req, 503, "Out of memory", HTTP_RETRY);
        return;
    }
    /* h2o sends from the buffer after we return: pool memory. */
    char *body = h2o_mem_alloc_pool(&req->pool, len);
    memcpy(body, text, len);
    free(text);
    http_send_body(ctx, req, 200, H2O_STRLIT("text/plain; version=0.0.4"), body, len, 0);
}

static void http_ops(struct http_ctx *ctx, h2o_req_t *req, void (*fn)(struct http_ctx *, h2o_req_t *))
{
    if (HTTP_METHOD_IS(req, "GET") || HTTP_METHOD_IS(req, "HEAD"))
        fn(ctx, req);
    else
        http_method_not_allowed(ctx, req, H2O_STRLIT("GET, HEAD"));
}

/* ---- HTTP/1 framing check ----------------------------------------------------- */

static int http_header_name_is(const char *p, size_t n, const char *lc, size_t lc_len)
{
    return n == lc_len && h2o_lcstris(p, n, lc, lc_len);
}

/* RFC 9112 6.3: several differing Content-Length values, or Content-Length
 * with Transfer-Encoding, make the message framing ambiguous (request
 * smuggling behind a load balancer). h2o 2.2.5 silently uses the first
 * Content-Length (or Transfer-Encoding) and hides both headers from
 * handlers, so look at the raw head: for HTTP/1 it stays at the start of
 * the connection's input buffer until the response is done (h2o consumes
 * it then). Returns the problem or NULL. Bounded by the buffer size. */
static const char *http1_framing_problem(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->entity.base == NULL || !req->conn->callbacks->get_socket)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (!sock || !sock->input)
        return NULL;
    const char *p = sock->input->bytes, *end = p + sock->input->size;
    while (p < end && (*p == '\r' || *p == '\n'))
        p++; /* picohttpparser skips empty lines before a request */
    if ((size_t)(end - p) < req->input.method.len || memcmp(p, req->input.method.base, req->input.method.len) != 0)
        return NULL; /* not the layout we know: do not guess */

    const char *cl = NULL;
    size_t cl_len = 0;
    int te = 0, cl_seen = 0, first = 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (first) { /* the request line */
            first = 0;
        } else if (n == 0) {
            break; /* end of the head */
        } else {
            const char *colon = memchr(p, ':', n);
            if (colon) {
                size_t nl = (size_t)(colon - p);
                const char *v = colon + 1, *ve = p + n;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                if (http_header_name_is(p, nl, H2O_STRLIT("transfer-encoding"))) {
                    te = 1;
                } else if (http_header_name_is(p, nl, H2O_STRLIT("content-length"))) {
                    if (cl_seen && ((size_t)(ve - v) != cl_len || memcmp(v, cl, cl_len) != 0))
                        return "Conflicting Content-Length headers";
                    cl_seen = 1;
                    cl = v;
                    cl_len = (size_t)(ve - v);
                }
            }
        }
        p = eol + 1;
    }
    if (te && cl_seen)
        return "Both Transfer-Encoding and Content-Length given";
    return NULL;
}

/* ---- routing ----------------------------------------------------------------- */

/* Routes on the raw path (not h2o's normalised one): API.md checks the lock
 * name after percent-decoding the segment as sent, so "/lock/a/b" and
 * "/lock/a%2Fb" both reach the name check and fail on the '/'. */
static int http_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_ctx *ctx = ((struct http_handler *)self)->ctx;
    const char *path = req->path.base;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *query = NULL;
    size_t query_len = 0;
    if (req->query_at != SIZE_MAX) {
        query = path + req->query_at + 1;
        query_len = req->path.len - req->query_at - 1;
    }

    ctx->cur_req = req;
    ctx->cur_start_ns = http_now_ns();
    ctx->last_request_ms = ctx->cur_start_ns / 1000000;
    ctx->cur_route = metrics_route_of(path, path_len);
    ctx->cur_method = metrics_method_index(req->method.base, req->method.len);

    const char *framing = http1_framing_problem(req);
    if (framing) {
        /* The rest of the stream cannot be trusted: answer and close. */
        req->http1_is_persistent = 0;
        http_error(ctx, req, 400, framing, 0);
    } else if (ctx->cur_route == METRICS_ROUTE_LOCK) {
        http_lock(ctx, req, path + 6, path_len - 6, query, query_len);
    } else if (ctx->cur_route == METRICS_ROUTE_LOCKS) {
        http_locks(ctx, req, query, query_len);
    } else if (ctx->cur_route == METRICS_ROUTE_HEALTHZ) {
        http_ops(ctx, req, http_healthz);
    } else if (ctx->cur_route == METRICS_ROUTE_READYZ) {
        http_ops(ctx, req, http_readyz);
    } else if (ctx->cur_route == METRICS_ROUTE_STATUS) {
        http_ops(ctx, req, http_status);
    } else if (ctx->cur_route == METRICS_ROUTE_METRICS) {
        http_ops(ctx, req, http_metrics);
    } else {
        http_error(ctx, req, 404, "Not Found", 0);
    }
    /* Answered (and counted) by now, or waiting for raftproc, whose answer
     * restores cur_* from the pending request. */
    ctx->cur_req = NULL;
    return 0;
}

void http_register(h2o_pathconf_t *pathconf, struct http_ctx *ctx)
{
    struct http_handler *h = (void *)h2o_create_handler(pathconf, sizeof *h);
    h->ctx = ctx;
    h->super.on_req = http_on_req;
}

uint64_t http_boottime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
