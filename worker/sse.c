/* worker/sse.c: Server-Sent Events from the shared event ring (see sse.h for
 * the wire format and the h2o wiring). Formats into caller buffers with
 * bounded lengths; never allocates, never blocks, never writes shared
 * memory. */
#include "worker/sse.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "common/json.h"

/* ---- ids ------------------------------------------------------------------ */

static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -LOCKD_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -LOCKD_EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -LOCKD_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sse_parse_id(const char *s, size_t len, struct sse_id *out)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    const char *dash = memchr(s, '-', len);
    uint64_t index, seq = UINT32_MAX;
    size_t ilen = dash != NULL ? (size_t)(dash - s) : len;
    if (parse_u64(s, ilen, UINT64_MAX, &index) != 0)
        return -LOCKD_EINVAL;
    if (dash != NULL && parse_u64(dash + 1, len - ilen - 1, UINT32_MAX, &seq) != 0)
        return -LOCKD_EINVAL;
    out->index = index;
    out->seq = (uint32_t)seq;
    return 0;
}

size_t sse_format_id(uint64_t index, uint32_t seq, char *buf)
{
    int n = snprintf(buf, 32, "%" PRIu64 "-%" PRIu32, index, seq);
    return n > 0 ? (size_t)n : 0;
}

/* ---- formatting ------------------------------------------------------------ */

/* An append-only view of a caller buffer; `over` once anything did not fit. */
struct out {
    char *p;
    size_t len, cap;
    bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->over || n > o->cap - o->len) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    if (o->over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->over = true;
        return;
    }
    o->len += (size_t)n;
}

/* ,"key":"escaped" or ,"key":null when len == 0 and null_if_empty */
static void put_str(struct out *o, const char *key, const char *s, size_t len, bool null_if_empty)
{
    putf(o, ",\"%s\":", key);
    if (len == 0 && null_if_empty) {
        puts_(o, "null");
        return;
    }
    put(o, "\"", 1);
    if (!o->over) {
        size_t need = json_escape(s, len, o->p + o->len, o->cap - o->len);
        if (need > o->cap - o->len)
            o->over = true;
        else
            o->len += need;
    }
    put(o, "\"", 1);
}

static void put_u64(struct out *o, const char *key, uint64_t v)
{
    putf(o, ",\"%s\":%" PRIu64, key, v);
}

/* ,"key":v or ,"key":null for 0 */
static void put_u64_or_null(struct out *o, const char *key, uint64_t v)
{
    if (v == 0)
        putf(o, ",\"%s\":null", key);
    else
        put_u64(o, key, v);
}

static void put_head(struct out *o, uint64_t index, uint32_t seq, const char *type)
{
    char id[32];
    size_t n = sse_format_id(index, seq, id);
    puts_(o, "id: ");
    put(o, id, n);
    putf(o, "\nevent: %s\ndata: {\"type\":\"%s\",\"index\":%" PRIu64 ",\"seq\":%" PRIu32, type, type, index, seq);
}

size_t sse_format_event(const struct shm_event *ev, char *buf, size_t cap)
{
    struct out o = {buf, 0, cap, false};
    const char *type = shm_event_type_name(ev->type);
    put_head(&o, ev->index, ev->seq, type);
    put_u64(&o, "time_ms", ev->time_ms);
    switch (ev->type) {
    case SHM_EVENT_LEADER_CHANGED:
        put_u64_or_null(&o, "leader", ev->leader_id);
        put_u64(&o, "term", ev->term);
        break;
    case SHM_EVENT_RESET:
        puts_(&o, ",\"reason\":\"restart\"");
        break;
    default:
        put_str(&o, "name", ev->name, ev->name_len, false);
        put_str(&o, "owner", ev->owner, ev->owner_len, true);
        switch (ev->type) {
        case SHM_EVENT_ACQUIRED:
        case SHM_EVENT_RENEWED:
        case SHM_EVENT_HANDED_OVER:
            put_u64(&o, "token", ev->token);
            put_u64_or_null(&o, "ttl_ms", ev->ttl_ms);
            put_u64(&o, "acquired_at_ms", ev->acquired_at_ms);
            if (ev->type == SHM_EVENT_HANDED_OVER)
                put_u64(&o, "waiter", ev->waiter_id);
            break;
        case SHM_EVENT_RELEASED:
        case SHM_EVENT_EXPIRED:
        case SHM_EVENT_FORCED:
            put_u64(&o, "token", ev->token);
            put_u64(&o, "acquired_at_ms", ev->acquired_at_ms);
            put_u64(&o, "held_ms", ev->time_ms > ev->acquired_at_ms ? ev->time_ms - ev->acquired_at_ms : 0);
            break;
        case SHM_EVENT_WAITER_QUEUED:
            put_u64_or_null(&o, "ttl_ms", ev->ttl_ms);
            put_u64(&o, "waiter", ev->waiter_id);
            break;
        case SHM_EVENT_WAITER_LEFT:
            put_u64(&o, "waiter", ev->waiter_id);
            break;
        default:
            break;
        }
    }
    puts_(&o, "}\n\n");
    return o.over ? 0 : o.len;
}

/* A reset owed to a stream (not a marker of the ring): id = the newest event
 * appended, so a client that reloads and then reconnects with it resumes
 * from the right place. */
static size_t format_reset(const shm_events *ring, const char *why, char *buf, size_t cap)
{
    struct out o = {buf, 0, cap, false};
    uint64_t index = 0;
    uint32_t seq = 0;
    if (shm_events_last_id(ring, &index, &seq)) {
        put_head(&o, index, seq, "reset");
    } else {
        puts_(&o, "event: reset\ndata: {\"type\":\"reset\"");
    }
    putf(&o, ",\"reason\":\"%s\"}\n\n", why);
    return o.over ? 0 : o.len;
}

bool sse_prefix_match(const char *prefix, size_t len, const struct shm_event *ev)
{
    if (ev->type == SHM_EVENT_LEADER_CHANGED || ev->type == SHM_EVENT_RESET || len == 0)
        return true;
    return ev->name_len >= len && memcmp(ev->name, prefix, len) == 0;
}

/* ---- streams ---------------------------------------------------------------- */

int sse_stream_open(struct sse_stream *s, const shm_events *ring, const struct sse_id *last_id, const char *prefix,
                    size_t prefix_len, uint64_t now_ms)
{
    if (prefix_len > sizeof(s->prefix))
        return -LOCKD_EINVAL;
    memset(s, 0, offsetof(struct sse_stream, buf));
    memcpy(s->prefix, prefix, prefix_len);
    s->prefix_len = prefix_len;
    s->heartbeat_ms = SSE_HEARTBEAT_MS;
    s->last_output_ms = now_ms;
    if (last_id == NULL)
        shm_events_cursor_head(ring, &s->cur);
    else if (shm_events_seek(ring, last_id->index, last_id->seq, &s->cur) != 0)
        s->reset_why = "resume"; /* the cursor is at the head */
    return 0;
}

static void owe_reset(struct sse_stream *s, const shm_events *ring, const char *why)
{
    s->reset_why = why;
    shm_events_cursor_head(ring, &s->cur);
}

size_t sse_stream_fill(struct sse_stream *s, const shm_events *ring, uint64_t now_ms)
{
    if (s->in_flight)
        return 0;
    s->len = 0;
    struct out o = {s->buf, 0, sizeof(s->buf), false};
    if (!s->preamble_sent) {
        puts_(&o, "retry: 1000\n: ok\n\n");
        s->preamble_sent = true;
    }
    struct shm_event ev;
    for (unsigned budget = SSE_READ_BUDGET; budget > 0 && o.cap - o.len >= SSE_EVENT_MAX; budget--) {
        if (s->reset_why != NULL) {
            o.len += format_reset(ring, s->reset_why, o.p + o.len, o.cap - o.len);
            s->reset_why = NULL;
            s->resets++;
            continue;
        }
        int rc = shm_events_next(ring, &s->cur, &ev);
        if (rc == -LOCKD_EAGAIN)
            break;
        if (rc != 0) {
            owe_reset(s, ring, "behind");
            continue;
        }
        if (!sse_prefix_match(s->prefix, s->prefix_len, &ev))
            continue;
        o.len += sse_format_event(&ev, o.p + o.len, o.cap - o.len);
        if (ev.type == SHM_EVENT_RESET)
            s->resets++;
        else
            s->events++;
    }
    if (o.len == 0 && now_ms - s->last_output_ms >= s->heartbeat_ms)
        puts_(&o, ": heartbeat\n\n");
    if (o.len > 0)
        s->last_output_ms = now_ms;
    s->len = o.len;
    return s->len;
}

void sse_stream_sending(struct sse_stream *s)
{
    s->in_flight = true;
}

void sse_stream_sent(struct sse_stream *s)
{
    s->in_flight = false;
    s->len = 0;
}

/* ---- the hub ----------------------------------------------------------------- */

void sse_hub_init(struct sse_hub *h, size_t max_streams)
{
    memset(h, 0, sizeof(*h));
    h->max = max_streams;
}

int sse_hub_add(struct sse_hub *h, struct sse_stream *s)
{
    if (h->open >= h->max) {
        h->refused_total++;
        return -LOCKD_EFULL;
    }
    s->hub = h;
    s->prev = NULL;
    s->next = h->first;
    if (h->first != NULL)
        h->first->prev = s;
    h->first = s;
    h->open++;
    h->opened_total++;
    return 0;
}

void sse_hub_remove(struct sse_hub *h, struct sse_stream *s)
{
    if (s->hub != h)
        return;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h->first = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->hub = NULL;
    s->prev = s->next = NULL;
    h->open--;
    h->events_total += s->events;
    h->resets_total += s->resets;
}

size_t sse_hub_poll(struct sse_hub *h, const shm_events *ring, uint64_t now_ms,
                    void (*send)(struct sse_stream *s, void *arg), void *arg)
{
    size_t sent = 0;
    struct sse_stream *next;
    for (struct sse_stream *s = h->first; s != NULL; s = next) {
        next = s->next; /* send may remove s */
        if (s->in_flight || sse_stream_fill(s, ring, now_ms) == 0)
            continue;
        sent++;
        send(s, arg);
    }
    return sent;
}
