/* tests/unit/common/test_auth.c: the auth file (syntax, errors with
 * file:line, mode check), token lookup by hash, bearer parsing, scopes and
 * prefixes, token generation and the reload that keeps the old table on a
 * bad edit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/auth.h"
#include "common/errors.h"

/* SHA-256("lkd_test-token-for-ci-deploy-0123456789abcdef") and of the
 * "dashboard" token, computed with `printf %s TOKEN | sha256sum`. */
#define TOK_CI "lkd_test-token-for-ci-deploy-0123456789abcdef"
#define TOK_DASH "lkd_test-token-for-the-dashboard-0123456789ab"
#define TOK_OPS "lkd_test-token-for-the-operators-0123456789ab"

static char hash_ci[80], hash_dash[80], hash_ops[80];

static int setup_hashes(void **state)
{
    (void)state;
    assert_int_equal(auth_hash_token(TOK_CI, strlen(TOK_CI), hash_ci, sizeof hash_ci), 0);
    assert_int_equal(auth_hash_token(TOK_DASH, strlen(TOK_DASH), hash_dash, sizeof hash_dash), 0);
    assert_int_equal(auth_hash_token(TOK_OPS, strlen(TOK_OPS), hash_ops, sizeof hash_ops), 0);
    return 0;
}

static auth_table *parse_ok(const char *text)
{
    auth_table *t = NULL;
    char err[256] = "";
    int rc = auth_table_parse(text, strlen(text), "auth.conf", &t, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed: %s", err);
    return t;
}

static void parse_err(const char *text, const char *want)
{
    auth_table *t = (auth_table *)1;
    char err[256] = "";
    assert_int_equal(auth_table_parse(text, strlen(text), "auth.conf", &t, err, sizeof err), -LOCKD_EINVAL);
    assert_null(t);
    if (strstr(err, want) == NULL)
        fail_msg("error %s does not contain %s", err, want);
}

static void test_hash_is_sha256_hex(void **state)
{
    (void)state;
    /* A known vector: SHA-256 of 32 'a's. */
    char out[80];
    const char *tok = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(auth_hash_token(tok, 32, out, sizeof out), 0);
    assert_string_equal(out, "sha256:3ba3f5f43b92602683c19aee62a20342b084dd5971ddd33808d81a328879a547");
    /* too short to be a random token, not token68, buffer too small */
    assert_int_equal(auth_hash_token("short", 5, out, sizeof out), -LOCKD_EINVAL);
    assert_int_equal(auth_hash_token("aaaaaaaaaaaaaaaa aaaaaaaaaaaaaaaaaa", 35, out, sizeof out), -LOCKD_EINVAL);
    assert_int_equal(auth_hash_token(tok, 32, out, 20), -LOCKD_EINVAL);
}

static void test_lookup_finds_each_token_and_nothing_else(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text,
             "# lockd auth file\n"
             "\n"
             "ci-deploy  %s  lock  deploy-,jobs-   # CI\n"
             "dashboard\t%s\tread\r\n"
             "ops %s admin *\n"
             "ops-box cert admin\n",
             hash_ci, hash_dash, hash_ops);
    auth_table *t = parse_ok(text);
    assert_int_equal(auth_table_count(t), 4);

    const struct auth_identity *ci = auth_lookup_token(t, TOK_CI, strlen(TOK_CI));
    assert_non_null(ci);
    assert_string_equal(ci->name, "ci-deploy");
    assert_int_equal(ci->scope, AUTH_SCOPE_LOCK);
    assert_int_equal(ci->n_prefixes, 2);
    assert_string_equal(ci->prefixes[0], "deploy-");
    assert_string_equal(ci->prefixes[1], "jobs-");
    assert_int_equal(ci->line, 3);

    const struct auth_identity *d = auth_lookup_token(t, TOK_DASH, strlen(TOK_DASH));
    assert_non_null(d);
    assert_string_equal(d->name, "dashboard");
    assert_int_equal(d->scope, AUTH_SCOPE_READ);
    assert_int_equal(d->n_prefixes, 0);

    const struct auth_identity *o = auth_lookup_token(t, TOK_OPS, strlen(TOK_OPS));
    assert_non_null(o);
    assert_int_equal(o->n_prefixes, 0); /* "*" */

    /* a token one byte off, a prefix of a token, empty, the hash itself */
    char near[64];
    snprintf(near, sizeof near, "%s", TOK_CI);
    near[10] ^= 1;
    assert_null(auth_lookup_token(t, near, strlen(near)));
    assert_null(auth_lookup_token(t, TOK_CI, strlen(TOK_CI) - 1));
    assert_null(auth_lookup_token(t, "", 0));
    assert_null(auth_lookup_token(t, hash_ci, strlen(hash_ci)));
    /* a cert line is never found by a token */
    assert_null(auth_lookup_token(t, "cert", 4));
    assert_null(auth_lookup_token(NULL, TOK_CI, strlen(TOK_CI)));
    auth_table_free(t);
}

static void test_many_tokens_all_found(void **state)
{
    (void)state;
    enum { N = 3000 };
    size_t cap = N * 120;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t off = 0;
    for (int i = 0; i < N; i++) {
        char tok[64], h[80];
        snprintf(tok, sizeof tok, "lkd_bulk-token-number-%06d-padding-padding", i);
        assert_int_equal(auth_hash_token(tok, strlen(tok), h, sizeof h), 0);
        off += (size_t)snprintf(text + off, cap - off, "id-%d %s read\n", i, h);
    }
    auth_table *t;
    char err[256];
    assert_int_equal(auth_table_parse(text, off, "bulk", &t, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        char tok[64], want[16];
        snprintf(tok, sizeof tok, "lkd_bulk-token-number-%06d-padding-padding", i);
        snprintf(want, sizeof want, "id-%d", i);
        const struct auth_identity *e = auth_lookup_token(t, tok, strlen(tok));
        assert_non_null(e);
        assert_string_equal(e->name, want);
    }
    auth_table_free(t);
    free(text);
}

static void test_parse_errors_name_file_and_line(void **state)
{
    (void)state;
    char text[512];
    parse_err("", "no credentials");
    parse_err("# only a comment\n\n", "no credentials");
    parse_err("\nalice\n", "auth.conf:2: expected IDENTITY CREDENTIAL SCOPE [PREFIXES], found 1 field");
    parse_err("alice sha256:00 read\n", "auth.conf:1: credential must be sha256:<64 hex digits>");
    /* a raw token pasted as the credential is not echoed back */
    auth_table *t;
    char err[256];
    snprintf(text, sizeof text, "alice %s read\n", TOK_CI);
    assert_int_equal(auth_table_parse(text, strlen(text), "auth.conf", &t, err, sizeof err), -LOCKD_EINVAL);
    assert_null(strstr(err, "test-token"));
    snprintf(text, sizeof text, "alice %s write\n", hash_ci);
    parse_err(text, "auth.conf:1: scope \"write\" is not read, lock or admin");
    snprintf(text, sizeof text, "al ice %s read\n", hash_ci);
    parse_err(text, "auth.conf:1: credential must be");
    snprintf(text, sizeof text, "al/ice %s read\n", hash_ci);
    parse_err(text, "auth.conf:1: identity: Owner contains non-printable/non-ascii byte 47 at offset 2");
    snprintf(text, sizeof text, "%065d %s read\n", 0, hash_ci);
    parse_err(text, "identity is too long (65 bytes > max of 64)");
    snprintf(text, sizeof text, "alice %s read jobs-,,x\n", hash_ci);
    parse_err(text, "empty prefix");
    snprintf(text, sizeof text, "alice %s read jobs/\n", hash_ci);
    parse_err(text, "prefix \"jobs/\": Name contains");
    snprintf(text, sizeof text, "alice %s read a b\n", hash_ci);
    parse_err(text, "more than 4 fields");
    snprintf(text, sizeof text, "alice %s read\nbob %s lock\n", hash_ci, hash_ci);
    parse_err(text, "auth.conf:2: same token hash as line 1");
    snprintf(text, sizeof text, "alice sha256:%064d read\nbob %s read\n", 0, hash_ci);
    memcpy(strstr(text, "sha256:") + 7 + 10, "zz", 2);
    parse_err(text, "auth.conf:1: credential: sha256: must be followed by 64 hex digits");
    snprintf(text, sizeof text, "alice %s read a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n", hash_ci);
    parse_err(text, "more than 16 prefixes");
    const char nul[] = "alice cert read\0\n";
    assert_int_equal(auth_table_parse(nul, sizeof nul - 1, "auth.conf", &t, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "NUL byte"));
}

static void test_same_identity_on_two_lines_is_rotation(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "ci %s lock\nci %s lock\n", hash_ci, hash_dash);
    auth_table *t = parse_ok(text);
    const struct auth_identity *a = auth_lookup_token(t, TOK_CI, strlen(TOK_CI));
    const struct auth_identity *b = auth_lookup_token(t, TOK_DASH, strlen(TOK_DASH));
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_string_equal(a->name, b->name);
    auth_table_free(t);
}

static void test_scopes_are_ordered_and_prefixes_limit_names(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "ci %s lock deploy-,jobs-\nro %s read\nops %s admin\n", hash_ci, hash_dash, hash_ops);
    auth_table *t = parse_ok(text);
    const struct auth_identity *ci = auth_lookup_token(t, TOK_CI, strlen(TOK_CI));
    const struct auth_identity *ro = auth_lookup_token(t, TOK_DASH, strlen(TOK_DASH));
    const struct auth_identity *ops = auth_lookup_token(t, TOK_OPS, strlen(TOK_OPS));

    assert_int_equal(auth_allows(NULL, AUTH_SCOPE_READ, NULL, 0, false), AUTH_MISSING);
    /* read */
    assert_int_equal(auth_allows(ro, AUTH_SCOPE_READ, "anything", 8, false), AUTH_ALLOW);
    assert_int_equal(auth_allows(ro, AUTH_SCOPE_LOCK, "anything", 8, false), AUTH_SCOPE);
    assert_int_equal(auth_allows(ro, AUTH_SCOPE_ADMIN, NULL, 0, false), AUTH_SCOPE);
    /* lock includes read, within its prefixes */
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_READ, "jobs-1", 6, false), AUTH_ALLOW);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_LOCK, "jobs-1", 6, false), AUTH_ALLOW);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_LOCK, "deploy-", 7, false), AUTH_ALLOW);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_LOCK, "deploy", 6, false), AUTH_PREFIX);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_LOCK, "other", 5, false), AUTH_PREFIX);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_ADMIN, "jobs-1", 6, false), AUTH_SCOPE);
    /* routes without a name: scope only */
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_READ, NULL, 0, false), AUTH_ALLOW);
    /* listings: the requested prefix must lie inside an allowed one */
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_READ, "jobs-", 5, true), AUTH_ALLOW);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_READ, "jobs-2024", 9, true), AUTH_ALLOW);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_READ, "job", 3, true), AUTH_PREFIX);
    assert_int_equal(auth_allows(ci, AUTH_SCOPE_READ, "", 0, true), AUTH_PREFIX);
    assert_int_equal(auth_allows(ro, AUTH_SCOPE_READ, "", 0, true), AUTH_ALLOW);
    /* admin includes everything */
    assert_int_equal(auth_allows(ops, AUTH_SCOPE_ADMIN, "x", 1, false), AUTH_ALLOW);
    assert_int_equal(auth_allows(ops, AUTH_SCOPE_READ, "", 0, true), AUTH_ALLOW);

    char msg[256];
    assert_string_equal(auth_decision_message(AUTH_SCOPE, ro, AUTH_SCOPE_LOCK, msg, sizeof msg),
                        "Identity ro has scope read; this needs lock");
    assert_string_equal(auth_decision_message(AUTH_PREFIX, ci, AUTH_SCOPE_LOCK, msg, sizeof msg),
                        "Identity ci may only use lock names starting with deploy-, jobs-");
    assert_string_equal(auth_decision_message(AUTH_MISSING, NULL, AUTH_SCOPE_READ, msg, sizeof msg),
                        "Authentication required");
    assert_int_equal(auth_decision_status(AUTH_MISSING), 401);
    assert_int_equal(auth_decision_status(AUTH_BAD_TOKEN), 401);
    assert_int_equal(auth_decision_status(AUTH_SCOPE), 403);
    assert_int_equal(auth_decision_status(AUTH_PREFIX), 403);
    assert_int_equal(auth_decision_status(AUTH_NOT_HOLDER), 403);
    assert_int_equal(auth_decision_status(AUTH_ALLOW), 200);
    auth_table_free(t);
}

static void test_cert_identities(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "ci %s lock\nops-box cert admin\nreader.example cert read jobs-\n", hash_ci);
    auth_table *t = parse_ok(text);
    const char *names[] = {"unknown.example", "reader.example", "ops-box"};
    size_t lens[] = {15, 14, 7};
    const struct auth_identity *e = auth_lookup_cert(t, names, lens, 3);
    assert_non_null(e);
    assert_string_equal(e->name, "reader.example"); /* first name that matches wins */
    e = auth_lookup_cert(t, names + 2, lens + 2, 1);
    assert_non_null(e);
    assert_int_equal(e->scope, AUTH_SCOPE_ADMIN);
    /* a token line's identity is not a certificate identity */
    const char *ci[] = {"ci"};
    size_t cil[] = {2};
    assert_null(auth_lookup_cert(t, ci, cil, 1));
    assert_null(auth_lookup_cert(t, names, lens, 1));
    auth_table_free(t);
}

static void test_bearer_parsing(void **state)
{
    (void)state;
    const char *tok;
    size_t len;
#define BEARER_OK(s, want)                                                                                             \
    do {                                                                                                               \
        assert_int_equal(auth_parse_bearer(s, strlen(s), &tok, &len), 0);                                              \
        assert_int_equal(len, strlen(want));                                                                           \
        assert_memory_equal(tok, want, len);                                                                           \
    } while (0)
    BEARER_OK("Bearer abc", "abc");
    BEARER_OK("bearer abc", "abc");
    BEARER_OK("BEARER   a-b.c_d~e+f/g==", "a-b.c_d~e+f/g==");
    BEARER_OK("Bearer abc  ", "abc");
    static const char *const bad[] = {"",           "Bearer",       "Bearer ",    "Bearer  ",
                                      "Basic abc",  "Bearerabc",    "Bearer a b", "Bearer =abc",
                                      "Bearer a=b", "Bearer a\x01", "Token abc",  "Bearer\tabc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(auth_parse_bearer(bad[i], strlen(bad[i]), &tok, &len), -LOCKD_EINVAL);
    char big[600];
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'a', sizeof big - 8);
    big[sizeof big - 1] = '\0';
    assert_int_equal(auth_parse_bearer(big, strlen(big), &tok, &len), -LOCKD_EINVAL);
}

static void test_generated_tokens_are_distinct_and_valid(void **state)
{
    (void)state;
    char a[64], b[64], h[80];
    assert_int_equal(auth_token_generate(a, sizeof a), 0);
    assert_int_equal(auth_token_generate(b, sizeof b), 0);
    assert_int_equal(strlen(a), AUTH_TOKEN_LEN);
    assert_memory_equal(a, "lkd_", 4);
    assert_string_not_equal(a, b);
    assert_int_equal(auth_hash_token(a, strlen(a), h, sizeof h), 0);
    assert_int_equal(auth_token_generate(a, AUTH_TOKEN_LEN), -LOCKD_EINVAL);

    char tok[64], line[256], err[256];
    assert_int_equal(
        auth_token_line("ci-deploy", "lock", "jobs-,deploy-", tok, sizeof tok, line, sizeof line, err, sizeof err), 0);
    auth_table *t = parse_ok(line);
    const struct auth_identity *e = auth_lookup_token(t, tok, strlen(tok));
    assert_non_null(e);
    assert_string_equal(e->name, "ci-deploy");
    assert_int_equal(e->n_prefixes, 2);
    auth_table_free(t);
    assert_int_equal(auth_token_line("bad id", "lock", NULL, tok, sizeof tok, line, sizeof line, err, sizeof err),
                     -LOCKD_EINVAL);
    assert_int_equal(auth_token_line("ok", "root", NULL, tok, sizeof tok, line, sizeof line, err, sizeof err),
                     -LOCKD_EINVAL);
    assert_non_null(strstr(err, "scope \"root\""));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_file_mode_is_checked_and_reload_keeps_old_table(void **state)
{
    (void)state;
    char dir[] = "/tmp/lockd-auth-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/auth.conf", dir);
    char text[512], err[256];
    snprintf(text, sizeof text, "ci %s lock\n", hash_ci);

    static const mode_t bad_modes[] = {0644, 0660, 0604, 0666, 0700, 0620};
    auth_table *t;
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        write_file(path, text, bad_modes[i]);
        assert_int_equal(auth_table_load(path, &t, err, sizeof err), -LOCKD_EINVAL);
        assert_non_null(strstr(err, "chmod 600"));
    }
    static const mode_t good_modes[] = {0600, 0640, 0400, 0440};
    for (size_t i = 0; i < sizeof good_modes / sizeof good_modes[0]; i++) {
        write_file(path, text, good_modes[i]);
        assert_int_equal(auth_table_load(path, &t, err, sizeof err), 0);
        auth_table_free(t);
    }
    assert_int_equal(chmod(path, 0600), 0);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(auth_table_load(missing, &t, err, sizeof err), -LOCKD_EIO);
    assert_int_equal(auth_table_load(dir, &t, err, sizeof err), -LOCKD_EINVAL); /* a directory */

    struct auth_holder h = {0};
    assert_int_equal(auth_holder_load(&h, path, err, sizeof err), 0);
    assert_int_equal(h.generation, 1);
    assert_non_null(auth_lookup_token(h.table, TOK_CI, strlen(TOK_CI)));

    /* a bad edit: the old table stays, the error names the line */
    snprintf(text, sizeof text, "ci %s lock\nbroken line\n", hash_dash);
    write_file(path, text, 0600);
    assert_int_equal(auth_holder_reload(&h, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "auth.conf:2:"));
    assert_int_equal(h.generation, 1);
    assert_non_null(auth_lookup_token(h.table, TOK_CI, strlen(TOK_CI)));

    /* a good edit: the new token works, the old one does not */
    snprintf(text, sizeof text, "ci %s lock\n", hash_dash);
    write_file(path, text, 0600);
    assert_int_equal(auth_holder_reload(&h, err, sizeof err), 0);
    assert_int_equal(h.generation, 2);
    assert_null(auth_lookup_token(h.table, TOK_CI, strlen(TOK_CI)));
    assert_non_null(auth_lookup_token(h.table, TOK_DASH, strlen(TOK_DASH)));

    /* mode loosened after start: reload refuses, old table kept */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(auth_holder_reload(&h, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(auth_lookup_token(h.table, TOK_DASH, strlen(TOK_DASH)));
    auth_holder_clear(&h);
    assert_null(h.table);
    assert_int_equal(auth_holder_reload(&h, err, sizeof err), -LOCKD_ENOENT);

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_sha256_hex),
        cmocka_unit_test(test_lookup_finds_each_token_and_nothing_else),
        cmocka_unit_test(test_many_tokens_all_found),
        cmocka_unit_test(test_parse_errors_name_file_and_line),
        cmocka_unit_test(test_same_identity_on_two_lines_is_rotation),
        cmocka_unit_test(test_scopes_are_ordered_and_prefixes_limit_names),
        cmocka_unit_test(test_cert_identities),
        cmocka_unit_test(test_bearer_parsing),
        cmocka_unit_test(test_generated_tokens_are_distinct_and_valid),
        cmocka_unit_test(test_file_mode_is_checked_and_reload_keeps_old_table),
    };
    return cmocka_run_group_tests(tests, setup_hashes, NULL);
}
