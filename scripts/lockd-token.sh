#!/bin/sh
# scripts/lockd-token.sh: a new bearer token for lockd's --auth-file.
#
#   scripts/lockd-token.sh IDENTITY SCOPE [PREFIXES] >> /etc/lockd/auth.conf
#
# Prints the auth-file line (identity, SHA-256 of the token, scope, prefixes)
# on stdout and the token itself on stderr, once: only its hash is stored, so
# a lost token is replaced, never recovered. SCOPE is read, lock or admin;
# PREFIXES a comma-separated list of lock-name prefixes (default: every name).
# The same as `lockd --new-token` (phase 2); needs only openssl and sha256sum.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 IDENTITY read|lock|admin [PREFIX,...]" >&2
    exit 2
fi
id=$1 scope=$2 prefixes=${3:-}
if ! printf %s "$id" | grep -Eq '^[A-Za-z0-9$._:@-]{1,64}$'; then
    echo "$0: identity must be 1..64 bytes of A-Z a-z 0-9 \$ - . _ : @" >&2
    exit 2
fi
case $scope in read|lock|admin) ;; *) echo "$0: scope must be read, lock or admin" >&2; exit 2 ;; esac
if [ -n "$prefixes" ] && [ "$prefixes" != "*" ] &&
    ! printf %s "$prefixes" | grep -Eq '^[A-Za-z0-9$._-]{1,128}(,[A-Za-z0-9$._-]{1,128}){0,15}$'; then
    echo "$0: prefixes must be up to 16 comma-separated lock-name prefixes" >&2
    exit 2
fi
# 32 random bytes, base64url without padding: 43 characters after "lkd_".
token=lkd_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
printf '%s sha256:%s %s%s\n' "$id" "$hash" "$scope" "${prefixes:+ $prefixes}"
printf 'token for %s (shown once, store it in the client'"'"'s secret store):\n%s\n' "$id" "$token" >&2
