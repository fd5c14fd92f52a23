package io.lockd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Scenario rows F01..F14 of clients/README.md, against the scripted fake server. */
class FakeTest {
    static final Map<String, Object> OK = Map.of("echo_token", true);
    Harness.Fake fake;

    @BeforeEach
    void setUp() {
        fake = Harness.fake(false);
    }

    static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    static Map<String, Object> lockBody(long token, Long ttlMs) {
        return obj("name", "job", "locked", true, "owner", "me", "token", token, "ttl_ms", ttlMs, "expires_in_ms", ttlMs);
    }

    static Map<String, Object> step(int status, Map<String, Object> body) {
        return obj("status", status, "body", body);
    }

    static Map<String, Object> step(int status, Map<String, Object> body, Map<String, Object> headers) {
        return obj("status", status, "body", body, "headers", headers);
    }

    static final Map<String, Object> UNKNOWN = obj("error", "Consensus timeout", "outcome", "unknown");

    LockdClient client(LockdClient.Builder b) {
        return b.endpoints(fake.url).requestTimeout(Duration.ofSeconds(2)).build();
    }

    LockdClient client() {
        return client(LockdClient.builder().owner("me"));
    }

    static AcquireOptions ttl(double s) {
        return new AcquireOptions().ttl(Duration.ofMillis((long) (s * 1000)));
    }

    static double secs(long nanos) {
        return nanos / 1e9;
    }

    @Test
    void F01_504_then_success() {
        fake.script(step(504, UNKNOWN), OK);
        LockdClient c = client(LockdClient.builder());
        assertEquals(7, c.acquire("job", ttl(30)).token());
        List<Map<String, Object>> p = fake.requests("POST");
        assertEquals(2, p.size());
        assertEquals(p.get(0).get("query"), p.get(1).get("query"));
        assertEquals(Map.of("owner", c.owner(), "ttl", "30000ms", "wait", "0ms"), p.get(0).get("query"));
    }

    @Test
    void F02_reset_after_request_sent() {
        fake.script(obj("action", "reset"), OK);
        assertEquals(7, client().acquire("job", ttl(10)).token());
        List<Map<String, Object>> p = fake.requests("POST");
        assertEquals(2, p.size());
        assertEquals(p.get(0).get("query"), p.get(1).get("query"));
    }

    @Test
    void F03_retry_after_honoured() {
        fake.script(step(503, obj("error", "No leader"), obj("Retry-After", "1")), OK);
        client(LockdClient.builder().owner("me")).acquire("job", new AcquireOptions().timeout(Duration.ofSeconds(5)));
        List<Map<String, Object>> p = fake.requests("POST");
        assertEquals(2, p.size());
        double gap = ((Number) p.get(1).get("t")).doubleValue() - ((Number) p.get(0).get("t")).doubleValue();
        assertTrue(gap >= 0.95, "gap " + gap);
    }

    @Test
    void F04_retry_after_beyond_deadline() {
        fake.script(step(503, obj("error", "No leader"), obj("Retry-After", "30")));
        long t0 = System.nanoTime();
        UnavailableException e = assertThrows(UnavailableException.class,
                () -> client().acquire("job", new AcquireOptions().timeout(Duration.ofSeconds(1))));
        assertFalse(e instanceof OutcomeUnknownException);
        assertTrue(secs(System.nanoTime() - t0) < 3.0);
        assertEquals(1, fake.requests("POST").size());
    }

    @Test
    void F05_renewal_answers_another_token() {
        fake.script(step(200, lockBody(5, 30000L)), step(200, lockBody(9, 30000L)),
                step(200, obj("name", "job", "locked", false)));
        Lock lk = client().acquire("job", ttl(30));
        assertThrows(LockLostException.class, lk::renew);
        assertTrue(lk.isLost());
        assertThrows(LockLostException.class, lk::check);
        List<Map<String, Object>> d = fake.requests("DELETE");
        assertEquals(1, d.size());
        assertEquals("9", ((Map<?, ?>) d.get(0).get("query")).get("token"));
        lk.release();
    }

    @Test
    void F06_keepalive_loss_fires_callback_once() throws InterruptedException {
        fake.script(step(200, lockBody(5, 600L)),
                step(409, obj("error", "Lock conflict", "name", "job", "owner", "other")));
        Lock lk = client().acquire("job", ttl(0.6));
        List<Lock> calls = new CopyOnWriteArrayList<>();
        CountDownLatch fired = new CountDownLatch(1);
        lk.keepalive(l -> {
            calls.add(l);
            fired.countDown();
        });
        assertTrue(fired.await(5, TimeUnit.SECONDS));
        lk.release(); // joins the keepalive thread: no second callback can follow
        assertEquals(1, calls.size());
        assertSame(lk, calls.get(0));
        assertTrue(lk.isLost());
        assertTrue(lk.lostReason().contains("other"));
        assertThrows(LockLostException.class, lk::check);
    }

    @Test
    void F07_slow_endpoint_deadline() {
        fake.script(obj("delay", 5, "status", 200, "body", lockBody(5, null)));
        LockdClient c = client();
        long t0 = System.nanoTime();
        assertThrows(OutcomeUnknownException.class,
                () -> c.acquire("job", new AcquireOptions().timeout(Duration.ofSeconds(1))));
        assertTrue(secs(System.nanoTime() - t0) < 2.5);
        LockdClient g = LockdClient.builder().endpoints(fake.url).requestTimeout(Duration.ofSeconds(1)).build();
        t0 = System.nanoTime();
        UnavailableException e = assertThrows(UnavailableException.class, () -> g.get("job"));
        assertFalse(e instanceof OutcomeUnknownException);
        assertTrue(secs(System.nanoTime() - t0) < 2.5);
    }

    @Test
    void F08_400_never_retried() {
        fake.script(step(400, obj("error", "ttl must be between 100ms and 24h")));
        BadRequestException e = assertThrows(BadRequestException.class, () -> client().acquire("job", ttl(0.01)));
        assertEquals("ttl must be between 100ms and 24h", e.getMessage());
        assertEquals(1, fake.requests().size());
        fake.script(step(409, obj("error", "Lock conflict", "name", "job", "owner", "them")));
        LockHeldException h = assertThrows(LockHeldException.class, () -> client().acquire("job"));
        assertEquals("them", h.holder());
        assertTrue(client().tryAcquire("job", (Duration) null).isEmpty());
        assertEquals(2, fake.requests().size());
    }

    @Test
    void F09_release_outcomes() {
        LockdClient c = client();
        fake.script(step(200, lockBody(5, null)), step(504, UNKNOWN),
                step(404, obj("error", "Not Found", "name", "job", "locked", false)));
        c.acquire("job").release();
        List<Map<String, Object>> d = fake.requests("DELETE");
        assertEquals(2, d.size());
        for (Map<String, Object> r : d) {
            assertEquals(Map.of("owner", "me", "token", "5"), r.get("query"));
        }
        fake.script(step(200, lockBody(5, null)), step(404, obj("error", "Not Found", "name", "job", "locked", false)));
        assertThrows(NotHeldException.class, () -> c.acquire("job").release());
        fake.script(step(200, lockBody(5, null)), step(409, obj("error", "Token mismatch", "name", "job", "owner", "me")));
        assertThrows(TokenMismatchException.class, () -> c.acquire("job").release());
    }

    @Test
    void F10_outcome_unknown_only_at_deadline() {
        fake.script(step(504, UNKNOWN));
        long t0 = System.nanoTime();
        assertThrows(OutcomeUnknownException.class,
                () -> client().acquire("job", new AcquireOptions().timeout(Duration.ofSeconds(1))));
        double el = secs(System.nanoTime() - t0);
        assertTrue(el >= 0.9 && el < 2.5, "elapsed " + el);
        assertTrue(fake.requests("POST").size() >= 2);
        fake.script(step(503, obj("error", "No leader")));
        UnavailableException e = assertThrows(UnavailableException.class,
                () -> client().acquire("job", new AcquireOptions().timeout(Duration.ofMillis(500))));
        assertFalse(e instanceof OutcomeUnknownException);
    }

    @Test
    void F11_min_index_sent_on_reads() {
        fake.script(step(200, lockBody(5, null), obj("X-Lockd-Applied-Index", "42")),
                step(200, lockBody(5, null), obj("X-Lockd-Applied-Index", "40")), step(200, lockBody(5, null)));
        LockdClient c = client();
        c.acquire("job");
        c.get("job");
        c.get("job");
        List<Map<String, Object>> r = fake.requests();
        assertFalse(((Map<?, ?>) r.get(0).get("headers")).containsKey("x-lockd-min-index"));
        assertEquals("42", ((Map<?, ?>) r.get(1).get("headers")).get("x-lockd-min-index"));
        assertEquals("42", ((Map<?, ?>) r.get(2).get("headers")).get("x-lockd-min-index"));
        assertEquals(42, c.appliedIndex());
    }

    @Test
    void F12_bearer_token_and_auth_errors() {
        LockdClient c = client(LockdClient.builder().owner("me").token("s3cret"));
        fake.script(step(401, obj("error", "Unauthorized")));
        assertThrows(UnauthorizedException.class, () -> c.acquire("job"));
        fake.script(step(403, obj("error", "Forbidden")));
        assertThrows(ForbiddenException.class, () -> c.get("job"));
        List<Map<String, Object>> r = fake.requests();
        assertEquals(1, r.size());
        assertEquals("Bearer s3cret", ((Map<?, ?>) r.get(0).get("headers")).get("authorization"));
    }

    @Test
    void F13_https_with_ca_file() {
        Harness.Fake f = Harness.fake(true);
        f.script(OK);
        LockdClient c = LockdClient.builder().endpoints(f.url).caFile(Path.of(f.caFile)).owner("me").build();
        assertEquals(7, c.acquire("job").token());
        long t0 = System.nanoTime();
        LockdException e = assertThrows(LockdException.class,
                () -> LockdClient.builder().endpoints(f.url).requestTimeout(Duration.ofSeconds(5)).build().acquire("job"));
        assertTrue(e.getMessage().contains("certificate"), e.getMessage());
        assertTrue(secs(System.nanoTime() - t0) < 2.0);
    }

    @Test
    void F14_scoped_form_throws_after_loss() {
        fake.script(step(200, lockBody(5, 600L)),
                step(409, obj("error", "Lock conflict", "name", "job", "owner", "other")));
        List<Long> ran = new CopyOnWriteArrayList<>();
        LockdClient c = client();
        assertThrows(LockLostException.class, () -> {
            try (Lock lk = c.acquire("job", ttl(0.6)).keepalive()) {
                ran.add(lk.token());
                Harness.waitFor(5, lk::isLost);
            }
        });
        assertEquals(List.of(5L), ran);
        fake.script(step(200, lockBody(5, 600L)),
                step(409, obj("error", "Lock conflict", "name", "job", "owner", "other")));
        assertThrows(LockLostException.class, () -> c.withLock("job", ttl(0.6), lk -> Harness.waitFor(5, lk::isLost)));
    }
}
