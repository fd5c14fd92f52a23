"""Scenario rows F01..F14 of clients/README.md, against the scripted fake
server (clients/testing/fake_lockd.py)."""

import threading
import time

import pytest

import lockd

OK = {"echo_token": True}


def lock_body(name="job", token=5, owner="me", ttl_ms=None):
    return {"name": name, "locked": True, "owner": owner, "token": token,
            "ttl_ms": ttl_ms, "expires_in_ms": ttl_ms}


def client(fake, **kw):
    kw.setdefault("request_timeout", 2.0)
    kw.setdefault("owner", "me")
    return lockd.Client(fake.url, **kw)


def posts(fake):
    return [r for r in fake.requests() if r["method"] == "POST"]


def test_F01_504_then_success(fake):
    fake.script([{"status": 504, "body": {"error": "Consensus timeout", "outcome": "unknown"}}, OK])
    c = client(fake, owner=None)
    lk = c.acquire("job", ttl=30)
    assert lk.token == 7
    p = posts(fake)
    assert len(p) == 2
    assert p[0]["query"] == p[1]["query"]
    assert p[0]["query"]["owner"] == c.owner and p[0]["query"]["ttl"] == "30000ms"


def test_F02_reset_after_request_sent(fake):
    fake.script([{"action": "reset"}, OK])
    lk = client(fake).acquire("job", ttl=10)
    assert lk.token == 7
    p = posts(fake)
    assert len(p) == 2 and p[0]["query"] == p[1]["query"]


def test_F03_retry_after_honoured(fake):
    fake.script([{"status": 503, "body": {"error": "No leader"}, "headers": {"Retry-After": "1"}}, OK])
    client(fake, request_timeout=5).acquire("job")
    p = posts(fake)
    assert len(p) == 2
    assert p[1]["t"] - p[0]["t"] >= 0.95


def test_F04_retry_after_beyond_deadline(fake):
    fake.script([{"status": 503, "body": {"error": "No leader"}, "headers": {"Retry-After": "30"}}])
    t0 = time.monotonic()
    with pytest.raises(lockd.Unavailable) as ei:
        client(fake).acquire("job", timeout=1.0)
    assert not isinstance(ei.value, lockd.OutcomeUnknown)
    assert time.monotonic() - t0 < 3.0
    assert len(posts(fake)) == 1


def test_F05_renewal_answers_another_token(fake):
    fake.script([{"status": 200, "body": lock_body(token=5, ttl_ms=30000)},
                 {"status": 200, "body": lock_body(token=9, ttl_ms=30000)},
                 {"status": 200, "body": {"name": "job", "locked": False}}])
    lk = client(fake).acquire("job", ttl=30)
    with pytest.raises(lockd.LockLost):
        lk.renew()
    assert lk.lost
    with pytest.raises(lockd.LockLost):
        lk.check()
    d = [r for r in fake.requests() if r["method"] == "DELETE"]
    assert len(d) == 1 and d[0]["query"]["token"] == "9"      # the lock it took anew is given back
    lk.release()                                               # a lost handle releases quietly


def test_F06_keepalive_loss_fires_callback_once(fake):
    fake.script([{"status": 200, "body": lock_body(token=5, ttl_ms=600)},
                 {"status": 409, "body": {"error": "Lock conflict", "name": "job", "owner": "other"}}])
    lk = client(fake).acquire("job", ttl=0.6)
    calls = []
    ev = threading.Event()
    lk.keepalive(on_lost=lambda l: (calls.append(l), ev.set()))
    assert ev.wait(5)
    lk.release()        # joins the keepalive thread: no second callback can follow
    assert calls == [lk]
    assert lk.lost and "other" in lk.lost_reason
    with pytest.raises(lockd.LockLost):
        lk.check()


def test_F07_slow_endpoint_deadline(fake):
    fake.script([{"delay": 5, "status": 200, "body": lock_body()}])
    c = client(fake)
    t0 = time.monotonic()
    with pytest.raises(lockd.OutcomeUnknown):
        c.acquire("job", timeout=1.0)
    assert time.monotonic() - t0 < 2.5
    t0 = time.monotonic()
    with pytest.raises(lockd.Unavailable) as ei:
        c.get("job", timeout=1.0)
    assert not isinstance(ei.value, lockd.OutcomeUnknown)
    assert time.monotonic() - t0 < 2.5


def test_F08_400_never_retried(fake):
    fake.script([{"status": 400, "body": {"error": "ttl must be between 100ms and 24h"}}])
    with pytest.raises(lockd.BadRequest) as ei:
        client(fake).acquire("job", ttl=0.01)
    assert ei.value.message == "ttl must be between 100ms and 24h"
    assert len(fake.requests()) == 1
    fake.script([{"status": 409, "body": {"error": "Lock conflict", "name": "job", "owner": "them"}}])
    with pytest.raises(lockd.LockHeld) as ei:
        client(fake).acquire("job")
    assert ei.value.holder == "them"
    assert client(fake).try_acquire("job") is None
    assert len(fake.requests()) == 2


def test_F09_release_outcomes(fake):
    c = client(fake)
    fake.script([{"status": 200, "body": lock_body(token=5)},
                 {"status": 504, "body": {"error": "Consensus timeout", "outcome": "unknown"}},
                 {"status": 404, "body": {"error": "Not Found", "name": "job", "locked": False}}])
    c.acquire("job").release()                 # 404 after a retried DELETE: released
    d = [r for r in fake.requests() if r["method"] == "DELETE"]
    assert len(d) == 2 and all(r["query"] == {"owner": "me", "token": "5"} for r in d)
    fake.script([{"status": 200, "body": lock_body(token=5)},
                 {"status": 404, "body": {"error": "Not Found", "name": "job", "locked": False}}])
    with pytest.raises(lockd.NotHeld):
        c.acquire("job").release()
    fake.script([{"status": 200, "body": lock_body(token=5)},
                 {"status": 409, "body": {"error": "Token mismatch", "name": "job", "owner": "me"}}])
    with pytest.raises(lockd.TokenMismatch):
        c.acquire("job").release()


def test_F10_outcome_unknown_only_at_deadline(fake):
    fake.script([{"status": 504, "body": {"error": "Consensus timeout", "outcome": "unknown"}}])
    t0 = time.monotonic()
    with pytest.raises(lockd.OutcomeUnknown):
        client(fake).acquire("job", timeout=1.0)
    assert 0.9 <= time.monotonic() - t0 < 2.5
    assert len(posts(fake)) >= 2
    fake.script([{"status": 503, "body": {"error": "No leader"}}])
    with pytest.raises(lockd.Unavailable) as ei:
        client(fake).acquire("job", timeout=0.5)
    assert not isinstance(ei.value, lockd.OutcomeUnknown)


def test_F11_min_index_sent_on_reads(fake):
    fake.script([{"status": 200, "body": lock_body(token=5), "headers": {"X-Lockd-Applied-Index": "42"}},
                 {"status": 200, "body": lock_body(token=5), "headers": {"X-Lockd-Applied-Index": "40"}},
                 {"status": 200, "body": lock_body(token=5)}])
    c = client(fake)
    c.acquire("job")
    c.get("job")
    c.get("job")
    r = fake.requests()
    assert "x-lockd-min-index" not in r[0]["headers"]
    assert r[1]["headers"].get("x-lockd-min-index") == "42"
    assert r[2]["headers"].get("x-lockd-min-index") == "42"
    assert c.applied_index == 42


def test_F12_bearer_token_and_auth_errors(fake):
    fake.script([{"status": 401, "body": {"error": "Unauthorized"}}])
    c = client(fake, token="s3cret")
    with pytest.raises(lockd.Unauthorized):
        c.acquire("job")
    fake.script([{"status": 403, "body": {"error": "Forbidden"}}])
    with pytest.raises(lockd.Forbidden):
        c.get("job")
    r = fake.requests()
    assert len(r) == 1 and r[0]["headers"]["authorization"] == "Bearer s3cret"


def test_F13_https_with_ca_file(harness):
    f = harness.fake(tls=True)
    try:
        f.script([OK])
        ca = harness.tls_files()[0]
        lk = lockd.Client(f.url, ca_file=ca, owner="me").acquire("job")
        assert lk.token == 7
        t0 = time.monotonic()
        with pytest.raises(lockd.LockdError) as ei:
            lockd.Client(f.url, request_timeout=5).acquire("job")
        assert "certificate" in str(ei.value)
        assert time.monotonic() - t0 < 2.0          # not retried
    finally:
        f.close()


def test_F14_scoped_form_raises_after_loss(fake):
    fake.script([{"status": 200, "body": lock_body(token=5, ttl_ms=600)},
                 {"status": 409, "body": {"error": "Lock conflict", "name": "job", "owner": "other"}}])
    c = client(fake)
    ran = []
    with pytest.raises(lockd.LockLost):
        with c.lock("job", ttl=0.6) as lk:
            ran.append(lk.token)
            deadline = time.monotonic() + 5
            while not lk.lost and time.monotonic() < deadline:
                time.sleep(0.02)
    assert ran == [5]
