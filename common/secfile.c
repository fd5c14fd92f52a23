/* common/secfile.c: mode-checked reads of secret files (see secfile.h).
 * Owns only the buffer it returns; never logs, never keeps a copy. */
#include "common/secfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/errors.h"

int secfile_check_fd(int fd, const char *path, char *err, size_t err_cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        return -LOCKD_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_cap, "%s: not a regular file", path);
        return -LOCKD_EINVAL;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, err_cap, "%s: owned by uid %u, neither this user (%u) nor root", path, (unsigned)st.st_uid,
                 (unsigned)geteuid());
        return -LOCKD_EINVAL;
    }
    /* Group may read (0640: a `lockd` group), nobody else may; only the
     * owner may write; no execute bits (a secret is not a program). */
    if ((st.st_mode & 0137) != 0) {
        snprintf(err, err_cap, "%s: mode %04o lets other users %s it; chmod 600 (or 640) %s", path,
                 (unsigned)(st.st_mode & 07777), (st.st_mode & 0022) ? "write" : "read", path);
        return -LOCKD_EINVAL;
    }
    return 0;
}

int secfile_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t err_cap)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        return -LOCKD_EIO;
    }
    int rc = secfile_check_fd(fd, path, err, err_cap);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    char *buf = malloc(max + 1);
    if (buf == NULL) {
        close(fd);
        snprintf(err, err_cap, "%s: out of memory", path);
        return -LOCKD_ENOMEM;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, err_cap, "%s: %s", path, strerror(errno));
            rc = -LOCKD_EIO;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            snprintf(err, err_cap, "%s: larger than %zu bytes", path, max);
            rc = -LOCKD_ETOOBIG;
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        OPENSSL_cleanse(buf, max + 1);
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void secfile_free(char *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len + 1);
    free(buf);
}
