#!/usr/bin/env bash
# scripts/bench-peers.sh: lockd side by side with etcd, Redis and nginx (issue 6).
#
#   scripts/bench-peers.sh            full run (~10 s per workload, 1,000,000-lock
#                                     memory/restart figures, 10 failovers), writes
#                                     docs/BENCHMARKS.md; under 10 minutes
#   QUICK=1 scripts/bench-peers.sh    smoke run: 2 s per workload, 20,000 keys instead
#                                     of 1,000,000, 3 failovers; writes no file
#                                     unless OUT=FILE is given
#
# Env: DURATION (seconds per workload), FILL (keys for the memory figures),
# TRIALS (failovers), OUT (report file; empty: none), KEEP=1 (keep the temp
# dir with every log).
#
# Installs what is missing from Debian (etcd-server etcd-client redis-server
# redis-tools nginx-light wrk) with apt-get, and nothing else. Every server runs
# on 127.0.0.1 on free ports below 29000, with its data in a mktemp dir, in its
# own process group (setsid); everything it started is stopped on exit. The
# same workloads run against each system, wrk -t1 for HTTP and redis-benchmark
# (one thread) for Redis, 64 connections; systems alternate workload by
# workload. Helpers live in scripts/bench/. Not a test: nothing fails on a
# slow figure. Prints one table on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

T_START=$(date +%s)
CMD="scripts/bench-peers.sh"
for v in QUICK DURATION FILL TRIALS OUT; do
    if [ -n "${!v+x}" ]; then CMD="$v=${!v} $CMD"; fi
done
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    DURATION=${DURATION:-2}; FILL=${FILL:-20000}; TRIALS=${TRIALS:-3}; OUT=${OUT-}
else
    DURATION=${DURATION:-10}; FILL=${FILL:-1000000}; TRIALS=${TRIALS:-10}; OUT=${OUT-docs/BENCHMARKS.md}
fi
CONNS=64
BENCH_MAX_LOCKS=4194304   # lockd-1/lockd-3 keep every try-lock of the run
MEM_SETTLE_S=3            # every system idles this long after its fill before its memory is read
PY=/usr/bin/python3
H=scripts/bench/bench.py

log() { printf '%s [%3ds] %s\n' "$(date +%T)" "$(( $(date +%s) - T_START ))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ packages
PKGS="etcd-server etcd-client redis-server redis-tools nginx-light wrk"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    log "installing:$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' own services (redis on 6379, nginx on 80, etcd on 2379)
    # from starting: this script starts its own instances and nothing else.
    POLICY_ADDED=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        POLICY_ADDED=1
    fi
    # shellcheck disable=SC2086
    if ! $SUDO apt-get install -y -qq --no-install-recommends $missing >&2; then
        $SUDO apt-get update -qq >&2
        # shellcheck disable=SC2086
        $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
    fi
    [ -n "$POLICY_ADDED" ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi
for c in curl cc "$PY"; do
    command -v "$c" >/dev/null || { log "$c is missing: scripts/deps.sh installs lockd's dependencies"; scripts/deps.sh; break; }
done
[ -x build/lockd ] || make >&2

# ------------------------------------------------------------------ processes
TMP=$(mktemp -d /tmp/lockd-bench-peers-XXXXXX)
GROUPS_FILE=$TMP/groups   # "pgid starttime name" of every process group started here
: > "$GROUPS_FILE"

starttime() { # field 22 of /proc/PID/stat, or nothing
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo "${20}"
}

# ours PGID STARTTIME: is that group leader still the process we started?
ours() { [ -n "$2" ] && [ "$(starttime "$1")" = "$2" ]; }

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

cleanup() {
    local rc=$? pg st name
    trap - EXIT INT TERM
    while read -r pg st name; do
        # only a group whose leader is still the process we started (a pid can be reused)
        if ours "$pg" "$st"; then kill -TERM -- "-$pg" 2>/dev/null || true; fi
    done < "$GROUPS_FILE"
    local i
    for i in $(seq 100); do
        local alive=""
        while read -r pg st name; do
            ours "$pg" "$st" && alive=1
        done < "$GROUPS_FILE"
        [ -z "$alive" ] && break
        sleep 0.1
    done
    while read -r pg st name; do
        if ours "$pg" "$st"; then
            log "$name (group $pg) did not stop on SIGTERM: SIGKILL"
            kill -KILL -- "-$pg" 2>/dev/null || true
        fi
    done < "$GROUPS_FILE"
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
        log "logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME LOG CMD...: run CMD in a new session (its own process group);
# sets PG to its pid, which is also its process group id.
start() {
    local name=$1 logf=$2; shift 2
    setsid "$@" >"$logf" 2>&1 &
    PG=$!
    local st=""
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        st=$(starttime "$PG"); [ -n "$st" ] && break; sleep 0.01
    done
    echo "$PG $st $name" >> "$GROUPS_FILE"
    # a non-interactive shell puts background jobs in its own group, so setsid
    # does not fork: the pid we got leads the new group
    [ "$(ps -o pgid= -p "$PG" | tr -d ' ')" = "$PG" ] || die "$name: setsid forked, cannot track its group"
}

# stop_group PG: SIGTERM the group leader (lockd's master drains
# its children itself), wait until the whole group is gone
stop_group() {
    local pg=$1
    kill -TERM "$pg" 2>/dev/null || true
    for _ in $(seq 300); do group_alive "$pg" || break; sleep 0.05; done
    if group_alive "$pg"; then kill -KILL -- "-$pg" 2>/dev/null || true; fi
    wait "$pg" 2>/dev/null || true
}

wait_http() { # URL [TIMEOUT]
    $PY $H waitok "$1" "${2:-60}" >/dev/null || die "no 200 from $1"
}

# ------------------------------------------------------------------ ports
B=$($PY $H ports 16)
P_LOCKD1=$B
P_LOCKD3=($((B + 1)) $((B + 2)) $((B + 3)))   # Raft +1000, peer +2000
P_LOCKDMEM=$((B + 4))
P_REDIS_D=$((B + 5)); P_REDIS_N=$((B + 6)); P_REDIS_MEM=$((B + 7))
P_ETCD=$((B + 8)); P_ETCD_PEER=$((B + 9)); P_ETCDMEM=$((B + 10)); P_ETCDMEM_PEER=$((B + 11))
P_NGINX=$((B + 12))
log "temp dir $TMP, ports $B..$((B + 12)) (+1000, +2000 for lockd)"

cc -O2 -o "$TMP/redis_cycle" scripts/bench/redis_cycle.c

# ------------------------------------------------------------------ systems
start_lockd1() {
    start lockd-1 "$TMP/lockd1.log" ./build/lockd --listen "127.0.0.1:$P_LOCKD1" --data-dir "$TMP/lockd1" \
        --max-locks $BENCH_MAX_LOCKS --log-level warn
    PG_LOCKD1=$PG
    wait_http "http://127.0.0.1:$P_LOCKD1/readyz"
}

CLUSTER=$TMP/cluster.json
printf '{"101":"127.0.0.1:%s","102":"127.0.0.1:%s","103":"127.0.0.1:%s"}\n' "${P_LOCKD3[@]}" > "$CLUSTER"
declare -A PG_NODE URL_NODE
for i in 0 1 2; do URL_NODE[$((101 + i))]=http://127.0.0.1:${P_LOCKD3[$i]}; done
start_node() { # ID
    start "lockd-3 node $1" "$TMP/lockd3-$1.log.$(date +%s%N)" ./build/lockd -cluster "$CLUSTER" -id "$1" \
        --data-dir "$TMP/lockd3/$1" --max-locks $BENCH_MAX_LOCKS --log-level info
    PG_NODE[$1]=$PG
}
cluster_leader() { # sets LEADER_ID, LEADER_URL once all three nodes are ready and agree
    local out
    if ! out=$($PY $H lockd-cluster-ready 60 "${URL_NODE[101]}" "${URL_NODE[102]}" "${URL_NODE[103]}"); then
        for id in 101 102 103; do
            log "node $id: readyz $(curl -s -m 2 -o /dev/null -w '%{http_code}' "${URL_NODE[$id]}/readyz") status $(curl -s -m 2 "${URL_NODE[$id]}/status")"
        done
        die "lockd-3 not ready (logs: $TMP/lockd3-*.log.*)"
    fi
    LEADER_ID=${out%% *}; LEADER_URL=${out#* }
}

start_redis() { # NAME PORT FSYNC
    mkdir -p "$TMP/$1"
    start "$1" "$TMP/$1.log" redis-server --port "$2" --bind 127.0.0.1 --dir "$TMP/$1" --daemonize no \
        --appendonly yes --appendfsync "$3" --save "" --logfile "" --unixsocket "" --protected-mode yes
    for _ in $(seq 200); do redis-cli -p "$2" ping >/dev/null 2>&1 && return; sleep 0.05; done
    die "$1 did not start"
}

start_etcd() { # NAME CLIENT_PORT PEER_PORT
    start "$1" "$TMP/$1.log" etcd --name "$1" --data-dir "$TMP/$1" \
        --listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
        --listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
        --initial-cluster "$1=http://127.0.0.1:$3" --logger zap --log-level warn
    wait_http "http://127.0.0.1:$2/health"
}

start_nginx() {
    mkdir -p "$TMP/nginx"
    cat > "$TMP/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$P_NGINX;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
EOF
    start nginx "$TMP/nginx.log" nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
    PG_NGINX=$PG
    wait_http "http://127.0.0.1:$P_NGINX/"
}

etcd_put() { # PORT KEY VALUE
    local k v
    k=$(printf %s "$2" | base64); v=$(printf %s "$3" | base64)
    curl -fsS "http://127.0.0.1:$1/v3/kv/put" -d "{\"key\":\"$k\",\"value\":\"$v\"}" >/dev/null
}

log "starting lockd-1, lockd-3, redis-durable, redis-nofsync, etcd, nginx"
start_lockd1
for id in 101 102 103; do start_node $id; done
start_redis redis-durable "$P_REDIS_D" always
PG_REDIS_D=$PG
start_redis redis-nofsync "$P_REDIS_N" no
PG_REDIS_N=$PG
start_etcd etcd "$P_ETCD" "$P_ETCD_PEER"
PG_ETCD=$PG
start_nginx
cluster_leader
log "lockd-3 leader: node $LEADER_ID ($LEADER_URL)"

URL_LOCKD1=http://127.0.0.1:$P_LOCKD1
URL_ETCD=http://127.0.0.1:$P_ETCD
curl -fsS -X POST "$URL_LOCKD1/lock/bench-held" >/dev/null
curl -fsS -X POST "$LEADER_URL/lock/bench-held" >/dev/null
redis-cli -p "$P_REDIS_D" set bench-held 1 >/dev/null
redis-cli -p "$P_REDIS_N" set bench-held 1 >/dev/null
etcd_put "$P_ETCD" bench-held 1

# ------------------------------------------------------------------ runners
RESULTS=$TMP/results.tsv
META=$TMP/meta.tsv
: > "$RESULTS"; : > "$META"
meta() { printf '%s\t%s\n' "$1" "$2" >> "$META"; }
RUN_ID=$(date +%s)
SEQ=0

record() { # SYSTEM WORKLOAD CONNS "rps p50 p99 errors [requests]"
    local rps p50 p99 err
    read -r rps p50 p99 err _ <<< "$4"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$rps" "$p50" "$p99" "$err" >> "$RESULTS"
    log "$(printf '%-14s %-22s %4s conns %10s req/s  p50 %8s ms  p99 %8s ms  errors %s' "$1" "$2" "$3" "$rps" "$p50" "$p99" "$err")"
}

# wrk_run SYSTEM WORKLOAD CONNS URL [SCRIPT [ARGS...]]
wrk_run() {
    local system=$1 workload=$2 c=$3 url=$4 out
    shift 4
    if [ $# -gt 0 ]; then
        local script=$1; shift
        out=$(wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$script" "$url" -- "$@")
    else
        out=$(wrk -t1 -c"$c" -d"${DURATION}s" --latency "$url")
    fi
    SEQ=$((SEQ + 1))
    echo "$out" > "$TMP/wrk-$SEQ.txt"
    LAST_REQS=$(echo "$out" | awk '/requests in/ {print $1}')
    record "$system" "$workload" "$c" "$($PY $H wrk <<< "$out")"
}

# rb_run SYSTEM WORKLOAD PORT COMMAND...: redis-benchmark, 64 clients, no
# pipelining; -n from a short calibration run so it lasts about DURATION
rb_run() {
    local system=$1 workload=$2 port=$3 cal n
    shift 3
    cal=$(redis-benchmark -p "$port" -c $CONNS -P 1 -n 5000 -r 100000000 --csv "$@" | $PY $H rbench)
    n=$(awk -v r="${cal%% *}" -v d="$DURATION" 'BEGIN { n = int(r * d); if (n < 2000 || n != n) n = 2000; print n }')
    SEQ=$((SEQ + 1))
    record "$system" "$workload" $CONNS \
        "$(redis-benchmark -p "$port" -c $CONNS -P 1 -n "$n" -r 100000000 --csv "$@" | tee "$TMP/rb-$SEQ.txt" | $PY $H rbench)"
}

rc_run() { # SYSTEM PORT
    record "$1" lock+unlock $CONNS "$("$TMP/redis_cycle" "$2" $CONNS "$DURATION" 1000)"
}

# one function per (system, workload), so the order can rotate
trylock() {
    case $1 in
    lockd-1) wrk_run lockd-1 try-lock $CONNS "$URL_LOCKD1/" scripts/bench/lockd_trylock.lua "t$RUN_ID-$((SEQ + 1))-" ;;
    lockd-3) wrk_run lockd-3 try-lock $CONNS "$LEADER_URL/" scripts/bench/lockd_trylock.lua "t$RUN_ID-$((SEQ + 1))-" ;;
    redis-durable) rb_run redis-durable try-lock "$P_REDIS_D" SET 'lock:__rand_int__' 1 NX ;;
    redis-nofsync) rb_run redis-nofsync try-lock "$P_REDIS_N" SET 'lock:__rand_int__' 1 NX ;;
    etcd)
        local prefix="t$RUN_ID-$((SEQ + 1))-"
        wrk_run etcd try-lock $CONNS "$URL_ETCD/" scripts/bench/etcd.lua trylock "$prefix"
        local made
        made=$($PY $H etcd-count "$URL_ETCD" "lock/$prefix")
        ETCD_TRYLOCK_NOTE="etcd try-lock: the run created $made keys for $LAST_REQS answered txns (every txn took; the txns still in flight when wrk stopped land too)."
        ;;
    esac
}
cycles() {
    case $1 in
    lockd-1) wrk_run lockd-1 lock+unlock $CONNS "$URL_LOCKD1/" scripts/wrk/cycle.lua ;;
    lockd-3) wrk_run lockd-3 lock+unlock $CONNS "$LEADER_URL/" scripts/wrk/cycle.lua ;;
    redis-durable) rc_run redis-durable "$P_REDIS_D" ;;
    redis-nofsync) rc_run redis-nofsync "$P_REDIS_N" ;;
    etcd) wrk_run etcd lock+unlock $CONNS "$URL_ETCD/" scripts/bench/etcd.lua cycle ;;
    esac
}
status() {
    case $1 in
    lockd-1) wrk_run lockd-1 status $CONNS "$URL_LOCKD1/lock/bench-held" ;;
    lockd-3) wrk_run lockd-3 status $CONNS "$LEADER_URL/lock/bench-held" ;;
    redis-durable) rb_run redis-durable status "$P_REDIS_D" GET bench-held ;;
    etcd) wrk_run etcd "status serializable" $CONNS "$URL_ETCD/" scripts/bench/etcd.lua range bench-held serializable ;;
    esac
}
status_lin() {
    case $1 in
    lockd-1) wrk_run lockd-1 "status linearizable" $CONNS "$URL_LOCKD1/lock/bench-held?consistent=true" ;;
    lockd-3) wrk_run lockd-3 "status linearizable" $CONNS "$LEADER_URL/lock/bench-held?consistent=true" ;;
    etcd) wrk_run etcd "status linearizable" $CONNS "$URL_ETCD/" scripts/bench/etcd.lua range bench-held linearizable ;;
    esac
}
ceiling() {
    case $1 in
    nginx) wrk_run nginx "fixed 200" $CONNS "http://127.0.0.1:$P_NGINX/" ;;
    lockd-1) wrk_run lockd-1 "fixed 200" $CONNS "$URL_LOCKD1/healthz" ;;
    esac
}

# rotate FUNC ROUND SYSTEM...: run FUNC for every system, starting at ROUND mod n
rotate() {
    local fn=$1 r=$2; shift 2
    local sys=("$@") n=$# i
    for ((i = 0; i < n; i++)); do "$fn" "${sys[$(((i + r) % n))]}"; done
}

# ------------------------------------------------------------------ throughput
log "warm-up (1 s each, not recorded)"
SAVED=$DURATION; DURATION=1
for s in lockd-1 lockd-3 redis-durable redis-nofsync etcd; do trylock $s; done
ceiling nginx
: > "$RESULTS"; DURATION=$SAVED
ETCD_TRYLOCK_NOTE=""

log "workloads at $CONNS connections, ${DURATION} s each"
rotate trylock 0 lockd-1 lockd-3 redis-durable redis-nofsync etcd
rotate cycles 1 lockd-1 lockd-3 redis-durable redis-nofsync etcd
rotate status 2 lockd-1 lockd-3 redis-durable etcd
rotate status_lin 1 lockd-1 lockd-3 etcd
rotate ceiling 1 nginx lockd-1
log "lockd-1 try-lock sweep"
for c in 1 4 16 64 256; do
    wrk_run lockd-1 "try-lock sweep" $c "$URL_LOCKD1/" scripts/bench/lockd_trylock.lua "s$RUN_ID-$c-"
done
LOCKS_AFTER=$($PY $H status "$URL_LOCKD1" locks)

log "stopping the throughput instances (lockd-3 stays for the failovers)"
for pg in $PG_LOCKD1 $PG_REDIS_D $PG_REDIS_N $PG_ETCD $PG_NGINX; do stop_group "$pg"; done

# ------------------------------------------------------------------ memory
# fill_watch TARGET COUNT_CMD...: while wrk ($WRK_PID) fills, poll COUNT_CMD
# until it reaches TARGET, wrk ends, or the count stalls for 10 s; then stop
# wrk with SIGINT (wrk cannot end a run early by itself)
fill_watch() {
    local target=$1 last=-1 stall=0 have
    shift
    while kill -0 "$WRK_PID" 2>/dev/null; do
        sleep 0.25
        have=$("$@" 2>/dev/null) || have=0
        [ "$have" -ge "$target" ] && break
        if [ "$have" = "$last" ]; then
            stall=$((stall + 1)); [ $stall -ge 40 ] && { log "fill stalled at $have"; break; }
        else
            stall=0; last=$have
        fi
    done
    kill -INT "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" || true
}

meta mem_count "$FILL"
URL_MEM=http://127.0.0.1:$P_LOCKDMEM
LOCKDMEM_CMD=(./build/lockd --listen "127.0.0.1:$P_LOCKDMEM" --data-dir "$TMP/lockdmem" --log-level warn)
start lockd-mem "$TMP/lockdmem.log" "${LOCKDMEM_CMD[@]}"
PG_MEM=$PG
wait_http "$URL_MEM/readyz"
log "lockd: filling $FILL locks (wrk -c256, POST of 20-byte names)"
known="$URL_MEM/lock/fill-000000000000000"
t0=$(date +%s.%N)
curl -fsS -X POST "$known" >/dev/null
next=1
for attempt in 1 2 3 4 5; do
    have=$($PY $H status "$URL_MEM" locks)
    [ "$have" -ge "$FILL" ] && break
    want=$((FILL - have))
    wrk -t1 -c256 -d600s --timeout 10s -s scripts/bench/lockd_fill.lua "$URL_MEM/" -- "$next" "$want" \
        > "$TMP/fill-lockd-$attempt.txt" &
    WRK_PID=$!
    fill_watch "$FILL" $PY $H status "$URL_MEM" locks
    next=$((next + want))
done
t1=$(date +%s.%N)
LOCKS=$($PY $H status "$URL_MEM" locks)
FILL_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
sleep $MEM_SETTLE_S
read -r pss rss np <<< "$($PY $H mem "$PG_MEM")"
meta mem_lockd_pss "$pss"; meta mem_lockd_rss "$rss"; meta mem_lockd_keys "$LOCKS"
meta mem_lockd_note "$np processes (master, raft, $((np - 2)) worker(s)), default options (LMDB, --max-locks 1048576); $LOCKS POSTs of unique names by wrk -c256 in $FILL_S s"
log "lockd: $LOCKS locks in $FILL_S s, PSS $((pss / 1024)) MiB over $np processes (RSS sum $((rss / 1024)) MiB)"
meta note "lockd 1 node with $LOCKS locks: $($PY $H memdetail "$PG_MEM"). Not in PSS: the LMDB file ($(du -m "$TMP/lockdmem/locks.mdb" | cut -f1) MiB on disk) has $(fincore -n -b -o RES "$TMP/lockdmem/locks.mdb" | awk '{printf "%.1f", $1 / 1048576}') MiB in the page cache (reclaimable, like Redis's AOF: the Raft process unmaps the LMDB pages its commits walk once a second)."

log "lockd: restart with $LOCKS locks"
wait_http "$known" 5
t0=$(date +%s.%N)
stop_group "$PG_MEM"
t1=$(date +%s.%N)
start lockd-mem "$TMP/lockdmem-2.log" "${LOCKDMEM_CMD[@]}"
PG_MEM=$PG
t3=$($PY $H waitok "$known" 120)
read -r stop_s start_s total_s <<< "$(awk -v a="$t0" -v b="$t1" -v c="$t3" 'BEGIN { printf "%.3f %.3f %.3f", b - a, c - b, c - a }')"
meta restart_locks "$LOCKS"; meta restart_stop_s "$stop_s"; meta restart_start_s "$start_s"; meta restart_to_serving_s "$total_s"
log "lockd: stop $stop_s s, start to serving $start_s s, SIGTERM to serving $total_s s"
sleep $MEM_SETTLE_S
read -r pss2 _ _ <<< "$($PY $H mem "$PG_MEM")"
meta note "lockd 1 node after the restart with $LOCKS locks: PSS $((pss2 / 1024)) MiB (before: $((pss / 1024)) MiB)."
stop_group "$PG_MEM"

log "redis: filling $FILL keys (redis-cli --pipe, appendfsync always)"
start_redis redis-mem "$P_REDIS_MEM" always
PG_RMEM=$PG
t0=$(date +%s.%N)
$PY $H redis-fill "$P_REDIS_MEM" 0 "$FILL"
t1=$(date +%s.%N)
keys=$(redis-cli -p "$P_REDIS_MEM" dbsize)
sleep $MEM_SETTLE_S
read -r pss rss np <<< "$($PY $H mem "$PG_RMEM")"
used=$(redis-cli -p "$P_REDIS_MEM" info memory | awk -F: '/^used_memory:/ {printf "%.1f", $2 / 1048576}')
meta mem_redis_pss "$pss"; meta mem_redis_rss "$rss"; meta mem_redis_keys "$keys"
meta mem_redis_note "SET fill-... 1 through redis-cli --pipe in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; INFO used_memory $used MiB"
log "redis: $keys keys, PSS $((pss / 1024)) MiB"
stop_group "$PG_RMEM"

log "etcd: filling $FILL keys (txns of 50 puts through the JSON gateway, wrk -c64)"
start_etcd etcd-mem "$P_ETCDMEM" "$P_ETCDMEM_PEER"
PG_EMEM=$PG
URL_EMEM=http://127.0.0.1:$P_ETCDMEM
t0=$(date +%s.%N)
next=0
for attempt in 1 2 3 4 5; do
    have=$($PY $H etcd-count "$URL_EMEM" fill-)
    [ "$have" -ge "$FILL" ] && break
    want=$((FILL - have))
    rev=$($PY $H etcd-rev "$URL_EMEM")
    wrk -t1 -c64 -d600s --timeout 30s -s scripts/bench/etcd_fill.lua "$URL_EMEM/" -- "$next" "$want" 50 \
        > "$TMP/fill-etcd-$attempt.txt" &
    WRK_PID=$!
    fill_watch $((rev + (want + 49) / 50)) $PY $H etcd-rev "$URL_EMEM"
    next=$((next + want))
done
t1=$(date +%s.%N)
keys=$($PY $H etcd-count "$URL_EMEM" fill-)
sleep $MEM_SETTLE_S
read -r pss rss np <<< "$($PY $H mem "$PG_EMEM")"
dbsize=$(du -m "$TMP/etcd-mem/member/snap/db" 2>/dev/null | cut -f1)
meta mem_etcd_pss "$pss"; meta mem_etcd_rss "$rss"; meta mem_etcd_keys "$keys"
meta mem_etcd_note "txns of 50 puts (default --max-txn-ops 128) through /v3/kv/txn, wrk -c64, in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; bbolt file ${dbsize:-?} MiB. With $((FILL / 50)) Raft entries, below the default --snapshot-count 100000, the in-memory Raft log still holds every put; a fill of single puts would keep 5,000-105,000 entries"
log "etcd: $keys keys, PSS $((pss / 1024)) MiB"
stop_group "$PG_EMEM"

# ------------------------------------------------------------------ failover
cluster_leader
FO_LOCKS=$($PY $H status "$LEADER_URL" locks)
log "lockd-3 failover: $TRIALS trials, the cluster holds $FO_LOCKS locks"
meta failover_locks "$FO_LOCKS"
for trial in $(seq "$TRIALS"); do
    others=()
    for id in 101 102 103; do [ "$id" = "$LEADER_ID" ] || others+=("${URL_NODE[$id]}"); done
    killed=$LEADER_ID
    secs=$($PY $H failover "${PG_NODE[$killed]}" 30 "${others[@]}") || die "failover trial $trial: no write succeeded"
    wait "${PG_NODE[$killed]}" 2>/dev/null || true
    for _ in $(seq 200); do group_alive "${PG_NODE[$killed]}" || break; sleep 0.05; done
    meta failover_trial "$secs"
    start_node "$killed"
    cluster_leader
    $PY $H caughtup "${URL_NODE[$killed]}" "$LEADER_URL" 120 || die "node $killed did not catch up"
    log "failover $trial: killed node $killed, first write after $secs s; new leader $LEADER_ID"
done

# ------------------------------------------------------------------ report
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
meta kernel "$(uname -r)"
meta ram "$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
meta lockd_version "$(./build/lockd --version 2>&1 | head -1)"
meta redis_version "$(redis-server --version | awk '{print $1, $2, $3}')"
meta etcd_version "$(etcd --version | head -1)"
meta nginx_version "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
meta wrk_version "$(wrk -v 2>&1 | awk 'NR==1 {print $1, $2}')"
meta command "$CMD"
meta duration "${DURATION} s"
meta quick "$QUICK"
meta setup "lockd-1: \`build/lockd --listen 127.0.0.1:PORT --data-dir TMP --max-locks $BENCH_MAX_LOCKS\` (LMDB store, fsync'd group commit, default --workers: CPUs - 1 = $(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))). --max-locks is raised so the run's try-locks never fill the table; the memory figure uses a fresh node with the default."
meta setup "lockd-3: three nodes on this machine (\`-cluster FILE -id 101..103\`, HTTP p, Raft p+1000, peer p+2000), each with its own data dir on the same disk; workloads go to the leader (node $LEADER_ID at the end)."
meta setup "redis-durable: \`redis-server --appendonly yes --appendfsync always --save ''\`; redis-nofsync: the same with \`--appendfsync no\` (AOF written, flushing left to the kernel)."
meta setup "etcd: single member, default options (fsync on every commit), v3 JSON gateway: try-lock = \`/v3/kv/txn\` put-if-absent (compare create_revision == 0, then put); unlock = \`/v3/kv/deleterange\`; status = \`/v3/kv/range\` with and without \`serializable\`."
meta setup "nginx: \`return 200 '{\"status\":\"ok\"}'\`, worker_processes auto, access_log off: the HTTP ceiling; lockd's counterpart is \`GET /healthz\` (same body)."
meta setup "Clients: \`wrk -t1 -c64 -d${DURATION}s --latency\` for HTTP; for Redis \`redis-benchmark -c 64 -P 1 -r 100000000 --csv\` (SET lock:__rand_int__ 1 NX; GET bench-held), with -n set from a short calibration run so each lasts about ${DURATION} s; Redis lock+unlock with scripts/bench/redis_cycle.c (below)."
meta setup "Workloads: try-lock = POST of unique names (scripts/bench/lockd_trylock.lua); lock+unlock = scripts/wrk/cycle.lua (POST then DELETE, 1000 names, both counted); status = GET of a held lock (lockd default: from shared memory; \`?consistent=true\`: read index through the leader)."
meta note "Redis lock+unlock: redis-benchmark runs one command per test, so scripts/bench/redis_cycle.c (one thread, 64 connections, pipelining 1) alternates SET cycle:N 1 NX and DEL cycle:N on 1000 names, each connection on its own names; every reply is checked to be a real change (a failed SET NX or a DEL of a missing key never reaches the AOF, so it costs no fsync)."
meta note "scripts/bench/lockd_trylock.lua replaces scripts/wrk/post_unique.lua here: the latter takes its name prefix from LuaJIT's unseeded math.random, so every wrk run repeats the same names and a second run against the same node answers 409s."
[ -n "$ETCD_TRYLOCK_NOTE" ] && meta note "$ETCD_TRYLOCK_NOTE"
meta note "Redis try-lock keys are random out of 10^8 (__rand_int__), so a few SET NX find the key taken (answered nil, still counted); lockd-1 held $LOCKS_AFTER locks after the run's try-locks."
meta failover_election_timeout "800 ms (default), heartbeat 100 ms"
meta target_note "Failover: lockd's --election-timeout is 800 ms and the C Raft library randomizes each follower's timeout between 1x and 2x of it, so the first follower stands for election 0.8-1.6 s after the leader's last heartbeat (the earlier of two draws: 1.07 s on average), then a pre-vote and a vote round; the trials above sit in that window."
meta target_note "lockd-1's sweep runs last, with the most locks held ($LOCKS_AFTER at the end of the run)."
meta target_note "Figures are from a shared 2-core machine with the load generator on the same cores; a missed ratio near its mark may flip between runs. The profile behind the remaining gaps, and what was changed, is in the section below (kept by hand in scripts/bench/analysis.md)."
meta elapsed_s "$(( $(date +%s) - T_START ))"

if [ -n "$OUT" ]; then
    $PY $H report "$RESULTS" "$META" "$OUT"
    log "wrote $OUT"
else
    $PY $H report "$RESULTS" "$META" /dev/null
fi
log "done in $(( $(date +%s) - T_START )) s"
