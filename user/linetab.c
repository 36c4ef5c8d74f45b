#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "linetab.h"

uint64_t mp_linetab__add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void mp_linetab__release(struct mp_linetab *t)
{
	free(t->procs);
	free(t->group_store);
	free(t->row_store);
	memset(t, 0, sizeof(*t));
}

/* A record and its position, sorted into (pid, special, file, func, line) runs. */
struct item {
	const struct mp_line_rec *r;
	size_t idx;
	bool special;
};

static int item_cmp(const void *a, const void *b)
{
	const struct item *p = a, *q = b;
	int c;

	if (p->r->pid != q->r->pid)
		return (p->r->pid > q->r->pid) - (p->r->pid < q->r->pid);
	if (p->special != q->special)
		return p->special ? 1 : -1;
	if (p->special) {
		/* one group per process: a row per kind */
		c = strcmp(p->r->func, q->r->func);
	} else {
		c = strcmp(p->r->file, q->r->file);
		if (!c)
			c = strcmp(p->r->func, q->r->func);
		if (!c && p->r->line != q->r->line)
			c = (p->r->line > q->r->line) - (p->r->line < q->r->line);
	}
	if (c)
		return c;
	return (p->idx > q->idx) - (p->idx < q->idx);
}

static bool same_group(const struct item *p, const struct item *q)
{
	return p->r->pid == q->r->pid && p->special == q->special &&
	       (p->special || (!strcmp(p->r->file, q->r->file) && !strcmp(p->r->func, q->r->func)));
}

static bool same_row(const struct item *p, const struct item *q)
{
	return same_group(p, q) && (p->special ? !strcmp(p->r->func, q->r->func) :
						 p->r->line == q->r->line);
}

/* Heavier first: more bytes grown, then (the same grown) a larger net increment: less freed. */
static int weight_cmp(uint64_t ga, uint64_t fa, uint64_t gb, uint64_t fb)
{
	if (ga != gb)
		return ga > gb ? -1 : 1;
	return (fa > fb) - (fa < fb);
}

static int row_cmp(const void *a, const void *b)
{
	const struct mp_linetab_row *p = a, *q = b;
	int c = weight_cmp(p->grown, p->freed, q->grown, q->freed);

	if (c)
		return c;
	if (p->line != q->line)
		return (p->line > q->line) - (p->line < q->line);
	return (p->first > q->first) - (p->first < q->first);
}

static int group_cmp(const void *a, const void *b)
{
	const struct mp_linetab_group *p = a, *q = b;
	int c = weight_cmp(p->grown, p->freed, q->grown, q->freed);

	if (c)
		return c;
	return (p->first > q->first) - (p->first < q->first);
}

static int proc_cmp(const void *a, const void *b)
{
	const struct mp_linetab_proc *p = a, *q = b;
	int c = weight_cmp(p->grown, p->freed, q->grown, q->freed);

	if (c)
		return c;
	return (p->first > q->first) - (p->first < q->first);
}

static void add_counts(uint64_t *g, uint64_t *f, uint64_t *e, uint64_t dg, uint64_t df,
		       uint64_t de)
{
	*g = mp_linetab__add(*g, dg);
	*f = mp_linetab__add(*f, df);
	*e = mp_linetab__add(*e, de);
}

int mp_linetab__build(struct mp_linetab *t, const struct mp_datfile *df)
{
	size_t n = df->n_line_recs, nrows = 0, ngroups = 0, nprocs = 0;
	struct item *items;

	memset(t, 0, sizeof(*t));
	if (!n)
		return 0;
	items = malloc(n * sizeof(*items));
	/* at most one row, group and process per record */
	t->row_store = malloc(n * sizeof(*t->row_store));
	t->group_store = malloc(n * sizeof(*t->group_store));
	t->procs = malloc(n * sizeof(*t->procs));
	if (!items || !t->row_store || !t->group_store || !t->procs) {
		free(items);
		mp_linetab__release(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		items[i].r = &df->line_recs[i];
		items[i].idx = i;
		items[i].special = mp_line_rec__special(&df->line_recs[i]);
	}
	qsort(items, n, sizeof(*items), item_cmp);

	for (size_t i = 0; i < n; i++) {
		const struct item *it = &items[i];
		const struct mp_line_rec *r = it->r;
		struct mp_linetab_proc *pr;
		struct mp_linetab_group *g;
		struct mp_linetab_row *row;

		if (!i || it->r->pid != items[i - 1].r->pid) {
			pr = &t->procs[nprocs++];
			memset(pr, 0, sizeof(*pr));
			pr->pid = r->pid;
			pr->groups = &t->group_store[ngroups];
			pr->first = it->idx;
		}
		pr = &t->procs[nprocs - 1];
		if (!i || !same_group(it, &items[i - 1])) {
			g = &t->group_store[ngroups++];
			memset(g, 0, sizeof(*g));
			g->file = it->special ? "-" : r->file;
			g->func = it->special ? NULL : r->func;
			g->special = it->special;
			g->rows = &t->row_store[nrows];
			g->first = it->idx;
			pr->n++;
		}
		g = &t->group_store[ngroups - 1];
		if (!i || !same_row(it, &items[i - 1])) {
			row = &t->row_store[nrows++];
			memset(row, 0, sizeof(*row));
			row->line = it->special ? 0 : r->line;
			row->name = r->func;
			row->first = it->idx;
			g->n++;
		}
		row = &t->row_store[nrows - 1];
		/* items of a run come in file order: the first index of each is its first record */
		if (it->idx < pr->first)
			pr->first = it->idx;
		if (it->idx < g->first)
			g->first = it->idx;
		add_counts(&row->grown, &row->freed, &row->events, r->grown, r->freed, r->events);
		add_counts(&g->grown, &g->freed, &g->events, r->grown, r->freed, r->events);
		add_counts(&pr->grown, &pr->freed, &pr->events, r->grown, r->freed, r->events);
	}
	free(items);
	t->n = nprocs;
	for (size_t p = 0; p < nprocs; p++) {
		struct mp_linetab_proc *pr = &t->procs[p];

		for (size_t k = 0; k < pr->n; k++)
			qsort(pr->groups[k].rows, pr->groups[k].n, sizeof(*pr->groups[k].rows),
			      row_cmp);
		qsort(pr->groups, pr->n, sizeof(*pr->groups), group_cmp);
	}
	qsort(t->procs, nprocs, sizeof(*t->procs), proc_cmp);
	return 0;
}
