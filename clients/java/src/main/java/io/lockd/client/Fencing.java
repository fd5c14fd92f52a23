package io.lockd.client;

import java.util.Map;

/** Passing a lock's fencing token to the storage it protects. */
public final class Fencing {
    public static final String TOKEN_HEADER = "X-Lockd-Token";
    public static final String LOCK_HEADER = "X-Lockd-Lock";

    private Fencing() {
    }

    /** {@code headers} with the lock's token and name added; returns it. */
    public static Map<String, String> fence(Lock lock, Map<String, String> headers) {
        headers.put(TOKEN_HEADER, Long.toString(lock.token()));
        headers.put(LOCK_HEADER, lock.name());
        return headers;
    }

    /** The fencing token in a request's headers (any case), or null. */
    public static Long tokenFrom(Map<String, String> headers) {
        for (Map.Entry<String, String> e : headers.entrySet()) {
            if (TOKEN_HEADER.equalsIgnoreCase(e.getKey())) {
                try {
                    return Long.valueOf(e.getValue().trim());
                } catch (NumberFormatException ex) {
                    return null;
                }
            }
        }
        return null;
    }
}
