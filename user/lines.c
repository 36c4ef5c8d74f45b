#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"
#include "pyresolve.h"
#include "pytarget.h"

#define MIB 1048576.0

struct target {
	pid_t pid;
	struct mp_pytarget *t;
	struct mp_pyresolver *r;
	char cwd[PATH_MAX]; /* to read sources named relatively (co_filename is relative on 3.8) */
	bool failed;	    /* could not be opened: its stacks stay unresolved */
	bool attached;	    /* described to the kernel side by mp_lines__attach() */
	bool was_attached;  /* before an exec */
	bool exited;	    /* its interpreter and resolver let go: the pid may come back */
};

/* A resolved stack of one process. */
struct rstack {
	pid_t pid;
	uint64_t id;
	bool done;	  /* resolution was tried */
	bool ok;	  /* every frame named */
	bool top_ok;	  /* the running frame named */
	bool truncated;
	unsigned int n;
	struct mp_line_frame *frames; /* root first */
	uint64_t grown, freed, events; /* bytes: the kernel's counts, as last read */
};

/* A process that exited, with what it still had. */
struct gone {
	pid_t pid;
	uint64_t rss;
};

struct mp_lines {
	struct gone *gone;
	size_t ngone;
	struct target *targets;
	size_t ntargets;
	struct rstack *st; /* open addressing on (pid, id), power-of-two size */
	size_t cap, n;
	char **strs; /* the names, interned: rows point into them */
	size_t nstrs, capstrs;
	struct mp_lines_stats stats;
	long page_size;
};

int mp_lines__new(struct mp_lines **out)
{
	struct mp_lines *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->page_size = sysconf(_SC_PAGESIZE);
	if (l->page_size <= 0)
		l->page_size = 4096;
	*out = l;
	return 0;
}

void mp_lines__free(struct mp_lines *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->ntargets; i++) {
		mp_pyresolver__free(l->targets[i].r);
		mp_pytarget__free(l->targets[i].t);
	}
	free(l->targets);
	free(l->gone);
	for (size_t i = 0; i < l->cap; i++)
		free(l->st[i].frames);
	free(l->st);
	for (size_t i = 0; i < l->nstrs; i++)
		free(l->strs[i]);
	free(l->strs);
	free(l);
}

/* A copy of @s that lives as long as @l; the same pointer for the same text. */
static const char *intern(struct mp_lines *l, const char *s)
{
	char *c;

	if (!s)
		return NULL;
	/* linear: a run names a few hundred functions and files at most */
	for (size_t i = l->nstrs; i-- > 0;)
		if (!strcmp(l->strs[i], s))
			return l->strs[i];
	if (l->nstrs == l->capstrs) {
		size_t ncap = l->capstrs ? l->capstrs * 2 : 64;
		char **ns = realloc(l->strs, ncap * sizeof(*ns));

		if (!ns)
			return NULL;
		l->strs = ns;
		l->capstrs = ncap;
	}
	c = strdup(s);
	if (!c)
		return NULL;
	l->strs[l->nstrs++] = c;
	return c;
}

static struct target *target_of(struct mp_lines *l, pid_t pid)
{
	for (size_t i = 0; i < l->ntargets; i++)
		if (l->targets[i].pid == pid)
			return &l->targets[i];
	return NULL;
}

static void read_cwd(struct target *t)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)t->pid);
	n = readlink(path, t->cwd, sizeof(t->cwd) - 1);
	t->cwd[n > 0 ? n : 0] = 0;
}

/* @t's process exited and its pid is used again: a new process, to be opened. */
static void target_reuse(struct target *t)
{
	t->exited = false;
	t->failed = false;
	read_cwd(t);
}

/* Let go of @t's interpreter and resolver (its stacks keep their names). */
static void target_close(struct target *t)
{
	mp_pyresolver__free(t->r);
	mp_pytarget__free(t->t);
	t->r = NULL;
	t->t = NULL;
}

static struct target *target_add(struct mp_lines *l, pid_t pid)
{
	struct target *nt = realloc(l->targets, (l->ntargets + 1) * sizeof(*nt)), *t;

	if (!nt)
		return NULL;
	l->targets = nt;
	t = &l->targets[l->ntargets++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	read_cwd(t);
	return t;
}

/* Open the interpreter of @t's process. Returns 0 or -errno with *@why. */
static int target_open(struct target *t, const char **why)
{
	int err;

	err = mp_pytarget__open(t->pid, NULL, &t->t, why);
	if (err)
		return err;
	err = mp_pyresolver__new(t->t, &t->r);
	if (err) {
		mp_pytarget__free(t->t);
		t->t = NULL;
		if (why)
			*why = "out of memory";
	}
	return err;
}

int mp_lines__attach(struct mp_lines *l, struct mp_backend *be, pid_t pid, const char **why)
{
	struct target *t;
	int err;

	if (!be->lines_add) {
		if (why)
			*why = "line attribution needs the kernel backend";
		return -EINVAL;
	}
	t = target_of(l, pid);
	if (!t)
		t = target_add(l, pid);
	if (!t) {
		if (why)
			*why = "out of memory";
		return -ENOMEM;
	}
	if (t->exited)
		target_reuse(t);
	if (!t->t) {
		err = target_open(t, why);
		if (err)
			return err;
	}
	err = be->lines_add(be, pid, &t->t->proc);
	if (err && why)
		*why = "cannot describe the interpreter to the kernel side";
	if (!err)
		t->attached = true;
	return err;
}

void mp_lines__exec(struct mp_lines *l, pid_t pid)
{
	struct target *t = target_of(l, pid);

	if (!t)
		return;
	target_close(t);
	t->failed = false;
	t->was_attached = t->was_attached || t->attached;
	t->attached = false;
}

bool mp_lines__has(const struct mp_lines *l, pid_t pid)
{
	struct target *t = target_of((struct mp_lines *)l, pid);

	return t && t->attached;
}

bool mp_lines__attached(const struct mp_lines *l)
{
	for (size_t i = 0; i < l->ntargets; i++)
		if (l->targets[i].attached || l->targets[i].was_attached)
			return true;
	return false;
}

static uint64_t key_hash(pid_t pid, uint64_t id)
{
	uint64_t h = (id ^ ((uint64_t)(uint32_t)pid << 32)) * 0x9e3779b97f4a7c15ull;

	return h ^ (h >> 29);
}

static struct rstack *slot(struct rstack *tab, size_t cap, pid_t pid, uint64_t id)
{
	size_t i = key_hash(pid, id) & (cap - 1);

	while (tab[i].pid && !(tab[i].pid == pid && tab[i].id == id))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static int grow(struct mp_lines *l)
{
	size_t ncap = l->cap ? l->cap * 2 : 256;
	struct rstack *nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < l->cap; i++)
		if (l->st[i].pid)
			*slot(nt, ncap, l->st[i].pid, l->st[i].id) = l->st[i];
	free(l->st);
	l->st = nt;
	l->cap = ncap;
	return 0;
}

/*
 * The target of @pid, opened now if it is new: a forked child of a target (same interpreter,
 * its own memory to read). One that cannot be opened any more (a child that exited at once) is
 * described as its parent @ppid (0: unknown) is, as BPF described it. NULL on ENOMEM.
 */
static struct target *target_for(struct mp_lines *l, pid_t pid, pid_t ppid)
{
	struct target *t = target_of(l, pid), *p;
	const char *why;

	if (t && !t->exited)
		return t;
	if (t)
		target_reuse(t);
	else
		t = target_add(l, pid);
	if (!t || !target_open(t, &why))
		return t;
	p = ppid ? target_of(l, ppid) : NULL; /* after target_add(), which may move the targets */
	if (p && p->t && !mp_pytarget__fork(p->t, pid, &t->t)) {
		if (!t->cwd[0])
			memcpy(t->cwd, p->cwd, sizeof(t->cwd));
		if (!mp_pyresolver__new(t->t, &t->r))
			return t;
		mp_pytarget__free(t->t);
		t->t = NULL;
	}
	t->failed = true;
	return t;
}

/* Name the frames of stack @s, read from the kernel's table, in its process. */
static void resolve(struct mp_lines *l, struct mp_backend *be, struct rstack *s)
{
	struct mp_pystack ps;
	struct target *t;

	s->done = true;
	if (s->id < MP_PY_STACK_FIRST || s->id == MP_LINE_FOREIGN) {
		s->ok = true;
		return;
	}
	t = target_for(l, s->pid, 0);
	if (!t || !t->r || be->lines_stack(be, s->id, &ps) || !ps.depth ||
	    ps.depth > MP_PY_MAX_DEPTH) {
		l->stats.unresolved++;
		return;
	}
	s->frames = calloc(ps.depth, sizeof(*s->frames));
	if (!s->frames) {
		l->stats.unresolved++;
		return;
	}
	s->n = ps.depth;
	s->top_ok = true;
	s->truncated = ps.flags & (MP_PYSTACK_TRUNCATED | MP_PYSTACK_PARTIAL);
	s->ok = true;
	for (unsigned int i = 0; i < ps.depth; i++) {
		struct mp_line_frame *f = &s->frames[ps.depth - 1 - i]; /* frames[0] runs: root first */
		struct mp_pyloc loc;

		if (mp_pyresolver__resolve(t->r, &ps.frames[i], &loc)) {
			if (i == 0)
				s->top_ok = false;
			f->file = intern(l, "?");
			f->func = intern(l, "<code gone before it was named>");
			f->line = 0;
			s->ok = false;
			continue;
		}
		f->file = intern(l, loc.file);
		f->func = intern(l, loc.name);
		f->line = loc.line;
	}
	if (!s->ok)
		l->stats.unresolved++;
}

struct collect_ctx {
	struct mp_lines *l;
	struct mp_backend *be;
	int err;
};

/* The entry of (@pid, @stack), created empty if new. Returns 0 or -ENOMEM. */
static int rstack_get(struct mp_lines *l, pid_t pid, uint64_t stack, struct rstack **out)
{
	struct rstack *s;

	if ((l->n + 1) * 2 > l->cap && grow(l))
		return -ENOMEM;
	s = slot(l->st, l->cap, pid, stack);
	if (!s->pid) {
		s->pid = pid;
		s->id = stack;
		l->n++;
		l->stats.stacks++;
	}
	*out = s;
	return 0;
}

static int collect_one(void *ctx, pid_t pid, uint64_t stack, const struct mp_line_val *v)
{
	struct collect_ctx *c = ctx;
	struct mp_lines *l = c->l;
	struct rstack *s;

	if (rstack_get(l, pid, stack, &s))
		return -ENOMEM;
	s->grown = v->grown * (uint64_t)l->page_size;
	s->freed = v->freed * (uint64_t)l->page_size;
	s->events = v->events;
	if (!s->done)
		resolve(l, c->be, s);
	return 0;
}

int mp_lines__collect(struct mp_lines *l, struct mp_backend *be)
{
	struct collect_ctx c = { l, be, 0 };
	int err;

	if (!be->lines_each)
		return 0;
	/* announcements not read yet first: their snapshots name the stacks they announce */
	err = mp_lines__wake(l, be);
	if (!err)
		err = be->lines_each(be, collect_one, &c);
	if (be->lines_stats)
		be->lines_stats(be, &l->stats.walk, &l->stats.dropped, &l->stats.unannounced);
	return err;
}

int mp_lines__exited(struct mp_lines *l, struct mp_backend *be, pid_t pid, uint64_t rss)
{
	struct target *t;
	struct gone *ng;
	int err;

	/* what it announced before it exited is named first, then its copies are let go */
	err = mp_lines__wake(l, be);
	if (err)
		return err;
	t = target_of(l, pid);
	if (t) {
		target_close(t);
		t->exited = true;
	}

	for (size_t i = 0; i < l->ngone; i++)
		if (l->gone[i].pid == pid) {
			l->gone[i].rss = rss; /* a pid used again: the last one counts */
			return 0;
		}
	ng = realloc(l->gone, (l->ngone + 1) * sizeof(*ng));
	if (!ng)
		return -ENOMEM;
	l->gone = ng;
	ng[l->ngone].pid = pid;
	ng[l->ngone].rss = rss;
	l->ngone++;
	return 0;
}

/* Did @pid have anything charged (or is it a target)? Exits of others are not ours. */
static bool charged(const struct mp_lines *l, pid_t pid)
{
	if (target_of((struct mp_lines *)l, pid))
		return true;
	for (size_t i = 0; i < l->cap; i++)
		if (l->st[i].pid == pid)
			return true;
	return false;
}

/* A stack announced by the kernel: named now; its counts come with the next collect. */
static int wake_one(void *ctx, pid_t pid, uint64_t stack)
{
	struct collect_ctx *c = ctx;
	struct rstack *s;
	int err = rstack_get(c->l, pid, stack, &s);

	if (!err && !s->done)
		resolve(c->l, c->be, s);
	return err;
}

/* A code snapshot: kept by the resolver of its process, for the stacks that follow. */
static int wake_code(void *ctx, pid_t pid, const struct mp_pycode_snap *snap, size_t size)
{
	struct collect_ctx *c = ctx;
	struct target *t = target_for(c->l, pid, (pid_t)snap->ptgid);
	int err;

	if (!t)
		return -ENOMEM;
	if (!t->r)
		return 0; /* a process we cannot read: its stacks stay unnamed */
	err = mp_pyresolver__snapshot(t->r, snap, size);
	if (err == -EINVAL) {
		c->l->stats.bad_snaps++;
		return 0;
	}
	return err;
}

int mp_lines__wake(struct mp_lines *l, struct mp_backend *be)
{
	struct collect_ctx c = { l, be, 0 };
	int n;

	if (!be->lines_poll)
		return 0;
	n = be->lines_poll(be, wake_one, wake_code, &c);
	return n < 0 ? n : 0;
}

void mp_lines__stats(const struct mp_lines *l, struct mp_lines_stats *out)
{
	*out = l->stats;
}

static enum mp_line_kind kind_of(const struct rstack *s)
{
	if (s->id == MP_PY_STACK_NONE)
		return MP_LINE_NOFRAME;
	if (s->id == MP_PY_STACK_UNKNOWN)
		return MP_LINE_UNREADABLE;
	if (s->id == MP_LINE_FOREIGN)
		return MP_LINE_OUTSIDE;
	return s->n && s->top_ok ? MP_LINE_PY : MP_LINE_UNRESOLVED;
}

const char *mp_lines__kind_name(enum mp_line_kind kind)
{
	switch (kind) {
	case MP_LINE_PY:
		return "";
	case MP_LINE_NOFRAME:
		return "<no Python frame>";
	case MP_LINE_UNREADABLE:
		return "<stack not readable>";
	case MP_LINE_OUTSIDE:
		return "<outside the process>";
	case MP_LINE_UNRESOLVED:
		return "<code gone before it was named>";
	case MP_LINE_EXIT:
		return "<released at exit>";
	}
	return "?";
}

/* Rows: stacks merged by their running frame's (pid, file, func, line), or by kind. */
struct row {
	struct mp_line_row r;
};

static int same_row(const struct mp_line_row *a, pid_t pid, enum mp_line_kind kind,
		    const struct mp_line_frame *f)
{
	if (a->pid != pid || a->kind != kind)
		return 0;
	if (kind != MP_LINE_PY)
		return 1;
	/* interned strings: pointer equality is text equality */
	return a->file == f->file && a->func == f->func && a->line == f->line;
}

static const char *abs_path(const struct mp_lines *l, pid_t pid, const char *file, char *buf,
			    size_t size)
{
	for (size_t i = 0; i < l->ntargets; i++) {
		if (l->targets[i].pid != pid)
			continue;
		if (file[0] == '/' || !l->targets[i].cwd[0])
			return file;
		snprintf(buf, size, "%s/%s", l->targets[i].cwd, file);
		return buf;
	}
	return file;
}

/* A new, empty row of @kind for @pid at the end of *@rows (named after its kind). 0 or -ENOMEM. */
static int row_push(struct mp_line_row **rows, size_t *n, size_t *cap, pid_t pid,
		    enum mp_line_kind kind)
{
	struct mp_line_row *r;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct mp_line_row *nr = realloc(*rows, ncap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		*rows = nr;
		*cap = ncap;
	}
	r = &(*rows)[(*n)++];
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->kind = kind;
	r->func = mp_lines__kind_name(kind);
	return 0;
}

int mp_lines__each_row(const struct mp_lines *l, mp_line_row_fn fn, void *ctx)
{
	struct mp_line_row *rows = NULL;
	size_t n = 0, cap = 0;
	char **paths = NULL;
	int err = 0;

	for (size_t i = 0; i < l->cap; i++) {
		const struct rstack *s = &l->st[i];
		enum mp_line_kind kind;
		const struct mp_line_frame *top;
		size_t k;

		if (!s->pid)
			continue;
		kind = kind_of(s);
		top = kind == MP_LINE_PY ? &s->frames[s->n - 1] : NULL;
		for (k = 0; k < n; k++)
			if (same_row(&rows[k], s->pid, kind, top))
				break;
		if (k == n) {
			err = row_push(&rows, &n, &cap, s->pid, kind);
			if (err)
				goto out;
			k = n - 1;
			if (top) {
				rows[k].file = top->file;
				rows[k].func = top->func;
				rows[k].line = top->line;
			}
		}
		rows[k].grown += s->grown;
		rows[k].freed += s->freed;
		rows[k].events += s->events;
	}
	for (size_t g = 0; g < l->ngone; g++) {
		if (!l->gone[g].rss || !charged(l, l->gone[g].pid))
			continue;
		err = row_push(&rows, &n, &cap, l->gone[g].pid, MP_LINE_EXIT);
		if (err)
			goto out;
		rows[n - 1].freed = l->gone[g].rss;
		rows[n - 1].events = 1;
	}
	paths = calloc(n ? n : 1, sizeof(*paths));
	if (!paths) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < n && !err; k++) {
		if (rows[k].file) {
			char buf[PATH_MAX * 2];
			const char *p = abs_path(l, rows[k].pid, rows[k].file, buf, sizeof(buf));

			paths[k] = strdup(p);
			rows[k].abs_file = paths[k];
		}
		err = fn(ctx, &rows[k]);
	}
out:
	if (paths)
		for (size_t k = 0; k < n; k++)
			free(paths[k]);
	free(paths);
	free(rows);
	return err;
}

int mp_lines__each_stack(const struct mp_lines *l, mp_line_stack_fn fn, void *ctx)
{
	for (size_t i = 0; i < l->cap; i++) {
		const struct rstack *s = &l->st[i];
		struct mp_line_stack out;
		int err;

		if (!s->pid)
			continue;
		out.pid = s->pid;
		out.kind = kind_of(s);
		out.nframes = s->n;
		out.frames = s->frames;
		out.truncated = s->truncated;
		out.grown = s->grown;
		out.freed = s->freed;
		out.events = s->events;
		err = fn(ctx, &out);
		if (err)
			return err;
	}
	for (size_t g = 0; g < l->ngone; g++) {
		struct mp_line_stack out = { .pid = l->gone[g].pid, .kind = MP_LINE_EXIT };
		int err;

		if (!l->gone[g].rss || !charged(l, l->gone[g].pid))
			continue;
		out.freed = l->gone[g].rss;
		out.events = 1;
		err = fn(ctx, &out);
		if (err)
			return err;
	}
	return 0;
}

/* ---- writers ---------------------------------------------------------------------------- */

/* A frame's text for the collapsed format: "name (path:line)", with ';' and newlines out. */
static int put_frame(FILE *f, const char *func, const char *file, int line)
{
	for (const char *p = func; *p; p++)
		if (fputc(*p == ';' || *p == '\n' || *p == '\r' ? '_' : *p, f) == EOF)
			return -EIO;
	if (!file)
		return 0;
	if (fputs(" (", f) == EOF)
		return -EIO;
	for (const char *p = file; *p; p++)
		if (fputc(*p == ';' || *p == '\n' || *p == '\r' ? '_' : *p, f) == EOF)
			return -EIO;
	return fprintf(f, ":%d)", line) < 0 ? -EIO : 0;
}

struct collapsed_ctx {
	FILE *f;
	bool pids; /* stacks of several processes: each starts with "pid N" */
};

static int collapsed_one(void *ctx, const struct mp_line_stack *s)
{
	struct collapsed_ctx *c = ctx;
	FILE *f = c->f;
	int err = 0;

	if (!s->grown)
		return 0;
	if (c->pids && fprintf(f, "pid %d;", (int)s->pid) < 0)
		return -EIO;
	if (!s->nframes)
		err = put_frame(f, mp_lines__kind_name(s->kind), NULL, 0);
	for (unsigned int i = 0; i < s->nframes && !err; i++) {
		if (i && fputc(';', f) == EOF)
			return -EIO;
		err = put_frame(f, s->frames[i].func, s->frames[i].file, s->frames[i].line);
	}
	if (!err && fprintf(f, " %llu\n", (unsigned long long)s->grown) < 0)
		err = -EIO;
	return err;
}

/* Did more than one process grow? */
static bool several_pids(const struct mp_lines *l)
{
	pid_t first = 0;

	for (size_t i = 0; i < l->cap; i++) {
		if (!l->st[i].pid || !l->st[i].grown)
			continue;
		if (first && l->st[i].pid != first)
			return true;
		first = l->st[i].pid;
	}
	return false;
}

int mp_lines__write_collapsed(const struct mp_lines *l, FILE *f)
{
	struct collapsed_ctx c = { f, several_pids(l) };
	int err = mp_lines__each_stack(l, collapsed_one, &c);

	return err ? err : (fflush(f) ? -EIO : 0);
}

/* JSON string of @s (UTF-8 kept as is, control characters escaped). */
static int json_str(FILE *f, const char *s)
{
	if (fputc('"', f) == EOF)
		return -EIO;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int r;

		if (*p == '"' || *p == '\\')
			r = fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			r = fprintf(f, "\\u%04x", *p);
		else
			r = fputc(*p, f) == EOF ? -1 : 1;
		if (r < 0)
			return -EIO;
	}
	return fputc('"', f) == EOF ? -EIO : 0;
}

/* The speedscope frame table: each distinct (func, file, line) once. */
struct sframes {
	const struct mp_line_frame **f;
	const char **special; /* for the kinds without frames */
	size_t n, cap;
};

static long sframe_index(struct sframes *t, const struct mp_line_frame *fr, const char *special)
{
	for (size_t i = 0; i < t->n; i++) {
		if (fr && t->f[i] && t->f[i]->func == fr->func && t->f[i]->file == fr->file &&
		    t->f[i]->line == fr->line)
			return (long)i;
		if (!fr && t->special[i] == special)
			return (long)i;
	}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		const struct mp_line_frame **nf = realloc(t->f, ncap * sizeof(*nf));
		const char **nsp;

		if (!nf)
			return -1;
		t->f = nf;
		nsp = realloc(t->special, ncap * sizeof(*nsp));
		if (!nsp)
			return -1;
		t->special = nsp;
		t->cap = ncap;
	}
	t->f[t->n] = fr;
	t->special[t->n] = special;
	return (long)t->n++;
}

struct ss_ctx {
	FILE *f;
	struct sframes t;
	int pass; /* 0: frames, 1: samples, 2: weights */
	bool first;
	int err;
};

static int ss_one(void *ctx, const struct mp_line_stack *s)
{
	struct ss_ctx *c = ctx;

	if (!s->grown)
		return 0;
	if (c->pass == 0) {
		if (!s->nframes)
			return sframe_index(&c->t, NULL, mp_lines__kind_name(s->kind)) < 0 ? -ENOMEM
											   : 0;
		for (unsigned int i = 0; i < s->nframes; i++)
			if (sframe_index(&c->t, &s->frames[i], NULL) < 0)
				return -ENOMEM;
		return 0;
	}
	if (fputs(c->first ? "" : ",", c->f) == EOF)
		return -EIO;
	c->first = false;
	if (c->pass == 2)
		return fprintf(c->f, "%llu", (unsigned long long)s->grown) < 0 ? -EIO : 0;
	if (fputc('[', c->f) == EOF)
		return -EIO;
	if (!s->nframes)
		fprintf(c->f, "%ld", sframe_index(&c->t, NULL, mp_lines__kind_name(s->kind)));
	for (unsigned int i = 0; i < s->nframes; i++)
		fprintf(c->f, "%s%ld", i ? "," : "", sframe_index(&c->t, &s->frames[i], NULL));
	return fputc(']', c->f) == EOF ? -EIO : 0;
}

int mp_lines__write_speedscope(const struct mp_lines *l, FILE *f, const char *name)
{
	struct ss_ctx c = { .f = f };
	uint64_t total = 0;
	int err;

	for (size_t i = 0; i < l->cap; i++)
		if (l->st[i].pid)
			total += l->st[i].grown;
	err = mp_lines__each_stack(l, ss_one, &c);
	if (err)
		goto out;
	fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
	      "\"shared\":{\"frames\":[",
	      f);
	for (size_t i = 0; i < c.t.n; i++) {
		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		if (c.t.f[i]) {
			json_str(f, c.t.f[i]->func);
			fputs(",\"file\":", f);
			json_str(f, c.t.f[i]->file);
			fprintf(f, ",\"line\":%d}", c.t.f[i]->line);
		} else {
			json_str(f, c.t.special[i]);
			fputc('}', f);
		}
	}
	fputs("]},\"profiles\":[{\"type\":\"sampled\",\"name\":", f);
	json_str(f, name ? name : "mprof --lines: bytes grown");
	fprintf(f, ",\"unit\":\"bytes\",\"startValue\":0,\"endValue\":%llu,\"samples\":[",
		(unsigned long long)total);
	c.pass = 1;
	c.first = true;
	err = mp_lines__each_stack(l, ss_one, &c);
	if (!err) {
		fputs("],\"weights\":[", f);
		c.pass = 2;
		c.first = true;
		err = mp_lines__each_stack(l, ss_one, &c);
	}
	if (!err)
		fputs("]}],\"name\":\"mprof\",\"exporter\":\"mprof-bpf\"}\n", f);
	if (!err && (ferror(f) || fflush(f)))
		err = -EIO;
out:
	free(c.t.f);
	free(c.t.special);
	return err;
}

struct dat_ctx {
	struct mp_dat *d;
	pid_t only;
};

static int dat_row(void *ctx, const struct mp_line_row *r)
{
	struct dat_ctx *c = ctx;

	if (c->only && r->pid != c->only)
		return 0;
	return mp_dat__line(c->d, r->pid, r->grown, r->freed, r->events, r->line,
			    r->kind == MP_LINE_PY ? r->func : mp_lines__kind_name(r->kind),
			    r->file ? r->file : "-");
}

static int dat_stack(void *ctx, const struct mp_line_stack *s)
{
	const char *names[MP_PY_MAX_DEPTH], *files[MP_PY_MAX_DEPTH];
	int lines_[MP_PY_MAX_DEPTH];
	const char *special = mp_lines__kind_name(s->kind);
	unsigned int n = s->nframes;
	struct dat_ctx *c = ctx;

	if (c->only && s->pid != c->only)
		return 0;
	if (!n) {
		names[0] = special;
		files[0] = "-";
		lines_[0] = 0;
		n = 1;
	} else {
		for (unsigned int i = 0; i < n; i++) {
			names[i] = s->frames[i].func;
			files[i] = s->frames[i].file;
			lines_[i] = s->frames[i].line;
		}
	}
	return mp_dat__stack(c->d, s->pid, s->grown, s->freed, s->events, n,
			     (const char *const *)names, (const char *const *)files, lines_);
}

int mp_lines__write_dat(const struct mp_lines *l, struct mp_dat *d, pid_t only)
{
	struct dat_ctx c = { d, only };
	int err = mp_lines__each_row(l, dat_row, &c);

	if (!err)
		err = mp_lines__each_stack(l, dat_stack, &c);
	return err;
}
