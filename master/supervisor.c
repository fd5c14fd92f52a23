/* master/supervisor.c: fork, reap, restart (see supervisor.h). Signals
 * arrive through a signalfd and are handled in the loop, never in a handler.
 * Owns the child table; never touches the shm table's contents. */
#include "master/supervisor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "master/notify.h"
#include "master/proctitle.h"
#include "raftproc/raftproc.h"
#include "worker/worker.h"

#define CRASH_WINDOW_MS 60000
#define CRASH_LOOP_LIMIT 10
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 30000
#define RAFT_STOP_MS 15000

enum child_kind { CHILD_RAFT, CHILD_WORKER };

struct child {
    enum child_kind kind;
    unsigned index; /* worker number, 1-based */
    pid_t pid;      /* 0: not running */
    uint64_t started_ms;
    uint64_t restart_at_ms; /* 0: no restart pending */
    unsigned backoff_ms;
    unsigned crashes; /* in the current window */
    uint64_t window_ms;
};

#define MAX_RETIRING (LOCKD_MAX_WORKERS * 4)

static struct {
    const struct supervisor_env *env;
    pid_t master_pid;
    struct child raft;
    struct child workers[LOCKD_MAX_WORKERS];
    pid_t retiring[MAX_RETIRING]; /* old workers draining after a reload */
    int sigfd;
    int reload_requested;
    struct supervisor_counts counts;
} sup;

static const char *child_name(const struct child *c, char *buf, size_t cap)
{
    if (c->kind == CHILD_RAFT)
        snprintf(buf, cap, "raft");
    else
        snprintf(buf, cap, "worker %u", c->index);
    return buf;
}

static void child_enter(const struct child *c)
{
    const struct supervisor_env *env = sup.env;
    const struct lockd_config *cfg = env->cfg;
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_IGN);
    /* No orphans: if the master dies, so do we. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sup.master_pid)
        _exit(0);
    close(sup.sigfd);
    /* flock belongs to the open file, which fork shares: a child that
     * outlived a killed master would keep the data directory locked. */
    if (env->lock_fd >= 0)
        close(env->lock_fd);
    if (env->admin_fd >= 0)
        close(env->admin_fd);
    char title[64];
    int rc;
    if (c->kind == CHILD_RAFT) {
        for (unsigned i = 0; i < cfg->workers; i++)
            close(env->http_fds[i]);
        proctitle_set("lockd: raft");
        rc = raftproc_main(cfg, env->table, env->raft_fd);
    } else {
        for (unsigned i = 0; i < cfg->workers; i++)
            if (i != c->index - 1)
                close(env->http_fds[i]);
        close(env->raft_fd);
        snprintf(title, sizeof(title), "lockd: worker %u", c->index);
        proctitle_set(title);
        rc = worker_main(cfg, env->table, env->http_fds[c->index - 1], c->index);
    }
    fflush(NULL);
    _exit(rc);
}

static int child_spawn(struct child *c)
{
    char name[32];
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork for %s failed: %s", child_name(c, name, sizeof(name)), strerror(errno));
        c->restart_at_ms = clock_monotonic_ms() + BACKOFF_MAX_MS;
        return -1;
    }
    if (pid == 0)
        child_enter(c);
    c->pid = pid;
    c->started_ms = clock_monotonic_ms();
    c->restart_at_ms = 0;
    log_info("started %s pid=%d", child_name(c, name, sizeof(name)), (int)pid);
    return 0;
}

static void describe_status(int status, char *buf, size_t cap)
{
    if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
}

/* Returns 1 when a crash loop means we must give up. */
static int child_died(struct child *c, int status, int stopping)
{
    char name[32], why[96];
    uint64_t now = clock_monotonic_ms();
    describe_status(status, why, sizeof(why));
    child_name(c, name, sizeof(name));
    c->pid = 0;
    if (stopping) {
        log_info("%s %s", name, why);
        return 0;
    }
    log_error("%s (up %llu ms) %s: restarting", name, (unsigned long long)(now - c->started_ms), why);
    if (c->kind == CHILD_RAFT)
        sup.counts.raft_restarts++;
    else
        sup.counts.worker_restarts++;
    if (now - c->window_ms > CRASH_WINDOW_MS) {
        c->window_ms = now;
        c->crashes = 0;
    }
    if (++c->crashes >= CRASH_LOOP_LIMIT) {
        log_error("%s died %u times within %d s: giving up", name, c->crashes, CRASH_WINDOW_MS / 1000);
        return 1;
    }
    /* First restart is immediate; a child that keeps dying young waits
     * longer each time; one that ran a while starts afresh. */
    if (now - c->started_ms >= STABLE_MS)
        c->backoff_ms = 0;
    c->restart_at_ms = now + c->backoff_ms;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    return 0;
}

static int reap(int stopping)
{
    int status, give_up = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == sup.raft.pid) {
            give_up |= child_died(&sup.raft, status, stopping);
            continue;
        }
        int found = 0;
        for (unsigned i = 0; i < sup.env->cfg->workers; i++) {
            if (sup.workers[i].pid == pid) {
                give_up |= child_died(&sup.workers[i], status, stopping);
                found = 1;
            }
        }
        for (int i = 0; !found && i < MAX_RETIRING; i++) {
            if (sup.retiring[i] == pid) {
                char why[96];
                describe_status(status, why, sizeof(why));
                log_info("retired worker pid=%d %s", (int)pid, why);
                sup.retiring[i] = 0;
                found = 1;
            }
        }
    }
    return give_up;
}

static unsigned alive_workers(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < sup.env->cfg->workers; i++)
        n += sup.workers[i].pid != 0;
    for (int i = 0; i < MAX_RETIRING; i++)
        n += sup.retiring[i] != 0;
    return n;
}

static void signal_workers(int sig)
{
    for (unsigned i = 0; i < sup.env->cfg->workers; i++)
        if (sup.workers[i].pid != 0)
            kill(sup.workers[i].pid, sig);
    for (int i = 0; i < MAX_RETIRING; i++)
        if (sup.retiring[i] != 0)
            kill(sup.retiring[i], sig);
}

/* Waits for SIGCHLDs until cond() holds or the deadline passes. */
static void wait_children(int (*cond)(void), uint64_t deadline_ms)
{
    while (!cond()) {
        uint64_t now = clock_monotonic_ms();
        if (now >= deadline_ms)
            return;
        struct pollfd p = {.fd = sup.sigfd, .events = POLLIN};
        poll(&p, 1, (int)(deadline_ms - now));
        struct signalfd_siginfo si;
        while (read(sup.sigfd, &si, sizeof(si)) == sizeof(si)) {
        }
        reap(1);
    }
}

static int no_workers(void)
{
    return alive_workers() == 0;
}
static int no_raft(void)
{
    return sup.raft.pid == 0;
}

static void stop_all(void)
{
    const struct lockd_config *cfg = sup.env->cfg;
    if (sup.env->notify != NULL)
        notify_send(sup.env->notify, "STOPPING=1");
    log_info("stopping: draining %u workers", alive_workers());
    signal_workers(SIGTERM);
    wait_children(no_workers, clock_monotonic_ms() + cfg->api_timeout_ms + 3000);
    if (!no_workers()) {
        log_warn("workers did not stop in time: killing them");
        signal_workers(SIGKILL);
        wait_children(no_workers, clock_monotonic_ms() + 2000);
    }
    if (sup.raft.pid != 0) {
        kill(sup.raft.pid, SIGTERM);
        wait_children(no_raft, clock_monotonic_ms() + RAFT_STOP_MS);
        if (sup.raft.pid != 0) {
            log_warn("raft process did not stop in time: killing it");
            kill(sup.raft.pid, SIGKILL);
            wait_children(no_raft, clock_monotonic_ms() + 2000);
        }
    }
}

/* SIGHUP: new workers first (they share the same listening sockets, so no
 * connection is refused), then the old ones drain and exit. */
static void reload_workers(void)
{
    log_info("reload: replacing %u workers", sup.env->cfg->workers);
    for (unsigned i = 0; i < sup.env->cfg->workers; i++) {
        struct child *w = &sup.workers[i];
        pid_t old = w->pid;
        if (old != 0) {
            for (int k = 0; k < MAX_RETIRING; k++) {
                if (sup.retiring[k] == 0) {
                    sup.retiring[k] = old;
                    break;
                }
            }
        }
        w->backoff_ms = 0;
        w->crashes = 0;
        child_spawn(w);
        if (old != 0)
            kill(old, SIGTERM);
    }
}

void supervisor_request_reload(void)
{
    sup.reload_requested = 1;
}

void supervisor_counts(struct supervisor_counts *out)
{
    *out = sup.counts;
    out->workers_alive = 0;
    for (unsigned i = 0; sup.env != NULL && i < sup.env->cfg->workers; i++)
        out->workers_alive += sup.workers[i].pid != 0;
    out->raft_pid = (int)sup.raft.pid;
}

int supervisor_run(const struct supervisor_env *env)
{
    sup.env = env;
    sup.master_pid = getpid();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sup.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sup.sigfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return 1;
    }
    sup.raft.kind = CHILD_RAFT;
    child_spawn(&sup.raft);
    for (unsigned i = 0; i < env->cfg->workers; i++) {
        sup.workers[i].kind = CHILD_WORKER;
        sup.workers[i].index = i + 1;
        child_spawn(&sup.workers[i]);
    }
    int rc = 0;
    for (;;) {
        uint64_t now = clock_monotonic_ms(), next = now + 1000;
        struct child *all[LOCKD_MAX_WORKERS + 1];
        unsigned n = 0;
        all[n++] = &sup.raft;
        for (unsigned i = 0; i < env->cfg->workers; i++)
            all[n++] = &sup.workers[i];
        for (unsigned i = 0; i < n; i++) {
            if (all[i]->pid == 0 && all[i]->restart_at_ms != 0) {
                if (all[i]->restart_at_ms <= now)
                    child_spawn(all[i]);
                else if (all[i]->restart_at_ms < next)
                    next = all[i]->restart_at_ms;
            }
        }
        unsigned notify_ms = env->notify ? notify_poll_ready(env->notify, env->table, sup.raft.pid != 0) : 0;
        if (notify_ms != 0 && now + notify_ms < next)
            next = now + notify_ms;
        struct pollfd p[2] = {{.fd = sup.sigfd, .events = POLLIN}, {.fd = env->admin_fd, .events = POLLIN}};
        int np = env->admin_fd >= 0 ? 2 : 1;
        int r = poll(p, (nfds_t)np, (int)(next - now));
        if (r < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            rc = 1;
            break;
        }
        if (np == 2 && (p[1].revents & POLLIN) && env->on_admin != NULL)
            env->on_admin(env->admin_arg);
        int stop = 0;
        struct signalfd_siginfo si;
        while (read(sup.sigfd, &si, sizeof(si)) == sizeof(si)) {
            if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                log_info("signal %u: shutting down", si.ssi_signo);
                stop = 1;
            } else if (si.ssi_signo == SIGHUP) {
                sup.reload_requested = 1;
            }
        }
        if (reap(0)) {
            rc = 1;
            stop = 1;
        }
        if (stop)
            break;
        if (sup.reload_requested) {
            sup.reload_requested = 0;
            if (env->on_reload != NULL)
                env->on_reload(env->reload_arg);
            reload_workers();
        }
    }
    stop_all();
    close(sup.sigfd);
    return rc;
}
