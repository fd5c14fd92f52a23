#!/bin/bash
# tests/pkg/build_deb.sh OUTDIR [VERSION]: builds the Debian package with
# `dpkg-buildpackage -us -uc -b` on a copy of this tree (tracked and new
# files, as git sees them) in OUTDIR/src, and leaves the .deb, .changes
# and .buildinfo in OUTDIR. With VERSION, a changelog entry for it is put
# on top of the copy's first (make deb-test's upgrade package).
# A Raft library the Makefile built (build/libraft-*) is copied along, so
# the copy does not build it again.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [VERSION]" >&2; exit 2; }
OUT=$1
VERSION=${2:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SRC="$OUT/src${VERSION:+-$VERSION}/lockd"

rm -rf "$SRC" && mkdir -p "$SRC"
cd "$ROOT"
if git rev-parse --git-dir >/dev/null 2>&1; then
    # (a tracked file deleted in the work tree is left out)
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done | xargs -0 cp -a --parents -t "$SRC"
else
    tar -C "$ROOT" --exclude=./build --exclude=./build-asan --exclude=./lockd-data -cf - . | tar -C "$SRC" -xf -
fi
for d in build/libraft-*; do
    [ -d "$d" ] && mkdir -p "$SRC/build" && cp -a "$d" "$SRC/build/"
done

cd "$SRC"
if [ -n "$VERSION" ]; then
    {
        printf 'lockd (%s) unstable; urgency=medium\n\n  * Rebuilt for the upgrade test (make deb-test).\n\n' "$VERSION"
        printf ' -- lockd maintainers <lockd@example.org>  %s\n\n' "$(date -R)"
        cat debian/changelog
    } > debian/changelog.new
    mv debian/changelog.new debian/changelog
fi
start=$(date +%s)
dpkg-buildpackage -us -uc -b -j"$(nproc)" > "$OUT/build${VERSION:+-$VERSION}.log" 2>&1 || {
    tail -60 "$OUT/build${VERSION:+-$VERSION}.log" >&2
    echo "build_deb.sh: dpkg-buildpackage failed (log: $OUT/build${VERSION:+-$VERSION}.log)" >&2
    exit 1
}
mv ../*.deb ../*.changes ../*.buildinfo "$OUT/"
echo "build_deb.sh: built $(ls "$OUT"/*.deb | tr '\n' ' ')in $(( $(date +%s) - start )) s" >&2
