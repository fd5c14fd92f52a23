/* common/errors.h: lockd's error codes. Every function that can fail returns 0
 * or one of these negated (-LOCKD_E...); lockd_strerror() is the one table
 * that turns a code into words. */
#ifndef LOCKD_COMMON_ERRORS_H
#define LOCKD_COMMON_ERRORS_H

enum lockd_error {
    LOCKD_OK = 0,
    LOCKD_EINVAL = 1,   /* bad argument or malformed input */
    LOCKD_ENOMEM = 2,   /* allocation failed */
    LOCKD_EFULL = 3,    /* fixed-capacity structure is full */
    LOCKD_ENOENT = 4,   /* no such entry */
    LOCKD_EIO = 5,      /* system call or storage failure (errno logged) */
    LOCKD_ETOOBIG = 6,  /* frame or field over its limit */
    LOCKD_EAGAIN = 7,   /* incomplete input or transient state; try later */
    LOCKD_ECORRUPT = 8, /* data failed a consistency check */
    LOCKD_ENOTLEADER = 9,
    LOCKD_ESHUTDOWN = 10,
};

/* Returns a static string for a code (positive or negative). Never NULL. */
const char *lockd_strerror(int code);

#endif
