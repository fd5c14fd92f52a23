/* raftproc/waitq.h: the FIFO queues of acquires waiting for a held lock,
 * part of the replicated FSM state (so a release hands the lock to the
 * first waiter inside the same applied command, identically on every
 * replica). A chained hash map name -> queue; queues exist only while
 * non-empty. Single-threaded (raftproc). */
#ifndef LOCKD_RAFTPROC_WAITQ_H
#define LOCKD_RAFTPROC_WAITQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

typedef struct waitq waitq;

struct waiter {
    uint64_t id;     /* (Raft index << 20 | command position): FIFO order */
    uint64_t ttl_ms; /* lease the waiter asked for (0: none) */
    uint8_t owner_len;
    char owner[LOCKD_OWNER_MAX + 1];
};

int waitq_create(waitq **out);
void waitq_destroy(waitq *q);

/* Appends a copy of w to name's queue (ids must increase per queue; a
 * smaller id is inserted in order). Errors: -LOCKD_ENOMEM. */
int waitq_push(waitq *q, const char *name, size_t len, const struct waiter *w);

/* Removes the first waiter of name into *out; -LOCKD_ENOENT if none. */
int waitq_pop(waitq *q, const char *name, size_t len, struct waiter *out);

/* Removes waiter `id` from name's queue; -LOCKD_ENOENT if it is not there. */
int waitq_remove(waitq *q, const char *name, size_t len, uint64_t id);

/* Number of waiters queued on name / in all. */
size_t waitq_length(const waitq *q, const char *name, size_t len);
size_t waitq_total(const waitq *q);

void waitq_clear(waitq *q);

/* Calls fn for every waiter, queue by queue in FIFO order (queues in no
 * particular order), until fn returns non-zero (returned). */
int waitq_foreach(const waitq *q, int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg),
                  void *arg);

#endif
