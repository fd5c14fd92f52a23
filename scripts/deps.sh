#!/bin/sh
# scripts/deps.sh: installs lockd's build and test dependencies from Debian's
# packages. Idempotent: does nothing (and needs no root) when all are present.
set -eu

PKGS="build-essential pkg-config libssl-dev libh2o-evloop-dev liblmdb-dev \
libprotobuf-c-dev protobuf-c-compiler libjemalloc-dev libraft-dev libuv1-dev \
libcmocka-dev python3 python3-pytest wrk curl openssl"
# the web UI's browser tests
PKGS="$PKGS chromium chromium-driver python3-selenium"
# the client libraries' suites (clients/)
PKGS="$PKGS ruby ruby-minitest rake default-jdk-headless junit5 scala nginx-light"
# make deb, deb-test, dist and brew-test (packaging/packaging.mk)
PKGS="$PKGS debhelper lintian debootstrap scdoc"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
