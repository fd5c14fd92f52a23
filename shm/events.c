/* shm/events.c: the only code that knows the layout of the event ring (see
 * events.h) and its per-slot sequence protocol. Readers never block, never
 * write shared memory and never trust a length they have not bounded; the
 * single writer never waits for a reader: a reader that is too slow is
 * overwritten and finds out.
 *
 * Positions are absolute 64-bit counts of events appended (never wrap);
 * position p lives in slot p & mask. Each slot carries a 64-bit sequence
 * word: 2p + 1 while the writer fills it for position p, 2p + 2 once done.
 *
 * Memory ordering (the recipe of shm/table.c, after Boehm, "Can Seqlocks Get
 * Along With Programming Language Memory Models?", MSPC 2012). Every shared
 * word is a C11 atomic, so a reader racing the writer reads stale or mixed
 * values but never has undefined behaviour; the sequence words decide which
 * copies count.
 *   writer, event at position p:
 *     slot.seq = 2p+1 (relaxed); fence(release);
 *     payload stores (relaxed);
 *     slot.seq = 2p+2 (release); head = p+1 (release)
 *   reader, position p:
 *     h = head (acquire); p >= h: nothing yet; h - p > capacity: lost
 *     s1 = slot.seq (acquire): must be 2p+2, else lost (overwritten)
 *     payload loads (relaxed); fence(acquire); s2 = slot.seq (relaxed)
 *     s2 != s1: lost (the writer began to overwrite it during the copy)
 * head's release store publishes the finished slot: a reader that saw
 * head > p sees slot.seq >= 2p+2 (never an unwritten slot). If the copy saw
 * any store of a later overwrite, that store follows the writer's release
 * fence, which orders the odd seq before it; the reader's acquire fence then
 * makes its second load see at least that odd value, so s2 != s1.
 * last_reset (position of the newest reset marker + 1) is stored with
 * release after head; a reader loads it (acquire) before head, so any marker
 * it learns of is published. A reader that misses a brand-new marker still
 * meets it in the ring and passes it on as a reset: safe, only eager. */
#include "shm/events.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/errors.h"

#define EVENTS_MAGIC 0x53544e5645444b4cull /* "LKDEVNTS" in little-endian memory */
#define EVENTS_LAYOUT_VERSION 1u

/* name + owner bytes, packed one after the other, in 64-bit words */
#define BYTES_WORDS ((LOCKD_NAME_MAX + LOCKD_OWNER_MAX + 7) / 8)

/* seek rereads the oldest slot while the writer laps it; each retry means
 * the writer appended `capacity` events meanwhile, so this never runs out
 * unless the reader is starved for whole ring turns. */
#define SEEK_RETRIES 64

_Static_assert(ATOMIC_LONG_LOCK_FREE == 2, "the ring in shared memory needs lock-free 64-bit atomics");

enum {
    W_INDEX,
    W_META, /* seq (0-31) | type (32-39) | name_len (40-47) | owner_len (48-55) */
    W_TOKEN,
    W_TTL,
    W_TIME,
    W_ACQUIRED,
    W_WAITER,
    W_LEADER,
    W_TERM,
    W_BYTES, /* BYTES_WORDS words of name then owner */
    SLOT_WORDS = W_BYTES + BYTES_WORDS,
};

struct ev_slot {
    _Atomic uint64_t seq; /* 2p+1 while being written for position p, 2p+2 when done */
    _Atomic uint64_t w[SLOT_WORDS];
};
_Static_assert(sizeof(struct ev_slot) == 336, "slot layout");

struct ev_header {
    /* Immutable after create. */
    uint64_t magic;
    uint32_t version;
    uint32_t capacity;
    uint64_t total_size;

    /* Read by every reader poll; written once per append. */
    _Alignas(64) _Atomic uint64_t head; /* positions [0, head) have been appended */
    _Atomic uint64_t last_reset;        /* position of the newest reset marker + 1; 0: none */

    /* The writer's own state; in the segment so that a restarted raftproc
     * continues where the previous one stopped. Atomics because
     * shm_events_last_id may be called from anywhere. */
    _Alignas(64) _Atomic uint64_t last_index;
    _Atomic uint64_t last_seq; /* UINT64_MAX: nothing appended yet */
};

struct shm_events {
    unsigned char *base;
    size_t size;
    struct ev_header *hdr;
    struct ev_slot *slots;
    uint64_t mask;
    uint32_t capacity;
};

static size_t slots_offset(void)
{
    return (sizeof(struct ev_header) + 63) & ~(size_t)63;
}

static bool capacity_valid(uint32_t capacity)
{
    return capacity >= SHM_EVENTS_MIN_CAPACITY && capacity <= SHM_EVENTS_MAX_CAPACITY &&
           (capacity & (capacity - 1)) == 0;
}

size_t shm_events_segment_size(uint32_t capacity)
{
    if (!capacity_valid(capacity))
        return 0;
    size_t page = 4096;
    size_t total = slots_offset() + (size_t)capacity * sizeof(struct ev_slot);
    return (total + page - 1) / page * page;
}

const char *shm_event_type_name(unsigned type)
{
    static const char *const names[] = {
        [SHM_EVENT_NONE] = "none",
        [SHM_EVENT_ACQUIRED] = "acquired",
        [SHM_EVENT_RENEWED] = "renewed",
        [SHM_EVENT_RELEASED] = "released",
        [SHM_EVENT_EXPIRED] = "expired",
        [SHM_EVENT_HANDED_OVER] = "handed_over",
        [SHM_EVENT_FORCED] = "forced",
        [SHM_EVENT_WAITER_QUEUED] = "waiter_queued",
        [SHM_EVENT_WAITER_LEFT] = "waiter_left",
        [SHM_EVENT_LEADER_CHANGED] = "leader_changed",
        [SHM_EVENT_RESET] = "reset",
    };
    return type >= 1 && type <= SHM_EVENT_TYPE_MAX ? names[type] : "unknown";
}

int shm_events_create(uint32_t capacity, shm_events **out)
{
    size_t size = shm_events_segment_size(capacity);
    if (size == 0 || out == NULL)
        return -LOCKD_EINVAL;
    shm_events *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -LOCKD_ENOMEM;
    /* Zero-filled, backed only where written. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(r);
        return -LOCKD_ENOMEM;
    }
    r->base = p;
    r->size = size;
    r->hdr = p;
    r->slots = (struct ev_slot *)(r->base + slots_offset());
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->hdr->magic = EVENTS_MAGIC;
    r->hdr->version = EVENTS_LAYOUT_VERSION;
    r->hdr->capacity = capacity;
    r->hdr->total_size = size;
    atomic_store_explicit(&r->hdr->last_seq, UINT64_MAX, memory_order_relaxed);
    *out = r;
    return 0;
}

void shm_events_destroy(shm_events *r)
{
    if (r == NULL)
        return;
    munmap(r->base, r->size);
    free(r);
}

int shm_events_make_readonly(shm_events *r)
{
    return mprotect(r->base, r->size, PROT_READ) == 0 ? 0 : -LOCKD_EIO;
}

uint32_t shm_events_capacity(const shm_events *r)
{
    return r->capacity;
}

uint64_t shm_events_head(const shm_events *r)
{
    return atomic_load_explicit(&r->hdr->head, memory_order_acquire);
}

/* ---- writer -------------------------------------------------------------- */

static void slot_write(shm_events *r, uint64_t pos, const struct shm_event *ev, uint32_t seq)
{
    struct ev_slot *s = &r->slots[pos & r->mask];
    uint64_t w[SLOT_WORDS];
    memset(w, 0, sizeof(w));
    w[W_INDEX] = ev->index;
    w[W_META] = (uint64_t)seq | (uint64_t)ev->type << 32 | (uint64_t)ev->name_len << 40 | (uint64_t)ev->owner_len << 48;
    w[W_TOKEN] = ev->token;
    w[W_TTL] = ev->ttl_ms;
    w[W_TIME] = ev->time_ms;
    w[W_ACQUIRED] = ev->acquired_at_ms;
    w[W_WAITER] = ev->waiter_id;
    w[W_LEADER] = ev->leader_id;
    w[W_TERM] = ev->term;
    unsigned char *bytes = (unsigned char *)&w[W_BYTES];
    memcpy(bytes, ev->name, ev->name_len);
    memcpy(bytes + ev->name_len, ev->owner, ev->owner_len);
    size_t words = W_BYTES + ((size_t)ev->name_len + ev->owner_len + 7) / 8;

    atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < words; i++)
        atomic_store_explicit(&s->w[i], w[i], memory_order_relaxed);
    atomic_store_explicit(&s->seq, 2 * pos + 2, memory_order_release);
    atomic_store_explicit(&r->hdr->head, pos + 1, memory_order_release);
}

static int append(shm_events *r, const struct shm_event *ev, bool reset)
{
    if (ev->type < 1 || ev->type > SHM_EVENT_TYPE_MAX || ev->name_len > LOCKD_NAME_MAX ||
        ev->owner_len > LOCKD_OWNER_MAX || (ev->type == SHM_EVENT_RESET) != reset)
        return -LOCKD_EINVAL;
    uint64_t last_index = atomic_load_explicit(&r->hdr->last_index, memory_order_relaxed);
    uint64_t last_seq = atomic_load_explicit(&r->hdr->last_seq, memory_order_relaxed);
    uint64_t seq = 0;
    if (last_seq != UINT64_MAX && ev->index == last_index) {
        if (last_seq >= UINT32_MAX)
            return -LOCKD_EINVAL;
        seq = last_seq + 1;
    } else if (last_seq != UINT64_MAX && ev->index < last_index && !reset) {
        return -LOCKD_EINVAL;
    }
    uint64_t pos = atomic_load_explicit(&r->hdr->head, memory_order_relaxed);
    slot_write(r, pos, ev, (uint32_t)seq);
    atomic_store_explicit(&r->hdr->last_index, ev->index, memory_order_relaxed);
    atomic_store_explicit(&r->hdr->last_seq, seq, memory_order_relaxed);
    if (reset)
        atomic_store_explicit(&r->hdr->last_reset, pos + 1, memory_order_release);
    return 0;
}

int shm_events_append(shm_events *r, const struct shm_event *ev)
{
    return append(r, ev, false);
}

int shm_events_reset(shm_events *r, uint64_t index, uint64_t time_ms)
{
    struct shm_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = SHM_EVENT_RESET;
    ev.index = index;
    ev.time_ms = time_ms;
    return append(r, &ev, true);
}

bool shm_events_last_id(const shm_events *r, uint64_t *index, uint32_t *seq)
{
    uint64_t s = atomic_load_explicit(&r->hdr->last_seq, memory_order_relaxed);
    if (s == UINT64_MAX)
        return false;
    *index = atomic_load_explicit(&r->hdr->last_index, memory_order_relaxed);
    *seq = (uint32_t)s;
    return true;
}

/* ---- readers ------------------------------------------------------------- */

/* Copies position pos into *out: 0, -LOCKD_EAGAIN (not appended yet) or
 * -LOCKD_ENOENT (overwritten). */
static int slot_read(const shm_events *r, uint64_t pos, struct shm_event *out)
{
    uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    if (pos >= head)
        return -LOCKD_EAGAIN;
    if (head - pos > r->capacity)
        return -LOCKD_ENOENT;
    const struct ev_slot *s = &r->slots[pos & r->mask];
    uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (s1 != 2 * pos + 2)
        return -LOCKD_ENOENT;
    uint64_t w[SLOT_WORDS];
    for (size_t i = 0; i < W_BYTES; i++)
        w[i] = atomic_load_explicit(&s->w[i], memory_order_relaxed);
    size_t name_len = (uint8_t)(w[W_META] >> 40), owner_len = (uint8_t)(w[W_META] >> 48);
    if (name_len > LOCKD_NAME_MAX)
        name_len = LOCKD_NAME_MAX; /* torn: the seq check below rejects the copy */
    if (owner_len > LOCKD_OWNER_MAX)
        owner_len = LOCKD_OWNER_MAX;
    size_t words = (name_len + owner_len + 7) / 8;
    for (size_t i = 0; i < words; i++)
        w[W_BYTES + i] = atomic_load_explicit(&s->w[W_BYTES + i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != s1)
        return -LOCKD_ENOENT;

    out->index = w[W_INDEX];
    out->seq = (uint32_t)w[W_META];
    out->type = (uint8_t)(w[W_META] >> 32);
    out->name_len = (uint8_t)name_len;
    out->owner_len = (uint8_t)owner_len;
    out->token = w[W_TOKEN];
    out->ttl_ms = w[W_TTL];
    out->time_ms = w[W_TIME];
    out->acquired_at_ms = w[W_ACQUIRED];
    out->waiter_id = w[W_WAITER];
    out->leader_id = w[W_LEADER];
    out->term = w[W_TERM];
    const unsigned char *bytes = (const unsigned char *)&w[W_BYTES];
    memcpy(out->name, bytes, name_len);
    out->name[name_len] = '\0';
    memcpy(out->owner, bytes + name_len, owner_len);
    out->owner[owner_len] = '\0';
    return 0;
}

void shm_events_cursor_head(const shm_events *r, struct shm_events_cursor *cur)
{
    memset(cur, 0, sizeof(*cur));
    cur->pos = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
}

static bool id_le(uint64_t ai, uint32_t as, uint64_t bi, uint32_t bs)
{
    return ai < bi || (ai == bi && as <= bs);
}

/* a <= the id right after b: then every id before a is <= b. The id after
 * (i, UINT32_MAX) is (i + 1, 0): a client that saw "all of entry i" missed
 * nothing before (i + 1, 0). */
static bool id_le_succ(uint64_t ai, uint32_t as, uint64_t bi, uint32_t bs)
{
    if (bs == UINT32_MAX)
        return ai <= bi || (ai == bi + 1 && as == 0);
    return ai < bi || (ai == bi && as <= bs + 1);
}

int shm_events_seek(const shm_events *r, uint64_t index, uint32_t seq, struct shm_events_cursor *cur)
{
    for (int attempt = 0; attempt < SEEK_RETRIES; attempt++) {
        uint64_t last_reset = atomic_load_explicit(&r->hdr->last_reset, memory_order_acquire);
        uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
        uint64_t lo = head > r->capacity ? head - r->capacity : 0;
        struct shm_event ev;
        int rc;
        if (head == 0)
            break; /* nothing ever appended: what came before is unknown */
        if (last_reset != 0 && last_reset - 1 >= lo) {
            /* The segment's marker is held: the client missed nothing if its
             * state is at least the one the marker jumped to. */
            rc = slot_read(r, last_reset - 1, &ev);
            if (rc == -LOCKD_ENOENT)
                continue;
            if (rc != 0 || index < ev.index)
                break;
            cur->pos = last_reset;
        } else {
            /* One segment from lo to head: nothing is lost if the oldest
             * event held is at most the id right after the client's (every
             * overwritten event came before it). */
            rc = slot_read(r, lo, &ev);
            if (rc == -LOCKD_ENOENT)
                continue;
            if (rc != 0 || !id_le_succ(ev.index, ev.seq, index, seq))
                break;
            cur->pos = lo;
        }
        cur->skipping = true;
        cur->after_index = index;
        cur->after_seq = seq;
        return 0;
    }
    shm_events_cursor_head(r, cur);
    return -LOCKD_ENOENT;
}

int shm_events_next(const shm_events *r, struct shm_events_cursor *cur, struct shm_event *out)
{
    for (uint32_t n = 0; n <= r->capacity; n++) {
        int rc = slot_read(r, cur->pos, out);
        if (rc != 0)
            return rc;
        cur->pos++;
        if (cur->skipping) {
            /* A marker the client's state already covers is skipped too: the
             * events replayed after it have the ids the client has seen. */
            bool seen = out->type == SHM_EVENT_RESET ? out->index <= cur->after_index
                                                     : id_le(out->index, out->seq, cur->after_index, cur->after_seq);
            if (seen)
                continue;
            cur->skipping = false;
        }
        return 0;
    }
    return -LOCKD_EAGAIN; /* skipped a whole ring's worth: the caller polls again */
}

int shm_events_scan_back(const shm_events *r, int (*fn)(const struct shm_event *ev, void *arg), void *arg)
{
    uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    uint64_t lo = head > r->capacity ? head - r->capacity : 0;
    struct shm_event ev;
    for (uint64_t pos = head; pos > lo; pos--) {
        if (slot_read(r, pos - 1, &ev) != 0)
            return 0; /* overwritten meanwhile: so is everything older */
        int rc = fn(&ev, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}
