/*
 * mp_datfile__read_reduced(): reading a profile of any size for drawing, in bounded memory.
 * See datfile.h. Two passes over the file: the first counts and finds the time span, the second
 * keeps everything (small files) or reduces each series per time bucket while it reads.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datfile.h"
#include "datfile_priv.h"

/* Buckets of the MEM series; children share what the point budget leaves. */
#define MEM_BUCKETS 8192
#define MIN_BUCKETS 16
#define FUNC_BUCKETS 4096
/* Calls kept exactly below this many (about 40 bytes each). */
#define MAX_CALLS (1u << 20)

/* First pass: counts and the span. */
struct count {
	size_t mem, calls, chld;
	struct mp_datfile kids; /* children only, to count distinct pids (no points kept) */
	double t0;		/* first MEM or FUNC time: the plot's origin */
	double tmin, tmax;	/* over every sample */
	bool any;
};

static void span(struct count *c, double t, bool origin)
{
	if (!c->any || t < c->tmin)
		c->tmin = t;
	if (!c->any || t > c->tmax)
		c->tmax = t;
	c->any = true;
	if (origin && (isnan(c->t0) || t < c->t0))
		c->t0 = t;
}

static int count_record(void *ctx, const struct mp_record *r)
{
	struct count *c = ctx;

	switch (r->kind) {
	case MP_REC_MEM:
		c->mem++;
		span(c, r->t, true);
		return 0;
	case MP_REC_CHLD:
		c->chld++;
		span(c, r->t, false);
		return mp_datfile__note_child(&c->kids, r->pid);
	case MP_REC_FUNC:
		c->calls++;
		span(c, r->call.t_start, true);
		span(c, r->call.t_end, true);
		return 0;
	case MP_REC_CMDLINE:
	case MP_REC_LINE:
	case MP_REC_STACK:
		return 0;
	}
	return 0;
}

/* A bucket keeps up to four samples: the first, the lowest, the highest and the last. */
struct bucket {
	struct mp_point first, lo, hi, last;
	unsigned char n;
};

struct rseries {
	struct bucket *b; /* nb + 2: [0] before the window, [nb + 1] after it */
	size_t nb;
	struct mp_fit_sums sums;
};

struct rfunc {
	struct mp_call *best; /* per bucket: the longest call, t_end < t_start when empty */
};

struct reducer {
	struct mp_datfile *df;
	const struct mp_reduce_opts *o;
	double t0, lo, hi; /* bucket span, epoch seconds */
	struct rseries mem;
	struct rseries *kids; /* parallel to df->children */
	size_t nkids_cap, kid_buckets;
	struct rfunc *funcs; /* parallel to df->funcs */
	size_t nfuncs_cap, func_buckets;
	bool keep_calls;
};

static size_t bucket_of(const struct reducer *r, size_t nb, double t)
{
	double x;

	if (t < r->lo)
		return 0;
	if (t > r->hi)
		return nb + 1;
	if (!(r->hi > r->lo))
		return 1;
	x = (t - r->lo) / (r->hi - r->lo) * (double)nb;
	return x >= (double)nb ? nb : (size_t)x + 1;
}

static bool in_window(const struct reducer *r, double t)
{
	return !r->o->window || (t - r->t0 >= r->o->xmin && t - r->t0 <= r->o->xmax);
}

static void add_sum(struct mp_fit_sums *s, double t, double m)
{
	s->n += 1;
	s->t += t;
	s->m += m;
	s->tt += t * t;
	s->tm += t * m;
}

static int rseries_init(struct rseries *s, size_t nb)
{
	s->b = calloc(nb + 2, sizeof(*s->b));
	s->nb = nb;
	return s->b ? 0 : -ENOMEM;
}

/* A sample of series @s: in its fit sums and, with @keep, in its buckets. */
static void rseries_put(struct reducer *r, struct rseries *s, double t, double mib, bool keep)
{
	struct bucket *b = &s->b[bucket_of(r, s->nb, t)];
	struct mp_point p = { t, mib };

	if (in_window(r, t))
		add_sum(&s->sums, t - r->t0, mib);
	if (!keep)
		return;
	if (!b->n) {
		b->first = b->lo = b->hi = b->last = p;
		b->n = 1;
		return;
	}
	if (mib < b->lo.mib)
		b->lo = p;
	if (mib > b->hi.mib)
		b->hi = p;
	b->last = p;
}

static void rseries_add(struct reducer *r, struct rseries *s, double t, double mib)
{
	rseries_put(r, s, t, mib, true);
}

static int pt_time_cmp(const void *a, const void *b)
{
	const struct mp_point *p = a, *q = b;

	return (p->t > q->t) - (p->t < q->t);
}

/* The kept samples of @s into @out, in time order within each bucket, without repeats. */
static int rseries_emit(struct rseries *s, struct mp_series *out)
{
	size_t n = 0;

	free(out->pts);
	out->pts = malloc((4 * (s->nb + 2) + 1) * sizeof(*out->pts));
	out->n = out->cap = 0;
	if (!out->pts)
		return -ENOMEM;
	out->cap = 4 * (s->nb + 2) + 1;
	for (size_t i = 0; i < s->nb + 2; i++) {
		struct bucket *b = &s->b[i];
		struct mp_point q[4] = { b->first, b->lo, b->hi, b->last };

		if (!b->n)
			continue;
		qsort(q, 4, sizeof(q[0]), pt_time_cmp);
		for (size_t k = 0; k < 4; k++)
			if (!k || q[k].t != q[k - 1].t || q[k].mib != q[k - 1].mib)
				out->pts[n++] = q[k];
	}
	out->n = n;
	out->has_sums = true;
	out->sums = s->sums;
	return 0;
}

static int reduce_record(void *ctx, const struct mp_record *rec)
{
	struct reducer *r = ctx;
	struct mp_datfile *df = r->df;
	int err;

	switch (rec->kind) {
	case MP_REC_MEM:
		rseries_add(r, &r->mem, rec->t, rec->mib);
		return 0;
	case MP_REC_CHLD: {
		const struct mp_child *ch = mp_datfile__child(df, rec->pid);
		size_t k;

		if (!ch) {
			err = mp_datfile__note_child(df, rec->pid);
			if (err)
				return err;
			ch = mp_datfile__child(df, rec->pid);
		}
		k = (size_t)(ch - df->children);
		if (k >= r->nkids_cap) {
			size_t ncap = r->nkids_cap ? r->nkids_cap * 2 : 16;
			struct rseries *nk;

			while (ncap <= k)
				ncap *= 2;
			nk = realloc(r->kids, ncap * sizeof(*nk));
			if (!nk)
				return -ENOMEM;
			memset(nk + r->nkids_cap, 0, (ncap - r->nkids_cap) * sizeof(*nk));
			r->kids = nk;
			r->nkids_cap = ncap;
		}
		if (!r->kids[k].b && rseries_init(&r->kids[k], r->kid_buckets))
			return -ENOMEM;
		rseries_add(r, &r->kids[k], rec->t, rec->mib);
		return 0;
	}
	case MP_REC_FUNC: {
		const struct mp_func *fn;
		size_t f, bi;
		struct mp_call *best;
		double len = rec->call.t_end - rec->call.t_start;

		/*
		 * The curve merges each call's entry and exit: so do the fit sums, and the buckets
		 * when calls are dropped (kept calls are merged by the drawing itself).
		 */
		rseries_put(r, &r->mem, rec->call.t_start, rec->call.mem_start, !r->keep_calls);
		rseries_put(r, &r->mem, rec->call.t_end, rec->call.mem_end, !r->keep_calls);
		if (r->keep_calls)
			return mp_datfile__add_record(df, rec);
		err = mp_datfile__add_func_stats(df, rec, &fn);
		if (err)
			return err;
		f = (size_t)(fn - df->funcs);
		if (f >= r->nfuncs_cap) {
			size_t ncap = r->nfuncs_cap ? r->nfuncs_cap * 2 : 16;
			struct rfunc *nf;

			while (ncap <= f)
				ncap *= 2;
			nf = realloc(r->funcs, ncap * sizeof(*nf));
			if (!nf)
				return -ENOMEM;
			memset(nf + r->nfuncs_cap, 0, (ncap - r->nfuncs_cap) * sizeof(*nf));
			r->funcs = nf;
			r->nfuncs_cap = ncap;
		}
		if (!r->funcs[f].best) {
			r->funcs[f].best = malloc((r->func_buckets + 2) * sizeof(struct mp_call));
			if (!r->funcs[f].best)
				return -ENOMEM;
			for (size_t i = 0; i < r->func_buckets + 2; i++)
				r->funcs[f].best[i] = (struct mp_call){ .t_start = 1, .t_end = 0 };
		}
		bi = bucket_of(r, r->func_buckets, rec->call.t_start);
		best = &r->funcs[f].best[bi];
		if (best->t_end < best->t_start || len > best->t_end - best->t_start)
			*best = rec->call;
		return 0;
	}
	case MP_REC_CMDLINE:
	case MP_REC_LINE: /* few (one per source line or stack): kept whole */
	case MP_REC_STACK:
		return mp_datfile__add_record(df, rec);
	}
	return 0;
}

static int emit_funcs(struct reducer *r)
{
	struct mp_datfile *df = r->df;

	for (size_t f = 0; f < df->n_funcs && f < r->nfuncs_cap; f++) {
		struct mp_func *fn = &df->funcs[f];

		if (!r->funcs[f].best)
			continue;
		for (size_t i = 0; i < r->func_buckets + 2; i++) {
			const struct mp_call *c = &r->funcs[f].best[i];
			struct mp_call *nc;

			if (c->t_end < c->t_start)
				continue;
			if (fn->n == fn->cap) {
				size_t ncap = fn->cap ? fn->cap * 2 : 16;

				nc = realloc(fn->calls, ncap * sizeof(*nc));
				if (!nc)
					return -ENOMEM;
				fn->calls = nc;
				fn->cap = ncap;
			}
			fn->calls[fn->n++] = *c;
		}
	}
	return 0;
}

static void reducer_release(struct reducer *r)
{
	free(r->mem.b);
	for (size_t k = 0; k < r->nkids_cap; k++)
		free(r->kids[k].b);
	free(r->kids);
	for (size_t f = 0; f < r->nfuncs_cap; f++)
		free(r->funcs[f].best);
	free(r->funcs);
}

int mp_datfile__read_reduced(struct mp_datfile *df, const char *path,
			     const struct mp_reduce_opts *o)
{
	struct count c = { .t0 = NAN };
	struct reducer r = { .df = df, .o = o };
	struct mp_scan sc;
	size_t total, budget = o->max_points ? o->max_points : (4u << 20), nkids;
	int err;

	mp_datfile__init(&c.kids);
	err = mp_datfile__scan(path, count_record, &c, &sc);
	nkids = c.kids.n_children;
	mp_datfile__release(&c.kids);
	if (err) {
		mp_datfile__copy_scan(df, &sc);
		return err;
	}
	total = c.mem + c.chld + 2 * c.calls;
	if (total <= budget) {
		err = mp_datfile__read(df, path);
		df->n_points = c.mem + c.chld;
		df->n_mem = c.mem;
		return err;
	}
	r.t0 = isnan(c.t0) ? c.tmin : c.t0;
	r.lo = o->window ? r.t0 + o->xmin : c.tmin;
	r.hi = o->window ? r.t0 + o->xmax : c.tmax;
	r.kid_buckets = nkids ? (budget / 4 - MEM_BUCKETS) / nkids : MIN_BUCKETS;
	if (r.kid_buckets > MEM_BUCKETS)
		r.kid_buckets = MEM_BUCKETS;
	if (r.kid_buckets < MIN_BUCKETS)
		r.kid_buckets = MIN_BUCKETS;
	r.keep_calls = c.calls <= MAX_CALLS;
	r.func_buckets = FUNC_BUCKETS;
	err = rseries_init(&r.mem, MEM_BUCKETS);
	if (!err)
		err = mp_datfile__scan(path, reduce_record, &r, &sc);
	mp_datfile__copy_scan(df, &sc);
	if (!err)
		err = rseries_emit(&r.mem, &df->mem);
	for (size_t k = 0; !err && k < df->n_children && k < r.nkids_cap; k++)
		if (r.kids[k].b)
			err = rseries_emit(&r.kids[k], &df->children[k].s);
	if (!err && !r.keep_calls)
		err = emit_funcs(&r);
	df->reduced = true;
	df->n_points = c.mem + c.chld;
	df->n_mem = c.mem;
	reducer_release(&r);
	return err;
}
