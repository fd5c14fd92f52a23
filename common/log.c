/* common/log.c: the log line format, the level filter and the crash handler.
 * A line must never leave in more than one write(2), so lines of processes
 * sharing stderr never interleave; the crash handler must stay signal-safe. */
#include "common/log.h"

#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/decimal.h"
#include "common/errors.h"

/* A line is formatted on the stack, never allocated, and takes no lock of
 * ours. PIPE_BUF (4096 on Linux) is the size up to which a write to a pipe is
 * atomic (POSIX write(2)); stay well under it. */
#define LOG_LINE_MAX 2048
#define LOG_LABEL_MAX 64
#define LOG_TRUNC_MARK "...[truncated]"
#define CRASH_FRAMES 64
#define CRASH_ALTSTACK_SIZE (64 * 1024)

_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a log line must fit one atomic pipe write");

/* Written by log_set_process before any concurrency starts (a process sets
 * its label right after fork); read by the crash handler, so it is a plain
 * array and never freed. */
static char g_label[LOG_LABEL_MAX] = "lockd";
static volatile int g_level = LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_process(const char *label)
{
    if (!label)
        label = "";
    size_t n = strlen(label);
    if (n >= sizeof g_label)
        n = sizeof g_label - 1;
    memcpy(g_label, label, n);
    g_label[n] = '\0';
}

void log_set_level(enum log_level level)
{
    int l = (int)level;
    g_level = l < LOG_DEBUG ? LOG_DEBUG : l > LOG_ERROR ? LOG_ERROR : l;
}

enum log_level log_get_level(void)
{
    return (enum log_level)g_level;
}

int log_parse_level(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN}, {"warning", LOG_WARN}, {"error", LOG_ERROR}};
    if (!s || !out)
        return -LOCKD_EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -LOCKD_EINVAL;
}

/* ---- helpers shared with the crash handler: async-signal-safe ---- */

/* Writes all of buf, retrying on EINTR and short writes. Errors are
 * dropped: there is nowhere left to report a failing stderr. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
}

/* Appends the decimal form of v at p; returns the new end. */
static char *put_u64(char *p, uint64_t v)
{
    return p + decimal_u64(p, v);
}

static char *put_fixed(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

static char *put_str(char *p, const char *end, const char *s)
{
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

/* Formats the wall clock as "2026-11-27T07:14:03.123Z" (24 bytes) at p.
 * gmtime_r is not async-signal-safe (it may take the tz lock), so the date
 * is computed directly: days-to-civil from H. Hinnant, "chrono-compatible
 * low-level date algorithms". */
#define LOG_TIME_LEN 24
static char *put_utc(char *p, const struct timespec *ts)
{
    int64_t secs = (int64_t)ts->tv_sec;
    int64_t days = secs / 86400;
    int64_t sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);

    p = put_fixed(p, (unsigned)y, 4);
    *p++ = '-';
    p = put_fixed(p, (unsigned)m, 2);
    *p++ = '-';
    p = put_fixed(p, (unsigned)d, 2);
    *p++ = 'T';
    p = put_fixed(p, (unsigned)(sod / 3600), 2);
    *p++ = ':';
    p = put_fixed(p, (unsigned)(sod / 60 % 60), 2);
    *p++ = ':';
    p = put_fixed(p, (unsigned)(sod % 60), 2);
    *p++ = '.';
    p = put_fixed(p, (unsigned)(ts->tv_nsec / 1000000), 3);
    *p++ = 'Z';
    return p;
}

static char *put_utc_now(char *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* async-signal-safe (POSIX) */
    return put_utc(p, &ts);
}

/* ---- log lines ---- */

void log_write(enum log_level level, const char *fmt, ...)
{
    if ((int)level < g_level)
        return;
    if ((int)level < LOG_DEBUG || (int)level > LOG_ERROR)
        level = LOG_ERROR;
    int saved_errno = errno; /* so "log_error(...); return -errno" works */

    char line[LOG_LINE_MAX];
    char *const end = line + sizeof line - 1; /* keep one byte for '\n' */
    char *p = put_utc_now(line);
    *p++ = ' ';
    /* level padded to 5 so messages line up */
    const char *name = level_names[level];
    char *lvl = p;
    p = put_str(p, end, name);
    while (p < lvl + 5)
        *p++ = ' ';
    *p++ = ' ';
    *p++ = '[';
    p = put_str(p, end - 2, g_label);
    *p++ = ']';
    *p++ = ' ';

    char *msg = p;
    size_t room = (size_t)(end - p) + 1; /* vsnprintf's NUL may use the '\n' slot */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= room) {
        n = (int)(room - 1);
        memcpy(msg + n - (sizeof LOG_TRUNC_MARK - 1), LOG_TRUNC_MARK, sizeof LOG_TRUNC_MARK - 1);
    }
    /* One event, one line: a trailing newline in fmt is dropped and inner
     * ones become spaces, so journald and grep see whole events. */
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    for (int i = 0; i < n; i++)
        if (msg[i] == '\n' || msg[i] == '\r')
            msg[i] = ' ';
    p = msg + n;
    *p++ = '\n';
    write_all(STDERR_FILENO, line, (size_t)(p - line));
    errno = saved_errno;
}

/* ---- crash handler ---- */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGABRT:
        return "SIGABRT";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    }
    return "?";
}

/* Runs on the alternate stack with the signal blocked and its disposition
 * already reset to SIG_DFL (SA_RESETHAND). A second fault in here is
 * delivered while blocked, which the kernel turns into the default action:
 * the process still dies by that signal. */
static void crash_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)info;
    (void)uctx;
    int saved_errno = errno;
    char line[256];
    char *const end = line + sizeof line - 1;
    char *p = put_utc_now(line);
    p = put_str(p, end, " FATAL [");
    p = put_str(p, end - 80, g_label);
    p = put_str(p, end, "] signal ");
    p = put_u64(p, (uint64_t)sig);
    p = put_str(p, end, " (");
    p = put_str(p, end, signal_name(sig));
    p = put_str(p, end, ") pid ");
    p = put_u64(p, (uint64_t)getpid());
    p = put_str(p, end, ", stack trace follows:");
    *p++ = '\n';
    write_all(STDERR_FILENO, line, (size_t)(p - line));

    /* Not on POSIX's async-signal-safe list, but safe in practice once
     * libgcc's unwinder is loaded (done at install time): glibc documents
     * that backtrace_symbols_fd does not call malloc. */
    void *frames[CRASH_FRAMES];
    int n = backtrace(frames, CRASH_FRAMES);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    write_all(STDERR_FILENO, "end of stack trace\n", 19);

    errno = saved_errno;
    /* Pending until we return (the signal is blocked in its own handler);
     * then the default action kills us and the master's waitpid() sees
     * WIFSIGNALED with the original signal. A hardware fault would also
     * recur on return, but raise() covers signals sent with kill(). */
    raise(sig);
}

/* Static, not malloc'ed: the handler must work when the heap is the thing
 * that broke. The alternate stack is per thread (sigaltstack(2)); threads
 * other than the installer still get the handler, on their own stack. */
static char g_altstack[CRASH_ALTSTACK_SIZE] __attribute__((aligned(16)));

void log_install_crash_handler(void)
{
    /* backtrace() dlopens libgcc_s on first use, which mallocs and takes
     * the loader lock: do it now, never for the first time in a handler. */
    void *warm[2];
    (void)backtrace(warm, 2);

    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = g_altstack;
    ss.ss_size = sizeof g_altstack;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0)
        log_warn("sigaltstack: %s; stack overflows will die without a trace", strerror(errno));

    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            log_warn("sigaction(%d): %s", sigs[i], strerror(errno));
}
