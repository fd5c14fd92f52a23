"""Fencing: pass a lock's token to the storage it protects, and make the
storage refuse any token older than the newest it has seen."""

import threading

TOKEN_HEADER = "X-Lockd-Token"
LOCK_HEADER = "X-Lockd-Lock"


def fence(lock, headers=None):
    """Returns `headers` (a new dict when None) with the lock's token and
    name added, for a request to the protected storage."""
    h = {} if headers is None else headers
    h[TOKEN_HEADER] = str(lock.token)
    h[LOCK_HEADER] = lock.name
    return h


def token_from(headers):
    """The fencing token in a request's headers (any case), or None."""
    for k, v in headers.items():
        if k.lower() == TOKEN_HEADER.lower():
            try:
                return int(v)
            except (TypeError, ValueError):
                return None
    return None


class FenceGuard:
    """For the storage side: remembers the highest token seen per resource
    and admits a write only with a token at least that high. Thread-safe."""

    def __init__(self):
        self._mu = threading.Lock()
        self._highest = {}

    def admit(self, resource, token):
        if token is None:
            return False
        with self._mu:
            if token < self._highest.get(resource, 0):
                return False
            self._highest[resource] = token
            return True

    def highest(self, resource):
        with self._mu:
            return self._highest.get(resource)
