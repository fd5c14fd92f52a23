/* common/fs.c: file-system helpers (see fs.h). Owns nothing. */
#include "common/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/config.h"

int fs_mkdir_p(const char *path, mode_t mode)
{
    char buf[LOCKD_PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}
