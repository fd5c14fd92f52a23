/* common/names.c: percent-decoding of path/query parts and the lock-name and
 * owner rules of API.md, with the original lockd's exact error wording.
 * Pure functions: never allocates, never reads outside [src, src+len). */
#include "common/names.h"

#include <limits.h>
#include <stdio.h>

#include "common/errors.h"
#include "common/limits.h"

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One pass, writing at dst[j] with j <= i, so dst == src is safe. A
 * malformed escape wins over a short dst: the request is bad whatever the
 * buffer size. The decoded length never exceeds len, so dst_cap >= len
 * always suffices. On error dst holds a partial result. */
static int decode(const char *src, size_t len, char *dst, size_t dst_cap, int plus_is_space)
{
    if (len > INT_MAX)
        return -LOCKD_ETOOBIG;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (len - i < 3)
                return -LOCKD_EINVAL;
            int hi = hex_value((unsigned char)src[i + 1]);
            int lo = hex_value((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -LOCKD_EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (j < dst_cap)
            dst[j] = (char)c;
        j++;
    }
    return j > dst_cap ? -LOCKD_ETOOBIG : (int)j;
}

int names_percent_decode(const char *src, size_t len, char *dst, size_t dst_cap)
{
    return decode(src, len, dst, dst_cap, 0);
}

int names_query_decode(const char *src, size_t len, char *dst, size_t dst_cap)
{
    return decode(src, len, dst, dst_cap, 1);
}

/* The original's alphabet; owners add ':' and '@' (e.g. "host:pid",
 * "user@host"). Anything else -- including space, '+', '/', '%' and every
 * byte >= 128 -- is reported with the same "non-printable/non-ascii" wording
 * clients already match on. */
static int allowed_byte(unsigned char c, int is_owner)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    if (c == '$' || c == '-' || c == '.' || c == '_')
        return 1;
    return is_owner && (c == ':' || c == '@');
}

static int check(const char *what, size_t max, int is_owner, const char *s, size_t len, char *err, size_t err_cap)
{
    /* Length first: a 200-byte name full of '+' is "too long", as in the
     * original, whose length check ran before the byte scan. */
    if (len > max) {
        if (err && err_cap)
            snprintf(err, err_cap, "%s is too long (%zu bytes > max of %zu)", what, len, max);
        return -LOCKD_EINVAL;
    }
    if (len == 0) {
        if (err && err_cap)
            snprintf(err, err_cap, "%s is empty", what);
        return -LOCKD_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!allowed_byte(c, is_owner)) {
            if (err && err_cap)
                snprintf(err, err_cap, "%s contains non-printable/non-ascii byte %u at offset %zu", what, (unsigned)c,
                         i);
            return -LOCKD_EINVAL;
        }
    }
    if (err && err_cap)
        err[0] = '\0';
    return 0;
}

int names_check_lock(const char *name, size_t len, char *err, size_t err_cap)
{
    return check("Name", LOCKD_NAME_MAX, 0, name, len, err, err_cap);
}

int names_check_owner(const char *owner, size_t len, char *err, size_t err_cap)
{
    return check("Owner", LOCKD_OWNER_MAX, 1, owner, len, err, err_cap);
}
