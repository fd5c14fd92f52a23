/* common/memory.c: jemalloc's configuration (the malloc_conf symbol it reads
 * at start-up) and the periodic decay of free pages. */
#include "common/memory.h"

#if !defined(LOCKD_WITH_JEMALLOC) && !defined(__SANITIZE_ADDRESS__)
#error "build with -DLOCKD_WITH_JEMALLOC (the Makefile's MALLOC_DEFS) or with ASan"
#endif

#ifdef LOCKD_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#include <stddef.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* Free pages go back to the kernel after about a second (default: 10 s of
 * dirty, then MADV_FREE'd pages that still count in RSS until the kernel
 * needs them). The workload is bursty (snapshots, client storms), and RSS is
 * what operators watch. */
const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";

void memory_decay(uint64_t now_ms)
{
    static uint64_t last_ms;
    if (now_ms - last_ms < 1000)
        return;
    last_ms = now_ms;
    mallctl("arena." STRINGIFY(MALLCTL_ARENAS_ALL) ".decay", NULL, NULL, NULL, 0);
}
#else
void memory_decay(uint64_t now_ms)
{
    (void)now_ms;
}
#endif
