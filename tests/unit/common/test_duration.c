/* tests/unit/common/test_duration.c: the duration syntax of API.md
 * ("250ms", "30s", "5m", "1h", bare seconds), lowercase units only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/duration.h"
#include "common/errors.h"

static int parse(const char *s, uint64_t *out)
{
    /* an exactly-sized heap copy, so ASan catches any read past len */
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    int r = duration_parse_ms(copy, n, out);
    free(copy);
    return r;
}

static void test_accepts_every_unit(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        {"250ms", 250},
        {"30s", 30000},
        {"5m", 300000},
        {"1h", 3600000},
        {"10", 10000},
        {"0", 0},
        {"0ms", 0},
        {"100ms", 100},
        {"24h", 86400000},
        {"007s", 7000},
        {"1ms", 1},
        {"86400", 86400000},
        {"000000000000000000000000000001ms", 1}, /* leading zeros are not significant */
        {"18446744073709551615ms", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t ms = 12345;
        assert_int_equal(parse(ok[i].s, &ms), 0);
        assert_true(ms == ok[i].ms);
    }
}

static void test_rejects_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",    "ms",   "s",   "h",     "1.5s",  "-1",  "+1",  " 1s",  "1s ",  "1 s",
        "1d",  "1S",   "1H",  "1M",    "1MS",   "1Ms", "1mS", "1sm",  "1msx", "1us",
        "1ns", "0x10", "1e3", "1,000", "1_000", "s1",  "1hh", "1m1s", "\t1",  "1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 777;
        assert_int_equal(parse(bad[i], &ms), -LOCKD_EINVAL);
        assert_true(ms == 777); /* untouched on error */
    }
}

static void test_rejects_overflow(void **state)
{
    (void)state;
    uint64_t ms = 0;
    assert_int_equal(parse("99999999999999999999h", &ms), -LOCKD_EINVAL);
    assert_int_equal(parse("18446744073709551616ms", &ms), -LOCKD_EINVAL); /* 2^64 */
    assert_int_equal(parse("18446744073709551615", &ms), -LOCKD_EINVAL);   /* *1000 */
    assert_int_equal(parse("18446744073709552s", &ms), -LOCKD_EINVAL);
    /* UINT64_MAX / 3600000 = 5124095576030.43 */
    assert_int_equal(parse("5124095576031h", &ms), -LOCKD_EINVAL);
    assert_int_equal(parse("5124095576030h", &ms), 0);
    assert_true(ms == 5124095576030ull * 3600000ull);
    /* more than 24 significant digits is rejected before any arithmetic */
    assert_int_equal(parse("1234567890123456789012345ms", &ms), -LOCKD_EINVAL);
}

static void test_len_is_honoured_not_nul(void **state)
{
    (void)state;
    uint64_t ms = 0;
    assert_int_equal(duration_parse_ms("30sXYZ", 3, &ms), 0);
    assert_true(ms == 30000);
    assert_int_equal(duration_parse_ms("250ms", 4, &ms), 0); /* "250m" */
    assert_true(ms == 250ull * 60000);
    assert_int_equal(duration_parse_ms("250ms", 2, &ms), 0);
    assert_true(ms == 25000);
    assert_int_equal(duration_parse_ms("1\0s", 3, &ms), -LOCKD_EINVAL);
    assert_int_equal(duration_parse_ms(NULL, 0, &ms), -LOCKD_EINVAL);
    assert_int_equal(duration_parse_ms("1s", 2, NULL), -LOCKD_EINVAL);
}

static void test_format_shortest_exact(void **state)
{
    (void)state;
    static const struct {
        uint64_t ms;
        const char *s;
    } cases[] = {
        {0, "0s"},          {1, "1ms"},
        {250, "250ms"},     {1000, "1s"},
        {1500, "1500ms"},   {30000, "30s"},
        {90000, "90s"},     {60000, "1m"},
        {300000, "5m"},     {3600000, "1h"},
        {5400000, "90m"},   {86400000, "24h"},
        {3601000, "3601s"}, {UINT64_MAX, "18446744073709551615ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        int n = duration_format_ms(cases[i].ms, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(cases[i].s));
        assert_string_equal(buf, cases[i].s);
    }
}

static void test_format_truncates_like_snprintf(void **state)
{
    (void)state;
    char buf[3];
    assert_int_equal(duration_format_ms(250, buf, sizeof buf), 5);
    assert_string_equal(buf, "25");
    assert_int_equal(duration_format_ms(3600000, NULL, 0), 2);
}

static void test_format_parse_round_trip(void **state)
{
    (void)state;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 100000; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        uint64_t ms;
        switch (i % 5) {
        case 0:
            ms = seed % 1000;
            break;
        case 1:
            ms = (seed % 100000) * 1000;
            break;
        case 2:
            ms = (seed % 10000) * 60000;
            break;
        case 3:
            ms = (seed % 1000) * 3600000;
            break;
        default:
            ms = seed >> (seed % 64);
            break;
        }
        char buf[32];
        int n = duration_format_ms(ms, buf, sizeof buf);
        assert_true(n > 0 && n < (int)sizeof buf);
        uint64_t back = ~ms;
        assert_int_equal(duration_parse_ms(buf, (size_t)n, &back), 0);
        assert_true(back == ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_every_unit),
        cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_rejects_overflow),
        cmocka_unit_test(test_len_is_honoured_not_nul),
        cmocka_unit_test(test_format_shortest_exact),
        cmocka_unit_test(test_format_truncates_like_snprintf),
        cmocka_unit_test(test_format_parse_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
