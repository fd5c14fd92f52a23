"""GET /locks and GET /metrics against real lockd processes.

/locks: name order, prefix, limit, after, next, every bad parameter's exact
400, and pagination over 10,000 locks while other names churn: no name
twice, none of the locks that existed throughout missing.

/metrics: parsed by a strict Prometheus text-format (0.0.4) parser written
here; counters never decrease between scrapes (also across worker and Raft
process restarts), the request counter counts exactly the requests made
(summed over every worker), histograms are cumulative and end in +Inf equal
to _count.
"""

import http.client
import math
import os
import queue
import random
import re
import signal
import threading
import time

from lockd_helpers import conn_request, expect, wait_until

# --------------------------------------------------------------------------
# helpers


def post_lock(node, name, owner=None):
    path = "/lock/" + name + ("?owner=" + owner if owner else "")
    return node.request("POST", path)


def list_page(node, query="", conn=None):
    path = "/locks" + ("?" + query if query else "")
    r = conn_request(conn, "GET", path) if conn is not None else node.request("GET", path)
    assert r.status == 200, "GET %s: %r" % (path, r)
    assert isinstance(r.body, dict) and set(r.body) == {"locks", "next"}, r.body
    assert isinstance(r.body["locks"], list), r.body
    return r.body


def run_parallel(n_threads, items, fn):
    """Calls fn(conn, item) for every item from n_threads threads, each with
    its own keep-alive connection factory; returns the list of errors."""
    q = queue.Queue()
    for it in items:
        q.put(it)
    errors = []

    def worker():
        conn = None
        while True:
            try:
                it = q.get_nowait()
            except queue.Empty:
                break
            for attempt in range(3):
                try:
                    if conn is None:
                        conn = fn.connect()
                    fn(conn, it)
                    break
                except (OSError, http.client.HTTPException) as e:
                    if conn is not None:
                        conn.close()
                    conn = None
                    if attempt == 2:
                        errors.append((it, repr(e)))
                except AssertionError as e:
                    errors.append((it, str(e)))
                    break
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


class _Acquire:
    def __init__(self, node):
        self.node = node

    def connect(self):
        return self.node.connection(timeout=15)

    def __call__(self, conn, name):
        r = conn_request(conn, "POST", "/lock/" + name + "?owner=bulk")
        assert r.status == 200, "POST %s: %r" % (name, r)


# --------------------------------------------------------------------------
# GET /locks: semantics

def test_list_is_in_name_order_with_lock_objects_as_get_returns_them(shared_node):
    n = shared_node
    names = ["lo.b", "lo.a", "lo.a_", "lo.A", "lo.a0", "lo.$", "lo.a-1", "lo.c.d"]
    for i, name in enumerate(names):
        if i % 2:
            r = post_lock(n, name, owner="own%d" % i)
        else:
            r = n.request("POST", "/lock/%s?ttl=1h" % name)
        assert r.status == 200, r
    body = list_page(n, "prefix=lo.")
    got = [lk["name"] for lk in body["locks"]]
    assert got == sorted(names, key=lambda s: s.encode()), got  # bytewise order
    assert body["next"] is None
    for lk in body["locks"]:
        single = expect(n, "GET", "/lock/" + lk["name"], 200).body
        assert set(lk) == set(single), (lk, single)
        for k in lk:
            if k == "expires_in_ms":
                assert (lk[k] is None) == (single[k] is None), (lk, single)
                if lk[k] is not None:
                    assert abs(lk[k] - single[k]) < 5000 and 0 < lk[k] <= 3600 * 1000
            else:
                assert lk[k] == single[k], (k, lk, single)
        assert lk["locked"] is True
    # a released lock leaves the list
    expect(n, "DELETE", "/lock/lo.b?owner=own1", 200)
    got = [lk["name"] for lk in list_page(n, "prefix=lo.")["locks"]]
    assert "lo.b" not in got and len(got) == len(names) - 1


def test_limit_after_and_next_page_through_a_prefix(shared_node):
    n = shared_node
    names = ["pg.%02d" % i for i in range(25)]
    for name in names:
        assert post_lock(n, name).status == 200
    # neighbours outside the prefix never show up
    assert post_lock(n, "pg").status == 200
    assert post_lock(n, "ph.00").status == 200

    body = list_page(n, "prefix=pg.&limit=10")
    assert [lk["name"] for lk in body["locks"]] == names[:10]
    assert body["next"] == "pg.09"
    body = list_page(n, "prefix=pg.&limit=10&after=" + body["next"])
    assert [lk["name"] for lk in body["locks"]] == names[10:20]
    assert body["next"] == "pg.19"
    body = list_page(n, "prefix=pg.&limit=10&after=pg.19")
    assert [lk["name"] for lk in body["locks"]] == names[20:]
    assert body["next"] is None
    # exactly `limit` left: nothing more may follow
    body = list_page(n, "prefix=pg.&limit=5&after=pg.19")
    assert len(body["locks"]) == 5 and body["next"] is None
    # after need not be a held name, and may sort before the prefix
    body = list_page(n, "prefix=pg.&limit=3&after=pg.05x")
    assert [lk["name"] for lk in body["locks"]] == ["pg.06", "pg.07", "pg.08"]
    body = list_page(n, "prefix=pg.&limit=2&after=a")
    assert [lk["name"] for lk in body["locks"]] == ["pg.00", "pg.01"]
    body = list_page(n, "prefix=pg.&after=zzz")
    assert body == {"locks": [], "next": None}
    # default limit is 100; percent-encoding is decoded
    body = list_page(n, "prefix=pg%2E&limit=1")
    assert body["locks"][0]["name"] == "pg.00"
    # without a prefix every lock is a candidate, still in order
    body = list_page(n, "limit=10000")
    all_names = [lk["name"] for lk in body["locks"]]
    assert all_names == sorted(all_names, key=lambda s: s.encode())
    assert {"pg", "ph.00", "pg.24"} <= set(all_names)


BAD_QUERIES = [
    ("limit=0", "limit must be between 1 and 10000"),
    ("limit=10001", "limit must be between 1 and 10000"),
    ("limit=abc", 'Invalid value for "limit": expected an integer from 1 to 10000'),
    ("limit=-5", 'Invalid value for "limit": expected an integer from 1 to 10000'),
    ("limit=2.5", 'Invalid value for "limit": expected an integer from 1 to 10000'),
    ("limit=", 'Invalid value for "limit": expected an integer from 1 to 10000'),
    ("prefix=" + "a" * 129, '"prefix" is too long (129 bytes > max of 128)'),
    ("prefix=a%2Bb", '"prefix" contains non-printable/non-ascii byte 43 at offset 1'),
    ("prefix=a+b", '"prefix" contains non-printable/non-ascii byte 32 at offset 1'),
    ("prefix=%C3%A9", '"prefix" contains non-printable/non-ascii byte 195 at offset 0'),
    ("after=", '"after" is empty'),
    ("after=" + "b" * 129, '"after" is too long (129 bytes > max of 128)'),
    ("after=x%2Fy", '"after" contains non-printable/non-ascii byte 47 at offset 1'),
    ("owner=me", 'Unknown field "owner"'),
    ("consistent=true", 'Unknown field "consistent"'),
    ("limit=1&limit=2", 'Field "limit" given more than once'),
    ("prefix=%zz", "Malformed percent-encoding in query string"),
]


def test_bad_parameters_are_400_with_exact_messages(shared_node):
    for query, msg in BAD_QUERIES:
        r = expect(shared_node, "GET", "/locks?" + query, 400)
        assert r.body == {"error": msg}, (query, r.body)


def test_other_methods_on_locks_are_405(shared_node):
    for m in ("POST", "DELETE", "PUT"):
        r = expect(shared_node, m, "/locks", 405)
        assert r.headers.get("allow") == "GET, HEAD", r
    r = shared_node.request("HEAD", "/locks")
    assert r.status == 200 and r.raw == b""


# --------------------------------------------------------------------------
# GET /locks: 10,000 locks, paginated while other names churn

N_STABLE = 10000


def test_pagination_over_10000_locks_with_concurrent_churn(node):
    stable = ["p.%05d" % i for i in range(N_STABLE)]
    t0 = time.monotonic()
    errors = run_parallel(32, stable, _Acquire(node))
    assert not errors, errors[:5]
    created_s = time.monotonic() - t0

    # Churn: names interleaved with the stable ones in name order (and
    # before the first and after the last) are acquired and released while
    # the pages are read.
    stop = threading.Event()
    churn_errors = []
    churn_ops = [0]

    def churn(seed):
        rnd = random.Random(seed)
        conn = node.connection(timeout=15)
        held = []
        try:
            while not stop.is_set():
                if held and (len(held) > 50 or rnd.random() < 0.45):
                    name = held.pop(rnd.randrange(len(held)))
                    r = conn_request(conn, "DELETE", "/lock/%s?owner=churn" % name)
                else:
                    k = rnd.randrange(N_STABLE)
                    name = rnd.choice(["p.%05d.c%d" % (k, seed), "p.%05dc" % k,
                                       "p.0", "p.zz%d" % seed, "p.%05d_" % k])
                    r = conn_request(conn, "POST", "/lock/%s?owner=churn" % name)
                    if r.status == 200:
                        held.append(name)
                if r.status not in (200, 404, 409):
                    churn_errors.append(r)
                churn_ops[0] += 1
        except (OSError, http.client.HTTPException) as e:
            churn_errors.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=churn, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: churn_ops[0] > 200, 10)
        for limit in (100, 997, 10000, 1):
            if limit == 1:
                # one name per page would take 10k requests: page through
                # a slice of the range instead
                query_base, want = "prefix=p.0999&limit=1", [s for s in stable
                                                               if s.startswith("p.0999")]
            else:
                query_base, want = "prefix=p.&limit=%d" % limit, stable
            seen = []
            after = None
            conn = node.connection(timeout=15)
            pages = 0
            ops_before = churn_ops[0]
            while True:
                q = query_base + ("&after=" + after if after else "")
                body = list_page(node, q, conn=conn)
                names = [lk["name"] for lk in body["locks"]]
                pages += 1
                assert len(names) <= limit
                assert names == sorted(names, key=lambda s: s.encode()), q
                if after is not None and names:
                    assert names[0] > after, (after, names[0])
                for lk in body["locks"]:
                    assert lk["locked"] is True and isinstance(lk["token"], int)
                    assert lk["owner"] in ("bulk", "churn"), lk
                seen.extend(names)
                if body["next"] is None:
                    break
                assert names and body["next"] == names[-1], body["next"]
                after = body["next"]
            conn.close()
            dups = len(seen) - len(set(seen))
            assert dups == 0, "%d names returned twice (limit %d)" % (dups, limit)
            missing = set(want) - set(seen)
            assert not missing, "%d stable locks skipped (limit %d), e.g. %r" % (
                len(missing), limit, sorted(missing)[:5])
            if limit == 100:
                assert pages >= N_STABLE // 100
                # the churn really overlapped the pagination
                assert churn_ops[0] > ops_before, "no churn during the pagination"
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not churn_errors, churn_errors[:5]
    print("created %d locks in %.1f s; %d churn operations" % (N_STABLE, created_s, churn_ops[0]))


# --------------------------------------------------------------------------
# a strict parser of the Prometheus text format 0.0.4

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
FLOAT = re.compile(r"[+-]?(Inf|NaN|(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)\Z")


class PromFormatError(AssertionError):
    pass


def _fail(lineno, line, why):
    raise PromFormatError("line %d: %s: %r" % (lineno, why, line))


def _parse_float(s, lineno, line):
    if not FLOAT.match(s):
        _fail(lineno, line, "bad value %r" % s)
    return float(s.replace("Inf", "inf").replace("NaN", "nan"))


def _parse_labels(s, lineno, line):
    """s starts after '{'; returns (dict, rest after '}')."""
    labels = {}
    i = 0
    while True:
        if i < len(s) and s[i] == "}":
            return labels, s[i + 1:]
        m = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", s[i:])
        if not m:
            _fail(lineno, line, "bad label name")
        name = m.group(0)
        i += len(name)
        if s[i:i + 2] != '="':
            _fail(lineno, line, "label %s: expected =\"" % name)
        i += 2
        val = []
        while True:
            if i >= len(s):
                _fail(lineno, line, "unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    _fail(lineno, line, "bad escape \\%s" % nxt)
                val.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                _fail(lineno, line, "newline in label value")
            else:
                val.append(c)
                i += 1
        if name in labels:
            _fail(lineno, line, "label %s twice" % name)
        if name.startswith("__"):
            _fail(lineno, line, "reserved label name %s" % name)
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        if i < len(s) and s[i] == "}":
            continue
        _fail(lineno, line, "expected , or } after label %s" % name)


def parse_prometheus(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}.
    Raises PromFormatError on anything the 0.0.4 format does not allow, and
    on what a well-behaved exporter must not do: HELP/TYPE twice or after
    the family's first sample, a family's samples split apart, a sample
    name not belonging to its family's type, a series twice, histogram
    buckets not cumulative or not ending in +Inf == _count."""
    if not text.endswith("\n"):
        raise PromFormatError("exposition does not end with a newline")
    families = {}
    order = []
    current = None
    closed = set()
    series_seen = set()

    def family_of(sample_name):
        for fam in ([current] if current else []) + list(families):
            f = families[fam]
            t = f.get("type", "untyped")
            if t == "histogram":
                if sample_name in (fam + "_bucket", fam + "_sum", fam + "_count"):
                    return fam
            elif t == "summary":
                if sample_name in (fam, fam + "_sum", fam + "_count"):
                    return fam
            elif sample_name == fam:
                return fam
        return None

    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                _fail(lineno, line, "comment that is neither HELP nor TYPE")
            kind, name = parts[1], parts[2]
            if not METRIC_NAME.match(name):
                _fail(lineno, line, "bad metric name")
            if name in closed:
                _fail(lineno, line, "%s after the family's samples ended" % kind)
            if current is not None and current != name:
                closed.add(current)
            f = families.setdefault(name, {"samples": []})
            if name not in order:
                order.append(name)
            if f["samples"]:
                _fail(lineno, line, "%s after the family's first sample" % kind)
            key = kind.lower()
            if key in f:
                _fail(lineno, line, "%s given twice" % kind)
            if kind == "TYPE":
                if len(parts) != 4 or parts[3] not in TYPES:
                    _fail(lineno, line, "bad type")
                f["type"] = parts[3]
            else:
                if len(parts) != 4:
                    _fail(lineno, line, "HELP without text")
                f["help"] = parts[3]
            current = name
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        if not m:
            _fail(lineno, line, "bad sample name")
        name = m.group(1)
        rest = line[len(name):]
        labels = {}
        if rest.startswith("{"):
            labels, rest = _parse_labels(rest[1:], lineno, line)
        if not rest.startswith(" "):
            _fail(lineno, line, "expected a space before the value")
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2) or fields[0] == "":
            _fail(lineno, line, "expected value [timestamp]")
        value = _parse_float(fields[0], lineno, line)
        if len(fields) == 2 and not re.match(r"-?\d+\Z", fields[1]):
            _fail(lineno, line, "bad timestamp")
        fam = family_of(name)
        if fam is None:
            _fail(lineno, line, "sample of an undeclared family (TYPE must come first)")
        if fam in closed:
            _fail(lineno, line, "samples of %s split apart" % fam)
        if current is not None and current != fam:
            closed.add(current)
        current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in series_seen:
            _fail(lineno, line, "series given twice")
        series_seen.add(key)
        families[fam]["samples"].append((name, labels, value))

    for fam, f in families.items():
        if "type" not in f or "help" not in f:
            raise PromFormatError("family %s lacks HELP or TYPE" % fam)
        if f["type"] == "counter":
            for name, labels, v in f["samples"]:
                if not (v >= 0) or math.isinf(v):
                    raise PromFormatError("counter %s%r is %r" % (name, labels, v))
        if f["type"] == "histogram":
            check_histogram(fam, f["samples"])
    return families


def check_histogram(fam, samples):
    groups = {}
    for name, labels, v in samples:
        base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                raise PromFormatError("%s bucket without le: %r" % (fam, labels))
            g["buckets"].append((float(labels["le"].replace("Inf", "inf")), v))
        elif name == fam + "_sum":
            g["sum"] = v
        else:
            if "le" in labels:
                raise PromFormatError("le on %s" % name)
            g["count"] = v
    for base, g in groups.items():
        b = g["buckets"]
        if not b or g["sum"] is None or g["count"] is None:
            raise PromFormatError("%s%r lacks buckets, _sum or _count" % (fam, base))
        les = [le for le, _ in b]
        if les != sorted(les) or len(set(les)) != len(les):
            raise PromFormatError("%s%r: le not increasing: %r" % (fam, base, les))
        if not math.isinf(les[-1]):
            raise PromFormatError("%s%r: last bucket is not +Inf" % (fam, base))
        vals = [v for _, v in b]
        if any(vals[i] > vals[i + 1] for i in range(len(vals) - 1)):
            raise PromFormatError("%s%r: buckets not cumulative: %r" % (fam, base, vals))
        if vals[-1] != g["count"]:
            raise PromFormatError("%s%r: +Inf %r != _count %r" % (fam, base, vals[-1], g["count"]))
        if g["sum"] < 0:
            raise PromFormatError("%s%r: negative _sum" % (fam, base))


def test_the_parser_rejects_what_the_format_forbids():
    ok = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"\\\\\\n\"} 1\n"
    assert parse_prometheus(ok)["a_total"]["samples"][0][1] == {"k": 'v"\\\n'}
    bad = [
        "a 1\n",                                                    # no TYPE
        "# TYPE a gauge\na 1\n",                                    # no HELP
        "# HELP a x\n# TYPE a gauge\na 1",                          # no final newline
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP a y\n",            # HELP twice
        "# HELP a x\n# TYPE a gauge\na{1b=\"x\"} 1\n",              # label name
        "# HELP a x\n# TYPE a gauge\na{b=\"x\\t\"} 1\n",            # escape
        "# HELP a x\n# TYPE a gauge\na{b=\"x\"c=\"y\"} 1\n",        # missing comma
        "# HELP a x\n# TYPE a gauge\na 1\na 2\n",                   # series twice
        "# HELP a x\n# TYPE a gauge\na one\n",                      # value
        "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\nb 1\na 1\n",  # split
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 1\nh_count 1\n",                                     # not cumulative
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",  # no +Inf
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# HELP c_total x\n# TYPE c_total counter\nc_total -1\n",   # negative counter
        "# HELP a x\n# TYPE a gauge\n# random comment\na 1\n",
    ]
    for text in bad:
        try:
            parse_prometheus(text)
        except PromFormatError:
            continue
        raise AssertionError("parser accepted %r" % text)


# --------------------------------------------------------------------------
# GET /metrics

REQUIRED = {
    "lockd_http_requests_total": "counter",
    "lockd_http_request_duration_seconds": "histogram",
    "lockd_locks_held": "gauge",
    "lockd_lock_capacity": "gauge",
    "lockd_waiters": "gauge",
    "lockd_raft_term": "gauge",
    "lockd_raft_commit_index": "gauge",
    "lockd_raft_applied_index": "gauge",
    "lockd_raft_leader": "gauge",
    "lockd_raft_entries_total": "counter",
    "lockd_raft_commands_total": "counter",
    "lockd_lease_expirations_total": "counter",
    "lockd_waiter_handoffs_total": "counter",
    "lockd_process_restarts_total": "counter",
    "lockd_build_info": "gauge",
}


def scrape(node):
    r = node.request("GET", "/metrics")
    assert r.status == 200, r
    assert r.headers.get("content-type") == "text/plain; version=0.0.4", r.headers
    text = r.raw.decode("utf-8")
    fams = parse_prometheus(text)
    for name, typ in REQUIRED.items():
        assert name in fams, "missing family %s" % name
        assert fams[name]["type"] == typ, (name, fams[name]["type"])
    return fams


def value(fams, family, sample=None, **labels):
    for name, lb, v in fams[family]["samples"]:
        if name == (sample or family) and lb == labels:
            return v
    return 0.0  # request series appear at their first request


def counters(fams):
    out = {}
    for fam, f in fams.items():
        if f["type"] in ("counter", "histogram"):
            for name, lb, v in f["samples"]:
                if f["type"] == "histogram" and name.endswith("_sum"):
                    continue  # float sums: compared separately
                out[(name, tuple(sorted(lb.items())))] = v
    return out


def assert_monotonic(before, after):
    b, a = counters(before), counters(after)
    for key, v in b.items():
        assert key in a, "series %r disappeared" % (key,)
        assert a[key] >= v, "counter %r went from %r to %r" % (key, v, a[key])


def requests(fams, route, method, code):
    return value(fams, "lockd_http_requests_total", route=route, method=method, code=str(code))


def test_metrics_is_strict_text_format_and_counters_only_grow(node):
    first = scrape(node)
    assert value(first, "lockd_build_info", version=first["lockd_build_info"]["samples"][0][1]
                 ["version"]) == 1
    assert value(first, "lockd_raft_leader") == 1
    assert value(first, "lockd_lock_capacity") > 0

    for i in range(5):
        assert post_lock(node, "mx%d" % i, owner="m").status == 200
    for i in range(7):
        assert node.request("GET", "/lock/mx%d" % (i % 3)).status == 200
    assert node.request("GET", "/lock/absent-mx").status == 404
    assert node.request("GET", "/locks?limit=0").status == 400
    assert node.request("GET", "/locks").status == 200

    # raftproc publishes its figures (and the status block) periodically:
    # poll until they include the 5 sequential writes (one entry each)
    def caught_up():
        f = scrape(node)
        ok = (value(f, "lockd_raft_entries_total") >= value(first, "lockd_raft_entries_total") + 5
              and value(f, "lockd_raft_applied_index") >=
              value(first, "lockd_raft_applied_index") + 5)
        return f if ok else None

    second = wait_until(caught_up, 5)
    assert second, "raft entries / applied index did not move after 5 writes"
    assert_monotonic(first, second)
    assert requests(second, "lock", "POST", 200) - requests(first, "lock", "POST", 200) == 5
    assert requests(second, "lock", "GET", 200) - requests(first, "lock", "GET", 200) == 7
    assert requests(second, "lock", "GET", 404) - requests(first, "lock", "GET", 404) == 1
    assert requests(second, "locks", "GET", 400) - requests(first, "locks", "GET", 400) == 1
    assert requests(second, "locks", "GET", 200) - requests(first, "locks", "GET", 200) == 1
    # the first scrape is counted by the time of the second
    assert requests(second, "metrics", "GET", 200) >= 1
    lock_count = value(second, "lockd_http_request_duration_seconds",
                       "lockd_http_request_duration_seconds_count", route="lock")
    assert lock_count - value(first, "lockd_http_request_duration_seconds",
                              "lockd_http_request_duration_seconds_count", route="lock") == 13
    sum_before = value(first, "lockd_http_request_duration_seconds",
                       "lockd_http_request_duration_seconds_sum", route="lock")
    sum_after = value(second, "lockd_http_request_duration_seconds",
                      "lockd_http_request_duration_seconds_sum", route="lock")
    assert sum_after > sum_before
    assert value(second, "lockd_locks_held") >= 5
    assert value(second, "lockd_raft_commands_total") >= value(second, "lockd_raft_entries_total")
    assert value(second, "lockd_raft_applied_index") >= value(first, "lockd_raft_applied_index") + 5
    assert value(second, "lockd_raft_commit_index") >= value(second, "lockd_raft_applied_index")
    assert value(second, "lockd_raft_term") >= 1
    third = scrape(node)
    assert_monotonic(second, third)


def test_request_counter_sums_every_worker_exactly(node_factory):
    n = node_factory(workers=3)
    before = scrape(n)
    workers_seen = set()
    sent = 0
    deadline = time.monotonic() + 20
    # new connection per request: the kernel spreads them over the workers
    while (len(workers_seen) < 3 or sent < 150) and time.monotonic() < deadline:
        r = n.request("GET", "/status")
        assert r.status == 200
        workers_seen.add(r.body["worker"])
        sent += 1
    assert len(workers_seen) >= 2, "all requests went to one worker: %r" % workers_seen
    after = scrape(n)
    assert requests(after, "status", "GET", 200) - requests(before, "status", "GET", 200) == sent


def test_restarts_are_counted_and_counters_survive_them(node):
    for i in range(3):
        assert post_lock(node, "rs%d" % i).status == 200
    node.request("GET", "/lock/rs0")
    before = wait_until(lambda: (lambda f: f if value(f, "lockd_raft_entries_total") >= 3
                                 else None)(scrape(node)), 5)
    assert before
    assert value(before, "lockd_process_restarts_total", kind="worker") == 0
    assert value(before, "lockd_process_restarts_total", kind="raft") == 0

    # a reload replaces the workers but is not a restart
    old_workers = set(node.worker_pids())
    os.kill(node.pid, signal.SIGHUP)
    assert wait_until(lambda: not (set(node.worker_pids()) & old_workers) and
                      len(node.worker_pids()) == 2, 15), node.child_pids()
    after_reload = scrape(node)
    assert_monotonic(before, after_reload)
    assert value(after_reload, "lockd_process_restarts_total", kind="worker") == 0

    # a worker killed is restarted and counted
    victim = node.workers_by_index()[1]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: node.workers_by_index().get(1) not in (None, victim), 15)
    node.wait_ready()
    after_worker = wait_until(
        lambda: (lambda f: f if value(f, "lockd_process_restarts_total", kind="worker") >= 1
                 else None)(scrape(node)), 10)
    assert after_worker, "worker restart not counted"
    assert value(after_worker, "lockd_process_restarts_total", kind="worker") == 1
    assert_monotonic(after_reload, after_worker)

    # the Raft process killed: restarted, counted, and its counters go on
    raft = node.raft_pid()
    os.kill(raft, signal.SIGKILL)
    assert wait_until(lambda: node.raft_pid() not in (None, raft), 15)
    node.wait_ready()
    assert post_lock(node, "rs-after").status == 200
    after_raft = wait_until(
        lambda: (lambda f: f if value(f, "lockd_process_restarts_total", kind="raft") >= 1
                 else None)(scrape(node)), 10)
    assert after_raft, "raft restart not counted"
    assert value(after_raft, "lockd_process_restarts_total", kind="raft") == 1
    assert_monotonic(after_worker, after_raft)
    assert value(after_raft, "lockd_locks_held") == 4


def test_commit_latency_histogram_and_entry_bytes_count_every_write(node):
    before = scrape(node)
    for i in range(20):
        assert node.request("POST", "/lock/commit-%d" % i).status == 200
    # raftproc publishes its figures every 100 ms
    def grown():
        f = scrape(node)
        return (value(f, "lockd_raft_commit_seconds", "lockd_raft_commit_seconds_count")
                >= value(before, "lockd_raft_commit_seconds", "lockd_raft_commit_seconds_count") + 1
                and value(f, "lockd_raft_entry_bytes_total") > value(before, "lockd_raft_entry_bytes_total"))
    assert wait_until(grown, 5), scrape(node).get("lockd_raft_commit_seconds")
    f = scrape(node)
    assert f["lockd_raft_commit_seconds"]["type"] == "histogram"
    assert value(f, "lockd_raft_commit_seconds", "lockd_raft_commit_seconds_sum") > 0
