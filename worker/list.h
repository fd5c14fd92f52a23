/* worker/list.h: GET /locks without h2o: the query fields (prefix, limit,
 * after) with the contract's validation and wording, and the selection of
 * one page (the `limit` smallest names after `after` with the prefix) from
 * records offered one by one in any order (shm_table_scan's). Pure: no I/O,
 * no allocation (the caller provides the memory); tested in
 * tests/unit/worker/test_list.c.
 *
 * Cost of a page: one pass over the lock table (shm_table_scan) and
 * O(n log limit) comparisons for n matching records, plus a sort of the
 * page. There is no ordered index in shared memory; a full table of 1M
 * locks costs tens of milliseconds of one worker's loop per page. */
#ifndef LOCKD_WORKER_LIST_H
#define LOCKD_WORKER_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "shm/table.h"

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 10000
#define LIST_ERR_MAX 256

struct list_query {
    char prefix[LOCKD_NAME_MAX + 1]; /* NUL-terminated; may be empty */
    size_t prefix_len;
    char after[LOCKD_NAME_MAX + 1]; /* a valid lock name if has_after */
    size_t after_len;
    bool has_after;
    size_t limit; /* 1..LIST_LIMIT_MAX */
};

/* Parses the raw query string query[0..len) (after '?'; may be NULL/0).
 * Fields: prefix (0..128 bytes of the lock-name alphabet), limit (decimal
 * 1..10000, default 100), after (a lock name). Each at most once; any other
 * field is an error. Returns 0, or -LOCKD_EINVAL with the client-facing
 * message in err (capacity err_cap; LIST_ERR_MAX is enough; it may echo
 * client bytes: escape it before sending). *out is always initialised. */
int list_parse_query(const char *query, size_t len, struct list_query *out, char *err, size_t err_cap);

/* One page being selected: a bounded max-heap of the smallest names seen. */
struct list_sel {
    const struct list_query *q;
    shm_lock *store; /* q->limit records */
    shm_lock **heap; /* q->limit pointers into store; heap[0] is the largest name */
    size_t n;
    uint64_t candidates; /* records that matched, kept or not */
};

/* Bytes of memory list_sel_init needs for q->limit (suitably aligned for
 * shm_lock, e.g. from malloc or h2o_mem_alloc_pool). */
size_t list_sel_mem_size(const struct list_query *q);

/* q and mem must outlive the selection. */
void list_sel_init(struct list_sel *s, const struct list_query *q, void *mem);

/* Offers one record (copied if it is kept). Signature of shm_table_scan's
 * callback; always returns 0. */
int list_sel_offer(const shm_lock *rec, void *sel);

/* Sorts the page in name order, drops repeated names (a name released and
 * re-acquired during the scan may be offered twice; the higher revision is
 * kept), and returns the page in *out (pointers into the selection's memory)
 * and its length. *more: more matching names may follow the last one (more
 * records matched than the page holds): the response's "next". */
size_t list_sel_finish(struct list_sel *s, shm_lock *const **out, bool *more);

#endif
