/* master/admin.h: the admin Unix socket that lockctl talks to
 * (proto/admin.proto). The master serves it from its own poll loop
 * (supervisor_env.admin_fd / on_admin): one command per connection, read,
 * answered and closed before the loop goes on. Lock state comes from the
 * shm table; an unlock is relayed to raftproc over its Unix socket, exactly
 * as a worker sends a DELETE. */
#ifndef LOCKD_MASTER_ADMIN_H
#define LOCKD_MASTER_ADMIN_H

#include <stddef.h>

#include "common/config.h"
#include "shm/table.h"

typedef struct admin_server admin_server; /* opaque; the master's alone */

/* Binds cfg->admin_socket (replacing a stale file; mode 0600, so only the
 * user lockd runs as, and root, can connect). cfg and table are borrowed
 * and must outlive the server. cfg is not const: `lockctl log-level`
 * changes cfg->log_level, the one field written after start, so that
 * children forked later (reload, restart) inherit the new level.
 * *out is owned by the caller (admin_close).
 * Errors: -LOCKD_EINVAL (path too long, or the Raft socket's path),
 * -LOCKD_EIO (bind/listen/chmod failed), -LOCKD_ENOMEM; a one-line message
 * is in err. */
int admin_open(struct lockd_config *cfg, const shm_table *table, admin_server **out, char *err, size_t err_cap);

/* The listening fd, for supervisor_env.admin_fd. */
int admin_fd(const admin_server *a);

/* supervisor_env.on_admin (arg: the admin_server). Accepts at most a few
 * waiting connections and serves each to the end. Every wait is bounded:
 * 2 s to read a request or write an answer, plus cfg->api_timeout_ms + 1 s
 * for an unlock relayed to raftproc. Never calls exit, never forks. */
void admin_on_readable(void *arg);

/* Closes the socket, unlinks its path and frees a (NULL is fine). */
void admin_close(admin_server *a);

#endif
