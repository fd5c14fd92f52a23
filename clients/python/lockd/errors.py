"""Typed errors of the lockd client. Every error is a LockdError."""


class LockdError(Exception):
    """Base class. `status` is the HTTP status (None when there was no
    answer), `body` the server's JSON answer (a dict, or None)."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class LockHeld(LockdError):
    """The lock is held by someone else (409 after `wait` ran out).
    `holder` is the holder's owner (None for an anonymous lock)."""

    def __init__(self, message, name=None, holder=None, status=409, body=None):
        super().__init__(message, status, body)
        self.name = name
        self.holder = holder


class LockLost(LockdError):
    """The handle no longer holds its lock: another token or holder, gone,
    or its lease ran out before a renewal succeeded."""


class NotHeld(LockdError):
    """A release found the lock not held by this handle (unlocked, or held
    by another owner) on its first attempt."""


class TokenMismatch(NotHeld):
    """A release found the lock held by this owner under another token."""


class BadRequest(LockdError):
    """400/413: the server refused the request; `message` is its text. Never retried."""


class Unauthorized(LockdError):
    """401: missing or wrong bearer token. Never retried."""


class Forbidden(LockdError):
    """403: the token may not do this. Never retried."""


class Unavailable(LockdError):
    """No usable answer before the deadline (connection errors, 502/503/504
    throughout), and the request certainly changed nothing."""


class OutcomeUnknown(Unavailable):
    """As Unavailable, but a write may have been applied (a 504, or a
    connection lost after the request was sent)."""
