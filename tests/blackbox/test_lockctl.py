"""lockctl against a live node, over the admin Unix socket: every subcommand
in text and --json form, the exit codes (0 ok, 1 the operation failed,
2 usage error or no connection), --help, the socket's permissions and the
master's bounds on a client that misbehaves.

Binary: $LOCKCTL_BIN (default /work/main/build/lockctl); lockd as in
conftest.py."""

import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import time

import pytest

from lockd_helpers import LockdCluster, expect, wait_until

LOCKCTL_BIN = os.environ.get("LOCKCTL_BIN", "/work/main/build/lockctl")


@pytest.fixture(scope="session", autouse=True)
def _lockctl_bin():
    if not os.access(LOCKCTL_BIN, os.X_OK):
        pytest.fail("lockctl binary not found or not executable: %s (set LOCKCTL_BIN)" % LOCKCTL_BIN)


def admin_socket(node):
    return os.path.join(node.data_dir, "lockd.sock")


def lockctl(args, node=None, sock=None, env=None, cwd=None, timeout=30):
    """Runs lockctl (with --socket of node, unless sock/env say otherwise);
    returns (rc, stdout, stderr)."""
    argv = [LOCKCTL_BIN]
    if sock is not None:
        argv += ["--socket", sock]
    elif node is not None:
        argv += ["--socket", admin_socket(node)]
    e = dict(os.environ)
    e.pop("LOCKD_SOCKET", None)
    e.update(env or {})
    p = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, cwd=cwd, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def ok(args, node, **kw):
    rc, out, err = lockctl(args, node, **kw)
    assert rc == 0, "lockctl %r: rc %d\nstdout: %s\nstderr: %s" % (args, rc, out, err)
    return out


def ok_json(args, node, **kw):
    out = ok(["--json"] + list(args), node, **kw)
    assert out.endswith("\n") and out.count("\n") == 1, "want one JSON line: %r" % out
    obj = json.loads(out)
    assert isinstance(obj, dict), out
    return obj


def key_values(text):
    """{"key": "value"} of "key:   value" lines."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z][a-z ]*):\s+(.*)$", line)
        assert m, "not a key: value line: %r" % line
        out[m.group(1)] = m.group(2)
    return out


def table(text):
    """[[cell, ...], ...] of an aligned table (header first)."""
    return [re.split(r"\s{2,}", line.rstrip()) for line in text.splitlines()]


def lockd_version(node):
    """The version the master logged at start ("lockd X node=...")."""
    with open(node.log_path, "rb") as f:
        m = re.search(rb"\[master\] lockd (\S+) node=", f.read())
    assert m, "no start line in the log"
    return m.group(1).decode()


# --------------------------------------------------------------------------
# the socket

def test_admin_socket_is_created_mode_0600_in_the_data_dir(shared_node):
    st = os.stat(admin_socket(shared_node))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)


def test_admin_socket_option_moves_it_and_stop_removes_it(node_factory, tmp_path):
    path = str(tmp_path / "adm.sock")
    n = node_factory(extra_args=["--admin-socket", path])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not os.path.exists(admin_socket(n))
    assert key_values(ok(["status"], None, sock=path))["node"] == "1"
    n.stop()
    assert not os.path.exists(path), "admin socket left behind after SIGTERM"


# --------------------------------------------------------------------------
# status

def test_status_text_has_one_line_per_fact(shared_node):
    kv = key_values(ok(["status"], shared_node))
    assert kv["node"] == "1"
    assert kv["role"] == "leader"
    assert kv["leader"] == "1 (127.0.0.1:%d)" % shared_node.port
    assert int(kv["term"]) >= 1
    assert int(kv["applied index"]) >= 1 and int(kv["commit index"]) >= int(kv["applied index"])
    assert re.match(r"^\d+ of 1048576$", kv["locks"]), kv["locks"]
    assert int(kv["next token"]) >= 1
    assert kv["table"] == "ready"
    assert kv["version"] == lockd_version(shared_node)
    assert kv["workers"] == "2 alive of 2"
    assert kv["raft pid"] == str(shared_node.raft_pid())
    assert kv["master pid"] == str(shared_node.pid)
    assert kv["restarts"] == "raft 0, workers 0"
    assert kv["http"] == "127.0.0.1:%d" % shared_node.port
    assert kv["store"] == "lmdb"
    assert kv["data dir"] == shared_node.data_dir
    assert kv["log level"] == "info"
    assert re.match(r"^\d+(ms|\.\ds|m\d\ds|h\d\dm)$", kv["uptime"]), kv["uptime"]


def test_status_json_counts_locks_and_agrees_with_http_status(shared_node):
    before = ok_json(["status"], shared_node)
    expect(shared_node, "POST", "/lock/status-count", 200)
    try:
        s = ok_json(["status"], shared_node)
        assert s["lock_count"] == before["lock_count"] + 1
        # raftproc publishes term/indexes/next token on its tick, not per apply
        s = wait_until(lambda: (lambda x: x if x["next_token"] > before["next_token"] and
                                x["applied_index"] > before["applied_index"] else None)(
            ok_json(["status"], shared_node)), 5)
        assert s, "status indexes and next token never moved"
    finally:
        expect(shared_node, "DELETE", "/lock/status-count", 200)
    assert s["node_id"] == 1 and s["role"] == "leader"
    assert s["leader"] == {"id": 1, "address": "127.0.0.1:%d" % shared_node.port}
    assert s["capacity"] == 1048576
    assert s["version"] == lockd_version(shared_node)
    assert s["workers"] == 2 and s["workers_alive"] == 2
    assert s["raft_pid"] == shared_node.raft_pid()
    assert s["master_pid"] == shared_node.pid
    assert s["restarts"] == {"raft": 0, "worker": 0}
    assert s["table_state"] == "ready" and s["store"] == "lmdb" and s["log_level"] == "info"
    assert isinstance(s["uptime_ms"], int) and s["uptime_ms"] > 0
    h = expect(shared_node, "GET", "/status", 200).body
    assert h["role"] == s["role"] and h["term"] == s["term"]


# --------------------------------------------------------------------------
# list

def test_list_text_is_an_aligned_table_in_name_order(shared_node):
    expect(shared_node, "POST", "/lock/lst-b?owner=alice&ttl=60s", 200)
    expect(shared_node, "POST", "/lock/lst-a", 200)
    expect(shared_node, "POST", "/lock/lst-c?owner=bob", 200)
    expect(shared_node, "POST", "/lock/other-x", 200)
    try:
        out = ok(["list", "--prefix", "lst-"], shared_node)
    finally:
        for n in ("lst-a", "other-x"):
            expect(shared_node, "DELETE", "/lock/" + n, 200)
        expect(shared_node, "DELETE", "/lock/lst-b?owner=alice", 200)
        expect(shared_node, "DELETE", "/lock/lst-c?owner=bob", 200)
    lines = out.splitlines()
    rows = table(out)
    assert rows[0] == ["NAME", "OWNER", "TOKEN", "AGE", "TTL-LEFT"]
    assert [r[0] for r in rows[1:]] == ["lst-a", "lst-b", "lst-c"]
    a, b, c = rows[1:]
    assert a[1] == "-" and a[4] == "-"
    assert b[1] == "alice" and re.match(r"^(59\.\ds|1m00s)$", b[4]), b
    assert c[1] == "bob" and c[4] == "-"
    assert all(r[2].isdigit() for r in rows[1:])
    assert int(a[2]) > int(b[2]) and int(c[2]) > int(a[2])  # tokens in acquire order
    # aligned: every column starts at the same offset on every line
    col = lines[0].index("OWNER")
    assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines)


def test_list_json_pages_with_limit_and_after(shared_node):
    names = ["pg-%02d" % i for i in range(5)]
    for n in names:
        expect(shared_node, "POST", "/lock/" + n + "?ttl=1h", 200)
    try:
        p1 = ok_json(["list", "--prefix", "pg-", "--limit", "2"], shared_node)
        p2 = ok_json(["list", "--prefix", "pg-", "--limit", "2", "--after", p1["next"]], shared_node)
        p3 = ok_json(["list", "--prefix=pg-", "--limit=2", "--after=" + p2["next"]], shared_node)
        everything = ok_json(["list", "--prefix", "pg-"], shared_node)
    finally:
        for n in names:
            expect(shared_node, "DELETE", "/lock/" + n, 200)
    assert [l["name"] for l in p1["locks"]] == names[:2] and p1["next"] == names[1]
    assert [l["name"] for l in p2["locks"]] == names[2:4] and p2["next"] == names[3]
    assert [l["name"] for l in p3["locks"]] == names[4:] and p3["next"] is None
    assert [l["name"] for l in everything["locks"]] == names and everything["next"] is None
    l = p1["locks"][0]
    assert set(l) == {"name", "locked", "owner", "token", "acquired_at_ms", "renewed_at_ms", "ttl_ms",
                      "expires_in_ms", "age_ms", "revision"}
    assert l["locked"] is True and l["owner"] is None and l["ttl_ms"] == 3600000
    assert 0 < l["expires_in_ms"] <= 3600000 and l["age_ms"] >= 0
    assert abs(l["acquired_at_ms"] - time.time() * 1000) < 60000


def test_list_of_nothing_prints_the_header_and_an_empty_json_list(shared_node):
    assert table(ok(["list", "--prefix", "nothing-here"], shared_node)) == [
        ["NAME", "OWNER", "TOKEN", "AGE", "TTL-LEFT"]]
    assert ok_json(["list", "--prefix", "nothing-here"], shared_node) == {"locks": [], "next": None}


def test_list_larger_than_one_frame_arrives_whole(node_factory):
    """600 locks of 128-byte names and owners are ~170 KiB: several 64 KiB
    frames from the master, one list for the user."""
    n = node_factory(store="memory")
    conn = n.connection()
    names = ["big-%s-%04d" % ("n" * 114, i) for i in range(600)]
    for i, name in enumerate(names):
        conn.request("POST", "/lock/%s?owner=%s" % (name, "o" * 124 + "%04d" % i))
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    conn.close()
    got = ok_json(["list", "--limit", "10000"], n)
    assert [l["name"] for l in got["locks"]] == names and got["next"] is None
    assert len(table(ok(["list", "--limit", "600"], n))) == 601
    part = ok_json(["list", "--limit", "450"], n)
    assert len(part["locks"]) == 450 and part["next"] == names[449]


# --------------------------------------------------------------------------
# show

def test_show_text_and_json_describe_one_lock(shared_node):
    r = expect(shared_node, "POST", "/lock/show-me?owner=carol&ttl=30s", 200)
    try:
        kv = key_values(ok(["show", "show-me"], shared_node))
        j = ok_json(["show", "show-me"], shared_node)
    finally:
        expect(shared_node, "DELETE", "/lock/show-me?owner=carol", 200)
    assert kv["name"] == "show-me" and kv["owner"] == "carol"
    assert kv["token"] == str(r.body["token"])
    assert kv["ttl"] == "30s"
    assert re.match(r"^(29\.\d|30\.0)s$", kv["expires in"]), kv
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(.+ ago\)$", kv["acquired"]), kv
    assert j["name"] == "show-me" and j["locked"] is True and j["owner"] == "carol"
    assert j["token"] == r.body["token"] and j["ttl_ms"] == 30000
    assert 0 < j["expires_in_ms"] <= 30000


def test_show_of_an_anonymous_lock_says_so(shared_node):
    expect(shared_node, "POST", "/lock/show-anon", 200)
    try:
        kv = key_values(ok(["show", "show-anon"], shared_node))
        j = ok_json(["show", "show-anon"], shared_node)
    finally:
        expect(shared_node, "DELETE", "/lock/show-anon", 200)
    assert kv["owner"] == "(anonymous)" and kv["ttl"] == "none" and "expires in" not in kv
    assert j["owner"] is None and j["ttl_ms"] is None and j["expires_in_ms"] is None


def test_show_of_a_missing_lock_exits_1(shared_node):
    rc, out, err = lockctl(["show", "no-such-lock"], shared_node)
    assert rc == 1 and out == ""
    assert err == "lockctl show: no-such-lock is not locked\n"
    rc, out, err = lockctl(["--json", "show", "no-such-lock"], shared_node)
    assert rc == 1 and err == ""
    assert json.loads(out) == {"error": "no-such-lock is not locked", "status": "not_found"}


# --------------------------------------------------------------------------
# unlock

def test_unlock_of_a_missing_lock_exits_1(shared_node):
    rc, out, err = lockctl(["unlock", "never-locked"], shared_node)
    assert rc == 1 and out == ""
    assert "never-locked is not locked" in err
    rc, out, _ = lockctl(["unlock", "never-locked", "--json"], shared_node)
    assert rc == 1 and json.loads(out)["status"] == "not_found"


def test_unlock_of_an_owned_lock_needs_force(shared_node):
    tok = expect(shared_node, "POST", "/lock/owned-1?owner=alice", 200).body["token"]
    rc, out, err = lockctl(["unlock", "owned-1"], shared_node)
    assert rc == 1 and out == ""
    assert 'held by owner "alice"' in err and "--force" in err
    rc, out, _ = lockctl(["--json", "unlock", "owned-1"], shared_node)
    assert rc == 1
    j = json.loads(out)
    assert j["status"] == "conflict" and j["holder"]["owner"] == "alice" and j["holder"]["token"] == tok
    rc, _, err = lockctl(["unlock", "owned-1", "--owner", "bob"], shared_node)
    assert rc == 1 and "alice" in err
    rc, _, err = lockctl(["unlock", "owned-1", "--owner", "alice", "--token", str(tok + 1000)], shared_node)
    assert rc == 1 and "token %d" % tok in err
    expect(shared_node, "GET", "/lock/owned-1", 200)  # still held after all that

    assert ok(["unlock", "owned-1", "--force"], shared_node) == "released owned-1\n"
    expect(shared_node, "GET", "/lock/owned-1", 404)


def test_unlock_as_the_owner_with_its_token_and_as_json(shared_node):
    tok = expect(shared_node, "POST", "/lock/owned-2?owner=alice&ttl=1m", 200).body["token"]
    j = ok_json(["unlock", "owned-2", "--owner", "alice", "--token", str(tok)], shared_node)
    assert j["released"] is True and j["message"] == "released owned-2"
    expect(shared_node, "GET", "/lock/owned-2", 404)


def test_unlock_of_an_anonymous_lock_needs_no_owner(shared_node):
    expect(shared_node, "POST", "/lock/anon-1", 200)
    assert ok(["unlock", "anon-1"], shared_node) == "released anon-1\n"
    expect(shared_node, "GET", "/lock/anon-1", 404)
    # and the name is free again
    expect(shared_node, "POST", "/lock/anon-1", 200)
    expect(shared_node, "DELETE", "/lock/anon-1", 200)


# --------------------------------------------------------------------------
# members

def test_members_lists_the_single_node_as_leader_and_self(shared_node):
    rows = table(ok(["members"], shared_node))
    assert rows == [["ID", "HTTP", "RAFT", "ROLE", "LEADER", "SELF"],
                    ["1", "127.0.0.1:%d" % shared_node.port, "127.0.0.1:%d" % (shared_node.port + 1000),
                     "voter", "yes", "yes"]]
    j = ok_json(["members"], shared_node)
    assert j == {"members": [{"id": 1, "http_address": "127.0.0.1:%d" % shared_node.port,
                              "raft_address": "127.0.0.1:%d" % (shared_node.port + 1000),
                              "role": "voter", "leader": True, "self": True}],
                 "leader": {"id": 1, "address": "127.0.0.1:%d" % shared_node.port},
                 "source": "raft"}


def test_members_status_and_unlock_on_a_follower_of_a_3_node_cluster(node_factory):
    c = LockdCluster(node_factory, size=3, workers=1)
    c.start()
    lid = c.wait_leader()
    fid = [i for i in c.ids if i != lid][0]
    f = c[fid]
    # the follower's shm status names the leader (published on raftproc's tick)
    assert wait_until(lambda: ok_json(["status"], f)["leader"] == {"id": lid, "address": c.address(lid)}, 5)
    s = ok_json(["status"], f)
    assert s["node_id"] == fid and s["role"] == "follower"

    rows = table(ok(["members"], f))
    assert rows[0] == ["ID", "HTTP", "RAFT", "ROLE", "LEADER", "SELF"]
    assert sorted(int(r[0]) for r in rows[1:]) == c.ids
    for r in rows[1:]:
        nid = int(r[0])
        assert r[1] == c.address(nid)
        assert r[3] == "voter"
        assert r[4] == ("yes" if nid == lid else "no") and r[5] == ("yes" if nid == fid else "no")
    j = ok_json(["members"], f)
    assert [m["id"] for m in j["members"] if m["leader"]] == [lid]
    assert [m["id"] for m in j["members"] if m["self"]] == [fid]
    assert j["leader"] == {"id": lid, "address": c.address(lid)}

    # an unlock on a follower is forwarded to the leader like any write
    expect(c[lid], "POST", "/lock/clustered?owner=dave", 200)
    rc, _, err = lockctl(["unlock", "clustered"], f)
    assert rc == 1 and "dave" in err
    assert ok(["unlock", "clustered", "--force"], f) == "released clustered\n"
    expect(c[lid], "GET", "/lock/clustered?consistent=true", 404)

    # a snapshot asked of a follower is taken by the leader
    start = os.path.getsize(c[lid].log_path)
    assert ok(["snapshot"], f) == "snapshot taken by the leader (node %d)\n" % lid
    assert wait_until(lambda: "snapshot requested by an operator" in log_since(c[lid], start), 5)


# --------------------------------------------------------------------------
# reload, log-level

def lock_round_trips_during_reload(node, old, strict):
    """POST + DELETE of a fresh name per turn, until the worker pids are all
    new. strict: every answer must be 200. Otherwise a 503 "Shutting down"
    (an old worker draining) is retried on a new connection, as a client
    honouring Retry-After would. Returns (round trips, 503s retried)."""
    conn = node.connection()
    retried = 0
    deadline = time.monotonic() + 15
    i = 0
    while time.monotonic() < deadline:
        for method in ("POST", "DELETE"):
            for _attempt in range(20):
                conn.request(method, "/lock/reload-%d" % i)
                r = conn.getresponse()
                body = r.read()
                if strict or r.status != 503 or b"Shutting down" not in body:
                    break
                retried += 1
                conn.close()
                conn = node.connection()
            assert r.status == 200, (method, i, r.status, body, r.getheaders())
        i += 1
        now = set(node.worker_pids())
        if len(now) == 2 and not (now & old):
            conn.close()
            return i, retried
        time.sleep(0.02)
    conn.close()
    raise AssertionError("workers not replaced: before %r, now %r" % (old, node.worker_pids()))


def test_reload_replaces_the_workers_and_http_keeps_working(node):
    old = set(node.worker_pids())
    assert len(old) == 2
    out = ok(["reload"], node)
    assert out.startswith("reloading")
    lock_round_trips_during_reload(node, old, strict=False)
    expect(node, "GET", "/readyz", 200)

    old = set(node.worker_pids())
    j = ok_json(["reload"], node)
    assert j["reloading"] is True and j["message"].startswith("reloading")
    assert wait_until(lambda: len(node.worker_pids()) == 2 and not (set(node.worker_pids()) & old), 15)
    s = ok_json(["status"], node)
    assert s["workers_alive"] == 2 and s["restarts"] == {"raft": 0, "worker": 0}
    expect(node, "POST", "/lock/after-reload", 200)
    expect(node, "DELETE", "/lock/after-reload", 200)


def test_reload_fails_no_request(node):
    for _ in range(3):
        old = set(node.worker_pids())
        ok(["reload"], node)
        lock_round_trips_during_reload(node, old, strict=True)


def test_log_level_changes_the_masters_level(node):
    out = ok(["log-level", "debug"], node)
    assert out.startswith("log level is debug in every process")
    assert key_values(ok(["status"], node))["log level"] == "debug"
    j = ok_json(["log-level", "WARN"], node)
    assert j["level"] == "warn" and "every process" in j["message"]
    assert "reload" not in j["message"] and "restart" not in j["message"]
    assert ok_json(["status"], node)["log_level"] == "warn"
    ok(["log-level", "info"], node)
    with open(node.log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    assert "log level info -> debug" in log and "log level warn -> info" in log


def log_since(node, offset):
    with open(node.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


RAFT_DEBUG_ACCEPT = re.compile(r"DEBUG +\[raft\] worker connection \d+ accepted")


def test_log_level_reaches_the_running_raft_process_at_once(node):
    """The raft process is never restarted here: it follows the level the
    master publishes in shared memory. Its debug line "worker connection N
    accepted" shows up when a reload's new workers connect to it."""
    raft = node.raft_pid()
    start = os.path.getsize(node.log_path)
    old = set(node.worker_pids())
    ok(["reload"], node)  # at info: no debug line from anyone
    assert wait_until(lambda: len(node.worker_pids()) == 2 and not (set(node.worker_pids()) & old), 15)
    expect(node, "POST", "/lock/lvl-a", 200)
    expect(node, "DELETE", "/lock/lvl-a", 200)
    time.sleep(0.3)
    assert "DEBUG" not in log_since(node, start)

    at_debug = os.path.getsize(node.log_path)
    ok(["log-level", "debug"], node)
    time.sleep(0.2)  # raftproc looks once per tick (20 ms); the reload's workers connect at once
    old = set(node.worker_pids())
    ok(["reload"], node)
    assert wait_until(lambda: RAFT_DEBUG_ACCEPT.search(log_since(node, at_debug)), 15), \
        "no debug line from the raft process after log-level debug\n" + node.log_tail()
    assert wait_until(lambda: len(node.worker_pids()) == 2 and not (set(node.worker_pids()) & old), 15)

    ok(["log-level", "info"], node)
    time.sleep(0.2)  # raftproc and the workers look once per loop turn (tens of ms)
    at_info = os.path.getsize(node.log_path)
    old = set(node.worker_pids())
    ok(["reload"], node)
    assert wait_until(lambda: len(node.worker_pids()) == 2 and not (set(node.worker_pids()) & old), 15)
    expect(node, "POST", "/lock/lvl-b", 200)
    expect(node, "DELETE", "/lock/lvl-b", 200)
    time.sleep(0.3)
    tail = log_since(node, at_info)
    assert "DEBUG" not in tail, tail
    assert node.raft_pid() == raft, "the raft process was restarted"


# --------------------------------------------------------------------------
# snapshot

def test_snapshot_on_a_single_node_and_a_restart_keeps_the_locks(node):
    tokens = {}
    for i in range(3):
        tokens["snap-%d" % i] = expect(node, "POST", "/lock/snap-%d?owner=o%d" % (i, i), 200).body["token"]
    start = os.path.getsize(node.log_path)
    assert ok(["snapshot"], node) == "snapshot taken by the leader (node 1)\n"
    assert wait_until(lambda: "snapshot requested by an operator" in log_since(node, start), 5), node.log_tail()
    j = ok_json(["snapshot"], node)
    assert j == {"ok": True, "message": "snapshot taken by the leader (node 1)",
                 "leader": {"id": 1, "address": "127.0.0.1:%d" % node.port}}
    # more after the snapshot: a restart needs the snapshot and the log after it
    for i in range(3, 5):
        tokens["snap-%d" % i] = expect(node, "POST", "/lock/snap-%d?owner=o%d" % (i, i), 200).body["token"]
    expect(node, "DELETE", "/lock/snap-0?owner=o0", 200)
    del tokens["snap-0"]

    node.restart()
    for name, tok in tokens.items():
        body = expect(node, "GET", "/lock/" + name, 200).body
        assert body["token"] == tok and body["owner"] == "o" + name[-1], body
    expect(node, "GET", "/lock/snap-0", 404)
    assert sorted(l["name"] for l in ok_json(["list", "--prefix", "snap-"], node)["locks"]) == sorted(tokens)


def raft_snapshots(node):
    d = os.path.join(node.data_dir, "raft")
    return sorted(f for f in os.listdir(d) if f.startswith("snapshot-") and not f.endswith(".meta"))


def test_snapshot_writes_a_raft_snapshot_file(node):
    expect(node, "POST", "/lock/snapfile", 200)
    assert raft_snapshots(node) == []
    ok(["snapshot"], node)
    assert wait_until(lambda: raft_snapshots(node), 5), os.listdir(os.path.join(node.data_dir, "raft"))


def test_snapshot_help_and_usage():
    out = ok(["snapshot", "--help"], None)
    assert out.startswith("Usage: lockctl [global options] snapshot")
    assert "leader" in out and "Exit status 1" in out
    assert re.search(r"^  snapshot\b", ok(["--help"], None), re.M)


# --------------------------------------------------------------------------
# exit codes and messages

def test_missing_socket_exits_2_naming_the_path_and_the_error(tmp_path):
    path = str(tmp_path / "nowhere.sock")
    rc, out, err = lockctl(["status"], sock=path)
    assert rc == 2 and out == ""
    assert err == ("lockctl: cannot connect to %s: No such file or directory "
                   "(is lockd running? use --socket)\n" % path)


def test_default_socket_is_lockd_data_in_the_current_directory(tmp_path):
    rc, _, err = lockctl(["status"], cwd=str(tmp_path))
    assert rc == 2
    assert err.startswith("lockctl: cannot connect to ./lockd-data/lockd.sock: No such file or directory")
    rc, out, _ = lockctl(["--help"])
    assert rc == 0 and "./lockd-data/lockd.sock" in out and "LOCKD_SOCKET" in out


def test_lockd_socket_environment_variable_is_used(shared_node, tmp_path):
    out = ok(["status"], None, env={"LOCKD_SOCKET": admin_socket(shared_node)})
    assert key_values(out)["node"] == "1"
    # --socket wins over the environment
    rc, _, err = lockctl(["status"], sock=str(tmp_path / "x.sock"),
                         env={"LOCKD_SOCKET": admin_socket(shared_node)})
    assert rc == 2 and "x.sock" in err


def test_socket_that_refuses_exits_2(tmp_path):
    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # bound, never listening: connect() is refused
    try:
        rc, _, err = lockctl(["status"], sock=path)
    finally:
        s.close()
    assert rc == 2 and "cannot connect to %s: Connection refused" % path in err


@pytest.mark.parametrize("args,fragment", [
    ([], "Usage: lockctl"),
    (["frobnicate"], 'unknown command "frobnicate"'),
    (["--bogus", "status"], "unknown option --bogus"),
    (["status", "--bogus"], "unknown option --bogus"),
    (["status", "extra"], 'unexpected argument "extra"'),
    (["show"], "NAME is missing"),
    (["show", "a", "b"], 'unexpected argument "b"'),
    (["show", "bad name"], "Name contains non-printable/non-ascii byte 32 at offset 3"),
    (["unlock", "x" * 129], "Name is too long (129 bytes > max of 128)"),
    (["unlock", "x", "--token", "abc"], "--token"),
    (["unlock", "x", "--owner", "bad owner"], "Owner contains"),
    (["unlock", "x", "--force=yes"], "takes no value"),
    (["list", "--limit", "0"], "--limit"),
    (["list", "--limit", "10001"], "--limit"),
    (["list", "--limit"], "needs a value"),
    (["list", "--prefix", "a b"], "--prefix"),
    (["log-level"], "LEVEL is missing"),
    (["log-level", "loud"], '"loud" is not debug, info, warn or error'),
    (["snapshot", "now"], 'unexpected argument "now"'),
    (["--timeout", "soon", "status"], "--timeout"),
    (["--socket"], "needs a value"),
])
def test_usage_errors_exit_2_before_contacting_the_node(args, fragment, tmp_path):
    # the socket does not exist: a usage error must be found first
    rc, out, err = lockctl(args, sock=str(tmp_path / "none.sock"))
    assert rc == 2, (args, rc, out, err)
    assert fragment in err, (args, err)
    assert "cannot connect" not in err


def test_help_globally_and_per_subcommand(shared_node):
    out = ok(["--help"], None)
    for c in ("status", "list", "show", "unlock", "members", "snapshot", "reload", "log-level"):
        assert re.search(r"^  %s\b" % c, out, re.M), c
    assert "--socket PATH" in out and "--json" in out and "Exit status" in out
    for args in (["unlock", "--help"], ["help", "unlock"], ["unlock", "-h"]):
        out = ok(args, None)
        assert out.startswith("Usage: lockctl [global options] unlock NAME")
        assert "--force" in out and "--owner" in out and "--token" in out
    assert "--prefix" in ok(["list", "--help"], None)
    rc, out, _ = lockctl(["--version"])
    assert rc == 0 and out.splitlines()[0] == "lockctl %s" % lockd_version(shared_node)


def test_global_options_work_after_the_subcommand(shared_node):
    out = ok(["status", "--json", "--socket", admin_socket(shared_node)], None)
    assert json.loads(out)["node_id"] == 1


# --------------------------------------------------------------------------
# the master's bounds

def test_a_silent_client_delays_others_by_at_most_the_read_timeout(shared_node):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(admin_socket(shared_node))  # connects, never sends
    try:
        t0 = time.monotonic()
        ok(["status"], shared_node)
        assert time.monotonic() - t0 < 4.0
        # and the master loop kept supervising meanwhile: HTTP is fine
        expect(shared_node, "GET", "/readyz", 200)
    finally:
        s.close()


def test_unlock_relay_is_bounded_by_the_api_timeout_when_raft_hangs(node_factory):
    n = node_factory(extra_args=["--api-timeout", "300ms"])
    expect(n, "POST", "/lock/hung", 200)
    raft = n.raft_pid()
    os.kill(raft, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        rc, out, err = lockctl(["--json", "unlock", "hung", "--force"], n)
        took = time.monotonic() - t0
        assert rc == 1, (rc, out, err)
        j = json.loads(out)
        assert j["status"] == "timeout" and "outcome unknown" in j["error"]
        assert took < 3.0, took  # 300 ms + the master's 1 s margin
        # the master loop is free again at once
        assert key_values(ok(["status"], n))["raft pid"] == str(raft)
    finally:
        os.kill(raft, signal.SIGCONT)
    expect(n, "GET", "/readyz", 200)


@pytest.mark.parametrize("payload", [
    struct.pack("<I", 0xFFFFFFFF),           # announces an oversize frame
    struct.pack("<I", 5000) + b"x" * 5000,   # over the 4 KiB request limit
    struct.pack("<I", 3) + b"\xff\xff\xff",  # not a protobuf message
    struct.pack("<I", 2) + b"\x08\x63",      # command 99: unknown
])
def test_malformed_requests_are_refused_and_the_master_stays_up(shared_node, payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(admin_socket(shared_node))
    try:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        except ConnectionResetError:
            pass
    finally:
        s.close()
    assert len(data) < 1024  # at most one short error frame, then closed
    assert shared_node.alive()
    assert key_values(ok(["status"], shared_node))["role"] == "leader"
