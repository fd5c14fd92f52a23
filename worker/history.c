/* worker/history.c: a name's recent holdings from the event ring (see
 * history.h). Reads the ring through its public reader API only. */
#include "worker/history.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"

struct collect {
    const char *name;
    size_t len;
    uint64_t current;
    struct history_entry *out;
    size_t max, n;
};

static struct history_entry *find(struct collect *c, uint64_t token)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->out[i].token == token)
            return &c->out[i];
    return NULL;
}

static int collect_one(const struct shm_event *ev, void *arg)
{
    struct collect *c = arg;
    if (ev->name_len != c->len || memcmp(ev->name, c->name, c->len) != 0)
        return 0;
    bool end = ev->type == SHM_EVENT_RELEASED || ev->type == SHM_EVENT_EXPIRED || ev->type == SHM_EVENT_FORCED;
    bool start = ev->type == SHM_EVENT_ACQUIRED || ev->type == SHM_EVENT_HANDED_OVER || ev->type == SHM_EVENT_RENEWED;
    if ((!end && !start) || find(c, ev->token) != NULL)
        return 0;
    struct history_entry *e = &c->out[c->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->owner, ev->owner, ev->owner_len);
    e->owner_len = ev->owner_len;
    e->token = ev->token;
    e->acquired_at_ms = ev->acquired_at_ms;
    if (end) {
        e->ended_at_ms = ev->time_ms;
        e->ended = shm_event_type_name(ev->type);
    } else if (ev->token != c->current) {
        e->ended = "unknown"; /* began, and is not the holding now: its end is gone */
    }
    return c->n == c->max ? 1 : 0;
}

int history_collect(const shm_events *ring, const char *name, size_t len, uint64_t current_token,
                    struct history_entry *out, size_t max, size_t *n)
{
    struct collect c = {name, len, current_token, out, max, 0};
    if (max > 0)
        shm_events_scan_back(ring, collect_one, &c);
    *n = c.n;
    return 0;
}

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->cap)
        memcpy(o->p + o->len, s, n < o->cap - o->len ? n : o->cap - o->len);
    o->len += n;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_str(struct out *o, const char *s, size_t len)
{
    char tmp[6 * LOCKD_OWNER_MAX + 1];
    size_t need = json_escape(s, len, tmp, sizeof tmp);
    put(o, "\"", 1);
    put(o, tmp, need);
    put(o, "\"", 1);
}

size_t history_format(const char *name, size_t len, const struct history_entry *e, size_t n, char *buf, size_t cap)
{
    struct out o = {buf, 0, cap};
    put(&o, "{\"name\":", 8);
    put_str(&o, name, len);
    put(&o, ",\"history\":[", 12);
    for (size_t i = 0; i < n; i++) {
        put(&o, i ? ",{\"owner\":" : "{\"owner\":", i ? 10 : 9);
        if (e[i].owner_len == 0)
            put(&o, "null", 4);
        else
            put_str(&o, e[i].owner, e[i].owner_len);
        putf(&o, ",\"token\":%" PRIu64 ",\"acquired_at_ms\":%" PRIu64, e[i].token, e[i].acquired_at_ms);
        if (e[i].ended_at_ms)
            putf(&o, ",\"ended_at_ms\":%" PRIu64, e[i].ended_at_ms);
        else
            put(&o, ",\"ended_at_ms\":null", 19);
        if (e[i].ended)
            putf(&o, ",\"ended\":\"%s\"}", e[i].ended);
        else
            put(&o, ",\"ended\":null}", 14);
    }
    put(&o, "]}", 2);
    return o.len;
}
