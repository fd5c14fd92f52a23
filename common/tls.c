/* common/tls.c: TLS server contexts for the HTTP port (see tls.h). Owns the
 * contexts it builds (one current, reference-counted by OpenSSL for the
 * connections still using older ones). Never logs, never keeps key bytes
 * beyond loading them. */
#include "common/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/errors.h"
#include "common/secfile.h"

struct tls_server {
    SSL_CTX *ctx;
    uint64_t generation;
    bool client_cert_required, http2;
    char *cert_path, *key_path, *client_ca_path;
};

/* ALPN wire format (RFC 7301): length-prefixed names, ours in preference
 * order. "h2" only when HTTP/2 is on: it is how a TLS client gets HTTP/2. */
static const unsigned char ALPN_H1[] = "\x08http/1.1";
static const unsigned char ALPN_H2_H1[] = "\x02h2\x08http/1.1";

static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                           unsigned int inlen, void *arg)
{
    (void)ssl;
    const bool http2 = arg != NULL;
    const unsigned char *ours = http2 ? ALPN_H2_H1 : ALPN_H1;
    unsigned int ours_len = (unsigned)(http2 ? sizeof ALPN_H2_H1 : sizeof ALPN_H1) - 1;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, ours_len, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    /* No common protocol: go on without ALPN; the connection is HTTP/1.1
     * (a client that insists on h2 fails at its preface with a JSON 400). */
    return SSL_TLSEXT_ERR_NOACK;
}

/* The first queued OpenSSL error as text (never contains key bytes). */
static const char *tls_openssl_error(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, cap, "unknown OpenSSL error");
    else
        ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

static int tls_load_key(SSL_CTX *ctx, const char *path, char *err, size_t err_cap)
{
    char *pem;
    size_t len;
    int rc = secfile_read(path, 256 * 1024, &pem, &len, err, err_cap);
    if (rc != 0)
        return rc == -LOCKD_ENOMEM ? rc : -LOCKD_EINVAL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    secfile_free(pem, len);
    char why[160];
    if (key == NULL) {
        snprintf(err, err_cap, "%s: no PEM private key (%s)", path, tls_openssl_error(why, sizeof why));
        return -LOCKD_EINVAL;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    if (!ok) {
        /* OpenSSL checks the key against the certificate already loaded. */
        snprintf(err, err_cap, "%s does not match the certificate (%s)", path, tls_openssl_error(why, sizeof why));
        return -LOCKD_EINVAL;
    }
    return 0;
}

int tls_ctx_build(const struct tls_options *o, SSL_CTX **out, char *err, size_t err_cap)
{
    char why[160];
    *out = NULL;
    ERR_clear_error();
    if (o->cert_path == NULL || o->key_path == NULL) {
        snprintf(err, err_cap, "TLS needs both a certificate and a key");
        return -LOCKD_EINVAL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, err_cap, "SSL_CTX_new: %s", tls_openssl_error(why, sizeof why));
        return -LOCKD_ENOMEM;
    }
    int rc = -LOCKD_EINVAL;
    /* TLS 1.0/1.1 are deprecated (RFC 8996); no compression (CRIME), no
     * renegotiation (a client-driven CPU sink); the server picks among
     * suites that are all AEAD with forward secrecy. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 || SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        snprintf(err, err_cap, "TLS settings: %s", tls_openssl_error(why, sizeof why));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_path) != 1) {
        snprintf(err, err_cap, "%s: %s", o->cert_path, tls_openssl_error(why, sizeof why));
        goto fail;
    }
    rc = tls_load_key(ctx, o->key_path, err, err_cap);
    if (rc != 0)
        goto fail;
    rc = -LOCKD_EINVAL;
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_cap, "%s does not match the certificate in %s", o->key_path, o->cert_path);
        ERR_clear_error();
        goto fail;
    }
    if (o->client_ca_path != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca_path);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, o->client_ca_path, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(err, err_cap, "%s: no PEM CA certificate (%s)", o->client_ca_path,
                     tls_openssl_error(why, sizeof why));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (o->client_cert_required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
    }
    /* Resumed sessions keep the verified client certificate; OpenSSL
     * refuses to resume under client verification without an id context. */
    static const unsigned char sid_ctx[] = "lockd-http";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, o->http2 ? (void *)1 : NULL);
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return rc;
}

static char *tls_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void tls_server_destroy(tls_server *s)
{
    if (s == NULL)
        return;
    SSL_CTX_free(s->ctx);
    free(s->cert_path);
    free(s->key_path);
    free(s->client_ca_path);
    free(s);
}

static void tls_server_options(const tls_server *s, struct tls_options *o)
{
    o->cert_path = s->cert_path;
    o->key_path = s->key_path;
    o->client_ca_path = s->client_ca_path;
    o->client_cert_required = s->client_cert_required;
    o->http2 = s->http2;
}

int tls_server_create(const struct tls_options *o, tls_server **out, char *err, size_t err_cap)
{
    *out = NULL;
    tls_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -LOCKD_ENOMEM;
    s->cert_path = tls_strdup(o->cert_path);
    s->key_path = tls_strdup(o->key_path);
    s->client_ca_path = tls_strdup(o->client_ca_path);
    s->client_cert_required = o->client_cert_required;
    s->http2 = o->http2;
    if ((o->cert_path && !s->cert_path) || (o->key_path && !s->key_path) || (o->client_ca_path && !s->client_ca_path)) {
        tls_server_destroy(s);
        return -LOCKD_ENOMEM;
    }
    int rc = tls_server_reload(s, err, err_cap);
    if (rc != 0) {
        tls_server_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

SSL_CTX *tls_server_ctx(const tls_server *s)
{
    return s->ctx;
}

uint64_t tls_server_generation(const tls_server *s)
{
    return s->generation;
}

int tls_server_reload(tls_server *s, char *err, size_t err_cap)
{
    struct tls_options o;
    tls_server_options(s, &o);
    SSL_CTX *ctx;
    int rc = tls_ctx_build(&o, &ctx, err, err_cap);
    if (rc != 0)
        return rc;
    /* Connections made with the old context hold a reference (SSL_new took
     * one), so this frees it only when the last of them is gone. */
    SSL_CTX_free(s->ctx);
    s->ctx = ctx;
    s->generation++;
    return 0;
}

/* Appends s[0..n) to the name list if it is printable ASCII. */
static void tls_add_name(const unsigned char *s, int n, const char **names, size_t *lens, size_t max, size_t *count,
                         char *storage, size_t cap, size_t *used)
{
    if (n <= 0 || *count >= max || *used + (size_t)n + 1 > cap)
        return;
    for (int i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return;
    char *dst = storage + *used;
    memcpy(dst, s, (size_t)n);
    dst[n] = '\0';
    names[*count] = dst;
    lens[*count] = (size_t)n;
    (*count)++;
    *used += (size_t)n + 1;
}

size_t tls_peer_names(SSL *ssl, const char **names, size_t *lens, size_t max, char *storage, size_t storage_cap)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return 0;
    size_t count = 0, used = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        const ASN1_IA5STRING *v = NULL;
        if (g->type == GEN_DNS)
            v = g->d.dNSName;
        else if (g->type == GEN_EMAIL)
            v = g->d.rfc822Name;
        else if (g->type == GEN_URI)
            v = g->d.uniformResourceIdentifier;
        if (v)
            tls_add_name(ASN1_STRING_get0_data(v), ASN1_STRING_length(v), names, lens, max, &count, storage,
                         storage_cap, &used);
    }
    GENERAL_NAMES_free(sans);
    const X509_NAME *subject = X509_get_subject_name(cert);
    int idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
    if (idx >= 0) {
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
        if (n > 0)
            tls_add_name(utf8, n, names, lens, max, &count, storage, storage_cap, &used);
        OPENSSL_free(utf8);
    }
    return count;
}

void tls_selected_alpn(SSL *ssl, const char **proto, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    *proto = p ? (const char *)p : "";
    *len = n;
}
