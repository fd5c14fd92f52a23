/* common/build_info.c: the version lines (see build_info.h). Only version
 * macros are read from the libraries' headers; nothing here calls into a
 * library, so no program gains a link dependency by printing them. */
#include "common/build_info.h"

#include <h2o/version.h>
#include <lmdb.h>
#include <openssl/opensslv.h>
#include <protobuf-c/protobuf-c.h>
#include <raft.h>
#include <uv/version.h>
#ifdef LOCKD_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "common/version.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* raft.h has carried its version since 0.16; Debian 12's 0.15.0 does not,
 * and the Makefile then passes pkg-config's (packaging/packaging.mk). */
#if defined(RAFT_VERSION_MAJOR)
#define RAFT_VERSION_S STR(RAFT_VERSION_MAJOR) "." STR(RAFT_VERSION_MINOR) "." STR(RAFT_VERSION_RELEASE)
#elif defined(LOCKD_RAFT_PC_VERSION)
#define RAFT_VERSION_S LOCKD_RAFT_PC_VERSION
#else
#define RAFT_VERSION_S "unknown"
#endif

#ifdef LOCKD_WITH_JEMALLOC
#define JEMALLOC_S                                                                                                     \
    ", jemalloc " STR(JEMALLOC_VERSION_MAJOR) "." STR(JEMALLOC_VERSION_MINOR) "." STR(JEMALLOC_VERSION_BUGFIX)
#else
#define JEMALLOC_S ", system malloc"
#endif

static const char LIBRARIES[] =
    "h2o " H2O_VERSION                                                                     /* */
    ", libuv " STR(UV_VERSION_MAJOR) "." STR(UV_VERSION_MINOR) "." STR(UV_VERSION_PATCH)   /* */
    ", LMDB " STR(MDB_VERSION_MAJOR) "." STR(MDB_VERSION_MINOR) "." STR(MDB_VERSION_PATCH) /* */
    ", protobuf-c " PROTOBUF_C_VERSION                                                     /* */
    ", raft " RAFT_VERSION_S JEMALLOC_S                                                    /* */
    ", OpenSSL " OPENSSL_VERSION_STR;

void build_info_print(FILE *out, const char *program)
{
    fprintf(out, "%s %s\nlibraries: %s\n", program, LOCKD_VERSION, LIBRARIES);
}
