#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procinfo.h"

/* Read all of /proc/@pid/@what (at most @size - 1 bytes). Returns the length or -errno. */
static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t size)
{
	char path[64];
	ssize_t n, len = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((size_t)len < size - 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			len = errno == ESRCH ? -ESRCH : -errno;
			break;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	if (len >= 0)
		buf[len] = 0;
	return len;
}

int mp_proc_comm(pid_t pid, char *out, size_t size)
{
	char buf[64];
	ssize_t n = read_proc(pid, "comm", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	snprintf(out, size, "%s", buf);
	return 0;
}

int mp_proc_argv(pid_t pid, char ***argv, int *argc)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL, **v, path[64];
	int fd, n = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	for (;;) {
		char *nb;
		ssize_t r;

		if (len + 1 >= cap || !buf) {
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno == ESRCH ? -ESRCH : -errno;

			free(buf);
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (len && buf[len - 1] != 0)
		buf[len++] = 0; /* a process that rewrote its arguments */
	for (size_t i = 0; i < len; i++)
		n += buf[i] == 0;
	/* one block: the pointers, then the strings */
	v = malloc((n + 1) * sizeof(*v) + len + 1);
	if (!v) {
		free(buf);
		return -ENOMEM;
	}
	memcpy((char *)(v + n + 1), buf, len);
	free(buf);
	{
		char *p = (char *)(v + n + 1);

		for (int i = 0; i < n; i++) {
			v[i] = p;
			p += strlen(p) + 1;
		}
	}
	v[n] = NULL;
	*argv = v;
	*argc = n;
	return 0;
}

int mp_proc_uids(pid_t pid, uid_t *real, uid_t *effective)
{
	char buf[4096], *p;
	ssize_t n = read_proc(pid, "status", buf, sizeof(buf));
	unsigned long r, e;

	if (n < 0)
		return (int)n;
	p = strstr(buf, "\nUid:");
	if (!p || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -EPROTO;
	*real = (uid_t)r;
	*effective = (uid_t)e;
	return 0;
}

static const char *base_of(const char *s)
{
	const char *slash = strrchr(s, '/');

	return slash ? slash + 1 : s;
}

int mp_proc_find_by_name(const char *needle, pid_t self, pid_t *out)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	long best = -1;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char comm[64], arg0[4096];
		long pid;
		char *end;
		ssize_t n;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid == self || (best >= 0 && pid >= best))
			continue;
		if (mp_proc_comm((pid_t)pid, comm, sizeof(comm)))
			continue; /* gone meanwhile */
		if (strstr(comm, needle)) {
			best = pid;
			continue;
		}
		n = read_proc((pid_t)pid, "cmdline", arg0, sizeof(arg0));
		if (n > 0 && strstr(base_of(arg0), needle))
			best = pid;
	}
	closedir(d);
	if (best < 0)
		return -ESRCH;
	*out = (pid_t)best;
	return 0;
}

int mp_proc_each_descendant(pid_t pid, int (*fn)(void *ctx, pid_t pid), void *ctx)
{
	pid_t *q = malloc(64 * sizeof(*q));
	size_t n = 0, cap = 64, head = 0;
	int err = 0;

	if (!q)
		return -ENOMEM;
	q[n++] = pid;
	while (head < n && !err) {
		char path[64];
		struct dirent *de;
		pid_t cur = q[head++];
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)cur);
		d = opendir(path);
		if (!d)
			continue; /* exited meanwhile */
		while (!err && (de = readdir(d))) {
			char cpath[300];
			FILE *f;
			int child;

			if (de->d_name[0] == '.')
				continue;
			snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)cur,
				 de->d_name);
			f = fopen(cpath, "re");
			if (!f)
				continue;
			while (!err && fscanf(f, "%d", &child) == 1) {
				if (n == cap) {
					pid_t *nq = realloc(q, 2 * cap * sizeof(*q));

					if (!nq) {
						err = -ENOMEM;
						break;
					}
					q = nq;
					cap *= 2;
				}
				q[n++] = child;
				err = fn(ctx, child);
			}
			fclose(f);
		}
		closedir(d);
	}
	free(q);
	return err;
}

int mp_proc_cgroup(pid_t pid, char *out, size_t size)
{
	char buf[4096], *line;
	ssize_t n = read_proc(pid, "cgroup", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	/* cgroup v2 is the "0::<path>" line */
	for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (!strncmp(line, "0::", 3)) {
			char *nl = strchr(line, '\n');

			if (nl)
				*nl = 0;
			snprintf(out, size, "%s", line + 3);
			return 0;
		}
	}
	return -ENOENT;
}

int mp_cgroup2_root(char *out, size_t size)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	/* "id parent maj:min root mountpoint options [optional...] - fstype source superopts" */
	while (err && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - "), mnt[4096];

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			snprintf(out, size, "%s", mnt);
			err = 0;
		}
	}
	fclose(f);
	return err;
}
