/* common/duration.c: the duration syntax of API.md ("250ms", "30s", "5m",
 * "1h", bare seconds) to and from milliseconds. Checks syntax and overflow
 * only; it must never apply bounds (ttl 100ms..24h, wait <= 5m: callers'). */
#include "common/duration.h"

#include <stdio.h>

#include "common/errors.h"

/* Units are lowercase only: "1S" and "1H" are rejected, so one spelling
 * means one thing (Go's time.ParseDuration is case-sensitive too). */

#define DURATION_MAX_DIGITS 24

int duration_parse_ms(const char *s, size_t len, uint64_t *out_ms)
{
    if (!s || !out_ms)
        return -LOCKD_EINVAL;
    size_t i = 0;
    size_t significant = 0;
    uint64_t n = 0;
    int overflow = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned)(s[i] - '0');
        if (n != 0 || d != 0)
            significant++;
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, d, &n))
            overflow = 1;
        i++;
    }
    if (i == 0 || significant > DURATION_MAX_DIGITS)
        return -LOCKD_EINVAL;

    uint64_t unit_ms;
    size_t rest = len - i;
    const char *u = s + i;
    if (rest == 0)
        unit_ms = 1000; /* bare integer: seconds, as the original's ttl */
    else if (rest == 2 && u[0] == 'm' && u[1] == 's')
        unit_ms = 1;
    else if (rest == 1 && u[0] == 's')
        unit_ms = 1000;
    else if (rest == 1 && u[0] == 'm')
        unit_ms = 60 * 1000;
    else if (rest == 1 && u[0] == 'h')
        unit_ms = 3600 * 1000;
    else
        return -LOCKD_EINVAL;

    uint64_t ms;
    if (overflow || __builtin_mul_overflow(n, unit_ms, &ms))
        return -LOCKD_EINVAL;
    *out_ms = ms;
    return 0;
}

int duration_format_ms(uint64_t ms, char *buf, size_t cap)
{
    static const struct {
        uint64_t ms;
        const char *suffix;
    } units[] = {{3600 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}};

    /* Zero is "0s", as Go prints a zero time.Duration. */
    if (ms == 0)
        return snprintf(buf, cap, "0s");
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        if (ms % units[k].ms == 0)
            return snprintf(buf, cap, "%llu%s", (unsigned long long)(ms / units[k].ms), units[k].suffix);
    return snprintf(buf, cap, "%llums", (unsigned long long)ms);
}
