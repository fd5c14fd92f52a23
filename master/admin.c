/* master/admin.c: the admin socket server (see admin.h). Owns the listening
 * socket, an epoll set (the one fd the master loop polls), a timerfd for
 * deadlines and up to ADMIN_CONN_MAX connections with their relays to
 * raftproc. Reads the shm table, never writes it (it writes one word of the
 * stats segment: the log level); never forks. Nothing here
 * waits in the master loop for raftproc: a relayed command (unlock,
 * members, membership changes, snapshot) is a small state machine driven by epoll
 * events and its deadline. The only waits are bounded writes of an answer
 * to a client (2 s; answers fit in the socket buffer but a `list`). */
#include "master/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/names.h"
#include "common/version.h"
#include "master/listen.h"
#include "master/supervisor.h"
#include "proto/admin.pb-c.h"
#include "proto/frame.h"
#include "proto/lockd.pb-c.h"
#include "shm/stats.h"

#define ADMIN_REQUEST_MAX 4096   /* an AdminRequest is a few hundred bytes */
#define ADMIN_IO_TIMEOUT_MS 2000 /* to read a request, and to write an answer */
#define ADMIN_ACCEPT_BATCH 8     /* connections per loop turn: signals come first */
#define ADMIN_LIST_DEFAULT 100   /* as GET /locks */
#define ADMIN_LIST_MAX 10000
#define ADMIN_RELAY_MARGIN_MS 1000 /* raftproc answers 504 itself at api_timeout */
#define ADMIN_SCAN_TRIES 3
#define ADMIN_FRAME_BUDGET (LOCKD_FRAME_MAX - 512) /* room for the non-lock fields */
#define ADMIN_CONN_MAX 16                          /* connections served at once; more wait in the backlog */
#define ADMIN_RELAY_OUT_MAX 1024                   /* one Request: name, owner, address */
#define ADMIN_RELAY_IN_MAX 16384                   /* one Response: a lock, or the members */
#define ADMIN_MEMBERS_TIMEOUT_MS 2000              /* OP_MEMBERS: raftproc answers it locally */
#define ADMIN_ADD_TIMEOUT_MS 30000                 /* MEMBER_ADD waits for the new node's catch-up */
#define ADMIN_MEMBERS_MAX (LOCKD_MAX_NODES * 2)    /* as raftproc's OP_MEMBERS answer */
#define ADMIN_VERIFY_MS 3000                       /* looking for a change whose answer got lost */
#define ADMIN_VERIFY_INTERVAL_MS 100
#define ADMIN_EVENTS 32
#define ADMIN_RELAY_ID 1 /* one request per private raftproc connection */

/* epoll tags: the listening socket, the timer, then two per connection. */
#define TAG_LISTEN 0u
#define TAG_TIMER 1u
#define TAG_CLIENT(i) (2u + 2u * (uint64_t)(i))
#define TAG_RAFT(i) (3u + 2u * (uint64_t)(i))

/* PAUSED: waiting for deadline_ms to look at the configuration again. */
enum conn_state { CONN_FREE = 0, CONN_READING, CONN_RELAYING, CONN_PAUSED };

/* Membership changes take two relays: read the configuration (CHECK, to
 * refuse what is plainly wrong with a clear message), then the change
 * itself (RUN); if its outcome is unknown, the configuration again until
 * it shows the change (VERIFY). */
enum relay_phase { PHASE_RUN = 0, PHASE_CHECK, PHASE_VERIFY };

struct admin_conn {
    enum conn_state state;
    enum relay_phase phase;
    int cfd;                           /* lockctl's connection */
    int rfd;                           /* the relay to raftproc, -1 if none */
    bool rfd_reading;                  /* the request is sent: polling rfd for input only */
    uint64_t deadline_ms;              /* reading: the request; relaying: this relay's answer */
    uint64_t relay_ms;                 /* this relay's budget, for messages */
    uint64_t old_leader;               /* TRANSFER: the leader before */
    uint64_t verify_until_ms;          /* VERIFY: give up looking then */
    Lockd__AdminStatus unknown_status; /* VERIFY: the answer if it never shows */
    char unknown_error[280];
    Lockd__AdminRequest *req;
    size_t in_len, out_len, out_off, rin_len;
    uint8_t in[FRAME_HEADER_SIZE + ADMIN_REQUEST_MAX];
    uint8_t out[ADMIN_RELAY_OUT_MAX];
    uint8_t rin[ADMIN_RELAY_IN_MAX];
};

struct admin_server {
    struct lockd_config *cfg;
    const shm_table *table;
    int fd;         /* listening */
    int epfd;       /* what the master loop polls */
    int tfd;        /* timerfd at the earliest deadline */
    bool listening; /* fd is in the epoll set (not while every slot is busy) */
    unsigned n_conns;
    uint64_t started_ms;
    char path[LOCKD_PATH_MAX];
    struct admin_conn conns[ADMIN_CONN_MAX];
    uint8_t frame[FRAME_HEADER_SIZE + LOCKD_FRAME_MAX]; /* one answer out */
};

/* One answer under construction: the strings it points at live here. */
struct reply {
    Lockd__AdminResponse r;
    char error[320];
    char message[320];
    char leader_address[LOCKD_ADDR_MAX + 8];
};

/* ---- bounded I/O ------------------------------------------------------- */

/* Waits until fd is ready for events or deadline_ms passes.
 * Returns 0 (ready), -LOCKD_EAGAIN (deadline) or -LOCKD_EIO. */
static int admin_wait(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = clock_monotonic_ms();
        if (now >= deadline_ms)
            return -LOCKD_EAGAIN;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(deadline_ms - now));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -LOCKD_EIO;
    }
}

static int admin_write_all(int fd, const uint8_t *p, size_t n, uint64_t deadline_ms)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = admin_wait(fd, POLLOUT, deadline_ms);
            if (rc != 0)
                return rc;
            continue;
        }
        return -LOCKD_EIO;
    }
    return 0;
}

static int admin_send(admin_server *a, int fd, const Lockd__AdminResponse *r)
{
    int n = frame_encode(&r->base, a->frame, sizeof(a->frame));
    if (n < 0)
        return n;
    return admin_write_all(fd, a->frame, (size_t)n, clock_monotonic_ms() + ADMIN_IO_TIMEOUT_MS);
}

/* ---- answers ----------------------------------------------------------- */

static void reply_init(struct reply *p)
{
    lockd__admin_response__init(&p->r);
    p->error[0] = p->message[0] = p->leader_address[0] = '\0';
}

static void reply_error(struct reply *p, Lockd__AdminStatus status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(struct reply *p, Lockd__AdminStatus status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    p->r.status = status;
    p->r.error = p->error;
}

/* Why a request cannot be relayed to the Raft process now, or NULL if it can:
 * while it restarts its socket still accepts (the master holds it), but
 * nobody reads. */
static const char *admin_raft_down(void)
{
    struct supervisor_counts sc;
    supervisor_counts(&sc);
    return sc.raft_pid == 0 ? "the raft process is not running (restarting)" : NULL;
}

static const char *level_name(enum log_level l)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    return (unsigned)l < 4 ? names[l] : "info";
}

static const struct cluster_node *admin_node(const struct lockd_config *cfg, uint64_t id)
{
    for (unsigned i = 0; i < cfg->n_nodes && i < LOCKD_MAX_NODES; i++)
        if (cfg->nodes[i].id == id)
            return &cfg->nodes[i];
    return NULL;
}

/* The leader's HTTP address: as raftproc published it, else from the
 * cluster file. "" if unknown. */
static void admin_leader_address(const admin_server *a, const shm_node_status *st, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (st->leader_id == 0)
        return;
    if (st->leader_address[0] != '\0') {
        snprintf(buf, cap, "%.*s", (int)sizeof(st->leader_address), st->leader_address);
        return;
    }
    const struct cluster_node *n = admin_node(a->cfg, st->leader_id);
    if (n != NULL)
        snprintf(buf, cap, "%s:%u", n->http_host, (unsigned)n->http_port);
}

/* age and time left on this node's wall clock, as GET /lock/:name does. */
static void lock_to_proto(const shm_lock *l, uint64_t now_wall, Lockd__AdminLock *p)
{
    lockd__admin_lock__init(p);
    p->name = (char *)l->name;
    p->owner = (char *)l->owner;
    p->token = l->token;
    p->acquired_at_ms = l->acquired_at_ms;
    p->renewed_at_ms = l->renewed_at_ms;
    p->ttl_ms = l->ttl_ms;
    p->revision = l->revision;
    p->age_ms = now_wall > l->acquired_at_ms ? now_wall - l->acquired_at_ms : 0;
    if (l->ttl_ms != 0) {
        uint64_t end = l->renewed_at_ms + l->ttl_ms;
        p->expires_in_ms = end > now_wall ? end - now_wall : 0;
    }
}

/* ---- status, members, reload, log-level --------------------------------- */

static void admin_status(admin_server *a, int fd)
{
    const struct lockd_config *cfg = a->cfg;
    struct reply p;
    reply_init(&p);
    shm_node_status st;
    shm_table_status(a->table, &st);
    struct supervisor_counts sc;
    supervisor_counts(&sc);
    uint64_t now = clock_monotonic_ms();
    char http[LOCKD_ADDR_MAX + 8];
    snprintf(http, sizeof(http), "%s:%u", cfg->listen_host, (unsigned)cfg->listen_port);
    admin_leader_address(a, &st, p.leader_address, sizeof(p.leader_address));

    Lockd__AdminNodeStatus n = LOCKD__ADMIN_NODE_STATUS__INIT;
    n.node_id = cfg->node_id;
    n.role = (char *)shm_role_name(st.role);
    n.term = st.term;
    n.leader_id = st.leader_id;
    n.leader_address = p.leader_address;
    n.commit_index = st.commit_index;
    n.applied_index = st.applied_index;
    n.lock_count = shm_table_count(a->table);
    n.capacity = shm_table_capacity(a->table);
    n.next_token = st.next_token;
    n.uptime_ms = now - a->started_ms;
    n.version = (char *)LOCKD_VERSION;
    n.workers = cfg->workers;
    n.workers_alive = sc.workers_alive;
    n.raft_pid = sc.raft_pid;
    n.raft_restarts = sc.raft_restarts;
    n.worker_restarts = sc.worker_restarts;
    n.table_state = (char *)(st.state == SHM_STATE_READY ? "ready" : "loading");
    n.http_address = http;
    n.store = (char *)(cfg->store == STORE_LMDB ? "lmdb" : "memory");
    n.data_dir = (char *)cfg->data_dir;
    n.log_level = (char *)level_name(log_get_level());
    n.master_pid = (int32_t)getpid();
    /* raftproc stamps CLOCK_MONOTONIC, which is system-wide. */
    n.last_contact_ago_ms = st.last_contact_ms != 0 && now > st.last_contact_ms ? now - st.last_contact_ms : 0;
    p.r.node = &n;
    admin_send(a, fd, &p.r);
}

/* The HTTP address of leader `id`: as raftproc published it (when the shm
 * names the same leader), else from the cluster file. "" if unknown. */
static void admin_leader_http(const admin_server *a, const shm_node_status *st, uint64_t id, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (id == 0)
        return;
    if (st->leader_id == id && st->leader_address[0] != '\0') {
        snprintf(buf, cap, "%.*s", (int)sizeof(st->leader_address), st->leader_address);
        return;
    }
    const struct cluster_node *n = admin_node(a->cfg, id);
    if (n != NULL)
        snprintf(buf, cap, "%s:%u", n->http_host, (unsigned)n->http_port);
}

static int member_ptr_cmp(const void *x, const void *y)
{
    uint64_t a = (*(Lockd__Member *const *)x)->id, b = (*(Lockd__Member *const *)y)->id;
    return a < b ? -1 : a > b;
}

/* MEMBERS. live != NULL: raftproc's configuration (OP_MEMBERS), in id
 * order, with the HTTP addresses the cluster file knows. live == NULL: the
 * cluster file alone (roles unknown), and why in message. */
static void admin_members_answer(admin_server *a, int fd, const Lockd__Response *live, const char *why)
{
    const struct lockd_config *cfg = a->cfg;
    struct reply p;
    reply_init(&p);
    shm_node_status st;
    shm_table_status(a->table, &st);
    Lockd__AdminMember m[ADMIN_MEMBERS_MAX], *mp[ADMIN_MEMBERS_MAX];
    char http[ADMIN_MEMBERS_MAX][LOCKD_ADDR_MAX + 8], raft[ADMIN_MEMBERS_MAX][LOCKD_ADDR_MAX + 8];
    unsigned n = 0;
    uint64_t leader;
    if (live != NULL) {
        Lockd__Member *sorted[ADMIN_MEMBERS_MAX];
        bool self_found = false;
        for (size_t i = 0; i < live->n_members && n < ADMIN_MEMBERS_MAX; i++)
            sorted[n++] = live->members[i];
        qsort(sorted, n, sizeof(sorted[0]), member_ptr_cmp);
        for (unsigned i = 0; i < n; i++) {
            const Lockd__Member *s = sorted[i];
            const struct cluster_node *c = admin_node(cfg, s->id);
            lockd__admin_member__init(&m[i]);
            if (c != NULL)
                snprintf(http[i], sizeof(http[i]), "%s:%u", c->http_host, (unsigned)c->http_port);
            else
                http[i][0] = '\0';
            snprintf(raft[i], sizeof(raft[i]), "%s", s->raft_address);
            m[i].id = s->id;
            m[i].http_address = http[i];
            m[i].raft_address = raft[i];
            m[i].role = s->role;
            m[i].leader = s->leader;
            m[i].self = s->id == cfg->node_id;
            self_found |= m[i].self;
            mp[i] = &m[i];
        }
        leader = live->leader_id;
        p.r.source = (char *)"raft";
        if (!self_found) {
            snprintf(p.message, sizeof(p.message),
                     "this node (%llu) is not in the Raft configuration it knows: started with --join and "
                     "not added yet (lockctl members add on a member), or removed",
                     (unsigned long long)cfg->node_id);
            p.r.message = p.message;
        }
    } else {
        n = cfg->n_nodes < LOCKD_MAX_NODES ? cfg->n_nodes : LOCKD_MAX_NODES;
        for (unsigned i = 0; i < n; i++) {
            const struct cluster_node *c = &cfg->nodes[i];
            lockd__admin_member__init(&m[i]);
            snprintf(http[i], sizeof(http[i]), "%s:%u", c->http_host, (unsigned)c->http_port);
            snprintf(raft[i], sizeof(raft[i]), "%s:%u", c->raft_host, (unsigned)c->raft_port);
            m[i].id = c->id;
            m[i].http_address = http[i];
            m[i].raft_address = raft[i];
            m[i].leader = st.leader_id != 0 && st.leader_id == c->id;
            m[i].self = c->id == cfg->node_id;
            mp[i] = &m[i];
        }
        leader = st.leader_id;
        p.r.source = (char *)"cluster_file";
        snprintf(p.message, sizeof(p.message), "%s: showing the cluster file (roles unknown)", why);
        p.r.message = p.message;
    }
    p.r.members = mp;
    p.r.n_members = n;
    p.r.leader_id = leader;
    admin_leader_http(a, &st, leader, p.leader_address, sizeof(p.leader_address));
    p.r.leader_address = p.leader_address;
    admin_send(a, fd, &p.r);
}

static void admin_reload(admin_server *a, int fd)
{
    struct reply p;
    reply_init(&p);
    /* The supervisor replaces the workers right after this callback returns,
     * in the same loop turn, exactly as for SIGHUP. */
    supervisor_request_reload();
    log_info("admin: reload requested by lockctl");
    snprintf(p.message, sizeof(p.message), "reloading: %u new workers start, the old ones drain and exit",
             a->cfg->workers);
    p.r.message = p.message;
    admin_send(a, fd, &p.r);
}

/* The level is a per-process variable: the master changes its own, and
 * publishes it in the shm stats segment, which every worker and raftproc
 * read once per loop turn and follow (so every process has it within a
 * turn). cfg->log_level changes too, so that children forked later start
 * with it before their first look at the shm. */
static void admin_log_level(admin_server *a, int fd, const Lockd__AdminRequest *req)
{
    struct reply p;
    reply_init(&p);
    enum log_level level;
    if (log_parse_level(req->level, &level) != 0) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "\"%.64s\" is not debug, info, warn or error",
                    req->level);
        admin_send(a, fd, &p.r);
        return;
    }
    enum log_level old = log_get_level();
    /* Logged under whichever of the two levels lets an INFO line through. */
    if (old <= LOG_INFO)
        log_info("admin: log level %s -> %s (lockctl)", level_name(old), level_name(level));
    log_set_level(level);
    a->cfg->log_level = level;
    shm_stats_set_log_level(shm_table_stats(a->table), (int)level);
    if (old > LOG_INFO)
        log_info("admin: log level %s -> %s (lockctl)", level_name(old), level_name(level));
    snprintf(p.message, sizeof(p.message),
             "log level is %s in every process: the master, the workers and the raft process, at once",
             level_name(level));
    p.r.message = p.message;
    p.r.level = (char *)level_name(level);
    admin_send(a, fd, &p.r);
}

/* ---- show, list ------------------------------------------------------------ */

static void admin_show(admin_server *a, int fd, const Lockd__AdminRequest *req)
{
    struct reply p;
    reply_init(&p);
    shm_lock l;
    Lockd__AdminLock pl, *plp = &pl;
    size_t len = strlen(req->name);
    if (names_check_lock(req->name, len, p.error, sizeof(p.error)) != 0) {
        p.r.status = LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST;
        p.r.error = p.error;
        admin_send(a, fd, &p.r);
        return;
    }
    int rc = shm_table_lookup(a->table, req->name, len, &l);
    if (rc == 0) {
        lock_to_proto(&l, clock_wall_ms(), &pl);
        p.r.locks = &plp;
        p.r.n_locks = 1;
    } else if (rc == -LOCKD_ENOENT) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_NOT_FOUND, "%s is not locked", req->name);
    } else {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "the lock table is loading; try again");
    }
    admin_send(a, fd, &p.r);
}

/* The `limit` smallest matching names, kept in a max-heap while the table
 * is scanned once: O(count * log limit) time, limit records of memory. The
 * heap holds pointers into pool, so sifting moves pointers, not records. */
struct list_scan {
    const char *prefix;
    size_t prefix_len;
    const char *after;
    uint32_t limit;
    uint32_t n;
    uint64_t matched;
    shm_lock *pool;
    shm_lock **heap;
};

static int name_after(const shm_lock *x, const shm_lock *y)
{
    return strcmp(x->name, y->name) > 0;
}

static void heap_sift_down(shm_lock **h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && name_after(h[l], h[m]))
            m = l;
        if (r < n && name_after(h[r], h[m]))
            m = r;
        if (m == i)
            return;
        shm_lock *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int list_visit(const shm_lock *rec, void *arg)
{
    struct list_scan *s = arg;
    if (s->prefix_len != 0 && strncmp(rec->name, s->prefix, s->prefix_len) != 0)
        return 0;
    if (s->after[0] != '\0' && strcmp(rec->name, s->after) <= 0)
        return 0;
    s->matched++;
    if (s->n < s->limit) {
        uint32_t i = s->n++;
        s->pool[i] = *rec;
        s->heap[i] = &s->pool[i];
        while (i > 0 && name_after(s->heap[i], s->heap[(i - 1) / 2])) {
            shm_lock *t = s->heap[i];
            s->heap[i] = s->heap[(i - 1) / 2];
            s->heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (strcmp(rec->name, s->heap[0]->name) < 0) {
        *s->heap[0] = *rec;
        heap_sift_down(s->heap, s->n, 0);
    }
    return 0;
}

static int lock_ptr_cmp(const void *x, const void *y)
{
    return strcmp((*(shm_lock *const *)x)->name, (*(shm_lock *const *)y)->name);
}

/* Answers in as many frames as the locks need (each under LOCKD_FRAME_MAX);
 * all but the last have more = true. */
static void admin_list(admin_server *a, int fd, const Lockd__AdminRequest *req)
{
    struct reply p;
    reply_init(&p);
    struct list_scan s = {.prefix = req->prefix, .prefix_len = strlen(req->prefix), .after = req->after};
    s.limit = req->limit != 0 ? req->limit : ADMIN_LIST_DEFAULT;
    shm_node_status st;
    shm_table_status(a->table, &st);
    if (s.limit > ADMIN_LIST_MAX) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "limit must be between 1 and %d", ADMIN_LIST_MAX);
        admin_send(a, fd, &p.r);
        return;
    }
    if (s.prefix_len > LOCKD_NAME_MAX || strlen(s.after) > LOCKD_NAME_MAX) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "prefix and after are at most %d bytes",
                    LOCKD_NAME_MAX);
        admin_send(a, fd, &p.r);
        return;
    }
    if (st.state != SHM_STATE_READY) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "the lock table is loading; try again");
        admin_send(a, fd, &p.r);
        return;
    }
    s.pool = malloc((size_t)s.limit * sizeof(*s.pool));
    s.heap = malloc((size_t)s.limit * sizeof(*s.heap));
    Lockd__AdminLock *pl = malloc((size_t)s.limit * sizeof(*pl));
    Lockd__AdminLock **pp = malloc((size_t)s.limit * sizeof(*pp));
    int rc = -LOCKD_ENOMEM;
    /* A scan that overlapped a clear or a long write is void: retry a few
     * times (each is one pass over the records in use). */
    for (int attempt = 0; attempt < ADMIN_SCAN_TRIES && s.pool && s.heap && pl && pp; attempt++) {
        s.n = 0;
        s.matched = 0;
        rc = shm_table_scan(a->table, list_visit, &s);
        if (rc != -LOCKD_EAGAIN)
            break;
    }
    if (rc < 0) {
        reply_error(&p,
                    rc == -LOCKD_ENOMEM ? LOCKD__ADMIN_STATUS__ADMIN_INTERNAL : LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                    "cannot list the lock table: %s", lockd_strerror(rc));
        admin_send(a, fd, &p.r);
        goto out;
    }
    int more_exist = s.matched > s.n;
    qsort(s.heap, s.n, sizeof(*s.heap), lock_ptr_cmp);
    /* A name released and taken again during the scan can come twice (once
     * per record it lived in): keep its latest state. */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s.n; i++) {
        if (kept > 0 && strcmp(s.heap[kept - 1]->name, s.heap[i]->name) == 0) {
            if (s.heap[i]->revision > s.heap[kept - 1]->revision)
                s.heap[kept - 1] = s.heap[i];
            continue;
        }
        s.heap[kept++] = s.heap[i];
    }
    s.n = kept;
    uint64_t now_wall = clock_wall_ms();
    uint32_t from = 0;
    size_t bytes = 0;
    for (uint32_t i = 0; i <= s.n; i++) {
        size_t need = 0;
        if (i < s.n) {
            lock_to_proto(s.heap[i], now_wall, &pl[i]);
            pp[i] = &pl[i];
            need = protobuf_c_message_get_packed_size(&pl[i].base) + 6; /* tag + length */
            if (bytes + need <= ADMIN_FRAME_BUDGET) {
                bytes += need;
                continue;
            }
        }
        p.r.locks = pp + from;
        p.r.n_locks = i - from;
        p.r.more = i < s.n;
        p.r.next = (char *)(i == s.n && more_exist && s.n > 0 ? s.heap[s.n - 1]->name : "");
        if (admin_send(a, fd, &p.r) != 0)
            break;
        from = i;
        bytes = need;
    }
out:
    free(s.pool);
    free(s.heap);
    free(pl);
    free(pp);
}

/* ---- connections and relays to raftproc ----------------------------------- */

static Lockd__AdminStatus admin_map_status(Lockd__Status st)
{
    switch (st) {
    case LOCKD__STATUS__ST_OK:
        return LOCKD__ADMIN_STATUS__ADMIN_OK;
    case LOCKD__STATUS__ST_CONFLICT:
        return LOCKD__ADMIN_STATUS__ADMIN_CONFLICT;
    case LOCKD__STATUS__ST_NOT_FOUND:
        return LOCKD__ADMIN_STATUS__ADMIN_NOT_FOUND;
    case LOCKD__STATUS__ST_NOT_LEADER:
        return LOCKD__ADMIN_STATUS__ADMIN_NOT_LEADER;
    case LOCKD__STATUS__ST_TIMEOUT:
        return LOCKD__ADMIN_STATUS__ADMIN_TIMEOUT;
    case LOCKD__STATUS__ST_BAD_REQUEST:
        return LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST;
    case LOCKD__STATUS__ST_INTERNAL:
        return LOCKD__ADMIN_STATUS__ADMIN_INTERNAL;
    default:
        return LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE;
    }
}

static int ep_set(admin_server *a, int op, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    return epoll_ctl(a->epfd, op, fd, &ev);
}

static unsigned conn_slot(const admin_server *a, const struct admin_conn *c)
{
    return (unsigned)(c - a->conns);
}

/* The listening socket is in the epoll set only while a slot is free, so
 * that a full house does not make the set readable forever. */
static void admin_listen_update(admin_server *a)
{
    bool want = a->n_conns < ADMIN_CONN_MAX;
    if (want == a->listening)
        return;
    if (ep_set(a, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, a->fd, EPOLLIN, TAG_LISTEN) == 0)
        a->listening = want;
}

static void relay_close(admin_server *a, struct admin_conn *c)
{
    if (c->rfd < 0)
        return;
    /* Explicit: a child forked meanwhile may share the open file, and then
     * close() alone would leave the registration in the set. */
    epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->rfd, NULL);
    close(c->rfd);
    c->rfd = -1;
}

/* Ends a connection (answered or abandoned) and frees its slot. */
static void conn_free(admin_server *a, struct admin_conn *c)
{
    relay_close(a, c);
    if (c->cfd >= 0) {
        epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->cfd, NULL); /* ENOENT once the request is read: fine */
        close(c->cfd);
    }
    if (c->req != NULL)
        lockd__admin_request__free_unpacked(c->req, NULL);
    c->state = CONN_FREE;
    c->cfd = c->rfd = -1;
    c->req = NULL;
    a->n_conns--;
    admin_listen_update(a);
}

static void conn_answer(admin_server *a, struct admin_conn *c, struct reply *p)
{
    admin_send(a, c->cfd, &p->r);
    conn_free(a, c);
}

static void relay_end(admin_server *a, struct admin_conn *c, Lockd__Response *resp, Lockd__AdminStatus st,
                      const char *err);

static void relay_fail(admin_server *a, struct admin_conn *c, Lockd__AdminStatus st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void relay_fail(admin_server *a, struct admin_conn *c, Lockd__AdminStatus st, const char *fmt, ...)
{
    char err[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, sizeof(err), fmt, ap);
    va_end(ap);
    relay_end(a, c, NULL, st, err);
}

/* Sends what is left of the request, then reads until one whole answer is
 * there. Called when rfd is ready (and once at the start). */
static void relay_io(admin_server *a, struct admin_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->rfd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* EPOLLOUT brings us back */
        relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "cannot send to the raft process");
        return;
    }
    if (!c->rfd_reading) {
        ep_set(a, EPOLL_CTL_MOD, c->rfd, EPOLLIN, TAG_RAFT(conn_slot(a, c)));
        c->rfd_reading = true;
    }
    for (;;) {
        const uint8_t *payload;
        size_t plen;
        int n = frame_peek(c->rin, c->rin_len, &payload, &plen);
        if (n > 0) {
            Lockd__Response *resp = lockd__response__unpack(NULL, plen, payload);
            if (resp == NULL) {
                relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_INTERNAL, "undecodable answer from the raft process");
                return;
            }
            if (resp->id == ADMIN_RELAY_ID) {
                relay_end(a, c, resp, LOCKD__ADMIN_STATUS__ADMIN_OK, NULL);
                return;
            }
            /* Not ours: cannot happen on a private connection; skip it. */
            lockd__response__free_unpacked(resp, NULL);
            memmove(c->rin, c->rin + n, c->rin_len - (size_t)n);
            c->rin_len -= (size_t)n;
            continue;
        }
        if (n < 0 || c->rin_len == sizeof(c->rin)) {
            relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_INTERNAL, "oversized answer from the raft process");
            return;
        }
        ssize_t r = recv(c->rfd, c->rin + c->rin_len, sizeof(c->rin) - c->rin_len, 0);
        if (r > 0) {
            c->rin_len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* EPOLLIN brings us back */
        relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                   "the raft process closed the connection (restarting?); outcome unknown");
        return;
    }
}

/* Sends rq to raftproc on a connection of its own; the answer (or the
 * failure: connect, send, close, timeout_ms passed) goes to relay_end. The
 * caller must not touch c afterwards: it may be answered and freed. */
static void relay_start(admin_server *a, struct admin_conn *c, const Lockd__Request *rq, uint64_t timeout_ms)
{
    const struct lockd_config *cfg = a->cfg;
    c->state = CONN_RELAYING;
    c->relay_ms = timeout_ms;
    c->deadline_ms = clock_monotonic_ms() + timeout_ms;
    c->out_off = c->rin_len = 0;
    c->rfd_reading = false;
    int n = frame_encode(&rq->base, c->out, sizeof(c->out));
    if (n < 0) {
        relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_INTERNAL, "request too large for the raft process");
        return;
    }
    c->out_len = (size_t)n;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* Fits: the master bound it at start (listen_unix checks the length). */
    memcpy(sa.sun_path, cfg->raft_socket, strnlen(cfg->raft_socket, sizeof(sa.sun_path) - 1));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* A Unix stream connect completes at once (or fails: EAGAIN when the
     * backlog is full, which we report like any other refusal). */
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "cannot reach the raft process at %s: %s",
                   cfg->raft_socket, strerror(e));
        return;
    }
    c->rfd = fd;
    if (ep_set(a, EPOLL_CTL_ADD, fd, EPOLLOUT | EPOLLIN, TAG_RAFT(conn_slot(a, c))) != 0) {
        relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_INTERNAL, "epoll: %s", strerror(errno));
        return;
    }
    relay_io(a, c);
}

/* ---- unlock -------------------------------------------------------------- */

/* A DELETE /lock/:name by the operator, relayed like a worker's. */
static void admin_unlock(admin_server *a, struct admin_conn *c)
{
    const Lockd__AdminRequest *req = c->req;
    struct reply p;
    reply_init(&p);
    size_t nlen = strlen(req->name), olen = strlen(req->owner);
    if (names_check_lock(req->name, nlen, p.error, sizeof(p.error)) != 0 ||
        (olen > 0 && names_check_owner(req->owner, olen, p.error, sizeof(p.error)) != 0)) {
        p.r.status = LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST;
        p.r.error = p.error;
        conn_answer(a, c, &p);
        return;
    }
    const char *down = admin_raft_down();
    if (down != NULL) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", down);
        conn_answer(a, c, &p);
        return;
    }
    Lockd__Request rq = LOCKD__REQUEST__INIT;
    rq.id = ADMIN_RELAY_ID;
    rq.op = LOCKD__OP__OP_RELEASE;
    rq.name = req->name;
    rq.owner = req->owner;
    rq.token = req->token;
    rq.force = req->force;
    relay_start(a, c, &rq, a->cfg->api_timeout_ms + ADMIN_RELAY_MARGIN_MS);
}

static void admin_unlock_done(admin_server *a, struct admin_conn *c, const Lockd__Response *resp, Lockd__AdminStatus st,
                              const char *err)
{
    const Lockd__AdminRequest *req = c->req;
    struct reply p;
    reply_init(&p);
    Lockd__AdminLock pl, *plp = &pl;
    shm_lock holder;
    if (resp == NULL) {
        reply_error(&p, st, "%s", err);
        goto send;
    }
    p.r.status = admin_map_status(resp->status);
    p.r.index = resp->index;
    p.r.leader_id = resp->leader_id;
    p.r.leader_address = resp->leader_address;
    if (resp->has_lock && resp->lock != NULL) {
        /* The holder on a conflict: shown as in GET. */
        memset(&holder, 0, sizeof(holder));
        snprintf(holder.name, sizeof(holder.name), "%s", resp->lock->name);
        snprintf(holder.owner, sizeof(holder.owner), "%s", resp->lock->owner);
        holder.token = resp->lock->token;
        holder.acquired_at_ms = resp->lock->acquired_at_ms;
        holder.renewed_at_ms = resp->lock->renewed_at_ms;
        holder.ttl_ms = resp->lock->ttl_ms;
        holder.revision = resp->lock->revision;
        lock_to_proto(&holder, clock_wall_ms(), &pl);
        p.r.locks = &plp;
        p.r.n_locks = 1;
    }
    switch (resp->status) {
    case LOCKD__STATUS__ST_OK:
        snprintf(p.message, sizeof(p.message), "released %s", req->name);
        p.r.message = p.message;
        break;
    case LOCKD__STATUS__ST_NOT_FOUND:
        reply_error(&p, p.r.status, "%s is not locked", req->name);
        break;
    case LOCKD__STATUS__ST_CONFLICT:
        if (req->token != 0 && resp->has_lock && resp->lock != NULL && resp->lock->token != req->token)
            reply_error(&p, p.r.status, "%s is held with token %llu, not %llu", req->name,
                        (unsigned long long)resp->lock->token, (unsigned long long)req->token);
        else if (resp->has_lock && resp->lock != NULL && resp->lock->owner[0] != '\0')
            reply_error(&p, p.r.status, "%s is held by owner \"%s\" (use --force, or --owner)", req->name,
                        resp->lock->owner);
        else
            reply_error(&p, p.r.status, "%s is held by another owner (use --force)", req->name);
        break;
    case LOCKD__STATUS__ST_NOT_LEADER:
        if (resp->leader_id != 0)
            reply_error(&p, p.r.status, "this node is not the leader: node %llu (%s) is; run lockctl there",
                        (unsigned long long)resp->leader_id,
                        resp->leader_address[0] ? resp->leader_address : "address unknown");
        else
            reply_error(&p, p.r.status, "no leader is known right now; try again");
        break;
    default:
        reply_error(&p, p.r.status, "%s", resp->error[0] ? resp->error : "the raft process refused the request");
        break;
    }
send:
    log_info("admin: unlock name=%s owner=%s token=%llu force=%d by lockctl: %s", req->name, req->owner,
             (unsigned long long)req->token, (int)req->force, p.r.error[0] ? p.r.error : "released");
    conn_answer(a, c, &p);
}

/* ---- members ----------------------------------------------------------------- */

static void admin_members(admin_server *a, struct admin_conn *c)
{
    const char *down = admin_raft_down();
    if (down != NULL) {
        admin_members_answer(a, c->cfd, NULL, down);
        conn_free(a, c);
        return;
    }
    Lockd__Request rq = LOCKD__REQUEST__INIT;
    rq.id = ADMIN_RELAY_ID;
    rq.op = LOCKD__OP__OP_MEMBERS;
    relay_start(a, c, &rq, ADMIN_MEMBERS_TIMEOUT_MS);
}

static void admin_members_done(admin_server *a, struct admin_conn *c, const Lockd__Response *resp, const char *err)
{
    char why[300];
    if (resp != NULL && resp->status == LOCKD__STATUS__ST_OK) {
        admin_members_answer(a, c->cfd, resp, NULL);
    } else {
        snprintf(why, sizeof(why), "no configuration from the raft process (%s)",
                 resp == NULL     ? err
                 : resp->error[0] ? resp->error
                                  : "refused");
        admin_members_answer(a, c->cfd, NULL, why);
    }
    conn_free(a, c);
}

/* ---- snapshot ------------------------------------------------------------------ */

/* OP_SNAPSHOT: the leader's raftproc takes a Raft snapshot now (a
 * follower's forwards the request to the leader). */
static void admin_snapshot(admin_server *a, struct admin_conn *c)
{
    struct reply p;
    reply_init(&p);
    const char *down = admin_raft_down();
    if (down != NULL) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", down);
        log_info("admin: snapshot by lockctl: %s", p.r.error);
        conn_answer(a, c, &p);
        return;
    }
    Lockd__Request rq = LOCKD__REQUEST__INIT;
    rq.id = ADMIN_RELAY_ID;
    rq.op = LOCKD__OP__OP_SNAPSHOT;
    relay_start(a, c, &rq, a->cfg->api_timeout_ms + ADMIN_RELAY_MARGIN_MS); /* c is not ours any more */
}

static void admin_snapshot_done(admin_server *a, struct admin_conn *c, const Lockd__Response *resp,
                                Lockd__AdminStatus st, const char *err)
{
    struct reply p;
    reply_init(&p);
    shm_node_status sst;
    shm_table_status(a->table, &sst);
    if (resp == NULL) {
        reply_error(&p, st, "%s", err);
    } else {
        const char *why = resp->error[0] ? resp->error : "no reason given";
        uint64_t leader = resp->leader_id != 0 ? resp->leader_id : sst.leader_id;
        p.r.leader_id = leader;
        admin_leader_http(a, &sst, leader, p.leader_address, sizeof(p.leader_address));
        p.r.leader_address = p.leader_address;
        switch (resp->status) {
        case LOCKD__STATUS__ST_OK:
            if (leader != 0)
                snprintf(p.message, sizeof(p.message), "snapshot taken by the leader (node %llu)",
                         (unsigned long long)leader);
            else
                snprintf(p.message, sizeof(p.message), "snapshot taken by the leader");
            p.r.message = p.message;
            break;
        case LOCKD__STATUS__ST_BAD_REQUEST:
            /* A refusal, not a malformed request: lockctl exits 1. */
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "the leader did not take a snapshot: %s", why);
            break;
        case LOCKD__STATUS__ST_NOT_LEADER:
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_NOT_LEADER,
                        "no leader could take the snapshot right now (%s); try again", why);
            break;
        case LOCKD__STATUS__ST_TIMEOUT:
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_TIMEOUT,
                        "no answer from the leader in time (%s); outcome unknown", why);
            break;
        default:
            reply_error(&p, admin_map_status(resp->status), "%s", why);
            break;
        }
    }
    log_info("admin: snapshot by lockctl: %s", p.r.status == LOCKD__ADMIN_STATUS__ADMIN_OK ? p.r.message : p.r.error);
    conn_answer(a, c, &p);
}

/* ---- membership changes: add, remove, transfer ------------------------------- */

static const char *change_name(Lockd__AdminCommand cmd)
{
    switch (cmd) {
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD:
        return "member add";
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_REMOVE:
        return "member remove";
    default:
        return "transfer";
    }
}

/* "a.b.c.d:port" with an IPv4 address and a port 1..65535 (what the Raft
 * library's TCP transport takes). 0 or -1 with the reason in err. */
static int check_raft_address(const char *s, char *err, size_t cap)
{
    const char *colon = strrchr(s, ':');
    char host[INET_ADDRSTRLEN];
    struct in_addr ia;
    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(host)) {
        snprintf(err, cap, "\"%.64s\" is not a Raft address a.b.c.d:port", s);
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    unsigned long port = 0;
    const char *q = colon + 1;
    for (; *q >= '0' && *q <= '9' && port <= 65535; q++)
        port = port * 10 + (unsigned long)(*q - '0');
    if (inet_pton(AF_INET, host, &ia) != 1 || q == colon + 1 || *q != '\0' || port == 0 || port > 65535) {
        snprintf(err, cap, "\"%.64s\" is not a Raft address a.b.c.d:port (IPv4, port 1-65535)", s);
        return -1;
    }
    return 0;
}

static void log_change(const admin_server *a, const struct admin_conn *c, const struct reply *p)
{
    (void)a;
    const Lockd__AdminRequest *req = c->req;
    log_info("admin: %s node=%llu%s%s by lockctl: %s", change_name(req->command), (unsigned long long)req->node_id,
             req->address[0] ? " address=" : "", req->address,
             p->r.status == LOCKD__ADMIN_STATUS__ADMIN_OK ? p->r.message : p->r.error);
}

/* Starts with the configuration (phase CHECK), to refuse what is plainly
 * wrong with a message that names the problem; the leader checks again. */
static void admin_change(admin_server *a, struct admin_conn *c)
{
    const Lockd__AdminRequest *req = c->req;
    struct reply p;
    reply_init(&p);
    if (req->command != LOCKD__ADMIN_COMMAND__ADMIN_CMD_TRANSFER && req->node_id == 0) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "node id must be a positive integer");
        conn_answer(a, c, &p);
        return;
    }
    if (req->command == LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD &&
        check_raft_address(req->address, p.error, sizeof(p.error)) != 0) {
        p.r.status = LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST;
        p.r.error = p.error;
        conn_answer(a, c, &p);
        return;
    }
    const char *down = admin_raft_down();
    if (down != NULL) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", down);
        log_change(a, c, &p);
        conn_answer(a, c, &p);
        return;
    }
    Lockd__Request rq = LOCKD__REQUEST__INIT;
    rq.id = ADMIN_RELAY_ID;
    rq.op = LOCKD__OP__OP_MEMBERS;
    c->phase = PHASE_CHECK;
    relay_start(a, c, &rq, ADMIN_MEMBERS_TIMEOUT_MS);
}

/* Phase CHECK answered: refuse, answer at once (transfer to the leader),
 * or relay the change itself. */
static void admin_change_checked(admin_server *a, struct admin_conn *c, const Lockd__Response *resp,
                                 Lockd__AdminStatus st, const char *err)
{
    const Lockd__AdminRequest *req = c->req;
    struct reply p;
    reply_init(&p);
    if (resp == NULL || resp->status != LOCKD__STATUS__ST_OK) {
        reply_error(&p, resp == NULL ? st : admin_map_status(resp->status), "cannot read the Raft configuration: %s",
                    resp == NULL     ? err
                    : resp->error[0] ? resp->error
                                     : "refused");
        goto answer;
    }
    const Lockd__Member *m = NULL, *same_address = NULL;
    unsigned voters = 0;
    for (size_t i = 0; i < resp->n_members; i++) {
        const Lockd__Member *x = resp->members[i];
        if (x->id == req->node_id)
            m = x;
        if (req->address[0] != '\0' && strcmp(x->raft_address, req->address) == 0)
            same_address = x;
        voters += strcmp(x->role, "voter") == 0;
    }
    c->old_leader = resp->leader_id;
    Lockd__Request rq = LOCKD__REQUEST__INIT;
    rq.id = ADMIN_RELAY_ID;
    rq.node_id = req->node_id;
    uint64_t timeout = a->cfg->api_timeout_ms + ADMIN_RELAY_MARGIN_MS;
    switch (req->command) {
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD:
        if (m != NULL) {
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "node %llu is already a member (%s at %s)",
                        (unsigned long long)m->id, m->role, m->raft_address);
            goto answer;
        }
        if (same_address != NULL) {
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "%s is already the Raft address of node %llu",
                        req->address, (unsigned long long)same_address->id);
            goto answer;
        }
        rq.op = LOCKD__OP__OP_MEMBER_ADD;
        rq.address = req->address;
        /* The leader answers once the new node has caught up and is a voter. */
        if (timeout < ADMIN_ADD_TIMEOUT_MS)
            timeout = ADMIN_ADD_TIMEOUT_MS;
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_REMOVE:
        if (m == NULL) {
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "node %llu is not a member",
                        (unsigned long long)req->node_id);
            goto answer;
        }
        if (strcmp(m->role, "voter") == 0 && voters == 1) {
            /* The library would do it, and leave a cluster of nobody. */
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED,
                        "node %llu is the only voter: removing it would leave no cluster", (unsigned long long)m->id);
            goto answer;
        }
        rq.op = LOCKD__OP__OP_MEMBER_REMOVE;
        break;
    default:
        if (req->node_id != 0 && m == NULL) {
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "node %llu is not a member",
                        (unsigned long long)req->node_id);
            goto answer;
        }
        if (m != NULL && strcmp(m->role, "voter") != 0) {
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "node %llu is a %s, not a voter: it cannot lead",
                        (unsigned long long)m->id, m->role);
            goto answer;
        }
        if (m != NULL && m->leader) {
            snprintf(p.message, sizeof(p.message), "node %llu is already the leader", (unsigned long long)m->id);
            p.r.message = p.message;
            p.r.leader_id = m->id;
            goto answer;
        }
        if (m == NULL && voters < 2) {
            reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "there is no other voter to hand leadership to");
            goto answer;
        }
        rq.op = LOCKD__OP__OP_TRANSFER;
        break;
    }
    c->phase = PHASE_RUN;
    relay_start(a, c, &rq, timeout); /* c is not ours any more */
    return;
answer:
    if (p.r.status == LOCKD__ADMIN_STATUS__ADMIN_OK) {
        shm_node_status sst;
        shm_table_status(a->table, &sst);
        admin_leader_http(a, &sst, p.r.leader_id, p.leader_address, sizeof(p.leader_address));
        p.r.leader_address = p.leader_address;
    }
    log_change(a, c, &p);
    conn_answer(a, c, &p);
}

/* The success message of a change, and the leader to name. */
static void change_succeeded(admin_server *a, const struct admin_conn *c, uint64_t now_leader, struct reply *p)
{
    const Lockd__AdminRequest *req = c->req;
    unsigned long long id = (unsigned long long)req->node_id;
    switch (req->command) {
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD:
        snprintf(p->message, sizeof(p->message), "node %llu added at %s and promoted to voter", id, req->address);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_REMOVE:
        snprintf(p->message, sizeof(p->message), "node %llu removed from the cluster", id);
        break;
    default:
        if (now_leader != 0 && now_leader != c->old_leader && c->old_leader != 0)
            snprintf(p->message, sizeof(p->message), "leadership moved from node %llu to node %llu",
                     (unsigned long long)c->old_leader, (unsigned long long)now_leader);
        else if (id != 0)
            snprintf(p->message, sizeof(p->message), "leadership handed to node %llu", id);
        else
            snprintf(p->message, sizeof(p->message), "leadership handed over by node %llu",
                     (unsigned long long)c->old_leader);
        if (now_leader == c->old_leader)
            now_leader = id; /* the old leader's view may lag by a tick */
        break;
    }
    p->r.status = LOCKD__ADMIN_STATUS__ADMIN_OK;
    p->r.message = p->message;
    p->r.leader_id = now_leader;
    shm_node_status sst;
    shm_table_status(a->table, &sst);
    admin_leader_http(a, &sst, now_leader, p->leader_address, sizeof(p->leader_address));
    p->r.leader_address = p->leader_address;
}

/* Does configuration `resp` (OP_MEMBERS) show the change done? */
static bool change_visible(const struct admin_conn *c, const Lockd__Response *resp)
{
    const Lockd__AdminRequest *req = c->req;
    const Lockd__Member *m = NULL;
    for (size_t i = 0; i < resp->n_members; i++)
        if (resp->members[i]->id == req->node_id)
            m = resp->members[i];
    switch (req->command) {
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD:
        return m != NULL && strcmp(m->role, "voter") == 0 && strcmp(m->raft_address, req->address) == 0;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_REMOVE:
        return m == NULL;
    default:
        return resp->leader_id != 0 && resp->leader_id != c->old_leader &&
               (req->node_id == 0 || resp->leader_id == req->node_id);
    }
}

static void verify_start(admin_server *a, struct admin_conn *c)
{
    Lockd__Request rq = LOCKD__REQUEST__INIT;
    rq.id = ADMIN_RELAY_ID;
    rq.op = LOCKD__OP__OP_MEMBERS;
    c->phase = PHASE_VERIFY;
    relay_start(a, c, &rq, ADMIN_MEMBERS_TIMEOUT_MS);
}

/* Phase VERIFY answered: done if the configuration shows it; else look
 * again shortly, until verify_until; then the outcome stays unknown. */
static void admin_change_verified(admin_server *a, struct admin_conn *c, const Lockd__Response *resp)
{
    struct reply p;
    reply_init(&p);
    if (resp != NULL && resp->status == LOCKD__STATUS__ST_OK && change_visible(c, resp)) {
        log_info("admin: %s node=%llu: the relay said \"%s\", but the configuration shows it done",
                 change_name(c->req->command), (unsigned long long)c->req->node_id, c->unknown_error);
        change_succeeded(a, c, resp->leader_id, &p);
    } else {
        uint64_t now = clock_monotonic_ms();
        if (now + ADMIN_VERIFY_INTERVAL_MS < c->verify_until_ms) {
            c->state = CONN_PAUSED;
            c->deadline_ms = now + ADMIN_VERIFY_INTERVAL_MS;
            return;
        }
        reply_error(&p, c->unknown_status, "%s", c->unknown_error);
    }
    log_change(a, c, &p);
    conn_answer(a, c, &p);
}

static void admin_change_done(admin_server *a, struct admin_conn *c, const Lockd__Response *resp, Lockd__AdminStatus st,
                              const char *err)
{
    if (c->phase == PHASE_CHECK) {
        admin_change_checked(a, c, resp, st, err);
        return;
    }
    if (c->phase == PHASE_VERIFY) {
        admin_change_verified(a, c, resp);
        return;
    }
    const Lockd__AdminRequest *req = c->req;
    unsigned long long id = (unsigned long long)req->node_id;
    struct reply p;
    reply_init(&p);
    if (resp != NULL && resp->status == LOCKD__STATUS__ST_OK) {
        change_succeeded(a, c, resp->leader_id, &p);
        log_change(a, c, &p);
        conn_answer(a, c, &p);
        return;
    }
    if (resp == NULL || resp->status == LOCKD__STATUS__ST_TIMEOUT) {
        /* Outcome unknown. Typical for a change sent through a follower
         * that moves the leadership (transfer; removing the leader): the
         * follower's raftproc abandons a forwarded request as soon as it
         * sees a new leader, which here is the change succeeding. Look at
         * the configuration before saying "unknown". */
        if (resp == NULL)
            snprintf(c->unknown_error, sizeof(c->unknown_error), "%s%s", err,
                     st == LOCKD__ADMIN_STATUS__ADMIN_TIMEOUT ? " (see lockctl members for what happened)" : "");
        else
            snprintf(c->unknown_error, sizeof(c->unknown_error),
                     "no answer from the leader in time (%s); outcome unknown: see lockctl members",
                     resp->error[0] ? resp->error : "timeout");
        c->unknown_status = resp == NULL ? st : LOCKD__ADMIN_STATUS__ADMIN_TIMEOUT;
        c->verify_until_ms = clock_monotonic_ms() + ADMIN_VERIFY_MS;
        verify_start(a, c); /* c is not ours any more */
        return;
    }
    const char *why = resp->error[0] ? resp->error : "no reason given";
    p.r.leader_id = resp->leader_id;
    p.r.leader_address = resp->leader_address;
    switch (resp->status) {
    case LOCKD__STATUS__ST_BAD_REQUEST:
        if (req->command == LOCKD__ADMIN_COMMAND__ADMIN_CMD_TRANSFER) {
            /* raftproc reports a transfer after which the old leader still
             * leads as "not the leader": say what happened. */
            if (id != 0)
                reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED,
                            "leadership did not move to node %llu (raft: %s); is it running and caught up?", id, why);
            else
                reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "leadership did not move (raft: %s)", why);
            break;
        }
        /* An add fails after its first step when the new node cannot be
         * caught up (not running, wrong address): it stays a spare. */
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_REFUSED, "the leader refused the change: %s%s", why,
                    req->command == LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD
                        ? " (is the new node running with --join at that address? if lockctl members "
                          "lists it as a spare, remove it before trying again)"
                        : "");
        break;
    case LOCKD__STATUS__ST_NOT_LEADER:
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_NOT_LEADER,
                    "no leader could take the change right now (%s); try again", why);
        break;
    default:
        reply_error(&p, admin_map_status(resp->status), "%s", why);
        break;
    }
    log_change(a, c, &p);
    conn_answer(a, c, &p);
}

/* Every relay ends here, with raftproc's answer or why there is none
 * (resp == NULL: st and err). Frees resp. */
static void relay_end(admin_server *a, struct admin_conn *c, Lockd__Response *resp, Lockd__AdminStatus st,
                      const char *err)
{
    relay_close(a, c);
    switch (c->req->command) {
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_UNLOCK:
        admin_unlock_done(a, c, resp, st, err);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBERS:
        admin_members_done(a, c, resp, err);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_SNAPSHOT:
        admin_snapshot_done(a, c, resp, st, err);
        break;
    default:
        admin_change_done(a, c, resp, st, err);
        break;
    }
    if (resp != NULL)
        lockd__response__free_unpacked(resp, NULL);
}

/* ---- requests ---------------------------------------------------------------- */

static void conn_dispatch(admin_server *a, struct admin_conn *c, const uint8_t *payload, size_t plen)
{
    struct reply p;
    reply_init(&p);
    /* Nothing more to read: a client that hangs up now must not keep the
     * epoll set readable. */
    epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
    c->req = lockd__admin_request__unpack(NULL, plen, payload);
    if (c->req == NULL) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "undecodable request");
        conn_answer(a, c, &p);
        return;
    }
    const Lockd__AdminRequest *req = c->req;
    switch (req->command) {
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_STATUS:
        admin_status(a, c->cfd);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_LIST:
        admin_list(a, c->cfd, req);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_SHOW:
        admin_show(a, c->cfd, req);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_RELOAD:
        admin_reload(a, c->cfd);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_LOG_LEVEL:
        admin_log_level(a, c->cfd, req);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_UNLOCK:
        admin_unlock(a, c);
        return;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBERS:
        admin_members(a, c);
        return;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_SNAPSHOT:
        admin_snapshot(a, c);
        return;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_ADD:
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBER_REMOVE:
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_TRANSFER:
        admin_change(a, c);
        return;
    default:
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "unknown command %d (lockctl newer than lockd?)",
                    (int)req->command);
        admin_send(a, c->cfd, &p.r);
        break;
    }
    conn_free(a, c);
}

/* Reads what the client sent; dispatches once a whole request is there. */
static void conn_read(admin_server *a, struct admin_conn *c)
{
    struct reply p;
    reply_init(&p);
    for (;;) {
        if (c->in_len >= FRAME_HEADER_SIZE) {
            uint32_t want =
                (uint32_t)c->in[0] | (uint32_t)c->in[1] << 8 | (uint32_t)c->in[2] << 16 | (uint32_t)c->in[3] << 24;
            if (want > ADMIN_REQUEST_MAX) {
                reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "request larger than %d bytes",
                            ADMIN_REQUEST_MAX);
                conn_answer(a, c, &p);
                return;
            }
            const uint8_t *payload;
            size_t plen;
            if (frame_peek(c->in, c->in_len, &payload, &plen) > 0) {
                conn_dispatch(a, c, payload, plen);
                return;
            }
        }
        ssize_t r = recv(c->cfd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        log_debug("admin: a client left before sending a whole request");
        conn_free(a, c);
        return;
    }
}

static void admin_accept(admin_server *a)
{
    for (int i = 0; i < ADMIN_ACCEPT_BATCH && a->n_conns < ADMIN_CONN_MAX; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warn("admin: accept on %s: %s", a->path, strerror(errno));
            break;
        }
        struct admin_conn *c = a->conns;
        while (c->state != CONN_FREE)
            c++; /* n_conns < ADMIN_CONN_MAX: there is one */
        memset(c, 0, offsetof(struct admin_conn, in));
        c->state = CONN_READING;
        c->cfd = fd;
        c->rfd = -1;
        c->deadline_ms = clock_monotonic_ms() + ADMIN_IO_TIMEOUT_MS;
        a->n_conns++;
        if (ep_set(a, EPOLL_CTL_ADD, fd, EPOLLIN, TAG_CLIENT(conn_slot(a, c))) != 0) {
            log_warn("admin: epoll: %s", strerror(errno));
            conn_free(a, c);
            continue;
        }
        conn_read(a, c); /* lockctl writes right after connecting */
    }
    admin_listen_update(a);
}

/* Ends what is past its deadline: a request not sent within 2 s (closed
 * without an answer), a relay raftproc did not answer in time. */
static void admin_expire(admin_server *a)
{
    uint64_t now = clock_monotonic_ms();
    for (unsigned i = 0; i < ADMIN_CONN_MAX; i++) {
        struct admin_conn *c = &a->conns[i];
        if (c->state == CONN_FREE || c->deadline_ms > now)
            continue;
        if (c->state == CONN_READING) {
            log_debug("admin: no request from a client within %d ms", ADMIN_IO_TIMEOUT_MS);
            conn_free(a, c);
        } else if (c->state == CONN_PAUSED) {
            verify_start(a, c);
        } else {
            relay_fail(a, c, LOCKD__ADMIN_STATUS__ADMIN_TIMEOUT,
                       "the raft process did not answer within %llu ms; outcome unknown",
                       (unsigned long long)c->relay_ms);
        }
    }
}

static void admin_arm_timer(admin_server *a)
{
    uint64_t next = 0;
    for (unsigned i = 0; i < ADMIN_CONN_MAX; i++)
        if (a->conns[i].state != CONN_FREE && (next == 0 || a->conns[i].deadline_ms < next))
            next = a->conns[i].deadline_ms;
    struct itimerspec its;
    memset(&its, 0, sizeof(its)); /* all zero: disarmed */
    if (next != 0) {
        its.it_value.tv_sec = (time_t)(next / 1000);
        its.it_value.tv_nsec = (long)(next % 1000) * 1000000L;
    }
    if (timerfd_settime(a->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        log_warn("admin: timerfd_settime: %s", strerror(errno));
}

void admin_on_readable(void *arg)
{
    admin_server *a = arg;
    struct epoll_event ev[ADMIN_EVENTS];
    int n = epoll_wait(a->epfd, ev, ADMIN_EVENTS, 0);
    bool accept_ready = false;
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64;
        if (tag == TAG_LISTEN) {
            accept_ready = true; /* after the others: no slot is reused within this batch */
            continue;
        }
        if (tag == TAG_TIMER) {
            uint64_t ticks;
            if (read(a->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                log_debug("admin: timerfd read: %s", strerror(errno));
            continue;
        }
        uint64_t slot = (tag - 2) / 2;
        if (slot >= ADMIN_CONN_MAX)
            continue;
        struct admin_conn *c = &a->conns[slot];
        if (tag % 2 == 0) {
            if (c->state == CONN_READING)
                conn_read(a, c);
        } else if (c->state == CONN_RELAYING && c->rfd >= 0) {
            relay_io(a, c);
        }
    }
    admin_expire(a);
    if (accept_ready)
        admin_accept(a);
    admin_arm_timer(a);
}

/* ---- life cycle ------------------------------------------------------------- */

/* The master forks its children while connections may be open: none of
 * these fds may live on in a worker or raftproc (a relay would never see
 * EOF; the admin socket would outlive the master). The children close the
 * epoll fd itself (supervisor_env.admin_fd). */
static admin_server *g_admin;

static void admin_atfork_child(void)
{
    admin_server *a = g_admin;
    if (a == NULL)
        return;
    close(a->fd);
    close(a->tfd);
    for (unsigned i = 0; i < ADMIN_CONN_MAX; i++) {
        if (a->conns[i].state == CONN_FREE)
            continue;
        if (a->conns[i].cfd >= 0)
            close(a->conns[i].cfd);
        if (a->conns[i].rfd >= 0)
            close(a->conns[i].rfd);
    }
    g_admin = NULL;
}

int admin_open(struct lockd_config *cfg, const shm_table *table, admin_server **out, char *err, size_t err_cap)
{
    static bool atfork_registered;
    struct sockaddr_un sa;
    if (strlen(cfg->admin_socket) >= sizeof(sa.sun_path)) {
        snprintf(err, err_cap, "admin socket path %s is longer than %zu bytes (use a shorter --admin-socket)",
                 cfg->admin_socket, sizeof(sa.sun_path) - 1);
        return -LOCKD_EINVAL;
    }
    if (strcmp(cfg->admin_socket, cfg->raft_socket) == 0) {
        snprintf(err, err_cap, "--admin-socket %s is the Raft process's socket", cfg->admin_socket);
        return -LOCKD_EINVAL;
    }
    if (!atfork_registered) {
        if (pthread_atfork(NULL, NULL, admin_atfork_child) != 0) {
            snprintf(err, err_cap, "pthread_atfork failed");
            return -LOCKD_ENOMEM;
        }
        atfork_registered = true;
    }
    admin_server *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -LOCKD_ENOMEM;
    }
    for (unsigned i = 0; i < ADMIN_CONN_MAX; i++)
        a->conns[i].cfd = a->conns[i].rfd = -1;
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    a->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a->epfd < 0 || a->tfd < 0 || ep_set(a, EPOLL_CTL_ADD, a->tfd, EPOLLIN, TAG_TIMER) != 0) {
        snprintf(err, err_cap, "admin socket: epoll/timerfd: %s", strerror(errno));
        goto fail;
    }
    a->fd = listen_unix(cfg->admin_socket, err, err_cap);
    if (a->fd < 0)
        goto fail;
    /* listen_unix binds under umask 077, which leaves 0700 on Linux; the
     * execute bit means nothing on a socket, so state exactly 0600 (0660
     * with --admin-group, for lockctl run by that group's members). */
    if ((cfg->admin_gid >= 0 && chown(cfg->admin_socket, (uid_t)-1, (gid_t)cfg->admin_gid) != 0) ||
        chmod(cfg->admin_socket, cfg->admin_gid >= 0 ? 0660 : 0600) != 0) {
        snprintf(err, err_cap, "cannot set the owner group or mode of %s: %s", cfg->admin_socket, strerror(errno));
        close(a->fd);
        unlink(cfg->admin_socket);
        goto fail;
    }
    a->cfg = cfg;
    a->table = table;
    a->started_ms = clock_monotonic_ms();
    snprintf(a->path, sizeof(a->path), "%s", cfg->admin_socket);
    admin_listen_update(a);
    if (!a->listening) {
        snprintf(err, err_cap, "admin socket: epoll: %s", strerror(errno));
        close(a->fd);
        unlink(cfg->admin_socket);
        goto fail;
    }
    g_admin = a;
    *out = a;
    return 0;
fail:
    if (a->epfd >= 0)
        close(a->epfd);
    if (a->tfd >= 0)
        close(a->tfd);
    free(a);
    return -LOCKD_EIO;
}

int admin_fd(const admin_server *a)
{
    return a->epfd;
}

void admin_close(admin_server *a)
{
    if (a == NULL)
        return;
    for (unsigned i = 0; i < ADMIN_CONN_MAX; i++)
        if (a->conns[i].state != CONN_FREE)
            conn_free(a, &a->conns[i]);
    if (g_admin == a)
        g_admin = NULL;
    close(a->fd);
    close(a->tfd);
    close(a->epfd);
    unlink(a->path);
    free(a);
}
