package io.lockd.client;

import java.util.Map;

/** 400/413: the server refused the request; the message is its text. Never retried. */
public class BadRequestException extends LockdException {
    private static final long serialVersionUID = 1L;

    public BadRequestException(String message) {
        super(message);
    }

    public BadRequestException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
