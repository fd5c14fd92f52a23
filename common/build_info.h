/* common/build_info.h: what `lockd --version` and `lockctl --version`
 * print: lockd's version and the versions of the libraries the build
 * compiled against. Read from the libraries' headers at compile time, so
 * that lockctl, which links none of them, prints the same lines as lockd. */
#ifndef LOCKD_COMMON_BUILD_INFO_H
#define LOCKD_COMMON_BUILD_INFO_H

#include <stdio.h>

/* Prints "PROGRAM VERSION\n" and one "libraries: ..." line to out. */
void build_info_print(FILE *out, const char *program);

#endif
