/* master/listen.c: binds the master's listening sockets (see listen.h).
 * Owns nothing after return: the fds belong to the caller. */
#include "master/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/errors.h"

static int bind_one(const struct addrinfo *ai, int reuseport)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
        goto fail;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto fail;
    if (reuseport && listen(fd, 4096) != 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int listen_http(const char *host, uint16_t port, unsigned n, int *fds, char *err, size_t err_cap)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
        return -LOCKD_EIO;
    }
    /* Probe without SO_REUSEPORT first: a plain bind fails if anyone holds
     * the port, even another SO_REUSEPORT group we would silently join. */
    int probe = bind_one(res, 0);
    if (probe < 0) {
        snprintf(err, err_cap, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        freeaddrinfo(res);
        return -LOCKD_EIO;
    }
    close(probe);
    for (unsigned i = 0; i < n; i++) {
        fds[i] = bind_one(res, 1);
        if (fds[i] < 0) {
            snprintf(err, err_cap, "cannot listen on %s:%u: %s", host, port, strerror(errno));
            while (i-- > 0)
                close(fds[i]);
            freeaddrinfo(res);
            return -LOCKD_EIO;
        }
    }
    freeaddrinfo(res);
    return 0;
}

int listen_unix(const char *path, char *err, size_t err_cap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, err_cap, "socket path %s is longer than %zu bytes (choose a shorter --data-dir)", path,
                 sizeof(sa.sun_path) - 1);
        return -LOCKD_EIO;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    unlink(path); /* stale from a crash: the data-dir lock says nobody uses it */
    mode_t old = umask(0077);
    int b = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (b != 0 || listen(fd, 1024) != 0)
        goto fail;
    return fd;
fail:
    snprintf(err, err_cap, "cannot listen on %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -LOCKD_EIO;
}
