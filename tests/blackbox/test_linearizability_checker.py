"""Unit tests of linearizability.py (the lock-model checker used by
test_cluster.py): known-good histories must be accepted, known-bad ones
rejected, and on small random histories the search must agree with a
brute-force enumeration of every order."""

import itertools
import random
import time

import pytest

from linearizability import ACQUIRE, READ, RELEASE, Op, check, check_name


def acq(owner, t0, t1, status, token=None, holder=None, name="x"):
    return Op(ACQUIRE, name, owner, t0, t1, status, holder=holder, token=token)


def rel(owner, t0, t1, status, holder=None, name="x"):
    return Op(RELEASE, name, owner, t0, t1, status, holder=holder)


def read(t0, t1, status, holder=None, token=None, name="x"):
    return Op(READ, name, None, t0, t1, status, holder=holder, token=token)


def unknown(kind, owner, t0, name="x"):
    return Op(kind, name, owner, t0, None, None)


def ok(ops):
    r = check_name(ops, "x")
    assert r.ok, r
    return r


def bad(ops):
    r = check_name(ops, "x")
    assert not r.ok and not r.budget_exceeded, r
    assert "not linearizable" in r.message
    return r


# ---- known-good ---------------------------------------------------------

def test_empty_and_sequential():
    ok([])
    ok([
        read(0, 1, 404),
        acq("a", 2, 3, 200, token=1),
        read(4, 5, 200, holder="a", token=1),
        acq("a", 6, 7, 200, token=1),          # renew: same token
        acq("b", 8, 9, 409, holder="a"),
        rel("b", 10, 11, 409, holder="a"),
        rel("a", 12, 13, 200),
        rel("a", 14, 15, 404),
        read(16, 17, 404),
        acq("b", 18, 19, 200, token=2),
        read(20, 21, 200, holder="b", token=2),
    ])


def test_concurrent_acquires_one_wins():
    # a and b race; b's answer came back first but a's op linearizes first
    ok([
        acq("a", 0, 10, 200, token=1),
        acq("b", 1, 5, 409, holder="a"),
        read(11, 12, 200, holder="a", token=1),
    ])
    # the winner may be the one invoked last
    ok([
        acq("a", 0, 10, 409, holder="b"),
        acq("b", 1, 5, 200, token=1),
        read(6, 7, 200, holder="b", token=1),
    ])


def test_read_concurrent_with_release_may_see_either():
    base = [acq("a", 0, 1, 200, token=1), rel("a", 2, 10, 200)]
    ok(base + [read(3, 4, 200, holder="a", token=1)])
    ok(base + [read(3, 4, 404)])
    ok(base + [read(3, 4, 404), read(5, 6, 404)])


def test_unknown_acquire_may_have_happened():
    # the unknown acquire took effect: b's 409 names a as the holder
    ok([
        unknown(ACQUIRE, "a", 0),
        acq("b", 5, 6, 409, holder="a"),
        read(7, 8, 200, holder="a", token=3),
        rel("a", 9, 10, 200),
        acq("b", 11, 12, 200, token=4),
    ])


def test_unknown_acquire_may_never_happen():
    ok([
        unknown(ACQUIRE, "a", 0),
        read(5, 6, 404),
        acq("b", 7, 8, 200, token=2),
        read(9, 10, 200, holder="b", token=2),
    ])


def test_unknown_acquire_takes_effect_late():
    # pending op linearized long after it was invoked, after b released
    ok([
        unknown(ACQUIRE, "a", 0),
        acq("b", 1, 2, 200, token=1),
        rel("b", 3, 4, 200),
        read(5, 6, 404),
        read(7, 8, 200, holder="a", token=2),
    ])


def test_unknown_release():
    ok([
        acq("a", 0, 1, 200, token=1),
        unknown(RELEASE, "a", 2),
        read(3, 4, 200, holder="a", token=1),
        read(5, 6, 404),
        acq("b", 7, 8, 200, token=2),
    ])


def test_unknown_reads_are_ignored():
    ok([acq("a", 0, 1, 200, token=1), unknown(READ, None, 2), read(3, 4, 200, holder="a")])


def test_many_interchangeable_unknown_ops_stay_cheap():
    ops = []
    t = 0.0
    for i in range(40):
        ops.append(unknown(ACQUIRE, "a", t))
        ops.append(unknown(RELEASE, "a", t + 0.1))
        ops.append(unknown(ACQUIRE, "b", t + 0.2))
        ops.append(unknown(RELEASE, "b", t + 0.3))
        t += 1
    # flips between free and held by a or b many times, all explained by
    # the unknown ops
    for i in range(40):
        ops.append(read(t, t + 0.5, 200, holder="a" if i % 3 == 0 else "b"))
        ops.append(read(t + 1, t + 1.5, 404) if i % 3 != 1 else read(t + 1, t + 1.5, 200, holder="b"))
        t += 2
    t0 = time.monotonic()
    r = ok(ops)
    assert time.monotonic() - t0 < 5 and r.states < 100000, r


def test_whole_history_per_name():
    h = [
        acq("a", 0, 1, 200, token=1, name="x"),
        acq("a", 0, 1, 200, token=2, name="y"),
        read(2, 3, 200, holder="a", token=1, name="x"),
        read(2, 3, 200, holder="a", token=2, name="y"),
    ]
    good, results = check([{"kind": o.kind, "name": o.name, "owner": o.owner, "invoke": o.invoke,
                            "complete": o.complete, "status": o.status, "holder": o.holder,
                            "token": o.token} for o in h])
    assert good and len(results) == 2, results
    h.append(read(4, 5, 404, name="y"))
    good, results = check(h)
    assert not good
    assert [r.ok for r in results] == [True, False]


# ---- known-bad ----------------------------------------------------------

def test_two_concurrent_holders():
    bad([
        acq("a", 0, 5, 200, token=1),
        acq("b", 1, 6, 200, token=2),
    ])
    # even with reads in between that see each one
    bad([
        acq("a", 0, 1, 200, token=1),
        acq("b", 2, 3, 200, token=2),
        rel("a", 4, 5, 200),
    ])


def test_read_sees_lock_after_release_completed():
    bad([
        acq("a", 0, 1, 200, token=1),
        rel("a", 2, 3, 200),
        read(4, 5, 200, holder="a", token=1),
    ])


def test_404_read_while_held_throughout():
    bad([
        acq("a", 0, 1, 200, token=1),
        read(2, 3, 404),
        rel("a", 4, 5, 200),
    ])


def test_stale_read_after_newer_holder():
    bad([
        acq("a", 0, 1, 200, token=1),
        rel("a", 2, 3, 200),
        acq("b", 4, 5, 200, token=2),
        read(6, 7, 200, holder="a", token=1),
    ])


def test_wrong_token_or_holder():
    bad([acq("a", 0, 1, 200, token=1), read(2, 3, 200, holder="a", token=7)])
    bad([acq("a", 0, 1, 200, token=1), acq("a", 2, 3, 200, token=2)])   # renew changed token
    bad([acq("a", 0, 1, 200, token=1), acq("b", 2, 3, 409, holder="c")])
    bad([acq("a", 0, 1, 200, token=1), read(2, 3, 200, holder="b")])


def test_bad_release_results():
    bad([rel("a", 0, 1, 200)])                                   # released a free lock
    bad([acq("a", 0, 1, 200, token=1), rel("a", 2, 3, 404)])     # holder told it is free
    bad([acq("a", 0, 1, 200, token=1), rel("b", 2, 3, 200)])     # non-holder released


def test_unknown_op_cannot_act_before_its_invocation():
    bad([
        read(0, 1, 200, holder="a"),
        unknown(ACQUIRE, "a", 2),
    ])


def test_unknown_acquire_cannot_explain_two_holders():
    bad([
        unknown(ACQUIRE, "a", 0),
        acq("b", 1, 2, 200, token=1),
        read(3, 4, 200, holder="a"),
    ])


def test_one_unknown_op_is_used_at_most_once():
    # one unknown acquire by a; a is seen holding twice with a release in
    # between: needs two acquires
    bad([
        unknown(ACQUIRE, "a", 0),
        read(1, 2, 200, holder="a"),
        rel("a", 3, 4, 200),
        read(5, 6, 200, holder="a"),
    ])
    # with a second unknown acquire it is fine
    ok([
        unknown(ACQUIRE, "a", 0),
        read(1, 2, 200, holder="a"),
        rel("a", 3, 4, 200),
        unknown(ACQUIRE, "a", 4.5),
        read(5, 6, 200, holder="a"),
    ])


def test_error_message_names_the_op():
    r = bad([acq("a", 0, 1, 200, token=1), rel("a", 2, 3, 200), read(4, 5, 200, holder="a")])
    assert "read x" in r.message, r.message


def test_bad_input():
    with pytest.raises(ValueError):
        Op("lock", "x", "a", 0, 1, 200)
    with pytest.raises(ValueError):
        Op(ACQUIRE, "x", "a", 2, 1, 200)


# ---- cross-check against brute force -------------------------------------

def brute_force(ops):
    """True iff some order of all known ops plus a subset of the unknown
    ones respects real time and is legal in the model."""
    from linearizability import step

    ops = [o for o in ops if not (o.unknown and o.kind == READ)]
    known = [o for o in ops if not o.unknown]
    unk = [o for o in ops if o.unknown]

    def before(a, b):   # a must precede b
        return a.complete is not None and a.complete < b.invoke

    def legal(seq):
        for i, a in enumerate(seq):
            for b in seq[:i]:
                if before(a, b):
                    return False
        state = None
        for o in seq:
            if o.unknown:
                if o.kind == ACQUIRE and state is None:
                    state = (o.owner, None)
                elif o.kind == RELEASE and state is not None and state[0] == o.owner:
                    state = None
                continue
            good, state = step(state, o)
            if not good:
                return False
        return True

    for k in range(len(unk) + 1):
        for sub in itertools.combinations(unk, k):
            for perm in itertools.permutations(known + list(sub)):
                if legal(perm):
                    return True
    return False


def random_history(rnd, n):
    owners = ["a", "b"]
    ops = []
    for _ in range(n):
        t0 = rnd.randrange(0, 10)
        kind = rnd.choice([ACQUIRE, ACQUIRE, RELEASE, READ])
        owner = rnd.choice(owners) if kind != READ else None
        if rnd.random() < 0.2 and kind != READ:
            ops.append(Op(kind, "x", owner, t0, None, None))
            continue
        t1 = t0 + rnd.randrange(1, 5)
        if kind == ACQUIRE:
            st = rnd.choice([200, 200, 409])
            ops.append(Op(kind, "x", owner, t0, t1, st,
                          holder=rnd.choice(owners) if st == 409 else None,
                          token=rnd.choice([1, 2]) if st == 200 else None))
        elif kind == RELEASE:
            st = rnd.choice([200, 404, 409])
            ops.append(Op(kind, "x", owner, t0, t1, st,
                          holder=rnd.choice(owners) if st == 409 else None))
        else:
            st = rnd.choice([200, 404])
            ops.append(Op(kind, "x", None, t0, t1, st,
                          holder=rnd.choice(owners) if st == 200 else None,
                          token=rnd.choice([1, 2]) if st == 200 else None))
    return ops


def test_agrees_with_brute_force_on_random_small_histories():
    rnd = random.Random(4242)
    seen = {True: 0, False: 0}
    for i in range(2500):
        ops = random_history(rnd, rnd.randrange(1, 7))
        want = brute_force(ops)
        got = check_name(ops, "x")
        assert not got.budget_exceeded
        assert got.ok == want, "history %d: checker says %r, brute force %r:\n%s" % (
            i, got.ok, want, "\n".join(o.describe() for o in ops))
        seen[want] += 1
    assert seen[True] > 100 and seen[False] > 100, seen


def simulate(rnd, clients=4, ops_per_client=150, unknown_p=0.05, overlap=True):
    """A history produced by a real (sequential) lock executing operations
    at random points inside their [invoke, complete] windows."""
    pending = []
    t = 0.0
    for c in range(clients):
        tc = rnd.random()
        for _ in range(ops_per_client):
            dur = rnd.uniform(0.1, 3.0) if overlap else 0.1
            kind = rnd.choice([ACQUIRE, RELEASE, READ])
            lp = tc + rnd.uniform(0, dur)
            pending.append((lp, tc, tc + dur, kind, "c%d" % c, rnd.random() < unknown_p))
            tc += dur + rnd.uniform(0, 0.5)
            t = max(t, tc)
    pending.sort()
    state = None
    next_tok = 1
    ops = []
    for lp, t0, t1, kind, owner, unk in pending:
        if kind == ACQUIRE:
            if state is None:
                state = (owner, next_tok)
                next_tok += 1
                res = (200, None, state[1])
            elif state[0] == owner:
                res = (200, None, state[1])
            else:
                res = (409, state[0], None)
        elif kind == RELEASE:
            if state is None:
                res = (404, None, None)
            elif state[0] == owner:
                state = None
                res = (200, None, None)
            else:
                res = (409, state[0], None)
        else:
            res = (404, None, None) if state is None else (200, state[0], state[1])
        if unk:
            ops.append(Op(kind, "x", owner if kind != READ else None, t0, None, None))
        else:
            ops.append(Op(kind, "x", owner if kind != READ else None, t0, t1, res[0],
                          holder=res[1], token=res[2]))
    return ops


def test_accepts_simulated_linearizable_histories_quickly():
    rnd = random.Random(7)
    t0 = time.monotonic()
    total = 0
    for _ in range(5):
        ops = simulate(rnd)
        total += len(ops)
        r = check_name(ops, "x")
        assert r.ok, r
    assert time.monotonic() - t0 < 20, "checker too slow: %.1f s for %d ops" % (
        time.monotonic() - t0, total)


def test_rejects_simulated_histories_with_one_corrupted_answer():
    rnd = random.Random(11)
    rejected = 0
    for trial in range(30):
        ops = simulate(rnd, clients=3, ops_per_client=40, unknown_p=0.0, overlap=False)
        # flip one read's answer: free <-> held by someone
        reads = [o for o in ops if o.kind == READ]
        o = rnd.choice(reads)
        if o.status == 404:
            o.status, o.holder, o.token = 200, "c0", None
        else:
            o.status, o.holder, o.token = 404, None, None
        r = check_name(ops, "x")
        assert not r.budget_exceeded
        rejected += not r.ok
    # with little overlap nearly every corruption is detectable
    assert rejected >= 25, rejected
