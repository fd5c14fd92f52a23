/* tests/unit/worker/test_list.c: GET /locks's query fields (defaults,
 * bounds, exact wording of every 400) and the page selection against a
 * sort-and-filter reference: name order, prefix, after, limit, "more", the
 * repeat of a name offered twice, and pagination that visits every name
 * once. Plus a fuzz pass of the query parser. */
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
#include "common/limits.h"
#include "worker/list.h"

static char err[LIST_ERR_MAX];

static int parse(const char *q, struct list_query *out)
{
    return list_parse_query(q, q ? strlen(q) : 0, out, err, sizeof err);
}

static void expect_error(const char *q, const char *msg)
{
    struct list_query lq;
    int rc = parse(q, &lq);
    if (rc != -LOCKD_EINVAL || strcmp(err, msg) != 0)
        fail_msg("query \"%s\": rc %d, message \"%s\", want \"%s\"", q, rc, err, msg);
}

/* ---- query ------------------------------------------------------------------ */

static void test_no_query_gives_defaults(void **state)
{
    (void)state;
    struct list_query q;
    assert_int_equal(parse(NULL, &q), 0);
    assert_int_equal(q.limit, LIST_LIMIT_DEFAULT);
    assert_int_equal(q.prefix_len, 0);
    assert_false(q.has_after);
    assert_int_equal(parse("", &q), 0);
    assert_int_equal(parse("&&", &q), 0);
    assert_int_equal(q.limit, 100);
}

static void test_all_fields_parse_and_decode(void **state)
{
    (void)state;
    struct list_query q;
    assert_int_equal(parse("prefix=job.%24x&limit=10000&after=job.%24x-7", &q), 0);
    assert_string_equal(q.prefix, "job.$x");
    assert_int_equal(q.prefix_len, 6);
    assert_int_equal(q.limit, 10000);
    assert_true(q.has_after);
    assert_string_equal(q.after, "job.$x-7");
    assert_int_equal(q.after_len, 8);
    assert_int_equal(parse("limit=1&prefix=", &q), 0);
    assert_int_equal(q.limit, 1);
    assert_int_equal(q.prefix_len, 0);
    assert_int_equal(parse("prefix", &q), 0); /* bare key: empty prefix */
    assert_int_equal(parse("limit=007", &q), 0);
    assert_int_equal(q.limit, 7);

    char long_q[300];
    char name[LOCKD_NAME_MAX + 1];
    memset(name, 'n', LOCKD_NAME_MAX);
    name[LOCKD_NAME_MAX] = '\0';
    snprintf(long_q, sizeof long_q, "prefix=%s&after=%s", name, name);
    assert_int_equal(parse(long_q, &q), 0);
    assert_int_equal(q.prefix_len, 128);
    assert_int_equal(q.after_len, 128);
}

static void test_bad_limit_is_400_with_exact_message(void **state)
{
    (void)state;
    const char *range = "limit must be between 1 and 10000";
    const char *notint = "Invalid value for \"limit\": expected an integer from 1 to 10000";
    expect_error("limit=0", range);
    expect_error("limit=10001", range);
    expect_error("limit=99999999999999999999999999", range);
    expect_error("limit=", notint);
    expect_error("limit", notint);
    expect_error("limit=-1", notint);
    expect_error("limit=+5", notint);
    expect_error("limit=1.5", notint);
    expect_error("limit=1e3", notint);
    expect_error("limit=%201", notint);
    expect_error("limit=ten", notint);
}

static void test_bad_prefix_and_after_are_400_with_exact_message(void **state)
{
    (void)state;
    expect_error("prefix=a%20b", "\"prefix\" contains non-printable/non-ascii byte 32 at offset 1");
    expect_error("prefix=a+b", "\"prefix\" contains non-printable/non-ascii byte 32 at offset 1");
    expect_error("prefix=%2F", "\"prefix\" contains non-printable/non-ascii byte 47 at offset 0");
    expect_error("prefix=%C3%A9", "\"prefix\" contains non-printable/non-ascii byte 195 at offset 0");
    expect_error("after=", "\"after\" is empty");
    expect_error("after", "\"after\" is empty");
    expect_error("after=x:y", "\"after\" contains non-printable/non-ascii byte 58 at offset 1");

    char q[1024];
    char v[400];
    memset(v, 'a', 129);
    v[129] = '\0';
    snprintf(q, sizeof q, "prefix=%s", v);
    expect_error(q, "\"prefix\" is too long (129 bytes > max of 128)");
    snprintf(q, sizeof q, "after=%s", v);
    expect_error(q, "\"after\" is too long (129 bytes > max of 128)");
    /* the length counted is the decoded one */
    strcpy(v, "");
    for (int i = 0; i < 130; i++)
        strcat(v, i % 2 ? "%41" : "b");
    snprintf(q, sizeof q, "after=%s", v);
    expect_error(q, "\"after\" is too long (130 bytes > max of 128)");
}

static void test_unknown_repeated_and_malformed_fields_are_400(void **state)
{
    (void)state;
    expect_error("owner=me", "Unknown field \"owner\"");
    expect_error("consistent=true", "Unknown field \"consistent\"");
    expect_error("Limit=5", "Unknown field \"Limit\"");
    expect_error("limit=5&limit=6", "Field \"limit\" given more than once");
    expect_error("prefix=a&prefix=a", "Field \"prefix\" given more than once");
    expect_error("after=a&after=b", "Field \"after\" given more than once");
    expect_error("prefix=%zz", "Malformed percent-encoding in query string");
    expect_error("lim%it=5", "Malformed percent-encoding in query string");
    expect_error("a%01b=1", "Unknown field \"a?b\"");
    expect_error("averyveryverylongfieldname=1", "Unknown field \"averyveryverylongfieldname\"");
}

static void test_query_parser_survives_random_input(void **state)
{
    (void)state;
    static const char alphabet[] = "prefixlmtaf=&%+0123456789ABCabc$-._/ \x01\xff";
    uint64_t x = 88172645463325252ull;
    char q[512];
    struct list_query lq;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = x % sizeof q;
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            q[k] = alphabet[x % (sizeof alphabet - 1)];
        }
        int rc = list_parse_query(q, len, &lq, err, sizeof err);
        assert_true(rc == 0 || rc == -LOCKD_EINVAL);
        if (rc == 0) {
            assert_true(lq.limit >= 1 && lq.limit <= LIST_LIMIT_MAX);
            assert_true(lq.prefix_len <= LOCKD_NAME_MAX);
            assert_true(lq.prefix[lq.prefix_len] == '\0');
        } else {
            assert_true(err[0] != '\0');
        }
    }
}

/* ---- selection ---------------------------------------------------------------- */

static void lock_named(shm_lock *l, const char *name, uint64_t revision)
{
    memset(l, 0, sizeof *l);
    size_t n = strlen(name);
    memcpy(l->name, name, n);
    l->name_len = (uint8_t)n;
    l->token = revision;
    l->revision = revision;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One page the slow way: sort all, filter, take limit. */
static size_t reference_page(char **names, size_t n, const struct list_query *q, char **out,
                             bool *more)
{
    char **sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    size_t k = 0, matched = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(sorted[i], q->prefix, q->prefix_len) != 0)
            continue;
        if (q->has_after && strcmp(sorted[i], q->after) <= 0)
            continue;
        matched++;
        if (k < q->limit)
            out[k++] = sorted[i];
    }
    *more = matched > q->limit;
    free(sorted);
    return k;
}

struct page {
    size_t n;
    bool more;
    shm_lock *const *locks;
    void *mem;
    struct list_sel sel;
};

static void select_page(struct page *p, const struct list_query *q, shm_lock *recs, size_t n,
                        const size_t *order)
{
    p->mem = malloc(list_sel_mem_size(q));
    assert_non_null(p->mem);
    list_sel_init(&p->sel, q, p->mem);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list_sel_offer(&recs[order ? order[i] : i], &p->sel), 0);
    p->n = list_sel_finish(&p->sel, &p->locks, &p->more);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_selection_matches_sort_and_filter_reference(void **state)
{
    (void)state;
    static const char alphabet[] = "$-.0123456789ABCZ_abcz"; /* spans the byte order */
    enum { N = 3000 };
    uint64_t x = 42;
    char **names = malloc(N * sizeof *names);
    shm_lock *recs = malloc(N * sizeof *recs);
    size_t n = 0;
    while (n < N) {
        char buf[LOCKD_NAME_MAX + 1];
        size_t len = 1 + rnd(&x) % 6;
        for (size_t k = 0; k < len; k++)
            buf[k] = alphabet[rnd(&x) % (sizeof alphabet - 1)];
        buf[len] = '\0';
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(names[i], buf) == 0;
        if (dup)
            continue;
        names[n] = strdup(buf);
        lock_named(&recs[n], buf, n + 1);
        n++;
    }
    char **want = malloc(N * sizeof *want);
    for (int round = 0; round < 300; round++) {
        struct list_query q;
        memset(&q, 0, sizeof q);
        q.limit = round % 7 == 0 ? N + 5 : 1 + rnd(&x) % (round % 2 ? 50 : 2000);
        if (rnd(&x) % 2) {
            q.prefix_len = rnd(&x) % 3;
            for (size_t k = 0; k < q.prefix_len; k++)
                q.prefix[k] = alphabet[rnd(&x) % (sizeof alphabet - 1)];
        }
        if (rnd(&x) % 2) {
            const char *a = names[rnd(&x) % n];
            q.after_len = strlen(a) > 2 ? 2 : strlen(a); /* not always a held name */
            memcpy(q.after, a, q.after_len);
            q.has_after = true;
        }
        bool want_more;
        size_t wn = reference_page(names, n, &q, want, &want_more);
        struct page p;
        select_page(&p, &q, recs, n, NULL);
        assert_int_equal(p.n, wn);
        assert_int_equal(p.more, want_more);
        for (size_t i = 0; i < wn; i++)
            assert_string_equal(p.locks[i]->name, want[i]);
        free(p.mem);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(want);
    free(recs);
}

static void test_more_is_false_when_exactly_limit_names_match(void **state)
{
    (void)state;
    shm_lock recs[3];
    lock_named(&recs[0], "b", 1);
    lock_named(&recs[1], "a", 2);
    lock_named(&recs[2], "c", 3);
    struct list_query q = {.limit = 3};
    struct page p;
    select_page(&p, &q, recs, 3, NULL);
    assert_int_equal(p.n, 3);
    assert_false(p.more);
    assert_string_equal(p.locks[0]->name, "a");
    assert_string_equal(p.locks[2]->name, "c");
    free(p.mem);
    q.limit = 2;
    select_page(&p, &q, recs, 3, NULL);
    assert_int_equal(p.n, 2);
    assert_true(p.more);
    assert_string_equal(p.locks[1]->name, "b");
    free(p.mem);
    select_page(&p, &q, recs, 0, NULL);
    assert_int_equal(p.n, 0);
    assert_false(p.more);
    free(p.mem);
}

static void test_shorter_name_sorts_first_and_order_is_bytewise(void **state)
{
    (void)state;
    const char *in[] = {"ab", "a", "a_", "aB", "a.", "a$", "a0", "a-", "b", "Z"};
    const char *want[] = {"Z", "a", "a$", "a-", "a.", "a0", "aB", "a_", "ab", "b"};
    shm_lock recs[10];
    for (int i = 0; i < 10; i++)
        lock_named(&recs[i], in[i], (uint64_t)i + 1);
    struct list_query q = {.limit = 10};
    struct page p;
    select_page(&p, &q, recs, 10, NULL);
    assert_int_equal(p.n, 10);
    for (int i = 0; i < 10; i++)
        assert_string_equal(p.locks[i]->name, want[i]);
    free(p.mem);
}

static void test_a_name_offered_twice_is_listed_once_with_its_newer_record(void **state)
{
    (void)state;
    shm_lock recs[5];
    lock_named(&recs[0], "x", 5);
    lock_named(&recs[1], "y", 1);
    lock_named(&recs[2], "x", 9); /* released and re-acquired during the scan */
    lock_named(&recs[3], "w", 2);
    lock_named(&recs[4], "x", 7);
    struct list_query q = {.limit = 10};
    struct page p;
    select_page(&p, &q, recs, 5, NULL);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.locks[0]->name, "w");
    assert_string_equal(p.locks[1]->name, "x");
    assert_int_equal(p.locks[1]->revision, 9);
    assert_string_equal(p.locks[2]->name, "y");
    assert_false(p.more);
    free(p.mem);
    /* in a full page the repeat costs a place, and "more" still says so */
    q.limit = 3;
    select_page(&p, &q, recs, 5, NULL);
    assert_int_equal(p.n, 2);
    assert_true(p.more);
    assert_string_equal(p.locks[1]->name, "x");
    free(p.mem);
}

static void test_paging_with_next_visits_every_name_once_in_order(void **state)
{
    (void)state;
    enum { N = 5000 };
    shm_lock *recs = malloc(N * sizeof *recs);
    size_t *order = malloc(N * sizeof *order);
    char name[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "job-%zu", i * 7919 % N);
        lock_named(&recs[i], name, i + 1);
        order[i] = i;
    }
    uint64_t x = 7;
    for (size_t limit = 1; limit <= 10000; limit = limit * 10 + 3) {
        struct list_query q = {.limit = limit};
        memcpy(q.prefix, "job-", 4);
        q.prefix_len = 4;
        size_t total = 0;
        char last[LOCKD_NAME_MAX + 1] = "";
        for (;;) {
            for (size_t i = N - 1; i > 0; i--) { /* every scan sees another order */
                size_t j = rnd(&x) % (i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            struct page p;
            select_page(&p, &q, recs, N, order);
            for (size_t i = 0; i < p.n; i++) {
                assert_true(strcmp(p.locks[i]->name, last) > 0);
                strcpy(last, p.locks[i]->name);
            }
            total += p.n;
            bool more = p.more;
            if (p.n > 0) {
                strcpy(q.after, p.locks[p.n - 1]->name);
                q.after_len = strlen(q.after);
                q.has_after = true;
            }
            free(p.mem);
            if (!more)
                break;
        }
        assert_int_equal(total, N);
    }
    free(order);
    free(recs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_query_gives_defaults),
        cmocka_unit_test(test_all_fields_parse_and_decode),
        cmocka_unit_test(test_bad_limit_is_400_with_exact_message),
        cmocka_unit_test(test_bad_prefix_and_after_are_400_with_exact_message),
        cmocka_unit_test(test_unknown_repeated_and_malformed_fields_are_400),
        cmocka_unit_test(test_query_parser_survives_random_input),
        cmocka_unit_test(test_selection_matches_sort_and_filter_reference),
        cmocka_unit_test(test_more_is_false_when_exactly_limit_names_match),
        cmocka_unit_test(test_shorter_name_sorts_first_and_order_is_bytewise),
        cmocka_unit_test(test_a_name_offered_twice_is_listed_once_with_its_newer_record),
        cmocka_unit_test(test_paging_with_next_visits_every_name_once_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
