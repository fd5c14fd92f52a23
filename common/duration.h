/* common/duration.h: parses the durations of API.md ("250ms", "30s", "5m",
 * "1h", or a bare integer of seconds) into milliseconds. */
#ifndef LOCKD_COMMON_DURATION_H
#define LOCKD_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses s[0..len). Accepts: digits followed by one of "", "ms", "s", "m",
 * "h" (bare digits are seconds). No sign, no spaces, no fractions, at most
 * 24 significant digits; overflow of uint64 milliseconds is -LOCKD_EINVAL.
 * Returns 0 and sets *out_ms, or -LOCKD_EINVAL. */
int duration_parse_ms(const char *s, size_t len, uint64_t *out_ms);

/* Formats ms as the shortest exact form ("250ms", "30s", "5m", "1h") into
 * buf; returns the length written (snprintf semantics). */
int duration_format_ms(uint64_t ms, char *buf, size_t cap);

#endif
