/* master/notify.h: the service manager's readiness protocol (sd_notify(3))
 * without libsystemd: one datagram per message to the AF_UNIX socket that
 * $NOTIFY_SOCKET names ("/path", or "@name" in the abstract namespace).
 * The master sends READY=1 once the node serves (what /readyz checks:
 * lock table loaded, leader known, Raft process up), STATUS= lines while it
 * waits, and STOPPING=1 when it starts to drain. Without $NOTIFY_SOCKET
 * every call does nothing. Never blocks: the socket is non-blocking and a
 * lost notification is logged, not retried. */
#ifndef LOCKD_MASTER_NOTIFY_H
#define LOCKD_MASTER_NOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

#include "shm/table.h"

struct notify {
    int fd; /* -1: no service manager to tell */
    struct sockaddr_un addr;
    socklen_t addr_len;
    int ready_sent;
    const char *last_reason; /* the STATUS= last sent while waiting */
};

/* Reads $NOTIFY_SOCKET and removes it from the environment (children must
 * not talk to the service manager). Returns 0 (also when it is unset: n
 * then does nothing), -LOCKD_EINVAL for an address that is neither "/..."
 * nor "@..." or too long, -LOCKD_EIO when no socket can be made (n then
 * does nothing too). */
int notify_open(struct notify *n);

/* Sends one message ("READY=1", "STATUS=..."). Returns 0 (also when
 * disabled) or -LOCKD_EIO (errno says why). */
int notify_send(struct notify *n, const char *msg);

/* Why a node with status st does not serve yet ("No leader known"), or
 * NULL when it does; raft_up says whether the Raft process runs. The same
 * conditions as /readyz, minus the worker-local ones. */
const char *notify_not_serving(const shm_node_status *st, int raft_up);

/* Called from the master's loop: sends READY=1 the first time the node
 * serves, STATUS= when the reason it does not changes. Returns the
 * milliseconds after which it wants to look again, 0 once READY=1 is sent
 * (or when disabled). */
unsigned notify_poll_ready(struct notify *n, const shm_table *table, int raft_up);

void notify_close(struct notify *n);

#endif
