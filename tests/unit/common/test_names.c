/* tests/unit/common/test_names.c: the lock-name and owner rules of API.md,
 * byte for byte, and percent-decoding of path and query parts. */
#include <limits.h>
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
#include "common/names.h"

static int lock_byte_allowed(unsigned c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '$' ||
           c == '-' || c == '.' || c == '_';
}

static void test_lock_name_every_byte_at_offset_0_and_5(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 256; c++) {
        for (int at = 0; at <= 5; at += 5) {
            char name[8] = "abcdefg";
            name[at] = (char)c;
            char err[128] = "untouched";
            int r = names_check_lock(name, 7, err, sizeof err);
            if (lock_byte_allowed(c)) {
                assert_int_equal(r, 0);
                assert_string_equal(err, "");
            } else {
                char want[128];
                snprintf(want, sizeof want,
                         "Name contains non-printable/non-ascii byte %u at offset %d", c, at);
                assert_int_equal(r, -LOCKD_EINVAL);
                assert_string_equal(err, want);
            }
        }
    }
}

static void test_lock_name_reports_first_bad_byte(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(names_check_lock("a+b c", 5, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name contains non-printable/non-ascii byte 43 at offset 1");
    assert_int_equal(names_check_lock("ab/c", 4, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name contains non-printable/non-ascii byte 47 at offset 2");
    assert_int_equal(names_check_lock("x y", 3, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name contains non-printable/non-ascii byte 32 at offset 1");
    /* ':' and '@' are for owners only */
    assert_int_equal(names_check_lock("a:b", 3, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name contains non-printable/non-ascii byte 58 at offset 1");
    assert_int_equal(names_check_lock("a@b", 3, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name contains non-printable/non-ascii byte 64 at offset 1");
    /* the length argument is honoured, not strlen: an embedded NUL is a byte */
    assert_int_equal(names_check_lock("ab\0c", 4, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name contains non-printable/non-ascii byte 0 at offset 2");
    assert_int_equal(names_check_lock("$-._Az09", 8, err, sizeof err), 0);
}

static void test_lock_name_lengths_0_1_128_129(void **state)
{
    (void)state;
    char buf[300];
    char err[128];
    memset(buf, 'a', sizeof buf);

    assert_int_equal(names_check_lock(buf, 0, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name is empty");
    assert_int_equal(names_check_lock(NULL, 0, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name is empty");
    assert_int_equal(names_check_lock(buf, 1, err, sizeof err), 0);
    assert_int_equal(names_check_lock(buf, LOCKD_NAME_MAX, err, sizeof err), 0);
    assert_int_equal(names_check_lock(buf, LOCKD_NAME_MAX + 1, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name is too long (129 bytes > max of 128)");
    assert_int_equal(names_check_lock(buf, 300, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name is too long (300 bytes > max of 128)");
}

static void test_lock_name_too_long_wins_over_bad_bytes(void **state)
{
    (void)state;
    char buf[129];
    char err[128];
    memset(buf, '+', sizeof buf);
    assert_int_equal(names_check_lock(buf, sizeof buf, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name is too long (129 bytes > max of 128)");
}

static void test_error_message_truncated_and_optional(void **state)
{
    (void)state;
    char err[10];
    memset(err, 'X', sizeof err);
    assert_int_equal(names_check_lock("a b", 3, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name cont");
    assert_int_equal(names_check_lock("a b", 3, NULL, 0), -LOCKD_EINVAL);
    assert_int_equal(names_check_lock("ab", 2, NULL, 0), 0);
    char one = 'X';
    assert_int_equal(names_check_lock("a b", 3, &one, 0), -LOCKD_EINVAL);
    assert_int_equal(one, 'X');
}

static void test_owner_every_byte_allows_colon_and_at(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 256; c++) {
        for (int at = 0; at <= 5; at += 5) {
            char owner[8] = "host123";
            owner[at] = (char)c;
            char err[128];
            int r = names_check_owner(owner, 7, err, sizeof err);
            if (lock_byte_allowed(c) || c == ':' || c == '@') {
                assert_int_equal(r, 0);
            } else {
                char want[128];
                snprintf(want, sizeof want,
                         "Owner contains non-printable/non-ascii byte %u at offset %d", c, at);
                assert_int_equal(r, -LOCKD_EINVAL);
                assert_string_equal(err, want);
            }
        }
    }
}

static void test_owner_lengths_and_messages(void **state)
{
    (void)state;
    char buf[200];
    char err[128];
    memset(buf, 'o', sizeof buf);
    assert_int_equal(names_check_owner(buf, 0, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Owner is empty");
    assert_int_equal(names_check_owner(buf, 1, err, sizeof err), 0);
    assert_int_equal(names_check_owner(buf, LOCKD_OWNER_MAX, err, sizeof err), 0);
    assert_int_equal(names_check_owner(buf, LOCKD_OWNER_MAX + 1, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Owner is too long (129 bytes > max of 128)");
    assert_int_equal(names_check_owner("web:1@host-a", 12, err, sizeof err), 0);
    assert_int_equal(names_check_owner("abc d", 5, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Owner contains non-printable/non-ascii byte 32 at offset 3");
}

static void test_percent_decode_escapes(void **state)
{
    (void)state;
    char dst[64];
    int n = names_percent_decode("a%2Bb", 5, dst, sizeof dst);
    assert_int_equal(n, 3);
    assert_memory_equal(dst, "a+b", 3);
    n = names_percent_decode("%2b", 3, dst, sizeof dst);
    assert_int_equal(n, 1);
    assert_int_equal(dst[0], '+');
    n = names_percent_decode("%41%62c", 7, dst, sizeof dst);
    assert_int_equal(n, 3);
    assert_memory_equal(dst, "Abc", 3);
    n = names_percent_decode("%ff%00", 6, dst, sizeof dst);
    assert_int_equal(n, 2);
    assert_int_equal((unsigned char)dst[0], 0xff);
    assert_int_equal(dst[1], 0);
    /* '+' stays '+' in a path */
    n = names_percent_decode("a+b", 3, dst, sizeof dst);
    assert_int_equal(n, 3);
    assert_memory_equal(dst, "a+b", 3);
    /* decoding happens once: %2541 is "%41", not "A" */
    n = names_percent_decode("%2541", 5, dst, sizeof dst);
    assert_int_equal(n, 3);
    assert_memory_equal(dst, "%41", 3);
    assert_int_equal(names_percent_decode("", 0, dst, sizeof dst), 0);
    assert_int_equal(names_percent_decode(NULL, 0, NULL, 0), 0);
}

static void test_percent_decode_rejects_bad_escapes(void **state)
{
    (void)state;
    static const char *const bad[] = {"%", "%4", "%zz", "%4g", "%g4", "a%", "ab%2", "%%41", "% 41"};
    char dst[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(names_percent_decode(bad[i], strlen(bad[i]), dst, sizeof dst),
                         -LOCKD_EINVAL);
        assert_int_equal(names_query_decode(bad[i], strlen(bad[i]), dst, sizeof dst),
                         -LOCKD_EINVAL);
    }
    /* the escape must lie inside len even if the bytes after it look valid */
    assert_int_equal(names_percent_decode("%41", 2, dst, sizeof dst), -LOCKD_EINVAL);
}

static void test_percent_decode_never_reads_past_len(void **state)
{
    (void)state;
    char *src = malloc(2);
    assert_non_null(src);
    memcpy(src, "a%", 2);
    char dst[8];
    assert_int_equal(names_percent_decode(src, 2, dst, sizeof dst), -LOCKD_EINVAL);
    memcpy(src, "%4", 2);
    assert_int_equal(names_percent_decode(src, 2, dst, sizeof dst), -LOCKD_EINVAL);
    free(src);
}

static void test_percent_decode_in_place(void **state)
{
    (void)state;
    char buf[] = "%41%2Bx%2fy+";
    int n = names_percent_decode(buf, strlen(buf), buf, sizeof buf);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "A+x/y+", 6);

    char q[] = "a+b%20c%2B";
    n = names_query_decode(q, strlen(q), q, sizeof q);
    assert_int_equal(n, 6);
    assert_memory_equal(q, "a b c+", 6);
}

static void test_percent_decode_dst_too_small(void **state)
{
    (void)state;
    char dst[4];
    assert_int_equal(names_percent_decode("abcde", 5, dst, 4), -LOCKD_ETOOBIG);
    assert_int_equal(names_percent_decode("abcd", 4, dst, 4), 4);
    assert_int_equal(names_percent_decode("%41%42%43%44", 12, dst, 4), 4);
    assert_int_equal(names_percent_decode("%41%42%43%44%45", 15, dst, 4), -LOCKD_ETOOBIG);
    assert_int_equal(names_percent_decode("a", 1, NULL, 0), -LOCKD_ETOOBIG);
    /* a malformed escape is reported even when dst is also too small */
    assert_int_equal(names_percent_decode("abcdef%z", 8, dst, 4), -LOCKD_EINVAL);
}

static void test_query_decode_plus_is_space(void **state)
{
    (void)state;
    char dst[32];
    int n = names_query_decode("web+1%2B2", 9, dst, sizeof dst);
    assert_int_equal(n, 7);
    assert_memory_equal(dst, "web 1+2", 7);
}

static void test_decode_then_check_reports_decoded_offset(void **state)
{
    (void)state;
    /* API.md: the path segment is decoded first, then checked */
    char dst[64];
    char err[128];
    int n = names_percent_decode("a%2Bb", 5, dst, sizeof dst);
    assert_int_equal(n, 3);
    assert_int_equal(names_check_lock(dst, (size_t)n, err, sizeof err), -LOCKD_EINVAL);
    assert_string_equal(err, "Name contains non-printable/non-ascii byte 43 at offset 1");
}

/* errors.c has no test file of its own; its table is checked here. */
static void test_strerror_every_code_either_sign(void **state)
{
    (void)state;
    for (int c = LOCKD_OK; c <= LOCKD_ESHUTDOWN; c++) {
        const char *m = lockd_strerror(c);
        assert_non_null(m);
        assert_string_not_equal(m, "unknown error");
        assert_string_equal(m, lockd_strerror(-c));
        for (int d = LOCKD_OK; d < c; d++)
            assert_string_not_equal(m, lockd_strerror(d));
    }
    assert_string_equal(lockd_strerror(-LOCKD_EINVAL), "invalid argument or malformed input");
    assert_string_equal(lockd_strerror(LOCKD_ESHUTDOWN + 1), "unknown error");
    assert_string_equal(lockd_strerror(-1000), "unknown error");
    assert_string_equal(lockd_strerror(INT_MIN), "unknown error");
    assert_string_equal(lockd_strerror(INT_MAX), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_name_every_byte_at_offset_0_and_5),
        cmocka_unit_test(test_lock_name_reports_first_bad_byte),
        cmocka_unit_test(test_lock_name_lengths_0_1_128_129),
        cmocka_unit_test(test_lock_name_too_long_wins_over_bad_bytes),
        cmocka_unit_test(test_error_message_truncated_and_optional),
        cmocka_unit_test(test_owner_every_byte_allows_colon_and_at),
        cmocka_unit_test(test_owner_lengths_and_messages),
        cmocka_unit_test(test_percent_decode_escapes),
        cmocka_unit_test(test_percent_decode_rejects_bad_escapes),
        cmocka_unit_test(test_percent_decode_never_reads_past_len),
        cmocka_unit_test(test_percent_decode_in_place),
        cmocka_unit_test(test_percent_decode_dst_too_small),
        cmocka_unit_test(test_query_decode_plus_is_space),
        cmocka_unit_test(test_decode_then_check_reports_decoded_offset),
        cmocka_unit_test(test_strerror_every_code_either_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
