/* shm/events.h: the lock event ring, a bounded ring of the last N lock events
 * (acquired, released, handed over, ...) in its own shared mapping. Exactly
 * one writer (raftproc, as it applies entries) and any number of readers
 * (HTTP workers streaming GET /events). Readers never block the writer and
 * never write shared memory; the writer never waits for a reader. A reader
 * that falls more than the ring's capacity behind learns it (-LOCKD_ENOENT
 * from shm_events_next) and starts again from the newest event after telling
 * its client to reload ("reset").
 *
 * Event ids are (index, seq): the Raft index of the applied entry that made
 * the event and its order among that entry's events. Events of log entries
 * get the same ids on every node (they come from the same log, applied the
 * same way); node-local events (leader_changed, reset) take the next seq of
 * the last applied index, so ids stay strictly increasing within a segment.
 * A segment ends at a reset marker (SHM_EVENT_RESET, appended by
 * shm_events_reset): the writer's state jumped (raftproc started again,
 * a snapshot was installed) and ids may start lower after it.
 *
 * The mapping is created by the master before it forks (MAP_SHARED |
 * MAP_ANONYMOUS | MAP_NORESERVE), like the lock table, so it survives the
 * restart of any child; a restarted raftproc continues at the shared head.
 */
#ifndef LOCKD_SHM_EVENTS_H
#define LOCKD_SHM_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

typedef struct shm_events shm_events; /* process-local handle; opaque */

/* Default ring capacity: 16384 events of 336 bytes = 5.25 MiB of shared
 * memory once the ring has wrapped (pages are touched as it fills). */
#define SHM_EVENTS_DEFAULT_CAPACITY 16384u
#define SHM_EVENTS_MIN_CAPACITY 16u
#define SHM_EVENTS_MAX_CAPACITY (1u << 24)

/* Event types. Values are stored in the ring: append only, never renumber. */
enum shm_event_type {
    SHM_EVENT_NONE = 0,
    SHM_EVENT_ACQUIRED = 1,       /* a free lock was taken: owner, token, ttl_ms, acquired_at_ms */
    SHM_EVENT_RENEWED = 2,        /* the holder acquired again: same token, fresh lease */
    SHM_EVENT_RELEASED = 3,       /* DELETE by the holder (or of an anonymous lock): the ended holding */
    SHM_EVENT_EXPIRED = 4,        /* the lease ran out: the ended holding */
    SHM_EVENT_HANDED_OVER = 5,    /* the first waiter got the lock in the same step: new holding, waiter_id */
    SHM_EVENT_FORCED = 6,         /* DELETE with force=true: the ended holding */
    SHM_EVENT_WAITER_QUEUED = 7,  /* an acquire joined the FIFO queue: owner, waiter_id, ttl_ms asked */
    SHM_EVENT_WAITER_LEFT = 8,    /* a waiter left the queue without the lock (gave up, went away) */
    SHM_EVENT_LEADER_CHANGED = 9, /* this node learnt of a new leader (node-local): leader_id, term */
    SHM_EVENT_RESET = 10,         /* segment marker: readers must reload their state (see above) */
    SHM_EVENT_TYPE_MAX = 10,
};

/* "acquired", "renewed", ..., "reset"; "unknown" for other values. */
const char *shm_event_type_name(unsigned type);

/* One event, as the writer gives it and readers receive it. Fields a type
 * does not use are 0 / "". */
struct shm_event {
    uint64_t index;                  /* Raft index of the entry (reset: the applied index the state jumped to) */
    uint32_t seq;                    /* assigned by shm_events_append: order within index, from 0 */
    uint8_t type;                    /* enum shm_event_type */
    uint8_t name_len;                /* 0 for leader_changed and reset */
    uint8_t owner_len;               /* 0: anonymous */
    uint64_t token;                  /* fencing token of the holding (waiter events: 0) */
    uint64_t ttl_ms;                 /* lease of the holding (or asked by the waiter); 0: none */
    uint64_t time_ms;                /* wall clock: the entry's time (the leader's), or this node's for local events */
    uint64_t acquired_at_ms;         /* when the holding concerned began (ended holdings too) */
    uint64_t waiter_id;              /* waiter events and handed_over: the waiter's id (FIFO order) */
    uint64_t leader_id;              /* leader_changed: the new leader (0: none known) */
    uint64_t term;                   /* leader_changed: its term */
    char name[LOCKD_NAME_MAX + 1];   /* NUL-terminated */
    char owner[LOCKD_OWNER_MAX + 1]; /* NUL-terminated, "" if anonymous */
};

/* A reader's position. Plain data, owned by the reader; zero is "the start
 * of the ring" (every event still held, or -LOCKD_ENOENT if it wrapped). */
struct shm_events_cursor {
    uint64_t pos;         /* absolute position of the next event to read */
    bool skipping;        /* skip events whose id <= (after_index, after_seq) */
    uint64_t after_index; /* resume point (see shm_events_seek) */
    uint32_t after_seq;
};

/* Bytes the mapping needs for a ring of `capacity` events (0 if invalid). */
size_t shm_events_segment_size(uint32_t capacity);

/* Creates the anonymous shared mapping for a ring of `capacity` events (a
 * power of two in [SHM_EVENTS_MIN_CAPACITY, SHM_EVENTS_MAX_CAPACITY]),
 * empty. *out is owned by the caller (shm_events_destroy) and stays valid
 * in children after fork(). Errors: -LOCKD_EINVAL, -LOCKD_ENOMEM. */
int shm_events_create(uint32_t capacity, shm_events **out);

/* Unmaps and frees the handle (NULL is fine). */
void shm_events_destroy(shm_events *r);

/* Makes this process's view read-only (mprotect): call in every worker after
 * fork so that only raftproc can write. Returns 0 or -LOCKD_EIO. */
int shm_events_make_readonly(shm_events *r);

uint32_t shm_events_capacity(const shm_events *r);

/* ---- writer (raftproc only) ------------------------------------------ */

/* Appends a copy of *ev (its seq is ignored and assigned: 0 for the first
 * event of a new index, previous + 1 for the same index; shm_events_last_id
 * tells which) and returns 0. Overwrites the oldest event once the ring is full. A few relaxed
 * stores and two release stores; never blocks, never allocates.
 * Errors (nothing appended): -LOCKD_EINVAL for an unknown type, a name or
 * owner length over its maximum, an index below the last one appended
 * (only a reset may go back), or seq overflow within one index. */
int shm_events_append(shm_events *r, const struct shm_event *ev);

/* Appends a reset marker at `index` (the applied index the writer's state
 * now reflects), time_ms on this node's wall clock. Call when raftproc
 * starts (after loading the store) and after a snapshot is installed. The
 * next append may then use any index >= `index`. Returns 0 (or
 * -LOCKD_EINVAL on seq overflow, as append). */
int shm_events_reset(shm_events *r, uint64_t index, uint64_t time_ms);

/* The (index, seq) of the newest event appended, false if none yet. */
bool shm_events_last_id(const shm_events *r, uint64_t *index, uint32_t *seq);

/* ---- readers (any process) ------------------------------------------- */

/* Positions *cur at the head: the next event appended will be the first one
 * read. Never fails. */
void shm_events_cursor_head(const shm_events *r, struct shm_events_cursor *cur);

/* Positions *cur right after event id (index, seq) for a client resuming
 * with Last-Event-ID (seq UINT32_MAX: after every event of `index`).
 * Returns 0 if nothing after that id has been lost: either the oldest event
 * the ring holds in the current segment comes at most right after the id
 * (every overwritten event was at or before it), or the oldest
 * event held is the current segment's reset marker and index is at or past
 * the marker's index. Events at or before the id are then skipped; an id
 * newer than everything appended resumes at the head, skipping until past it.
 * Returns -LOCKD_ENOENT when events after the id may have been overwritten
 * or the id is from before the segment's reset (the client must reload; *cur
 * is then at the head). Bounded: reads a few slots. */
int shm_events_seek(const shm_events *r, uint64_t index, uint32_t seq, struct shm_events_cursor *cur);

/* Reads the event at *cur into *out and advances *cur. Returns 0 (an event),
 * -LOCKD_EAGAIN (nothing new yet), or -LOCKD_ENOENT (the writer overwrote
 * the position: events were lost; *cur is unchanged, the caller tells its
 * client "reset" and calls shm_events_cursor_head). A reset marker is
 * returned as an event of type SHM_EVENT_RESET. Never blocks, never writes
 * shared memory; events a seek asked to skip are passed over (at most the
 * ring's capacity per call). */
int shm_events_next(const shm_events *r, struct shm_events_cursor *cur, struct shm_event *out);

/* Calls fn(ev, arg) for the events the ring holds, newest first, until fn
 * returns non-zero (returned) or the oldest held event was passed (0).
 * Crosses reset markers (they are passed to fn too). An event overwritten
 * while the walk reaches it ends the walk (everything older is gone too).
 * Bounded: at most capacity slot reads. Never blocks, never writes. */
int shm_events_scan_back(const shm_events *r, int (*fn)(const struct shm_event *ev, void *arg), void *arg);

/* Number of events appended since the ring was created (the head position):
 * for tests and metrics. */
uint64_t shm_events_head(const shm_events *r);

#endif
