#!/bin/sh
# scripts/bench.sh: wrk benchmarks of one lockd node on loopback.
#   scripts/bench.sh                  start a fresh node (LMDB store, temp dir)
#   scripts/bench.sh --url URL        benchmark a node that is already running
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
