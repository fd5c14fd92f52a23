#!/bin/sh
# scripts/cluster.sh: a development cluster in the background, from a
# cluster file (default integtests/config/3nodes.json).
#   scripts/cluster.sh start [FILE]   start every node (data in ./lockd-data/ID, logs there too)
#   scripts/cluster.sh stop           SIGTERM every node started here, wait for them
#   scripts/cluster.sh status         each node's /status
set -eu
cd "$(dirname "$0")/.."
FILE=${2:-integtests/config/3nodes.json}
RUN=lockd-data/cluster.pids

ids() { /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))))' "$1"; }
addr() { /usr/bin/python3 -c 'import json,sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
v = v["http"] if isinstance(v, dict) else v
print(v if ":" in v else v + ":2080")' "$1" "$2"; }

case "${1:-}" in
start)
    [ -x build/lockd ] || make
    mkdir -p lockd-data
    : > "$RUN"
    for id in $(ids "$FILE"); do
        mkdir -p "lockd-data/$id"
        ./build/lockd -cluster "$FILE" -id "$id" 2>"lockd-data/$id/lockd.log" &
        echo "$! $id $FILE" >> "$RUN"
        echo "node $id: pid $! http://$(addr "$FILE" "$id") log lockd-data/$id/lockd.log"
    done
    ;;
stop)
    [ -f "$RUN" ] || { echo "no cluster started from here"; exit 0; }
    while read -r pid id _; do kill "$pid" 2>/dev/null || true; done < "$RUN"
    while read -r pid id _; do
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        echo "node $id stopped"
    done < "$RUN"
    rm -f "$RUN"
    ;;
status)
    [ -f "$RUN" ] && FILE=$(awk 'NR==1 {print $3}' "$RUN")
    for id in $(ids "$FILE"); do
        printf 'node %s: ' "$id"
        curl -s --max-time 2 "http://$(addr "$FILE" "$id")/status" || printf 'down'
        echo
    done
    ;;
*)
    echo "usage: scripts/cluster.sh start [FILE] | stop | status" >&2
    exit 2
    ;;
esac
