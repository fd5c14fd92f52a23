"""The lockd client: endpoints, leader following, retries, lock handles.

Behaviour on loss, retry and failover is specified once, for all three
clients, in clients/README.md; this module implements it for Python.
"""

import datetime
import http.client
import json
import logging
import os
import random
import secrets
import socket
import ssl
import threading
import time
import urllib.parse

from .errors import (BadRequest, Forbidden, LockdError, LockHeld, LockLost, NotHeld,
                     OutcomeUnknown, TokenMismatch, Unauthorized, Unavailable)
from .fencing import fence as _fence

log = logging.getLogger("lockd")

DEFAULT_PORT = 2080
RETRYABLE = (502, 503, 504)
DEAD_FOR = 1.0          # seconds an endpoint that failed to connect is skipped
STATUS_EVERY = 1.0      # at most one /status refresh per second to learn members


def _seconds(v):
    if v is None:
        return None
    if isinstance(v, datetime.timedelta):
        return v.total_seconds()
    return float(v)


def _ms_param(sec):
    return "%dms" % max(0, int(round(sec * 1000)))


def default_owner():
    """host:pid:random, restricted to the API's owner alphabet."""
    host = "".join(c if c.isalnum() or c in "-._" else "_" for c in socket.gethostname()) or "host"
    return ("%s:%d:%s" % (host, os.getpid(), secrets.token_hex(6)))[-128:]


def clock_margin(ttl):
    """What valid_until keeps back from the TTL: 50 ms plus 1 % of it."""
    return 0.05 + ttl * 0.01


class _ConnError(Exception):
    def __init__(self, cause, sent):
        super().__init__(str(cause))
        self.cause = cause
        self.sent = sent


class _Endpoint:
    """One base URL with a small pool of idle keep-alive connections."""

    def __init__(self, url, ssl_context, pool_size):
        if "://" not in url:
            url = "http://" + url
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError("unsupported scheme in %r" % url)
        self.scheme = u.scheme
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.prefix = u.path.rstrip("/")
        self.key = "%s://%s:%d%s" % (self.scheme, self.host, self.port, self.prefix)
        self._ctx = ssl_context
        self._pool_size = pool_size
        self._idle = []
        self._mu = threading.Lock()

    def take(self, fresh=False):
        with self._mu:
            if self._idle and not fresh:
                return self._idle.pop(), True
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, context=self._ctx), False
        return http.client.HTTPConnection(self.host, self.port), False

    def give(self, conn):
        with self._mu:
            if len(self._idle) < self._pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self):
        with self._mu:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()


class _Answer:
    __slots__ = ("status", "headers", "body", "sent_at", "maybe_applied", "attempts")

    def __init__(self, status, headers, body, sent_at):
        self.status, self.headers, self.body, self.sent_at = status, headers, body, sent_at
        self.maybe_applied = False
        self.attempts = 1


class LockInfo:
    """A lock as GET /lock/:name and GET /locks show it."""

    __slots__ = ("name", "locked", "owner", "token", "acquired_at_ms", "ttl_ms", "expires_in_ms")

    def __init__(self, d):
        for k in self.__slots__:
            setattr(self, k, d.get(k))

    def __repr__(self):
        return "LockInfo(name=%r, owner=%r, token=%r, ttl_ms=%r, expires_in_ms=%r)" % (
            self.name, self.owner, self.token, self.ttl_ms, self.expires_in_ms)


class Client:
    """A lockd client, safe to share between threads.

    `endpoints`: a URL ("http://host:port"; "host:port" means http) or a
    list of them. See also Client.from_cluster_file and
    Client.from_load_balancer. Durations are seconds (int/float) or
    datetime.timedelta.
    """

    def __init__(self, endpoints, *, owner=None, token=None, connect_timeout=2.0,
                 request_timeout=10.0, ca_file=None, ssl_context=None, follow_leader=True,
                 pool_size=4, backoff_base=0.05, backoff_cap=2.0, members=None):
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.owner = owner or default_owner()
        self.connect_timeout = _seconds(connect_timeout)
        self.request_timeout = _seconds(request_timeout)
        self.follow_leader = follow_leader
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._auth = "Bearer " + token if token else None
        if ssl_context is None:
            ssl_context = ssl.create_default_context(cafile=ca_file)
        self._ssl = ssl_context
        self._pool_size = pool_size
        self._mu = threading.RLock()
        self._eps = {}
        self._configured = [self._endpoint(e) for e in endpoints]
        self._scheme = self._configured[0].scheme
        self._members = {}          # node id (str) -> _Endpoint
        for nid, addr in (members or {}).items():
            self._members[str(nid)] = self._endpoint(addr)
        self._leader_id = None
        self._leader_ep = None
        self._dead = {}             # endpoint key -> monotonic time until which it is skipped
        self._cur = 0
        self._next_status = 0.0
        self._max_index = 0
        self._held = {}             # (name, owner) -> Lock or None (acquire in flight)
        self._held_cv = threading.Condition(self._mu)
        self._rnd = random.Random()

    # -- construction ----------------------------------------------------
    @classmethod
    def from_cluster_file(cls, path, **kw):
        """The original's cluster file: {"101":"host:port",...} (a missing
        port means 2080; an entry may be {"http":"host:port","raft":...})."""
        with open(path) as f:
            data = json.load(f)
        scheme = kw.pop("scheme", "http")
        members = {}
        for nid, v in data.items():
            addr = v.get("http") if isinstance(v, dict) else v
            if ":" not in addr:
                addr += ":%d" % DEFAULT_PORT
            members[str(nid)] = "%s://%s" % (scheme, addr)
        return cls(sorted(members.values()), members=members, **kw)

    @classmethod
    def from_load_balancer(cls, url, **kw):
        """One URL of a load balancer: every request goes through it (the
        nodes' own addresses are not used)."""
        kw.setdefault("follow_leader", False)
        return cls([url], **kw)

    def _endpoint(self, url):
        if "://" not in url:            # "host" or "host:port": lockd's default port
            url = "http://" + url
            if urllib.parse.urlsplit(url).port is None:
                url += ":%d" % DEFAULT_PORT
        ep = _Endpoint(url, self._ssl, self._pool_size)
        with self._mu:
            return self._eps.setdefault(ep.key, ep)

    def close(self):
        for ep in list(self._eps.values()):
            ep.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def leader(self):
        """(id, url) of the leader this client currently follows, or None."""
        with self._mu:
            if self._leader_id is None or self._leader_ep is None:
                return None
            return self._leader_id, self._leader_ep.key

    @property
    def applied_index(self):
        """The highest X-Lockd-Applied-Index this client has seen (0: none)."""
        with self._mu:
            return self._max_index

    # -- endpoint choice -------------------------------------------------
    def _pick(self):
        now = time.monotonic()
        with self._mu:
            if self.follow_leader and self._leader_ep is not None and \
                    self._dead.get(self._leader_ep.key, 0) <= now:
                return self._leader_ep
            cands = list(self._configured)
            if self.follow_leader:
                cands += [m for m in self._members.values() if m not in cands]
            n = len(cands)
            for i in range(n):
                ep = cands[(self._cur + i) % n]
                if self._dead.get(ep.key, 0) <= now:
                    self._cur = (self._cur + i) % n
                    return ep
            return min(cands, key=lambda e: self._dead.get(e.key, 0))

    def _mark_dead(self, ep):
        with self._mu:
            self._dead[ep.key] = time.monotonic() + DEAD_FOR
            if self._leader_ep is ep:
                self._leader_ep = None
                self._leader_id = None

    def _observe(self, ep, headers, status):
        idx = headers.get("x-lockd-applied-index")
        lid = headers.get("x-lockd-leader")
        refresh = False
        with self._mu:
            if idx and idx.isdigit() and int(idx) > self._max_index:
                self._max_index = int(idx)
            self._dead.pop(ep.key, None)
            if not self.follow_leader:
                return
            if lid and lid != self._leader_id:
                self._leader_id = lid
                self._leader_ep = self._members.get(lid)
            elif not lid and status == 503:
                self._leader_id, self._leader_ep = None, None
            if self._leader_id is not None and self._leader_ep is None and \
                    time.monotonic() >= self._next_status:
                self._next_status = time.monotonic() + STATUS_EVERY
                refresh = True
        if refresh:
            self._refresh_members(ep)

    def _refresh_members(self, ep):
        try:
            a = self._exchange(ep, "GET", "/status", None, min(self.request_timeout, 2.0))
        except (_ConnError, LockdError):
            return
        if a.status != 200 or not isinstance(a.body, dict):
            return
        with self._mu:
            for m in a.body.get("members") or []:
                if isinstance(m, dict) and m.get("address"):
                    self._members[str(m.get("id"))] = self._endpoint(
                        "%s://%s" % (self._scheme, m["address"]))
            if self._leader_id is not None:
                self._leader_ep = self._members.get(self._leader_id)

    # -- one HTTP exchange -----------------------------------------------
    def _exchange(self, ep, method, path, headers, timeout, fresh=False):
        conn, reused = ep.take(fresh)
        hdrs = {"Accept": "application/json"}
        if self._auth:
            hdrs["Authorization"] = self._auth
        if headers:
            hdrs.update(headers)
        sent = False
        try:
            if conn.sock is None:
                conn.timeout = max(0.001, min(self.connect_timeout, timeout))
                conn.connect()
            conn.sock.settimeout(max(0.001, timeout))
            sent_at = time.monotonic()
            sent = True
            conn.request(method, ep.prefix + path, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
        except ssl.SSLCertVerificationError as e:
            conn.close()
            raise LockdError("%s: TLS certificate verification failed: %s" % (ep.key, e))
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            if reused and sent and isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError,
                                                   BrokenPipeError)):
                # a kept-alive connection the server had closed: once more on a new one
                return self._exchange(ep, method, path, headers, timeout, fresh=True)
            raise _ConnError(e, sent)
        if r.will_close:
            conn.close()
        else:
            ep.give(conn)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        a = _Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, body, sent_at)
        return a

    # -- the retry loop --------------------------------------------------
    def _call(self, method, path, params=None, *, deadline, read=False, wait_until=None):
        """Sends until an answer that is not 502/503/504 arrives or the
        deadline passes. `params` may be a callable of the time left on
        `wait_until` (to resend `wait` reduced)."""
        attempt = 0
        maybe_applied = False
        last = "no attempt"
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                break
            p = dict(params or {})
            per = self.request_timeout
            if wait_until is not None:
                w = max(0.0, wait_until - now)
                p["wait"] = _ms_param(w)
                per += w
            q = "?" + urllib.parse.urlencode(p) if p else ""
            headers = None
            if read:
                with self._mu:
                    if self._max_index:
                        headers = {"X-Lockd-Min-Index": str(self._max_index)}
            ep = self._pick()
            attempt += 1
            try:
                a = self._exchange(ep, method, path + q, headers, min(per, left))
            except _ConnError as e:
                self._mark_dead(ep)
                maybe_applied = maybe_applied or (e.sent and method != "GET")
                last = "%s: %s" % (ep.key, e.cause.__class__.__name__ + " " + str(e.cause))
                self._sleep(attempt, deadline, None)
                continue
            self._observe(ep, a.headers, a.status)
            if a.status in RETRYABLE:
                body = a.body if isinstance(a.body, dict) else {}
                if method != "GET" and (a.status != 503 or body.get("outcome") == "unknown"):
                    maybe_applied = True
                last = "%s: %d %s" % (ep.key, a.status, body.get("error", ""))
                ra = _retry_after(a.headers.get("retry-after"))
                if ra is not None and time.monotonic() + ra >= deadline:
                    break                      # honouring it would pass the deadline
                self._sleep(attempt, deadline, ra)
                continue
            a.maybe_applied = maybe_applied
            a.attempts = attempt
            return a
        msg = "%s %s: no answer before the deadline after %d attempt(s) (last: %s)" % (
            method, path, attempt, last)
        if maybe_applied:
            raise OutcomeUnknown(msg)
        raise Unavailable(msg)

    def _sleep(self, attempt, deadline, retry_after):
        with self._mu:
            d = self._rnd.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** attempt)))
        if retry_after is not None:
            d = max(d, retry_after)
        d = min(d, deadline - time.monotonic())
        if d > 0:
            time.sleep(d)

    def _deadline(self, timeout, extra=0.0):
        t = self.request_timeout + extra if timeout is None else _seconds(timeout)
        return time.monotonic() + t

    # -- operations ------------------------------------------------------
    def acquire(self, name, ttl=None, wait=0, owner=None, timeout=None):
        """Acquires `name`, waiting up to `wait` for a holder to release
        it. Returns a Lock; raises LockHeld when it stays held."""
        lk = self._acquire(name, ttl, wait, owner, timeout)
        if lk is None:
            raise LockHeld("lock %r is held by this client already" % name, name=name,
                           holder=owner or self.owner)
        return lk

    def try_acquire(self, name, ttl=None, owner=None, timeout=None):
        """One attempt without waiting: a Lock, or None when held."""
        try:
            return self._acquire(name, ttl, 0, owner, timeout)
        except LockHeld:
            return None

    def lock(self, name, ttl=30, wait=0, owner=None, keepalive=True, on_lost=None, timeout=None):
        """The scoped form: `with client.lock("job", ttl=30) as l:` runs the
        body only once the lock is held (else LockHeld is raised and the
        body does not run), keeps the lease alive while it runs, releases
        at the end, and raises LockLost at the end if it was lost."""
        return _Scoped(self, name, ttl, wait, owner, keepalive, on_lost, timeout)

    def _acquire(self, name, ttl, wait, owner, timeout):
        owner = owner or self.owner
        ttl = _seconds(ttl)
        wait = _seconds(wait) or 0.0
        start = time.monotonic()
        wait_until = start + wait
        deadline = self._deadline(timeout, wait)
        key = (name, owner)
        with self._held_cv:
            # one handle per (name, owner) in this client: a second acquire
            # through the server would be a renewal, not a new lock
            while key in self._held:
                left = wait_until - time.monotonic()
                if left <= 0:
                    return None
                self._held_cv.wait(left)
            self._held[key] = None
        try:
            params = {"owner": owner}
            if ttl is not None:
                params["ttl"] = _ms_param(ttl)
            a = self._call("POST", "/lock/" + _quote(name), params, deadline=deadline,
                           wait_until=wait_until)
            if a.status == 409:
                body = a.body if isinstance(a.body, dict) else {}
                raise LockHeld("lock %r is held by %r" % (name, body.get("owner")), name=name,
                               holder=body.get("owner"), body=a.body)
            if a.status != 200:
                raise _error(a)
            lk = Lock(self, name, owner, a.body, ttl, a.sent_at)
            if ttl is not None and lk.valid_until - time.monotonic() < ttl / 2:
                # it waited in the queue: the lease counted from the request's
                # sending is mostly spent, so count it from a renewal sent now
                try:
                    lk._renew(self._deadline(None))
                except LockLost:
                    raise
                except LockdError:
                    lk._delete_quietly(lk.token)
                    raise
            with self._held_cv:
                self._held[key] = lk
            return lk
        except BaseException:
            self._unreserve(key)
            raise

    def _unreserve(self, key, lk=None):
        with self._held_cv:
            if key in self._held and (lk is None or self._held[key] is lk):
                del self._held[key]
                self._held_cv.notify_all()

    def get(self, name, consistent=False, timeout=None):
        """The lock's state (LockInfo) or None when it is not locked."""
        p = {"consistent": "true"} if consistent else None
        a = self._call("GET", "/lock/" + _quote(name), p, deadline=self._deadline(timeout), read=True)
        if a.status == 404:
            return None
        if a.status != 200:
            raise _error(a)
        return LockInfo(a.body)

    def list(self, prefix=None, page_size=100, timeout=None):
        """Iterates over every lock (name order), one page at a time,
        following `next`. `timeout` applies to each page."""
        after = None
        while True:
            p = {"limit": str(page_size)}
            if prefix:
                p["prefix"] = prefix
            if after is not None:
                p["after"] = after
            a = self._call("GET", "/locks", p, deadline=self._deadline(timeout), read=True)
            if a.status != 200:
                raise _error(a)
            for d in a.body.get("locks") or []:
                yield LockInfo(d)
            after = a.body.get("next")
            if after is None:
                return

    def status(self, timeout=None):
        """GET /status of the node the client talks to (a dict)."""
        a = self._call("GET", "/status", None, deadline=self._deadline(timeout))
        if a.status != 200:
            raise _error(a)
        return a.body


class Lock:
    """A held lock. Belongs to one holder; its methods are thread-safe
    (the keepalive thread renews it while the holder works)."""

    def __init__(self, client, name, owner, body, ttl, sent_at):
        self._client = client
        self.name = name
        self.owner = owner
        self.token = body.get("token")
        self.ttl = ttl
        self.valid_until = None if ttl is None else sent_at + ttl - clock_margin(ttl)
        self._mu = threading.Lock()
        self._lost_reason = None
        self._released = False
        self._on_lost = None
        self._stop = threading.Event()
        self._thread = None

    def __repr__(self):
        return "Lock(name=%r, owner=%r, token=%r, lost=%r)" % (self.name, self.owner, self.token,
                                                               self._lost_reason is not None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Releases; raises LockLost if the lock was lost while held (unless
        the block raised: its exception wins, as does a failed release's)."""
        lost = self.lost
        try:
            self.release()
        except LockdError:
            if exc_type is None and not lost:
                raise
        if lost and exc_type is None:
            raise LockLost("lock %r was lost while the block ran: %s" % (self.name, self._lost_reason))
        return False

    # -- state -------------------------------------------------------------
    @property
    def lost(self):
        """True once the handle no longer holds the lock (final)."""
        if self._lost_reason is None and not self._released and self.valid_until is not None \
                and time.monotonic() >= self.valid_until:
            self._mark_lost("the lease ran out before a renewal succeeded")
        return self._lost_reason is not None

    @property
    def lost_reason(self):
        return self._lost_reason

    @property
    def released(self):
        return self._released

    def check(self):
        """Raises LockLost if the lock was lost, NotHeld if released."""
        if self.lost:
            raise LockLost("lock %r lost: %s" % (self.name, self._lost_reason))
        if self._released:
            raise NotHeld("lock %r was released" % self.name)

    def fence(self, headers=None):
        """`headers` with this lock's fencing token (X-Lockd-Token) added."""
        return _fence(self, headers)

    def _mark_lost(self, reason):
        with self._mu:
            if self._lost_reason is not None or self._released:
                return
            self._lost_reason = reason
            cb = self._on_lost
        self._stop.set()
        log.warning("lockd: lock %r (token %s) lost: %s", self.name, self.token, reason)
        if cb is not None:
            try:
                cb(self)
            except Exception:
                log.exception("lockd: on_lost callback of %r raised", self.name)

    # -- renew ---------------------------------------------------------------
    def renew(self, timeout=None):
        """Renews the lease (a POST by the same owner). Raises LockLost if
        the token changed or the lock is gone; Unavailable/OutcomeUnknown
        when no answer came in time (the lease may still be valid)."""
        if self._released:
            raise NotHeld("lock %r was released" % self.name)
        self.check()
        deadline = self._client._deadline(timeout)
        if self.valid_until is not None:
            deadline = min(deadline, max(self.valid_until, time.monotonic() + 0.001))
        self._renew(deadline)

    def _renew(self, deadline):
        c = self._client
        params = {"owner": self.owner}
        if self.ttl is not None:
            params["ttl"] = _ms_param(self.ttl)
        a = c._call("POST", "/lock/" + _quote(self.name), params, deadline=deadline)
        if a.status == 409:
            body = a.body if isinstance(a.body, dict) else {}
            self._mark_lost("held by %r" % body.get("owner"))
            raise LockLost("lock %r lost: held by %r" % (self.name, body.get("owner")), 409, a.body)
        if a.status != 200:
            raise _error(a)
        tok = a.body.get("token")
        if tok != self.token:
            # it had run out and this renewal took it anew: not the same lock
            self._mark_lost("the renewal answered token %s instead of %s" % (tok, self.token))
            self._delete_quietly(tok)
            raise LockLost("lock %r lost: token %s is now %s" % (self.name, self.token, tok), 200, a.body)
        with self._mu:
            if self._lost_reason is None and self.ttl is not None:
                self.valid_until = a.sent_at + self.ttl - clock_margin(self.ttl)
        self.check()

    def _delete_quietly(self, token):
        try:
            c = self._client
            c._call("DELETE", "/lock/" + _quote(self.name), {"owner": self.owner, "token": str(token)},
                    deadline=time.monotonic() + min(2.0, c.request_timeout))
        except LockdError as e:
            log.info("lockd: releasing %r token %s after a loss failed: %s", self.name, token, e)

    # -- keepalive -----------------------------------------------------------
    def keepalive(self, on_lost=None):
        """Renews in a background thread every ttl/3 until released. On
        loss, `on_lost(lock)` runs once, `lost` is True and check() raises."""
        if self.ttl is None:
            raise ValueError("a lock without ttl has no lease to keep alive")
        with self._mu:
            self._on_lost = on_lost
            already_lost = self._lost_reason is not None
            start = self._thread is None and not self._released and not already_lost
            if start:
                self._thread = threading.Thread(target=self._keepalive_loop, daemon=True,
                                                name="lockd-keepalive-%s" % self.name)
        if start:
            self._thread.start()
        elif already_lost and on_lost is not None:
            on_lost(self)
        return self

    def _keepalive_loop(self):
        period = self.ttl / 3.0
        next_at = time.monotonic() + period
        while not self._stop.is_set():
            wake = min(next_at, self.valid_until)
            if self._stop.wait(max(0.0, wake - time.monotonic())):
                return
            if self.lost:
                return
            try:
                self._renew(self.valid_until)
                next_at = time.monotonic() + period
            except LockLost:
                return
            except LockdError as e:
                log.info("lockd: renewing %r failed (%s); retrying while the lease lasts", self.name, e)
                next_at = time.monotonic() + min(period, 0.1)

    def _stop_keepalive(self):
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(self._client.request_timeout + 1)

    # -- release -------------------------------------------------------------
    def release(self, timeout=None):
        """Releases the lock (DELETE with owner and token). Idempotent; a
        404 or 409 after a retried DELETE counts as released. On a handle
        already lost it still sends the token-checked DELETE and raises
        nothing. Raises NotHeld/TokenMismatch when the first attempt finds
        the lock not held by this handle."""
        with self._mu:
            if self._released:
                return
        self._stop_keepalive()
        was_lost = self._lost_reason is not None
        c = self._client
        key = (self.name, self.owner)
        try:
            a = c._call("DELETE", "/lock/" + _quote(self.name),
                        {"owner": self.owner, "token": str(self.token)}, deadline=c._deadline(timeout))
        except LockdError:
            if was_lost:
                self._done(key)
                return
            c._unreserve(key, self)
            raise
        self._done(key)
        if a.status == 200 or was_lost:
            return
        body = a.body if isinstance(a.body, dict) else {}
        if a.status in (404, 409) and a.maybe_applied:
            return            # our earlier attempt released it
        if a.status == 404:
            raise NotHeld("lock %r was not locked (its lease had run out)" % self.name, 404, a.body)
        if a.status == 409 and body.get("error") == "Token mismatch":
            raise TokenMismatch("lock %r is held under another token" % self.name, 409, a.body)
        if a.status == 409:
            raise NotHeld("lock %r is held by %r" % (self.name, body.get("owner")), 409, a.body)
        raise _error(a)

    def _done(self, key):
        with self._mu:
            self._released = True
        self._client._unreserve(key, self)


class _Scoped:
    def __init__(self, client, name, ttl, wait, owner, keepalive, on_lost, timeout):
        self._args = (name, ttl, wait, owner, timeout)
        self._client = client
        self._keepalive = keepalive
        self._on_lost = on_lost
        self.lock = None

    def __enter__(self):
        name, ttl, wait, owner, timeout = self._args
        self.lock = self._client.acquire(name, ttl=ttl, wait=wait, owner=owner, timeout=timeout)
        if self._keepalive and self.lock.ttl is not None:
            self.lock.keepalive(self._on_lost)
        return self.lock

    def __exit__(self, exc_type, exc, tb):
        return self.lock.__exit__(exc_type, exc, tb)


def _quote(name):
    return urllib.parse.quote(name, safe="")


def _retry_after(v):
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None


def _error(a):
    body = a.body if isinstance(a.body, dict) else {}
    msg = body.get("error") or (a.body if isinstance(a.body, str) else "HTTP %d" % a.status)
    if a.status in (400, 413):
        return BadRequest(msg, a.status, a.body)
    if a.status == 401:
        return Unauthorized(msg, a.status, a.body)
    if a.status == 403:
        return Forbidden(msg, a.status, a.body)
    return LockdError("HTTP %d: %s" % (a.status, msg), a.status, a.body)
