#!/usr/bin/python3
"""scripts/bench/bench.py: helpers for scripts/bench-peers.sh (standard library only).

  ports N                      a base port B such that B..B+N-1, B+1000.., B+2000.. are free
  wrk                          parse wrk --latency output (stdin): "rps p50_ms p99_ms errors"
  rbench                       parse redis-benchmark --csv output (stdin): "rps p50_ms p99_ms 0"
  mem PGID                     "pss_kib rss_kib nprocs" over every process of the group
  memdetail PGID               that PSS by process and by kind, one line
  status URL FIELD             a field of lockd's GET /status (leader.id, locks, ...)
  waitok URL [TIMEOUT]         poll GET URL every 5 ms until 200; print the epoch time of it
  lockd-cluster-ready TIMEOUT URL...  wait until every node is ready and they agree on a leader
  caughtup URL LEADER_URL TIMEOUT     wait until a node's applied index reaches the leader's commit index
  failover PGID TIMEOUT URL...        kill -9 the group, POST through the URLs (a new attempt
                               every 20 ms, round robin) until one answers 200; print seconds
  redis-fill PORT START COUNT  SET fill-%015d 1 for COUNT names through redis-cli --pipe
  etcd-count URL PREFIX        number of etcd keys with that prefix
  etcd-rev URL                 etcd's current revision (one per write txn)
  report RESULTS META OUT      print the table, write docs/BENCHMARKS.md
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request


def die(msg):
    print("bench.py: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- ports
def can_bind(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def cmd_ports(n):
    import random
    n = int(n)
    # below the kernel's ephemeral range (32768+), so client sockets never take them
    for _ in range(500):
        base = random.randrange(20000, 29000 - n)
        if all(can_bind(base + off + i) for off in (0, 1000, 2000) for i in range(n)):
            print(base)
            return
    die("no free port range found")


# ---------------------------------------------------------------- parsers
def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        return float("nan")
    x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000, "m": x * 60000}[m.group(2)]


def cmd_wrk():
    out = sys.stdin.read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not rps:
        print("nan nan nan -1")
        return
    errors = int(bad.group(1)) if bad else 0
    if sock:
        errors += sum(int(x) for x in sock.groups())
    print("%s %.3f %.3f %d" % (rps.group(1), to_ms(p50.group(1)) if p50 else float("nan"),
                               to_ms(p99.group(1)) if p99 else float("nan"), errors))


def cmd_rbench():
    lines = [l for l in sys.stdin.read().splitlines() if l.startswith('"') and not l.startswith('"test"')]
    if not lines:
        print("nan nan nan -1")
        return
    f = [x.strip('"') for x in lines[-1].split('","')]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    print("%s %s %s 0" % (f[1], f[4], f[6]))


# ---------------------------------------------------------------- memory
def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # state ppid pgrp ...
            pids.append(int(d))
    return pids


def rollup(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Pss", "Rss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                out[k] = int(v.split()[0])
    return out


def cmd_mem(pgid):
    pss = rss = 0
    pids = group_pids(int(pgid))
    for pid in pids:
        try:
            r = rollup(pid)
        except OSError:
            continue
        pss += r.get("Pss", 0)
        rss += r.get("Rss", 0)
    print(pss, rss, len(pids))


def cmd_memdetail(pgid):
    """one line: PSS per process (by title) and by kind (anonymous, file, shared memory)."""
    parts, kinds = [], {"Pss_Anon": 0, "Pss_File": 0, "Pss_Shmem": 0}
    for pid in sorted(group_pids(int(pgid))):
        try:
            r = rollup(pid)
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                title = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        title = title.replace("lockd: ", "")
        title = title.split(" -")[0].split(" /")[0]
        parts.append("%s %.1f" % (title, r.get("Pss", 0) / 1024))
        for k in kinds:
            kinds[k] += r.get(k, 0)
    print("PSS by process (MiB): %s; by kind: anonymous %.1f, file-backed %.1f (mapped files: LMDB, binaries), "
          "shared memory %.1f (the lock table)" % (", ".join(parts), kinds["Pss_Anon"] / 1024,
                                                   kinds["Pss_File"] / 1024, kinds["Pss_Shmem"] / 1024))


# ---------------------------------------------------------------- HTTP
def http_req(url, method="GET", timeout=2.0, body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def get_status(url):
    st, body = http_req(url.rstrip("/") + "/status")
    if st != 200:
        raise OSError("status %d" % st)
    return json.loads(body)


def cmd_status(url, field):
    v = get_status(url)
    for part in field.split("."):
        v = v[part] if isinstance(v, dict) else None
    print(v)


def cmd_waitok(url, timeout="60"):
    end = time.time() + float(timeout)
    while time.time() < end:
        try:
            st, _ = http_req(url, timeout=1.0)
            if st == 200:
                print("%.6f" % time.time())
                return
        except OSError:
            pass
        time.sleep(0.005)
    die("no 200 from %s within %ss" % (url, timeout))


def cmd_cluster_ready(timeout, *urls):
    end = time.time() + float(timeout)
    while time.time() < end:
        try:
            leaders = set()
            for u in urls:
                st, _ = http_req(u.rstrip("/") + "/readyz", timeout=1.0)
                if st != 200:
                    raise OSError("not ready")
                leaders.add(get_status(u)["leader"]["id"])
            if len(leaders) == 1:
                lid = leaders.pop()
                for u in urls:
                    s = get_status(u)
                    if s["id"] == lid:
                        print(lid, u)
                        return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.05)
    die("cluster not ready within %ss" % timeout)


def cmd_caughtup(url, leader_url, timeout):
    end = time.time() + float(timeout)
    target = get_status(leader_url)["commit_index"]
    while time.time() < end:
        try:
            st, _ = http_req(url.rstrip("/") + "/readyz", timeout=1.0)
            if st == 200 and get_status(url)["applied_index"] >= target:
                return
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    die("%s did not catch up within %ss" % (url, timeout))


def cmd_failover(pgid, timeout, *urls):
    """kill -9 the process group, then time the first 200 to a POST through another node."""
    won = threading.Event()
    result = []
    lock = threading.Lock()
    tag = "fo%d-" % int(time.time() * 1000)

    def attempt(i, url, t0):
        try:
            st, _ = http_req("%s/lock/%s%d" % (url, tag, i), method="POST", timeout=10.0)
        except OSError:
            return
        if st == 200:
            t = time.time()
            with lock:
                if not won.is_set():
                    result.append(t - t0)
                    won.set()

    t0 = time.time()
    os.killpg(int(pgid), signal.SIGKILL)
    end = t0 + float(timeout)
    i = 0
    while not won.is_set() and time.time() < end:
        threading.Thread(target=attempt, args=(i, urls[i % len(urls)], t0), daemon=True).start()
        i += 1
        won.wait(0.02)
    if not result:
        die("no successful write within %ss" % timeout)
    print("%.3f" % result[0])
    sys.stdout.flush()
    os._exit(0)  # leave hanging attempts behind


# ---------------------------------------------------------------- fills
def cmd_redis_fill(port, start, count):
    start, count = int(start), int(count)
    p = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunk = []
    for n in range(start, start + count):
        chunk.append(b"*3\r\n$3\r\nSET\r\n$20\r\nfill-%015d\r\n$1\r\n1\r\n" % n)
        if len(chunk) == 10000:
            p.stdin.write(b"".join(chunk))
            chunk = []
    p.stdin.write(b"".join(chunk))
    p.stdin.close()
    out = p.stdout.read().decode()
    if p.wait() != 0 or "errors: 0" not in out:
        die("redis-cli --pipe: " + out)


def cmd_etcd_count(url, prefix):
    import base64
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                       "range_end": base64.b64encode(end.encode()).decode(), "count_only": True})
    st, out = http_req(url.rstrip("/") + "/v3/kv/range", method="POST", body=body, timeout=30.0)
    print(int(json.loads(out).get("count", 0)))


def cmd_etcd_rev(url):
    import base64
    body = json.dumps({"key": base64.b64encode(b"bench-rev").decode(), "serializable": True})
    st, out = http_req(url.rstrip("/") + "/v3/kv/range", method="POST", body=body, timeout=10.0)
    print(int(json.loads(out)["header"]["revision"]))


# ---------------------------------------------------------------- report
def fnum(x, nd=0):
    if x != x:  # nan
        return "n/a"
    return ("{:,.%df}" % nd).format(x)


def load_meta(path):
    """META is lines of KEY<TAB>VALUE written by bench-peers.sh; repeated keys make lists."""
    lists = ("setup", "note", "target_note", "failover_trial")
    kv = {k: [] for k in lists}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            if k in lists:
                kv[k].append(v)
            elif k:
                kv[k] = v

    def num(k):
        try:
            v = float(kv[k])
            return int(v) if v.is_integer() and "." not in kv[k] else v
        except (KeyError, ValueError):
            return None

    m = {k: kv.get(k, "?") for k in ("date", "nproc", "cpu", "kernel", "ram", "lockd_version", "redis_version",
                                     "etcd_version", "nginx_version", "wrk_version", "command", "duration",
                                     "elapsed_s")}
    m["quick"] = kv.get("quick") == "1"
    m["setup"], m["notes"], m["target_notes"] = kv["setup"], kv["note"], kv["target_note"]
    mem = {"count": num("mem_count")}
    for s in ("lockd", "redis", "etcd"):
        if num("mem_%s_pss" % s) is not None:
            mem[s] = {"pss_kib": num("mem_%s_pss" % s), "rss_kib": num("mem_%s_rss" % s),
                      "keys": num("mem_%s_keys" % s)}
        mem[s + "_note"] = kv.get("mem_%s_note" % s, "")
    if "lockd" in mem:
        mem["lockd"]["locks"] = mem["lockd"]["keys"]
    m["memory"] = mem
    if num("restart_to_serving_s") is not None:
        m["restart"] = {"locks": num("restart_locks"), "stop_s": num("restart_stop_s"),
                        "start_s": num("restart_start_s"), "to_serving_s": num("restart_to_serving_s")}
    else:
        m["restart"] = {}
    trials = [float(x) for x in kv["failover_trial"]]
    m["failover"] = {}
    if trials:
        st = sorted(trials)
        n = len(st)
        med = st[n // 2] if n % 2 else (st[n // 2 - 1] + st[n // 2]) / 2
        m["failover"] = {"trials_s": trials, "median_s": med, "max_s": st[-1],
                         "locks": kv.get("failover_locks", "?"),
                         "election_timeout": kv.get("failover_election_timeout", "1s (default)")}
    return m


def cmd_report(results, meta, out):
    rows = []
    with open(results) as f:
        for line in f:
            if not line.strip():
                continue
            system, workload, conns, rps, p50, p99, err = line.rstrip("\n").split("\t")
            rows.append(dict(system=system, workload=workload, conns=int(conns), rps=float(rps),
                             p50=float(p50), p99=float(p99), err=int(err)))
    m = load_meta(meta)

    def find(system, workload, conns=64):
        for r in rows:
            if r["system"] == system and r["workload"] == workload and r["conns"] == conns:
                return r
        return None

    # the reference row of each workload for the ratio columns
    etcd_ref = {"try-lock": ("etcd", "try-lock"), "lock+unlock": ("etcd", "lock+unlock"),
                "status": ("etcd", "status serializable"),
                "status linearizable": ("etcd", "status linearizable")}
    redis_ref = {"try-lock": ("redis-durable", "try-lock"), "lock+unlock": ("redis-durable", "lock+unlock"),
                 "status": ("redis-durable", "status"), "status linearizable": ("redis-durable", "status")}

    def group(workload):
        if workload.startswith("status"):
            return "status linearizable" if "linearizable" in workload else "status"
        return workload

    def ratio(r, refs):
        if r["workload"] == "try-lock sweep" and r["conns"] != 64:
            return "-"
        g = "try-lock" if r["workload"] == "try-lock sweep" else group(r["workload"])
        if g not in refs:
            return "-"
        ref = find(*refs[g])
        if ref is None or not ref["rps"] or ref["rps"] != ref["rps"]:
            return "-"
        return "%.2fx" % (r["rps"] / ref["rps"])

    head = ["system", "workload", "conns", "req/s", "p50 ms", "p99 ms", "x etcd", "x redis-durable", "errors"]
    table = []
    for r in rows:
        table.append([r["system"], r["workload"], str(r["conns"]), fnum(r["rps"]), fnum(r["p50"], 2),
                      fnum(r["p99"], 2), ratio(r, etcd_ref), ratio(r, redis_ref), str(r["err"])])
    widths = [max(len(head[i]), *(len(t[i]) for t in table)) for i in range(len(head))]
    txt = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    for t in table:
        txt.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(t, widths))))
    print("\n".join(txt))

    md_table = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for t in table:
        md_table.append("| " + " | ".join(t) + " |")

    # targets
    def rps(system, workload, conns=64):
        r = find(system, workload, conns)
        return r["rps"] if r else float("nan")

    def p99(system, workload, conns=64):
        r = find(system, workload, conns)
        return r["p99"] if r else float("nan")

    def rt(a, b):
        return a / b if b == b and b else float("nan")

    mem = m.get("memory", {})
    restart = m.get("restart", {})
    fo = m.get("failover", {})
    targets = []

    def target(name, measured, ok, note=""):
        if ok is None:
            status = "n/a"
        else:
            status = "met" if ok else "missed"
        targets.append("| %s | %s | %s |%s" % (name, measured, status, (" " + note) if note else ""))

    t1 = rt(rps("lockd-1", "try-lock"), rps("redis-durable", "try-lock"))
    target("try-lock, 1 node durable >= 1.0x redis-durable", "%.2fx" % t1, t1 >= 1.0 if t1 == t1 else None)
    t2 = rt(rps("lockd-1", "try-lock"), rps("etcd", "try-lock"))
    target("try-lock, 1 node durable >= 10x etcd", "%.1fx" % t2, t2 >= 10 if t2 == t2 else None)
    pp = p99("lockd-1", "try-lock")
    target("try-lock p99 <= 5 ms at 64 connections", "%.2f ms" % pp, pp <= 5 if pp == pp else None)
    t3 = rt(rps("lockd-1", "lock+unlock"), rps("redis-durable", "lock+unlock"))
    target("lock+unlock >= 1.0x redis-durable", "%.2fx" % t3, t3 >= 1.0 if t3 == t3 else None)
    t4 = rt(rps("lockd-1", "status"), rps("nginx", "fixed 200"))
    target("status GET >= 0.9x nginx fixed 200", "%.2fx" % t4, t4 >= 0.9 if t4 == t4 else None)
    t5 = rt(rps("lockd-1", "status"), rps("etcd", "status serializable"))
    target("status GET >= 10x etcd serializable", "%.1fx" % t5, t5 >= 10 if t5 == t5 else None)
    t6 = rt(rps("lockd-3", "try-lock"), rps("lockd-1", "try-lock"))
    target("3 nodes try-lock >= 0.7x 1 node", "%.2fx" % t6, t6 >= 0.7 if t6 == t6 else None)
    lm = mem.get("lockd", {})
    if mem.get("count") == 1000000 and (lm.get("locks") or 0) >= 1000000 and lm.get("pss_kib"):
        mib = lm["pss_kib"] / 1024
        target("1,000,000 held locks <= 150 MiB (all lockd processes, PSS)", "%.1f MiB" % mib, mib <= 150)
    else:
        target("1,000,000 held locks <= 150 MiB (all lockd processes, PSS)",
               "%.1f MiB with %s locks" % ((lm.get("pss_kib") or 0) / 1024, lm.get("locks")), None)
    if restart.get("to_serving_s") is not None and mem.get("count") == 1000000:
        target("restart with 1,000,000 locks, SIGTERM to serving <= 2 s", "%.2f s" % restart["to_serving_s"],
               restart["to_serving_s"] <= 2)
    else:
        target("restart with 1,000,000 locks, SIGTERM to serving <= 2 s",
               "%s s with %s locks" % (restart.get("to_serving_s"), mem.get("count")), None)
    if fo.get("median_s") is not None:
        target("failover median <= 1.5 s", "%.2f s (max %.2f s, %d trials)" % (fo["median_s"], fo["max_s"], len(fo["trials_s"])),
               fo["median_s"] <= 1.5)
    else:
        target("failover median <= 1.5 s", "not measured", None)

    def memrow(name, d, note):
        if not d or not d.get("pss_kib"):
            return "| %s | n/a | n/a | n/a | %s |" % (name, note)
        return "| %s | %s | %.1f | %.1f | %s |" % (name, fnum(d.get("keys", float("nan"))), d["pss_kib"] / 1024,
                                                    d["rss_kib"] / 1024, note)

    md = []
    md.append("# Benchmarks: lockd against etcd, Redis and nginx")
    md.append("")
    md.append("Generated by `scripts/bench-peers.sh` from one run; do not edit by hand, run it again.")
    md.append("")
    md.append("- Date: %s" % m["date"])
    md.append("- Machine: %s CPUs (`nproc`), %s, kernel %s, %s RAM" % (m["nproc"], m["cpu"], m["kernel"], m["ram"]))
    md.append("- Versions: %s; %s; %s; %s; %s" % (m["lockd_version"], m["redis_version"], m["etcd_version"],
                                                    m["nginx_version"], m["wrk_version"]))
    md.append("- Command: `%s`" % m["command"])
    md.append("- Duration per workload: %s; total run time: %s s%s" % (
        m["duration"], m.get("elapsed_s", "?"), " (QUICK=1 smoke run: figures are not comparable)" if m.get("quick") else ""))
    md.append("")
    md.append("Everything runs on one machine over loopback: the load generator (one thread) and the server")
    md.append("share its %s cores, and other people's builds and tests may run at the same time, so the" % m["nproc"])
    md.append("figures are noisy (run it twice and compare). Ratios are taken within this one run, where")
    md.append("systems alternate workload by workload, so drift hits all of them alike.")
    md.append("")
    md.append("## Setup")
    md.append("")
    for line in m["setup"]:
        md.append("- " + line)
    md.append("")
    md.append("## Throughput and latency")
    md.append("")
    md.append("`x etcd` and `x redis-durable` divide req/s by the same workload's etcd and redis-durable rows")
    md.append("(status: etcd's serializable range; status linearizable: etcd's linearizable range; Redis: GET).")
    md.append("`errors`: non-2xx answers plus socket errors/timeouts (wrk), or replies showing no state change")
    md.append("(redis lock+unlock). The sweep rows are lockd's 1-node try-lock at 1..256 connections.")
    md.append("")
    md.extend(md_table)
    md.append("")
    for note in m.get("notes", []):
        md.append("- " + note)
    md.append("")
    md.append("## Memory with %s held locks / keys" % fnum(float(mem.get("count", 0))))
    md.append("")
    md.append("PSS summed over every process of the system (the master and its children for lockd), read")
    md.append("from `/proc/PID/smaps_rollup`: shared memory (lockd's lock table, mapped by every process)")
    md.append("counts once. RSS sum counts it once per process that maps it. Each system is a fresh")
    md.append("instance holding only these keys; names are 20 bytes (`fill-%015d`), Redis/etcd values `1`.")
    md.append("")
    md.append("| system | keys | PSS MiB | RSS sum MiB | how it was filled |")
    md.append("|---|---:|---:|---:|---|")
    md.append(memrow("lockd 1 node (LMDB)", lm, mem.get("lockd_note", "")))
    md.append(memrow("redis (appendfsync always)", mem.get("redis"), mem.get("redis_note", "")))
    md.append(memrow("etcd", mem.get("etcd"), mem.get("etcd_note", "")))
    md.append("")
    md.append("## Restart and failover")
    md.append("")
    if restart:
        md.append("- lockd 1 node with %s locks: SIGTERM to exit %.2f s, start to first 200 for GET of a held lock "
                  "%.2f s, SIGTERM to serving %.2f s." % (fnum(float(restart.get("locks", 0))), restart["stop_s"],
                                                          restart["start_s"], restart["to_serving_s"]))
    if fo.get("trials_s"):
        md.append("- lockd 3 nodes, kill -9 of the leader's process group to the first 200 for a POST through "
                  "another node: median %.2f s, max %.2f s over %d trials (%s s). The cluster held %s locks; "
                  "election timeout %s." % (fo["median_s"], fo["max_s"], len(fo["trials_s"]),
                                            ", ".join("%.2f" % x for x in fo["trials_s"]),
                                            fo.get("locks", "?"), fo.get("election_timeout", "1s (default)")))
    md.append("")
    md.append("## Targets (issue 6)")
    md.append("")
    md.append("| target | measured | |")
    md.append("|---|---|---|")
    md.extend(targets)
    md.append("")
    for note in m.get("target_notes", []):
        md.append("- " + note)
    md.append("")
    # The profile and what was done about it: prose kept by hand next to
    # this script, appended so that the generated file stays whole.
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            md.append(f.read().rstrip("\n"))
        md.append("")
    with open(out, "w") as f:
        f.write("\n".join(md))
    print()
    print("\n".join(["memory: lockd %s MiB PSS (%s locks), redis %s MiB, etcd %s MiB (%s keys)" % (
        "%.1f" % (lm.get("pss_kib", 0) / 1024), lm.get("locks"),
        "%.1f" % (mem.get("redis", {}).get("pss_kib", 0) / 1024),
        "%.1f" % (mem.get("etcd", {}).get("pss_kib", 0) / 1024), mem.get("etcd", {}).get("keys"))]))
    if restart:
        print("restart: SIGTERM to serving %.2f s (stop %.2f s, start %.2f s)" % (
            restart["to_serving_s"], restart["stop_s"], restart["start_s"]))
    if fo.get("trials_s"):
        print("failover: median %.2f s, max %.2f s over %d trials" % (fo["median_s"], fo["max_s"], len(fo["trials_s"])))
    print()
    print("targets:")
    for t in targets:
        print("  " + t.strip("| ").replace(" | ", ": ", 1).replace(" | ", " -> ").rstrip(" |"))


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"ports": cmd_ports, "wrk": cmd_wrk, "rbench": cmd_rbench, "mem": cmd_mem, "memdetail": cmd_memdetail, "status": cmd_status,
          "waitok": cmd_waitok, "lockd-cluster-ready": cmd_cluster_ready, "caughtup": cmd_caughtup,
          "failover": cmd_failover, "redis-fill": cmd_redis_fill, "etcd-count": cmd_etcd_count,
          "etcd-rev": cmd_etcd_rev,
          "report": cmd_report}.get(cmd)
    if fn is None:
        die("unknown command " + cmd)
    fn(*args)


if __name__ == "__main__":
    main()
