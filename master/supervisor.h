/* master/supervisor.h: the master's children. Forks the Raft process and
 * the workers, reaps them, logs why each one died, restarts it with
 * exponential backoff, gives up loudly on a crash loop, replaces the workers
 * on SIGHUP without closing the listen sockets, and stops everything in
 * order on SIGTERM/SIGINT (workers drain first, raftproc last). */
#ifndef LOCKD_MASTER_SUPERVISOR_H
#define LOCKD_MASTER_SUPERVISOR_H

#include "common/config.h"
#include "shm/table.h"

struct supervisor_env {
    const struct lockd_config *cfg;
    shm_table *table;
    int *http_fds; /* cfg->workers listening sockets, index = worker - 1 */
    int raft_fd;   /* Unix socket raftproc accepts workers on */
    int lock_fd;   /* the data directory's flock: the master's alone */
    /* Extra fd the master loop polls (the admin socket), or -1; on_admin is
     * called when it is readable. May be NULL. */
    int admin_fd;
    void (*on_admin)(void *arg);
    void *admin_arg;
    /* The service manager's notifications (master/notify.h), or NULL. */
    struct notify *notify;
    /* Called on SIGHUP and lockctl reload before the workers are replaced
     * (master/reload.c re-reads the config file), or NULL. */
    void (*on_reload)(void *arg);
    void *reload_arg;
};

/* Runs until a stop signal (returns 0 after a clean stop) or a crash loop
 * (returns 1). Signals must be blocked by the caller before. */
int supervisor_run(const struct supervisor_env *env);

/* Replaces the workers (as SIGHUP does); callable from on_admin. */
void supervisor_request_reload(void);

/* Counts for status: restarts of each kind since start. */
struct supervisor_counts {
    unsigned raft_restarts, worker_restarts, workers_alive;
    int raft_pid;
};
void supervisor_counts(struct supervisor_counts *out);

#endif
