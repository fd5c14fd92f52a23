"""Scenario rows R01..R11 of clients/README.md, against one real lockd node."""

import os
import re
import subprocess
import sys
import threading
import time
import uuid

import pytest

import lockd

HERE = os.path.dirname(os.path.abspath(__file__))


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def test_R01_acquire_get_release(node_url):
    c = lockd.Client(node_url)
    name = uniq("r01")
    lk = c.acquire(name, ttl=30)
    assert lk.name == name and lk.owner == c.owner and lk.token > 0
    info = c.get(name)
    assert info.owner == c.owner and info.token == lk.token and info.ttl_ms == 30000
    assert c.get(name, consistent=True).token == lk.token
    lk.release()
    assert lk.released
    assert c.get(name) is None


def test_R02_held_by_another(node_url):
    a, b = lockd.Client(node_url), lockd.Client(node_url)
    name = uniq("r02")
    lk = a.acquire(name, ttl=30)
    assert b.try_acquire(name) is None
    with pytest.raises(lockd.LockHeld) as ei:
        b.acquire(name, wait=0)
    assert ei.value.holder == a.owner
    ran = []
    with pytest.raises(lockd.LockHeld):
        with b.lock(name, ttl=5):
            ran.append(1)
    assert ran == []
    lk.release()


def test_R03_wait_handoff(node_url):
    a, b = lockd.Client(node_url), lockd.Client(node_url)
    name = uniq("r03")
    lk = a.acquire(name, ttl=30)
    got = {}

    def waiter():
        try:
            got["lock"] = b.acquire(name, ttl=2, wait=20)
        except Exception as e:  # reported below
            got["error"] = e
    t = threading.Thread(target=waiter)
    t.start()
    # released only once b's POST has arrived (a waiter in the queue) and has
    # waited longer than its own lease: the scenario, not a synchronisation
    assert wait_for(lambda: metric(node_url, "lockd_waiters") >= 1, 10)
    time.sleep(2.5)
    lk.release()
    t.join(25)
    assert "lock" in got, got
    g = got["lock"]
    assert g.token > lk.token and g.owner == b.owner
    assert not g.lost, g.lost_reason             # its lease counts from after the hand-off
    assert a.get(name).token == g.token
    g.release()


def test_R04_renew_keeps_token(node_url):
    c = lockd.Client(node_url)
    lk = c.acquire(uniq("r04"), ttl=5)
    v0 = lk.valid_until
    t0 = time.monotonic()
    lk.renew()
    assert lk.valid_until > v0
    assert lk.valid_until <= time.monotonic() + 5
    assert lk.valid_until >= t0 + 5 - lockd.clock_margin(5)
    assert c.get(lk.name).token == lk.token
    lk.release()


def test_R05_keepalive_beyond_ttl(node_url):
    c = lockd.Client(node_url)
    lk = c.acquire(uniq("r05"), ttl=0.5).keepalive()
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        assert not lk.lost, lk.lost_reason
        assert c.get(lk.name).token == lk.token
        time.sleep(0.1)
    lk.release()
    assert c.get(lk.name) is None


def test_R06_expiry_detected(node_url):
    c, other = lockd.Client(node_url), lockd.Client(node_url)
    lk = c.acquire(uniq("r06"), ttl=0.3)
    assert lk.valid_until <= time.monotonic() + 0.3
    assert wait_for(lambda: other.try_acquire(lk.name, ttl=30), 10)
    assert lk.lost
    with pytest.raises(lockd.LockLost):
        lk.check()
    with pytest.raises(lockd.LockLost):
        lk.renew()
    lk.release()                         # quiet on a lost handle
    assert other.get(lk.name).owner == other.owner


def test_R07_list_all_pages(node_url):
    c = lockd.Client(node_url)
    prefix = uniq("r07") + "-"
    names = ["%s%02d" % (prefix, i) for i in range(23)]
    locks = [c.acquire(n, ttl=60) for n in names]
    seen = [i.name for i in c.list(prefix=prefix, page_size=5)]
    assert seen == names
    for lk in locks:
        lk.release()
    assert list(c.list(prefix=prefix)) == []


def test_R08_status_and_owners(node_url):
    a, b = lockd.Client(node_url), lockd.Client(node_url)
    st = a.status()
    assert st["role"] == "leader" and st["members"]
    assert a.owner != b.owner
    assert re.fullmatch(r"[A-Za-z0-9$._-]+:%d:[0-9a-f]+" % os.getpid(), a.owner)


def test_R09_release_idempotent_and_one_handle_per_name(node_url):
    c = lockd.Client(node_url)
    name = uniq("r09")
    lk = c.acquire(name, ttl=30)
    assert c.try_acquire(name) is None            # the same owner would renew: refused locally
    second = {}
    t = threading.Thread(target=lambda: second.setdefault("lock", c.acquire(name, ttl=30, wait=10)))
    t.start()
    lk.release()
    lk.release()
    t.join(15)
    assert second["lock"].token > lk.token
    second["lock"].release()


def test_R10_readme_example_runs(node_url):
    code = readme_example(os.path.join(HERE, "..", "README.md"))
    env = dict(os.environ, LOCKD_URL=node_url, PYTHONPATH=os.path.join(HERE, ".."))
    p = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert "ran the job with token" in out and "refused a stale token" in out, out


def test_R11_bad_name(node_url):
    with pytest.raises(lockd.BadRequest) as ei:
        lockd.Client(node_url).acquire("x" * 129)
    assert ei.value.message == "Name is too long (129 bytes > max of 128)"


# ---------------------------------------------------------------------------

def readme_example(path):
    text = open(path).read()
    m = re.search(r"```python\n(.*?)```", text, re.S)
    assert m, "no python example in " + path
    return m.group(1)


def wait_for(pred, timeout, interval=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def metric(url, name):
    import urllib.request
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(ln.split()[-1]) for ln in text.splitlines()
               if ln.startswith(name + " ") or ln.startswith(name + "{"))
