/* lockctl/main.c: `lockctl`, the operator's command line for one lockd node.
 * Talks to the node's master over its admin Unix socket (proto/admin.proto);
 * never to HTTP, never to raftproc directly. Parses arguments, checks what
 * it can locally (usage errors never reach the server), prints text or
 * one JSON object, and exits 0 (ok), 1 (the operation failed) or 2 (usage
 * error, or lockd could not be reached). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "common/duration.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/names.h"
#include "common/build_info.h"
#include "common/version.h"
#include "lockctl/client.h"
#include "lockctl/output.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

#define DEFAULT_SOCKET "./lockd-data/lockd.sock"
#define INSTALLED_SOCKET "/run/lockd/lockd.sock" /* the Debian package's (lockd.conf) */
#define DEFAULT_TIMEOUT_MS 30000
/* Membership changes: the node waits up to max(api timeout, 30 s) for a new
 * member's catch-up, plus its margin. */
#define CHANGE_TIMEOUT_MS 45000
#define LIST_DEFAULT 100
#define LIST_MAX 10000

/* ---- global state of one run -------------------------------------------- */

static struct {
    const char *socket;
    int json;
    uint64_t timeout_ms;
    int timeout_given; /* --timeout was given: it overrides every default */
} g = {.timeout_ms = DEFAULT_TIMEOUT_MS};

struct command;
typedef int (*command_fn)(const struct command *c, int argc, char **argv);

struct command {
    const char *name;
    const char *args;    /* synopsis after the name */
    const char *summary; /* one line for the overview */
    const char *help;    /* options and details for `lockctl NAME --help` */
    command_fn run;
};

static const struct command COMMANDS[];

static void usage(FILE *f)
{
    fprintf(f, "Usage: lockctl [--socket PATH] [--json] [--timeout DUR] COMMAND [ARGS]\n\n"
               "Operator's tool for one lockd node, over its admin Unix socket.\n\n"
               "Commands:\n");
    for (const struct command *c = COMMANDS; c->name != NULL; c++) {
        char left[80];
        snprintf(left, sizeof(left), "%s %s", c->name, c->args);
        if (strlen(left) > 20)
            fprintf(f, "  %s\n  %-20s %s\n", left, "", c->summary);
        else
            fprintf(f, "  %-20s %s\n", left, c->summary);
    }
    fprintf(f, "\nGlobal options (before or after the command):\n"
               "  --socket PATH    admin socket of the node (default: $LOCKD_SOCKET, else\n"
               "                   " DEFAULT_SOCKET ", which is where `lockd` started in\n"
               "                   this directory puts it, else " INSTALLED_SOCKET ",\n"
               "                   the installed service's; lockd --admin-socket sets it)\n"
               "  --json           print one JSON object instead of text\n"
               "  --timeout DUR    give up waiting for the node after DUR (default 30s;\n"
               "                   45s for members add/remove and transfer)\n"
               "  -h, --help       this help; `lockctl COMMAND --help` for one command\n"
               "  --version        print the version\n\n"
               "Exit status: 0 done; 1 the operation failed (e.g. not locked, held by\n"
               "another owner); 2 usage error, or the node could not be reached.\n");
}

static void command_usage(const struct command *c, FILE *f)
{
    fprintf(f, "Usage: lockctl [global options] %s %s\n\n%s\n%s", c->name, c->args, c->summary, c->help);
    fprintf(f, "\nGlobal options: --socket PATH, --json, --timeout DUR (see lockctl --help).\n");
}

static int usage_error(const struct command *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const struct command *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lockctl%s%s: ", c ? " " : "", c ? c->name : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see lockctl %s%s--help)\n", c ? c->name : "", c ? " " : "");
    return EXIT_USAGE;
}

/* ---- argument parsing of one command ------------------------------------- */

struct opt_spec {
    const char *name; /* without "--" */
    const char **val; /* set for an option with a value */
    int *flag;        /* set to 1 for a flag */
};

/* Parses argv[0..argc) (the words after the command name): --name VALUE,
 * --name=VALUE, flags, and up to max_pos positionals ("--" ends options).
 * Returns 0, 1 when --help was printed, or EXIT_USAGE (message printed). */
static int parse_args(const struct command *c, int argc, char **argv, const struct opt_spec *specs, const char **pos,
                      int max_pos, int *n_pos)
{
    int options = 1;
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = 0;
            continue;
        }
        if (options && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            command_usage(c, stdout);
            return 1;
        }
        if (options && a[0] == '-' && a[1] == '-' && a[2] != '\0') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            const struct opt_spec *o = NULL;
            for (const struct opt_spec *s = specs; s && s->name; s++)
                if (strlen(s->name) == nlen && memcmp(s->name, name, nlen) == 0)
                    o = s;
            if (o == NULL)
                return usage_error(c, "unknown option %.*s", (int)(nlen + 2), a);
            if (o->flag != NULL) {
                if (eq != NULL)
                    return usage_error(c, "option --%s takes no value", o->name);
                *o->flag = 1;
            } else if (eq != NULL) {
                *o->val = eq + 1;
            } else if (i + 1 < argc) {
                *o->val = argv[++i];
            } else {
                return usage_error(c, "option --%s needs a value", o->name);
            }
            continue;
        }
        if (options && a[0] == '-' && a[1] != '\0')
            return usage_error(c, "unknown option %s (put -- before a lock name that starts with -)", a);
        if (*n_pos == max_pos)
            return usage_error(c, "unexpected argument \"%s\"", a);
        pos[(*n_pos)++] = a;
    }
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0)
        return -1;
    *out = v;
    return 0;
}

static int check_name(const struct command *c, const char *what, const char *name)
{
    char err[128];
    if (names_check_lock(name, strlen(name), err, sizeof(err)) != 0)
        return usage_error(c, "%s \"%s\": %s", what, name, err);
    return 0;
}

/* ---- answers ----------------------------------------------------------- */

static const char *status_word(Lockd__AdminStatus s)
{
    switch (s) {
    case LOCKD__ADMIN_STATUS__ADMIN_OK:
        return "ok";
    case LOCKD__ADMIN_STATUS__ADMIN_NOT_FOUND:
        return "not_found";
    case LOCKD__ADMIN_STATUS__ADMIN_CONFLICT:
        return "conflict";
    case LOCKD__ADMIN_STATUS__ADMIN_NOT_LEADER:
        return "not_leader";
    case LOCKD__ADMIN_STATUS__ADMIN_TIMEOUT:
        return "timeout";
    case LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE:
        return "unavailable";
    case LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST:
        return "bad_request";
    case LOCKD__ADMIN_STATUS__ADMIN_REFUSED:
        return "refused";
    default:
        return "internal";
    }
}

static void json_lock(struct jw *w, const Lockd__AdminLock *l)
{
    jw_obj(w);
    jw_key(w, "name");
    jw_str(w, l->name);
    jw_key(w, "locked");
    jw_bool(w, 1);
    jw_key(w, "owner");
    jw_str_or_null(w, l->owner);
    jw_key(w, "token");
    jw_u64(w, l->token);
    jw_key(w, "acquired_at_ms");
    jw_u64(w, l->acquired_at_ms);
    jw_key(w, "renewed_at_ms");
    jw_u64(w, l->renewed_at_ms);
    jw_key(w, "ttl_ms");
    if (l->ttl_ms)
        jw_u64(w, l->ttl_ms);
    else
        jw_null(w);
    jw_key(w, "expires_in_ms");
    if (l->ttl_ms)
        jw_u64(w, l->expires_in_ms);
    else
        jw_null(w);
    jw_key(w, "age_ms");
    jw_u64(w, l->age_ms);
    jw_key(w, "revision");
    jw_u64(w, l->revision);
    jw_end_obj(w);
}

/* A failed operation: exit 1 (2 for a request the node calls malformed).
 * Text on stderr, or the JSON object on stdout with --json. */
static int report_failure(const struct command *c, const Lockd__AdminResponse *r)
{
    if (g.json) {
        struct jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "error");
        jw_str(&w, r->error[0] ? r->error : status_word(r->status));
        jw_key(&w, "status");
        jw_str(&w, status_word(r->status));
        if (r->n_locks > 0) {
            jw_key(&w, "holder");
            json_lock(&w, r->locks[0]);
        }
        if (r->status == LOCKD__ADMIN_STATUS__ADMIN_NOT_LEADER && r->leader_id != 0) {
            jw_key(&w, "leader");
            jw_obj(&w);
            jw_key(&w, "id");
            jw_u64(&w, r->leader_id);
            jw_key(&w, "address");
            jw_str_or_null(&w, r->leader_address);
            jw_end_obj(&w);
        }
        jw_end_obj(&w);
        jw_finish(&w);
    } else {
        fprintf(stderr, "lockctl %s: %s\n", c->name, r->error[0] ? r->error : status_word(r->status));
    }
    return r->status == LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST ? EXIT_USAGE : EXIT_FAILED;
}

struct call {
    const struct command *c;
    int rc;                                                   /* exit status decided by the frames */
    int (*ok)(struct call *k, const Lockd__AdminResponse *r); /* prints a good answer */
    /* list */
    struct jw w;
    struct table t;
    int frames;
    char next[LOCKD_NAME_MAX + 1];
};

static int call_frame(const Lockd__AdminResponse *r, void *arg)
{
    struct call *k = arg;
    if (r->status != LOCKD__ADMIN_STATUS__ADMIN_OK) {
        if (k->frames > 0) {
            /* Cannot happen (errors come first); do not leave half a JSON. */
            fprintf(stderr, "lockctl %s: %s\n", k->c->name, r->error);
            k->rc = EXIT_FAILED;
        } else {
            k->rc = report_failure(k->c, r);
        }
        return 1;
    }
    int rc = k->ok(k, r);
    k->frames++;
    return rc;
}

/* Runs req; returns the exit status. */
static int call(const struct command *c, const Lockd__AdminRequest *req, struct call *k)
{
    char err[512];
    k->c = c;
    k->rc = 0;
    int rc = client_call(g.socket, req, g.timeout_ms, call_frame, k, err, sizeof(err));
    if (rc == CLIENT_ECONNECT || rc == CLIENT_EIO) {
        fprintf(stderr, "lockctl: %s\n", err);
        return EXIT_USAGE;
    }
    return k->rc;
}

/* A command with no arguments of its own (status, snapshot, reload): the
 * global options, one request, its answer printed by ok. */
static int call_without_args(const struct command *c, int argc, char **argv, Lockd__AdminCommand command,
                             int (*ok)(struct call *k, const Lockd__AdminResponse *r))
{
    int n_pos, rc = parse_args(c, argc, argv, NULL, NULL, 0, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = command;
    struct call k = {.ok = ok};
    return call(c, &req, &k);
}

/* ---- status ---------------------------------------------------------------- */

static void kv(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kv(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-16s ", key);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static int status_ok(struct call *k, const Lockd__AdminResponse *r)
{
    const Lockd__AdminNodeStatus *n = r->node;
    if (n == NULL) {
        fprintf(stderr, "lockctl status: the node sent no status\n");
        k->rc = EXIT_FAILED;
        return 1;
    }
    char up[32], contact[32];
    fmt_duration(n->uptime_ms, up, sizeof(up));
    fmt_duration(n->last_contact_ago_ms, contact, sizeof(contact));
    if (g.json) {
        struct jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "node_id");
        jw_u64(&w, n->node_id);
        jw_key(&w, "role");
        jw_str(&w, n->role);
        jw_key(&w, "term");
        jw_u64(&w, n->term);
        jw_key(&w, "leader");
        if (n->leader_id == 0) {
            jw_null(&w);
        } else {
            jw_obj(&w);
            jw_key(&w, "id");
            jw_u64(&w, n->leader_id);
            jw_key(&w, "address");
            jw_str_or_null(&w, n->leader_address);
            jw_end_obj(&w);
        }
        jw_key(&w, "commit_index");
        jw_u64(&w, n->commit_index);
        jw_key(&w, "applied_index");
        jw_u64(&w, n->applied_index);
        jw_key(&w, "lock_count");
        jw_u64(&w, n->lock_count);
        jw_key(&w, "capacity");
        jw_u64(&w, n->capacity);
        jw_key(&w, "next_token");
        jw_u64(&w, n->next_token);
        jw_key(&w, "table_state");
        jw_str(&w, n->table_state);
        jw_key(&w, "last_contact_ago_ms");
        jw_u64(&w, n->last_contact_ago_ms);
        jw_key(&w, "uptime_ms");
        jw_u64(&w, n->uptime_ms);
        jw_key(&w, "version");
        jw_str(&w, n->version);
        jw_key(&w, "workers");
        jw_u64(&w, n->workers);
        jw_key(&w, "workers_alive");
        jw_u64(&w, n->workers_alive);
        jw_key(&w, "raft_pid");
        if (n->raft_pid > 0)
            jw_i64(&w, n->raft_pid);
        else
            jw_null(&w);
        jw_key(&w, "restarts");
        jw_obj(&w);
        jw_key(&w, "raft");
        jw_u64(&w, n->raft_restarts);
        jw_key(&w, "worker");
        jw_u64(&w, n->worker_restarts);
        jw_end_obj(&w);
        jw_key(&w, "http_address");
        jw_str(&w, n->http_address);
        jw_key(&w, "store");
        jw_str(&w, n->store);
        jw_key(&w, "data_dir");
        jw_str(&w, n->data_dir);
        jw_key(&w, "log_level");
        jw_str(&w, n->log_level);
        jw_key(&w, "master_pid");
        jw_i64(&w, n->master_pid);
        jw_end_obj(&w);
        jw_finish(&w);
        return 0;
    }
    kv("node:", "%" PRIu64, n->node_id);
    kv("role:", "%s", n->role);
    kv("term:", "%" PRIu64, n->term);
    if (n->leader_id != 0)
        kv("leader:", "%" PRIu64 " (%s)", n->leader_id, n->leader_address[0] ? n->leader_address : "address unknown");
    else
        kv("leader:", "none known");
    kv("commit index:", "%" PRIu64, n->commit_index);
    kv("applied index:", "%" PRIu64, n->applied_index);
    kv("locks:", "%u of %u", n->lock_count, n->capacity);
    kv("next token:", "%" PRIu64, n->next_token);
    kv("table:", "%s", n->table_state);
    if (n->last_contact_ago_ms != 0)
        kv("last contact:", "%s ago", contact);
    kv("uptime:", "%s", up);
    kv("version:", "%s", n->version);
    kv("workers:", "%u alive of %u", n->workers_alive, n->workers);
    if (n->raft_pid > 0)
        kv("raft pid:", "%d", (int)n->raft_pid);
    else
        kv("raft pid:", "not running");
    kv("restarts:", "raft %u, workers %u", n->raft_restarts, n->worker_restarts);
    kv("http:", "%s", n->http_address);
    kv("store:", "%s", n->store);
    kv("data dir:", "%s", n->data_dir);
    kv("log level:", "%s", n->log_level);
    kv("master pid:", "%d", (int)n->master_pid);
    return 0;
}

static int cmd_status(const struct command *c, int argc, char **argv)
{
    return call_without_args(c, argc, argv, LOCKD__ADMIN_COMMAND__ADMIN_CMD_STATUS, status_ok);
}

/* ---- list, show ------------------------------------------------------------- */

static void lock_cells(const Lockd__AdminLock *l, char *token, char *age, char *left, size_t cap)
{
    snprintf(token, cap, "%" PRIu64, l->token);
    fmt_duration(l->age_ms, age, cap);
    if (l->ttl_ms)
        fmt_duration(l->expires_in_ms, left, cap);
    else
        snprintf(left, cap, "-");
}

static int list_ok(struct call *k, const Lockd__AdminResponse *r)
{
    if (k->frames == 0) {
        if (g.json) {
            jw_init(&k->w, stdout);
            jw_obj(&k->w);
            jw_key(&k->w, "locks");
            jw_arr(&k->w);
        } else {
            const char *head[] = {"NAME", "OWNER", "TOKEN", "AGE", "TTL-LEFT"};
            table_init(&k->t, 5);
            table_row(&k->t, head);
        }
    }
    for (size_t i = 0; i < r->n_locks; i++) {
        const Lockd__AdminLock *l = r->locks[i];
        if (g.json) {
            json_lock(&k->w, l);
            continue;
        }
        char token[32], age[32], left[32];
        lock_cells(l, token, age, left, sizeof(token));
        const char *row[] = {l->name, l->owner[0] ? l->owner : "-", token, age, left};
        table_row(&k->t, row);
    }
    if (!r->more)
        snprintf(k->next, sizeof(k->next), "%s", r->next);
    return 0;
}

static int cmd_list(const struct command *c, int argc, char **argv)
{
    const char *prefix = "", *limit_s = NULL, *after = "";
    const struct opt_spec specs[] = {
        {"prefix", &prefix, NULL}, {"limit", &limit_s, NULL}, {"after", &after, NULL}, {0}};
    int n_pos, rc = parse_args(c, argc, argv, specs, NULL, 0, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    uint64_t limit = LIST_DEFAULT;
    if (limit_s != NULL && (parse_u64(limit_s, &limit) != 0 || limit < 1 || limit > LIST_MAX))
        return usage_error(c, "--limit \"%s\" is not a number from 1 to %d", limit_s, LIST_MAX);
    if (prefix[0] && (rc = check_name(c, "--prefix", prefix)) != 0)
        return rc;
    if (after[0] && (rc = check_name(c, "--after", after)) != 0)
        return rc;
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_LIST;
    req.prefix = (char *)prefix;
    req.after = (char *)after;
    req.limit = (uint32_t)limit;
    struct call k = {.ok = list_ok};
    rc = call(c, &req, &k);
    if (rc != 0 || k.frames == 0) {
        if (k.frames > 0 && !g.json)
            table_free(&k.t);
        return rc;
    }
    if (g.json) {
        jw_end_arr(&k.w);
        jw_key(&k.w, "next");
        jw_str_or_null(&k.w, k.next);
        jw_end_obj(&k.w);
        jw_finish(&k.w);
    } else {
        table_print(&k.t, stdout);
        table_free(&k.t);
        if (k.next[0])
            fprintf(stderr, "(more locks: lockctl list%s%s --after %s)\n", prefix[0] ? " --prefix " : "", prefix,
                    k.next);
    }
    return 0;
}

static int show_ok(struct call *k, const Lockd__AdminResponse *r)
{
    if (r->n_locks != 1) {
        fprintf(stderr, "lockctl show: the node sent no lock\n");
        k->rc = EXIT_FAILED;
        return 1;
    }
    const Lockd__AdminLock *l = r->locks[0];
    if (g.json) {
        struct jw w;
        jw_init(&w, stdout);
        json_lock(&w, l);
        jw_finish(&w);
        return 0;
    }
    char age[32], ttl[32], left[32], when[64] = "";
    fmt_duration(l->age_ms, age, sizeof(age));
    time_t secs = (time_t)(l->acquired_at_ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    kv("name:", "%s", l->name);
    kv("owner:", "%s", l->owner[0] ? l->owner : "(anonymous)");
    kv("token:", "%" PRIu64, l->token);
    kv("acquired:", "%s.%03uZ (%s ago)", when, (unsigned)(l->acquired_at_ms % 1000), age);
    if (l->ttl_ms) {
        duration_format_ms(l->ttl_ms, ttl, sizeof(ttl));
        fmt_duration(l->expires_in_ms, left, sizeof(left));
        kv("ttl:", "%s", ttl);
        kv("expires in:", "%s", left);
    } else {
        kv("ttl:", "none");
    }
    kv("revision:", "%" PRIu64, l->revision);
    return 0;
}

static int cmd_show(const struct command *c, int argc, char **argv)
{
    const char *pos[1];
    int n_pos, rc = parse_args(c, argc, argv, NULL, pos, 1, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (n_pos != 1)
        return usage_error(c, "which lock? NAME is missing");
    if ((rc = check_name(c, "lock name", pos[0])) != 0)
        return rc;
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_SHOW;
    req.name = (char *)pos[0];
    struct call k = {.ok = show_ok};
    return call(c, &req, &k);
}

/* ---- unlock ------------------------------------------------------------------- */

static int unlock_ok(struct call *k, const Lockd__AdminResponse *r)
{
    if (g.json) {
        struct jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "released");
        jw_bool(&w, 1);
        jw_key(&w, "message");
        jw_str(&w, r->message);
        if (r->index != 0) {
            jw_key(&w, "index");
            jw_u64(&w, r->index);
        }
        jw_end_obj(&w);
        jw_finish(&w);
    } else {
        printf("%s\n", r->message);
    }
    return 0;
}

static int cmd_unlock(const struct command *c, int argc, char **argv)
{
    const char *pos[1], *owner = "", *token_s = NULL;
    int force = 0;
    const struct opt_spec specs[] = {{"force", NULL, &force}, {"owner", &owner, NULL}, {"token", &token_s, NULL}, {0}};
    int n_pos, rc = parse_args(c, argc, argv, specs, pos, 1, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (n_pos != 1)
        return usage_error(c, "which lock? NAME is missing");
    if ((rc = check_name(c, "lock name", pos[0])) != 0)
        return rc;
    char err[128];
    if (owner[0] && names_check_owner(owner, strlen(owner), err, sizeof(err)) != 0)
        return usage_error(c, "--owner \"%s\": %s", owner, err);
    uint64_t token = 0;
    if (token_s != NULL && (parse_u64(token_s, &token) != 0 || token == 0))
        return usage_error(c, "--token \"%s\" is not a positive integer", token_s);
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_UNLOCK;
    req.name = (char *)pos[0];
    req.owner = (char *)owner;
    req.token = token;
    req.force = force;
    struct call k = {.ok = unlock_ok};
    return call(c, &req, &k);
}

/* ---- members, reload, log-level ---------------------------------------------- */

static void json_leader(struct jw *w, const Lockd__AdminResponse *r)
{
    jw_key(w, "leader");
    if (r->leader_id == 0) {
        jw_null(w);
        return;
    }
    jw_obj(w);
    jw_key(w, "id");
    jw_u64(w, r->leader_id);
    jw_key(w, "address");
    jw_str_or_null(w, r->leader_address);
    jw_end_obj(w);
}

static int members_ok(struct call *k, const Lockd__AdminResponse *r)
{
    (void)k;
    /* A master older than the live view sends no source: its list is the
     * cluster file's. */
    const char *source = r->source[0] ? r->source : "cluster_file";
    if (g.json) {
        struct jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "members");
        jw_arr(&w);
        for (size_t i = 0; i < r->n_members; i++) {
            const Lockd__AdminMember *m = r->members[i];
            jw_obj(&w);
            jw_key(&w, "id");
            jw_u64(&w, m->id);
            jw_key(&w, "http_address");
            jw_str_or_null(&w, m->http_address);
            jw_key(&w, "raft_address");
            jw_str(&w, m->raft_address);
            jw_key(&w, "role");
            jw_str_or_null(&w, m->role);
            jw_key(&w, "leader");
            jw_bool(&w, m->leader);
            jw_key(&w, "self");
            jw_bool(&w, m->self);
            jw_end_obj(&w);
        }
        jw_end_arr(&w);
        json_leader(&w, r);
        jw_key(&w, "source");
        jw_str(&w, source);
        if (r->message[0]) {
            jw_key(&w, "message");
            jw_str(&w, r->message);
        }
        jw_end_obj(&w);
        jw_finish(&w);
        return 0;
    }
    struct table t;
    table_init(&t, 6);
    const char *head[] = {"ID", "HTTP", "RAFT", "ROLE", "LEADER", "SELF"};
    table_row(&t, head);
    for (size_t i = 0; i < r->n_members; i++) {
        const Lockd__AdminMember *m = r->members[i];
        char id[32];
        snprintf(id, sizeof(id), "%" PRIu64, m->id);
        const char *row[] = {id,
                             m->http_address[0] ? m->http_address : "-",
                             m->raft_address,
                             m->role[0] ? m->role : "?",
                             m->leader ? "yes" : "no",
                             m->self ? "yes" : "no"};
        table_row(&t, row);
    }
    table_print(&t, stdout);
    table_free(&t);
    if (r->message[0])
        fprintf(stderr, "lockctl members: %s\n", r->message);
    return 0;
}

/* A membership change done (or nothing to do): its message. */
static int change_ok(struct call *k, const Lockd__AdminResponse *r)
{
    (void)k;
    if (g.json) {
        struct jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        jw_key(&w, "ok");
        jw_bool(&w, 1);
        jw_key(&w, "message");
        jw_str(&w, r->message);
        json_leader(&w, r);
        jw_end_obj(&w);
        jw_finish(&w);
    } else {
        printf("%s\n", r->message);
    }
    return 0;
}

static int parse_node_id(const struct command *c, const char *s, int zero_ok, uint64_t *out)
{
    if (parse_u64(s, out) != 0 || (*out == 0 && !zero_ok))
        return usage_error(c, "node id \"%s\" is not a positive integer", s);
    return 0;
}

/* "a.b.c.d:port": what the Raft library's TCP transport takes. */
static int check_raft_address(const struct command *c, const char *s)
{
    const char *colon = strrchr(s, ':');
    char host[INET_ADDRSTRLEN];
    struct in_addr ia;
    uint64_t port;
    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(host) || parse_u64(colon + 1, &port) != 0 ||
        port == 0 || port > 65535)
        return usage_error(c, "\"%s\" is not a Raft address a.b.c.d:port", s);
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (inet_pton(AF_INET, host, &ia) != 1)
        return usage_error(c, "\"%s\" is not a Raft address a.b.c.d:port (an IPv4 address, not a name)", s);
    return 0;
}

/* Runs a membership change with its longer default timeout. */
static int call_change(const struct command *c, const Lockd__AdminRequest *req)
{
    if (!g.timeout_given && g.timeout_ms < CHANGE_TIMEOUT_MS)
        g.timeout_ms = CHANGE_TIMEOUT_MS;
    struct call k = {.ok = change_ok};
    return call(c, req, &k);
}

static const struct command *find_command(const char *name);

static int cmd_members_add(const struct command *c, int argc, char **argv)
{
    const char *pos[2];
    int n_pos, rc = parse_args(c, argc, argv, NULL, pos, 2, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (n_pos != 2)
        return usage_error(c, "%s is missing", n_pos == 0 ? "ID RAFT_ADDRESS" : "RAFT_ADDRESS");
    uint64_t id;
    if ((rc = parse_node_id(c, pos[0], 0, &id)) != 0 || (rc = check_raft_address(c, pos[1])) != 0)
        return rc;
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD;
    req.node_id = id;
    req.address = (char *)pos[1];
    return call_change(c, &req);
}

static int cmd_members_remove(const struct command *c, int argc, char **argv)
{
    const char *pos[1];
    int n_pos, rc = parse_args(c, argc, argv, NULL, pos, 1, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (n_pos != 1)
        return usage_error(c, "which node? ID is missing");
    uint64_t id;
    if ((rc = parse_node_id(c, pos[0], 0, &id)) != 0)
        return rc;
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_REMOVE;
    req.node_id = id;
    return call_change(c, &req);
}

static int cmd_transfer(const struct command *c, int argc, char **argv)
{
    const char *pos[1];
    int n_pos, rc = parse_args(c, argc, argv, NULL, pos, 1, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    uint64_t id = 0;
    if (n_pos == 1 && (rc = parse_node_id(c, pos[0], 1, &id)) != 0)
        return rc;
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_TRANSFER;
    req.node_id = id;
    return call_change(c, &req);
}

/* The leader takes a Raft snapshot now. The node relays it for up to its
 * API timeout + 1 s: the default --timeout is longer. */
static int cmd_snapshot(const struct command *c, int argc, char **argv)
{
    return call_without_args(c, argc, argv, LOCKD__ADMIN_COMMAND__ADMIN_CMD_SNAPSHOT, change_ok);
}

/* `members`, `members add ...`, `members remove ...`. */
static int cmd_members(const struct command *c, int argc, char **argv)
{
    if (argc > 0 && (strcmp(argv[0], "add") == 0 || strcmp(argv[0], "remove") == 0)) {
        const struct command *sub = find_command(strcmp(argv[0], "add") == 0 ? "members add" : "members remove");
        return sub->run(sub, argc - 1, argv + 1);
    }
    const char *pos[1];
    int n_pos, rc = parse_args(c, argc, argv, NULL, pos, 1, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (n_pos == 1)
        return usage_error(c, "unknown subcommand \"%s\" (add or remove)", pos[0]);
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBERS;
    struct call k = {.ok = members_ok};
    return call(c, &req, &k);
}

static int message_ok(struct call *k, const Lockd__AdminResponse *r)
{
    if (g.json) {
        struct jw w;
        jw_init(&w, stdout);
        jw_obj(&w);
        if (r->level[0]) {
            jw_key(&w, "level");
            jw_str(&w, r->level);
        } else {
            jw_key(&w, "reloading");
            jw_bool(&w, 1);
        }
        jw_key(&w, "message");
        jw_str(&w, r->message);
        jw_end_obj(&w);
        jw_finish(&w);
    } else {
        printf("%s\n", r->message);
    }
    return 0;
}

static int cmd_reload(const struct command *c, int argc, char **argv)
{
    return call_without_args(c, argc, argv, LOCKD__ADMIN_COMMAND__ADMIN_CMD_RELOAD, message_ok);
}

static int cmd_log_level(const struct command *c, int argc, char **argv)
{
    const char *pos[1];
    int n_pos, rc = parse_args(c, argc, argv, NULL, pos, 1, &n_pos);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    enum log_level level;
    if (n_pos != 1)
        return usage_error(c, "LEVEL is missing (debug, info, warn or error)");
    if (log_parse_level(pos[0], &level) != 0)
        return usage_error(c, "\"%s\" is not debug, info, warn or error", pos[0]);
    Lockd__AdminRequest req = LOCKD__ADMIN_REQUEST__INIT;
    req.command = LOCKD__ADMIN_COMMAND__ADMIN_CMD_LOG_LEVEL;
    req.level = (char *)pos[0];
    struct call k = {.ok = message_ok};
    return call(c, &req, &k);
}

static int cmd_help(const struct command *c, int argc, char **argv);

static const struct command COMMANDS[] = {
    {"status", "", "node, role, term, leader, indexes, lock count, uptime, version",
     "\nPrints one \"key: value\" line per fact (--json: one object).\n", cmd_status},
    {"list", "[--prefix P] [--limit N] [--after NAME]", "held locks in name order: NAME OWNER TOKEN AGE TTL-LEFT",
     "\nOptions:\n"
     "  --prefix P     only names starting with P\n"
     "  --limit N      at most N locks (default 100, at most 10000)\n"
     "  --after NAME   start after NAME (the next page; --json gives it as \"next\")\n",
     cmd_list},
    {"show", "NAME", "one lock: owner, token, acquired, TTL, time left", "\nExit status 1 if NAME is not locked.\n",
     cmd_show},
    {"unlock", "NAME [--force] [--owner O] [--token T]", "release a lock, as DELETE /lock/NAME",
     "\nOptions:\n"
     "  --owner O      release as owner O (needed for a lock that has an owner)\n"
     "  --token T      only if its fencing token is T\n"
     "  --force        release it whoever holds it (an administrator's override)\n"
     "\nExit status 1 if NAME is not locked, is held by another owner (without\n"
     "--force), or this node is not the leader (run lockctl on the leader).\n",
     cmd_unlock},
    {"members", "", "the Raft configuration: id, HTTP and Raft address, role, leader, self",
     "\nAsks this node's Raft process for the configuration it knows (any node\n"
     "answers, leader or not) and adds the HTTP address of each member that\n"
     "this node's cluster file lists (\"-\" for one it does not: a node added at\n"
     "run time). ROLE is voter, standby or spare. If the Raft process does not\n"
     "answer, the cluster file is shown instead (ROLE \"?\"), with a note on stderr;\n"
     "--json has \"source\": \"raft\" or \"cluster_file\".\n"
     "\nSubcommands (lockctl members add --help, ...):\n"
     "  members add ID RAFT_ADDRESS   add a node, catch it up, make it a voter\n"
     "  members remove ID             remove a node from the configuration\n",
     cmd_members},
    {"members add", "ID RAFT_ADDRESS", "add node ID (Raft address a.b.c.d:port) as a voter",
     "\nStart the new node first, with a cluster file that lists it and --join\n"
     "(so that it does not bootstrap a cluster of its own), then run this on any\n"
     "member: a follower forwards the change to the leader. The leader adds the\n"
     "node as a spare, sends it the log (or a snapshot) until it has caught up,\n"
     "then promotes it to voter; only then does this command return.\n"
     "RAFT_ADDRESS is the new node's Raft address: IPv4 and port, by default its\n"
     "HTTP port + 1000 (e.g. lockctl members add 4 127.0.0.1:3084).\n"
     "\nExit status 1 if the change is refused (the id or address is already a\n"
     "member's, or the leader's Raft library says no), no leader can take it, or\n"
     "it did not finish in time (outcome unknown: see lockctl members).\n",
     cmd_members_add},
    {"members remove", "ID", "remove node ID from the Raft configuration",
     "\nRun on any member; a follower forwards the change to the leader. The\n"
     "removed node stops taking part in elections and commits; stop its lockd\n"
     "afterwards. Removing the leader makes it step down once the change commits.\n"
     "\nExit status 1 if ID is not a member, the change is refused, no leader can\n"
     "take it, or it did not finish in time (outcome unknown).\n",
     cmd_members_remove},
    {"transfer", "[ID]", "hand leadership to voter ID (default: the most up-to-date one)",
     "\nThe leader makes sure ID has its whole log, then lets it start an election\n"
     "it wins. Useful before stopping the leader for maintenance. Run on any\n"
     "member (a follower forwards it). Without ID, or with 0, the leader picks.\n"
     "\nExit status 0 also when ID already leads; 1 if ID is not a voter, the\n"
     "transfer is refused or fails, or no leader is known.\n",
     cmd_transfer},
    {"snapshot", "", "make the leader take a Raft snapshot now",
     "\nThe leader's Raft process writes a snapshot of the lock table at once,\n"
     "instead of waiting for its --snapshot-threshold entries, and may then trim\n"
     "its log. Run on any member: a follower forwards it to the leader. Prints\n"
     "which node took it (--json: \"message\" and \"leader\").\n"
     "\nExit status 1 if no leader is known, the leader refuses, or it does not\n"
     "answer in time (the node waits its API timeout + 1 s).\n",
     cmd_snapshot},
    {"reload", "", "replace the HTTP workers (as SIGHUP); no request is refused",
     "\nNew workers start first; the old ones finish their requests and exit.\n", cmd_reload},
    {"log-level", "LEVEL", "set the log level: debug, info, warn or error",
     "\nApplies to every process of the node at once: the master, every HTTP\n"
     "worker and the raft process (each within a loop turn). Workers and a raft\n"
     "process started later (reload, restart) use it too. Not kept across a\n"
     "restart of lockd: use --log-level for that.\n",
     cmd_log_level},
    {"help", "[COMMAND]", "this help, or one command's", "", cmd_help},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct command *find_command(const char *name)
{
    for (const struct command *c = COMMANDS; c->name != NULL; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static int cmd_help(const struct command *c, int argc, char **argv)
{
    if (argc == 0) {
        usage(stdout);
        return 0;
    }
    char joined[64];
    snprintf(joined, sizeof(joined), "%s%s%s", argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
    const struct command *t = find_command(joined);
    if (t == NULL || argc > 2)
        return usage_error(c, "no command \"%s\"", joined);
    command_usage(t, stdout);
    return 0;
}

/* Global options may come before or after the command; everything else
 * (in order) is the command and its arguments, collected in rest (argc + 1
 * slots). "--" ends the search. */
static int lockctl_main(int argc, char **argv, char **rest)
{
    int n = 0, done = 0;
    const char *timeout_s = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (done || strcmp(a, "--") == 0) {
            done = 1;
            rest[n++] = argv[i];
            continue;
        }
        const char *val = NULL;
        int is_socket = strncmp(a, "--socket", 8) == 0 && (a[8] == '\0' || a[8] == '=');
        int is_timeout = strncmp(a, "--timeout", 9) == 0 && (a[9] == '\0' || a[9] == '=');
        if (is_socket || is_timeout) {
            const char *eq = strchr(a, '=');
            if (eq != NULL)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return usage_error(NULL, "option %s needs a value", a);
            if (is_socket) {
                g.socket = val;
            } else {
                timeout_s = val;
                g.timeout_given = 1;
            }
        } else if (strcmp(a, "--json") == 0) {
            g.json = 1;
        } else if (strcmp(a, "--version") == 0 && n == 0) {
            build_info_print(stdout, "lockctl");
            return 0;
        } else if ((strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) && n == 0) {
            usage(stdout);
            return 0;
        } else if (n == 0 && a[0] == '-') {
            return usage_error(NULL, "unknown option %s", a);
        } else {
            rest[n++] = argv[i];
        }
    }
    if (timeout_s != NULL) {
        uint64_t ms;
        if (duration_parse_ms(timeout_s, strlen(timeout_s), &ms) != 0 || ms == 0 || ms > 3600 * 1000)
            return usage_error(NULL, "--timeout \"%s\" is not a duration up to 1h (e.g. 500ms, 10s)", timeout_s);
        g.timeout_ms = ms;
    }
    if (g.socket == NULL) {
        const char *env = getenv("LOCKD_SOCKET");
        if (env != NULL && env[0] != '\0')
            g.socket = env;
        else if (access(DEFAULT_SOCKET, F_OK) != 0 && (access(INSTALLED_SOCKET, F_OK) == 0 || errno == EACCES))
            g.socket = INSTALLED_SOCKET; /* no node runs here, the installed service does */
        else
            g.socket = DEFAULT_SOCKET;
    }
    if (n == 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const struct command *c = find_command(rest[0]);
    if (c == NULL)
        return usage_error(NULL, "unknown command \"%s\"", rest[0]);
    return c->run(c, n - 1, rest + 1);
}

int main(int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (rest == NULL)
        return EXIT_USAGE;
    int rc = lockctl_main(argc, argv, rest);
    free(rest);
    if (fflush(stdout) != 0 && rc == 0)
        rc = EXIT_FAILED; /* e.g. stdout on a full disk: do not claim success */
    return rc;
}
