/* raftproc/main.c: the Raft process's life cycle: opens the store in this
 * process (LMDB never crosses fork), loads the shm table from it, starts
 * consensus and the worker server, and stops them in order on SIGTERM. */
#include "raftproc/raftproc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "raftproc/consensus.h"
#include "raftproc/fsm.h"
#include "raftproc/leases.h"
#include "raftproc/server.h"
#include "raftproc/store.h"
#include "shm/stats.h"

struct raftproc {
    uv_loop_t loop;
    const struct lockd_config *cfg;
    store *st;
    fsm *f;
    consensus *cons;
    rp_server *server;
    leases *leases;
    uv_timer_t lease_timer;
    bool leading; /* leader and ready: lease timers run */
    uv_signal_t sigterm, sigint;
    int exit_code;
    uv_timer_t stats_timer; /* publishes the figures below for /metrics */
    shm_stats *stats;
    uint64_t expirations; /* expiry commands issued as leader */
};

/* Opens the LMDB file; if it cannot be opened at all (corrupt after a
 * machine crash, say) it is moved aside and rebuilt from the Raft snapshot
 * and log, which are the durable record. */
static int raftproc_open_store(struct raftproc *rp)
{
    int rc = store_open(rp->cfg->db_path, rp->cfg->max_locks, &rp->st);
    if (rc == 0)
        return 0;
    char aside[LOCKD_PATH_MAX + 32];
    snprintf(aside, sizeof(aside), "%s.broken-%ld", rp->cfg->db_path, (long)time(NULL));
    if (rename(rp->cfg->db_path, aside) != 0)
        return rc;
    log_warn("moved the unreadable store to %s; rebuilding it from the raft log", aside);
    return store_open(rp->cfg->db_path, rp->cfg->max_locks, &rp->st);
}

/* Leases expire at most this many per loop turn, so a mass expiry is
 * spread over entries and other requests keep flowing between them. */
#define EXPIRE_PER_TURN 2048

static void raftproc_submit_expire(void *arg, const char *name, size_t len, uint64_t revision)
{
    struct raftproc *rp = arg;
    if (rp_server_submit(rp->server, LOCKD__OP__OP_EXPIRE, name, len, revision) == 0)
        rp->expirations++;
}

/* Every STATS_PUBLISH_MS: raftproc's counters into the shared stats segment
 * (a handful of relaxed stores), where the workers' /metrics reads them. */
#define STATS_PUBLISH_MS 100

static void raftproc_publish_stats(uv_timer_t *t)
{
    struct raftproc *rp = t->data;
    struct rp_server_stats s;
    rp_server_stats(rp->server, &s);
    struct shm_stats_raft r = {.c_entries = s.entries,
                               .c_commands = s.commands,
                               .c_timeouts = s.timeouts,
                               .c_queued = s.queued,
                               .c_handoffs = s.handoffs,
                               .c_expirations = rp->expirations,
                               .g_waiters = fsm_waiters(rp->f),
                               .c_entry_bytes = s.entry_bytes,
                               .c_commit_count = s.commit_count,
                               .c_commit_sum_ns = s.commit_sum_ns,
                               .g_max_batch = s.max_batch};
    memcpy(r.c_commit_buckets, s.commit_buckets, sizeof(r.c_commit_buckets));
    shm_stats_publish_raft(rp->stats, &r);
}

static void raftproc_arm_leases(struct raftproc *rp);

static void raftproc_lease_tick(uv_timer_t *t)
{
    struct raftproc *rp = t->data;
    if (!rp->leading)
        return;
    leases_expire_due(rp->leases, clock_monotonic_ms(), EXPIRE_PER_TURN, raftproc_submit_expire, rp);
    raftproc_arm_leases(rp);
}

static void raftproc_arm_leases(struct raftproc *rp)
{
    uint64_t next = leases_next_deadline(rp->leases), now = clock_monotonic_ms();
    if (!rp->leading || next == UINT64_MAX) {
        uv_timer_stop(&rp->lease_timer);
        return;
    }
    uv_timer_start(&rp->lease_timer, raftproc_lease_tick, next > now ? next - now : 0, 0);
}

/* FSM observer: a new or renewed lease on the leader starts its full TTL now
 * (the 200 leaves right after this apply). */
static void raftproc_on_change(void *arg, const char *name, size_t len, const shm_lock *rec)
{
    struct raftproc *rp = arg;
    if (!rp->leading || rec == NULL || rec->ttl_ms == 0)
        return;
    bool was_idle = leases_pending(rp->leases) == 0;
    uint64_t before = leases_next_deadline(rp->leases);
    if (leases_track(rp->leases, rec, clock_monotonic_ms()) != 0)
        log_error("out of memory timing the lease of %s: it will expire at the next leader change", rec->name);
    if (was_idle || leases_next_deadline(rp->leases) < before)
        raftproc_arm_leases(rp);
}

static void raftproc_on_role(void *arg, enum consensus_role role, bool ready)
{
    struct raftproc *rp = arg;
    rp_server_leader_changed(rp->server, consensus_leader(rp->cons, NULL));
    bool leading = role == CONSENSUS_LEADER && ready;
    if (leading == rp->leading)
        return;
    rp->leading = leading;
    if (leading) {
        /* A new leader cannot know how much of each lease ran under the old
         * one: every lease gets its full TTL again (never early). */
        if (leases_rebuild(rp->leases, clock_monotonic_ms()) != 0)
            log_error("out of memory rebuilding lease timers");
        /* Queued acquires belong to clients of an earlier leader (or of this
         * process before a restart): they were answered 503; drop them. */
        if (fsm_waiters(rp->f) > 0)
            rp_server_reset_waiters(rp->server);
        if (leases_pending(rp->leases) > 0)
            rp_server_restart_leases(rp->server);
        log_info("leading: timing %zu leases, dropping %zu inherited waiters", leases_pending(rp->leases),
                 fsm_waiters(rp->f));
    } else {
        leases_clear(rp->leases);
        rp_server_leadership_lost(rp->server);
    }
    raftproc_arm_leases(rp);
}

static void raftproc_on_need_catch_up(void *arg)
{
    struct raftproc *rp = arg;
    rp_server_catch_up(rp->server);
}

static void raftproc_on_restore(void *arg)
{
    struct raftproc *rp = arg;
    if (rp->leading)
        leases_rebuild(rp->leases, clock_monotonic_ms());
    raftproc_arm_leases(rp);
}

static void raftproc_closed(void *arg, bool clean)
{
    struct raftproc *rp = arg;
    log_info("raft process stopping (%s)", clean ? "clean" : "drain deadline passed");
    uv_stop(&rp->loop);
}

static void raftproc_on_signal(uv_signal_t *h, int signum)
{
    struct raftproc *rp = h->data;
    log_info("signal %d: stopping", signum);
    uv_signal_stop(&rp->sigterm);
    uv_signal_stop(&rp->sigint);
    /* A second stop signal (the master's, after the process group's) must
     * not kill us mid-close with the default action. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    rp->leading = false;
    uv_timer_stop(&rp->lease_timer);
    rp_server_stop(rp->server);
    consensus_close(rp->cons, 2000, raftproc_closed, rp);
}

int raftproc_main(const struct lockd_config *cfg, shm_table *table, int listen_fd)
{
    struct raftproc rp;
    memset(&rp, 0, sizeof(rp));
    rp.cfg = cfg;
    log_set_process("raft");
    log_install_crash_handler();
    signal(SIGPIPE, SIG_IGN); /* libraft 0.15 defect 3: peers closing raise it */
    if (uv_loop_init(&rp.loop) != 0)
        return 1;

    if (cfg->store == STORE_LMDB && raftproc_open_store(&rp) != 0)
        return CONSENSUS_EXIT_IO;
    if (fsm_create(table, rp.st, &rp.f) != 0)
        return 1;
    int rc = fsm_load(rp.f);
    if (rc != 0) {
        log_error("loading the store failed: %s", lockd_strerror(rc));
        return CONSENSUS_EXIT_IO;
    }
    if (leases_create(table, &rp.leases) != 0)
        return 1;
    uv_timer_init(&rp.loop, &rp.lease_timer);
    rp.lease_timer.data = &rp;
    fsm_set_change_cb(rp.f, raftproc_on_change, &rp);
    struct consensus_events ev = {.arg = &rp,
                                  .on_role = raftproc_on_role,
                                  .on_restore = raftproc_on_restore,
                                  .on_need_catch_up = raftproc_on_need_catch_up};
    if (consensus_start(&rp.loop, cfg, rp.f, rp.st, table, &ev, &rp.cons) != 0)
        return CONSENSUS_EXIT_IO;
    if (rp_server_start(&rp.loop, cfg, listen_fd, rp.cons, &rp.server) != 0)
        return 1;
    rp.stats = shm_table_stats(table);
    shm_stats_raft_started(rp.stats, getpid());
    uv_timer_init(&rp.loop, &rp.stats_timer);
    rp.stats_timer.data = &rp;
    uv_timer_start(&rp.stats_timer, raftproc_publish_stats, STATS_PUBLISH_MS, STATS_PUBLISH_MS);
    uv_unref((uv_handle_t *)&rp.stats_timer); /* never what keeps the loop alive */

    uv_signal_init(&rp.loop, &rp.sigterm);
    uv_signal_init(&rp.loop, &rp.sigint);
    rp.sigterm.data = rp.sigint.data = &rp;
    uv_signal_start(&rp.sigterm, raftproc_on_signal, SIGTERM);
    uv_signal_start(&rp.sigint, raftproc_on_signal, SIGINT);

    uv_run(&rp.loop, UV_RUN_DEFAULT);

    /* Stopped: make the store durable and leave. The loop still holds raft's
     * handles when the drain deadline passed, so we do not close it. */
    rp_server_close(rp.server);
    if (consensus_snapshot_busy(rp.cons)) {
        /* Drain deadline passed with a snapshot still encoding from the
         * store on another thread: closing the store under it would be a
         * use after free. Everything is in the page cache and the log. */
        log_warn("exiting with a snapshot in progress: store left to the kernel");
    } else {
        store_close(rp.st);
    }
    fsm_destroy(rp.f);
    leases_destroy(rp.leases);
    log_info("raft process exited");
    return rp.exit_code;
}
