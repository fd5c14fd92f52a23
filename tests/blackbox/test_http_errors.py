"""HTTP error handling of API.md (405, 413, 400 for malformed input) and
robustness: malformed traffic never crashes a process."""

import json
import os
import threading

import pytest

from lockd_helpers import assert_json_object, expect, parse_raw_response

JSON_CT = {"Content-Type": "application/json"}


def assert_not_locked(node, name):
    r = node.request("GET", "/lock/" + name)
    assert r.status == 404, "lock %r must not have been taken: %r" % (name, r)


def assert_error_json(r, status, what=""):
    assert r.status == status, "%s: want %d, got %r" % (what, status, r)
    assert_json_object(r, what)
    assert isinstance(r.body.get("error"), str) and r.body["error"], "%s: %r" % (what, r)


# ---------------------------------------------------------------------------
# 405

@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_other_methods_are_405_with_json(shared_node, method):
    node = shared_node
    x, y = "m405x" + method, "m405y" + method
    expect(node, "POST", "/lock/" + x, 200)
    for body in (None, {"owner": "a"}):
        r = node.request(method, "/lock/" + x, body=body)
        assert_error_json(r, 405, "%s /lock/%s" % (method, x))
    # and they changed nothing
    expect(node, "GET", "/lock/" + x, 200)
    r = node.request(method, "/lock/" + y)
    assert_error_json(r, 405, "%s /lock/%s" % (method, y))
    assert_not_locked(node, y)


def test_405_lists_allowed_methods(shared_node):
    # RFC 9110 15.5.6: a 405 response MUST carry an Allow header
    r = shared_node.request("PUT", "/lock/x")
    assert r.status == 405, r
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",") if m.strip()}
    assert {"GET", "POST", "DELETE"} <= allow, r.headers


# ---------------------------------------------------------------------------
# 413

def test_body_over_4kib_is_413(node):
    big = json.dumps({"owner": "a" * 4990}).encode()
    assert len(big) > 4096
    r = node.request("POST", "/lock/big", body=big, headers=JSON_CT)
    assert_error_json(r, 413, "POST 5000-byte body")
    assert_not_locked(node, "big")
    r = node.request("POST", "/lock/big", body=b" " * 5000, headers=JSON_CT)
    assert_error_json(r, 413, "POST 5000 spaces")
    assert_not_locked(node, "big")
    expect(node, "POST", "/lock/big", 200)
    r = node.request("DELETE", "/lock/big", body=b"x" * 5000, headers=JSON_CT)
    assert_error_json(r, 413, "DELETE 5000-byte body")
    expect(node, "GET", "/lock/big", 200)
    # nothing broke: the connection-level handling still serves requests
    expect(node, "DELETE", "/lock/big", 200)


def test_body_of_exactly_4kib_is_accepted(node):
    body = b"{}" + b" " * (4096 - 2)
    assert len(body) == 4096
    r = node.request("POST", "/lock/edge", body=body, headers=JSON_CT)
    assert r.status == 200, r
    r = node.request("POST", "/lock/edge2", body=body + b" ", headers=JSON_CT)
    assert_error_json(r, 413, "POST 4097-byte body")
    assert_not_locked(node, "edge2")


# ---------------------------------------------------------------------------
# 400 for malformed input

def test_empty_object_body_is_fine(node):
    r = node.request("POST", "/lock/eo", body=b"{}", headers=JSON_CT)
    assert r.status == 200, r
    r = node.request("DELETE", "/lock/eo", body=b"{}", headers=JSON_CT)
    assert r.status == 200, r


INVALID_JSON = [
    b"{", b'{"owner":', b'{"owner":"a",}', b"{owner: 1}", b"nul", b"\xff\xfe{}",
    b'{"owner":"a"} trailing', b'{"owner":"a"}{"owner":"b"}',
]


@pytest.mark.parametrize("k", range(len(INVALID_JSON)))
def test_invalid_json_body_is_400(shared_node, k):
    body, name = INVALID_JSON[k], "ij%d" % k
    r = shared_node.request("POST", "/lock/" + name, body=body, headers=JSON_CT)
    assert_error_json(r, 400, "POST body %r" % body)
    assert_not_locked(shared_node, name)


NOT_OBJECTS = [b"[]", b'[{"owner":"a"}]', b'"owner"', b"1", b"null", b"true"]


@pytest.mark.parametrize("k", range(len(NOT_OBJECTS)))
def test_json_body_that_is_not_an_object_is_400(shared_node, k):
    body, name = NOT_OBJECTS[k], "arr%d" % k
    r = shared_node.request("POST", "/lock/" + name, body=body, headers=JSON_CT)
    assert_error_json(r, 400, "POST body %r" % body)
    assert_not_locked(shared_node, name)


def test_unknown_field_is_400(node):
    r = node.request("POST", "/lock/uf?foo=1")
    assert_error_json(r, 400, "POST ?foo=1")
    assert_not_locked(node, "uf")
    r = node.request("POST", "/lock/uf", body={"foo": 1})
    assert_error_json(r, 400, 'POST {"foo":1}')
    assert_not_locked(node, "uf")
    # DELETE too, and the lock stays held
    expect(node, "POST", "/lock/uf", 200)
    r = node.request("DELETE", "/lock/uf?foo=1")
    assert_error_json(r, 400, "DELETE ?foo=1")
    r = node.request("DELETE", "/lock/uf", body={"foo": 1})
    assert_error_json(r, 400, 'DELETE {"foo":1}')
    expect(node, "GET", "/lock/uf", 200)


def test_field_in_both_query_and_body_is_400(node):
    r = node.request("POST", "/lock/both?owner=alice", body={"owner": "alice"})
    assert_error_json(r, 400, "POST owner in query and body")
    assert_not_locked(node, "both")
    expect(node, "POST", "/lock/both", 200)
    r = node.request("DELETE", "/lock/both?owner=alice", body={"owner": "alice"})
    assert_error_json(r, 400, "DELETE owner in query and body")
    expect(node, "GET", "/lock/both", 200)


# ---------------------------------------------------------------------------
# malformed traffic never crashes anything

def _snapshot(node):
    kids = node.child_pids()
    assert len(kids) == node.workers + 1, "unexpected children %r" % kids
    return kids


def _assert_unharmed(node, before):
    assert node.alive(), "master died\n" + node.log_tail()
    after = node.child_pids()
    assert after == before, "children changed: before %r after %r\n%s" % (
        before, after, node.log_tail())
    # several fresh connections, so that every worker is likely exercised
    for i in range(8):
        name = "after%d" % i
        expect(node, "POST", "/lock/" + name, 200)
        expect(node, "GET", "/lock/" + name, 200)
        expect(node, "DELETE", "/lock/" + name, 200)
    assert node.child_pids() == before


def _parallel_raw(node, cases, timeout=2.5):
    """Runs raw exchanges concurrently; returns {label: (data, closed)}."""
    out = {}
    errs = []

    def run(label, kw):
        try:
            args = dict(timeout=timeout)
            args.update(kw)
            out[label] = node.raw(**args)
        except OSError as e:  # e.g. refused/reset at connect: recorded, judged below
            errs.append((label, e))

    ts = [threading.Thread(target=run, args=(lbl, kw), daemon=True) for lbl, kw in cases]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 5)
    assert not errs, "could not even connect/send: %r" % errs
    return out


def test_garbage_and_invalid_methods_never_crash(node):
    before = _snapshot(node)
    rnd = os.urandom(4096)
    cases = [
        ("random", dict(data=rnd)),
        ("random-nl", dict(data=rnd + b"\r\n\r\n")),
        ("zeros", dict(data=b"\0" * 2048)),
        ("tls-hello", dict(data=bytes.fromhex("160301020001000001fc0303") + os.urandom(500))),
        ("h2-preface-junk", dict(data=b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(300))),
        ("bare-get", dict(data=b"GET\r\n\r\n")),
        ("bad-version", dict(data=b"GET /lock/m HTTP/9.9\r\nHost: x\r\n\r\n")),
        ("nul-method", dict(data=b"G\0T /lock/m HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("ctl-method", dict(data=b"\x01\x02\x03 /lock/m HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("paren-method", dict(data=b"G(T) /lock/m HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("neg-cl", dict(data=b"POST /lock/m HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")),
        ("huge-cl", dict(data=b"POST /lock/m HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 99999999999999999999999\r\n\r\n")),
        ("bad-chunk", dict(data=b"POST /lock/m HTTP/1.1\r\nHost: x\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\n\r\n")),
        ("big-chunked", dict(data=b"POST /lock/m HTTP/1.1\r\nHost: x\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n"
                                  + (b"400\r\n" + b" " * 1024 + b"\r\n") * 8 + b"0\r\n\r\n")),
        ("many-headers", dict(data=b"GET /lock/m HTTP/1.1\r\nHost: x\r\n"
                                   + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n")),
        ("bad-path", dict(data=b"GET lock/m HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("abs-uri", dict(data=b"GET http://x/lock/m HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("star", dict(data=b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("lf-only", dict(data=b"GET /lock/m HTTP/1.1\nHost: x\n\n")),
    ]
    _parallel_raw(node, cases)
    _assert_unharmed(node, before)


def test_unknown_method_token_is_405(node):
    before = _snapshot(node)
    data, _ = node.raw(b"FOO /lock/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    p = parse_raw_response(data)
    assert p is not None, "no HTTP response to method FOO: %r" % data[:200]
    status, hd, body = p
    assert status == 405, data[:300]
    assert hd.get("content-type", "").startswith("application/json"), data[:300]
    _assert_unharmed(node, before)


def test_huge_header_line_never_crashes(node):
    before = _snapshot(node)
    line = b"X-Big: " + b"a" * (100 * 1024) + b"\r\n"
    cases = [
        ("big-header", dict(data=b"GET /lock/m HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n")),
        ("big-url", dict(data=b"GET /lock/" + b"a" * (100 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("big-header-post", dict(data=b"POST /lock/m HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                      + line + b"\r\n{}")),
        ("endless-line", dict(data=b"GET /lock/m HTTP/1.1\r\nX-A: " + b"b" * (300 * 1024))),
    ]
    out = _parallel_raw(node, cases)
    for label, (data, _closed) in out.items():
        # the contract sets no header size limit: any answer is fine, as long
        # as it is HTTP (a big but well-formed request may even succeed)
        assert not data or parse_raw_response(data) is not None, (label, data[:300])
    _assert_unharmed(node, before)


def test_short_body_half_close_and_instant_close_never_crash(node):
    before = _snapshot(node)
    cases = [
        ("short-body-halfclose", dict(data=b"POST /lock/hc HTTP/1.1\r\nHost: x\r\n"
                                           b"Content-Type: application/json\r\n"
                                           b"Content-Length: 10\r\n\r\n{\"o",
                                      shutdown_write=True)),
        ("short-body-open", dict(data=b"POST /lock/hc2 HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 10\r\n\r\nabc", timeout=1.5)),
        ("half-headers-halfclose", dict(data=b"GET /lock/hc HTTP/1.1\r\nHo",
                                        shutdown_write=True)),
        ("full-request-halfclose", dict(data=b"GET /lock/hc3 HTTP/1.1\r\nHost: x\r\n\r\n",
                                        shutdown_write=True)),
        ("nothing-halfclose", dict(data=b"", shutdown_write=True)),
    ]
    _parallel_raw(node, cases)
    # connections opened and closed at once, many times, some with RST
    import socket
    import struct
    for i in range(50):
        s = socket.create_connection((node.host, node.port), timeout=2)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if i % 3 == 0:
            try:
                s.sendall(b"POST /lock/rst HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                pass
        s.close()
    _assert_unharmed(node, before)
    # the truncated POST bodies never became a lock
    assert_not_locked(node, "hc")
    assert_not_locked(node, "hc2")


def test_http10_without_host_is_served(node):
    before = _snapshot(node)
    data, _ = node.raw(b"GET /lock/h10 HTTP/1.0\r\n\r\n")
    p = parse_raw_response(data)
    assert p is not None, "no HTTP response: %r" % data[:200]
    status, hd, body = p
    assert status == 404, data[:300]
    assert hd.get("content-type", "").startswith("application/json"), data[:300]
    assert json.loads(body.decode()) == {"error": "Not Found", "name": "h10", "locked": False}
    data, _ = node.raw(b"POST /lock/h10 HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    p = parse_raw_response(data)
    assert p is not None and p[0] == 200, data[:300]
    expect(node, "GET", "/lock/h10", 200)
    _assert_unharmed(node, before)


def test_conflicting_content_lengths_are_rejected(node):
    # RFC 9112 6.3: differing Content-Length values are an unrecoverable
    # framing error (request smuggling behind a load balancer): 400, and the
    # request must not be acted on.
    data, _ = node.raw(b"POST /lock/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                       b"Content-Length: 5\r\nConnection: close\r\n\r\n{}")
    p = parse_raw_response(data)
    assert p is None or p[0] == 400, data[:300]
    assert_not_locked(node, "cl")


def test_pipelined_requests_are_answered_in_order(node):
    before = _snapshot(node)
    req = (b"POST /lock/pipe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
           b"GET /lock/pipe HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /lock/pipe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
           b"DELETE /lock/pipe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, closed = node.raw(req)
    statuses = []
    rest = data
    while rest:
        p = parse_raw_response(rest)
        assert p is not None, data[:500]
        status, hd, body = p
        statuses.append(status)
        n = int(hd.get("content-length", "0"))
        rest = body[n:]
    assert statuses == [200, 200, 409, 200], (statuses, data[:800])
    _assert_unharmed(node, before)
