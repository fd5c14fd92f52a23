/* tests/unit/common/test_tls.c: the HTTP port's TLS context, driven through
 * real handshakes between in-memory BIO pairs. Certificates come from a
 * test CA made with the `openssl` command in a temporary directory when
 * the tests start (no private key is ever committed). */
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
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/errors.h"
#include "common/tls.h"

static char dir[64];

/* dir/name, one stable buffer per name (pointers stay valid). */
static char *path(const char *name)
{
    static char names[32][32], paths[32][160];
    static int n;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return paths[i];
    assert_true(n < 32);
    snprintf(names[n], sizeof names[n], "%s", name);
    snprintf(paths[n], sizeof paths[n], "%s/%s", dir, name);
    return paths[n++];
}

/* A CA, a server certificate for localhost, a client certificate with SANs,
 * and a second CA with a client certificate of its own. */
static int make_pki(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/lockd-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; exec >openssl.log 2>&1\n"
             "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
             "openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=lockd-test-ca\n"
             "openssl req -x509 $ec -keyout ca2.key -out ca2.pem -days 2 -subj /CN=other-ca\n"
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext\n"
             "openssl req $ec -keyout server.key -out server.csr -subj /CN=localhost\n"
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile server.ext -out server.pem\n"
             "openssl req $ec -keyout server2.key -out server2.csr -subj /CN=localhost-2\n"
             "openssl x509 -req -in server2.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile server.ext -out server2.pem\n"
             "printf 'subjectAltName=DNS:client.example,email:ops@example.com\\n' > client.ext\n"
             "openssl req $ec -keyout client.key -out client.csr -subj /CN=ops-box\n"
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile client.ext -out client.pem\n"
             "openssl req $ec -keyout rogue.key -out rogue.csr -subj /CN=ops-box\n"
             "openssl x509 -req -in rogue.csr -CA ca2.pem -CAkey ca2.key -CAcreateserial -days 2 -out rogue.pem\n"
             "chmod 600 *.key\n",
             dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl failed; see %s/openssl.log\n", dir);
        return -1;
    }
    return 0;
}

static int remove_pki(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static SSL_CTX *server_ctx(const char *ca, bool required, bool http2)
{
    struct tls_options o = {path("server.pem"), path("server.key"), ca, required, http2};
    SSL_CTX *ctx = NULL;
    char err[256] = "";
    if (tls_ctx_build(&o, &ctx, err, sizeof err) != 0)
        fail_msg("tls_ctx_build: %s", err);
    return ctx;
}

struct client_opts {
    const char *cert, *key; /* client certificate, or NULL */
    const char *alpn;       /* wire format, or NULL */
    size_t alpn_len;
    int max_version; /* 0: any */
    const char *ciphers;
};

static SSL_CTX *client_ctx(const struct client_opts *co)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    assert_int_equal(SSL_CTX_load_verify_locations(c, path("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (co->cert) {
        assert_int_equal(SSL_CTX_use_certificate_file(c, co->cert, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(c, co->key, SSL_FILETYPE_PEM), 1);
    }
    if (co->alpn)
        assert_int_equal(SSL_CTX_set_alpn_protos(c, (const unsigned char *)co->alpn, (unsigned)co->alpn_len), 0);
    if (co->max_version) {
        SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
        SSL_CTX_set_security_level(c, 0);
        assert_int_equal(SSL_CTX_set_max_proto_version(c, co->max_version), 1);
    }
    if (co->ciphers) {
        SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
        assert_int_equal(SSL_CTX_set_cipher_list(c, co->ciphers), 1);
    }
    return c;
}

/* Runs a handshake (and one byte of application data each way, which is
 * where TLS 1.3 reports a refused client certificate). Returns 1 on
 * success; *server_out keeps the server's SSL when asked (caller frees). */
static int handshake(SSL_CTX *sctx, const struct client_opts *co, SSL **server_out)
{
    SSL_CTX *cctx = client_ctx(co);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *b1, *b2;
    assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
    SSL_set_bio(c, b1, b1);
    SSL_set_bio(s, b2, b2);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    SSL_set_tlsext_host_name(c, "localhost");
    int cdone = 0, sdone = 0, failed = 0;
    for (int i = 0; i < 50 && !(cdone && sdone) && !failed; i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ && SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE)
                failed = 1;
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ && SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
                failed = 1;
        }
    }
    if (!failed && cdone && sdone) {
        char x = 'x', y = 0;
        failed = SSL_write(c, &x, 1) != 1 || SSL_read(s, &y, 1) != 1 || y != 'x' || SSL_write(s, &x, 1) != 1 ||
                 SSL_read(c, &y, 1) != 1;
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_CTX_free(cctx);
    int ok = !failed && cdone && sdone;
    if (server_out && ok)
        *server_out = s;
    else
        SSL_free(s);
    return ok;
}

static void test_build_refuses_bad_material(void **state)
{
    (void)state;
    SSL_CTX *ctx;
    char err[256];
    struct tls_options o = {path("server.pem"), path("client.key"), NULL, false, false};
    assert_int_equal(tls_ctx_build(&o, &ctx, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "does not match the certificate"));
    assert_null(ctx);

    o.key_path = path("missing.key");
    assert_int_equal(tls_ctx_build(&o, &ctx, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "missing.key"));

    o.key_path = path("server.pem"); /* a certificate where the key should be */
    chmod(path("server.pem"), 0600);
    assert_int_equal(tls_ctx_build(&o, &ctx, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "no PEM private key"));
    chmod(path("server.pem"), 0644);

    o.key_path = path("server.key");
    chmod(path("server.key"), 0644);
    assert_int_equal(tls_ctx_build(&o, &ctx, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path("server.key"), 0600);

    o.cert_path = path("server.key");
    assert_int_equal(tls_ctx_build(&o, &ctx, err, sizeof err), -LOCKD_EINVAL);
    o.cert_path = path("server.pem");
    o.client_ca_path = path("server.ext");
    assert_int_equal(tls_ctx_build(&o, &ctx, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "server.ext: no PEM CA certificate"));
    o.client_ca_path = NULL;
    o.cert_path = NULL;
    assert_int_equal(tls_ctx_build(&o, &ctx, err, sizeof err), -LOCKD_EINVAL);
}

static void test_tls12_and_13_only_with_aead_suites(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(NULL, false, false);
    assert_int_equal(SSL_CTX_get_min_proto_version(sctx), TLS1_2_VERSION);
    struct client_opts any = {0};
    assert_true(handshake(sctx, &any, NULL));
    struct client_opts v11 = {.max_version = TLS1_1_VERSION};
    assert_false(handshake(sctx, &v11, NULL));
    struct client_opts v10 = {.max_version = TLS1_VERSION};
    assert_false(handshake(sctx, &v10, NULL));
    struct client_opts v12 = {.max_version = TLS1_2_VERSION};
    SSL *s = NULL;
    assert_true(handshake(sctx, &v12, &s));
    assert_int_equal(SSL_version(s), TLS1_2_VERSION);
    assert_non_null(strstr(SSL_get_cipher_name(s), "GCM"));
    SSL_free(s);
    /* CBC and static-RSA suites are not offered */
    struct client_opts cbc = {.ciphers = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:AES128-GCM-SHA256"};
    assert_false(handshake(sctx, &cbc, NULL));
    struct client_opts chacha = {.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305"};
    assert_true(handshake(sctx, &chacha, NULL));
    SSL_CTX_free(sctx);
}

static void test_alpn_offers_h2_only_when_enabled(void **state)
{
    (void)state;
    static const char both[] = "\x02h2\x08http/1.1";
    static const char h2only[] = "\x02h2";
    const char *p;
    size_t n;
    SSL *s;

    SSL_CTX *off = server_ctx(NULL, false, false);
    struct client_opts co = {.alpn = both, .alpn_len = sizeof both - 1};
    s = NULL;
    assert_true(handshake(off, &co, &s));
    tls_selected_alpn(s, &p, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "http/1.1", 8);
    SSL_free(s);
    /* a client that only speaks h2 gets no ALPN (and HTTP/1.1) */
    struct client_opts co2 = {.alpn = h2only, .alpn_len = sizeof h2only - 1};
    s = NULL;
    assert_true(handshake(off, &co2, &s));
    tls_selected_alpn(s, &p, &n);
    assert_int_equal(n, 0);
    SSL_free(s);
    SSL_CTX_free(off);

    SSL_CTX *on = server_ctx(NULL, false, true);
    s = NULL;
    assert_true(handshake(on, &co, &s));
    tls_selected_alpn(s, &p, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "h2", 2);
    SSL_free(s);
    SSL_CTX_free(on);
}

static void test_client_certificates_required_optional_and_names(void **state)
{
    (void)state;
    struct client_opts none = {0};
    struct client_opts good = {.cert = path("client.pem"), .key = path("client.key")};
    struct client_opts rogue = {.cert = path("rogue.pem"), .key = path("rogue.key")};
    SSL *s;
    const char *names[8];
    size_t lens[8];
    char storage[512];

    SSL_CTX *req = server_ctx(path("ca.pem"), true, false);
    assert_false(handshake(req, &none, NULL));
    assert_false(handshake(req, &rogue, NULL)); /* same CN, wrong CA */
    s = NULL;
    assert_true(handshake(req, &good, &s));
    size_t n = tls_peer_names(s, names, lens, 8, storage, sizeof storage);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "client.example");
    assert_string_equal(names[1], "ops@example.com");
    assert_string_equal(names[2], "ops-box");
    assert_int_equal(lens[2], 7);
    /* storage too small for all: the ones that fit, never an overflow */
    assert_int_equal(tls_peer_names(s, names, lens, 8, storage, 16), 1);
    assert_int_equal(tls_peer_names(s, names, lens, 2, storage, sizeof storage), 2);
    SSL_free(s);
    SSL_CTX_free(req);

    SSL_CTX *opt = server_ctx(path("ca.pem"), false, false);
    s = NULL;
    assert_true(handshake(opt, &none, &s));
    assert_int_equal(tls_peer_names(s, names, lens, 8, storage, sizeof storage), 0);
    SSL_free(s);
    assert_false(handshake(opt, &rogue, NULL)); /* a certificate that is shown must verify */
    s = NULL;
    assert_true(handshake(opt, &good, &s));
    assert_int_equal(tls_peer_names(s, names, lens, 8, storage, sizeof storage), 3);
    SSL_free(s);
    SSL_CTX_free(opt);

    /* no client CA: a client certificate is not asked for, so no names */
    SSL_CTX *plain = server_ctx(NULL, false, false);
    s = NULL;
    assert_true(handshake(plain, &good, &s));
    assert_int_equal(tls_peer_names(s, names, lens, 8, storage, sizeof storage), 0);
    SSL_free(s);
    SSL_CTX_free(plain);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s %s && chmod 600 %s", from, to, to);
    assert_int_equal(system(cmd), 0);
}

static void test_reload_swaps_for_new_connections_only(void **state)
{
    (void)state;
    copy_file(path("server.pem"), path("live.pem"));
    copy_file(path("server.key"), path("live.key"));
    struct tls_options o = {path("live.pem"), path("live.key"), NULL, false, false};
    tls_server *ts;
    char err[256];
    assert_int_equal(tls_server_create(&o, &ts, err, sizeof err), 0);
    assert_int_equal(tls_server_generation(ts), 1);
    SSL_CTX *first = tls_server_ctx(ts);

    /* a connection of the first context, mid-handshake at the reload */
    SSL_CTX *cctx = client_ctx(&(struct client_opts){0});
    SSL *s = SSL_new(first), *c = SSL_new(cctx);
    BIO *b1, *b2;
    BIO_new_bio_pair(&b1, 0, &b2, 0);
    SSL_set_bio(c, b1, b1);
    SSL_set_bio(s, b2, b2);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    SSL_do_handshake(c);
    SSL_do_handshake(s);

    copy_file(path("server2.pem"), path("live.pem"));
    copy_file(path("server2.key"), path("live.key"));
    assert_int_equal(tls_server_reload(ts, err, sizeof err), 0);
    assert_int_equal(tls_server_generation(ts), 2);
    assert_ptr_not_equal(tls_server_ctx(ts), first);

    /* the old connection completes with the old certificate */
    int cd = 0, sd = 0;
    for (int i = 0; i < 20 && !(cd && sd); i++) {
        if (!cd)
            cd = SSL_do_handshake(c) == 1;
        if (!sd)
            sd = SSL_do_handshake(s) == 1;
    }
    assert_true(cd && sd);
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_get0_peer_certificate(c)), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "localhost");
    SSL_free(c);
    SSL_free(s);

    /* new connections get the new one */
    s = NULL;
    assert_true(handshake(tls_server_ctx(ts), &(struct client_opts){0}, &s));
    X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_get_certificate(s)), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "localhost-2");
    SSL_free(s);

    /* a broken key on disk: reload fails, the current context stays */
    SSL_CTX *current = tls_server_ctx(ts);
    copy_file(path("client.key"), path("live.key"));
    assert_int_equal(tls_server_reload(ts, err, sizeof err), -LOCKD_EINVAL);
    assert_ptr_equal(tls_server_ctx(ts), current);
    assert_int_equal(tls_server_generation(ts), 2);
    assert_true(handshake(tls_server_ctx(ts), &(struct client_opts){0}, NULL));

    SSL_CTX_free(cctx);
    tls_server_destroy(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_refuses_bad_material),
        cmocka_unit_test(test_tls12_and_13_only_with_aead_suites),
        cmocka_unit_test(test_alpn_offers_h2_only_when_enabled),
        cmocka_unit_test(test_client_certificates_required_optional_and_names),
        cmocka_unit_test(test_reload_swaps_for_new_connections_only),
    };
    return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
