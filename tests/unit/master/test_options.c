/* tests/unit/master/test_options.c: the command line and the cluster file
 * (API.md "Command line and cluster file"): defaults, every spelling of an
 * option, the cluster file's two forms, and errors that name the problem.
 * Cluster files are written into a mkdtemp() directory, removed after. */
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
#include "common/limits.h"
#include "master/options.h"

/* ---- helpers ------------------------------------------------------------- */

struct fx {
    char dir[64];
    char file[96]; /* the cluster file, once written */
    struct lockd_config cfg;
    char err[256];
    char *out;     /* what options_parse printed */
    size_t out_len;
};

static int fx_setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    const char *base = getenv("TMPDIR");
    snprintf(x->dir, sizeof(x->dir), "%s/lockd-opts-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->file, sizeof(x->file), "%s/cluster.json", x->dir);
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *x = *state;
    unlink(x->file);
    rmdir(x->dir);
    free(x->out);
    free(x);
    return 0;
}

static void write_cluster(struct fx *x, const char *json)
{
    FILE *f = fopen(x->file, "w");
    assert_non_null(f);
    assert_int_equal(fputs(json, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Runs options_parse on a NULL-terminated list of arguments (argv[0] is
 * added). The token "FILE" stands for the fixture's cluster file, and
 * "=FILE" at the end of an argument for "=" + that path. */
static enum options_result parse(struct fx *x, ...)
{
    char *argv[32];
    char *owned[32];
    int argc = 0, n_owned = 0;
    argv[argc++] = "lockd";
    va_list ap;
    va_start(ap, x);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(argc < 31);
        size_t l = strlen(a);
        if (strcmp(a, "FILE") == 0) {
            argv[argc++] = x->file;
        } else if (l > 5 && strcmp(a + l - 5, "=FILE") == 0) {
            char *s = malloc(l + strlen(x->file) + 1);
            assert_non_null(s);
            snprintf(s, l + strlen(x->file) + 1, "%.*s=%s", (int)(l - 5), a, x->file);
            argv[argc++] = owned[n_owned++] = s;
        } else {
            argv[argc++] = (char *)a;
        }
    }
    va_end(ap);
    argv[argc] = NULL;
    free(x->out);
    x->out = NULL;
    x->out_len = 0;
    FILE *out = open_memstream(&x->out, &x->out_len);
    assert_non_null(out);
    x->err[0] = '\0';
    enum options_result r = options_parse(argc, argv, &x->cfg, out, x->err, sizeof(x->err));
    fclose(out);
    for (int i = 0; i < n_owned; i++)
        free(owned[i]);
    return r;
}

#define PARSE(x, ...) parse((x), __VA_ARGS__, (const char *)NULL)
#define PARSE0(x) parse((x), (const char *)NULL)

static void assert_error_mentions(struct fx *x, enum options_result r, const char *needle)
{
    if (r != OPTIONS_ERROR || strstr(x->err, needle) == NULL)
        fail_msg("want OPTIONS_ERROR mentioning \"%s\", got %d: \"%s\"", needle, (int)r, x->err);
    assert_null(strchr(x->err, '\n')); /* one line */
}

static void assert_cluster_error(struct fx *x, const char *json, const char *needle)
{
    write_cluster(x, json);
    enum options_result r = PARSE(x, "-cluster", "FILE", "-id", "1");
    if (r != OPTIONS_ERROR || strstr(x->err, needle) == NULL)
        fail_msg("cluster file %s: want an error mentioning \"%s\", got %d: \"%s\"", json, needle, (int)r,
                 x->err);
}

/* ---- defaults and the single-node form ----------------------------------- */

static void test_no_arguments_is_single_node_on_2080_with_lockd_data(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE0(x), OPTIONS_RUN);
    const struct lockd_config *c = &x->cfg;
    assert_int_equal(c->listen_port, 2080);
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_string_equal(c->data_dir, "lockd-data");
    assert_string_equal(c->db_path, "lockd-data/locks.mdb");
    assert_string_equal(c->raft_dir, "lockd-data/raft");
    assert_string_equal(c->admin_socket, "lockd-data/lockd.sock");
    assert_int_equal(c->node_id, 1);
    assert_int_equal(c->n_nodes, 1);
    assert_non_null(c->self);
    assert_ptr_equal(c->self, &c->nodes[0]);
    assert_int_equal(c->self->id, 1);
    assert_int_equal(c->self->http_port, 2080);
    assert_int_equal(c->self->raft_port, 3080);
    assert_string_equal(c->self->raft_host, "127.0.0.1");
    assert_int_equal(c->store, STORE_LMDB);
    assert_int_equal(c->api_timeout_ms, 5000);
    assert_int_equal(c->ttl_min_ms, 100);
    assert_int_equal(c->ttl_max_ms, 24ull * 3600 * 1000);
    assert_int_equal(c->wait_max_ms, 5ull * 60 * 1000);
    assert_int_equal(c->max_locks, LOCKD_DEFAULT_MAX_LOCKS);
    assert_true(c->workers >= 1 && c->workers <= LOCKD_MAX_WORKERS);
    assert_true(c->heartbeat_timeout_ms < c->election_timeout_ms);
    assert_int_equal(c->log_level, LOG_INFO);
    assert_int_equal(x->out_len, 0); /* prints nothing */
}

static void test_listen_sets_bind_address_and_raft_port_plus_1000(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "--listen", "127.0.0.1:9000"), OPTIONS_RUN);
    assert_string_equal(x->cfg.listen_host, "127.0.0.1");
    assert_int_equal(x->cfg.listen_port, 9000);
    assert_int_equal(x->cfg.self->raft_port, 10000);
    assert_string_equal(x->cfg.self->raft_host, "127.0.0.1");

    /* Every interface: raft still talks to itself on loopback. */
    assert_int_equal(PARSE(x, "--listen", "0.0.0.0:9001"), OPTIONS_RUN);
    assert_string_equal(x->cfg.listen_host, "0.0.0.0");
    assert_int_equal(x->cfg.listen_port, 9001);
    assert_string_equal(x->cfg.self->raft_host, "127.0.0.1");

    /* Empty host is every interface; a missing port is 2080. */
    assert_int_equal(PARSE(x, "--listen", ":9002"), OPTIONS_RUN);
    assert_string_equal(x->cfg.listen_host, "0.0.0.0");
    assert_int_equal(x->cfg.listen_port, 9002);
    assert_int_equal(PARSE(x, "--listen", "127.0.0.1"), OPTIONS_RUN);
    assert_int_equal(x->cfg.listen_port, 2080);

    /* A name is resolved for raft. */
    assert_int_equal(PARSE(x, "-listen", "localhost:9003"), OPTIONS_RUN);
    assert_string_equal(x->cfg.listen_host, "localhost");
    assert_string_equal(x->cfg.self->raft_host, "127.0.0.1");
}

static void test_bad_listen_addresses_are_errors(void **state)
{
    struct fx *x = *state;
    const char *bad[] = {"127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:80x", "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_error_mentions(x, PARSE(x, "--listen", bad[i]), bad[i]);
    /* The raft port would be past 65535. */
    assert_error_mentions(x, PARSE(x, "--listen", "127.0.0.1:65000"), "raft port");
}

static void test_single_node_id_flag_sets_node_id(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "-id", "7"), OPTIONS_RUN);
    assert_int_equal(x->cfg.node_id, 7);
    assert_int_equal(x->cfg.self->id, 7);
    assert_string_equal(x->cfg.data_dir, "lockd-data");
}

/* ---- cluster file -------------------------------------------------------- */

static void test_cluster_entry_gives_listen_port_and_raft_port_plus_1000(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\"1\":\"localhost:2081\"}");
    const char *spellings[][2] = {{"-cluster", "-id"}, {"--cluster", "--id"}, {"-cluster", "--id"}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(PARSE(x, spellings[i][0], "FILE", spellings[i][1], "1"), OPTIONS_RUN);
        const struct lockd_config *c = &x->cfg;
        assert_int_equal(c->node_id, 1);
        assert_int_equal(c->n_nodes, 1);
        assert_non_null(c->self);
        assert_int_equal(c->listen_port, 2081);
        assert_string_equal(c->listen_host, "localhost");
        assert_string_equal(c->self->http_host, "localhost");
        assert_int_equal(c->self->http_port, 2081);
        assert_int_equal(c->self->raft_port, 3081);
        assert_string_equal(c->self->raft_host, "127.0.0.1");
        assert_string_equal(c->data_dir, "lockd-data/1");
        assert_string_equal(c->db_path, "lockd-data/1/locks.mdb");
    }
}

static void test_cluster_of_three_picks_own_entry(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\n  \"1\": \"127.0.0.1:2081\",\n  \"2\": \"127.0.0.1:2082\",\n  \"3\": \"127.0.0.1:2083\"\n}\n");
    assert_int_equal(PARSE(x, "-cluster", "FILE", "-id", "2"), OPTIONS_RUN);
    const struct lockd_config *c = &x->cfg;
    assert_int_equal(c->n_nodes, 3);
    assert_int_equal(c->node_id, 2);
    assert_int_equal(c->self->id, 2);
    assert_true(c->self >= c->nodes && c->self < c->nodes + c->n_nodes);
    assert_int_equal(c->listen_port, 2082);
    assert_string_equal(c->data_dir, "lockd-data/2");
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(c->nodes[i].id, i + 1);
        assert_int_equal(c->nodes[i].http_port, 2081 + i);
        assert_int_equal(c->nodes[i].raft_port, 3081 + i);
        assert_string_equal(c->nodes[i].raft_host, "127.0.0.1");
    }
}

static void test_cluster_object_form_gives_separate_http_and_raft_addresses(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\"1\":{\"http\":\"127.0.0.1:5000\",\"raft\":\"127.0.0.1:6000\"},"
                     "\"2\":{\"raft\":\"localhost:6001\",\"http\":\"127.0.0.1:5001\"},"
                     "\"3\":{\"http\":\"127.0.0.1:5002\"}}");
    assert_int_equal(PARSE(x, "-cluster", "FILE", "-id", "1"), OPTIONS_RUN);
    const struct lockd_config *c = &x->cfg;
    assert_int_equal(c->n_nodes, 3);
    assert_int_equal(c->listen_port, 5000);
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->self->raft_port, 6000);
    assert_string_equal(c->self->raft_host, "127.0.0.1");
    assert_int_equal(c->nodes[1].http_port, 5001);
    assert_int_equal(c->nodes[1].raft_port, 6001);
    assert_string_equal(c->nodes[1].raft_host, "127.0.0.1"); /* resolved */
    assert_int_equal(c->nodes[2].raft_port, 6002);           /* default: http + 1000 */
}

static void test_cluster_entry_without_port_means_2080(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\"1\":\"127.0.0.1\",\"2\":\"127.0.0.2\"}");
    assert_int_equal(PARSE(x, "-cluster", "FILE", "-id", "1"), OPTIONS_RUN);
    assert_int_equal(x->cfg.listen_port, 2080);
    assert_int_equal(x->cfg.self->raft_port, 3080);
    assert_int_equal(x->cfg.nodes[1].http_port, 2080);
}

static void test_listen_with_cluster_overrides_bind_host_keeps_entry_port(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\"1\":\"localhost:2081\"}");
    assert_int_equal(PARSE(x, "-cluster", "FILE", "-id", "1", "--listen", "0.0.0.0"), OPTIONS_RUN);
    assert_string_equal(x->cfg.listen_host, "0.0.0.0");
    assert_int_equal(x->cfg.listen_port, 2081);
    assert_int_equal(x->cfg.self->http_port, 2081); /* peers still see the file's address */
}

static void test_equals_form_works_with_one_and_two_dashes(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\"1\":\"127.0.0.1:2081\",\"2\":\"127.0.0.1:2082\"}");
    assert_int_equal(PARSE(x, "--cluster=FILE", "--id=2", "--workers=3", "-store=memory", "--api-timeout=2s",
                           "-data-dir=/var/lib/x"),
                     OPTIONS_RUN);
    assert_int_equal(x->cfg.node_id, 2);
    assert_int_equal(x->cfg.listen_port, 2082);
    assert_int_equal(x->cfg.workers, 3);
    assert_int_equal(x->cfg.store, STORE_MEMORY);
    assert_int_equal(x->cfg.api_timeout_ms, 2000);
    assert_string_equal(x->cfg.data_dir, "/var/lib/x");
    assert_string_equal(x->cfg.db_path, "/var/lib/x/locks.mdb");
    assert_int_equal(PARSE(x, "-cluster=FILE", "-id=1"), OPTIONS_RUN);
    assert_int_equal(x->cfg.listen_port, 2081);
    /* "--listen=" with an empty value still means the option was given. */
    assert_int_equal(PARSE(x, "--listen=127.0.0.1:4000"), OPTIONS_RUN);
    assert_int_equal(x->cfg.listen_port, 4000);
}

static void test_id_not_in_cluster_file_is_error_naming_the_id(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\"1\":\"127.0.0.1:2081\",\"2\":\"127.0.0.1:2082\"}");
    enum options_result r = PARSE(x, "-cluster", "FILE", "-id", "5");
    assert_error_mentions(x, r, "5");
    assert_error_mentions(x, r, "not in the cluster file");
}

static void test_cluster_without_id_is_error(void **state)
{
    struct fx *x = *state;
    write_cluster(x, "{\"1\":\"127.0.0.1:2081\"}");
    assert_error_mentions(x, PARSE(x, "-cluster", "FILE"), "-id");
}

static void test_unreadable_cluster_file_is_error_naming_it(void **state)
{
    struct fx *x = *state;
    /* x->file was never written. */
    assert_error_mentions(x, PARSE(x, "-cluster", "FILE", "-id", "1"), "cluster.json");
}

static void test_bad_cluster_json_is_error(void **state)
{
    struct fx *x = *state;
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:2081\"", "cluster file");
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:2081\",}", "cluster file");
    assert_cluster_error(x, "[\"127.0.0.1:2081\"]", "cluster file");
    assert_cluster_error(x, "", "cluster file");
    assert_cluster_error(x, "{}", "no nodes");
    assert_cluster_error(x, "{\"1\":[\"127.0.0.1:2081\"]}", "cluster file");
    assert_cluster_error(x, "{\"1\":2081}", "string or an object");
    assert_cluster_error(x, "{\"1\":\"\"}", "non-empty");
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:2081\",\"1\":\"127.0.0.1:2082\"}", "duplicate");
}

static void test_non_numeric_or_non_positive_node_id_is_error_naming_it(void **state)
{
    struct fx *x = *state;
    assert_cluster_error(x, "{\"abc\":\"127.0.0.1:2081\"}", "\"abc\"");
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:2081\",\"two\":\"127.0.0.1:2082\"}", "\"two\"");
    assert_cluster_error(x, "{\"0\":\"127.0.0.1:2081\"}", "\"0\"");
    assert_cluster_error(x, "{\"-1\":\"127.0.0.1:2081\"}", "\"-1\"");
    assert_cluster_error(x, "{\"1x\":\"127.0.0.1:2081\"}", "\"1x\"");
    assert_cluster_error(x, "{\"\":\"127.0.0.1:2081\"}", "positive integer");
    assert_cluster_error(x, "{\"99999999999999999999999\":\"127.0.0.1:2081\"}", "positive integer");
}

static void test_duplicate_addresses_are_errors_naming_the_address(void **state)
{
    struct fx *x = *state;
    /* Same HTTP address. */
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:2081\",\"2\":\"127.0.0.1:2081\"}", "127.0.0.1:2081");
    /* One node's HTTP port is the other's default raft port. */
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:2081\",\"2\":\"127.0.0.1:3081\"}", "share the address");
    /* Same raft address in the object form. */
    assert_cluster_error(x,
                         "{\"1\":{\"http\":\"127.0.0.1:5000\",\"raft\":\"127.0.0.1:6000\"},"
                         "\"2\":{\"http\":\"127.0.0.1:5001\",\"raft\":\"127.0.0.1:6000\"}}",
                         "share the address");
    /* Same port on different hosts is fine. */
    write_cluster(x, "{\"1\":\"127.0.0.1:2081\",\"2\":\"127.0.0.2:2081\"}");
    assert_int_equal(PARSE(x, "-cluster", "FILE", "-id", "2"), OPTIONS_RUN);
}

static void test_bad_addresses_in_cluster_file_are_errors(void **state)
{
    struct fx *x = *state;
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:0\"}", "127.0.0.1:0");
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:99999\"}", "127.0.0.1:99999");
    assert_cluster_error(x, "{\"1\":\"127.0.0.1:65000\"}", "raft port");
    assert_cluster_error(x, "{\"1\":{\"raft\":\"127.0.0.1:6000\"}}", "missing \"http\"");
    assert_cluster_error(x, "{\"1\":{\"http\":\"127.0.0.1:5000\",\"raft\":\"127.0.0.1\"}}", "bad raft address");
    assert_cluster_error(x, "{\"1\":{\"http\":\"127.0.0.1:5000\",\"grpc\":\"127.0.0.1:7000\"}}", "\"http\" and \"raft\"");
    assert_cluster_error(x, "{\"1\":{\"http\":5000}}", "\"http\" and \"raft\"");
    assert_cluster_error(x, "{\"1\":\"no-such-host.invalid:2081\"}", "resolve");
}

static void test_address_longer_than_buffer_is_rejected_as_too_long(void **state)
{
    /* The address buffers hold LOCKD_ADDR_MAX + 8 = 72 bytes with the NUL:
     * the message promises "at most 71 bytes". An address of exactly 72
     * bytes must be refused by that check (and not be written with its NUL
     * one byte past the buffer). Parsed from memory, without a temp file, so
     * a sanitizer abort here leaves nothing behind. */
    struct lockd_config *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    char err[256];
    char addr[73];
    memset(addr, 'h', 72);
    addr[72] = '\0';
    memcpy(addr + 67, ":2081", 5);
    char json[160];
    const char *forms[] = {"{\"1\":\"%s\"}", "{\"1\":{\"http\":\"127.0.0.1:5000\",\"raft\":\"%s\"}}"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(json, sizeof(json), forms[i], addr);
        err[0] = '\0';
        int rc = options_parse_cluster(json, strlen(json), cfg, err, sizeof(err));
        if (rc != -LOCKD_EINVAL || strstr(err, "at most 71 bytes") == NULL) {
            free(cfg);
            fail_msg("%s: want -LOCKD_EINVAL \"... at most 71 bytes\", got %d: \"%s\"", json, rc, err);
        }
    }
    /* 71 bytes passes the length check (and fails later on the host). */
    addr[71] = '\0';
    memcpy(addr + 66, ":2081", 5);
    snprintf(json, sizeof(json), forms[0], addr);
    assert_int_equal(options_parse_cluster(json, strlen(json), cfg, err, sizeof(err)), -LOCKD_EINVAL);
    assert_null(strstr(err, "at most"));
    free(cfg);
}

static void test_parse_cluster_directly_reports_errors_without_a_file(void **state)
{
    struct fx *x = *state;
    memset(&x->cfg, 0, sizeof(x->cfg));
    const char *ok = "{\"1\":\"127.0.0.1:2081\",\"2\":\"127.0.0.1:2082\"}";
    assert_int_equal(options_parse_cluster(ok, strlen(ok), &x->cfg, x->err, sizeof(x->err)), 0);
    assert_int_equal(x->cfg.n_nodes, 2);
    /* More than LOCKD_MAX_NODES entries. */
    char big[2048];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
    for (int i = 1; i <= LOCKD_MAX_NODES + 1; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"%d\":\"127.0.0.1:%d\"", i > 1 ? "," : "", i, 2000 + i);
    n += (size_t)snprintf(big + n, sizeof(big) - n, "}");
    assert_int_equal(options_parse_cluster(big, n, &x->cfg, x->err, sizeof(x->err)), -LOCKD_EINVAL);
    assert_non_null(strstr(x->err, "more than"));
}

/* ---- other options ------------------------------------------------------- */

static void test_unknown_option_or_stray_argument_is_error_with_message(void **state)
{
    struct fx *x = *state;
    assert_error_mentions(x, PARSE(x, "--frobnicate"), "--frobnicate");
    assert_error_mentions(x, PARSE(x, "--frobnicate"), "unknown option");
    assert_error_mentions(x, PARSE(x, "--listen2", "x"), "--listen2");
    assert_error_mentions(x, PARSE(x, "--lis", "x"), "--lis"); /* no prefixes */
    assert_error_mentions(x, PARSE(x, "stray"), "stray");
    assert_error_mentions(x, PARSE(x, "-"), "\"-\"");
    assert_error_mentions(x, PARSE(x, "--help=yes"), "no value");
    assert_int_equal(x->out_len, 0);
}

static void test_option_without_its_value_is_error(void **state)
{
    struct fx *x = *state;
    assert_error_mentions(x, PARSE(x, "--workers"), "--workers");
    assert_error_mentions(x, PARSE(x, "-cluster"), "needs a value");
}

static void test_help_exits_ok_and_lists_cluster_option(void **state)
{
    struct fx *x = *state;
    const char *spellings[] = {"--help", "-help", "-h"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(PARSE(x, spellings[i]), OPTIONS_EXIT_OK);
        assert_non_null(x->out);
        assert_non_null(strstr(x->out, "--cluster"));
        assert_non_null(strstr(x->out, "--id"));
        assert_non_null(strstr(x->out, "--store"));
    }
    /* Help wins over later bad arguments. */
    assert_int_equal(PARSE(x, "--help", "--bogus"), OPTIONS_EXIT_OK);
}

static void test_help_lists_only_options_the_parser_accepts(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "--help"), OPTIONS_EXIT_OK);
    char *help = strdup(x->out);
    assert_non_null(help);
    size_t checked = 0;
    /* Option lines look like "  --name ARG   help text". */
    for (char *line = strtok(help, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "  --", 4) != 0)
            continue;
        size_t n = strspn(line + 4, "abcdefghijklmnopqrstuvwxyz-");
        assert_true(n > 0);
        char opt[64];
        snprintf(opt, sizeof(opt), "--%.*s", (int)n, line + 4);
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "--version") == 0)
            continue;
        /* Accepted means: not "unknown option" (the value may be wrong). */
        enum options_result r = PARSE(x, opt, "1");
        if (r == OPTIONS_ERROR && strstr(x->err, "unknown option") != NULL)
            fail_msg("--help lists %s but the parser rejects it", opt);
        checked++;
    }
    free(help);
    assert_true(checked >= 15);
}

static void test_version_exits_ok_and_prints_version(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "--version"), OPTIONS_EXIT_OK);
    assert_non_null(x->out);
    assert_non_null(strstr(x->out, LOCKD_VERSION));
}

static void test_durations_accept_units_and_bare_seconds(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "--api-timeout", "250ms"), OPTIONS_RUN);
    assert_int_equal(x->cfg.api_timeout_ms, 250);
    assert_int_equal(PARSE(x, "--api-timeout", "3"), OPTIONS_RUN);
    assert_int_equal(x->cfg.api_timeout_ms, 3000);
    assert_int_equal(PARSE(x, "--api-timeout", "1m"), OPTIONS_RUN);
    assert_int_equal(x->cfg.api_timeout_ms, 60000);
    assert_int_equal(PARSE(x, "--election-timeout", "2s", "--heartbeat-timeout", "50ms"), OPTIONS_RUN);
    assert_int_equal(x->cfg.election_timeout_ms, 2000);
    assert_int_equal(x->cfg.heartbeat_timeout_ms, 50);
    assert_int_equal(PARSE(x, "--ttl-min", "1s", "--ttl-max", "1h", "--wait-max", "10m"), OPTIONS_RUN);
    assert_int_equal(x->cfg.ttl_min_ms, 1000);
    assert_int_equal(x->cfg.ttl_max_ms, 3600000);
    assert_int_equal(x->cfg.wait_max_ms, 600000);
}

static void test_bad_durations_and_out_of_range_timing_are_errors(void **state)
{
    struct fx *x = *state;
    assert_error_mentions(x, PARSE(x, "--api-timeout", "soon"), "soon");
    assert_error_mentions(x, PARSE(x, "--api-timeout", "-5s"), "duration");
    assert_error_mentions(x, PARSE(x, "--api-timeout", "1.5s"), "duration");
    assert_error_mentions(x, PARSE(x, "--api-timeout", ""), "duration");
    assert_error_mentions(x, PARSE(x, "--api-timeout", "5ms"), "api-timeout");
    assert_error_mentions(x, PARSE(x, "--election-timeout", "10ms"), "election-timeout");
    assert_error_mentions(x, PARSE(x, "--heartbeat-timeout", "2s"), "heartbeat-timeout"); /* >= election */
    assert_error_mentions(x, PARSE(x, "--ttl-min", "2h", "--ttl-max", "1h"), "ttl-min");
    assert_error_mentions(x, PARSE(x, "--ttl-min", "0ms"), "ttl-min");
    assert_error_mentions(x, PARSE(x, "--wait-max", "25h"), "wait-max");
}

static void test_store_memory_lmdb_and_bad(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "--store", "memory"), OPTIONS_RUN);
    assert_int_equal(x->cfg.store, STORE_MEMORY);
    assert_int_equal(PARSE(x, "--store", "lmdb"), OPTIONS_RUN);
    assert_int_equal(x->cfg.store, STORE_LMDB);
    assert_int_equal(PARSE(x, "-store", "boltdb"), OPTIONS_RUN); /* the original's name */
    assert_int_equal(x->cfg.store, STORE_LMDB);
    enum options_result r = PARSE(x, "--store", "bad");
    assert_error_mentions(x, r, "\"bad\"");
    assert_error_mentions(x, r, "store");
    assert_error_mentions(x, PARSE(x, "--store", "LMDB"), "LMDB");
}

static void test_paths_workers_max_locks_and_log_level(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "--data-dir", "/srv/lockd", "--db", "/fast/l.mdb", "--admin-socket", "/run/a.sock",
                           "--workers", "4", "--max-locks", "5000", "--log-level", "debug"),
                     OPTIONS_RUN);
    assert_string_equal(x->cfg.data_dir, "/srv/lockd");
    assert_string_equal(x->cfg.db_path, "/fast/l.mdb");
    assert_string_equal(x->cfg.raft_dir, "/srv/lockd/raft");
    assert_string_equal(x->cfg.admin_socket, "/run/a.sock");
    assert_int_equal(x->cfg.workers, 4);
    assert_int_equal(x->cfg.max_locks, 5000);
    assert_int_equal(x->cfg.log_level, LOG_DEBUG);
    assert_error_mentions(x, PARSE(x, "--workers", "0"), "workers");
    assert_error_mentions(x, PARSE(x, "--workers", "65"), "workers");
    assert_error_mentions(x, PARSE(x, "--workers", "two"), "\"two\"");
    assert_error_mentions(x, PARSE(x, "--workers", "-1"), "\"-1\"");
    assert_error_mentions(x, PARSE(x, "--workers", "99999999999999999999999"), "integer");
    assert_error_mentions(x, PARSE(x, "--max-locks", "0"), "max-locks");
    assert_error_mentions(x, PARSE(x, "--id", "0"), "--id");
    assert_error_mentions(x, PARSE(x, "--log-level", "loud"), "\"loud\"");
    char long_dir[300];
    memset(long_dir, 'd', sizeof(long_dir) - 1);
    long_dir[sizeof(long_dir) - 1] = '\0';
    assert_error_mentions(x, PARSE(x, "--data-dir", long_dir), "data-dir");
}

static void test_last_occurrence_of_an_option_wins(void **state)
{
    struct fx *x = *state;
    assert_int_equal(PARSE(x, "--workers", "2", "--workers", "5", "--store", "memory", "--store", "lmdb"),
                     OPTIONS_RUN);
    assert_int_equal(x->cfg.workers, 5);
    assert_int_equal(x->cfg.store, STORE_LMDB);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        FX(test_no_arguments_is_single_node_on_2080_with_lockd_data),
        FX(test_listen_sets_bind_address_and_raft_port_plus_1000),
        FX(test_bad_listen_addresses_are_errors),
        FX(test_single_node_id_flag_sets_node_id),
        FX(test_cluster_entry_gives_listen_port_and_raft_port_plus_1000),
        FX(test_cluster_of_three_picks_own_entry),
        FX(test_cluster_object_form_gives_separate_http_and_raft_addresses),
        FX(test_cluster_entry_without_port_means_2080),
        FX(test_listen_with_cluster_overrides_bind_host_keeps_entry_port),
        FX(test_equals_form_works_with_one_and_two_dashes),
        FX(test_id_not_in_cluster_file_is_error_naming_the_id),
        FX(test_cluster_without_id_is_error),
        FX(test_unreadable_cluster_file_is_error_naming_it),
        FX(test_bad_cluster_json_is_error),
        FX(test_non_numeric_or_non_positive_node_id_is_error_naming_it),
        FX(test_duplicate_addresses_are_errors_naming_the_address),
        FX(test_bad_addresses_in_cluster_file_are_errors),
        cmocka_unit_test(test_address_longer_than_buffer_is_rejected_as_too_long),
        FX(test_parse_cluster_directly_reports_errors_without_a_file),
        FX(test_unknown_option_or_stray_argument_is_error_with_message),
        FX(test_option_without_its_value_is_error),
        FX(test_help_exits_ok_and_lists_cluster_option),
        FX(test_help_lists_only_options_the_parser_accepts),
        FX(test_version_exits_ok_and_prints_version),
        FX(test_durations_accept_units_and_bare_seconds),
        FX(test_bad_durations_and_out_of_range_timing_are_errors),
        FX(test_store_memory_lmdb_and_bad),
        FX(test_paths_workers_max_locks_and_log_level),
        FX(test_last_occurrence_of_an_option_wins),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
