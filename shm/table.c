/* shm/table.c: the only code that knows the layout of the shared lock table
 * (header, index, records, arena) and its seqlock protocol. Readers never
 * block, never write shared memory and never trust a byte they have not
 * validated; the single writer never waits for a reader.
 *
 * Memory ordering, in one place (Boehm, "Can Seqlocks Get Along With
 * Programming Language Memory Models?", MSPC 2012): every shared word is a C11
 * atomic, so a reader racing the writer reads stale or mixed values but never
 * has undefined behaviour; the sequence counters decide which copies count.
 *   writer: seq = s|1 (relaxed); fence(release); data stores (relaxed);
 *           seq = (s|1)+1 (release)
 *   reader: s1 = seq (acquire), retry if odd; data loads (relaxed);
 *           fence(acquire); s2 = seq (relaxed); use the copy only if s1 == s2
 * If the reader saw any store made after the writer's release fence, its
 * acquire fence makes the later load of seq see at least the odd value, so
 * s1 != s2. The same recipe guards each record (rec->seq), the node status
 * (status_seq) and the index as a whole (index_seq, bumped around backward
 * shifts and clear; inserts only fill an empty bucket, which a reader either
 * sees or does not, so they need no bump). */
#include "shm/table.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"

#define SHM_MAGIC 0x4d4853444b434f4cull /* "LOCKDSHM" in little-endian memory */
#define SHM_LAYOUT_VERSION 2u
#define SHM_MAX_LOCKS (1u << 28)

/* Regions start at 64 KiB boundaries so that madvise(MADV_REMOVE) can punch
 * each one on any page size Linux uses (4, 16 or 64 KiB). */
#define REGION_ALIGN (64u * 1024)

/* Arena blocks are 1..16 units of 16 bytes: name + owner is 1..256 bytes. */
#define UNIT 16u
#define CLASSES ((LOCKD_NAME_MAX + LOCKD_OWNER_MAX + UNIT - 1) / UNIT)
#define BYTES_WORDS ((LOCKD_NAME_MAX + LOCKD_OWNER_MAX + 7) / 8)

/* A reader gives up after this many inconsistent copies (each one means the
 * writer was mid-update, which lasts well under a microsecond). */
#define READ_RETRIES 10000

/* Timestamps and the revision are stored in 48 bits (year 10889; 2.8e14 Raft
 * entries) so that a record fits in 40 bytes: see struct shm_rec. */
#define BITS48 ((1ull << 48) - 1)

/* Lock-free, and (true on x86-64 and AArch64, the targets we build for) a
 * 64-bit atomic load is a plain load: workers read through a PROT_READ
 * mapping, where a load implemented with a store-conditional would fault. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2,
               "the seqlocks in shared memory need lock-free 32/64-bit atomics");
_Static_assert(sizeof(shm_node_status) % 8 == 0, "status is copied as 64-bit words");
#define STATUS_WORDS (sizeof(shm_node_status) / 8)

/* One lock. 40 bytes, so that a million locks with 20-byte names touch
 * 16 MiB of index + 38 MiB of records + 31 MiB of arena = 85 MiB (measured). A free record has
 * name_len 0 (no lookup matches it) and links the free list through off. */
struct shm_rec {
    _Atomic uint32_t seq; /* odd while the writer changes the record */
    _Atomic uint32_t off; /* arena block, in units; next free id + 1 if free */
    _Atomic uint64_t token;
    _Atomic uint64_t rev; /* revision (bits 0-47) | name_len (48-55) | owner_len (56-63) */
    _Atomic uint64_t acq; /* acquired_at_ms (0-47) | ttl_ms bits 0-15 (48-63) */
    _Atomic uint64_t ren; /* renewed_at_ms (0-47) | ttl_ms bits 16-31 (48-63) */
};
_Static_assert(sizeof(struct shm_rec) == 40, "record layout");

/* The writer's allocator state. It lives in the segment (not the handle) so
 * that a restarted raftproc sees the state of the mapping it inherits; it
 * calls shm_table_clear before trusting it anyway. Readers never look. */
struct shm_alloc {
    uint32_t rec_bump;                /* records [0, rec_bump) have been used */
    uint32_t rec_free;                /* free record id + 1, 0: none */
    uint64_t arena_bump;              /* next never-used unit; unit 0 is "null" */
    uint32_t class_free[CLASSES + 1]; /* per size class, free block unit, 0: none */
};

struct shm_header {
    /* Immutable after shm_table_create. */
    uint64_t magic;
    uint32_t version;
    uint32_t capacity;
    uint64_t buckets; /* power of two */
    uint64_t index_off, records_off, arena_off, arena_units, total_size;
    uint64_t hash_k0, hash_k1; /* random per segment: names cannot be chosen to collide */

    /* Read by every lookup; written by remove, clear and set_state. */
    _Alignas(64) _Atomic uint64_t index_seq;
    _Atomic uint32_t state;
    _Atomic uint64_t clear_gen; /* bumped by every clear: scans check it */

    /* Written by every insert and remove. */
    _Alignas(64) _Atomic uint32_t count;
    _Atomic uint32_t rec_high; /* records [0, rec_high) may be in use: what a scan walks */

    /* Node status under its own seqlock. */
    _Alignas(64) _Atomic uint64_t status_seq;
    _Atomic uint64_t status[STATUS_WORDS];

    _Alignas(64) struct shm_alloc alloc;
};

struct shm_table {
    unsigned char *base;
    size_t size;
    struct shm_header *hdr;
    _Atomic uint64_t *index;
    struct shm_rec *recs;
    _Atomic uint64_t *arena; /* as 64-bit words; unit u starts at word 2u */
    uint64_t mask;           /* buckets - 1 */
    uint64_t arena_words;
    uint64_t k0, k1;
    uint32_t capacity;
    shm_stats *stats; /* the /metrics segment, created and destroyed with the table */
};

struct layout {
    uint64_t buckets, index_off, records_off, arena_off, arena_units, total;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static int layout_for(uint32_t max_locks, struct layout *l)
{
    if (max_locks == 0 || max_locks > SHM_MAX_LOCKS)
        return -LOCKD_EINVAL;
    /* Load factor <= 0.7, and always one empty bucket so probes end. */
    uint64_t need = ((uint64_t)max_locks * 10 + 6) / 7;
    l->buckets = 1;
    while (l->buckets < need || l->buckets <= max_locks)
        l->buckets <<= 1;
    l->index_off = align_up(sizeof(struct shm_header), REGION_ALIGN);
    l->records_off = align_up(l->index_off + l->buckets * 8, REGION_ALIGN);
    l->arena_off = align_up(l->records_off + (uint64_t)max_locks * sizeof(struct shm_rec), REGION_ALIGN);
    /* Blocks never change class, and a class only grows past its free list
     * when all its blocks are in use, so class c never holds more than
     * max_locks + 1 blocks (+1: a replace allocates before it frees). Summed
     * over c = 1..16 units that is 136 * (max_locks + 1) units: the arena can
     * then never run out while count < capacity. The reservation is virtual
     * (MAP_NORESERVE); only used blocks are backed. Offsets are 32-bit, which
     * caps the guarantee at ~31.5M locks; above that a pathological mix of
     * sizes could make put return -LOCKD_EFULL early (alloc splits larger
     * free blocks before it gives up). */
    uint64_t units = CLASSES * (CLASSES + 1) / 2 * ((uint64_t)max_locks + 1) + 1;
    l->arena_units = units < UINT32_MAX ? units : UINT32_MAX;
    l->total = align_up(l->arena_off + l->arena_units * UNIT, REGION_ALIGN);
    return 0;
}

size_t shm_table_segment_size(uint32_t max_locks)
{
    struct layout l;
    return layout_for(max_locks, &l) == 0 ? (size_t)l.total : 0;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- hash ---------------------------------------------------------------- */

/* 64x64->128 multiply folded to 64 bits: the mixing step of the wyhash family.
 * Each multiply takes one operand that mixes in a secret key, so an attacker
 * cannot zero it to make the state collapse. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t name_hash(const shm_table *t, const char *name, size_t len)
{
    const unsigned char *p = (const unsigned char *)name;
    uint64_t h = t->k0 ^ (len * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; len - i > 16; i += 16)
        h = mum(rd64(p + i) ^ t->k1, rd64(p + i + 8) ^ h);
    uint64_t a = 0, b = 0;
    size_t rem = len - i;
    memcpy(&a, p + i, rem < 8 ? rem : 8);
    if (rem > 8)
        memcpy(&b, p + i + 8, rem - 8);
    h = mum(a ^ t->k1, b ^ h);
    return mum(h ^ 0xc2b2ae3d27d4eb4full, len ^ 0x165667b19e3779f9ull);
}

/* The bucket word keeps the top 32 bits of the hash; its low bits are also
 * the home bucket (buckets <= 2^29), which the backward shift needs. */
static inline uint32_t hash_tag(uint64_t h)
{
    return (uint32_t)(h >> 32);
}

/* ---- seqlock helpers ------------------------------------------------------ */

/* "|1": a raftproc that died mid-update left the counter odd; the next
 * writer keeps it odd rather than making it even with half-written data. */
static inline uint32_t rec_write_begin(struct shm_rec *r)
{
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed) | 1u;
    atomic_store_explicit(&r->seq, s, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    return s;
}

static inline void rec_write_end(struct shm_rec *r, uint32_t s)
{
    atomic_store_explicit(&r->seq, s + 1, memory_order_release);
}

static inline uint64_t seq64_begin(_Atomic uint64_t *seq)
{
    uint64_t s = atomic_load_explicit(seq, memory_order_relaxed) | 1u;
    atomic_store_explicit(seq, s, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    return s;
}

static inline void seq64_end(_Atomic uint64_t *seq, uint64_t s)
{
    atomic_store_explicit(seq, s + 1, memory_order_release);
}

/* ---- create / destroy ---------------------------------------------------- */

static void random_keys(uint64_t k[2])
{
    if (getrandom(k, 2 * sizeof k[0], GRND_NONBLOCK) == (ssize_t)(2 * sizeof k[0]))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16);
    k[0] = mum(x ^ 0xd6e8feb86659fd93ull, 0x9e3779b97f4a7c15ull);
    k[1] = mum(k[0] ^ 0xa5a5a5a5a5a5a5a5ull, 0xc2b2ae3d27d4eb4full);
}

static void handle_init(shm_table *t, unsigned char *base, size_t size)
{
    struct shm_header *h = (struct shm_header *)base;
    t->base = base;
    t->size = size;
    t->hdr = h;
    t->index = (_Atomic uint64_t *)(base + h->index_off);
    t->recs = (struct shm_rec *)(base + h->records_off);
    t->arena = (_Atomic uint64_t *)(base + h->arena_off);
    t->mask = h->buckets - 1;
    t->arena_words = h->arena_units * 2;
    t->k0 = h->hash_k0;
    t->k1 = h->hash_k1;
    t->capacity = h->capacity;
}

int shm_table_create(uint32_t max_locks, shm_table **out)
{
    struct layout l;
    if (out == NULL || layout_for(max_locks, &l) != 0)
        return -LOCKD_EINVAL;
    shm_table *t = malloc(sizeof *t);
    if (t == NULL)
        return -LOCKD_ENOMEM;
    void *base = mmap(NULL, (size_t)l.total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        free(t);
        return -LOCKD_ENOMEM;
    }
    /* Created here so that whoever creates the table before forking (the
     * master) shares the counters with every child without knowing them. */
    shm_stats *stats;
    if (shm_stats_create(&stats) != 0) {
        munmap(base, (size_t)l.total);
        free(t);
        return -LOCKD_ENOMEM;
    }
    /* The mapping is zero-filled: every bucket is empty, every record free.
     * Nobody else can see it yet, so plain initialisation is fine. */
    struct shm_header *h = base;
    h->magic = SHM_MAGIC;
    h->version = SHM_LAYOUT_VERSION;
    h->capacity = max_locks;
    h->buckets = l.buckets;
    h->index_off = l.index_off;
    h->records_off = l.records_off;
    h->arena_off = l.arena_off;
    h->arena_units = l.arena_units;
    h->total_size = l.total;
    uint64_t k[2];
    random_keys(k);
    h->hash_k0 = k[0];
    h->hash_k1 = k[1] | 1;
    atomic_init(&h->index_seq, 0);
    atomic_init(&h->state, SHM_STATE_LOADING);
    atomic_init(&h->clear_gen, 0);
    atomic_init(&h->count, 0);
    atomic_init(&h->rec_high, 0);
    atomic_init(&h->status_seq, 0);
    h->alloc.arena_bump = 1;
    handle_init(t, base, (size_t)l.total);
    t->stats = stats;
    *out = t;
    return 0;
}

void shm_table_destroy(shm_table *t)
{
    if (t == NULL)
        return;
    munmap(t->base, t->size);
    shm_stats_destroy(t->stats);
    free(t);
}

int shm_table_make_readonly(shm_table *t)
{
    return mprotect(t->base, t->size, PROT_READ) == 0 ? 0 : -LOCKD_EIO;
}

uint32_t shm_table_capacity(const shm_table *t)
{
    return t->capacity;
}

uint32_t shm_table_count(const shm_table *t)
{
    return atomic_load_explicit(&t->hdr->count, memory_order_relaxed);
}

shm_stats *shm_table_stats(const shm_table *t)
{
    return t->stats;
}

/* ---- records ------------------------------------------------------------- */

static inline unsigned rev_name_len(uint64_t rev)
{
    return (unsigned)(rev >> 48) & 0xff;
}
static inline unsigned rev_owner_len(uint64_t rev)
{
    return (unsigned)(rev >> 56);
}
static inline unsigned class_of(unsigned bytes)
{
    return (bytes + UNIT - 1) / UNIT;
}

static void fill_lock(shm_lock *out, const uint64_t *bytes, unsigned nl, unsigned ol, uint64_t token, uint64_t rev,
                      uint64_t acq, uint64_t ren)
{
    const char *b = (const char *)bytes;
    memcpy(out->name, b, nl);
    out->name[nl] = '\0';
    memcpy(out->owner, b + nl, ol);
    out->owner[ol] = '\0';
    out->name_len = (uint8_t)nl;
    out->owner_len = (uint8_t)ol;
    out->token = token;
    out->revision = rev & BITS48;
    out->acquired_at_ms = acq & BITS48;
    out->renewed_at_ms = ren & BITS48;
    out->ttl_ms = (acq >> 48) | ((ren >> 48) << 16);
}

enum { REC_MATCH, REC_OTHER, REC_TORN };

/* Takes a consistent copy of record id into *out if it holds name[0..len),
 * or, with name == NULL, any name (REC_OTHER then means a free record).
 * REC_OTHER is only returned for a validated copy: a torn read of the very
 * record we look for must not pass for "some other name". */
static int rec_read(const shm_table *t, uint32_t id, const char *name, size_t len, shm_lock *out)
{
    const struct shm_rec *r = &t->recs[id];
    uint32_t s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
    if (s1 & 1)
        return REC_TORN;
    uint64_t off = atomic_load_explicit(&r->off, memory_order_relaxed);
    uint64_t token = atomic_load_explicit(&r->token, memory_order_relaxed);
    uint64_t rev = atomic_load_explicit(&r->rev, memory_order_relaxed);
    uint64_t acq = atomic_load_explicit(&r->acq, memory_order_relaxed);
    uint64_t ren = atomic_load_explicit(&r->ren, memory_order_relaxed);
    unsigned nl = rev_name_len(rev), ol = rev_owner_len(rev);
    uint64_t bytes[BYTES_WORDS];
    bool wanted = name == NULL ? nl != 0 : nl == len;
    if (wanted) {
        /* The fields may be garbage mid-update: bounds first, then copy. */
        if (nl > LOCKD_NAME_MAX || ol > LOCKD_OWNER_MAX)
            return REC_TORN;
        uint64_t nw = (nl + ol + 7) / 8;
        if (off == 0 || off * 2 + nw > t->arena_words)
            return REC_TORN;
        for (uint64_t i = 0; i < nw; i++)
            bytes[i] = atomic_load_explicit(&t->arena[off * 2 + i], memory_order_relaxed);
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s1)
        return REC_TORN;
    if (!wanted || (name != NULL && memcmp(bytes, name, len) != 0))
        return REC_OTHER;
    fill_lock(out, bytes, nl, ol, token, rev, acq, ren);
    return REC_MATCH;
}

static int table_lookup(const shm_table *t, const char *name, size_t len, shm_lock *out, bool any_state)
{
    if (name == NULL || len == 0 || len > LOCKD_NAME_MAX)
        return -LOCKD_ENOENT; /* no such name can be held */
    uint64_t h = name_hash(t, name, len);
    uint32_t tag = hash_tag(h);
    for (int attempt = 0; attempt < READ_RETRIES; attempt++) {
        if (attempt > 0)
            cpu_relax();
        uint64_t s1 = atomic_load_explicit(&t->hdr->index_seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        /* After s1: clear() stores LOADING before it bumps index_seq, so a
         * reader that got a post-clear s1 also sees LOADING. */
        if (!any_state && atomic_load_explicit(&t->hdr->state, memory_order_relaxed) != SHM_STATE_READY)
            return -LOCKD_EAGAIN;
        int res = -LOCKD_ENOENT;
        bool torn = false;
        uint64_t i = tag & t->mask;
        /* Visits at most every bucket once; in a consistent index the run
         * ends at an empty bucket long before. */
        for (uint64_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
            uint64_t b = atomic_load_explicit(&t->index[i], memory_order_acquire);
            if (b == 0)
                break;
            if ((uint32_t)(b >> 32) != tag)
                continue;
            uint32_t id = (uint32_t)b - 1;
            int r = id < t->capacity ? rec_read(t, id, name, len, out) : REC_TORN;
            if (r == REC_MATCH) {
                res = 0;
                break;
            }
            if (r == REC_TORN) {
                torn = true;
                break;
            }
        }
        if (torn)
            continue;
        /* A backward shift may have moved our entry behind us (a false
         * ENOENT), and clear() restarts record counters from zero (an ABA on
         * rec->seq): both bump index_seq, so every answer is checked. */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&t->hdr->index_seq, memory_order_relaxed) != s1)
            continue;
        return res;
    }
    return -LOCKD_EAGAIN;
}

int shm_table_lookup(const shm_table *t, const char *name, size_t len, shm_lock *out)
{
    return table_lookup(t, name, len, out, false);
}

int shm_table_get(const shm_table *t, const char *name, size_t len, shm_lock *out)
{
    return table_lookup(t, name, len, out, true);
}

void shm_table_status(const shm_table *t, shm_node_status *out)
{
    const struct shm_header *h = t->hdr;
    uint64_t w[STATUS_WORDS];
    for (int attempt = 0; attempt < READ_RETRIES; attempt++) {
        uint64_t s1 = atomic_load_explicit(&h->status_seq, memory_order_acquire);
        if (s1 & 1) {
            cpu_relax();
            continue;
        }
        for (size_t i = 0; i < STATUS_WORDS; i++)
            w[i] = atomic_load_explicit(&h->status[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->status_seq, memory_order_relaxed) == s1) {
            memcpy(out, w, sizeof *out);
            out->leader_address[sizeof out->leader_address - 1] = '\0';
            out->state = atomic_load_explicit(&h->state, memory_order_acquire);
            return;
        }
    }
    /* Only a writer that died mid-publish gets here: report "unavailable". */
    memset(out, 0, sizeof *out);
    out->state = atomic_load_explicit(&h->state, memory_order_acquire);
}

/* ---- readers: scan ----------------------------------------------------- */

/* A record still mid-update after READ_RETRIES spins is put aside and tried
 * again at the end of the walk: its writer was most likely preempted in the
 * middle of an update (common on a busy 2-core machine) and needs the CPU
 * back, not more spinning. At most SCAN_DEFERRED records, each retried with
 * sched_yield for up to SCAN_DEFER_MS in all. */
#define SCAN_DEFERRED 64
#define SCAN_DEFER_MS 50

static uint64_t scan_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Copies record id whatever it holds (rec_read with no name), spinning up
 * to READ_RETRIES times while it is torn. REC_OTHER: the record is free. */
static int rec_copy_spin(const shm_table *t, uint32_t id, shm_lock *out)
{
    int r = REC_TORN;
    for (int attempt = 0; attempt < READ_RETRIES && r == REC_TORN; attempt++) {
        if (attempt > 0)
            cpu_relax();
        r = rec_read(t, id, NULL, 0, out);
    }
    return r;
}

/* Why this is enough for "held throughout => passed once": a held record
 * keeps its id until it is removed (a replace rewrites it in place), and ids
 * below rec_high stay below it until a clear, which the generation check
 * catches. Each id is copied at one instant (now or, deferred, at the end),
 * so it is passed at most once. */
int shm_table_scan(const shm_table *t, int (*fn)(const shm_lock *rec, void *arg), void *arg)
{
    const struct shm_header *h = t->hdr;
    uint64_t gen = atomic_load_explicit(&h->clear_gen, memory_order_acquire);
    if (atomic_load_explicit(&h->state, memory_order_acquire) != SHM_STATE_READY)
        return -LOCKD_EAGAIN;
    uint32_t high = atomic_load_explicit(&h->rec_high, memory_order_acquire);
    if (high > t->capacity)
        high = t->capacity;
    uint32_t deferred[SCAN_DEFERRED];
    unsigned n_deferred = 0;
    shm_lock l;
    for (uint32_t id = 0; id < high; id++) {
        int r = rec_copy_spin(t, id, &l);
        if (r == REC_TORN) {
            if (n_deferred == SCAN_DEFERRED)
                return -LOCKD_EAGAIN;
            deferred[n_deferred++] = id;
            continue;
        }
        if (r == REC_OTHER)
            continue;
        int rc = fn(&l, arg);
        if (rc != 0)
            return rc;
    }
    uint64_t deadline = n_deferred ? scan_now_ms() + SCAN_DEFER_MS : 0;
    for (unsigned i = 0; i < n_deferred; i++) {
        int r;
        while ((r = rec_copy_spin(t, deferred[i], &l)) == REC_TORN) {
            /* A writer that died mid-update never finishes: give up. */
            if (scan_now_ms() >= deadline)
                return -LOCKD_EAGAIN;
            sched_yield();
        }
        if (r == REC_OTHER)
            continue;
        int rc = fn(&l, arg);
        if (rc != 0)
            return rc;
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&h->clear_gen, memory_order_relaxed) != gen ||
        atomic_load_explicit(&h->state, memory_order_relaxed) != SHM_STATE_READY)
        return -LOCKD_EAGAIN;
    return 0;
}

/* ---- writer: allocation -------------------------------------------------- */

/* Returns the first unit of a free block of cls units, or 0 if the arena is
 * exhausted (see layout_for: impossible below ~31.5M locks). */
static uint32_t arena_alloc(shm_table *t, unsigned cls)
{
    struct shm_alloc *a = &t->hdr->alloc;
    uint32_t off = a->class_free[cls];
    if (off != 0) {
        a->class_free[cls] = (uint32_t)atomic_load_explicit(&t->arena[(uint64_t)off * 2], memory_order_relaxed);
        return off;
    }
    if (a->arena_bump + cls <= t->hdr->arena_units) {
        off = (uint32_t)a->arena_bump;
        a->arena_bump += cls;
        return off;
    }
    for (unsigned c = cls + 1; c <= CLASSES; c++) {
        off = a->class_free[c];
        if (off == 0)
            continue;
        a->class_free[c] = (uint32_t)atomic_load_explicit(&t->arena[(uint64_t)off * 2], memory_order_relaxed);
        uint32_t rest = off + cls;
        atomic_store_explicit(&t->arena[(uint64_t)rest * 2], a->class_free[c - cls], memory_order_relaxed);
        a->class_free[c - cls] = rest;
        return off;
    }
    return 0;
}

/* The block may still be read by a reader holding a stale offset; that
 * reader's record seq has moved on, so reusing the block at once is safe. */
static void arena_free(shm_table *t, uint32_t off, unsigned cls)
{
    struct shm_alloc *a = &t->hdr->alloc;
    atomic_store_explicit(&t->arena[(uint64_t)off * 2], a->class_free[cls], memory_order_relaxed);
    a->class_free[cls] = off;
}

/* Callers guarantee count < capacity, so one of the two always succeeds. */
static uint32_t rec_alloc(shm_table *t)
{
    struct shm_alloc *a = &t->hdr->alloc;
    if (a->rec_free != 0) {
        uint32_t id = a->rec_free - 1;
        a->rec_free = atomic_load_explicit(&t->recs[id].off, memory_order_relaxed);
        return id;
    }
    /* Before the record is written: a scan that sees the new bound reads
     * the record as free, or as mid-update and retries, or finished. */
    atomic_store_explicit(&t->hdr->rec_high, a->rec_bump + 1, memory_order_release);
    return a->rec_bump++;
}

static void rec_release(shm_table *t, uint32_t id)
{
    struct shm_alloc *a = &t->hdr->alloc;
    struct shm_rec *r = &t->recs[id];
    uint32_t s = rec_write_begin(r);
    atomic_store_explicit(&r->rev, 0, memory_order_relaxed); /* name_len 0: matches nothing */
    atomic_store_explicit(&r->off, a->rec_free, memory_order_relaxed);
    rec_write_end(r, s);
    a->rec_free = id + 1;
}

/* ---- writer: index ------------------------------------------------------- */

static bool rec_has_name(const shm_table *t, uint32_t id, const char *name, size_t len)
{
    const struct shm_rec *r = &t->recs[id];
    uint64_t rev = atomic_load_explicit(&r->rev, memory_order_relaxed);
    if (rev_name_len(rev) != len)
        return false;
    uint64_t off = atomic_load_explicit(&r->off, memory_order_relaxed);
    uint64_t bytes[BYTES_WORDS];
    for (uint64_t i = 0; i < (len + 7) / 8; i++)
        bytes[i] = atomic_load_explicit(&t->arena[off * 2 + i], memory_order_relaxed);
    return memcmp(bytes, name, len) == 0;
}

/* Writer-side probe: true and *pos, *id if name is present, else false and
 * *pos = the empty bucket that ends its run (where an insert goes). */
static bool index_find(const shm_table *t, const char *name, size_t len, uint32_t tag, uint64_t *pos, uint32_t *id)
{
    uint64_t i = tag & t->mask;
    for (;;) {
        uint64_t b = atomic_load_explicit(&t->index[i], memory_order_relaxed);
        if (b == 0) {
            *pos = i;
            return false;
        }
        if ((uint32_t)(b >> 32) == tag && rec_has_name(t, (uint32_t)b - 1, name, len)) {
            *pos = i;
            *id = (uint32_t)b - 1;
            return true;
        }
        i = (i + 1) & t->mask;
    }
}

/* Empties bucket i and closes the gap (Knuth vol. 3, 6.4 Algorithm R): each
 * later entry of the run whose home is not cyclically in (i, j] moves back
 * into the hole. Must run between index_seq begin/end. */
static void index_delete(shm_table *t, uint64_t i)
{
    const uint64_t mask = t->mask;
    uint64_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t b = atomic_load_explicit(&t->index[j], memory_order_relaxed);
        if (b == 0)
            break;
        uint64_t home = (b >> 32) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            atomic_store_explicit(&t->index[i], b, memory_order_release);
            i = j;
        }
    }
    atomic_store_explicit(&t->index[i], 0, memory_order_release);
}

/* ---- writer: public ------------------------------------------------------ */

static void rec_store(shm_table *t, struct shm_rec *r, const shm_lock *src, uint32_t off)
{
    unsigned nl = src->name_len, ol = src->owner_len;
    uint64_t bytes[BYTES_WORDS] = {0};
    memcpy(bytes, src->name, nl);
    memcpy((char *)bytes + nl, src->owner, ol);
    for (unsigned i = 0; i < (nl + ol + 7) / 8; i++)
        atomic_store_explicit(&t->arena[(uint64_t)off * 2 + i], bytes[i], memory_order_relaxed);
    uint64_t ttl = src->ttl_ms;
    atomic_store_explicit(&r->off, off, memory_order_relaxed);
    atomic_store_explicit(&r->token, src->token, memory_order_relaxed);
    atomic_store_explicit(&r->rev, src->revision | (uint64_t)nl << 48 | (uint64_t)ol << 56, memory_order_relaxed);
    atomic_store_explicit(&r->acq, src->acquired_at_ms | (ttl & 0xffff) << 48, memory_order_relaxed);
    atomic_store_explicit(&r->ren, src->renewed_at_ms | (ttl >> 16) << 48, memory_order_relaxed);
}

int shm_table_put(shm_table *t, const shm_lock *rec)
{
    if (rec == NULL || rec->name_len == 0 || rec->name_len > LOCKD_NAME_MAX || rec->owner_len > LOCKD_OWNER_MAX ||
        rec->ttl_ms > UINT32_MAX || rec->acquired_at_ms > BITS48 || rec->renewed_at_ms > BITS48 ||
        rec->revision > BITS48)
        return -LOCKD_EINVAL;
    unsigned cls = class_of(rec->name_len + rec->owner_len);
    uint32_t tag = hash_tag(name_hash(t, rec->name, rec->name_len));
    uint64_t pos;
    uint32_t id;
    if (index_find(t, rec->name, rec->name_len, tag, &pos, &id)) {
        /* Replace. Same size class: rewrite the block in place under the
         * record's seqlock. Otherwise switch to a new block under the
         * seqlock and free the old one after. */
        struct shm_rec *r = &t->recs[id];
        uint64_t rev = atomic_load_explicit(&r->rev, memory_order_relaxed);
        unsigned old_cls = class_of(rev_name_len(rev) + rev_owner_len(rev));
        uint32_t old_off = atomic_load_explicit(&r->off, memory_order_relaxed);
        uint32_t off = old_off;
        if (cls != old_cls && (off = arena_alloc(t, cls)) == 0)
            return -LOCKD_EFULL;
        uint32_t s = rec_write_begin(r);
        rec_store(t, r, rec, off);
        rec_write_end(r, s);
        if (cls != old_cls)
            arena_free(t, old_off, old_cls);
        return 0;
    }
    uint32_t count = atomic_load_explicit(&t->hdr->count, memory_order_relaxed);
    if (count >= t->capacity)
        return -LOCKD_EFULL;
    uint32_t off = arena_alloc(t, cls);
    if (off == 0)
        return -LOCKD_EFULL;
    id = rec_alloc(t);
    struct shm_rec *r = &t->recs[id];
    uint32_t s = rec_write_begin(r);
    rec_store(t, r, rec, off);
    rec_write_end(r, s);
    /* Release: a reader that sees the bucket sees the finished record. */
    atomic_store_explicit(&t->index[pos], (uint64_t)tag << 32 | (id + 1), memory_order_release);
    atomic_store_explicit(&t->hdr->count, count + 1, memory_order_relaxed);
    return 0;
}

int shm_table_remove(shm_table *t, const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > LOCKD_NAME_MAX)
        return -LOCKD_ENOENT;
    uint32_t tag = hash_tag(name_hash(t, name, len));
    uint64_t pos;
    uint32_t id;
    if (!index_find(t, name, len, tag, &pos, &id))
        return -LOCKD_ENOENT;
    uint64_t s = seq64_begin(&t->hdr->index_seq);
    index_delete(t, pos);
    seq64_end(&t->hdr->index_seq, s);

    struct shm_rec *r = &t->recs[id];
    uint64_t rev = atomic_load_explicit(&r->rev, memory_order_relaxed);
    uint32_t off = atomic_load_explicit(&r->off, memory_order_relaxed);
    rec_release(t, id);
    arena_free(t, off, class_of(rev_name_len(rev) + rev_owner_len(rev)));
    uint32_t count = atomic_load_explicit(&t->hdr->count, memory_order_relaxed);
    atomic_store_explicit(&t->hdr->count, count - 1, memory_order_relaxed);
    return 0;
}

/* Gives the pages of [p, p + len) back to the kernel; they read as zeros. */
static int punch(void *p, uint64_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    if (len == 0)
        return 0;
    /* Regions are REGION_ALIGN-aligned, so rounding up stays in the region. */
    len = align_up(len, page > 0 ? (uint64_t)page : 4096);
    return madvise(p, (size_t)len, MADV_REMOVE);
}

void shm_table_clear(shm_table *t)
{
    struct shm_header *h = t->hdr;
    struct shm_alloc *a = &h->alloc;
    atomic_store_explicit(&h->state, SHM_STATE_LOADING, memory_order_relaxed);
    /* Scans walk records without the index: the generation tells them that
     * records were punched (their counters restart at 0) under them. The
     * release fence orders the bump before everything clear changes. */
    atomic_fetch_add_explicit(&h->clear_gen, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    uint64_t s = seq64_begin(&h->index_seq);
    if (punch(t->index, (h->buckets) * 8) != 0) {
        for (uint64_t i = 0; i <= t->mask; i++)
            atomic_store_explicit(&t->index[i], 0, memory_order_relaxed);
    }
    /* Records and arena need no zeroing (nothing reaches them once the index
     * is empty, and each is rewritten before use); punching only returns the
     * memory. Punched record counters restart at 0, which is why readers
     * check index_seq on every answer. */
    uint64_t recs_used = a->rec_bump;
    if (recs_used > t->capacity)
        recs_used = t->capacity; /* a crashed writer's leftovers: be defensive */
    (void)punch(t->recs, recs_used * sizeof(struct shm_rec));
    uint64_t arena_used = a->arena_bump < h->arena_units ? a->arena_bump : h->arena_units;
    (void)punch(t->arena, arena_used * UNIT);
    memset(a, 0, sizeof *a);
    a->arena_bump = 1;
    atomic_store_explicit(&h->count, 0, memory_order_relaxed);
    atomic_store_explicit(&h->rec_high, 0, memory_order_relaxed);
    /* A raftproc that died mid-publish left status_seq odd forever. */
    uint64_t ss = atomic_load_explicit(&h->status_seq, memory_order_relaxed);
    if (ss & 1) {
        for (size_t i = 0; i < STATUS_WORDS; i++)
            atomic_store_explicit(&h->status[i], 0, memory_order_relaxed);
        atomic_store_explicit(&h->status_seq, ss + 1, memory_order_release);
    }
    seq64_end(&h->index_seq, s);
}

void shm_table_set_state(shm_table *t, enum shm_table_state state)
{
    atomic_store_explicit(&t->hdr->state, (uint32_t)state, memory_order_release);
}

void shm_table_publish_status(shm_table *t, const shm_node_status *st)
{
    struct shm_header *h = t->hdr;
    uint64_t w[STATUS_WORDS];
    memcpy(w, st, sizeof w);
    uint64_t s = seq64_begin(&h->status_seq);
    for (size_t i = 0; i < STATUS_WORDS; i++)
        atomic_store_explicit(&h->status[i], w[i], memory_order_relaxed);
    seq64_end(&h->status_seq, s);
}

int shm_table_foreach(const shm_table *t, int (*fn)(const shm_lock *rec, void *arg), void *arg)
{
    const struct shm_alloc *a = &t->hdr->alloc;
    shm_lock l;
    for (uint32_t id = 0; id < a->rec_bump && id < t->capacity; id++) {
        const struct shm_rec *r = &t->recs[id];
        uint64_t rev = atomic_load_explicit(&r->rev, memory_order_relaxed);
        unsigned nl = rev_name_len(rev), ol = rev_owner_len(rev);
        if (nl == 0)
            continue;
        uint64_t off = atomic_load_explicit(&r->off, memory_order_relaxed);
        uint64_t bytes[BYTES_WORDS];
        for (uint64_t i = 0; i < (nl + ol + 7u) / 8; i++)
            bytes[i] = atomic_load_explicit(&t->arena[off * 2 + i], memory_order_relaxed);
        fill_lock(&l, bytes, nl, ol, atomic_load_explicit(&r->token, memory_order_relaxed), rev,
                  atomic_load_explicit(&r->acq, memory_order_relaxed),
                  atomic_load_explicit(&r->ren, memory_order_relaxed));
        int rc = fn(&l, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const char *shm_role_name(uint32_t role)
{
    switch (role) {
    case 1:
        return "follower";
    case 2:
        return "candidate";
    case 3:
        return "leader";
    default:
        return "unavailable";
    }
}
