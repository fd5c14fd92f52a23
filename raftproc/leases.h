/* raftproc/leases.h: the leader's lease timers. A binary min-heap of
 * (deadline on CLOCK_MONOTONIC, name, revision); renewals push a new entry
 * and leave the old one to be discarded lazily (its revision no longer
 * matches the table). Only the leader runs timers: expiry is decided here
 * and applied through the log (OP_EXPIRE), so every replica agrees. A new
 * leader rebuilds the heap with the full TTL of every lease (never early). */
#ifndef LOCKD_RAFTPROC_LEASES_H
#define LOCKD_RAFTPROC_LEASES_H

#include <stddef.h>
#include <stdint.h>

#include "shm/table.h"

typedef struct leases leases;

/* table is read to check revisions (owned by the caller). */
int leases_create(const shm_table *table, leases **out);
void leases_destroy(leases *l);

/* Drops every timer (on losing leadership). */
void leases_clear(leases *l);

/* Times rec's lease from now_ms if it has one (ttl_ms > 0).
 * Errors: -LOCKD_ENOMEM. */
int leases_track(leases *l, const shm_lock *rec, uint64_t now_ms);

/* Clears, then times every lease in the table from now_ms. */
int leases_rebuild(leases *l, uint64_t now_ms);

/* Pops up to max due timers; calls expire(arg, name, len, revision) for each
 * whose lease is unchanged in the table. Returns how many it called. */
size_t leases_expire_due(leases *l, uint64_t now_ms, size_t max,
                         void (*expire)(void *arg, const char *name, size_t len, uint64_t revision), void *arg);

/* Earliest deadline, or UINT64_MAX when there is none. */
uint64_t leases_next_deadline(const leases *l);
size_t leases_pending(const leases *l);

#endif
