/* worker/history.h: GET /lock/:name/history as a pure module: the last
 * holdings of one name, newest first, as this node's event ring
 * (shm/events.h) still remembers them, formatted as JSON. Local to the node
 * and bounded by the ring (the last SHM_EVENTS_DEFAULT_CAPACITY events of
 * the node, whatever their names): nothing replicated, nothing stored, no
 * new structure. Never allocates, never blocks, never writes shared memory.
 *
 * Phase-2 wiring: the router sends GET /lock/NAME/history (NAME checked as
 * for /lock/NAME) here: shm_table_lookup for the current token (0 if free),
 * history_collect, history_format into a pool buffer, 200. */
#ifndef LOCKD_WORKER_HISTORY_H
#define LOCKD_WORKER_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "shm/events.h"

#define HISTORY_MAX 16 /* holdings per answer */

struct history_entry {
    char owner[LOCKD_OWNER_MAX + 1]; /* "" = anonymous */
    uint8_t owner_len;
    uint64_t token;
    uint64_t acquired_at_ms;
    uint64_t ended_at_ms; /* 0: not ended (or unknown) */
    const char *ended;    /* "released", "expired", "forced", "unknown" (the ring lost its end), or NULL: held */
};

/* Fills out[0..*n) (at most max) with name[0..len)'s holdings, newest
 * first, one per fencing token (replayed events are told apart by token).
 * current_token is the token the table holds for the name now (0: free): a
 * holding the ring saw begin but not end, other than the current one, is
 * reported with ended "unknown". Returns 0. Cost: one backward walk over
 * the ring (at most its capacity in slot reads, about 2 ms for 16384). */
int history_collect(const shm_events *ring, const char *name, size_t len, uint64_t current_token,
                    struct history_entry *out, size_t max, size_t *n);

/* {"name":"...","history":[{"owner","token","acquired_at_ms","ended_at_ms","ended"},...]}
 * into buf[0..cap); returns the length it needs (snprintf-like: nothing
 * beyond cap is written). 2 KiB per entry is always enough. */
size_t history_format(const char *name, size_t len, const struct history_entry *e, size_t n, char *buf, size_t cap);

#endif
