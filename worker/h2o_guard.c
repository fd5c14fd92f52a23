/* worker/h2o_guard.c: interposers on three libh2o functions (see
 * h2o_guard.h). Owns the per-connection reset table. Passes every call to
 * the real function (dlsym RTLD_NEXT); only the arguments change, and only
 * while enabled. Never blocks, never logs (counters are read by the
 * caller). */
#include "worker/h2o_guard.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <h2o.h>

#include "common/errors.h"
#include "common/limits.h"

typedef void (*send_inline_fn)(h2o_req_t *, const char *, size_t);
typedef void (*socket_write_fn)(h2o_socket_t *, h2o_iovec_t *, size_t, h2o_socket_cb);
/* From h2o/http2_internal.h, which Debian's libh2o-dev ships without the
 * khash.h it includes: only the prototype is needed. The connection starts
 * with its public h2o_conn_t (`super`), which is all this file reads. */
typedef struct st_h2o_http2_conn_t h2o_http2_conn_t;
typedef struct st_h2o_http2_stream_t h2o_http2_stream_t;
void h2o_http2_stream_reset(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream);
typedef void (*stream_reset_fn)(h2o_http2_conn_t *, h2o_http2_stream_t *);

static struct {
    bool enabled, json_errors;
    struct rl_rate reset_rate;
    rl_table *resets;
    uint64_t (*now_ms)(void);
    struct h2o_guard_stats stats;
    send_inline_fn send_inline;
    socket_write_fn socket_write;
    stream_reset_fn stream_reset;
} guard;

/* The bytes h2o 2.2.5's send_bad_request (lib/http1.c) writes. */
static const char H2O_PLAIN_400[] = "HTTP/1.1 400 Bad Request\r\n"
                                    "Content-Type: text/plain; charset=utf-8\r\n"
                                    "Connection: close\r\n"
                                    "Content-Length: 11\r\n"
                                    "\r\n"
                                    "Bad Request";

#define JSON_400(msg)                                                                                                  \
    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " msg "\r\n\r" \
    "\n"
static const char JSON_400_MALFORMED[] = JSON_400("34") "{\"error\":\"Malformed HTTP request\"}";
static const char JSON_400_TOO_MANY[] = JSON_400("44") "{\"error\":\"Too many header fields (max 100)\"}";
static const char JSON_400_TOO_BIG[] = JSON_400("53") "{\"error\":\"Request head too large (max 417792 bytes)\"}";

static void guard_resolve(void)
{
    if (guard.send_inline == NULL)
        guard.send_inline = (send_inline_fn)dlsym(RTLD_NEXT, "h2o_send_inline");
    if (guard.socket_write == NULL)
        guard.socket_write = (socket_write_fn)dlsym(RTLD_NEXT, "h2o_socket_write");
    if (guard.stream_reset == NULL)
        guard.stream_reset = (stream_reset_fn)dlsym(RTLD_NEXT, "h2o_http2_stream_reset");
}

static uint64_t guard_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void h2o_guard_defaults(struct h2o_guard_options *o)
{
    o->json_errors = true;
    o->reset_rate.burst = 200;
    o->reset_rate.per_sec = 100;
    o->max_h2_conns = 4096;
    o->now_ms = guard_clock_ms;
}

bool h2o_guard_interposed(void)
{
    guard_resolve();
    return dlsym(RTLD_DEFAULT, "h2o_send_inline") == (void *)h2o_send_inline &&
           dlsym(RTLD_DEFAULT, "h2o_socket_write") == (void *)h2o_socket_write &&
           dlsym(RTLD_DEFAULT, "h2o_http2_stream_reset") == (void *)h2o_http2_stream_reset &&
           guard.send_inline != NULL && guard.socket_write != NULL && guard.stream_reset != NULL &&
           guard.send_inline != h2o_send_inline;
}

int h2o_guard_enable(const struct h2o_guard_options *o)
{
    if (!h2o_guard_interposed())
        return -LOCKD_EIO;
    h2o_guard_disable();
    if (o->reset_rate.burst && o->reset_rate.per_sec) {
        int rc = rl_table_create(o->max_h2_conns ? o->max_h2_conns : 4096, &o->reset_rate, &guard.resets);
        if (rc != 0)
            return rc;
    }
    guard.json_errors = o->json_errors;
    guard.reset_rate = o->reset_rate;
    guard.now_ms = o->now_ms ? o->now_ms : guard_clock_ms;
    guard.enabled = true;
    return 0;
}

void h2o_guard_disable(void)
{
    guard.enabled = false;
    rl_table_destroy(guard.resets);
    guard.resets = NULL;
}

void h2o_guard_get_stats(struct h2o_guard_stats *out)
{
    *out = guard.stats;
    out->lossy_evictions = guard.resets ? rl_table_lossy_evictions(guard.resets) : 0;
}

/* ---- h2o's error pages ------------------------------------------------------------ */

const char *h2o_guard_message(int status, const char *body, size_t len, char *buf, size_t cap)
{
    static const struct {
        const char *h2o, *ours;
    } map[] = {
        {"request entity is too large", "Request body too large (max 4096 bytes)"},
        {"broken chunked-encoding", "Malformed chunked request body"},
        {"unknown transfer-encoding", "Unsupported Transfer-Encoding (only chunked)"},
        {"broken content-length header", "Malformed Content-Length header"},
        {"unknown expectation", "Unsupported Expect header (only 100-continue)"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strlen(map[i].h2o) == len && memcmp(map[i].h2o, body, len) == 0) {
            snprintf(buf, cap, "%s", map[i].ours);
            return buf;
        }
    }
    /* Anything else: h2o's words, first letter up, printable ASCII only. */
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        char c = body[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            continue;
        buf[o] = (o == 0 && c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        o++;
    }
    if (o == 0)
        o = (size_t)snprintf(buf, cap, "HTTP error %d", status);
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

static h2o_iovec_t *guard_content_type(h2o_req_t *req)
{
    for (size_t i = 0; i < req->res.headers.size; i++)
        if (req->res.headers.entries[i].name == &H2O_TOKEN_CONTENT_TYPE->buf)
            return &req->res.headers.entries[i].value;
    return NULL;
}

void h2o_send_inline(h2o_req_t *req, const char *body, size_t len)
{
    guard_resolve();
    if (guard.enabled && guard.json_errors && req->res.status >= 400) {
        h2o_iovec_t *ct = guard_content_type(req);
        /* h2o_send_error_generic's pages are text/plain; ours never are. */
        if (ct != NULL && ct->len >= 10 && memcmp(ct->base, "text/plain", 10) == 0) {
            if (len == SIZE_MAX)
                len = strlen(body);
            char msg[128];
            h2o_guard_message(req->res.status, body, len, msg, sizeof msg);
            char *json = h2o_mem_alloc_pool(&req->pool, strlen(msg) + 16);
            int n = snprintf(json, strlen(msg) + 16, "{\"error\":\"%s\"}", msg);
            *ct = h2o_iovec_init(H2O_STRLIT("application/json"));
            req->res.content_length = (size_t)n;
            guard.stats.errors_rewritten++;
            guard.send_inline(req, json, (size_t)n);
            return;
        }
    }
    guard.send_inline(req, body, len);
}

/* Why picohttpparser gave up on the head in sock->input (bounded by the
 * input, which h2o caps at H2O_MAX_REQLEN). */
static const char *guard_bad_request(h2o_socket_t *sock)
{
    if (sock->input == NULL)
        return JSON_400_MALFORMED;
    const char *p = sock->input->bytes, *end = p + sock->input->size;
    if (sock->input->size >= H2O_MAX_REQLEN)
        return JSON_400_TOO_BIG;
    size_t lines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - p);
        if (n == 0 || (n == 1 && p[0] == '\r'))
            break;
        lines++;
        p = nl + 1;
    }
    return lines > H2O_MAX_HEADERS + 1 ? JSON_400_TOO_MANY : JSON_400_MALFORMED;
}

void h2o_socket_write(h2o_socket_t *sock, h2o_iovec_t *bufs, size_t bufcnt, h2o_socket_cb cb)
{
    guard_resolve();
    if (guard.enabled && guard.json_errors && bufcnt == 1 && bufs[0].len == sizeof H2O_PLAIN_400 - 1 &&
        memcmp(bufs[0].base, H2O_PLAIN_400, sizeof H2O_PLAIN_400 - 1) == 0) {
        /* static storage: h2o may keep the iovec until the write is done */
        static h2o_iovec_t repl;
        const char *r = guard_bad_request(sock);
        repl = h2o_iovec_init(r, strlen(r));
        guard.stats.bad_requests_replaced++;
        guard.socket_write(sock, &repl, 1, cb);
        return;
    }
    guard.socket_write(sock, bufs, bufcnt, cb);
}

/* Closes an HTTP/2 connection from inside h2o's frame loop with public
 * API only: the frames still buffered after the current one are dropped
 * (the current frame is at the head of sock->input, and h2o consumes
 * exactly its length when we return, so the loop ends), and the socket is
 * shut down, so h2o's next read sees the end and closes the connection its
 * own way (close_connection: pending writes fail, streams are disposed). */
static void guard_close_h2(h2o_conn_t *conn)
{
    h2o_socket_t *sock = conn->callbacks->get_socket ? conn->callbacks->get_socket(conn) : NULL;
    if (sock == NULL)
        return;
    h2o_buffer_t *in = sock->input;
    if (in != NULL && in->size >= 9) {
        const uint8_t *b = (const uint8_t *)in->bytes;
        size_t frame = 9 + ((size_t)b[0] << 16 | (size_t)b[1] << 8 | b[2]);
        if (frame <= in->size)
            in->size = frame;
    }
    shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
}

void h2o_http2_stream_reset(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream)
{
    guard_resolve();
    guard.stream_reset(conn, stream);
    if (!guard.enabled || guard.resets == NULL)
        return;
    h2o_conn_t *c = (h2o_conn_t *)conn; /* `super` is the first member */
    guard.stats.h2_resets++;
    if (rl_table_hit(guard.resets, c->id, guard.now_ms()))
        return;
    rl_table_forget(guard.resets, c->id);
    guard.stats.h2_conns_closed++;
    guard_close_h2(c);
}
