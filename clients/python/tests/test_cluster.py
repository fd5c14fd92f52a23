"""Scenario rows C01..C05 of clients/README.md, against a real 3-node
cluster (started once per session) and nginx in front of it. Each test
that kills a node starts it again before it ends."""

import threading
import time
import uuid

import pytest

import lockd


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


@pytest.fixture
def restore(harness, cluster):
    killed = []
    yield killed
    for nid in killed:
        harness.restart(nid)


def urls(cluster):
    return list(cluster["nodes"].values())


def assert_holds_when_not_lost(lk, observer):
    """If the handle says it holds the lock at t0, a consistent read answered
    before its valid_until must show its token."""
    t0 = time.monotonic()
    if lk.lost:
        return False
    until = lk.valid_until
    try:
        info = observer.get(lk.name, consistent=True, timeout=3)
    except lockd.Unavailable:
        return True                     # no answer: nothing to compare
    if time.monotonic() < until:
        assert info is not None and info.token == lk.token and info.owner == lk.owner, \
            "handle not lost at %.3f (valid until %.3f) but the cluster says %r" % (t0, until, info)
    return True


def test_C01_leader_killed_under_keepalive(harness, cluster, restore):
    c = lockd.Client(urls(cluster), request_timeout=3)
    observer = lockd.Client(urls(cluster), request_timeout=3)
    lost = []
    lk = c.acquire(uniq("c01"), ttl=2).keepalive(on_lost=lambda l: lost.append(l.lost_reason))
    leader = harness.leader()["id"]
    harness.kill(leader)
    restore.append(leader)
    end = time.monotonic() + 8          # failover and four lease lengths after it
    while time.monotonic() < end:
        assert_holds_when_not_lost(lk, observer)
        time.sleep(0.05)
    print("C01: %s" % ("lost: " + lk.lost_reason if lk.lost else "the lease survived the failover"))
    if lk.lost:
        assert len(lost) == 1           # the loss was announced, once
        with pytest.raises(lockd.LockLost):
            lk.check()
    else:
        assert lost == []
        info = observer.get(lk.name, consistent=True)
        assert info.token == lk.token and info.owner == c.owner
        assert c.leader[0] != str(leader)
    lk.release()
    assert len(lost) <= 1


def test_C02_waiter_when_leader_dies(harness, cluster, restore):
    a = lockd.Client(urls(cluster), request_timeout=3)
    b = lockd.Client(urls(cluster), request_timeout=3)
    name = uniq("c02")
    held = a.acquire(name, ttl=30)
    got = {}

    def waiter():
        try:
            got["lock"] = b.acquire(name, ttl=30, wait=25)
        except Exception as e:
            got["error"] = e
    t = threading.Thread(target=waiter)
    t.start()
    leader = harness.leader()
    assert wait_for(lambda: metric(leader["url"], "lockd_waiters") >= 1, 10)
    harness.kill(leader["id"])
    restore.append(leader["id"])
    held.release()                      # retried through the failover
    t.join(40)
    assert "lock" in got, got
    assert got["lock"].token > held.token
    info = a.get(name, consistent=True)
    assert info.owner == b.owner and info.token == got["lock"].token
    got["lock"].release()


def test_C03_only_endpoint_is_a_follower(harness, cluster, restore):
    leader = harness.leader()
    follower = next(i for i in cluster["nodes"] if int(i) != leader["id"])
    c = lockd.Client(cluster["nodes"][follower], request_timeout=3)
    lk = c.acquire(uniq("c03"), ttl=30)
    assert c.leader == (str(leader["id"]), leader["url"])       # learned from X-Lockd-Leader + /status
    harness.kill(int(follower))                                  # its only configured endpoint
    restore.append(int(follower))
    lk.renew()
    lk2 = c.acquire(uniq("c03"), ttl=30)
    lk.release()
    lk2.release()


def test_C04_load_balancer_with_a_node_down(harness, cluster, restore):
    lb = harness.nginx()["url"]
    c = lockd.Client.from_load_balancer(lb, request_timeout=3)
    leader = harness.leader()["id"]
    down = next(int(i) for i in cluster["nodes"] if int(i) != leader)
    harness.kill(down)
    restore.append(down)
    name = uniq("c04")
    tokens = []
    for _ in range(12):
        lk = c.acquire(name, ttl=30)
        assert c.get(name, consistent=True).token == lk.token
        tokens.append(lk.token)
        lk.release()
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    assert c.leader is None                                      # never bypasses the balancer


def test_C05_cluster_file(harness, cluster):
    c = lockd.Client.from_cluster_file(cluster["cluster_file"], request_timeout=3)
    lk = c.acquire(uniq("c05"), ttl=30)
    leader = harness.leader()
    assert c.leader == (str(leader["id"]), leader["url"])
    assert c.get(lk.name).token == lk.token
    lk.release()


def wait_for(pred, timeout, interval=0.02):
    end = time.monotonic() + timeout
    while True:
        try:
            v = pred()
        except OSError:
            v = None
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def metric(url, name):
    import urllib.request
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(ln.split()[-1]) for ln in text.splitlines()
               if ln.startswith(name + " ") or ln.startswith(name + "{"))
