package io.lockd.client;

import java.util.Map;

/**
 * Base class of every lockd client error. {@link #status()} is the HTTP status (0 when there was no answer),
 * {@link #body()} the server's JSON answer (empty when none).
 */
public class LockdException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int status;
    private final transient Map<String, Object> body;

    public LockdException(String message) {
        this(message, 0, null);
    }

    public LockdException(String message, int status, Map<String, Object> body) {
        super(message);
        this.status = status;
        this.body = body == null ? Map.of() : body;
    }

    public int status() {
        return status;
    }

    public Map<String, Object> body() {
        return body;
    }
}
