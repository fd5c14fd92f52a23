/* raftproc/consensus.c: lockd's adapter over the C Raft library 0.15 (see
 * consensus.h for the defects it guards against). Owns the struct raft, its
 * libuv I/O and TCP transport, and the in-flight proposal count. The only
 * file that includes raft.h besides the FSM's buffer allocation. */
#include "raftproc/consensus.h"

#include <errno.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/fs.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/memory.h"
#include "raftproc/transport.h"
#include "shm/stats.h"

#define CONSENSUS_TICK_MS 20
/* Snapshot pacing: a snapshot costs O(state) (a million locks: ~80 MB
 * encoded in ~0.6 s, compressed, written and fsync'd), so with a large state
 * the log may grow to the last snapshot's size before the next one, but to
 * no more than SNAPSHOT_LOG_CAP bytes, which libraft holds in memory (each
 * entry counted with SNAPSHOT_ENTRY_OVERHEAD for its bookkeeping). Below
 * SNAPSHOT_ADAPT_MIN the configured entry count alone decides. Measured with
 * 800k locks under try-locks: a snapshot every ~5 s (every 8192 entries) took
 * 20-25 % of the throughput and pushed p99 from ~6 ms to 10-130 ms. */
#define SNAPSHOT_ADAPT_MIN (1u << 20)
#define SNAPSHOT_LOG_CAP (16u << 20)
#define SNAPSHOT_ENTRY_OVERHEAD 64u
/* How often the LMDB pages touched by commits are let go (store_release_pages). */
#define STORE_RELEASE_TICKS (1000 / CONSENSUS_TICK_MS)

struct consensus_last {
    const struct fsm_result *results;
    size_t n;
};

struct consensus {
    uv_loop_t *loop;
    const struct lockd_config *cfg;
    fsm *f;
    store *st; /* NULL with --store memory */
    shm_table *table;
    struct consensus_events ev;

    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm rfsm;
    uv_timer_t tick;

    bool started;      /* raft_start returned: restores are installs now */
    unsigned inflight; /* applies + barriers the library still holds */
    enum consensus_role role;
    uint64_t leader_id;
    uint64_t leader_seen_ms; /* monotonic ms we last knew a leader */
    bool ready;
    bool barrier_pending;
    /* Follower read freshness: stale from start and after any gap in leader
     * contact longer than an election timeout, until the node has applied
     * an entry the leader committed after contact resumed. */
    bool stale;
    bool snapshot_requested;       /* an operator's snapshot is pending: threshold 1 until it is taken */
    bool restore_threshold;        /* an operator's snapshot was taken: back to normal */
    unsigned threshold;            /* entries between snapshots now (consensus_pace_snapshots) */
    uint64_t applied_bytes;        /* entry bytes applied, + SNAPSHOT_ENTRY_OVERHEAD each */
    uint64_t bytes_at_begin;       /* applied_bytes when the last snapshot started (or was installed) */
    _Atomic size_t snapshot_bytes; /* size of the last snapshot taken or installed */
    unsigned ticks;
    uint64_t last_tick_ms; /* for the stall report in consensus_tick */
    bool probe_pending;
    uint64_t probe_target;
    struct raft_barrier barrier;
    struct consensus_last last;
    char leader_http[LOCKD_ADDR_MAX + 8]; /* "" when unknown */

    bool closing, close_started;
    uint64_t close_deadline_ms;
    void (*done)(void *arg, bool clean);
    void *done_arg;
};

struct proposal {
    struct raft_apply req;
    consensus *c;
    consensus_apply_cb cb;
    void *data;
};

/* ---- FSM glue ---------------------------------------------------------- */

static int consensus_fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    consensus *c = rf->data;
    /* 0.15 applies index last_applied + 1 and only then advances it. */
    uint64_t index = c->raft.last_applied + 1;
    c->applied_bytes += buf->len + SNAPSHOT_ENTRY_OVERHEAD;
    int rc = fsm_apply(c->f, index, buf->base, buf->len, &c->last.results, &c->last.n);
    if (rc != 0) {
        log_error("applying raft entry %llu failed (%s): exiting so the master restarts us from the log",
                  (unsigned long long)index, lockd_strerror(rc));
        _exit(CONSENSUS_EXIT_IO);
    }
    *result = &c->last;
    return 0;
}

static int consensus_snapshot_bufs(void *data, size_t len, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    *bufs = raft_malloc(sizeof(**bufs));
    if (*bufs == NULL) {
        raft_free(data);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = data;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

/* On the loop, as libraft starts a snapshot: the log applied after this
 * point is what the next one is paced by. With a large state the threshold
 * is held at once rather than at the next tick, so that libraft cannot start
 * another snapshot the moment this one ends. */
static void consensus_snapshot_starting(consensus *c)
{
    c->bytes_at_begin = c->applied_bytes;
    if (!c->snapshot_requested && !c->restore_threshold && atomic_load(&c->snapshot_bytes) >= SNAPSHOT_ADAPT_MIN &&
        c->threshold != UINT32_MAX) {
        c->threshold = UINT32_MAX;
        raft_set_snapshot_threshold(&c->raft, c->threshold);
    }
}

/* Memory store: the snapshot is encoded on the loop from the shm table. */
static int consensus_fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    consensus *c = rf->data;
    void *data;
    size_t len;
    consensus_snapshot_starting(c);
    if (fsm_snapshot(c->f, &data, &len) != 0)
        return RAFT_NOMEM;
    log_info("snapshot taken: %zu bytes at applied index %llu", len, (unsigned long long)fsm_applied_index(c->f));
    atomic_store(&c->snapshot_bytes, len);
    return consensus_snapshot_bufs(data, len, bufs, n_bufs);
}

/* LMDB store: the loop only opens a read transaction (the state as of the
 * last applied entry, kept by MVCC); the encoding runs on libuv's thread
 * pool while the loop goes on applying. A million locks took the loop away
 * for hundreds of milliseconds before. */
static int consensus_fsm_snapshot_begin(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    consensus *c = rf->data;
    struct store_meta meta;
    uint64_t n_locks, n_waiters;
    int rc = store_snapshot_begin(c->st, &meta, &n_locks, &n_waiters);
    if (rc != 0)
        return rc == -LOCKD_EAGAIN ? RAFT_BUSY : RAFT_IOERR;
    consensus_snapshot_starting(c);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* The encoding runs on a thread of its own at a lower CPU priority than the
 * loop: with a million locks it is a few hundred ms of CPU, and on a small
 * machine it competed with the request path (try-lock p99 17-117 ms in the
 * windows with a snapshot, 7.7 ms without). The libuv pool thread that
 * libraft runs snapshot_async on waits for it. */
#define SNAPSHOT_NICE 10

struct snapshot_job {
    store *st;
    bool own_thread; /* renice only a thread of our own: a pool thread would stay niced */
    void *data;
    size_t len;
    int rc;
};

static void *consensus_snapshot_encode(void *arg)
{
    struct snapshot_job *job = arg;
    /* Per-thread nice value (Linux): raising it needs no privilege. */
    if (job->own_thread && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAPSHOT_NICE) != 0)
        log_debug("snapshot thread: setpriority: %s", strerror(errno));
    /* fsm_snapshot_store_from_open ends the read transaction begun on the loop. */
    job->rc = fsm_snapshot_store_from_open(job->st, &job->data, &job->len);
    return NULL;
}

static int consensus_fsm_snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    consensus *c = rf->data;
    struct snapshot_job job = {.st = c->st, .own_thread = true};
    uint64_t t0 = clock_monotonic_ms();
    pthread_t tid;
    if (pthread_create(&tid, NULL, consensus_snapshot_encode, &job) == 0) {
        pthread_join(tid, NULL);
    } else {
        job.own_thread = false; /* no thread to be had: encode here, at the pool's priority */
        consensus_snapshot_encode(&job);
    }
    if (job.rc != 0)
        return RAFT_NOMEM;
    log_info("snapshot encoded off the loop: %zu bytes in %llu ms", job.len,
             (unsigned long long)(clock_monotonic_ms() - t0));
    atomic_store(&c->snapshot_bytes, job.len); /* read by the loop's tick */
    return consensus_snapshot_bufs(job.data, job.len, bufs, n_bufs);
}

static int consensus_fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    consensus *c = rf->data;
    int rc = fsm_restore(c->f, buf->base, buf->len, !c->started);
    if (rc != 0) {
        log_error("snapshot restore failed: %s", lockd_strerror(rc));
        return RAFT_CORRUPT;
    }
    c->bytes_at_begin = c->applied_bytes;
    atomic_store(&c->snapshot_bytes, buf->len);
    raft_free(buf->base); /* ours on success (raft.h) */
    if (c->started) {
        if (c->ready || c->role == CONSENSUS_FOLLOWER)
            shm_table_set_state(c->table, SHM_STATE_READY);
        if (c->ev.on_restore != NULL)
            c->ev.on_restore(c->ev.arg);
    }
    return 0;
}

/* ---- status ------------------------------------------------------------ */

static const struct cluster_node *consensus_node(const consensus *c, uint64_t id)
{
    for (unsigned i = 0; i < c->cfg->n_nodes; i++)
        if (c->cfg->nodes[i].id == id)
            return &c->cfg->nodes[i];
    return NULL;
}

enum consensus_role consensus_role(const consensus *c)
{
    return c->role;
}
bool consensus_ready(const consensus *c)
{
    return c->ready;
}
unsigned consensus_inflight(const consensus *c)
{
    return c->inflight;
}

/* Formats the leader's HTTP address once per leader change (every answer
 * to a worker carries it). */
static void consensus_update_leader_address(consensus *c)
{
    c->leader_http[0] = '\0';
    if (c->leader_id == 0)
        return;
    const struct cluster_node *n = consensus_node(c, c->leader_id);
    if (n != NULL) {
        snprintf(c->leader_http, sizeof(c->leader_http), "%s:%u", n->http_host, n->http_port);
        return;
    }
    /* Added at run time, not in our cluster file: its HTTP port by the
     * default rule (Raft port - 1000). */
    const char *ra = consensus_leader_raft_address(c);
    const char *colon = strrchr(ra, ':');
    int port = colon ? atoi(colon + 1) - LOCKD_RAFT_PORT_OFFSET : 0;
    if (port > 0)
        snprintf(c->leader_http, sizeof(c->leader_http), "%.*s:%d", (int)(colon - ra), ra, port);
}

uint64_t consensus_leader(const consensus *c, const char **http_address)
{
    if (http_address != NULL)
        *http_address = c->leader_http[0] ? c->leader_http : NULL;
    return c->leader_id;
}

void consensus_publish(consensus *c)
{
    shm_node_status st;
    memset(&st, 0, sizeof(st));
    st.node_id = c->cfg->node_id;
    st.leader_id = c->leader_id;
    st.term = c->raft.current_term;
    st.commit_index = c->raft.commit_index;
    st.applied_index = c->raft.last_applied;
    /* Freshness of this node's reads: a leader is current as of now; a
     * follower as of the last message from its leader, which is when the
     * library restarted its election timer (raft_time is libuv's clock:
     * CLOCK_MONOTONIC milliseconds, like clock_monotonic_ms). */
    if (c->role == CONSENSUS_LEADER)
        st.last_contact_ms = clock_monotonic_ms();
    else if (c->role == CONSENSUS_FOLLOWER && c->leader_id != 0 && !c->stale)
        st.last_contact_ms = c->raft.election_timer_start;
    else if (c->role == CONSENSUS_FOLLOWER)
        st.last_contact_ms = 0; /* stale: workers refuse local reads */
    else
        st.last_contact_ms = c->leader_seen_ms;
    st.role = (uint32_t)c->role;
    st.next_token = fsm_next_token(c->f);
    const char *addr;
    consensus_leader(c, &addr);
    if (addr != NULL)
        snprintf(st.leader_address, sizeof(st.leader_address), "%.63s", addr);
    shm_table_publish_status(c->table, &st);
}

static void consensus_barrier_cb(struct raft_barrier *req, int status)
{
    consensus *c = req->data;
    c->inflight--;
    c->barrier_pending = false;
    if (c->closing)
        return;
    if (status == 0 && raft_state(&c->raft) == RAFT_LEADER) {
        /* Every entry of earlier terms is applied: safe to answer reads. */
        c->ready = true;
        shm_table_set_state(c->table, SHM_STATE_READY);
        log_info("leader ready term=%llu applied=%llu", (unsigned long long)c->raft.current_term,
                 (unsigned long long)c->raft.last_applied);
        consensus_publish(c);
        if (c->ev.on_role != NULL)
            c->ev.on_role(c->ev.arg, c->role, true);
    }
}

/* Polls the library's role and leader (0.15 has no change callback). */
static void consensus_observe(consensus *c)
{
    raft_id id;
    const char *addr;
    raft_leader(&c->raft, &id, &addr);
    enum consensus_role role = (enum consensus_role)raft_state(&c->raft);
    uint64_t now = clock_monotonic_ms();
    if (id != 0)
        c->leader_seen_ms = now;
    if (role == c->role && id == c->leader_id)
        return;
    log_info("raft role %d -> %d, leader %llu -> %llu, term %llu", c->role, role, (unsigned long long)c->leader_id,
             (unsigned long long)id, (unsigned long long)c->raft.current_term);
    c->role = role;
    c->leader_id = id;
    consensus_update_leader_address(c);
    c->ready = false;
    if (role == CONSENSUS_LEADER && !c->barrier_pending && !c->closing) {
        /* Raft §6.4: a new leader commits an entry of its own term before it
         * knows which earlier entries are committed. */
        c->barrier.data = c;
        if (raft_barrier(&c->raft, &c->barrier, consensus_barrier_cb) == 0) {
            c->barrier_pending = true;
            c->inflight++;
        }
    } else if (role == CONSENSUS_FOLLOWER && id != 0) {
        /* A follower serves reads of what it has applied (freshness is
         * published with the status); leader-side readiness is the barrier. */
        c->ready = true;
        shm_table_set_state(c->table, SHM_STATE_READY);
    }
    consensus_publish(c);
    if (c->ev.on_role != NULL)
        c->ev.on_role(c->ev.arg, role, c->ready);
}

static void consensus_raft_closed(struct raft *r)
{
    consensus *c = r->data;
    raft_uv_close(&c->io);
    raft_uv_tcp_close(&c->transport);
    c->done(c->done_arg, true);
}

/* A snapshot is being taken or written: with the LMDB store its encoding
 * reads the store on libuv's thread pool, so the store must stay open. */
bool consensus_snapshot_busy(const consensus *c)
{
    return c->raft.snapshot.pending.term != 0 || c->raft.snapshot.put.data != NULL;
}

uint64_t consensus_applied_index(const consensus *c)
{
    return fsm_applied_index(c->f);
}

void consensus_caught_up_to(consensus *c, uint64_t index)
{
    c->probe_pending = false;
    c->probe_target = index;
}

/* See `stale` in struct consensus. */
static void consensus_check_freshness(consensus *c)
{
    if (c->role != CONSENSUS_FOLLOWER) {
        c->stale = c->role != CONSENSUS_LEADER;
        c->probe_target = 0;
        return;
    }
    uint64_t now = clock_monotonic_ms();
    if (c->leader_id == 0 || now - c->raft.election_timer_start > c->cfg->election_timeout_ms) {
        c->stale = true;
        c->probe_target = 0;
        return;
    }
    if (!c->stale)
        return;
    if (c->probe_target != 0 && c->raft.last_applied >= c->probe_target) {
        log_info("caught up with leader %llu at index %llu: serving local reads", (unsigned long long)c->leader_id,
                 (unsigned long long)c->probe_target);
        c->stale = false;
        c->probe_target = 0;
    } else if (c->probe_target == 0 && !c->probe_pending && c->ev.on_need_catch_up != NULL) {
        c->probe_pending = true;
        c->ev.on_need_catch_up(c->ev.arg);
    }
}

unsigned consensus_snapshot_threshold(unsigned min_entries, size_t snapshot_bytes, uint64_t log_bytes)
{
    if (snapshot_bytes < SNAPSHOT_ADAPT_MIN)
        return min_entries;
    uint64_t target = snapshot_bytes < SNAPSHOT_LOG_CAP ? snapshot_bytes : SNAPSHOT_LOG_CAP;
    return log_bytes < target ? UINT32_MAX : min_entries;
}

/* Sets libraft's snapshot threshold (in entries) each tick so that, once
 * the state is large, a snapshot starts when the log applied since the last
 * one started has reached min(last snapshot's size, SNAPSHOT_LOG_CAP) bytes:
 * the threshold is held out of reach until then, and set to the configured
 * minimum when it is time (libraft then snapshots after its next apply).
 * Counting from the start, not the end, keeps the entries applied while a
 * snapshot is encoded in the count, and holds the threshold while it runs.
 * A snapshot that fails is simply retried once that much log has followed. */
static void consensus_pace_snapshots(consensus *c)
{
    if (c->snapshot_requested || c->restore_threshold)
        return; /* an operator's snapshot is pending: threshold 1 until it is taken */
    unsigned want = consensus_snapshot_threshold(c->cfg->snapshot_threshold, atomic_load(&c->snapshot_bytes),
                                                 c->applied_bytes - c->bytes_at_begin);
    if (want != c->threshold) {
        c->threshold = want;
        raft_set_snapshot_threshold(&c->raft, c->threshold);
    }
}

static void consensus_tick(uv_timer_t *t)
{
    consensus *c = t->data;
    uint64_t now = clock_monotonic_ms();
    if (c->last_tick_ms != 0 && now - c->last_tick_ms > CONSENSUS_TICK_MS + 100)
        log_warn("raft event loop stalled: %llu ms between ticks of %d ms", (unsigned long long)(now - c->last_tick_ms),
                 CONSENSUS_TICK_MS);
    c->last_tick_ms = now;
    int level = shm_stats_log_level(shm_table_stats(c->table));
    if (level >= 0 && level != (int)log_get_level())
        log_set_level((enum log_level)level); /* lockctl log-level */
    if (c->close_started)
        return;
    if (c->restore_threshold) {
        c->restore_threshold = false;
        c->snapshot_requested = false;
        raft_set_snapshot_threshold(&c->raft, c->threshold);
    }
    consensus_pace_snapshots(c);
    if (c->st != NULL && ++c->ticks % STORE_RELEASE_TICKS == 0)
        store_release_pages(c->st);
    memory_decay(now);
    consensus_observe(c);
    consensus_check_freshness(c);
    consensus_publish(c);
    if (!c->closing)
        return;
    if (c->inflight == 0 && !consensus_snapshot_busy(c)) {
        c->close_started = true;
        uv_timer_stop(&c->tick);
        uv_close((uv_handle_t *)&c->tick, NULL);
        raft_close(&c->raft, consensus_raft_closed);
    } else if (clock_monotonic_ms() >= c->close_deadline_ms) {
        /* Closing now would hit 0.15's double free; the log on disk holds
         * every acknowledged entry, so leaving without closing is safe. */
        log_warn("%u raft requests still in flight after the drain deadline: exiting without raft_close", c->inflight);
        c->close_started = true;
        uv_timer_stop(&c->tick);
        c->done(c->done_arg, false);
    }
}

/* ---- life cycle -------------------------------------------------------- */

static void raft_address(const struct cluster_node *n, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:%u", n->raft_host, n->raft_port);
}

int consensus_start(uv_loop_t *loop, const struct lockd_config *cfg, fsm *f, store *st, shm_table *table,
                    const struct consensus_events *ev, consensus **out)
{
    consensus *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -LOCKD_ENOMEM;
    c->loop = loop;
    c->cfg = cfg;
    c->f = f;
    c->st = st;
    c->stale = true;
    c->table = table;
    if (ev != NULL)
        c->ev = *ev;
    if (fs_mkdir_p(cfg->raft_dir, 0700) != 0) {
        log_error("cannot create raft directory %s: %s", cfg->raft_dir, strerror(errno));
        free(c);
        return -LOCKD_EIO;
    }
    char self_addr[LOCKD_ADDR_MAX + 8];
    raft_address(cfg->self, self_addr, sizeof(self_addr));

    int rv = raft_uv_tcp_init(&c->transport, loop);
    if (rv != 0) {
        log_error("raft transport init failed: %s", raft_strerror(rv));
        free(c);
        return -LOCKD_EIO;
    }
    transport_nodelay_wrap(&c->transport);
    rv = raft_uv_init(&c->io, loop, cfg->raft_dir, &c->transport);
    if (rv != 0) {
        log_error("raft storage init in %s failed: %s", cfg->raft_dir, c->io.errmsg);
        raft_uv_tcp_close(&c->transport);
        free(c);
        return -LOCKD_EIO;
    }
    /* 0.15's raft_uv implements async_work (UvAsyncWork, libuv's thread
     * pool) but still reports io->version 1, which raft_init then refuses for
     * an FSM with snapshot_async: declare what it implements. */
    if (c->io.async_work != NULL && c->io.version < 2)
        c->io.version = 2;
    c->rfsm.version = 1;
    c->rfsm.data = c;
    c->rfsm.apply = consensus_fsm_apply;
    c->rfsm.snapshot = consensus_fsm_snapshot;
    c->rfsm.restore = consensus_fsm_restore;
    if (c->st != NULL) {
        c->rfsm.version = 3;
        c->rfsm.snapshot = consensus_fsm_snapshot_begin;
        c->rfsm.snapshot_async = consensus_fsm_snapshot_async;
    }
    rv = raft_init(&c->raft, &c->io, &c->rfsm, cfg->node_id, self_addr);
    if (rv != 0) {
        log_error("raft init failed: %s", raft_errmsg(&c->raft));
        goto fail_io;
    }
    c->raft.data = c;

    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (unsigned i = 0; i < cfg->n_nodes; i++) {
        char addr[LOCKD_ADDR_MAX + 8];
        raft_address(&cfg->nodes[i], addr, sizeof(addr));
        if ((rv = raft_configuration_add(&conf, cfg->nodes[i].id, addr, RAFT_VOTER)) != 0) {
            raft_configuration_close(&conf);
            log_error("raft configuration: %s", raft_strerror(rv));
            goto fail_io;
        }
    }
    /* A node that joins a running cluster (--join) must not bootstrap: the
     * leader adds it (lockctl members add) and sends it the log. */
    rv = cfg->join ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        log_error("raft bootstrap failed: %s", raft_errmsg(&c->raft));
        goto fail_io;
    }
    raft_set_election_timeout(&c->raft, cfg->election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_timeout_ms);
    c->threshold = cfg->snapshot_threshold;
    raft_set_snapshot_threshold(&c->raft, c->threshold);
    raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&c->raft, true);
    rv = raft_start(&c->raft);
    if (rv != 0) {
        log_error("raft start failed (%s): %s", raft_strerror(rv), raft_errmsg(&c->raft));
        goto fail_io;
    }
    c->started = true;
    log_info("raft started id=%llu address=%s dir=%s voters=%u", (unsigned long long)cfg->node_id, self_addr,
             cfg->raft_dir, cfg->n_nodes);
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, consensus_tick, 0, CONSENSUS_TICK_MS);
    *out = c;
    return 0;
fail_io:
    /* raft_init failed or never started: the I/O objects were initialised
     * but never started; closing them needs the loop to run, which our
     * caller's exit does not. Leak them: the process is about to exit. */
    return -LOCKD_EIO;
}

void *consensus_alloc(size_t len)
{
    return raft_malloc(len ? len : 1);
}
void consensus_free(void *buf)
{
    raft_free(buf);
}

static void consensus_proposal_cb(struct raft_apply *req, int status, void *result)
{
    struct proposal *p = req->data;
    consensus *c = p->c;
    c->inflight--;
    if (status == 0) {
        const struct consensus_last *last = result;
        p->cb(p->data, 0, last->results, last->n);
    } else if (status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER) {
        p->cb(p->data, -LOCKD_ENOTLEADER, NULL, 0);
    } else if (status == RAFT_SHUTDOWN || c->closing) {
        p->cb(p->data, -LOCKD_ESHUTDOWN, NULL, 0);
    } else {
        log_error("raft append failed: %s (%d): exiting so the master restarts us", raft_strerror(status), status);
        _exit(CONSENSUS_EXIT_IO);
    }
    free(p);
}

int consensus_propose(consensus *c, void *buf, size_t len, consensus_apply_cb cb, void *data)
{
    if (c->closing)
        return -LOCKD_ESHUTDOWN;
    if (c->role != CONSENSUS_LEADER || raft_state(&c->raft) != RAFT_LEADER)
        return -LOCKD_ENOTLEADER;
    struct proposal *p = malloc(sizeof(*p));
    if (p == NULL)
        return -LOCKD_ENOMEM;
    p->req.data = p;
    p->c = c;
    p->cb = cb;
    p->data = data;
    struct raft_buffer rb = {.base = buf, .len = len};
    int rv = raft_apply(&c->raft, &p->req, &rb, 1, consensus_proposal_cb);
    if (rv != 0) {
        free(p);
        if (rv == RAFT_NOTLEADER || rv == RAFT_LEADERSHIPLOST)
            return -LOCKD_ENOTLEADER;
        log_warn("raft_apply: %s", raft_strerror(rv));
        return rv == RAFT_NOMEM ? -LOCKD_ENOMEM : -LOCKD_EAGAIN;
    }
    c->inflight++;
    return 0;
}

/* ---- membership ------------------------------------------------------ */

struct change {
    struct raft_change req;
    struct raft_transfer treq;
    consensus *c;
    consensus_change_cb cb;
    void *data;
    uint64_t id; /* add: promote this node once added */
    bool promote;
};

static void consensus_change_done(struct change *ch, int status)
{
    ch->c->inflight--;
    ch->cb(ch->data, status == 0 ? 0 : -LOCKD_EINVAL, status == 0 ? NULL : raft_strerror(status));
    free(ch);
}

static void consensus_promoted(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    if (status == 0)
        log_info("raft member %llu promoted to voter", (unsigned long long)ch->id);
    consensus_change_done(ch, status);
}

static void consensus_added(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    if (status != 0 || !ch->promote || ch->c->closing) {
        consensus_change_done(ch, status);
        return;
    }
    log_info("raft member %llu added; catching it up before promoting", (unsigned long long)ch->id);
    /* 0.15 replicates the log to the spare for up to max_catch_up_rounds
     * before the configuration change that makes it a voter. */
    int rv = raft_assign(&ch->c->raft, &ch->req, ch->id, RAFT_VOTER, consensus_promoted);
    if (rv != 0)
        consensus_change_done(ch, rv);
}

static struct change *consensus_change_new(consensus *c, consensus_change_cb cb, void *data)
{
    if (c->closing || raft_state(&c->raft) != RAFT_LEADER)
        return NULL;
    struct change *ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return NULL;
    ch->c = c;
    ch->cb = cb;
    ch->data = data;
    ch->req.data = ch;
    ch->treq.data = ch;
    return ch;
}

int consensus_member_add(consensus *c, uint64_t id, const char *raft_address, consensus_change_cb cb, void *data)
{
    struct change *ch = consensus_change_new(c, cb, data);
    if (ch == NULL)
        return -LOCKD_ENOTLEADER;
    ch->id = id;
    ch->promote = true;
    int rv = raft_add(&c->raft, &ch->req, id, raft_address, consensus_added);
    if (rv != 0) {
        log_warn("raft_add %llu %s: %s", (unsigned long long)id, raft_address, raft_errmsg(&c->raft));
        free(ch);
        return -LOCKD_EINVAL;
    }
    c->inflight++;
    return 0;
}

static void consensus_removed(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    if (status == 0)
        log_info("raft member %llu removed", (unsigned long long)ch->id);
    consensus_change_done(ch, status);
}

int consensus_member_remove(consensus *c, uint64_t id, consensus_change_cb cb, void *data)
{
    /* The library would apply removing the last voter and leave the node
     * with an empty configuration it cannot recover from. */
    unsigned voters = 0;
    bool target_votes = false;
    for (unsigned i = 0; i < c->raft.configuration.n; i++) {
        if (c->raft.configuration.servers[i].role == RAFT_VOTER) {
            voters++;
            target_votes |= c->raft.configuration.servers[i].id == id;
        }
    }
    if (target_votes && voters == 1)
        return -LOCKD_EINVAL;
    struct change *ch = consensus_change_new(c, cb, data);
    if (ch == NULL)
        return -LOCKD_ENOTLEADER;
    ch->id = id;
    int rv = raft_remove(&c->raft, &ch->req, id, consensus_removed);
    if (rv != 0) {
        log_warn("raft_remove %llu: %s", (unsigned long long)id, raft_errmsg(&c->raft));
        free(ch);
        return -LOCKD_EINVAL;
    }
    c->inflight++;
    return 0;
}

static void consensus_transferred(struct raft_transfer *req)
{
    struct change *ch = req->data;
    /* 0.15 reports no status: success is a different leader now. */
    raft_id id;
    const char *addr;
    raft_leader(&ch->c->raft, &id, &addr);
    consensus_change_done(ch, id != ch->c->cfg->node_id ? 0 : RAFT_NOTLEADER);
}

int consensus_transfer(consensus *c, uint64_t id, consensus_change_cb cb, void *data)
{
    struct change *ch = consensus_change_new(c, cb, data);
    if (ch == NULL)
        return -LOCKD_ENOTLEADER;
    int rv = raft_transfer(&c->raft, &ch->treq, id, consensus_transferred);
    if (rv != 0) {
        log_warn("raft_transfer to %llu: %s", (unsigned long long)id, raft_errmsg(&c->raft));
        free(ch);
        return -LOCKD_EINVAL;
    }
    c->inflight++;
    return 0;
}

static void consensus_snapshot_barrier(struct raft_barrier *req, int status)
{
    struct change *ch = req->data;
    /* libraft checks the threshold after this apply loop ends: restore it
     * on the next tick, not here, or no snapshot would be taken. */
    ch->c->restore_threshold = true;
    free(req);
    if (status == 0)
        log_info("snapshot requested by an operator: taken at index %llu",
                 (unsigned long long)ch->c->raft.last_applied + 1);
    consensus_change_done(ch, status);
}

int consensus_snapshot_now(consensus *c, consensus_change_cb cb, void *data)
{
    struct change *ch = consensus_change_new(c, cb, data);
    if (ch == NULL)
        return -LOCKD_ENOTLEADER;
    struct raft_barrier *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        free(ch);
        return -LOCKD_ENOMEM;
    }
    b->data = ch;
    raft_set_snapshot_threshold(&c->raft, 1);
    c->snapshot_requested = true; /* keeps consensus_pace_snapshots off the threshold */
    int rv = raft_barrier(&c->raft, b, consensus_snapshot_barrier);
    if (rv != 0) {
        c->snapshot_requested = false;
        raft_set_snapshot_threshold(&c->raft, c->threshold);
        free(b);
        free(ch);
        return -LOCKD_EINVAL;
    }
    c->inflight++;
    return 0;
}

size_t consensus_members(const consensus *c, struct consensus_member *out, size_t max)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    size_t n = 0;
    for (unsigned i = 0; i < conf->n && n < max; i++, n++) {
        out[n].id = conf->servers[i].id;
        snprintf(out[n].raft_address, sizeof(out[n].raft_address), "%s", conf->servers[i].address);
        out[n].role = conf->servers[i].role == RAFT_VOTER     ? "voter"
                      : conf->servers[i].role == RAFT_STANDBY ? "standby"
                                                              : "spare";
    }
    return n;
}

const char *consensus_leader_raft_address(const consensus *c)
{
    raft_id id;
    const char *addr = NULL;
    raft_leader((struct raft *)&c->raft, &id, &addr);
    return addr != NULL ? addr : "";
}

void consensus_close(consensus *c, uint64_t drain_ms, void (*done)(void *arg, bool clean), void *arg)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_deadline_ms = clock_monotonic_ms() + drain_ms;
    c->done = done;
    c->done_arg = arg;
    log_info("raft closing: %u requests in flight", c->inflight);
}
