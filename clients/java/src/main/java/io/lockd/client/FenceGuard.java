package io.lockd.client;

import java.util.HashMap;
import java.util.Map;

/**
 * For the storage a lock protects: remembers the highest fencing token seen
 * per resource and admits a write only with a token at least that high.
 * Thread-safe.
 */
public final class FenceGuard {
    private final Map<String, Long> highest = new HashMap<>();

    public FenceGuard() {
    }

    /** True (and remembered) when {@code token} is at least the highest seen for {@code resource}. */
    public synchronized boolean admit(String resource, Long token) {
        if (token == null) {
            return false;
        }
        Long h = highest.get(resource);
        if (h != null && token < h) {
            return false;
        }
        highest.put(resource, token);
        return true;
    }

    /** The highest token admitted for {@code resource}, or null. */
    public synchronized Long highest(String resource) {
        return highest.get(resource);
    }
}
