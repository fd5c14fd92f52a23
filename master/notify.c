/* master/notify.c: sd_notify's datagrams (see notify.h). Owns one
 * non-blocking datagram socket; never reads from it and never waits. */
#include "master/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"

/* Short enough that READY=1 follows readiness closely, long enough to cost
 * nothing: one seqlocked read of the table's header per poll. */
#define NOTIFY_POLL_MS 50

/* The "NOTIFY_SOCKET=..." string unsetenv takes out of environ is owned by
 * whoever built the environment (in the master, proctitle's copy, never
 * freed): kept reachable here for the process's life, as leak checkers
 * want. Written once, never read. */
static const char *volatile removed_env_entry; /* volatile: the only write must stay */

int notify_open(struct notify *n)
{
    memset(n, 0, sizeof(*n));
    n->fd = -1;
    const char *env = getenv("NOTIFY_SOCKET");
    if (env == NULL || env[0] == '\0')
        return 0;
    size_t len = strlen(env);
    removed_env_entry = env - strlen("NOTIFY_SOCKET="); /* getenv points into "NAME=value" */
    int rc = 0;
    if ((env[0] != '/' && env[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path)) {
        log_error("NOTIFY_SOCKET=%s is not a socket path or @name: not notifying", env);
        rc = -LOCKD_EINVAL;
        goto out;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, env, len);
    if (env[0] == '@')
        n->addr.sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends the name */
    n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (env[0] == '/'));
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd < 0) {
        log_error("cannot create the notification socket: %s", strerror(errno));
        rc = -LOCKD_EIO;
    }
out:
    unsetenv("NOTIFY_SOCKET");
    return rc;
}

int notify_send(struct notify *n, const char *msg)
{
    if (n->fd < 0)
        return 0;
    ssize_t w = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addr_len);
    if (w < 0) {
        log_warn("cannot notify the service manager (%s): %s", msg, strerror(errno));
        return -LOCKD_EIO;
    }
    return 0;
}

const char *notify_not_serving(const shm_node_status *st, int raft_up)
{
    if (!raft_up)
        return "Raft process unavailable";
    if (st->state != SHM_STATE_READY)
        return "Lock table is loading";
    if (st->leader_id == 0)
        return "No leader known";
    return NULL;
}

unsigned notify_poll_ready(struct notify *n, const shm_table *table, int raft_up)
{
    if (n->fd < 0 || n->ready_sent)
        return 0;
    shm_node_status st;
    shm_table_status(table, &st);
    const char *reason = notify_not_serving(&st, raft_up);
    if (reason == NULL) {
        char msg[96];
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving (leader %llu)", (unsigned long long)st.leader_id);
        if (notify_send(n, msg) == 0) {
            n->ready_sent = 1;
            log_info("told the service manager: ready");
            return 0;
        }
        return NOTIFY_POLL_MS;
    }
    if (reason != n->last_reason) {
        char msg[96];
        snprintf(msg, sizeof(msg), "STATUS=starting: %s", reason);
        notify_send(n, msg);
        n->last_reason = reason;
    }
    return NOTIFY_POLL_MS;
}

void notify_close(struct notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}
