/* funcpipe.c - see funcpipe.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "funcpipe.h"
#include "rss.h"

_Static_assert(sizeof(struct mp_func_shared) < 512, "one atomic pipe write (PIPE_BUF >= 512)");

static int pipe_fd = -1;
static pid_t owner; /* the process that got the pipe; a forked child is another one */
static char why[160];

static void drop_in_child(void)
{
	if (pipe_fd >= 0)
		close(pipe_fd);
	pipe_fd = -1;
}

int funcpipe_init(void)
{
	const char *env = getenv(MP_FUNC_ENV);
	char *end = NULL;
	struct stat st;
	long fd;
	int fl;

	why[0] = 0;
	if (pipe_fd >= 0)
		return 1;
	if (!env)
		return 0;
	errno = 0;
	fd = strtol(env, &end, 10);
	if (errno || end == env || *end || fd < 0 || fd > 1 << 20) {
		snprintf(why, sizeof(why), "%s='%.40s' is not an fd number", MP_FUNC_ENV, env);
		goto out;
	}
	if (fstat((int)fd, &st) || !S_ISFIFO(st.st_mode) || (fl = fcntl((int)fd, F_GETFL)) < 0 ||
	    (fl & O_ACCMODE) != O_WRONLY) {
		snprintf(why, sizeof(why), "%s=%ld is not a pipe open for writing", MP_FUNC_ENV, fd);
		goto out;
	}
	if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) || pthread_atfork(NULL, NULL, drop_in_child)) {
		snprintf(why, sizeof(why), "%s=%ld: %s", MP_FUNC_ENV, fd, strerror(errno));
		goto out;
	}
	pipe_fd = (int)fd;
	owner = getpid();
out:
	unsetenv(MP_FUNC_ENV);
	return pipe_fd >= 0;
}

const char *funcpipe_why(void)
{
	return why;
}

int funcpipe_active(void)
{
	return pipe_fd >= 0;
}

/* Copy at most n - 1 bytes of @src, never ending inside a UTF-8 sequence. */
static void copy_name(char *dst, const char *src, size_t n)
{
	size_t len = strnlen(src, n - 1);

	if (len == n - 1)
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--; /* src[len] continues a sequence: cut before its start */
	memcpy(dst, src, len);
	dst[len] = 0;
}

void funcpipe_write(uint64_t id, int phase, const char *name)
{
	struct mp_func_shared r;
	struct timespec ts;
	ssize_t n;

	if (pipe_fd < 0)
		return;
	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r.kind = MP_FUNC_KIND;
	r.tgid = (uint32_t)owner;
	r.tid = (uint32_t)syscall(SYS_gettid);
	r.phase = phase ? 1 : 0;
	r.ts_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	r.pages = rss_now() / (rss_g.page_size ? rss_g.page_size : 4096);
	r.id = id;
	copy_name(r.name, name ? name : "", sizeof(r.name));
	do
		n = write(pipe_fd, &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(r)) {
		/* the loader is gone (EPIPE: Python ignores SIGPIPE): stop, never block the program */
		close(pipe_fd);
		pipe_fd = -1;
	}
}
