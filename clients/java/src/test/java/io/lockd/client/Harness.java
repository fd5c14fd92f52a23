package io.lockd.client;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * One harness process per test run (clients/testing/harness.py: real lockd
 * nodes, a cluster, nginx and scripted fake servers), driven over its JSON
 * control API. It cleans up when its standard input closes, which happens
 * when this JVM exits, however it exits.
 */
final class Harness {
    static final Path ROOT = Path.of(System.getProperty("lockd.root", "../..")).toAbsolutePath().normalize();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static String control;
    private static Process proc;
    private static OutputStream stdin;
    private static String nodeUrl;
    private static Map<String, Object> cluster;

    private Harness() {
    }

    static synchronized String control() {
        if (control == null) {
            try {
                List<String> cmd = new ArrayList<>(List.of(System.getProperty("lockd.python", "/usr/bin/python3"),
                        ROOT.resolve("clients/testing/harness.py").toString()));
                String bin = System.getenv("LOCKD_BIN");
                if (bin != null) {
                    cmd.add("--lockd");
                    cmd.add(bin);
                }
                proc = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
                stdin = proc.getOutputStream();
                BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8));
                String line = r.readLine();
                if (line == null) {
                    throw new IllegalStateException("harness did not start");
                }
                control = (String) ((Map<?, ?>) Json.parse(line)).get("control");
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    try {
                        stdin.close();
                        proc.waitFor(30, TimeUnit.SECONDS);
                    } catch (Exception e) {
                        proc.destroy();
                    }
                }));
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
        }
        return control;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> call(String method, String path, Map<String, Object> body) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(control() + path)).timeout(Duration.ofSeconds(120));
            b.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(Json.write(body)));
            HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
            Map<String, Object> m = (Map<String, Object>) Json.parse(r.body());
            if (r.statusCode() != 200) {
                throw new IllegalStateException("harness " + path + ": " + m.get("error"));
            }
            return m;
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static synchronized String nodeUrl() {
        if (nodeUrl == null) {
            nodeUrl = (String) call("POST", "/node", Map.of()).get("url");
        }
        return nodeUrl;
    }

    static synchronized Map<String, Object> cluster() {
        if (cluster == null) {
            cluster = call("POST", "/cluster", Map.of());
        }
        return cluster;
    }

    @SuppressWarnings("unchecked")
    static Map<String, String> nodes() {
        return (Map<String, String>) cluster().get("nodes");
    }

    static Map<String, Object> leader() {
        return call("GET", "/cluster/leader", null);
    }

    static int leaderId() {
        return ((Number) leader().get("id")).intValue();
    }

    static void kill(int id) {
        call("POST", "/cluster/kill", Map.of("id", id));
    }

    static void restart(int id) {
        call("POST", "/cluster/restart", Map.of("id", id));
    }

    static String nginx() {
        return (String) call("POST", "/nginx", Map.of()).get("url");
    }

    static Fake fake(boolean tls) {
        Map<String, Object> m = call("POST", "/fake", Map.of("tls", tls));
        return new Fake((String) m.get("url"), (String) m.get("ca_file"));
    }

    static String uniq(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 10);
    }

    static boolean waitFor(double seconds, BooleanSupplier pred) {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (true) {
            boolean ok;
            try {
                ok = pred.getAsBoolean();
            } catch (RuntimeException e) {
                ok = false;
            }
            if (ok) {
                return true;
            }
            if (System.nanoTime() - end >= 0) {
                return false;
            }
            sleep(0.02);
        }
    }

    static void sleep(double seconds) {
        try {
            Thread.sleep((long) (seconds * 1000));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static double metric(String url, String name) {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString());
            double sum = 0;
            for (String l : r.body().split("\n")) {
                if (l.startsWith(name + " ") || l.startsWith(name + "{")) {
                    String[] f = l.trim().split("\\s+");
                    sum += Double.parseDouble(f[f.length - 1]);
                }
            }
            return sum;
        } catch (java.io.IOException | InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A scripted fake lockd (clients/testing/fake_lockd.py). */
    static final class Fake {
        final String url;
        final String caFile;

        Fake(String url, String caFile) {
            this.url = url;
            this.caFile = caFile;
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> control(String method, String path, Object body) {
            try {
                HttpClient c = HTTP;
                if (url.startsWith("https")) {
                    c = HttpClient.newBuilder().sslContext(sslFor(caFile)).build();
                }
                HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(30));
                b.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(Json.write(body)));
                return (Map<String, Object>) Json.parse(c.send(b.build(), HttpResponse.BodyHandlers.ofString()).body());
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        void script(Object... steps) {
            control("POST", "/__fake/script", Map.of("steps", List.of(steps)));
        }

        @SuppressWarnings("unchecked")
        List<Map<String, Object>> requests() {
            return (List<Map<String, Object>>) control("GET", "/__fake/requests", null).get("requests");
        }

        List<Map<String, Object>> requests(String method) {
            List<Map<String, Object>> out = new ArrayList<>();
            for (Map<String, Object> r : requests()) {
                if (method.equals(r.get("method"))) {
                    out.add(r);
                }
            }
            return out;
        }
    }

    static javax.net.ssl.SSLContext sslFor(String caFile) {
        try (java.io.InputStream in = java.nio.file.Files.newInputStream(Path.of(caFile))) {
            java.security.KeyStore ks = java.security.KeyStore.getInstance(java.security.KeyStore.getDefaultType());
            ks.load(null, null);
            ks.setCertificateEntry("ca", java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in));
            javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory
                    .getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
