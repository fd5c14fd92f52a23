/* common/secfile.h: reading a file that holds secrets (the auth file, the
 * cluster key, a TLS private key) the way sshd reads its keys: refused
 * unless it is a regular file owned by us or root that no other user can
 * read and nobody else can write. Modes 0600, 0640, 0400 and 0440 pass;
 * 0644, 0660, 0666, 0604 ... do not. The check is made on the opened file
 * (fstat), so a rename between check and read cannot slip another file in.
 * Never logs the contents. */
#ifndef LOCKD_COMMON_SECFILE_H
#define LOCKD_COMMON_SECFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Largest secret file read (an auth file of ~5000 tokens). */
#define SECFILE_MAX (1024 * 1024)

/* Checks the mode and owner of an open file. Returns 0, or -LOCKD_EINVAL
 * with a sentence in err naming path and the fix ("chmod 600 PATH"). */
int secfile_check_fd(int fd, const char *path, char *err, size_t err_cap);

/* Reads the whole of path (at most max bytes) after secfile_check_fd.
 * On success *out is a NUL-terminated heap copy owned by the caller, to be
 * released with secfile_free (which wipes it), and *len its length.
 * Errors: -LOCKD_EINVAL (mode, owner, not a regular file), -LOCKD_ETOOBIG,
 * -LOCKD_EIO (open/read; errno in err), -LOCKD_ENOMEM. err always says why. */
int secfile_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t err_cap);

/* Wipes (OPENSSL_cleanse) and frees what secfile_read returned. NULL is fine. */
void secfile_free(char *buf, size_t len);

#endif
