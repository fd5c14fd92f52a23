/* common/json.c: the strict RFC 8259 reader for lockd's subset (objects,
 * no arrays), the string decoder and the escaper. Never allocates, never
 * reads outside [text, text+len), never accepts what it cannot decode. */
#include "common/json.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"

/* Lone surrogates and invalid UTF-8 are rejected while parsing, so every
 * string the reader accepts json_decode_string decodes. */

/* The top-level object is depth 1: {"a":{"b":{"c":{}}}} is the deepest
 * accepted. Bounds the recursion, so a hostile body cannot exhaust the
 * stack. */
#define JSON_MAX_DEPTH 4

/* ---- one character of a string body ---- */

enum char_err {
    CHAR_OK = 0,
    CHAR_EOF,       /* input ends inside an escape or UTF-8 sequence */
    CHAR_QUOTE,     /* unescaped '"' (only json_decode_string sees one) */
    CHAR_CONTROL,   /* raw byte < 0x20 */
    CHAR_ESCAPE,    /* backslash followed by something else */
    CHAR_UESCAPE,   /* \u not followed by 4 hex digits */
    CHAR_SURROGATE, /* unpaired UTF-16 surrogate in \u escapes */
    CHAR_UTF8,      /* malformed, overlong or surrogate UTF-8 */
};

static const char *const char_err_text[] = {
    [CHAR_OK] = "ok",
    [CHAR_EOF] = "unexpected end of input",
    [CHAR_QUOTE] = "unescaped '\"' in string",
    [CHAR_CONTROL] = "control character in string",
    [CHAR_ESCAPE] = "invalid escape in string",
    [CHAR_UESCAPE] = "invalid \\u escape in string",
    [CHAR_SURROGATE] = "unpaired surrogate in \\u escape",
    [CHAR_UTF8] = "invalid UTF-8 in string",
};

/* Reads 4 hex digits at s[pos] (pos <= len): 0, or -1 if one is not hex,
 * or -2 if the input ends first. */
static int hex4(const char *s, size_t len, size_t pos, unsigned *out)
{
    size_t avail = len - pos < 4 ? len - pos : 4;
    unsigned v = 0;
    for (size_t i = 0; i < avail; i++) {
        unsigned char c = (unsigned char)s[pos + i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10u;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10u;
        else
            return -1;
        v = v << 4 | d;
    }
    if (avail < 4)
        return -2;
    *out = v;
    return 0;
}

static int utf8_put(unsigned cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at s[pos] (Unicode 15, table
 * 3-7: no overlongs, no encoded surrogates, nothing above U+10FFFF), or 0
 * if malformed, or -1 if it is cut off by len. */
static int utf8_len(const unsigned char *s, size_t len, size_t pos)
{
    unsigned char c = s[pos];
    int n;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    for (int i = 1; i < n; i++) {
        if (pos + (size_t)i >= len)
            return -1;
        unsigned char b = s[pos + (size_t)i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 0;
    }
    return n;
}

/* Decodes the character of a JSON string body at s[*pos] (pos < len) into
 * out as UTF-8 (1..4 bytes). On success advances *pos and returns the byte
 * count; on failure returns -enum char_err and leaves *pos at the offending
 * character. The output is never longer than the input it consumed, which
 * is what makes in-place decoding safe. */
static int next_char(const char *str, size_t len, size_t *pos, unsigned char out[4])
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = *pos;
    unsigned char c = s[i];
    if (c == '"')
        return -CHAR_QUOTE;
    if (c < 0x20)
        return -CHAR_CONTROL;
    if (c >= 0x80) {
        int n = utf8_len(s, len, i);
        if (n <= 0)
            return n < 0 ? -CHAR_EOF : -CHAR_UTF8;
        memcpy(out, s + i, (size_t)n);
        *pos = i + (size_t)n;
        return n;
    }
    if (c != '\\') {
        out[0] = c;
        *pos = i + 1;
        return 1;
    }
    if (i + 1 >= len)
        return -CHAR_EOF;
    switch (s[i + 1]) {
    case '"':
        out[0] = '"';
        break;
    case '\\':
        out[0] = '\\';
        break;
    case '/':
        out[0] = '/';
        break;
    case 'b':
        out[0] = '\b';
        break;
    case 'f':
        out[0] = '\f';
        break;
    case 'n':
        out[0] = '\n';
        break;
    case 'r':
        out[0] = '\r';
        break;
    case 't':
        out[0] = '\t';
        break;
    case 'u': {
        unsigned cp;
        int h = hex4(str, len, i + 2, &cp);
        if (h != 0)
            return h == -2 ? -CHAR_EOF : -CHAR_UESCAPE;
        size_t used = 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -CHAR_SURROGATE;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* RFC 8259 §7: a character outside the BMP is a surrogate
             * pair of escapes; the low half must follow at once. */
            unsigned lo;
            if (len - (i + 6) < 6 || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(str, len, i + 8, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF)
                return -CHAR_SURROGATE;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
        }
        *pos = i + used;
        return utf8_put(cp, out);
    }
    default:
        return -CHAR_ESCAPE;
    }
    *pos = i + 2;
    return 1;
}

/* ---- the object reader ---- */

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    char *err;
    size_t err_cap;
};

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
    if (p->err && p->err_cap) {
        int n = snprintf(p->err, p->err_cap, "invalid JSON at offset %zu: ", at);
        if (n >= 0 && (size_t)n < p->err_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->err_cap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -LOCKD_EINVAL;
}

static int at_end(const struct parser *p)
{
    return p->pos >= p->len;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        p->pos++;
    }
}

/* At the opening quote. On success *body and *body_len give the bytes
 * between the quotes, and p->pos is past the closing one. */
static int parse_string(struct parser *p, const char **body, size_t *body_len, int *escapes)
{
    size_t start = ++p->pos;
    *escapes = 0;
    for (;;) {
        if (at_end(p))
            return fail(p, p->pos, "unterminated string");
        if (p->s[p->pos] == '"')
            break;
        if (p->s[p->pos] == '\\')
            *escapes = 1;
        unsigned char tmp[4];
        size_t at = p->pos;
        int r = next_char(p->s, p->len, &p->pos, tmp);
        if (r < 0)
            return fail(p, r == -CHAR_EOF ? p->len : at, "%s", char_err_text[-r]);
    }
    *body = p->s + start;
    *body_len = p->pos - start;
    p->pos++;
    return 0;
}

static int digits(struct parser *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    return p->pos > start;
}

/* RFC 8259 §6: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? */
static int parse_number(struct parser *p)
{
    if (p->s[p->pos] == '-')
        p->pos++;
    if (at_end(p))
        return fail(p, p->pos, "unexpected end of input");
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (!at_end(p) && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            return fail(p, p->pos, "leading zeros are not allowed");
    } else if (!digits(p)) {
        return fail(p, p->pos, "invalid number");
    }
    if (!at_end(p) && p->s[p->pos] == '.') {
        p->pos++;
        if (!digits(p))
            return fail(p, p->pos, at_end(p) ? "unexpected end of input" : "invalid number");
    }
    if (!at_end(p) && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (!at_end(p) && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (!digits(p))
            return fail(p, p->pos, at_end(p) ? "unexpected end of input" : "invalid number");
    }
    return 0;
}

static int parse_literal(struct parser *p, const char *lit)
{
    size_t n = strlen(lit);
    size_t avail = p->len - p->pos;
    size_t cmp = avail < n ? avail : n;
    if (memcmp(p->s + p->pos, lit, cmp) != 0)
        return fail(p, p->pos, "expected a value");
    if (avail < n)
        return fail(p, p->len, "unexpected end of input");
    p->pos += n;
    return 0;
}

/* Compares two raw string bodies by their decoded bytes, so "a" equals
 * "\u0061". Both were validated by parse_string. */
static int raw_equal(const char *a, size_t alen, const char *b, size_t blen, int escapes)
{
    if (!escapes)
        return alen == blen && memcmp(a, b, alen) == 0;
    size_t i = 0, j = 0;
    while (i < alen && j < blen) {
        unsigned char ca[4], cb[4];
        int na = next_char(a, alen, &i, ca);
        int nb = next_char(b, blen, &j, cb);
        if (na < 0 || nb < 0 || na != nb || memcmp(ca, cb, (size_t)na) != 0)
            return 0;
    }
    return i == alen && j == blen;
}

static int parse_object(struct parser *p, int depth, struct json_member *out, size_t max, size_t *count);

static int parse_value(struct parser *p, int depth, struct json_member *m)
{
    if (at_end(p))
        return fail(p, p->pos, "unexpected end of input");
    size_t start = p->pos;
    int r = 0;
    m->has_escapes = 0;
    switch (p->s[p->pos]) {
    case '"':
        m->type = JSON_STRING;
        return parse_string(p, &m->value, &m->value_len, &m->has_escapes);
    case '{':
        if (depth >= JSON_MAX_DEPTH)
            return fail(p, p->pos, "objects nested deeper than %d levels", JSON_MAX_DEPTH);
        m->type = JSON_OBJECT;
        r = parse_object(p, depth + 1, NULL, 0, NULL);
        break;
    case '[':
        return fail(p, p->pos, "arrays are not supported");
    case 't':
        m->type = JSON_TRUE;
        r = parse_literal(p, "true");
        break;
    case 'f':
        m->type = JSON_FALSE;
        r = parse_literal(p, "false");
        break;
    case 'n':
        m->type = JSON_NULL;
        r = parse_literal(p, "null");
        break;
    default:
        if (p->s[p->pos] != '-' && (p->s[p->pos] < '0' || p->s[p->pos] > '9'))
            return fail(p, p->pos, "expected a value");
        m->type = JSON_NUMBER;
        r = parse_number(p);
        break;
    }
    if (r < 0)
        return r;
    m->value = p->s + start;
    m->value_len = p->pos - start;
    return 0;
}

/* At the '{'. Stores up to max members in out (out may be NULL when max is
 * 0: a nested object is only validated; its caller parses it again, which
 * is where its duplicate keys are found). *count gets the number of members
 * seen, which may exceed max. */
static int parse_object(struct parser *p, int depth, struct json_member *out, size_t max, size_t *count)
{
    size_t n = 0;
    p->pos++;
    skip_ws(p);
    if (!at_end(p) && p->s[p->pos] == '}') {
        p->pos++;
        goto done;
    }
    for (;;) {
        skip_ws(p);
        if (at_end(p))
            return fail(p, p->pos, "unexpected end of input");
        if (p->s[p->pos] != '"')
            return fail(p, p->pos, "expected '\"' to start a key");
        struct json_member m;
        size_t key_at = p->pos;
        int key_escapes;
        int r = parse_string(p, &m.key, &m.key_len, &key_escapes);
        if (r < 0)
            return r;
        skip_ws(p);
        if (at_end(p))
            return fail(p, p->pos, "unexpected end of input");
        if (p->s[p->pos] != ':')
            return fail(p, p->pos, "expected ':'");
        p->pos++;
        skip_ws(p);
        if ((r = parse_value(p, depth, &m)) < 0)
            return r;
        m.has_escapes |= key_escapes;

        if (out) {
            /* O(n * max): max is the caller's small, fixed field count. */
            size_t stored = n < max ? n : max;
            for (size_t k = 0; k < stored; k++)
                if (raw_equal(out[k].key, out[k].key_len, m.key, m.key_len, out[k].has_escapes | m.has_escapes))
                    return fail(p, key_at, "duplicate key \"%.*s\"", m.key_len > 64 ? 64 : (int)m.key_len, m.key);
            if (n < max)
                out[n] = m;
        }
        n++;

        skip_ws(p);
        if (at_end(p))
            return fail(p, p->pos, "unexpected end of input");
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == '}') {
            p->pos++;
            break;
        }
        return fail(p, p->pos, "expected ',' or '}'");
    }
done:
    if (count)
        *count = n;
    return 0;
}

int json_parse_object(const char *text, size_t len, struct json_member *out, size_t max, char *err, size_t err_cap)
{
    struct parser p = {.s = text, .len = text ? len : 0, .pos = 0, .err = err, .err_cap = err_cap};
    if (err && err_cap)
        err[0] = '\0';
    if (!out)
        max = 0;
    skip_ws(&p);
    if (at_end(&p))
        return fail(&p, p.pos, "unexpected end of input, expected '{'");
    if (p.s[p.pos] == '[')
        return fail(&p, p.pos, "arrays are not supported");
    if (p.s[p.pos] != '{')
        return fail(&p, p.pos, "expected '{'");
    size_t n = 0;
    int r = parse_object(&p, 1, max ? out : NULL, max, &n);
    if (r < 0)
        return r;
    skip_ws(&p);
    if (!at_end(&p))
        return fail(&p, p.pos, "unexpected data after the object");
    if (n > max) {
        if (err && err_cap)
            snprintf(err, err_cap, "too many members (%zu > max of %zu)", n, max);
        return -LOCKD_ETOOBIG;
    }
    if (n > INT_MAX)
        return -LOCKD_ETOOBIG;
    return (int)n;
}

int json_decode_string(const char *raw, size_t len, char *dst, size_t dst_cap)
{
    if (!raw && len)
        return -LOCKD_EINVAL;
    size_t pos = 0, n = 0;
    while (pos < len) {
        unsigned char tmp[4];
        int r = next_char(raw, len, &pos, tmp);
        if (r < 0)
            return -LOCKD_EINVAL;
        if (n + (size_t)r <= dst_cap)
            memcpy(dst + n, tmp, (size_t)r);
        n += (size_t)r;
    }
    if (n > dst_cap || n > INT_MAX)
        return -LOCKD_ETOOBIG;
    return (int)n;
}

size_t json_escape(const char *s, size_t len, char *dst, size_t dst_cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    int full = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t k;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            k = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            k = 6;
        } else {
            esc[0] = (char)c;
            k = 1;
        }
        /* Whole escapes only: a truncated result never ends in half of
         * one (the caller must treat the return > dst_cap as failure). */
        if (!full && n + k <= dst_cap)
            memcpy(dst + n, esc, k);
        else
            full = 1;
        n += k;
    }
    return n;
}
