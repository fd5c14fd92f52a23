/* worker/raft_client.c: the worker's connection to raftproc (raft_client.h).
 * Owns the socket, the two output buffers, the id -> call map, the backstop
 * and reconnect timers. Never blocks, never touches an HTTP request: callers
 * get their answer through a callback, and a call whose request pool is gone
 * is forgotten (its late answer is dropped). */
#include "worker/raft_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/errors.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/frame.h"

/* Reconnect delays: fast enough that a restarted raftproc is picked up
 * within ~1 s, slow enough not to spin while it is down. */
static const uint64_t raft_client_backoff_ms[] = {20, 40, 80, 160, 320, 640, 1000};
#define RAFT_CLIENT_BACKOFF_LEVELS (sizeof raft_client_backoff_ms / sizeof raft_client_backoff_ms[0])

/* Output bytes not yet accepted by raftproc. Past this it is not reading:
 * refuse new calls (503) rather than grow without bound. */
#define RAFT_CLIENT_OUT_MAX (16u << 20)
#define RAFT_CLIENT_OUT_MIN (64u << 10)

/* First-fit bump arena for unpacking one Response: a normal answer needs a
 * few hundred bytes; anything bigger falls back to malloc (see arena_*). */
#define RAFT_CLIENT_ARENA 16384

#define RAFT_CLIENT_BUCKETS_MIN 1024

enum raft_client_state { RC_DISCONNECTED, RC_CONNECTING, RC_CONNECTED };

struct raft_client_buf {
    uint8_t *data;
    size_t len, cap;
};

/* One call waiting for raftproc; lives in the HTTP request's pool. */
struct raft_client_call {
    raft_client *client;
    struct raft_client_call *hnext; /* bucket chain */
    uint64_t id;
    h2o_timeout_entry_t backstop;
    raft_client_cb cb;
    void *arg;
    int live;  /* in the map; cb not called yet */
    int waits; /* an acquire with wait: raftproc queues it until answered */
};

struct raft_client {
    h2o_loop_t *loop;
    const struct lockd_config *cfg;
    struct sockaddr_un addr;
    socklen_t addr_len;

    enum raft_client_state state;
    h2o_socket_t *sock;
    int writing;                 /* one h2o_socket_write outstanding */
    struct raft_client_buf pend; /* frames queued since the last write began */
    struct raft_client_buf fly;  /* the bytes of the outstanding write */
    h2o_timeout_t flush_timeout; /* 0 ms: runs after this loop turn's I/O */
    h2o_timeout_entry_t flush_entry;

    h2o_timeout_t backoff[RAFT_CLIENT_BACKOFF_LEVELS];
    h2o_timeout_entry_t reconnect_entry;
    unsigned backoff_level;
    int down_logged; /* a "down" warning was logged; log the recovery */

    /* Backstops: h2o_timeout_t has one fixed duration, so there is one per
     * whole second of `wait` (api_timeout + 1 s + k s), created on first
     * use. Entries of one timeout expire in order: O(1) per call. */
    h2o_timeout_t *backstops;
    unsigned char *backstop_ready;
    size_t n_backstops;
    uint64_t backstop_unlogged, backstop_logged_at;

    struct raft_client_call **buckets; /* id & (nbuckets - 1); ids are
                                          sequential, so chains stay short */
    size_t nbuckets, count;
    uint64_t next_id;

    ProtobufCAllocator alloc;
    size_t arena_used;
    _Alignas(16) uint8_t arena[RAFT_CLIENT_ARENA];
};

static void raft_client_connect(raft_client *c);

/* ---- unpack allocator --------------------------------------------------- */

static void *raft_client_arena_alloc(void *data, size_t size)
{
    raft_client *c = data;
    size_t need = (size + 15) & ~(size_t)15;
    if (need >= size && need <= RAFT_CLIENT_ARENA - c->arena_used) {
        void *p = c->arena + c->arena_used;
        c->arena_used += need;
        return p;
    }
    return malloc(size);
}

static void raft_client_arena_free(void *data, void *p)
{
    raft_client *c = data;
    uint8_t *b = p;
    if (b >= c->arena && b < c->arena + RAFT_CLIENT_ARENA)
        return; /* reclaimed wholesale when arena_used is reset */
    free(p);
}

/* ---- id -> call map ---------------------------------------------------- */

static void raft_client_map_grow(raft_client *c)
{
    size_t n = c->nbuckets * 2;
    struct raft_client_call **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct raft_client_call *call = c->buckets[i];
        while (call) {
            struct raft_client_call *next = call->hnext;
            size_t k = (size_t)call->id & (n - 1);
            call->hnext = b[k];
            b[k] = call;
            call = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

static void raft_client_map_insert(raft_client *c, struct raft_client_call *call)
{
    size_t k = (size_t)call->id & (c->nbuckets - 1);
    call->hnext = c->buckets[k];
    c->buckets[k] = call;
    call->live = 1;
    if (++c->count > c->nbuckets)
        raft_client_map_grow(c);
}

/* Unlinks call from the map and its backstop; after this it is inert. */
static void raft_client_forget(raft_client *c, struct raft_client_call *call)
{
    struct raft_client_call **pp = &c->buckets[(size_t)call->id & (c->nbuckets - 1)];
    while (*pp && *pp != call)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = call->hnext;
        c->count--;
    }
    call->hnext = NULL;
    call->live = 0;
    if (h2o_timeout_is_linked(&call->backstop))
        h2o_timeout_unlink(&call->backstop);
}

static struct raft_client_call *raft_client_map_find(raft_client *c, uint64_t id)
{
    struct raft_client_call *call = c->buckets[(size_t)id & (c->nbuckets - 1)];
    while (call && call->id != id)
        call = call->hnext;
    return call;
}

/* Ends one call: forget it first, then call back last, because the callback
 * may end the HTTP request and free the call's memory. */
static void raft_client_finish(struct raft_client_call *call, const Lockd__Response *resp,
                               enum raft_client_outcome outcome)
{
    raft_client_cb cb = call->cb;
    void *arg = call->arg;
    raft_client_forget(call->client, call);
    cb(arg, resp, outcome);
}

/* Pops one call at a time: a callback may cause other calls' pools to be
 * cleared, which removes them from the map (never touched again here). */
static void raft_client_fail_all(raft_client *c, enum raft_client_outcome outcome)
{
    size_t i = 0;
    while (c->count > 0 && i < c->nbuckets) {
        struct raft_client_call *call = c->buckets[i];
        if (!call) {
            i++;
            continue;
        }
        raft_client_finish(call, NULL, outcome);
    }
}

static void raft_client_send_cancel(raft_client *c, uint64_t id);

/* The request's pool is being cleared: forget the call (late answer
 * dropped). A queued waiter whose client went away must also leave the
 * lock's queue, or the lock would be handed to nobody. */
static void raft_client_call_dispose(void *p)
{
    struct raft_client_call *call = p;
    if (call->live) {
        raft_client_forget(call->client, call);
        if (call->waits)
            raft_client_send_cancel(call->client, call->id);
    }
}

static void raft_client_on_backstop(h2o_timeout_entry_t *entry)
{
    struct raft_client_call *call = H2O_STRUCT_FROM_MEMBER(struct raft_client_call, backstop, entry);
    raft_client *c = call->client;
    /* A hung raftproc times out every call: one line per second, not one
     * per request. */
    c->backstop_unlogged++;
    uint64_t now = h2o_now(c->loop);
    if (now - c->backstop_logged_at >= 1000) {
        log_warn("raftproc did not answer %llu request(s) in time; answered 504",
                 (unsigned long long)c->backstop_unlogged);
        c->backstop_unlogged = 0;
        c->backstop_logged_at = now;
    }
    raft_client_finish(call, NULL, RAFT_CLIENT_TIMEOUT);
}

/* ---- connection ---------------------------------------------------------- */

static void raft_client_schedule_reconnect(raft_client *c)
{
    if (h2o_timeout_is_linked(&c->reconnect_entry))
        return;
    h2o_timeout_link(c->loop, &c->backoff[c->backoff_level], &c->reconnect_entry);
    if (c->backoff_level + 1 < RAFT_CLIENT_BACKOFF_LEVELS)
        c->backoff_level++;
}

/* The connection is unusable: close it, answer every waiting call 503 (the
 * outcome of a write is unknown to us) and retry later. */
static void raft_client_lost(raft_client *c, const char *why)
{
    if (!c->down_logged) {
        log_warn("raftproc connection %s: %s; reconnecting", c->cfg->raft_socket, why);
        c->down_logged = 1;
    } else {
        log_debug("raftproc connection %s: %s", c->cfg->raft_socket, why);
    }
    if (c->sock) {
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->state = RC_DISCONNECTED;
    c->writing = 0;
    c->pend.len = 0;
    c->fly.len = 0;
    if (h2o_timeout_is_linked(&c->flush_entry))
        h2o_timeout_unlink(&c->flush_entry);
    raft_client_fail_all(c, RAFT_CLIENT_UNAVAILABLE);
    raft_client_schedule_reconnect(c);
}

static void raft_client_flush(raft_client *c);

static void raft_client_on_write(h2o_socket_t *sock, const char *err)
{
    raft_client *c = sock->data;
    c->writing = 0;
    c->fly.len = 0;
    if (err) {
        raft_client_lost(c, err);
        return;
    }
    /* Everything queued while that write was out goes in one write now. */
    raft_client_flush(c);
}

static void raft_client_flush(raft_client *c)
{
    if (c->state != RC_CONNECTED || c->writing || c->pend.len == 0)
        return;
    struct raft_client_buf t = c->fly;
    c->fly = c->pend;
    c->pend = t;
    c->pend.len = 0;
    h2o_iovec_t iov = h2o_iovec_init(c->fly.data, c->fly.len);
    c->writing = 1;
    h2o_socket_write(c->sock, &iov, 1, raft_client_on_write);
}

static void raft_client_on_flush_timer(h2o_timeout_entry_t *entry)
{
    raft_client *c = H2O_STRUCT_FROM_MEMBER(raft_client, flush_entry, entry);
    raft_client_flush(c);
}

/* Handles one frame's payload. Returns 0, or -1 when the connection was
 * dropped (the caller must not touch the socket any more). */
static int raft_client_dispatch(raft_client *c, const uint8_t *payload, size_t len)
{
    c->arena_used = 0;
    Lockd__Response *resp = lockd__response__unpack(&c->alloc, len, payload);
    if (!resp) {
        log_error("raftproc sent an undecodable response (%zu bytes)", len);
        raft_client_lost(c, "protocol error");
        return -1;
    }
    c->backoff_level = 0; /* a working raftproc: next loss retries fast */
    struct raft_client_call *call = raft_client_map_find(c, resp->id);
    if (call)
        raft_client_finish(call, resp, RAFT_CLIENT_ANSWERED);
    else
        log_debug("dropping late answer to request %llu", (unsigned long long)resp->id);
    lockd__response__free_unpacked(resp, &c->alloc);
    return c->sock ? 0 : -1;
}

static void raft_client_on_read(h2o_socket_t *sock, const char *err)
{
    raft_client *c = sock->data;
    if (err) {
        raft_client_lost(c, err == h2o_socket_error_closed ? "closed by raftproc" : err);
        return;
    }
    size_t off = 0;
    for (;;) {
        const uint8_t *payload;
        size_t plen;
        int n = frame_peek((const uint8_t *)sock->input->bytes + off, sock->input->size - off, &payload, &plen);
        if (n == 0)
            break;
        if (n < 0) {
            raft_client_lost(c, "frame over LOCKD_FRAME_MAX");
            return;
        }
        off += (size_t)n;
        if (raft_client_dispatch(c, payload, plen) != 0 || c->sock != sock)
            return;
    }
    /* A partial frame stays in sock->input until the rest arrives. */
    if (off)
        h2o_buffer_consume(&sock->input, off);
}

static void raft_client_on_connect(h2o_socket_t *sock, const char *err)
{
    raft_client *c = sock->data;
    if (err) {
        raft_client_lost(c, err);
        return;
    }
    c->state = RC_CONNECTED;
    if (c->down_logged) {
        log_info("raftproc connection %s restored", c->cfg->raft_socket);
        c->down_logged = 0;
    }
    h2o_socket_read_start(sock, raft_client_on_read);
    raft_client_flush(c);
}

static void raft_client_connect(raft_client *c)
{
    c->state = RC_CONNECTING;
    c->sock = h2o_socket_connect(c->loop, (struct sockaddr *)&c->addr, c->addr_len, raft_client_on_connect);
    if (!c->sock) {
        /* AF_UNIX refuses synchronously (ENOENT, ECONNREFUSED, EAGAIN). */
        raft_client_lost(c, strerror(errno));
        return;
    }
    c->sock->data = c;
}

static void raft_client_on_reconnect_timer(h2o_timeout_entry_t *entry)
{
    raft_client *c = H2O_STRUCT_FROM_MEMBER(raft_client, reconnect_entry, entry);
    if (c->state == RC_DISCONNECTED)
        raft_client_connect(c);
}

/* ---- public -------------------------------------------------------------- */

int raft_client_create(h2o_loop_t *loop, const struct lockd_config *cfg, raft_client **out)
{
    size_t plen = strlen(cfg->raft_socket);
    raft_client *c;
    if (plen == 0 || plen >= sizeof c->addr.sun_path)
        return -LOCKD_EINVAL;
    c = calloc(1, sizeof *c);
    if (!c)
        return -LOCKD_ENOMEM;
    c->loop = loop;
    c->cfg = cfg;
    c->addr.sun_family = AF_UNIX;
    memcpy(c->addr.sun_path, cfg->raft_socket, plen + 1);
    c->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);

    c->alloc.alloc = raft_client_arena_alloc;
    c->alloc.free = raft_client_arena_free;
    c->alloc.allocator_data = c;

    c->nbuckets = RAFT_CLIENT_BUCKETS_MIN;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    c->n_backstops = (size_t)(cfg->wait_max_ms / 1000) + 2;
    c->backstops = calloc(c->n_backstops, sizeof *c->backstops);
    c->backstop_ready = calloc(c->n_backstops, 1);
    if (!c->buckets || !c->backstops || !c->backstop_ready) {
        free(c->buckets);
        free(c->backstops);
        free(c->backstop_ready);
        free(c);
        return -LOCKD_ENOMEM;
    }

    h2o_timeout_init(loop, &c->flush_timeout, 0);
    c->flush_entry.cb = raft_client_on_flush_timer;
    for (size_t i = 0; i < RAFT_CLIENT_BACKOFF_LEVELS; i++)
        h2o_timeout_init(loop, &c->backoff[i], raft_client_backoff_ms[i]);
    c->reconnect_entry.cb = raft_client_on_reconnect_timer;

    *out = c;
    raft_client_connect(c);
    return 0;
}

static int raft_client_reserve(struct raft_client_buf *b, size_t need)
{
    if (b->cap - b->len >= need)
        return 0;
    size_t cap = b->cap ? b->cap : RAFT_CLIENT_OUT_MIN;
    while (cap - b->len < need)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return -LOCKD_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int raft_client_send(raft_client *c, h2o_mem_pool_t *pool, Lockd__Request *msg, uint64_t extra_ms, raft_client_cb cb,
                     void *arg)
{
    if (c->state == RC_DISCONNECTED)
        return -LOCKD_EAGAIN;
    if (c->pend.len + c->fly.len > RAFT_CLIENT_OUT_MAX)
        return -LOCKD_EAGAIN;

    msg->id = ++c->next_id;
    size_t need = lockd__request__get_packed_size(msg) + FRAME_HEADER_SIZE;
    if (need > LOCKD_FRAME_MAX + FRAME_HEADER_SIZE)
        return -LOCKD_ETOOBIG;
    if (raft_client_reserve(&c->pend, need) != 0)
        return -LOCKD_EAGAIN;
    int n = frame_encode(&msg->base, c->pend.data + c->pend.len, c->pend.cap - c->pend.len);
    if (n < 0)
        return n;
    c->pend.len += (size_t)n;

    struct raft_client_call *call = h2o_mem_alloc_shared(pool, sizeof *call, raft_client_call_dispose);
    memset(call, 0, sizeof *call);
    call->client = c;
    call->id = msg->id;
    call->cb = cb;
    call->arg = arg;
    call->backstop.cb = raft_client_on_backstop;
    call->waits = msg->op == LOCKD__OP__OP_ACQUIRE && msg->wait_ms > 0;
    raft_client_map_insert(c, call);

    /* raftproc answers a call with `wait` only after the wait (plus its own
     * API timeout), so the backstop grows with it, rounded up to a second. */
    size_t k = (size_t)((extra_ms + 999) / 1000);
    if (k >= c->n_backstops)
        k = c->n_backstops - 1;
    if (!c->backstop_ready[k]) {
        h2o_timeout_init(c->loop, &c->backstops[k], c->cfg->api_timeout_ms + 1000 + (uint64_t)k * 1000);
        c->backstop_ready[k] = 1;
    }
    h2o_timeout_link(c->loop, &c->backstops[k], &call->backstop);

    /* Batch: the frame leaves with the others of this loop turn. */
    if (!c->writing && !h2o_timeout_is_linked(&c->flush_entry))
        h2o_timeout_link(c->loop, &c->flush_timeout, &c->flush_entry);
    return 0;
}

/* Asks raftproc to drop the queued acquire of call `id` (best effort: if
 * the connection is down, raftproc already dropped this connection's
 * waiters). */
static void raft_client_send_cancel(raft_client *c, uint64_t id)
{
    if (c->state == RC_DISCONNECTED)
        return;
    Lockd__Request msg = LOCKD__REQUEST__INIT;
    msg.id = ++c->next_id;
    msg.op = LOCKD__OP__OP_CANCEL;
    msg.cancel_id = id;
    size_t need = lockd__request__get_packed_size(&msg) + FRAME_HEADER_SIZE;
    if (raft_client_reserve(&c->pend, need) != 0)
        return;
    int n = frame_encode(&msg.base, c->pend.data + c->pend.len, c->pend.cap - c->pend.len);
    if (n < 0)
        return;
    c->pend.len += (size_t)n;
    if (!c->writing && !h2o_timeout_is_linked(&c->flush_entry))
        h2o_timeout_link(c->loop, &c->flush_timeout, &c->flush_entry);
}

void raft_client_abandon(raft_client *c, uint64_t id)
{
    struct raft_client_call *call = raft_client_map_find(c, id);
    if (call == NULL || !call->live)
        return;
    raft_client_forget(c, call);
    if (call->waits)
        raft_client_send_cancel(c, call->id);
}

int raft_client_is_up(const raft_client *c)
{
    return c->state != RC_DISCONNECTED;
}

size_t raft_client_inflight(const raft_client *c)
{
    return c->count;
}

void raft_client_cancel_all(raft_client *c)
{
    raft_client_fail_all(c, RAFT_CLIENT_SHUTDOWN);
}

void raft_client_destroy(raft_client *c)
{
    if (!c)
        return;
    raft_client_fail_all(c, RAFT_CLIENT_SHUTDOWN);
    if (c->sock) {
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->state = RC_DISCONNECTED;
    if (h2o_timeout_is_linked(&c->flush_entry))
        h2o_timeout_unlink(&c->flush_entry);
    if (h2o_timeout_is_linked(&c->reconnect_entry))
        h2o_timeout_unlink(&c->reconnect_entry);
    h2o_timeout_dispose(c->loop, &c->flush_timeout);
    for (size_t i = 0; i < RAFT_CLIENT_BACKOFF_LEVELS; i++)
        h2o_timeout_dispose(c->loop, &c->backoff[i]);
    for (size_t i = 0; i < c->n_backstops; i++)
        if (c->backstop_ready[i])
            h2o_timeout_dispose(c->loop, &c->backstops[i]);
    free(c->backstops);
    free(c->backstop_ready);
    free(c->buckets);
    free(c->pend.data);
    free(c->fly.data);
    free(c);
}
