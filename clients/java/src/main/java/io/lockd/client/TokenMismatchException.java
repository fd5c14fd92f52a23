package io.lockd.client;

import java.util.Map;

/** A release found the lock held by this owner under another token. */
public class TokenMismatchException extends NotHeldException {
    private static final long serialVersionUID = 1L;

    public TokenMismatchException(String message) {
        super(message);
    }

    public TokenMismatchException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
