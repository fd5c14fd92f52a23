/* common/clock.h: the two clocks lockd uses. Timeouts and TTLs run on
 * CLOCK_MONOTONIC; wall-clock milliseconds are only shown to people and
 * stamped into log entries by the leader (acquired_at_ms). */
#ifndef LOCKD_COMMON_CLOCK_H
#define LOCKD_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
