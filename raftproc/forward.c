/* raftproc/forward.c: follower -> leader request relay (see forward.h).
 * Owns the peer connection, its buffers and the calls in flight on it.
 * Never blocks: libuv TCP; a leader that stops answering costs each call at
 * most the API timeout. */
#include "raftproc/forward.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/frame.h"

#define FWD_BUCKETS 1024
#define FWD_OUT_MAX (16u << 20)
#define FWD_TICK_MS 50
#define FWD_RETRY_MS 100

struct fwd_call {
    uint64_t id;
    forward_cb cb;
    void *arg;
    uint64_t deadline_ms;
    struct fwd_call *hnext;
    struct fwd_call *prev, *next; /* FIFO = deadline order */
};

struct fconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    forwarder *f;
    bool connected, writing, dead;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *fly;
    size_t fly_cap;
};

struct forwarder {
    uv_loop_t *loop;
    const struct lockd_config *cfg;
    struct fconn *conn;
    uint64_t leader_id;
    uint64_t failed_at_ms; /* last connect failure: back off a little */
    uint8_t *pend;         /* frames not yet written */
    size_t pend_len, pend_cap;
    struct fwd_call *buckets[FWD_BUCKETS];
    struct fwd_call *head, *tail;
    uint64_t next_id;
    uv_prepare_t flush;
    uv_timer_t timer;
};

static void fwd_unlink(forwarder *f, struct fwd_call *c)
{
    struct fwd_call **pp = &f->buckets[c->id % FWD_BUCKETS];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    if (c->prev)
        c->prev->next = c->next;
    else
        f->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        f->tail = c->prev;
}

static void fwd_finish(forwarder *f, struct fwd_call *c, const Lockd__Response *resp, const char *why)
{
    fwd_unlink(f, c);
    forward_cb cb = c->cb;
    void *arg = c->arg;
    free(c);
    cb(arg, resp, why);
}

static void fwd_fail_all(forwarder *f, const char *why)
{
    while (f->head != NULL)
        fwd_finish(f, f->head, NULL, why);
}

static void fconn_closed(uv_handle_t *h)
{
    struct fconn *c = h->data;
    free(c->in);
    free(c->fly);
    free(c);
}

static void fwd_drop_conn(forwarder *f, const char *why)
{
    struct fconn *c = f->conn;
    if (c != NULL) {
        f->conn = NULL;
        c->dead = true;
        uv_close((uv_handle_t *)&c->tcp, fconn_closed);
    }
    f->pend_len = 0;
    fwd_fail_all(f, why);
}

void forwarder_reset(forwarder *f, const char *why)
{
    fwd_drop_conn(f, why);
}

void forwarder_leader_changed(forwarder *f, uint64_t leader_id)
{
    if (leader_id != f->leader_id && (f->conn != NULL || f->head != NULL))
        fwd_drop_conn(f, "Leader changed; outcome unknown");
}

static void fwd_write_done(uv_write_t *req, int status)
{
    struct fconn *c = req->data;
    c->writing = false;
    if (c->dead)
        return;
    if (status != 0) {
        log_warn("forwarding to leader %llu: write failed: %s", (unsigned long long)c->f->leader_id,
                 uv_strerror(status));
        fwd_drop_conn(c->f, "Connection to the leader lost; outcome unknown");
    }
}

static void fwd_flush(uv_prepare_t *h)
{
    forwarder *f = h->data;
    struct fconn *c = f->conn;
    if (c == NULL || !c->connected || c->writing || f->pend_len == 0)
        return;
    uint8_t *tmp = c->fly;
    size_t tmp_cap = c->fly_cap;
    c->fly = f->pend;
    c->fly_cap = f->pend_cap;
    uv_buf_t b = uv_buf_init((char *)c->fly, (unsigned)f->pend_len);
    f->pend = tmp;
    f->pend_cap = tmp_cap;
    f->pend_len = 0;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, fwd_write_done) != 0) {
        fwd_drop_conn(f, "Connection to the leader lost; outcome unknown");
        return;
    }
    c->writing = true;
}

static void fwd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fconn *c = h->data;
    if (c->in_cap - c->in_len < 16384) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 65536;
        uint8_t *p = realloc(c->in, cap);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->in = p;
        c->in_cap = cap;
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void fwd_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct fconn *c = st->data;
    forwarder *f = c->f;
    if (c->dead)
        return;
    if (nread < 0) {
        log_warn("forwarding to leader %llu: %s", (unsigned long long)f->leader_id,
                 nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
        fwd_drop_conn(f, "Connection to the leader lost; outcome unknown");
        return;
    }
    c->in_len += (size_t)nread;
    size_t off = 0;
    for (;;) {
        const uint8_t *payload;
        size_t plen;
        int n = frame_peek(c->in + off, c->in_len - off, &payload, &plen);
        if (n == 0)
            break;
        Lockd__Response *r = n > 0 ? lockd__response__unpack(NULL, plen, payload) : NULL;
        if (r == NULL) {
            log_warn("forwarding: undecodable answer from leader %llu", (unsigned long long)f->leader_id);
            fwd_drop_conn(f, "Bad answer from the leader; outcome unknown");
            return;
        }
        off += (size_t)n;
        for (struct fwd_call *k = f->buckets[r->id % FWD_BUCKETS]; k != NULL; k = k->hnext) {
            if (k->id == r->id) {
                fwd_finish(f, k, r, NULL);
                break;
            }
        }
        lockd__response__free_unpacked(r, NULL);
        if (c->dead)
            return;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

static void fwd_connected(uv_connect_t *req, int status)
{
    struct fconn *c = req->data;
    if (c->dead)
        return;
    forwarder *f = c->f;
    if (status != 0) {
        log_warn("forwarding: cannot connect to leader %llu: %s", (unsigned long long)f->leader_id,
                 uv_strerror(status));
        f->failed_at_ms = clock_monotonic_ms();
        fwd_drop_conn(f, "Leader unreachable");
        return;
    }
    c->connected = true;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, fwd_alloc, fwd_read);
    fwd_flush(&f->flush);
}

/* The leader's peer port is its Raft port + 1000, whether it came from the
 * cluster file or was added at run time. */
static int fwd_connect(forwarder *f, const char *leader_raft_address)
{
    char host[LOCKD_ADDR_MAX];
    const char *colon = strrchr(leader_raft_address, ':');
    if (colon == NULL || (size_t)(colon - leader_raft_address) >= sizeof(host))
        return -LOCKD_ENOENT;
    memcpy(host, leader_raft_address, (size_t)(colon - leader_raft_address));
    host[colon - leader_raft_address] = '\0';
    int port = atoi(colon + 1) + LOCKD_PEER_PORT_OFFSET;
    struct sockaddr_in sa;
    if (port <= LOCKD_PEER_PORT_OFFSET || port > 65535 || uv_ip4_addr(host, port, &sa) != 0)
        return -LOCKD_ENOENT;
    struct fconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -LOCKD_ENOMEM;
    c->f = f;
    uv_tcp_init(f->loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa, fwd_connected) != 0) {
        uv_close((uv_handle_t *)&c->tcp, fconn_closed);
        return -LOCKD_EAGAIN;
    }
    f->conn = c;
    return 0;
}

int64_t forwarder_send(forwarder *f, uint64_t leader_id, const char *leader_raft_address, Lockd__Request *req,
                       forward_cb cb, void *arg)
{
    if (leader_id != f->leader_id) {
        fwd_drop_conn(f, "Leader changed; outcome unknown");
        f->leader_id = leader_id;
        f->failed_at_ms = 0;
    }
    if (f->conn == NULL) {
        if (clock_monotonic_ms() - f->failed_at_ms < FWD_RETRY_MS)
            return -LOCKD_EAGAIN;
        int rc = fwd_connect(f, leader_raft_address);
        if (rc != 0)
            return rc;
    }
    size_t need = lockd__request__get_packed_size(req) + FRAME_HEADER_SIZE + 16;
    if (f->pend_len + need > f->pend_cap) {
        size_t cap = f->pend_cap ? f->pend_cap : 16384;
        while (cap < f->pend_len + need)
            cap *= 2;
        if (cap > FWD_OUT_MAX)
            return -LOCKD_EAGAIN;
        uint8_t *p = realloc(f->pend, cap);
        if (p == NULL)
            return -LOCKD_ENOMEM;
        f->pend = p;
        f->pend_cap = cap;
    }
    struct fwd_call *c = malloc(sizeof(*c));
    if (c == NULL)
        return -LOCKD_ENOMEM;
    uint64_t orig = req->id;
    req->id = ++f->next_id;
    int n = frame_encode(&req->base, f->pend + f->pend_len, f->pend_cap - f->pend_len);
    uint64_t id = req->id;
    req->id = orig;
    if (n < 0) {
        free(c);
        return n;
    }
    f->pend_len += (size_t)n;
    c->id = id;
    c->cb = cb;
    c->arg = arg;
    /* A queued acquire may legitimately take its whole wait, and adding a
     * member waits for it to catch up (libraft: up to 10 rounds). */
    c->deadline_ms = clock_monotonic_ms() + f->cfg->api_timeout_ms +
                     (req->op == LOCKD__OP__OP_ACQUIRE ? req->wait_ms : 0) +
                     (req->op == LOCKD__OP__OP_MEMBER_ADD ? 30000 : 0);
    c->hnext = f->buckets[id % FWD_BUCKETS];
    f->buckets[id % FWD_BUCKETS] = c;
    /* Keep the list in deadline order (waits make it not quite FIFO). */
    struct fwd_call *after = f->tail;
    while (after != NULL && after->deadline_ms > c->deadline_ms)
        after = after->prev;
    c->prev = after;
    c->next = after ? after->next : f->head;
    if (c->next)
        c->next->prev = c;
    else
        f->tail = c;
    if (after)
        after->next = c;
    else
        f->head = c;
    return (int64_t)id;
}

void forwarder_cancel(forwarder *f, int64_t fid)
{
    if (f->conn == NULL || fid <= 0)
        return;
    Lockd__Request r = LOCKD__REQUEST__INIT;
    r.op = LOCKD__OP__OP_CANCEL;
    r.id = ++f->next_id;
    r.cancel_id = (uint64_t)fid;
    size_t need = lockd__request__get_packed_size(&r) + FRAME_HEADER_SIZE;
    if (f->pend_len + need > f->pend_cap) {
        size_t cap = f->pend_cap ? f->pend_cap * 2 : 16384;
        uint8_t *p = cap <= FWD_OUT_MAX ? realloc(f->pend, cap) : NULL;
        if (p == NULL)
            return;
        f->pend = p;
        f->pend_cap = cap;
    }
    int n = frame_encode(&r.base, f->pend + f->pend_len, f->pend_cap - f->pend_len);
    if (n > 0)
        f->pend_len += (size_t)n;
}

static void fwd_tick(uv_timer_t *t)
{
    forwarder *f = t->data;
    uint64_t now = clock_monotonic_ms();
    while (f->head != NULL && f->head->deadline_ms <= now)
        fwd_finish(f, f->head, NULL, "The leader did not answer in time; outcome unknown");
}

int forwarder_create(uv_loop_t *loop, const struct lockd_config *cfg, forwarder **out)
{
    forwarder *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -LOCKD_ENOMEM;
    f->loop = loop;
    f->cfg = cfg;
    uv_prepare_init(loop, &f->flush);
    f->flush.data = f;
    uv_prepare_start(&f->flush, fwd_flush);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, fwd_tick, FWD_TICK_MS, FWD_TICK_MS);
    *out = f;
    return 0;
}

void forwarder_close(forwarder *f)
{
    if (f == NULL)
        return;
    fwd_drop_conn(f, "Shutting down; outcome unknown");
    uv_prepare_stop(&f->flush);
    uv_close((uv_handle_t *)&f->flush, NULL);
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, NULL);
    free(f->pend);
    /* f itself stays allocated: the handles above close on a later turn. */
}
