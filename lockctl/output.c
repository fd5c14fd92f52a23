/* lockctl/output.c: JSON writer, tables, durations (see output.h). Owns the
 * table cells it copies; nothing else. */
#include "lockctl/output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

void jw_init(struct jw *w, FILE *f)
{
    memset(w, 0, sizeof(*w));
    w->f = f;
    w->first[0] = 1;
}

/* The comma before a value or key, unless it is the first in its
 * container or follows its key. */
static void jw_sep(struct jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (!w->first[w->depth])
        fputc(',', w->f);
    w->first[w->depth] = 0;
}

static void jw_open(struct jw *w, char c)
{
    jw_sep(w);
    fputc(c, w->f);
    if (w->depth + 1 < JW_DEPTH_MAX)
        w->depth++;
    w->first[w->depth] = 1;
}

static void jw_close(struct jw *w, char c)
{
    fputc(c, w->f);
    if (w->depth > 0)
        w->depth--;
}

void jw_obj(struct jw *w)
{
    jw_open(w, '{');
}
void jw_arr(struct jw *w)
{
    jw_open(w, '[');
}
void jw_end_obj(struct jw *w)
{
    jw_close(w, '}');
}
void jw_end_arr(struct jw *w)
{
    jw_close(w, ']');
}

static void jw_quoted(struct jw *w, const char *s)
{
    char buf[512];
    size_t len = strlen(s), need = json_escape(s, len, buf, sizeof(buf));
    fputc('"', w->f);
    if (need <= sizeof(buf)) {
        fwrite(buf, 1, need, w->f);
    } else {
        char *big = malloc(need);
        if (big != NULL) {
            json_escape(s, len, big, need);
            fwrite(big, 1, need, w->f);
            free(big);
        }
    }
    fputc('"', w->f);
}

void jw_key(struct jw *w, const char *key)
{
    jw_sep(w);
    jw_quoted(w, key);
    fputc(':', w->f);
    w->after_key = 1;
}

void jw_str(struct jw *w, const char *s)
{
    jw_sep(w);
    jw_quoted(w, s);
}

void jw_str_or_null(struct jw *w, const char *s)
{
    if (s == NULL || s[0] == '\0')
        jw_null(w);
    else
        jw_str(w, s);
}

void jw_u64(struct jw *w, uint64_t v)
{
    jw_sep(w);
    fprintf(w->f, "%" PRIu64, v);
}

void jw_i64(struct jw *w, int64_t v)
{
    jw_sep(w);
    fprintf(w->f, "%" PRId64, v);
}

void jw_bool(struct jw *w, int v)
{
    jw_sep(w);
    fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w)
{
    jw_sep(w);
    fputs("null", w->f);
}

void jw_finish(struct jw *w)
{
    fputc('\n', w->f);
}

void fmt_duration(uint64_t ms, char *buf, size_t cap)
{
    uint64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, cap, "%" PRIu64 "ms", ms);
    else if (s < 60)
        snprintf(buf, cap, "%" PRIu64 ".%" PRIu64 "s", s, (ms % 1000) / 100);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s % 86400) / 3600);
}

void table_init(struct table *t, int ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols < TABLE_COLS_MAX ? ncols : TABLE_COLS_MAX;
}

int table_row(struct table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*c));
        if (c == NULL)
            return -1;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (row[i] == NULL) {
            while (i-- > 0)
                free(row[i]);
            return -1;
        }
        size_t len = strlen(row[i]);
        if (len > t->width[i])
            t->width[i] = len;
    }
    t->nrows++;
    return 0;
}

void table_print(const struct table *t, FILE *f)
{
    for (size_t r = 0; r < t->nrows; r++) {
        char **row = t->cells + r * (size_t)t->ncols;
        for (int i = 0; i < t->ncols; i++) {
            if (i + 1 < t->ncols)
                fprintf(f, "%-*s  ", (int)t->width[i], row[i]);
            else
                fprintf(f, "%s\n", row[i]);
        }
    }
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}
