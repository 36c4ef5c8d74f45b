/*
 * The /proc polling backend: what memory_profiler does, for when BPF cannot be used. Each tick
 * reads the root's RSS (or, for memory_profiler's psutil_pss and psutil_uss, its PSS or USS from
 * /proc/PID/smaps_rollup) and, for -C/-M, walks its descendants through
 * /proc/PID/task/TID/children. Peaks between two ticks are not seen; mprof says so when it falls
 * back to this backend.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

struct pbackend {
	struct mp_backend base;
	struct mp_backend_opts opts;
	pid_t *pids; /* scratch: the tree of the current tick */
	size_t npids, cappids;
};

static int add_pid(struct pbackend *p, pid_t pid)
{
	if (p->npids == p->cappids) {
		size_t ncap = p->cappids ? p->cappids * 2 : 64;
		pid_t *np = realloc(p->pids, ncap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		p->pids = np;
		p->cappids = ncap;
	}
	p->pids[p->npids++] = pid;
	return 0;
}

/* Append the children of every thread of @pid. Processes that vanish meanwhile are skipped. */
static int add_children(struct pbackend *p, pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!err && (de = readdir(d))) {
		char cpath[300];
		FILE *f;
		int child;

		if (de->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		f = fopen(cpath, "re");
		if (!f)
			continue;
		while (!err && fscanf(f, "%d", &child) == 1)
			err = add_pid(p, child);
		fclose(f);
	}
	closedir(d);
	return err;
}

static int p_track(struct mp_backend *b, pid_t pid, unsigned int group)
{
	(void)b;
	(void)pid;
	(void)group;
	return 0; /* descendants are found by walking /proc at each tick */
}

static int p_wait(struct mp_backend *b, int timeout_ms, struct mp_recorder *rec)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };

	(void)b;
	(void)rec;
	if (timeout_ms > 0)
		nanosleep(&ts, NULL); /* a signal cuts it short, which is what the caller wants */
	return 0;
}

/* Add up the "Pss:" lines, or psutil's USS: every "Private_*:" line (kB). */
static uint64_t smaps_sum(const char *p, enum mp_proc_metric metric)
{
	uint64_t total = 0;

	while (*p) {
		const char *eol = strchr(p, '\n');
		int want = metric == MP_METRIC_PSS ? !strncmp(p, "Pss:", 4) : !strncmp(p, "Private_", 8);

		if (want) {
			const char *v = strchr(p, ':');
			uint64_t kb = 0;

			for (v = v ? v + 1 : p; *v == ' ' || *v == '\t'; v++)
				;
			for (; *v >= '0' && *v <= '9'; v++)
				kb = kb * 10 + (uint64_t)(*v - '0');
			total += kb * 1024;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return total;
}

int mp_proc_smaps(pid_t pid, enum mp_proc_metric metric, uint64_t *out)
{
	char path[64], *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* Linux < 4.14 has no rollup (a gone process has neither) */
		snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *nb = realloc(buf, ncap);

			if (!nb) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno == ESRCH ? -ESRCH : -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = smaps_sum(buf, metric);
cleanup:
	free(buf);
	close(fd);
	return err;
}

static uint64_t mem_of(const struct pbackend *p, pid_t pid)
{
	uint64_t m[3], v;

	if (p->opts.metric != MP_METRIC_RSS)
		return mp_proc_smaps(pid, p->opts.metric, &v) ? 0 : v;
	if (mp_proc_rss(pid, m))
		return 0;
	return m[0] + m[1] + m[2];
}

static int p_tick(struct mp_backend *b, pid_t root, unsigned int group, struct mp_recorder *rec)
{
	struct pbackend *p = (struct pbackend *)b;
	double now = mp_clock__now_epoch();
	uint64_t total;
	int err = 0;

	(void)group;
	total = mem_of(p, root);
	if (p->opts.include_children || p->opts.multiprocess) {
		p->npids = 0;
		err = add_children(p, root);
		/* breadth-first: the list grows while we walk it */
		for (size_t i = 0; i < p->npids && !err; i++)
			err = add_children(p, p->pids[i]);
		for (size_t i = 0; i < p->npids && !err; i++) {
			uint64_t v = mem_of(p, p->pids[i]);

			if (p->opts.include_children)
				total += v;
			if (p->opts.multiprocess)
				err = mp_recorder__chld(rec, p->pids[i], now, v);
		}
	}
	if (!err)
		err = mp_recorder__mem(rec, now, total);
	return err;
}

static int p_finish(struct mp_backend *b, pid_t root, unsigned int group,
		    struct mp_recorder *rec)
{
	(void)b;
	(void)root;
	(void)group;
	(void)rec;
	return 0; /* every value it knows was written at its tick */
}

static void p_stats(struct mp_backend *b, struct mp_backend_stats *out)
{
	(void)b;
	memset(out, 0, sizeof(*out));
}

static void p_free(struct mp_backend *b)
{
	struct pbackend *p = (struct pbackend *)b;

	if (!p)
		return;
	free(p->pids);
	free(p);
}

int mp_backend_proc__new(struct mp_backend **out, const struct mp_backend_opts *opts)
{
	struct pbackend *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->opts = *opts;
	p->base.name = "proc";
	p->base.method = opts->metric == MP_METRIC_RSS ? "/proc polling"
			 : opts->metric == MP_METRIC_PSS ? "/proc/PID/smaps_rollup polling (PSS)"
							  : "/proc/PID/smaps_rollup polling (USS)";
	p->base.track = p_track;
	p->base.wait = p_wait;
	p->base.tick = p_tick;
	p->base.finish = p_finish;
	p->base.stats = p_stats;
	p->base.free = p_free;
	*out = &p->base;
	return 0;
}
