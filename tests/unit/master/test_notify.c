/* tests/unit/master/test_notify.c: sd_notify's datagrams (master/notify.h)
 * received on a socket the test binds, as the service manager would: a
 * path and an abstract name; READY=1 only once the node serves (the table
 * loaded, a leader known, the Raft process up), sent once; STATUS= while
 * it waits; nothing at all without $NOTIFY_SOCKET. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "master/notify.h"
#include "shm/table.h"

struct fx {
    char dir[64];
    char path[96];
    int fd; /* the "service manager's" socket */
};

static int fx_setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    const char *base = getenv("TMPDIR");
    snprintf(x->dir, sizeof(x->dir), "%s/lockd-notify-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->path, sizeof(x->path), "%s/notify.sock", x->dir);
    x->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(x->fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", x->path);
    assert_int_equal(bind(x->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    /* a receive that finds nothing fails after 2 s instead of hanging */
    struct timeval tv = {.tv_sec = 2};
    assert_int_equal(setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *x = *state;
    close(x->fd);
    unlink(x->path);
    rmdir(x->dir);
    unsetenv("NOTIFY_SOCKET");
    free(x);
    return 0;
}

/* The next datagram on fd, NUL-terminated. */
static void receive(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n < 0)
        fail_msg("no notification arrived: %s", strerror(errno));
    buf[n] = '\0';
}

/* 1 if a datagram is waiting on fd (without waiting for one). */
static int pending(int fd)
{
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) >= 0;
}

static void test_sends_to_the_socket_path_and_hides_it_from_children(void **state)
{
    struct fx *x = *state;
    setenv("NOTIFY_SOCKET", x->path, 1);
    struct notify n;
    assert_int_equal(notify_open(&n), 0);
    assert_null(getenv("NOTIFY_SOCKET"));
    assert_int_equal(notify_send(&n, "STOPPING=1"), 0);
    char buf[256];
    receive(x->fd, buf, sizeof(buf));
    assert_string_equal(buf, "STOPPING=1");
    notify_close(&n);
}

static void test_sends_to_an_abstract_socket(void **state)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    char name[64];
    int len = snprintf(name, sizeof(name), "lockd-test-notify-%d", (int)getpid());
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path + 1, name, (size_t)len); /* sun_path[0] = 0: abstract */
    assert_int_equal(bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)), 0);
    char env[80];
    snprintf(env, sizeof(env), "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    struct notify n;
    assert_int_equal(notify_open(&n), 0);
    assert_int_equal(notify_send(&n, "STATUS=hello"), 0);
    char buf[256];
    receive(fd, buf, sizeof(buf));
    assert_string_equal(buf, "STATUS=hello");
    notify_close(&n);
    close(fd);
}

static void test_without_notify_socket_nothing_is_sent(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    struct notify n;
    assert_int_equal(notify_open(&n), 0);
    assert_int_equal(n.fd, -1);
    assert_int_equal(notify_send(&n, "READY=1"), 0);
    shm_table *t;
    assert_int_equal(shm_table_create(16, &t), 0);
    assert_int_equal(notify_poll_ready(&n, t, 1), 0); /* nothing to wait for */
    shm_table_destroy(t);
    notify_close(&n);
}

static void test_bad_addresses_disable_it(void **state)
{
    const char *bad[] = {"relative/path", "@", "x"};
    for (size_t i = 0; i < 3; i++) {
        setenv("NOTIFY_SOCKET", bad[i], 1);
        struct notify n;
        assert_int_equal(notify_open(&n), -LOCKD_EINVAL);
        assert_int_equal(n.fd, -1);
        assert_null(getenv("NOTIFY_SOCKET"));
        assert_int_equal(notify_send(&n, "READY=1"), 0);
    }
}

static void test_gone_service_manager_is_an_error_not_a_hang(void **state)
{
    struct fx *x = *state;
    setenv("NOTIFY_SOCKET", x->path, 1);
    struct notify n;
    assert_int_equal(notify_open(&n), 0);
    close(x->fd);
    unlink(x->path);
    x->fd = socket(AF_UNIX, SOCK_DGRAM, 0); /* for the teardown */
    assert_int_equal(notify_send(&n, "READY=1"), -LOCKD_EIO);
    notify_close(&n);
}

static void test_not_serving_reasons_match_readyz(void **state)
{
    shm_node_status st = {.state = SHM_STATE_READY, .leader_id = 2};
    assert_null(notify_not_serving(&st, 1));
    assert_string_equal(notify_not_serving(&st, 0), "Raft process unavailable");
    st.leader_id = 0;
    assert_string_equal(notify_not_serving(&st, 1), "No leader known");
    st.state = SHM_STATE_LOADING;
    st.leader_id = 2;
    assert_string_equal(notify_not_serving(&st, 1), "Lock table is loading");
}

static void test_ready_is_sent_once_only_when_the_node_serves(void **state)
{
    struct fx *x = *state;
    setenv("NOTIFY_SOCKET", x->path, 1);
    struct notify n;
    assert_int_equal(notify_open(&n), 0);
    shm_table *t;
    assert_int_equal(shm_table_create(16, &t), 0);
    char buf[256];

    /* loading: a status, no READY; asked to look again soon */
    shm_node_status st = {.node_id = 1, .state = SHM_STATE_LOADING};
    shm_table_publish_status(t, &st);
    assert_true(notify_poll_ready(&n, t, 1) > 0);
    receive(x->fd, buf, sizeof(buf));
    assert_string_equal(buf, "STATUS=starting: Lock table is loading");
    /* the same reason again: nothing new is sent */
    assert_true(notify_poll_ready(&n, t, 1) > 0);
    assert_false(pending(x->fd));

    /* loaded, no leader yet */
    shm_table_set_state(t, SHM_STATE_READY);
    assert_true(notify_poll_ready(&n, t, 1) > 0);
    receive(x->fd, buf, sizeof(buf));
    assert_string_equal(buf, "STATUS=starting: No leader known");

    /* a leader, but the Raft process is down (restarting) */
    st.leader_id = 3;
    st.role = 1;
    shm_table_publish_status(t, &st);
    shm_table_set_state(t, SHM_STATE_READY);
    assert_true(notify_poll_ready(&n, t, 0) > 0);
    receive(x->fd, buf, sizeof(buf));
    assert_string_equal(buf, "STATUS=starting: Raft process unavailable");

    /* serving: READY=1, once */
    assert_int_equal(notify_poll_ready(&n, t, 1), 0);
    receive(x->fd, buf, sizeof(buf));
    assert_string_equal(buf, "READY=1\nSTATUS=serving (leader 3)");
    assert_int_equal(notify_poll_ready(&n, t, 1), 0);
    st.leader_id = 0;
    shm_table_publish_status(t, &st);
    assert_int_equal(notify_poll_ready(&n, t, 1), 0);
    assert_false(pending(x->fd));

    shm_table_destroy(t);
    notify_close(&n);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        FX(test_sends_to_the_socket_path_and_hides_it_from_children),
        FX(test_sends_to_an_abstract_socket),
        FX(test_without_notify_socket_nothing_is_sent),
        FX(test_bad_addresses_disable_it),
        FX(test_gone_service_manager_is_an_error_not_a_hang),
        cmocka_unit_test(test_not_serving_reasons_match_readyz),
        FX(test_ready_is_sent_once_only_when_the_node_serves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
