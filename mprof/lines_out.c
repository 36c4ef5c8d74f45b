#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lines.h"
#include "lines_out.h"
#include "mprof.h"
#include "pprof.h"
#include "sources.h"

#define MIB 1048576.0
/* A command that just exec'd: try every millisecond, for at most this long. */
#define RETRY_NS 1000000L
#define RETRY_FOR_S 10.0
/* A layout check that fails while it starts: its state may be half set up; not for long. */
#define RETRY_PROTO_S 2.0

/* A process not attributed yet. */
struct pending {
	pid_t pid;
	double since;	 /* when the tries started */
	bool polling;	 /* tried every millisecond (its interpreter is starting) */
	const char *why; /* the last refusal: said at the end if it never became readable */
};

/* One target's window: its RSS when attribution started. */
struct window {
	pid_t pid;
	uint64_t rss_start;
	double since; /* epoch seconds of the attach */
};

/* Fleet: refusals are counted by reason, said once at the end. */
#define MAX_REASONS 8

struct reason {
	const char *why;
	unsigned long n;
};

struct rec_lines {
	const struct rec_opts *o;
	bool fleet;
	struct reason reasons[MAX_REASONS];
	const struct mp_cred *cred;
	struct mp_backend *be;
	struct mp_lines *l;
	struct mp_sink sink;
	struct mp_source retry, wake;
	int tfd;
	bool armed;
	struct pending *pend;
	size_t npend;
	struct window *win;
	size_t nwin;
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int arm(struct rec_lines *rl, bool on)
{
	struct itimerspec it = { 0 };

	if (on == rl->armed)
		return 0;
	if (on) {
		it.it_value.tv_nsec = RETRY_NS;
		it.it_interval.tv_nsec = RETRY_NS;
	}
	if (timerfd_settime(rl->tfd, 0, &it, NULL))
		return -errno;
	rl->armed = on;
	return 0;
}

static int window_add(struct rec_lines *rl, pid_t pid)
{
	struct window *nw = realloc(rl->win, (rl->nwin + 1) * sizeof(*nw));
	struct mp_view v;

	if (!nw)
		return -ENOMEM;
	rl->win = nw;
	nw[rl->nwin].pid = pid;
	nw[rl->nwin].since = mp_clock__now_epoch();
	nw[rl->nwin].rss_start = rl->be->proc(rl->be, pid, &v) ? 0 : v.rss;
	rl->nwin++;
	return 0;
}

static void count_reason(struct rec_lines *rl, const char *why)
{
	for (int i = 0; i < MAX_REASONS; i++) {
		if (!rl->reasons[i].why)
			rl->reasons[i].why = why;
		if (rl->reasons[i].why == why || !strcmp(rl->reasons[i].why, why)) {
			rl->reasons[i].n++;
			return;
		}
	}
	rl->reasons[MAX_REASONS - 1].n++; /* "other reasons" */
}

/*
 * One try for @p. Returns 1 when done with it (attached, refused for good, or gone), 0 to keep
 * it (polling, or waiting for another exec), or -errno.
 */
static int try_attach(struct rec_lines *rl, struct pending *p, bool starting)
{
	const char *why = NULL;
	int err = mp_lines__attach(rl->l, rl->be, p->pid, &why);

	if (!err) {
		err = window_add(rl, p->pid);
		return err ? err : 1;
	}
	if (err == -ENOMEM)
		return err;
	if (err == -ESRCH)
		return 1; /* gone before its interpreter was up: nothing to attribute */
	p->why = why ? why : "cannot read the process";
	if (starting && err == -EAGAIN && mono_s() - p->since < RETRY_FOR_S)
		return 0;
	if (starting && err == -EPROTO && mono_s() - p->since < RETRY_PROTO_S)
		return 0;
	if ((starting || rl->fleet) && err == -ENOEXEC) {
		/* a launcher (a shell, pyenv's shim) may exec the interpreter next: wait for it */
		p->polling = false;
		return 0;
	}
	if (err == -EAGAIN)
		p->why = "python did not finish starting";
	if (rl->fleet)
		count_reason(rl, p->why);
	else
		p_info("--lines: process %d: %s: recording its RSS only", (int)p->pid, p->why);
	return 1;
}

static bool any_polling(const struct rec_lines *rl)
{
	for (size_t i = 0; i < rl->npend; i++)
		if (rl->pend[i].polling)
			return true;
	return false;
}

int rec_lines__target(struct rec_lines *rl, pid_t pid, int starting)
{
	struct pending p = { .pid = pid, .since = mono_s(), .polling = true }, *np;
	int r = try_attach(rl, &p, starting);

	if (r)
		return r < 0 ? r : 0;
	np = realloc(rl->pend, (rl->npend + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	rl->pend = np;
	np[rl->npend++] = p;
	return arm(rl, any_polling(rl));
}

static int retry_ready(struct mp_source *s)
{
	struct rec_lines *rl = (struct rec_lines *)((char *)s - offsetof(struct rec_lines, retry));
	uint64_t n;
	size_t k = 0;

	if (read(rl->tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return -errno;
	for (size_t i = 0; i < rl->npend; i++) {
		int r = rl->pend[i].polling ? try_attach(rl, &rl->pend[i], true) : 0;

		if (r < 0)
			return r;
		if (!r)
			rl->pend[k++] = rl->pend[i];
	}
	rl->npend = k;
	return arm(rl, any_polling(rl));
}

/*
 * Process @pid exec'd: one waiting for an exec (a launcher) is tried again as starting; one
 * attributed is read again, as the new program it is (another interpreter, or none); in a
 * fleet, any process (it joined, or became Python).
 */
static const struct window *window_of(const struct rec_lines *rl, pid_t pid);

static int on_exec(struct rec_lines *rl, pid_t pid, double t)
{
	const struct window *w = window_of(rl, pid);

	for (size_t i = 0; i < rl->npend; i++) {
		if (rl->pend[i].pid != pid)
			continue;
		rl->pend[i].polling = true;
		rl->pend[i].since = mono_s();
		return arm(rl, true);
	}
	if (mp_lines__has(rl->l, pid)) {
		if (w && t <= w->since)
			return 0; /* the exec it was attached after (a command mprof started) */
		mp_lines__exec(rl->l, pid);
		return rec_lines__target(rl, pid, 1);
	}
	return rl->fleet ? rec_lines__target(rl, pid, 1) : 0;
}

static int wake_ready(struct mp_source *s)
{
	struct rec_lines *rl = (struct rec_lines *)((char *)s - offsetof(struct rec_lines, wake));

	return mp_lines__wake(rl->l, rl->be);
}

static int sink_event(struct mp_sink *s, const struct mp_sample *ev)
{
	struct rec_lines *rl = (struct rec_lines *)((char *)s - offsetof(struct rec_lines, sink));

	/* the counts are in the kernel's table, read at ticks; an exit releases what is left */
	if (ev->kind == MP_EV_EXIT && mp_lines__attached(rl->l))
		return mp_lines__exited(rl->l, rl->be, ev->pid, ev->bytes);
	if (ev->kind == MP_EV_EXEC || (ev->kind == MP_EV_JOIN && rl->fleet))
		return on_exec(rl, ev->pid, ev->t);
	return 0;
}

static int sink_tick(struct mp_sink *s, struct mp_backend *be, double now)
{
	struct rec_lines *rl = (struct rec_lines *)((char *)s - offsetof(struct rec_lines, sink));

	(void)now;
	return mp_lines__attached(rl->l) ? mp_lines__collect(rl->l, be) : 0;
}

static int sink_finish(struct mp_sink *s, struct mp_backend *be)
{
	struct rec_lines *rl = (struct rec_lines *)((char *)s - offsetof(struct rec_lines, sink));

	return mp_lines__attached(rl->l) ? mp_lines__collect(rl->l, be) : 0;
}

/*
 * Can the user write @path (its folder, as the effective ids: the invoking user under sudo)?
 * Checked before the recording, so that a long run does not end in an error. 0 or -errno.
 */
static int writable(const char *path, const struct mp_cred *cred)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int err, err2;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	err = mp_cred__enter(cred);
	if (err)
		return err;
	err = faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) ? -errno : 0;
	if (!err && !faccessat(AT_FDCWD, path, F_OK, AT_EACCESS) &&
	    faccessat(AT_FDCWD, path, W_OK, AT_EACCESS))
		err = -errno; /* there, and not ours to write */
	err2 = mp_cred__leave(cred);
	return err ? err : err2;
}

int rec_lines__new(struct rec_lines **out, const struct rec_opts *o, struct mp_backend *be,
		   const struct mp_cred *cred, bool fleet)
{
	const char *files[] = { o->stacks, o->speedscope, o->pprof };
	struct rec_lines *rl;
	int err;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i] && (err = writable(files[i], cred))) {
			p_err("cannot write '%s': %s", files[i], strerror(-err));
			return err;
		}
	}
	rl = calloc(1, sizeof(*rl));
	if (!rl) {
		p_err("out of memory");
		return -ENOMEM;
	}
	rl->o = o;
	rl->fleet = fleet;
	rl->cred = cred;
	rl->be = be;
	rl->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (rl->tfd < 0) {
		err = -errno;
		p_err("cannot set up --lines: %s", strerror(-err));
		free(rl);
		return err;
	}
	err = mp_lines__new(&rl->l);
	if (err) {
		p_err("out of memory");
		close(rl->tfd);
		free(rl);
		return err;
	}
	rl->sink.event = sink_event;
	rl->sink.tick = sink_tick;
	rl->sink.finish = sink_finish;
	rl->retry.fd = rl->tfd;
	rl->retry.ready = retry_ready;
	rl->wake.fd = be->lines_fd ? be->lines_fd(be) : -1;
	rl->wake.ready = wake_ready;
	*out = rl;
	return 0;
}

void rec_lines__free(struct rec_lines *rl)
{
	if (!rl)
		return;
	mp_lines__free(rl->l);
	close(rl->tfd);
	free(rl->pend);
	free(rl->win);
	free(rl);
}

struct mp_sink *rec_lines__sink(struct rec_lines *rl)
{
	return &rl->sink;
}

void rec_lines__sources(struct rec_lines *rl, struct mp_source **srcs, size_t *n)
{
	srcs[(*n)++] = &rl->retry;
	if (rl->wake.fd >= 0)
		srcs[(*n)++] = &rl->wake;
}

/* ---- the tables ----------------------------------------------------------------------- */

struct rows {
	struct mp_line_row *r;
	char **paths; /* copies of abs_file, which lives only during the walk */
	size_t n, cap;
};

static int row_keep(void *ctx, const struct mp_line_row *r)
{
	struct rows *rs = ctx;

	if (rs->n == rs->cap) {
		size_t ncap = rs->cap ? rs->cap * 2 : 64;
		struct mp_line_row *nr = realloc(rs->r, ncap * sizeof(*nr));
		char **np;

		if (!nr)
			return -ENOMEM;
		rs->r = nr;
		np = realloc(rs->paths, ncap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		rs->paths = np;
		rs->cap = ncap;
	}
	rs->r[rs->n] = *r;
	rs->paths[rs->n] = r->abs_file ? strdup(r->abs_file) : NULL;
	if (r->abs_file && !rs->paths[rs->n])
		return -ENOMEM;
	rs->r[rs->n].abs_file = rs->paths[rs->n];
	rs->n++;
	return 0;
}

static uint64_t weight(const struct mp_line_row *r)
{
	return r->grown + r->freed;
}

/* Heaviest first; ties by pid, file, line so the order is stable. */
static int by_weight(const void *a, const void *b)
{
	const struct mp_line_row *x = a, *y = b;

	if (weight(x) != weight(y))
		return weight(x) < weight(y) ? 1 : -1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->file != y->file)
		return strcmp(x->file ? x->file : "", y->file ? y->file : "");
	return x->line - y->line;
}

/* Line @n of @path into @buf (blanks for tabs), "" when it is not there to read. */
static void source_line(struct mp_sources *src, const char *path, int n, char *buf, size_t size)
{
	const char *text;
	size_t len;

	buf[0] = 0;
	if (!src || !path || mp_sources__line(src, path, n, &text, &len))
		return;
	if (len >= size)
		len = size - 1;
	memcpy(buf, text, len);
	buf[len] = 0;
	for (char *c = buf; *c; c++)
		if (*c == '\t' || *c == '\r')
			*c = ' ';
}

static void print_header(void)
{
	printf("Line #    Increment        Grown        Freed   Occurrences   Line Contents\n");
	printf("================================================================================"
	       "\n");
}

static void print_row(struct mp_sources *sources, const struct mp_line_row *r, const char *label)
{
	char src[512] = "";

	if (r->kind == MP_LINE_PY && !label)
		source_line(sources, r->abs_file, r->line, src, sizeof(src));
	char num[16] = "";

	if (r->kind == MP_LINE_PY)
		snprintf(num, sizeof(num), "%d", r->line);
	printf("%6s %9.3f MiB %8.3f MiB %8.3f MiB %13llu   %s\n", num,
	       ((double)r->grown - (double)r->freed) / MIB, r->grown / MIB, r->freed / MIB,
	       (unsigned long long)r->events, label ? label : src);
}

static const struct window *window_of(const struct rec_lines *rl, pid_t pid)
{
	for (size_t i = rl->nwin; i-- > 0;)
		if (rl->win[i].pid == pid)
			return &rl->win[i];
	return NULL;
}

/* The tables of process @pid: one per (file, function), heaviest first, then the other rows. */
static void print_process(const struct rec_lines *rl, struct mp_sources *sources,
			  struct mp_line_row *r, size_t n, pid_t pid)
{
	uint64_t grown = 0, freed = 0, hid_g = 0, hid_f = 0, hid_e = 0, hid_n = 0, shown = 0;
	bool *done = calloc(n ? n : 1, sizeof(*done));
	const struct window *w = window_of(rl, pid);
	struct mp_view v;
	uint64_t rss_end;

	if (!done)
		return;
	for (size_t i = 0; i < n; i++) {
		if (r[i].pid != pid)
			continue;
		grown += r[i].grown;
		freed += r[i].freed;
		if (r[i].kind != MP_LINE_PY)
			continue;
		if (rl->o->top && shown >= rl->o->top) {
			hid_g += r[i].grown;
			hid_f += r[i].freed;
			hid_e += r[i].events;
			hid_n++;
			done[i] = true;
			continue;
		}
		shown++;
	}
	/* a group is printed where its heaviest row comes (rows are sorted) */
	for (size_t i = 0; i < n; i++) {
		if (r[i].pid != pid || r[i].kind != MP_LINE_PY || done[i])
			continue;
		printf("\nFilename: %s\nFunction: %s (pid %d)\n\n", r[i].file, r[i].func, (int)pid);
		print_header();
		for (size_t j = i; j < n; j++) {
			if (done[j] || r[j].pid != pid || r[j].kind != MP_LINE_PY ||
			    r[j].file != r[i].file || r[j].func != r[i].func)
				continue;
			print_row(sources, &r[j], NULL);
			done[j] = true;
		}
	}
	printf("\nOutside Python lines (pid %d)\n\n", (int)pid);
	print_header();
	for (size_t i = 0; i < n; i++)
		if (r[i].pid == pid && r[i].kind != MP_LINE_PY)
			print_row(sources, &r[i], mp_lines__kind_name(r[i].kind));
	if (hid_n) {
		struct mp_line_row h = { .kind = MP_LINE_NOFRAME, .grown = hid_g, .freed = hid_f,
					 .events = hid_e };
		char label[64];

		snprintf(label, sizeof(label), "<%llu lighter lines, --top %u>",
			 (unsigned long long)hid_n, rl->o->top);
		print_row(sources, &h, label);
	}
	rss_end = rl->be->proc(rl->be, pid, &v) ? 0 : v.rss;
	printf("\nTotal (pid %d): grown %.3f MiB, freed %.3f MiB, net %+.3f MiB", (int)pid,
	       grown / MIB, freed / MIB, ((double)grown - (double)freed) / MIB);
	if (w)
		printf("; RSS %.3f -> %.3f MiB (%+.3f MiB) over the window", w->rss_start / MIB,
		       rss_end / MIB, ((double)rss_end - (double)w->rss_start) / MIB);
	printf("\n");
	free(done);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static void print_tables(const struct rec_lines *rl, struct rows *rs)
{
	pid_t *pids = malloc((rs->n ? rs->n : 1) * sizeof(*pids));
	struct mp_sources *sources = NULL;
	size_t np = 0;

	if (!pids)
		return;
	if (mp_sources__new(&sources, NULL))
		sources = NULL; /* no Line Contents then */
	qsort(rs->r, rs->n, sizeof(*rs->r), by_weight);
	for (size_t i = 0; i < rs->n; i++) {
		size_t k;

		for (k = 0; k < np && pids[k] != rs->r[i].pid; k++)
			;
		if (k == np)
			pids[np++] = rs->r[i].pid;
	}
	qsort(pids, np, sizeof(*pids), cmp_pid);
	for (size_t k = 0; k < np; k++)
		print_process(rl, sources, rs->r, rs->n, pids[k]);
	mp_sources__free(sources);
	free(pids);
}

/* ---- the files ------------------------------------------------------------------------- */

enum file_kind { F_STACKS, F_SPEEDSCOPE, F_PPROF };

static int write_file(const struct rec_lines *rl, const char *path, enum file_kind kind)
{
	FILE *f;
	int err, err2;

	err = mp_cred__enter(rl->cred);
	if (err)
		return err;
	f = fopen(path, kind == F_PPROF ? "wbe" : "we");
	err = f ? 0 : -errno;
	err2 = mp_cred__leave(rl->cred);
	if (!err && err2)
		err = err2;
	if (err) {
		if (f)
			fclose(f);
		p_err("cannot open '%s' for writing: %s", path, strerror(-err));
		return err;
	}
	switch (kind) {
	case F_STACKS:
		err = mp_lines__write_collapsed(rl->l, f);
		break;
	case F_SPEEDSCOPE:
		err = mp_lines__write_speedscope(rl->l, f, NULL);
		break;
	case F_PPROF: {
		/* the profile covers the windows: from the first attach to now */
		double now = mp_clock__now_epoch(), start = rl->nwin ? rl->win[0].since : now;

		err = mp_lines__write_pprof(rl->l, f, (int64_t)(start * 1e9),
					    (int64_t)((now - start) * 1e9));
		break;
	}
	}
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		p_err("cannot write '%s': %s", path, strerror(-err));
	return err;
}

int rec_lines__write_dat(const struct rec_lines *rl, pid_t pid, struct mp_dat *dat)
{
	int err = mp_lines__write_dat(rl->l, dat, pid);

	return err ? err : mp_dat__flush(dat);
}

int rec_lines__report(struct rec_lines *rl, struct mp_dat *dat)
{
	struct rows rs = { 0 };
	struct mp_lines_stats st;
	int err;

	for (size_t i = 0; i < rl->npend; i++) {
		if (rl->fleet)
			count_reason(rl, rl->pend[i].why);
		else
			p_info("--lines: process %d: %s: recorded its RSS only",
			       (int)rl->pend[i].pid, rl->pend[i].why);
	}
	for (int i = 0; i < MAX_REASONS && rl->reasons[i].n; i++)
		p_info("--lines: %lu processes recorded with RSS only: %s", rl->reasons[i].n,
		       i == MAX_REASONS - 1 ? "these and other reasons" : rl->reasons[i].why);
	if (!mp_lines__attached(rl->l))
		return 0;
	err = mp_lines__each_row(rl->l, row_keep, &rs);
	if (err) {
		p_err("out of memory");
		goto out;
	}
	print_tables(rl, &rs);
	fflush(stdout);
	mp_lines__stats(rl->l, &st);
	if (st.unresolved && !st.walk.snaps_lost && !st.unannounced)
		p_info("--lines: %llu of %llu stacks have frames mprof could not name: their code "
		       "was gone before it was read",
		       (unsigned long long)st.unresolved, (unsigned long long)st.stacks);
	else if (st.unresolved)
		p_info("--lines: %llu of %llu stacks have frames mprof could not name: their code "
		       "was gone before it was read, and %llu copies of code and %llu announcements "
		       "of stacks were lost (the ring was full)",
		       (unsigned long long)st.unresolved, (unsigned long long)st.stacks,
		       (unsigned long long)st.walk.snaps_lost,
		       (unsigned long long)st.unannounced);
	if (st.walk.failed)
		p_info("--lines: %llu stack reads failed (frames being rewritten, or not "
		       "readable): charged to <stack not readable>",
		       (unsigned long long)st.walk.failed);
	if (st.dropped)
		p_info("--lines: %llu changes were not attributed (the table of stacks was full)",
		       (unsigned long long)st.dropped);
	if (dat) {
		err = mp_lines__write_dat(rl->l, dat, 0);
		if (!err)
			err = mp_dat__flush(dat);
		if (err) {
			p_err("cannot write the line records: %s", strerror(-err));
			goto out;
		}
	}
	if (rl->o->stacks && (err = write_file(rl, rl->o->stacks, F_STACKS)))
		goto out;
	if (rl->o->speedscope && (err = write_file(rl, rl->o->speedscope, F_SPEEDSCOPE)))
		goto out;
	if (rl->o->pprof && (err = write_file(rl, rl->o->pprof, F_PPROF)))
		goto out;
out:
	for (size_t i = 0; i < rs.n; i++)
		free(rs.paths[i]);
	free(rs.paths);
	free(rs.r);
	return err;
}
