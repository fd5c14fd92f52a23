"""A linearizability checker for lockd's lock model (standard library only).

History format: a list of operations, each a dict (or an Op) with
  kind      "acquire" | "release" | "read"
  name      the lock name (the check runs per name: linearizability is
            compositional, so a history is linearizable iff each name's
            sub-history is)
  owner     the client id of acquire/release (None for read)
  invoke    time.monotonic() before the request was sent
  complete  time.monotonic() after the answer arrived; None when the
            outcome is unknown
  status    200 | 404 | 409, or None when the outcome is unknown
  holder    the owner in the answer: a 200 read's owner, a 409's "owner"
            (None = not reported / not checked)
  token     the token in a 200 acquire or read (None = not checked)
  unknown   True when the outcome is unknown (timeout, 504, connection
            lost, 503 other than "No leader"): the operation may have
            taken effect at any point after its invocation, or never.
            Reads with unknown outcome carry no information and are
            dropped.

Model (one lock): state = (holder, token) or None when free.
  acquire(o): free -> 200, state (o, new token); held by o -> 200 with the
              same token (renew); held by p != o -> 409 with holder p.
  release(o): held by o -> 200, free; free -> 404; held by p != o -> 409.
  read:       held -> 200 with holder and token; free -> 404.
A token is bound the first time an answer reports it (an acquire whose
outcome is unknown grants an unobserved token).

Search: Wing & Gong's algorithm with Lowe's just-in-time linearization and
memoization of (set of linearized operations, state), as in porcupine /
Knossos' "linear" checker. Unknown-outcome operations have no return event;
two refinements keep them cheap and stay exact:
  * linearizing one that would not change the state is skipped (leaving it
    for later is always at least as good: it may still be used);
  * of several eligible unknown operations with the same kind and owner,
    only one is tried at each step (they are interchangeable once invoked).
The search succeeds when every operation with a known outcome is linearized.
"""

import collections

ACQUIRE = "acquire"
RELEASE = "release"
READ = "read"
KINDS = (ACQUIRE, RELEASE, READ)

_FIELDS = ("kind", "name", "owner", "invoke", "complete", "status", "holder", "token",
           "unknown", "client", "node", "note")


class Op(object):
    __slots__ = _FIELDS + ("id",)

    def __init__(self, kind, name, owner=None, invoke=0.0, complete=None, status=None,
                 holder=None, token=None, unknown=None, client=None, node=None, note=None):
        if kind not in KINDS:
            raise ValueError("bad kind %r" % (kind,))
        self.kind = kind
        self.name = name
        self.owner = owner
        self.invoke = float(invoke)
        self.complete = None if complete is None else float(complete)
        self.status = status
        self.holder = holder
        self.token = token
        self.client = client
        self.node = node
        self.note = note
        self.id = None
        if unknown is None:
            unknown = complete is None or status is None
        self.unknown = bool(unknown)
        if self.unknown:
            self.complete = None
            self.status = None
        elif self.complete is None or self.status is None:
            raise ValueError("an op with a known outcome needs complete and status: %r" % (self,))
        elif self.complete < self.invoke:
            raise ValueError("op completes before it is invoked: %r" % (self,))

    @classmethod
    def of(cls, d):
        if isinstance(d, Op):
            return d
        return cls(**{k: d[k] for k in _FIELDS if k in d})

    def describe(self):
        if self.unknown:
            res = "unknown outcome"
        else:
            res = str(self.status)
            if self.holder is not None:
                res += " holder=%s" % self.holder
            if self.token is not None:
                res += " token=%s" % self.token
        who = "" if self.owner is None else "(%s)" % self.owner
        where = "" if self.node is None else " via %s" % self.node
        cl = "" if self.client is None else "%s: " % self.client
        end = "?" if self.complete is None else "%.4f" % self.complete
        note = "" if not self.note else " [%s]" % self.note
        return "%s%s %s%s [%.4f, %s] -> %s%s%s" % (cl, self.kind, self.name, who, self.invoke,
                                                   end, res, where, note)

    __repr__ = describe


def step(state, op):
    """(legal, new state) for op with its observed result applied in
    `state`: None (free) or (holder, token)."""
    bad = (False, None)
    if op.kind == ACQUIRE:
        if state is None:
            return (True, (op.owner, op.token)) if op.status == 200 else bad
        holder, tok = state
        if holder == op.owner:
            if op.status != 200:
                return bad
            if op.token is not None and tok is not None and op.token != tok:
                return bad
            return True, (holder, tok if tok is not None else op.token)
        if op.status != 409 or (op.holder is not None and op.holder != holder):
            return bad
        return True, state
    if op.kind == RELEASE:
        if state is None:
            return (True, None) if op.status == 404 else bad
        holder, _tok = state
        if holder == op.owner:
            return (True, None) if op.status == 200 else bad
        if op.status != 409 or (op.holder is not None and op.holder != holder):
            return bad
        return True, state
    # read
    if state is None:
        return (True, None) if op.status == 404 else bad
    holder, tok = state
    if op.status != 200 or (op.holder is not None and op.holder != holder):
        return bad
    if op.token is not None and tok is not None and op.token != tok:
        return bad
    return True, (holder, tok if tok is not None else op.token)


def _step_unknown(state, op):
    """Effect of an unknown-outcome op applied in `state` (always legal)."""
    if op.kind == ACQUIRE:
        if state is None:
            return (op.owner, None)
        return state
    if op.kind == RELEASE:
        if state is not None and state[0] == op.owner:
            return None
        return state
    return state


class Result(object):
    def __init__(self, ok, name=None, ops=0, unknown=0, states=0, steps=0, message="",
                 budget_exceeded=False):
        self.ok = ok
        self.name = name
        self.ops = ops
        self.unknown = unknown
        self.states = states
        self.steps = steps
        self.message = message
        self.budget_exceeded = budget_exceeded

    def __bool__(self):
        return self.ok

    __nonzero__ = __bool__

    def __repr__(self):
        return "Result(ok=%r, name=%r, ops=%d, unknown=%d, states=%d, steps=%d%s)%s" % (
            self.ok, self.name, self.ops, self.unknown, self.states, self.steps,
            ", budget exceeded" if self.budget_exceeded else "",
            ("\n" + self.message) if self.message else "")


class _Entry(object):
    __slots__ = ("is_call", "op", "idx", "match", "prev", "next")

    def __init__(self, is_call, op, idx):
        self.is_call = is_call
        self.op = op
        self.idx = idx
        self.match = None
        self.prev = None
        self.next = None


def check_name(ops, name=None, initial=None, max_steps=5000000):
    """Checks the operations of one lock. initial: None (free) or
    (holder, token). Returns a Result."""
    ops = [Op.of(o) for o in ops]
    ops = [o for o in ops if not (o.unknown and o.kind == READ)]
    known = [o for o in ops if not o.unknown]
    n_unknown = len(ops) - len(known)
    if not known:
        return Result(True, name, 0, n_unknown)
    for i, o in enumerate(ops):
        o.id = i
    # events: calls at invoke, returns at complete; on equal times calls
    # first (the two operations count as concurrent: the permissive choice)
    events = []
    for o in ops:
        events.append((o.invoke, 0, o.id, True))
        if not o.unknown:
            events.append((o.complete, 1, o.id, False))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(False, None, -1)
    prev = head
    calls = {}
    for _t, _k, i, is_call in events:
        e = _Entry(is_call, ops[i], i)
        if is_call:
            calls[i] = e
        else:
            calls[i].match = e
            e.match = calls[i]
        e.prev = prev
        prev.next = e
        prev = e

    def lift(e):
        e.prev.next = e.next
        if e.next is not None:
            e.next.prev = e.prev
        m = e.match
        if m is not None:
            m.prev.next = m.next
            if m.next is not None:
                m.next.prev = m.prev

    def unlift(e):
        m = e.match
        if m is not None:
            m.prev.next = m
            if m.next is not None:
                m.next.prev = m
        e.prev.next = e
        if e.next is not None:
            e.next.prev = e

    state = initial
    linearized = 0
    remaining_known = len(known)
    cache = set()
    stack = []          # (call entry, state before, tried unknown groups at that level)
    tried = set()
    entry = head.next
    steps = 0
    best = 0
    best_stuck = None
    while True:
        if remaining_known == 0:
            return Result(True, name, len(known), n_unknown, len(cache), steps)
        steps += 1
        if steps > max_steps:
            return Result(False, name, len(known), n_unknown, len(cache), steps,
                          "search budget of %d steps exceeded (inconclusive)" % max_steps,
                          budget_exceeded=True)
        if entry is None:
            # only unknown calls left after the point we reached: cannot
            # happen while a known op remains (its return is in the list)
            raise AssertionError("internal error: ran off the list")
        if entry.is_call:
            op = entry.op
            if op.unknown:
                group = (op.kind, op.owner)
                if group in tried:
                    entry = entry.next
                    continue
                new = _step_unknown(state, op)
                ok = new != state
            else:
                ok, new = step(state, op)
            if ok:
                nl = linearized | (1 << entry.idx)
                key = (nl, new)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state, tried))
                    tried = set()
                    state = new
                    linearized = nl
                    if not op.unknown:
                        remaining_known -= 1
                    lift(entry)
                    entry = head.next
                    continue
            if op.unknown:
                tried.add((op.kind, op.owner))
            entry = entry.next
        else:
            # a return whose call is not linearized: backtrack
            done = len(known) - remaining_known
            if best_stuck is None or done > best:
                best = done
                best_stuck = (entry.op, state, [e.op for e, _s, _t in stack])
            if not stack:
                return Result(False, name, len(known), n_unknown, len(cache), steps,
                              _explain(ops, best_stuck))
            e, state, tried = stack.pop()
            linearized &= ~(1 << e.idx)
            if not e.op.unknown:
                remaining_known += 1
            else:
                tried.add((e.op.kind, e.op.owner))
            unlift(e)
            entry = e.next


def _fmt_state(s):
    if s is None:
        return "free"
    return "held by %s (token %s)" % (s[0], "?" if s[1] is None else s[1])


def _explain(ops, best_stuck):
    op, state, order = best_stuck
    lines = ["not linearizable. Longest linearizable prefix: %d ops; then %s must have"
             " taken effect before it returned, but no order of the concurrent ops"
             " allows its result (state before it: %s)." % (len(order), op.describe(),
                                                           _fmt_state(state))]
    lines.append("last ops of that prefix, in linearization order:")
    for o in order[-8:]:
        lines.append("    " + o.describe())
    lo = op.invoke
    hi = op.complete if op.complete is not None else op.invoke
    near = [o for o in ops if o.invoke <= hi and (o.complete is None or o.complete >= lo - 1.0)]
    near.sort(key=lambda o: o.invoke)
    lines.append("ops overlapping it or just before (by invoke time):")
    for o in near[-25:]:
        lines.append("    " + o.describe())
    return "\n".join(lines)


def check(history, max_steps=5000000):
    """Checks a whole history, name by name. Returns (ok, [Result per name])."""
    by_name = collections.OrderedDict()
    for d in history:
        o = Op.of(d)
        by_name.setdefault(o.name, []).append(o)
    results = [check_name(v, k, max_steps=max_steps) for k, v in by_name.items()]
    return all(r.ok for r in results), results
