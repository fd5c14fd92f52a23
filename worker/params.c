/* worker/params.c: turns a request's query string and body into struct
 * params (see params.h), with the contract's wording for every rejection.
 * Pure and bounded: stack buffers only, never reads outside its inputs. */
#include "worker/params.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "common/errors.h"
#include "common/json.h"
#include "common/names.h"

/* No valid value is longer than a whole body, so a longer one is refused
 * without decoding it (keeps the decode buffer on the stack). */
#define PARAMS_VALUE_MAX LOCKD_BODY_MAX
/* Field names are short; a longer key cannot be one of ours. */
#define PARAMS_KEY_MAX 32
/* Unknown-field messages echo at most this many bytes of the key. */
#define PARAMS_ECHO_MAX 64
/* Six fields exist; more members than this are refused by the JSON reader. */
#define PARAMS_JSON_MEMBERS 16

enum params_source { PARAMS_SRC_QUERY, PARAMS_SRC_BODY };

struct params_field_def {
    const char *name;
    unsigned bit;
    unsigned methods; /* 1u << enum params_method */
};

#define M_GET (1u << PARAMS_GET)
#define M_POST (1u << PARAMS_POST)
#define M_DELETE (1u << PARAMS_DELETE)

static const struct params_field_def params_fields[] = {
    {"owner", PARAMS_OWNER, M_POST | M_DELETE},
    {"ttl", PARAMS_TTL, M_POST},
    {"wait", PARAMS_WAIT, M_POST},
    {"token", PARAMS_TOKEN, M_DELETE},
    {"force", PARAMS_FORCE, M_DELETE},
    {"consistent", PARAMS_CONSISTENT, M_GET},
};

struct params_parser {
    enum params_method method;
    const struct params_limits *lim;
    struct params *out;
    unsigned seen_query, seen_body; /* keys met so far, null values included */
    char *err;
    size_t err_cap;
};

static int params_fail(struct params_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int params_fail(struct params_parser *p, const char *fmt, ...)
{
    if (p->err && p->err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->err_cap, fmt, ap);
        va_end(ap);
    }
    return -LOCKD_EINVAL;
}

/* The key is client bytes: control bytes become '?' so the message stays
 * one printable line (the HTTP layer still escapes it for JSON). */
static int params_fail_unknown(struct params_parser *p, const char *key, size_t len)
{
    char shown[PARAMS_ECHO_MAX + 1];
    size_t n = len < PARAMS_ECHO_MAX ? len : PARAMS_ECHO_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        shown[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    shown[n] = '\0';
    return params_fail(p, "Unknown field \"%s%s\"", shown, len > n ? "..." : "");
}

static const struct params_field_def *params_lookup(enum params_method method, const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof params_fields / sizeof params_fields[0]; i++) {
        const struct params_field_def *d = &params_fields[i];
        if (strlen(d->name) == len && memcmp(d->name, key, len) == 0)
            return (d->methods & (1u << method)) ? d : NULL;
    }
    return NULL;
}

/* One place per field, once: the contract's "given in both" rule. */
static int params_mark_seen(struct params_parser *p, const struct params_field_def *d, enum params_source src)
{
    unsigned *mine = src == PARAMS_SRC_QUERY ? &p->seen_query : &p->seen_body;
    unsigned other = src == PARAMS_SRC_QUERY ? p->seen_body : p->seen_query;
    if (other & d->bit)
        return params_fail(p, "Field \"%s\" given in both query string and body", d->name);
    if (*mine & d->bit)
        return params_fail(p, "Field \"%s\" given more than once", d->name);
    *mine |= d->bit;
    return 0;
}

static const char *params_expected(unsigned bit)
{
    switch (bit) {
    case PARAMS_OWNER:
        return "a string";
    case PARAMS_TTL:
    case PARAMS_WAIT:
        return "a duration such as 250ms, 30s, 5m, 1h or a whole number of seconds";
    case PARAMS_TOKEN:
        return "a positive integer";
    default:
        return "true or false";
    }
}

static int params_fail_value(struct params_parser *p, const struct params_field_def *d)
{
    return params_fail(p, "Invalid value for \"%s\": expected %s", d->name, params_expected(d->bit));
}

/* Decimal uint64 > 0: digits only, no sign, overflow refused. */
static int params_parse_token(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -LOCKD_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -LOCKD_EINVAL;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            return -LOCKD_EINVAL;
    }
    if (v == 0)
        return -LOCKD_EINVAL;
    *out = v;
    return 0;
}

static void params_set_bool(struct params_parser *p, const struct params_field_def *d, bool v)
{
    if (d->bit == PARAMS_FORCE)
        p->out->force = v;
    else
        p->out->consistent = v;
    p->out->given |= d->bit;
}

/* A value given as text (query, form body, or a JSON string/number). */
static int params_apply_text(struct params_parser *p, const struct params_field_def *d, const char *v, size_t len)
{
    struct params *out = p->out;
    char a[32], b[32];
    uint64_t ms;

    switch (d->bit) {
    case PARAMS_OWNER:
        if (names_check_owner(v, len, p->err, p->err_cap) != 0)
            return -LOCKD_EINVAL;
        memcpy(out->owner, v, len);
        out->owner[len] = '\0';
        out->owner_len = len;
        break;
    case PARAMS_TTL:
        if (duration_parse_ms(v, len, &ms) != 0)
            return params_fail_value(p, d);
        if (ms < p->lim->ttl_min_ms || ms > p->lim->ttl_max_ms) {
            duration_format_ms(p->lim->ttl_min_ms, a, sizeof a);
            duration_format_ms(p->lim->ttl_max_ms, b, sizeof b);
            return params_fail(p, "ttl must be between %s and %s", a, b);
        }
        out->ttl_ms = ms;
        break;
    case PARAMS_WAIT:
        if (duration_parse_ms(v, len, &ms) != 0)
            return params_fail_value(p, d);
        if (ms > p->lim->wait_max_ms) {
            duration_format_ms(0, a, sizeof a);
            duration_format_ms(p->lim->wait_max_ms, b, sizeof b);
            return params_fail(p, "wait must be between %s and %s", a, b);
        }
        out->wait_ms = ms;
        break;
    case PARAMS_TOKEN:
        if (params_parse_token(v, len, &out->token) != 0)
            return params_fail_value(p, d);
        break;
    default: /* force, consistent */
        if (len == 4 && memcmp(v, "true", 4) == 0)
            params_set_bool(p, d, true);
        else if (len == 5 && memcmp(v, "false", 5) == 0)
            params_set_bool(p, d, false);
        else
            return params_fail_value(p, d);
        return 0;
    }
    out->given |= d->bit;
    return 0;
}

/* key=value&key=value, percent-decoded with '+' as space. A bare key
 * ("?force") turns a boolean on; for other fields it is an empty value. */
static int params_parse_urlencoded(struct params_parser *p, const char *s, size_t len, enum params_source src)
{
    const char *where = src == PARAMS_SRC_QUERY ? "query string" : "body";
    char key[PARAMS_KEY_MAX];
    char val[PARAMS_VALUE_MAX];
    size_t i = 0;

    while (i < len) {
        const char *seg = s + i;
        const char *amp = memchr(seg, '&', len - i);
        size_t seg_len = amp ? (size_t)(amp - seg) : len - i;
        i += seg_len + 1;
        if (seg_len == 0)
            continue; /* "a=1&&b=2", a trailing '&' */

        const char *eq = memchr(seg, '=', seg_len);
        size_t key_raw_len = eq ? (size_t)(eq - seg) : seg_len;
        int kn = names_query_decode(seg, key_raw_len, key, sizeof key);
        if (kn == -LOCKD_EINVAL)
            return params_fail(p, "Malformed percent-encoding in %s", where);
        if (kn < 0)
            return params_fail_unknown(p, seg, key_raw_len);
        const struct params_field_def *d = params_lookup(p->method, key, (size_t)kn);
        if (!d)
            return params_fail_unknown(p, key, (size_t)kn);
        int rc = params_mark_seen(p, d, src);
        if (rc)
            return rc;

        if (!eq) {
            if (d->bit == PARAMS_FORCE || d->bit == PARAMS_CONSISTENT) {
                params_set_bool(p, d, true);
                continue;
            }
            rc = params_apply_text(p, d, "", 0);
        } else {
            const char *raw = eq + 1;
            size_t raw_len = seg_len - key_raw_len - 1;
            if (raw_len > sizeof val)
                return params_fail(p, "Field \"%s\" is too long", d->name);
            int vn = names_query_decode(raw, raw_len, val, sizeof val);
            if (vn < 0)
                return params_fail(p, "Malformed percent-encoding in %s", where);
            rc = params_apply_text(p, d, val, (size_t)vn);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static bool params_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A JSON number is accepted for ttl/wait (whole seconds) and token, and only
 * as plain digits: "-1", "1.5" and "1e3" are not durations or tokens. */
static int params_apply_json_number(struct params_parser *p, const struct params_field_def *d, const char *lit,
                                    size_t len)
{
    if (d->bit != PARAMS_TTL && d->bit != PARAMS_WAIT && d->bit != PARAMS_TOKEN)
        return params_fail_value(p, d);
    for (size_t i = 0; i < len; i++)
        if (lit[i] < '0' || lit[i] > '9')
            return params_fail_value(p, d);
    return params_apply_text(p, d, lit, len);
}

static int params_parse_json(struct params_parser *p, const char *body, size_t len)
{
    struct json_member m[PARAMS_JSON_MEMBERS];
    char jerr[128] = "";
    char key[PARAMS_KEY_MAX];
    char val[PARAMS_VALUE_MAX];

    int n = json_parse_object(body, len, m, PARAMS_JSON_MEMBERS, jerr, sizeof jerr);
    if (n == -LOCKD_ETOOBIG)
        return params_fail(p, "Invalid JSON body: more than %d members", PARAMS_JSON_MEMBERS);
    if (n < 0)
        return params_fail(p, "Invalid JSON body: %s", jerr[0] ? jerr : "syntax error");

    for (int k = 0; k < n && k < PARAMS_JSON_MEMBERS; k++) {
        const struct json_member *mm = &m[k];
        const char *kp = mm->key;
        size_t kl = mm->key_len;
        /* has_escapes may describe the value; look at the key itself. */
        if (memchr(kp, '\\', kl)) {
            int kn = json_decode_string(kp, kl, key, sizeof key);
            if (kn == -LOCKD_ETOOBIG)
                return params_fail_unknown(p, kp, kl);
            if (kn < 0)
                return params_fail(p, "Invalid JSON body: bad escape in a key");
            kp = key;
            kl = (size_t)kn;
        }
        const struct params_field_def *d = params_lookup(p->method, kp, kl);
        if (!d)
            return params_fail_unknown(p, kp, kl);
        int rc = params_mark_seen(p, d, PARAMS_SRC_BODY);
        if (rc)
            return rc;

        switch (mm->type) {
        case JSON_NULL:
            rc = 0; /* same as not given: the default */
            break;
        case JSON_STRING:
            if (memchr(mm->value, '\\', mm->value_len)) {
                int vn = json_decode_string(mm->value, mm->value_len, val, sizeof val);
                if (vn == -LOCKD_ETOOBIG)
                    return params_fail(p, "Field \"%s\" is too long", d->name);
                if (vn < 0)
                    return params_fail(p, "Invalid JSON body: bad escape in \"%s\"", d->name);
                rc = params_apply_text(p, d, val, (size_t)vn);
            } else {
                rc = params_apply_text(p, d, mm->value, mm->value_len);
            }
            break;
        case JSON_NUMBER:
            rc = params_apply_json_number(p, d, mm->value, mm->value_len);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            if (d->bit != PARAMS_FORCE && d->bit != PARAMS_CONSISTENT)
                return params_fail_value(p, d);
            params_set_bool(p, d, mm->type == JSON_TRUE);
            rc = 0;
            break;
        default: /* nested object */
            return params_fail_value(p, d);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int params_parse(enum params_method method, const char *query, size_t query_len, const char *body, size_t body_len,
                 bool body_may_be_form, const struct params_limits *lim, struct params *out, char *err, size_t err_cap)
{
    struct params_parser p = {.method = method, .lim = lim, .out = out, .err = err, .err_cap = err_cap};

    memset(out, 0, sizeof *out);
    if (err && err_cap)
        err[0] = '\0';
    if ((unsigned)method > PARAMS_DELETE || !lim)
        return params_fail(&p, "Internal error: bad parameters");

    if (body_len > LOCKD_BODY_MAX) {
        params_fail(&p, "Request body too large (max %d bytes)", LOCKD_BODY_MAX);
        return -LOCKD_ETOOBIG;
    }
    if (query && query_len) {
        int rc = params_parse_urlencoded(&p, query, query_len, PARAMS_SRC_QUERY);
        if (rc)
            return rc;
    }

    size_t i = 0;
    while (body && i < body_len && params_is_space(body[i]))
        i++;
    if (!body || i == body_len)
        return 0;
    if (body[i] == '{')
        return params_parse_json(&p, body, body_len);
    /* '[' or '"' cannot start a form field but can start JSON: say what is
     * wrong with it rather than "Unknown field". */
    if (body_may_be_form && body[i] != '[' && body[i] != '"')
        return params_parse_urlencoded(&p, body, body_len, PARAMS_SRC_BODY);
    return params_fail(&p, "Request body must be a JSON object");
}
