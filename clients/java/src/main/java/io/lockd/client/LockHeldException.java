package io.lockd.client;

import java.util.Map;

/** The lock is held by someone else (409 after the wait ran out); {@link #holder()} is its owner. */
public class LockHeldException extends LockdException {
    private static final long serialVersionUID = 1L;
    private final String name;
    private final String holder;

    public LockHeldException(String message, String name, String holder, Map<String, Object> body) {
        super(message, 409, body);
        this.name = name;
        this.holder = holder;
    }

    /** The lock's name. */
    public String name() {
        return name;
    }

    /** The holder's owner, or null for an anonymous lock. */
    public String holder() {
        return holder;
    }
}
