#!/bin/sh
# tests/pkg/brew_test.sh SOURCE_TARBALL WORKDIR: the Homebrew formula's
# install, service and test blocks (packaging/homebrew/lockd.rb), run by
# tests/pkg/brew_shim.rb on this Debian machine (Homebrew itself is not
# installable here; see the shim for what that leaves out).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_TARBALL WORKDIR" >&2; exit 2; }
mkdir -p "$2"
start=$(date +%s)
ruby "$HERE/brew_shim.rb" "$HERE/../../packaging/homebrew/lockd.rb" "$1" "$2"
echo "brew_test.sh: $(( $(date +%s) - start )) s"
