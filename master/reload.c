/* master/reload.c: applies a re-read configuration (see reload.h). Owns the
 * copy of the configuration as last loaded; changes only the running
 * configuration's reloadable fields and the log level in the shared stats. */
#include "master/reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "master/options.h"
#include "shm/stats.h"

void reload_init(struct reload_ctx *r, struct lockd_config *cfg, int argc, char **argv)
{
    r->cfg = cfg;
    r->loaded = *cfg;
    r->loaded.self = NULL; /* would point into cfg->nodes */
    r->table = NULL;
    r->argc = argc;
    r->argv = argv;
}

static const char *level_name(enum log_level l)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    return (unsigned)l < 4 ? names[l] : "?";
}

/* Logs each key that is not reloadable and differs between a and b. */
static void warn_unapplied(const struct lockd_config *a, const struct lockd_config *b, const char *file)
{
    struct {
        const char *key;
        int changed;
    } keys[] = {
        {"cluster/id/listen", a->n_nodes != b->n_nodes || a->node_id != b->node_id ||
                                  memcmp(a->nodes, b->nodes, sizeof(a->nodes)) != 0 ||
                                  strcmp(a->listen_host, b->listen_host) != 0 || a->listen_port != b->listen_port},
        {"join", a->join != b->join},
        {"workers", a->workers != b->workers},
        {"store", a->store != b->store},
        {"data-dir/db", strcmp(a->data_dir, b->data_dir) != 0 || strcmp(a->db_path, b->db_path) != 0},
        {"admin-socket", strcmp(a->admin_socket, b->admin_socket) != 0},
        {"admin-group", a->admin_gid != b->admin_gid},
        {"max-locks", a->max_locks != b->max_locks},
        {"api-timeout", a->api_timeout_ms != b->api_timeout_ms},
        {"election-timeout", a->election_timeout_ms != b->election_timeout_ms},
        {"heartbeat-timeout", a->heartbeat_timeout_ms != b->heartbeat_timeout_ms},
        {"snapshot-threshold", a->snapshot_threshold != b->snapshot_threshold},
        {"snapshot-trailing", a->snapshot_trailing != b->snapshot_trailing},
        {"ttl-min/ttl-max", a->ttl_min_ms != b->ttl_min_ms || a->ttl_max_ms != b->ttl_max_ms},
        {"wait-max", a->wait_max_ms != b->wait_max_ms},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (keys[i].changed)
            log_warn("reload: %s changed in %s: it takes effect at the next start", keys[i].key, file);
}

void reload_apply(void *arg)
{
    struct reload_ctx *r = arg;
    if (r->cfg->config_path[0] == '\0') {
        log_info("reload: no --config file to re-read");
        return;
    }
    struct lockd_config *fresh = malloc(sizeof(*fresh));
    FILE *devnull = fopen("/dev/null", "w");
    char err[512];
    if (fresh == NULL || devnull == NULL) {
        log_error("reload: out of memory: configuration unchanged");
        free(fresh);
        if (devnull != NULL)
            fclose(devnull);
        return;
    }
    enum options_result rc = options_parse(r->argc, r->argv, fresh, devnull, err, sizeof(err));
    fclose(devnull);
    if (rc != OPTIONS_RUN) {
        log_error("reload: %s: configuration unchanged", rc == OPTIONS_ERROR ? err : "nothing to run");
        free(fresh);
        return;
    }
    struct lockd_config *live = r->cfg, *old = &r->loaded;
    if (fresh->log_level != old->log_level) {
        log_info("reload: log-level %s", level_name(fresh->log_level));
        log_set_level(fresh->log_level);
        live->log_level = fresh->log_level;
        if (r->table != NULL)
            shm_stats_set_log_level(shm_table_stats(r->table), (int)fresh->log_level);
    }
    if (fresh->access_log != old->access_log) {
        log_info("reload: access-log %s", fresh->access_log ? "on" : "off");
        live->access_log = fresh->access_log;
    }
    if (strcmp(fresh->server_header, old->server_header) != 0) {
        log_info("reload: server-header \"%s\"", fresh->server_header[0] ? fresh->server_header : "off");
        memcpy(live->server_header, fresh->server_header, sizeof(live->server_header));
    }
    /* Only the applied keys move: a change to any other key is reported
     * again at every reload until a restart applies it. */
    old->log_level = fresh->log_level;
    old->access_log = fresh->access_log;
    memcpy(old->server_header, fresh->server_header, sizeof(old->server_header));
    warn_unapplied(old, fresh, live->config_path);
    free(fresh);
}
