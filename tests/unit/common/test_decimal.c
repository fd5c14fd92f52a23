/* tests/unit/common/test_decimal.c: decimal_u64 (common/decimal.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/decimal.h"

static void check(uint64_t v)
{
    char want[32], got[DECIMAL_U64_MAX + 1];
    int n = snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
    memset(got, '#', sizeof(got));
    assert_int_equal(decimal_u64(got, v), (size_t)n);
    assert_memory_equal(got, want, (size_t)n);
    assert_int_equal(got[n], '#'); /* nothing written past the digits */
}

static void test_edges_and_every_power_of_ten_match_printf(void **state)
{
    check(0);
    check(9);
    check(UINT64_MAX);
    for (uint64_t p = 1, i = 0; i < 20; i++, p *= 10) {
        check(p);
        check(p - 1);
        check(p + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_and_every_power_of_ten_match_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
