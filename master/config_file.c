/* master/config_file.c: reads `key = value` lines (see config_file.h).
 * Owns the file's bytes and the entry array; knows no key's meaning and
 * never interprets a value. */
#include "master/config_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

#define KEY_MAX 63

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Unquotes s in place ("..." with \" and \\). Returns 0 or -LOCKD_EINVAL
 * with err set. */
static int unquote(char *s, char *err, size_t err_cap)
{
    char *r = s + 1, *w = s;
    for (; *r != '\0' && *r != '"'; r++) {
        if (*r == '\\') {
            if (r[1] != '"' && r[1] != '\\') {
                snprintf(err, err_cap, "only \\\" and \\\\ may be escaped in a quoted value");
                return -LOCKD_EINVAL;
            }
            r++;
        }
        *w++ = *r;
    }
    if (*r != '"') {
        snprintf(err, err_cap, "quoted value has no closing quote");
        return -LOCKD_EINVAL;
    }
    for (r++; *r != '\0'; r++) {
        if (!is_blank(*r)) {
            snprintf(err, err_cap, "text after the closing quote");
            return -LOCKD_EINVAL;
        }
    }
    *w = '\0';
    return 0;
}

/* Parses one line (NUL-terminated, without its '\n') in place. Returns 1
 * with *key and *value set, 0 for a blank or comment line, or -LOCKD_EINVAL. */
static int parse_line(char *s, char **key, char **value, char *err, size_t err_cap)
{
    while (is_blank(*s))
        s++;
    if (*s == '\0' || *s == '#')
        return 0;
    char *k = s;
    while (is_key_char(*s))
        s++;
    size_t klen = (size_t)(s - k);
    while (is_blank(*s))
        s++;
    if (klen == 0 || *s != '=') {
        snprintf(err, err_cap, "expected key = value (keys are lowercase option names such as data-dir)");
        return -LOCKD_EINVAL;
    }
    if (klen > KEY_MAX) {
        snprintf(err, err_cap, "key is longer than %d characters", KEY_MAX);
        return -LOCKD_EINVAL;
    }
    k[klen] = '\0';
    s++;
    while (is_blank(*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && is_blank(end[-1]))
        *--end = '\0';
    if (*s == '"' && unquote(s, err, err_cap) != 0)
        return -LOCKD_EINVAL;
    *key = k;
    *value = s;
    return 1;
}

static int fail(struct config_file *cf, int rc)
{
    config_file_free(cf);
    return rc;
}

int config_file_parse(const char *text, size_t len, struct config_file *cf, unsigned *line, char *err, size_t err_cap)
{
    memset(cf, 0, sizeof(*cf));
    *line = 0;
    if (len > CONFIG_FILE_MAX) {
        snprintf(err, err_cap, "larger than %d KiB", CONFIG_FILE_MAX / 1024);
        return -LOCKD_ETOOBIG;
    }
    if (memchr(text, '\0', len) != NULL) {
        *line = 1;
        for (const char *p = text; *p != '\0'; p++)
            *line += *p == '\n';
        snprintf(err, err_cap, "contains a NUL byte (not a text file)");
        return -LOCKD_EINVAL;
    }
    cf->text = malloc(len + 1);
    size_t max_entries = 1;
    for (size_t i = 0; i < len; i++)
        max_entries += text[i] == '\n';
    cf->entries = calloc(max_entries, sizeof(*cf->entries));
    if (cf->text == NULL || cf->entries == NULL) {
        snprintf(err, err_cap, "out of memory");
        return fail(cf, -LOCKD_ENOMEM);
    }
    memcpy(cf->text, text, len);
    cf->text[len] = '\0';

    char *p = cf->text;
    for (unsigned n = 1; *p != '\0'; n++) {
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : p + strlen(p);
        if (nl != NULL)
            *nl = '\0';
        if (strlen(p) > CONFIG_LINE_MAX) {
            *line = n;
            snprintf(err, err_cap, "line longer than %d bytes", CONFIG_LINE_MAX);
            return fail(cf, -LOCKD_ETOOBIG);
        }
        char *key, *value;
        int r = parse_line(p, &key, &value, err, err_cap);
        if (r < 0) {
            *line = n;
            return fail(cf, r);
        }
        if (r == 1) {
            const struct config_entry *dup = config_file_get(cf, key);
            if (dup != NULL) {
                *line = n;
                snprintf(err, err_cap, "%s is already set on line %u", key, dup->line);
                return fail(cf, -LOCKD_EINVAL);
            }
            cf->entries[cf->n++] = (struct config_entry){.key = key, .value = value, .line = n};
        }
        p = next;
    }
    return 0;
}

int config_file_load(const char *path, struct config_file *cf, unsigned *line, char *err, size_t err_cap)
{
    memset(cf, 0, sizeof(*cf));
    *line = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_cap, "%s", strerror(errno));
        return -LOCKD_EIO;
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, err_cap, "out of memory");
        return -LOCKD_ENOMEM;
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    int read_error = ferror(f);
    int saved = errno;
    fclose(f);
    if (read_error) {
        free(buf);
        snprintf(err, err_cap, "%s", strerror(saved));
        return -LOCKD_EIO;
    }
    int rc = config_file_parse(buf, n, cf, line, err, err_cap);
    free(buf);
    return rc;
}

const struct config_entry *config_file_get(const struct config_file *cf, const char *key)
{
    for (size_t i = 0; i < cf->n; i++)
        if (strcmp(cf->entries[i].key, key) == 0)
            return &cf->entries[i];
    return NULL;
}

void config_file_free(struct config_file *cf)
{
    free(cf->text);
    free(cf->entries);
    memset(cf, 0, sizeof(*cf));
}
