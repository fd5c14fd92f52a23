package io.lockd.client;

import java.util.Map;

/** 401: missing or wrong bearer token. Never retried. */
public class UnauthorizedException extends LockdException {
    private static final long serialVersionUID = 1L;

    public UnauthorizedException(String message) {
        super(message);
    }

    public UnauthorizedException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
