/* raftproc/peer_auth.c: the cluster-key handshake and frame MACs (see
 * peer_auth.h). Owns no memory (the caller's structs hold everything) and
 * never logs; key material never leaves the structs and is wiped with
 * OPENSSL_cleanse. */
#include "raftproc/peer_auth.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/errors.h"
#include "common/secfile.h"

#define PEER_MAGIC "LKPA"
#define PEER_VERSION 1

enum { ST_SEND_HELLO, ST_RECV_HELLO, ST_RECV_CHALLENGE, ST_RECV_PROOF, ST_DONE, ST_FAILED };

static const EVP_MD *peer_md(void)
{
    /* Fetched once (processes are single-threaded). */
    static EVP_MD *md;
    if (md == NULL)
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
    return md;
}

/* HMAC-SHA256(key, parts...) into out (32 bytes): EVP_MAC, as OpenSSL 3
 * deprecates HMAC_CTX. Returns 0 or -LOCKD_EIO. */
static int peer_mac3(const uint8_t *key, const void *a, size_t alen, const void *b, size_t blen, const void *c,
                     size_t clen, uint8_t out[PEER_MAC_LEN])
{
    /* One context for the process, re-keyed per call: allocating and
     * fetching per frame cost ~4 us, re-keying ~1 us. Processes are
     * single-threaded. */
    static EVP_MAC_CTX *ctx;
    if (ctx == NULL) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac); /* the context keeps its own reference */
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                               OSSL_PARAM_construct_end()};
        if (ctx == NULL || EVP_MAC_CTX_set_params(ctx, params) != 1) {
            EVP_MAC_CTX_free(ctx);
            ctx = NULL;
            return -LOCKD_EIO;
        }
    }
    size_t n = 0;
    int ok = EVP_MAC_init(ctx, key, PEER_KEY_LEN, NULL) == 1 && EVP_MAC_update(ctx, a, alen) == 1 &&
             (blen == 0 || EVP_MAC_update(ctx, b, blen) == 1) && (clen == 0 || EVP_MAC_update(ctx, c, clen) == 1) &&
             EVP_MAC_final(ctx, out, &n, PEER_MAC_LEN) == 1 && n == PEER_MAC_LEN;
    return ok ? 0 : -LOCKD_EIO;
}

/* HMAC(key, label || a || b) into out (32 bytes). */
static int peer_hmac(const uint8_t *key, const char *label, const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen, uint8_t out[PEER_MAC_LEN])
{
    return peer_mac3(key, label, strlen(label), a, alen, b, blen, out);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- key file ------------------------------------------------------------------ */

static int peer_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void peer_key_id(const uint8_t key[PEER_KEY_LEN], uint8_t id[PEER_KEY_ID_LEN])
{
    static const char label[] = "lockd cluster key id";
    uint8_t buf[sizeof label - 1 + PEER_KEY_LEN], md[32];
    unsigned int n = 0;
    memcpy(buf, label, sizeof label - 1);
    memcpy(buf + sizeof label - 1, key, PEER_KEY_LEN);
    if (peer_md() == NULL || EVP_Digest(buf, sizeof buf, md, &n, peer_md(), NULL) != 1)
        memset(md, 0, sizeof md);
    memcpy(id, md, PEER_KEY_ID_LEN);
    OPENSSL_cleanse(buf, sizeof buf);
}

int peer_keyring_parse(const char *text, size_t len, const char *path, struct peer_keyring *out, char *err,
                       size_t err_cap)
{
    memset(out, 0, sizeof *out);
    unsigned line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *s = text + pos;
        size_t n = end - pos;
        pos = end + 1;
        line++;
        while (n && (s[0] == ' ' || s[0] == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
            n--;
        if (n == 0 || s[0] == '#')
            continue;
        if (n != 2 * PEER_KEY_LEN) {
            snprintf(err, err_cap, "%s:%u: a key is 64 hex digits (openssl rand -hex 32), found %zu characters", path,
                     line, n);
            peer_keyring_wipe(out);
            return -LOCKD_EINVAL;
        }
        if (out->n == PEER_KEYS_MAX) {
            snprintf(err, err_cap, "%s:%u: more than %d keys", path, line, PEER_KEYS_MAX);
            peer_keyring_wipe(out);
            return -LOCKD_EINVAL;
        }
        uint8_t *k = out->key[out->n];
        for (size_t i = 0; i < PEER_KEY_LEN; i++) {
            int hi = peer_hex(s[2 * i]), lo = peer_hex(s[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, err_cap, "%s:%u: a key is 64 hex digits (openssl rand -hex 32)", path, line);
                peer_keyring_wipe(out);
                return -LOCKD_EINVAL;
            }
            k[i] = (uint8_t)(hi << 4 | lo);
        }
        uint8_t zero[PEER_KEY_LEN] = {0};
        if (CRYPTO_memcmp(k, zero, PEER_KEY_LEN) == 0) {
            snprintf(err, err_cap, "%s:%u: an all-zero key is not a secret", path, line);
            peer_keyring_wipe(out);
            return -LOCKD_EINVAL;
        }
        peer_key_id(k, out->id[out->n]);
        for (unsigned j = 0; j < out->n; j++) {
            if (memcmp(out->id[j], out->id[out->n], PEER_KEY_ID_LEN) == 0) {
                snprintf(err, err_cap, "%s:%u: the same key twice", path, line);
                peer_keyring_wipe(out);
                return -LOCKD_EINVAL;
            }
        }
        out->n++;
    }
    if (out->n == 0) {
        snprintf(err, err_cap, "%s: no key (one line of 64 hex digits: openssl rand -hex 32)", path);
        return -LOCKD_EINVAL;
    }
    return 0;
}

int peer_keyring_load(const char *path, struct peer_keyring *out, char *err, size_t err_cap)
{
    char *text;
    size_t len;
    memset(out, 0, sizeof *out);
    int rc = secfile_read(path, 4096, &text, &len, err, err_cap);
    if (rc != 0)
        return rc;
    rc = peer_keyring_parse(text, len, path, out, err, err_cap);
    secfile_free(text, len);
    return rc;
}

void peer_keyring_wipe(struct peer_keyring *k)
{
    OPENSSL_cleanse(k, sizeof *k);
}

int peer_key_generate(char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t k[PEER_KEY_LEN];
    if (cap < 2 * PEER_KEY_LEN + 2)
        return -LOCKD_EINVAL;
    if (RAND_bytes(k, sizeof k) != 1)
        return -LOCKD_EIO;
    for (size_t i = 0; i < PEER_KEY_LEN; i++) {
        out[2 * i] = hex[k[i] >> 4];
        out[2 * i + 1] = hex[k[i] & 15];
    }
    out[2 * PEER_KEY_LEN] = '\n';
    out[2 * PEER_KEY_LEN + 1] = '\0';
    OPENSSL_cleanse(k, sizeof k);
    return 0;
}

/* ---- handshake ----------------------------------------------------------------- */

static int peer_fail(struct peer_handshake *h, int rc, const char *why)
{
    snprintf(h->error, sizeof h->error, "%s", why);
    h->state = ST_FAILED;
    h->in_want = 0;
    return rc;
}

/* The header shared by HELLO and CHALLENGE: magic, version, byte 5, key id,
 * node id, nonce. */
static int peer_header(uint8_t *m, uint8_t byte5, const uint8_t *key_id, uint64_t node_id)
{
    memcpy(m, PEER_MAGIC, 4);
    m[4] = PEER_VERSION;
    m[5] = byte5;
    m[6] = m[7] = 0;
    memcpy(m + 8, key_id, PEER_KEY_ID_LEN);
    put_be64(m + 16, node_id);
    return RAND_bytes(m + 24, PEER_NONCE_LEN) == 1 ? 0 : -LOCKD_EIO;
}

int peer_handshake_init(struct peer_handshake *h, const struct peer_keyring *keys, enum peer_role role,
                        enum peer_purpose purpose, uint64_t self_id, uint64_t expect_id)
{
    memset(h, 0, sizeof *h);
    h->keys = keys;
    h->role = role;
    h->purpose = purpose;
    h->self_id = self_id;
    h->expect_id = expect_id;
    if (keys == NULL || keys->n == 0)
        return peer_fail(h, -LOCKD_EINVAL, "no cluster key");
    if (role == PEER_SERVER) {
        h->state = ST_RECV_HELLO;
        h->in_want = PEER_HELLO_LEN;
        return 0;
    }
    h->key = 0; /* a client proves with the first key */
    if (peer_header(h->hello, (uint8_t)purpose, keys->id[0], self_id) != 0)
        return peer_fail(h, -LOCKD_EIO, "no randomness for the nonce");
    memcpy(h->out, h->hello, PEER_HELLO_LEN);
    h->out_len = PEER_HELLO_LEN;
    h->state = ST_RECV_CHALLENGE;
    h->in_want = PEER_CHALLENGE_LEN;
    return 0;
}

void peer_handshake_output(const struct peer_handshake *h, const uint8_t **p, size_t *len)
{
    *p = h->out;
    *len = h->out_len;
}

void peer_handshake_sent(struct peer_handshake *h)
{
    h->out_len = 0;
}

size_t peer_handshake_want(const struct peer_handshake *h)
{
    return h->in_want > h->in_len ? h->in_want - h->in_len : 0;
}

bool peer_handshake_done(const struct peer_handshake *h)
{
    return h->state == ST_DONE && h->out_len == 0;
}

bool peer_handshake_failed(const struct peer_handshake *h)
{
    return h->state == ST_FAILED;
}

static int peer_check_header(struct peer_handshake *h, const uint8_t *m)
{
    if (memcmp(m, PEER_MAGIC, 4) != 0)
        return peer_fail(h, -LOCKD_EINVAL, "not a lockd peer (no cluster-key handshake: is its --cluster-key set?)");
    if (m[4] != PEER_VERSION)
        return peer_fail(h, -LOCKD_EINVAL, "peer speaks another handshake version");
    return 0;
}

/* Derives the session keys from the complete transcript. */
static int peer_derive(struct peer_handshake *h)
{
    const uint8_t *k = h->keys->key[h->key];
    if (peer_hmac(k, "lockd peer-auth v1 c2s", h->hello, PEER_HELLO_LEN, h->challenge, PEER_CHALLENGE_LEN, h->k_c2s) !=
            0 ||
        peer_hmac(k, "lockd peer-auth v1 s2c", h->hello, PEER_HELLO_LEN, h->challenge, PEER_CHALLENGE_LEN, h->k_s2c) !=
            0)
        return peer_fail(h, -LOCKD_EIO, "HMAC failed");
    return 0;
}

static int peer_server_hello(struct peer_handshake *h)
{
    const uint8_t *m = h->in;
    int rc = peer_check_header(h, m);
    if (rc != 0)
        return rc;
    memcpy(h->hello, m, PEER_HELLO_LEN);
    h->peer_id = get_be64(m + 16);
    uint8_t status = PEER_STATUS_OK;
    unsigned key = h->keys->n;
    for (unsigned i = 0; i < h->keys->n; i++)
        if (memcmp(h->keys->id[i], m + 8, PEER_KEY_ID_LEN) == 0)
            key = i;
    if (m[5] != (uint8_t)h->purpose)
        status = PEER_STATUS_BAD_PURPOSE;
    else if (key == h->keys->n)
        status = PEER_STATUS_UNKNOWN_KEY;
    h->key = key == h->keys->n ? 0 : key;
    if (peer_header(h->challenge, status, key == h->keys->n ? m + 8 : h->keys->id[key], h->self_id) != 0)
        return peer_fail(h, -LOCKD_EIO, "no randomness for the nonce");
    if (status != PEER_STATUS_OK) {
        /* Say why (no MAC: we share no key), then give up. */
        memset(h->challenge + 56, 0, PEER_MAC_LEN);
        memcpy(h->out, h->challenge, PEER_CHALLENGE_LEN);
        h->out_len = PEER_CHALLENGE_LEN;
        if (status == PEER_STATUS_BAD_PURPOSE)
            return peer_fail(h, -LOCKD_EINVAL, "peer connected to the wrong port (Raft vs peer port)");
        return peer_fail(h, -LOCKD_ENOENT, "peer proves a cluster key we do not have");
    }
    if (peer_hmac(h->keys->key[key], "lockd peer-auth v1 server", h->hello, PEER_HELLO_LEN, h->challenge, 56,
                  h->challenge + 56) != 0)
        return peer_fail(h, -LOCKD_EIO, "HMAC failed");
    memcpy(h->out, h->challenge, PEER_CHALLENGE_LEN);
    h->out_len = PEER_CHALLENGE_LEN;
    h->state = ST_RECV_PROOF;
    h->in_len = 0;
    h->in_want = PEER_PROOF_LEN;
    return 0;
}

static int peer_server_proof(struct peer_handshake *h)
{
    uint8_t want[PEER_MAC_LEN];
    if (peer_hmac(h->keys->key[h->key], "lockd peer-auth v1 client", h->hello, PEER_HELLO_LEN, h->challenge,
                  PEER_CHALLENGE_LEN, want) != 0)
        return peer_fail(h, -LOCKD_EIO, "HMAC failed");
    int ok = CRYPTO_memcmp(want, h->in, PEER_MAC_LEN) == 0;
    OPENSSL_cleanse(want, sizeof want);
    if (!ok)
        return peer_fail(h, -LOCKD_ECORRUPT, "peer's proof does not verify: it does not hold the cluster key");
    int rc = peer_derive(h);
    if (rc != 0)
        return rc;
    h->state = ST_DONE;
    h->in_want = h->in_len = 0;
    return 0;
}

static int peer_client_challenge(struct peer_handshake *h)
{
    const uint8_t *m = h->in;
    int rc = peer_check_header(h, m);
    if (rc != 0)
        return rc;
    if (m[5] == PEER_STATUS_UNKNOWN_KEY)
        return peer_fail(h, -LOCKD_ENOENT, "peer does not have our cluster key (key rotation half done?)");
    if (m[5] == PEER_STATUS_BAD_PURPOSE)
        return peer_fail(h, -LOCKD_EINVAL, "peer says this is the wrong port for this protocol");
    if (m[5] != PEER_STATUS_OK)
        return peer_fail(h, -LOCKD_EINVAL, "peer refused with an unknown status");
    if (memcmp(m + 8, h->keys->id[h->key], PEER_KEY_ID_LEN) != 0)
        return peer_fail(h, -LOCKD_EINVAL, "peer answered with another key than ours");
    h->peer_id = get_be64(m + 16);
    memcpy(h->challenge, m, PEER_CHALLENGE_LEN);
    uint8_t want[PEER_MAC_LEN];
    if (peer_hmac(h->keys->key[h->key], "lockd peer-auth v1 server", h->hello, PEER_HELLO_LEN, h->challenge, 56,
                  want) != 0)
        return peer_fail(h, -LOCKD_EIO, "HMAC failed");
    int ok = CRYPTO_memcmp(want, m + 56, PEER_MAC_LEN) == 0;
    OPENSSL_cleanse(want, sizeof want);
    if (!ok)
        return peer_fail(h, -LOCKD_ECORRUPT, "peer's proof does not verify: it does not hold the cluster key");
    /* Only now, with the peer proven, is its claimed id worth checking. */
    if (h->expect_id != 0 && h->peer_id != h->expect_id) {
        char why[96];
        snprintf(why, sizeof why, "reached node %llu, expected node %llu (address reused?)",
                 (unsigned long long)h->peer_id, (unsigned long long)h->expect_id);
        return peer_fail(h, -LOCKD_EINVAL, why);
    }
    if (peer_hmac(h->keys->key[h->key], "lockd peer-auth v1 client", h->hello, PEER_HELLO_LEN, h->challenge,
                  PEER_CHALLENGE_LEN, h->out) != 0)
        return peer_fail(h, -LOCKD_EIO, "HMAC failed");
    h->out_len = PEER_PROOF_LEN;
    rc = peer_derive(h);
    if (rc != 0)
        return rc;
    h->state = ST_DONE;
    h->in_want = h->in_len = 0;
    return 0;
}

int peer_handshake_input(struct peer_handshake *h, const uint8_t *buf, size_t n)
{
    if (h->state == ST_FAILED)
        return -LOCKD_EINVAL;
    if (n > peer_handshake_want(h))
        return peer_fail(h, -LOCKD_EINVAL, "more input than the handshake asked for");
    memcpy(h->in + h->in_len, buf, n);
    h->in_len += n;
    if (h->in_len < h->in_want)
        return 0;
    switch (h->state) {
    case ST_RECV_HELLO:
        return peer_server_hello(h);
    case ST_RECV_PROOF:
        return peer_server_proof(h);
    case ST_RECV_CHALLENGE:
        return peer_client_challenge(h);
    default:
        return peer_fail(h, -LOCKD_EINVAL, "input in a state that expects none");
    }
}

void peer_handshake_session(const struct peer_handshake *h, struct peer_session *s)
{
    memset(s, 0, sizeof *s);
    if (h->role == PEER_CLIENT) {
        memcpy(s->k_send, h->k_c2s, PEER_KEY_LEN);
        memcpy(s->k_recv, h->k_s2c, PEER_KEY_LEN);
    } else {
        memcpy(s->k_send, h->k_s2c, PEER_KEY_LEN);
        memcpy(s->k_recv, h->k_c2s, PEER_KEY_LEN);
    }
}

void peer_handshake_wipe(struct peer_handshake *h)
{
    OPENSSL_cleanse(h, sizeof *h);
}

/* ---- frames -------------------------------------------------------------------- */

static void peer_tag(const uint8_t *key, uint64_t seq, const uint8_t *payload, size_t len, uint8_t tag[PEER_TAG_LEN])
{
    uint8_t hdr[12], mac[PEER_MAC_LEN];
    put_be64(hdr, seq);
    hdr[8] = (uint8_t)(len >> 24);
    hdr[9] = (uint8_t)(len >> 16);
    hdr[10] = (uint8_t)(len >> 8);
    hdr[11] = (uint8_t)len;
    if (peer_mac3(key, hdr, sizeof hdr, payload, len, NULL, 0, mac) != 0)
        memset(mac, 0xff, sizeof mac); /* never verifies against a real tag of the peer */
    memcpy(tag, mac, PEER_TAG_LEN);
}

void peer_seal(struct peer_session *s, const uint8_t *payload, size_t len, uint8_t tag[PEER_TAG_LEN])
{
    peer_tag(s->k_send, s->seq_send++, payload, len, tag);
}

int peer_open(struct peer_session *s, const uint8_t *payload, size_t len, const uint8_t tag[PEER_TAG_LEN])
{
    uint8_t want[PEER_TAG_LEN];
    peer_tag(s->k_recv, s->seq_recv, payload, len, want);
    if (CRYPTO_memcmp(want, tag, PEER_TAG_LEN) != 0)
        return -LOCKD_ECORRUPT;
    s->seq_recv++;
    return 0;
}
