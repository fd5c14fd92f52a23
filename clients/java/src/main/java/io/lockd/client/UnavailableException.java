package io.lockd.client;

import java.util.Map;

/** No usable answer before the deadline (connection errors, 502/503/504 throughout), and the request certainly changed nothing. */
public class UnavailableException extends LockdException {
    private static final long serialVersionUID = 1L;

    public UnavailableException(String message) {
        super(message);
    }

    public UnavailableException(String message, int status, Map<String, Object> body) {
        super(message, status, body);
    }
}
