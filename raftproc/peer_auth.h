/* raftproc/peer_auth.h: proof that a TCP peer holds the cluster key, run on
 * every connection to the Raft port and to the peer (forwarding/membership)
 * port before one byte of it reaches libraft or the forwarding protocol.
 *
 * A pure state machine over byte buffers (no sockets, no allocation, no
 * logging) so it can be tested byte by byte; peer_auth_uv.h runs it on a
 * libuv stream. Mutual HMAC-SHA256 challenge-response over a pre-shared
 * 256-bit key (docs/ARCHITECTURE.md, "Security"):
 *
 *   client -> server  HELLO      56 B  "LKPA" v1 purpose 0 0 key_id[8] node_id nonce_c[32]
 *   server -> client  CHALLENGE  88 B  "LKPA" v1 status  0 0 key_id[8] node_id nonce_s[32] mac_s[32]
 *   client -> server  PROOF      32 B  mac_c
 *
 *   mac_s = HMAC(K, "lockd peer-auth v1 server" || HELLO || CHALLENGE[0..56))
 *   mac_c = HMAC(K, "lockd peer-auth v1 client" || HELLO || CHALLENGE)
 *
 * The server proves first, so a client never MACs anything for a party
 * that has not shown the key; the two labels differ, so neither proof can
 * be reflected as the other; both nonces are fresh (RAND_bytes), so a
 * recorded exchange cannot be replayed; the purpose byte is inside both
 * MACs, so a proof for one port is worthless on the other. Session keys
 * for per-frame MACs (peer_seal/peer_open) come from the same transcript.
 *
 * What it does not give: secrecy, or integrity of the libraft stream after
 * the handshake (libraft owns that framing). See the design doc. */
#ifndef LOCKD_RAFTPROC_PEER_AUTH_H
#define LOCKD_RAFTPROC_PEER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEER_KEY_LEN 32
#define PEER_KEYS_MAX 4
#define PEER_KEY_ID_LEN 8
#define PEER_NONCE_LEN 32
#define PEER_MAC_LEN 32
#define PEER_TAG_LEN 16
#define PEER_HELLO_LEN 56
#define PEER_CHALLENGE_LEN 88
#define PEER_PROOF_LEN 32

/* The cluster key file (--cluster-key): 1..4 lines of 64 hex digits ('#'
 * comments allowed). The first key is the one this node proves with; every
 * key is accepted from peers, so a key is rotated without downtime: add the
 * new key second everywhere, then move it first, then drop the old one. */
struct peer_keyring {
    unsigned n;
    uint8_t key[PEER_KEYS_MAX][PEER_KEY_LEN];
    uint8_t id[PEER_KEYS_MAX][PEER_KEY_ID_LEN]; /* SHA-256("lockd cluster key id" || key), first 8 bytes */
};

/* Parses text (the contents of path, named in messages). Errors:
 * -LOCKD_EINVAL with "PATH:LINE: ..." in err. Never echoes key material. */
int peer_keyring_parse(const char *text, size_t len, const char *path, struct peer_keyring *out, char *err,
                       size_t err_cap);

/* secfile_read (mode 0600/0640, owner us or root) + peer_keyring_parse. */
int peer_keyring_load(const char *path, struct peer_keyring *out, char *err, size_t err_cap);

void peer_keyring_wipe(struct peer_keyring *k);

/* 64 hex digits of a new random key and "\n" into out (cap >= 66).
 * Returns 0 or -LOCKD_EIO. */
int peer_key_generate(char *out, size_t cap);

/* The two ports that authenticate, bound into every MAC. */
enum peer_purpose { PEER_PURPOSE_RAFT = 1, PEER_PURPOSE_FORWARD = 2 };
enum peer_role { PEER_CLIENT = 0, PEER_SERVER = 1 };

/* Status byte of CHALLENGE: why a server refuses before any MAC. */
enum peer_status { PEER_STATUS_OK = 0, PEER_STATUS_UNKNOWN_KEY = 1, PEER_STATUS_BAD_PURPOSE = 2 };

struct peer_handshake {
    const struct peer_keyring *keys;
    enum peer_role role;
    enum peer_purpose purpose;
    uint64_t self_id;   /* sent in our message */
    uint64_t expect_id; /* client: the node we meant to reach (0: any) */
    uint64_t peer_id;   /* learned from the peer's message */
    int state;
    unsigned key; /* index into keys of the key in use */
    uint8_t hello[PEER_HELLO_LEN];
    uint8_t challenge[PEER_CHALLENGE_LEN];
    uint8_t in[PEER_CHALLENGE_LEN];
    size_t in_len, in_want;
    uint8_t out[PEER_CHALLENGE_LEN];
    size_t out_len;
    uint8_t k_c2s[PEER_KEY_LEN], k_s2c[PEER_KEY_LEN];
    char error[160]; /* why it failed, for the caller's log */
};

/* Starts a handshake. keys must outlive it. A client has HELLO to send at
 * once. Returns 0, or -LOCKD_EINVAL (no key) / -LOCKD_EIO (no randomness)
 * with h->error set. */
int peer_handshake_init(struct peer_handshake *h, const struct peer_keyring *keys, enum peer_role role,
                        enum peer_purpose purpose, uint64_t self_id, uint64_t expect_id);

/* Bytes to write now (*len 0: nothing). After writing all of them, call
 * peer_handshake_sent. */
void peer_handshake_output(const struct peer_handshake *h, const uint8_t **p, size_t *len);
void peer_handshake_sent(struct peer_handshake *h);

/* How many bytes the handshake still needs to read for its next message:
 * read exactly that many, never more (the bytes after the handshake belong
 * to libraft or the forwarding protocol). 0: nothing to read. */
size_t peer_handshake_want(const struct peer_handshake *h);

/* Feeds n <= want bytes. Returns 0 (keep going: check output and want), or
 * -LOCKD_EINVAL (malformed), -LOCKD_ECORRUPT (a MAC did not verify: the
 * peer does not hold our key), -LOCKD_ENOENT (no common key), with
 * h->error set. A server may still have a refusal to send after an error
 * (the CHALLENGE with a status), so a peer sees why. */
int peer_handshake_input(struct peer_handshake *h, const uint8_t *buf, size_t n);

/* Authenticated, and nothing left to send. */
bool peer_handshake_done(const struct peer_handshake *h);
bool peer_handshake_failed(const struct peer_handshake *h);

/* Wipes nonces and derived keys. */
void peer_handshake_wipe(struct peer_handshake *h);

/* Per-frame authentication for the forwarding protocol after the
 * handshake: tag = HMAC-SHA256(direction key, seq || len || payload)[0..16),
 * seq counting frames per direction, so a frame cannot be altered,
 * dropped, reordered or replayed without the receiver noticing. */
struct peer_session {
    uint8_t k_send[PEER_KEY_LEN], k_recv[PEER_KEY_LEN];
    uint64_t seq_send, seq_recv;
};

/* After peer_handshake_done. */
void peer_handshake_session(const struct peer_handshake *h, struct peer_session *s);

void peer_seal(struct peer_session *s, const uint8_t *payload, size_t len, uint8_t tag[PEER_TAG_LEN]);
/* Returns 0, or -LOCKD_ECORRUPT (the caller must drop the connection: the
 * sequence is not advanced). */
int peer_open(struct peer_session *s, const uint8_t *payload, size_t len, const uint8_t tag[PEER_TAG_LEN]);

#endif
