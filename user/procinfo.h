/*
 * mp_procinfo: what /proc says about a process, for choosing and describing the processes a
 * recording follows (attach, fleet). Nothing here prints.
 */
#ifndef MP_PROCINFO_H
#define MP_PROCINFO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The first process (lowest pid, as memory_profiler's psutil.process_iter() order gives) other
 * than @self whose name contains @needle: its comm, or the base name of its argv[0] (comm is cut
 * at 15 bytes). Stores the pid in *@out. Returns 0, -ESRCH when none matches, or -errno.
 */
int mp_proc_find_by_name(const char *needle, pid_t self, pid_t *out);

/* The command name (comm) of @pid into @out (@size bytes). Returns 0 or -errno (-ESRCH). */
int mp_proc_comm(pid_t pid, char *out, size_t size);

/*
 * The arguments of @pid (/proc/PID/cmdline) as a NULL-terminated array in one allocation that
 * the caller frees; *@argc gets their number (0 for a kernel thread or a zombie). Returns 0 or
 * -errno (-ESRCH when the process is gone).
 */
int mp_proc_argv(pid_t pid, char ***argv, int *argc);

/* The real and effective uid of @pid (its /proc/PID/status). Returns 0 or -errno. */
int mp_proc_uids(pid_t pid, uid_t *real, uid_t *effective);

/*
 * Call @fn for every descendant of @pid alive now (children of each of its threads, breadth
 * first). Processes that exit meanwhile are skipped. Returns 0 or the first error of @fn or
 * -ENOMEM.
 */
int mp_proc_each_descendant(pid_t pid, int (*fn)(void *ctx, pid_t pid), void *ctx);

/*
 * The cgroup v2 path of @pid relative to the hierarchy's root ("/" for the root) into @out.
 * Returns 0 or -errno (-ENOENT without cgroup v2).
 */
int mp_proc_cgroup(pid_t pid, char *out, size_t size);

/*
 * Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
 * systems), from /proc/self/mountinfo, into @out. Returns 0 or -ENOENT.
 */
int mp_cgroup2_root(char *out, size_t size);

#endif
