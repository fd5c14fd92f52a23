/* common/fs.h: the file-system helpers more than one process needs. */
#ifndef LOCKD_COMMON_FS_H
#define LOCKD_COMMON_FS_H

#include <sys/types.h>

/* Creates path and its missing parents with mode (existing ones are fine).
 * Returns 0, or -1 with errno set. */
int fs_mkdir_p(const char *path, mode_t mode);

#endif
