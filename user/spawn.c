#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "spawn.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_id(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end || *out > UINT_MAX - 1)
		return -EINVAL;
	return 0;
}

int mp_cred__from_sudo(struct mp_cred *c)
{
	const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
	unsigned long uid, gid;
	struct passwd *pw;
	int n = 0;

	memset(c, 0, sizeof(*c));
	if (geteuid() != 0 || !su)
		return 0;
	if (parse_id(su, &uid) || (sg && parse_id(sg, &gid)))
		return -EINVAL;
	if (uid == 0)
		return 0; /* sudo from root: nothing to drop */
	pw = getpwuid(uid);
	if (!sg) {
		/* never fall back to root's group: the user's own primary group, or nothing */
		if (!pw)
			return -ENOENT;
		gid = pw->pw_gid;
	}
	c->uid = uid;
	c->gid = gid;
	if (pw) {
		getgrouplist(pw->pw_name, c->gid, NULL, &n);
		if (n > 0) {
			c->groups = calloc(n, sizeof(gid_t));
			if (!c->groups)
				return -ENOMEM;
			if (getgrouplist(pw->pw_name, c->gid, c->groups, &n) < 0) {
				free(c->groups);
				c->groups = NULL;
				n = 0;
			}
		}
	}
	if (!c->groups) {
		c->groups = calloc(1, sizeof(gid_t));
		if (!c->groups)
			return -ENOMEM;
		c->groups[0] = c->gid;
		n = 1;
	}
	c->ngroups = n;
	c->drop = 1;
	return 0;
}

void mp_cred__release(struct mp_cred *c)
{
	free(c->groups);
	c->groups = NULL;
	c->drop = 0;
}

int mp_cred__enter(const struct mp_cred *c)
{
	if (!c->drop)
		return 0;
	if (setgroups(c->ngroups, c->groups) || setegid(c->gid) || seteuid(c->uid))
		return -errno;
	return 0;
}

int mp_cred__leave(const struct mp_cred *c)
{
	if (!c->drop)
		return 0;
	if (seteuid(0) || setegid(0) || setgroups(0, NULL))
		return -errno;
	return 0;
}

/* Is @file an executable regular file? 0 or -errno. */
static int executable(const char *file)
{
	struct stat st;

	if (stat(file, &st))
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EACCES; /* what execve() says of a device or a socket */
	return access(file, X_OK) ? -errno : 0;
}

int mp_find_command(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	int err = -ENOENT, e;
	char buf[PATH_MAX];

	if (!*name)
		return -ENOENT;
	if (strchr(name, '/')) {
		e = executable(name);
		if (!e && out && snprintf(out, size, "%s", name) >= (int)size)
			return -ENAMETOOLONG;
		return e;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);

		if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".", name) <
		    (int)sizeof(buf)) {
			e = executable(buf);
			if (!e) {
				if (out && snprintf(out, size, "%s", buf) >= (int)size)
					return -ENAMETOOLONG;
				return 0;
			}
			if (e == -EACCES)
				err = -EACCES;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return err;
}

/* Prefix $@name with @dir (":"-separated), as PYTHONPATH expects. Returns 0 or -1. */
static int prefix_path(const char *name, const char *dir)
{
	const char *old = getenv(name);
	char *v;
	int r;

	if (!old || !*old)
		return setenv(name, dir, 1);
	if (asprintf(&v, "%s:%s", dir, old) < 0)
		return -1;
	r = setenv(name, v, 1);
	free(v);
	return r;
}

/* In the child: never returns. Reports the first failure through @err_fd. */
static void child_main(int go_fd, int err_fd, char *const argv[], const struct mp_spawn_opts *so)
{
	const struct mp_cred *cred = so->cred;
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE, SIGQUIT };
	sigset_t none;
	char env[256];
	size_t n = 0;
	ssize_t r;
	int err;

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* wait for the tracker to know us; EOF is the signal to go, after an optional NAME=value */
	while (n < sizeof(env) - 1) {
		r = read(go_fd, env + n, sizeof(env) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
	}
	env[n] = 0;
	close(go_fd);
	if (n && putenv(env))
		goto fail;
	for (int i = 0; i < so->npass; i++) {
		char num[16];
		int fd = dup(so->pass[i].fd); /* the copy has no FD_CLOEXEC: it survives exec */

		if (fd < 0)
			goto fail;
		snprintf(num, sizeof(num), "%d", fd);
		if (setenv(so->pass[i].env, num, 1))
			goto fail;
	}
	if (so->path_env && prefix_path(so->path_env, so->path_dir))
		goto fail;
	if (cred->drop &&
	    (setgroups(cred->ngroups, cred->groups) || setgid(cred->gid) || setuid(cred->uid)))
		goto fail;
	execvp(argv[0], argv);
fail:
	err = errno;
	if (write(err_fd, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

int mp_child__spawn(struct mp_child *c, char *const argv[], const struct mp_spawn_opts *so)
{
	int go[2], ep[2];

	if (pipe2(go, O_CLOEXEC))
		return -errno;
	if (pipe2(ep, O_CLOEXEC)) {
		int err = -errno;

		close(go[0]);
		close(go[1]);
		return err;
	}
	c->pid = fork();
	if (c->pid < 0) {
		int err = -errno;

		close(go[0]);
		close(go[1]);
		close(ep[0]);
		close(ep[1]);
		return err;
	}
	if (c->pid == 0) {
		close(go[1]);
		close(ep[0]);
		child_main(go[0], ep[1], argv, so);
	}
	close(go[0]);
	close(ep[1]);
	c->go_fd = go[1];
	c->err_fd = ep[0];
	return 0;
}

int mp_child__release(struct mp_child *c, const char *env)
{
	int child_err = 0;
	ssize_t n;

	if (env) {
		size_t len = strlen(env);

		/* a pipe takes this much at once: the child reads it all before EOF */
		if (len >= 255 || write(c->go_fd, env, len) != (ssize_t)len)
			return -EINVAL;
	}
	close(c->go_fd);
	c->go_fd = -1;
	do
		n = read(c->err_fd, &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(c->err_fd);
	c->err_fd = -1;
	if (n == sizeof(child_err))
		return -child_err;
	return 0;
}

int mp_capture(char *const argv[], const struct mp_cred *cred, char *out, size_t size,
	       int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	size_t len = 0;
	int p[2], st, err = 0;
	pid_t pid;

	if (!size)
		return -EINVAL;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (nul < 0 || dup2(nul, 0) < 0 || dup2(p[1], 1) < 0)
			_exit(127);
		if (cred->drop &&
		    (setgroups(cred->ngroups, cred->groups) || setgid(cred->gid) || setuid(cred->uid)))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t n;
		int r;

		if (now >= deadline) {
			err = -ETIMEDOUT;
			break;
		}
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			continue;
		n = read(p[0], out + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == size - 1)
			break;
	}
	close(p[0]);
	out[len] = 0;
	if (err)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err ? err : -errno;
	if (!err && (!WIFEXITED(st) || WEXITSTATUS(st)))
		err = -ECHILD;
	return err;
}
