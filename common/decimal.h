/* common/decimal.h: unsigned decimal formatting without printf, for the
 * paths that run per request or per log line (JSON bodies, headers, log
 * timestamps). */
#ifndef LOCKD_COMMON_DECIMAL_H
#define LOCKD_COMMON_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define DECIMAL_U64_MAX 20 /* digits of UINT64_MAX */

/* Writes v in decimal at dst (no NUL; dst has room for DECIMAL_U64_MAX);
 * returns the number of digits, 1..20. */
static inline size_t decimal_u64(char *dst, uint64_t v)
{
    char tmp[DECIMAL_U64_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

#endif
