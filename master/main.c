/* master/main.c: `lockd`, the master process. Parses the options, takes the
 * data directory's lock, creates the shared-memory table and binds every
 * listening socket before forking, so they all outlive any child; then hands
 * over to the supervisor. Never serves HTTP itself and never opens LMDB. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/errors.h"
#include "common/fs.h"
#include "common/log.h"
#include "master/admin.h"
#include "master/listen.h"
#include "master/notify.h"
#include "master/options.h"
#include "master/proctitle.h"
#include "master/reload.h"
#include "master/supervisor.h"
#include "shm/table.h"

static struct lockd_config cfg;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* One master per data directory: a second one would share the Raft log. */
static int lock_data_dir(void)
{
    char path[LOCKD_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/lockd.pid", cfg.data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        log_error("data directory %s is in use by another lockd", cfg.data_dir);
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n)
        log_warn("cannot write %s", path);
    return fd; /* held (and locked) for the life of the master */
}

int main(int argc, char **argv)
{
    argv = proctitle_init(argc, argv);
    log_set_process("master");
    char err[512];
    switch (options_parse(argc, argv, &cfg, stdout, err, sizeof(err))) {
    case OPTIONS_EXIT_OK:
        return 0;
    case OPTIONS_ERROR:
        fprintf(stderr, "lockd: %s\n", err);
        return 2;
    case OPTIONS_RUN:
        break;
    }
    static struct reload_ctx reload;
    reload_init(&reload, &cfg, argc, argv);
    log_set_level(cfg.log_level);
    log_install_crash_handler();
    signal(SIGPIPE, SIG_IGN);
    /* Like nginx: the master's title keeps its arguments so operators can
     * tell several nodes on one host apart (ps, pkill -f). */
    char title[256] = "lockd: master";
    for (int i = 1; i < argc && strlen(title) + strlen(argv[i]) + 2 < sizeof(title); i++) {
        strcat(title, " ");
        strcat(title, argv[i]);
    }
    proctitle_set(title);

    if (fs_mkdir_p(cfg.data_dir, 0700) != 0) {
        log_error("cannot create data directory %s: %s", cfg.data_dir, strerror(errno));
        return 1;
    }
    int lock_fd = lock_data_dir();
    if (lock_fd < 0)
        return 1;
    if (cfg.store == STORE_MEMORY) {
        /* Nothing may outlive the process: the Raft log goes to a private
         * tmpfs directory that the master removes on exit. It survives a
         * restart of the Raft process, so acknowledged locks do too. */
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(cfg.raft_dir, sizeof(cfg.raft_dir), "%.200s/lockd-%d-XXXXXX", base, (int)getpid());
        if (mkdtemp(cfg.raft_dir) == NULL) {
            log_error("cannot create a memory store directory under %s: %s", base, strerror(errno));
            return 1;
        }
        cfg.db_path[0] = '\0';
    }

    shm_table *table;
    int rc = shm_table_create(cfg.max_locks, &table);
    if (rc != 0) {
        log_error("cannot create the shared lock table for %u locks: %s", cfg.max_locks, lockd_strerror(rc));
        return 1;
    }
    int http_fds[LOCKD_MAX_WORKERS];
    if (listen_http(cfg.listen_host, cfg.listen_port, cfg.workers, http_fds, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    int raft_fd = listen_unix(cfg.raft_socket, err, sizeof(err));
    if (raft_fd < 0) {
        log_error("%s", err);
        return 1;
    }
    admin_server *admin;
    if (admin_open(&cfg, table, &admin, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }

    reload.table = table;
    struct notify notify;
    notify_open(&notify);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);

    log_info("lockd %s node=%llu http=%s:%u raft=%s:%u workers=%u store=%s data=%s", LOCKD_VERSION,
             (unsigned long long)cfg.node_id, cfg.listen_host, cfg.listen_port, cfg.self->raft_host,
             cfg.self->raft_port, cfg.workers, cfg.store == STORE_LMDB ? "lmdb" : "memory", cfg.data_dir);

    struct supervisor_env env = {.cfg = &cfg,
                                 .table = table,
                                 .http_fds = http_fds,
                                 .raft_fd = raft_fd,
                                 .lock_fd = lock_fd,
                                 .admin_fd = admin_fd(admin),
                                 .on_admin = admin_on_readable,
                                 .admin_arg = admin,
                                 .notify = &notify,
                                 .on_reload = reload_apply,
                                 .reload_arg = &reload};
    rc = supervisor_run(&env);

    for (unsigned i = 0; i < cfg.workers; i++)
        close(http_fds[i]);
    close(raft_fd);
    unlink(cfg.raft_socket);
    admin_close(admin);
    notify_close(&notify);
    if (cfg.store == STORE_MEMORY)
        nftw(cfg.raft_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    shm_table_destroy(table);
    char pid_path[LOCKD_PATH_MAX + 16];
    snprintf(pid_path, sizeof(pid_path), "%s/lockd.pid", cfg.data_dir);
    unlink(pid_path);
    close(lock_fd);
    log_info("stopped");
    return rc;
}
