"""Test PKI and TLS clients for the black-box tests of issue 12.

Every key and certificate is made at test time with the `openssl` command in
a temporary directory (never committed): a CA, a server certificate for
localhost/127.0.0.1, client certificates signed by the CA, and a second
("rogue") CA with a client certificate of its own, for the refusal tests.
Keys are mode 0600, as lockd requires of its --tls-key.
"""

import http.client
import os
import socket
import ssl
import subprocess
import time


def _openssl(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key_and_csr(d, name, subject):
    _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", name + ".key", "-out", name + ".csr", "-subj", subject], d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)


def _sign(d, name, ca, ext_lines):
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("\n".join(ext_lines) + "\n")
    _openssl(["x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
              "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", name + ".pem"], d)


def _ca(d, name, cn):
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn], d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)


class TestPKI:
    """Paths of a fresh test PKI under `directory`:
    ca, server (CN localhost), client(cn) on demand, rogue_client."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        _ca(self.dir, "ca", "lockd-test-ca")
        _ca(self.dir, "rogue-ca", "rogue-ca")
        self.server_cert, self.server_key = self.make_server("server", "localhost")
        self.rogue_cert, self.rogue_key = self._client("rogue", "ops-box", "rogue-ca", [])

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def ca(self):
        return self.path("ca.pem")

    def make_server(self, name, cn):
        _key_and_csr(self.dir, name, "/CN=" + cn)
        _sign(self.dir, name, "ca", ["subjectAltName=DNS:localhost,IP:127.0.0.1",
                                     "extendedKeyUsage=serverAuth"])
        return self.path(name + ".pem"), self.path(name + ".key")

    def _client(self, name, cn, ca, sans):
        _key_and_csr(self.dir, name, "/CN=" + cn)
        lines = ["extendedKeyUsage=clientAuth"]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        _sign(self.dir, name, ca, lines)
        return self.path(name + ".pem"), self.path(name + ".key")

    def client(self, cn, sans=()):
        """A client certificate signed by the test CA; returns (cert, key)."""
        safe = "".join(c if c.isalnum() else "_" for c in cn)
        return self._client("client-" + safe, cn, "ca", list(sans))


def client_context(pki, cert=None, alpn=("http/1.1",), max_version=None):
    """An SSLContext that trusts the test CA (and presents cert=(pem, key))."""
    ctx = ssl.create_default_context(cafile=pki.ca)
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if max_version is not None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = max_version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def https_request(host, port, method, path, ctx, body=None, headers=None, timeout=10.0):
    """One request over TLS; returns (status, headers dict lower-case, body bytes)."""
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def tls_handshake(host, port, ctx, server_hostname="localhost", timeout=5.0):
    """Completes a handshake; returns the SSLSocket (caller closes) or raises
    ssl.SSLError / OSError. With TLS 1.3 a refused client certificate shows
    only on the first read, so this reads once (expecting nothing)."""
    raw = socket.create_connection((host, port), timeout=timeout)
    s = ctx.wrap_socket(raw, server_hostname=server_hostname)
    return s


def wait_ready_tls(node, ctx, timeout=20.0):
    """LockdNode.wait_ready for a node that serves TLS only."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise AssertionError("lockd exited with %r\n%s" % (node.proc.returncode, node.log_tail()))
        try:
            st, _, _ = https_request(node.host, node.port, "GET", "/readyz", ctx, timeout=2)
            last = st
            if st == 200:
                return
        except (OSError, ssl.SSLError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.05)
    raise AssertionError("not ready over TLS within %.0f s (last: %r)\n%s"
                         % (timeout, last, node.log_tail()))
