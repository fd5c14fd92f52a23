/* raftproc/consensus.h: the one small interface between lockd and the C Raft
 * library (libraft 0.15, libuv I/O, TCP transport). Everything that knows
 * raft.h lives behind it so the library can be replaced (upstream is
 * archived). It also carries the guards for 0.15's known defects:
 *   1. raft_close with applies in flight double-frees: close waits (bounded)
 *      until nothing is in flight, and otherwise exits without closing (the
 *      log on disk already holds every acknowledged entry);
 *   2. raft_close from inside an apply callback trips a libuv assertion:
 *      consensus_close only flags, the close runs on a later loop turn;
 *   3. a peer closing its connection raises SIGPIPE: ignored (raftproc main).
 * A failed disk write (an apply callback with an I/O status) or a failed
 * store write ends the process with exit code CONSENSUS_EXIT_IO so the master
 * restarts it; nothing is acknowledged after such a failure. */
#ifndef LOCKD_RAFTPROC_CONSENSUS_H
#define LOCKD_RAFTPROC_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "raftproc/fsm.h"
#include "shm/table.h"

#define CONSENSUS_EXIT_IO 3

typedef struct consensus consensus;

enum consensus_role {
    CONSENSUS_UNAVAILABLE = 0,
    CONSENSUS_FOLLOWER = 1,
    CONSENSUS_CANDIDATE = 2,
    CONSENSUS_LEADER = 3
};

/* Called once per proposal: status 0 with the FSM results of its commands
 * (owned by the FSM, valid during the call), or a negative code:
 * -LOCKD_ENOTLEADER (deposed before commit: outcome unknown),
 * -LOCKD_ESHUTDOWN (closing). */
typedef void (*consensus_apply_cb)(void *data, int status, const struct fsm_result *results, size_t n);

struct consensus_events {
    void *arg;
    /* role or leader changed; also called when this node became ready to
     * serve as leader (all entries of earlier terms applied) */
    void (*on_role)(void *arg, enum consensus_role role, bool ready);
    /* a snapshot replaced the state (timers must be rebuilt) */
    void (*on_restore)(void *arg);
    /* A follower that lost contact (or just started) must prove it caught
     * up before it serves local reads again: ask the leader for a current
     * index (consensus_caught_up_to() with the answer). */
    void (*on_need_catch_up)(void *arg);
};

/* The leader answered the catch-up probe with an entry at `index`: local
 * reads resume once this node has applied it. 0: the probe failed. */
void consensus_caught_up_to(consensus *c, uint64_t index);
/* True while a snapshot is being encoded or written (close waits for it). */
bool consensus_snapshot_busy(const consensus *c);

/* The index of the entry being (or last) applied. */
uint64_t consensus_applied_index(const consensus *c);

/* Starts Raft for cfg->self (st: the LMDB store, or NULL; with a store,
 * snapshots are encoded off the loop from its read transaction) with data in cfg->raft_dir (created if
 * missing), applying to f and publishing status into table. First start
 * bootstraps the configuration from cfg->nodes; later starts use the
 * stored one. Errors: -LOCKD_EIO (logged with the library's message). */
int consensus_start(uv_loop_t *loop, const struct lockd_config *cfg, fsm *f, store *st, shm_table *table,
                    const struct consensus_events *ev, consensus **out);

/* Allocates a payload buffer that consensus_propose can take over. */
void *consensus_alloc(size_t len);
void consensus_free(void *buf);

/* Proposes one log entry with payload buf[0..len) (from consensus_alloc).
 * On 0 the buffer belongs to raft and cb(data, ...) will be called exactly
 * once. On error the buffer still belongs to the caller and cb is never
 * called: -LOCKD_ENOTLEADER, -LOCKD_ESHUTDOWN, -LOCKD_ENOMEM. */
int consensus_propose(consensus *c, void *buf, size_t len, consensus_apply_cb cb, void *data);

enum consensus_role consensus_role(const consensus *c);
/* Leader id (0 if unknown) and its HTTP address from the cluster file. */
uint64_t consensus_leader(const consensus *c, const char **http_address);
bool consensus_ready(const consensus *c);
unsigned consensus_inflight(const consensus *c);

/* ---- membership (leader only; errors: -LOCKD_ENOTLEADER, -LOCKD_EINVAL
 * with the library's message in err) ---------------------------------- */

typedef void (*consensus_change_cb)(void *data, int status, const char *err);

struct consensus_member {
    uint64_t id;
    char raft_address[LOCKD_ADDR_MAX + 8];
    const char *role; /* "voter", "standby", "spare" */
};

/* Adds node id at raft_address ("a.b.c.d:port") as a spare, lets it catch
 * up, then promotes it to voter; cb once at the end (or on failure). */
int consensus_member_add(consensus *c, uint64_t id, const char *raft_address, consensus_change_cb cb, void *data);
int consensus_member_remove(consensus *c, uint64_t id, consensus_change_cb cb, void *data);
/* Hands leadership to id (0: the most up-to-date voter). */
int consensus_transfer(consensus *c, uint64_t id, consensus_change_cb cb, void *data);
/* Takes a snapshot now (libraft 0.15 has no call for it: the threshold is
 * set to 1 for one barrier, which makes the library snapshot at that apply,
 * then restored). Leader only. cb once the barrier applied. */
int consensus_snapshot_now(consensus *c, consensus_change_cb cb, void *data);

/* Copies up to max members of the current configuration; returns the count. */
size_t consensus_members(const consensus *c, struct consensus_member *out, size_t max);
/* The Raft address of the leader ("" if unknown). */
const char *consensus_leader_raft_address(const consensus *c);

/* Publishes role/leader/term/indexes into the shm status block. */
void consensus_publish(consensus *c);

/* Begins an orderly stop (never closes from inside a callback); done(arg) is
 * called on a later loop turn once raft is closed or the drain deadline
 * passed (clean=false: the caller should exit without further raft calls).
 * After this, consensus_propose returns -LOCKD_ESHUTDOWN. */
void consensus_close(consensus *c, uint64_t drain_ms, void (*done)(void *arg, bool clean), void *arg);

/* The snapshot pacing rule (exposed for the unit test): the libraft
 * threshold to set when the last snapshot was snapshot_bytes long and
 * log_bytes of entries (with their bookkeeping) have been applied since.
 * Under 1 MiB of snapshot: min_entries. Above: UINT32_MAX (hold) until
 * log_bytes reaches min(snapshot_bytes, 16 MiB), then min_entries. */
unsigned consensus_snapshot_threshold(unsigned min_entries, size_t snapshot_bytes, uint64_t log_bytes);

#endif
