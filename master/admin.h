/* master/admin.h: the admin Unix socket that lockctl talks to
 * (proto/admin.proto). The master serves it from its own poll loop: the fd
 * it polls (supervisor_env.admin_fd) is an epoll set holding the listening
 * socket, the open connections, their relays to raftproc and a timerfd for
 * their deadlines; on_admin handles whatever is ready and returns. So a
 * command relayed to raftproc (unlock, members, members add/remove,
 * transfer, snapshot), which may take up to its timeout (seconds for a member add
 * that waits for catch-up), never holds up the master loop (reaping,
 * restarts, signals) nor other lockctl commands: up to ADMIN_CONN_MAX (16)
 * connections are served at once, more wait in the listen backlog. Lock
 * state comes from the shm table; an unlock is relayed to raftproc over
 * its Unix socket exactly as a worker sends a DELETE, a membership command
 * as the matching OP_MEMBERS / OP_MEMBER_ADD / OP_MEMBER_REMOVE /
 * OP_TRANSFER request, a snapshot as OP_SNAPSHOT (a follower's raftproc
 * forwards changes and snapshots to the leader). `lockctl log-level` sets
 * the master's level and publishes it in the shm stats segment, which every
 * child follows within a loop turn. */
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
 * children forked later (reload, restart) start with the new level (running
 * ones take it from the shm stats segment, which the table's handle reaches;
 * that segment is writable even through a const table).
 * *out is owned by the caller (admin_close).
 * Errors: -LOCKD_EINVAL (path too long, or the Raft socket's path),
 * -LOCKD_EIO (bind/listen/chmod failed), -LOCKD_ENOMEM; a one-line message
 * is in err. */
int admin_open(struct lockd_config *cfg, const shm_table *table, admin_server **out, char *err, size_t err_cap);

/* The fd for supervisor_env.admin_fd: the epoll set (readable when a
 * connection, a relay or a deadline needs attention). Children close it;
 * the sockets it holds are closed in children by a pthread_atfork handler
 * that admin_open registers. */
int admin_fd(const admin_server *a);

/* supervisor_env.on_admin (arg: the admin_server). Handles what is ready
 * without waiting: accepts a few connections, reads requests, answers the
 * local ones (status, list, show, reload, log-level) at once, starts and
 * advances relays to raftproc, and ends what is past its deadline: 2 s for
 * a client to send its request; for a relay, cfg->api_timeout_ms + 1 s
 * (unlock, members remove, transfer, snapshot), max(that, 30 s) for members add, 2 s
 * for reading the configuration (members; the cluster file is shown
 * instead). A change whose outcome raftproc reports unknown (a follower
 * abandons a forwarded request when the leader changes, which is what a
 * transfer does) is looked up in the configuration for up to 3 s more
 * before the answer says so. The one wait it does is writing an answer (at most 2 s, to a
 * client that does not read). Never calls exit, never forks. */
void admin_on_readable(void *arg);

/* Closes the socket, unlinks its path and frees a (NULL is fine). */
void admin_close(admin_server *a);

#endif
