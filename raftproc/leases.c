/* raftproc/leases.c: lease timers (see leases.h). Owns the heap and the
 * name copies in it. Work per call is bounded by the caller's max, so a
 * mass expiry is spread over loop turns instead of stalling requests. */
#include "raftproc/leases.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

struct lease_timer {
    uint64_t deadline_ms;
    uint64_t revision;
    char *name; /* owned, NUL-terminated */
    uint8_t len;
};

struct leases {
    const shm_table *table;
    struct lease_timer *heap;
    size_t n, cap;
};

int leases_create(const shm_table *table, leases **out)
{
    leases *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -LOCKD_ENOMEM;
    l->table = table;
    *out = l;
    return 0;
}

void leases_clear(leases *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->heap[i].name);
    l->n = 0;
    if (l->cap > 4096) {
        free(l->heap);
        l->heap = NULL;
        l->cap = 0;
    }
}

void leases_destroy(leases *l)
{
    if (l == NULL)
        return;
    leases_clear(l);
    free(l->heap);
    free(l);
}

static void heap_swap(struct lease_timer *a, struct lease_timer *b)
{
    struct lease_timer t = *a;
    *a = *b;
    *b = t;
}

static void heap_up(struct lease_timer *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].deadline_ms <= h[i].deadline_ms)
            break;
        heap_swap(&h[p], &h[i]);
        i = p;
    }
}

static void heap_down(struct lease_timer *h, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1].deadline_ms < h[c].deadline_ms)
            c++;
        if (h[i].deadline_ms <= h[c].deadline_ms)
            break;
        heap_swap(&h[i], &h[c]);
        i = c;
    }
}

/* Is this timer still the lease the table holds? */
static int timer_current(const leases *l, const struct lease_timer *t)
{
    shm_lock rec;
    return shm_table_get(l->table, t->name, t->len, &rec) == 0 && rec.revision == t->revision && rec.ttl_ms > 0;
}

/* Drops stale timers (renewed or released leases) when they outnumber the
 * live ones; keeps every live deadline as it was. O(n). */
static void leases_compact(leases *l)
{
    size_t live = shm_table_count(l->table);
    if (l->n < 2 * live + 1024)
        return;
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (timer_current(l, &l->heap[i]))
            l->heap[k++] = l->heap[i];
        else
            free(l->heap[i].name);
    }
    l->n = k;
    for (size_t i = k / 2 + 1; i-- > 0;)
        heap_down(l->heap, l->n, i);
}

int leases_track(leases *l, const shm_lock *rec, uint64_t now_ms)
{
    if (rec->ttl_ms == 0)
        return 0;
    if (l->n == l->cap) {
        leases_compact(l);
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 1024;
            struct lease_timer *h = realloc(l->heap, cap * sizeof(*h));
            if (h == NULL)
                return -LOCKD_ENOMEM;
            l->heap = h;
            l->cap = cap;
        }
    }
    char *name = malloc((size_t)rec->name_len + 1);
    if (name == NULL)
        return -LOCKD_ENOMEM;
    memcpy(name, rec->name, rec->name_len);
    name[rec->name_len] = '\0';
    struct lease_timer *t = &l->heap[l->n];
    t->deadline_ms = now_ms + rec->ttl_ms;
    t->revision = rec->revision;
    t->name = name;
    t->len = rec->name_len;
    heap_up(l->heap, l->n++);
    return 0;
}

static int leases_track_cb(const shm_lock *rec, void *arg)
{
    void **a = arg;
    return leases_track(a[0], rec, *(uint64_t *)a[1]);
}

int leases_rebuild(leases *l, uint64_t now_ms)
{
    leases_clear(l);
    void *args[2] = {l, &now_ms};
    return shm_table_foreach(l->table, leases_track_cb, args);
}

size_t leases_expire_due(leases *l, uint64_t now_ms, size_t max,
                         void (*expire)(void *arg, const char *name, size_t len, uint64_t revision), void *arg)
{
    size_t called = 0, visited = 0;
    /* Stale timers cost a pop but no command; bound them too. */
    while (l->n > 0 && l->heap[0].deadline_ms <= now_ms && called < max && visited < 4 * max) {
        struct lease_timer t = l->heap[0];
        l->heap[0] = l->heap[--l->n];
        heap_down(l->heap, l->n, 0);
        visited++;
        if (timer_current(l, &t)) {
            expire(arg, t.name, t.len, t.revision);
            called++;
        }
        free(t.name);
    }
    return called;
}

uint64_t leases_next_deadline(const leases *l)
{
    return l->n > 0 ? l->heap[0].deadline_ms : UINT64_MAX;
}
size_t leases_pending(const leases *l)
{
    return l->n;
}
