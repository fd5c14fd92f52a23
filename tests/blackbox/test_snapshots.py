"""Raft snapshots and compaction (issue 4, item 6): a node restarts from a
snapshot plus the log tail, and a follower whose data was wiped catches up
by snapshot install; the snapshot is encoded off the Raft process's loop."""
import shutil
import threading

from lockd_helpers import FAST_ELECTION_ARGS, LockdCluster, wait_until

SNAP_ARGS = ("--snapshot-threshold", "32", "--snapshot-trailing", "8")


def _fill(node, prefix, n, threads=8):
    """POSTs n unique names with `threads` clients (many small entries)."""
    names = ["%s-%d" % (prefix, i) for i in range(n)]

    def run(part):
        for name in part:
            r = node.request("POST", "/lock/" + name)
            assert r.status == 200, (name, r)

    ts = [threading.Thread(target=run, args=(names[k::threads],)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return names


def _log(node):
    with open(node.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def test_restart_from_snapshots_keeps_every_lock_and_token(node_factory):
    node = node_factory(extra_args=SNAP_ARGS)
    names = _fill(node, "s", 400)
    assert wait_until(lambda: "snapshot encoded off the loop" in _log(node), 10), \
        "no snapshot was taken off the loop"
    node.stop()
    node.start()
    node.wait_ready()
    for name in names[::7]:
        assert node.request("GET", "/lock/" + name).status == 200, name
    r = node.request("POST", "/lock/after")
    assert r.status == 200 and r.body["token"] == len(names) + 1, r


def test_wiped_follower_catches_up_by_snapshot_install(node_factory):
    c = LockdCluster(node_factory, extra_args=FAST_ELECTION_ARGS + SNAP_ARGS).start()
    leader = c.wait_leader()
    victim = c.followers(leader)[0]
    c.kill9(victim)
    shutil.rmtree(c[victim].data_dir)
    names = _fill(c[leader], "w", 300)  # far past the snapshot threshold
    assert wait_until(lambda: "snapshot" in _log(c[leader]), 10)
    c.restart(victim, wait=False)

    def caught_up():
        try:
            return all(c[victim].request("GET", "/lock/" + n, timeout=2).status == 200 for n in names[::29])
        except OSError:
            return False

    assert wait_until(caught_up, 20), "wiped follower did not catch up\n" + c.log_tails()
    assert "restored snapshot" in _log(c[victim]), "the follower caught up without a snapshot install"
    r = c[victim].request("GET", "/lock/" + names[-1] + "?consistent=true")
    assert r.status == 200, r
