/* raftproc/waitq.c: per-lock FIFO wait queues (see waitq.h). Owns every
 * queue and waiter it allocates; never touches the shm table or the store
 * (the FSM persists what it changes here). */
#include "raftproc/waitq.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

struct wnode {
    struct waiter w;
    struct wnode *next;
};

struct queue {
    struct queue *next_bucket;
    struct wnode *head, *tail;
    size_t n;
    uint8_t len;
    char name[];
};

struct waitq {
    struct queue **buckets;
    size_t n_buckets; /* power of two */
    size_t n_queues;
    size_t total;
};

static uint64_t waitq_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

int waitq_create(waitq **out)
{
    waitq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return -LOCKD_ENOMEM;
    q->n_buckets = 64;
    q->buckets = calloc(q->n_buckets, sizeof(*q->buckets));
    if (q->buckets == NULL) {
        free(q);
        return -LOCKD_ENOMEM;
    }
    *out = q;
    return 0;
}

static void queue_free(struct queue *qu)
{
    for (struct wnode *n = qu->head, *next; n != NULL; n = next) {
        next = n->next;
        free(n);
    }
    free(qu);
}

void waitq_clear(waitq *q)
{
    for (size_t i = 0; i < q->n_buckets; i++) {
        for (struct queue *qu = q->buckets[i], *next; qu != NULL; qu = next) {
            next = qu->next_bucket;
            queue_free(qu);
        }
        q->buckets[i] = NULL;
    }
    q->n_queues = 0;
    q->total = 0;
}

void waitq_destroy(waitq *q)
{
    if (q == NULL)
        return;
    waitq_clear(q);
    free(q->buckets);
    free(q);
}

static struct queue **waitq_slot(const waitq *q, const char *name, size_t len)
{
    struct queue **pp = &q->buckets[waitq_hash(name, len) & (q->n_buckets - 1)];
    while (*pp != NULL && ((*pp)->len != len || memcmp((*pp)->name, name, len) != 0))
        pp = &(*pp)->next_bucket;
    return pp;
}

static void waitq_grow(waitq *q)
{
    size_t nb = q->n_buckets * 2;
    struct queue **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < q->n_buckets; i++) {
        for (struct queue *qu = q->buckets[i], *next; qu != NULL; qu = next) {
            next = qu->next_bucket;
            size_t k = waitq_hash(qu->name, qu->len) & (nb - 1);
            qu->next_bucket = b[k];
            b[k] = qu;
        }
    }
    free(q->buckets);
    q->buckets = b;
    q->n_buckets = nb;
}

int waitq_push(waitq *q, const char *name, size_t len, const struct waiter *w)
{
    if (len == 0 || len > LOCKD_NAME_MAX)
        return -LOCKD_EINVAL;
    struct queue **pp = waitq_slot(q, name, len);
    struct queue *qu = *pp;
    if (qu == NULL) {
        qu = calloc(1, sizeof(*qu) + len + 1);
        if (qu == NULL)
            return -LOCKD_ENOMEM;
        memcpy(qu->name, name, len);
        qu->len = (uint8_t)len;
        *pp = qu;
        q->n_queues++;
    }
    struct wnode *n = malloc(sizeof(*n));
    if (n == NULL) {
        if (qu->n == 0) {
            *pp = qu->next_bucket;
            q->n_queues--;
            free(qu);
        }
        return -LOCKD_ENOMEM;
    }
    n->w = *w;
    n->next = NULL;
    /* Ids arrive in increasing order; insert in order anyway so a load from
     * an unordered source (a snapshot) still yields FIFO queues. */
    if (qu->tail == NULL || qu->tail->w.id < w->id) {
        if (qu->tail)
            qu->tail->next = n;
        else
            qu->head = n;
        qu->tail = n;
    } else {
        struct wnode **np = &qu->head;
        while ((*np)->w.id < w->id)
            np = &(*np)->next;
        n->next = *np;
        *np = n;
    }
    qu->n++;
    q->total++;
    if (q->n_queues > q->n_buckets)
        waitq_grow(q);
    return 0;
}

static void waitq_drop_if_empty(waitq *q, struct queue **pp)
{
    struct queue *qu = *pp;
    if (qu->n > 0)
        return;
    *pp = qu->next_bucket;
    q->n_queues--;
    free(qu);
}

int waitq_pop(waitq *q, const char *name, size_t len, struct waiter *out)
{
    struct queue **pp = waitq_slot(q, name, len);
    if (*pp == NULL)
        return -LOCKD_ENOENT;
    struct queue *qu = *pp;
    struct wnode *n = qu->head;
    *out = n->w;
    qu->head = n->next;
    if (qu->head == NULL)
        qu->tail = NULL;
    free(n);
    qu->n--;
    q->total--;
    waitq_drop_if_empty(q, pp);
    return 0;
}

int waitq_remove(waitq *q, const char *name, size_t len, uint64_t id)
{
    struct queue **pp = waitq_slot(q, name, len);
    if (*pp == NULL)
        return -LOCKD_ENOENT;
    struct queue *qu = *pp;
    struct wnode *prev = NULL;
    for (struct wnode *n = qu->head; n != NULL; prev = n, n = n->next) {
        if (n->w.id != id)
            continue;
        if (prev)
            prev->next = n->next;
        else
            qu->head = n->next;
        if (qu->tail == n)
            qu->tail = prev;
        free(n);
        qu->n--;
        q->total--;
        waitq_drop_if_empty(q, pp);
        return 0;
    }
    return -LOCKD_ENOENT;
}

size_t waitq_length(const waitq *q, const char *name, size_t len)
{
    struct queue *qu = *waitq_slot(q, name, len);
    return qu ? qu->n : 0;
}

size_t waitq_total(const waitq *q)
{
    return q->total;
}

int waitq_foreach(const waitq *q, int (*fn)(const char *name, size_t len, const struct waiter *w, void *arg), void *arg)
{
    for (size_t i = 0; i < q->n_buckets; i++)
        for (struct queue *qu = q->buckets[i]; qu != NULL; qu = qu->next_bucket)
            for (struct wnode *n = qu->head; n != NULL; n = n->next) {
                int rc = fn(qu->name, qu->len, &n->w, arg);
                if (rc != 0)
                    return rc;
            }
    return 0;
}
