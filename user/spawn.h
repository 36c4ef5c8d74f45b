/*
 * mp_child: start the profiled command so that it is tracked before it runs a single instruction
 * of its own, as the invoking user when mprof runs under sudo. Nothing here prints.
 */
#ifndef MP_SPAWN_H
#define MP_SPAWN_H

#include <sys/types.h>

/* Who the target runs as. */
struct mp_cred {
	int drop; /* 1: switch to uid/gid/groups below (root via sudo) */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
};

/*
 * Fill @c from SUDO_UID/SUDO_GID when running as root under sudo (the user's supplementary groups
 * from the group database), else leave drop at 0. Without SUDO_GID the group is the user's
 * primary group from the passwd database. Returns 0 or -errno: -EINVAL for a malformed
 * SUDO_UID/SUDO_GID, -ENOENT when SUDO_GID is missing and the passwd database does not know
 * SUDO_UID (never root in that case: the caller must refuse). Release with mp_cred__release().
 */
int mp_cred__from_sudo(struct mp_cred *c);
void mp_cred__release(struct mp_cred *c);

/*
 * Temporarily take the user's identity for the effective ids (file creation, permission checks),
 * and give it back. Both return 0 or -errno; no-ops when !drop.
 */
int mp_cred__enter(const struct mp_cred *c);
int mp_cred__leave(const struct mp_cred *c);

/*
 * Find @name like execvp() would (a name with a slash is taken as is). Returns 0 when it is a
 * regular file executable by the real user, else -errno (-ENOENT, -EACCES, -EISDIR for a
 * directory). With @path not NULL, the file found is stored there (@size bytes).
 */
int mp_find_command(const char *name, char *path, size_t size);

struct mp_child {
	pid_t pid;
	int go_fd;  /* write end: closing it lets the child exec */
	int err_fd; /* read end: the child's exec errno, or EOF once exec succeeded */
};

#define MP_SPAWN_MAX_FDS 2

/* What the child gets besides its arguments. */
struct mp_spawn_opts {
	const struct mp_cred *cred; /* who it runs as */
	struct {
		int fd;		 /* inherited (as a new fd, without close-on-exec) ... */
		const char *env; /* ... and named in this environment variable */
	} pass[MP_SPAWN_MAX_FDS];
	int npass;
	const char *path_env; /* NULL, or a variable to prefix with path_dir (PYTHONPATH) */
	const char *path_dir;
};

/*
 * Fork a child that waits, with default signal dispositions, until mp_child__release(); then
 * takes what @so describes, drops to its cred and execs @argv (PATH searched). Returns 0 or
 * -errno.
 */
int mp_child__spawn(struct mp_child *c, char *const argv[], const struct mp_spawn_opts *so);

/*
 * Let the child exec, with @env ("NAME=value", or NULL) added to its environment: for what is
 * decided after the fork, once the child is tracked. Returns 0 once it has exec'd, or the -errno
 * it failed with.
 */
int mp_child__release(struct mp_child *c, const char *env);

/*
 * Run @argv as @cred (stdin /dev/null, stderr kept) and store what it prints on stdout, at most
 * @size - 1 bytes and a NUL, in @out. Gives up after @timeout_ms (the command is killed).
 * Returns 0 when it exited with status 0, -ETIMEDOUT, -ECHILD for another status, or -errno.
 */
int mp_capture(char *const argv[], const struct mp_cred *cred, char *out, size_t size,
	       int timeout_ms);

#endif
