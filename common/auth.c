/* common/auth.c: the auth file, token lookup and the authorization decision
 * (see auth.h). Owns the tables it builds. Never logs and never stores a
 * presented token: it is hashed on the caller's stack and compared as a
 * digest. */
#include "common/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/errors.h"
#include "common/limits.h"
#include "common/names.h"
#include "common/secfile.h"

struct auth_table {
    size_t n;
    struct auth_identity *entries;
    /* Open addressing over token entries: slot = entry index + 1, 0 empty;
     * the key is the first 8 bytes of the digest (uniformly distributed). */
    uint32_t *slots;
    size_t mask;
};

/* ---- hashing ----------------------------------------------------------------- */

static int auth_sha256(const void *data, size_t len, uint8_t out[AUTH_HASH_LEN])
{
    /* Fetched once: an implicit fetch per call (EVP_sha256) costs more than
     * hashing a 47-byte token. Processes are single-threaded. */
    static EVP_MD *md;
    if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
        return -LOCKD_EIO;
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, md, NULL) != 1 || n != AUTH_HASH_LEN)
        return -LOCKD_EIO;
    return 0;
}

static uint64_t auth_key(const uint8_t *hash)
{
    uint64_t k;
    memcpy(&k, hash, sizeof k);
    return k;
}

static bool auth_token68_byte(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/';
}

/* RFC 7235 token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool auth_is_token68(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && auth_token68_byte((unsigned char)s[i]))
        i++;
    if (i == 0)
        return false;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

/* ---- parsing ------------------------------------------------------------------- */

struct auth_parser {
    const char *path;
    unsigned line;
    char *err;
    size_t err_cap;
};

#define AUTH_FAIL(p, ...)                                                                                              \
    do {                                                                                                               \
        int off_ = snprintf((p)->err, (p)->err_cap, "%s:%u: ", (p)->path, (p)->line);                                  \
        if (off_ >= 0 && (size_t)off_ < (p)->err_cap)                                                                  \
            snprintf((p)->err + off_, (p)->err_cap - (size_t)off_, __VA_ARGS__);                                       \
        return -LOCKD_EINVAL;                                                                                          \
    } while (0)

static int auth_hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int auth_scope_parse(const char *s, size_t len, enum auth_scope *out)
{
    static const struct {
        const char *name;
        enum auth_scope scope;
    } scopes[] = {{"read", AUTH_SCOPE_READ}, {"lock", AUTH_SCOPE_LOCK}, {"admin", AUTH_SCOPE_ADMIN}};
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        if (strlen(scopes[i].name) == len && memcmp(scopes[i].name, s, len) == 0) {
            *out = scopes[i].scope;
            return 0;
        }
    }
    return -LOCKD_EINVAL;
}

const char *auth_scope_name(enum auth_scope s)
{
    switch (s) {
    case AUTH_SCOPE_READ:
        return "read";
    case AUTH_SCOPE_LOCK:
        return "lock";
    case AUTH_SCOPE_ADMIN:
        return "admin";
    }
    return "unknown";
}

static int auth_parse_identity(struct auth_parser *p, const char *s, size_t len, struct auth_identity *e)
{
    char why[128];
    if (len > AUTH_IDENTITY_MAX)
        AUTH_FAIL(p, "identity is too long (%zu bytes > max of %d)", len, AUTH_IDENTITY_MAX);
    if (names_check_owner(s, len, why, sizeof why) != 0)
        AUTH_FAIL(p, "identity: %s (an identity must be a valid owner)", why);
    memcpy(e->name, s, len);
    e->name[len] = '\0';
    e->name_len = (uint8_t)len;
    return 0;
}

static int auth_parse_credential(struct auth_parser *p, const char *s, size_t len, struct auth_identity *e)
{
    static const char pre[] = "sha256:";
    const size_t pre_len = sizeof pre - 1;
    if (len == 4 && memcmp(s, "cert", 4) == 0) {
        e->is_cert = true;
        return 0;
    }
    if (len == pre_len + 2 * AUTH_HASH_LEN && memcmp(s, pre, pre_len) == 0) {
        const char *h = s + pre_len;
        for (size_t i = 0; i < AUTH_HASH_LEN; i++) {
            int hi = auth_hex_nibble(h[2 * i]), lo = auth_hex_nibble(h[2 * i + 1]);
            if (hi < 0 || lo < 0)
                AUTH_FAIL(p, "credential: sha256: must be followed by 64 hex digits");
            e->hash[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
    }
    /* Never echo the field: a token pasted here by mistake must not reach
     * a log through this message. */
    AUTH_FAIL(p, "credential must be sha256:<64 hex digits> (lockd --hash-token) or cert");
}

static int auth_parse_prefixes(struct auth_parser *p, const char *s, size_t len, struct auth_identity *e)
{
    if (len == 1 && s[0] == '*')
        return 0;
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && s[end] != ',')
            end++;
        size_t n = end - start;
        char why[128];
        if (n == 0)
            AUTH_FAIL(p, "empty prefix in \"%.*s\"", (int)len, s);
        if (e->n_prefixes == AUTH_PREFIXES_MAX)
            AUTH_FAIL(p, "more than %d prefixes", AUTH_PREFIXES_MAX);
        if (names_check_lock(s + start, n, why, sizeof why) != 0)
            AUTH_FAIL(p, "prefix \"%.*s\": %s", (int)n, s + start, why);
        char *copy = malloc(n + 1);
        if (copy == NULL)
            return -LOCKD_ENOMEM;
        memcpy(copy, s + start, n);
        copy[n] = '\0';
        e->prefixes[e->n_prefixes] = copy;
        e->prefix_len[e->n_prefixes] = (uint8_t)n;
        e->n_prefixes++;
        start = end + 1;
    }
    return 0;
}

static void auth_entry_release(struct auth_identity *e)
{
    for (unsigned i = 0; i < e->n_prefixes; i++)
        free(e->prefixes[i]);
    e->n_prefixes = 0;
}

/* Splits line[0..len) at blanks into at most max fields; a field starting
 * with '#' ends the line. Returns the number of fields, or max + 1 if there
 * are more. */
static size_t auth_fields(const char *line, size_t len, const char **f, size_t *fl, size_t max)
{
    size_t n = 0, i = 0;
    for (;;) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len || line[i] == '#')
            return n;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        if (n == max)
            return max + 1;
        f[n] = line + start;
        fl[n] = i - start;
        n++;
    }
}

static int auth_parse_line(struct auth_parser *p, const char *line, size_t len, struct auth_identity *e)
{
    const char *f[4];
    size_t fl[4];
    size_t n = auth_fields(line, len, f, fl, 4);
    if (n == 0)
        return 1; /* blank or comment */
    if (n < 3)
        AUTH_FAIL(p, "expected IDENTITY CREDENTIAL SCOPE [PREFIXES], found %zu field%s", n, n == 1 ? "" : "s");
    if (n > 4)
        AUTH_FAIL(p, "more than 4 fields (IDENTITY CREDENTIAL SCOPE [PREFIXES])");
    memset(e, 0, sizeof *e);
    e->line = p->line;
    int rc = auth_parse_identity(p, f[0], fl[0], e);
    if (rc == 0)
        rc = auth_parse_credential(p, f[1], fl[1], e);
    if (rc == 0 && auth_scope_parse(f[2], fl[2], &e->scope) != 0) {
        snprintf(p->err, p->err_cap, "%s:%u: scope \"%.*s\" is not read, lock or admin", p->path, p->line,
                 (int)(fl[2] > 16 ? 16 : fl[2]), f[2]);
        rc = -LOCKD_EINVAL;
    }
    if (rc == 0 && n == 4)
        rc = auth_parse_prefixes(p, f[3], fl[3], e);
    if (rc != 0)
        auth_entry_release(e);
    return rc;
}

static size_t auth_pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

void auth_table_free(auth_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        auth_entry_release(&t->entries[i]);
    OPENSSL_cleanse(t->entries, t->n * sizeof *t->entries);
    free(t->entries);
    free(t->slots);
    free(t);
}

/* Indexes token entries; a second line with the same token is an error (it
 * would make the identity ambiguous). */
static int auth_index(auth_table *t, struct auth_parser *p)
{
    t->mask = auth_pow2_at_least(2 * t->n + 1) - 1;
    t->slots = calloc(t->mask + 1, sizeof *t->slots);
    if (t->slots == NULL)
        return -LOCKD_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        const struct auth_identity *e = &t->entries[i];
        if (e->is_cert)
            continue;
        size_t s = (size_t)auth_key(e->hash) & t->mask;
        while (t->slots[s] != 0) {
            const struct auth_identity *o = &t->entries[t->slots[s] - 1];
            if (memcmp(o->hash, e->hash, AUTH_HASH_LEN) == 0) {
                p->line = e->line;
                AUTH_FAIL(p, "same token hash as line %u", o->line);
            }
            s = (s + 1) & t->mask;
        }
        t->slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

int auth_table_parse(const char *text, size_t len, const char *path, auth_table **out, char *err, size_t err_cap)
{
    *out = NULL;
    struct auth_parser p = {.path = path, .line = 0, .err = err, .err_cap = err_cap};
    auth_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -LOCKD_ENOMEM;
    size_t cap = 0;
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t ll = end - pos;
        p.line++;
        if (ll && text[pos + ll - 1] == '\r')
            ll--;
        if (memchr(text + pos, '\0', ll) != NULL) {
            snprintf(err, err_cap, "%s:%u: NUL byte", path, p.line);
            rc = -LOCKD_EINVAL;
            break;
        }
        struct auth_identity e;
        int r = auth_parse_line(&p, text + pos, ll, &e);
        pos = end + 1;
        if (r == 1)
            continue;
        if (r != 0) {
            rc = r;
            break;
        }
        if (t->n == AUTH_ENTRIES_MAX) {
            auth_entry_release(&e);
            snprintf(err, err_cap, "%s:%u: more than %d credentials", path, p.line, AUTH_ENTRIES_MAX);
            rc = -LOCKD_EINVAL;
            break;
        }
        if (t->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct auth_identity *ne = realloc(t->entries, ncap * sizeof *ne);
            if (ne == NULL) {
                auth_entry_release(&e);
                rc = -LOCKD_ENOMEM;
                break;
            }
            t->entries = ne;
            cap = ncap;
        }
        t->entries[t->n++] = e;
    }
    if (rc == 0 && t->n == 0) {
        snprintf(err, err_cap, "%s: no credentials (auth would refuse every request)", path);
        rc = -LOCKD_EINVAL;
    }
    if (rc == 0)
        rc = auth_index(t, &p);
    if (rc == -LOCKD_ENOMEM)
        snprintf(err, err_cap, "%s: out of memory", path);
    if (rc != 0) {
        auth_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int auth_table_load(const char *path, auth_table **out, char *err, size_t err_cap)
{
    char *text;
    size_t len;
    *out = NULL;
    int rc = secfile_read(path, SECFILE_MAX, &text, &len, err, err_cap);
    if (rc != 0)
        return rc;
    rc = auth_table_parse(text, len, path, out, err, err_cap);
    secfile_free(text, len);
    return rc;
}

size_t auth_table_count(const auth_table *t)
{
    return t ? t->n : 0;
}

/* ---- lookups ------------------------------------------------------------------- */

const struct auth_identity *auth_lookup_token(const auth_table *t, const char *token, size_t len)
{
    uint8_t h[AUTH_HASH_LEN];
    if (t == NULL || len == 0 || len > AUTH_TOKEN_MAX || auth_sha256(token, len, h) != 0)
        return NULL;
    const struct auth_identity *found = NULL;
    for (size_t s = (size_t)auth_key(h) & t->mask; t->slots[s] != 0; s = (s + 1) & t->mask) {
        const struct auth_identity *e = &t->entries[t->slots[s] - 1];
        if (CRYPTO_memcmp(e->hash, h, AUTH_HASH_LEN) == 0) {
            found = e;
            break;
        }
    }
    OPENSSL_cleanse(h, sizeof h);
    return found;
}

const struct auth_identity *auth_lookup_cert(const auth_table *t, const char *const *names, const size_t *lens,
                                             size_t n)
{
    if (t == NULL)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < t->n; i++) {
            const struct auth_identity *e = &t->entries[i];
            if (e->is_cert && e->name_len == lens[k] && memcmp(e->name, names[k], lens[k]) == 0)
                return e;
        }
    }
    return NULL;
}

int auth_parse_bearer(const char *value, size_t len, const char **token, size_t *token_len)
{
    static const char scheme[] = "bearer";
    const size_t sl = sizeof scheme - 1;
    if (len <= sl + 1)
        return -LOCKD_EINVAL;
    for (size_t i = 0; i < sl; i++) {
        char c = value[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return -LOCKD_EINVAL;
    }
    size_t i = sl;
    if (value[i] != ' ')
        return -LOCKD_EINVAL;
    while (i < len && value[i] == ' ')
        i++;
    size_t end = len;
    while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    if (end == i || end - i > AUTH_TOKEN_MAX || !auth_is_token68(value + i, end - i))
        return -LOCKD_EINVAL;
    *token = value + i;
    *token_len = end - i;
    return 0;
}

/* ---- decisions ----------------------------------------------------------------- */

enum auth_decision auth_allows(const struct auth_identity *id, enum auth_scope scope, const char *name, size_t len,
                               bool is_prefix)
{
    if (id == NULL)
        return AUTH_MISSING;
    if (id->scope < scope)
        return AUTH_SCOPE;
    if (id->n_prefixes == 0 || (name == NULL && !is_prefix))
        return AUTH_ALLOW;
    for (unsigned i = 0; i < id->n_prefixes; i++) {
        size_t pl = id->prefix_len[i];
        if (len >= pl && memcmp(name, id->prefixes[i], pl) == 0)
            return AUTH_ALLOW;
    }
    return AUTH_PREFIX;
}

int auth_decision_status(enum auth_decision d)
{
    switch (d) {
    case AUTH_ALLOW:
        return 200;
    case AUTH_MISSING:
    case AUTH_BAD_TOKEN:
        return 401;
    case AUTH_SCOPE:
    case AUTH_PREFIX:
    case AUTH_NOT_HOLDER:
        return 403;
    }
    return 403;
}

const char *auth_decision_message(enum auth_decision d, const struct auth_identity *id, enum auth_scope wanted,
                                  char *buf, size_t cap)
{
    const char *who = id ? id->name : "";
    switch (d) {
    case AUTH_ALLOW:
        snprintf(buf, cap, "OK");
        break;
    case AUTH_MISSING:
        snprintf(buf, cap, "Authentication required");
        break;
    case AUTH_BAD_TOKEN:
        snprintf(buf, cap, "Invalid token");
        break;
    case AUTH_SCOPE:
        snprintf(buf, cap, "Identity %s has scope %s; this needs %s", who, id ? auth_scope_name(id->scope) : "none",
                 auth_scope_name(wanted));
        break;
    case AUTH_PREFIX: {
        int off = snprintf(buf, cap, "Identity %s may only use lock names starting with ", who);
        for (unsigned i = 0; id && i < id->n_prefixes && off >= 0 && (size_t)off < cap; i++)
            off += snprintf(buf + off, cap - (size_t)off, "%s%s", i ? ", " : "", id->prefixes[i]);
        break;
    }
    case AUTH_NOT_HOLDER:
        snprintf(buf, cap, "Lock is held by another identity; only admin with force=true can release it");
        break;
    }
    return buf;
}

/* ---- tokens -------------------------------------------------------------------- */

int auth_hash_token(const char *token, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX || !auth_is_token68(token, len) || cap < 7 + 2 * AUTH_HASH_LEN + 1)
        return -LOCKD_EINVAL;
    uint8_t h[AUTH_HASH_LEN];
    if (auth_sha256(token, len, h) != 0)
        return -LOCKD_EIO;
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < AUTH_HASH_LEN; i++) {
        out[7 + 2 * i] = hex[h[i] >> 4];
        out[7 + 2 * i + 1] = hex[h[i] & 15];
    }
    out[7 + 2 * AUTH_HASH_LEN] = '\0';
    return 0;
}

int auth_token_generate(char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[33]; /* 32 random bytes + 1 zero byte of padding for the last group */
    if (cap <= AUTH_TOKEN_LEN)
        return -LOCKD_EINVAL;
    if (RAND_bytes(r, 32) != 1)
        return -LOCKD_EIO;
    r[32] = 0;
    size_t o = 0;
    memcpy(out, AUTH_TOKEN_PREFIX, 4);
    o = 4;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    /* 33 bytes made 44 characters; 32 bytes need 43 (256 bits / 6). */
    o = AUTH_TOKEN_LEN;
    out[o] = '\0';
    OPENSSL_cleanse(r, sizeof r);
    return 0;
}

int auth_token_line(const char *identity, const char *scope, const char *prefixes, char *token, size_t token_cap,
                    char *line, size_t line_cap, char *err, size_t err_cap)
{
    char text[512];
    int n = snprintf(text, sizeof text, "%s sha256:%064d %s %s\n", identity, 0, scope, prefixes ? prefixes : "*");
    if (n < 0 || (size_t)n >= sizeof text) {
        snprintf(err, err_cap, "identity, scope or prefixes too long");
        return -LOCKD_EINVAL;
    }
    auth_table *t;
    int rc = auth_table_parse(text, (size_t)n, "new token", &t, err, err_cap); /* same rules as the file */
    if (rc != 0)
        return rc;
    auth_table_free(t);
    char hash[80];
    if (auth_token_generate(token, token_cap) != 0 || auth_hash_token(token, strlen(token), hash, sizeof hash) != 0) {
        snprintf(err, err_cap, "cannot generate a token (no randomness?)");
        return -LOCKD_EIO;
    }
    n = snprintf(line, line_cap, "%s %s %s%s%s\n", identity, hash, scope, prefixes ? " " : "",
                 prefixes ? prefixes : "");
    if (n < 0 || (size_t)n >= line_cap) {
        OPENSSL_cleanse(token, token_cap);
        snprintf(err, err_cap, "line buffer too small");
        return -LOCKD_EINVAL;
    }
    return 0;
}

/* ---- holder ---------------------------------------------------------------------- */

int auth_holder_load(struct auth_holder *h, const char *path, char *err, size_t err_cap)
{
    if (strlen(path) >= sizeof h->path) {
        snprintf(err, err_cap, "%s: path too long", path);
        return -LOCKD_EINVAL;
    }
    auth_table *t;
    int rc = auth_table_load(path, &t, err, err_cap);
    if (rc != 0)
        return rc;
    auth_table_free(h->table);
    h->table = t;
    snprintf(h->path, sizeof h->path, "%s", path);
    h->generation++;
    return 0;
}

int auth_holder_reload(struct auth_holder *h, char *err, size_t err_cap)
{
    if (h->path[0] == '\0') {
        snprintf(err, err_cap, "no auth file configured");
        return -LOCKD_ENOENT;
    }
    char path[sizeof h->path];
    memcpy(path, h->path, sizeof path);
    return auth_holder_load(h, path, err, err_cap);
}

void auth_holder_clear(struct auth_holder *h)
{
    auth_table_free(h->table);
    h->table = NULL;
    h->path[0] = '\0';
}
