/* common/errors.c: the one table that turns a lockd error code into words.
 * Owns nothing else; never allocates and never returns NULL, so it is safe
 * to call on any path, including after an allocation failure. */
#include "common/errors.h"

#include <limits.h>

const char *lockd_strerror(int code)
{
    /* Callers pass either the negated code a function returned or the enum
     * value itself; both mean the same error. INT_MIN has no positive twin
     * (negating it is undefined behaviour). */
    if (code == INT_MIN)
        return "unknown error";
    if (code < 0)
        code = -code;
    switch (code) {
    case LOCKD_OK:
        return "success";
    case LOCKD_EINVAL:
        return "invalid argument or malformed input";
    case LOCKD_ENOMEM:
        return "out of memory";
    case LOCKD_EFULL:
        return "table is full";
    case LOCKD_ENOENT:
        return "no such entry";
    case LOCKD_EIO:
        return "I/O error";
    case LOCKD_ETOOBIG:
        return "value too large";
    case LOCKD_EAGAIN:
        return "resource temporarily unavailable, try again";
    case LOCKD_ECORRUPT:
        return "data corrupted";
    case LOCKD_ENOTLEADER:
        return "not the leader";
    case LOCKD_ESHUTDOWN:
        return "shutting down";
    }
    return "unknown error";
}
