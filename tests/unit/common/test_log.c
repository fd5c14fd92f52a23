/* tests/unit/common/test_log.c: the log line format, level handling, the
 * one-write-per-line guarantee and the crash handler (a child that faults
 * must print a stack trace and still die by its signal). */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/log.h"

/* ---- capturing our own stderr ---- */

static int cap_saved = -1;
static int cap_read = -1;

static void capture_begin(void)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    cap_saved = dup(STDERR_FILENO);
    assert_true(cap_saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    cap_read = fds[0];
}

static size_t read_all(int fd, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        assert_true(n < cap);
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r >= 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    return n;
}

/* Ends the capture and returns what was written (at most 64 KiB, the pipe
 * size, which is all a test writes). */
static size_t capture_end(char *out, size_t cap)
{
    assert_true(dup2(cap_saved, STDERR_FILENO) >= 0);
    close(cap_saved);
    size_t n = read_all(cap_read, out, cap);
    close(cap_read);
    return n;
}

static int matches(const char *re, const char *s)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    int ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

#define TS_RE "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

static int setup(void **state)
{
    (void)state;
    log_set_process("test");
    log_set_level(LOG_INFO);
    return 0;
}

/* ---- levels ---- */

static void test_parse_level_names_case_insensitive(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum log_level l;
    } ok[] = {{"debug", LOG_DEBUG},  {"DEBUG", LOG_DEBUG}, {"info", LOG_INFO},
              {"Info", LOG_INFO},    {"warn", LOG_WARN},   {"WARNING", LOG_WARN},
              {"warning", LOG_WARN}, {"error", LOG_ERROR}, {"eRRoR", LOG_ERROR}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        enum log_level l = (enum log_level)99;
        assert_int_equal(log_parse_level(ok[i].s, &l), 0);
        assert_int_equal(l, ok[i].l);
    }
    static const char *const bad[] = {"", "fatal", "inf", "info ", " info", "err", "warn\n", "0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum log_level l = LOG_ERROR;
        assert_int_equal(log_parse_level(bad[i], &l), -LOCKD_EINVAL);
        assert_int_equal(l, LOG_ERROR);
    }
    enum log_level l;
    assert_int_equal(log_parse_level(NULL, &l), -LOCKD_EINVAL);
    assert_int_equal(log_parse_level("info", NULL), -LOCKD_EINVAL);
}

static void test_set_level_filters_lower_levels(void **state)
{
    (void)state;
    char out[4096];
    log_set_level(LOG_WARN);
    assert_int_equal(log_get_level(), LOG_WARN);
    capture_begin();
    log_debug("d");
    log_info("i");
    log_warn("w");
    log_error("e");
    capture_end(out, sizeof out);
    assert_true(matches("^" TS_RE " WARN  \\[test\\] w\n" TS_RE " ERROR \\[test\\] e\n$", out));

    log_set_level(LOG_DEBUG);
    capture_begin();
    log_debug("d %d", 1);
    capture_end(out, sizeof out);
    assert_true(matches("^" TS_RE " DEBUG \\[test\\] d 1\n$", out));
    log_set_level(LOG_INFO);
}

/* ---- line format ---- */

static void test_line_shape_time_level_label_message(void **state)
{
    (void)state;
    char out[4096];
    log_set_process("worker 2");
    capture_begin();
    log_info("acquired name=%s token=%d", "foo", 42);
    capture_end(out, sizeof out);
    assert_true(matches("^" TS_RE " INFO  \\[worker 2\\] acquired name=foo token=42\n$", out));

    /* the stamp is UTC wall time, now */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_non_null(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t logged = timegm(&tm);
    time_t now = time(NULL);
    assert_true(logged <= now && now - logged <= 2);
}

static void test_label_is_copied_and_bounded(void **state)
{
    (void)state;
    char label[16] = "raft";
    char out[4096];
    log_set_process(label);
    strcpy(label, "XXXX");
    capture_begin();
    log_error("x");
    capture_end(out, sizeof out);
    assert_non_null(strstr(out, " ERROR [raft] x\n"));

    char big[500];
    memset(big, 'L', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_set_process(big);
    capture_begin();
    log_info("y");
    capture_end(out, sizeof out);
    assert_true(matches("^" TS_RE " INFO  \\[L{10,100}\\] y\n$", out));
}

static void test_one_event_one_line(void **state)
{
    (void)state;
    char out[4096];
    capture_begin();
    log_info("first\nsecond\r\nthird\n");
    capture_end(out, sizeof out);
    assert_true(matches("^" TS_RE " INFO  \\[test\\] first second  third\n$", out));
}

static void test_long_message_truncated_to_one_line(void **state)
{
    (void)state;
    static char msg[10000];
    memset(msg, 'm', sizeof msg - 1);
    char out[8192];
    capture_begin();
    log_warn("%s", msg);
    log_warn("after");
    size_t n = capture_end(out, sizeof out);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    size_t first = (size_t)(nl - out) + 1;
    assert_true(first <= 2048);
    assert_true(first > 1900);
    assert_memory_equal(nl - 14, "...[truncated]", 14);
    assert_true(matches("^" TS_RE " WARN  \\[test\\] after\n$", out + first));
    assert_true(n > first);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    char out[4096];
    capture_begin();
    errno = ENOSPC;
    log_error("disk");
    int e = errno;
    capture_end(out, sizeof out);
    assert_int_equal(e, ENOSPC);
}

static void test_lines_from_many_processes_never_interleave(void **state)
{
    (void)state;
    enum { KIDS = 8, LINES = 200, PAYLOAD = 1500 };
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t kids[KIDS];
    for (int k = 0; k < KIDS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            close(fds[0]);
            dup2(fds[1], STDERR_FILENO);
            char label[16];
            snprintf(label, sizeof label, "kid %d", k);
            log_set_process(label);
            char payload[PAYLOAD + 1];
            memset(payload, 'a' + k, PAYLOAD);
            payload[PAYLOAD] = '\0';
            for (int i = 0; i < LINES; i++)
                log_info("%d %s", i, payload);
            _exit(0);
        }
    }
    close(fds[1]);
    size_t cap = (size_t)KIDS * LINES * (PAYLOAD + 100);
    char *all = malloc(cap);
    assert_non_null(all);
    read_all(fds[0], all, cap);
    close(fds[0]);
    for (int k = 0; k < KIDS; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    int count[KIDS] = {0};
    char *line = all;
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
        *nl = '\0';
        int k, i;
        int off = 0;
        assert_int_equal(sscanf(line + 31, "[kid %d] %d %n", &k, &i, &off), 2);
        assert_true(k >= 0 && k < KIDS);
        assert_int_equal(i, count[k]); /* in order, none lost */
        const char *p = line + 31 + off;
        assert_int_equal(strlen(p), PAYLOAD);
        for (int j = 0; j < PAYLOAD; j++)
            assert_int_equal(p[j], 'a' + k);
        count[k]++;
        line = nl + 1;
    }
    assert_int_equal(*line, '\0');
    for (int k = 0; k < KIDS; k++)
        assert_int_equal(count[k], LINES);
    free(all);
}

/* ---- crash handler ---- */

enum crash_kind { CRASH_NULL, CRASH_OVERFLOW, CRASH_ABORT };

static volatile int never = -1;

/* UBSan would report the NULL store itself and exit; the test wants the
 * real SIGSEGV. */
__attribute__((noinline, no_sanitize("undefined"))) static void deref_null(void)
{
    volatile int *volatile p = NULL;
    *p = 1;
}

__attribute__((noinline)) static int recurse(int depth)
{
    volatile char pad[1024];
    pad[depth % 1024] = (char)depth;
    if (depth == never)
        return 0;
    return recurse(depth + 1) + pad[depth % 1024];
}

/* Runs a child that installs the handler and crashes the given way;
 * returns its wait status and fills out with its stderr. */
static int crash_child(enum crash_kind kind, char *out, size_t cap, pid_t *pid)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        log_set_process("worker 2");
        log_install_crash_handler();
        switch (kind) {
        case CRASH_NULL:
            deref_null();
            break;
        case CRASH_OVERFLOW:
            recurse(0);
            break;
        case CRASH_ABORT:
            abort();
        }
        _exit(0); /* not reached */
    }
    close(fds[1]);
    read_all(fds[0], out, cap);
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    *pid = kid;
    return st;
}

static void expect_trace(const char *out, pid_t pid, int sig, const char *name)
{
    char want[128];
    snprintf(want, sizeof want, "FATAL [worker 2] signal %d (%s) pid %d, stack trace follows:\n",
             sig, name, (int)pid);
    const char *at = strstr(out, want);
    if (!at)
        fail_msg("no \"%s\" in child's stderr:\n%s", want, out);
    assert_true(at - out >= 25);
    assert_true(matches("^" TS_RE " FATAL", at - 25));
    assert_non_null(strstr(out, "stack trace"));
    assert_non_null(strstr(at, "[0x")); /* at least one frame */
    assert_non_null(strstr(at, "end of stack trace\n"));
}

static void test_crash_null_deref_prints_trace_and_dies_by_sigsegv(void **state)
{
    (void)state;
    static char out[65536];
    pid_t pid;
    int st = crash_child(CRASH_NULL, out, sizeof out, &pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSEGV);
    expect_trace(out, pid, SIGSEGV, "SIGSEGV");
}

static void test_crash_stack_overflow_caught_on_alt_stack(void **state)
{
    (void)state;
    static char out[65536];
    pid_t pid;
    int st = crash_child(CRASH_OVERFLOW, out, sizeof out, &pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSEGV);
    expect_trace(out, pid, SIGSEGV, "SIGSEGV");
}

static void test_crash_abort_prints_trace_and_dies_by_sigabrt(void **state)
{
    (void)state;
    static char out[65536];
    pid_t pid;
    int st = crash_child(CRASH_ABORT, out, sizeof out, &pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    expect_trace(out, pid, SIGABRT, "SIGABRT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse_level_names_case_insensitive, setup),
        cmocka_unit_test_setup(test_set_level_filters_lower_levels, setup),
        cmocka_unit_test_setup(test_line_shape_time_level_label_message, setup),
        cmocka_unit_test_setup(test_label_is_copied_and_bounded, setup),
        cmocka_unit_test_setup(test_one_event_one_line, setup),
        cmocka_unit_test_setup(test_long_message_truncated_to_one_line, setup),
        cmocka_unit_test_setup(test_errno_preserved, setup),
        cmocka_unit_test_setup(test_lines_from_many_processes_never_interleave, setup),
        cmocka_unit_test_setup(test_crash_null_deref_prints_trace_and_dies_by_sigsegv, setup),
        cmocka_unit_test_setup(test_crash_stack_overflow_caught_on_alt_stack, setup),
        cmocka_unit_test_setup(test_crash_abort_prints_trace_and_dies_by_sigabrt, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
