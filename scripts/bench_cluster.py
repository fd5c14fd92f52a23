#!/usr/bin/python3
"""scripts/bench_cluster.py: the single-node workloads of scripts/bench.sh
against an N-node loopback cluster, through the leader and through a
follower, then failover time (kill -9 of the leader's process group to the
first successful write through another node) over TRIALS trials.
A benchmark, not a test: prints figures, never fails on a slow run.

usage: bench_cluster.py [--nodes 3] [--duration 5s] [--trials 10] [--lockd build/lockd]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_ports(n):
    out, p = [], 12000
    while len(out) < n:
        p += 7
        if all(free(p + k) for k in (0, 1000, 2000)):
            out.append(p)
    return out


def get(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, None
    except Exception:
        return None, None


def post(url, timeout=0.5):
    req = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None


class Cluster:
    def __init__(self, lockd, n, tmp):
        self.lockd, self.tmp = lockd, tmp
        self.ports = dict(zip(range(1, n + 1), pick_ports(n)))
        self.file = os.path.join(tmp, "cluster.json")
        with open(self.file, "w") as f:
            json.dump({str(i): "127.0.0.1:%d" % p for i, p in self.ports.items()}, f)
        self.procs = {}

    def url(self, i):
        return "http://127.0.0.1:%d" % self.ports[i]

    def start(self, i):
        log = open(os.path.join(self.tmp, "n%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(
            [self.lockd, "-cluster", self.file, "-id", str(i), "--data-dir", os.path.join(self.tmp, "d%d" % i),
             "--workers", "1", "--log-level", "warn"], stdout=log, stderr=log, start_new_session=True)

    def kill(self, i):
        os.killpg(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait()

    def stop_all(self):
        for i, p in self.procs.items():
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(15)
            except Exception:
                pass

    def leader(self, timeout=20):
        """The node every running node names as leader (and that says so)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            named = set()
            claims = []
            for i in self.procs:
                st, body = get(self.url(i) + "/status")
                if st != 200:
                    named.add(None)
                    continue
                ld = body.get("leader") or {}
                named.add(ld.get("id"))
                if body.get("role") == "leader":
                    claims.append(i)
            if len(named) == 1 and claims == [next(iter(named))]:
                return claims[0]
            time.sleep(0.02)
        raise SystemExit("no leader")


def wrk(url, script=None, conns=64, duration="5s", args=()):
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d" + duration, "--latency"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if args:
        cmd += ["--"] + list(args)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (rps.group(1) if rps else "-", p50.group(1) if p50 else "-", p99.group(1) if p99 else "-",
            bad.group(1) if bad else "0")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--lockd", default=os.path.join(HERE, "..", "build", "lockd"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lockd-bench-cluster-")
    c = Cluster(os.path.abspath(a.lockd), a.nodes, tmp)
    try:
        for i in c.ports:
            c.start(i)
        lead = c.leader()
        follower = next(i for i in c.ports if i != lead)
        post(c.url(lead) + "/lock/bench-held")
        print("%-34s %6s %12s %10s %10s %8s" % ("workload (%d nodes)" % a.nodes, "conns", "req/s", "p50", "p99",
                                                 "non-2xx"))
        run = 0
        for label, node in (("leader", lead), ("follower", follower)):
            u = c.url(node)
            for name, path, script in (("GET held lock", "/lock/bench-held", None),
                                       ("POST unique names", "/", "post_unique.lua"),
                                       ("POST+DELETE cycles", "/", "cycle.lua")):
                run += 1
                sp = os.path.join(HERE, "wrk", script) if script else None
                r = wrk(u + path, sp, duration=a.duration, args=("c%d-%d" % (os.getpid(), run),) if script else ())
                print("%-34s %6d %12s %10s %10s %8s" % ("%s via %s" % (name, label), 64, *r))
        times = []
        for t in range(a.trials):
            lead = c.leader()
            others = [i for i in c.ports if i != lead]
            t0 = time.monotonic()
            c.kill(lead)
            k = 0
            while True:
                node = others[k % len(others)]
                k += 1
                if post(c.url(node) + "/lock/failover-%d-%d" % (os.getpid(), t)) == 200:
                    break
            times.append(time.monotonic() - t0)
            print("  trial %d: killed leader %d, first 200 via node %d after %.2f s" % (t + 1, lead, node, times[-1]))
            c.start(lead)
            # wait until the restarted node serves the write made while it was down
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if get(c.url(lead) + "/lock/failover-%d-%d" % (os.getpid(), t))[0] == 200:
                    break
                time.sleep(0.05)
        print("failover (kill -9 leader -> first 200 via another node), %d trials: median %.2f s, max %.2f s"
              % (len(times), statistics.median(times), max(times)))
    finally:
        c.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
