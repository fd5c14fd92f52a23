package io.lockd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Scenario rows R01..R11 of clients/README.md, against one real lockd node. */
class NodeTest {
    static String url() {
        return Harness.nodeUrl();
    }

    static LockdClient client() {
        return LockdClient.builder().endpoints(url()).build();
    }

    static AcquireOptions ttl(double s) {
        return new AcquireOptions().ttl(Duration.ofMillis((long) (s * 1000)));
    }

    @Test
    void R01_acquire_get_release() {
        LockdClient c = client();
        String name = Harness.uniq("r01");
        Lock lk = c.acquire(name, Duration.ofSeconds(30));
        assertEquals(name, lk.name());
        assertEquals(c.owner(), lk.owner());
        assertTrue(lk.token() > 0);
        LockInfo info = c.get(name).orElseThrow();
        assertEquals(c.owner(), info.owner());
        assertEquals(lk.token(), info.token());
        assertEquals(30000L, info.ttlMs());
        assertEquals(lk.token(), c.get(name, true).orElseThrow().token());
        lk.release();
        assertTrue(lk.isReleased());
        assertTrue(c.get(name).isEmpty());
    }

    @Test
    void R02_held_by_another() {
        LockdClient a = client();
        LockdClient b = client();
        String name = Harness.uniq("r02");
        Lock lk = a.acquire(name, Duration.ofSeconds(30));
        assertTrue(b.tryAcquire(name, (Duration) null).isEmpty());
        LockHeldException e = assertThrows(LockHeldException.class, () -> b.acquire(name, new AcquireOptions().waitFor(Duration.ZERO)));
        assertEquals(a.owner(), e.holder());
        List<Integer> ran = new ArrayList<>();
        assertThrows(LockHeldException.class, () -> {
            try (Lock l = b.acquire(name, Duration.ofSeconds(5)).keepalive()) {
                ran.add((int) l.token());
            }
        });
        assertThrows(LockHeldException.class, () -> b.withLock(name, ttl(5), l -> ran.add(2)));
        assertTrue(ran.isEmpty());
        lk.release();
    }

    @Test
    void R03_wait_handoff() throws Exception {
        LockdClient a = client();
        LockdClient b = client();
        String name = Harness.uniq("r03");
        Lock lk = a.acquire(name, Duration.ofSeconds(30));
        CompletableFuture<Lock> f = CompletableFuture.supplyAsync(
                () -> b.acquire(name, Duration.ofSeconds(2), Duration.ofSeconds(20)));
        // released only once b's POST has arrived (a waiter in the queue) and has
        // waited longer than its own lease: the scenario, not a synchronisation
        assertTrue(Harness.waitFor(10, () -> Harness.metric(url(), "lockd_waiters") >= 1));
        Harness.sleep(2.5);
        lk.release();
        Lock got = f.get(25, TimeUnit.SECONDS);
        assertTrue(got.token() > lk.token());
        assertEquals(b.owner(), got.owner());
        assertFalse(got.isLost(), got.lostReason()); // its lease counts from after the hand-off
        assertEquals(got.token(), a.get(name).orElseThrow().token());
        got.release();
    }

    @Test
    void R04_renew_keeps_token() {
        LockdClient c = client();
        Lock lk = c.acquire(Harness.uniq("r04"), Duration.ofSeconds(5));
        long v0 = lk.validUntilNanos();
        long t0 = System.nanoTime();
        lk.renew();
        assertTrue(lk.validUntilNanos() > v0);
        assertTrue(lk.validUntilNanos() <= System.nanoTime() + 5_000_000_000L);
        assertTrue(lk.validUntilNanos() >= t0 + Duration.ofSeconds(5).minus(LockdClient.clockMargin(Duration.ofSeconds(5))).toNanos());
        assertEquals(lk.token(), c.get(lk.name()).orElseThrow().token());
        lk.release();
    }

    @Test
    void R05_keepalive_beyond_ttl() {
        LockdClient c = client();
        Lock lk = c.acquire(Harness.uniq("r05"), ttl(0.5)).keepalive();
        long end = System.nanoTime() + 2_000_000_000L;
        while (System.nanoTime() - end < 0) {
            assertFalse(lk.isLost(), lk.lostReason());
            assertEquals(lk.token(), c.get(lk.name()).orElseThrow().token());
            Harness.sleep(0.1);
        }
        lk.release();
        assertTrue(c.get(lk.name()).isEmpty());
    }

    @Test
    void R06_expiry_detected() {
        LockdClient c = client();
        LockdClient other = client();
        Lock lk = c.acquire(Harness.uniq("r06"), ttl(0.3));
        assertTrue(lk.validUntilNanos() <= System.nanoTime() + 300_000_000L);
        assertTrue(Harness.waitFor(10, () -> other.tryAcquire(lk.name(), Duration.ofSeconds(30)).isPresent()));
        assertTrue(lk.isLost());
        assertThrows(LockLostException.class, lk::check);
        assertThrows(LockLostException.class, lk::renew);
        lk.release();
        assertEquals(other.owner(), other.get(lk.name()).orElseThrow().owner());
    }

    @Test
    void R07_list_all_pages() {
        LockdClient c = client();
        String prefix = Harness.uniq("r07") + "-";
        List<String> names = new ArrayList<>();
        List<Lock> locks = new ArrayList<>();
        for (int i = 0; i < 23; i++) {
            names.add(String.format("%s%02d", prefix, i));
            locks.add(c.acquire(names.get(i), Duration.ofSeconds(60)));
        }
        assertEquals(names, c.list(prefix, 5).map(LockInfo::name).collect(Collectors.toList()));
        locks.forEach(Lock::release);
        assertEquals(0, c.list(prefix, 100).count());
    }

    @Test
    void R08_status_and_owners() {
        LockdClient a = client();
        LockdClient b = client();
        Map<String, Object> st = a.status();
        assertEquals("leader", st.get("role"));
        assertFalse(((List<?>) st.get("members")).isEmpty());
        assertNotEquals(a.owner(), b.owner());
        assertTrue(a.owner().matches("[A-Za-z0-9$._-]+:" + ProcessHandle.current().pid() + ":[0-9a-f]+"), a.owner());
    }

    @Test
    void R09_release_idempotent_and_one_handle_per_name() throws Exception {
        LockdClient c = client();
        String name = Harness.uniq("r09");
        Lock lk = c.acquire(name, Duration.ofSeconds(30));
        assertTrue(c.tryAcquire(name, (Duration) null).isEmpty());
        CompletableFuture<Lock> f = CompletableFuture.supplyAsync(
                () -> c.acquire(name, Duration.ofSeconds(30), Duration.ofSeconds(10)));
        lk.release();
        lk.release();
        Lock second = f.get(15, TimeUnit.SECONDS);
        assertTrue(second.token() > lk.token());
        second.release();
    }

    @Test
    void R10_readme_examples_run() throws Exception {
        String readme = Files.readString(Harness.ROOT.resolve("clients/java/README.md"));
        Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(readme);
        assertTrue(m.find(), "no java example in the README");
        Path dir = Files.createTempDirectory("lockd-readme");
        Files.writeString(dir.resolve("RunOnce.java"), m.group(1));
        String classes = System.getProperty("lockd.classes", "target/classes");
        String out = run(dir, List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp", classes,
                dir.resolve("RunOnce.java").toString()));
        assertTrue(out.contains("ran the job with token") && out.contains("refused a stale token"), out);
        // the Scala example, compiled by Debian's scalac against the jar's classes as they are
        String scalaOut = run(dir, List.of("scalac", "-cp", classes, "-d", dir.toString(),
                Harness.ROOT.resolve("clients/java/examples/scala/RunOnce.scala").toString()));
        assertNotNull(scalaOut);
        // Scala 2.11's `scala` runner hides the platform modules (java.net.http) from its class
        // loader, so the program runs on plain java with the Scala library on the class path
        out = run(dir, List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                "/usr/share/java/scala-library.jar:" + classes + ":" + dir, "RunOnce"));
        assertTrue(out.contains("scala: ran the job with token"), out);
    }

    static String run(Path dir, List<String> cmd) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().put("LOCKD_URL", url());
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: " + cmd);
        assertEquals(0, p.exitValue(), cmd + ":\n" + out);
        return out;
    }

    @Test
    void R11_bad_name() {
        BadRequestException e = assertThrows(BadRequestException.class, () -> client().acquire("x".repeat(129)));
        assertEquals("Name is too long (129 bytes > max of 128)", e.getMessage());
    }
}
