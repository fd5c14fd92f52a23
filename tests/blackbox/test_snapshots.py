"""Raft snapshots and compaction (issue 4, item 6): a node restarts from a
snapshot plus the log tail, and a follower whose data was wiped catches up
by snapshot install; the snapshot is encoded off the Raft process's loop."""
import os
import re
import shutil
import subprocess
import threading

from lockd_helpers import FAST_ELECTION_ARGS, LOCKCTL_BIN, LockdCluster, wait_until

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


def _fill_big(node, n, threads=8):
    """POSTs n locks with 120-byte names and 100-byte owners (about 260 bytes
    each in a snapshot) over keep-alive connections."""
    def run(k):
        conn = node.connection()
        try:
            for i in range(k, n, threads):
                conn.request("POST", "/lock/big-%06d-%s?owner=%s" % (i, "x" * 109, "o" * 100))
                r = conn.getresponse()
                r.read()
                assert r.status == 200, r.status
        finally:
            conn.close()

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _snapshot_sizes(node):
    return [int(m) for m in re.findall(r"snapshot encoded off the loop: (\d+) bytes", _log(node))]


def test_large_state_paces_snapshots_by_bytes_and_an_operator_snapshot_still_runs(node_factory):
    node = node_factory(extra_args=("--snapshot-threshold", "64", "--snapshot-trailing", "16"))
    _fill_big(node, 6000)
    # Every 64 entries while the state is small, until one snapshot is over 1 MiB.
    assert wait_until(lambda: any(n >= 1 << 20 for n in _snapshot_sizes(node)), 20), node.log_tail()
    before = len(_snapshot_sizes(node))
    # 400 more entries: by entry count that would be 6 snapshots; by bytes
    # (~100 each against a snapshot of over 1 MiB) not one. One may still
    # have been encoding when `before` was read.
    for i in range(400):
        assert node.request("POST", "/lock/small-%d" % i).status == 200
    assert len(_snapshot_sizes(node)) - before <= 1, _snapshot_sizes(node)
    # An operator's snapshot is not held back by the pacing.
    before = len(_snapshot_sizes(node))
    rc = subprocess.run([LOCKCTL_BIN, "--socket", os.path.join(node.data_dir, "lockd.sock"), "snapshot"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert rc.returncode == 0, rc
    assert wait_until(lambda: len(_snapshot_sizes(node)) > before, 20), node.log_tail()
