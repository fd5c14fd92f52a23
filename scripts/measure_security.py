#!/usr/bin/python3
"""Measures the front-door behaviours of issue 12 against a real lockd, so a
change can show before and after (numbers go to docs/ARCHITECTURE.md's
Security section and the reports):

  h2c        is cleartext HTTP/2 accepted (prior-knowledge preface, Upgrade)?
  reset      HTTP/2 Rapid Reset on one connection for N s: streams sent,
             whether the server closed the connection, and the latency of a
             normal lock+unlock (HTTP/1.1, another process) meanwhile
  fds        K idle connections against a node whose RLIMIT_NOFILE is L:
             latency of a normal lock+unlock while they are open
  plain      which malformed requests get a non-JSON answer

Usage: scripts/measure_security.py [--bin build/lockd] [h2c|reset|fds|plain ...]
Standard library only; starts and stops its own node on a free loopback port.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
import h2raw  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary, extra=(), nofile=None, workers=2):
        self.dir = tempfile.mkdtemp(prefix="lockd-measure-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "lockd.log"), "wb")
        argv = [binary, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.dir,
                "--workers", str(workers), "--store", "memory"] + list(extra)

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=limits)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("lockd not ready")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def lock_unlock_latencies(port, seconds, out_q, name="probe"):
    """Sequential POST+DELETE on one keep-alive HTTP/1.1 connection (a new
    connection after an error); puts a list of cycle times (s)."""
    lat, errors = [], 0
    end = time.monotonic() + seconds
    c = None
    i = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/lock/%s-%d?owner=me" % (name, i))
            c.getresponse().read()
            c.request("DELETE", "/lock/%s-%d?owner=me" % (name, i))
            c.getresponse().read()
            lat.append(time.monotonic() - t0)
        except (OSError, http.client.HTTPException):
            errors += 1
            c = None
        i += 1
    out_q.put((lat, errors))


def summary(lat, errors):
    if not lat:
        return "no cycle completed (%d errors)" % errors
    return "%d cycles, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d errors" % (
        len(lat), 1e3 * pct(lat, 0.5), 1e3 * pct(lat, 0.99), 1e3 * max(lat), errors)


def probe(port, seconds, name):
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=lock_unlock_latencies, args=(port, seconds, q, name))
    p.start()
    return p, q


def m_h2c(binary, args):
    n = Node(binary)
    try:
        pk = h2raw.prior_knowledge_get("127.0.0.1", n.port)
        up = h2raw.upgrade_get("127.0.0.1", n.port)
        print("h2c prior knowledge: %s" % pk[0])
        print("h2c Upgrade: %s (%r)" % (up[0], up[1][:40]))
    finally:
        n.stop()


def m_reset(binary, args):
    n = Node(binary, extra=args.node_args)
    try:
        p, q = probe(n.port, args.seconds, "base")
        base = q.get()
        p.join()
        print("lock+unlock, no attack:   " + summary(*base))
        p, q = probe(n.port, args.seconds + 1, "attack")
        time.sleep(0.5)  # measurement script, not a test: let the probe start
        r = h2raw.rapid_reset("127.0.0.1", n.port, args.seconds)
        under = q.get()
        p.join()
        print("rapid reset, one connection: %d streams in %.1f s (%.0f/s), closed_after=%s, goaway=%s" % (
            r["streams"], r["seconds"], r["streams"] / r["seconds"], r["closed_after"], r["goaway"]))
        print("lock+unlock under attack: " + summary(*under))
    finally:
        n.stop()


def m_fds(binary, args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.conns + 256)), hard))
    n = Node(binary, nofile=args.nofile, workers=args.workers)
    socks = []
    try:
        p, q = probe(n.port, args.seconds, "base")
        print("lock+unlock, no idle connections: " + summary(*q.get()))
        p.join()
        refused = 0
        for _ in range(args.conns):
            try:
                s = socket.create_connection(("127.0.0.1", n.port), timeout=2)
                socks.append(s)
            except OSError:
                refused += 1
        print("opened %d idle connections (%d refused) against %d worker(s) with RLIMIT_NOFILE %d" % (
            len(socks), refused, args.workers, args.nofile))
        p, q = probe(n.port, args.seconds, "idle")
        print("lock+unlock with them open:       " + summary(*q.get()))
        p.join()
    finally:
        for s in socks:
            s.close()
        n.stop()


PLAIN_CASES = [
    ("bad request line", b"GARBAGE\r\n\r\n"),
    ("request line without version", b"GET /healthz\r\n\r\n"),
    ("control byte in path", b"GET /he\x01lthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("101 headers", b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n"),
    ("100 headers", b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(99)) + b"Host: x\r\n\r\n"),
    ("head over 416 KiB (H2O_MAX_REQLEN)", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 420000 + b"\r\n\r\n"),
    ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
    ("space before colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("body over 1 MiB (Content-Length)", b"POST /lock/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"),
    ("bad Content-Length", b"POST /lock/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
    ("unknown Transfer-Encoding", b"POST /lock/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
    ("broken chunked body", b"POST /lock/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("Expect: something", b"POST /lock/a HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx"),
    ("HTTP/2 preface (h2c)", h2raw.PREFACE + h2raw.frame(h2raw.SETTINGS, 0, 0)),
    ("NUL in header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("lone LF line endings", b"GET /healthz HTTP/1.1\nHost: x\n\n"),
    ("absolute-form target", b"GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("HTTP/1.0", b"GET /healthz HTTP/1.0\r\n\r\n"),
    ("HTTP/2.0 in request line", b"GET /healthz HTTP/2.0\r\n\r\n"),
]


def raw(port, data, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
        return out


def classify(resp):
    if not resp:
        return "closed without an answer"
    if not resp.startswith(b"HTTP/1."):
        return "non-HTTP/1 bytes %r" % resp[:16]
    head, _, body = resp.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode()
    ctype = b""
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-type":
            ctype = v.strip()
    kind = "JSON"
    try:
        json.loads(body.split(b"\r\n")[0] if b"chunked" in head.lower() else body)
        if not ctype.startswith(b"application/json"):
            kind = "JSON body, Content-Type %s" % ctype.decode()
    except ValueError:
        kind = "PLAIN TEXT (%s): %r" % (ctype.decode() or "no type", body[:40])
    return "%s %s" % (status, kind)


def m_plain(binary, args):
    n = Node(binary)
    try:
        for what, data in PLAIN_CASES:
            print("%-36s -> %s" % (what, classify(raw(n.port, data))))
    finally:
        n.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "lockd"))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--conns", type=int, default=1500)
    ap.add_argument("--nofile", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=1, help="workers of the node in the fds measurement")
    ap.add_argument("--node-arg", dest="node_args", action="append", default=[],
                    help="extra lockd argument for the reset measurement (e.g. --node-arg=--http2 --node-arg=on)")
    ap.add_argument("what", nargs="*", default=["h2c", "plain", "reset", "fds"])
    args = ap.parse_args()
    for w in args.what:
        print("== %s" % w, flush=True)
        {"h2c": m_h2c, "reset": m_reset, "fds": m_fds, "plain": m_plain}[w](os.path.abspath(args.bin), args)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
