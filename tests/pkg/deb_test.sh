#!/bin/bash
# tests/pkg/deb_test.sh PKGDIR DIST_TARBALL: the Debian package and the
# release tarball, installed for real (make deb-test; needs root).
#
#  1. lintian on the package make deb built (no error, no warning);
#  2. in the background: the same tree rebuilt as version VERSION+upgrade1;
#  3. a fresh Debian 12 root (debootstrap minbase, cached under PKGDIR);
#  4. the tarball in that root, with no -dev package and none of lockd's
#     libraries installed: checksums, ldd, lockd and lockctl run;
#  5. apt-get install of the .deb: files, conffile, user, group, dirs;
#     systemd-analyze verify and security (<= 2.0) on the installed unit;
#  6. lockd started as the unit's ExecStart (user lockd, its config file,
#     the unit's RuntimeDirectory/StateDirectory/UMask emulated: systemd
#     does not run in a chroot), READY=1 on a stand-in notify socket,
#     lock/unlock over HTTP, `lockctl status` as a member of group lockd
#     (not root) and refused for a non-member, a reload (ExecReload's
#     SIGHUP) applying a changed log-level, STOPPING=1 on SIGTERM;
#  7. upgrade to the rebuilt package: the locally changed conffile and the
#     data are kept, a lock taken before is still held with its token;
#  8. apt-get purge: data and configuration gone, the lockd user kept.
#
# Runs in its own mount and PID namespaces: every mount it makes and every
# process it starts goes away with it, even when it fails.
set -euo pipefail

if [ -z "${LOCKD_DEB_TEST_NS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "deb_test.sh: needs root (debootstrap, chroot)" >&2; exit 2; }
    export LOCKD_DEB_TEST_NS=1
    exec unshare --mount --propagation private --pid --fork --mount-proc --kill-child "$0" "$@"
fi

[ $# -eq 2 ] || { echo "usage: $0 PKGDIR DIST_TARBALL" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
PKG=$(cd "$1" && pwd)
TARBALL=$(realpath "$2")
ROOT="$PKG/root"
CACHE="$PKG/cache"
T0=$(date +%s)
PY=/usr/bin/python3

step() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }
fail() { echo "deb_test.sh: FAIL: $*" >&2; exit 1; }
in_root() { chroot "$ROOT" "$@"; }
# wait_for DEADLINE_S DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
    local deadline=$(( $(date +%s) + $1 )) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for: $what"
        sleep 0.1
    done
}
http() { # http METHOD PATH -> prints the status code
    curl -s -o /dev/null -w '%{http_code}' -X "$1" "http://127.0.0.1:$PORT$2"
}
expect_http() { # expect_http METHOD PATH STATUS
    local got
    got=$(http "$1" "$2")
    [ "$got" = "$3" ] || fail "$1 $2 answered $got, want $3"
}
is_ready() { [ "$(http GET /readyz)" = 200 ]; }
free_port() { # a port P with P, P+1000 and P+2000 free (HTTP, Raft, peer)
    $PY - <<'PYEOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(1000):
    p = random.randrange(12000, 28000)
    if all(free(p + k) for k in (0, 1000, 2000)):
        print(p); break
PYEOF
}

# ---- 1. lintian ------------------------------------------------------------
CHANGES=$(ls "$PKG"/lockd_*.changes)
DEB=$(ls "$PKG"/lockd_*.deb)
VERSION=$(dpkg-deb -f "$DEB" Version)
NEW_VERSION="$VERSION+upgrade1"
step "lintian $(basename "$CHANGES")"
rc=0
lintian --fail-on error,warning "$CHANGES" > "$PKG/lintian.txt" 2>&1 || rc=$?
grep -v "running with root privileges" "$PKG/lintian.txt" || true
[ "$rc" = 0 ] || fail "lintian reports errors or warnings"

# ---- 2. the upgrade package, built meanwhile --------------------------------
step "building $NEW_VERSION in the background"
DEB_BUILD_OPTIONS=nocheck "$HERE/build_deb.sh" "$PKG/upgrade" "$NEW_VERSION" > "$PKG/upgrade-build.out" 2>&1 &
UPGRADE_BUILD=$!

# ---- 3. a fresh Debian 12 root ---------------------------------------------
step "fresh Debian 12 root in $ROOT"
"$HERE/debian_root.sh" "$CACHE" "$ROOT"
mount -t proc proc "$ROOT/proc"
mkdir -p "$CACHE/apt-archives/partial"
mount --bind "$CACHE/apt-archives" "$ROOT/var/cache/apt/archives"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
export DEBIAN_FRONTEND=noninteractive
in_root apt-get -q update > "$PKG/apt-update.log" 2>&1 || { cat "$PKG/apt-update.log"; fail "apt-get update"; }

# ---- 4. the release tarball --------------------------------------------------
step "release tarball $(basename "$TARBALL")"
# OpenSSL is the system's (see packaging/packaging.mk); nothing else is added.
in_root apt-get install -y -q --no-install-recommends libssl3 > "$PKG/apt-tarball.log" 2>&1 || fail "libssl3"
if in_root dpkg-query -W -f '${Package}\n' | grep -- '-dev$'; then fail "a -dev package is installed"; fi
for lib in libh2o-evloop0.13 liblmdb0 libprotobuf-c1 libuv1 libjemalloc2 libraft2; do
    if in_root dpkg-query -W -f '${Status}' "$lib" 2>/dev/null | grep -q "ok installed"; then
        fail "$lib is installed: the tarball test would not show a missing library"
    fi
done
mkdir -p "$ROOT/opt"
tar -C "$ROOT/opt" -xzf "$TARBALL"
DIST=/opt/$(basename "$TARBALL" .tar.gz)
(cd "$ROOT$DIST" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS"
for f in bin/lockd bin/lockctl share/man/man8/lockd.8.gz share/man/man8/lockctl.8.gz etc/lockd.service \
    etc/lockd.conf README.md LICENSE INSTALL-tarball.md; do
    [ -f "$ROOT$DIST/$f" ] || fail "tarball lacks $f"
done
for bin in lockd lockctl; do
    in_root ldd "$DIST/bin/$bin" > "$PKG/ldd-$bin.txt"
    while read -r name _ path _; do
        case "$name" in
        linux-vdso.so.* | /lib64/ld-linux-x86-64.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | \
            librt.so.* | libgcc_s.so.1 | libssl.so.3 | libcrypto.so.3 | libz.so.1) ;;
        *) case "$path" in "$DIST/"*) ;; *) fail "$bin needs $name ($path)" ;; esac ;;
        esac
    done < "$PKG/ldd-$bin.txt"
    if grep -q "not found" "$PKG/ldd-$bin.txt"; then fail "$bin: a library is not found"; fi
done
[ "$(in_root "$DIST/bin/lockd" --version | sed 1d)" = "$(in_root "$DIST/bin/lockctl" --version | sed 1d)" ] ||
    fail "lockd and lockctl --version differ"
PORT=$(free_port)
mkdir -p "$ROOT/tmp/tarball-data" && chown nobody:nogroup "$ROOT/tmp/tarball-data"
chroot --userspec=nobody:nogroup "$ROOT" "$DIST/bin/lockd" --listen "127.0.0.1:$PORT" --workers 1 \
    --data-dir /tmp/tarball-data > "$PKG/tarball-lockd.log" 2>&1 &
TPID=$!
wait_for 60 "tarball lockd /readyz" is_ready
expect_http POST "/lock/from-tarball" 200
expect_http POST "/lock/from-tarball" 409
expect_http DELETE "/lock/from-tarball" 200
chroot --userspec=nobody:nogroup "$ROOT" "$DIST/bin/lockctl" --socket /tmp/tarball-data/lockd.sock status \
    > "$PKG/tarball-lockctl.txt" || fail "tarball lockctl status"
kill -TERM "$TPID"
wait "$TPID" || fail "tarball lockd exited with $?"

# ---- 5. install the package ------------------------------------------------
step "apt-get install $(basename "$DEB")"
# What any systemd machine has (minbase has none of it): systemd for
# systemd-analyze, procps for the unit's /bin/kill, man-db for its man: links.
in_root apt-get install -y -q --no-install-recommends systemd procps man-db < /dev/null \
    > "$PKG/apt-systemd.log" 2>&1 || { tail -30 "$PKG/apt-systemd.log"; fail "installing systemd in the root"; }
cp "$DEB" "$ROOT/tmp/"
in_root apt-get install -y -q "/tmp/$(basename "$DEB")" < /dev/null > "$PKG/apt-install.log" 2>&1 ||
    { tail -30 "$PKG/apt-install.log"; fail "apt-get install"; }
for f in /usr/sbin/lockd /usr/bin/lockctl /usr/share/man/man8/lockd.8.gz /usr/share/man/man8/lockctl.8.gz \
    /etc/lockd/lockd.conf /lib/systemd/system/lockd.service; do
    [ -f "$ROOT$f" ] || fail "$f not installed"
done
in_root dpkg-query -W -f '${Conffiles}\n' lockd | grep -q "^ /etc/lockd/lockd.conf " || fail "lockd.conf is no conffile"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/lockd.service" ] || fail "the unit is not enabled"
in_root getent passwd lockd | grep -q ":/var/lib/lockd:/usr/sbin/nologin$" || fail "no system user lockd"
in_root getent group lockd > /dev/null || fail "no group lockd"
[ "$(in_root stat -c '%U:%G %a' /var/lib/lockd)" = "lockd:lockd 750" ] || fail "/var/lib/lockd owner or mode"
zcat "$ROOT/usr/share/man/man8/lockd.8.gz" | grep -q -- "--admin-group" || fail "lockd(8) lacks --admin-group"

UNIT="$ROOT/lib/systemd/system/lockd.service"
step "systemd-analyze verify and security"
# verify wants the binaries, users and man pages the unit names: from
# inside the root, where the package is installed.
in_root systemd-analyze verify /lib/systemd/system/lockd.service > "$PKG/verify.txt" 2>&1 ||
    { cat "$PKG/verify.txt"; fail "verify"; }
if [ -s "$PKG/verify.txt" ]; then cat "$PKG/verify.txt"; fail "systemd-analyze verify printed warnings"; fi
in_root systemd-analyze security --offline=true /lib/systemd/system/lockd.service > "$PKG/security.txt" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for lockd.service: \([0-9.]*\).*/\1/p' "$PKG/security.txt")
[ -n "$score" ] || { cat "$PKG/security.txt"; fail "no security score"; }
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score > 2.0"
echo "   systemd-analyze security: $score"

# ---- 6. run it as the unit does --------------------------------------------
unit_key() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
EXEC_START=$(unit_key ExecStart)
RUN_USER=$(unit_key User)
RUN_GROUP=$(unit_key Group)
RUN_UMASK=$(unit_key UMask)
NOTIFY_LOG="$PKG/notify.log"
# start_unit: what systemd does for ExecStart (no systemd in a chroot).
start_unit() {
    for d in "RuntimeDirectory:/run" "StateDirectory:/var/lib"; do
        local key=${d%%:*} base=${d#*:} name mode
        name=$(unit_key "$key")
        mode=$(unit_key "${key}Mode")
        mkdir -p "$ROOT$base/$name"
        chroot "$ROOT" chown "$RUN_USER:$RUN_GROUP" "$base/$name"
        chmod "${mode:-0755}" "$ROOT$base/$name"
    done
    : > "$NOTIFY_LOG"
    "$PY" "$HERE/notify_listen.py" "$ROOT/run/systemd-notify" "$NOTIFY_LOG" &
    NOTIFY_PID=$!
    wait_for 10 "notify socket" grep -q listening "$NOTIFY_LOG"
    # shellcheck disable=SC2086 # ExecStart is split into words as systemd does
    chroot --userspec="$RUN_USER:$RUN_GROUP" "$ROOT" /usr/bin/env -i NOTIFY_SOCKET=/run/systemd-notify \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c "umask $RUN_UMASK && exec $EXEC_START" \
        >> "$PKG/lockd-unit.log" 2>&1 &
    MAINPID=$!
    wait_for 90 "READY=1 from lockd" grep -q "^$MAINPID READY=1" "$NOTIFY_LOG"
    [ "$(http GET /readyz)" = 200 ] || fail "READY=1 sent but /readyz is not 200"
}
stop_unit() {
    kill -TERM "$MAINPID"
    wait_for 60 "STOPPING=1 from lockd" grep -q "^$MAINPID STOPPING=1" "$NOTIFY_LOG"
    local rc=0
    wait "$MAINPID" || rc=$?
    [ "$rc" = 0 ] || fail "lockd exited with $rc after SIGTERM"
    kill "$NOTIFY_PID" 2>/dev/null || true
    wait "$NOTIFY_PID" 2>/dev/null || true
}
as_user() { # as_user USER COMMAND: a login-like shell of USER in the root
    chroot "$ROOT" su -s /bin/sh -c "$2" "$1"
}

PORT=$(free_port)
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT/" "$ROOT/etc/lockd/lockd.conf"
step "lockd as the unit runs it: $EXEC_START (user $RUN_USER, port $PORT)"
start_unit
[ "$(in_root stat -c '%U:%G %a' /run/lockd/lockd.sock)" = "lockd:lockd 660" ] || fail "admin socket owner or mode"
expect_http POST "/lock/deb-a?owner=one" 200
expect_http POST "/lock/deb-a?owner=two" 409
expect_http DELETE "/lock/deb-a?owner=one" 200
expect_http DELETE "/lock/deb-a" 404
KEPT=$(curl -s -X POST "http://127.0.0.1:$PORT/lock/kept-over-upgrade?owner=deb-test")
KEPT_TOKEN=$(echo "$KEPT" | sed -n 's/.*"token":\([0-9]*\).*/\1/p')
[ -n "$KEPT_TOKEN" ] || fail "no token in $KEPT"

in_root adduser --quiet --disabled-password --gecos "" alice > /dev/null
in_root adduser --quiet alice lockd > /dev/null
in_root adduser --quiet --disabled-password --gecos "" mallory > /dev/null
as_user alice "lockctl status" > "$PKG/lockctl-status.txt" || fail "lockctl status as a member of group lockd"
grep -q "leader" "$PKG/lockctl-status.txt" || fail "lockctl status: $(cat "$PKG/lockctl-status.txt")"
rc=0
as_user mallory "lockctl status" > /dev/null 2> "$PKG/lockctl-mallory.txt" || rc=$?
[ "$rc" = 2 ] && grep -q "Permission denied" "$PKG/lockctl-mallory.txt" ||
    fail "a user outside group lockd reached the admin socket (rc $rc: $(cat "$PKG/lockctl-mallory.txt"))"

step "reload (ExecReload: SIGHUP) with log-level = debug"
echo "log-level = debug" >> "$ROOT/etc/lockd/lockd.conf"
kill -HUP "$MAINPID"
wait_for 30 "log level debug after the reload" sh -c "chroot '$ROOT' su -s /bin/sh -c 'lockctl --json status' alice | grep -q '\"log_level\": *\"debug\"'"
stop_unit

# ---- 7. upgrade ------------------------------------------------------------
step "upgrade to $NEW_VERSION"
wait "$UPGRADE_BUILD" || { cat "$PKG/upgrade-build.out"; fail "building the upgrade package"; }
NEW_DEB=$(ls "$PKG/upgrade"/lockd_"$NEW_VERSION"_*.deb)
cp "$NEW_DEB" "$ROOT/tmp/"
CONF_BEFORE=$(cat "$ROOT/etc/lockd/lockd.conf")
# No --force-conf* option: an upgrade that asked about the conffile fails here.
in_root apt-get install -y -q "/tmp/$(basename "$NEW_DEB")" < /dev/null > "$PKG/apt-upgrade.log" 2>&1 ||
    { tail -30 "$PKG/apt-upgrade.log"; fail "apt-get install (upgrade)"; }
[ "$(in_root dpkg-query -W -f '${Version}' lockd)" = "$NEW_VERSION" ] || fail "not upgraded"
[ "$(cat "$ROOT/etc/lockd/lockd.conf")" = "$CONF_BEFORE" ] || fail "the changed conffile was not kept"
[ -d "$ROOT/var/lib/lockd/raft" ] || fail "the data directory is gone"
start_unit
AFTER=$(curl -s "http://127.0.0.1:$PORT/lock/kept-over-upgrade")
echo "$AFTER" | grep -q "\"token\":$KEPT_TOKEN[,}]" || fail "lock lost in the upgrade: $AFTER (token was $KEPT_TOKEN)"
NEXT=$(curl -s -X POST "http://127.0.0.1:$PORT/lock/after-upgrade" | sed -n 's/.*"token":\([0-9]*\).*/\1/p')
[ -n "$NEXT" ] && [ "$NEXT" -gt "$KEPT_TOKEN" ] || fail "token after the upgrade ($NEXT) not above $KEPT_TOKEN"
as_user alice "lockctl show kept-over-upgrade" > /dev/null || fail "lockctl show after the upgrade"
stop_unit

# ---- 8. purge ----------------------------------------------------------------
step "apt-get purge lockd"
in_root apt-get purge -y -q lockd < /dev/null > "$PKG/apt-purge.log" 2>&1 || { tail -30 "$PKG/apt-purge.log"; fail "purge"; }
for f in /var/lib/lockd /etc/lockd /usr/sbin/lockd /usr/bin/lockctl /lib/systemd/system/lockd.service \
    /etc/systemd/system/multi-user.target.wants/lockd.service; do
    [ ! -e "$ROOT$f" ] && [ ! -L "$ROOT$f" ] || fail "$f is left after purge"
done
if in_root dpkg-query -W -f '${Status}' lockd 2>/dev/null | grep -q installed; then fail "still installed"; fi
in_root getent passwd lockd > /dev/null || fail "the lockd user should be kept on purge (debian/lockd.postrm)"

step "PASS: the package and the tarball install, run, upgrade and purge ($(( $(date +%s) - T0 )) s)"
