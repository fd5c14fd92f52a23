"""Mutual exclusion under contention: 64 clients racing for the same 10 names
never see two holders of one name at once, and fencing tokens strictly
increase."""

import bisect
import http.client
import random
import threading
import time

from lockd_helpers import conn_request, expect

N_THREADS = 64
N_NAMES = 10
RUN_SECONDS = 3.0


def test_64_clients_racing_for_10_names_at_most_one_holder(node):
    names = ["race%d" % i for i in range(N_NAMES)]
    guards = [threading.Lock() for _ in names]
    holder = [None] * N_NAMES          # thread id that believes it holds the name
    acq_by_name = [[] for _ in names]  # tokens in the order holders took them
    records = []                       # (t_send, t_recv, token, name index, tid)
    violations = []
    errors = []
    counts = {"ok": 0, "conflict": 0}
    rec_lock = threading.Lock()
    start_barrier = threading.Barrier(N_THREADS)
    deadline = [0.0]

    def client(tid):
        rnd = random.Random(tid)
        conn = node.connection(timeout=10)
        try:
            start_barrier.wait(10)
            while time.monotonic() < deadline[0]:
                i = rnd.randrange(N_NAMES)
                path = "/lock/" + names[i]
                t_send = time.monotonic()
                try:
                    r = conn_request(conn, "POST", path)
                except (OSError, http.client.HTTPException) as e:
                    errors.append(("POST", names[i], repr(e)))
                    conn.close()
                    conn = node.connection(timeout=10)
                    continue
                t_recv = time.monotonic()
                if r.status == 409:
                    with rec_lock:
                        counts["conflict"] += 1
                    continue
                if r.status != 200:
                    errors.append(("POST", names[i], r))
                    continue
                tok = r.body.get("token")
                with guards[i]:
                    if holder[i] is not None:
                        violations.append("thread %d got 200 (token %r) for %s while thread %r "
                                          "holds it" % (tid, tok, names[i], holder[i]))
                    holder[i] = tid
                    acq_by_name[i].append(tok)
                with rec_lock:
                    records.append((t_send, t_recv, tok, i, tid))
                    counts["ok"] += 1
                if rnd.random() < 0.5:
                    time.sleep(rnd.random() * 0.002)
                # release: clear our claim first, then tell the server
                with guards[i]:
                    if holder[i] != tid:
                        violations.append("thread %d's hold on %s was taken by %r"
                                          % (tid, names[i], holder[i]))
                    else:
                        holder[i] = None
                try:
                    d = conn_request(conn, "DELETE", path)
                except (OSError, http.client.HTTPException) as e:
                    errors.append(("DELETE", names[i], repr(e)))
                    conn.close()
                    conn = node.connection(timeout=10)
                    continue
                if d.status != 200:
                    violations.append("holder %d's DELETE of %s answered %r" % (tid, names[i], d))
        finally:
            conn.close()

    deadline[0] = time.monotonic() + RUN_SECONDS + 1.0  # + barrier slack
    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "client threads hung"

    assert not violations, "%d mutual-exclusion violations, e.g.:\n%s" % (
        len(violations), "\n".join(violations[:10]))
    assert not errors, "%d failed requests, e.g. %r\n%s" % (len(errors), errors[:5], node.log_tail())
    assert counts["ok"] >= 50, counts
    assert counts["conflict"] > 0, counts  # it really was contended

    # every token is an int, all distinct
    toks = [r[2] for r in records]
    assert all(isinstance(t, int) and not isinstance(t, bool) for t in toks)
    assert len(set(toks)) == len(toks), "duplicate fencing tokens"

    # per name, successive holders got strictly increasing tokens
    for i, seq in enumerate(acq_by_name):
        assert all(a < b for a, b in zip(seq, seq[1:])), (names[i], seq)

    # across names: an acquisition that started after another one's 200 was
    # received must carry a larger token (tokens follow apply order)
    by_recv = sorted(records, key=lambda r: r[1])
    recv_times = [r[1] for r in by_recv]
    prefix_max = []
    m = -1
    for r in by_recv:
        m = max(m, r[2])
        prefix_max.append(m)
    bad = []
    for r in records:
        k = bisect.bisect_left(recv_times, r[0])  # records received before r was sent
        if k > 0 and prefix_max[k - 1] >= r[2]:
            bad.append(r)
    assert not bad, "%d acquisitions got a token not above an earlier, completed one: %r" % (
        len(bad), bad[:5])

    for n in names:
        expect(node, "GET", "/lock/" + n, 404)


def test_simultaneous_posts_on_one_name_exactly_one_wins(node):
    for rnd in range(5):
        name = "one%d" % rnd
        conns = [node.connection(timeout=10) for _ in range(N_THREADS)]
        for c in conns:
            c.connect()
        barrier = threading.Barrier(N_THREADS)
        results = [None] * N_THREADS

        def run(k):
            try:
                barrier.wait(10)
                results[k] = conn_request(conns[k], "POST", "/lock/" + name).status
            except Exception as e:  # noqa: BLE001 - reported below
                results[k] = repr(e)

        ts = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(N_THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
        for c in conns:
            c.close()
        assert results.count(200) == 1, results
        assert results.count(409) == N_THREADS - 1, results
        expect(node, "GET", "/lock/" + name, 200)
        expect(node, "DELETE", "/lock/" + name, 200)
