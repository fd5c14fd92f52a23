/* shm/stats.c: the only code that knows the layout of the stats segment
 * (see stats.h). Writers only ever add (workers, relaxed fetch-add) or store
 * a larger total (raftproc, its slot's single writer); readers only load.
 * No word is shared between two workers' slots, so the per-request cost is
 * three uncontended atomic adds. */
#include "shm/stats.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "common/errors.h"

#define STATS_MAGIC 0x5354415453444b4cull /* "LKDSTATS" */
#define STATS_VERSION 1u

#include <stddef.h>
/* the c_* fields of struct shm_stats_raft, in order, before the gauges */
#define RAFT_COUNTERS (offsetof(struct shm_stats_raft, g_waiters) / sizeof(uint64_t))
#define RAFT_GAUGES 2 /* the g_* fields */
_Static_assert(sizeof(struct shm_stats_raft) == (RAFT_COUNTERS + RAFT_GAUGES) * 8,
               "shm_stats_raft is copied as 64-bit words");

/* One worker's counters. _Alignas makes the size a multiple of 64, so slot
 * k + 1 starts on a fresh cache line. */
struct stats_slot {
    _Alignas(64) _Atomic uint64_t requests[SHM_STATS_ROUTES][SHM_STATS_METHODS][SHM_STATS_CODES];
    _Atomic uint64_t buckets[SHM_STATS_ROUTES][SHM_STATS_BUCKETS];
    _Atomic uint64_t sum_ns[SHM_STATS_ROUTES];
    _Atomic int32_t pid; /* the process that last claimed the slot */
};

struct stats_raft_slot {
    _Alignas(64) _Atomic uint64_t total[RAFT_COUNTERS + RAFT_GAUGES]; /* what readers see */
    uint64_t base[RAFT_COUNTERS]; /* totals when the current raftproc started; its own */
    _Atomic int32_t pid;
};

struct shm_stats {
    uint64_t magic;
    uint32_t version;
    uint32_t size;
    _Alignas(64) _Atomic uint64_t restarts[2]; /* by enum shm_stats_kind */
    _Atomic int log_level;                     /* set by the master (lockctl log-level); -1: none */
    struct stats_raft_slot raft;
    struct stats_slot slots[SHM_STATS_SLOTS];
};

int shm_stats_create(shm_stats **out)
{
    /* Zero-filled and only backed where written. Not MAP_NORESERVE: it is
     * small (about 10 KiB per slot) and every process may write it. */
    void *p = mmap(NULL, sizeof(struct shm_stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -LOCKD_ENOMEM;
    shm_stats *s = p;
    s->magic = STATS_MAGIC;
    s->version = STATS_VERSION;
    s->size = (uint32_t)sizeof *s;
    atomic_store_explicit(&s->log_level, -1, memory_order_relaxed);
    *out = s;
    return 0;
}

void shm_stats_destroy(shm_stats *s)
{
    if (s != NULL)
        munmap(s, sizeof *s);
}

static inline unsigned clamp(unsigned v, unsigned cap)
{
    return v < cap ? v : cap - 1;
}

void shm_stats_http_record(shm_stats *s, unsigned slot, unsigned route, unsigned method, unsigned code, unsigned bucket,
                           uint64_t ns)
{
    if (s == NULL || slot >= SHM_STATS_SLOTS)
        return;
    struct stats_slot *sl = &s->slots[slot];
    route = clamp(route, SHM_STATS_ROUTES);
    atomic_fetch_add_explicit(&sl->requests[route][clamp(method, SHM_STATS_METHODS)][clamp(code, SHM_STATS_CODES)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&sl->buckets[route][clamp(bucket, SHM_STATS_BUCKETS)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sl->sum_ns[route], ns, memory_order_relaxed);
}

void shm_stats_http_sum(const shm_stats *s, struct shm_stats_http *out)
{
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return;
    /* Visits SHM_STATS_SLOTS * ~1200 words: ~80k loads, tens of microseconds. */
    for (unsigned k = 0; k < SHM_STATS_SLOTS; k++) {
        const struct stats_slot *sl = &s->slots[k];
        for (unsigned r = 0; r < SHM_STATS_ROUTES; r++) {
            for (unsigned m = 0; m < SHM_STATS_METHODS; m++)
                for (unsigned c = 0; c < SHM_STATS_CODES; c++)
                    out->requests[r][m][c] += atomic_load_explicit(&sl->requests[r][m][c], memory_order_relaxed);
            for (unsigned b = 0; b < SHM_STATS_BUCKETS; b++)
                out->buckets[r][b] += atomic_load_explicit(&sl->buckets[r][b], memory_order_relaxed);
            out->sum_ns[r] += atomic_load_explicit(&sl->sum_ns[r], memory_order_relaxed);
        }
    }
}

pid_t shm_stats_claim(shm_stats *s, enum shm_stats_kind kind, unsigned slot, pid_t pid)
{
    if (s == NULL)
        return 0;
    _Atomic int32_t *p;
    if (kind == SHM_STATS_RAFT)
        p = &s->raft.pid;
    else if (slot < SHM_STATS_SLOTS)
        p = &s->slots[slot].pid;
    else
        return 0;
    return (pid_t)atomic_exchange_explicit(p, (int32_t)pid, memory_order_relaxed);
}

void shm_stats_count_restart(shm_stats *s, enum shm_stats_kind kind)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->restarts[kind == SHM_STATS_RAFT], 1, memory_order_relaxed);
}

uint64_t shm_stats_restarts(const shm_stats *s, enum shm_stats_kind kind)
{
    return s == NULL ? 0 : atomic_load_explicit(&s->restarts[kind == SHM_STATS_RAFT], memory_order_relaxed);
}

void shm_stats_raft_started(shm_stats *s, pid_t pid)
{
    if (s == NULL)
        return;
    /* raftproc has no graceful restart: any earlier holder died (or was
     * stopped) and the master started us in its place. */
    if (shm_stats_claim(s, SHM_STATS_RAFT, 0, pid) != 0)
        shm_stats_count_restart(s, SHM_STATS_RAFT);
    for (unsigned i = 0; i < RAFT_COUNTERS; i++)
        s->raft.base[i] = atomic_load_explicit(&s->raft.total[i], memory_order_relaxed);
}

void shm_stats_publish_raft(shm_stats *s, const struct shm_stats_raft *cur)
{
    if (s == NULL)
        return;
    uint64_t w[RAFT_COUNTERS + RAFT_GAUGES];
    memcpy(w, cur, sizeof w);
    for (unsigned i = 0; i < RAFT_COUNTERS + RAFT_GAUGES; i++) {
        uint64_t v = i < RAFT_COUNTERS ? s->raft.base[i] + w[i] : w[i];
        if (i < RAFT_COUNTERS && v < atomic_load_explicit(&s->raft.total[i], memory_order_relaxed))
            continue; /* never let a counter go back (a caller's counter reset) */
        atomic_store_explicit(&s->raft.total[i], v, memory_order_relaxed);
    }
}

void shm_stats_read_raft(const shm_stats *s, struct shm_stats_raft *out)
{
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return;
    uint64_t w[RAFT_COUNTERS + RAFT_GAUGES];
    for (unsigned i = 0; i < RAFT_COUNTERS + RAFT_GAUGES; i++)
        w[i] = atomic_load_explicit(&s->raft.total[i], memory_order_relaxed);
    memcpy(out, w, sizeof w);
}

void shm_stats_set_log_level(shm_stats *s, int level)
{
    atomic_store_explicit(&s->log_level, level, memory_order_relaxed);
}

int shm_stats_log_level(const shm_stats *s)
{
    return atomic_load_explicit(&((shm_stats *)s)->log_level, memory_order_relaxed);
}
