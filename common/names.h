/* common/names.h: the lock-name and owner rules of API.md, with the
 * original lockd's error wording (clients compare these strings). Pure
 * functions, no allocation. */
#ifndef LOCKD_COMMON_NAMES_H
#define LOCKD_COMMON_NAMES_H

#include <stddef.h>

/* Percent-decodes src[0..len) into dst (capacity dst_cap). '+' is NOT
 * decoded (path semantics). Returns the decoded length, or -LOCKD_EINVAL
 * for a malformed escape ("%4", "%zz"), or -LOCKD_ETOOBIG if dst_cap is too
 * small. dst may equal src (in-place). */
int names_percent_decode(const char *src, size_t len, char *dst, size_t dst_cap);

/* Same, for query-string values: '+' decodes to a space. */
int names_query_decode(const char *src, size_t len, char *dst, size_t dst_cap);

/* Checks a decoded lock name: 1..128 bytes of [A-Za-z0-9$-._].
 * Returns 0, or -LOCKD_EINVAL and writes the exact error message into
 * err (NUL-terminated, truncated to err_cap):
 *   "Name is too long (129 bytes > max of 128)"
 *   "Name contains non-printable/non-ascii byte 43 at offset 1"
 *   "Name is empty"  (only reachable from a body/list parameter) */
int names_check_lock(const char *name, size_t len, char *err, size_t err_cap);

/* Checks an owner: 1..128 bytes of [A-Za-z0-9$-._:@]. Messages:
 *   "Owner is too long (129 bytes > max of 128)"
 *   "Owner contains non-printable/non-ascii byte 32 at offset 3"
 *   "Owner is empty" */
int names_check_owner(const char *owner, size_t len, char *err, size_t err_cap);

#endif
