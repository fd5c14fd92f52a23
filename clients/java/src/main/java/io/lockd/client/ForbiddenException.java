package io.lockd.client;

import java.util.Map;

/** 403: the token may not do this. Never retried. */
public class ForbiddenException extends LockdException {
    private static final long serialVersionUID = 1L;

    public ForbiddenException(String message) {
        super(message);
    }

    public ForbiddenException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
