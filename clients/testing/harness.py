"""Test harness shared by the Python, Ruby and Java client suites.

Starts real lockd processes (one node, a 3-node cluster), nginx as a
round-robin load balancer in front of the cluster, and scripted fake
servers (fake_lockd.py), all on random free loopback ports in a private
temporary directory, and kills every one of them on close.

Python tests use the Harness class directly. The Ruby and Java suites run
this file as a process:

    /usr/bin/python3 clients/testing/harness.py [--lockd BIN]

It prints one JSON line {"control": "http://127.0.0.1:PORT"} and serves a
small JSON API there until its standard input closes (the test process
exited or died), then cleans up everything it started:

  POST /node                   {"url"}                one node (started once)
  POST /cluster                {"nodes":{"1":url..},"cluster_file":path}  (once)
  GET  /cluster/leader?exclude=1,2   {"id","url"}     polls for an agreed leader
  POST /cluster/kill    {"id"}  kill -9 of a node's process group
  POST /cluster/restart {"id"}  start it again, wait until ready and a leader is agreed
  POST /nginx                  {"url"}                nginx round robin over the cluster (once)
  POST /fake    {"tls":false}  {"url","ca_file"}      a new scripted fake server
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
sys.path.insert(0, HERE)

import lockd_helpers as lh  # noqa: E402
from fake_lockd import FakeServer  # noqa: E402

DEFAULT_LOCKD = os.environ.get("LOCKD_BIN", os.path.join(ROOT, "build", "lockd"))


class _Factory:
    """What lockd_helpers.LockdCluster expects of a node factory."""

    def __init__(self, lockd_bin, base_dir):
        self.lockd_bin = lockd_bin
        self.base_dir = base_dir
        self.nodes = []

    def __call__(self, name, start=True, **kw):
        n = lh.LockdNode(self.lockd_bin, self.base_dir, name=name, **kw)
        self.nodes.append(n)
        if start:
            n.start()
            n.wait_ready()
        return n

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()


class Harness:
    def __init__(self, lockd_bin=DEFAULT_LOCKD, base_dir=None):
        if not os.access(lockd_bin, os.X_OK):
            raise RuntimeError("lockd binary not found: %s (set LOCKD_BIN)" % lockd_bin)
        self.lockd_bin = lockd_bin
        self._own_dir = base_dir is None
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="lockd-clients-")
        self.factory = _Factory(lockd_bin, self.base_dir)
        self.lock = threading.RLock()
        self._node = None
        self._cluster = None
        self._nginx = None
        self._fakes = []
        self._tls = None

    # -- lockd -----------------------------------------------------------
    def node(self):
        with self.lock:
            if self._node is None:
                self._node = self.factory(name="single", workers=1, store="memory")
            return "http://127.0.0.1:%d" % self._node.port

    def cluster(self):
        with self.lock:
            if self._cluster is None:
                c = lh.LockdCluster(self.factory, size=3, workers=1)
                c.start()
                c.wait_leader(timeout=30)
                self._cluster = c
            c = self._cluster
            return {"nodes": {str(i): "http://%s" % c.address(i) for i in c.ids},
                    "cluster_file": c.path}

    def leader(self, exclude=(), timeout=30.0):
        c = self._cluster
        lid = c.wait_leader(timeout=timeout, exclude=tuple(exclude))
        return {"id": lid, "url": "http://%s" % c.address(lid)}

    def kill(self, nid):
        self._cluster.kill9(int(nid))
        return {"ok": True}

    def restart(self, nid):
        c = self._cluster
        c.restart(int(nid))
        c.wait_leader(timeout=30)
        return {"ok": True}

    # -- nginx -----------------------------------------------------------
    def nginx(self):
        with self.lock:
            if self._nginx is None:
                self.cluster()
                self._nginx = _Nginx(self.base_dir, [self._cluster.address(i) for i in self._cluster.ids])
            return {"url": self._nginx.url}

    # -- fake servers ----------------------------------------------------
    def tls_files(self):
        """A self-signed certificate for localhost (openssl from Debian)."""
        with self.lock:
            if self._tls is None:
                d = os.path.join(self.base_dir, "tls")
                os.makedirs(d, exist_ok=True)
                crt, key = os.path.join(d, "ca.pem"), os.path.join(d, "key.pem")
                subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self._tls = (crt, key)
            return self._tls

    def fake(self, tls=False):
        f = FakeServer(tls=self.tls_files() if tls else None)
        with self.lock:
            self._fakes.append(f)
        return f

    def close(self):
        for f in self._fakes:
            try:
                f.close()
            except Exception:
                pass
        if self._nginx is not None:
            self._nginx.close()
        if self._cluster is not None:
            self._cluster.cleanup()
        self.factory.cleanup()
        if self._own_dir and not os.environ.get("LOCKD_KEEP_TMP"):
            shutil.rmtree(self.base_dir, ignore_errors=True)


class _Nginx:
    """nginx (Debian's) as a round-robin load balancer on a free port, with
    its own prefix, config, pid file and logs in base_dir/nginx."""

    def __init__(self, base_dir, upstreams):
        self.dir = os.path.join(base_dir, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.port = lh.free_port_pair()
        servers = "".join("    server %s max_fails=1 fail_timeout=3s;\n" % u for u in upstreams)
        conf = """worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fastcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  upstream lockd {
%(servers)s    keepalive 16;
  }
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      proxy_pass http://lockd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 1s;
      proxy_read_timeout 400s;
      proxy_next_upstream error timeout;
    }
  }
}
""" % {"d": self.dir, "servers": servers, "port": self.port}
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.log = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", path, "-e",
                                      os.path.join(self.dir, "logs", "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.url = "http://127.0.0.1:%d" % self.port
        ok = lh.wait_until(lambda: lh.http_request("127.0.0.1", self.port, "GET", "/healthz",
                                                   timeout=1).status == 200, 20)
        if not ok:
            self.close()
            raise RuntimeError("nginx did not come up; see %s" % self.dir)

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


# --------------------------------------------------------------------------
# the control server (for the Ruby and Java suites)

class _Control(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        h = self.server.harness
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}") if n else {}
        m, p = self.command, u.path
        if (m, p) == ("POST", "/node"):
            return {"url": h.node()}
        if (m, p) == ("POST", "/cluster"):
            return h.cluster()
        if (m, p) == ("GET", "/cluster/leader"):
            ex = [int(x) for x in q.get("exclude", "").split(",") if x]
            return h.leader(exclude=ex)
        if (m, p) == ("POST", "/cluster/kill"):
            return h.kill(body["id"])
        if (m, p) == ("POST", "/cluster/restart"):
            return h.restart(body["id"])
        if (m, p) == ("POST", "/nginx"):
            return h.nginx()
        if (m, p) == ("POST", "/fake"):
            tls = bool(body.get("tls"))
            f = h.fake(tls=tls)
            return {"url": f.url, "ca_file": h.tls_files()[0] if tls else None}
        raise KeyError("no route %s %s" % (m, p))

    def _handle(self):
        try:
            self._reply(200, self._route())
        except Exception as e:  # reported to the test, which fails
            self._reply(500, {"error": "%s: %s" % (type(e).__name__, e)})

    do_GET = do_POST = _handle


def main():
    lockd_bin = DEFAULT_LOCKD
    if "--lockd" in sys.argv:
        lockd_bin = sys.argv[sys.argv.index("--lockd") + 1]
    h = Harness(lockd_bin)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Control)
    srv.daemon_threads = True
    srv.harness = h
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    print(json.dumps({"control": "http://127.0.0.1:%d" % srv.server_address[1]}), flush=True)
    try:
        sys.stdin.read()          # until the test process closes it or dies
    except KeyboardInterrupt:
        pass
    finally:
        srv.shutdown()
        h.close()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
