/* lockctl/client.c: the admin socket client (see client.h). Owns the
 * connection for the length of one call; never retries (an unlock that
 * timed out may have happened: the operator decides). */
#include "lockctl/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/limits.h"
#include "proto/frame.h"

/* Waits for events on fd until deadline_ms. Returns 0, or -1 with errno
 * (ETIMEDOUT at the deadline). */
static int client_wait(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = clock_monotonic_ms();
        if (now >= deadline_ms) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(deadline_ms - now));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int client_send(int fd, const uint8_t *p, size_t n, uint64_t deadline_ms)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            return -1;
        } else if (w < 0 && errno != EINTR && client_wait(fd, POLLOUT, deadline_ms) != 0) {
            return -1;
        }
    }
    return 0;
}

int client_call(const char *path, const Lockd__AdminRequest *req, uint64_t timeout_ms, client_frame_fn fn, void *arg,
                char *err, size_t err_cap)
{
    uint64_t deadline = clock_monotonic_ms() + timeout_ms;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t plen = strlen(path);
    if (plen == 0 || plen >= sizeof(sa.sun_path)) {
        snprintf(err, err_cap, "cannot connect to %s: socket path is %s (at most %zu bytes)", path,
                 plen == 0 ? "empty" : "too long", sizeof(sa.sun_path) - 1);
        return CLIENT_ECONNECT;
    }
    memcpy(sa.sun_path, path, plen + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        const char *hint =
            e == EACCES || e == EPERM ? "run lockctl as the user lockd runs as" : "is lockd running? use --socket";
        snprintf(err, err_cap, "cannot connect to %s: %s (%s)", path, strerror(e), hint);
        if (fd >= 0)
            close(fd);
        return CLIENT_ECONNECT;
    }
    /* connect() on a Unix socket completes at once (the master's backlog
     * holds us even while it serves someone else); from here on every call
     * is MSG_DONTWAIT plus poll, so the one deadline covers the rest. */
    int rc = CLIENT_EIO;
    uint8_t *buf = malloc(FRAME_HEADER_SIZE + LOCKD_FRAME_MAX);
    size_t len = 0;
    int n = buf ? frame_encode(&req->base, buf, FRAME_HEADER_SIZE + LOCKD_FRAME_MAX) : -1;
    if (n < 0) {
        snprintf(err, err_cap, "cannot encode the request");
        goto out;
    }
    if (client_send(fd, buf, (size_t)n, deadline) != 0) {
        snprintf(err, err_cap, "cannot send to %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        const uint8_t *payload;
        size_t paylen;
        int f = frame_peek(buf, len, &payload, &paylen);
        if (f < 0) {
            snprintf(err, err_cap, "%s sent an oversize frame", path);
            goto out;
        }
        if (f > 0) {
            Lockd__AdminResponse *resp = lockd__admin_response__unpack(NULL, paylen, payload);
            if (resp == NULL) {
                snprintf(err, err_cap, "%s sent an undecodable answer (lockctl and lockd versions differ?)", path);
                goto out;
            }
            int more = resp->more;
            int r = fn(resp, arg);
            lockd__admin_response__free_unpacked(resp, NULL);
            memmove(buf, buf + f, len - (size_t)f);
            len -= (size_t)f;
            if (r != 0 || !more) {
                rc = r;
                goto out;
            }
            continue;
        }
        if (client_wait(fd, POLLIN, deadline) != 0) {
            snprintf(err, err_cap, "no answer from %s within %llu ms", path, (unsigned long long)timeout_ms);
            goto out;
        }
        ssize_t r = recv(fd, buf + len, FRAME_HEADER_SIZE + LOCKD_FRAME_MAX - len, MSG_DONTWAIT);
        if (r == 0) {
            snprintf(err, err_cap, "%s closed the connection without an answer (lockd stopping?)", path);
            goto out;
        }
        if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(err, err_cap, "cannot read from %s: %s", path, strerror(errno));
            goto out;
        }
        if (r > 0)
            len += (size_t)r;
    }
out:
    free(buf);
    close(fd);
    return rc;
}
