#!/usr/bin/python3
"""scripts/bench_contended.py: contended locking with FIFO waits.

N client threads (default 64) compete for K names (default 8): each loop
takes a random name with POST ?owner=cI&wait=1s, holds it for a moment,
releases it with DELETE. Reports hand-overs per second (acquires that had
to wait and were served by a release) and the p50/p99 time spent waiting.
A benchmark, not a test: it never fails on a slow run.

usage: bench_contended.py URL [--clients 64] [--names 8] [--seconds 10]
"""
import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--names", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    stop = time.monotonic() + a.seconds
    lock = threading.Lock()
    waits, counts = [], {"acquired": 0, "timeouts": 0, "errors": 0}

    def client(i):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        rnd = random.Random(i)
        while time.monotonic() < stop:
            name = "contended-%d" % rnd.randrange(a.names)
            t0 = time.monotonic()
            try:
                c.request("POST", "/lock/%s?owner=c%d&wait=1s" % (name, i))
                r = c.getresponse()
                r.read()
                dt = time.monotonic() - t0
                if r.status == 200:
                    c.request("DELETE", "/lock/%s?owner=c%d" % (name, i))
                    c.getresponse().read()
                    with lock:
                        counts["acquired"] += 1
                        waits.append(dt)
                elif r.status == 409:
                    with lock:
                        counts["timeouts"] += 1
                else:
                    with lock:
                        counts["errors"] += 1
            except OSError:
                with lock:
                    counts["errors"] += 1
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)

    ts = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.monotonic() - t0
    waits.sort()
    q = lambda p: waits[min(len(waits) - 1, int(p * len(waits)))] * 1000 if waits else float("nan")
    print(json.dumps({"clients": a.clients, "names": a.names, "seconds": round(el, 1),
                      "acquires_per_s": round(counts["acquired"] / el, 1),
                      "wait_p50_ms": round(q(0.50), 2), "wait_p99_ms": round(q(0.99), 2),
                      "wait_timeouts": counts["timeouts"], "errors": counts["errors"]}))


if __name__ == "__main__":
    main()
