"""Multi-node tests: real 3-node lockd clusters on loopback (API.md: cluster
file, forwarding, 503/504, durability promises; issue 4's test list).

Every cluster uses short Raft timeouts (--election-timeout 300ms
--heartbeat-timeout 50ms), one worker per node and --api-timeout 2s, so a
failover should take well under a second; the bound asserted is 5 s.

Not covered here (not implemented yet): membership changes (add/remove a
node), catch-up of a wiped node by snapshot install, the follower read
freshness bound (a node back from SIGSTOP serving no stale local GETs).
"""

import http.client
import random
import threading
import time

import pytest

from linearizability import ACQUIRE, READ, RELEASE, Op, check
from lockd_helpers import (LockdCluster, Resp, assert_json_object, is_int, try_request,
                           wait_until, write_until_ok)

FAILOVER_BOUND_S = 5.0
API_TIMEOUT_S = 2.0         # --api-timeout given to every node (LockdCluster default)
CATCH_UP_S = 15.0

# measurements printed at the end of the module (run with -s to see them)
MEASURED = {"failover_kill9_s": [], "failover_sigstop_s": [], "linearizability": []}


@pytest.fixture(scope="module", autouse=True)
def _print_measurements():
    yield
    lines = ["", "---- test_cluster measurements ----"]
    for k, v in MEASURED.items():
        if v:
            lines.append("%s: %s" % (k, ", ".join(
                ("%.3f" % x) if isinstance(x, float) else str(x) for x in v)))
    print("\n".join(lines))


@pytest.fixture
def cluster(node_factory):
    c = LockdCluster(node_factory, size=3, workers=1)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


def leader_header(r):
    v = r.headers.get("x-lockd-leader")
    return int(v) if v is not None and v.isdigit() else v


def post(node, name, owner, timeout=5.0):
    return node.request("POST", "/lock/%s?owner=%s" % (name, owner), timeout=timeout)


def consistent_get(node, name, timeout=5.0):
    return node.request("GET", "/lock/%s?consistent=true" % name, timeout=timeout)


def assert_holds(node, name, owner, token, consistent=True):
    r = consistent_get(node, name) if consistent else node.request("GET", "/lock/" + name)
    assert r.status == 200 and r.body.get("owner") == owner and r.body.get("token") == token, (
        "GET /lock/%s%s via %s: want held by %s with token %s, got %r" % (
            name, "?consistent=true" if consistent else "", node.name, owner, token, r))
    return r


def local_shows(node, expected):
    """True when node's local GET (no consistent) shows every name in
    `expected` ({name: (owner, token)}) as held by that owner with that token."""
    for name, (owner, token) in expected.items():
        r = node.request("GET", "/lock/" + name, timeout=2)
        if r.status != 200 or r.body.get("owner") != owner or r.body.get("token") != token:
            return False
    return True


def local_diff(node, expected):
    out = {}
    for name, (owner, token) in expected.items():
        r = try_request(node, "GET", "/lock/" + name)
        if not (isinstance(r, Resp) and r.status == 200 and r.body.get("owner") == owner
                and r.body.get("token") == token):
            out[name] = r
    return out


# ---------------------------------------------------------------------------
# 1. election

def test_three_nodes_elect_one_leader_and_agree(cluster):
    lid = cluster.wait_leader(10)
    # terms settle with the leader's heartbeats
    assert wait_until(lambda: len({(cluster.status(i) or {}).get("term") for i in cluster.ids}) == 1,
                      5), {i: cluster.status(i) for i in cluster.ids}
    roles = {}
    for i in cluster.ids:
        r = cluster[i].request("GET", "/status")
        assert r.status == 200, r
        assert_json_object(r, "GET /status")
        s = r.body
        assert s.get("id") == i, s
        roles[i] = s.get("role")
        assert s.get("role") in ("leader", "follower"), s
        assert s.get("leader") == {"id": lid, "address": cluster.address(lid)}, (i, s)
        assert leader_header(r) == lid, r
        for k in ("term", "commit_index", "applied_index", "locks"):
            assert is_int(s.get(k)), (k, s)
    assert [i for i, role in roles.items() if role == "leader"] == [lid], roles
    # /readyz on every node: leader known
    for i in cluster.ids:
        r = cluster[i].request("GET", "/readyz")
        assert r.status == 200 and leader_header(r) == lid, (i, r)


def members_of(status):
    """{id: http address} from /status "members", accepting a list of
    objects ({"id","address"|"http",...}) or an object keyed by id."""
    m = status.get("members")
    out = {}
    if isinstance(m, list):
        for e in m:
            if isinstance(e, dict) and "id" in e:
                out[int(e["id"])] = e.get("address") or e.get("http")
    elif isinstance(m, dict):
        for k, v in m.items():
            out[int(k)] = v if isinstance(v, str) else (v or {}).get("address") or (v or {}).get("http")
    return out


def test_status_lists_every_member_with_its_address(cluster):
    """API.md, GET /status: "members with their addresses" (issue 4, item 8:
    every member with its state)."""
    cluster.wait_leader(10)
    want = {i: cluster.address(i) for i in cluster.ids}
    for i in cluster.ids:
        s = cluster.status(i)
        assert members_of(s) == want, "node %d /status members: want %r, got %r" % (i, want, s)


# ---------------------------------------------------------------------------
# 2. any node serves the whole API

def test_writes_via_every_node_are_forwarded_and_seen_everywhere(cluster):
    lid = cluster.wait_leader(10)
    followers = cluster.followers(lid)
    order = [followers[0], lid, followers[1]]
    tokens = []
    taken = {}
    for i in order:
        name, owner = "via-%d" % i, "owner-%d" % i
        r = post(cluster[i], name, owner)
        assert r.status == 200, "POST via node %d (leader %d): %r" % (i, lid, r)
        assert leader_header(r) == lid, "POST via node %d: X-Lockd-Leader %r, leader is %d" % (
            i, r.headers.get("x-lockd-leader"), lid)
        assert r.body.get("owner") == owner and r.body.get("locked") is True, r
        assert is_int(r.body.get("token")) and r.headers.get("x-lockd-token") == str(r.body["token"]), r
        tokens.append(r.body["token"])
        taken[name] = (owner, r.body["token"])
    assert tokens == sorted(tokens) and len(set(tokens)) == 3, tokens

    # a lock taken via A is seen via B and C (linearizable read)
    for name, (owner, token) in taken.items():
        for i in cluster.ids:
            r = assert_holds(cluster[i], name, owner, token)
            assert leader_header(r) == lid, r
    # ... and local reads catch up on every node
    for i in cluster.ids:
        assert wait_until(lambda: local_shows(cluster[i], taken), 5), (
            "node %d local GETs never showed %r: %r" % (i, taken, local_diff(cluster[i], taken)))
        r = cluster[i].request("GET", "/lock/via-%d" % lid)
        assert r.headers.get("x-lockd-applied-index", "").isdigit(), r

    f1, f2 = followers
    name = "via-%d" % lid               # taken via the leader
    owner, token = taken[name]
    # owner conflict via a follower: 409 naming the holder
    r = post(cluster[f1], name, "intruder")
    assert r.status == 409, r
    assert r.body.get("error") == "Lock conflict" and r.body.get("owner") == owner, r
    assert leader_header(r) == lid, r
    # renew via the other follower: same token
    r = post(cluster[f2], name, owner)
    assert r.status == 200 and r.body.get("token") == token, r
    # DELETE by another owner via a follower: 409
    r = cluster[f1].request("DELETE", "/lock/%s?owner=intruder" % name)
    assert r.status == 409 and r.body.get("owner") == owner, r
    # DELETE by the holder via a follower: 200, gone everywhere
    r = cluster[f2].request("DELETE", "/lock/%s?owner=%s" % (name, owner))
    assert r.status == 200 and r.body == {"name": name, "locked": False}, r
    assert leader_header(r) == lid, r
    for i in cluster.ids:
        r = consistent_get(cluster[i], name)
        assert r.status == 404 and r.body.get("locked") is False, (i, r)
    # DELETE again via the other follower: 404
    r = cluster[f1].request("DELETE", "/lock/%s?owner=%s" % (name, owner))
    assert r.status == 404, r
    # a new holder via a follower gets a larger token
    r = post(cluster[f1], name, "second")
    assert r.status == 200 and r.body["token"] > max(tokens), (tokens, r)
    # list on a follower shows the replicated locks
    want = set(taken) | {name}
    assert wait_until(lambda: want <= {l["name"] for l in cluster[f2].request(
        "GET", "/locks?prefix=via-").body["locks"]}, 5), cluster[f2].request("GET", "/locks")


# ---------------------------------------------------------------------------
# 3. kill -9 of the leader

def test_kill9_leader_new_leader_keeps_acknowledged_locks_and_restarted_node_catches_up(cluster):
    acked = {}                      # name -> (owner, token), every 200 so far
    for trial in range(2):
        lid = cluster.wait_leader(10)
        nodes = [cluster[i] for i in cluster.ids]
        for j in range(12):
            name, owner = "k%d-%d" % (trial, j), "o%d" % (j % 3)
            r = post(nodes[j % 3], name, owner)
            assert r.status == 200, r
            acked[name] = (owner, r.body["token"])
        max_before = max(t for _o, t in acked.values())

        t0 = time.monotonic()
        cluster.kill9(lid)
        survivors = cluster.followers(lid)
        r, tries = write_until_ok([cluster[i] for i in survivors], "POST",
                                  "/lock/after-%d?owner=w" % trial, 3 * FAILOVER_BOUND_S,
                                  per_request=0.3)
        took = time.monotonic() - t0
        MEASURED["failover_kill9_s"].append(took)
        assert r is not None, "no write succeeded within %.0f s of kill -9 of leader %d; " \
            "last answers %r\n%s" % (3 * FAILOVER_BOUND_S, lid, tries[-4:], cluster.log_tails())
        assert took <= FAILOVER_BOUND_S, "failover took %.2f s (bound %.0f s); answers meanwhile %r" % (
            took, FAILOVER_BOUND_S, tries[-4:])
        new = cluster.wait_leader(10, among=survivors)
        assert new != lid and leader_header(r) == new, (lid, new, r)
        # answers while there was no leader: 503 with Retry-After, or 504
        for _name, a in tries:
            if isinstance(a, Resp):
                assert a.status in (503, 504), a
                if a.status == 503:
                    assert a.headers.get("retry-after"), a
                    assert_json_object(a, "503 during failover")
                else:
                    assert a.body.get("outcome") == "unknown", a
        # tokens after failover are larger than every token before
        assert r.body["token"] > max_before, (max_before, r)
        acked["after-%d" % trial] = ("w", r.body["token"])
        # every acknowledged lock survived, seen through both survivors
        for i in survivors:
            for name, (owner, token) in acked.items():
                assert_holds(cluster[i], name, owner, token)
        # writes while the old leader is down
        for j in range(6):
            name = "down%d-%d" % (trial, j)
            r = post(cluster[survivors[j % 2]], name, "d")
            assert r.status == 200 and r.body["token"] > max_before, r
            acked[name] = ("d", r.body["token"])
        # restart it: it catches up (local reads), and serves consistent reads
        cluster.restart(lid, wait=True)
        assert wait_until(lambda: local_shows(cluster[lid], acked), CATCH_UP_S), (
            "restarted node %d did not catch up within %.0f s: %r" % (
                lid, CATCH_UP_S, dict(list(local_diff(cluster[lid], acked).items())[:5])))
        for name in ("k%d-0" % trial, "down%d-5" % trial):
            assert_holds(cluster[lid], name, *acked[name])
        cluster.wait_leader(10)       # all three agree again


# ---------------------------------------------------------------------------
# 4. SIGSTOP of a follower, then of the leader

def test_sigstop_follower_then_leader(cluster):
    lid = cluster.wait_leader(10)
    f, other = cluster.followers(lid)
    written = {}

    # a stopped follower: the majority keeps serving writes, via both nodes
    cluster.sigstop(f)
    for j in range(6):
        via = cluster[lid] if j % 2 == 0 else cluster[other]
        r, tries = write_until_ok([via], "POST", "/lock/sf-%d?owner=a" % j, FAILOVER_BOUND_S)
        assert r is not None, "write via %s with follower %d stopped: %r" % (via.name, f, tries[-3:])
        assert leader_header(r) == lid, r
        written["sf-%d" % j] = ("a", r.body["token"])
    cluster.sigcont(f)
    assert wait_until(lambda: local_shows(cluster[f], written), CATCH_UP_S), (
        "follower %d did not catch up after SIGCONT: %r" % (f, local_diff(cluster[f], written)))
    assert cluster.wait_leader(10) == lid

    # a stopped leader: the two others elect a new one and serve writes
    t0 = time.monotonic()
    cluster.sigstop(lid)
    others = cluster.followers(lid)
    r, tries = write_until_ok([cluster[i] for i in others], "POST", "/lock/sl-0?owner=b",
                              3 * FAILOVER_BOUND_S, per_request=0.3)
    took = time.monotonic() - t0
    MEASURED["failover_sigstop_s"].append(took)
    assert r is not None, "no write within %.0f s of SIGSTOP of leader %d: %r" % (
        3 * FAILOVER_BOUND_S, lid, tries[-4:])
    assert took <= FAILOVER_BOUND_S, "failover after SIGSTOP took %.2f s: %r" % (took, tries[-4:])
    new = cluster.wait_leader(10, among=others)
    assert new != lid and leader_header(r) == new, (lid, new, r)
    written["sl-0"] = ("b", r.body["token"])
    for j, i in enumerate(others * 2):
        r = post(cluster[i], "sl-%d" % (j + 1), "b")
        assert r.status == 200 and leader_header(r) == new, r
        written["sl-%d" % (j + 1)] = ("b", r.body["token"])

    # the old leader comes back: it steps down and forwards writes
    cluster.sigcont(lid)

    def stepped_down():
        s = cluster.status(lid)
        return s is not None and s.get("role") == "follower" and (s.get("leader") or {}).get("id") == new
    assert wait_until(stepped_down, 10), "old leader %d did not step down: %r" % (lid, cluster.status(lid))
    r = post(cluster[lid], "via-old-leader", "c")
    assert r.status == 200 and leader_header(r) == new, r
    written["via-old-leader"] = ("c", r.body["token"])
    assert cluster.wait_leader(10) == new
    for name, (owner, token) in written.items():
        assert_holds(cluster[lid], name, owner, token)
    assert wait_until(lambda: local_shows(cluster[lid], written), CATCH_UP_S), \
        local_diff(cluster[lid], written)


def test_write_in_flight_when_leader_stops_is_answered_within_api_timeout(cluster):
    """A write forwarded to a leader that stops answering must not hang past
    the API timeout (API.md: 504 when consensus did not answer within it;
    issue 4: losing the leader costs about two election timeouts of writes)."""
    lid = cluster.wait_leader(10)
    f = cluster.followers(lid)[0]
    cluster.sigstop(lid)
    t0 = time.monotonic()
    r = try_request(cluster[f], "POST", "/lock/inflight?owner=x", timeout=10)
    took = time.monotonic() - t0
    new = cluster.wait_leader(10, among=cluster.followers(lid))
    assert isinstance(r, Resp) and r.status in (200, 503, 504), r
    if r.status == 504:
        assert r.body.get("outcome") == "unknown", r
    assert took <= API_TIMEOUT_S + 0.5, (
        "POST via follower %d while leader %d is stopped: answered after %.2f s (API timeout "
        "%.0f s; new leader %d elected meanwhile): %r" % (f, lid, took, API_TIMEOUT_S, new, r))


def test_ttl_lock_is_not_freed_early_by_failover_and_expires_after(cluster):
    """API.md: a lock with a TTL is never released before its TTL has run
    since its last 200; after a leader change the new leader restarts the
    full TTL count (so it does expire, at the latest a TTL after failover)."""
    ttl = 3.0
    lid = cluster.wait_leader(10)
    f = cluster.followers(lid)[0]
    r = cluster[f].request("POST", "/lock/lease?owner=t&ttl=3s")
    t_ack = time.monotonic()
    assert r.status == 200 and r.body.get("ttl_ms") == 3000, r
    token = r.body["token"]
    cluster.kill9(lid)
    survivors = [cluster[i] for i in cluster.followers(lid)]
    w, tries = write_until_ok(survivors, "POST", "/lock/ttl-failover?owner=w", FAILOVER_BOUND_S,
                              per_request=0.3)
    assert w is not None, tries[-4:]
    t_failover = time.monotonic()
    # held until the TTL has run since the 200 (poll linearizable reads)
    reads = 0
    while time.monotonic() < t_ack + ttl - 0.3:
        for n in survivors:
            g = try_request(n, "GET", "/lock/lease?consistent=true", timeout=1)
            if isinstance(g, Resp) and g.status in (200, 404):
                assert g.status == 200 and g.body.get("owner") == "t" and \
                    g.body.get("token") == token, (
                        "lease freed %.2f s after its 200 (TTL %.0f s, failover at %.2f s): %r" % (
                            time.monotonic() - t_ack, ttl, t_failover - t_ack, g))
                reads += 1
        time.sleep(0.05)
    assert reads > 0
    # ... and it does expire: a full TTL after the new leader took over, plus slack
    gone = wait_until(lambda: all(consistent_get(n, "lease", timeout=1).status == 404
                                  for n in survivors),
                      max(0.1, t_failover + ttl + 2.0 - time.monotonic()), interval=0.05)
    assert gone, "lease never expired after failover: %r" % consistent_get(survivors[0], "lease")


# ---------------------------------------------------------------------------
# 5. linearizability under faults

NOT_APPLIED_503 = ("No leader", "Leader unreachable")


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []            # Op, for the checker
        self.not_applied = 0     # 503 No leader / connection refused
        self.dropped_reads = 0
        self.anomalies = []      # answers outside the contract
        self.counts = {}

    def add(self, op):
        with self.lock:
            self.ops.append(op)
            key = (op.kind, "unknown" if op.unknown else op.status)
            self.counts[key] = self.counts.get(key, 0) + 1


def run_op(cluster, rec, client, kind, name, owner, nid):
    node = cluster[nid]
    if kind == ACQUIRE:
        method, path = "POST", "/lock/%s?owner=%s" % (name, owner)
    elif kind == RELEASE:
        method, path = "DELETE", "/lock/%s?owner=%s" % (name, owner)
    else:
        method, path, owner = "GET", "/lock/%s?consistent=true" % name, None
    t0 = time.monotonic()
    err = None
    r = None
    try:
        r = node.request(method, path, timeout=3.0)
    except ConnectionRefusedError:
        # nothing was sent: the operation did not happen
        with rec.lock:
            rec.not_applied += 1
        time.sleep(0.02)    # client pacing while the node is down
        return
    except (OSError, http.client.HTTPException) as e:
        err = e
    t1 = time.monotonic()
    common = dict(kind=kind, name=name, owner=owner, invoke=t0, client=client, node=nid)
    if r is not None and r.status == 503 and isinstance(r.body, dict) \
            and r.body.get("error") in NOT_APPLIED_503:
        with rec.lock:
            rec.not_applied += 1
        time.sleep(0.02)    # client pacing while there is no leader
        return
    expected = {ACQUIRE: (200, 409), RELEASE: (200, 404, 409), READ: (200, 404)}[kind]
    if r is None or r.status not in expected:
        if r is not None and r.status not in (503, 504):
            with rec.lock:
                rec.anomalies.append((client, method, path, nid, r))
        if kind == READ:
            with rec.lock:
                rec.dropped_reads += 1
            return
        rec.add(Op(note=repr(err) if err is not None else "%d %r" % (r.status, r.body), **common))
        return
    b = r.body if isinstance(r.body, dict) else {}
    holder = b.get("owner") if r.status in (200, 409) else None
    token = b.get("token") if r.status == 200 and kind != RELEASE else None
    rec.add(Op(complete=t1, status=r.status, holder=holder, token=token, **common))


def test_linearizable_history_under_kill9_and_sigstop(cluster):
    seed = random.randrange(1 << 30)
    print("linearizability seed %d" % seed)
    rnd = random.Random(seed)
    names = ["lin-a", "lin-b", "lin-c"]
    owners = ["c1", "c2", "c3", "c4"]
    run_for = 10.0
    rec = Recorder()
    stop = threading.Event()
    errors = []
    faults = []

    def client(idx):
        crnd = random.Random(seed + idx + 1)
        owner = owners[idx]
        try:
            while not stop.is_set():
                kind = crnd.choice([ACQUIRE, ACQUIRE, RELEASE, RELEASE, READ])
                run_op(cluster, rec, owner, kind, crnd.choice(names), owner,
                       crnd.choice(cluster.ids))
        except Exception as e:  # noqa: BLE001 - reported in the main thread
            errors.append(("client %s" % owner, repr(e)))

    def fault_thread():
        plan = ["kill_leader", "stop_follower", "stop_leader", "kill_random", "stop_random"]
        try:
            stop.wait(1.0)
            for what in plan:
                if stop.is_set():
                    return
                lid = cluster.agreed_leader()
                if what.endswith("leader") and lid is not None:
                    victim = lid
                elif what.endswith("follower") and lid is not None:
                    victim = rnd.choice(cluster.followers(lid))
                else:
                    victim = rnd.choice(cluster.ids)
                t = time.monotonic()
                if what.startswith("kill"):
                    cluster.kill9(victim)
                    stop.wait(rnd.uniform(0.6, 1.2))
                    cluster.restart(victim, wait=False)
                else:
                    cluster.sigstop(victim)
                    stop.wait(rnd.uniform(0.6, 1.2))
                    cluster.sigcont(victim)
                faults.append("%s:%d%s at %.1fs for %.1fs" % (
                    what.split("_")[0], victim, "(leader)" if victim == lid else "",
                    t - start, time.monotonic() - t))
                # let it rejoin before the next fault (a majority stays up)
                wait_until(lambda: cluster.agreed_leader() is not None, 8)
                stop.wait(rnd.uniform(0.3, 0.8))
        except Exception as e:  # noqa: BLE001
            errors.append(("fault thread", repr(e)))

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(len(owners))]
    ft = threading.Thread(target=fault_thread, daemon=True)
    for t in threads:
        t.start()
    ft.start()
    stop.wait(run_for)
    stop.set()
    ft.join(15)
    for t in threads:
        t.join(10)
    assert not ft.is_alive() and not any(t.is_alive() for t in threads), "threads hang"
    assert not errors, errors

    # everything back up: every node running, a leader all agree on
    for i in list(cluster.stopped):
        cluster.sigcont(i)
    for i in cluster.ids:
        if not cluster[i].alive():
            cluster.restart(i, wait=False)
    for i in cluster.ids:
        cluster[i].wait_ready(20)
    cluster.wait_leader(10)

    # final linearizable reads via every node join the history
    for name in names:
        for i in cluster.ids:
            run_op(cluster, rec, "final", READ, name, None, i)
    # and every node's local table converges to the same answer
    def converged():
        seen = set()
        for name in names:
            for i in cluster.ids:
                r = cluster[i].request("GET", "/lock/" + name, timeout=2)
                seen.add((name, r.status, r.body.get("owner"), r.body.get("token")))
        return len(seen) == len(names)
    assert wait_until(converged, CATCH_UP_S), "local reads differ between nodes"

    t_check = time.monotonic()
    ok, results = check(rec.ops)
    check_s = time.monotonic() - t_check
    known = sum(r.ops for r in results)
    unknown = sum(r.unknown for r in results)
    summary = ("%d ops checked (%d with known outcome, %d unknown), %d not applied (503 No "
               "leader / refused), %d reads dropped; faults %r; per kind/status %r; "
               "check %.2f s; seed %d" % (known + unknown, known, unknown, rec.not_applied,
                                          rec.dropped_reads, faults, sorted(rec.counts.items(), key=str),
                                          check_s, seed))
    MEASURED["linearizability"].append(summary)
    print(summary)
    assert ok, "history is not linearizable: %s\n%s" % (
        summary, "\n".join(repr(r) for r in results if not r.ok))
    assert not rec.anomalies, "answers outside the contract: %r" % rec.anomalies[:10]
    assert len(faults) >= 3, faults
    succeeded = sum(v for (k, s), v in rec.counts.items() if s == 200)
    assert succeeded >= 100, "too few successful operations: %r" % rec.counts
