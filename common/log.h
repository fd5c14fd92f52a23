/* common/log.h: one line per event on stderr (journald friendly):
 *   2026-11-27T07:14:03.123Z INFO  [worker 2] message key=value ...
 * and the crash handler that prints a stack trace before a process dies.
 * Safe to call from any lockd process; not from signal handlers. */
#ifndef LOCKD_COMMON_LOG_H
#define LOCKD_COMMON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the process label shown in every line ("master", "worker 2", "raft").
 * The string is copied. */
void log_set_process(const char *label);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug|info|warn|error"; returns 0 or -LOCKD_EINVAL. */
int log_parse_level(const char *s, enum log_level *out);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                                                                 \
    do {                                                                                                               \
        if (log_get_level() <= LOG_DEBUG)                                                                              \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                                         \
    } while (0)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/* Installs handlers for SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL that write
 * "FATAL signal N" and a backtrace (backtrace_symbols_fd, async-signal-safe)
 * to stderr, then re-raise with the default action so the parent sees the
 * signal. Call once per process, after fork. */
void log_install_crash_handler(void);

#endif
