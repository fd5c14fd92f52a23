/* common/config.h: the parsed command line and cluster file, built once by
 * the master (master/options.c) and inherited by every child across fork().
 * Read-only after start. */
#ifndef LOCKD_COMMON_CONFIG_H
#define LOCKD_COMMON_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"

#define LOCKD_MAX_NODES 16
#define LOCKD_MAX_WORKERS 64
#define LOCKD_PATH_MAX 256
#define LOCKD_ADDR_MAX 64
#define LOCKD_SERVER_HEADER_MAX 128

enum store_kind { STORE_LMDB = 0, STORE_MEMORY = 1 };

struct cluster_node {
    uint64_t id;
    char http_host[LOCKD_ADDR_MAX]; /* as written in the file ("localhost") */
    uint16_t http_port;
    char raft_host[LOCKD_ADDR_MAX];
    uint16_t raft_port;
};

/* Followers forward writes to the leader's raftproc on its peer port: the
 * Raft port + 1000 (the Raft port itself belongs to the Raft library). */
#define LOCKD_PEER_PORT_OFFSET 1000

static inline unsigned cluster_peer_port(const struct cluster_node *n)
{
    return (unsigned)n->raft_port + LOCKD_PEER_PORT_OFFSET;
}

struct lockd_config {
    /* identity and cluster */
    uint64_t node_id;
    unsigned n_nodes;
    struct cluster_node nodes[LOCKD_MAX_NODES];
    const struct cluster_node *self; /* points into nodes[] */
    bool join;                       /* --join: never bootstrap; wait to be added */

    /* HTTP */
    char listen_host[LOCKD_ADDR_MAX]; /* bind address for HTTP */
    uint16_t listen_port;
    unsigned workers; /* 1..LOCKD_MAX_WORKERS */

    /* storage */
    enum store_kind store;
    char data_dir[LOCKD_PATH_MAX];    /* raft log + default db location */
    char db_path[LOCKD_PATH_MAX];     /* LMDB environment directory */
    char raft_dir[LOCKD_PATH_MAX];    /* Raft log/snapshots directory */
    char raft_socket[LOCKD_PATH_MAX]; /* worker <-> raftproc Unix socket */
    char admin_socket[LOCKD_PATH_MAX];
    uint32_t max_locks;

    /* timing (milliseconds) */
    uint64_t api_timeout_ms;
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    uint64_t ttl_min_ms, ttl_max_ms, wait_max_ms;

    enum log_level log_level;
    bool access_log; /* --access-log: one line per HTTP answer */

    /* packaging and operations (master/options.c) */
    char config_path[LOCKD_PATH_MAX];                /* --config FILE, "" if none: re-read on SIGHUP */
    long admin_gid;                                  /* --admin-group: socket 0660 with this group; -1: 0600 */
    char server_header[LOCKD_SERVER_HEADER_MAX + 1]; /* Server: value, "" for none (--server-header off) */
};

#endif
