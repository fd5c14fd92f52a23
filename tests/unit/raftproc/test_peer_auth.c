/* tests/unit/raftproc/test_peer_auth.c: the cluster-key handshake as a pure
 * state machine (both roles, wrong keys, rotation, replays, wrong port,
 * wrong node, byte-at-a-time input), the per-frame MACs, the key file, and
 * the libuv adapter on a socketpair (bytes after the handshake stay unread;
 * a silent peer times out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "common/errors.h"
#include "raftproc/peer_auth.h"
#include "raftproc/peer_auth_uv.h"

#define KEY1 "8f3a6b1c2d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e"
#define KEY2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void ring(struct peer_keyring *k, const char *text)
{
    char err[256] = "";
    if (peer_keyring_parse(text, strlen(text), "cluster.key", k, err, sizeof err) != 0)
        fail_msg("keyring: %s", err);
}

/* Moves bytes between two handshakes until neither has anything to send;
 * chunk: bytes per feed (1 = byte at a time). Returns 0 or the first error. */
static int pump(struct peer_handshake *c, struct peer_handshake *s, size_t chunk)
{
    for (int round = 0; round < 16; round++) {
        int progressed = 0;
        struct peer_handshake *from[2] = {c, s}, *to[2] = {s, c};
        for (int i = 0; i < 2; i++) {
            const uint8_t *p;
            size_t len;
            peer_handshake_output(from[i], &p, &len);
            if (len == 0)
                continue;
            uint8_t copy[PEER_CHALLENGE_LEN];
            memcpy(copy, p, len);
            peer_handshake_sent(from[i]);
            progressed = 1;
            for (size_t off = 0; off < len;) {
                size_t want = peer_handshake_want(to[i]);
                if (want == 0)
                    return -LOCKD_EINVAL;
                size_t n = len - off < chunk ? len - off : chunk;
                if (n > want)
                    n = want;
                int rc = peer_handshake_input(to[i], copy + off, n);
                if (rc != 0)
                    return rc;
                off += n;
            }
        }
        if (!progressed)
            return 0;
    }
    return -LOCKD_EINVAL;
}

static void test_keyring_file(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, "# cluster key\n" KEY1 "\n\n  " KEY2 "  \r\n");
    assert_int_equal(k.n, 2);
    assert_int_equal(k.key[0][0], 0x8f);
    assert_int_equal(k.key[1][31], 0xef);
    assert_memory_not_equal(k.id[0], k.id[1], PEER_KEY_ID_LEN);

    char err[256];
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "no key"},
        {"# nothing\n", "no key"},
        {"abc\n", "cluster.key:1: a key is 64 hex digits"},
        {"\n" KEY1 "0\n", "cluster.key:2: a key is 64 hex digits (openssl rand -hex 32), found 65"},
        {"zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", "cluster.key:1: a key is 64 hex"},
        {"0000000000000000000000000000000000000000000000000000000000000000\n", "all-zero key"},
        {KEY1 "\n" KEY1 "\n", "cluster.key:2: the same key twice"},
        {KEY1 "\n" KEY2 "\n"
              "1111111111111111111111111111111111111111111111111111111111111111\n"
              "2222222222222222222222222222222222222222222222222222222222222222\n"
              "3333333333333333333333333333333333333333333333333333333333333333\n",
         "cluster.key:5: more than 4 keys"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(peer_keyring_parse(bad[i].text, strlen(bad[i].text), "cluster.key", &k, err, sizeof err),
                         -LOCKD_EINVAL);
        if (strstr(err, bad[i].want) == NULL)
            fail_msg("case %zu: %s lacks %s", i, err, bad[i].want);
        assert_null(strstr(err, "8f3a6b")); /* key material is never echoed */
        assert_int_equal(k.n, 0);
    }

    char gen[70], gen2[70];
    assert_int_equal(peer_key_generate(gen, sizeof gen), 0);
    assert_int_equal(peer_key_generate(gen2, sizeof gen2), 0);
    assert_int_equal(strlen(gen), 65);
    assert_string_not_equal(gen, gen2);
    ring(&k, gen);
    assert_int_equal(k.n, 1);

    /* the file itself: mode checked like every secret */
    char path[] = "/tmp/lockd-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, gen, strlen(gen)), (ssize_t)strlen(gen));
    close(fd);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(peer_keyring_load(path, &k, err, sizeof err), -LOCKD_EINVAL);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(peer_keyring_load(path, &k, err, sizeof err), 0);
    assert_int_equal(k.n, 1);
    unlink(path);
    peer_keyring_wipe(&k);
    assert_int_equal(k.n, 0);
}

static void test_both_sides_authenticate_at_any_chunking(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    static const size_t chunks[] = {1, 3, 7, 56, 1000};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        struct peer_handshake c, s;
        assert_int_equal(peer_handshake_init(&c, &k, PEER_CLIENT, PEER_PURPOSE_RAFT, 101, 102), 0);
        assert_int_equal(peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 102, 0), 0);
        assert_false(peer_handshake_done(&c));
        assert_int_equal(peer_handshake_want(&s), PEER_HELLO_LEN);
        assert_int_equal(pump(&c, &s, chunks[i]), 0);
        assert_true(peer_handshake_done(&c));
        assert_true(peer_handshake_done(&s));
        assert_int_equal(peer_handshake_want(&c), 0);
        assert_int_equal(peer_handshake_want(&s), 0);
        assert_int_equal(c.peer_id, 102);
        assert_int_equal(s.peer_id, 101);

        struct peer_session cs, ss;
        peer_handshake_session(&c, &cs);
        peer_handshake_session(&s, &ss);
        assert_memory_equal(cs.k_send, ss.k_recv, PEER_KEY_LEN);
        assert_memory_equal(cs.k_recv, ss.k_send, PEER_KEY_LEN);
        assert_memory_not_equal(cs.k_send, cs.k_recv, PEER_KEY_LEN);
        peer_handshake_wipe(&c);
        peer_handshake_wipe(&s);
    }
}

static void test_each_handshake_has_fresh_session_keys(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct peer_handshake c1, s1, c2, s2;
    peer_handshake_init(&c1, &k, PEER_CLIENT, PEER_PURPOSE_FORWARD, 1, 0);
    peer_handshake_init(&s1, &k, PEER_SERVER, PEER_PURPOSE_FORWARD, 2, 0);
    peer_handshake_init(&c2, &k, PEER_CLIENT, PEER_PURPOSE_FORWARD, 1, 0);
    peer_handshake_init(&s2, &k, PEER_SERVER, PEER_PURPOSE_FORWARD, 2, 0);
    assert_int_equal(pump(&c1, &s1, 1000), 0);
    assert_int_equal(pump(&c2, &s2, 1000), 0);
    assert_memory_not_equal(c1.k_c2s, c2.k_c2s, PEER_KEY_LEN);
}

static void test_wrong_key_fails_on_both_sides(void **state)
{
    (void)state;
    struct peer_keyring k1, k2;
    ring(&k1, KEY1 "\n");
    ring(&k2, KEY2 "\n");
    struct peer_handshake c, s;
    peer_handshake_init(&c, &k1, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0);
    peer_handshake_init(&s, &k2, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    /* The server refuses (unknown key) but still sends its refusal... */
    const uint8_t *p;
    size_t len;
    peer_handshake_output(&c, &p, &len);
    assert_int_equal(peer_handshake_input(&s, p, len), -LOCKD_ENOENT);
    assert_true(peer_handshake_failed(&s));
    assert_non_null(strstr(s.error, "cluster key we do not have"));
    peer_handshake_sent(&c);
    peer_handshake_output(&s, &p, &len);
    assert_int_equal(len, PEER_CHALLENGE_LEN);
    /* ...which the client reports as such. */
    assert_int_equal(peer_handshake_input(&c, p, len), -LOCKD_ENOENT);
    assert_non_null(strstr(c.error, "does not have our cluster key"));
    assert_false(peer_handshake_done(&c));
    peer_handshake_output(&c, &p, &len);
    assert_int_equal(len, 0); /* no proof is ever sent to a stranger */
}

/* An attacker who knows a key's id (it is not secret) but not the key. */
static void test_right_key_id_without_the_key_fails(void **state)
{
    (void)state;
    struct peer_keyring real, fake;
    ring(&real, KEY1 "\n");
    ring(&fake, KEY2 "\n");
    memcpy(fake.id[0], real.id[0], PEER_KEY_ID_LEN);

    /* as a client: the server's proof does not verify with the fake key, and
     * the server never accepts a proof the attacker cannot compute */
    struct peer_handshake c, s;
    peer_handshake_init(&c, &fake, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0);
    peer_handshake_init(&s, &real, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(pump(&c, &s, 1000), -LOCKD_ECORRUPT);
    assert_non_null(strstr(c.error, "does not hold the cluster key"));
    assert_false(peer_handshake_done(&s));
    uint8_t guess[PEER_PROOF_LEN];
    memset(guess, 0x5a, sizeof guess);
    assert_int_equal(peer_handshake_input(&s, guess, sizeof guess), -LOCKD_ECORRUPT);
    assert_false(peer_handshake_done(&s));

    /* as a server: the real client rejects the fake server's proof and
     * sends none of its own */
    peer_handshake_init(&c, &real, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0);
    peer_handshake_init(&s, &fake, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(pump(&c, &s, 1000), -LOCKD_ECORRUPT);
    assert_true(peer_handshake_failed(&c));
    const uint8_t *p;
    size_t len;
    peer_handshake_output(&c, &p, &len);
    assert_int_equal(len, 0);
}

static void test_recorded_exchange_cannot_be_replayed(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct peer_handshake c, s;
    peer_handshake_init(&c, &k, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0);
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    /* record the client's two messages of a good exchange */
    uint8_t hello[PEER_HELLO_LEN], proof[PEER_PROOF_LEN];
    const uint8_t *p;
    size_t len;
    peer_handshake_output(&c, &p, &len);
    memcpy(hello, p, len);
    peer_handshake_sent(&c);
    assert_int_equal(peer_handshake_input(&s, hello, sizeof hello), 0);
    peer_handshake_output(&s, &p, &len);
    assert_int_equal(peer_handshake_input(&c, p, len), 0);
    peer_handshake_sent(&s);
    peer_handshake_output(&c, &p, &len);
    memcpy(proof, p, len);
    assert_int_equal(peer_handshake_input(&s, proof, sizeof proof), 0);
    assert_true(peer_handshake_done(&s));

    /* replay them to a fresh server: its nonce differs, the proof fails */
    struct peer_handshake s2;
    peer_handshake_init(&s2, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(peer_handshake_input(&s2, hello, sizeof hello), 0);
    assert_int_equal(peer_handshake_input(&s2, proof, sizeof proof), -LOCKD_ECORRUPT);

    /* reflection: the server's own CHALLENGE MAC is not a client proof */
    struct peer_handshake s3;
    peer_handshake_init(&s3, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(peer_handshake_input(&s3, hello, sizeof hello), 0);
    peer_handshake_output(&s3, &p, &len);
    uint8_t reflected[PEER_PROOF_LEN];
    memcpy(reflected, p + 56, PEER_PROOF_LEN);
    assert_int_equal(peer_handshake_input(&s3, reflected, sizeof reflected), -LOCKD_ECORRUPT);
}

static void test_key_rotation_order(void **state)
{
    (void)state;
    struct peer_keyring old_only, old_new, new_old, new_only;
    ring(&old_only, KEY1 "\n");
    ring(&old_new, KEY1 "\n" KEY2 "\n");
    ring(&new_old, KEY2 "\n" KEY1 "\n");
    ring(&new_only, KEY2 "\n");
    const struct {
        const struct peer_keyring *client, *server;
        int ok;
    } cases[] = {
        {&old_only, &old_new, 1},                            /* step 1: new key added second */
        {&old_new, &old_only, 1},  {&new_old, &old_new, 1},  /* step 2: new key moved first */
        {&old_new, &new_old, 1},   {&new_only, &new_old, 1}, /* step 3: old key dropped */
        {&new_old, &old_only, 0},                            /* a node that skipped step 1 */
        {&new_only, &old_only, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct peer_handshake c, s;
        peer_handshake_init(&c, cases[i].client, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0);
        peer_handshake_init(&s, cases[i].server, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
        int rc = pump(&c, &s, 1000);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_true(peer_handshake_done(&s));
        } else {
            assert_int_not_equal(rc, 0);
            assert_false(peer_handshake_done(&s));
        }
    }
}

static void test_wrong_port_and_wrong_node_fail(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct peer_handshake c, s;
    peer_handshake_init(&c, &k, PEER_CLIENT, PEER_PURPOSE_FORWARD, 1, 0);
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(pump(&c, &s, 1000), -LOCKD_EINVAL);
    assert_non_null(strstr(s.error, "wrong port"));

    peer_handshake_init(&c, &k, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 3);
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(pump(&c, &s, 1000), -LOCKD_EINVAL);
    assert_non_null(strstr(c.error, "reached node 2, expected node 3"));
    assert_false(peer_handshake_done(&s));
}

static void test_garbage_and_strangers_are_refused(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct peer_handshake s;
    /* an HTTP request, libraft's own preamble (protocol 1, id, length) */
    uint8_t http[PEER_HELLO_LEN];
    memset(http, ' ', sizeof http);
    memcpy(http, "GET / HTTP/1.1\r\n", 16);
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(peer_handshake_input(&s, http, sizeof http), -LOCKD_EINVAL);
    assert_non_null(strstr(s.error, "not a lockd peer"));
    uint8_t raft[PEER_HELLO_LEN] = {1, 0, 0, 0, 0, 0, 0, 0, 101};
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(peer_handshake_input(&s, raft, sizeof raft), -LOCKD_EINVAL);
    /* other version */
    struct peer_handshake c;
    peer_handshake_init(&c, &k, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0);
    uint8_t hello[PEER_HELLO_LEN];
    memcpy(hello, c.out, sizeof hello);
    hello[4] = 2;
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(peer_handshake_input(&s, hello, sizeof hello), -LOCKD_EINVAL);
    assert_non_null(strstr(s.error, "another handshake version"));
    /* more bytes than asked for, input after failure, no key */
    uint8_t big[PEER_CHALLENGE_LEN] = {0};
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0);
    assert_int_equal(peer_handshake_input(&s, big, sizeof big), -LOCKD_EINVAL);
    assert_int_equal(peer_handshake_input(&s, big, 1), -LOCKD_EINVAL);
    struct peer_keyring none = {0};
    assert_int_equal(peer_handshake_init(&s, &none, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0), -LOCKD_EINVAL);
    assert_int_equal(peer_handshake_init(&s, NULL, PEER_CLIENT, PEER_PURPOSE_RAFT, 2, 0), -LOCKD_EINVAL);
}

static void test_frames_detect_tamper_replay_reorder(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct peer_handshake c, s;
    peer_handshake_init(&c, &k, PEER_CLIENT, PEER_PURPOSE_FORWARD, 1, 0);
    peer_handshake_init(&s, &k, PEER_SERVER, PEER_PURPOSE_FORWARD, 2, 0);
    assert_int_equal(pump(&c, &s, 1000), 0);
    struct peer_session cs, ss;
    peer_handshake_session(&c, &cs);
    peer_handshake_session(&s, &ss);

    uint8_t f1[] = "release jobs-1 force", f2[] = "acquire jobs-2", t1[PEER_TAG_LEN], t2[PEER_TAG_LEN];
    peer_seal(&cs, f1, sizeof f1, t1);
    peer_seal(&cs, f2, sizeof f2, t2);
    /* reorder: the second frame first */
    assert_int_equal(peer_open(&ss, f2, sizeof f2, t2), -LOCKD_ECORRUPT);
    /* tamper */
    f1[0] ^= 1;
    assert_int_equal(peer_open(&ss, f1, sizeof f1, t1), -LOCKD_ECORRUPT);
    f1[0] ^= 1;
    /* truncation changes the length in the MAC */
    assert_int_equal(peer_open(&ss, f1, sizeof f1 - 1, t1), -LOCKD_ECORRUPT);
    assert_int_equal(peer_open(&ss, f1, sizeof f1, t1), 0);
    /* replay */
    assert_int_equal(peer_open(&ss, f1, sizeof f1, t1), -LOCKD_ECORRUPT);
    assert_int_equal(peer_open(&ss, f2, sizeof f2, t2), 0);
    /* the other direction has its own key: a client frame is not a server frame */
    uint8_t t3[PEER_TAG_LEN];
    peer_seal(&cs, f1, sizeof f1, t3);
    assert_int_equal(peer_open(&cs, f1, sizeof f1, t3), -LOCKD_ECORRUPT);
    peer_seal(&ss, f1, 0, t3); /* an empty frame */
    assert_int_equal(peer_open(&cs, f1, 0, t3), 0);
}

/* ---- the libuv adapter --------------------------------------------------------- */

struct uv_side {
    int done;
    int status;
    uint64_t peer_id;
    char error[160];
};

static void uv_side_cb(void *arg, uv_stream_t *stream, int status, const struct peer_handshake *h)
{
    struct uv_side *side = arg;
    (void)stream;
    side->done = 1;
    side->status = status;
    side->peer_id = h->peer_id;
    snprintf(side->error, sizeof side->error, "%s", h->error);
}

static void run_until(uv_loop_t *loop, int *a, int *b)
{
    /* bounded: 5 s of loop turns, not a sleep */
    uint64_t deadline = uv_now(loop) + 5000;
    while ((!*a || (b && !*b)) && uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
}

struct pair {
    uv_loop_t loop;
    uv_pipe_t a, b;
    uv_timer_t tick; /* keeps uv_run(ONCE) from blocking forever */
};

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(uv_loop_init(&p->loop), 0);
    assert_int_equal(uv_pipe_init(&p->loop, &p->a, 0), 0);
    assert_int_equal(uv_pipe_init(&p->loop, &p->b, 0), 0);
    assert_int_equal(uv_pipe_open(&p->a, sv[0]), 0);
    assert_int_equal(uv_pipe_open(&p->b, sv[1]), 0);
    uv_timer_init(&p->loop, &p->tick);
    uv_timer_start(&p->tick, tick_cb, 10, 10);
}

static void pair_close(struct pair *p)
{
    uv_close((uv_handle_t *)&p->a, NULL);
    uv_close((uv_handle_t *)&p->b, NULL);
    uv_close((uv_handle_t *)&p->tick, NULL);
    while (uv_run(&p->loop, UV_RUN_NOWAIT) != 0) {
    }
    assert_int_equal(uv_loop_close(&p->loop), 0);
}

struct after {
    uv_write_t w;
    char got[64];
    size_t len;
};

static void after_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    struct after *a = h->data;
    (void)s;
    b->base = a->got + a->len;
    b->len = sizeof a->got - 1 - a->len;
}

static void after_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct after *a = st->data;
    (void)b;
    if (n > 0)
        a->len += (size_t)n;
}

static struct after *g_after;
static void client_done_then_send(void *arg, uv_stream_t *stream, int status, const struct peer_handshake *h)
{
    uv_side_cb(arg, stream, status, h);
    if (status == 0) {
        /* libraft would start sending right away */
        static char msg[] = "RAFT-APPEND-ENTRIES";
        uv_buf_t b = uv_buf_init(msg, sizeof msg - 1);
        uv_write(&g_after->w, stream, &b, 1, NULL);
    }
}

static void test_uv_handshake_leaves_following_bytes_unread(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct pair p;
    pair_open(&p);
    struct after after = {0};
    g_after = &after;
    struct uv_side cs = {0}, ss = {0};
    p.b.data = &after; /* the adapter must give the stream's data back */
    assert_int_equal(peer_auth_uv_start((uv_stream_t *)&p.a, &k, PEER_CLIENT, PEER_PURPOSE_RAFT, 101, 102, 5000,
                                        client_done_then_send, &cs, NULL),
                     0);
    assert_int_equal(peer_auth_uv_start((uv_stream_t *)&p.b, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 102, 0, 5000,
                                        uv_side_cb, &ss, NULL),
                     0);
    run_until(&p.loop, &cs.done, &ss.done);
    assert_int_equal(cs.status, 0);
    assert_int_equal(ss.status, 0);
    assert_int_equal(cs.peer_id, 102);
    assert_int_equal(ss.peer_id, 101);
    assert_ptr_equal(p.b.data, &after);
    /* what the client sent after its proof is still in the socket */
    uv_read_start((uv_stream_t *)&p.b, after_alloc, after_read);
    uint64_t deadline = uv_now(&p.loop) + 5000;
    while (after.len < 19 && uv_now(&p.loop) < deadline)
        uv_run(&p.loop, UV_RUN_ONCE);
    uv_read_stop((uv_stream_t *)&p.b);
    after.got[after.len] = '\0';
    assert_string_equal(after.got, "RAFT-APPEND-ENTRIES");
    pair_close(&p);
}

static void test_uv_wrong_key_refused_with_reason(void **state)
{
    (void)state;
    struct peer_keyring k1, k2;
    ring(&k1, KEY1 "\n");
    ring(&k2, KEY2 "\n");
    struct pair p;
    pair_open(&p);
    struct uv_side cs = {0}, ss = {0};
    assert_int_equal(
        peer_auth_uv_start((uv_stream_t *)&p.a, &k1, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0, 5000, uv_side_cb, &cs, NULL),
        0);
    assert_int_equal(
        peer_auth_uv_start((uv_stream_t *)&p.b, &k2, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0, 5000, uv_side_cb, &ss, NULL),
        0);
    run_until(&p.loop, &cs.done, &ss.done);
    assert_int_equal(ss.status, -LOCKD_ENOENT);
    assert_int_equal(cs.status, -LOCKD_ENOENT);
    assert_non_null(strstr(cs.error, "does not have our cluster key"));
    pair_close(&p);
}

static void test_uv_silent_peer_times_out_and_cancel_works(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct pair p;
    pair_open(&p);
    struct uv_side ss = {0};
    assert_int_equal(
        peer_auth_uv_start((uv_stream_t *)&p.b, &k, PEER_SERVER, PEER_PURPOSE_RAFT, 2, 0, 50, uv_side_cb, &ss, NULL),
        0);
    run_until(&p.loop, &ss.done, NULL);
    assert_int_equal(ss.status, -LOCKD_EAGAIN);
    assert_non_null(strstr(ss.error, "not finished in time"));

    struct uv_side cs = {0};
    peer_auth_uv *h;
    assert_int_equal(
        peer_auth_uv_start((uv_stream_t *)&p.a, &k, PEER_CLIENT, PEER_PURPOSE_RAFT, 1, 0, 5000, uv_side_cb, &cs, &h),
        0);
    peer_auth_uv_cancel(h);
    assert_int_equal(cs.done, 1);
    assert_int_equal(cs.status, -LOCKD_ESHUTDOWN);
    pair_close(&p);
}

static void test_uv_peer_hangs_up(void **state)
{
    (void)state;
    struct peer_keyring k;
    ring(&k, KEY1 "\n");
    struct pair p;
    pair_open(&p);
    struct uv_side ss = {0};
    assert_int_equal(peer_auth_uv_start((uv_stream_t *)&p.b, &k, PEER_SERVER, PEER_PURPOSE_FORWARD, 2, 0, 5000,
                                        uv_side_cb, &ss, NULL),
                     0);
    shutdown(p.a.io_watcher.fd, SHUT_WR);
    run_until(&p.loop, &ss.done, NULL);
    assert_int_equal(ss.status, -LOCKD_EIO);
    assert_non_null(strstr(ss.error, "closed by the peer"));
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyring_file),
        cmocka_unit_test(test_both_sides_authenticate_at_any_chunking),
        cmocka_unit_test(test_each_handshake_has_fresh_session_keys),
        cmocka_unit_test(test_wrong_key_fails_on_both_sides),
        cmocka_unit_test(test_right_key_id_without_the_key_fails),
        cmocka_unit_test(test_recorded_exchange_cannot_be_replayed),
        cmocka_unit_test(test_key_rotation_order),
        cmocka_unit_test(test_wrong_port_and_wrong_node_fail),
        cmocka_unit_test(test_garbage_and_strangers_are_refused),
        cmocka_unit_test(test_frames_detect_tamper_replay_reorder),
        cmocka_unit_test(test_uv_handshake_leaves_following_bytes_unread),
        cmocka_unit_test(test_uv_wrong_key_refused_with_reason),
        cmocka_unit_test(test_uv_silent_peer_times_out_and_cancel_works),
        cmocka_unit_test(test_uv_peer_hangs_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
