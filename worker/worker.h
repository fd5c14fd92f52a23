/* worker/worker.h: one HTTP worker process (h2o evloop). Serves the HTTP API:
 * reads from the shared-memory table, writes through its persistent Unix
 * connection to raftproc. Never blocks its event loop. */
#ifndef LOCKD_WORKER_WORKER_H
#define LOCKD_WORKER_WORKER_H

#include "common/config.h"
#include "shm/table.h"

/* Runs worker number `index` (1-based) until SIGTERM/SIGINT, then drains
 * in-flight requests (bounded) and returns the process exit code (0 on a
 * clean stop). listen_fd is this worker's own SO_REUSEPORT listening socket,
 * bound and listening already; the worker owns it from now on. Called in the
 * child right after fork(); `table` is the master's mapping. */
int worker_main(const struct lockd_config *cfg, shm_table *table, int listen_fd, unsigned index);

#endif
