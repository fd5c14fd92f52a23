/* master/config_file.h: the syntax of lockd's configuration file
 * (`lockd --config FILE`), and nothing of its meaning: which keys exist and
 * what their values may be is options.c's business.
 *
 *   # a comment (a line whose first non-blank character is '#')
 *   listen = 0.0.0.0:2080
 *   data-dir = /var/lib/lockd
 *   server-header = "lockd (eu-1)"
 *
 * One `key = value` per line; blanks around the key and the value are
 * dropped; a value may be wrapped in double quotes (then \" and \\ are its
 * only escapes) to keep blanks or to be empty; nothing may follow its closing
 * quote. There are no comments after a value ('#' is part of it). Keys are 1..63 characters of
 * a-z, 0-9 and '-'. A key may appear once. Lines are at most 4096 bytes and
 * the file at most 64 KiB. */
#ifndef LOCKD_MASTER_CONFIG_FILE_H
#define LOCKD_MASTER_CONFIG_FILE_H

#include <stddef.h>

#define CONFIG_FILE_MAX (64 * 1024)
#define CONFIG_LINE_MAX 4096

struct config_entry {
    const char *key;   /* NUL-terminated, inside the owning config_file */
    const char *value; /* NUL-terminated, unquoted, inside the owning config_file */
    unsigned line;     /* 1-based */
};

struct config_file {
    char *text;                   /* owned: the file's bytes, rewritten in place into keys and values */
    struct config_entry *entries; /* owned */
    size_t n;
};

/* Parses text (len bytes, copied) into cf, which owns everything after a
 * success (free with config_file_free). On failure cf holds nothing, *line
 * is the 1-based line at fault (0: not a line's fault) and err holds a
 * one-line message without the file name or line ("expected key = value").
 * Returns 0, -LOCKD_EINVAL (syntax), -LOCKD_ETOOBIG or -LOCKD_ENOMEM. */
int config_file_parse(const char *text, size_t len, struct config_file *cf, unsigned *line, char *err, size_t err_cap);

/* Reads and parses path. Errors as config_file_parse, plus -LOCKD_EIO when
 * the file cannot be read (err then says why, from errno). */
int config_file_load(const char *path, struct config_file *cf, unsigned *line, char *err, size_t err_cap);

/* The entry for key, or NULL. */
const struct config_entry *config_file_get(const struct config_file *cf, const char *key);

void config_file_free(struct config_file *cf);

#endif
