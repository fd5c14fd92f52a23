/* raftproc/transport_auth.c: the authenticated Raft transport (see
 * transport_auth.h). Owns the listener, the connections until they are
 * handed to libraft (then libraft owns them and frees them with
 * raft_free), and the handshakes in flight. Logs refusals at most once a
 * second; never blocks beyond the getaddrinfo of the listen address that
 * libraft's own listen does too. */
#include "raftproc/transport_auth.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <uv.h>

#include "common/errors.h"
#include "common/log.h"
#include "raftproc/peer_auth_uv.h"

#define TA_PROTOCOL 1 /* libraft's UV__TCP_HANDSHAKE_PROTOCOL */
#define TA_ADDRESS_MAX 256
#define TA_ADDR_CAP 320

struct ta_incoming {
    struct ta_incoming *prev, *next;
    struct ta_state *ta;
    uv_tcp_t *tcp; /* raft_malloc'ed: libraft frees it once it owns it */
    uv_timer_t timer;
    peer_auth_uv *hs;
    uint8_t preamble[24];
    char address[TA_ADDRESS_MAX + 1];
    size_t address_len, nread;
    uint64_t id;
    bool reading_preamble, timer_closed, tcp_closed, handed, timed_out;
};

struct ta_outgoing {
    struct ta_outgoing *prev, *next;
    struct ta_state *ta;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    uv_stream_t *stream;
    peer_auth_uv *hs;
    uint64_t target;
    int status; /* reported when the stream has closed */
};

struct ta_state {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    const struct peer_keyring *keys;
    raft_id id;
    char address[TA_ADDR_CAP];
    int (*orig_init)(struct raft_uv_transport *, raft_id, const char *);
    int (*orig_connect)(struct raft_uv_transport *, struct raft_uv_connect *, raft_id, const char *,
                        raft_uv_connect_cb);
    void (*orig_close)(struct raft_uv_transport *, raft_uv_transport_close_cb);
    raft_uv_accept_cb accept_cb;
    uv_tcp_t listener;
    bool listening, closing, orig_closed;
    unsigned open_handles; /* ours that must close before libraft's close */
    raft_uv_transport_close_cb close_cb;
    struct ta_incoming *in;
    unsigned n_in;
    struct ta_outgoing *out;
    uint64_t last_log_ms;
    struct transport_auth_stats stats;
};

/* raftproc has one transport; tests have a client and a server in one
 * process. libraft uses both `data` and `impl` of the transport, so the
 * state is found by the transport's address. */
#define TA_MAX 4
static struct ta_state states[TA_MAX];

static struct ta_state *ta_of(const struct raft_uv_transport *t)
{
    for (int i = 0; i < TA_MAX; i++)
        if (states[i].t == t)
            return &states[i];
    return NULL;
}

static void ta_log_refusal(struct ta_state *ta, const char *what, const char *why)
{
    uint64_t now = uv_now(ta->loop);
    if (ta->last_log_ms != 0 && now - ta->last_log_ms < 1000)
        return;
    ta->last_log_ms = now;
    log_warn("raft port: %s: %s", what, why);
}

/* Frees the slot once libraft's close has been called and no connect of
 * libraft's is still to be reported through us. */
static void ta_release_if_idle(struct ta_state *ta)
{
    if (ta->orig_closed && ta->out == NULL)
        memset(ta, 0, sizeof *ta);
}

/* libraft's close runs once our own handles and handshakes are gone;
 * connects still in libraft's hands (no stream yet) are its to cancel, and
 * it reports them through ta_on_connect, which passes them on. */
static void ta_maybe_closed(struct ta_state *ta)
{
    if (!ta->closing || ta->orig_closed || ta->open_handles != 0 || ta->in != NULL)
        return;
    for (struct ta_outgoing *o = ta->out; o; o = o->next)
        if (o->stream != NULL)
            return;
    ta->orig_closed = true;
    ta->orig_close(ta->t, ta->close_cb);
    ta_release_if_idle(ta);
}

static void ta_raft_free_handle(uv_handle_t *h)
{
    raft_free(h);
}

static void ta_nodelay(uv_stream_t *s)
{
    if (s != NULL && s->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)s, 1);
}

/* ---- incoming ------------------------------------------------------------------ */

static void ta_in_unlink(struct ta_incoming *in)
{
    struct ta_state *ta = in->ta;
    if (in->prev)
        in->prev->next = in->next;
    else
        ta->in = in->next;
    if (in->next)
        in->next->prev = in->prev;
    ta->n_in--;
}

static void ta_in_free_if_done(struct ta_incoming *in)
{
    struct ta_state *ta = in->ta;
    if (!in->timer_closed || (!in->tcp_closed && !in->handed))
        return;
    ta_in_unlink(in);
    free(in);
    ta_maybe_closed(ta);
}

static void ta_in_timer_closed(uv_handle_t *h)
{
    struct ta_incoming *in = h->data;
    in->timer_closed = true;
    ta_in_free_if_done(in);
}

static void ta_in_tcp_closed(uv_handle_t *h)
{
    struct ta_incoming *in = h->data;
    raft_free(in->tcp);
    in->tcp = NULL;
    in->tcp_closed = true;
    ta_in_free_if_done(in);
}

/* Ends an incoming connection: handed to libraft (ok) or closed. */
static void ta_in_finish(struct ta_incoming *in, bool ok, const char *why)
{
    struct ta_state *ta = in->ta;
    uv_timer_stop(&in->timer);
    uv_close((uv_handle_t *)&in->timer, ta_in_timer_closed);
    if (in->reading_preamble)
        uv_read_stop((uv_stream_t *)in->tcp);
    in->reading_preamble = false;
    if (ok) {
        in->handed = true;
        ta->stats.accepted++;
        in->tcp->data = NULL;
        ta_nodelay((uv_stream_t *)in->tcp);
        /* libraft's listener does exactly this (uv_tcp_listen.c) */
        ta->accept_cb(ta->t, in->id, in->address, (uv_stream_t *)in->tcp);
        in->tcp = NULL;
        return;
    }
    ta->stats.refused++;
    ta_log_refusal(ta, "refused a connection", why);
    in->tcp->data = in;
    uv_close((uv_handle_t *)in->tcp, ta_in_tcp_closed);
}

static void ta_in_auth_done(void *arg, uv_stream_t *stream, int status, const struct peer_handshake *h)
{
    struct ta_incoming *in = arg;
    (void)stream;
    in->hs = NULL;
    if (status != 0) {
        ta_in_finish(in, false,
                     in->timed_out ? "no key handshake in time"
                     : h->error[0] ? h->error
                                   : lockd_strerror(status));
        return;
    }
    if (h->peer_id != in->id) {
        ta_in_finish(in, false, "the Raft preamble claims another node id than the key handshake");
        return;
    }
    ta_in_finish(in, true, NULL);
}

static void ta_in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ta_incoming *in = h->data;
    (void)suggested;
    if (in->nread < sizeof in->preamble) {
        buf->base = (char *)in->preamble + in->nread;
        buf->len = sizeof in->preamble - in->nread;
    } else {
        size_t done = in->nread - sizeof in->preamble;
        buf->base = in->address + done;
        buf->len = in->address_len - done;
    }
}

static uint64_t ta_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void ta_in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct ta_state *ta = ((struct ta_incoming *)s->data)->ta;
    struct ta_incoming *in = s->data;
    (void)buf;
    if (n == 0)
        return;
    if (n < 0) {
        ta_in_finish(in, false, "closed before its preamble");
        return;
    }
    in->nread += (size_t)n;
    if (in->nread == sizeof in->preamble) {
        /* libraft writes these three u64 little-endian (byteFlip64 on BE) */
        if (ta_le64(in->preamble) != TA_PROTOCOL) {
            ta_in_finish(in, false, "not a Raft preamble");
            return;
        }
        in->id = ta_le64(in->preamble + 8);
        uint64_t len = ta_le64(in->preamble + 16);
        if (len == 0 || len > TA_ADDRESS_MAX) {
            ta_in_finish(in, false, "Raft preamble with an address length out of bounds");
            return;
        }
        in->address_len = (size_t)len;
    }
    if (in->nread < sizeof in->preamble || in->nread < sizeof in->preamble + in->address_len)
        return;
    uv_read_stop(s);
    in->reading_preamble = false;
    in->address[in->address_len] = '\0';
    if (memchr(in->address, '\0', in->address_len) == NULL) {
        ta_in_finish(in, false, "Raft preamble address not terminated");
        return;
    }
    uint64_t left = TRANSPORT_AUTH_TIMEOUT_MS; /* the timer below still bounds the whole */
    int rc =
        peer_auth_uv_start(s, ta->keys, PEER_SERVER, PEER_PURPOSE_RAFT, ta->id, 0, left, ta_in_auth_done, in, &in->hs);
    if (rc != 0)
        ta_in_finish(in, false, lockd_strerror(rc));
}

static void ta_in_timeout(uv_timer_t *t)
{
    struct ta_incoming *in = t->data;
    if (in->hs) {
        peer_auth_uv *hs = in->hs;
        in->hs = NULL;
        in->timed_out = true;
        peer_auth_uv_cancel(hs); /* ta_in_auth_done finishes it */
        return;
    }
    ta_in_finish(in, false, "no preamble in time");
}

static void ta_drop_closed(uv_handle_t *h)
{
    struct ta_state *ta = h->data;
    free(h);
    ta->open_handles--;
    ta_maybe_closed(ta);
}

static void ta_on_connection(uv_stream_t *listener, int status)
{
    struct ta_state *ta = listener->data;
    if (status != 0 || ta->closing)
        return;
    if (ta->n_in >= TRANSPORT_AUTH_PENDING_MAX) {
        uv_tcp_t *drop = malloc(sizeof *drop);
        if (drop == NULL || uv_tcp_init(ta->loop, drop) != 0) {
            free(drop);
            return;
        }
        ta->open_handles++;
        drop->data = ta;
        uv_accept((uv_stream_t *)&ta->listener, (uv_stream_t *)drop);
        uv_close((uv_handle_t *)drop, ta_drop_closed);
        ta->stats.dropped_pending++;
        ta_log_refusal(ta, "refused a connection", "too many handshakes pending");
        return;
    }
    struct ta_incoming *in = calloc(1, sizeof *in);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (in == NULL || tcp == NULL) {
        free(in);
        raft_free(tcp);
        return;
    }
    in->tcp = tcp;
    in->ta = ta;
    uv_tcp_init(ta->loop, tcp);
    tcp->data = in;
    in->next = ta->in;
    if (ta->in)
        ta->in->prev = in;
    ta->in = in;
    ta->n_in++;
    uv_timer_init(ta->loop, &in->timer);
    in->timer.data = in;
    if (uv_accept((uv_stream_t *)&ta->listener, (uv_stream_t *)tcp) != 0) {
        ta_in_finish(in, false, "accept failed");
        return;
    }
    uv_timer_start(&in->timer, ta_in_timeout, TRANSPORT_AUTH_TIMEOUT_MS, 0);
    in->reading_preamble = true;
    uv_read_start((uv_stream_t *)tcp, ta_in_alloc, ta_in_read);
}

static int ta_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct ta_state *ta = ta_of(t);
    if (strlen(address) >= sizeof ta->address)
        return RAFT_INVALID;
    ta->id = id;
    snprintf(ta->address, sizeof ta->address, "%s", address);
    return ta->orig_init(t, id, address);
}

static int ta_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct ta_state *ta = ta_of(t);
    (void)t;
    char host[TA_ADDR_CAP];
    const char *colon = strrchr(ta->address, ':');
    if (colon == NULL || (size_t)(colon - ta->address) >= sizeof host)
        return RAFT_INVALID;
    memcpy(host, ta->address, (size_t)(colon - ta->address));
    host[colon - ta->address] = '\0';
    /* As libraft's listen: resolve once, at start (blocking, like it). */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
        return RAFT_IOERR;
    int rc = uv_tcp_init(ta->loop, &ta->listener);
    ta->listener.data = ta;
    if (rc == 0) {
        ta->open_handles++;
        ta->listening = true;
        rc = uv_tcp_bind(&ta->listener, ai->ai_addr, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&ta->listener, 128, ta_on_connection);
    }
    freeaddrinfo(ai);
    if (rc != 0) {
        log_error("raft port %s: %s", ta->address, uv_strerror(rc));
        return RAFT_IOERR;
    }
    ta->accept_cb = cb;
    return 0;
}

/* ---- outgoing ------------------------------------------------------------------ */

static struct ta_outgoing *ta_out_find(struct raft_uv_connect *req)
{
    for (int i = 0; i < TA_MAX; i++)
        for (struct ta_outgoing *o = states[i].out; o; o = o->next)
            if (o->req == req)
                return o;
    return NULL;
}

static void ta_out_unlink(struct ta_outgoing *o)
{
    struct ta_state *ta = o->ta;
    if (o->prev)
        o->prev->next = o->next;
    else
        ta->out = o->next;
    if (o->next)
        o->next->prev = o->prev;
}

/* The stream of a refused or cancelled connect has closed: report. */
static void ta_out_stream_closed(uv_handle_t *h)
{
    struct ta_outgoing *o = h->data;
    struct ta_state *ta = o->ta;
    raft_free(h);
    ta_out_unlink(o);
    raft_uv_connect_cb cb = o->cb;
    struct raft_uv_connect *req = o->req;
    int status = o->status;
    free(o);
    cb(req, NULL, status);
    ta_maybe_closed(ta);
}

static void ta_out_auth_done(void *arg, uv_stream_t *stream, int status, const struct peer_handshake *h)
{
    struct ta_outgoing *o = arg;
    struct ta_state *ta = o->ta;
    o->hs = NULL;
    if (status == 0 && !ta->closing) {
        ta_out_unlink(o);
        ta->stats.connected++;
        raft_uv_connect_cb cb = o->cb;
        struct raft_uv_connect *req = o->req;
        free(o);
        stream->data = NULL;
        cb(req, stream, 0);
        ta_maybe_closed(ta);
        return;
    }
    if (status != -LOCKD_ESHUTDOWN) {
        ta->stats.connect_refused++;
        ta_log_refusal(ta, "could not authenticate to a peer", h->error[0] ? h->error : lockd_strerror(status));
    }
    o->status = ta->closing ? RAFT_CANCELED : RAFT_NOCONNECTION;
    stream->data = o;
    uv_close((uv_handle_t *)stream, ta_out_stream_closed);
}

static void ta_on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    struct ta_outgoing *o = ta_out_find(req);
    if (o == NULL) {
        log_error("raft transport: a connect callback for a request we did not start");
        return;
    }
    struct ta_state *ta = o->ta;
    if (status != 0 || ta->closing) {
        ta_out_unlink(o);
        raft_uv_connect_cb cb = o->cb;
        free(o);
        if (status == 0) { /* connected while we close: give it back closed */
            uv_close((uv_handle_t *)stream, ta_raft_free_handle);
            cb(req, NULL, RAFT_CANCELED);
        } else {
            cb(req, stream, status);
        }
        ta_maybe_closed(ta);
        ta_release_if_idle(ta);
        return;
    }
    ta_nodelay(stream);
    o->stream = stream;
    int rc = peer_auth_uv_start(stream, ta->keys, PEER_CLIENT, PEER_PURPOSE_RAFT, ta->id, o->target,
                                TRANSPORT_AUTH_TIMEOUT_MS, ta_out_auth_done, o, &o->hs);
    if (rc != 0) {
        o->status = RAFT_NOCONNECTION;
        stream->data = o;
        uv_close((uv_handle_t *)stream, ta_out_stream_closed);
    }
}

static int ta_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id, const char *address,
                      raft_uv_connect_cb cb)
{
    struct ta_state *ta = ta_of(t);
    struct ta_outgoing *o = calloc(1, sizeof *o);
    if (o == NULL)
        return RAFT_NOMEM;
    o->ta = ta;
    o->req = req;
    o->cb = cb;
    o->target = id;
    o->next = ta->out;
    if (ta->out)
        ta->out->prev = o;
    ta->out = o;
    int rc = ta->orig_connect(t, req, id, address, ta_on_connect);
    if (rc != 0) {
        ta_out_unlink(o);
        free(o);
    }
    return rc;
}

/* ---- close --------------------------------------------------------------------- */

static void ta_listener_closed(uv_handle_t *h)
{
    struct ta_state *ta = h->data;
    (void)h;
    ta->open_handles--;
    ta_maybe_closed(ta);
}

static void ta_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct ta_state *ta = ta_of(t);
    (void)t;
    ta->closing = true;
    ta->close_cb = cb;
    if (ta->listening) {
        ta->listening = false;
        uv_close((uv_handle_t *)&ta->listener, ta_listener_closed);
    }
    /* Handshakes in flight end now; their callbacks close the streams. */
    for (struct ta_incoming *in = ta->in, *next; in; in = next) {
        next = in->next;
        if (in->handed || in->tcp == NULL || uv_is_closing((uv_handle_t *)in->tcp))
            continue;
        if (in->hs) {
            peer_auth_uv *hs = in->hs;
            in->hs = NULL;
            peer_auth_uv_cancel(hs);
        } else if (!uv_is_closing((uv_handle_t *)&in->timer)) {
            ta_in_finish(in, false, "transport closing");
        }
    }
    for (struct ta_outgoing *o = ta->out, *next; o; o = next) {
        next = o->next;
        if (o->hs) {
            peer_auth_uv *hs = o->hs;
            o->hs = NULL;
            peer_auth_uv_cancel(hs);
        }
    }
    ta_maybe_closed(ta);
}

int transport_auth_wrap(struct raft_uv_transport *t, uv_loop_t *loop, const struct peer_keyring *keys)
{
    if (keys == NULL || keys->n == 0 || loop == NULL)
        return -LOCKD_EINVAL;
    struct ta_state *ta = ta_of(t);
    for (int i = 0; ta == NULL && i < TA_MAX; i++)
        if (states[i].t == NULL)
            ta = &states[i];
    if (ta == NULL)
        return -LOCKD_EFULL;
    memset(ta, 0, sizeof *ta);
    ta->t = t;
    ta->loop = loop;
    ta->keys = keys;
    ta->orig_init = t->init;
    ta->orig_connect = t->connect;
    ta->orig_close = t->close;
    t->init = ta_init;
    t->listen = ta_listen;
    t->connect = ta_connect;
    t->close = ta_close;
    return 0;
}

void transport_auth_get_stats(const struct raft_uv_transport *t, struct transport_auth_stats *out)
{
    const struct ta_state *ta = ta_of(t);
    if (ta)
        *out = ta->stats;
    else
        memset(out, 0, sizeof *out);
}
