/*
 * The fleet's table (fleet.h): one row per process, fed by the backend's events and views. With
 * an output folder, every row also has its own recorder and .dat file, written by the same rules
 * as `mprof run` (user/recorder.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "dat.h"
#include "fleet.h"
#include "procinfo.h"
#include "recorder.h"

/* Growth is measured over this many seconds, from one sample a second. */
#define GROWTH_S 60
/* An exited process is kept this long when no exporter takes it out of the table. */
#define DEAD_KEEP_S 60.0

struct row {
	struct mp_fleet_proc pub;
	bool used;
	bool seen;	     /* in the backend's table at the last refresh */
	bool reported;	     /* dead, and one window reported it */
	uint64_t r0;	     /* rss when the previous window closed */
	uint64_t exit_wmax;  /* dead: the window maximum the exit record carried ... */
	uint32_t exit_wtag;  /* ... and its epoch */
	uint64_t ring[GROWTH_S + 1]; /* rss at whole seconds, [sec % (GROWTH_S + 1)] */
	long ring_first, ring_last;  /* seconds of the oldest and newest sample, -1: none */
	struct mp_recorder *rec;
	struct mp_dat *dat;
};

struct mp_fleet {
	struct mp_sink sink; /* first: the loop's handle */
	struct mp_fleet_opts o;
	struct row *rows; /* open addressing by pid, power-of-two size */
	size_t cap, n;
	struct mp_fleet_totals tot;
	uint32_t epoch; /* the backend's current window */
	struct mp_backend *be;
	/* cgroup ids to paths, learnt by scanning the hierarchy */
	struct cg { uint64_t id; char *path; } *cgs;
	size_t ncgs, capcgs;
	double cg_scanned; /* epoch of the last scan */
	/* uid to name */
	struct usr { uid_t uid; char *name; } *users;
	size_t nusers;
	int err_files; /* first error creating a per-process file */
	uint64_t files_failed;
};

static uint64_t hash_pid(pid_t pid)
{
	return (uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ull;
}

static struct row *slot(struct row *tab, size_t cap, pid_t pid)
{
	size_t i = (hash_pid(pid) >> 32) & (cap - 1);

	while (tab[i].used && tab[i].pub.pid != pid)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static struct row *find(const struct mp_fleet *f, pid_t pid)
{
	struct row *r;

	if (!f->cap)
		return NULL;
	r = slot(f->rows, f->cap, pid);
	return r->used ? r : NULL;
}

static void row_release(struct row *r)
{
	mp_recorder__free(r->rec);
	mp_dat__close(r->dat);
	r->rec = NULL;
	r->dat = NULL;
}

/* Remove @r, keeping every probe sequence intact (backward-shift deletion). */
static void remove_row(struct mp_fleet *f, struct row *r)
{
	size_t i = (size_t)(r - f->rows), j = i;

	row_release(r);
	for (;;) {
		size_t k;

		j = (j + 1) & (f->cap - 1);
		if (!f->rows[j].used)
			break;
		k = (hash_pid(f->rows[j].pub.pid) >> 32) & (f->cap - 1);
		/* can the entry at j move to the hole at i? only if i is on its probe path */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			f->rows[i] = f->rows[j];
			i = j;
		}
	}
	memset(&f->rows[i], 0, sizeof(f->rows[i]));
	f->n--;
}

static int grow(struct mp_fleet *f)
{
	size_t ncap = f->cap ? f->cap * 2 : 256;
	struct row *nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < f->cap; i++)
		if (f->rows[i].used)
			*slot(nt, ncap, f->rows[i].pub.pid) = f->rows[i];
	free(f->rows);
	f->rows = nt;
	f->cap = ncap;
	return 0;
}

static const char *user_name(struct mp_fleet *f, uid_t uid)
{
	struct passwd *pw;
	struct usr *nu;
	char buf[16];

	for (size_t i = 0; i < f->nusers; i++)
		if (f->users[i].uid == uid)
			return f->users[i].name;
	nu = realloc(f->users, (f->nusers + 1) * sizeof(*nu));
	if (!nu)
		return "?";
	f->users = nu;
	pw = getpwuid(uid);
	snprintf(buf, sizeof(buf), "%u", (unsigned int)uid);
	nu[f->nusers].uid = uid;
	nu[f->nusers].name = strdup(pw ? pw->pw_name : buf);
	if (!nu[f->nusers].name)
		return "?";
	return nu[f->nusers++].name;
}

static int cg_add(struct mp_fleet *f, uint64_t id, const char *path)
{
	if (f->ncgs == f->capcgs) {
		size_t ncap = f->capcgs ? f->capcgs * 2 : 64;
		struct cg *nc = realloc(f->cgs, ncap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		f->cgs = nc;
		f->capcgs = ncap;
	}
	f->cgs[f->ncgs].id = id;
	f->cgs[f->ncgs].path = strdup(path);
	if (!f->cgs[f->ncgs].path)
		return -ENOMEM;
	f->ncgs++;
	return 0;
}

/* Learn the id (inode number) of every cgroup under @dir, @rel being its path. */
static void cg_scan(struct mp_fleet *f, const char *dir, const char *rel, int depth)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (depth > 32 || stat(dir, &st))
		return;
	cg_add(f, (uint64_t)st.st_ino, rel);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char sub[4096], srel[4096];

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		snprintf(srel, sizeof(srel), "%s%s%s", rel, strcmp(rel, "/") ? "/" : "",
			 de->d_name);
		cg_scan(f, sub, srel, depth + 1);
	}
	closedir(d);
}

/* The path of cgroup @id; rescans the hierarchy (at most once a second) on a miss. */
static const char *cgroup_path(struct mp_fleet *f, uint64_t id, double now)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < f->ncgs; i++)
			if (f->cgs[i].id == id)
				return f->cgs[i].path;
		if (pass || !id || now - f->cg_scanned < 1.0)
			break;
		for (size_t i = 0; i < f->ncgs; i++)
			free(f->cgs[i].path);
		f->ncgs = 0;
		f->cg_scanned = now;
		if (f->o.cgroup_root)
			cg_scan(f, f->o.cgroup_root, "/", 0);
	}
	return "";
}

/* The per-process file: mprofile_<pid>_<YYYYmmddHHMMSS>[_N].dat in the output folder. */
static int open_row_file(struct mp_fleet *f, struct row *r, double now)
{
	char stamp[32], path[4096];
	time_t t = (time_t)now;
	struct tm tm;
	int err = -EEXIST, created = 0;
	struct mp_recorder_opts ro = { .root = r->pub.pid, .hold = f->o.hold };

	localtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	/* a pid reused within the same second must not append to the older process's file */
	for (int n = 1; n < 100 && err == -EEXIST; n++) {
		if (n == 1)
			snprintf(path, sizeof(path), "%s/mprofile_%d_%s.dat", f->o.out_dir,
				 (int)r->pub.pid, stamp);
		else
			snprintf(path, sizeof(path), "%s/mprofile_%d_%s_%d.dat", f->o.out_dir,
				 (int)r->pub.pid, stamp, n);
		err = f->o.open_file ? f->o.open_file(f->o.open_ctx, r->pub.pid, path, &r->dat,
							&created)
				     : mp_dat__open(&r->dat, path, &created);
		if (!err && !created) {
			mp_dat__close(r->dat);
			r->dat = NULL;
			err = -EEXIST;
		}
	}
	if (!err)
		err = mp_recorder__new(&r->rec, r->dat, &ro);
	if (err) {
		row_release(r);
		return err;
	}
	return 0;
}

/* CMDLINE of a row's file: its arguments now, or its comm once it is gone. */
static int write_cmdline(struct row *r)
{
	char **argv = NULL;
	int argc = 0, err;

	if (!r->dat)
		return 0;
	if (!mp_proc_argv(r->pub.pid, &argv, &argc) && argc)
		err = mp_dat__cmdline(r->dat, argc, argv);
	else
		err = mp_dat__cmdline_text(r->dat, r->pub.comm);
	free(argv);
	return err;
}

static void file_error(struct mp_fleet *f, struct row *r, int err)
{
	if (!f->err_files)
		f->err_files = err;
	f->files_failed++;
	row_release(r);
}

/* A process joins the table. */
static struct row *join(struct mp_fleet *f, pid_t pid, pid_t ppid, const char *comm, uid_t uid,
			uint64_t cgroup_id, double t, uint64_t rss, bool initial)
{
	struct row *r;

	r = find(f, pid);
	if (r && r->pub.alive)
		return r; /* known already (a discovery racing a fork) */
	if (r)
		remove_row(f, r); /* a dead row of an older process with the same pid */
	if ((f->n + 1) * 2 > f->cap && grow(f))
		return NULL;
	r = slot(f->rows, f->cap, pid);
	memset(r, 0, sizeof(*r));
	r->used = true;
	r->seen = true;
	f->n++;
	r->pub.pid = pid;
	r->pub.ppid = ppid;
	r->pub.uid = uid;
	r->pub.user = user_name(f, uid);
	snprintf(r->pub.comm, sizeof(r->pub.comm), "%s", comm);
	r->pub.cgroup = cgroup_path(f, cgroup_id, t);
	r->pub.start_t = t;
	r->pub.alive = true;
	r->pub.rss = r->pub.peak = r->pub.window_max = r->r0 = rss;
	r->pub.peak_t = t;
	r->ring_first = r->ring_last = -1;
	if (!initial)
		f->tot.starts++;
	if (f->o.out_dir) {
		int err = open_row_file(f, r, t);

		if (!err)
			err = write_cmdline(r);
		if (!err)
			err = mp_recorder__mem(r->rec, t, rss);
		if (err)
			file_error(f, r, err);
	}
	return r;
}

/* Record @v's value at whole second @sec for the growth figure. */
static void ring_put(struct row *r, long sec, uint64_t rss)
{
	if (r->ring_last >= 0 && sec <= r->ring_last) {
		r->ring[sec % (GROWTH_S + 1)] = rss;
		return;
	}
	for (long s = r->ring_last < 0 ? sec : r->ring_last + 1; s <= sec; s++)
		r->ring[s % (GROWTH_S + 1)] = rss; /* seconds without a tick keep the value */
	if (r->ring_first < 0)
		r->ring_first = sec;
	r->ring_last = sec;
	if (r->ring_last - r->ring_first > GROWTH_S)
		r->ring_first = r->ring_last - GROWTH_S;
}

static void refresh_growth(struct row *r)
{
	long from = r->ring_last - GROWTH_S < r->ring_first ? r->ring_first : r->ring_last - GROWTH_S;

	if (r->ring_last < 0)
		return;
	r->pub.growth_1m = (int64_t)r->pub.rss - (int64_t)r->ring[from % (GROWTH_S + 1)];
}

/* A process is gone (or left the fleet): its last values, its file finished. */
static void end_row(struct mp_fleet *f, struct row *r, const struct mp_sample *s, double t)
{
	if (!r->pub.alive)
		return;
	r->pub.alive = false;
	r->pub.end_t = t;
	if (s) {
		r->pub.rss = s->bytes;
		if (s->peak > r->pub.peak) {
			r->pub.peak = s->peak;
			r->pub.peak_t = s->peak_t;
		}
		r->exit_wmax = s->window_bytes;
		r->exit_wtag = s->window_tag;
	}
	f->tot.exits++;
	if (r->rec) {
		int err = 0;

		if (s)
			err = mp_recorder__on_sample(r->rec, s);
		if (!err)
			err = mp_recorder__flush(r->rec, INFINITY);
		if (err)
			file_error(f, r, err);
		row_release(r);
	}
}

static int fleet_event(struct mp_sink *sink, const struct mp_sample *s)
{
	struct mp_fleet *f = (struct mp_fleet *)sink;
	struct row *r = find(f, s->pid), *parent;
	int err = 0;

	switch (s->kind) {
	case MP_EV_FORK:
	case MP_EV_JOIN:
		parent = s->ppid ? find(f, s->ppid) : NULL;
		if (!join(f, s->pid, parent && parent->pub.alive ? s->ppid : 0, s->comm, s->uid,
			  s->cgroup_id, s->t, s->bytes, false))
			return -ENOMEM;
		return 0;
	case MP_EV_EXEC:
		if (!r || !r->pub.alive)
			return 0;
		snprintf(r->pub.comm, sizeof(r->pub.comm), "%s", s->comm);
		r->pub.uid = s->uid;
		r->pub.user = user_name(f, s->uid);
		r->pub.cgroup = cgroup_path(f, s->cgroup_id, s->t);
		if (r->rec) {
			err = write_cmdline(r); /* memory_profiler's readers take the last CMDLINE */
			if (!err)
				err = mp_recorder__on_sample(r->rec, s);
			if (err)
				file_error(f, r, err);
		}
		return 0;
	case MP_EV_EXTREME:
		if (r && r->rec && (err = mp_recorder__on_sample(r->rec, s)))
			file_error(f, r, err);
		return 0;
	case MP_EV_EXIT:
	case MP_EV_LEAVE:
		if (r)
			end_row(f, r, s, s->t);
		return 0;
	case MP_EV_OOM:
		if (r)
			r->pub.oom_kills++;
		f->tot.oom_kills++;
		return 0;
	case MP_EV_GROUP_EXTREME:
	case MP_EV_FUNC:
		return 0;
	}
	return 0;
}

struct refresh_ctx {
	struct mp_fleet *f;
	double now;
	bool tick; /* a tick (files, growth) rather than a scrape */
};

static int refresh_one(void *ctx, const struct mp_view *v)
{
	struct refresh_ctx *c = ctx;
	struct mp_fleet *f = c->f;
	struct row *r = find(f, v->pid);

	if (!r || !r->pub.alive) {
		/* its join record was lost (ring buffer full): it is in the kernel's table */
		r = join(f, v->pid, 0, v->comm, v->uid, v->cgroup_id, c->now, v->rss, false);
		if (!r)
			return -ENOMEM;
	}
	r->seen = true;
	r->pub.rss = v->rss;
	if (v->peak >= r->pub.peak) {
		r->pub.peak = v->peak;
		r->pub.peak_t = v->peak_t;
	}
	r->pub.oom_kills = v->oom_kills > r->pub.oom_kills ? v->oom_kills : r->pub.oom_kills;
	if (!c->tick) {
		/* a scrape: the window just closed */
		uint64_t w = v->window_seen ? v->window_max : v->rss;

		r->pub.window_max = w > r->r0 ? w : r->r0;
		r->r0 = v->rss;
	} else {
		ring_put(r, (long)floor(c->now), v->rss);
		refresh_growth(r);
		if (r->rec) {
			int err = mp_recorder__tick_view(r->rec, v, c->now);

			if (err)
				file_error(f, r, err);
		}
	}
	return 0;
}

/* Read every process's values from the backend; settle rows it no longer has. */
static int refresh(struct mp_fleet *f, struct mp_backend *be, double now, bool tick)
{
	struct refresh_ctx c = { f, now, tick };
	int err;

	for (size_t i = 0; i < f->cap; i++)
		f->rows[i].seen = false;
	err = be->each(be, 0, refresh_one, &c);
	if (err)
		return err;
	f->tot.tracked = 0;
	for (size_t i = 0; i < f->cap; i++) {
		struct row *r = &f->rows[i];

		if (!r->used)
			continue;
		r->pub.children = 0;
		if (r->pub.alive && !r->seen)
			end_row(f, r, NULL, now); /* its exit record was lost: it is gone all the same */
		if (r->pub.alive)
			f->tot.tracked++;
	}
	for (size_t i = 0; i < f->cap; i++) {
		struct row *r = &f->rows[i], *p;

		if (r->used && r->pub.alive && r->pub.ppid && (p = find(f, r->pub.ppid)) &&
		    p->pub.alive)
			p->pub.children++;
	}
	return 0;
}

/* Drop the dead rows that have been shown long enough. */
static void expire(struct mp_fleet *f, double now)
{
	for (size_t i = 0; i < f->cap;) {
		struct row *r = &f->rows[i];

		if (r->used && !r->pub.alive &&
		    (f->o.exporter ? r->reported : now - r->pub.end_t > DEAD_KEEP_S)) {
			remove_row(f, r); /* the entry moved into slot i is looked at next */
			continue;
		}
		i++;
	}
}

static int fleet_tick(struct mp_sink *sink, struct mp_backend *be, double now)
{
	struct mp_fleet *f = (struct mp_fleet *)sink;
	int err;

	f->be = be;
	if (!f->o.exporter)
		expire(f, now);
	err = refresh(f, be, now, true);
	return err;
}

static int fleet_finish(struct mp_sink *sink, struct mp_backend *be)
{
	struct mp_fleet *f = (struct mp_fleet *)sink;
	double now = mp_clock__now_epoch();
	int err = refresh(f, be, now, true);

	for (size_t i = 0; i < f->cap; i++) {
		struct row *r = &f->rows[i];
		struct mp_view v;

		if (!r->used || !r->rec)
			continue;
		/* still running at the end: its peak, then the file is complete */
		if (!be->proc(be, r->pub.pid, &v))
			mp_recorder__mem_peak(r->rec, v.peak_t, v.peak);
		if (mp_recorder__flush(r->rec, INFINITY))
			file_error(f, r, -EIO);
		row_release(r);
	}
	return err;
}

int mp_fleet__new(struct mp_fleet **out, const struct mp_fleet_opts *o)
{
	struct mp_fleet *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->o = *o;
	f->sink.event = fleet_event;
	f->sink.tick = fleet_tick;
	f->sink.finish = fleet_finish;
	*out = f;
	return 0;
}

void mp_fleet__free(struct mp_fleet *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->cap; i++)
		if (f->rows[i].used)
			row_release(&f->rows[i]);
	free(f->rows);
	for (size_t i = 0; i < f->ncgs; i++)
		free(f->cgs[i].path);
	free(f->cgs);
	for (size_t i = 0; i < f->nusers; i++)
		free(f->users[i].name);
	free(f->users);
	free(f);
}

struct mp_sink *mp_fleet__sink(struct mp_fleet *f)
{
	return &f->sink;
}

int mp_fleet__add_initial(struct mp_fleet *f, struct mp_backend *be, pid_t pid)
{
	struct mp_view v;
	double now = mp_clock__now_epoch();

	if (be->proc(be, pid, &v))
		return 0; /* gone already */
	return join(f, pid, v.ppid, v.comm, v.uid, v.cgroup_id, now, v.rss, true) ? 0 : -ENOMEM;
}

int mp_fleet__resolve_parents(struct mp_fleet *f)
{
	for (size_t i = 0; i < f->cap; i++) {
		struct row *r = &f->rows[i];
		char buf[512], *p;
		FILE *st;
		int ppid = 0;

		if (!r->used || r->pub.ppid)
			continue;
		snprintf(buf, sizeof(buf), "/proc/%d/stat", (int)r->pub.pid);
		st = fopen(buf, "re");
		if (!st)
			continue;
		/* "pid (comm) state ppid": comm may hold anything, the last ')' ends it */
		if (fgets(buf, sizeof(buf), st) && (p = strrchr(buf, ')')))
			sscanf(p + 1, " %*c %d", &ppid);
		fclose(st);
		if (ppid && find(f, ppid))
			r->pub.ppid = ppid;
	}
	return 0;
}

int mp_fleet__each(const struct mp_fleet *f, mp_fleet_fn fn, void *ctx)
{
	int err;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < f->cap; i++) {
			const struct row *r = &f->rows[i];

			if (!r->used || r->pub.alive != (pass == 0))
				continue;
			err = fn(ctx, &r->pub);
			if (err)
				return err;
		}
	}
	return 0;
}

void mp_fleet__totals(const struct mp_fleet *f, struct mp_fleet_totals *out)
{
	*out = f->tot;
	if (f->be) {
		struct mp_backend_stats st;

		f->be->stats(f->be, &st);
		out->records_lost = st.lost;
		out->procs_dropped = st.procs_dropped;
	}
}

int mp_fleet__window(struct mp_fleet *f)
{
	double now = mp_clock__now_epoch();
	uint32_t closed = f->epoch;
	int err;

	if (!f->be)
		return 0; /* before the first tick there is no backend to ask */
	err = f->be->window(f->be);
	if (err)
		return err;
	f->epoch++;
	/* the rows that were reported by the previous scrape leave now */
	expire(f, now);
	err = refresh(f, f->be, now, false);
	if (err)
		return err;
	for (size_t i = 0; i < f->cap; i++) {
		struct row *r = &f->rows[i];

		if (!r->used || r->pub.alive)
			continue;
		if (!r->reported) {
			uint64_t w = r->exit_wtag == closed ? r->exit_wmax : r->pub.rss;

			/* it lived in this window: the highest it reached there (or since joining) */
			if (r->pub.start_t > 0 && r->r0 > w)
				w = r->r0;
			r->pub.window_max = w;
		}
		r->reported = true;
	}
	return 0;
}

uint64_t mp_fleet__files_failed(const struct mp_fleet *f, int *first_err)
{
	*first_err = f->err_files;
	return f->files_failed;
}
