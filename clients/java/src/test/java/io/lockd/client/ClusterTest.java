package io.lockd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Scenario rows C01..C05 of clients/README.md, against a real 3-node cluster
 * (started once per run) and nginx in front of it. A test that kills a node
 * starts it again before it ends.
 */
class ClusterTest {
    final List<Integer> killed = new ArrayList<>();

    @AfterEach
    void restore() {
        for (int id : killed) {
            Harness.restart(id);
        }
    }

    void kill(int id) {
        Harness.kill(id);
        killed.add(id);
    }

    static List<String> urls() {
        return new ArrayList<>(Harness.nodes().values());
    }

    static LockdClient client(List<String> urls) {
        return LockdClient.builder().endpoints(urls).requestTimeout(Duration.ofSeconds(3)).build();
    }

    /** If the handle says it holds the lock, a consistent read answered before its valid_until shows its token. */
    static void assertHoldsWhenNotLost(Lock lk, LockdClient observer) {
        if (lk.isLost()) {
            return;
        }
        long until = lk.validUntilNanos();
        Optional<LockInfo> info;
        try {
            info = observer.get(lk.name(), true);
        } catch (UnavailableException e) {
            return;
        }
        if (System.nanoTime() - until < 0) {
            assertTrue(info.isPresent(), "handle not lost but the lock is free");
            assertEquals(lk.token(), info.get().token());
            assertEquals(lk.owner(), info.get().owner());
        }
    }

    @Test
    void C01_leader_killed_under_keepalive() {
        LockdClient c = client(urls());
        LockdClient observer = client(urls());
        List<String> lost = new CopyOnWriteArrayList<>();
        Lock lk = c.acquire(Harness.uniq("c01"), Duration.ofSeconds(2)).keepalive(l -> lost.add(l.lostReason()));
        kill(Harness.leaderId());
        long end = System.nanoTime() + 8_000_000_000L;
        while (System.nanoTime() - end < 0) {
            assertHoldsWhenNotLost(lk, observer);
            Harness.sleep(0.05);
        }
        if (lk.isLost()) {
            assertEquals(1, lost.size());
            assertThrows(LockLostException.class, lk::check);
        } else {
            assertEquals(0, lost.size());
            LockInfo info = observer.get(lk.name(), true).orElseThrow();
            assertEquals(lk.token(), info.token());
            assertEquals(c.owner(), info.owner());
            assertNotEquals(killed.get(0).toString(), c.leaderId());
        }
        lk.release();
        assertTrue(lost.size() <= 1);
    }

    @Test
    void C02_waiter_when_leader_dies() throws Exception {
        LockdClient a = client(urls());
        LockdClient b = client(urls());
        String name = Harness.uniq("c02");
        Lock held = a.acquire(name, Duration.ofSeconds(30));
        CompletableFuture<Lock> f = CompletableFuture.supplyAsync(
                () -> b.acquire(name, Duration.ofSeconds(30), Duration.ofSeconds(25)));
        Map<String, Object> leader = Harness.leader();
        assertTrue(Harness.waitFor(10, () -> Harness.metric((String) leader.get("url"), "lockd_waiters") >= 1));
        kill(((Number) leader.get("id")).intValue());
        held.release();
        Lock got = f.get(40, TimeUnit.SECONDS);
        assertTrue(got.token() > held.token());
        LockInfo info = a.get(name, true).orElseThrow();
        assertEquals(b.owner(), info.owner());
        assertEquals(got.token(), info.token());
        got.release();
    }

    @Test
    void C03_only_endpoint_is_a_follower() {
        Map<String, Object> leader = Harness.leader();
        int lid = ((Number) leader.get("id")).intValue();
        String follower = Harness.nodes().keySet().stream().filter(i -> Integer.parseInt(i) != lid).findFirst().orElseThrow();
        LockdClient c = client(List.of(Harness.nodes().get(follower)));
        Lock lk = c.acquire(Harness.uniq("c03"), Duration.ofSeconds(30));
        assertEquals(Integer.toString(lid), c.leaderId());
        assertEquals(leader.get("url"), c.leaderUrl());
        kill(Integer.parseInt(follower));
        lk.renew();
        Lock lk2 = c.acquire(Harness.uniq("c03"), Duration.ofSeconds(30));
        lk.release();
        lk2.release();
    }

    @Test
    void C04_load_balancer_with_a_node_down() {
        LockdClient c = LockdClient.builder().loadBalancer(Harness.nginx()).requestTimeout(Duration.ofSeconds(3)).build();
        int lid = Harness.leaderId();
        kill(Harness.nodes().keySet().stream().mapToInt(Integer::parseInt).filter(i -> i != lid).findFirst().orElseThrow());
        String name = Harness.uniq("c04");
        List<Long> tokens = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            Lock lk = c.acquire(name, Duration.ofSeconds(30));
            assertEquals(lk.token(), c.get(name, true).orElseThrow().token());
            tokens.add(lk.token());
            lk.release();
        }
        for (int i = 1; i < tokens.size(); i++) {
            assertTrue(tokens.get(i) > tokens.get(i - 1), tokens.toString());
        }
        assertNull(c.leaderId());
    }

    @Test
    void C05_cluster_file() {
        LockdClient c = LockdClient.builder().clusterFile(Path.of((String) Harness.cluster().get("cluster_file")))
                .requestTimeout(Duration.ofSeconds(3)).build();
        Lock lk = c.acquire(Harness.uniq("c05"), Duration.ofSeconds(30));
        Map<String, Object> leader = Harness.leader();
        assertEquals(leader.get("id").toString(), c.leaderId());
        assertEquals(leader.get("url"), c.leaderUrl());
        assertNotNull(c.get(lk.name()).orElse(null));
        lk.release();
    }
}
