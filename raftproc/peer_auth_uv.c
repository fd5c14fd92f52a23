/* raftproc/peer_auth_uv.c: the handshake on a libuv stream (see
 * peer_auth_uv.h). Owns one small context per handshake, freed after its
 * timer has closed and its last write has completed; never owns or closes
 * the stream. */
#include "raftproc/peer_auth_uv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

struct peer_auth_uv {
    uv_stream_t *stream;
    void *stream_data; /* restored when we hand the stream back */
    uv_timer_t timer;
    uv_write_t wreq;
    struct peer_handshake h;
    uint8_t rbuf[PEER_CHALLENGE_LEN]; /* one read, handed to the state machine */
    int failed_rc;                    /* an error waiting for its refusal to be sent */
    peer_auth_uv_cb cb;
    void *arg;
    bool writing, finished, timer_closed;
};

static void pa_free_if_idle(peer_auth_uv *a)
{
    if (a->finished && a->timer_closed && !a->writing) {
        peer_handshake_wipe(&a->h);
        free(a);
    }
}

static void pa_timer_closed(uv_handle_t *t)
{
    peer_auth_uv *a = t->data;
    a->timer_closed = true;
    pa_free_if_idle(a);
}

static void pa_finish(peer_auth_uv *a, int status)
{
    if (a->finished)
        return;
    a->finished = true;
    uv_read_stop(a->stream);
    uv_timer_stop(&a->timer);
    a->stream->data = a->stream_data;
    a->cb(a->arg, a->stream, status, &a->h);
    uv_close((uv_handle_t *)&a->timer, pa_timer_closed);
}

static void pa_step(peer_auth_uv *a, int rc);

static void pa_written(uv_write_t *w, int status)
{
    peer_auth_uv *a = w->data;
    a->writing = false;
    if (a->finished) {
        pa_free_if_idle(a);
        return;
    }
    if (status != 0) {
        if (a->failed_rc == 0)
            snprintf(a->h.error, sizeof a->h.error, "write: %s", uv_strerror(status));
        pa_finish(a, a->failed_rc != 0 ? a->failed_rc : -LOCKD_EIO);
        return;
    }
    peer_handshake_sent(&a->h);
    pa_step(a, 0);
}

static void pa_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    peer_auth_uv *a = ((uv_stream_t *)h)->data;
    (void)suggested;
    /* Exactly what the handshake still needs: libuv never reads past it. */
    buf->base = (char *)a->rbuf;
    buf->len = peer_handshake_want(&a->h);
}

static void pa_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    peer_auth_uv *a = s->data;
    (void)buf;
    if (n == 0)
        return;
    if (n < 0) {
        snprintf(a->h.error, sizeof a->h.error, "connection %s during the handshake",
                 n == UV_EOF ? "closed by the peer" : uv_strerror((int)n));
        pa_finish(a, -LOCKD_EIO);
        return;
    }
    pa_step(a, peer_handshake_input(&a->h, a->rbuf, (size_t)n));
}

/* After any progress: send what is pending, else read what is wanted, else
 * report. */
static void pa_step(peer_auth_uv *a, int rc)
{
    if (a->finished)
        return;
    if (rc != 0 && a->failed_rc == 0)
        a->failed_rc = rc;
    rc = a->failed_rc;
    /* Never leave reading on with nothing wanted: libuv would hand us an
     * empty buffer (UV_ENOBUFS), and the bytes after the handshake are not
     * ours to take. */
    if (peer_handshake_want(&a->h) == 0 || rc != 0)
        uv_read_stop(a->stream);
    const uint8_t *p;
    size_t len;
    peer_handshake_output(&a->h, &p, &len);
    if (len > 0 && !a->writing) {
        /* A refusal is sent before the failure is reported, so the peer
         * can log why. */
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        a->wreq.data = a;
        if (uv_write(&a->wreq, a->stream, &b, 1, pa_written) != 0) {
            if (rc == 0)
                snprintf(a->h.error, sizeof a->h.error, "write failed");
            pa_finish(a, rc != 0 ? rc : -LOCKD_EIO);
            return;
        }
        a->writing = true;
        return;
    }
    if (rc != 0 || peer_handshake_failed(&a->h)) {
        pa_finish(a, rc != 0 ? rc : -LOCKD_EINVAL);
        return;
    }
    if (peer_handshake_done(&a->h)) {
        pa_finish(a, 0);
        return;
    }
    if (peer_handshake_want(&a->h) > 0) {
        int r = uv_read_start(a->stream, pa_alloc, pa_read);
        if (r != 0 && r != UV_EALREADY) {
            snprintf(a->h.error, sizeof a->h.error, "read: %s", uv_strerror(r));
            pa_finish(a, -LOCKD_EIO);
        }
    }
}

static void pa_timeout(uv_timer_t *t)
{
    peer_auth_uv *a = t->data;
    snprintf(a->h.error, sizeof a->h.error, "handshake not finished in time");
    pa_finish(a, -LOCKD_EAGAIN);
}

int peer_auth_uv_start(uv_stream_t *stream, const struct peer_keyring *keys, enum peer_role role,
                       enum peer_purpose purpose, uint64_t self_id, uint64_t expect_id, uint64_t timeout_ms,
                       peer_auth_uv_cb cb, void *arg, peer_auth_uv **out)
{
    peer_auth_uv *a = calloc(1, sizeof *a);
    if (a == NULL)
        return -LOCKD_ENOMEM;
    int rc = peer_handshake_init(&a->h, keys, role, purpose, self_id, expect_id);
    if (rc != 0) {
        free(a);
        return rc;
    }
    if (uv_timer_init(stream->loop, &a->timer) != 0) {
        peer_handshake_wipe(&a->h);
        free(a);
        return -LOCKD_EIO;
    }
    a->timer.data = a;
    a->stream = stream;
    a->stream_data = stream->data;
    stream->data = a;
    a->cb = cb;
    a->arg = arg;
    uv_timer_start(&a->timer, pa_timeout, timeout_ms, 0);
    if (out)
        *out = a;
    pa_step(a, 0);
    return 0;
}

void peer_auth_uv_cancel(peer_auth_uv *a)
{
    snprintf(a->h.error, sizeof a->h.error, "cancelled");
    pa_finish(a, -LOCKD_ESHUTDOWN);
}
