/* master/proctitle.h: process titles as ps(1) shows them ("lockd: worker 2").
 * proctitle_init must run first thing in main(), before anything reads
 * argv or environ again: it moves the environment out of the way so the
 * title may use the argv+environ area. */
#ifndef LOCKD_MASTER_PROCTITLE_H
#define LOCKD_MASTER_PROCTITLE_H

/* Returns a heap copy of argv (the caller keeps it for the process life). */
char **proctitle_init(int argc, char **argv);

/* Sets the title shown by ps and /proc/PID/cmdline, and the 15-byte comm
 * name (prctl PR_SET_NAME) shown by top. */
void proctitle_set(const char *title);

#endif
