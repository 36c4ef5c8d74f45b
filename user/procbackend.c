/*
 * The /proc polling backend: what memory_profiler does, for when BPF cannot be used. Each tick
 * reads the root's RSS (or, for memory_profiler's psutil_pss and psutil_uss, its PSS or USS from
 * /proc/PID/smaps_rollup) and, for -C/-M, walks its descendants through /proc/PID/task/TID/children.
 * Peaks between two ticks are not seen; mprof says so when it falls back to this backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "procwalk.h"

struct pbackend {
	struct mp_backend base;
	struct mp_backend_opts opts;
	struct root *roots;
	size_t nroots;
	struct mp_pidlist pids; /* scratch: the trees of the current refresh */
	struct mp_view *kids; /* descendants as read at the last refresh */
	size_t nkids, capkids;
};

/* A root and what its tree measured at the last refresh. */
struct root {
	pid_t pid;
	unsigned int group;
	int gone;
	uint64_t self;	/* bytes: the root alone */
	uint64_t sum;	/* bytes: the root and its descendants */
	uint64_t self_peak, sum_peak;
	double self_peak_t, sum_peak_t;
};

static int kid_push(struct pbackend *p, pid_t pid, pid_t root, unsigned int group,
		    uint64_t rss, double now)
{
	struct mp_view *v;

	if (p->nkids == p->capkids) {
		size_t ncap = p->capkids ? p->capkids * 2 : 64;
		struct mp_view *nk = realloc(p->kids, ncap * sizeof(*nk));

		if (!nk)
			return -ENOMEM;
		p->kids = nk;
		p->capkids = ncap;
	}
	v = &p->kids[p->nkids++];
	memset(v, 0, sizeof(*v));
	v->pid = pid;
	v->ppid = root; /* the tree's root: /proc does not say more without another read */
	v->group = group;
	v->started = 1;
	v->rss = v->peak = rss;
	v->peak_t = now;
	return 0;
}

static int p_track(struct mp_backend *b, pid_t pid, unsigned int group, enum mp_track_mode mode)
{
	struct pbackend *p = (struct pbackend *)b;
	struct root *nr;

	(void)mode; /* the loop lets a spawned command run only once it has exec'd */
	nr = realloc(p->roots, (p->nroots + 1) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	p->roots = nr;
	memset(&p->roots[p->nroots], 0, sizeof(*nr));
	p->roots[p->nroots].pid = pid;
	p->roots[p->nroots].group = group;
	p->nroots++;
	return 0; /* descendants are found by walking /proc at each refresh */
}

static int p_fd(struct mp_backend *b)
{
	(void)b;
	return -1;
}

static int p_consume(struct mp_backend *b, mp_event_fn fn, void *ctx)
{
	(void)b;
	(void)fn;
	(void)ctx;
	return 0; /* no events: every value is read at a refresh */
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
	*out = mp_smaps_sum(buf, metric == MP_METRIC_PSS);
cleanup:
	free(buf);
	close(fd);
	return err;
}

/* RSS (or PSS, USS) of @pid in bytes; 0 with *gone set when it has exited. */
static uint64_t rss_of(const struct pbackend *p, pid_t pid, int *gone)
{
	uint64_t m[3], v;
	int err;

	if (p->opts.metric != MP_METRIC_RSS) {
		err = mp_proc_smaps(pid, p->opts.metric, &v);
		*gone = err == -ESRCH;
		return err ? 0 : v;
	}
	err = mp_proc_rss(pid, m);
	*gone = err == -ESRCH;
	if (err)
		return 0;
	return m[0] + m[1] + m[2];
}

static void raise_peak(uint64_t v, double now, uint64_t *peak, double *peak_t)
{
	if (v > *peak || *peak_t == 0) {
		*peak = v;
		*peak_t = now;
	}
}

static int p_refresh(struct mp_backend *b)
{
	struct pbackend *p = (struct pbackend *)b;
	double now = mp_clock__now_epoch();
	int err = 0;

	p->nkids = 0;
	for (size_t r = 0; r < p->nroots && !err; r++) {
		struct root *rt = &p->roots[r];

		rt->self = rss_of(p, rt->pid, &rt->gone);
		rt->sum = rt->self;
		if (rt->gone)
			continue;
		if (p->opts.descendants) {
			p->pids.n = 0;
			err = mp_proc_add_descendants(&p->pids, rt->pid);
			for (size_t i = 0; i < p->pids.n && !err; i++) {
				int gone;
				uint64_t v = rss_of(p, p->pids.v[i], &gone);

				if (gone)
					continue;
				rt->sum += v;
				err = kid_push(p, p->pids.v[i], rt->pid, rt->group, v, now);
			}
		}
		raise_peak(rt->self, now, &rt->self_peak, &rt->self_peak_t);
		raise_peak(rt->sum, now, &rt->sum_peak, &rt->sum_peak_t);
	}
	return err;
}

static void root_view(const struct root *rt, struct mp_view *out)
{
	memset(out, 0, sizeof(*out));
	out->pid = rt->pid;
	out->group = rt->group;
	out->started = 1;
	out->rss = rt->self;
	out->peak = rt->self_peak;
	out->peak_t = rt->self_peak_t;
}

static int p_proc(struct mp_backend *b, pid_t pid, struct mp_view *out)
{
	struct pbackend *p = (struct pbackend *)b;

	for (size_t r = 0; r < p->nroots; r++) {
		if (p->roots[r].pid != pid)
			continue;
		if (p->roots[r].gone)
			return -ESRCH;
		root_view(&p->roots[r], out);
		return 0;
	}
	for (size_t i = 0; i < p->nkids; i++) {
		if (p->kids[i].pid == pid) {
			*out = p->kids[i];
			return 0;
		}
	}
	return -ESRCH;
}

static int p_group(struct mp_backend *b, unsigned int group, struct mp_view *out)
{
	struct pbackend *p = (struct pbackend *)b;

	memset(out, 0, sizeof(*out));
	out->group = group;
	out->started = 1;
	for (size_t r = 0; r < p->nroots; r++) {
		const struct root *rt = &p->roots[r];

		if (rt->group != group)
			continue;
		out->rss += rt->sum;
		raise_peak(rt->sum_peak, rt->sum_peak_t, &out->peak, &out->peak_t);
	}
	return 0;
}

static int p_each(struct mp_backend *b, unsigned int group, mp_view_fn fn, void *ctx)
{
	struct pbackend *p = (struct pbackend *)b;
	struct mp_view v;
	int err;

	for (size_t r = 0; r < p->nroots; r++) {
		if (p->roots[r].group != group || p->roots[r].gone)
			continue;
		root_view(&p->roots[r], &v);
		err = fn(ctx, &v);
		if (err)
			return err;
	}
	for (size_t i = 0; i < p->nkids; i++) {
		if (p->kids[i].group != group)
			continue;
		err = fn(ctx, &p->kids[i]);
		if (err)
			return err;
	}
	return 0;
}

static int p_settle(struct mp_backend *b)
{
	(void)b;
	return 0; /* /proc's values are what this backend has */
}

static int p_window(struct mp_backend *b)
{
	(void)b;
	return 0; /* no maxima between readings */
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
	free(p->roots);
	mp_pidlist__release(&p->pids);
	free(p->kids);
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
	p->base.fd = p_fd;
	p->base.consume = p_consume;
	p->base.refresh = p_refresh;
	p->base.proc = p_proc;
	p->base.group = p_group;
	p->base.each = p_each;
	p->base.stats = p_stats;
	p->base.settle = p_settle;
	p->base.window = p_window;
	p->base.free = p_free;
	*out = &p->base;
	return 0;
}
