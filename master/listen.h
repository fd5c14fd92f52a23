/* master/listen.h: the sockets the master binds before it forks, so that
 * they outlive any child: one SO_REUSEPORT HTTP socket per worker (the
 * kernel spreads connections across them far more evenly than one shared
 * socket), and the Unix socket raftproc accepts workers on. */
#ifndef LOCKD_MASTER_LISTEN_H
#define LOCKD_MASTER_LISTEN_H

#include <stddef.h>
#include <stdint.h>

/* Binds n listening TCP sockets on host:port with SO_REUSEPORT into fds[].
 * Fails with a message in err if the address is taken by anyone (including
 * another process using SO_REUSEPORT). Returns 0 or -LOCKD_EIO. */
int listen_http(const char *host, uint16_t port, unsigned n, int *fds, char *err, size_t err_cap);

/* Binds a listening Unix stream socket at path (replacing a stale file),
 * mode 0600. Returns the fd or -LOCKD_EIO with a message in err. */
int listen_unix(const char *path, char *err, size_t err_cap);

#endif
