/* tests/unit/raftproc/test_pacing.c: the snapshot pacing rule of
 * raftproc/consensus.c (consensus_snapshot_threshold). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raftproc/consensus.h"

#define MIB (1u << 20)

static void test_small_state_uses_the_configured_entry_count(void **state)
{
    assert_int_equal(consensus_snapshot_threshold(8192, 0, 0), 8192);
    assert_int_equal(consensus_snapshot_threshold(32, MIB - 1, 0), 32);
    assert_int_equal(consensus_snapshot_threshold(32, MIB - 1, 100 * MIB), 32);
}

static void test_large_state_holds_until_the_log_is_as_large_as_the_snapshot(void **state)
{
    assert_int_equal(consensus_snapshot_threshold(8192, 4 * MIB, 0), UINT32_MAX);
    assert_int_equal(consensus_snapshot_threshold(8192, 4 * MIB, 4 * MIB - 1), UINT32_MAX);
    assert_int_equal(consensus_snapshot_threshold(8192, 4 * MIB, 4 * MIB), 8192);
    assert_int_equal(consensus_snapshot_threshold(8192, MIB, MIB), 8192);
}

static void test_huge_state_snapshots_every_16_mib_of_log(void **state)
{
    assert_int_equal(consensus_snapshot_threshold(8192, 80 * MIB, 16 * MIB - 1), UINT32_MAX);
    assert_int_equal(consensus_snapshot_threshold(8192, 80 * MIB, 16 * MIB), 8192);
    assert_int_equal(consensus_snapshot_threshold(1, 80 * MIB, UINT64_MAX), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_state_uses_the_configured_entry_count),
        cmocka_unit_test(test_large_state_holds_until_the_log_is_as_large_as_the_snapshot),
        cmocka_unit_test(test_huge_state_snapshots_every_16_mib_of_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
