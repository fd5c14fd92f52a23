/* worker/http.h: the HTTP API of API.md as one h2o handler: routing, the
 * shared-memory read path, the raftproc write path, and every JSON body and
 * status code the contract fixes. */
#ifndef LOCKD_WORKER_HTTP_H
#define LOCKD_WORKER_HTTP_H

#include <stdint.h>

#include <h2o.h>

#include "common/config.h"
#include "shm/table.h"
#include "worker/params.h"
#include "worker/raft_client.h"

/* Same value as master/options.h; guarded so both may be included. */
#include "common/version.h"

/* What the handler needs from its worker; owned by worker_main, read-only
 * for the handler except `draining`. */
struct http_ctx {
    const struct lockd_config *cfg;
    shm_table *table;            /* mapped read-only */
    raft_client *raft;           /* set before the first request arrives */
    unsigned worker_index;       /* 1-based */
    uint64_t node_started_ms;    /* CLOCK_BOOTTIME ms when this node's master
                                    started (uptime survives worker restarts) */
    int draining;                /* set at SIGTERM: connections close after their answer */
    uint64_t last_request_ms;    /* CLOCK_MONOTONIC ms of the last request routed (drain) */
    h2o_timeout_t watch_timeout; /* checks that waiting HTTP/1 clients are still there */
    int watch_ready;
    struct params_limits limits; /* from cfg */

    /* The request being answered right now, for the request metrics: set
     * while a request is routed and while raftproc's answer to one is
     * handled (one event loop: never two at once). */
    h2o_req_t *cur_req;
    unsigned cur_route, cur_method; /* worker/metrics.h indices */
    uint64_t cur_start_ns;          /* CLOCK_MONOTONIC when it was routed */
};

/* Registers the handler that serves every route on pathconf (registered for
 * "/"). Must run before h2o_context_init. ctx must outlive the context. */
void http_register(h2o_pathconf_t *pathconf, struct http_ctx *ctx);

/* CLOCK_BOOTTIME in milliseconds (the clock of node_started_ms). */
uint64_t http_boottime_ms(void);

#endif
