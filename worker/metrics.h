/* worker/metrics.h: what GET /metrics means. The fixed label sets of the
 * request counters (route x method x status code), the latency buckets, and
 * the Prometheus text exposition (format 0.0.4) of a snapshot taken from
 * the shared stats segment (shm/stats.h). Pure apart from malloc: no h2o,
 * no I/O; tested in tests/unit/worker/test_metrics.c. */
#ifndef LOCKD_WORKER_METRICS_H
#define LOCKD_WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "shm/stats.h"
#include "shm/table.h"

enum metrics_route {
    METRICS_ROUTE_LOCK = 0, /* /lock/:name */
    METRICS_ROUTE_LOCKS,    /* /locks */
    METRICS_ROUTE_STATUS,
    METRICS_ROUTE_METRICS,
    METRICS_ROUTE_HEALTHZ,
    METRICS_ROUTE_READYZ,
    METRICS_ROUTE_OTHER, /* anything else (404s, the UI) */
    METRICS_ROUTES
};

/* The route label of a raw path (without the query string). */
enum metrics_route metrics_route_of(const char *path, size_t len);

/* Index of an HTTP method in the fixed set GET HEAD POST DELETE PUT PATCH
 * OPTIONS, else the "other" index. */
unsigned metrics_method_index(const char *method, size_t len);

/* Index of a status code in the fixed set of codes lockd answers, else the
 * "other" index. */
unsigned metrics_code_index(int status);

/* Latency bucket of a request that took ns nanoseconds (the last index is
 * +Inf). */
unsigned metrics_bucket_index(uint64_t ns);

/* Everything one exposition shows, gathered by the scraping worker. */
struct metrics_snapshot {
    struct shm_stats_http http;
    struct shm_stats_raft raft;
    shm_node_status status;
    uint32_t locks, capacity;
    uint64_t worker_restarts, raft_restarts;
};

/* Fills s from the table, its status block and its stats segment. */
void metrics_snapshot_take(const shm_table *t, struct metrics_snapshot *s);

/* Renders s in the Prometheus text format 0.0.4: every family has its
 * # HELP and # TYPE lines before its samples; request counters appear once
 * non-zero; every route has a full histogram. On success *out is a
 * malloc'd buffer of *len bytes owned by the caller (free). Errors:
 * -LOCKD_ENOMEM. */
int metrics_render(const struct metrics_snapshot *s, char **out, size_t *len);

#endif
