"""Sequential try-lock + release round trips per second: the Python client
against raw keep-alive http.client on the same node. Usage: URL SECONDS"""

import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import lockd  # noqa: E402


def with_client(url, secs):
    c = lockd.Client(url)
    cpu0 = time.process_time()
    n, end = 0, time.monotonic() + secs
    while time.monotonic() < end:
        lk = c.try_acquire("bench-py-client", ttl=30)
        lk.release()
        n += 1
    return n / secs, (time.process_time() - cpu0) / n * 1e6


def raw(url, secs):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    cpu0 = time.process_time()
    n, end = 0, time.monotonic() + secs
    while time.monotonic() < end:
        conn.request("POST", "/lock/bench-py-raw?owner=raw&ttl=30000ms")
        tok = json.loads(conn.getresponse().read())["token"]
        conn.request("DELETE", "/lock/bench-py-raw?owner=raw&token=%d" % tok)
        conn.getresponse().read()
        n += 1
    return n / secs, (time.process_time() - cpu0) / n * 1e6


def logic_only(n=20000):
    """CPU of the client's own logic per round trip, the network left out
    (its private exchange replaced by a canned answer)."""
    from lockd import client as C
    c = lockd.Client("http://127.0.0.1:1")
    body = {"name": "p", "locked": True, "owner": c.owner, "token": 5, "ttl_ms": 30000,
            "expires_in_ms": 30000}
    c._exchange = lambda *a, **k: C._Answer(200, {"x-lockd-leader": "1"}, body, time.monotonic())
    c._members["1"] = c._configured[0]
    t = time.process_time()
    for _ in range(n):
        c.try_acquire("p", ttl=30).release()
    return (time.process_time() - t) / n * 1e6


if __name__ == "__main__":
    url, secs = sys.argv[1], float(sys.argv[2])
    with_client(url, 0.5)
    raw(url, 0.5)
    rounds = [(raw(url, secs), with_client(url, secs)) for _ in range(9)]
    r = sorted(x[0][0] for x in rounds)[4]
    c = sorted(x[1][0] for x in rounds)[4]
    rc = sorted(x[0][1] for x in rounds)[4]
    cc = sorted(x[1][1] for x in rounds)[4]
    print("python  raw %6.0f rt/s %5.0f us cpu/rt   client %6.0f rt/s %5.0f us cpu/rt   client/raw %.2f"
          % (r, rc, c, cc, c / r))
    print("python  client logic without the network: %.0f us cpu/rt" % logic_only())
