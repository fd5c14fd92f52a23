"""Helpers for lockd's black-box tests (standard library only).

LockdNode runs one `lockd` master (with its workers and Raft process) in its
own session / process group, so that a teardown can always kill everything it
started with one os.killpg, even when the master itself was killed.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import time

LOCKD_BIN = os.environ.get("LOCKD_BIN", "/work/main/build/lockd")

# every LockdNode a fixture currently owns (for log tails on failure)
LIVE_NODES = []

TITLE_MASTER = re.compile(r"^lockd: master\b")
TITLE_WORKER = re.compile(r"^lockd: worker (\d+)\b")
TITLE_RAFT = re.compile(r"^lockd: raft\b")


# --------------------------------------------------------------------------
# generic helpers

def wait_until(pred, timeout, interval=0.02):
    """Polls pred() until it returns a truthy value (returned) or `timeout`
    seconds pass (returns the last falsy value). Exceptions from network
    calls count as "not yet"."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
        except (OSError, http.client.HTTPException):
            last = None
        if last:
            return last
        if time.monotonic() >= deadline:
            return last
        time.sleep(interval)


_used_ports = set()


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_pair():
    """A port P such that P (HTTP) and P+1000 (Raft) are both free on
    127.0.0.1 right now, and not handed out before in this test run.
    Below the kernel's range for outgoing connections (32768+), so a
    restarted node never finds its port taken by someone's client socket."""
    rnd = random.Random()
    for _ in range(2000):
        p = rnd.randrange(10000, 29000)
        if p in _used_ports or (p + 1000) in _used_ports or (p - 1000) in _used_ports:
            continue
        if _port_free(p) and _port_free(p + 1000):
            _used_ports.add(p)
            return p
    raise RuntimeError("no free port pair found")


def read_title(pid):
    """The process title as shown by /proc/PID/cmdline ('' if gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    parts = [p for p in raw.split(b"\0") if p]
    return b" ".join(parts).decode("utf-8", "replace").strip()


def read_stat(pid):
    """(state, ppid, pgrp) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def all_pids():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            out.append(int(d))
    return out


def group_members(pgid, include_zombies=False):
    """[(pid, title)] of live processes in process group pgid."""
    out = []
    for pid in all_pids():
        st = read_stat(pid)
        if st is None:
            continue
        state, _ppid, pgrp = st
        if pgrp != pgid:
            continue
        if state == "Z" and not include_zombies:
            continue
        out.append((pid, read_title(pid)))
    return out


def children_of(pid):
    """{child_pid: title} of live (non-zombie) children of pid."""
    out = {}
    for p in all_pids():
        st = read_stat(p)
        if st is None:
            continue
        state, ppid, _ = st
        if ppid == pid and state != "Z":
            out[p] = read_title(p)
    return out


class Resp(tuple):
    """(status, headers, body): headers is a dict with lower-case names,
    body is the parsed JSON value, or the text when it is not JSON, or None
    when empty. .raw holds the raw body bytes."""

    def __new__(cls, status, headers, body, raw):
        r = tuple.__new__(cls, (status, headers, body))
        r.raw = raw
        return r

    @property
    def status(self):
        return self[0]

    @property
    def headers(self):
        return self[1]

    @property
    def body(self):
        return self[2]

    def __repr__(self):
        return "Resp(status=%r, headers=%r, body=%r)" % (self[0], self[1], self[2])


def parse_body(raw):
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def http_request(host, port, method, path, body=None, headers=None, timeout=10.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        return conn_request(conn, method, path, body, headers)
    finally:
        conn.close()


def conn_request(conn, method, path, body=None, headers=None):
    """One request on an existing http.client connection (keep-alive)."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = bytes(body)
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    raw = r.read()
    hd = {}
    for k, v in r.getheaders():
        hd[k.lower()] = v
    return Resp(r.status, hd, parse_body(raw), raw)


def raw_exchange(host, port, data=b"", timeout=5.0, shutdown_write=False, chunks=None):
    """Sends raw bytes (or a list of chunks), optionally half-closes, then
    reads until the server closes or `timeout` passes. Returns
    (bytes received, closed_by_server). A reset counts as a close."""
    s = socket.create_connection((host, port), timeout=timeout)
    got = b""
    closed = False
    try:
        try:
            for c in (chunks if chunks is not None else [data]):
                s.sendall(c)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return got, True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not b:
                closed = True
                break
            got += b
    finally:
        s.close()
    return got, closed


def parse_raw_response(data):
    """(status, headers dict, body bytes) of the first HTTP/1.x response in
    data, or None if data does not start with one."""
    if not data.startswith(b"HTTP/1."):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    hd = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hd[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    return status, hd, body


# --------------------------------------------------------------------------
# LockdNode

class LockdNode:
    def __init__(self, binary, tmp_path, name="node", data_dir=None, store="lmdb",
                 workers=2, extra_args=(), argv=None, port=None, host="127.0.0.1",
                 cwd=None):
        self.binary = binary
        self.name = name
        self.tmp_path = str(tmp_path)
        self.data_dir = str(data_dir) if data_dir is not None else os.path.join(
            self.tmp_path, name + "-data")
        self.store = store
        self.workers = workers
        self.extra_args = list(extra_args)
        self.port = port if port is not None else free_port_pair()
        self.host = host
        self.cwd = str(cwd) if cwd is not None else self.tmp_path
        self._argv = list(argv) if argv is not None else None
        self.log_path = os.path.join(self.tmp_path, name + ".log")
        self.proc = None
        self.pid = None
        self._log_f = None
        self.started = 0

    # -- process control ---------------------------------------------------
    def argv(self):
        if self._argv is not None:
            return [self.binary] + self._argv
        a = [self.binary, "--listen", "%s:%d" % (self.host, self.port),
             "--data-dir", self.data_dir, "--workers", str(self.workers)]
        if self.store:
            a += ["--store", self.store]
        return a + self.extra_args

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        os.makedirs(self.data_dir, exist_ok=True)
        self._log_f = open(self.log_path, "ab")
        self._log_f.write(("\n==== start %s: %s\n" % (time.strftime("%H:%M:%S"),
                                                       " ".join(self.argv()))).encode())
        self._log_f.flush()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_f, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.cwd)
        self.pid = self.proc.pid
        self.started += 1
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("lockd exited with %r before becoming ready\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                r = self.request("GET", "/readyz", timeout=2)
                last = r
                if r.status == 200:
                    return r
            except (OSError, http.client.HTTPException) as e:
                last = e
            time.sleep(0.02)
        raise AssertionError("lockd not ready within %.0f s (last: %r)\n%s"
                             % (timeout, last, self.log_tail()))

    def stop(self, timeout=10.0, check=True):
        """SIGTERM to the master; asserts exit status 0 within `timeout` and
        that no process of its group is left. Returns the exit status."""
        assert self.proc is not None
        pgid = self.pid
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            left = group_members(pgid)
            self._killpg()
            raise AssertionError("master did not exit within %.0f s of SIGTERM; group: %r\n%s"
                                 % (timeout, left, self.log_tail()))
        # children must be gone once the master is (allow zombies half a
        # second to be reaped by init)
        left = wait_until(lambda: not group_members(pgid), 0.5) or group_members(pgid)
        if left is not True and left:
            self._killpg()
            if check:
                raise AssertionError("processes left after the master exited: %r\n%s"
                                     % (left, self.log_tail()))
        if check:
            assert rc == 0, "master exit status %r after SIGTERM\n%s" % (rc, self.log_tail())
        self._close_log()
        return rc

    def kill9(self):
        """SIGKILL to the whole process group (master and children)."""
        self._killpg()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        assert wait_until(lambda: not group_members(self.pid), 5), \
            "group still alive after SIGKILL: %r" % group_members(self.pid)
        self._close_log()

    def restart(self, timeout=20.0):
        self.stop()
        self.start()
        self.wait_ready(timeout)
        return self

    def _killpg(self):
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            pass

    def _close_log(self):
        if self._log_f is not None:
            try:
                self._log_f.close()
            except OSError:
                pass
            self._log_f = None

    def cleanup(self):
        if self.proc is None:
            return
        self._killpg()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # anything that left the group (e.g. setsid) but is our child's child
        # is not tracked; the group kill covers the documented process tree.
        self._close_log()

    # -- processes ---------------------------------------------------------
    def child_pids(self):
        """{pid: title} of the master's live children."""
        return children_of(self.pid)

    def workers_by_index(self):
        """{worker index: pid} from the children's titles."""
        out = {}
        for pid, t in self.child_pids().items():
            m = TITLE_WORKER.match(t)
            if m:
                out[int(m.group(1))] = pid
        return out

    def worker_pids(self):
        return sorted(p for p, t in self.child_pids().items() if TITLE_WORKER.match(t))

    def raft_pids(self):
        return sorted(p for p, t in self.child_pids().items() if TITLE_RAFT.match(t))

    def raft_pid(self):
        r = self.raft_pids()
        return r[0] if len(r) == 1 else None

    def title(self):
        return read_title(self.pid)

    def group(self):
        return group_members(self.pid)

    # -- HTTP --------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=10.0):
        return http_request(self.host, self.port, method, path, body, headers, timeout)

    def connection(self, timeout=10.0):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def raw(self, data, **kw):
        return raw_exchange(self.host, self.port, data, **kw)

    # -- logs --------------------------------------------------------------
    def log_tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log: %s)" % e
        return "---- %s log tail (%s) ----\n%s" % (
            self.name, self.log_path, "\n".join(data.splitlines()[-lines:]))

    def print_log_tail(self, lines=80):
        print(self.log_tail(lines))


# --------------------------------------------------------------------------
# assertions shared by the tests

def is_json_ct(headers):
    return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def assert_json_object(r, what=""):
    assert is_json_ct(r.headers), "%s: Content-Type is %r, want application/json; %r" % (
        what, r.headers.get("content-type"), r)
    assert isinstance(r.body, dict), "%s: body is not a JSON object: %r" % (what, r.raw)


def expect(node, method, path, status, **kw):
    r = node.request(method, path, **kw)
    assert r.status == status, "%s %s: want %d, got %r" % (method, path, status, r)
    assert_json_object(r, "%s %s" % (method, path))
    return r


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# --------------------------------------------------------------------------
# helpers for the lock-semantics tests (test_semantics.py, test_wait.py)

def commit_index(node):
    """commit_index from GET /status (None if not available)."""
    r = node.request("GET", "/status", timeout=3)
    if r.status != 200 or not isinstance(r.body, dict):
        return None
    v = r.body.get("commit_index")
    return v if is_int(v) else None


def metric_value(node, metric):
    """Sum of the samples of `metric` in GET /metrics, or None when /metrics
    or the metric is absent."""
    try:
        r = node.request("GET", "/metrics", timeout=3)
    except (OSError, http.client.HTTPException):
        return None
    if r.status != 200:
        return None
    text = r.raw.decode("utf-8", "replace")
    total, seen = 0.0, False
    for ln in text.splitlines():
        if ln.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)", ln)
        if m and m.group(1) == metric:
            try:
                total += float(m.group(3))
                seen = True
            except ValueError:
                pass
    return total if seen else None


def kill9_raft(node, timeout=15.0):
    """kill -9 of the Raft process; waits until the master has started a new
    one and the node is ready again. Returns (old pid, new pid)."""
    old = node.raft_pid()
    assert old, "no single 'lockd: raft' child: %r" % node.child_pids()
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: (lambda p: p if p and p != old else None)(node.raft_pid()),
                     timeout)
    assert new, "master did not restart the Raft process within %.0f s\n%s" % (
        timeout, node.log_tail())
    node.wait_ready(timeout)
    return old, new


class RawRequest:
    """An HTTP/1.1 request sent synchronously on its own socket (so it has
    left the client when the constructor returns); the response is read
    later with result(), or the client goes away with close()."""

    def __init__(self, node, method, path, body=None, timeout=30.0):
        self.sock = socket.create_connection((node.host, node.port), timeout=timeout)
        data = b""
        hdrs = "Host: %s:%d\r\nConnection: close\r\n" % (node.host, node.port)
        if body is not None:
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            if isinstance(data, str):
                data = data.encode()
            hdrs += "Content-Type: application/json\r\n"
        hdrs += "Content-Length: %d\r\n" % len(data)
        self.sent_at = time.monotonic()
        self.sock.sendall(("%s %s HTTP/1.1\r\n%s\r\n" % (method, path, hdrs)).encode() + data)
        self.buf = b""
        self.closed = False
        self.resp = None

    def _complete(self):
        p = parse_raw_response(self.buf)
        if p is None or b"\r\n\r\n" not in self.buf:
            return None
        status, hd, body = p
        n = hd.get("content-length")
        if n is not None and len(body) < int(n):
            return None
        if n is None and not self.closed:
            return None
        return Resp(status, hd, parse_body(body), body)

    def result(self, timeout):
        """The response (a Resp) once complete, or None if none arrived
        within `timeout` seconds. Records .received_at."""
        if self.resp is not None:
            return self.resp
        deadline = time.monotonic() + timeout
        while not self.closed:
            r = self._complete()
            if r is not None:
                self.resp = r
                self.received_at = time.monotonic()
                return r
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(max(0.01, left))
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                self.closed = True
                break
            if not b:
                self.closed = True
            self.buf += b
        self.resp = self._complete()
        self.received_at = time.monotonic()
        return self.resp

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# multi-node clusters (test_cluster.py)

def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port_triple():
    """A port P such that P (HTTP), P+1000 (Raft) and P+2000 (peer
    forwarding) are free on 127.0.0.1 right now and clash with no port
    handed out before in this test run (all three are recorded). Chosen
    below the kernel's ephemeral range when possible: a node killed and
    restarted must find its ports free again, and an outgoing connection
    may take any free ephemeral port in between."""
    rnd = random.Random()
    eph_lo, eph_hi = _ephemeral_range()
    lo, hi = 12000, eph_lo - 2001
    if hi - lo < 3000:
        lo, hi = max(eph_hi + 1, 12000), 63000
    for _ in range(4000):
        p = rnd.randrange(lo, hi)
        if any(q in _used_ports for q in range(p - 2000, p + 3000, 1000)):
            continue
        if _port_free(p) and _port_free(p + 1000) and _port_free(p + 2000):
            _used_ports.update((p, p + 1000, p + 2000))
            return p
    raise RuntimeError("no free port triple found")


FAST_ELECTION_ARGS = ("--election-timeout", "300ms", "--heartbeat-timeout", "50ms")


class LockdCluster:
    """An N-node cluster on loopback made with the node_factory fixture (so
    the factory kills every process group at teardown and failures attach
    every node's log). Node ids are 1..N; cluster.nodes[id] is a LockdNode
    with .node_id set."""

    def __init__(self, factory, size=3, workers=1, extra_args=FAST_ELECTION_ARGS,
                 api_timeout="2s"):
        self.factory = factory
        self.ids = list(range(1, size + 1))
        self.ports = {i: free_port_triple() for i in self.ids}
        self.path = os.path.join(str(factory.base_dir), "cluster.json")
        with open(self.path, "w") as f:
            json.dump({str(i): "127.0.0.1:%d" % p for i, p in self.ports.items()}, f)
        self.nodes = {}
        self.stopped = set()       # ids currently SIGSTOPped
        for i in self.ids:
            name = "n%d" % i
            data_dir = os.path.join(str(factory.base_dir), name + "-data")
            argv = ["-cluster", self.path, "-id", str(i), "--data-dir", data_dir,
                    "--workers", str(workers), "--api-timeout", api_timeout] + list(extra_args)
            n = factory(name=name, start=False, argv=argv, port=self.ports[i], data_dir=data_dir)
            n.node_id = i
            self.nodes[i] = n

    def __getitem__(self, nid):
        return self.nodes[nid]

    def address(self, nid):
        return "127.0.0.1:%d" % self.ports[nid]

    def start(self, timeout=20.0):
        for n in self.nodes.values():
            n.start()
        for n in self.nodes.values():
            n.wait_ready(timeout)
        return self

    def running(self):
        """ids of nodes whose master runs and that are not stopped."""
        return [i for i, n in self.nodes.items() if n.alive() and i not in self.stopped]

    def status(self, nid, timeout=2.0):
        """GET /status body of node nid, or None (error, timeout, non-200)."""
        try:
            r = self.nodes[nid].request("GET", "/status", timeout=timeout)
        except (OSError, http.client.HTTPException):
            return None
        return r.body if r.status == 200 and isinstance(r.body, dict) else None

    def agreed_leader(self, among=None):
        """The leader id if every node in `among` (default: running()) answers
        /status naming the same leader, and that leader is among them and
        says role "leader"; else None."""
        among = list(among if among is not None else self.running())
        sts = {i: self.status(i) for i in among}
        if any(s is None for s in sts.values()):
            return None
        ids = set()
        for s in sts.values():
            ld = s.get("leader")
            ids.add(ld.get("id") if isinstance(ld, dict) else None)
        if len(ids) != 1:
            return None
        lid = ids.pop()
        if lid not in sts or sts[lid].get("role") != "leader":
            return None
        if [i for i, s in sts.items() if s.get("role") == "leader"] != [lid]:
            return None
        return lid

    def wait_leader(self, timeout=10.0, among=None, exclude=()):
        """Polls until agreed_leader(among) is a node not in `exclude`."""
        def ok():
            lid = self.agreed_leader(among)
            return lid if lid is not None and lid not in exclude else None
        lid = wait_until(ok, timeout, interval=0.02)
        assert lid, "no agreed leader among %r within %.1f s: %r\n%s" % (
            among if among is not None else self.running(), timeout,
            {i: self.status(i) for i in (among or self.running())}, self.log_tails())
        return lid

    def followers(self, leader):
        return [i for i in self.ids if i != leader]

    def kill9(self, nid):
        """SIGKILL to node nid's whole process group; waits until it is gone."""
        self.nodes[nid].kill9()
        self.stopped.discard(nid)

    def sigstop(self, nid):
        os.killpg(self.nodes[nid].pid, signal.SIGSTOP)
        self.stopped.add(nid)

    def sigcont(self, nid):
        os.killpg(self.nodes[nid].pid, signal.SIGCONT)
        self.stopped.discard(nid)

    def restart(self, nid, wait=True, timeout=20.0):
        """Starts node nid again after kill9 (same data dir, same ports)."""
        n = self.nodes[nid]
        n.start()
        if wait:
            n.wait_ready(timeout)
        return n

    def log_tails(self, lines=30):
        return "\n".join(n.log_tail(lines) for n in self.nodes.values())

    def cleanup(self):
        """SIGCONT stopped nodes (the factory's teardown SIGKILLs every group)."""
        for i in list(self.stopped):
            try:
                self.sigcont(i)
            except OSError:
                pass


def try_request(node, method, path, timeout=2.0, body=None):
    """node.request, but a connection error or timeout comes back as the
    exception object instead of being raised."""
    try:
        return node.request(method, path, body=body, timeout=timeout)
    except (OSError, http.client.HTTPException) as e:
        return e


def write_until_ok(nodes, method, path, timeout, per_request=1.0):
    """Sends the request to each node of `nodes` in turn until one answers
    200 or `timeout` passes. Returns (Resp or None, [(node name, outcome)...]
    of the failed attempts)."""
    deadline = time.monotonic() + timeout
    tries = []
    i = 0
    while True:
        n = nodes[i % len(nodes)]
        i += 1
        r = try_request(n, method, path, timeout=min(per_request, max(0.05, deadline - time.monotonic())))
        if isinstance(r, Resp) and r.status == 200:
            return r, tries
        tries.append((n.name, r))
        if time.monotonic() >= deadline:
            return None, tries
        time.sleep(0.02)


# --------------------------------------------------------------------------
# lockctl and run-time membership changes (test_membership.py)

LOCKCTL_BIN = os.environ.get("LOCKCTL_BIN", "/work/main/build/lockctl")


def admin_socket_of(node):
    """The admin socket of node: --admin-socket if its argv names one, else
    <data dir>/lockd.sock."""
    argv = node.argv()
    for i, a in enumerate(argv):
        if a == "--admin-socket" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--admin-socket="):
            return a.split("=", 1)[1]
    return os.path.join(node.data_dir, "lockd.sock")


def run_lockctl(args, node=None, sock=None, timeout=60.0):
    """Runs lockctl --socket <node's admin socket, or sock> ARGS (LOCKD_SOCKET
    unset). Returns (exit status, stdout, stderr)."""
    argv = [LOCKCTL_BIN]
    if sock is None and node is not None:
        sock = admin_socket_of(node)
    if sock is not None:
        argv += ["--socket", sock]
    env = dict(os.environ)
    env.pop("LOCKD_SOCKET", None)
    p = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def lockctl_members(node, timeout=10.0):
    """`lockctl --json members` of node as a dict, or None if it failed."""
    rc, out, _ = run_lockctl(["--json", "members"], node=node, timeout=timeout)
    if rc != 0:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def voter_ids(node):
    """The ids `lockctl members` on node lists as voters, from the live Raft
    configuration (None if lockctl failed or showed the cluster file)."""
    m = lockctl_members(node)
    if m is None or m.get("source") != "raft":
        return None
    return sorted(x["id"] for x in m["members"] if x.get("role") == "voter")


def join_node(cluster, nid, workers=1, extra_args=FAST_ELECTION_ARGS, api_timeout="2s"):
    """Starts node nid for `cluster` with --join, from a cluster file of its
    own that lists the cluster's nodes and itself (the running nodes keep
    theirs). Registers it in cluster.nodes / ids / ports and returns it once
    its admin socket answers; it is not a member until `members add`."""
    factory = cluster.factory
    port = free_port_triple()
    cluster.ports[nid] = port
    path = os.path.join(str(factory.base_dir), "cluster-%d.json" % nid)
    with open(path, "w") as f:
        json.dump({str(i): "127.0.0.1:%d" % p for i, p in cluster.ports.items()}, f)
    name = "n%d" % nid
    data_dir = os.path.join(str(factory.base_dir), name + "-data")
    argv = ["-cluster", path, "-id", str(nid), "--join", "--data-dir", data_dir,
            "--workers", str(workers), "--api-timeout", api_timeout] + list(extra_args)
    n = factory(name=name, start=False, argv=argv, port=port, data_dir=data_dir)
    n.node_id = nid
    cluster.nodes[nid] = n
    cluster.ids.append(nid)
    n.start()
    ok = wait_until(lambda: n.alive() and run_lockctl(["status"], node=n, timeout=5)[0] == 0, 20)
    assert ok, "joining node %d: no admin socket within 20 s\n%s" % (nid, n.log_tail())
    return n


def raft_address(cluster, nid):
    """Node nid's Raft address by the default rule (HTTP port + 1000)."""
    return "127.0.0.1:%d" % (cluster.ports[nid] + 1000)
