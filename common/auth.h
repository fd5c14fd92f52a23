/* common/auth.h: who may do what over HTTP (--auth-file). Parses the auth
 * file into an immutable table, turns a bearer token or a TLS client
 * certificate name into an identity, and decides whether that identity may
 * use a scope on a lock name. Pure apart from reading the file: no logging
 * here (the caller logs at its boundary), and nothing here ever sees a token
 * it could keep or print: a presented token is hashed and forgotten.
 *
 * The file (docs/ARCHITECTURE.md, "Security"): one credential per line,
 *
 *     # comment
 *     IDENTITY  CREDENTIAL  SCOPE  [PREFIXES]
 *     ci-deploy sha256:<64 hex>  lock   deploy-,jobs-
 *     dashboard sha256:<64 hex>  read
 *     ops-1     cert             admin
 *
 *   IDENTITY   1..64 bytes of A-Z a-z 0-9 $ - . _ : @ (a valid owner): the
 *              name locks are bound to. Several lines may share one (token
 *              rotation: old and new token are the same identity).
 *   CREDENTIAL sha256:HEX, the SHA-256 of the bearer token (lockd
 *              --hash-token, scripts/lockd-token.sh), or `cert`: a TLS
 *              client certificate whose CN or a SAN equals IDENTITY.
 *   SCOPE      read < lock < admin (each includes the ones before).
 *   PREFIXES   comma-separated lock-name prefixes the line is limited to;
 *              absent or `*`: every name.
 */
#ifndef LOCKD_COMMON_AUTH_H
#define LOCKD_COMMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_IDENTITY_MAX 64
#define AUTH_PREFIXES_MAX 16
#define AUTH_ENTRIES_MAX 10000
#define AUTH_HASH_LEN 32 /* SHA-256 */
/* "lkd_" + base64url of 32 random bytes: what auth_token_generate makes. */
#define AUTH_TOKEN_PREFIX "lkd_"
#define AUTH_TOKEN_LEN (4 + 43)
/* Shortest token --hash-token accepts from an operator (~190 bits if random). */
#define AUTH_TOKEN_MIN 32
#define AUTH_TOKEN_MAX 512

enum auth_scope { AUTH_SCOPE_READ = 1, AUTH_SCOPE_LOCK = 2, AUTH_SCOPE_ADMIN = 3 };

/* One line of the file. Immutable; owned by its table. */
struct auth_identity {
    char name[AUTH_IDENTITY_MAX + 1];
    uint8_t name_len;
    enum auth_scope scope;
    bool is_cert;                /* credential `cert` (no hash) */
    uint8_t hash[AUTH_HASH_LEN]; /* SHA-256 of the token (not for cert lines) */
    unsigned n_prefixes;         /* 0: every name */
    char *prefixes[AUTH_PREFIXES_MAX];
    uint8_t prefix_len[AUTH_PREFIXES_MAX];
    unsigned line; /* in the file, for messages */
};

typedef struct auth_table auth_table; /* opaque, immutable once built */

/* The outcome of a check; the HTTP status follows from it. */
enum auth_decision {
    AUTH_ALLOW = 0,
    AUTH_MISSING,    /* 401: no credential presented */
    AUTH_BAD_TOKEN,  /* 401: malformed or unknown token */
    AUTH_SCOPE,      /* 403: scope too low for the operation */
    AUTH_PREFIX,     /* 403: name outside the identity's prefixes */
    AUTH_NOT_HOLDER, /* 403: owner binding (the lock belongs to another identity) */
};

/* Parses text[0..len) (the contents of `path`, used in messages only).
 * On success *out is a new table owned by the caller (auth_table_free).
 * Errors: -LOCKD_EINVAL with "PATH:LINE: what is wrong" in err (the first
 * error; nothing is built), -LOCKD_ENOMEM. An empty file (no lines) is an
 * error too: auth on with nobody allowed is a misconfiguration. */
int auth_table_parse(const char *text, size_t len, const char *path, auth_table **out, char *err, size_t err_cap);

/* secfile_read (mode check: 0600/0640, owner us or root) + auth_table_parse. */
int auth_table_load(const char *path, auth_table **out, char *err, size_t err_cap);

void auth_table_free(auth_table *t);

size_t auth_table_count(const auth_table *t);

/* The identity whose token hashes to SHA-256(token[0..len)), or NULL.
 * Hashes once, then one hash-table probe and a constant-time comparison of
 * the 32-byte digests (CRYPTO_memcmp): no timing depends on how much of a
 * guessed token is right. The pointer lives as long as the table. */
const struct auth_identity *auth_lookup_token(const auth_table *t, const char *token, size_t len);

/* The first `cert` line whose IDENTITY equals one of names[0..n) (a client
 * certificate's SANs, then its CN, in that order), or NULL. */
const struct auth_identity *auth_lookup_cert(const auth_table *t, const char *const *names, const size_t *lens,
                                             size_t n);

/* The token of an "Authorization: Bearer <token>" value (RFC 6750 2.1:
 * scheme case-insensitive, one or more spaces, token68 characters). Returns
 * 0 with *token pointing into value, or -LOCKD_EINVAL. */
int auth_parse_bearer(const char *value, size_t len, const char **token, size_t *token_len);

/* May `id` use `scope` on lock `name`? name NULL: a route that is not about
 * one lock (/status, /metrics): only the scope counts. For /locks?prefix=P
 * pass P as name with is_prefix: allowed when P starts with one of the
 * identity's prefixes (a listing never crosses into names it may not see).
 * id NULL -> AUTH_MISSING. */
enum auth_decision auth_allows(const struct auth_identity *id, enum auth_scope scope, const char *name, size_t len,
                               bool is_prefix);

/* The JSON-ready sentence for a refusal ("Token scope read does not allow
 * lock"), written into buf. Never contains a token. Returns buf. */
const char *auth_decision_message(enum auth_decision d, const struct auth_identity *id, enum auth_scope wanted,
                                  char *buf, size_t cap);

/* 401 or 403 for a refusal, 200 for AUTH_ALLOW. */
int auth_decision_status(enum auth_decision d);

const char *auth_scope_name(enum auth_scope s);
int auth_scope_parse(const char *s, size_t len, enum auth_scope *out);

/* "sha256:" + 64 lowercase hex digits of SHA-256(token) into out (cap >=
 * 72). Returns 0, or -LOCKD_EINVAL if the token is shorter than
 * AUTH_TOKEN_MIN, longer than AUTH_TOKEN_MAX or not token68. */
int auth_hash_token(const char *token, size_t len, char *out, size_t cap);

/* A new random token (RAND_bytes, 256 bits): AUTH_TOKEN_PREFIX + 43
 * base64url characters, NUL-terminated, into out (cap > AUTH_TOKEN_LEN).
 * Returns 0 or -LOCKD_EIO (no randomness). */
int auth_token_generate(char *out, size_t cap);

/* A complete auth-file line for a new token: "IDENTITY sha256:HEX SCOPE
 * [PREFIXES]\n" into line, the token itself into token. Checks identity,
 * scope and prefixes as the parser would. Returns 0 or -LOCKD_EINVAL with a
 * sentence in err. */
int auth_token_line(const char *identity, const char *scope, const char *prefixes, char *token, size_t token_cap,
                    char *line, size_t line_cap, char *err, size_t err_cap);

/* Holds the table a process serves with; reload builds a complete new table
 * first and swaps only on success, so a bad edit never leaves a process
 * with half a file or none (it keeps the old one; err says why). Pointers
 * from the old table die at the swap: copy an identity's name if a request
 * outlives the loop turn it was authenticated in. One thread only. */
struct auth_holder {
    auth_table *table; /* NULL: auth off */
    char path[256];
    uint64_t generation; /* bumped by every successful (re)load */
};

int auth_holder_load(struct auth_holder *h, const char *path, char *err, size_t err_cap);
int auth_holder_reload(struct auth_holder *h, char *err, size_t err_cap);
void auth_holder_clear(struct auth_holder *h);

#endif
