/* common/tls.h: the TLS server context of the HTTP port (--tls-cert,
 * --tls-key, --tls-client-ca). Builds an OpenSSL SSL_CTX with TLS 1.2+ and
 * AEAD-only ECDHE cipher suites, ALPN http/1.1 (and h2 only when HTTP/2 is
 * enabled), optional or required client certificates; swaps in a freshly
 * built context on reload without touching connections made with the old
 * one; names the verified client certificate for common/auth.h. OpenSSL
 * only: no h2o, no logging (callers log), never prints key material.
 *
 * Built by the master before it forks, so every worker inherits the same
 * context, session cache seed and ticket keys (a session resumed on another
 * worker's socket still resumes). */
#ifndef LOCKD_COMMON_TLS_H
#define LOCKD_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct tls_options {
    const char *cert_path;      /* PEM chain, leaf first */
    const char *key_path;       /* PEM private key: mode 0600/0640 (common/secfile.h) */
    const char *client_ca_path; /* PEM CAs for client certificates; NULL: none asked */
    bool client_cert_required;  /* with client_ca_path: refuse a handshake without one */
    bool http2;                 /* offer "h2" in ALPN (--http2 on) */
};

/* The TLS 1.2 cipher list (TLS 1.3 suites are OpenSSL's AEAD defaults). */
#define TLS_CIPHERS_12                                                                                                 \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                         \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

/* Builds a server context from o. *out is owned by the caller (SSL_CTX_free).
 * Errors: -LOCKD_EINVAL (unreadable/invalid PEM, key does not match the
 * certificate, key file mode) or -LOCKD_ENOMEM, with a sentence naming the
 * file in err. */
int tls_ctx_build(const struct tls_options *o, SSL_CTX **out, char *err, size_t err_cap);

typedef struct tls_server tls_server;

/* Copies o (paths included) and builds the first context. */
int tls_server_create(const struct tls_options *o, tls_server **out, char *err, size_t err_cap);

/* The context new connections use; re-read it at every accept (a reload
 * replaces it). Connections hold their own reference to the context they
 * were made with, so the old one lives until its last connection closes. */
SSL_CTX *tls_server_ctx(const tls_server *s);

/* Rebuilds from the same paths (new certificate, key or CA on disk) and
 * swaps on success; on failure keeps the current context and says why. */
int tls_server_reload(tls_server *s, char *err, size_t err_cap);

uint64_t tls_server_generation(const tls_server *s);

void tls_server_destroy(tls_server *s);

/* The names of a verified client certificate, most specific first: its
 * subjectAltName DNS, email and URI entries, then its subject CN. Names
 * with control bytes or NUL are skipped. Copies into storage and points
 * names[i]/lens[i] into it. Returns the number of names (0: no
 * certificate, or it did not verify). */
size_t tls_peer_names(SSL *ssl, const char **names, size_t *lens, size_t max, char *storage, size_t storage_cap);

/* The ALPN protocol the handshake selected ("" if none), for tests/logs. */
void tls_selected_alpn(SSL *ssl, const char **proto, size_t *len);

#endif
