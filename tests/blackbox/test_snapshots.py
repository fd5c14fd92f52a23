"""Raft snapshots and compaction (issue 4, item 6): a node restarts from a
snapshot plus the log tail, and a follower whose data was wiped catches up
by snapshot install; the snapshot is encoded off the Raft process's loop."""
import os
import re
import shutil
import threading

from lockd_helpers import FAST_ELECTION_ARGS, LockdCluster, run_lockctl, wait_until

SNAP_ARGS = ("--snapshot-threshold", "32", "--snapshot-trailing", "8")


def _fill(node, prefix, n, threads=8):
    """POSTs n unique names with `threads` clients (many small entries)."""
    names = ["%s-%d" % (prefix, i) for i in range(n)]
    errors = []

    def run(part):
        for name in part:
            r = node.request("POST", "/lock/" + name)
            if r.status != 200:
                errors.append((name, r))

    ts = [threading.Thread(target=run, args=(names[k::threads],)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
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
    errors = []

    def run(k):
        conn = node.connection()
        try:
            for i in range(k, n, threads):
                conn.request("POST", "/lock/big-%06d-%s?owner=%s" % (i, "x" * 109, "o" * 100))
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors.append((i, r.status))
        except OSError as e:
            errors.append((k, e))
        finally:
            conn.close()

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]


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
    # An operator's snapshot is not held back by the pacing: a snapshot file
    # at or past the index the barrier reports appears.
    rc, out, err = run_lockctl(["snapshot"], node=node, timeout=30)
    assert rc == 0, (rc, out, err)
    taken = []

    def barrier_index():
        taken[:] = re.findall(r"snapshot requested by an operator: taken at index (\d+)", _log(node))
        return taken

    assert wait_until(barrier_index, 10), node.log_tail()
    want = int(taken[-1])

    def snapshot_file_at_or_after():
        for f in os.listdir(os.path.join(node.data_dir, "raft")):
            p = f.split("-")
            if p[0] == "snapshot" and not f.endswith(".meta") and len(p) >= 3 and int(p[2]) >= want:
                return True
        return False

    assert wait_until(snapshot_file_at_or_after, 20), os.listdir(os.path.join(node.data_dir, "raft"))
