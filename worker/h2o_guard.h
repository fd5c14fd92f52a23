/* worker/h2o_guard.h: what lockd needs from h2o 2.2.5 that its API does not
 * offer, done by ELF symbol interposition of three functions libh2o calls
 * through its PLT (checked on Debian's libh2o-evloop.so.0.13: objdump shows
 * every call site going through @plt):
 *
 *  - h2o_send_inline: h2o's own error pages (h2o_send_error_* for bodies
 *    over the entity limit, broken chunked encoding, bad Content-Length,
 *    unknown Transfer-Encoding or Expect) leave as JSON
 *    {"error":"..."} with Content-Type application/json.
 *  - h2o_socket_write: the fixed plain-text "400 Bad Request" h2o writes
 *    straight to the socket for an unparsable request (bad request line,
 *    over 100 header fields, a head over H2O_MAX_REQLEN) is replaced by a
 *    JSON 400 saying which.
 *  - h2o_http2_stream_reset: every stream reset on an HTTP/2 connection is
 *    counted in a token bucket per connection; a connection over the bound
 *    (CVE-2023-44487, Rapid Reset) stops being read at once (the frames
 *    still buffered are dropped) and is shut down, so h2o closes it at its
 *    next read the way it closes any connection whose peer went away.
 *
 * The interposers pass everything through unchanged until h2o_guard_enable
 * runs (so merely linking this file changes nothing), and they are only
 * ever active in worker processes. One thread. */
#ifndef LOCKD_WORKER_H2O_GUARD_H
#define LOCKD_WORKER_H2O_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ratelimit.h"

struct h2o_guard_options {
    bool json_errors;          /* rewrite h2o's plain-text answers */
    struct rl_rate reset_rate; /* per HTTP/2 connection; {0,0}: no bound */
    size_t max_h2_conns;       /* connections tracked at once (table size) */
    uint64_t (*now_ms)(void);  /* CLOCK_MONOTONIC ms (tests pass their own) */
};

/* Defaults: JSON errors on, 200 resets at once then 100/s, 4096 connections. */
void h2o_guard_defaults(struct h2o_guard_options *o);

/* Turns the guards on in this process. Returns 0, -LOCKD_ENOMEM, or
 * -LOCKD_EIO if the interposition is not in effect (libh2o would not call
 * us: a library built with -Bsymbolic, or this file not linked into the
 * executable); the caller logs that and refuses to serve with HTTP/2 on. */
int h2o_guard_enable(const struct h2o_guard_options *o);
void h2o_guard_disable(void);

/* Is every interposed symbol resolved to this file's definition? */
bool h2o_guard_interposed(void);

struct h2o_guard_stats {
    uint64_t errors_rewritten;      /* h2o error pages turned into JSON */
    uint64_t bad_requests_replaced; /* fixed plain-text 400s replaced */
    uint64_t h2_resets;             /* stream resets counted */
    uint64_t h2_conns_closed;       /* connections closed for resetting too fast */
    uint64_t lossy_evictions;       /* rl_table_lossy_evictions */
};

void h2o_guard_get_stats(struct h2o_guard_stats *out);

/* The JSON message for one of h2o's plain-text error bodies (tests). */
const char *h2o_guard_message(int status, const char *body, size_t len, char *buf, size_t cap);

#endif
