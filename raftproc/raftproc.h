/* raftproc/raftproc.h: the Raft process. The only writer of LMDB and of the
 * shared-memory table; runs consensus, applies committed commands in order,
 * answers the workers over the Unix socket. */
#ifndef LOCKD_RAFTPROC_RAFTPROC_H
#define LOCKD_RAFTPROC_RAFTPROC_H

#include "common/config.h"
#include "shm/table.h"

/* Runs until SIGTERM/SIGINT or a fatal storage error and returns the exit
 * code. listen_fd is the bound, listening Unix socket workers connect to
 * (owned by the master; raftproc accepts on it). */
int raftproc_main(const struct lockd_config *cfg, shm_table *table, int listen_fd);

#endif
