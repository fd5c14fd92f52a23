/* worker/list.c: GET /locks's query fields and page selection (list.h).
 * Pure and bounded: stack buffers and caller-provided memory only.
 *
 * Why keyset pagination is stable under churn: every page is "the smallest
 * `limit` names > after" of the table as one scan saw it, and the next page
 * starts after the last name returned. A lock held throughout a pagination
 * is in every scan (shm_table_scan's guarantee); it is either in the page
 * whose name range covers it, or greater than that page's last name and so
 * still ahead. Names are ordered bytewise (memcmp), which for the lock-name
 * alphabet is ASCII order: "$" < "-" < "." < digits < A-Z < "_" < a-z. */
#include "worker/list.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/names.h"

#define LIST_KEY_MAX 16
#define LIST_ECHO_MAX 64

static int list_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int list_fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -LOCKD_EINVAL;
}

/* Same wording as params.c's unknown fields. */
static int list_fail_unknown(char *err, size_t cap, const char *key, size_t len)
{
    char shown[LIST_ECHO_MAX + 1];
    size_t n = len < LIST_ECHO_MAX ? len : LIST_ECHO_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        shown[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    shown[n] = '\0';
    return list_fail(err, cap, "Unknown field \"%s%s\"", shown, len > n ? "..." : "");
}

/* Decoded length of a well-formed value (every '%' starts a 3-byte escape). */
static size_t list_decoded_len(const char *raw, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        if (raw[i] == '%')
            n -= 2;
    return n;
}

/* A name-like value: the lock-name rules (names_check_lock), reworded for
 * the field: "\"after\" is too long (129 bytes > max of 128)", "\"prefix\"
 * contains non-printable/non-ascii byte 32 at offset 0". */
static int list_check_name(const char *field, const char *v, size_t len, bool empty_ok, char *err, size_t cap)
{
    char msg[LIST_ERR_MAX];
    if (len == 0) {
        if (empty_ok)
            return 0;
        return list_fail(err, cap, "\"%s\" is empty", field);
    }
    if (names_check_lock(v, len, msg, sizeof msg) == 0)
        return 0;
    if (strncmp(msg, "Name ", 5) == 0)
        return list_fail(err, cap, "\"%s\" %s", field, msg + 5);
    return list_fail(err, cap, "Invalid value for \"%s\": %s", field, msg);
}

static int list_parse_limit(const char *v, size_t len, size_t *out, char *err, size_t cap)
{
    uint64_t n = 0;
    if (len == 0)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            goto bad;
        n = n * 10 + (uint64_t)(v[i] - '0');
        if (n > 1000000000ull)
            n = 1000000000ull; /* out of range anyway; no overflow */
    }
    if (n < 1 || n > LIST_LIMIT_MAX)
        return list_fail(err, cap, "limit must be between 1 and %d", LIST_LIMIT_MAX);
    *out = (size_t)n;
    return 0;
bad:
    return list_fail(err, cap, "Invalid value for \"limit\": expected an integer from 1 to %d", LIST_LIMIT_MAX);
}

enum { SEEN_PREFIX = 1, SEEN_LIMIT = 2, SEEN_AFTER = 4 };

int list_parse_query(const char *query, size_t len, struct list_query *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    out->limit = LIST_LIMIT_DEFAULT;
    if (err && err_cap)
        err[0] = '\0';
    unsigned seen = 0;
    size_t i = 0;
    while (query && i < len) {
        const char *seg = query + i;
        const char *amp = memchr(seg, '&', len - i);
        size_t seg_len = amp ? (size_t)(amp - seg) : len - i;
        i += seg_len + 1;
        if (seg_len == 0)
            continue;
        const char *eq = memchr(seg, '=', seg_len);
        size_t key_raw = eq ? (size_t)(eq - seg) : seg_len;
        char key[LIST_KEY_MAX];
        int kn = names_query_decode(seg, key_raw, key, sizeof key);
        if (kn == -LOCKD_EINVAL)
            return list_fail(err, err_cap, "Malformed percent-encoding in query string");
        if (kn < 0)
            return list_fail_unknown(err, err_cap, seg, key_raw);

        unsigned bit;
        const char *field;
        if (kn == 6 && memcmp(key, "prefix", 6) == 0)
            bit = SEEN_PREFIX, field = "prefix";
        else if (kn == 5 && memcmp(key, "limit", 5) == 0)
            bit = SEEN_LIMIT, field = "limit";
        else if (kn == 5 && memcmp(key, "after", 5) == 0)
            bit = SEEN_AFTER, field = "after";
        else
            return list_fail_unknown(err, err_cap, key, (size_t)kn);
        if (seen & bit)
            return list_fail(err, err_cap, "Field \"%s\" given more than once", field);
        seen |= bit;

        const char *raw = eq ? eq + 1 : seg + seg_len;
        size_t raw_len = eq ? seg_len - key_raw - 1 : 0;
        char val[LOCKD_NAME_MAX + 1];
        int vn = names_query_decode(raw, raw_len, val, sizeof val);
        if (vn == -LOCKD_EINVAL)
            return list_fail(err, err_cap, "Malformed percent-encoding in query string");
        if (vn < 0) { /* longer than any valid value */
            size_t n = list_decoded_len(raw, raw_len);
            if (bit == SEEN_LIMIT)
                return list_parse_limit("x", 1, &out->limit, err, err_cap);
            return list_fail(err, err_cap, "\"%s\" is too long (%zu bytes > max of %d)", field, n, LOCKD_NAME_MAX);
        }
        size_t n = (size_t)vn;
        int rc;
        switch (bit) {
        case SEEN_PREFIX:
            rc = list_check_name(field, val, n, true, err, err_cap);
            if (rc == 0) {
                memcpy(out->prefix, val, n);
                out->prefix[n] = '\0';
                out->prefix_len = n;
            }
            break;
        case SEEN_LIMIT:
            rc = list_parse_limit(val, n, &out->limit, err, err_cap);
            break;
        default:
            rc = list_check_name(field, val, n, false, err, err_cap);
            if (rc == 0) {
                memcpy(out->after, val, n);
                out->after[n] = '\0';
                out->after_len = n;
                out->has_after = true;
            }
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- selection ------------------------------------------------------------ */

static int list_name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl;
}

static int list_lock_cmp(const shm_lock *a, const shm_lock *b)
{
    return list_name_cmp(a->name, a->name_len, b->name, b->name_len);
}

size_t list_sel_mem_size(const struct list_query *q)
{
    return q->limit * (sizeof(shm_lock) + sizeof(shm_lock *));
}

void list_sel_init(struct list_sel *s, const struct list_query *q, void *mem)
{
    s->q = q;
    s->store = mem;
    s->heap = (shm_lock **)(s->store + q->limit);
    s->n = 0;
    s->candidates = 0;
}

static void list_sift_down(shm_lock **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        if (l < n && list_lock_cmp(h[l], h[big]) > 0)
            big = l;
        if (r < n && list_lock_cmp(h[r], h[big]) > 0)
            big = r;
        if (big == i)
            return;
        shm_lock *t = h[i];
        h[i] = h[big];
        h[big] = t;
        i = big;
    }
}

static void list_sift_up(shm_lock **h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (list_lock_cmp(h[i], h[p]) <= 0)
            return;
        shm_lock *t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

int list_sel_offer(const shm_lock *rec, void *arg)
{
    struct list_sel *s = arg;
    const struct list_query *q = s->q;
    if (rec->name_len < q->prefix_len || memcmp(rec->name, q->prefix, q->prefix_len) != 0)
        return 0;
    if (q->has_after && list_name_cmp(rec->name, rec->name_len, q->after, q->after_len) <= 0)
        return 0;
    s->candidates++;
    if (s->n < q->limit) {
        shm_lock *slot = &s->store[s->n];
        *slot = *rec;
        s->heap[s->n] = slot;
        list_sift_up(s->heap, s->n);
        s->n++;
        return 0;
    }
    /* Full: keep it only if it is smaller than the largest kept name. */
    if (list_lock_cmp(rec, s->heap[0]) >= 0)
        return 0;
    *s->heap[0] = *rec;
    list_sift_down(s->heap, s->n, 0);
    return 0;
}

static int list_ptr_cmp(const void *a, const void *b)
{
    return list_lock_cmp(*(shm_lock *const *)a, *(shm_lock *const *)b);
}

size_t list_sel_finish(struct list_sel *s, shm_lock *const **out, bool *more)
{
    qsort(s->heap, s->n, sizeof s->heap[0], list_ptr_cmp);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (k > 0 && list_lock_cmp(s->heap[k - 1], s->heap[i]) == 0) {
            if (s->heap[i]->revision > s->heap[k - 1]->revision)
                s->heap[k - 1] = s->heap[i];
            continue;
        }
        s->heap[k++] = s->heap[i];
    }
    *more = s->candidates > s->n;
    s->n = k;
    *out = s->heap;
    return k;
}
