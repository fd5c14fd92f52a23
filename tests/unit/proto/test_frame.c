/* tests/unit/proto/test_frame.c: the 4-byte little-endian length prefix:
 * round trips, incomplete input, back-to-back frames and both size limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/limits.h"
#include "proto/frame.h"
#include "proto/lockd.pb-c.h"

static Lockd__Request make_request(uint64_t id, const char *name, const char *owner)
{
    Lockd__Request r = LOCKD__REQUEST__INIT;
    r.id = id;
    r.op = LOCKD__OP__OP_ACQUIRE;
    r.name = (char *)name;
    r.owner = (char *)owner;
    r.token = 0x0102030405060708ull;
    r.ttl_ms = 30000;
    r.force = true;
    r.wait_ms = 250;
    return r;
}

static void assert_request_payload(const uint8_t *payload, size_t len, uint64_t id, const char *name,
                                   const char *owner)
{
    Lockd__Request *got = lockd__request__unpack(NULL, len, payload);
    assert_non_null(got);
    assert_int_equal(got->id, id);
    assert_int_equal(got->op, LOCKD__OP__OP_ACQUIRE);
    assert_string_equal(got->name, name);
    assert_string_equal(got->owner, owner);
    assert_int_equal(got->token, 0x0102030405060708ull);
    assert_int_equal(got->ttl_ms, 30000);
    assert_true(got->force);
    assert_int_equal(got->wait_ms, 250);
    lockd__request__free_unpacked(got, NULL);
}

static void test_encode_then_peek_round_trips_request(void **state)
{
    Lockd__Request r = make_request(42, "my-lock", "alice");
    uint8_t buf[512];
    int n = frame_encode(&r.base, buf, sizeof(buf));
    size_t packed = lockd__request__get_packed_size(&r);
    assert_int_equal(n, (int)(FRAME_HEADER_SIZE + packed));
    /* Header: little-endian payload length. */
    assert_int_equal(buf[0], (uint8_t)packed);
    assert_int_equal(buf[1], (uint8_t)(packed >> 8));
    assert_int_equal(buf[2], 0);
    assert_int_equal(buf[3], 0);
    const uint8_t *payload = NULL;
    size_t plen = 0;
    assert_int_equal(frame_peek(buf, (size_t)n, &payload, &plen), n);
    assert_ptr_equal(payload, buf + FRAME_HEADER_SIZE);
    assert_int_equal(plen, packed);
    assert_request_payload(payload, plen, 42, "my-lock", "alice");
}

static void test_empty_message_is_a_header_only_frame(void **state)
{
    Lockd__Request r = LOCKD__REQUEST__INIT; /* every field default: packs to 0 bytes */
    uint8_t buf[FRAME_HEADER_SIZE];
    assert_int_equal(frame_encode(&r.base, buf, sizeof(buf)), FRAME_HEADER_SIZE);
    assert_memory_equal(buf, "\0\0\0\0", 4);
    const uint8_t *payload = NULL;
    size_t plen = 99;
    assert_int_equal(frame_peek(buf, sizeof(buf), &payload, &plen), FRAME_HEADER_SIZE);
    assert_int_equal(plen, 0);
}

static void test_peek_returns_zero_until_the_last_byte_arrives(void **state)
{
    /* Framing does not check field limits: a 300-byte owner makes a payload
     * whose length needs two header bytes. */
    char owner[301];
    memset(owner, 'o', 300);
    owner[300] = '\0';
    Lockd__Request r = make_request(7, "byte-by-byte", owner);
    uint8_t buf[512];
    int n = frame_encode(&r.base, buf, sizeof(buf));
    assert_true(n > 256 + FRAME_HEADER_SIZE);
    assert_int_not_equal(buf[1], 0);
    const uint8_t *payload = NULL;
    size_t plen = 0;
    for (int len = 0; len < n; len++) {
        /* Copy the prefix so reading past it would be caught by ASan. */
        uint8_t *part = malloc(len ? (size_t)len : 1);
        assert_non_null(part);
        memcpy(part, buf, (size_t)len);
        assert_int_equal(frame_peek(part, (size_t)len, &payload, &plen), 0);
        free(part);
    }
    assert_int_equal(frame_peek(buf, (size_t)n, &payload, &plen), n);
    assert_request_payload(payload, plen, 7, "byte-by-byte", owner);
}

static void test_two_frames_back_to_back_peek_one_at_a_time(void **state)
{
    Lockd__Request a = make_request(1, "first", "");
    Lockd__Request b = make_request(2, "second", "bob");
    uint8_t buf[1024];
    int na = frame_encode(&a.base, buf, sizeof(buf));
    assert_true(na > 0);
    int nb = frame_encode(&b.base, buf + na, sizeof(buf) - (size_t)na);
    assert_true(nb > 0);
    size_t total = (size_t)na + (size_t)nb;
    const uint8_t *payload;
    size_t plen;
    /* Both in the buffer: peek sees only the first. */
    assert_int_equal(frame_peek(buf, total, &payload, &plen), na);
    assert_request_payload(payload, plen, 1, "first", "");
    /* Then the second, also when only part of it has arrived. */
    assert_int_equal(frame_peek(buf + na, (size_t)nb - 1, &payload, &plen), 0);
    assert_int_equal(frame_peek(buf + na, (size_t)nb, &payload, &plen), nb);
    assert_request_payload(payload, plen, 2, "second", "bob");
    /* First complete, second partial: still the first. */
    assert_int_equal(frame_peek(buf, (size_t)na + 3, &payload, &plen), na);
}

static void test_peek_of_oversize_length_is_toobig_before_the_payload_arrives(void **state)
{
    const uint8_t *payload;
    size_t plen;
    uint32_t lens[] = {LOCKD_FRAME_MAX + 1, 0x7fffffffu, 0xffffffffu};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t hdr[4] = {(uint8_t)lens[i], (uint8_t)(lens[i] >> 8), (uint8_t)(lens[i] >> 16),
                          (uint8_t)(lens[i] >> 24)};
        assert_int_equal(frame_peek(hdr, sizeof(hdr), &payload, &plen), -LOCKD_ETOOBIG);
    }
    /* Exactly the maximum is allowed (and waits for its bytes). */
    uint8_t hdr[4] = {(uint8_t)LOCKD_FRAME_MAX, (uint8_t)(LOCKD_FRAME_MAX >> 8),
                      (uint8_t)(LOCKD_FRAME_MAX >> 16), 0};
    assert_int_equal(frame_peek(hdr, sizeof(hdr), &payload, &plen), 0);
    uint8_t *big = calloc(1, FRAME_HEADER_SIZE + LOCKD_FRAME_MAX);
    assert_non_null(big);
    memcpy(big, hdr, 4);
    assert_int_equal(frame_peek(big, FRAME_HEADER_SIZE + LOCKD_FRAME_MAX, &payload, &plen),
                     FRAME_HEADER_SIZE + LOCKD_FRAME_MAX);
    assert_int_equal(plen, LOCKD_FRAME_MAX);
    free(big);
}

static void test_encode_into_too_small_buffer_is_toobig_and_writes_nothing(void **state)
{
    Lockd__Request r = make_request(3, "n", "owner");
    uint8_t buf[256];
    int n = frame_encode(&r.base, buf, sizeof(buf));
    assert_true(n > 0);
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        uint8_t small[256];
        memset(small, 0xcc, sizeof(small));
        assert_int_equal(frame_encode(&r.base, small, cap), -LOCKD_ETOOBIG);
        for (size_t i = 0; i < sizeof(small); i++)
            assert_int_equal(small[i], 0xcc);
    }
    assert_int_equal(frame_encode(&r.base, buf, (size_t)n), n);
}

static void test_encode_of_message_over_frame_max_is_toobig(void **state)
{
    /* A log entry with enough commands to pack over LOCKD_FRAME_MAX. */
    enum { N = 2000 };
    Lockd__Command *cmds = calloc(N, sizeof(*cmds));
    Lockd__Command **ptrs = calloc(N, sizeof(*ptrs));
    assert_non_null(cmds);
    assert_non_null(ptrs);
    char name[LOCKD_NAME_MAX + 1];
    memset(name, 'n', LOCKD_NAME_MAX);
    name[LOCKD_NAME_MAX] = '\0';
    for (int i = 0; i < N; i++) {
        lockd__command__init(&cmds[i]);
        cmds[i].name = name;
        cmds[i].token = (uint64_t)i + 1;
        ptrs[i] = &cmds[i];
    }
    Lockd__LogEntry e = LOCKD__LOG_ENTRY__INIT;
    e.n_commands = N;
    e.commands = ptrs;
    size_t packed = lockd__log_entry__get_packed_size(&e);
    assert_true(packed > LOCKD_FRAME_MAX);
    size_t cap = packed + FRAME_HEADER_SIZE + 16;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(frame_encode(&e.base, buf, cap), -LOCKD_ETOOBIG);
    free(buf);
    free(ptrs);
    free(cmds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_then_peek_round_trips_request),
        cmocka_unit_test(test_empty_message_is_a_header_only_frame),
        cmocka_unit_test(test_peek_returns_zero_until_the_last_byte_arrives),
        cmocka_unit_test(test_two_frames_back_to_back_peek_one_at_a_time),
        cmocka_unit_test(test_peek_of_oversize_length_is_toobig_before_the_payload_arrives),
        cmocka_unit_test(test_encode_into_too_small_buffer_is_toobig_and_writes_nothing),
        cmocka_unit_test(test_encode_of_message_over_frame_max_is_toobig),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
