#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recorder.h"

#define MIB 1048576.0

struct point {
	double t;
	uint64_t bytes;
	pid_t pid; /* 0: MEM */
	uint32_t seq; /* arrival order, keeps the sort stable */
};

/* Points written recently, to tell a late point that adds nothing from one that does. */
#define HIST_LEN 512

struct child {
	pid_t pid; /* 0: empty slot */
	uint64_t max;
};

/* Open @profile'd calls of one thread, innermost last. */
#define MAX_DEPTH 256

struct frame {
	uint64_t id;
	double t;
	uint64_t bytes;
	char name[MP_FUNC_NAME_LEN + 1];
};

struct fstack {
	pid_t tid;
	int depth; /* may exceed MAX_DEPTH: deeper frames are counted, not kept */
	struct frame frames[MAX_DEPTH];
};

struct mp_recorder {
	struct mp_sink sink; /* first: the loop's handle is the recorder */
	struct mp_dat *dat;
	struct mp_recorder_opts opts;
	struct point *pend;
	size_t npend, cappend;
	uint32_t seq;
	uint64_t mem_max;
	double mem_max_t;
	double first_t; /* epoch of the first MEM point */
	int mem_seen;
	struct child *kids; /* open addressing, power-of-two size */
	size_t nkids, capkids;
	struct point hist[HIST_LEN]; /* ring of written points */
	size_t nhist;
	double last_t; /* time of the latest point written */
	struct fstack **stacks;
	size_t nstacks;
	int started;	    /* the root has exec'd (or was running already) */
	double prev_tick_t; /* epoch of the previous tick */
};

static int sink_event(struct mp_sink *s, const struct mp_sample *ev);
static int sink_tick(struct mp_sink *s, struct mp_backend *be, double now);
static int sink_finish(struct mp_sink *s, struct mp_backend *be);

int mp_recorder__new(struct mp_recorder **out, struct mp_dat *dat,
		     const struct mp_recorder_opts *opts)
{
	struct mp_recorder *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->dat = dat;
	r->opts = *opts;
	r->started = !opts->wait_exec;
	r->sink.event = sink_event;
	r->sink.tick = sink_tick;
	r->sink.finish = sink_finish;
	*out = r;
	return 0;
}

struct mp_sink *mp_recorder__sink(struct mp_recorder *r)
{
	return &r->sink;
}

int mp_recorder__started(const struct mp_recorder *r)
{
	return r->started;
}

void mp_recorder__free(struct mp_recorder *r)
{
	if (!r)
		return;
	free(r->pend);
	free(r->kids);
	for (size_t i = 0; i < r->nstacks; i++)
		free(r->stacks[i]);
	free(r->stacks);
	free(r);
}

static struct child *kid_slot(struct child *tab, size_t cap, pid_t pid)
{
	size_t i = ((uint32_t)pid * 2654435761u) & (cap - 1);

	while (tab[i].pid && tab[i].pid != pid)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* The record of child @pid, created if @create. NULL if absent or out of memory. */
static struct child *kid_get(struct mp_recorder *r, pid_t pid, int create)
{
	struct child *c;

	if (!r->capkids) {
		if (!create)
			return NULL;
		r->kids = calloc(64, sizeof(*r->kids));
		if (!r->kids)
			return NULL;
		r->capkids = 64;
	}
	c = kid_slot(r->kids, r->capkids, pid);
	if (c->pid || !create)
		return c->pid ? c : NULL;
	if ((r->nkids + 1) * 2 > r->capkids) {
		size_t ncap = r->capkids * 2;
		struct child *nt = calloc(ncap, sizeof(*nt));

		if (!nt)
			return NULL;
		for (size_t i = 0; i < r->capkids; i++)
			if (r->kids[i].pid)
				*kid_slot(nt, ncap, r->kids[i].pid) = r->kids[i];
		free(r->kids);
		r->kids = nt;
		r->capkids = ncap;
		c = kid_slot(r->kids, r->capkids, pid);
	}
	c->pid = pid;
	c->max = 0;
	r->nkids++;
	return c;
}

static int push(struct mp_recorder *r, pid_t pid, double t, uint64_t bytes)
{
	if (r->npend == r->cappend) {
		size_t ncap = r->cappend ? r->cappend * 2 : 256;
		struct point *np = realloc(r->pend, ncap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		r->pend = np;
		r->cappend = ncap;
	}
	r->pend[r->npend++] = (struct point){ .t = t, .bytes = bytes, .pid = pid, .seq = r->seq++ };
	return 0;
}

int mp_recorder__mem(struct mp_recorder *r, double t, uint64_t bytes)
{
	if (!r->mem_seen || bytes > r->mem_max) {
		r->mem_max = bytes;
		r->mem_max_t = t;
	}
	if (!r->mem_seen || t < r->first_t)
		r->first_t = t;
	r->mem_seen = 1;
	return push(r, 0, t, bytes);
}

static int wants_child(const struct mp_recorder *r, pid_t pid)
{
	return r->opts.multiprocess && pid != r->opts.root && pid > 0;
}

int mp_recorder__chld(struct mp_recorder *r, pid_t pid, double t, uint64_t bytes)
{
	struct child *c;

	if (!wants_child(r, pid))
		return 0;
	c = kid_get(r, pid, 1);
	if (!c)
		return -ENOMEM;
	if (bytes > c->max)
		c->max = bytes;
	return push(r, pid, t, bytes);
}

int mp_recorder__mem_peak(struct mp_recorder *r, double t, uint64_t bytes)
{
	if (r->mem_seen && bytes <= r->mem_max)
		return 0;
	return mp_recorder__mem(r, t, bytes);
}

int mp_recorder__chld_peak(struct mp_recorder *r, pid_t pid, double t, uint64_t bytes)
{
	struct child *c;

	if (!wants_child(r, pid))
		return 0;
	c = kid_get(r, pid, 0);
	if (c && bytes <= c->max)
		return 0;
	return mp_recorder__chld(r, pid, t, bytes);
}

uint64_t mp_recorder__mem_max(const struct mp_recorder *r)
{
	return r->mem_max;
}

double mp_recorder__mem_max_t(const struct mp_recorder *r)
{
	return r->mem_max_t;
}

double mp_recorder__first_t(const struct mp_recorder *r)
{
	return r->first_t;
}

uint64_t mp_recorder__chld_max(const struct mp_recorder *r, pid_t pid)
{
	struct child *c = kid_get((struct mp_recorder *)r, pid, 0);

	return c ? c->max : 0;
}

static struct fstack *stack_of(struct mp_recorder *r, pid_t tid)
{
	struct fstack **ns, *st;

	for (size_t i = 0; i < r->nstacks; i++)
		if (r->stacks[i]->tid == tid)
			return r->stacks[i];
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	ns = realloc(r->stacks, (r->nstacks + 1) * sizeof(*ns));
	if (!ns) {
		free(st);
		return NULL;
	}
	st->tid = tid;
	r->stacks = ns;
	r->stacks[r->nstacks++] = st;
	return st;
}

static int on_func(struct mp_recorder *r, const struct mp_sample *s)
{
	struct fstack *st;
	int d;

	if (s->pid != r->opts.root)
		return 0; /* memory_profiler's FUNC lines describe the profiled program itself */
	st = stack_of(r, s->tid);
	if (!st)
		return -ENOMEM;
	if (s->phase == MP_FUNC_ENTRY) {
		if (st->depth < MAX_DEPTH) {
			struct frame *f = &st->frames[st->depth];

			f->id = s->id;
			f->t = s->t;
			f->bytes = s->bytes;
			memcpy(f->name, s->name, sizeof(f->name));
		}
		st->depth++;
		return 0;
	}
	/* an exit closes the innermost open call with its id (others were unwound) */
	for (d = (st->depth < MAX_DEPTH ? st->depth : MAX_DEPTH) - 1; d >= 0; d--)
		if (st->frames[d].id == s->id)
			break;
	if (d < 0) {
		if (st->depth > MAX_DEPTH)
			st->depth--;
		return 0; /* an exit whose entry came before we listened */
	}
	st->depth = d;
	return mp_dat__func(r->dat, st->frames[d].name, st->frames[d].bytes / MIB, st->frames[d].t,
			    s->bytes / MIB, s->t, d);
}

int mp_recorder__on_sample(struct mp_recorder *r, const struct mp_sample *s)
{
	int is_root = s->pid == r->opts.root;
	int err;

	switch (s->kind) {
	case MP_EV_EXTREME:
		if (is_root && !r->opts.include_children)
			return mp_recorder__mem(r, s->t, s->bytes);
		return mp_recorder__chld(r, s->pid, s->t, s->bytes);
	case MP_EV_GROUP_EXTREME:
		if (r->opts.include_children && r->started && s->group == r->opts.group)
			return mp_recorder__mem(r, s->t, s->bytes);
		return 0;
	case MP_EV_FORK:
		return mp_recorder__chld(r, s->pid, s->t, s->bytes);
	case MP_EV_EXIT:
		if (is_root && !r->started)
			return 0; /* it never became the command: exec failed */
		/* The peak first: it is earlier than the exit, and the sort keeps them in order. */
		if (is_root && !r->opts.include_children) {
			if (s->peak_t > 0) {
				err = mp_recorder__mem_peak(r, s->peak_t, s->peak);
				if (err)
					return err;
			}
			return mp_recorder__mem(r, s->t, s->bytes);
		}
		if (s->peak_t > 0) {
			err = mp_recorder__chld_peak(r, s->pid, s->peak_t, s->peak);
			if (err)
				return err;
		}
		return mp_recorder__chld(r, s->pid, s->t, s->bytes);
	case MP_EV_EXEC:
		/* a new image: its first value (for a spawned root, the first of the series) */
		if (is_root) {
			r->started = 1;
			return mp_recorder__mem(r, s->t,
						r->opts.include_children ? s->group_bytes : s->bytes);
		}
		return mp_recorder__chld(r, s->pid, s->t, s->bytes);
	case MP_EV_FUNC:
		return on_func(r, s);
	case MP_EV_JOIN:
	case MP_EV_LEAVE:
	case MP_EV_OOM:
		return 0; /* fleet events: a recorder of one process sees its own through the fleet */
	}
	return -EINVAL;
}

static int sink_event(struct mp_sink *s, const struct mp_sample *ev)
{
	return mp_recorder__on_sample((struct mp_recorder *)s, ev);
}

/* A rise not yet turned when the tick came: its top, if it is new since the previous tick. */
static int rising(struct mp_recorder *r, const struct mp_view *v)
{
	if (!v->rising || v->rising_t <= r->prev_tick_t)
		return 0;
	if (v->pid && v->pid != r->opts.root)
		return mp_recorder__chld(r, v->pid, v->rising_t, v->rising);
	return mp_recorder__mem(r, v->rising_t, v->rising);
}

struct tick_ctx {
	struct mp_recorder *r;
	double now;
};

static int tick_child(void *ctx, const struct mp_view *v)
{
	struct tick_ctx *c = ctx;
	int err;

	if (v->pid == c->r->opts.root || !v->started)
		return 0;
	err = rising(c->r, v);
	return err ? err : mp_recorder__chld(c->r, v->pid, c->now, v->rss);
}

static int sink_tick(struct mp_sink *s, struct mp_backend *be, double now)
{
	struct mp_recorder *r = (struct mp_recorder *)s;
	struct mp_view v;
	int err = 0;

	if (!r->started && !be->proc(be, r->opts.root, &v) && v.started)
		r->started = 1; /* the exec record may still be on its way */
	if (!r->started)
		return 0;
	if (r->opts.include_children)
		err = be->group(be, r->opts.group, &v);
	else
		err = be->proc(be, r->opts.root, &v);
	if (!err) {
		err = rising(r, &v);
		if (!err)
			err = mp_recorder__mem(r, now, v.rss);
	} else if (err == -ESRCH) {
		err = 0; /* the root is gone; its exit record says the rest */
	}
	if (!err && r->opts.multiprocess) {
		struct tick_ctx c = { r, now };

		err = be->each(be, r->opts.group, tick_child, &c);
	}
	r->prev_tick_t = now;
	if (!err)
		err = mp_recorder__flush(r, now - r->opts.hold);
	return err;
}

int mp_recorder__tick_view(struct mp_recorder *r, const struct mp_view *v, double now)
{
	int err = rising(r, v);

	if (!err)
		err = mp_recorder__mem(r, now, v->rss);
	r->prev_tick_t = now;
	if (!err)
		err = mp_recorder__flush(r, now - r->opts.hold);
	return err;
}

static int finish_proc(void *ctx, const struct mp_view *v)
{
	struct mp_recorder *r = ctx;

	if (!v->started)
		return 0;
	if (v->pid == r->opts.root)
		return r->opts.include_children ? 0 : mp_recorder__mem_peak(r, v->peak_t, v->peak);
	return mp_recorder__chld_peak(r, v->pid, v->peak_t, v->peak);
}

static int sink_finish(struct mp_sink *s, struct mp_backend *be)
{
	struct mp_recorder *r = (struct mp_recorder *)s;
	struct mp_view v;
	int err = 0;

	if (r->started && r->opts.include_children) {
		err = be->group(be, r->opts.group, &v);
		if (!err && v.peak)
			err = mp_recorder__mem_peak(r, v.peak_t, v.peak);
	}
	/* processes still alive (timeout, or descendants outliving the root) */
	if (!err && r->started)
		err = be->each(be, r->opts.group, finish_proc, r);
	if (!err)
		err = mp_recorder__flush(r, INFINITY);
	return err;
}

static int point_cmp(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Is @p late and already shown by a written point of its series with the same value? */
static int redundant(const struct mp_recorder *r, const struct point *p)
{
	size_t n = r->nhist < HIST_LEN ? r->nhist : HIST_LEN;

	if (p->t >= r->last_t)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct point *h = &r->hist[i];

		if (h->pid == p->pid && h->t >= p->t && h->bytes == p->bytes)
			return 1;
	}
	return 0;
}

int mp_recorder__flush(struct mp_recorder *r, double upto)
{
	size_t i, kept = 0;
	int err = 0;

	if (r->npend) /* qsort's base may not be NULL, even for no element */
		qsort(r->pend, r->npend, sizeof(*r->pend), point_cmp);
	for (i = 0; i < r->npend && !err; i++) {
		const struct point *p = &r->pend[i];

		if (p->t > upto) {
			r->pend[kept++] = *p;
			continue;
		}
		if (redundant(r, p))
			continue;
		if (p->pid)
			err = mp_dat__chld(r->dat, p->pid, p->bytes / MIB, p->t);
		else
			err = mp_dat__mem(r->dat, p->bytes / MIB, p->t);
		r->hist[r->nhist++ % HIST_LEN] = *p;
		if (p->t > r->last_t)
			r->last_t = p->t;
	}
	for (; i < r->npend; i++)
		r->pend[kept++] = r->pend[i];
	r->npend = kept;
	if (!err)
		err = mp_dat__flush(r->dat);
	return err;
}
