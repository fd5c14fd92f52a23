/* common/ratelimit.h: the two counting structures issue 12's limits need,
 * with bounded memory and no clock of their own (callers pass
 * CLOCK_MONOTONIC ms):
 *
 *  - rl_table: a token bucket per 64-bit key (an HTTP/2 connection id) in
 *    a fixed-size table, for "close a connection whose streams are reset
 *    faster than a bound" (CVE-2023-44487). A key whose bucket has refilled
 *    is indistinguishable from an absent one, so such entries are evicted
 *    freely: the table forgets nothing it needs while fewer keys than its
 *    capacity are actively over their rate.
 *  - rl_counter: a count per string key (a token identity or a client
 *    address) with a ceiling, for waiters per client.
 *
 * One thread per structure; no logging. */
#ifndef LOCKD_COMMON_RATELIMIT_H
#define LOCKD_COMMON_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* burst events at once, then per_sec events per second. */
struct rl_rate {
    uint32_t burst;
    uint32_t per_sec;
};

struct rl_bucket {
    uint64_t milli; /* tokens x 1000 */
    uint64_t last_ms;
};

/* Starts full. */
void rl_bucket_init(struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms);
/* Takes one token: true if there was one, false if the rate is exceeded
 * (nothing taken). */
bool rl_bucket_take(struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms);
/* Would the bucket be full at now_ms (i.e. carries no history)? */
bool rl_bucket_full(const struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms);

typedef struct rl_table rl_table;

/* capacity: keys tracked at once (rounded up to a power of two). Returns 0,
 * -LOCKD_EINVAL (zero rate or capacity) or -LOCKD_ENOMEM. */
int rl_table_create(size_t capacity, const struct rl_rate *rate, rl_table **out);
void rl_table_destroy(rl_table *t);

/* Counts one event for key. true: within the rate. false: over it (the
 * caller acts, e.g. closes the connection, then calls rl_table_forget).
 * Bounded work: one probe window (16 slots). */
bool rl_table_hit(rl_table *t, uint64_t key, uint64_t now_ms);
void rl_table_forget(rl_table *t, uint64_t key);
/* Entries evicted while still carrying history (table too small for the
 * keys over their rate at once); for a metric and a warning. */
uint64_t rl_table_lossy_evictions(const rl_table *t);

typedef struct rl_counter rl_counter;

int rl_counter_create(rl_counter **out);
void rl_counter_destroy(rl_counter *c);
/* Adds one to key's count unless it is already at limit. Returns 0,
 * -LOCKD_EFULL (at limit: refuse, 429), -LOCKD_EINVAL (empty or over 255
 * bytes) or -LOCKD_ENOMEM. */
int rl_counter_acquire(rl_counter *c, const char *key, size_t len, uint32_t limit);
/* Subtracts one (a key at zero is forgotten). Releasing a key that holds
 * nothing is a caller bug and is ignored. */
void rl_counter_release(rl_counter *c, const char *key, size_t len);
uint32_t rl_counter_get(const rl_counter *c, const char *key, size_t len);
/* Distinct keys with a count above zero; sum of all counts. */
size_t rl_counter_keys(const rl_counter *c);
uint64_t rl_counter_total(const rl_counter *c);

#endif
