/* worker/metrics.c: the label sets, buckets and text exposition of
 * GET /metrics (metrics.h). The shared segment holds plain arrays; this file
 * is the only one that knows what their indices mean. Label values are all
 * fixed strings of ours (plus the version), escaped anyway. */
#include "worker/metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/version.h"

static const char *const metrics_route_names[METRICS_ROUTES] = {"lock",    "locks",  "status", "metrics",
                                                                "healthz", "readyz", "other"};

static const char *const metrics_method_names[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS", "PATCH", "other"};
#define METRICS_METHODS (sizeof metrics_method_names / sizeof metrics_method_names[0])

/* Every code lockd's handler answers with, and a few a proxy might expect. */
static const int metrics_codes[] = {200, 400, 404, 405, 408, 409, 413, 414, 429, 431, 500, 502, 503, 504, 507};
#define METRICS_CODES (sizeof metrics_codes / sizeof metrics_codes[0] + 1) /* + "other" */

/* Upper bounds (le) in nanoseconds and as printed. From 100 us (a shm read
 * is ~10 us) to 60 s (a POST may wait up to 5 min: those land in +Inf). */
static const uint64_t metrics_bucket_ns[] = {
    100000ull,     250000ull,     500000ull,     1000000ull,     2500000ull,     5000000ull,
    10000000ull,   25000000ull,   50000000ull,   100000000ull,   250000000ull,   500000000ull,
    1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull};
static const char *const metrics_bucket_le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                                "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                                "1",      "2.5",     "5",      "10",    "30",     "60"};
#define METRICS_FINITE_BUCKETS (sizeof metrics_bucket_ns / sizeof metrics_bucket_ns[0])

_Static_assert(METRICS_ROUTES <= SHM_STATS_ROUTES, "routes fit the stats slot");
_Static_assert(METRICS_METHODS <= SHM_STATS_METHODS, "methods fit the stats slot");
_Static_assert(METRICS_CODES <= SHM_STATS_CODES, "codes fit the stats slot");
_Static_assert(METRICS_FINITE_BUCKETS + 1 <= SHM_STATS_BUCKETS, "buckets fit the stats slot");
_Static_assert(sizeof metrics_bucket_le / sizeof metrics_bucket_le[0] == METRICS_FINITE_BUCKETS,
               "one printed bound per bucket");

enum metrics_route metrics_route_of(const char *path, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(path, lit, sizeof(lit) - 1) == 0)
    if (len >= 6 && memcmp(path, "/lock/", 6) == 0)
        return METRICS_ROUTE_LOCK;
    if (IS("/locks"))
        return METRICS_ROUTE_LOCKS;
    if (IS("/status"))
        return METRICS_ROUTE_STATUS;
    if (IS("/metrics"))
        return METRICS_ROUTE_METRICS;
    if (IS("/healthz"))
        return METRICS_ROUTE_HEALTHZ;
    if (IS("/readyz"))
        return METRICS_ROUTE_READYZ;
    return METRICS_ROUTE_OTHER;
#undef IS
}

unsigned metrics_method_index(const char *method, size_t len)
{
    for (unsigned i = 0; i + 1 < METRICS_METHODS; i++)
        if (strlen(metrics_method_names[i]) == len && memcmp(metrics_method_names[i], method, len) == 0)
            return i;
    return METRICS_METHODS - 1;
}

unsigned metrics_code_index(int status)
{
    for (unsigned i = 0; i + 1 < METRICS_CODES; i++)
        if (metrics_codes[i] == status)
            return i;
    return METRICS_CODES - 1;
}

unsigned metrics_bucket_index(uint64_t ns)
{
    /* Prometheus buckets are "less than or equal". 18 compares at most. */
    unsigned b = 0;
    while (b < METRICS_FINITE_BUCKETS && ns > metrics_bucket_ns[b])
        b++;
    return b;
}

void metrics_snapshot_take(const shm_table *t, struct metrics_snapshot *s)
{
    memset(s, 0, sizeof *s);
    const shm_stats *st = shm_table_stats(t);
    shm_stats_http_sum(st, &s->http);
    shm_stats_read_raft(st, &s->raft);
    shm_table_status(t, &s->status);
    s->locks = shm_table_count(t);
    s->capacity = shm_table_capacity(t);
    s->worker_restarts = shm_stats_restarts(st, SHM_STATS_WORKER);
    s->raft_restarts = shm_stats_restarts(st, SHM_STATS_RAFT);
}

/* ---- text output ----------------------------------------------------------- */

struct metrics_out {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void metrics_printf(struct metrics_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2;
        while (cap - o->len <= (size_t)n)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->oom = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

/* A label value per the exposition format: \\, \" and \n escaped. */
static void metrics_label_value(struct metrics_out *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            metrics_printf(o, "\\\\");
        else if (*v == '"')
            metrics_printf(o, "\\\"");
        else if (*v == '\n')
            metrics_printf(o, "\\n");
        else
            metrics_printf(o, "%c", *v);
    }
}

static void metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help)
{
    metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_single(struct metrics_out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    metrics_family(o, name, type, help);
    metrics_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void metrics_requests(struct metrics_out *o, const struct shm_stats_http *h)
{
    metrics_family(o, "lockd_http_requests_total", "counter",
                   "HTTP requests answered by this node's workers, by route, method and status code.");
    for (unsigned r = 0; r < METRICS_ROUTES; r++) {
        for (unsigned m = 0; m < METRICS_METHODS; m++) {
            for (unsigned c = 0; c < METRICS_CODES; c++) {
                uint64_t v = h->requests[r][m][c];
                if (v == 0)
                    continue; /* a series appears at its first request, then stays */
                char code[16];
                if (c + 1 < METRICS_CODES)
                    snprintf(code, sizeof code, "%d", metrics_codes[c]);
                else
                    snprintf(code, sizeof code, "other");
                metrics_printf(o, "lockd_http_requests_total{route=\"");
                metrics_label_value(o, metrics_route_names[r]);
                metrics_printf(o, "\",method=\"");
                metrics_label_value(o, metrics_method_names[m]);
                metrics_printf(o, "\",code=\"");
                metrics_label_value(o, code);
                metrics_printf(o, "\"} %llu\n", (unsigned long long)v);
            }
        }
    }
}

static void metrics_durations(struct metrics_out *o, const struct shm_stats_http *h)
{
    const char *name = "lockd_http_request_duration_seconds";
    metrics_family(o, name, "histogram", "Time from routing a request to starting its response, by route.");
    for (unsigned r = 0; r < METRICS_ROUTES; r++) {
        uint64_t cum = 0;
        /* Everything comes from one read of the buckets, so the +Inf bucket
         * always equals _count even while requests are being recorded. */
        for (unsigned b = 0; b <= METRICS_FINITE_BUCKETS; b++) {
            cum += h->buckets[r][b];
            metrics_printf(o, "%s_bucket{route=\"", name);
            metrics_label_value(o, metrics_route_names[r]);
            metrics_printf(o, "\",le=\"%s\"} %llu\n", b < METRICS_FINITE_BUCKETS ? metrics_bucket_le[b] : "+Inf",
                           (unsigned long long)cum);
        }
        uint64_t ns = h->sum_ns[r];
        metrics_printf(o, "%s_sum{route=\"", name);
        metrics_label_value(o, metrics_route_names[r]);
        metrics_printf(o, "\"} %llu.%09llu\n", (unsigned long long)(ns / 1000000000ull),
                       (unsigned long long)(ns % 1000000000ull));
        metrics_printf(o, "%s_count{route=\"", name);
        metrics_label_value(o, metrics_route_names[r]);
        metrics_printf(o, "\"} %llu\n", (unsigned long long)cum);
    }
}

/* Propose-to-apply time of the Raft process's entries: the disk sync of the
 * log (libraft fsyncs inside; this is the closest it lets us measure) plus
 * replication and apply. */
static void metrics_commit(struct metrics_out *o, const struct shm_stats_raft *r)
{
    const char *name = "lockd_raft_commit_seconds";
    metrics_family(o, name, "histogram",
                   "Raft entry propose-to-apply time on this node as leader (includes the log's fsync).");
    uint64_t cum = 0;
    for (unsigned b = 0; b <= METRICS_FINITE_BUCKETS; b++) {
        cum += r->c_commit_buckets[b];
        metrics_printf(o, "%s_bucket{le=\"%s\"} %llu\n", name,
                       b < METRICS_FINITE_BUCKETS ? metrics_bucket_le[b] : "+Inf", (unsigned long long)cum);
    }
    metrics_printf(o, "%s_sum %llu.%09llu\n", name, (unsigned long long)(r->c_commit_sum_ns / 1000000000ull),
                   (unsigned long long)(r->c_commit_sum_ns % 1000000000ull));
    metrics_printf(o, "%s_count %llu\n", name, (unsigned long long)cum);
}

int metrics_render(const struct metrics_snapshot *s, char **out, size_t *len)
{
    struct metrics_out o = {.buf = malloc(16384), .cap = 16384};
    if (o.buf == NULL)
        return -LOCKD_ENOMEM;
    o.buf[0] = '\0';

    metrics_family(&o, "lockd_build_info", "gauge", "Always 1; the version label says which lockd runs.");
    metrics_printf(&o, "lockd_build_info{version=\"");
    metrics_label_value(&o, LOCKD_VERSION);
    metrics_printf(&o, "\"} 1\n");

    metrics_requests(&o, &s->http);
    metrics_durations(&o, &s->http);

    metrics_single(&o, "lockd_locks_held", "gauge", "Locks held now (this node's applied state).", s->locks);
    metrics_single(&o, "lockd_lock_capacity", "gauge", "Most locks the node can hold (--max-locks).", s->capacity);
    metrics_single(&o, "lockd_waiters", "gauge", "Acquires waiting in per-lock FIFO queues.", s->raft.g_waiters);
    metrics_single(&o, "lockd_table_ready", "gauge", "1 when the shared lock table is loaded and serving reads.",
                   s->status.state == SHM_STATE_READY);

    const shm_node_status *st = &s->status;
    metrics_single(&o, "lockd_raft_term", "gauge", "Current Raft term.", st->term);
    metrics_single(&o, "lockd_raft_commit_index", "gauge", "Highest Raft index known committed.", st->commit_index);
    metrics_single(&o, "lockd_raft_applied_index", "gauge", "Highest Raft index applied to the lock table.",
                   st->applied_index);
    metrics_single(&o, "lockd_raft_leader", "gauge", "1 if this node is the Raft leader, else 0.", st->role == 3);
    metrics_single(&o, "lockd_raft_leader_id", "gauge", "Id of the leader this node knows, 0 if none.", st->leader_id);
    metrics_single(&o, "lockd_raft_entries_total", "counter",
                   "Raft entries this node proposed (one per batch of commands).", s->raft.c_entries);
    metrics_single(&o, "lockd_raft_commands_total", "counter",
                   "Commands in the entries this node proposed; divided by entries, the mean batch size.",
                   s->raft.c_commands);
    metrics_single(&o, "lockd_raft_entry_bytes_total", "counter",
                   "Payload bytes of the Raft entries this node proposed (with entries_total: bytes per batch).",
                   s->raft.c_entry_bytes);
    metrics_commit(&o, &s->raft);
    metrics_single(&o, "lockd_raft_max_batch_commands", "gauge",
                   "Largest entry proposed by the current Raft process, in commands.", s->raft.g_max_batch);
    metrics_single(&o, "lockd_api_timeouts_total", "counter",
                   "Requests answered 504 because consensus did not answer in time.", s->raft.c_timeouts);
    metrics_single(&o, "lockd_waits_queued_total", "counter", "Acquires that joined a lock's wait queue.",
                   s->raft.c_queued);
    metrics_single(&o, "lockd_waiter_handoffs_total", "counter",
                   "Locks handed from a release or expiry straight to a waiting acquire.", s->raft.c_handoffs);
    metrics_single(&o, "lockd_lease_expirations_total", "counter", "Lease expiry commands this node issued as leader.",
                   s->raft.c_expirations);

    metrics_family(&o, "lockd_process_restarts_total", "counter",
                   "Child processes restarted by the master after they died (not reloads).");
    metrics_printf(&o, "lockd_process_restarts_total{kind=\"worker\"} %llu\n", (unsigned long long)s->worker_restarts);
    metrics_printf(&o, "lockd_process_restarts_total{kind=\"raft\"} %llu\n", (unsigned long long)s->raft_restarts);

    if (o.oom) {
        free(o.buf);
        return -LOCKD_ENOMEM;
    }
    *out = o.buf;
    *len = o.len;
    return 0;
}
