#!/bin/sh
# clients/bench/bench.sh: sequential try-lock + release round trips per second
# (one round trip = POST + DELETE) with each client library against raw
# keep-alive HTTP from the same language's standard library, on one fresh
# local node (memory store). Median of nine alternating rounds of SECONDS each (default 1).
# Usage: clients/bench/bench.sh [SECONDS]   (from the repository root, after make)
set -eu
SECS=${1:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
TMP=$(mktemp -d)
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ROOT/build/lockd" --listen 127.0.0.1:$PORT --data-dir "$TMP/data" --store memory --workers 1 \
    >"$TMP/lockd.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
URL=http://127.0.0.1:$PORT
i=0
until curl -sf "$URL/readyz" >/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "lockd did not start" >&2; cat "$TMP/lockd.log" >&2; exit 1; }
    sleep 0.05
done
mkdir -p "$TMP/classes"
javac --release 17 -d "$TMP/classes" $(find "$ROOT/clients/java/src/main/java" -name '*.java')
$PY "$ROOT/clients/bench/bench_python.py" "$URL" "$SECS"
ruby "$ROOT/clients/bench/bench_ruby.rb" "$URL" "$SECS"
java -cp "$TMP/classes" "$ROOT/clients/bench/Bench.java" "$URL" "$SECS"
