"""Follower reads (issue 4, item 4): a follower answers GET from its own
applied state only while it hears from a leader; once it has been cut off
for longer than an election timeout it never serves a stale answer."""
import time

from lockd_helpers import LockdCluster, wait_until


def test_follower_back_from_a_stop_serves_no_stale_get(node_factory):
    c = LockdCluster(node_factory).start()  # election timeout 300 ms
    leader = c.wait_leader()
    f = c.followers(leader)[0]
    c.sigstop(f)
    time.sleep(0.6)  # the stop itself is the fault under test: > 2 election timeouts
    r = c[leader].request("POST", "/lock/fresh?owner=x")
    assert r.status == 200, r
    c.sigcont(f)
    # From the moment it runs again, every local GET is either refused (503)
    # or already shows the lock written while it was stopped: never a 404.
    deadline = time.monotonic() + 5
    answers = []
    while time.monotonic() < deadline:
        g = c[f].request("GET", "/lock/fresh", timeout=2)
        answers.append(g.status)
        assert g.status in (200, 503), (answers, g)
        if g.status == 200:
            break
    assert answers[-1] == 200, "the follower never caught up: %r" % answers
    if 503 in answers:
        body = c[f].request("GET", "/lock/fresh").body
        assert body.get("owner") == "x", body
