/* tests/unit/worker/test_metrics.c: the label indices and latency buckets
 * of GET /metrics, and its text exposition: HELP and TYPE before every
 * family's samples, request series once non-zero, cumulative buckets whose
 * +Inf equals _count, and the figures of the snapshot where they belong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "worker/metrics.h"

static void test_routes_methods_and_codes_map_to_fixed_indices(void **state)
{
    (void)state;
    assert_int_equal(metrics_route_of("/lock/x", 7), METRICS_ROUTE_LOCK);
    assert_int_equal(metrics_route_of("/lock/", 6), METRICS_ROUTE_LOCK);
    assert_int_equal(metrics_route_of("/locks", 6), METRICS_ROUTE_LOCKS);
    assert_int_equal(metrics_route_of("/locks/", 7), METRICS_ROUTE_OTHER);
    assert_int_equal(metrics_route_of("/status", 7), METRICS_ROUTE_STATUS);
    assert_int_equal(metrics_route_of("/metrics", 8), METRICS_ROUTE_METRICS);
    assert_int_equal(metrics_route_of("/healthz", 8), METRICS_ROUTE_HEALTHZ);
    assert_int_equal(metrics_route_of("/readyz", 7), METRICS_ROUTE_READYZ);
    assert_int_equal(metrics_route_of("/", 1), METRICS_ROUTE_OTHER);
    assert_int_equal(metrics_route_of("", 0), METRICS_ROUTE_OTHER);

    unsigned get = metrics_method_index("GET", 3), other = metrics_method_index("BREW", 4);
    assert_int_not_equal(get, other);
    assert_int_not_equal(metrics_method_index("POST", 4), get);
    assert_int_equal(metrics_method_index("get", 3), other); /* methods are case-sensitive */
    assert_int_equal(metrics_method_index("GETX", 4), other);
    assert_int_equal(metrics_method_index("", 0), other);
    assert_true(other < SHM_STATS_METHODS);

    unsigned c200 = metrics_code_index(200), cother = metrics_code_index(299);
    assert_int_not_equal(c200, cother);
    assert_int_equal(metrics_code_index(-1), cother);
    assert_true(cother < SHM_STATS_CODES);
    int codes[] = {200, 400, 404, 405, 409, 413, 500, 503, 504, 507};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        for (size_t k = 0; k < i; k++)
            assert_int_not_equal(metrics_code_index(codes[i]), metrics_code_index(codes[k]));
}

static void test_buckets_are_less_or_equal_and_end_in_inf(void **state)
{
    (void)state;
    assert_int_equal(metrics_bucket_index(0), 0);
    assert_int_equal(metrics_bucket_index(100000), 0); /* le="0.0001" includes 100 us */
    assert_int_equal(metrics_bucket_index(100001), 1);
    assert_int_equal(metrics_bucket_index(1000000), 3); /* 1 ms */
    unsigned inf = metrics_bucket_index(UINT64_MAX);
    assert_true(inf < SHM_STATS_BUCKETS);
    assert_int_equal(metrics_bucket_index(60000000000ull), inf - 1);
    assert_int_equal(metrics_bucket_index(60000000001ull), inf);
    unsigned prev = 0;
    for (uint64_t ns = 1; ns < 100000000000ull; ns = ns * 3 / 2 + 1) {
        unsigned b = metrics_bucket_index(ns);
        assert_true(b >= prev);
        prev = b;
    }
}

/* ---- exposition ---------------------------------------------------------------- */

static char *render(const struct metrics_snapshot *s, size_t *len)
{
    char *text = NULL;
    assert_int_equal(metrics_render(s, &text, len), 0);
    assert_non_null(text);
    assert_true(*len > 0 && text[*len - 1] == '\n');
    char *z = malloc(*len + 1);
    memcpy(z, text, *len);
    z[*len] = '\0';
    free(text);
    return z;
}

/* The value of the sample whose text before the value is `series`. */
static bool sample(const char *text, const char *series, double *v)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            *v = strtod(p + n + 1, NULL);
            return true;
        }
        p = eol ? eol + 1 : NULL;
    }
    return false;
}

static double must(const char *text, const char *series)
{
    double v;
    if (!sample(text, series, &v))
        fail_msg("no sample %s in:\n%s", series, text);
    return v;
}

static struct metrics_snapshot *example(void)
{
    struct metrics_snapshot *s = calloc(1, sizeof *s);
    unsigned get = metrics_method_index("GET", 3), post = metrics_method_index("POST", 4);
    s->http.requests[METRICS_ROUTE_LOCK][post][metrics_code_index(200)] = 5;
    s->http.requests[METRICS_ROUTE_LOCK][get][metrics_code_index(404)] = 2;
    s->http.requests[METRICS_ROUTE_LOCKS][get][metrics_code_index(299)] = 1;
    s->http.buckets[METRICS_ROUTE_LOCK][0] = 4;
    s->http.buckets[METRICS_ROUTE_LOCK][3] = 2;
    s->http.buckets[METRICS_ROUTE_LOCK][metrics_bucket_index(UINT64_MAX)] = 1;
    s->http.sum_ns[METRICS_ROUTE_LOCK] = 61234567890ull;
    s->raft.c_entries = 11;
    s->raft.c_commands = 33;
    s->raft.c_handoffs = 2;
    s->raft.c_expirations = 4;
    s->raft.g_waiters = 3;
    s->status.term = 7;
    s->status.commit_index = 70;
    s->status.applied_index = 69;
    s->status.role = 3;
    s->status.leader_id = 2;
    s->status.state = SHM_STATE_READY;
    s->locks = 12;
    s->capacity = 1000;
    s->worker_restarts = 1;
    s->raft_restarts = 2;
    return s;
}

static void test_render_puts_each_figure_in_its_series(void **state)
{
    (void)state;
    struct metrics_snapshot *s = example();
    size_t len;
    char *t = render(s, &len);
    assert_true(must(t, "lockd_build_info{version=\"0.1.0\"}") == 1);
    assert_true(must(t, "lockd_http_requests_total{route=\"lock\",method=\"POST\",code=\"200\"}") == 5);
    assert_true(must(t, "lockd_http_requests_total{route=\"lock\",method=\"GET\",code=\"404\"}") == 2);
    assert_true(must(t, "lockd_http_requests_total{route=\"locks\",method=\"GET\",code=\"other\"}") == 1);
    double v;
    assert_false(sample(t, "lockd_http_requests_total{route=\"lock\",method=\"GET\",code=\"200\"}", &v));
    assert_true(must(t, "lockd_http_request_duration_seconds_bucket{route=\"lock\",le=\"0.0001\"}") == 4);
    assert_true(must(t, "lockd_http_request_duration_seconds_bucket{route=\"lock\",le=\"0.001\"}") == 6);
    assert_true(must(t, "lockd_http_request_duration_seconds_bucket{route=\"lock\",le=\"60\"}") == 6);
    assert_true(must(t, "lockd_http_request_duration_seconds_bucket{route=\"lock\",le=\"+Inf\"}") == 7);
    assert_true(must(t, "lockd_http_request_duration_seconds_count{route=\"lock\"}") == 7);
    assert_non_null(strstr(t, "lockd_http_request_duration_seconds_sum{route=\"lock\"} 61.234567890\n"));
    assert_true(must(t, "lockd_http_request_duration_seconds_count{route=\"readyz\"}") == 0);
    assert_true(must(t, "lockd_locks_held") == 12);
    assert_true(must(t, "lockd_lock_capacity") == 1000);
    assert_true(must(t, "lockd_waiters") == 3);
    assert_true(must(t, "lockd_raft_term") == 7);
    assert_true(must(t, "lockd_raft_commit_index") == 70);
    assert_true(must(t, "lockd_raft_applied_index") == 69);
    assert_true(must(t, "lockd_raft_leader") == 1);
    assert_true(must(t, "lockd_raft_entries_total") == 11);
    assert_true(must(t, "lockd_raft_commands_total") == 33);
    assert_true(must(t, "lockd_waiter_handoffs_total") == 2);
    assert_true(must(t, "lockd_lease_expirations_total") == 4);
    assert_true(must(t, "lockd_process_restarts_total{kind=\"worker\"}") == 1);
    assert_true(must(t, "lockd_process_restarts_total{kind=\"raft\"}") == 2);
    free(t);
    s->status.role = 1;
    t = render(s, &len);
    assert_true(must(t, "lockd_raft_leader") == 0);
    free(t);
    free(s);
}

/* The format's structure: comments are "# HELP name text" or "# TYPE name
 * type" with HELP then TYPE once per family, before its first sample; every
 * sample belongs to the family declared last (histograms: _bucket, _sum,
 * _count); histogram buckets are cumulative per series. */
static void test_render_is_well_formed_text_format(void **state)
{
    (void)state;
    struct metrics_snapshot *s = example();
    size_t len;
    char *t = render(s, &len);
    char family[128] = "", type[32] = "";
    char declared[64][128];
    int n_declared = 0;
    bool help_seen = false;
    double last_bucket = -1;
    char bucket_series[256] = "";
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            char name[128];
            assert_int_equal(sscanf(line + 7, "%127s", name), 1);
            for (int i = 0; i < n_declared; i++)
                if (strcmp(declared[i], name) == 0)
                    fail_msg("family %s declared twice", name);
            assert_true(n_declared < 64);
            strcpy(declared[n_declared++], name);
            strcpy(family, name);
            help_seen = true;
            type[0] = '\0';
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128];
            assert_true(help_seen);
            assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
            assert_string_equal(name, family);
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            if (strcmp(type, "counter") == 0)
                assert_non_null(strstr(name, "_total"));
            help_seen = false;
            continue;
        }
        assert_true(line[0] != '#');
        assert_true(type[0] != '\0'); /* a sample after its family's TYPE */
        size_t nl = strcspn(line, "{ ");
        char name[128];
        memcpy(name, line, nl);
        name[nl] = '\0';
        for (size_t i = 0; i < nl; i++)
            assert_true((name[i] >= 'a' && name[i] <= 'z') || name[i] == '_' ||
                        (name[i] >= '0' && name[i] <= '9' && i > 0));
        if (strcmp(type, "histogram") == 0) {
            size_t fl = strlen(family);
            assert_int_equal(strncmp(name, family, fl), 0);
            const char *suffix = name + fl;
            assert_true(strcmp(suffix, "_bucket") == 0 || strcmp(suffix, "_sum") == 0 ||
                        strcmp(suffix, "_count") == 0);
            double v = strtod(strrchr(line, ' ') + 1, NULL);
            if (strcmp(suffix, "_bucket") == 0) {
                /* le is the only label, or follows the others */
                const char *le = strstr(line, ",le=\"");
                if (le == NULL)
                    le = strstr(line, "{le=\"");
                assert_non_null(le);
                char series[256];
                snprintf(series, sizeof series, "%.*s", (int)(le - line), line);
                if (strcmp(series, bucket_series) != 0) {
                    strcpy(bucket_series, series);
                    last_bucket = -1;
                }
                assert_true(v >= last_bucket);
                last_bucket = v;
            } else if (strcmp(suffix, "_count") == 0) {
                assert_true(v == last_bucket); /* the +Inf bucket came just before */
            }
        } else {
            assert_string_equal(name, family);
        }
        /* labels: name="value" pairs, comma separated */
        if (line[nl] == '{') {
            const char *p = line + nl + 1;
            while (*p != '}') {
                while ((*p >= 'a' && *p <= 'z') || *p == '_')
                    p++;
                assert_true(p[0] == '=' && p[1] == '"');
                p += 2;
                while (*p != '"') {
                    assert_true(*p != '\0');
                    p += *p == '\\' ? 2 : 1;
                }
                p++;
                if (*p == ',')
                    p++;
            }
            assert_true(p[1] == ' ');
        }
    }
    free(t);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_methods_and_codes_map_to_fixed_indices),
        cmocka_unit_test(test_buckets_are_less_or_equal_and_end_in_inf),
        cmocka_unit_test(test_render_puts_each_figure_in_its_series),
        cmocka_unit_test(test_render_is_well_formed_text_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
