"""Browser test harness for lockd's web UI (standard library + Debian's
python3-selenium, chromium and chromium-driver).

UiProxy serves the ui/ files at /ui/ (with the security headers that
worker/ui_assets.h gives the server) and passes every other request through
to a real lockd node, so the page is same-origin with the real API. It
stands in for the worker's /ui route until the server serves the assets
itself; it does not change any API answer. Set LOCKD_UI_DIRECT=1 to skip it
and load the UI from the node itself (once the server serves /ui/).

Browser starts one headless Chromium (a fresh profile, no network besides
loopback) and collects its console log; console_errors() returns the entries
a test must fail on.
"""

import http.client
import http.server
import os
import re
import shutil
import socketserver
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UI_DIR = os.path.join(REPO, "ui")

CHROMIUM = os.environ.get("LOCKD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LOCKD_CHROMEDRIVER", "/usr/bin/chromedriver")

TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


def ui_headers():
    """The CSP and other headers of worker/ui_assets.h, read from the header
    itself so that the tests and the server cannot drift apart."""
    with open(os.path.join(REPO, "worker", "ui_assets.h")) as f:
        text = f.read()
    m = re.search(r'#define UI_CSP[\s\\]+((?:"[^"]*"[\s\\]*)+)', text)
    csp = "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))
    m = re.search(r"#define UI_SECURITY_HEADERS(.*?)\n\n", text, re.S)
    pairs = re.findall(r'\{\s*"([^"]+)",\s*"([^"]+)"\s*\}', m.group(1))
    return [("Content-Security-Policy", csp)] + pairs


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length", "host"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _ui(self):
        path = self.path.split("?", 1)[0]
        if path in ("/", ""):
            self.send_response(302)
            self.send_header("Location", "/ui/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        name = path[len("/ui/"):] or "index.html"
        file = os.path.join(UI_DIR, name)
        ext = os.path.splitext(name)[1]
        if "/" in name or ext not in TYPES or not os.path.isfile(file):
            body = b'{"error":"Not Found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with open(file, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", TYPES[ext])
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for k, v in self.server.ui_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _proxy(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        up = http.client.HTTPConnection(self.server.upstream[0], self.server.upstream[1], timeout=330)
        try:
            up.request(self.command, self.path, body=body, headers=headers)
            r = up.getresponse()
            streaming = r.getheader("Content-Type", "").startswith("text/event-stream")
            self.send_response(r.status, r.reason)
            for k, v in r.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            if streaming:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    chunk = r.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            else:
                data = r.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
            try:
                msg = b'{"error":"proxy: upstream unreachable"}'
                self.send_response(502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
            except OSError:
                pass
        finally:
            up.close()

    def _dispatch(self):
        p = self.path.split("?", 1)[0]
        if self.command in ("GET", "HEAD") and (p == "/" or p.startswith("/ui/")):
            self._ui()
        else:
            self._proxy()

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _dispatch


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class UiProxy:
    """Serves the UI on 127.0.0.1:<free port> and proxies the API to
    (host, port). Use as a context manager or call close()."""

    def __init__(self, upstream_host, upstream_port):
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.upstream = (upstream_host, upstream_port)
        self.server.ui_headers = ui_headers()
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def retarget(self, host, port):
        self.server.upstream = (host, port)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# the browser

# Console entries a test may cause on purpose: the API's own 4xx and 503
# answers, which Chromium logs as failed resource loads even when the page
# handles them (409 conflict, 404 free lock, ...). Anything else (a script
# error, a CSP violation, a refused connection, a 500) fails the test.
_EXPECTED_NETWORK = re.compile(r"the server responded with a status of (4\d\d|503)\b")


class Browser:
    def __init__(self, width=1280, height=900):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        self.profile = tempfile.mkdtemp(prefix="lockd-ui-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--user-data-dir=" + self.profile,
                  "--window-size=%d,%d" % (width, height)):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(30)
        self.log = []

    def console(self):
        """Every console entry since the browser started."""
        self.log.extend(self.driver.get_log("browser"))
        return list(self.log)

    def console_errors(self):
        out = []
        for e in self.console():
            if e.get("level") != "SEVERE":
                continue
            if e.get("source") == "network" and _EXPECTED_NETWORK.search(e.get("message", "")):
                continue
            out.append(e)
        return out

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def wait_for(pred, timeout=20.0, interval=0.05, what="condition"):
    """Polls pred() (exceptions count as not yet) until truthy; returns it or
    raises AssertionError naming `what` and the last error."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # stale elements and the like: retry
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s (last error: %r)"
                                 % (timeout, what, last_exc))
        time.sleep(interval)
