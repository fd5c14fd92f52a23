/* worker/params.h: the request fields of API.md (owner, ttl, wait, token,
 * force, consistent), read from the query string and/or a request body into
 * one struct, with the contract's validation and error wording. Pure: no
 * allocation, no I/O, no h2o; safe on any input (fuzzed in
 * tests/unit/worker/test_params.c). */
#ifndef LOCKD_WORKER_PARAMS_H
#define LOCKD_WORKER_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

/* Which route the fields are for: each accepts its own set (GET: consistent;
 * POST: owner, ttl, wait; DELETE: owner, token, force). A field of another
 * method is an unknown field. */
enum params_method { PARAMS_GET = 0, PARAMS_POST = 1, PARAMS_DELETE = 2 };

/* Bits of params.given. */
enum params_field {
    PARAMS_OWNER = 1u << 0,
    PARAMS_TTL = 1u << 1,
    PARAMS_WAIT = 1u << 2,
    PARAMS_TOKEN = 1u << 3,
    PARAMS_FORCE = 1u << 4,
    PARAMS_CONSISTENT = 1u << 5,
};

/* The configured bounds (config.h: ttl_min_ms, ttl_max_ms, wait_max_ms). */
struct params_limits {
    uint64_t ttl_min_ms, ttl_max_ms, wait_max_ms;
};

struct params {
    unsigned given;                  /* PARAMS_* of the fields that carry a value;
                                        a JSON null counts as not given */
    char owner[LOCKD_OWNER_MAX + 1]; /* NUL-terminated; valid per names_check_owner */
    size_t owner_len;                /* 0: anonymous */
    uint64_t ttl_ms;                 /* 0: no lease */
    uint64_t wait_ms;                /* 0: do not wait */
    uint64_t token;                  /* 0: not given */
    bool force;
    bool consistent;
};

/* Room for every message params_parse writes. */
#define PARAMS_ERR_MAX 256

/* Parses the fields of one request into *out (always fully initialised).
 *   query[0..query_len): the raw query string after '?' (may be NULL/0);
 *   body[0..body_len): the raw request body (may be NULL/0). A body that is
 *     empty or only white space carries no fields; one that starts with '{'
 *     is a JSON object of fields; anything else is a JSON error unless
 *     body_may_be_form (the client sent Content-Type
 *     application/x-www-form-urlencoded), then it is parsed like a query.
 * A field may come from one place only.
 * Returns 0, or:
 *   -LOCKD_EINVAL  bad input; err holds the client-facing message (400);
 *   -LOCKD_ETOOBIG body_len > LOCKD_BODY_MAX; err holds the message (413).
 * err (capacity err_cap, PARAMS_ERR_MAX is enough) is NUL-terminated; it may
 * echo bytes of an unknown field's name, so escape it before sending. */
int params_parse(enum params_method method, const char *query, size_t query_len, const char *body, size_t body_len,
                 bool body_may_be_form, const struct params_limits *lim, struct params *out, char *err, size_t err_cap);

#endif
