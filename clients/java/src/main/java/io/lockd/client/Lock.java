package io.lockd.client;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * A held lock. Belongs to one holder; its methods are thread-safe (the
 * keepalive thread renews it while the holder works). {@link #close()}
 * releases it, so {@code try (Lock l = client.acquire(...)) { ... }} never runs
 * the body without the lock; close() throws LockLostException if the lock was
 * lost meanwhile.
 */
public final class Lock implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("io.lockd.client");

    private final LockdClient client;
    private final String name;
    private final String owner;
    private final long token;
    private final Duration ttl;
    private final Object mu = new Object();
    private long validUntil; // System.nanoTime() clock
    private String lostReason;
    private boolean released;
    private boolean stopped;
    private Consumer<Lock> onLost;
    private Thread thread;

    Lock(LockdClient client, String name, String owner, Long token, Duration ttl, long sentAt) {
        this.client = client;
        this.name = name;
        this.owner = owner;
        this.token = token == null ? 0 : token;
        this.ttl = ttl;
        this.validUntil = ttl == null ? 0 : sentAt + ttl.minus(LockdClient.clockMargin(ttl)).toNanos();
    }

    public String name() {
        return name;
    }

    public String owner() {
        return owner;
    }

    /** The fencing token: greater than every token handed out before it. */
    public long token() {
        return token;
    }

    public Optional<Duration> ttl() {
        return Optional.ofNullable(ttl);
    }

    /**
     * When the lease may run out, on the {@link System#nanoTime()} clock:
     * counted from the moment the request that got it was sent, minus a safety
     * margin. Long.MAX_VALUE for a lock without ttl.
     */
    public long validUntilNanos() {
        synchronized (mu) {
            return ttl == null ? Long.MAX_VALUE : validUntil;
        }
    }

    /** How long the lease is still valid (zero once it ran out; a very long time without ttl). */
    public Duration timeLeft() {
        if (ttl == null) {
            return Duration.ofNanos(Long.MAX_VALUE);
        }
        return Duration.ofNanos(Math.max(0, validUntilNanos() - System.nanoTime()));
    }

    @Override
    public String toString() {
        return "Lock[name=" + name + ", owner=" + owner + ", token=" + token + ", lost=" + (lostReason() != null) + "]";
    }

    /** True once the handle no longer holds the lock (final). */
    public boolean isLost() {
        boolean expired;
        synchronized (mu) {
            expired = lostReason == null && !released && ttl != null && System.nanoTime() - validUntil >= 0;
        }
        if (expired) {
            markLost("the lease ran out before a renewal succeeded");
        }
        synchronized (mu) {
            return lostReason != null;
        }
    }

    /** Why the lock was lost, or null. */
    public String lostReason() {
        synchronized (mu) {
            return lostReason;
        }
    }

    public boolean isReleased() {
        synchronized (mu) {
            return released;
        }
    }

    /** Throws LockLostException if the lock was lost, NotHeldException if released. */
    public void check() {
        if (isLost()) {
            throw new LockLostException("lock \"" + name + "\" lost: " + lostReason());
        }
        if (isReleased()) {
            throw new NotHeldException("lock \"" + name + "\" was released");
        }
    }

    /** {@code headers} with this lock's fencing token (X-Lockd-Token) added. */
    public Map<String, String> fence(Map<String, String> headers) {
        return Fencing.fence(this, headers);
    }

    private void markLost(String reason) {
        Consumer<Lock> cb;
        synchronized (mu) {
            if (lostReason != null || released) {
                return;
            }
            lostReason = reason;
            cb = onLost;
            stopped = true;
            mu.notifyAll();
        }
        LOG.log(System.Logger.Level.WARNING, "lockd: lock \"" + name + "\" (token " + token + ") lost: " + reason);
        if (cb != null) {
            try {
                cb.accept(this);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "lockd: onLost callback of \"" + name + "\" threw", e);
            }
        }
    }

    /**
     * Renews the lease (a POST by the same owner). Throws LockLostException if
     * the token changed or the lock is gone; Unavailable/OutcomeUnknown when no
     * answer came in time (the lease may still be valid).
     */
    public Lock renew() {
        return renew(null);
    }

    public Lock renew(Duration timeout) {
        if (isReleased()) {
            throw new NotHeldException("lock \"" + name + "\" was released");
        }
        check();
        long deadline = client.deadline(timeout);
        if (ttl != null) {
            long vu = validUntilNanos();
            long floor = System.nanoTime() + 1_000_000;
            deadline = Math.min(deadline, vu - floor > 0 ? vu : floor);
        }
        doRenew(deadline);
        return this;
    }

    /** The renewal an acquire that waited makes before returning the lock. */
    void renewForAcquire(long deadline) {
        doRenew(deadline);
    }

    private void doRenew(long deadline) {
        java.util.Map<String, String> p = new java.util.LinkedHashMap<>();
        p.put("owner", owner);
        if (ttl != null) {
            p.put("ttl", LockdClient.msParam(ttl.toNanos()));
        }
        LockdClient.Answer a = client.call("POST", "/lock/" + LockdClient.quote(name), p, deadline, false, null);
        if (a.status() == 409) {
            Object holder = a.body() == null ? null : a.body().get("owner");
            markLost("held by " + holder);
            throw new LockLostException("lock \"" + name + "\" lost: held by " + holder, 409, a.body());
        }
        if (a.status() != 200) {
            throw LockdClient.errorFor(a);
        }
        Long tok = LockInfo.num(a.body().get("token"));
        if (tok == null || tok != token) {
            // it had run out and this renewal took it anew: not the same lock
            markLost("the renewal answered token " + tok + " instead of " + token);
            deleteQuietly(tok);
            throw new LockLostException("lock \"" + name + "\" lost: token " + token + " is now " + tok, 200,
                    a.body());
        }
        synchronized (mu) {
            if (lostReason == null && ttl != null) {
                validUntil = a.sentAt() + ttl.minus(LockdClient.clockMargin(ttl)).toNanos();
            }
        }
        check();
    }

    void deleteQuietly(Long tok) {
        if (tok == null) {
            return;
        }
        try {
            client.call("DELETE", "/lock/" + LockdClient.quote(name), Map.of("owner", owner, "token", tok.toString()),
                    System.nanoTime() + Math.min(2_000_000_000L, client.requestTimeout.toNanos()), false, null);
        } catch (LockdException e) {
            LOG.log(System.Logger.Level.INFO, "lockd: releasing \"" + name + "\" token " + tok + " after a loss failed: " + e.getMessage());
        }
    }

    /** Renews in a background thread every ttl/3 until released; see {@link #keepalive(Consumer)}. */
    public Lock keepalive() {
        return keepalive(null);
    }

    /**
     * Renews in a background (daemon) thread every ttl/3 until released. On
     * loss {@code onLost} runs once with this lock, isLost() is true and
     * check() throws LockLostException.
     */
    public Lock keepalive(Consumer<Lock> onLost) {
        if (ttl == null) {
            throw new IllegalStateException("a lock without ttl has no lease to keep alive");
        }
        boolean start;
        boolean already;
        synchronized (mu) {
            this.onLost = onLost;
            already = lostReason != null;
            start = thread == null && !released && !already;
            if (start) {
                thread = new Thread(this::keepaliveLoop, "lockd-keepalive-" + name);
                thread.setDaemon(true);
            }
        }
        if (start) {
            thread.start();
        } else if (already && onLost != null) {
            onLost.accept(this);
        }
        return this;
    }

    private void keepaliveLoop() {
        long period = ttl.toNanos() / 3;
        long nextAt = System.nanoTime() + period;
        while (true) {
            long vu;
            synchronized (mu) {
                vu = validUntil;
                long wake = nextAt - vu < 0 ? nextAt : vu;
                while (!stopped) {
                    long left = wake - System.nanoTime();
                    if (left <= 0) {
                        break;
                    }
                    try {
                        mu.wait(Math.max(1, left / 1_000_000));
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                if (stopped) {
                    return;
                }
            }
            if (isLost()) {
                return;
            }
            try {
                doRenew(vu);
                nextAt = System.nanoTime() + period;
            } catch (LockLostException e) {
                return;
            } catch (LockdException e) {
                LOG.log(System.Logger.Level.DEBUG, "lockd: renewing \"" + name + "\" failed (" + e.getMessage() + "); retrying while the lease lasts");
                nextAt = System.nanoTime() + Math.min(period, 100_000_000L);
            }
        }
    }

    private void stopKeepalive() {
        Thread t;
        synchronized (mu) {
            stopped = true;
            mu.notifyAll();
            t = thread;
        }
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join(client.requestTimeout.toMillis() + 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Releases the lock; see {@link #release(Duration)}. */
    public void release() {
        release(null);
    }

    /**
     * Releases the lock (DELETE with owner and token). Idempotent; a 404 or 409
     * after a retried DELETE counts as released. On a handle already lost it
     * still sends the token-checked DELETE and throws nothing. Throws
     * NotHeld/TokenMismatch when the first attempt finds the lock not held by
     * this handle.
     */
    public void release(Duration timeout) {
        if (isReleased()) {
            return;
        }
        stopKeepalive();
        boolean wasLost = lostReason() != null;
        List<String> key = List.of(name, owner);
        LockdClient.Answer a;
        try {
            a = client.call("DELETE", "/lock/" + LockdClient.quote(name),
                    Map.of("owner", owner, "token", Long.toString(token)), client.deadline(timeout), false, null);
        } catch (LockdException e) {
            if (wasLost) {
                done(key);
                return;
            }
            client.unreserve(key, this);
            throw e;
        }
        done(key);
        int s = a.status();
        if (s == 200 || wasLost || ((s == 404 || s == 409) && a.maybeApplied())) {
            return; // a 404/409 after a retry: our earlier attempt released it
        }
        if (s == 404) {
            throw new NotHeldException("lock \"" + name + "\" was not locked (its lease had run out)", 404, a.body());
        }
        if (s == 409 && "Token mismatch".equals(a.error())) {
            throw new TokenMismatchException("lock \"" + name + "\" is held under another token", 409, a.body());
        }
        if (s == 409) {
            Object holder = a.body() == null ? null : a.body().get("owner");
            throw new NotHeldException("lock \"" + name + "\" is held by " + holder, 409, a.body());
        }
        throw LockdClient.errorFor(a);
    }

    private void done(List<String> key) {
        synchronized (mu) {
            released = true;
        }
        client.unreserve(key, this);
    }

    /** Releases the lock, then throws LockLostException if it had been lost. */
    @Override
    public void close() {
        boolean lost = isLost();
        String why = lostReason();
        release();
        if (lost) {
            throw new LockLostException("lock \"" + name + "\" was lost while held: " + why);
        }
    }
}
