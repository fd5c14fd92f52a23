/* common/ratelimit.c: token buckets per key and counts per key (see
 * ratelimit.h). Owns its tables; never logs, never reads a clock. */
#include "common/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

/* ---- token bucket ---------------------------------------------------------------- */

static uint64_t rl_level(const struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)r->burst * 1000;
    uint64_t elapsed = now_ms > b->last_ms ? now_ms - b->last_ms : 0;
    /* per_sec tokens per 1000 ms = per_sec milli-tokens per ms; no
     * overflow: the product is taken only below cap. */
    uint64_t add = elapsed > cap / r->per_sec ? cap : elapsed * r->per_sec;
    uint64_t level = b->milli + add;
    return level > cap ? cap : level;
}

void rl_bucket_init(struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms)
{
    b->milli = (uint64_t)r->burst * 1000;
    b->last_ms = now_ms;
}

bool rl_bucket_take(struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms)
{
    uint64_t level = rl_level(b, r, now_ms);
    b->last_ms = now_ms > b->last_ms ? now_ms : b->last_ms;
    if (level < 1000) {
        b->milli = level;
        return false;
    }
    b->milli = level - 1000;
    return true;
}

bool rl_bucket_full(const struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms)
{
    return rl_level(b, r, now_ms) >= (uint64_t)r->burst * 1000;
}

/* ---- per-key buckets --------------------------------------------------------------- */

#define RL_WINDOW 16

struct rl_slot {
    uint64_t key; /* key + 1; 0 = empty (so key 0 is usable) */
    struct rl_bucket b;
};

struct rl_table {
    struct rl_rate rate;
    size_t mask;
    uint64_t lossy;
    struct rl_slot *slots;
};

static uint64_t rl_mix(uint64_t x)
{
    /* splitmix64 finaliser: connection ids are sequential */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int rl_table_create(size_t capacity, const struct rl_rate *rate, rl_table **out)
{
    *out = NULL;
    if (capacity == 0 || rate->burst == 0 || rate->per_sec == 0 || capacity > ((size_t)1 << 30))
        return -LOCKD_EINVAL;
    size_t n = RL_WINDOW;
    while (n < capacity)
        n <<= 1;
    rl_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -LOCKD_ENOMEM;
    t->slots = calloc(n, sizeof *t->slots);
    if (t->slots == NULL) {
        free(t);
        return -LOCKD_ENOMEM;
    }
    t->rate = *rate;
    t->mask = n - 1;
    *out = t;
    return 0;
}

void rl_table_destroy(rl_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

bool rl_table_hit(rl_table *t, uint64_t key, uint64_t now_ms)
{
    size_t base = (size_t)rl_mix(key) & t->mask;
    struct rl_slot *free_slot = NULL, *stale = NULL, *oldest = NULL;
    for (size_t i = 0; i < RL_WINDOW; i++) {
        struct rl_slot *s = &t->slots[(base + i) & t->mask];
        if (s->key == key + 1)
            return rl_bucket_take(&s->b, &t->rate, now_ms);
        if (s->key == 0) {
            if (!free_slot)
                free_slot = s;
        } else if (!stale && rl_bucket_full(&s->b, &t->rate, now_ms)) {
            stale = s; /* refilled: as good as absent */
        } else if (!oldest || s->b.last_ms < oldest->b.last_ms) {
            oldest = s;
        }
    }
    struct rl_slot *s = free_slot ? free_slot : stale;
    if (s == NULL) {
        s = oldest;
        t->lossy++;
    }
    s->key = key + 1;
    rl_bucket_init(&s->b, &t->rate, now_ms);
    return rl_bucket_take(&s->b, &t->rate, now_ms);
}

void rl_table_forget(rl_table *t, uint64_t key)
{
    size_t base = (size_t)rl_mix(key) & t->mask;
    for (size_t i = 0; i < RL_WINDOW; i++) {
        struct rl_slot *s = &t->slots[(base + i) & t->mask];
        if (s->key == key + 1) {
            s->key = 0;
            return;
        }
    }
}

uint64_t rl_table_lossy_evictions(const rl_table *t)
{
    return t->lossy;
}

/* ---- counts per string key ------------------------------------------------------------ */

struct rl_centry {
    struct rl_centry *next;
    uint32_t count;
    uint8_t len;
    char key[];
};

struct rl_counter {
    size_t n_keys, mask;
    uint64_t total;
    struct rl_centry **buckets;
};

static uint64_t rl_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return rl_mix(h);
}

int rl_counter_create(rl_counter **out)
{
    rl_counter *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -LOCKD_ENOMEM;
    c->mask = 63;
    c->buckets = calloc(c->mask + 1, sizeof *c->buckets);
    if (c->buckets == NULL) {
        free(c);
        return -LOCKD_ENOMEM;
    }
    *out = c;
    return 0;
}

void rl_counter_destroy(rl_counter *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i <= c->mask; i++) {
        struct rl_centry *e = c->buckets[i];
        while (e) {
            struct rl_centry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(c->buckets);
    free(c);
}

static struct rl_centry **rl_find(const rl_counter *c, const char *key, size_t len)
{
    struct rl_centry **pp = &c->buckets[rl_hash(key, len) & c->mask];
    while (*pp && !((*pp)->len == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

/* Doubles the bucket array when keys outnumber buckets; on ENOMEM keeps
 * the old (longer chains, still correct). */
static void rl_grow(rl_counter *c)
{
    size_t n = (c->mask + 1) * 2;
    struct rl_centry **nb = calloc(n, sizeof *nb);
    if (nb == NULL)
        return;
    for (size_t i = 0; i <= c->mask; i++) {
        struct rl_centry *e = c->buckets[i];
        while (e) {
            struct rl_centry *next = e->next;
            size_t b = rl_hash(e->key, e->len) & (n - 1);
            e->next = nb[b];
            nb[b] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->mask = n - 1;
}

int rl_counter_acquire(rl_counter *c, const char *key, size_t len, uint32_t limit)
{
    if (len == 0 || len > 255)
        return -LOCKD_EINVAL;
    struct rl_centry **pp = rl_find(c, key, len);
    if (*pp) {
        if ((*pp)->count >= limit)
            return -LOCKD_EFULL;
        (*pp)->count++;
        c->total++;
        return 0;
    }
    if (limit == 0)
        return -LOCKD_EFULL;
    struct rl_centry *e = malloc(sizeof *e + len);
    if (e == NULL)
        return -LOCKD_ENOMEM;
    e->count = 1;
    e->len = (uint8_t)len;
    memcpy(e->key, key, len);
    e->next = NULL;
    *pp = e;
    c->n_keys++;
    c->total++;
    if (c->n_keys > c->mask + 1)
        rl_grow(c);
    return 0;
}

void rl_counter_release(rl_counter *c, const char *key, size_t len)
{
    if (len == 0 || len > 255)
        return;
    struct rl_centry **pp = rl_find(c, key, len);
    struct rl_centry *e = *pp;
    if (e == NULL)
        return;
    c->total--;
    if (--e->count == 0) {
        *pp = e->next;
        free(e);
        c->n_keys--;
    }
}

uint32_t rl_counter_get(const rl_counter *c, const char *key, size_t len)
{
    if (len == 0 || len > 255)
        return 0;
    struct rl_centry *e = *rl_find(c, key, len);
    return e ? e->count : 0;
}

size_t rl_counter_keys(const rl_counter *c)
{
    return c->n_keys;
}

uint64_t rl_counter_total(const rl_counter *c)
{
    return c->total;
}
