"""Durability: restarts keep every acknowledged lock, tokens never go back,
the master restarts a killed Raft process or worker, and `--store memory`
leaves nothing behind."""

import http.client
import os
import signal
import stat
import threading
import time

from lockd_helpers import conn_request, expect, wait_until


def acquire_many(node, names, threads=8):
    """POSTs every name (8 keep-alive connections); returns {name: token}."""
    out = {}
    errs = []
    lock = threading.Lock()
    chunks = [names[i::threads] for i in range(threads)]

    def run(chunk):
        conn = node.connection()
        try:
            for n in chunk:
                r = conn_request(conn, "POST", "/lock/" + n)
                with lock:
                    if r.status == 200:
                        out[n] = r.body["token"]
                    else:
                        errs.append((n, r))
        except Exception as e:  # noqa: BLE001 - reported below
            errs.append(("exception", repr(e)))
        finally:
            conn.close()

    ts = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errs, errs[:10]
    assert len(out) == len(names)
    return out


def assert_all_held(node, held):
    bad = []
    for n, tok in held.items():
        r = node.request("GET", "/lock/" + n)
        if r.status != 200 or r.body.get("token") != tok:
            bad.append((n, tok, r))
    assert not bad, "%d of %d acknowledged locks lost or changed, e.g. %r\n%s" % (
        len(bad), len(held), bad[:5], node.log_tail())


class Writer(threading.Thread):
    """Acquires fresh names one after another on fresh connections,
    recording every acknowledged (200) one; any other outcome is unknown."""

    def __init__(self, node, prefix):
        super().__init__(daemon=True)
        self.node = node
        self.prefix = prefix
        self.acked = {}          # name -> token, in ack order
        self.ack_times = []      # monotonic time of each ack
        self.failures = 0
        self.stop_ev = threading.Event()

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            name = "%s%d" % (self.prefix, i)
            i += 1
            try:
                r = self.node.request("POST", "/lock/" + name, timeout=3)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                time.sleep(0.01)
                continue
            if r.status == 200:
                self.acked[name] = r.body["token"]
                self.ack_times.append(time.monotonic())
            else:
                self.failures += 1
                time.sleep(0.01)

    def acks_after(self, t):
        return sum(1 for x in self.ack_times if x > t)

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        assert not self.is_alive()


def post_eventually(node, name, timeout=15):
    def try_post():
        r = node.request("POST", "/lock/" + name, timeout=3)
        return r if r.status == 200 else None
    r = wait_until(try_post, timeout, interval=0.05)
    assert r, "POST /lock/%s never succeeded within %ds\n%s" % (name, timeout, node.log_tail())
    return r


# ---------------------------------------------------------------------------

def test_restart_keeps_every_lock_and_tokens_keep_increasing(node):
    names = ["p%03d" % i for i in range(200)]
    held = acquire_many(node, names)
    assert len(set(held.values())) == 200, "tokens must be distinct"
    max_tok = max(held.values())
    released = names[::10]
    for n in released:
        expect(node, "DELETE", "/lock/" + n, 200)
        del held[n]

    node.restart()
    assert_all_held(node, held)
    for n in released:
        expect(node, "GET", "/lock/" + n, 404)
    expect(node, "POST", "/lock/p001", 409)
    r = expect(node, "POST", "/lock/after-restart-1", 200)
    t1 = r.body["token"]
    assert t1 > max_tok, "token went back after restart: %d <= %d" % (t1, max_tok)

    # a second restart with no write in between: tokens still never repeat
    node.restart()
    assert_all_held(node, held)
    r = expect(node, "POST", "/lock/after-restart-2", 200)
    assert r.body["token"] > t1
    r = expect(node, "GET", "/lock/after-restart-1", 200)
    assert r.body["token"] == t1


def test_kill9_of_whole_group_keeps_acknowledged_locks(node):
    held = acquire_many(node, ["g%03d" % i for i in range(100)])
    w = Writer(node, "gw")
    w.start()
    assert wait_until(lambda: len(w.acked) >= 20, 10), "writer made no progress"
    node.kill9()
    w.finish()
    held.update(w.acked)
    max_tok = max(held.values())
    node.start()
    node.wait_ready()
    assert_all_held(node, held)
    r = expect(node, "POST", "/lock/after-kill9", 200)
    assert r.body["token"] > max_tok


def test_kill9_raft_process_is_restarted_and_loses_nothing(node):
    held = acquire_many(node, ["r%03d" % i for i in range(50)])
    workers_before = node.worker_pids()
    old = node.raft_pid()
    assert old, "no single 'lockd: raft' child: %r" % node.child_pids()

    w = Writer(node, "rw")
    w.start()
    try:
        assert wait_until(lambda: len(w.acked) >= 20, 10), "writer made no progress"
        t_kill = time.monotonic()
        os.kill(old, signal.SIGKILL)
        new = wait_until(lambda: (lambda p: p if p and p != old else None)(node.raft_pid()), 15)
        assert new, "master did not restart the Raft process: %r\n%s" % (
            node.child_pids(), node.log_tail())
        post_eventually(node, "after-raft-kill")
        # the writer gets through again too
        assert wait_until(lambda: w.acks_after(t_kill) >= 10, 15), \
            "writes did not resume after the Raft process restart\n" + node.log_tail()
    finally:
        w.finish()

    held.update(w.acked)
    assert_all_held(node, held)
    toks = list(w.acked.values())
    assert all(a < b for a, b in zip(toks, toks[1:])), "tokens went back across the restart"
    r = expect(node, "POST", "/lock/after-raft-kill-2", 200)
    assert r.body["token"] > max(held.values())
    assert node.raft_pids() == [new]
    # the workers were not disturbed by the Raft process dying
    assert node.worker_pids() == workers_before
    assert node.alive()


def test_kill9_worker_service_keeps_answering_and_is_replaced(node):
    expect(node, "POST", "/lock/k", 200)
    before = node.workers_by_index()
    assert len(before) == 2, node.child_pids()
    raft_before = node.raft_pid()

    probes = []  # (monotonic time, ok)
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            t = time.monotonic()
            try:
                ok = node.request("GET", "/lock/k", timeout=1).status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            probes.append((t, ok))
            time.sleep(0.005)

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    try:
        assert wait_until(lambda: sum(ok for _, ok in probes) >= 10, 5)
        idx, victim = sorted(before.items())[0]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        def replaced():
            now = node.workers_by_index()
            return len(now) == 2 and victim not in now.values()
        assert wait_until(replaced, 10), "no replacement worker: %r\n%s" % (
            node.child_pids(), node.log_tail())
        # writes work again quickly (retry loop)
        post_eventually(node, "after-worker-kill", timeout=5)
        t_end = time.monotonic() + 0.5
        wait_until(lambda: time.monotonic() >= t_end, 1)
    finally:
        stop.set()
        th.join(5)

    oks = [t for t, ok in probes if ok]
    after_kill = [t for t in oks if t > t_kill]
    assert after_kill, "no successful GET after the worker was killed"
    gaps = [b - a for a, b in zip(oks, oks[1:])]
    assert max(gaps) < 3.0, "service stopped answering for %.2fs" % max(gaps)
    # the last probes (with the replacement running) all succeed
    tail = [ok for t, ok in probes if t > t_end - 0.4]
    assert tail and all(tail), "requests still failing after the replacement: %r" % tail[-20:]
    assert node.raft_pid() == raft_before
    assert node.alive()
    expect(node, "GET", "/lock/k", 200)


RAFT_FILE_PREFIXES = ("metadata", "open-", "snapshot-")


def _state_files(root, canary):
    """Files under root that look like lock state: LMDB or Raft files, or any
    file whose bytes contain the canary lock name."""
    found = []
    for dp, _dn, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            try:
                if not stat.S_ISREG(os.lstat(p).st_mode):
                    continue  # sockets, fifos: hold no state
            except OSError:
                continue
            reason = None
            if fn.endswith(".mdb") or fn.startswith(RAFT_FILE_PREFIXES) or (
                    len(fn) == 33 and fn[16] == "-" and fn.replace("-", "").isdigit()):
                reason = "LMDB/Raft file"
            else:
                try:
                    with open(p, "rb") as f:
                        if canary in f.read(64 * 1024 * 1024):
                            reason = "contains the lock name"
                except OSError:
                    pass
            if reason:
                found.append((p, reason))
    return found


def test_memory_store_leaves_nothing_on_disk_and_restarts_empty(node_factory):
    n = node_factory(store="memory")
    canary = "memcanary-Q7zX91"
    r = expect(n, "POST", "/lock/" + canary, 200)
    tok = r.body["token"]
    for i in range(20):
        expect(n, "POST", "/lock/mem%d" % i, 200)
    expect(n, "GET", "/lock/" + canary, 200)
    n.stop()
    left = _state_files(n.data_dir, canary.encode())
    assert not left, "--store memory left lock state on disk: %r" % left
    n.start()
    n.wait_ready()
    expect(n, "GET", "/lock/" + canary, 404)
    expect(n, "GET", "/lock/mem0", 404)
    r = expect(n, "POST", "/lock/" + canary, 200)
    assert r.body["token"] > 0 and tok > 0
    n.stop()
    assert not _state_files(n.data_dir, canary.encode())


def test_db_path_option_is_used_and_persists(node_factory, tmp_path):
    db = tmp_path / "elsewhere" / "locks.db"
    os.makedirs(str(db.parent), exist_ok=True)
    n = node_factory(store="lmdb", extra_args=["--db", str(db)])
    held = acquire_many(n, ["db%02d" % i for i in range(20)])
    assert os.path.exists(str(db)), "--db %s was not created; data dir has %r" % (
        db, sorted(os.listdir(n.data_dir)))
    n.restart()
    assert_all_held(n, held)

