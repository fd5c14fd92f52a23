/* tests/unit/master/test_config_file.c: the config file's syntax
 * (master/config_file.h) and its meaning through options_parse: every
 * option is a key, the command line overrides the file, and every error is
 * one line naming the file and the line. Files are written into a
 * mkdtemp() directory, removed after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/errors.h"
#include "master/config_file.h"
#include "master/options.h"

/* ---- the syntax ----------------------------------------------------------- */

static int parse_text(const char *text, struct config_file *cf, unsigned *line, char *err)
{
    return config_file_parse(text, strlen(text), cf, line, err, 256);
}

static void test_keys_values_comments_blanks_and_quotes(void **state)
{
    struct config_file cf;
    unsigned line;
    char err[256];
    const char *text = "# lockd\n"
                       "\n"
                       "   listen =   0.0.0.0:2080   \n"
                       "data-dir=/var/lib/lockd\r\n"
                       "\t# indented comment\n"
                       "server-header = \"  padded \\\"x\\\" \\\\ \"\n"
                       "empty = \"\"\n"
                       "hash = a#b\n"
                       "last = no newline at the end";
    assert_int_equal(parse_text(text, &cf, &line, err), 0);
    assert_int_equal(cf.n, 6);
    assert_string_equal(config_file_get(&cf, "listen")->value, "0.0.0.0:2080");
    assert_int_equal(config_file_get(&cf, "listen")->line, 3);
    assert_string_equal(config_file_get(&cf, "data-dir")->value, "/var/lib/lockd");
    assert_string_equal(config_file_get(&cf, "server-header")->value, "  padded \"x\" \\ ");
    assert_string_equal(config_file_get(&cf, "empty")->value, "");
    assert_string_equal(config_file_get(&cf, "hash")->value, "a#b");
    assert_string_equal(config_file_get(&cf, "last")->value, "no newline at the end");
    assert_int_equal(config_file_get(&cf, "last")->line, 9);
    assert_null(config_file_get(&cf, "nothing"));
    config_file_free(&cf);
}

static void test_empty_file_has_no_entries(void **state)
{
    struct config_file cf;
    unsigned line;
    char err[256];
    assert_int_equal(parse_text("", &cf, &line, err), 0);
    assert_int_equal(cf.n, 0);
    config_file_free(&cf);
    assert_int_equal(parse_text("\n# only\n\n", &cf, &line, err), 0);
    assert_int_equal(cf.n, 0);
    config_file_free(&cf);
}

static void assert_syntax_error(const char *text, unsigned want_line, const char *needle)
{
    struct config_file cf;
    unsigned line = 99;
    char err[256] = "";
    int rc = parse_text(text, &cf, &line, err);
    if (rc == 0 || line != want_line || strstr(err, needle) == NULL)
        fail_msg("%s: want an error on line %u mentioning \"%s\", got %d on line %u: \"%s\"", text, want_line, needle,
                 rc, line, err);
    assert_null(strchr(err, '\n'));
    assert_null(cf.text);
    assert_null(cf.entries);
}

static void test_syntax_errors_name_their_line(void **state)
{
    assert_syntax_error("listen 0.0.0.0:80\n", 1, "expected key = value");
    assert_syntax_error("# ok\nListen = x\n", 2, "expected key = value");
    assert_syntax_error("a = 1\n\ndata_dir = x\n", 3, "expected key = value");
    assert_syntax_error("= x\n", 1, "expected key = value");
    assert_syntax_error("a = \"open\n", 1, "no closing quote");
    assert_syntax_error("a = \"x\" y\n", 1, "after the closing quote");
    assert_syntax_error("a = \"\\n\"\n", 1, "escaped");
    assert_syntax_error("a = 1\nb = 2\na = 3\n", 3, "already set on line 1");
    char key[80];
    memset(key, 'k', 64);
    snprintf(key + 64, sizeof(key) - 64, " = v\n");
    assert_syntax_error(key, 1, "longer than 63");
}

static void test_long_lines_nul_bytes_and_large_files_are_refused(void **state)
{
    struct config_file cf;
    unsigned line;
    char err[256];
    size_t n = CONFIG_LINE_MAX + 16;
    char *big = malloc(CONFIG_FILE_MAX + 2);
    assert_non_null(big);
    memcpy(big, "a = 1\nb = ", 10);
    memset(big + 10, 'x', n);
    big[10 + n] = '\0';
    assert_int_equal(config_file_parse(big, strlen(big), &cf, &line, err, sizeof(err)), -LOCKD_ETOOBIG);
    assert_int_equal(line, 2);
    assert_non_null(strstr(err, "line longer than"));

    memset(big, '#', CONFIG_FILE_MAX + 1);
    assert_int_equal(config_file_parse(big, CONFIG_FILE_MAX + 1, &cf, &line, err, sizeof(err)), -LOCKD_ETOOBIG);
    assert_int_equal(line, 0);
    free(big);

    const char with_nul[] = "a = 1\nb = 2\0\n";
    assert_int_equal(config_file_parse(with_nul, sizeof(with_nul) - 1, &cf, &line, err, sizeof(err)), -LOCKD_EINVAL);
    assert_int_equal(line, 2);
    assert_non_null(strstr(err, "NUL"));
}

static void test_missing_file_is_an_io_error_saying_why(void **state)
{
    struct config_file cf;
    unsigned line;
    char err[256];
    assert_int_equal(config_file_load("/nonexistent/lockd.conf", &cf, &line, err, sizeof(err)), -LOCKD_EIO);
    assert_int_equal(line, 0);
    assert_non_null(strstr(err, "No such file"));
}

/* ---- through options_parse ------------------------------------------------ */

struct fx {
    char dir[64];
    char file[96];
    struct lockd_config cfg;
    char err[512];
};

static int fx_setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    const char *base = getenv("TMPDIR");
    snprintf(x->dir, sizeof(x->dir), "%s/lockd-conf-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->file, sizeof(x->file), "%s/lockd.conf", x->dir);
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *x = *state;
    unlink(x->file);
    rmdir(x->dir);
    free(x);
    return 0;
}

static void write_file(struct fx *x, const char *text)
{
    FILE *f = fopen(x->file, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* options_parse with "--config FILE" first, then the given arguments. */
static enum options_result parse_with(struct fx *x, ...)
{
    char *argv[32] = {"lockd", "--config", x->file};
    int argc = 3;
    va_list ap;
    va_start(ap, x);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = (char *)a;
    va_end(ap);
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    x->err[0] = '\0';
    enum options_result r = options_parse(argc, argv, &x->cfg, out, x->err, sizeof(x->err));
    fclose(out);
    return r;
}
#define PARSE(x, ...) parse_with((x), ##__VA_ARGS__, (const char *)NULL)

static void assert_error(struct fx *x, enum options_result r, const char *needle)
{
    if (r != OPTIONS_ERROR || strstr(x->err, needle) == NULL)
        fail_msg("want an error mentioning \"%s\", got %d: \"%s\"", needle, (int)r, x->err);
    assert_null(strchr(x->err, '\n'));
}

static void test_every_kind_of_option_is_a_key(void **state)
{
    struct fx *x = *state;
    write_file(x, "listen = 127.0.0.1:3080\n"
                  "workers = 3\n"
                  "store = memory\n"
                  "data-dir = /var/lib/lockd\n"
                  "admin-socket = /run/lockd/lockd.sock\n"
                  "admin-group = 0\n"
                  "max-locks = 1000\n"
                  "api-timeout = 2s\n"
                  "election-timeout = 1s\n"
                  "heartbeat-timeout = 50ms\n"
                  "snapshot-threshold = 100\n"
                  "snapshot-trailing = 10\n"
                  "ttl-min = 1s\n"
                  "ttl-max = 1h\n"
                  "wait-max = 1m\n"
                  "log-level = debug\n"
                  "access-log = true\n"
                  "join = yes\n"
                  "server-header = acme/1\n");
    assert_int_equal(PARSE(x), OPTIONS_RUN);
    struct lockd_config *c = &x->cfg;
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 3080);
    assert_int_equal(c->self->raft_port, 4080);
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->store, STORE_MEMORY);
    assert_string_equal(c->data_dir, "/var/lib/lockd");
    assert_string_equal(c->db_path, "/var/lib/lockd/locks.mdb");
    assert_string_equal(c->admin_socket, "/run/lockd/lockd.sock");
    assert_int_equal(c->admin_gid, 0);
    assert_int_equal(c->max_locks, 1000);
    assert_int_equal(c->api_timeout_ms, 2000);
    assert_int_equal(c->election_timeout_ms, 1000);
    assert_int_equal(c->heartbeat_timeout_ms, 50);
    assert_int_equal(c->snapshot_threshold, 100);
    assert_int_equal(c->snapshot_trailing, 10);
    assert_int_equal(c->ttl_min_ms, 1000);
    assert_int_equal(c->ttl_max_ms, 3600000);
    assert_int_equal(c->wait_max_ms, 60000);
    assert_int_equal(c->log_level, LOG_DEBUG);
    assert_true(c->access_log);
    assert_true(c->join);
    assert_string_equal(c->server_header, "acme/1");
    assert_string_equal(c->config_path, x->file);
}

static void test_cluster_and_id_keys_pick_the_entry(void **state)
{
    struct fx *x = *state;
    char cluster[128];
    snprintf(cluster, sizeof(cluster), "%s/cluster.json", x->dir);
    FILE *f = fopen(cluster, "w");
    assert_non_null(f);
    fputs("{\"1\":\"127.0.0.1:5080\",\"2\":\"127.0.0.1:5081\"}", f);
    fclose(f);
    char text[256];
    snprintf(text, sizeof(text), "cluster = %s\nid = 2\n", cluster);
    write_file(x, text);
    enum options_result r = PARSE(x);
    unlink(cluster);
    assert_int_equal(r, OPTIONS_RUN);
    assert_int_equal(x->cfg.node_id, 2);
    assert_int_equal(x->cfg.listen_port, 5081);
    assert_int_equal(x->cfg.n_nodes, 2);
}

static void test_command_line_overrides_the_file_wherever_it_stands(void **state)
{
    struct fx *x = *state;
    write_file(x, "workers = 3\nlog-level = warn\naccess-log = true\nlisten = 127.0.0.1:3080\n");
    assert_int_equal(PARSE(x, "--workers", "2", "--listen=127.0.0.1:3090"), OPTIONS_RUN);
    assert_int_equal(x->cfg.workers, 2);
    assert_int_equal(x->cfg.listen_port, 3090);
    assert_int_equal(x->cfg.log_level, LOG_WARN); /* from the file */
    assert_true(x->cfg.access_log);
    /* --config after the options it is overridden by: still the file first */
    char *argv[] = {"lockd", "--workers", "1", "--config", x->file, NULL};
    assert_int_equal(options_parse(5, argv, &x->cfg, stdout, x->err, sizeof(x->err)), OPTIONS_RUN);
    assert_int_equal(x->cfg.workers, 1);
    assert_int_equal(x->cfg.listen_port, 3080);
}

static void test_flags_take_booleans_in_the_file(void **state)
{
    struct fx *x = *state;
    const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof(text), "access-log = %s\n", yes[i]);
        write_file(x, text);
        assert_int_equal(PARSE(x), OPTIONS_RUN);
        assert_true(x->cfg.access_log);
        snprintf(text, sizeof(text), "access-log = %s\n", no[i]);
        write_file(x, text);
        assert_int_equal(PARSE(x), OPTIONS_RUN);
        assert_false(x->cfg.access_log);
    }
    write_file(x, "access-log = maybe\n");
    assert_error(x, PARSE(x), ":1: access-log: \"maybe\" is not true or false");
}

static void test_unknown_keys_and_bad_values_name_file_and_line(void **state)
{
    struct fx *x = *state;
    char want[256];
    write_file(x, "# header\nworkers = 2\nfrobnicate = 1\n");
    snprintf(want, sizeof(want), "%s:3: unknown key \"frobnicate\"", x->file);
    assert_error(x, PARSE(x), want);

    write_file(x, "\nworkers = many\n");
    snprintf(want, sizeof(want), "%s:2: workers: \"many\" is not a non-negative integer", x->file);
    assert_error(x, PARSE(x), want);

    const struct {
        const char *text, *needle;
    } cases[] = {
        {"workers = 0\n", ":1: workers must be between 1 and"},
        {"api-timeout = soon\n", ":1: api-timeout: \"soon\" is not a duration"},
        {"store = sqlite\n", ":1: store: \"sqlite\" is not lmdb or memory"},
        {"log-level = loud\n", ":1: log-level: \"loud\" is not debug, info, warn or error"},
        {"\n\n\nid = 0\n", ":4: id must be a positive integer"},
        {"admin-group = no-such-group-xyz\n", ":1: admin-group: no group \"no-such-group-xyz\""},
        {"server-header = \"\"\n", ":1: server-header: empty value"},
        {"config = /etc/other.conf\n", ":1: unknown key \"config\""},
        {"help = true\n", ":1: unknown key \"help\""},
        {"listen = \n", ":1: listen: empty value"},
        {"listen = 1.2.3.4:http\n", ":1: listen: bad address \"1.2.3.4:http\""},
        {"listen 1\n", ":1: expected key = value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(x, cases[i].text);
        assert_error(x, PARSE(x), cases[i].needle);
    }
}

static void test_missing_config_file_is_an_error_naming_it(void **state)
{
    struct fx *x = *state;
    unlink(x->file);
    char want[256];
    snprintf(want, sizeof(want), "cannot read config file %s: No such file", x->file);
    assert_error(x, PARSE(x), want);
    char *argv[] = {"lockd", "--config", NULL};
    assert_int_equal(options_parse(2, argv, &x->cfg, stdout, x->err, sizeof(x->err)), OPTIONS_ERROR);
    assert_non_null(strstr(x->err, "--config needs a value"));
}

static void test_server_header_values(void **state)
{
    struct fx *x = *state;
    write_file(x, "");
    assert_int_equal(PARSE(x), OPTIONS_RUN);
    assert_string_equal(x->cfg.server_header, "lockd/" LOCKD_VERSION);
    assert_int_equal(PARSE(x, "--server-header", "off"), OPTIONS_RUN);
    assert_string_equal(x->cfg.server_header, "");
    assert_int_equal(PARSE(x, "--server-header", "my proxy 1.0"), OPTIONS_RUN);
    assert_string_equal(x->cfg.server_header, "my proxy 1.0");
    assert_error(x, PARSE(x, "--server-header", "a\r\nX-Evil: 1"), "option --server-header must be off or");
    assert_error(x, PARSE(x, "--server-header", " lead"), "must be off or");
    char big[200];
    memset(big, 'v', 129);
    big[129] = '\0';
    assert_error(x, PARSE(x, "--server-header", big), "must be off or");
    big[128] = '\0';
    assert_int_equal(PARSE(x, "--server-header", big), OPTIONS_RUN);
}

static void test_admin_group_by_name_or_number_defaults_to_none(void **state)
{
    struct fx *x = *state;
    write_file(x, "");
    assert_int_equal(PARSE(x), OPTIONS_RUN);
    assert_int_equal(x->cfg.admin_gid, -1);
    assert_int_equal(PARSE(x, "--admin-group", "root"), OPTIONS_RUN); /* gid 0 on every Linux */
    assert_int_equal(x->cfg.admin_gid, 0);
    assert_int_equal(PARSE(x, "--admin-group", "4242"), OPTIONS_RUN);
    assert_int_equal(x->cfg.admin_gid, 4242);
    assert_error(x, PARSE(x, "--admin-group", ""), "option --admin-group: empty value");
    assert_error(x, PARSE(x, "--admin-group", "no-such-group-xyz"), "option --admin-group: no group");
}

static void test_help_names_the_reloaded_keys_and_they_are_reloadable(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    options_usage(out);
    fclose(out);
    assert_non_null(strstr(text, "--config FILE"));
    assert_non_null(strstr(text, "SIGHUP re-reads the config file and applies, when changed: log-level, access-log, "
                                 "server-header;"));
    free(text);
    assert_true(options_reloadable("log-level"));
    assert_true(options_reloadable("access-log"));
    assert_true(options_reloadable("server-header"));
    assert_false(options_reloadable("workers"));
    assert_false(options_reloadable("listen"));
    assert_false(options_reloadable("nonsense"));
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_values_comments_blanks_and_quotes),
        cmocka_unit_test(test_empty_file_has_no_entries),
        cmocka_unit_test(test_syntax_errors_name_their_line),
        cmocka_unit_test(test_long_lines_nul_bytes_and_large_files_are_refused),
        cmocka_unit_test(test_missing_file_is_an_io_error_saying_why),
        FX(test_every_kind_of_option_is_a_key),
        FX(test_cluster_and_id_keys_pick_the_entry),
        FX(test_command_line_overrides_the_file_wherever_it_stands),
        FX(test_flags_take_booleans_in_the_file),
        FX(test_unknown_keys_and_bad_values_name_file_and_line),
        FX(test_missing_config_file_is_an_error_naming_it),
        FX(test_server_header_values),
        FX(test_admin_group_by_name_or_number_defaults_to_none),
        cmocka_unit_test(test_help_names_the_reloaded_keys_and_they_are_reloadable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
