/* common/json.h: the small, strict JSON reader lockd needs (request bodies:
 * a flat object of string/number/bool/null values; the cluster file: an
 * object whose values are strings or flat objects of strings) and a string
 * escaper for writing. No allocation: the reader fills caller arrays with
 * pointers into the input. */
#ifndef LOCKD_COMMON_JSON_H
#define LOCKD_COMMON_JSON_H

#include <stddef.h>

enum json_type { JSON_STRING, JSON_NUMBER, JSON_TRUE, JSON_FALSE, JSON_NULL, JSON_OBJECT };

struct json_member {
    const char *key; /* raw bytes inside the input, escapes NOT decoded */
    size_t key_len;
    enum json_type type;
    const char *value; /* STRING: raw bytes between the quotes (escapes not
                          decoded); NUMBER/TRUE/FALSE/NULL: the literal;
                          OBJECT: the whole "{...}" text, parse it again */
    size_t value_len;
    int has_escapes; /* STRING/key: contains a backslash escape */
};

/* Parses one JSON object spanning all of text[0..len) (surrounding white
 * space allowed). Nested objects are allowed as values (depth <= 4), arrays
 * are not. Duplicate keys are an error. Returns the number of members
 * (0..max) or -LOCKD_EINVAL (syntax error; err gets a short message such as
 * "invalid JSON at offset 7: expected ':'") or -LOCKD_ETOOBIG (> max). */
int json_parse_object(const char *text, size_t len, struct json_member *out, size_t max, char *err, size_t err_cap);

/* Decodes a JSON string's raw bytes (as in json_member.value) into dst,
 * handling \" \\ \/ \b \f \n \r \t \uXXXX (with surrogate pairs, to UTF-8).
 * Returns the decoded length or -LOCKD_EINVAL / -LOCKD_ETOOBIG. */
int json_decode_string(const char *raw, size_t len, char *dst, size_t dst_cap);

/* Writes s[0..len) as a JSON string body (no quotes) into dst, escaping
 * '"', '\\' and control bytes (\u00XX). Returns the length it needs; writes
 * at most dst_cap bytes (snprintf semantics, no NUL). */
size_t json_escape(const char *s, size_t len, char *dst, size_t dst_cap);

#endif
