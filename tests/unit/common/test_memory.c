/* tests/unit/common/test_memory.c: the allocator settings of common/memory.c
 * take effect (jemalloc read lockd's malloc_conf), and memory_decay hands a
 * freed burst back to the kernel while the process is otherwise idle. In the
 * ASan build (no jemalloc) memory_decay is a no-op and only that is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/memory.h"

#ifdef LOCKD_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>

static long resident_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    long size = 0, resident = 0;
    assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_malloc_conf_is_in_effect(void **state)
{
    ssize_t dirty = -1, muzzy = -1;
    size_t len = sizeof(dirty);
    assert_int_equal(mallctl("opt.dirty_decay_ms", &dirty, &len, NULL, 0), 0);
    assert_int_equal(dirty, 1000);
    len = sizeof(muzzy);
    assert_int_equal(mallctl("opt.muzzy_decay_ms", &muzzy, &len, NULL, 0), 0);
    assert_int_equal(muzzy, 0);
}

static void test_decay_returns_a_freed_burst_while_idle(void **state)
{
    const size_t burst = 48u << 20;
    long before = resident_kib();
    char *p = malloc(burst);
    assert_non_null(p);
    memset(p, 0x5a, burst);
    long peak = resident_kib();
    assert_true(peak - before >= 40 * 1024);
    free(p);
    /* Without a call into jemalloc nothing would ever purge it; memory_decay
     * (as the loops call it) must, within a few decay periods. */
    uint64_t deadline = clock_monotonic_ms() + 5000;
    while (resident_kib() > before + 8 * 1024 && clock_monotonic_ms() < deadline) {
        memory_decay(clock_monotonic_ms());
        usleep(50 * 1000);
    }
    assert_true(resident_kib() <= before + 8 * 1024);
}
#else
static void test_decay_is_a_no_op_without_jemalloc(void **state)
{
    memory_decay(clock_monotonic_ms());
    memory_decay(clock_monotonic_ms() + 5000);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifdef LOCKD_WITH_JEMALLOC
        cmocka_unit_test(test_malloc_conf_is_in_effect),
        cmocka_unit_test(test_decay_returns_a_freed_burst_while_idle),
#else
        cmocka_unit_test(test_decay_is_a_no_op_without_jemalloc),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
