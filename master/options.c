/* master/options.c: command-line, config-file and cluster-file parsing
 * (see options.h). Owns the defaults and the meaning of every option;
 * never touches the file system beyond reading the config and cluster files
 * (and the group database for --admin-group), and never exits the process
 * itself. */
#include "master/options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/errors.h"
#include "common/json.h"
#include "common/limits.h"
#include "common/build_info.h"
#include "master/config_file.h"

enum opt_kind { OPT_STR, OPT_UINT, OPT_DURATION, OPT_FLAG };

struct opt {
    const char *name; /* without dashes */
    enum opt_kind kind;
    const char *arg; /* shown in --help */
    const char *help;
    bool reload; /* re-read from the config file on SIGHUP (options_reloadable) */
};

static const struct opt OPTIONS[] = {
    {"config", OPT_STR, "FILE",
     "read options from FILE: `key = value` lines, keys named as below; the command line wins"},
    {"cluster", OPT_STR, "FILE", "cluster file: JSON {\"<id>\":\"host:port\",...}"},
    {"id", OPT_UINT, "N", "this node's id in the cluster file"},
    {"join", OPT_FLAG, NULL, "join a running cluster: do not bootstrap, wait for `lockctl members add`"},
    {"listen", OPT_STR, "HOST:PORT", "HTTP bind address (default 127.0.0.1:2080, or this node's entry)"},
    {"workers", OPT_UINT, "N", "HTTP worker processes (default: CPUs - 1, at least 1)"},
    {"store", OPT_STR, "lmdb|memory", "persistence mode (default lmdb)"},
    {"db", OPT_STR, "PATH", "LMDB file (default DATA-DIR/locks.mdb)"},
    {"data-dir", OPT_STR, "DIR", "data directory (default ./lockd-data, ./lockd-data/ID with -cluster)"},
    {"admin-socket", OPT_STR, "PATH", "admin Unix socket for lockctl (default DATA-DIR/lockd.sock)"},
    {"admin-group", OPT_STR, "GROUP",
     "admin socket mode 0660 with this group, for lockctl without root (default 0600)"},
    {"max-locks", OPT_UINT, "N", "capacity of the lock table (default 1048576)"},
    {"api-timeout", OPT_DURATION, "DUR", "answer 504 when consensus takes longer (default 5s)"},
    {"election-timeout", OPT_DURATION, "DUR", "Raft election timeout (default 800ms; randomised 1x-2x by libraft)"},
    {"heartbeat-timeout", OPT_DURATION, "DUR", "Raft heartbeat interval (default 100ms)"},
    {"snapshot-threshold", OPT_UINT, "N", "minimum Raft entries between snapshots (default 8192)"},
    {"snapshot-trailing", OPT_UINT, "N", "Raft entries kept after a snapshot (default 2048)"},
    {"ttl-min", OPT_DURATION, "DUR", "shortest lock TTL accepted (default 100ms)"},
    {"ttl-max", OPT_DURATION, "DUR", "longest lock TTL accepted (default 24h)"},
    {"wait-max", OPT_DURATION, "DUR", "longest wait accepted (default 5m)"},
    {"log-level", OPT_STR, "LEVEL", "debug, info, warn or error (default info)", true},
    {"access-log", OPT_FLAG, NULL, "log one line per HTTP request (peer, method, path, status, time)", true},
    {"server-header", OPT_STR, "off|VALUE", "Server header of HTTP answers (default lockd/VERSION; off: none)", true},
    {"help", OPT_FLAG, NULL, "show this help (also -h)"},
    {"version", OPT_FLAG, NULL, "print the version and the libraries it was built with"},
};
#define N_OPTIONS (sizeof(OPTIONS) / sizeof(OPTIONS[0]))

void options_usage(FILE *out)
{
    fprintf(out, "Usage: lockd [options]\n"
                 "       lockd -cluster FILE -id N [options]\n\n"
                 "A distributed lock service: HTTP API on every node, Raft consensus between nodes.\n\n"
                 "Options (--name VALUE, --name=VALUE, or Go-style -name VALUE):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char left[48];
        snprintf(left, sizeof(left), "--%s%s%s", OPTIONS[i].name, OPTIONS[i].arg ? " " : "",
                 OPTIONS[i].arg ? OPTIONS[i].arg : "");
        fprintf(out, "  %-30s %s\n", left, OPTIONS[i].help);
    }
    fprintf(out, "\nIn a --config file, flags take true or false (access-log = true).\n"
                 "SIGHUP re-reads the config file and applies, when changed:");
    for (size_t i = 0, first = 1; i < N_OPTIONS; i++) {
        if (OPTIONS[i].reload) {
            fprintf(out, "%s %s", first ? "" : ",", OPTIONS[i].name);
            first = 0;
        }
    }
    fprintf(out, ";\nother keys take effect at the next start.\n");
}

int options_reloadable(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(OPTIONS[i].name, name) == 0)
            return OPTIONS[i].reload;
    return 0;
}

static int split_host_port(const char *s, char *host, size_t host_cap, uint16_t *port, uint16_t def_port)
{
    const char *colon = strrchr(s, ':');
    size_t hlen = colon ? (size_t)(colon - s) : strlen(s);
    if (hlen >= host_cap)
        return -LOCKD_EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (hlen == 0)
        snprintf(host, host_cap, "0.0.0.0");
    if (colon == NULL) {
        *port = def_port;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p == 0 || p > 65535)
        return -LOCKD_EINVAL;
    *port = (uint16_t)p;
    return 0;
}

/* The Raft transport of libraft 0.15 parses only IPv4 literals. */
static int resolve_ipv4(const char *host, char *out, size_t cap)
{
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) == 1) {
        snprintf(out, cap, "%s", host);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return -LOCKD_EINVAL;
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, out, (socklen_t)cap);
    freeaddrinfo(res);
    return 0;
}

static int cluster_address(const char *raw, size_t len, char *buf, size_t cap, char *err, size_t err_cap,
                           const char *id)
{
    int n = json_decode_string(raw, len, buf, cap - 1);
    if (n <= 0) {
        snprintf(err, err_cap, "cluster file: node %s: address must be a non-empty string of at most %zu bytes", id,
                 cap - 1);
        return -LOCKD_EINVAL;
    }
    buf[n] = '\0';
    return 0;
}

int options_parse_cluster(const char *json, size_t len, struct lockd_config *cfg, char *err, size_t err_cap)
{
    struct json_member m[LOCKD_MAX_NODES + 1];
    char jerr[128];
    int n = json_parse_object(json, len, m, LOCKD_MAX_NODES + 1, jerr, sizeof(jerr));
    if (n == -LOCKD_ETOOBIG || n > LOCKD_MAX_NODES) {
        snprintf(err, err_cap, "cluster file: more than %d nodes", LOCKD_MAX_NODES);
        return -LOCKD_EINVAL;
    }
    if (n < 0) {
        snprintf(err, err_cap, "cluster file: %s", jerr);
        return -LOCKD_EINVAL;
    }
    if (n == 0) {
        snprintf(err, err_cap, "cluster file: no nodes");
        return -LOCKD_EINVAL;
    }
    cfg->n_nodes = 0;
    for (int i = 0; i < n; i++) {
        char id[32];
        if (m[i].key_len == 0 || m[i].key_len >= sizeof(id)) {
            snprintf(err, err_cap, "cluster file: node id \"%.*s\" is not a positive integer", (int)m[i].key_len,
                     m[i].key);
            return -LOCKD_EINVAL;
        }
        memcpy(id, m[i].key, m[i].key_len);
        id[m[i].key_len] = '\0';
        char *end;
        errno = 0;
        unsigned long long v = strtoull(id, &end, 10);
        if (*end != '\0' || errno != 0 || v == 0 || id[0] < '1' || id[0] > '9') {
            snprintf(err, err_cap, "cluster file: node id \"%s\" is not a positive integer", id);
            return -LOCKD_EINVAL;
        }
        struct cluster_node *node = &cfg->nodes[cfg->n_nodes];
        memset(node, 0, sizeof(*node));
        node->id = v;
        char http[LOCKD_ADDR_MAX + 8] = "", raft[LOCKD_ADDR_MAX + 8] = "";
        if (m[i].type == JSON_STRING) {
            if (cluster_address(m[i].value, m[i].value_len, http, sizeof(http), err, err_cap, id) != 0)
                return -LOCKD_EINVAL;
        } else if (m[i].type == JSON_OBJECT) {
            struct json_member sub[4];
            int k = json_parse_object(m[i].value, m[i].value_len, sub, 4, jerr, sizeof(jerr));
            if (k < 0) {
                snprintf(err, err_cap, "cluster file: node %s: %s", id, jerr);
                return -LOCKD_EINVAL;
            }
            for (int j = 0; j < k; j++) {
                char *dst = NULL;
                if (sub[j].key_len == 4 && memcmp(sub[j].key, "http", 4) == 0)
                    dst = http;
                else if (sub[j].key_len == 4 && memcmp(sub[j].key, "raft", 4) == 0)
                    dst = raft;
                if (dst == NULL || sub[j].type != JSON_STRING) {
                    snprintf(err, err_cap,
                             "cluster file: node %s: only \"http\" and \"raft\" string fields are allowed", id);
                    return -LOCKD_EINVAL;
                }
                if (cluster_address(sub[j].value, sub[j].value_len, dst, LOCKD_ADDR_MAX + 8, err, err_cap, id) != 0)
                    return -LOCKD_EINVAL;
            }
            if (http[0] == '\0') {
                snprintf(err, err_cap, "cluster file: node %s: missing \"http\" address", id);
                return -LOCKD_EINVAL;
            }
        } else {
            snprintf(err, err_cap, "cluster file: node %s: address must be a string or an object", id);
            return -LOCKD_EINVAL;
        }
        if (split_host_port(http, node->http_host, sizeof(node->http_host), &node->http_port, LOCKD_DEFAULT_PORT) !=
            0) {
            snprintf(err, err_cap, "cluster file: node %s: bad address \"%s\"", id, http);
            return -LOCKD_EINVAL;
        }
        char raft_host[LOCKD_ADDR_MAX];
        uint16_t raft_port;
        if (raft[0] != '\0') {
            if (split_host_port(raft, raft_host, sizeof(raft_host), &raft_port, 0) != 0 || raft_port == 0) {
                snprintf(err, err_cap, "cluster file: node %s: bad raft address \"%s\"", id, raft);
                return -LOCKD_EINVAL;
            }
        } else {
            snprintf(raft_host, sizeof(raft_host), "%s", node->http_host);
            if (node->http_port + LOCKD_RAFT_PORT_OFFSET > 65535) {
                snprintf(err, err_cap, "cluster file: node %s: port %u + %d is not a valid raft port", id,
                         node->http_port, LOCKD_RAFT_PORT_OFFSET);
                return -LOCKD_EINVAL;
            }
            raft_port = (uint16_t)(node->http_port + LOCKD_RAFT_PORT_OFFSET);
        }
        if (resolve_ipv4(raft_host, node->raft_host, sizeof(node->raft_host)) != 0) {
            snprintf(err, err_cap, "cluster file: node %s: cannot resolve \"%s\" to an IPv4 address", id, raft_host);
            return -LOCKD_EINVAL;
        }
        node->raft_port = raft_port;
        for (unsigned j = 0; j < cfg->n_nodes; j++) {
            const struct cluster_node *o = &cfg->nodes[j];
            if (o->id == node->id) {
                snprintf(err, err_cap, "cluster file: duplicate node id %s", id);
                return -LOCKD_EINVAL;
            }
            if ((o->http_port == node->http_port && strcmp(o->http_host, node->http_host) == 0) ||
                (o->raft_port == node->raft_port && strcmp(o->raft_host, node->raft_host) == 0) ||
                (o->raft_port == node->http_port && strcmp(o->raft_host, node->http_host) == 0) ||
                (o->http_port == node->raft_port && strcmp(o->http_host, node->raft_host) == 0)) {
                snprintf(err, err_cap, "cluster file: nodes %llu and %s share the address %s:%u",
                         (unsigned long long)o->id, id, node->http_host, node->http_port);
                return -LOCKD_EINVAL;
            }
        }
        cfg->n_nodes++;
    }
    return 0;
}

static void config_defaults(struct lockd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    /* One CPU is left to the Raft process, which every write goes through:
     * on 2 CPUs one worker beats two (docs/BENCHMARKS.md, "Workers"). */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long workers = ncpu - 1;
    cfg->workers = workers < 1 ? 1 : (unsigned)(workers < LOCKD_MAX_WORKERS ? workers : LOCKD_MAX_WORKERS);
    cfg->store = STORE_LMDB;
    cfg->max_locks = LOCKD_DEFAULT_MAX_LOCKS;
    cfg->api_timeout_ms = LOCKD_API_TIMEOUT_MS;
    cfg->election_timeout_ms = 800; /* libraft waits 1x-2x: failover ~1.2 s median */
    cfg->heartbeat_timeout_ms = 100;
    cfg->snapshot_threshold = 8192;
    cfg->snapshot_trailing = 2048;
    cfg->ttl_min_ms = LOCKD_TTL_MIN_MS;
    cfg->ttl_max_ms = LOCKD_TTL_MAX_MS;
    cfg->wait_max_ms = LOCKD_WAIT_MAX_MS;
    cfg->log_level = LOG_INFO;
    cfg->admin_gid = -1;
    snprintf(cfg->server_header, sizeof(cfg->server_header), "lockd/%s", LOCKD_VERSION);
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -LOCKD_EIO;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fclose(f);
        return -LOCKD_ENOMEM;
    }
    n = fread(buf, 1, cap, f);
    int too_big = n == cap;
    fclose(f);
    if (too_big) {
        free(buf);
        return -LOCKD_ETOOBIG;
    }
    *out = buf;
    *len = n;
    return 0;
}

#define ERR(...) (snprintf(err, err_cap, __VA_ARGS__), OPTIONS_ERROR)

/* Values that are resolved only once every source (config file, then the
 * command line) has been read: they depend on each other. Strings point
 * into argv or the config file, both alive until options_parse returns. */
struct pending {
    const char *cluster, *listen, *db, *data_dir, *admin;
    uint64_t id;
    int have_id;
};

static const struct opt *find_option(const char *name, size_t len)
{
    for (size_t k = 0; k < N_OPTIONS; k++)
        if (strlen(OPTIONS[k].name) == len && memcmp(OPTIONS[k].name, name, len) == 0)
            return &OPTIONS[k];
    return NULL;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -LOCKD_EINVAL;
}

/* --server-header: "off" sends none; anything else is sent as is, so it
 * must be a valid header value (visible ASCII and inner spaces). */
static int set_server_header(struct lockd_config *cfg, const char *v, const char *where, char *err, size_t err_cap)
{
    size_t n = strlen(v);
    if (strcmp(v, "off") == 0) {
        cfg->server_header[0] = '\0';
        return 0;
    }
    int ok = n >= 1 && n <= LOCKD_SERVER_HEADER_MAX && v[0] != ' ' && v[n - 1] != ' ';
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i] >= 0x20 && v[i] <= 0x7e;
    if (!ok) {
        /* The value is not echoed: it may hold the line breaks it is refused for. */
        snprintf(err, err_cap, "%s must be off or 1..%d printable ASCII characters, no space at either end", where,
                 LOCKD_SERVER_HEADER_MAX);
        return -LOCKD_EINVAL;
    }
    memcpy(cfg->server_header, v, n + 1);
    return 0;
}

/* --admin-group: a group name or a numeric id; resolved now so that a typo
 * is an error at start, naming its line. */
static int set_admin_group(struct lockd_config *cfg, const char *v, const char *where, char *err, size_t err_cap)
{
    char *end;
    errno = 0;
    unsigned long gid = strtoul(v, &end, 10);
    if (v[0] >= '0' && v[0] <= '9' && *end == '\0' && errno == 0 && gid < 0x7fffffff) {
        cfg->admin_gid = (long)gid;
        return 0;
    }
    struct group *g = v[0] != '\0' ? getgrnam(v) : NULL;
    if (g == NULL) {
        snprintf(err, err_cap, "%s: no group \"%.64s\" on this system", where, v);
        return -LOCKD_EINVAL;
    }
    cfg->admin_gid = (long)g->gr_gid;
    return 0;
}

/* Applies one option's value (NULL for a flag given on the command line),
 * from either source. where names it in errors: "option --workers" or
 * "FILE:LINE: workers". */
static int apply_option(const struct opt *o, const char *val, const char *where, struct lockd_config *cfg,
                        struct pending *p, char *err, size_t err_cap)
{
    const char *n = o->name;
    uint64_t num = 0;
    if (o->kind == OPT_FLAG) {
        bool on = true;
        if (val != NULL && parse_bool(val, &on) != 0)
            return ERR("%s: \"%s\" is not true or false", where, val);
        if (strcmp(n, "join") == 0)
            cfg->join = on;
        else if (strcmp(n, "access-log") == 0)
            cfg->access_log = on;
        return 0;
    }
    if (o->kind == OPT_STR && val[0] == '\0')
        return ERR("%s: empty value", where);
    if (o->kind == OPT_UINT) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0)
            return ERR("%s: \"%s\" is not a non-negative integer", where, val);
        num = v;
    } else if (o->kind == OPT_DURATION) {
        if (duration_parse_ms(val, strlen(val), &num) != 0)
            return ERR("%s: \"%s\" is not a duration (e.g. 250ms, 30s, 5m, 1h)", where, val);
    }
    if (strcmp(n, "cluster") == 0)
        p->cluster = val;
    else if (strcmp(n, "id") == 0) {
        if (num == 0)
            return ERR("%s must be a positive integer", where);
        p->id = num;
        p->have_id = 1;
    } else if (strcmp(n, "listen") == 0) {
        char host[LOCKD_ADDR_MAX];
        uint16_t port;
        if (split_host_port(val, host, sizeof(host), &port, LOCKD_DEFAULT_PORT) != 0)
            return ERR("%s: bad address \"%s\" (want HOST:PORT)", where, val);
        p->listen = val;
    } else if (strcmp(n, "workers") == 0) {
        if (num < 1 || num > LOCKD_MAX_WORKERS)
            return ERR("%s must be between 1 and %d", where, LOCKD_MAX_WORKERS);
        cfg->workers = (unsigned)num;
    } else if (strcmp(n, "store") == 0) {
        if (strcmp(val, "lmdb") == 0 || strcmp(val, "boltdb") == 0)
            cfg->store = STORE_LMDB;
        else if (strcmp(val, "memory") == 0 || strcmp(val, "mem") == 0)
            cfg->store = STORE_MEMORY;
        else
            return ERR("%s: \"%s\" is not lmdb or memory", where, val);
    } else if (strcmp(n, "db") == 0)
        p->db = val;
    else if (strcmp(n, "data-dir") == 0)
        p->data_dir = val;
    else if (strcmp(n, "admin-socket") == 0)
        p->admin = val;
    else if (strcmp(n, "admin-group") == 0)
        return set_admin_group(cfg, val, where, err, err_cap) == 0 ? 0 : OPTIONS_ERROR;
    else if (strcmp(n, "server-header") == 0)
        return set_server_header(cfg, val, where, err, err_cap) == 0 ? 0 : OPTIONS_ERROR;
    else if (strcmp(n, "max-locks") == 0) {
        if (num < 1 || num > (1u << 28))
            return ERR("%s must be between 1 and %u", where, 1u << 28);
        cfg->max_locks = (uint32_t)num;
    } else if (strcmp(n, "api-timeout") == 0) {
        if (num < 10)
            return ERR("%s must be at least 10ms", where);
        cfg->api_timeout_ms = num;
    } else if (strcmp(n, "election-timeout") == 0) {
        if (num < 20 || num > 60000)
            return ERR("%s must be between 20ms and 60s", where);
        cfg->election_timeout_ms = (unsigned)num;
    } else if (strcmp(n, "heartbeat-timeout") == 0) {
        if (num < 5 || num > 30000)
            return ERR("%s must be between 5ms and 30s", where);
        cfg->heartbeat_timeout_ms = (unsigned)num;
    } else if (strcmp(n, "snapshot-threshold") == 0) {
        if (num < 2 || num > 1000000000)
            return ERR("%s must be between 2 and 1e9", where);
        cfg->snapshot_threshold = (unsigned)num;
    } else if (strcmp(n, "snapshot-trailing") == 0) {
        if (num > 1000000000)
            return ERR("%s is too large", where);
        cfg->snapshot_trailing = (unsigned)num;
    } else if (strcmp(n, "ttl-min") == 0)
        cfg->ttl_min_ms = num;
    else if (strcmp(n, "ttl-max") == 0)
        cfg->ttl_max_ms = num;
    else if (strcmp(n, "wait-max") == 0)
        cfg->wait_max_ms = num;
    else if (strcmp(n, "log-level") == 0) {
        if (log_parse_level(val, &cfg->log_level) != 0)
            return ERR("%s: \"%s\" is not debug, info, warn or error", where, val);
    }
    return 0;
}

/* One option as the command line gave it. */
struct arg {
    const struct opt *o;
    const char *val; /* NULL for a flag */
};

/* First pass over argv: syntax only (unknown options, missing values),
 * --help and --version at once, and where --config points. Values are
 * checked when applied, after the config file's. */
static enum options_result scan_args(int argc, char **argv, struct arg *args, int *n_args, const char **config,
                                     FILE *out, char *err, size_t err_cap)
{
    *n_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) {
            options_usage(out);
            return OPTIONS_EXIT_OK;
        }
        if (a[0] != '-' || a[1] == '\0')
            return ERR("unexpected argument \"%s\" (see --help)", a);
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        const struct opt *o = find_option(name, eq ? (size_t)(eq - name) : strlen(name));
        if (o == NULL)
            return ERR("unknown option \"%s\" (see --help)", a);
        const char *val = eq ? eq + 1 : NULL;
        if (o->kind == OPT_FLAG) {
            if (eq != NULL)
                return ERR("option --%s takes no value", o->name);
            if (strcmp(o->name, "help") == 0) {
                options_usage(out);
                return OPTIONS_EXIT_OK;
            }
            if (strcmp(o->name, "version") == 0) {
                build_info_print(out, "lockd");
                return OPTIONS_EXIT_OK;
            }
        } else if (val == NULL) {
            if (i + 1 >= argc)
                return ERR("option --%s needs a value (%s)", o->name, o->arg);
            val = argv[++i];
        }
        if (strcmp(o->name, "config") == 0) {
            *config = val;
            continue;
        }
        args[(*n_args)++] = (struct arg){.o = o, .val = val};
    }
    return OPTIONS_RUN;
}

/* Applies every key of the config file at path (keys are the long option
 * names; --config, --help and --version are not keys). */
static enum options_result apply_config_file(const char *path, struct lockd_config *cfg, struct pending *p,
                                             struct config_file *cf, char *err, size_t err_cap)
{
    char why[256];
    unsigned line;
    int rc = config_file_load(path, cf, &line, why, sizeof(why));
    if (rc != 0) {
        if (line == 0)
            return ERR("cannot read config file %s: %s", path, why);
        return ERR("%s:%u: %s", path, line, why);
    }
    int n = snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", path);
    if (n <= 0 || (size_t)n >= sizeof(cfg->config_path))
        return ERR("--config path is too long");
    for (size_t i = 0; i < cf->n; i++) {
        const struct config_entry *e = &cf->entries[i];
        const struct opt *o = find_option(e->key, strlen(e->key));
        if (o == NULL || strcmp(e->key, "config") == 0 || strcmp(e->key, "help") == 0 || strcmp(e->key, "version") == 0)
            return ERR("%s:%u: unknown key \"%s\" (keys are the options of lockd --help without their dashes)", path,
                       e->line, e->key);
        char where[LOCKD_PATH_MAX + 96];
        snprintf(where, sizeof(where), "%s:%u: %s", path, e->line, e->key);
        if (apply_option(o, e->value, where, cfg, p, err, err_cap) != 0)
            return OPTIONS_ERROR;
    }
    return OPTIONS_RUN;
}

/* Resolves what depends on several options: the cluster file, this node's
 * entry, the listen address and the paths under the data directory. */
static enum options_result finish(struct lockd_config *cfg, const struct pending *pd, char *err, size_t err_cap)
{
    const char *cluster = pd->cluster, *listen = pd->listen, *db = pd->db, *data_dir = pd->data_dir, *admin = pd->admin;
    uint64_t id = pd->id;
    int have_id = pd->have_id;
    if (cfg->heartbeat_timeout_ms >= cfg->election_timeout_ms)
        return ERR("--heartbeat-timeout must be shorter than --election-timeout");
    if (cfg->ttl_min_ms < 1 || cfg->ttl_min_ms > cfg->ttl_max_ms || cfg->ttl_max_ms > UINT32_MAX)
        return ERR("--ttl-min must be at least 1ms and not above --ttl-max (at most 49 days)");
    if (cfg->wait_max_ms > 24ull * 3600 * 1000)
        return ERR("--wait-max must be at most 24h");
    if (cluster != NULL) {
        if (!have_id)
            return ERR("-cluster needs -id N (this node's id in %s)", cluster);
        char *text;
        size_t len;
        int rc = read_file(cluster, &text, &len);
        if (rc != 0)
            return ERR("cannot read cluster file %s: %s", cluster,
                       rc == -LOCKD_ETOOBIG ? "too large" : strerror(errno));
        rc = options_parse_cluster(text, len, cfg, err, err_cap);
        free(text);
        if (rc != 0)
            return OPTIONS_ERROR;
        for (unsigned i = 0; i < cfg->n_nodes; i++)
            if (cfg->nodes[i].id == id)
                cfg->self = &cfg->nodes[i];
        if (cfg->self == NULL)
            return ERR("node id %llu is not in the cluster file %s", (unsigned long long)id, cluster);
        cfg->node_id = id;
        snprintf(cfg->listen_host, sizeof(cfg->listen_host), "%s", cfg->self->http_host);
        cfg->listen_port = cfg->self->http_port;
    } else {
        /* Single-node cluster: id 1 (or -id), HTTP on --listen. */
        cfg->node_id = have_id ? id : 1;
        struct cluster_node *self = &cfg->nodes[0];
        self->id = cfg->node_id;
        if (split_host_port(listen ? listen : "127.0.0.1", self->http_host, sizeof(self->http_host), &self->http_port,
                            LOCKD_DEFAULT_PORT) != 0)
            return ERR("option --listen: bad address \"%s\" (want HOST:PORT)", listen);
        if (resolve_ipv4(self->http_host, self->raft_host, sizeof(self->raft_host)) != 0)
            return ERR("option --listen: cannot resolve \"%s\" to an IPv4 address", self->http_host);
        if (strcmp(self->raft_host, "0.0.0.0") == 0)
            snprintf(self->raft_host, sizeof(self->raft_host), "127.0.0.1");
        if (self->http_port + LOCKD_RAFT_PORT_OFFSET > 65535)
            return ERR("port %u + %d is not a valid raft port", self->http_port, LOCKD_RAFT_PORT_OFFSET);
        self->raft_port = (uint16_t)(self->http_port + LOCKD_RAFT_PORT_OFFSET);
        cfg->n_nodes = 1;
        cfg->self = self;
        listen = NULL;
        snprintf(cfg->listen_host, sizeof(cfg->listen_host), "%s", self->http_host);
        cfg->listen_port = self->http_port;
    }
    if (listen != NULL && split_host_port(listen, cfg->listen_host, sizeof(cfg->listen_host), &cfg->listen_port,
                                          cfg->self->http_port) != 0)
        return ERR("option --listen: bad address \"%s\" (want HOST:PORT)", listen);

    int n;
    if (data_dir != NULL)
        n = snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", data_dir);
    else if (cluster != NULL)
        n = snprintf(cfg->data_dir, sizeof(cfg->data_dir), "lockd-data/%llu", (unsigned long long)cfg->node_id);
    else
        n = snprintf(cfg->data_dir, sizeof(cfg->data_dir), "lockd-data");
    if (n <= 0 || (size_t)n >= sizeof(cfg->data_dir) - 32)
        return ERR("--data-dir is too long");
    if (db != NULL)
        n = snprintf(cfg->db_path, sizeof(cfg->db_path), "%s", db);
    else
        n = snprintf(cfg->db_path, sizeof(cfg->db_path), "%.200s/locks.mdb", cfg->data_dir);
    if ((size_t)n >= sizeof(cfg->db_path))
        return ERR("--db is too long");
    snprintf(cfg->raft_dir, sizeof(cfg->raft_dir), "%.200s/raft", cfg->data_dir);
    snprintf(cfg->raft_socket, sizeof(cfg->raft_socket), "%.200s/raft.sock", cfg->data_dir);
    if (admin != NULL)
        n = snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "%s", admin);
    else
        n = snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "%.200s/lockd.sock", cfg->data_dir);
    if ((size_t)n >= sizeof(cfg->admin_socket))
        return ERR("--admin-socket is too long");
    return OPTIONS_RUN;
}

enum options_result options_parse(int argc, char **argv, struct lockd_config *cfg, FILE *out, char *err, size_t err_cap)
{
    config_defaults(cfg);
    struct arg *args = calloc((size_t)argc + 1, sizeof(*args));
    if (args == NULL)
        return ERR("out of memory");
    struct pending pd = {0};
    struct config_file cf = {0};
    const char *config = NULL;
    int n_args;
    enum options_result r = scan_args(argc, argv, args, &n_args, &config, out, err, err_cap);
    if (r == OPTIONS_RUN && config != NULL)
        r = apply_config_file(config, cfg, &pd, &cf, err, err_cap);
    /* The command line after the file: its values win. */
    for (int i = 0; r == OPTIONS_RUN && i < n_args; i++) {
        char where[80];
        snprintf(where, sizeof(where), "option --%s", args[i].o->name);
        if (apply_option(args[i].o, args[i].val, where, cfg, &pd, err, err_cap) != 0)
            r = OPTIONS_ERROR;
    }
    if (r == OPTIONS_RUN)
        r = finish(cfg, &pd, err, err_cap);
    config_file_free(&cf);
    free(args);
    return r;
}
