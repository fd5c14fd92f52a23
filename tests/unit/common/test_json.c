/* tests/unit/common/test_json.c: the strict JSON reader, string decoder and
 * escaper. Every input is copied into an exactly-sized heap buffer so that
 * ASan reports any read past text+len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/json.h"

#define MAXM 8

struct parsed {
    char *buf; /* the exact-size copy the members point into */
    int r;
    struct json_member m[MAXM];
    char err[160];
};

static void parse_n(struct parsed *p, const char *s, size_t len, size_t max)
{
    p->buf = malloc(len ? len : 1);
    assert_non_null(p->buf);
    memcpy(p->buf, s, len);
    memset(p->err, 'Z', sizeof p->err);
    p->r = json_parse_object(p->buf, len, p->m, max, p->err, sizeof p->err);
}

static void parse(struct parsed *p, const char *s)
{
    parse_n(p, s, strlen(s), MAXM);
}

static void done(struct parsed *p)
{
    free(p->buf);
}

static int member_is(const struct json_member *m, const char *key, enum json_type t,
                     const char *value)
{
    return m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0 && m->type == t &&
           m->value_len == strlen(value) && memcmp(m->value, value, m->value_len) == 0;
}

/* asserts a syntax error whose message is exactly want */
static void expect_error(const char *text, const char *want)
{
    struct parsed p;
    parse(&p, text);
    if (p.r != -LOCKD_EINVAL || strcmp(p.err, want) != 0)
        fail_msg("input %s: got %d \"%s\", want \"%s\"", text, p.r, p.err, want);
    done(&p);
}

static void test_flat_request_body(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, " {\"owner\" : \"web-1\", \"ttl\":\"30s\",\"wait\":1.5e3,\"force\":true,"
              "\"x\":false,\"y\":null, \"n\":-0} \r\n\t");
    assert_int_equal(p.r, 7);
    assert_string_equal(p.err, "");
    assert_true(member_is(&p.m[0], "owner", JSON_STRING, "web-1"));
    assert_true(member_is(&p.m[1], "ttl", JSON_STRING, "30s"));
    assert_true(member_is(&p.m[2], "wait", JSON_NUMBER, "1.5e3"));
    assert_true(member_is(&p.m[3], "force", JSON_TRUE, "true"));
    assert_true(member_is(&p.m[4], "x", JSON_FALSE, "false"));
    assert_true(member_is(&p.m[5], "y", JSON_NULL, "null"));
    assert_true(member_is(&p.m[6], "n", JSON_NUMBER, "-0"));
    assert_int_equal(p.m[0].has_escapes, 0);
    done(&p);

    parse(&p, "{}");
    assert_int_equal(p.r, 0);
    done(&p);
    parse(&p, " { } ");
    assert_int_equal(p.r, 0);
    done(&p);
}

static void test_numbers_follow_rfc8259(void **state)
{
    (void)state;
    static const char *const ok[] = {"0",
                                     "-0",
                                     "1",
                                     "123",
                                     "-12",
                                     "0.5",
                                     "1e5",
                                     "1E+5",
                                     "1e-5",
                                     "-0.0e0",
                                     "12345678901234567890123"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"n\":%s}", ok[i]);
        struct parsed p;
        parse(&p, text);
        assert_int_equal(p.r, 1);
        assert_true(member_is(&p.m[0], "n", JSON_NUMBER, ok[i]));
        done(&p);
    }
    expect_error("{\"n\":01}", "invalid JSON at offset 6: leading zeros are not allowed");
    expect_error("{\"n\":-}", "invalid JSON at offset 6: invalid number");
    expect_error("{\"n\":+1}", "invalid JSON at offset 5: expected a value");
    expect_error("{\"n\":.5}", "invalid JSON at offset 5: expected a value");
    expect_error("{\"n\":1.}", "invalid JSON at offset 7: invalid number");
    expect_error("{\"n\":1e}", "invalid JSON at offset 7: invalid number");
    expect_error("{\"n\":1e+}", "invalid JSON at offset 8: invalid number");
    expect_error("{\"n\":0x1}", "invalid JSON at offset 6: expected ',' or '}'");
    expect_error("{\"n\":NaN}", "invalid JSON at offset 5: expected a value");
    expect_error("{\"n\":1", "invalid JSON at offset 6: unexpected end of input");
    expect_error("{\"n\":1.", "invalid JSON at offset 7: unexpected end of input");
    expect_error("{\"n\":-", "invalid JSON at offset 6: unexpected end of input");
}

static void test_literals_exact(void **state)
{
    (void)state;
    expect_error("{\"a\":tru}", "invalid JSON at offset 5: expected a value");
    expect_error("{\"a\":True}", "invalid JSON at offset 5: expected a value");
    expect_error("{\"a\":nul", "invalid JSON at offset 8: unexpected end of input");
    expect_error("{\"a\":truex}", "invalid JSON at offset 9: expected ',' or '}'");
    expect_error("{\"a\":undefined}", "invalid JSON at offset 5: expected a value");
    expect_error("{\"a\":'x'}", "invalid JSON at offset 5: expected a value");
}

static void test_nested_objects_returned_raw_to_depth_4(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, "{\"1\":\"a:2080\",\"2\":{\"http\":\"b:1\", \"raft\" : \"b:2\"}}");
    assert_int_equal(p.r, 2);
    assert_true(member_is(&p.m[1], "2", JSON_OBJECT, "{\"http\":\"b:1\", \"raft\" : \"b:2\"}"));
    struct json_member inner[4];
    char err[100];
    assert_int_equal(json_parse_object(p.m[1].value, p.m[1].value_len, inner, 4, err, sizeof err),
                     2);
    assert_true(member_is(&inner[1], "raft", JSON_STRING, "b:2"));
    done(&p);

    parse(&p, "{\"a\":{\"b\":{\"c\":{\"d\":1}}}}");
    assert_int_equal(p.r, 1);
    assert_int_equal(p.m[0].type, JSON_OBJECT);
    done(&p);
    expect_error("{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}",
                 "invalid JSON at offset 20: objects nested deeper than 4 levels");
    /* a deep attack body fails fast without deep recursion */
    char deep[4096];
    size_t n = 0;
    while (n + 6 < sizeof deep) {
        memcpy(deep + n, "{\"a\":", 5);
        n += 5;
    }
    deep[n] = '\0';
    expect_error(deep, "invalid JSON at offset 20: objects nested deeper than 4 levels");
    /* nested syntax errors are found by the outer parse */
    expect_error("{\"a\":{\"b\" 1}}", "invalid JSON at offset 10: expected ':'");
    expect_error("{\"a\":{\"b\":[1]}}", "invalid JSON at offset 10: arrays are not supported");
}

static void test_arrays_are_not_supported(void **state)
{
    (void)state;
    expect_error("{\"owners\":[\"a\",\"b\"]}",
                 "invalid JSON at offset 10: arrays are not supported");
    expect_error("[]", "invalid JSON at offset 0: arrays are not supported");
    expect_error("  [{}]", "invalid JSON at offset 2: arrays are not supported");
}

static void test_duplicate_keys_rejected(void **state)
{
    (void)state;
    expect_error("{\"owner\":\"a\",\"owner\":\"b\"}",
                 "invalid JSON at offset 13: duplicate key \"owner\"");
    /* compared after decoding escapes: \u006f is 'o' */
    expect_error("{\"owner\":\"a\",\"\\u006fwner\":\"b\"}",
                 "invalid JSON at offset 13: duplicate key \"\\u006fwner\"");
    expect_error("{\"\\u00e9\":1,\"\xc3\xa9\":2}",
                 "invalid JSON at offset 12: duplicate key \"\xc3\xa9\"");
    /* a prefix is not a duplicate, nor is a different value type */
    struct parsed p;
    parse(&p, "{\"own\":1,\"owner\":2,\"owner2\":3,\"\\u006fwne\":4}");
    assert_int_equal(p.r, 4);
    assert_int_equal(p.m[3].has_escapes, 1);
    done(&p);
    /* duplicate keys inside a nested object are the re-parse's business */
    parse(&p, "{\"a\":{\"k\":1,\"k\":2}}");
    assert_int_equal(p.r, 1);
    struct json_member inner[2];
    char err[100];
    assert_int_equal(json_parse_object(p.m[0].value, p.m[0].value_len, inner, 2, err, sizeof err),
                     -LOCKD_EINVAL);
    assert_string_equal(err, "invalid JSON at offset 7: duplicate key \"k\"");
    done(&p);
}

static void test_trailing_garbage_and_structure_errors(void **state)
{
    (void)state;
    expect_error("{}x", "invalid JSON at offset 2: unexpected data after the object");
    expect_error("{} {}", "invalid JSON at offset 3: unexpected data after the object");
    expect_error("{\"a\":1,}", "invalid JSON at offset 7: expected '\"' to start a key");
    expect_error("{,}", "invalid JSON at offset 1: expected '\"' to start a key");
    expect_error("{\"a\" 1}", "invalid JSON at offset 5: expected ':'");
    expect_error("{\"a\":1 \"b\":2}", "invalid JSON at offset 7: expected ',' or '}'");
    expect_error("{a:1}", "invalid JSON at offset 1: expected '\"' to start a key");
    expect_error("{\"a\":}", "invalid JSON at offset 5: expected a value");
    expect_error("\"a\"", "invalid JSON at offset 0: expected '{'");
    expect_error("null", "invalid JSON at offset 0: expected '{'");
    expect_error("\xef\xbb\xbf{}", "invalid JSON at offset 0: expected '{'"); /* no BOM */
    expect_error("{}\f", "invalid JSON at offset 2: unexpected data after the object");
    /* a NUL after the object is data, not an end marker */
    struct parsed p;
    parse_n(&p, "{}\0", 3, MAXM);
    assert_int_equal(p.r, -LOCKD_EINVAL);
    assert_string_equal(p.err, "invalid JSON at offset 2: unexpected data after the object");
    done(&p);
}

static void test_empty_and_truncated_input(void **state)
{
    (void)state;
    expect_error("", "invalid JSON at offset 0: unexpected end of input, expected '{'");
    expect_error(" \n ", "invalid JSON at offset 3: unexpected end of input, expected '{'");
    char err[100];
    assert_int_equal(json_parse_object(NULL, 0, NULL, 0, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "invalid JSON at offset 0: unexpected end of input, expected '{'");

    /* every proper prefix of a valid body is rejected, and never read past */
    const char *full = "{\"owner\":\"a\\u00e9\\ud83d\\ude00b\",\"n\":-1.5e+3,\"o\":{\"t\":true},"
                       "\"f\":false,\"z\":null}";
    size_t len = strlen(full);
    struct parsed p;
    parse_n(&p, full, len, MAXM);
    assert_int_equal(p.r, 5);
    done(&p);
    for (size_t i = 0; i < len; i++) {
        parse_n(&p, full, i, MAXM);
        assert_int_equal(p.r, -LOCKD_EINVAL);
        assert_non_null(strstr(p.err, "invalid JSON at offset "));
        done(&p);
    }
}

static void test_string_content_rules(void **state)
{
    (void)state;
    expect_error("{\"a\":\"x\ny\"}", "invalid JSON at offset 7: control character in string");
    expect_error("{\"a\":\"\t\"}", "invalid JSON at offset 6: control character in string");
    expect_error("{\"a\x01\":1}", "invalid JSON at offset 3: control character in string");
    expect_error("{\"a\":\"\\x41\"}", "invalid JSON at offset 6: invalid escape in string");
    expect_error("{\"a\":\"\\'\"}", "invalid JSON at offset 6: invalid escape in string");
    expect_error("{\"a\":\"\\u12g4\"}", "invalid JSON at offset 6: invalid \\u escape in string");
    expect_error("{\"a\":\"\\U0041\"}", "invalid JSON at offset 6: invalid escape in string");
    expect_error("{\"a\":\"\\ud800\"}",
                 "invalid JSON at offset 6: unpaired surrogate in \\u escape");
    expect_error("{\"a\":\"\\udc00\\ud800\"}",
                 "invalid JSON at offset 6: unpaired surrogate in \\u escape");
    expect_error("{\"a\":\"\\ud800\\u0041\"}",
                 "invalid JSON at offset 6: unpaired surrogate in \\u escape");
    expect_error("{\"a\":\"\xff\"}", "invalid JSON at offset 6: invalid UTF-8 in string");
    expect_error("{\"a\":\"\xc0\xaf\"}", "invalid JSON at offset 6: invalid UTF-8 in string");
    expect_error("{\"a\":\"\xed\xa0\x80\"}", "invalid JSON at offset 6: invalid UTF-8 in string");
    expect_error("{\"a\":\"\xf4\x90\x80\x80\"}",
                 "invalid JSON at offset 6: invalid UTF-8 in string");
    expect_error("{\"a\":\"abc", "invalid JSON at offset 9: unterminated string");
    expect_error("{\"a\":\"abc\\", "invalid JSON at offset 10: unexpected end of input");
    expect_error("{\"a\":\"\\u00", "invalid JSON at offset 10: unexpected end of input");
    expect_error("{\"a\":\"\xe2\x82", "invalid JSON at offset 8: unexpected end of input");

    struct parsed p;
    parse(&p, "{\"a\":\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000 \xe2\x82\xac \x7f\"}");
    assert_int_equal(p.r, 1);
    assert_int_equal(p.m[0].type, JSON_STRING);
    assert_int_equal(p.m[0].has_escapes, 1);
    done(&p);
}

static void test_too_many_members_is_etoobig_after_syntax(void **state)
{
    (void)state;
    struct parsed p;
    parse_n(&p, "{\"a\":1,\"b\":2,\"c\":3}", 19, 2);
    assert_int_equal(p.r, -LOCKD_ETOOBIG);
    assert_string_equal(p.err, "too many members (3 > max of 2)");
    done(&p);
    /* a syntax error anywhere still wins */
    parse_n(&p, "{\"a\":1,\"b\":2,\"c\":3", 18, 2);
    assert_int_equal(p.r, -LOCKD_EINVAL);
    done(&p);
    parse_n(&p, "{\"a\":1}", 7, 0);
    assert_int_equal(p.r, -LOCKD_ETOOBIG);
    done(&p);
    parse_n(&p, "{}", 2, 0);
    assert_int_equal(p.r, 0);
    done(&p);
    /* err is optional */
    assert_int_equal(json_parse_object("{x", 2, NULL, 0, NULL, 0), -LOCKD_EINVAL);
}

static void test_error_message_truncates_safely(void **state)
{
    (void)state;
    char err[12];
    struct json_member m[1];
    assert_int_equal(json_parse_object("{\"a\" 1}", 7, m, 1, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "invalid JSO");
    char tiny[1] = {'Q'};
    assert_int_equal(json_parse_object("{\"a\" 1}", 7, m, 1, tiny, 1), -LOCKD_EINVAL);
    assert_int_equal(tiny[0], '\0');
}

/* ---- json_decode_string ---- */

static int decode(const char *raw, char *dst, size_t cap)
{
    size_t len = strlen(raw);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, raw, len);
    int r = json_decode_string(copy, len, dst, cap);
    free(copy);
    return r;
}

static void test_decode_escapes_and_surrogate_pairs(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti", out, sizeof out), 17);
    assert_memory_equal(out, "a\"b\\c/d\be\ff\ng\rh\ti", 17);
    assert_int_equal(decode("\\u0041\\u00e9\\u20AC", out, sizeof out), 6);
    assert_memory_equal(out, "A\xc3\xa9\xe2\x82\xac", 6);
    assert_int_equal(decode("\\ud83d\\ude00", out, sizeof out), 4); /* U+1F600 */
    assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(decode("\\uDBFF\\uDFFF", out, sizeof out), 4); /* U+10FFFF */
    assert_memory_equal(out, "\xf4\x8f\xbf\xbf", 4);
    assert_int_equal(decode("\\u0000", out, sizeof out), 1);
    assert_int_equal(out[0], 0);
    assert_int_equal(decode("\xc3\xa9", out, sizeof out), 2);
    assert_int_equal(decode("", out, sizeof out), 0);
    assert_int_equal(json_decode_string(NULL, 0, NULL, 0), 0);
}

static void test_decode_rejects_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\\ud800",
        "\\udc00",
        "\\ud800x",
        "\\ud800\\u0041",
        "\\ud800\\ud800",
        "\\udfff\\ud800",
        "\\ud83d\\",
        "\\u12",
        "\\u12zz",
        "\\x",
        "\\",
        "a\"b",
        "\n",
        "\x1f",
        "\xff",
        "\xc3",
        "\xe0\x80\x80",
        "\xf5\x80\x80\x80",
    };
    char out[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (decode(bad[i], out, sizeof out) != -LOCKD_EINVAL)
            fail_msg("decoded invalid input #%zu", i);
}

static void test_decode_dst_too_small_and_in_place(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(decode("abcd", out, 4), 4);
    assert_int_equal(decode("abcde", out, 4), -LOCKD_ETOOBIG);
    assert_int_equal(decode("abc\\u00e9", out, 4), -LOCKD_ETOOBIG);
    assert_int_equal(decode("\\ud83d\\ude00", out, 3), -LOCKD_ETOOBIG);
    assert_int_equal(decode("abcdef\\q", out, 4), -LOCKD_EINVAL); /* invalid wins */

    char buf[] = "x\\u00e9\\ud83d\\ude00\\n\\\"y";
    int n = json_decode_string(buf, strlen(buf), buf, sizeof buf);
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "x\xc3\xa9\xf0\x9f\x98\x80\n\"y", 10);
}

/* ---- json_escape ---- */

static void test_escape_quotes_backslash_control(void **state)
{
    (void)state;
    char out[64];
    const char in[] = "a\"b\\c\n\x01\x1f\x7f\xc3\xa9/";
    size_t n = json_escape(in, sizeof in - 1, out, sizeof out);
    const char *want = "a\\\"b\\\\c\\u000a\\u0001\\u001f\x7f\xc3\xa9/";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    assert_int_equal(json_escape("", 0, NULL, 0), 0);
    assert_int_equal(json_escape("\0", 1, out, sizeof out), 6);
    assert_memory_equal(out, "\\u0000", 6);
}

static void test_escape_snprintf_semantics_whole_escapes(void **state)
{
    (void)state;
    char out[8];
    memset(out, '#', sizeof out);
    size_t n = json_escape("ab\ncd", 5, out, 5);
    assert_int_equal(n, 10);
    /* "\u000a" does not fit after "ab": nothing after it is written either */
    assert_memory_equal(out, "ab###", 5);
    assert_int_equal(json_escape("abc", 3, NULL, 0), 3);
    memset(out, '#', sizeof out);
    assert_int_equal(json_escape("abc", 3, out, 2), 3);
    assert_memory_equal(out, "ab#", 3);
}

static void test_escape_round_trips_through_decode(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int iter = 0; iter < 2000; iter++) {
        char in[64];
        size_t len = (size_t)(iter % 64);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)((seed >> 16) & 0x7f); /* ASCII incl. controls */
        }
        char esc[64 * 6];
        size_t n = json_escape(in, len, esc, sizeof esc);
        assert_true(n <= sizeof esc);
        char back[64];
        assert_int_equal(json_decode_string(esc, n, back, sizeof back), (int)len);
        assert_memory_equal(back, in, len);
    }
}

/* ---- robustness ---- */

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static void test_fuzz_100k_inputs_never_crash(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "{\"owner\":\"web-1\",\"ttl\":\"30s\",\"wait\":0,\"force\":true}",
        "{\"1\":\"a:2080\",\"2\":{\"http\":\"b:1\",\"raft\":\"b:2\"}}",
        "{\"a\":\"\\ud83d\\ude00\\u00e9\\n\",\"b\":-1.5e-3,\"c\":null,\"d\":{\"e\":{\"f\":{}}}}",
        "{ \"k\" : \"\xc3\xa9\xe2\x82\xac\" , \"x\" : false }",
    };
    static const char alphabet[] =
        "{}[]\":,\\/ubfnrt0123456789-+.eE aelsn\x01\x1f\x7f\x80\xc3\xed\xf4";
    struct json_member m[4];
    char err[64];
    int accepted = 0;
    for (int iter = 0; iter < 100000; iter++) {
        char text[256];
        size_t len;
        if (iter % 4 == 0) {
            len = rnd() % 64;
            for (size_t i = 0; i < len; i++)
                text[i] = (rnd() & 1) ? (char)rnd() : alphabet[rnd() % (sizeof alphabet - 1)];
        } else {
            const char *s = seeds[rnd() % (sizeof seeds / sizeof seeds[0])];
            len = strlen(s);
            memcpy(text, s, len);
            int edits = 1 + (int)(rnd() % 4);
            for (int e = 0; e < edits && len > 0; e++) {
                size_t at = rnd() % len;
                char c = (rnd() & 3) ? alphabet[rnd() % (sizeof alphabet - 1)] : (char)rnd();
                switch (rnd() % 4) {
                case 0: /* replace */
                    text[at] = c;
                    break;
                case 1: /* delete */
                    memmove(text + at, text + at + 1, len - at - 1);
                    len--;
                    break;
                case 2: /* insert */
                    if (len < sizeof text) {
                        memmove(text + at + 1, text + at, len - at);
                        text[at] = c;
                        len++;
                    }
                    break;
                default: /* truncate */
                    len = at;
                    break;
                }
            }
        }
        char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, text, len);
        size_t max = rnd() % 5;
        int r = json_parse_object(buf, len, max ? m : NULL, max, err, sizeof err);
        assert_true(r == -LOCKD_EINVAL || r == -LOCKD_ETOOBIG || (r >= 0 && (size_t)r <= max));
        assert_true(strlen(err) < sizeof err);
        if (r < 0)
            assert_true(err[0] != '\0');
        /* whatever the reader accepts, the decoder can decode */
        for (int i = 0; i < r; i++) {
            char out[256];
            assert_true(json_decode_string(m[i].key, m[i].key_len, out, sizeof out) >= 0);
            if (m[i].type == JSON_STRING)
                assert_true(json_decode_string(m[i].value, m[i].value_len, out, sizeof out) >= 0);
            if (m[i].type == JSON_OBJECT) {
                struct json_member inner[8];
                int ri = json_parse_object(m[i].value, m[i].value_len, inner, 8, NULL, 0);
                assert_true(ri >= 0 || ri == -LOCKD_EINVAL || ri == -LOCKD_ETOOBIG);
            }
        }
        if (r > 0)
            accepted++;
        /* the decoder on raw garbage: a length or a negative code */
        char out[256];
        int d = json_decode_string(buf, len, out, rnd() % 2 ? sizeof out : len / 2);
        assert_true(d >= 0 || d == -LOCKD_EINVAL || d == -LOCKD_ETOOBIG);
        free(buf);
    }
    /* the mutator must also produce valid bodies, or the test proves little */
    assert_true(accepted > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_request_body),
        cmocka_unit_test(test_numbers_follow_rfc8259),
        cmocka_unit_test(test_literals_exact),
        cmocka_unit_test(test_nested_objects_returned_raw_to_depth_4),
        cmocka_unit_test(test_arrays_are_not_supported),
        cmocka_unit_test(test_duplicate_keys_rejected),
        cmocka_unit_test(test_trailing_garbage_and_structure_errors),
        cmocka_unit_test(test_empty_and_truncated_input),
        cmocka_unit_test(test_string_content_rules),
        cmocka_unit_test(test_too_many_members_is_etoobig_after_syntax),
        cmocka_unit_test(test_error_message_truncates_safely),
        cmocka_unit_test(test_decode_escapes_and_surrogate_pairs),
        cmocka_unit_test(test_decode_rejects_invalid),
        cmocka_unit_test(test_decode_dst_too_small_and_in_place),
        cmocka_unit_test(test_escape_quotes_backslash_control),
        cmocka_unit_test(test_escape_snprintf_semantics_whole_escapes),
        cmocka_unit_test(test_escape_round_trips_through_decode),
        cmocka_unit_test(test_fuzz_100k_inputs_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
