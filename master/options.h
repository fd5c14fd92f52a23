/* master/options.h: the command line, the config file (--config) and the
 * cluster file, turned into a struct lockd_config. Compatible with the
 * original lockd's flags (-cluster FILE -id N; Go-style single-dash long
 * options work too). Every option is also a config-file key (its long name
 * without dashes); the command line overrides the file. */
#ifndef LOCKD_MASTER_OPTIONS_H
#define LOCKD_MASTER_OPTIONS_H

#include <stdio.h>

#include "common/config.h"
#include "common/version.h"

enum options_result { OPTIONS_RUN = 0, OPTIONS_EXIT_OK = 1, OPTIONS_ERROR = 2 };

/* Parses argv, and the file --config names, into cfg (filled with defaults
 * first). On OPTIONS_ERROR a one-line message is in err; an error in the
 * config file starts with "FILE:LINE: ". OPTIONS_EXIT_OK means --help or
 * --version was printed to out. Calling it again with the same argv re-reads
 * the files (that is how SIGHUP reloads: master/reload.c). */
enum options_result options_parse(int argc, char **argv, struct lockd_config *cfg, FILE *out, char *err,
                                  size_t err_cap);

/* Parses a cluster file's JSON text into cfg->nodes / n_nodes. Raft
 * addresses are resolved to IPv4 literals (the Raft transport needs them).
 * Returns 0 or -LOCKD_EINVAL with a message naming the problem in err. */
int options_parse_cluster(const char *json, size_t len, struct lockd_config *cfg, char *err, size_t err_cap);

void options_usage(FILE *out);

/* 1 if the option (long name without dashes) is applied by a reload. */
int options_reloadable(const char *name);

#endif
