import io.lockd.client.LockdClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Sequential try-lock + release round trips per second: the Java client
 * against raw java.net.http on the same node. Usage: java -cp CLASSES Bench.java URL SECONDS
 */
public class Bench {
    static final Pattern TOKEN = Pattern.compile("\"token\":(\\d+)");

    static long cpu() {
        return ProcessHandle.current().info().totalCpuDuration().orElseThrow().toNanos();
    }

    static double[] withClient(String url, double secs) {
        LockdClient c = LockdClient.builder().endpoints(url).build();
        long cpu0 = cpu();
        long n = 0;
        long end = System.nanoTime() + (long) (secs * 1e9);
        while (System.nanoTime() - end < 0) {
            c.tryAcquire("bench-java-client", Duration.ofSeconds(30)).orElseThrow().release();
            n++;
        }
        return new double[] {n / secs, (cpu() - cpu0) / 1e3 / n};
    }

    static double[] raw(String url, double secs) throws Exception {
        HttpClient h = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        long cpu0 = cpu();
        long n = 0;
        long end = System.nanoTime() + (long) (secs * 1e9);
        while (System.nanoTime() - end < 0) {
            HttpResponse<String> r = h.send(HttpRequest.newBuilder(URI.create(url + "/lock/bench-java-raw?owner=raw&ttl=30000ms"))
                    .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
            Matcher m = TOKEN.matcher(r.body());
            m.find();
            h.send(HttpRequest.newBuilder(URI.create(url + "/lock/bench-java-raw?owner=raw&token=" + m.group(1))).DELETE().build(),
                    HttpResponse.BodyHandlers.ofString());
            n++;
        }
        return new double[] {n / secs, (cpu() - cpu0) / 1e3 / n};
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        double secs = Double.parseDouble(args[1]);
        withClient(url, 1.0); // warm up the JIT too
        raw(url, 1.0);
        double[] r = new double[9];
        double[] c = new double[9];
        double[] rc = new double[9];
        double[] cc = new double[9];
        for (int i = 0; i < 9; i++) {
            double[] x = raw(url, secs);
            double[] y = withClient(url, secs);
            r[i] = x[0];
            rc[i] = x[1];
            c[i] = y[0];
            cc[i] = y[1];
        }
        Arrays.sort(r);
        Arrays.sort(c);
        Arrays.sort(rc);
        Arrays.sort(cc);
        System.out.printf("java    raw %6.0f rt/s %5.0f us cpu/rt   client %6.0f rt/s %5.0f us cpu/rt   client/raw %.2f%n",
                r[4], rc[4], c[4], cc[4], c[4] / r[4]);
    }
}
