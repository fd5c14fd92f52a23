"""lockd: a client for the lockd distributed lock service (standard library only).

    import lockd
    client = lockd.Client(["http://10.0.0.1:2080", "http://10.0.0.2:2080"])
    with client.lock("nightly-report", ttl=30) as lock:
        do_the_work(fencing_token=lock.token)
"""

from .client import Client, Lock, LockInfo, clock_margin, default_owner
from .errors import (BadRequest, Forbidden, LockdError, LockHeld, LockLost, NotHeld, OutcomeUnknown,
                     TokenMismatch, Unauthorized, Unavailable)
from .fencing import LOCK_HEADER, TOKEN_HEADER, FenceGuard, fence, token_from

__version__ = "0.1.0"

__all__ = ["Client", "Lock", "LockInfo", "clock_margin", "default_owner", "LockdError", "LockHeld",
           "LockLost", "NotHeld", "TokenMismatch", "BadRequest", "Unauthorized", "Forbidden",
           "Unavailable", "OutcomeUnknown", "FenceGuard", "fence", "token_from", "TOKEN_HEADER",
           "LOCK_HEADER"]
