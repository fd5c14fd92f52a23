package io.lockd.client;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.TrustManagerFactory;

/**
 * A lockd client, safe to share between threads. It keeps connections alive
 * ({@link HttpClient}'s pool), follows the cluster's leader, retries only on
 * connection errors, 502, 503 and 504 (honouring Retry-After, full-jitter
 * backoff, bounded by the caller's deadline) and raises typed errors.
 * Behaviour on loss, retry and failover: clients/README.md.
 *
 * <pre>{@code
 * LockdClient client = LockdClient.builder().endpoints("http://n1:2080", "http://n2:2080").build();
 * try (Lock lock = client.acquire("job", new AcquireOptions().ttl(Duration.ofSeconds(30))).keepalive()) {
 *     work(lock.token());
 * }
 * }</pre>
 */
public final class LockdClient implements AutoCloseable {
    public static final int DEFAULT_PORT = 2080;
    static final long DEAD_FOR_NS = 1_000_000_000L;
    static final long STATUS_EVERY_NS = 1_000_000_000L;

    private final HttpClient http;
    private final String owner;
    private final String auth;
    final Duration requestTimeout;
    private final boolean followLeader;
    private final double backoffBase;
    private final double backoffCap;
    private final String scheme;

    private final Object mu = new Object();
    private final Map<String, Endpoint> eps = new HashMap<>();
    private final List<Endpoint> configured = new ArrayList<>();
    private final Map<String, Endpoint> members = new LinkedHashMap<>();
    private final Map<String, Long> dead = new HashMap<>();
    private String leaderId;
    private Endpoint leaderEp;
    private int cur;
    private long nextStatus;
    private long maxIndex;

    private final Map<List<String>, Lock> held = new HashMap<>();

    static final class Endpoint {
        final String key;

        Endpoint(String key) {
            this.key = key;
        }
    }

    record Answer(int status, Map<String, String> headers, Map<String, Object> body, long sentAt,
            boolean maybeApplied, int attempts) {
        String error() {
            Object e = body == null ? null : body.get("error");
            return e == null ? "HTTP " + status : e.toString();
        }
    }

    private static final class ConnFailure extends Exception {
        private static final long serialVersionUID = 1L;
        final boolean sent;

        ConnFailure(Exception cause, boolean sent) {
            super(cause.getClass().getSimpleName() + ": " + cause.getMessage(), cause);
            this.sent = sent;
        }
    }

    private LockdClient(Builder b) {
        if (b.endpoints.isEmpty()) {
            throw new IllegalArgumentException("at least one endpoint is needed");
        }
        this.owner = b.owner != null ? b.owner : defaultOwner();
        this.auth = b.token != null ? "Bearer " + b.token : null;
        this.requestTimeout = b.requestTimeout;
        this.followLeader = b.followLeader;
        this.backoffBase = b.backoffBase;
        this.backoffCap = b.backoffCap;
        HttpClient.Builder hb = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(b.connectTimeout).followRedirects(HttpClient.Redirect.NEVER);
        SSLContext ctx = b.sslContext;
        if (ctx == null && b.caFile != null) {
            ctx = sslContextFor(b.caFile);
        }
        if (ctx != null) {
            hb.sslContext(ctx);
        }
        this.http = hb.build();
        for (String e : b.endpoints) {
            configured.add(endpoint(e));
        }
        this.scheme = configured.get(0).key.substring(0, configured.get(0).key.indexOf("://"));
        b.members.forEach((id, addr) -> members.put(id, endpoint(addr)));
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A client for the original's cluster file ({"101":"host:port",...}). */
    public static LockdClient fromClusterFile(Path path) {
        return builder().clusterFile(path).build();
    }

    /** A client that sends every request through one load balancer URL. */
    public static LockdClient fromLoadBalancer(String url) {
        return builder().loadBalancer(url).build();
    }

    /** Options of a client. */
    public static final class Builder {
        final List<String> endpoints = new ArrayList<>();
        final Map<String, String> members = new LinkedHashMap<>();
        String owner;
        String token;
        Duration connectTimeout = Duration.ofSeconds(2);
        Duration requestTimeout = Duration.ofSeconds(10);
        Path caFile;
        SSLContext sslContext;
        boolean followLeader = true;
        double backoffBase = 0.05;
        double backoffCap = 2.0;

        Builder() {
        }

        /** URLs of nodes ("http://host:port"; "host:port" means http and "host" port 2080). */
        public Builder endpoints(String... urls) {
            endpoints.addAll(List.of(urls));
            return this;
        }

        public Builder endpoints(List<String> urls) {
            endpoints.addAll(urls);
            return this;
        }

        /**
         * The original's cluster file: {"101":"host:port",...} (a missing port
         * means 2080; an entry may be {"http":"host:port","raft":...}).
         */
        @SuppressWarnings("unchecked")
        public Builder clusterFile(Path path) {
            Map<String, Object> data;
            try {
                data = (Map<String, Object>) Json.parse(Files.readString(path));
            } catch (IOException e) {
                throw new LockdException("cannot read cluster file " + path + ": " + e.getMessage());
            }
            Map<String, String> sorted = new TreeMap<>();
            data.forEach((id, v) -> {
                String addr = v instanceof Map ? (String) ((Map<String, Object>) v).get("http") : (String) v;
                if (!addr.contains(":")) {
                    addr += ":" + DEFAULT_PORT;
                }
                sorted.put(id, "http://" + addr);
                members.put(id, "http://" + addr);
            });
            List<String> urls = new ArrayList<>(sorted.values());
            urls.sort(null);
            endpoints.addAll(urls);
            return this;
        }

        /** One URL of a load balancer: every request goes through it (nodes' own addresses are not used). */
        public Builder loadBalancer(String url) {
            endpoints.add(url);
            followLeader = false;
            return this;
        }

        public Builder owner(String owner) {
            this.owner = owner;
            return this;
        }

        /** A bearer token, sent as {@code Authorization: Bearer ...}. */
        public Builder token(String token) {
            this.token = token;
            return this;
        }

        public Builder connectTimeout(Duration d) {
            this.connectTimeout = d;
            return this;
        }

        public Builder requestTimeout(Duration d) {
            this.requestTimeout = d;
            return this;
        }

        /** A PEM file of the CA certificate(s) that https endpoints must chain to. */
        public Builder caFile(Path path) {
            this.caFile = path;
            return this;
        }

        public Builder sslContext(SSLContext ctx) {
            this.sslContext = ctx;
            return this;
        }

        public Builder followLeader(boolean follow) {
            this.followLeader = follow;
            return this;
        }

        /** Full-jitter backoff: a random pause up to min(cap, base * 2^attempt) seconds. */
        public Builder backoff(double baseSeconds, double capSeconds) {
            this.backoffBase = baseSeconds;
            this.backoffCap = capSeconds;
            return this;
        }

        public LockdClient build() {
            return new LockdClient(this);
        }
    }

    /** host:pid:random, restricted to the API's owner alphabet. */
    public static String defaultOwner() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            host = "host";
        }
        host = host.replaceAll("[^A-Za-z0-9._-]", "_");
        byte[] r = new byte[6];
        new SecureRandom().nextBytes(r);
        StringBuilder hex = new StringBuilder();
        for (byte x : r) {
            hex.append(String.format("%02x", x));
        }
        String o = host + ":" + ProcessHandle.current().pid() + ":" + hex;
        return o.length() > 128 ? o.substring(o.length() - 128) : o;
    }

    /** What valid_until keeps back from the TTL: 50 ms plus 1 % of it. */
    public static Duration clockMargin(Duration ttl) {
        return Duration.ofMillis(50).plus(ttl.dividedBy(100));
    }

    private static SSLContext sslContextFor(Path caFile) {
        try (InputStream in = Files.newInputStream(caFile)) {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int n = 0;
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                ks.setCertificateEntry("ca" + n++, c);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (IOException | java.security.GeneralSecurityException e) {
            throw new LockdException("cannot use CA file " + caFile + ": " + e.getMessage());
        }
    }

    private Endpoint endpoint(String url) {
        if (!url.contains("://")) {
            url = "http://" + url;
            if (!url.matches(".*:\\d+$")) {
                url += ":" + DEFAULT_PORT;
            }
        }
        URI u = URI.create(url);
        if (!"http".equals(u.getScheme()) && !"https".equals(u.getScheme())) {
            throw new IllegalArgumentException("unsupported scheme in " + url);
        }
        int port = u.getPort() != -1 ? u.getPort() : ("https".equals(u.getScheme()) ? 443 : 80);
        String prefix = u.getRawPath() == null ? "" : u.getRawPath().replaceAll("/+$", "");
        String key = u.getScheme() + "://" + u.getHost() + ":" + port + prefix;
        synchronized (mu) {
            return eps.computeIfAbsent(key, Endpoint::new);
        }
    }

    @Override
    public void close() {
        // HttpClient has no close() before Java 21; its idle connections time out.
    }

    /** The client's default owner. */
    public String owner() {
        return owner;
    }

    /** The id of the leader this client follows, or null. */
    public String leaderId() {
        synchronized (mu) {
            return leaderEp == null ? null : leaderId;
        }
    }

    /** The URL of the leader this client follows, or null. */
    public String leaderUrl() {
        synchronized (mu) {
            return leaderEp == null ? null : leaderEp.key;
        }
    }

    /** The highest X-Lockd-Applied-Index this client has seen (0: none). */
    public long appliedIndex() {
        synchronized (mu) {
            return maxIndex;
        }
    }

    // -- operations -------------------------------------------------------

    /** Acquires {@code name} without a lease, waiting up to {@code wait}. */
    public Lock acquire(String name) {
        return acquire(name, new AcquireOptions());
    }

    /** Acquires {@code name} with a lease of {@code ttl}, without waiting. */
    public Lock acquire(String name, Duration ttl) {
        return acquire(name, new AcquireOptions().ttl(ttl));
    }

    /** Acquires {@code name} with a lease of {@code ttl}, waiting up to {@code wait}. */
    public Lock acquire(String name, Duration ttl, Duration wait) {
        return acquire(name, new AcquireOptions().ttl(ttl).waitFor(wait));
    }

    /** Acquires {@code name}; throws LockHeldException when it stays held. */
    public Lock acquire(String name, AcquireOptions o) {
        Lock l = doAcquire(name, o);
        if (l == null) {
            String who = o.owner != null ? o.owner : owner;
            throw new LockHeldException("lock \"" + name + "\" is held by this client already", name, who, null);
        }
        return l;
    }

    /** One attempt without waiting: the lock, or empty when held. */
    public Optional<Lock> tryAcquire(String name, Duration ttl) {
        return tryAcquire(name, new AcquireOptions().ttl(ttl));
    }

    public Optional<Lock> tryAcquire(String name, AcquireOptions o) {
        AcquireOptions once = new AcquireOptions().ttl(o.ttl).owner(o.owner).timeout(o.timeout);
        try {
            return Optional.ofNullable(doAcquire(name, once));
        } catch (LockHeldException e) {
            return Optional.empty();
        }
    }

    /**
     * The scoped form as a function: runs {@code body} only once the lock is
     * held (else LockHeldException and the body does not run), keeps the lease
     * alive while it runs, releases at the end, and throws LockLostException
     * at the end if the lock was lost meanwhile. Returns the body's value.
     */
    public <T> T withLock(String name, AcquireOptions o, Function<Lock, T> body) {
        Lock l = acquire(name, o);
        if (o.ttl != null) {
            l.keepalive();
        }
        T result;
        try {
            result = body.apply(l);
        } catch (RuntimeException | Error e) {
            try {
                l.release();
            } catch (LockdException re) {
                e.addSuppressed(re);
            }
            throw e;
        }
        l.close();
        return result;
    }

    private Lock doAcquire(String name, AcquireOptions o) {
        String own = o.owner != null ? o.owner : owner;
        long now = System.nanoTime();
        long waitUntil = now + o.wait.toNanos();
        long deadline = o.timeout != null ? now + o.timeout.toNanos() : waitUntil + requestTimeout.toNanos();
        List<String> key = List.of(name, own);
        synchronized (held) {
            // one handle per (name, owner) in this client: a second acquire
            // through the server would be a renewal, not a new lock
            while (held.containsKey(key)) {
                long left = waitUntil - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                try {
                    held.wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new LockdException("interrupted");
                }
            }
            held.put(key, null);
        }
        boolean ok = false;
        try {
            Map<String, String> p = new LinkedHashMap<>();
            p.put("owner", own);
            if (o.ttl != null) {
                p.put("ttl", msParam(o.ttl.toNanos()));
            }
            Answer a = call("POST", "/lock/" + quote(name), p, deadline, false, waitUntil);
            if (a.status() == 409) {
                String holder = a.body() == null ? null : (String) a.body().get("owner");
                throw new LockHeldException("lock \"" + name + "\" is held by " + holder, name, holder, a.body());
            }
            if (a.status() != 200) {
                throw errorFor(a);
            }
            Lock l = new Lock(this, name, own, LockInfo.num(a.body().get("token")), o.ttl, a.sentAt());
            if (o.ttl != null && l.validUntilNanos() - System.nanoTime() < o.ttl.toNanos() / 2) {
                // it waited in the queue: the lease counted from the request's
                // sending is mostly spent, so count it from a renewal sent now
                try {
                    l.renewForAcquire(deadline(null));
                } catch (LockLostException e) {
                    throw e;
                } catch (LockdException e) {
                    l.deleteQuietly(l.token());
                    throw e;
                }
            }
            synchronized (held) {
                held.put(key, l);
            }
            ok = true;
            return l;
        } finally {
            if (!ok) {
                unreserve(key, null);
            }
        }
    }

    void unreserve(List<String> key, Lock l) {
        synchronized (held) {
            if (held.containsKey(key) && (l == null || held.get(key) == l)) {
                held.remove(key);
                held.notifyAll();
            }
        }
    }

    /** The lock's state, or empty when it is not locked. */
    public Optional<LockInfo> get(String name) {
        return get(name, false);
    }

    /** As {@link #get(String)}; {@code consistent} asks for a linearizable read. */
    public Optional<LockInfo> get(String name, boolean consistent) {
        Map<String, String> p = consistent ? Map.of("consistent", "true") : Map.of();
        Answer a = call("GET", "/lock/" + quote(name), p, deadline(null), true, null);
        if (a.status() == 404) {
            return Optional.empty();
        }
        if (a.status() != 200) {
            throw errorFor(a);
        }
        return Optional.of(LockInfo.from(a.body()));
    }

    /** Every lock (name order), fetched one page at a time following {@code next}. */
    public Stream<LockInfo> list(String prefix, int pageSize) {
        Iterator<LockInfo> it = new Iterator<>() {
            private List<Object> page = List.of();
            private int pos;
            private String after;
            private boolean more = true;

            @Override
            @SuppressWarnings("unchecked")
            public boolean hasNext() {
                while (pos >= page.size() && more) {
                    Map<String, String> p = new LinkedHashMap<>();
                    p.put("limit", Integer.toString(pageSize));
                    if (prefix != null) {
                        p.put("prefix", prefix);
                    }
                    if (after != null) {
                        p.put("after", after);
                    }
                    Answer a = call("GET", "/locks", p, deadline(null), true, null);
                    if (a.status() != 200) {
                        throw errorFor(a);
                    }
                    Object locks = a.body().get("locks");
                    page = locks instanceof List ? (List<Object>) locks : List.of();
                    pos = 0;
                    Object next = a.body().get("next");
                    after = next == null ? null : next.toString();
                    more = after != null;
                }
                return pos < page.size();
            }

            @Override
            @SuppressWarnings("unchecked")
            public LockInfo next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return LockInfo.from((Map<String, Object>) page.get(pos++));
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED), false);
    }

    /** GET /status of the node the client talks to. */
    public Map<String, Object> status() {
        Answer a = call("GET", "/status", Map.of(), deadline(null), false, null);
        if (a.status() != 200) {
            throw errorFor(a);
        }
        return a.body();
    }

    // -- internals ---------------------------------------------------------

    long deadline(Duration timeout) {
        return System.nanoTime() + (timeout == null ? requestTimeout : timeout).toNanos();
    }

    static String quote(String name) {
        return URLEncoder.encode(name, StandardCharsets.UTF_8).replace("+", "%20");
    }

    static String msParam(long nanos) {
        return Math.max(0, Math.round(nanos / 1e6)) + "ms";
    }

    /**
     * Sends until an answer that is not 502/503/504 arrives or the deadline
     * passes. With {@code waitUntil} the wait field is resent reduced.
     */
    Answer call(String method, String path, Map<String, String> params, long deadline, boolean read,
            Long waitUntil) {
        int attempt = 0;
        boolean maybeApplied = false;
        String last = "no attempt";
        while (true) {
            long now = System.nanoTime();
            long left = deadline - now;
            if (left <= 0) {
                break;
            }
            Map<String, String> q = new LinkedHashMap<>(params);
            long per = requestTimeout.toNanos();
            if (waitUntil != null) {
                long w = Math.max(0, waitUntil - now);
                q.put("wait", msParam(w));
                per += w;
            }
            StringBuilder full = new StringBuilder(path);
            char sep = '?';
            for (Map.Entry<String, String> e : q.entrySet()) {
                full.append(sep).append(URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8)).append('=')
                        .append(URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8));
                sep = '&';
            }
            Map<String, String> headers = new HashMap<>();
            if (read) {
                synchronized (mu) {
                    if (maxIndex > 0) {
                        headers.put("X-Lockd-Min-Index", Long.toString(maxIndex));
                    }
                }
            }
            Endpoint ep = pick();
            attempt++;
            Answer a;
            try {
                a = exchange(ep, method, full.toString(), headers, Math.min(per, left));
            } catch (ConnFailure e) {
                markDead(ep);
                maybeApplied |= e.sent && !"GET".equals(method);
                last = ep.key + ": " + e.getMessage();
                pause(attempt, deadline, -1);
                continue;
            }
            observe(ep, a.headers(), a.status());
            int s = a.status();
            if (s == 502 || s == 503 || s == 504) {
                Object outcome = a.body() == null ? null : a.body().get("outcome");
                if (!"GET".equals(method) && (s != 503 || "unknown".equals(outcome))) {
                    maybeApplied = true;
                }
                last = ep.key + ": " + s + " " + a.error();
                double ra = retryAfter(a.headers().get("retry-after"));
                if (ra >= 0 && System.nanoTime() + (long) (ra * 1e9) >= deadline) {
                    break; // honouring it would pass the deadline
                }
                pause(attempt, deadline, ra);
                continue;
            }
            return new Answer(s, a.headers(), a.body(), a.sentAt(), maybeApplied, attempt);
        }
        String msg = method + " " + path + ": no answer before the deadline after " + attempt
                + " attempt(s) (last: " + last + ")";
        if (maybeApplied) {
            throw new OutcomeUnknownException(msg);
        }
        throw new UnavailableException(msg);
    }

    private Answer exchange(Endpoint ep, String method, String pathAndQuery, Map<String, String> headers,
            long timeoutNs) throws ConnFailure {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(ep.key + pathAndQuery))
                .timeout(Duration.ofNanos(Math.max(1_000_000, timeoutNs)))
                .method(method, HttpRequest.BodyPublishers.noBody()).header("Accept", "application/json");
        if (auth != null) {
            b.header("Authorization", auth);
        }
        headers.forEach(b::header);
        long sentAt = System.nanoTime();
        HttpResponse<byte[]> r;
        try {
            r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (HttpConnectTimeoutException | ConnectException e) {
            throw new ConnFailure(e, false);
        } catch (SSLHandshakeException e) {
            throw new LockdException(ep.key + ": TLS certificate verification failed: " + e.getMessage());
        } catch (IOException e) {
            throw new ConnFailure(e, true);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LockdException("interrupted");
        }
        Map<String, String> hd = new HashMap<>();
        r.headers().map().forEach((k, v) -> {
            if (!v.isEmpty()) {
                hd.put(k.toLowerCase(java.util.Locale.ROOT), v.get(0));
            }
        });
        Map<String, Object> body = null;
        String text = new String(r.body(), StandardCharsets.UTF_8);
        if (!text.isEmpty()) {
            try {
                Object o = Json.parse(text);
                if (o instanceof Map) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> m = (Map<String, Object>) o;
                    body = m;
                }
            } catch (IllegalArgumentException e) {
                body = Map.of("error", text);
            }
        }
        return new Answer(r.statusCode(), hd, body, sentAt, false, 1);
    }

    private Endpoint pick() {
        long now = System.nanoTime();
        synchronized (mu) {
            if (followLeader && leaderEp != null && !isDead(leaderEp, now)) {
                return leaderEp;
            }
            List<Endpoint> cands = new ArrayList<>(configured);
            if (followLeader) {
                for (Endpoint m : members.values()) {
                    if (!cands.contains(m)) {
                        cands.add(m);
                    }
                }
            }
            int n = cands.size();
            for (int i = 0; i < n; i++) {
                Endpoint ep = cands.get((cur + i) % n);
                if (!isDead(ep, now)) {
                    cur = (cur + i) % n;
                    return ep;
                }
            }
            Endpoint best = cands.get(0);
            for (Endpoint e : cands) {
                if (dead.getOrDefault(e.key, 0L) - dead.getOrDefault(best.key, 0L) < 0) {
                    best = e;
                }
            }
            return best;
        }
    }

    private boolean isDead(Endpoint ep, long now) {
        Long until = dead.get(ep.key);
        return until != null && until - now > 0;
    }

    private void markDead(Endpoint ep) {
        synchronized (mu) {
            dead.put(ep.key, System.nanoTime() + DEAD_FOR_NS);
            if (leaderEp == ep) {
                leaderEp = null;
                leaderId = null;
            }
        }
    }

    private void observe(Endpoint ep, Map<String, String> headers, int status) {
        String idx = headers.get("x-lockd-applied-index");
        String lid = headers.get("x-lockd-leader");
        boolean refresh = false;
        synchronized (mu) {
            if (idx != null && idx.matches("\\d+")) {
                maxIndex = Math.max(maxIndex, Long.parseLong(idx));
            }
            dead.remove(ep.key);
            if (!followLeader) {
                return;
            }
            if (lid != null && !lid.equals(leaderId)) {
                leaderId = lid;
                leaderEp = members.get(lid);
            } else if (lid == null && status == 503) {
                leaderId = null;
                leaderEp = null;
            }
            long now = System.nanoTime();
            if (leaderId != null && leaderEp == null && now - nextStatus >= 0) {
                nextStatus = now + STATUS_EVERY_NS;
                refresh = true;
            }
        }
        if (refresh) {
            refreshMembers(ep);
        }
    }

    @SuppressWarnings("unchecked")
    private void refreshMembers(Endpoint ep) {
        Answer a;
        try {
            a = exchange(ep, "GET", "/status", Map.of(), Math.min(requestTimeout.toNanos(), 2_000_000_000L));
        } catch (ConnFailure | LockdException e) {
            return;
        }
        if (a.status() != 200 || a.body() == null) {
            return;
        }
        Object ms = a.body().get("members");
        synchronized (mu) {
            if (ms instanceof List) {
                for (Object o : (List<Object>) ms) {
                    if (o instanceof Map && ((Map<String, Object>) o).get("address") != null) {
                        Map<String, Object> m = (Map<String, Object>) o;
                        members.put(String.valueOf(m.get("id")), endpoint(scheme + "://" + m.get("address")));
                    }
                }
            }
            if (leaderId != null) {
                leaderEp = members.get(leaderId);
            }
        }
    }

    private void pause(int attempt, long deadline, double retryAfter) {
        double d = ThreadLocalRandom.current().nextDouble() * Math.min(backoffCap, backoffBase * Math.pow(2, attempt));
        if (retryAfter >= 0) {
            d = Math.max(d, retryAfter);
        }
        long ns = Math.min((long) (d * 1e9), deadline - System.nanoTime());
        if (ns > 0) {
            try {
                Thread.sleep(ns / 1_000_000, (int) (ns % 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new LockdException("interrupted");
            }
        }
    }

    private static double retryAfter(String v) {
        if (v == null || v.isEmpty()) {
            return -1;
        }
        try {
            return Math.max(0, Double.parseDouble(v.trim()));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    static LockdException errorFor(Answer a) {
        String msg = a.error();
        switch (a.status()) {
            case 400:
            case 413:
                return new BadRequestException(msg, a.status(), a.body());
            case 401:
                return new UnauthorizedException(msg, a.status(), a.body());
            case 403:
                return new ForbiddenException(msg, a.status(), a.body());
            default:
                return new LockdException("HTTP " + a.status() + ": " + msg, a.status(), a.body());
        }
    }
}
