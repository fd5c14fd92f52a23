"""Run-time membership changes through lockctl (issue 4 item 7, issue 5
item 2): `lockctl members` shows the live Raft configuration, `members add`
joins a node started with --join (spare, catch-up, voter), `members remove`
takes one out, `transfer` moves leadership. Real clusters on loopback with
short Raft timeouts (LockdCluster), lockctl run against each node's admin
socket (<data dir>/lockd.sock).

Binaries: $LOCKD_BIN and $LOCKCTL_BIN (default /work/main/build/...)."""

import json
import os
import signal
import subprocess
import time

import pytest

from lockd_helpers import (LOCKCTL_BIN, LockdCluster, Resp, admin_socket_of, join_node,
                           lockctl_members, raft_address, run_lockctl, try_request, voter_ids,
                           wait_until, write_until_ok)

CONVERGE_S = 10.0   # a configuration change reaching every node, a lock reaching a new one


@pytest.fixture(scope="module", autouse=True)
def _lockctl_bin():
    if not os.access(LOCKCTL_BIN, os.X_OK):
        pytest.fail("lockctl binary not found or not executable: %s (set LOCKCTL_BIN)" % LOCKCTL_BIN)


@pytest.fixture
def cluster(node_factory):
    c = LockdCluster(node_factory, size=3, workers=1)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


def ok(args, node, timeout=60.0):
    rc, out, err = run_lockctl(args, node=node, timeout=timeout)
    assert rc == 0, "lockctl %r on %s: rc %d\nstdout: %s\nstderr: %s" % (args, node.name, rc, out, err)
    return out


def describe(cluster):
    """Every running node's `lockctl members` view, for assertion messages."""
    return {i: lockctl_members(cluster[i]) for i in cluster.running()}


def wait_voters(cluster, on, want, timeout=CONVERGE_S):
    """Polls `lockctl members` on each node of `on` until all list exactly the
    voters `want`."""
    want = sorted(want)
    done = wait_until(lambda: all(voter_ids(cluster[i]) == want for i in on), timeout, interval=0.05)
    assert done, "voters %r not listed by every node of %r within %.0f s: %r" % (
        want, on, timeout, describe(cluster))


def get_lock(node, name):
    r = try_request(node, "GET", "/lock/%s" % name, timeout=2)
    return r if isinstance(r, Resp) and r.status == 200 else None


# --------------------------------------------------------------------------

def test_members_shows_the_live_configuration_on_every_node(cluster):
    lid = cluster.wait_leader()
    for i in cluster.ids:
        rows = [line.split() for line in ok(["members"], cluster[i]).splitlines()]
        assert rows[0] == ["ID", "HTTP", "RAFT", "ROLE", "LEADER", "SELF"]
        assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
        for r in rows[1:]:
            nid = int(r[0])
            assert r[1:] == [cluster.address(nid), raft_address(cluster, nid), "voter",
                             "yes" if nid == lid else "no", "yes" if nid == i else "no"], rows
    j = lockctl_members(cluster[lid])
    assert j["source"] == "raft" and "message" not in j
    assert j["leader"] == {"id": lid, "address": cluster.address(lid)}
    assert j["members"][0] == {"id": 1, "http_address": cluster.address(1),
                               "raft_address": raft_address(cluster, 1), "role": "voter",
                               "leader": lid == 1, "self": lid == 1}


def test_add_a_fourth_node_then_remove_a_follower(cluster):
    lid = cluster.wait_leader()
    follower = [i for i in cluster.ids if i != lid][0]
    r = cluster[lid].request("POST", "/lock/before-add?owner=alice")
    assert r.status == 200, r

    n4 = join_node(cluster, 4)
    # --join: no bootstrap, so no configuration and no leader of its own
    j = lockctl_members(n4)
    assert j is not None and j["source"] == "raft" and j["members"] == [], j
    assert "not in the Raft configuration" in j["message"]

    # on a follower: forwarded to the leader, answered once 4 is a voter
    t0 = time.monotonic()
    out = ok(["members", "add", "4", raft_address(cluster, 4)], cluster[follower])
    took = time.monotonic() - t0
    assert out == "node 4 added at %s and promoted to voter\n" % raft_address(cluster, 4)
    assert took < 10, took
    wait_voters(cluster, [1, 2, 3, 4], [1, 2, 3, 4])

    # node 4 knows every HTTP address (its file lists all four); the others
    # do not know its HTTP address (their files list three)
    m4 = {m["id"]: m for m in lockctl_members(n4)["members"]}
    assert m4[4]["self"] and m4[4]["http_address"] == cluster.address(4)
    m1 = {m["id"]: m for m in lockctl_members(cluster[1])["members"]}
    assert m1[4]["http_address"] is None and m1[4]["raft_address"] == raft_address(cluster, 4)
    row4 = [line.split() for line in ok(["members"], cluster[1]).splitlines() if line.startswith("4 ")]
    assert row4 == [["4", "-", raft_address(cluster, 4), "voter", "no", "no"]]

    # the lock written before the add reached node 4 ...
    got = wait_until(lambda: get_lock(n4, "before-add"), CONVERGE_S)
    assert got and got.body["owner"] == "alice", (got, n4.log_tail())
    # ... and a write through node 4 is forwarded to the leader
    r, tries = write_until_ok([n4], "POST", "/lock/via-4?owner=bob", CONVERGE_S)
    assert r is not None, tries
    r = cluster[lid].request("GET", "/lock/via-4?consistent=true")
    assert r.status == 200 and r.body["owner"] == "bob", r

    # remove one of the original followers, on the leader
    victim = [i for i in (1, 2, 3) if i != lid][1]
    out = ok(["members", "remove", str(victim)], cluster[lid])
    assert out == "node %d removed from the cluster\n" % victim
    rest = [i for i in (1, 2, 3, 4) if i != victim]
    wait_voters(cluster, rest, rest)
    cluster.kill9(victim)
    # 3 voters now: with another follower down too (2 of 3 up) there is still
    # a quorum, which 4 voters with 2 up would not have
    other = [i for i in rest if i != lid][0]
    cluster.kill9(other)
    up = [i for i in rest if i != other]
    r, tries = write_until_ok([cluster[i] for i in up], "POST", "/lock/after-remove?owner=carol", CONVERGE_S)
    assert r is not None, (tries, describe(cluster))
    for i in up:
        r = wait_until(lambda: get_lock(cluster[i], "after-remove"), CONVERGE_S)
        assert r and r.body["owner"] == "carol", (i, r)


def test_transfer_moves_leadership_from_any_node(cluster):
    lid = cluster.wait_leader()
    target, other = [i for i in cluster.ids if i != lid]
    # run on the follower that is not the target: forwarded to the leader
    out = ok(["--json", "transfer", str(target)], cluster[other])
    j = json.loads(out)
    assert j["ok"] is True and "node %d" % target in j["message"], j
    assert cluster.wait_leader(timeout=CONVERGE_S, exclude=(lid,)) == target
    # writes work under the new leader, through every node
    for i in cluster.ids:
        r, tries = write_until_ok([cluster[i]], "POST", "/lock/after-transfer-%d" % i, CONVERGE_S)
        assert r is not None, (i, tries)
    # to the leader itself: nothing to do, still a success
    assert ok(["transfer", str(target)], cluster[lid]) == "node %d is already the leader\n" % target
    # without an id the leader picks a voter
    ok(["transfer"], cluster[target])
    assert cluster.wait_leader(timeout=CONVERGE_S, exclude=(target,)) in (lid, other)


def test_refused_changes_exit_1_with_a_message(cluster):
    lid = cluster.wait_leader()
    f = cluster[[i for i in cluster.ids if i != lid][0]]
    cases = [
        (["members", "add", "2", "127.0.0.1:9"], "node 2 is already a member (voter at %s)" % raft_address(cluster, 2)),
        (["members", "add", "9", raft_address(cluster, 3)], "is already the Raft address of node 3"),
        (["members", "remove", "9"], "node 9 is not a member"),
        (["transfer", "9"], "node 9 is not a member"),
    ]
    for args, fragment in cases:
        for node in (cluster[lid], f):
            rc, out, err = run_lockctl(args, node=node)
            assert rc == 1 and fragment in err and out == "", (args, node.name, rc, out, err)
    rc, out, err = run_lockctl(["--json", "members", "add", "1", "127.0.0.1:9"], node=f)
    assert rc == 1 and err == ""
    j = json.loads(out)
    assert j["status"] == "refused" and "node 1 is already a member" in j["error"], j
    # nothing changed
    assert voter_ids(cluster[lid]) == [1, 2, 3]
    # a transfer to a voter that cannot take over fails and says so
    cluster.sigstop(f.node_id)
    try:
        rc, out, err = run_lockctl(["transfer", str(f.node_id)], node=cluster[lid])
        assert rc == 1 and "leadership did not move to node %d" % f.node_id in err, (rc, out, err)
    finally:
        cluster.sigcont(f.node_id)
    # (once resumed, f may well win an election: that is Raft, not the transfer)
    cluster.wait_leader()


def test_the_only_voter_cannot_be_removed(node_factory):
    # libraft would accept it (answering "lost leadership") and leave a node
    # with an empty configuration: the master refuses first
    n = node_factory(workers=1)
    rc, out, err = run_lockctl(["members", "remove", "1"], node=n)
    assert rc == 1 and "node 1 is the only voter" in err, (rc, out, err)
    j = lockctl_members(n)
    assert [(m["id"], m["role"], m["leader"]) for m in j["members"]] == [(1, "voter", True)], j
    assert n.request("POST", "/lock/still-leader").status == 200


def test_relays_do_not_block_the_admin_socket_and_members_falls_back(node_factory):
    n = node_factory(workers=1, extra_args=["--api-timeout", "3s"])
    r = n.request("POST", "/lock/stuck")
    assert r.status == 200
    raft = n.raft_pid()
    os.kill(raft, signal.SIGSTOP)
    try:
        sock = admin_socket_of(n)
        unlock = subprocess.Popen([LOCKCTL_BIN, "--socket", sock, "--json", "unlock", "stuck", "--force"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        # the unlock waits for raftproc (3 s + 1 s); the master serves others meanwhile
        rc, out, err = run_lockctl(["--json", "status"], node=n)
        assert rc == 0 and time.monotonic() - t0 < 2.0, (rc, out, err, time.monotonic() - t0)
        assert unlock.poll() is None, "unlock finished before status: the test proves nothing"
        # members: raftproc does not answer, so the cluster file is shown
        t1 = time.monotonic()
        rc, out, err = run_lockctl(["--json", "members"], node=n)
        assert rc == 0, (rc, out, err)
        assert time.monotonic() - t1 < 3.5
        j = json.loads(out)
        assert j["source"] == "cluster_file" and "cluster file" in j["message"], j
        assert [(m["id"], m["role"], m["self"]) for m in j["members"]] == [(1, None, True)]
        rc, out, err = run_lockctl(["members"], node=n)
        assert rc == 0 and "cluster file" in err and out.splitlines()[1].split()[3] == "?", (out, err)
        out, err = unlock.communicate(timeout=10)
        assert unlock.returncode == 1, (out, err)
        assert json.loads(out)["status"] == "timeout"
    finally:
        os.kill(raft, signal.SIGCONT)
    j = wait_until(lambda: (lockctl_members(n) or {}).get("source") == "raft" and lockctl_members(n), 10)
    assert j and [(m["id"], m["role"], m["leader"]) for m in j["members"]] == [(1, "voter", True)], j


@pytest.mark.parametrize("args,fragment", [
    (["members", "add"], "ID RAFT_ADDRESS is missing"),
    (["members", "add", "4"], "RAFT_ADDRESS is missing"),
    (["members", "add", "x", "127.0.0.1:5"], 'node id "x" is not a positive integer'),
    (["members", "add", "0", "127.0.0.1:5"], 'node id "0" is not a positive integer'),
    (["members", "add", "4", "localhost:5"], "IPv4"),
    (["members", "add", "4", "127.0.0.1"], "is not a Raft address"),
    (["members", "add", "4", "127.0.0.1:0"], "is not a Raft address"),
    (["members", "add", "4", "127.0.0.1:70000"], "is not a Raft address"),
    (["members", "add", "4", "127.0.0.1:5", "extra"], 'unexpected argument "extra"'),
    (["members", "remove"], "ID is missing"),
    (["members", "remove", "two"], 'node id "two" is not a positive integer'),
    (["members", "frob"], 'unknown subcommand "frob"'),
    (["members", "--bogus"], "unknown option --bogus"),
    (["transfer", "x"], 'node id "x" is not a positive integer'),
    (["transfer", "1", "2"], 'unexpected argument "2"'),
])
def test_bad_usage_exits_2_before_contacting_the_node(args, fragment, tmp_path):
    rc, out, err = run_lockctl(args, sock=str(tmp_path / "none.sock"))
    assert rc == 2, (args, rc, out, err)
    assert fragment in err and "cannot connect" not in err, (args, err)


def test_help_of_the_new_subcommands(tmp_path):
    sock = str(tmp_path / "none.sock")
    for args, usage in [(["members", "add", "--help"], "members add ID RAFT_ADDRESS"),
                        (["help", "members", "add"], "members add ID RAFT_ADDRESS"),
                        (["members", "remove", "-h"], "members remove ID"),
                        (["transfer", "--help"], "transfer [ID]"),
                        (["members", "--help"], "members \n")]:
        rc, out, err = run_lockctl(args, sock=sock)
        assert rc == 0 and out.startswith("Usage: lockctl [global options] " + usage), (args, out, err)
    rc, out, _ = run_lockctl(["--help"], sock=sock)
    for line in ("members add ID RAFT_ADDRESS", "members remove ID", "transfer [ID]"):
        assert "\n  " + line in out, line
    rc, out, _ = run_lockctl(["members", "--help"], sock=sock)
    assert "members add ID RAFT_ADDRESS" in out and "voter, standby or spare" in out
