package io.lockd.client;

import java.util.Map;

/** A release found the lock not held by this handle (unlocked, or held by another owner) on its first attempt. */
public class NotHeldException extends LockdException {
    private static final long serialVersionUID = 1L;

    public NotHeldException(String message) {
        super(message);
    }

    public NotHeldException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
