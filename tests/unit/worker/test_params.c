/* tests/unit/worker/test_params.c: the request-field rules of API.md as
 * worker/params.c applies them (sources, per-method fields, validation and
 * the exact client-facing wording), plus a fuzz pass: no input crashes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/limits.h"
#include "worker/params.h"

static const struct params_limits limits = {.ttl_min_ms = LOCKD_TTL_MIN_MS,
                                            .ttl_max_ms = LOCKD_TTL_MAX_MS,
                                            .wait_max_ms = LOCKD_WAIT_MAX_MS};

static char err[PARAMS_ERR_MAX];

static int parse(enum params_method m, const char *query, const char *body, struct params *out)
{
    return params_parse(m, query, query ? strlen(query) : 0, body, body ? strlen(body) : 0, false,
                        &limits, out, err, sizeof err);
}

static int parse_form(enum params_method m, const char *query, const char *body, struct params *out)
{
    return params_parse(m, query, query ? strlen(query) : 0, body, body ? strlen(body) : 0, true,
                        &limits, out, err, sizeof err);
}

static void test_no_fields_is_all_defaults(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, NULL, NULL, &p), 0);
    assert_int_equal(p.given, 0);
    assert_int_equal(p.owner_len, 0);
    assert_int_equal(p.ttl_ms, 0);
    assert_int_equal(p.wait_ms, 0);
    assert_int_equal(parse(PARAMS_POST, "", "  \r\n\t", &p), 0);
    assert_int_equal(p.given, 0);
    /* empty segments are skipped */
    assert_int_equal(parse(PARAMS_POST, "&&", NULL, &p), 0);
    assert_int_equal(p.given, 0);
}

static void test_post_fields_from_query(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "owner=host-1%3A42&ttl=30s&wait=250ms", NULL, &p), 0);
    assert_string_equal(p.owner, "host-1:42");
    assert_int_equal(p.owner_len, 9);
    assert_int_equal(p.ttl_ms, 30000);
    assert_int_equal(p.wait_ms, 250);
    assert_int_equal(p.given, PARAMS_OWNER | PARAMS_TTL | PARAMS_WAIT);
    /* a bare integer is seconds */
    assert_int_equal(parse(PARAMS_POST, "ttl=5", NULL, &p), 0);
    assert_int_equal(p.ttl_ms, 5000);
    assert_int_equal(parse(PARAMS_POST, "ttl=24h&wait=5m", NULL, &p), 0);
    assert_int_equal(p.ttl_ms, 24ull * 3600 * 1000);
    assert_int_equal(p.wait_ms, 300000);
}

static void test_post_fields_from_json_body(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, NULL, "{\"owner\":\"a@b\",\"ttl\":\"1m\",\"wait\":2}", &p),
                     0);
    assert_string_equal(p.owner, "a@b");
    assert_int_equal(p.ttl_ms, 60000);
    assert_int_equal(p.wait_ms, 2000);
    /* integer ttl in JSON is seconds */
    assert_int_equal(parse(PARAMS_POST, NULL, " {\"ttl\": 30} ", &p), 0);
    assert_int_equal(p.ttl_ms, 30000);
    /* escapes in keys and values are decoded before matching */
    assert_int_equal(parse(PARAMS_POST, NULL, "{\"own\\u0065r\":\"x\\u0040y\"}", &p), 0);
    assert_string_equal(p.owner, "x@y");
}

static void test_query_and_body_combine_per_field(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "owner=me", "{\"ttl\":\"10s\"}", &p), 0);
    assert_string_equal(p.owner, "me");
    assert_int_equal(p.ttl_ms, 10000);
}

static void test_field_in_both_places_is_rejected(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "owner=a", "{\"owner\":\"b\"}", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Field \"owner\" given in both query string and body");
    /* even a null in the body counts as giving it */
    assert_int_equal(parse(PARAMS_DELETE, "token=5", "{\"token\":null}", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Field \"token\" given in both query string and body");
}

static void test_field_twice_in_query_is_rejected(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "ttl=1s&ttl=2s", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Field \"ttl\" given more than once");
}

static void test_unknown_and_wrong_method_fields_are_unknown(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "foo=1", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Unknown field \"foo\"");
    assert_int_equal(parse(PARAMS_POST, "token=1", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Unknown field \"token\"");
    assert_int_equal(parse(PARAMS_GET, "owner=a", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Unknown field \"owner\"");
    assert_int_equal(parse(PARAMS_DELETE, NULL, "{\"ttl\":\"1s\"}", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Unknown field \"ttl\"");
    assert_int_equal(parse(PARAMS_GET, NULL, "{\"wait\":1}", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Unknown field \"wait\"");
    /* control bytes of the echoed key are neutralised */
    assert_int_equal(parse(PARAMS_POST, "a%0Ab=1", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Unknown field \"a?b\"");
}

static void test_ttl_bounds_message(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "ttl=99ms", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "ttl must be between 100ms and 24h");
    assert_int_equal(parse(PARAMS_POST, "ttl=25h", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "ttl must be between 100ms and 24h");
    assert_int_equal(parse(PARAMS_POST, "ttl=0", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "ttl must be between 100ms and 24h");
    assert_int_equal(parse(PARAMS_POST, "ttl=100ms", NULL, &p), 0);
    assert_int_equal(p.ttl_ms, 100);
}

static void test_wait_bounds_message(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "wait=301s", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "wait must be between 0s and 5m");
    assert_int_equal(parse(PARAMS_POST, "wait=0", NULL, &p), 0);
    assert_int_equal(p.wait_ms, 0);
    assert_int_equal(p.given, PARAMS_WAIT);
}

static void test_bad_durations_are_rejected(void **state)
{
    (void)state;
    struct params p;
    const char *bad_query[] = {"ttl=",   "ttl",       "ttl=1.5s", "ttl=-1",
                               "ttl=1d", "ttl=%201s", "ttl=1S"};
    for (size_t i = 0; i < sizeof bad_query / sizeof bad_query[0]; i++) {
        assert_int_equal(parse(PARAMS_POST, bad_query[i], NULL, &p), -LOCKD_EINVAL);
        assert_non_null(strstr(err, "Invalid value for \"ttl\""));
    }
    const char *bad_body[] = {"{\"ttl\":-1}",   "{\"ttl\":1.5}", "{\"ttl\":1e3}",
                              "{\"ttl\":true}", "{\"ttl\":{}}",  "{\"wait\":\"soon\"}"};
    for (size_t i = 0; i < sizeof bad_body / sizeof bad_body[0]; i++) {
        assert_int_equal(parse(PARAMS_POST, NULL, bad_body[i], &p), -LOCKD_EINVAL);
        assert_non_null(strstr(err, "Invalid value for"));
    }
}

static void test_owner_uses_names_wording(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "owner=a+b", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Owner contains non-printable/non-ascii byte 32 at offset 1");
    assert_int_equal(parse(PARAMS_POST, "owner=", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Owner is empty");
    char q[300] = "owner=";
    memset(q + 6, 'x', 129);
    q[6 + 129] = '\0';
    assert_int_equal(parse(PARAMS_POST, q, NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Owner is too long (129 bytes > max of 128)");
    assert_int_equal(parse(PARAMS_POST, NULL, "{\"owner\":5}", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Invalid value for \"owner\": expected a string");
    /* null: anonymous, as if not given */
    assert_int_equal(parse(PARAMS_POST, NULL, "{\"owner\":null}", &p), 0);
    assert_int_equal(p.owner_len, 0);
    assert_int_equal(p.given, 0);
}

static void test_delete_token_and_force(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(
        parse(PARAMS_DELETE, "owner=o&token=18446744073709551615&force=true", NULL, &p), 0);
    assert_int_equal(p.token, UINT64_MAX);
    assert_true(p.force);
    assert_int_equal(parse(PARAMS_DELETE, NULL, "{\"token\":42,\"force\":false}", &p), 0);
    assert_int_equal(p.token, 42);
    assert_false(p.force);
    assert_int_equal(parse(PARAMS_DELETE, NULL, "{\"token\":\"7\",\"force\":\"true\"}", &p), 0);
    assert_int_equal(p.token, 7);
    assert_true(p.force);
    /* a bare boolean key means true */
    assert_int_equal(parse(PARAMS_DELETE, "force", NULL, &p), 0);
    assert_true(p.force);

    const char *bad[] = {"token=0", "token=-1", "token=18446744073709551616", "token=1x", "token="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(PARAMS_DELETE, bad[i], NULL, &p), -LOCKD_EINVAL);
        assert_string_equal(err, "Invalid value for \"token\": expected a positive integer");
    }
    assert_int_equal(parse(PARAMS_DELETE, "force=yes", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Invalid value for \"force\": expected true or false");
    assert_int_equal(parse(PARAMS_DELETE, NULL, "{\"force\":1}", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Invalid value for \"force\": expected true or false");
}

static void test_get_consistent(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_GET, "consistent=true", NULL, &p), 0);
    assert_true(p.consistent);
    assert_int_equal(parse(PARAMS_GET, "consistent=false", NULL, &p), 0);
    assert_false(p.consistent);
    assert_int_equal(parse(PARAMS_GET, NULL, "{\"consistent\":true}", &p), 0);
    assert_true(p.consistent);
    assert_int_equal(parse(PARAMS_GET, "consistent=TRUE", NULL, &p), -LOCKD_EINVAL);
}

static void test_invalid_json_body(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, NULL, "{\"owner\":", &p), -LOCKD_EINVAL);
    assert_memory_equal(err, "Invalid JSON body: ", 19);
    assert_int_equal(parse(PARAMS_POST, NULL, "{\"a\":1,\"a\":2}", &p), -LOCKD_EINVAL);
    assert_memory_equal(err, "Invalid JSON body: ", 19);
    assert_int_equal(parse(PARAMS_POST, NULL, "[1]", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Request body must be a JSON object");
    assert_int_equal(parse(PARAMS_POST, NULL, "owner=x", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Request body must be a JSON object");
}

static void test_form_body_when_content_type_says_so(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse_form(PARAMS_POST, NULL, "owner=x&ttl=1s", &p), 0);
    assert_string_equal(p.owner, "x");
    assert_int_equal(p.ttl_ms, 1000);
    /* curl -d '{...}' sends JSON labelled as a form: JSON wins */
    assert_int_equal(parse_form(PARAMS_POST, NULL, "{\"owner\":\"y\"}", &p), 0);
    assert_string_equal(p.owner, "y");
    assert_int_equal(parse_form(PARAMS_POST, "owner=a", "owner=b", &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Field \"owner\" given in both query string and body");
}

static void test_body_over_limit_is_413(void **state)
{
    (void)state;
    struct params p;
    size_t n = LOCKD_BODY_MAX + 1;
    char *body = malloc(n);
    memset(body, ' ', n);
    assert_int_equal(
        params_parse(PARAMS_POST, NULL, 0, body, n, false, &limits, &p, err, sizeof err),
        -LOCKD_ETOOBIG);
    assert_string_equal(err, "Request body too large (max 4096 bytes)");
    /* exactly the limit is fine */
    assert_int_equal(
        params_parse(PARAMS_POST, NULL, 0, body, n - 1, false, &limits, &p, err, sizeof err), 0);
    free(body);
}

static void test_malformed_percent_encoding(void **state)
{
    (void)state;
    struct params p;
    assert_int_equal(parse(PARAMS_POST, "owner=%zz", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Malformed percent-encoding in query string");
    assert_int_equal(parse(PARAMS_POST, "own%4", NULL, &p), -LOCKD_EINVAL);
    assert_string_equal(err, "Malformed percent-encoding in query string");
}

/* ---- fuzz ---------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const seeds[] = {
    "owner=a&ttl=30s&wait=1s",
    "token=5&force=true&owner=x%40y",
    "consistent=true",
    "{\"owner\":\"a\",\"ttl\":30,\"wait\":\"1s\"}",
    "{\"token\":\"5\",\"force\":true,\"owner\":\"\\u0061\"}",
    "{\"consistent\":false,\"x\":{\"y\":{\"z\":{}}}}",
};

static const char alphabet[] =
    "{}[]\":,\\u0123456789abcdefxyz=&%+ tfnrule-.e\x00\x7f\xc3\xa9\xff\n";

static void check_result(int rc)
{
    assert_true(rc == 0 || rc == -LOCKD_EINVAL || rc == -LOCKD_ETOOBIG);
    assert_true(memchr(err, '\0', sizeof err) != NULL);
    if (rc != 0)
        assert_true(err[0] != '\0');
}

static void test_fuzz_never_crashes(void **state)
{
    (void)state;
    char buf[LOCKD_BODY_MAX + 64];
    struct params p;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len;
        if (iter % 2) {
            /* mutate a seed */
            const char *s = seeds[rng() % (sizeof seeds / sizeof seeds[0])];
            len = strlen(s);
            memcpy(buf, s, len);
            int muts = 1 + (int)(rng() % 4);
            for (int k = 0; k < muts; k++) {
                size_t at = len ? rng() % len : 0;
                switch (rng() % 3) {
                case 0: /* replace */
                    if (len)
                        buf[at] = alphabet[rng() % (sizeof alphabet - 1)];
                    break;
                case 1: /* truncate */
                    len = at;
                    break;
                default: /* insert */
                    if (len < sizeof buf - 1) {
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = alphabet[rng() % (sizeof alphabet - 1)];
                        len++;
                    }
                }
            }
        } else {
            len = rng() % 96;
            for (size_t i = 0; i < len; i++)
                buf[i] =
                    (iter % 4) ? alphabet[rng() % (sizeof alphabet - 1)] : (char)(rng() & 0xff);
        }
        enum params_method m = (enum params_method)(rng() % 3);
        bool form = rng() & 1;
        memset(err, 'X', sizeof err);
        err[sizeof err - 1] = '\0';
        /* the same bytes as query and as body */
        check_result(params_parse(m, buf, len, NULL, 0, form, &limits, &p, err, sizeof err));
        check_result(params_parse(m, NULL, 0, buf, len, form, &limits, &p, err, sizeof err));
        if (p.owner_len)
            assert_int_equal(strlen(p.owner), p.owner_len);
    }
    /* a huge query value and a maximal body full of members */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "owner=", 6);
    check_result(
        params_parse(PARAMS_POST, buf, sizeof buf, NULL, 0, false, &limits, &p, err, sizeof err));
    size_t off = 0;
    buf[off++] = '{';
    for (int i = 0; off + 16 < LOCKD_BODY_MAX; i++)
        off += (size_t)snprintf(buf + off, 16, "\"k%d\":1,", i);
    buf[off - 1] = '}';
    check_result(params_parse(PARAMS_POST, NULL, 0, buf, off, false, &limits, &p, err, sizeof err));
    /* err_cap 0 and a tiny err are honoured */
    assert_int_equal(params_parse(PARAMS_POST, "x=1", 3, NULL, 0, false, &limits, &p, NULL, 0),
                     -LOCKD_EINVAL);
    char tiny[4];
    assert_int_equal(
        params_parse(PARAMS_POST, "x=1", 3, NULL, 0, false, &limits, &p, tiny, sizeof tiny),
        -LOCKD_EINVAL);
    assert_int_equal(strlen(tiny), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_fields_is_all_defaults),
        cmocka_unit_test(test_post_fields_from_query),
        cmocka_unit_test(test_post_fields_from_json_body),
        cmocka_unit_test(test_query_and_body_combine_per_field),
        cmocka_unit_test(test_field_in_both_places_is_rejected),
        cmocka_unit_test(test_field_twice_in_query_is_rejected),
        cmocka_unit_test(test_unknown_and_wrong_method_fields_are_unknown),
        cmocka_unit_test(test_ttl_bounds_message),
        cmocka_unit_test(test_wait_bounds_message),
        cmocka_unit_test(test_bad_durations_are_rejected),
        cmocka_unit_test(test_owner_uses_names_wording),
        cmocka_unit_test(test_delete_token_and_force),
        cmocka_unit_test(test_get_consistent),
        cmocka_unit_test(test_invalid_json_body),
        cmocka_unit_test(test_form_body_when_content_type_says_so),
        cmocka_unit_test(test_body_over_limit_is_413),
        cmocka_unit_test(test_malformed_percent_encoding),
        cmocka_unit_test(test_fuzz_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
