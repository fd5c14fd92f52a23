"""The original lockd's HTTP API (integtests of the Go lockd) and the lock-name
rules of API.md, checked against a real single node."""

import time

import pytest

from lockd_helpers import assert_json_object, expect, is_int, is_json_ct

VALID_CHARS = "$-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------
# the original integration scenario

def test_original_integration_scenario(node):
    expect(node, "GET", "/lock/foo", 404)
    expect(node, "GET", "/lock/bar", 404)
    expect(node, "POST", "/lock/foo", 200)
    expect(node, "GET", "/lock/foo", 200)
    expect(node, "POST", "/lock/bar", 200)
    expect(node, "GET", "/lock/bar", 200)
    # dup lock fails, the lock stays
    expect(node, "POST", "/lock/foo", 409)
    expect(node, "GET", "/lock/foo", 200)
    expect(node, "DELETE", "/lock/foo", 200)
    # dup unlock fails
    expect(node, "DELETE", "/lock/foo", 404)
    expect(node, "GET", "/lock/foo", 404)
    expect(node, "GET", "/lock/bar", 200)
    expect(node, "DELETE", "/lock/bar", 200)
    expect(node, "GET", "/lock/bar", 404)
    expect(node, "DELETE", "/lock/bar", 404)


def test_every_valid_name_char_in_one_name(node):
    path = "/lock/" + VALID_CHARS
    expect(node, "GET", path, 404)
    r = expect(node, "POST", path, 200)
    assert r.body["name"] == VALID_CHARS
    r = expect(node, "GET", path, 200)
    assert r.body["name"] == VALID_CHARS
    expect(node, "DELETE", path, 200)
    expect(node, "GET", path, 404)


def test_each_valid_char_alone_is_a_name(node):
    # one-character names (including "." and "-" and "$" on their own are
    # not special: "." is an ordinary name, not a path segment)
    bad = []
    for c in VALID_CHARS:
        if c == ".":
            continue  # covered by test_dot_names_are_ordinary_names
        r = node.request("POST", "/lock/" + c)
        if r.status != 200 or r.body.get("name") != c:
            bad.append((c, r))
    assert not bad, bad


def test_dot_names_are_ordinary_names(node):
    # ".", ".." and "..." are valid names (1..128 bytes of [A-Za-z0-9$-._]):
    # the server must not treat them as path dot-segments.
    for name, path in ((".", "/lock/."), ("..", "/lock/.."), ("...", "/lock/..."),
                       ("..", "/lock/%2e%2e")):
        r = expect(node, "POST", path, 200)
        assert r.body["name"] == name, (path, r)
        r = expect(node, "GET", "/lock/" + name, 200)
        assert r.body["name"] == name
        expect(node, "DELETE", path, 200)


def test_128_byte_name_is_valid(node):
    name = "a" * 128
    expect(node, "GET", "/lock/" + name, 404)
    r = expect(node, "POST", "/lock/" + name, 200)
    assert r.body["name"] == name
    expect(node, "GET", "/lock/" + name, 200)
    expect(node, "DELETE", "/lock/" + name, 200)
    # 128 bytes after percent-decoding (384 bytes on the wire) is valid too
    enc = "%41" * 128
    r = expect(node, "POST", "/lock/" + enc, 200)
    assert r.body["name"] == "A" * 128
    expect(node, "GET", "/lock/" + "A" * 128, 200)
    expect(node, "DELETE", "/lock/" + enc, 200)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_129_byte_name_is_too_long(shared_node, method):
    want = {"error": "Name is too long (129 bytes > max of 128)"}
    for path in ("/lock/" + "a" * 129, "/lock/" + "%61" * 129, "/lock/" + "a" * 128 + "%41"):
        r = expect(shared_node, method, path, 400)
        assert r.body == want, (method, path, r)
    # a longer one reports its own length
    r = expect(shared_node, method, "/lock/" + "b" * 200, 400)
    assert r.body == {"error": "Name is too long (200 bytes > max of 128)"}, r


def test_length_is_checked_before_bytes(shared_node):
    # the original checks the length first: a 129-byte name with a bad byte
    # is "too long"
    r = expect(shared_node, "POST", "/lock/" + "a" * 64 + "+" + "a" * 64, 400)
    assert r.body == {"error": "Name is too long (129 bytes > max of 128)"}, r


# (path segment as sent, decoded byte value, zero-based offset)
BAD_NAMES = [
    ("ab%20cd", 32, 2),      # space
    ("%20abc", 32, 0),       # at offset 0
    ("abc%20", 32, 3),       # at the end
    ("ab+cd", 43, 2),        # '+' is not a space in a path
    ("A++", 43, 1),          # the original's own test case
    ("ab%2Fcd", 47, 2),      # encoded '/'
    ("ab%2fcd", 47, 2),      # lower-case hex
    ("ab~cd", 126, 2),
    ("ab!cd", 33, 2),
    ("ab:cd", 58, 2),        # allowed in owners, not in names
    ("ab@cd", 64, 2),        # allowed in owners, not in names
    ("ab*cd", 42, 2),
    ("ab=cd", 61, 2),
    ("ab,cd", 44, 2),
    ("ab'cd", 39, 2),
    ("ab%25cd", 37, 2),      # '%' itself
    ("ab%80cd", 128, 2),
    ("ab%FFcd", 255, 2),
    ("ab%7Fcd", 127, 2),     # DEL
    ("ab%00cd", 0, 2),       # NUL
    ("ab%0Acd", 10, 2),      # newline
    ("ab%09cd", 9, 2),       # tab
    ("%E6%97%A5%E6%9C%AC", 230, 0),       # UTF-8 for two CJK characters
    ("ab%C3%A9", 195, 2),                 # UTF-8 e-acute
    ("%BD%B2%3D%BC%20%E2%8C%98", 189, 0),  # the original's invalid UTF-8 sample
]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_bad_name_bytes_exact_error(shared_node, method):
    mismatches = []
    for seg, byte, off in BAD_NAMES:
        want = {"error": "Name contains non-printable/non-ascii byte %d at offset %d" % (byte, off)}
        r = shared_node.request(method, "/lock/" + seg)
        if r.status != 400 or r.body != want or not is_json_ct(r.headers):
            mismatches.append((seg, want, r))
    assert not mismatches, "\n".join("%s /lock/%s: want 400 %r, got %r" % (method, s, w, r)
                                     for s, w, r in mismatches)


def test_literal_slash_in_name_is_rejected_not_normalized(shared_node):
    # A literal '/' inside the name is a bad byte (47), never a sub-path or a
    # dot-segment to normalise: "/lock/a/../b" must not touch the lock "b".
    for method in ("POST", "GET", "DELETE"):
        r = expect(shared_node, method, "/lock/ab/cd", 400)
        assert r.body == {"error": "Name contains non-printable/non-ascii byte 47 at offset 2"}, r
    r = expect(shared_node, "POST", "/lock/a/../b", 400)
    assert r.body == {"error": "Name contains non-printable/non-ascii byte 47 at offset 1"}, r
    expect(shared_node, "GET", "/lock/b", 404)
    expect(shared_node, "GET", "/lock/a", 404)


def test_bad_name_changes_nothing(node):
    expect(node, "POST", "/lock/ab", 200)
    expect(node, "DELETE", "/lock/ab%20", 400)
    expect(node, "DELETE", "/lock/ab+", 400)
    expect(node, "GET", "/lock/ab", 200)


def test_percent_encoded_valid_chars_name_the_same_lock(node):
    r = expect(node, "POST", "/lock/%41bc", 200)
    assert r.body["name"] == "Abc"
    r = expect(node, "GET", "/lock/Abc", 200)
    assert r.body["name"] == "Abc"
    expect(node, "POST", "/lock/Abc", 409)
    expect(node, "POST", "/lock/%41%62%63", 409)
    r = expect(node, "GET", "/lock/%41%62%63", 200)
    assert r.body["name"] == "Abc"
    # every valid char percent-encoded
    enc = "".join("%%%02X" % ord(c) for c in VALID_CHARS)
    expect(node, "POST", "/lock/" + enc, 200)
    expect(node, "POST", "/lock/" + VALID_CHARS, 409)
    expect(node, "DELETE", "/lock/%41%62%63", 200)
    expect(node, "GET", "/lock/Abc", 404)
    expect(node, "DELETE", "/lock/" + VALID_CHARS, 200)
    expect(node, "GET", "/lock/" + enc, 404)


def test_malformed_percent_escape_is_400(shared_node):
    for seg in ("ab%4", "ab%", "ab%zz", "ab%G1"):
        for method in ("GET", "POST", "DELETE"):
            r = expect(shared_node, method, "/lock/" + seg, 400)
            assert isinstance(r.body.get("error"), str) and r.body["error"], r


def test_empty_name_is_404(shared_node):
    for method in ("GET", "POST", "DELETE"):
        r = expect(shared_node, method, "/lock/", 404)
        assert isinstance(r.body.get("error"), str), r


def test_every_response_is_a_json_object(node):
    seen = set()
    cases = [
        ("GET", "/lock/j1", None, 404),
        ("POST", "/lock/j1", None, 200),
        ("POST", "/lock/j1", None, 409),
        ("GET", "/lock/j1", None, 200),
        ("DELETE", "/lock/j1", None, 200),
        ("DELETE", "/lock/j1", None, 404),
        ("POST", "/lock/j%20", None, 400),
        ("GET", "/lock/" + "x" * 129, None, 400),
        ("PUT", "/lock/j1", None, 405),
        ("POST", "/lock/j1", b'{"not json', 400),
        ("POST", "/lock/j1", b"x" * 5000, 413),
        ("GET", "/lock/", None, 404),
        ("GET", "/no/such/route", None, 404),
    ]
    for method, path, body, status in cases:
        hdrs = {"Content-Type": "application/json"} if body is not None else None
        r = node.request(method, path, body=body, headers=hdrs)
        assert r.status == status, (method, path, r)
        assert_json_object(r, "%s %s" % (method, path))
        if status >= 400:
            assert isinstance(r.body.get("error"), str) and r.body["error"], (method, path, r)
        seen.add(status)
    assert seen == {200, 400, 404, 405, 409, 413}


def test_post_200_body_and_token_header(node):
    r = expect(node, "POST", "/lock/tok1", 200)
    b = r.body
    assert b["name"] == "tok1"
    assert b["locked"] is True
    assert is_int(b["token"]) and b["token"] > 0, b
    assert "x-lockd-token" in r.headers, r.headers
    assert r.headers["x-lockd-token"].strip() == str(b["token"])
    # anonymous lock without TTL: owner/ttl_ms/expires_in_ms are present and null
    for k in ("owner", "ttl_ms", "expires_in_ms"):
        assert k in b and b[k] is None, (k, b)


def test_tokens_strictly_increase_across_names(node):
    tokens = []
    for i in range(20):
        r = expect(node, "POST", "/lock/seq%d" % i, 200)
        tokens.append(r.body["token"])
        if i % 3 == 0:
            expect(node, "DELETE", "/lock/seq%d" % i, 200)
    # re-acquiring a released name also gets a new, larger token
    r = expect(node, "POST", "/lock/seq0", 200)
    tokens.append(r.body["token"])
    assert all(is_int(t) for t in tokens), tokens
    assert all(a < b for a, b in zip(tokens, tokens[1:])), tokens


def test_get_200_body_fields_anonymous(node):
    before = time.time() * 1000
    p = expect(node, "POST", "/lock/getme", 200)
    after = time.time() * 1000
    r = expect(node, "GET", "/lock/getme", 200)
    b = r.body
    for k in ("name", "locked", "owner", "token", "acquired_at_ms", "ttl_ms", "expires_in_ms"):
        assert k in b, (k, b)
    assert b["name"] == "getme"
    assert b["locked"] is True
    assert b["owner"] is None
    assert b["ttl_ms"] is None
    assert b["expires_in_ms"] is None
    assert b["token"] == p.body["token"]
    assert is_int(b["acquired_at_ms"])
    # same machine: the server's wall clock agrees with ours within seconds
    assert before - 5000 <= b["acquired_at_ms"] <= after + 5000, (before, b, after)
    # stable: a second read is the same record
    r2 = expect(node, "GET", "/lock/getme", 200)
    assert r2.body["token"] == b["token"]
    assert r2.body["acquired_at_ms"] == b["acquired_at_ms"]


def test_404_body(node):
    r = expect(node, "GET", "/lock/nothere", 404)
    assert r.body == {"error": "Not Found", "name": "nothere", "locked": False}, r
    expect(node, "POST", "/lock/nothere", 200)
    expect(node, "DELETE", "/lock/nothere", 200)
    r = expect(node, "GET", "/lock/nothere", 404)
    assert r.body == {"error": "Not Found", "name": "nothere", "locked": False}, r


def test_409_body(node):
    expect(node, "POST", "/lock/held", 200)
    r = expect(node, "POST", "/lock/held", 409)
    assert r.body.get("error") == "Lock conflict", r
    assert r.body.get("name") == "held", r
    assert "owner" in r.body and r.body["owner"] is None, r


def test_delete_200_body(node):
    expect(node, "POST", "/lock/rel", 200)
    r = expect(node, "DELETE", "/lock/rel", 200)
    assert r.body.get("name") == "rel", r
    assert r.body.get("locked") is False, r
    r = expect(node, "DELETE", "/lock/rel", 404)
    assert isinstance(r.body.get("error"), str), r
