/* common/limits.h: the sizes the HTTP contract (API.md) fixes, shared by every
 * process so that a name accepted by a worker always fits the shm table. */
#ifndef LOCKD_COMMON_LIMITS_H
#define LOCKD_COMMON_LIMITS_H

#define LOCKD_NAME_MAX 128          /* bytes, after percent-decoding */
#define LOCKD_OWNER_MAX 128         /* bytes */
#define LOCKD_BODY_MAX 4096         /* request body, else 413 */
#define LOCKD_FRAME_MAX (64 * 1024) /* one protobuf frame between processes */
#define LOCKD_DEFAULT_PORT 2080
#define LOCKD_RAFT_PORT_OFFSET 1000
#define LOCKD_DEFAULT_MAX_LOCKS (1u << 20)
#define LOCKD_TTL_MIN_MS 100ull
#define LOCKD_TTL_MAX_MS (24ull * 3600 * 1000)
#define LOCKD_WAIT_MAX_MS (5ull * 60 * 1000)
#define LOCKD_API_TIMEOUT_MS 5000ull

#endif
