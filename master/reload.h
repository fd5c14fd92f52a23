/* master/reload.h: what a reload (SIGHUP, lockctl reload) re-reads. The
 * command line and its --config file are parsed afresh; the keys that
 * options_reloadable() names (log-level, access-log, server-header) are
 * applied to the running configuration when their value changed since the
 * last load, and a changed key of any other kind is logged as waiting for
 * the next start. A file that no longer parses changes nothing (logged).
 * The supervisor calls reload_apply before it replaces the workers, which
 * are forked from the configuration as it then is. */
#ifndef LOCKD_MASTER_RELOAD_H
#define LOCKD_MASTER_RELOAD_H

#include "common/config.h"
#include "shm/table.h"

struct reload_ctx {
    struct lockd_config *cfg;   /* the master's running configuration (borrowed) */
    struct lockd_config loaded; /* as the files said at the last load */
    shm_table *table;           /* borrowed: carries the log level to raftproc; NULL: not yet */
    int argc;
    char **argv; /* borrowed; alive for the master's life */
};

/* cfg is the configuration options_parse just built from argc/argv, before
 * the master adjusts it (the memory store moves its paths). Set r->table
 * once the table exists, before the first reload_apply. */
void reload_init(struct reload_ctx *r, struct lockd_config *cfg, int argc, char **argv);

/* Re-reads and applies (see above). arg is a struct reload_ctx. Returns
 * nothing: every outcome is logged. */
void reload_apply(void *arg);

#endif
