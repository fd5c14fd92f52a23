/* common/version.h: the one place the lockd version is written. */
#ifndef LOCKD_COMMON_VERSION_H
#define LOCKD_COMMON_VERSION_H

#define LOCKD_VERSION "0.1.0"

#endif
