/* master/proctitle.c: rewrites the argv area so each lockd process shows
 * what it is (nginx does the same). Owns the copies of argv and environ it
 * makes; never writes beyond the original argv+environ strings. */
#include "master/proctitle.h"

#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_area;
static size_t title_cap;
static char *
    *volatile argv_copy; /* lives as long as the process (volatile: the store must stay, LeakSanitizer looks for it) */

char **proctitle_init(int argc, char **argv)
{
    char **copy = calloc((size_t)argc + 1, sizeof(char *));
    if (copy == NULL)
        return argv;
    for (int i = 0; i < argc; i++)
        copy[i] = strdup(argv[i]);
    /* The area is contiguous: argv strings, then environ strings. */
    char *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
    size_t n_env = 0;
    while (environ[n_env] != NULL)
        n_env++;
    char **env = calloc(n_env + 1, sizeof(char *));
    if (env != NULL) {
        for (size_t i = 0; i < n_env; i++) {
            if (environ[i] == end)
                end = environ[i] + strlen(environ[i]) + 1;
            env[i] = strdup(environ[i]);
        }
        environ = env;
    }
    title_area = argv[0];
    title_cap = (size_t)(end - argv[0]);
    argv_copy = copy;
    return copy;
}

void proctitle_set(const char *title)
{
    if (title_area != NULL && title_cap > 1) {
        size_t n = strlen(title);
        if (n >= title_cap)
            n = title_cap - 1;
        memcpy(title_area, title, n);
        memset(title_area + n, 0, title_cap - n);
    }
    char comm[16];
    size_t j = 0;
    /* "lockd: worker 2" -> "lockd-worker-2" */
    for (const char *p = title; *p && j < sizeof(comm) - 1; p++) {
        char ch = (*p == ' ' || *p == ':') ? '-' : *p;
        if (ch == '-' && j > 0 && comm[j - 1] == '-')
            continue;
        comm[j++] = ch;
    }
    comm[j] = '\0';
    prctl(PR_SET_NAME, comm, 0, 0, 0);
}
