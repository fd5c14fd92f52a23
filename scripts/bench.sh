#!/bin/sh
# scripts/bench.sh: wrk benchmarks of one lockd node on loopback.
#   scripts/bench.sh                  start a fresh node (LMDB store, temp dir)
#   scripts/bench.sh --url URL        benchmark a node that is already running
#   scripts/bench.sh --cluster 3      3-node cluster: via leader and follower, failover
# Env: DURATION (default 5s), CONNS (default 64), WORKERS (default 2).
# Prints one table: workload, connections, req/s, p50, p99, non-2xx.
# Figures are medians of nothing: run it twice and compare; the machine is
# shared and noisy. Not a test: nothing here fails on a slow run.
set -eu
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-2}
URL=""
[ "${1:-}" = "--url" ] && URL=$2
# --cluster N: the workloads against an N-node cluster (via the leader and a
# follower) and failover time over 10 trials: scripts/bench_cluster.py.
if [ "${1:-}" = "--cluster" ]; then
    exec /usr/bin/python3 scripts/bench_cluster.py --nodes "${2:-3}" --duration "$DURATION"
fi

command -v wrk >/dev/null || { echo "bench.sh: wrk is missing (scripts/deps.sh installs it)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/lockd-bench-XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

if [ -z "$URL" ]; then
    PORT=$(/usr/bin/python3 -c 'import socket
for _ in range(100):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if p + 1000 < 65536:
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", p + 1000)); print(p); break
        except OSError: pass
        finally: t.close()
    s.close()')
    ./build/lockd --listen 127.0.0.1:$PORT --data-dir "$TMP/data" --workers "$WORKERS" --log-level warn 2>"$TMP/log" &
    PID=$!
    URL=http://127.0.0.1:$PORT
    i=0
    until curl -fs "$URL/readyz" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "lockd did not become ready"; cat "$TMP/log"; exit 1; }
        sleep 0.1
    done
fi

RUN=0
run() { # name conns path [script]
    name=$1; c=$2; path=$3; script=${4:-}
    if [ -n "$script" ]; then
        RUN=$((RUN + 1))
        out=$(wrk -t1 -c"$c" -d"$DURATION" --latency -s "$script" "$URL$path" -- "r$$-$RUN")
    else
        out=$(wrk -t1 -c"$c" -d"$DURATION" --latency "$URL$path")
    fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    printf '%-28s %6s %12s %10s %10s %10s\n' "$name" "$c" "$rps" "$p50" "$p99" "${bad:-0}"
}

curl -fs -X POST "$URL/lock/bench-held" >/dev/null || true
printf '%-28s %6s %12s %10s %10s %10s\n' workload conns req/s p50 p99 non-2xx
run "ceiling GET /healthz" "$CONNS" /healthz
run "GET held lock" "$CONNS" /lock/bench-held
run "GET ?consistent=true" "$CONNS" "/lock/bench-held?consistent=true"
run "POST unique names" "$CONNS" / scripts/wrk/post_unique.lua
run "POST+DELETE cycles" "$CONNS" / scripts/wrk/cycle.lua
for c in 1 4 16 64 256; do
    run "POST unique (sweep)" "$c" / scripts/wrk/post_unique.lua
done

# ---- lock semantics (issue 3) ------------------------------------------------
metric() { curl -fs "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
run "POST with ttl=30s (unique)" "$CONNS" / scripts/wrk/post_ttl.lua
i=0
while [ $i -lt 1000 ]; do
    curl -fs -o /dev/null -X POST "$URL/lock/renew-$i?owner=bench&ttl=30s" || true
    i=$((i + 1))
done
run "renewals of held leases" "$CONNS" / scripts/wrk/renew.lua

h0=$(metric lockd_waiter_handoffs_total)
echo
echo "contended: 64 clients, 8 names, wait=1s (hand-overs from lockd_waiter_handoffs_total):"
secs=$(echo "$DURATION" | tr -dc 0-9)
/usr/bin/python3 scripts/bench_contended.py "$URL" --clients 64 --names 8 --seconds "${secs:-5}"
h1=$(metric lockd_waiter_handoffs_total)
echo "hand-overs/s: $(/usr/bin/python3 -c "print(round((${h1:-0} - ${h0:-0}) / ${secs:-5}, 1))")"

# Mass expiry: fill leases, then restart the Raft process so that every
# lease is timed afresh at the same moment (a new leader's full TTL), and
# compare GET p99 before and while they all expire together.
if [ -n "$PID" ]; then
    echo
    wrk -t1 -c64 -d6s -s scripts/wrk/post_ttl.lua "$URL/" -- "mass$$" 12s >/dev/null
    n=$(curl -fs "$URL/status" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["locks"])')
    raft=$(ps -o pid=,args= --ppid "$PID" | awk '/lockd: raft/ {print $1}')
    kill -9 "$raft"
    until curl -fs "$URL/readyz" >/dev/null 2>&1; do sleep 0.05; done
    t0=$(date +%s)
    sleep 2
    base=$(wrk -t1 -c64 -d4s --latency "$URL/lock/bench-held" | awk '$1=="99%" {print $2}')
    w=$((t0 + 11 - $(date +%s)))
    [ "$w" -gt 0 ] && sleep "$w"
    during=$(wrk -t1 -c64 -d4s --latency "$URL/lock/bench-held" | awk '$1=="99%" {print $2}')
    left=$(curl -fs "$URL/status" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["locks"])')
    echo "mass expiry: $n locks held (leases of 12s restarted together), GET p99 before: $base, while expiring: $during, locks left after: $left"
fi
