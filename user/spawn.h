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
 * from the group database), else leave drop at 0. Returns 0 or -errno (-EINVAL for a malformed
 * SUDO_UID/SUDO_GID). Release with mp_cred__release().
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
 * Find @name like execvp() would (a name with a slash is taken as is). Returns 0 when it exists
 * and is executable by the real user, else -errno (-ENOENT, -EACCES).
 */
int mp_find_command(const char *name);

struct mp_child {
	pid_t pid;
	int go_fd;  /* write end: closing it lets the child exec */
	int err_fd; /* read end: the child's exec errno, or EOF once exec succeeded */
};

/* What the child gets besides its arguments. */
struct mp_spawn_opts {
	const struct mp_cred *cred; /* who it runs as */
	int pass_fd;		    /* >= 0: inherited (as a new fd) ... */
	const char *pass_fd_env;    /* ... and named in this environment variable */
	const char *path_env;	    /* NULL, or a variable to prefix with path_dir (PYTHONPATH) */
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

#endif
