"""Waiting for a held lock (`wait` on POST, API.md "POST /lock/:name"):
FIFO order per lock, hand-over to the first waiter in the releasing step
(nobody slips in), hand-over on TTL expiry, 409 when the wait runs out, and
a waiter whose client went away leaves the queue.

Waiters are raw sockets (lockd_helpers.RawRequest): the request has left the
client when the constructor returns and the answer is read later. Before the
next waiter is started, the test waits until the server shows that it queued
the previous one: the counter `lockd_waits_queued_total` in /metrics reaching
the number of waiters this test started (the metrics are published by the
Raft process every ~100 ms, so only absolute targets are used, never "it
changed"). Without that metric, the fallback is the commit index in /status
moving on (the enqueue is a replicated command), which is best effort. Then a
`?consistent=true` read, which is ordered after everything the leader
accepted before it, is made on the lock.
"""

import time

import pytest

from lockd_helpers import (RawRequest, assert_json_object, commit_index, expect,
                           metric_value, wait_until)

QUEUE_SIGNAL_TIMEOUT = 3.0
QUEUED_METRIC = "lockd_waits_queued_total"


def start_waiter(node, name, owner, wait="10s", extra=""):
    """Sends POST /lock/name?owner=..&wait=.. and waits until the server has
    queued it (see the module docstring). The lock must be held by someone
    else; the waiter must not have been answered yet."""
    # waits this test queued on this (fresh) node, this one included
    node.waits_started = getattr(node, "waits_started", 0) + 1
    target = node.waits_started
    have_metric = metric_value(node, QUEUED_METRIC) is not None
    base_commit = None if have_metric else commit_index(node)
    path = "/lock/%s?wait=%s%s" % (name, wait, extra)
    if owner is not None:
        path += "&owner=" + owner
    w = RawRequest(node, "POST", path)

    def queued():
        if have_metric:
            v = metric_value(node, QUEUED_METRIC)
            return v is not None and v >= target
        c = commit_index(node)
        return c is not None and base_commit is not None and c > base_commit

    w.queued_signal = bool(wait_until(queued, QUEUE_SIGNAL_TIMEOUT, interval=0.01))
    if have_metric:
        assert w.queued_signal, "waiter %s not counted in %s within %.0f s (want >= %d): %r" % (
            owner, QUEUED_METRIC, QUEUE_SIGNAL_TIMEOUT, target, metric_value(node, QUEUED_METRIC))
    r = node.request("GET", "/lock/%s?consistent=true" % name)
    assert r.status == 200, "lock %s must still be held while %s waits: %r" % (name, owner, r)
    early = w.result(0.01)
    assert early is None, "waiter %s (wait=%s) answered at once: %r" % (owner, wait, early)
    return w


def expect_granted(w, name, owner, after_token, timeout=5.0):
    r = w.result(timeout)
    assert r is not None, "waiter %s got no answer within %.0f s of the release" % (owner, timeout)
    assert r.status == 200, "waiter %s: want 200, got %r" % (owner, r)
    assert_json_object(r, "waiter %s" % owner)
    assert r.body.get("name") == name and r.body.get("locked") is True, r
    assert r.body.get("owner") == owner, "lock went to the wrong waiter: %r (want %s)" % (r, owner)
    tok = r.body.get("token")
    assert isinstance(tok, int) and tok > after_token, \
        "hand-over token %r must be > previous holder's %r" % (tok, after_token)
    assert r.headers.get("x-lockd-token") == str(tok), r.headers
    return tok


def holder_of(node, name, consistent=False):
    r = node.request("GET", "/lock/%s%s" % (name, "?consistent=true" if consistent else ""))
    if r.status == 404:
        return None
    assert r.status == 200, r
    return r.body.get("owner"), r.body.get("token")


# ---------------------------------------------------------------------------

def test_three_waiters_get_the_lock_in_fifo_order(node):
    name = "fifo"
    t = expect(node, "POST", "/lock/fifo?owner=h", 200).body["token"]
    ws = [(o, start_waiter(node, name, o)) for o in ("w1", "w2", "w3")]
    prev_owner = "h"
    for i, (o, w) in enumerate(ws):
        expect(node, "DELETE", "/lock/fifo?owner=" + prev_owner, 200)
        t = expect_granted(w, name, o, t)
        assert holder_of(node, name) == (o, t)
        assert holder_of(node, name, consistent=True) == (o, t)
        for o2, w2 in ws[i + 1:]:
            assert w2.result(0.01) is None, \
                "waiter %s was answered while %s holds the lock: %r" % (o2, o, w2.resp)
        prev_owner = o
    expect(node, "DELETE", "/lock/fifo?owner=w3", 200)
    expect(node, "GET", "/lock/fifo", 404)
    for _, w in ws:
        w.close()


def test_release_hands_the_lock_to_the_first_waiter_in_the_same_step(node):
    t0 = expect(node, "POST", "/lock/handover?owner=h", 200).body["token"]
    w = start_waiter(node, "handover", "w1")
    expect(node, "DELETE", "/lock/handover?owner=h", 200)
    # right after the release's 200 nobody else can take it: it already
    # belongs to the waiter
    r = node.request("POST", "/lock/handover?owner=intruder")
    assert r.status == 409, "an intruder slipped in between release and hand-over: %r" % r
    assert r.body.get("owner") == "w1", r
    r = node.request("POST", "/lock/handover")
    assert r.status == 409, "an anonymous intruder slipped in: %r" % r
    c = holder_of(node, "handover", consistent=True)
    assert c is not None and c[0] == "w1", c
    tok = expect_granted(w, "handover", "w1", t0)
    assert c[1] == tok
    w.close()


def test_waiter_gets_the_lock_when_the_holders_ttl_expires(node):
    sent = time.monotonic()
    t0 = expect(node, "POST", "/lock/ttlhand?owner=h&ttl=600ms", 200).body["token"]
    w = start_waiter(node, "ttlhand", "w1", wait="8s", extra="&ttl=5s")
    tok = expect_granted(w, "ttlhand", "w1", t0, timeout=8)
    assert w.received_at - sent >= 0.6, \
        "holder's 600 ms lease handed over after only %.3f s" % (w.received_at - sent)
    r = expect(node, "GET", "/lock/ttlhand", 200)
    assert r.body["owner"] == "w1" and r.body["token"] == tok
    # the waiter's own ttl applies from the hand-over
    assert r.body["ttl_ms"] == 5000, r
    assert 0 < r.body["expires_in_ms"] <= 5000, r
    w.close()


def test_waiter_whose_wait_runs_out_gets_409_and_leaves_the_queue(node):
    t0 = expect(node, "POST", "/lock/wto?owner=h", 200).body["token"]
    short = start_waiter(node, "wto", "short", wait="700ms")
    long_ = start_waiter(node, "wto", "long", wait="10s")
    r = short.result(8)
    assert r is not None, "waiter with wait=700ms never answered"
    assert r.status == 409, "want 409 when the wait runs out, got %r" % r
    assert_json_object(r, "timed-out waiter")
    assert r.body.get("error") == "Lock conflict", r
    assert r.body.get("name") == "wto" and r.body.get("owner") == "h", r
    assert short.received_at - short.sent_at >= 0.7, \
        "wait=700ms gave up after %.3f s" % (short.received_at - short.sent_at)
    # the holder is untouched, the other waiter still waits
    assert holder_of(node, "wto") == ("h", t0)
    assert long_.result(0.01) is None, long_.resp
    # on release the lock goes to the remaining waiter, not the timed-out one
    expect(node, "DELETE", "/lock/wto?owner=h", 200)
    expect_granted(long_, "wto", "long", t0)
    expect(node, "DELETE", "/lock/wto?owner=long", 200)
    expect(node, "GET", "/lock/wto", 404)
    short.close()
    long_.close()


def test_waiter_timeout_alone_then_release_leaves_the_lock_free(node):
    expect(node, "POST", "/lock/wto2?owner=h", 200)
    w = start_waiter(node, "wto2", "w", wait="300ms")
    r = w.result(8)
    assert r is not None and r.status == 409, r
    expect(node, "DELETE", "/lock/wto2?owner=h", 200)
    expect(node, "GET", "/lock/wto2", 404)
    expect(node, "GET", "/lock/wto2?consistent=true", 404)
    w.close()


def test_disconnected_waiter_leaves_the_queue_and_the_next_waiter_gets_the_lock(node):
    t0 = expect(node, "POST", "/lock/gone?owner=h", 200).body["token"]
    gone = start_waiter(node, "gone", "gone", wait="10s")
    base = commit_index(node)
    gone.close()
    # give the server a chance to notice (a cancel is a replicated command);
    # not required: the hand-over must skip a gone client in any case
    wait_until(lambda: commit_index(node) > base, 2.0)
    nxt = start_waiter(node, "gone", "next", wait="6s")
    expect(node, "DELETE", "/lock/gone?owner=h", 200)
    r = nxt.result(7)
    assert r is not None and r.status == 200 and r.body.get("owner") == "next", (
        "the waiter after a disconnected one must get the lock on release; got %r, "
        "lock now %r" % (r, node.request("GET", "/lock/gone").body))
    assert r.body["token"] > t0
    assert holder_of(node, "gone") == ("next", r.body["token"])
    nxt.close()


def test_disconnected_waiter_is_not_left_holding_the_lock(node):
    """The client goes away and the lock is released right after: whether the
    server notices the disconnect before or after the hand-over, the lock
    must not stay held by a client that is gone."""
    expect(node, "POST", "/lock/gone2?owner=h", 200)
    gone = start_waiter(node, "gone2", "gone", wait="10s")
    gone.close()
    expect(node, "DELETE", "/lock/gone2?owner=h", 200)

    def free_or_not_gone():
        r = node.request("GET", "/lock/gone2")
        return r.status == 404 or (r.status == 200 and r.body.get("owner") != "gone")

    assert wait_until(free_or_not_gone, 5.0), (
        "lock still held by the disconnected waiter 5 s after the release: %r"
        % (node.request("GET", "/lock/gone2"),))
    r = node.request("POST", "/lock/gone2?owner=later")
    assert r.status == 200, "lock must be free for others: %r" % r


def test_waiter_with_the_holders_own_owner_is_a_renewal(node):
    t0 = expect(node, "POST", "/lock/selfwait?owner=h&ttl=10s", 200).body["token"]
    start = time.monotonic()
    r = node.request("POST", "/lock/selfwait?owner=h&ttl=10s&wait=5s", timeout=10)
    assert r.status == 200 and r.body["token"] == t0, r
    assert time.monotonic() - start < 4, "a holder re-POSTing with wait must not wait for itself"


def test_disconnected_waiter_is_dropped_from_the_wait_queue(node):
    """lockd_waiters (API.md /metrics: "waiters") falls back to 0 once the
    only waiter's client has gone, without any release or wait timeout."""
    if metric_value(node, "lockd_waiters") is None:
        pytest.skip("no lockd_waiters in /metrics")
    t0 = expect(node, "POST", "/lock/gone3?owner=h", 200).body["token"]
    gone = start_waiter(node, "gone3", "gone", wait="20s")
    assert wait_until(lambda: metric_value(node, "lockd_waiters") == 1, 3), \
        "lockd_waiters never showed the queued waiter: %r" % metric_value(node, "lockd_waiters")
    gone.close()
    assert wait_until(lambda: metric_value(node, "lockd_waiters") == 0, 4), (
        "the disconnected waiter is still queued 4 s after its client left "
        "(lockd_waiters=%r)" % metric_value(node, "lockd_waiters"))
    assert holder_of(node, "gone3") == ("h", t0)
