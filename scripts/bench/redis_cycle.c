/* scripts/bench/redis_cycle.c: lock+unlock cycles against Redis, the
 * counterpart of scripts/wrk/cycle.lua for lockd (redis-benchmark runs one
 * command per test, so it cannot alternate SET NX and DEL on the same key).
 *
 *   redis_cycle PORT CONNS SECONDS [NAMES]
 *
 * One thread (like wrk -t1 and redis-benchmark), CONNS connections to
 * 127.0.0.1:PORT, pipelining 1. Connection c owns the names c, c+CONNS,
 * c+2*CONNS, ... below NAMES (default 1000), so cycles never contend: it
 * sends `SET cycle:<n> 1 NX`, then `DEL cycle:<n>`, then moves on to its next
 * name. Every request is a real state change (a failed SET NX or a DEL of a
 * missing key would not reach the AOF, hence no fsync); replies that show
 * otherwise are counted as errors. Both commands count as requests.
 *
 * Prints one line: requests/s p50_ms p99_ms errors requests
 * Build: cc -O2 -o redis_cycle redis_cycle.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    int id;
    int next_name; /* index into this connection's names */
    int phase;     /* 0: SET sent, 1: DEL sent */
    int name;      /* current name */
    uint64_t sent_ns;
    char buf[256];
    size_t len;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t *lat; /* latencies in microseconds */
static size_t nlat, caplat;

static void record(uint64_t ns)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 20;
        lat = realloc(lat, caplat * sizeof(*lat));
        if (lat == NULL) {
            perror("realloc");
            exit(2);
        }
    }
    uint64_t us = ns / 1000;
    lat[nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int conns, names;

static void send_cmd(struct conn *c)
{
    char key[32], out[128];
    int klen = snprintf(key, sizeof(key), "cycle:%d", c->name);
    int n;
    if (c->phase == 0)
        n = snprintf(out, sizeof(out), "*4\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n$2\r\nNX\r\n", klen, key);
    else
        n = snprintf(out, sizeof(out), "*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", klen, key);
    c->sent_ns = now_ns();
    if (write(c->fd, out, (size_t)n) != n) {
        perror("write");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: redis_cycle PORT CONNS SECONDS [NAMES]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    conns = atoi(argv[2]);
    double secs = atof(argv[3]);
    names = argc > 4 ? atoi(argv[4]) : 1000;
    if (conns < 1 || conns > names || secs <= 0) {
        fprintf(stderr, "redis_cycle: need 1 <= CONNS <= NAMES and SECONDS > 0\n");
        return 2;
    }
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)conns, sizeof(*cs));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < conns; i++) {
        struct conn *c = &cs[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("connect");
            return 2;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->id = i;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9);
    long errors = 0;
    for (int i = 0; i < conns; i++) {
        cs[i].name = cs[i].id;
        send_cmd(&cs[i]);
    }
    struct epoll_event evs[256];
    int active = conns;
    while (active > 0) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("epoll_wait");
            return 2;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
            if (r <= 0) {
                fprintf(stderr, "redis_cycle: connection closed\n");
                return 2;
            }
            c->len += (size_t)r;
            c->buf[c->len] = 0;
            char *eol = strstr(c->buf, "\r\n");
            if (eol == NULL)
                continue; /* one reply per request, always one line here */
            uint64_t t = now_ns();
            record(t - c->sent_ns);
            if (c->phase == 0 && strncmp(c->buf, "+OK", 3) != 0)
                errors++;
            if (c->phase == 1 && strncmp(c->buf, ":1", 2) != 0)
                errors++;
            c->len = 0;
            if (t >= end && c->phase == 1) { /* finish the cycle: leave nothing held */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                active--;
                continue;
            }
            if (c->phase == 0) {
                c->phase = 1;
            } else {
                c->phase = 0;
                c->next_name++;
                c->name = c->id + c->next_name * conns;
                if (c->name >= names) {
                    c->next_name = 0;
                    c->name = c->id;
                }
            }
            send_cmd(c);
        }
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    qsort(lat, nlat, sizeof(*lat), cmp_u32);
    double p50 = nlat ? lat[nlat / 2] / 1000.0 : 0;
    double p99 = nlat ? lat[(size_t)(nlat * 0.99)] / 1000.0 : 0;
    printf("%.2f %.3f %.3f %ld %zu\n", (double)nlat / elapsed, p50, p99, errors, nlat);
    return 0;
}
