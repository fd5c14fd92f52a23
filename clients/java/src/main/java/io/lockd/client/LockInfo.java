package io.lockd.client;

import java.util.Map;

/**
 * A lock as GET /lock/:name and GET /locks show it. {@code owner} is null for
 * an anonymous lock; {@code ttlMs}/{@code expiresInMs} are null without a TTL.
 */
public record LockInfo(String name, boolean locked, String owner, long token, Long acquiredAtMs, Long ttlMs,
        Long expiresInMs) {

    static LockInfo from(Map<String, Object> m) {
        return new LockInfo((String) m.get("name"), Boolean.TRUE.equals(m.get("locked")), (String) m.get("owner"),
                num(m.get("token")) == null ? 0 : num(m.get("token")), num(m.get("acquired_at_ms")),
                num(m.get("ttl_ms")), num(m.get("expires_in_ms")));
    }

    static Long num(Object o) {
        return o instanceof Number ? ((Number) o).longValue() : null;
    }
}
