/* core.c - per-thread frame stacks and line attribution (see hook.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "rss.h"

struct ptrmap mp_codes = PTRMAP_INIT;

_Thread_local struct mp_tstate *mp_tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;

/*
 * Thread exit: free the stack. Frames still on it (a thread killed in the
 * middle of a profiled call) keep their profiler references: we cannot take
 * the GIL here, so they are leaked rather than released unsafely.
 */
static void tstate_free(void *p)
{
	struct mp_tstate *ts = p;

	if (!ts || ts->n > 0)
		return;
	free(ts->v);
	free(ts);
}

static void tls_init(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tstate_free) == 0;
}

/* mp_tstate_get - the calling thread's state, created on first use; NULL
 * on allocation failure (the event is then dropped). */
struct mp_tstate *mp_tstate_get(void)
{
	struct mp_tstate *ts = mp_tls;

	if (ts)
		return ts;
	pthread_once(&tls_once, tls_init);
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return NULL;
	if (tls_key_ok && pthread_setspecific(tls_key, ts) != 0) {
		free(ts);
		return NULL;
	}
	mp_tls = ts;
	return ts;
}

struct mp_code *mp_code_lookup(PyObject *code)
{
	return ptrmap_get(&mp_codes, code);
}

/* The newest binding whose profiler is enabled, or NULL. */
struct mp_bind *mp_code_active(struct mp_code *mc)
{
	int i;

	for (i = 0; i < mc->nbind; i++)
		if (mc->bind[i].prof->enable_count > 0)
			return &mc->bind[i];
	return NULL;
}

/* The counters of `line` in tab, growing the array; NULL if impossible. */
static struct mp_line *tab_line(struct mp_table *t, int line)
{
	if (line <= 0)
		return NULL;
	if (!t->lines) {
		int n = t->nsrc > 0 ? t->nsrc : 16;

		t->base = t->first > 0 && t->first <= line ? t->first : line;
		if (line - t->base >= n)
			n = line - t->base + 16;
		t->lines = calloc((size_t)n, sizeof(*t->lines));
		if (!t->lines)
			return NULL;
		t->nlines = n;
	}
	if (line < t->base) {
		int shift = t->base - line;
		struct mp_line *nl = calloc((size_t)(t->nlines + shift), sizeof(*nl));

		if (!nl)
			return NULL;
		memcpy(nl + shift, t->lines, (size_t)t->nlines * sizeof(*nl));
		free(t->lines);
		t->lines = nl;
		t->nlines += shift;
		t->base = line;
	}
	if (line - t->base >= t->nlines) {
		int n = line - t->base + 16;
		struct mp_line *nl = realloc(t->lines, (size_t)n * sizeof(*nl));

		if (!nl)
			return NULL;
		memset(nl + t->nlines, 0, (size_t)(n - t->nlines) * sizeof(*nl));
		t->lines = nl;
		t->nlines = n;
	}
	return &t->lines[line - t->base];
}

static void line_open(struct mp_frame *fr, int line, uint64_t now, int count)
{
	fr->line = line;
	fr->start = now;
	fr->acc_peak = now;
	fr->inner = 0;
	rss_mark(now);
	if (count && line > 0) {
		struct mp_line *l = tab_line(fr->tab, line);

		if (l) {
			l->occ++;
			fr->tab->hits++;
		}
	}
}

/* End the open line of fr at `now`: charge it, hand its delta to the
 * enclosing frame of the same table and its peak to the parent frame. */
static void line_close(struct mp_tstate *ts, struct mp_frame *fr, uint64_t now)
{
	int64_t delta;
	uint64_t pk;
	struct mp_line *l;

	if (fr->line < 0)
		return;
	delta = (int64_t)(now - fr->start);
	pk = rss_peak_since_mark();
	if (fr->acc_peak > pk)
		pk = fr->acc_peak;
	if (now > pk)
		pk = now;
	l = tab_line(fr->tab, fr->line);
	if (l) {
		l->inc += delta - fr->inner;
		if (pk > l->peak)
			l->peak = pk;
	}
	if (fr->same_parent >= 0)
		ts->v[fr->same_parent].inner += delta;
	if (fr > ts->v && pk > fr[-1].acc_peak)
		fr[-1].acc_peak = pk;
	fr->line = -1;
}

static void pop_top(struct mp_tstate *ts, uint64_t now)
{
	struct mp_frame *fr = &ts->v[ts->n - 1];
	ProfilerObject *prof = fr->prof;

	line_close(ts, fr, now);
	ts->n--;
	Py_DECREF(prof);
}

void mp_on_start(struct mp_tstate *ts, const void *id, PyObject *code,
		 struct mp_code *mc, int fresh, int line)
{
	struct mp_bind *b = mp_code_active(mc);
	struct mp_frame *fr;
	uint64_t now;
	int i;

	if (!b)
		return;
	if (ts->n == ts->cap) {
		int ncap = ts->cap ? ts->cap * 2 : 32;
		struct mp_frame *nv = realloc(ts->v, (size_t)ncap * sizeof(*nv));

		if (!nv)
			return;	/* its events will not match the stack: dropped */
		ts->v = nv;
		ts->cap = ncap;
	}
	now = rss_now();
	if (ts->n > 0) {
		uint64_t pk = rss_peak_since_mark();
		struct mp_frame *top = &ts->v[ts->n - 1];

		if (pk > top->acc_peak)
			top->acc_peak = pk;
	}
	fr = &ts->v[ts->n];
	fr->id = id;
	fr->code = code;
	fr->tab = b->tab;
	fr->prof = b->prof;
	Py_INCREF(fr->prof);
	fr->same_parent = -1;
	for (i = ts->n - 1; i >= 0; i--) {
		if (ts->v[i].tab == fr->tab) {
			fr->same_parent = i;
			break;
		}
	}
	ts->n++;
	line_open(fr, fresh ? mc->firstlineno : line, now, fresh);
	fr->swallow = 1;
}

static void max_mem_hit(struct mp_frame *fr, uint64_t now)
{
	ProfilerObject *prof = fr->prof;
	PyObject *cb = prof->on_max_mem, *frame, *res;

	prof->max_mem = 0;	/* once: the debugger takes over from here */
	if (!cb)
		return;
	frame = (PyObject *)PyEval_GetFrame();
	Py_INCREF(cb);
	res = PyObject_CallFunction(cb, "Od", frame ? frame : Py_None,
				    (double)now / (1024.0 * 1024.0));
	if (!res)
		PyErr_WriteUnraisable(cb);
	Py_XDECREF(res);
	Py_DECREF(cb);
}

void mp_on_line(struct mp_tstate *ts, const void *id, PyObject *code, int line)
{
	struct mp_frame *fr = ts->n ? &ts->v[ts->n - 1] : NULL;
	uint64_t now;

	if (!fr || fr->id != id) {
		int i;
		struct mp_code *mc;

		for (i = ts->n - 1; i >= 0 && ts->v[i].id != id; i--)
			;
		if (i >= 0) {
			/* Frames above it ended without telling us. */
			now = rss_now();
			while (ts->n - 1 > i)
				pop_top(ts, now);
		} else {
			/* Started before we were listening: adopt it. */
			mc = mp_code_lookup(code);
			if (!mc)
				return;
			mp_on_start(ts, id, code, mc, 0, -1);
			if (!ts->n || ts->v[ts->n - 1].id != id)
				return;
		}
		fr = &ts->v[ts->n - 1];
	}
	if (fr->swallow) {
		fr->swallow = 0;
		if (line == fr->line)
			return;
	}
	now = rss_now();
	line_close(ts, fr, now);
	line_open(fr, line, now, 1);
	if (fr->prof->max_mem && now >= fr->prof->max_mem)
		max_mem_hit(fr, now);
}

void mp_on_exit(struct mp_tstate *ts, const void *id)
{
	int i;
	uint64_t now;

	for (i = ts->n - 1; i >= 0 && ts->v[i].id != id; i--)
		;
	if (i < 0)
		return;
	now = rss_now();
	while (ts->n > i)
		pop_top(ts, now);
}

/* Close every open frame of the thread (its tracer is going away). */
void mp_flush_thread(struct mp_tstate *ts)
{
	uint64_t now;

	if (!ts->n)
		return;
	now = rss_now();
	while (ts->n > 0)
		pop_top(ts, now);
}
