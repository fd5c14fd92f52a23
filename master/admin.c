/* master/admin.c: the admin socket server (see admin.h). Owns the listening
 * socket and one connection at a time. Reads the shm table, never writes
 * it; never forks; every wait it does in the master loop has a deadline
 * (the master must keep reaping and restarting children). */
#include "master/admin.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

#define ADMIN_REQUEST_MAX 4096     /* an AdminRequest is a few hundred bytes */
#define ADMIN_IO_TIMEOUT_MS 2000   /* to read a request, and to write an answer */
#define ADMIN_ACCEPT_BATCH 8       /* connections per loop turn: signals come first */
#define ADMIN_LIST_DEFAULT 100     /* as GET /locks */
#define ADMIN_LIST_MAX 10000
#define ADMIN_RELAY_MARGIN_MS 1000 /* raftproc answers 504 itself at api_timeout */
#define ADMIN_SCAN_TRIES 3
#define ADMIN_FRAME_BUDGET (LOCKD_FRAME_MAX - 512) /* room for the non-lock fields */

struct admin_server {
    struct lockd_config *cfg;
    const shm_table *table;
    int fd;
    uint64_t started_ms;
    char path[LOCKD_PATH_MAX];
    uint8_t frame[FRAME_HEADER_SIZE + LOCKD_FRAME_MAX]; /* one frame in or out */
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

/* Reads into buf[0..cap) until it holds one whole frame. Returns the frame
 * length (payload in *payload / *plen), or -LOCKD_EAGAIN (deadline),
 * -LOCKD_ETOOBIG (the frame cannot fit cap), -LOCKD_EIO (error or the
 * peer closed first). */
static int admin_read_frame(int fd, uint8_t *buf, size_t cap, uint64_t deadline_ms, const uint8_t **payload,
                            size_t *plen)
{
    size_t len = 0;
    for (;;) {
        int n = frame_peek(buf, len, payload, plen);
        if (n != 0)
            return n;
        if (len == cap)
            return -LOCKD_ETOOBIG;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == 0)
            return -LOCKD_EIO;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -LOCKD_EIO;
        int rc = admin_wait(fd, POLLIN, deadline_ms);
        if (rc != 0)
            return rc;
    }
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

static const char *role_name(uint32_t role)
{
    switch (role) {
    case 1:
        return "follower";
    case 2:
        return "candidate";
    case 3:
        return "leader";
    default:
        return "unavailable";
    }
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
    n.role = (char *)role_name(st.role);
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

static void admin_members(admin_server *a, int fd)
{
    const struct lockd_config *cfg = a->cfg;
    struct reply p;
    reply_init(&p);
    shm_node_status st;
    shm_table_status(a->table, &st);
    Lockd__AdminMember m[LOCKD_MAX_NODES], *mp[LOCKD_MAX_NODES];
    char http[LOCKD_MAX_NODES][LOCKD_ADDR_MAX + 8], raft[LOCKD_MAX_NODES][LOCKD_ADDR_MAX + 8];
    unsigned n = cfg->n_nodes < LOCKD_MAX_NODES ? cfg->n_nodes : LOCKD_MAX_NODES;
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
    p.r.members = mp;
    p.r.n_members = n;
    p.r.leader_id = st.leader_id;
    admin_leader_address(a, &st, p.leader_address, sizeof(p.leader_address));
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

/* The level is a per-process variable and nothing carries it to running
 * children: the master changes its own level and cfg->log_level, which
 * workers apply at start and raftproc inherits at fork. So workers follow
 * after the next reload, raftproc after its next restart. */
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
    if (old > LOG_INFO)
        log_info("admin: log level %s -> %s (lockctl)", level_name(old), level_name(level));
    snprintf(p.message, sizeof(p.message),
             "master log level is %s; workers use it from the next reload (lockctl reload), "
             "the raft process from its next restart",
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

static int name_after(const shm_lock *x, const shm_lock *y) { return strcmp(x->name, y->name) > 0; }

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
                    rc == -LOCKD_ENOMEM ? LOCKD__ADMIN_STATUS__ADMIN_INTERNAL
                                        : LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE,
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

/* ---- unlock: relayed to raftproc ------------------------------------------ */

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

/* Sends one request on a connection of its own and waits for its answer.
 * Returns the unpacked response (caller frees), or NULL with p filled. */
static Lockd__Response *admin_relay(admin_server *a, const Lockd__Request *rq, struct reply *p)
{
    const struct lockd_config *cfg = a->cfg;
    uint64_t deadline = clock_monotonic_ms() + cfg->api_timeout_ms + ADMIN_RELAY_MARGIN_MS;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* Fits: the master bound it at start (listen_unix checks the length). */
    memcpy(sa.sun_path, cfg->raft_socket, strnlen(cfg->raft_socket, sizeof(sa.sun_path) - 1));
    Lockd__Response *resp = NULL;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        reply_error(p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "cannot reach the raft process at %s: %s",
                    cfg->raft_socket, strerror(errno));
        goto out;
    }
    int n = frame_encode(&rq->base, a->frame, sizeof(a->frame));
    if (n < 0 || admin_write_all(fd, a->frame, (size_t)n, deadline) != 0) {
        reply_error(p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "cannot send to the raft process");
        goto out;
    }
    for (;;) {
        const uint8_t *payload;
        size_t plen;
        int rc = admin_read_frame(fd, a->frame, sizeof(a->frame), deadline, &payload, &plen);
        if (rc == -LOCKD_EAGAIN) {
            reply_error(p, LOCKD__ADMIN_STATUS__ADMIN_TIMEOUT,
                        "the raft process did not answer within %llu ms; outcome unknown",
                        (unsigned long long)(cfg->api_timeout_ms + ADMIN_RELAY_MARGIN_MS));
            goto out;
        }
        if (rc < 0) {
            reply_error(p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                        "the raft process closed the connection (restarting?); outcome unknown");
            goto out;
        }
        resp = lockd__response__unpack(NULL, plen, payload);
        if (resp == NULL) {
            reply_error(p, LOCKD__ADMIN_STATUS__ADMIN_INTERNAL, "undecodable answer from the raft process");
            goto out;
        }
        if (resp->id == rq->id)
            break;
        lockd__response__free_unpacked(resp, NULL); /* not ours: cannot happen on a private connection */
        resp = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    return resp;
}

/* A DELETE /lock/:name by the operator. Blocks the master loop for at most
 * api_timeout + 1 s: acceptable because the master does nothing
 * latency-critical (children keep serving; a SIGCHLD waits in the signalfd
 * until we return) and an operator's unlock is rare. */
static void admin_unlock(admin_server *a, int fd, const Lockd__AdminRequest *req)
{
    struct reply p;
    reply_init(&p);
    Lockd__AdminLock pl, *plp = &pl;
    shm_lock holder;
    Lockd__Response *resp = NULL;
    size_t nlen = strlen(req->name), olen = strlen(req->owner);
    if (names_check_lock(req->name, nlen, p.error, sizeof(p.error)) != 0 ||
        (olen > 0 && names_check_owner(req->owner, olen, p.error, sizeof(p.error)) != 0)) {
        p.r.status = LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST;
        p.r.error = p.error;
        goto send;
    }
    struct supervisor_counts sc;
    supervisor_counts(&sc);
    if (sc.raft_pid == 0) {
        /* Its socket still accepts (the master holds it), but nobody reads. */
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_UNAVAILABLE, "the raft process is not running (restarting)");
        goto send;
    }
    Lockd__Request rq = LOCKD__REQUEST__INIT;
    rq.id = 1;
    rq.op = LOCKD__OP__OP_RELEASE;
    rq.name = req->name;
    rq.owner = req->owner;
    rq.token = req->token;
    rq.force = req->force;
    resp = admin_relay(a, &rq, &p);
    if (resp == NULL)
        goto send;
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
    log_info("admin: unlock name=%s owner=%s token=%llu force=%d by lockctl: %s", req->name, req->owner,
             (unsigned long long)req->token, (int)req->force, p.r.error[0] ? p.r.error : "released");
send:
    admin_send(a, fd, &p.r);
    if (resp != NULL)
        lockd__response__free_unpacked(resp, NULL);
}

/* ---- connections ------------------------------------------------------------ */

static void admin_serve(admin_server *a, int fd)
{
    uint8_t in[FRAME_HEADER_SIZE + ADMIN_REQUEST_MAX];
    const uint8_t *payload;
    size_t plen;
    struct reply p;
    reply_init(&p);
    int rc = admin_read_frame(fd, in, sizeof(in), clock_monotonic_ms() + ADMIN_IO_TIMEOUT_MS, &payload, &plen);
    if (rc == -LOCKD_ETOOBIG) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "request larger than %d bytes", ADMIN_REQUEST_MAX);
        admin_send(a, fd, &p.r);
        return;
    }
    if (rc < 0) {
        log_debug("admin: no request from a client: %s", lockd_strerror(rc));
        return;
    }
    Lockd__AdminRequest *req = lockd__admin_request__unpack(NULL, plen, payload);
    if (req == NULL) {
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "undecodable request");
        admin_send(a, fd, &p.r);
        return;
    }
    switch (req->command) {
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_STATUS:
        admin_status(a, fd);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_LIST:
        admin_list(a, fd, req);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_SHOW:
        admin_show(a, fd, req);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_UNLOCK:
        admin_unlock(a, fd, req);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_MEMBERS:
        admin_members(a, fd);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_RELOAD:
        admin_reload(a, fd);
        break;
    case LOCKD__ADMIN_COMMAND__ADMIN_CMD_LOG_LEVEL:
        admin_log_level(a, fd, req);
        break;
    default:
        reply_error(&p, LOCKD__ADMIN_STATUS__ADMIN_BAD_REQUEST, "unknown command %d (lockctl newer than lockd?)",
                    (int)req->command);
        admin_send(a, fd, &p.r);
        break;
    }
    lockd__admin_request__free_unpacked(req, NULL);
}

void admin_on_readable(void *arg)
{
    admin_server *a = arg;
    for (int i = 0; i < ADMIN_ACCEPT_BATCH; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warn("admin: accept on %s: %s", a->path, strerror(errno));
            return;
        }
        admin_serve(a, fd);
        close(fd);
    }
}

int admin_open(struct lockd_config *cfg, const shm_table *table, admin_server **out, char *err, size_t err_cap)
{
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
    admin_server *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -LOCKD_ENOMEM;
    }
    a->fd = listen_unix(cfg->admin_socket, err, err_cap);
    if (a->fd < 0) {
        free(a);
        return -LOCKD_EIO;
    }
    /* listen_unix binds under umask 077, which leaves 0700 on Linux; the
     * execute bit means nothing on a socket, so state exactly 0600. */
    if (chmod(cfg->admin_socket, 0600) != 0) {
        snprintf(err, err_cap, "cannot chmod %s: %s", cfg->admin_socket, strerror(errno));
        close(a->fd);
        unlink(cfg->admin_socket);
        free(a);
        return -LOCKD_EIO;
    }
    a->cfg = cfg;
    a->table = table;
    a->started_ms = clock_monotonic_ms();
    snprintf(a->path, sizeof(a->path), "%s", cfg->admin_socket);
    *out = a;
    return 0;
}

int admin_fd(const admin_server *a) { return a->fd; }

void admin_close(admin_server *a)
{
    if (a == NULL)
        return;
    close(a->fd);
    unlink(a->path);
    free(a);
}
