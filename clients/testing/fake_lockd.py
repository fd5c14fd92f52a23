"""A scripted fake lockd for the client test suites (standard library only).

It answers the next requests from a script, in order, to produce what a
real server rarely does on demand: 504, a connection reset after the
request arrived, 503 + Retry-After, a renewal with another token, a slow
answer, a 400. The last step of a script repeats for every later request.

Control (same port, under /__fake/):
  POST /__fake/script   {"steps":[step,...]}   replaces the script, clears the log
  GET  /__fake/requests {"requests":[{"method","path","query","headers","body","t"}...]}
       ("t": server-side time.monotonic() at arrival; compare two of them,
       never with a client's clock)

A step: {"status": 200, "body": {...}, "headers": {...}} answers that;
{"delay": 5} sleeps first; {"action": "reset"} reads the request and
resets the connection without answering; {"echo_token": true} answers a
POST like a real lockd would for a fresh lock (owner from the query).
With --tls CERT KEY it serves https.
"""

import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeState:
    def __init__(self):
        self.lock = threading.Lock()
        self.steps = [{"status": 500, "body": {"error": "no script"}}]
        self.pos = 0
        self.requests = []

    def set_script(self, steps):
        with self.lock:
            self.steps = list(steps) or [{"status": 500, "body": {"error": "no script"}}]
            self.pos = 0
            self.requests = []

    def next_step(self, record):
        with self.lock:
            self.requests.append(record)
            step = self.steps[min(self.pos, len(self.steps) - 1)]
            self.pos += 1
            return step


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-lockd/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, headers=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        st = self.server.state
        t = time.monotonic()
        raw = self._read_body()
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/__fake/script" and self.command == "POST":
            st.set_script(json.loads(raw or b"{}").get("steps", []))
            return self._send(200, {"ok": True})
        if u.path == "/__fake/requests":
            with st.lock:
                reqs = list(st.requests)
            return self._send(200, {"requests": reqs})
        rec = {"method": self.command, "path": u.path,
               "query": dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True)),
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": raw.decode("utf-8", "replace"), "t": t}
        step = st.next_step(rec)
        if step.get("delay"):
            time.sleep(float(step["delay"]))
        if step.get("action") == "reset":
            # the request has arrived; answer nothing, reset the connection
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.connection.close()
            return None
        body = step.get("body")
        headers = dict(step.get("headers") or {})
        if step.get("echo_token"):
            tok = int(step.get("token", 7))
            body = {"name": u.path.rsplit("/", 1)[-1], "locked": True,
                    "owner": rec["query"].get("owner"), "token": tok,
                    "ttl_ms": None, "expires_in_ms": None}
            headers.setdefault("X-Lockd-Token", tok)
        return self._send(int(step.get("status", 200)), body, headers)

    do_GET = do_POST = do_DELETE = do_PUT = _handle

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that gave up on a slow answer is the point of some scripts
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeServer:
    """A fake lockd on 127.0.0.1:port (0: any free port) in a thread."""

    def __init__(self, port=0, tls=None):
        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.httpd.state = FakeState()
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return "%s://%s:%d" % (self.scheme, host, self.port)

    def script(self, steps):
        self.httpd.state.set_script(steps)

    def requests(self):
        with self.httpd.state.lock:
            return list(self.httpd.state.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    tls = None
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        tls = (sys.argv[i + 1], sys.argv[i + 2])
    srv = FakeServer(tls=tls)
    print(json.dumps({"url": srv.url}), flush=True)
    sys.stdin.read()
    srv.close()
