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
    127.0.0.1 right now, and not handed out before in this test run."""
    rnd = random.Random()
    for _ in range(2000):
        p = rnd.randrange(20000, 44000)
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
