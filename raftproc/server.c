/* raftproc/server.c: worker connections and group commit (see server.h).
 * Owns the connection table, the batch being gathered this loop turn and
 * the proposals in flight. Never blocks: all I/O through libuv; a slow
 * worker that stops reading is disconnected rather than buffered forever. */
#include "raftproc/server.h"

#include "raftproc/forward.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/names.h"
#include "proto/frame.h"
#include "proto/lockd.pb-c.h"
#include "worker/metrics.h" /* the shared histogram buckets */

#define SERVER_MAX_CONNS 1024
#define SERVER_MAX_BATCH 4096         /* commands per Raft entry */
#define SERVER_MAX_OUTPUT (64u << 20) /* unread answers before we give up on a worker */
#define SERVER_TIMEOUT_TICK_MS 50

struct conn {
    union {             /* first member: the handle's address is the conn's */
        uv_pipe_t pipe; /* a worker, on the Unix socket */
        uv_tcp_t tcp;   /* a follower's raftproc, on the peer port */
    };
    bool peer; /* forwarded requests are never forwarded again */
    rp_server *server;
    uint32_t slot, gen;
    bool closing;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out; /* answers gathered this turn */
    size_t out_len, out_cap;
    uint8_t *wbuf; /* the bytes of the write in flight */
    size_t wbuf_cap;
    bool writing;
    bool dirty; /* on the server's flush list */
    struct conn *next_dirty;
    uv_write_t wreq;
};

/* Where one command's answer goes. */
struct reply_to {
    uint32_t slot, gen;
    uint64_t req_id;
    uint64_t wait_ms; /* acquire with wait: how long it may stay queued */
    bool answered;
};

/* An acquire queued in the FSM on behalf of a worker's request (leader
 * only). Answered when a release hands it the lock (200), or when its
 * CANCEL applies after its wait ran out or its client left (409). */
struct waiting {
    uint64_t waiter_id; /* 0: a tombstone: the client left before it queued */
    struct reply_to to;
    uint64_t deadline_ms;
    bool cancel_sent;
    bool abandoned; /* its client left: a grant goes straight back */
    uint8_t name_len;
    char name[LOCKD_NAME_MAX + 1];
};

#define REPLY_NONE UINT32_MAX /* reply_to.slot of a command raftproc made itself */

/* One command waiting for this turn's entry. */
struct batch_item {
    Lockd__Request *req; /* a worker's request (owns its strings), or NULL */
    Lockd__Op op;        /* internal command (req == NULL) */
    uint64_t revision;   /* EXPIRE */
    uint64_t waiter;     /* CANCEL */
    uint64_t token;      /* RELEASE */
    char name[LOCKD_NAME_MAX + 1];
    char owner[LOCKD_OWNER_MAX + 1];
    struct reply_to to;
};

/* A proposal in flight: one Raft entry. */
struct inflight {
    rp_server *server;
    uint64_t deadline_ms;
    struct inflight *prev, *next; /* FIFO by deadline */
    size_t n;
    uint64_t proposed_ns; /* CLOCK_MONOTONIC: for the commit-latency histogram */
    Lockd__Op *ops;       /* points after to[] */
    struct reply_to to[];
};

struct rp_server {
    uv_loop_t *loop;
    const struct lockd_config *cfg;
    consensus *cons;
    uv_pipe_t listener;
    uv_prepare_t flush;
    uv_timer_t timeouts;
    bool stopped;
    struct conn *conns[SERVER_MAX_CONNS];
    uint32_t gens[SERVER_MAX_CONNS];
    struct conn *dirty;

    /* the batch of this loop turn */
    struct batch_item *batch;
    size_t batch_n, batch_cap;

    struct inflight *head, *tail;
    uv_tcp_t peer_listener; /* followers forward writes here (clusters only) */
    bool has_peer_listener;
    forwarder *fwd;            /* to the leader, when this node follows */
    struct fwd_ctx *fwd_waits; /* forwarded acquires with a wait (for cancels) */
    struct waiting *waiting;   /* unordered; linear scans (waiters are few) */
    /* Recent hand-overs, in case the waiter's client turns out to have left
     * just before: its late cancel then gives the lock back. */
    struct granted {
        struct reply_to to;
        uint64_t token;
        uint8_t name_len, owner_len;
        char name[LOCKD_NAME_MAX + 1];
        char owner[LOCKD_OWNER_MAX + 1];
    } granted[64];
    unsigned granted_next;
    size_t n_waiting, cap_waiting;
    struct rp_server_stats stats;
};

/* Commit latency goes into the same buckets as the HTTP histograms. */
static uint64_t server_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- output ------------------------------------------------------------ */

static void conn_close(struct conn *cn);

static struct conn *server_conn(rp_server *s, uint32_t slot, uint32_t gen)
{
    struct conn *cn = slot < SERVER_MAX_CONNS ? s->conns[slot] : NULL;
    return cn != NULL && cn->gen == gen && !cn->closing ? cn : NULL;
}

static void conn_mark_dirty(struct conn *cn)
{
    if (!cn->dirty) {
        cn->dirty = true;
        cn->next_dirty = cn->server->dirty;
        cn->server->dirty = cn;
    }
}

static int conn_append_frame(struct conn *cn, const ProtobufCMessage *msg)
{
    size_t need = protobuf_c_message_get_packed_size(msg) + FRAME_HEADER_SIZE;
    if (cn->out_len + need > cn->out_cap) {
        size_t cap = cn->out_cap ? cn->out_cap : 16384;
        while (cap < cn->out_len + need)
            cap *= 2;
        if (cap > SERVER_MAX_OUTPUT) {
            log_warn("worker connection %u has %zu unread bytes: closing it", cn->slot, cn->out_len);
            conn_close(cn);
            return -LOCKD_ETOOBIG;
        }
        uint8_t *p = realloc(cn->out, cap);
        if (p == NULL) {
            conn_close(cn);
            return -LOCKD_ENOMEM;
        }
        cn->out = p;
        cn->out_cap = cap;
    }
    int n = frame_encode(msg, cn->out + cn->out_len, cn->out_cap - cn->out_len);
    if (n < 0)
        return n;
    cn->out_len += (size_t)n;
    conn_mark_dirty(cn);
    return 0;
}

static void server_lock_to_proto(const shm_lock *l, Lockd__Lock *p)
{
    p->name = (char *)l->name;
    p->owner = (char *)l->owner;
    p->token = l->token;
    p->acquired_at_ms = l->acquired_at_ms;
    p->ttl_ms = l->ttl_ms;
    p->renewed_at_ms = l->renewed_at_ms;
    p->revision = l->revision;
}

static void server_reply(rp_server *s, struct reply_to *to, int status, const struct fsm_result *res, const char *error,
                         uint64_t index)
{
    if (to->answered)
        return;
    to->answered = true;
    struct conn *cn = server_conn(s, to->slot, to->gen);
    if (cn == NULL)
        return; /* the worker went away; nobody to tell */
    Lockd__Response r = LOCKD__RESPONSE__INIT;
    Lockd__Lock lock = LOCKD__LOCK__INIT;
    r.id = to->req_id;
    r.status = status;
    r.index = index;
    if (res != NULL && res->has_lock) {
        server_lock_to_proto(&res->lock, &lock);
        r.lock = &lock;
        r.has_lock = true;
    }
    if (error == NULL && res != NULL)
        error = res->error;
    r.error = (char *)(error ? error : "");
    const char *addr = NULL;
    r.leader_id = consensus_leader(s->cons, &addr);
    r.leader_address = (char *)(addr ? addr : "");
    conn_append_frame(cn, &r.base);
}

static void conn_write_done(uv_write_t *req, int status)
{
    struct conn *cn = req->data;
    cn->writing = false;
    if (status != 0) {
        if (status != UV_ECANCELED)
            log_warn("write to worker connection %u failed: %s", cn->slot, uv_strerror(status));
        conn_close(cn);
        return;
    }
    if (cn->out_len > 0)
        conn_mark_dirty(cn);
}

static void conn_flush(struct conn *cn)
{
    if (cn->writing || cn->closing || cn->out_len == 0)
        return;
    /* Swap buffers: the write owns wbuf until it completes, new answers go
     * into out meanwhile (one write per loop turn carries them all). */
    uint8_t *tmp = cn->wbuf;
    size_t tmp_cap = cn->wbuf_cap;
    cn->wbuf = cn->out;
    cn->wbuf_cap = cn->out_cap;
    uv_buf_t b = uv_buf_init((char *)cn->wbuf, (unsigned)cn->out_len);
    cn->out = tmp;
    cn->out_cap = tmp_cap;
    cn->out_len = 0;
    cn->wreq.data = cn;
    int rc = uv_write(&cn->wreq, (uv_stream_t *)&cn->tcp, &b, 1, conn_write_done);
    if (rc != 0) {
        log_warn("write to worker connection %u: %s", cn->slot, uv_strerror(rc));
        conn_close(cn);
        return;
    }
    cn->writing = true;
}

/* ---- proposals --------------------------------------------------------- */

static void inflight_unlink(rp_server *s, struct inflight *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        s->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        s->tail = f->prev;
}

static struct waiting *waiting_find(rp_server *s, uint64_t waiter_id)
{
    for (size_t i = 0; i < s->n_waiting; i++)
        if (s->waiting[i].waiter_id == waiter_id)
            return &s->waiting[i];
    return NULL;
}

static void waiting_drop(rp_server *s, struct waiting *w)
{
    *w = s->waiting[--s->n_waiting];
}

static struct waiting *waiting_add(rp_server *s)
{
    if (s->n_waiting == s->cap_waiting) {
        size_t cap = s->cap_waiting ? s->cap_waiting * 2 : 64;
        struct waiting *w = realloc(s->waiting, cap * sizeof(*w));
        if (w == NULL)
            return NULL;
        s->waiting = w;
        s->cap_waiting = cap;
    }
    struct waiting *w = &s->waiting[s->n_waiting++];
    memset(w, 0, sizeof(*w));
    return w;
}

static int server_submit_internal(rp_server *s, Lockd__Op op, const char *name, size_t len, const char *owner,
                                  size_t olen, uint64_t token, uint64_t revision, uint64_t waiter);

static void server_abandon(rp_server *s, struct conn *cn, uint64_t req_id);

static void waiting_cancel(rp_server *s, struct waiting *w)
{
    if (w->cancel_sent)
        return;
    if (server_submit_internal(s, LOCKD__OP__OP_CANCEL, w->name, w->name_len, "", 0, 0, 0, w->waiter_id) == 0)
        w->cancel_sent = true;
}

static void server_remember_grant(rp_server *s, const struct reply_to *to, const shm_lock *l)
{
    struct granted *g = &s->granted[s->granted_next++ % 64];
    g->to = *to;
    g->token = l->token;
    g->name_len = l->name_len;
    g->owner_len = l->owner_len;
    memcpy(g->name, l->name, (size_t)l->name_len + 1);
    memcpy(g->owner, l->owner, (size_t)l->owner_len + 1);
}

/* One command's result: answer its caller, and serve the waiters it moved. */
static void server_result(rp_server *s, struct reply_to *to, const struct fsm_result *r, Lockd__Op op)
{
    if (r->status == LOCKD__STATUS__ST_QUEUED) {
        struct waiting *w = NULL;
        /* Did the client leave while this was on its way (a tombstone)? */
        for (size_t i = 0; i < s->n_waiting; i++)
            if (s->waiting[i].waiter_id == 0 && s->waiting[i].to.slot == to->slot && s->waiting[i].to.gen == to->gen &&
                s->waiting[i].to.req_id == to->req_id)
                w = &s->waiting[i];
        if (w == NULL)
            w = waiting_add(s);
        if (w == NULL) {
            server_reply(s, to, LOCKD__STATUS__ST_UNAVAILABLE, NULL, "Out of memory", 0);
            return;
        }
        bool gone = w->waiter_id == 0 && w->to.req_id == to->req_id && w->deadline_ms != 0;
        w->abandoned = gone;
        w->waiter_id = r->waiter_id;
        w->to = *to;
        w->to.answered = false;
        w->deadline_ms = clock_monotonic_ms() + to->wait_ms;
        w->cancel_sent = false;
        w->name_len = r->lock.name_len;
        memcpy(w->name, r->lock.name, (size_t)r->lock.name_len + 1);
        to->answered = true; /* answered later through w */
        if (gone || server_conn(s, to->slot, to->gen) == NULL)
            waiting_cancel(s, w);
        s->stats.queued++;
        return;
    }
    if (op == LOCKD__OP__OP_CANCEL && r->status == LOCKD__STATUS__ST_OK) {
        /* Left the queue: its wait ran out (or its client left). */
        struct waiting *w = waiting_find(s, r->waiter_id);
        if (w != NULL) {
            struct fsm_result holder = {.status = LOCKD__STATUS__ST_CONFLICT, .has_lock = r->has_lock};
            if (r->has_lock)
                holder.lock = r->lock;
            server_reply(s, &w->to, LOCKD__STATUS__ST_CONFLICT, &holder, NULL, 0);
            waiting_drop(s, w);
        }
    }
    if (r->granted) {
        struct waiting *w = waiting_find(s, r->waiter_id);
        struct conn *cn = w && !w->abandoned ? server_conn(s, w->to.slot, w->to.gen) : NULL;
        if (cn != NULL) {
            struct fsm_result got = {.status = LOCKD__STATUS__ST_OK, .has_lock = true, .lock = r->grant};
            server_reply(s, &w->to, LOCKD__STATUS__ST_OK, &got, NULL, 0);
            s->stats.handoffs++;
            server_remember_grant(s, &w->to, &r->grant);
        } else {
            /* Handed to a waiter nobody listens to any more (its worker or
             * a previous leader is gone): give it back, token-checked so a
             * later holder is never released by mistake. */
            server_submit_internal(s, LOCKD__OP__OP_RELEASE, r->grant.name, r->grant.name_len, r->grant.owner,
                                   r->grant.owner_len, r->grant.token, 0, 0);
        }
        if (w != NULL)
            waiting_drop(s, w);
    }
    /* An acquire that was willing to wait got the lock at once: its client
     * may still leave before the answer reaches it (see server_abandon). */
    if (op == LOCKD__OP__OP_ACQUIRE && to->wait_ms > 0 && r->status == LOCKD__STATUS__ST_OK && r->has_lock &&
        r->lock.acquired_at_ms == r->lock.renewed_at_ms) /* a new hold, not a renewal */
        server_remember_grant(s, to, &r->lock);
    server_reply(s, to, r->status, r, NULL, consensus_applied_index(s->cons));
}

static void server_applied(void *data, int status, const struct fsm_result *results, size_t n)
{
    struct inflight *f = data;
    rp_server *s = f->server;
    if (status == 0) {
        uint64_t ns = server_now_ns() - f->proposed_ns;
        s->stats.commit_count++;
        s->stats.commit_sum_ns += ns;
        s->stats.commit_buckets[metrics_bucket_index(ns)]++;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (status == 0 && i < n)
            server_result(s, &f->to[i], &results[i], f->ops[i]);
        else if (status == -LOCKD_ESHUTDOWN)
            server_reply(s, &f->to[i], LOCKD__STATUS__ST_UNAVAILABLE, NULL, "Shutting down; outcome unknown", 0);
        else
            server_reply(s, &f->to[i], LOCKD__STATUS__ST_TIMEOUT, NULL, "Leadership lost; outcome unknown", 0);
    }
    inflight_unlink(s, f);
    free(f);
}

static void server_fail_batch(rp_server *s, size_t from, size_t to, int status, const char *error)
{
    for (size_t i = from; i < to; i++)
        server_reply(s, &s->batch[i].to, status, NULL, error, 0);
}

static struct batch_item *server_batch_add(rp_server *s)
{
    if (s->batch_n == s->batch_cap) {
        size_t cap = s->batch_cap ? s->batch_cap * 2 : 256;
        struct batch_item *b = realloc(s->batch, cap * sizeof(*b));
        if (b == NULL)
            return NULL;
        s->batch = b;
        s->batch_cap = cap;
    }
    return &s->batch[s->batch_n++];
}

static void server_batch_reset(rp_server *s)
{
    for (size_t i = 0; i < s->batch_n; i++)
        if (s->batch[i].req != NULL)
            lockd__request__free_unpacked(s->batch[i].req, NULL);
    s->batch_n = 0;
    /* Give back memory after a burst. */
    if (s->batch_cap > 65536) {
        free(s->batch);
        s->batch = NULL;
        s->batch_cap = 0;
    }
}

/* Proposes batch[from, to) as one entry. */
static void server_propose(rp_server *s, size_t from, size_t to, uint64_t now_wall)
{
    size_t n = to - from;
    Lockd__Command *cmds = calloc(n, sizeof(*cmds));
    Lockd__Command **ptrs = calloc(n, sizeof(*ptrs));
    struct inflight *f = malloc(sizeof(*f) + n * (sizeof(f->to[0]) + sizeof(Lockd__Op)));
    if (cmds == NULL || ptrs == NULL || f == NULL) {
        server_fail_batch(s, from, to, LOCKD__STATUS__ST_UNAVAILABLE, "Out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct batch_item *it = &s->batch[from + i];
        const Lockd__Request *r = it->req;
        lockd__command__init(&cmds[i]);
        if (r != NULL) {
            cmds[i].op = r->op;
            cmds[i].name = r->name;
            cmds[i].owner = r->owner;
            cmds[i].token = r->token;
            cmds[i].ttl_ms = r->ttl_ms;
            cmds[i].force = r->force;
            cmds[i].wait = r->op == LOCKD__OP__OP_ACQUIRE && r->wait_ms > 0;
        } else {
            cmds[i].op = it->op;
            cmds[i].name = it->name;
            cmds[i].owner = it->owner;
            cmds[i].revision = it->revision;
            cmds[i].waiter = it->waiter;
            cmds[i].token = it->token;
        }
        ptrs[i] = &cmds[i];
        f->to[i] = it->to;
        f->ops = (Lockd__Op *)&f->to[n];
        f->ops[i] = cmds[i].op;
    }
    Lockd__LogEntry e = LOCKD__LOG_ENTRY__INIT;
    e.time_ms = now_wall;
    e.n_commands = n;
    e.commands = ptrs;
    size_t len = fsm_entry_size(&e);
    void *buf = consensus_alloc(len);
    if (buf == NULL) {
        server_fail_batch(s, from, to, LOCKD__STATUS__ST_UNAVAILABLE, "Out of memory");
        goto out;
    }
    fsm_entry_encode(&e, buf, len);
    f->server = s;
    f->n = n;
    f->proposed_ns = server_now_ns();
    f->deadline_ms = clock_monotonic_ms() + s->cfg->api_timeout_ms;
    int rc = consensus_propose(s->cons, buf, len, server_applied, f);
    if (rc != 0) {
        consensus_free(buf);
        if (rc == -LOCKD_ENOTLEADER)
            server_fail_batch(s, from, to, LOCKD__STATUS__ST_NOT_LEADER, "Not the leader");
        else
            server_fail_batch(s, from, to, LOCKD__STATUS__ST_UNAVAILABLE, lockd_strerror(rc));
        goto out;
    }
    f->prev = s->tail;
    f->next = NULL;
    if (s->tail)
        s->tail->next = f;
    else
        s->head = f;
    s->tail = f;
    f = NULL;
    s->stats.entries++;
    s->stats.commands += n;
    s->stats.entry_bytes += len;
    if (n > s->stats.max_batch)
        s->stats.max_batch = (unsigned)n;
out:
    free(f);
    free(cmds);
    free(ptrs);
}

/* Runs right before the loop blocks: everything that arrived this turn
 * becomes one entry (group commit), and every connection's answers go out
 * in one write. */
static void server_flush(uv_prepare_t *h)
{
    rp_server *s = h->data;
    if (s->batch_n > 0) {
        uint64_t now_wall = clock_wall_ms();
        for (size_t from = 0; from < s->batch_n; from += SERVER_MAX_BATCH) {
            size_t to = from + SERVER_MAX_BATCH < s->batch_n ? from + SERVER_MAX_BATCH : s->batch_n;
            server_propose(s, from, to, now_wall);
        }
        server_batch_reset(s);
    }
    while (s->dirty != NULL) {
        struct conn *cn = s->dirty;
        s->dirty = cn->next_dirty;
        cn->dirty = false;
        conn_flush(cn);
    }
}

static void server_check_timeouts(uv_timer_t *t)
{
    rp_server *s = t->data;
    uint64_t now = clock_monotonic_ms();
    for (struct inflight *f = s->head; f != NULL && f->deadline_ms <= now; f = f->next) {
        for (size_t i = 0; i < f->n; i++) {
            if (!f->to[i].answered)
                s->stats.timeouts++;
            server_reply(s, &f->to[i], LOCKD__STATUS__ST_TIMEOUT, NULL, "Consensus timeout; outcome unknown", 0);
        }
    }
    /* Waits that ran out, and waiters whose worker went away, leave their
     * queue through the log (so a release never hands them the lock). */
    for (size_t i = 0; i < s->n_waiting;) {
        struct waiting *w = &s->waiting[i];
        if (w->waiter_id == 0) {
            if (w->deadline_ms <= now) {
                waiting_drop(s, w);
                continue;
            }
        } else if (w->deadline_ms <= now || server_conn(s, w->to.slot, w->to.gen) == NULL) {
            waiting_cancel(s, w);
        }
        i++;
    }
}

/* ---- input ------------------------------------------------------------- */

/* A request relayed to the leader on behalf of one of our connections. */
struct fwd_ctx {
    rp_server *s;
    struct reply_to to;
    int64_t fid;
    struct fwd_ctx *prev, *next; /* on s->fwd_waits when it may wait */
    bool listed;
};

static void fwd_ctx_unlist(rp_server *s, struct fwd_ctx *x)
{
    if (!x->listed)
        return;
    if (x->prev)
        x->prev->next = x->next;
    else
        s->fwd_waits = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->listed = false;
}

static void server_forwarded(void *arg, const Lockd__Response *resp, const char *why)
{
    struct fwd_ctx *x = arg;
    rp_server *s = x->s;
    fwd_ctx_unlist(s, x);
    struct conn *cn = server_conn(s, x->to.slot, x->to.gen);
    if (resp != NULL) {
        if (cn != NULL) {
            Lockd__Response *r = (Lockd__Response *)resp;
            r->id = x->to.req_id; /* the caller's id; the leader's answer otherwise verbatim */
            conn_append_frame(cn, &r->base);
        }
    } else if (strstr(why, "outcome unknown") != NULL) {
        server_reply(s, &x->to, LOCKD__STATUS__ST_TIMEOUT, NULL, why, 0);
    } else {
        server_reply(s, &x->to, LOCKD__STATUS__ST_NOT_LEADER, NULL, why, 0);
    }
    free(x);
}

/* Followers relay to the leader's raftproc, so any node serves writes. */
static void server_forward(rp_server *s, struct conn *cn, struct reply_to *to, Lockd__Request *r)
{
    uint64_t leader = consensus_leader(s->cons, NULL);
    struct fwd_ctx *x = NULL;
    int64_t fid = -LOCKD_ENOENT;
    if (s->fwd == NULL && leader != 0 && leader != s->cfg->node_id && forwarder_create(s->loop, s->cfg, &s->fwd) != 0)
        s->fwd = NULL; /* a node that joined at run time starts forwarding now */
    if (s->fwd != NULL && !cn->peer && leader != 0 && leader != s->cfg->node_id &&
        (x = calloc(1, sizeof(*x))) != NULL) {
        x->s = s;
        x->to = *to;
        fid = forwarder_send(s->fwd, leader, consensus_leader_raft_address(s->cons), r, server_forwarded, x);
    }
    if (fid < 0) {
        free(x);
        server_reply(s, to, LOCKD__STATUS__ST_NOT_LEADER, NULL, leader ? "Leader unreachable" : "No leader", 0);
        return;
    }
    x->fid = fid;
    if (r->op == LOCKD__OP__OP_ACQUIRE && r->wait_ms > 0) {
        x->next = s->fwd_waits;
        if (x->next)
            x->next->prev = x;
        s->fwd_waits = x;
        x->listed = true;
    }
}

/* ---- membership --------------------------------------------------------- */

struct change_ctx {
    rp_server *s;
    struct reply_to to;
};

static void server_change_done(void *data, int status, const char *err)
{
    struct change_ctx *x = data;
    server_reply(x->s, &x->to, status == 0 ? LOCKD__STATUS__ST_OK : LOCKD__STATUS__ST_BAD_REQUEST, NULL, err, 0);
    free(x);
}

static void server_members(rp_server *s, struct reply_to *to)
{
    struct consensus_member m[LOCKD_MAX_NODES * 2];
    size_t n = consensus_members(s->cons, m, sizeof(m) / sizeof(m[0]));
    struct conn *cn = server_conn(s, to->slot, to->gen);
    if (cn == NULL)
        return;
    Lockd__Member pm[sizeof(m) / sizeof(m[0])], *pp[sizeof(m) / sizeof(m[0])];
    uint64_t leader = consensus_leader(s->cons, NULL);
    for (size_t i = 0; i < n; i++) {
        lockd__member__init(&pm[i]);
        pm[i].id = m[i].id;
        pm[i].raft_address = m[i].raft_address;
        pm[i].role = (char *)m[i].role;
        pm[i].leader = m[i].id == leader;
        pp[i] = &pm[i];
    }
    Lockd__Response r = LOCKD__RESPONSE__INIT;
    r.id = to->req_id;
    r.status = LOCKD__STATUS__ST_OK;
    r.leader_id = leader;
    r.n_members = n;
    r.members = pp;
    to->answered = true;
    conn_append_frame(cn, &r.base);
}

/* Membership operations: OP_MEMBERS anywhere, changes on the leader
 * (forwarded there by followers). Returns true when it handled r. */
static bool server_membership(rp_server *s, struct conn *cn, struct reply_to *to, Lockd__Request *r)
{
    if (r->op == LOCKD__OP__OP_MEMBERS) {
        server_members(s, to);
        return true;
    }
    if (r->op != LOCKD__OP__OP_MEMBER_ADD && r->op != LOCKD__OP__OP_MEMBER_REMOVE && r->op != LOCKD__OP__OP_TRANSFER &&
        r->op != LOCKD__OP__OP_SNAPSHOT)
        return false;
    if (consensus_role(s->cons) != CONSENSUS_LEADER) {
        server_forward(s, cn, to, r);
        return true;
    }
    struct change_ctx *x = malloc(sizeof(*x));
    if (x == NULL) {
        server_reply(s, to, LOCKD__STATUS__ST_UNAVAILABLE, NULL, "Out of memory", 0);
        return true;
    }
    x->s = s;
    x->to = *to;
    int rc;
    if (r->op == LOCKD__OP__OP_MEMBER_ADD)
        rc = r->node_id == 0 || r->address[0] == '\0'
                 ? -LOCKD_EINVAL
                 : consensus_member_add(s->cons, r->node_id, r->address, server_change_done, x);
    else if (r->op == LOCKD__OP__OP_MEMBER_REMOVE)
        rc = consensus_member_remove(s->cons, r->node_id, server_change_done, x);
    else if (r->op == LOCKD__OP__OP_TRANSFER)
        rc = consensus_transfer(s->cons, r->node_id, server_change_done, x);
    else
        rc = consensus_snapshot_now(s->cons, server_change_done, x);
    if (rc != 0) {
        free(x);
        server_reply(s, to, rc == -LOCKD_ENOTLEADER ? LOCKD__STATUS__ST_NOT_LEADER : LOCKD__STATUS__ST_BAD_REQUEST,
                     NULL, rc == -LOCKD_ENOTLEADER ? "Not the leader" : "Membership change refused (see the log)", 0);
    } else {
        log_info("membership: op %d node %llu %s", r->op, (unsigned long long)r->node_id, r->address);
    }
    return true;
}

static void server_enqueue(rp_server *s, struct conn *cn, Lockd__Request *r)
{
    struct reply_to to = {.slot = cn->slot, .gen = cn->gen, .req_id = r->id};
    char err[96];
    if (r->op == LOCKD__OP__OP_CANCEL) {
        server_abandon(s, cn, r->cancel_id);
        lockd__request__free_unpacked(r, NULL);
        return;
    }
    if (server_membership(s, cn, &to, r)) {
        lockd__request__free_unpacked(r, NULL);
        return;
    }
    if (r->op == LOCKD__OP__OP_ACQUIRE && r->wait_ms > 0)
        to.wait_ms = r->wait_ms < s->cfg->wait_max_ms ? r->wait_ms : s->cfg->wait_max_ms;
    size_t nlen = strlen(r->name), olen = strlen(r->owner);
    if (names_check_lock(r->name, nlen, err, sizeof(err)) != 0 ||
        (olen > 0 && names_check_owner(r->owner, olen, err, sizeof(err)) != 0) ||
        (r->op != LOCKD__OP__OP_ACQUIRE && r->op != LOCKD__OP__OP_RELEASE && r->op != LOCKD__OP__OP_READ)) {
        server_reply(s, &to, LOCKD__STATUS__ST_BAD_REQUEST, NULL, "Invalid request", 0);
        lockd__request__free_unpacked(r, NULL);
        return;
    }
    if (s->stopped) {
        server_reply(s, &to, LOCKD__STATUS__ST_UNAVAILABLE, NULL, "Shutting down", 0);
        lockd__request__free_unpacked(r, NULL);
        return;
    }
    if (consensus_role(s->cons) != CONSENSUS_LEADER) {
        server_forward(s, cn, &to, r);
        lockd__request__free_unpacked(r, NULL);
        return;
    }
    struct batch_item *it = server_batch_add(s);
    if (it == NULL) {
        server_reply(s, &to, LOCKD__STATUS__ST_UNAVAILABLE, NULL, "Out of memory", 0);
        lockd__request__free_unpacked(r, NULL);
        return;
    }
    it->req = r;
    it->to = to;
}

static int server_submit_internal(rp_server *s, Lockd__Op op, const char *name, size_t len, const char *owner,
                                  size_t olen, uint64_t token, uint64_t revision, uint64_t waiter)
{
    if (s->stopped || len == 0 || len > LOCKD_NAME_MAX || olen > LOCKD_OWNER_MAX)
        return -LOCKD_EINVAL;
    struct batch_item *it = server_batch_add(s);
    if (it == NULL)
        return -LOCKD_ENOMEM;
    it->req = NULL;
    it->op = op;
    it->revision = revision;
    it->waiter = waiter;
    it->token = token;
    memcpy(it->name, name, len);
    it->name[len] = '\0';
    memcpy(it->owner, owner, olen);
    it->owner[olen] = '\0';
    it->to.slot = REPLY_NONE;
    it->to.answered = false;
    return 0;
}

int rp_server_submit(rp_server *s, Lockd__Op op, const char *name, size_t len, uint64_t revision)
{
    return server_submit_internal(s, op, name, len, "", 0, 0, revision, 0);
}

int rp_server_reset_waiters(rp_server *s)
{
    return server_submit_internal(s, LOCKD__OP__OP_RESET_WAITERS, "-", 1, "", 0, 0, 0, 0);
}

int rp_server_restart_leases(rp_server *s)
{
    return server_submit_internal(s, LOCKD__OP__OP_RESTART_LEASES, "-", 1, "", 0, 0, 0, 0);
}

/* The answer to a follower's catch-up probe: a read the leader put into
 * its log after this node's contact resumed; its index is the target. */
static void server_probe_answered(void *arg, const Lockd__Response *resp, const char *why)
{
    rp_server *s = arg;
    consensus_caught_up_to(s->cons, resp != NULL && resp->index != 0 ? resp->index : 0);
}

void rp_server_catch_up(rp_server *s)
{
    uint64_t leader = consensus_leader(s->cons, NULL);
    if (leader == 0 || leader == s->cfg->node_id ||
        (s->fwd == NULL && forwarder_create(s->loop, s->cfg, &s->fwd) != 0)) {
        consensus_caught_up_to(s->cons, 0);
        return;
    }
    Lockd__Request r = LOCKD__REQUEST__INIT;
    r.op = LOCKD__OP__OP_READ;
    r.name = "lockd.catch-up";
    if (forwarder_send(s->fwd, leader, consensus_leader_raft_address(s->cons), &r, server_probe_answered, s) < 0)
        consensus_caught_up_to(s->cons, 0);
}

void rp_server_leader_changed(rp_server *s, uint64_t leader_id)
{
    if (s->fwd != NULL)
        forwarder_leader_changed(s->fwd, leader_id);
}

void rp_server_leadership_lost(rp_server *s)
{
    for (size_t i = 0; i < s->n_waiting; i++)
        if (s->waiting[i].waiter_id != 0)
            server_reply(s, &s->waiting[i].to, LOCKD__STATUS__ST_NOT_LEADER, NULL, "Leadership lost while waiting", 0);
    s->n_waiting = 0;
}

/* A worker's client left while its acquire waited: leave the queue. */
static void server_abandon(rp_server *s, struct conn *cn, uint64_t req_id)
{
    for (size_t i = 0; i < s->n_waiting; i++) {
        struct waiting *w = &s->waiting[i];
        if (w->to.slot == cn->slot && w->to.gen == cn->gen && w->to.req_id == req_id) {
            w->to.answered = true;
            w->abandoned = true;
            waiting_cancel(s, w);
            return;
        }
    }
    for (struct fwd_ctx *x = s->fwd_waits; x != NULL; x = x->next) {
        if (x->to.slot == cn->slot && x->to.gen == cn->gen && x->to.req_id == req_id) {
            forwarder_cancel(s->fwd, x->fid);
            return;
        }
    }
    for (unsigned i = 0; i < 64; i++) {
        struct granted *g = &s->granted[i];
        if (g->name_len != 0 && g->to.slot == cn->slot && g->to.gen == cn->gen && g->to.req_id == req_id) {
            /* Handed over just before its client left: give it back, token-checked. */
            server_submit_internal(s, LOCKD__OP__OP_RELEASE, g->name, g->name_len, g->owner, g->owner_len, g->token, 0,
                                   0);
            g->name_len = 0;
            return;
        }
    }
    /* Not queued yet (its entry is still on the way): leave a tombstone the
     * QUEUED result will find; it expires with the wait bound. */
    struct waiting *w = waiting_add(s);
    if (w == NULL)
        return;
    w->to.slot = cn->slot;
    w->to.gen = cn->gen;
    w->to.req_id = req_id;
    w->to.answered = true;
    w->deadline_ms = clock_monotonic_ms() + s->cfg->api_timeout_ms;
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *cn = h->data;
    if (cn->in_cap - cn->in_len < 16384) {
        size_t cap = cn->in_cap ? cn->in_cap * 2 : 65536;
        uint8_t *p = realloc(cn->in, cap);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        cn->in = p;
        cn->in_cap = cap;
    }
    *buf = uv_buf_init((char *)cn->in + cn->in_len, (unsigned)(cn->in_cap - cn->in_len));
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *cn = st->data;
    if (nread < 0) {
        if (nread != UV_EOF)
            log_warn("read from worker connection %u: %s", cn->slot, uv_strerror((int)nread));
        conn_close(cn);
        return;
    }
    cn->in_len += (size_t)nread;
    size_t off = 0;
    for (;;) {
        const uint8_t *payload;
        size_t plen;
        int n = frame_peek(cn->in + off, cn->in_len - off, &payload, &plen);
        if (n == 0)
            break;
        if (n < 0) {
            log_warn("worker connection %u sent an oversize frame: closing it", cn->slot);
            conn_close(cn);
            return;
        }
        Lockd__Request *r = lockd__request__unpack(NULL, plen, payload);
        if (r == NULL) {
            log_warn("worker connection %u sent an undecodable request: closing it", cn->slot);
            conn_close(cn);
            return;
        }
        server_enqueue(cn->server, cn, r);
        if (cn->closing)
            return;
        off += (size_t)n;
    }
    if (off > 0) {
        memmove(cn->in, cn->in + off, cn->in_len - off);
        cn->in_len -= off;
    }
    /* Give back memory after a burst. */
    if (cn->in_len == 0 && cn->in_cap > (1u << 20)) {
        free(cn->in);
        cn->in = NULL;
        cn->in_cap = 0;
    }
}

static void conn_closed(uv_handle_t *h)
{
    struct conn *cn = h->data;
    rp_server *s = cn->server;
    if (s->conns[cn->slot] == cn)
        s->conns[cn->slot] = NULL;
    free(cn->in);
    free(cn->out);
    free(cn->wbuf);
    free(cn);
}

static void conn_close(struct conn *cn)
{
    if (cn->closing)
        return;
    cn->closing = true;
    /* Unlink from the dirty list lazily: conn_flush skips closing conns, and
     * the list entry must stay valid until the flush walks past it. */
    if (cn->dirty) {
        rp_server *s = cn->server;
        struct conn **pp = &s->dirty;
        while (*pp != NULL && *pp != cn)
            pp = &(*pp)->next_dirty;
        if (*pp == cn)
            *pp = cn->next_dirty;
        cn->dirty = false;
    }
    uv_close((uv_handle_t *)&cn->pipe, conn_closed);
}

static void server_accept(uv_stream_t *ls, int status)
{
    rp_server *s = ls->data;
    bool peer = ls == (uv_stream_t *)&s->peer_listener;
    if (status != 0) {
        log_warn("accept on %s socket: %s", peer ? "peer" : "raft", uv_strerror(status));
        return;
    }
    struct conn *cn = calloc(1, sizeof(*cn));
    if (cn == NULL)
        return;
    if (peer)
        uv_tcp_init(s->loop, &cn->tcp);
    else
        uv_pipe_init(s->loop, &cn->pipe, 0);
    cn->pipe.data = cn;
    cn->server = s;
    cn->peer = peer;
    if (uv_accept(ls, (uv_stream_t *)&cn->pipe) != 0) {
        uv_close((uv_handle_t *)&cn->pipe, (uv_close_cb)free);
        return;
    }
    uint32_t slot = 0;
    while (slot < SERVER_MAX_CONNS && s->conns[slot] != NULL)
        slot++;
    if (slot == SERVER_MAX_CONNS) {
        log_warn("too many connections to raftproc: refusing one");
        uv_close((uv_handle_t *)&cn->pipe, (uv_close_cb)free);
        return;
    }
    if (peer)
        uv_tcp_nodelay(&cn->tcp, 1);
    cn->slot = slot;
    cn->gen = ++s->gens[slot];
    s->conns[slot] = cn;
    uv_read_start((uv_stream_t *)&cn->pipe, conn_alloc, conn_read);
    log_debug("%s connection %u accepted", peer ? "peer" : "worker", slot);
}

/* Clusters: listen for followers' forwarded requests on the peer port. */
static int server_listen_peer(rp_server *s)
{
    const struct cluster_node *self = s->cfg->self;
    struct sockaddr_in sa;
    if (cluster_peer_port(self) > 65535 || uv_ip4_addr(self->raft_host, (int)cluster_peer_port(self), &sa) != 0) {
        log_error("no valid peer port for %s:%u + %d", self->raft_host, self->raft_port, LOCKD_PEER_PORT_OFFSET);
        return -LOCKD_EINVAL;
    }
    uv_tcp_init(s->loop, &s->peer_listener);
    s->peer_listener.data = s;
    s->has_peer_listener = true;
    int rc = uv_tcp_bind(&s->peer_listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->peer_listener, 128, server_accept);
    if (rc != 0) {
        log_error("peer port %s:%u: %s", self->raft_host, cluster_peer_port(self), uv_strerror(rc));
        return -LOCKD_EIO;
    }
    return forwarder_create(s->loop, s->cfg, &s->fwd);
}

/* ---- life cycle -------------------------------------------------------- */

int rp_server_start(uv_loop_t *loop, const struct lockd_config *cfg, int listen_fd, consensus *c, rp_server **out)
{
    rp_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -LOCKD_ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    s->cons = c;
    uv_pipe_init(loop, &s->listener, 0);
    s->listener.data = s;
    int rc = uv_pipe_open(&s->listener, listen_fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, server_accept);
    if (rc != 0) {
        log_error("raft socket listen: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, NULL);
        return -LOCKD_EIO;
    }
    if (cfg->n_nodes > 1 && server_listen_peer(s) != 0)
        return -LOCKD_EIO;
    uv_prepare_init(loop, &s->flush);
    s->flush.data = s;
    uv_prepare_start(&s->flush, server_flush);
    uv_timer_init(loop, &s->timeouts);
    s->timeouts.data = s;
    uv_timer_start(&s->timeouts, server_check_timeouts, SERVER_TIMEOUT_TICK_MS, SERVER_TIMEOUT_TICK_MS);
    *out = s;
    return 0;
}

void rp_server_stop(rp_server *s)
{
    if (s->stopped)
        return;
    s->stopped = true;
    for (size_t i = 0; i < s->batch_n; i++)
        server_reply(s, &s->batch[i].to, LOCKD__STATUS__ST_UNAVAILABLE, NULL, "Shutting down", 0);
    server_batch_reset(s);
}

void rp_server_close(rp_server *s)
{
    rp_server_stop(s);
    server_flush(&s->flush);
    uv_prepare_stop(&s->flush);
    uv_close((uv_handle_t *)&s->flush, NULL);
    uv_timer_stop(&s->timeouts);
    uv_close((uv_handle_t *)&s->timeouts, NULL);
    /* This closes our inherited copy of the listening fd; the master keeps
     * its own, so a restarted raftproc listens on the same socket. */
    uv_close((uv_handle_t *)&s->listener, NULL);
    if (s->has_peer_listener)
        uv_close((uv_handle_t *)&s->peer_listener, NULL);
    forwarder_close(s->fwd);
    for (uint32_t i = 0; i < SERVER_MAX_CONNS; i++)
        if (s->conns[i] != NULL)
            conn_close(s->conns[i]);
}

void rp_server_stats(const rp_server *s, struct rp_server_stats *out)
{
    *out = s->stats;
}
size_t rp_server_waiting(const rp_server *s)
{
    return s->n_waiting;
}
