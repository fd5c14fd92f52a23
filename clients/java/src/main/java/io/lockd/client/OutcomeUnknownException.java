package io.lockd.client;

import java.util.Map;

/** As UnavailableException, but a write may have been applied (a 504, or a connection lost after the request was sent). */
public class OutcomeUnknownException extends UnavailableException {
    private static final long serialVersionUID = 1L;

    public OutcomeUnknownException(String message) {
        super(message);
    }

    public OutcomeUnknownException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
