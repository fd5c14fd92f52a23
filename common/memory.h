/* common/memory.h: the allocator's settings and housekeeping. lockd links
 * jemalloc (not in the ASan build, where these are no-ops). */
#ifndef LOCKD_COMMON_MEMORY_H
#define LOCKD_COMMON_MEMORY_H

#include <stdint.h>

/* Returns to the kernel the free pages jemalloc has held longer than its
 * decay time (1 s, see memory.c), at most once per second whatever the call
 * rate. jemalloc only decays when it is called, so an idle process kept the
 * pages of its last burst (a snapshot's tens of MiB, a wrk run's buffers)
 * for good; every long-running loop calls this from its timer. now_ms:
 * CLOCK_MONOTONIC milliseconds. */
void memory_decay(uint64_t now_ms);

#endif
