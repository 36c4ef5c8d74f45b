/*
 * mp_pidlist and the /proc walks the /proc backend and the CPython hook's meters share: a
 * process's descendants from /proc/PID/task/TID/children, and the PSS or USS sum of an smaps
 * text. Plain C and libc only (the hook compiles this file into its extension too); nothing here
 * prints.
 */
#ifndef MP_PROCWALK_H
#define MP_PROCWALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mp_pidlist {
	pid_t *v;
	size_t n, cap;
};

/* Append @pid. Returns 0 or -ENOMEM. */
int mp_pidlist__add(struct mp_pidlist *l, pid_t pid);
/* Free the array; the list is empty again. */
void mp_pidlist__release(struct mp_pidlist *l);

/*
 * Append the children of every thread of @pid. A process that is gone (or vanishes meanwhile)
 * adds nothing. Returns 0 or -ENOMEM.
 */
int mp_proc_add_children(struct mp_pidlist *l, pid_t pid);

/* Append every descendant of @pid, breadth first. Returns 0 or -ENOMEM. */
int mp_proc_add_descendants(struct mp_pidlist *l, pid_t pid);

/*
 * The bytes an smaps (or smaps_rollup) text adds up to: its "Pss:" lines when @pss, else every
 * "Private_*:" line (USS, as psutil sums it). The values are kB.
 */
uint64_t mp_smaps_sum(const char *text, int pss);

#endif
