/* lockctl/output.h: what lockctl prints. A streaming JSON writer (one
 * object per command, for --json), aligned text tables and human
 * durations. Writes to a FILE*; never allocates per value. */
#ifndef LOCKD_LOCKCTL_OUTPUT_H
#define LOCKD_LOCKCTL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- JSON ---- */

#define JW_DEPTH_MAX 8

struct jw {
    FILE *f;
    int depth;
    int first[JW_DEPTH_MAX]; /* nothing written yet at this depth */
    int after_key;           /* a key was written: no comma before the value */
};

void jw_init(struct jw *w, FILE *f);
void jw_obj(struct jw *w); /* { */
void jw_arr(struct jw *w); /* [ */
void jw_end_obj(struct jw *w);
void jw_end_arr(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_str(struct jw *w, const char *s);
void jw_str_or_null(struct jw *w, const char *s); /* "" -> null */
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_bool(struct jw *w, int v);
void jw_null(struct jw *w);
void jw_finish(struct jw *w); /* the trailing newline */

/* ---- text ---- */

/* "850ms", "3.2s", "4m05s", "2h03m", "3d04h". */
void fmt_duration(uint64_t ms, char *buf, size_t cap);

/* A table: add rows of ncols cells (copied), then print with every column
 * padded to its widest cell (the last one unpadded). */
#define TABLE_COLS_MAX 8

struct table {
    int ncols;
    size_t nrows, cap;
    char **cells; /* nrows * ncols, row-major */
    size_t width[TABLE_COLS_MAX];
};

void table_init(struct table *t, int ncols);
/* Returns 0, or -1 when out of memory (the row is dropped). */
int table_row(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *f);
void table_free(struct table *t);

#endif
