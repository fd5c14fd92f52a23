package io.lockd.client;

import java.time.Duration;

/**
 * Options of an acquire: {@code new AcquireOptions().ttl(Duration.ofSeconds(30)).waitFor(Duration.ofSeconds(5))}.
 * Without a ttl the lock has no lease (it stays until released).
 */
public final class AcquireOptions {
    Duration ttl;
    Duration wait = Duration.ZERO;
    String owner;
    Duration timeout;

    /** No ttl, no wait, the client's owner, the default deadline. */
    public AcquireOptions() {
    }

    /** The lease length (100 ms .. 24 h on a default server). */
    public AcquireOptions ttl(Duration ttl) {
        this.ttl = ttl;
        return this;
    }

    /** How long to wait in the lock's FIFO queue while someone else holds it. */
    public AcquireOptions waitFor(Duration wait) {
        this.wait = wait == null ? Duration.ZERO : wait;
        return this;
    }

    /** An owner of the caller's own instead of the client's default. */
    public AcquireOptions owner(String owner) {
        this.owner = owner;
        return this;
    }

    /** The whole call's deadline (default: wait plus the request timeout). */
    public AcquireOptions timeout(Duration timeout) {
        this.timeout = timeout;
        return this;
    }
}
