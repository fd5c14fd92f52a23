/** The lockd client: leases, fencing tokens, leader following, bounded typed retries. */
module io.lockd.client {
    requires java.net.http;

    exports io.lockd.client;
}
