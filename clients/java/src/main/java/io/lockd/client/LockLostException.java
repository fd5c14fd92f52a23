package io.lockd.client;

import java.util.Map;

/** The handle no longer holds its lock: another token or holder, gone, or its lease ran out before a renewal succeeded. */
public class LockLostException extends LockdException {
    private static final long serialVersionUID = 1L;

    public LockLostException(String message) {
        super(message);
    }

    public LockLostException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
