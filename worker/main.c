/* worker/main.c: the life of one HTTP worker process (worker_main): h2o and
 * its event loop, accepting on the worker's own listening socket, signals,
 * and the bounded drain at SIGTERM. Routes live in http.c, the raftproc
 * connection in raft_client.c. Never writes shared memory. */
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <h2o.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/memory.h"
#include "worker/http.h"
#include "worker/raft_client.h"

/* h2o reads a whole body into memory before our handler runs; this bounds
 * that. Bodies between LOCKD_BODY_MAX and this get our JSON 413; bigger
 * ones get h2o's plain-text 413 without being read. */
#define WORKER_ENTITY_MAX (1024 * 1024)
/* Connections accepted per readiness event: fewer accept() calls under load
 * without starving the connections already open. */
#define WORKER_ACCEPT_BATCH 16
/* Pause before accepting again after EMFILE & co (level-triggered epoll
 * would otherwise spin on the pending connection). */
#define WORKER_ACCEPT_PAUSE_MS 100
/* Longest sleep in the loop: how late a stop signal may be noticed. */
#define WORKER_LOOP_WAIT_MS 100
/* After the last answer, time for partial writes to reach the clients. */
#define WORKER_FLUSH_MS 50

struct worker {
    const struct lockd_config *cfg;
    unsigned index;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_timeout_t accept_pause;
    h2o_timeout_entry_t accept_resume;
    struct http_ctx http;
};

/* Static: reachable for the whole life of the process (h2o keeps pointers
 * into it), and signal-free code only. */
static struct worker worker_state;
static volatile sig_atomic_t worker_stop_requested;

static void worker_on_stop_signal(int sig)
{
    (void)sig;
    worker_stop_requested = 1;
}

static int worker_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: epoll_wait returns EINTR and the loop sees the flag. */
    sa.sa_handler = worker_on_stop_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -LOCKD_EIO;
    sa.sa_handler = SIG_IGN;
    /* A client closing early must not kill us; SIGHUP is the master's
     * (it replaces workers with SIGTERM). */
    if (sigaction(SIGPIPE, &sa, NULL) != 0 || sigaction(SIGHUP, &sa, NULL) != 0)
        return -LOCKD_EIO;

    /* The master may fork with signals blocked; we need these delivered. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    /* If the master dies without stopping us, stop too: a worker without
     * its master would hold the port with nobody to restart raftproc. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    return 0;
}

/* CLOCK_BOOTTIME ms at which our parent (the master) started, from
 * /proc/<ppid>/stat field 22, so /status's uptime is the node's, not this
 * worker's. Falls back to now. */
static uint64_t worker_node_started_ms(void)
{
    uint64_t now = http_boottime_ms();
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)getppid());
    FILE *f = fopen(path, "r");
    if (!f)
        return now;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and ')': skip to the last
     * ')'; the next field is 3, so starttime (22) is the 20th after it. */
    char *p = strrchr(buf, ')');
    if (!p)
        return now;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return now;
    }
    char *end;
    errno = 0;
    unsigned long long ticks = strtoull(p + 1, &end, 10);
    long hz = sysconf(_SC_CLK_TCK);
    if (errno || end == p + 1 || hz <= 0)
        return now;
    uint64_t started = (uint64_t)ticks * 1000 / (uint64_t)hz;
    return started <= now ? started : now;
}

/* Takes over stats slot `index` and counts a restart when the process that
 * had it is gone: the master only starts a worker in a dead one's place
 * after reaping it. A live predecessor means a reload (SIGHUP), where the
 * old worker drains while we start: not a restart. (A predecessor that
 * exited cleanly on a direct SIGTERM and was restarted counts too, as the
 * master counts it.) Without a master change this is the only place that
 * knows; pid reuse in between could hide one restart. */
static void worker_claim_stats_slot(shm_stats *stats, unsigned index)
{
    pid_t prev = shm_stats_claim(stats, SHM_STATS_WORKER, index, getpid());
    if (prev > 0 && prev != getpid() && kill(prev, 0) != 0 && errno == ESRCH)
        shm_stats_count_restart(stats, SHM_STATS_WORKER);
}

static void worker_on_accept(h2o_socket_t *listener, const char *err);

static void worker_on_accept_resume(h2o_timeout_entry_t *entry)
{
    struct worker *w = H2O_STRUCT_FROM_MEMBER(struct worker, accept_resume, entry);
    if (w->listener)
        h2o_socket_read_start(w->listener, worker_on_accept);
}

static void worker_on_accept(h2o_socket_t *listener, const char *err)
{
    struct worker *w = listener->data;
    if (err)
        return;
    for (int i = 0; i < WORKER_ACCEPT_BATCH; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("accept: %s; pausing accepts for %d ms", strerror(errno), WORKER_ACCEPT_PAUSE_MS);
                h2o_socket_read_stop(listener);
                if (!h2o_timeout_is_linked(&w->accept_resume))
                    h2o_timeout_link(w->ctx.loop, &w->accept_pause, &w->accept_resume);
            }
            return;
        }
        h2o_accept(&w->accept_ctx, sock);
    }
}

/* Stops listening. Connections the kernel already queued on our socket
 * would be reset by close() (SO_REUSEPORT gives each worker its own queue),
 * so take them first and serve them during the drain. */
static void worker_stop_listening(struct worker *w)
{
    if (!w->listener)
        return;
    for (int i = 0; i < 4096; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(w->listener);
        if (!sock)
            break;
        h2o_accept(&w->accept_ctx, sock);
    }
    if (h2o_timeout_is_linked(&w->accept_resume))
        h2o_timeout_unlink(&w->accept_resume);
    h2o_socket_read_stop(w->listener);
    h2o_socket_close(w->listener);
    w->listener = NULL;
}

#define WORKER_QUIET_MS 200

static void worker_run_until(struct worker *w, uint64_t deadline_ms, int (*done)(struct worker *))
{
    while (!done(w)) {
        uint64_t now = clock_monotonic_ms();
        if (now >= deadline_ms)
            break;
        uint64_t left = deadline_ms - now;
        if (h2o_evloop_run(w->ctx.loop, (int32_t)(left < 10 ? left : 10)) != 0 && errno != EINTR)
            break;
    }
}

/* Drained: nothing waits for raftproc, and no request arrived for a short
 * while (a client that sent one on a keep-alive connection just before the
 * drain began gets its answer, with Connection: close, instead of a reset). */
static int worker_no_inflight(struct worker *w)
{
    return raft_client_inflight(w->http.raft) == 0 && clock_monotonic_ms() - w->http.last_request_ms >= WORKER_QUIET_MS;
}

static int worker_never(struct worker *w)
{
    (void)w;
    return 0;
}

/* SIGTERM: no new connections, no new work for raftproc, let what is in
 * flight finish within the API timeout, answer the rest 503, flush, return. */
static void worker_drain(struct worker *w)
{
    size_t inflight = raft_client_inflight(w->http.raft);
    log_info("stopping: %zu request(s) in flight", inflight);
    worker_stop_listening(w);
    w->http.draining = 1;
    /* HTTP/1: no more keep-alive; HTTP/2: GOAWAY. */
    h2o_context_request_shutdown(&w->ctx);

    worker_run_until(w, clock_monotonic_ms() + w->cfg->api_timeout_ms, worker_no_inflight);
    inflight = raft_client_inflight(w->http.raft);
    if (inflight)
        log_warn("drain timed out: answering %zu request(s) 503", inflight);
    raft_client_cancel_all(w->http.raft);
    worker_run_until(w, clock_monotonic_ms() + WORKER_FLUSH_MS, worker_never);
}

int worker_main(const struct lockd_config *cfg, shm_table *table, int listen_fd, unsigned index)
{
    struct worker *w = &worker_state;
    char label[32];

    snprintf(label, sizeof label, "worker %u", index);
    log_set_process(label);
    log_set_level(cfg->log_level);
    log_install_crash_handler();
    if (worker_install_signals() != 0) {
        log_error("cannot install signal handlers: %s", strerror(errno));
        return 1;
    }
    /* Only raftproc writes the table; a stray write here must fault. */
    int rc = shm_table_make_readonly(table);
    if (rc != 0) {
        log_error("cannot make the lock table read-only: %s", lockd_strerror(rc));
        return 1;
    }
    worker_claim_stats_slot(shm_table_stats(table), index);

    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->index = index;
    w->http.cfg = cfg;
    w->http.table = table;
    w->http.worker_index = index;
    w->http.node_started_ms = worker_node_started_ms();
    w->http.limits.ttl_min_ms = cfg->ttl_min_ms;
    w->http.limits.ttl_max_ms = cfg->ttl_max_ms;
    w->http.limits.wait_max_ms = cfg->wait_max_ms;

    h2o_config_init(&w->globalconf);
    w->globalconf.server_name = h2o_iovec_init(cfg->server_header, strlen(cfg->server_header));
    w->globalconf.max_request_entity_size = WORKER_ENTITY_MAX;
    h2o_hostconf_t *host = h2o_config_register_host(&w->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    http_register(h2o_config_register_path(host, "/", 0), &w->http);

    h2o_context_init(&w->ctx, h2o_evloop_create(), &w->globalconf);
    rc = raft_client_create(w->ctx.loop, cfg, &w->http.raft);
    if (rc != 0) {
        log_error("cannot set up the raftproc connection to %s: %s", cfg->raft_socket, lockd_strerror(rc));
        return 1;
    }

    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = w->globalconf.hosts;
    h2o_timeout_init(w->ctx.loop, &w->accept_pause, WORKER_ACCEPT_PAUSE_MS);
    w->accept_resume.cb = worker_on_accept_resume;
    w->listener = h2o_evloop_socket_create(w->ctx.loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, worker_on_accept);
    log_info("serving HTTP (pid %d)", (int)getpid());

    int exit_code = 0;
    while (!worker_stop_requested) {
        int level = shm_stats_log_level(shm_table_stats(table));
        if (level >= 0 && level != (int)log_get_level())
            log_set_level((enum log_level)level); /* lockctl log-level */
        if (h2o_evloop_run(w->ctx.loop, WORKER_LOOP_WAIT_MS) != 0 && errno != EINTR) {
            log_error("event loop failed: %s", strerror(errno));
            exit_code = 1;
            break;
        }
        memory_decay(clock_monotonic_ms());
    }

    worker_drain(w);
    raft_client_destroy(w->http.raft);
    w->http.raft = NULL;
    log_info("stopped");
    return exit_code;
}
