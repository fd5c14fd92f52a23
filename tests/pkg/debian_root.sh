#!/bin/bash
# tests/pkg/debian_root.sh CACHE ROOT: a fresh Debian 12 root in ROOT
# (removed first), unpacked from CACHE/bookworm-minbase.tar, which is made
# once with `debootstrap --variant=minbase bookworm` from Debian's archive
# (mirror: $LOCKD_DEBIAN_MIRROR, default deb.debian.org). The cache saves
# the ~2-4 minutes debootstrap takes; delete it to start from scratch.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 CACHE ROOT" >&2; exit 2; }
mkdir -p "$1"
CACHE=$(cd "$1" && pwd)
ROOT=$2
MIRROR=${LOCKD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TARBALL="$CACHE/bookworm-minbase.tar"
mkdir -p "$CACHE"

if [ ! -s "$TARBALL" ]; then
    start=$(date +%s)
    work="$CACHE/debootstrap.$$"
    rm -rf "$work"
    echo "debian_root.sh: debootstrap --variant=minbase bookworm ($MIRROR)" >&2
    # --cache-dir keeps the downloaded packages: a failed run resumes faster.
    mkdir -p "$CACHE/debootstrap-debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-debs" bookworm "$work" "$MIRROR" \
        > "$CACHE/debootstrap.log" 2>&1 || {
        tail -30 "$CACHE/debootstrap.log" >&2
        rm -rf "$work"
        exit 1
    }
    rm -rf "$work"/var/cache/apt/archives/*.deb
    tar -C "$work" --numeric-owner -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$work"
    echo "debian_root.sh: base root cached in $TARBALL ($(( $(date +%s) - start )) s)" >&2
fi

if findmnt -rn -o TARGET | grep -q "^$(realpath -m "$ROOT")/"; then
    echo "debian_root.sh: something is mounted under $ROOT: not removing it" >&2
    exit 1
fi
rm -rf "$ROOT"
mkdir -p "$ROOT"
tar -C "$ROOT" --numeric-owner -xf "$TARBALL"
