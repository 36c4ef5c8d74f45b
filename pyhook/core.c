/* core.c - per-thread frame stacks and line attribution (see hook.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "meter.h"

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
static struct mp_line *tab_line_grow(struct mp_table *t, int line)
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

static inline struct mp_line *tab_line(struct mp_table *t, int line)
{
	int i = line - t->base;

	if (t->lines && i >= 0 && i < t->nlines)
		return &t->lines[i];
	return tab_line_grow(t, line);
}

static void line_open(struct mp_frame *fr, int line, uint64_t now, int count)
{
	fr->line = line;
	fr->start = now;
	fr->acc_peak = now;
	fr->inner = 0;
	mp_meter_mark(fr->mk, now);
	if (count && line > 0) {
		struct mp_line *l = tab_line(fr->tab, line);

		if (l) {
			l->occ++;
			fr->tab->hits++;
		}
	}
}

/* The nearest frame under index i of ts that measures with meter mk: the one
 * whose peak window a new mark of mk cuts short. NULL if none. */
static struct mp_frame *under_same_meter(struct mp_tstate *ts, int i, int mk)
{
	for (i--; i >= 0; i--)
		if (ts->v[i].mk == mk)
			return &ts->v[i];
	return NULL;
}

/* End the open line of fr at `now`: charge it, hand its delta to the
 * enclosing frame of the same table and its peak to the nearest enclosing
 * frame of the same meter. Returns the line's peak (0 when none was open). */
static uint64_t line_close(struct mp_tstate *ts, struct mp_frame *fr, uint64_t now)
{
	struct mp_frame *under;
	int64_t delta;
	uint64_t pk;
	struct mp_line *l;

	if (fr->line < 0)
		return 0;
	delta = (int64_t)(now - fr->start);
	pk = mp_meter_peak(fr->mk);
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
	under = under_same_meter(ts, (int)(fr - ts->v), fr->mk);
	if (under && pk > under->acc_peak)
		under->acc_peak = pk;
	fr->line = -1;
	return pk;
}

/* Pop the top frame; returns the peak of its last line (0 if none). */
static uint64_t pop_top(struct mp_tstate *ts)
{
	struct mp_frame *fr = &ts->v[ts->n - 1];
	ProfilerObject *prof = fr->prof;
	uint64_t now = mp_meter_now(fr->mk), pk;

	pk = line_close(ts, fr, now);
	if (fr->same_parent < 0)
		fr->tab->last_exit = now;
	ts->n--;
	Py_DECREF(prof);
	return pk;
}

void mp_on_start(struct mp_tstate *ts, const void *id, PyObject *code,
		 struct mp_code *mc, int fresh, int line)
{
	struct mp_bind *b = mp_code_active(mc);
	struct mp_frame *fr, *under;
	uint64_t now;
	int i, mk;

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
	mk = b->prof->mk;
	now = mp_meter_now(mk);
	/* Our mark restarts the peak window of that meter: keep what it saw. */
	under = under_same_meter(ts, ts->n, mk);
	if (under) {
		uint64_t pk = mp_meter_peak(mk);

		if (pk > under->acc_peak)
			under->acc_peak = pk;
	}
	fr = &ts->v[ts->n];
	fr->id = id;
	fr->code = code;
	fr->tab = b->tab;
	fr->prof = b->prof;
	fr->mk = mk;
	Py_INCREF(fr->prof);
	fr->same_parent = -1;
	for (i = ts->n - 1; i >= 0; i--) {
		if (ts->v[i].tab == fr->tab) {
			fr->same_parent = i;
			break;
		}
	}
	ts->n++;
	/* 0.61 counts a call at co_firstlineno and a resumption at its line. */
	line_open(fr, fresh ? mc->firstlineno : line, now, 1);
	if (fresh && fr->same_parent < 0) {
		struct mp_line *l = tab_line(fr->tab, mc->firstlineno);

		/* The memory at entry, less what the previous call left. */
		if (l)
			l->inc += (int64_t)(now - fr->tab->last_exit);
	}
}

/* --pdb-mmem: memory reached the limit during `line` of the current frame;
 * hand over to the profiler's callback (which starts the debugger there). */
static void max_mem_hit(ProfilerObject *prof, uint64_t peak, int line, const char *event,
			PyObject *arg)
{
	PyObject *cb = prof->on_max_mem, *frame, *res;

	prof->max_mem = 0;	/* once: the debugger takes over from here */
	if (!cb)
		return;
	frame = (PyObject *)PyEval_GetFrame();
	Py_INCREF(cb);
	res = PyObject_CallFunction(cb, "OdsOi", frame ? frame : Py_None,
				    (double)peak / (1024.0 * 1024.0), event, arg ? arg : Py_None,
				    line);
	if (!res)
		PyErr_WriteUnraisable(cb);
	Py_XDECREF(res);
	Py_DECREF(cb);
}

/* Make the frame `id` the top of ts: pop the frames above it, which ended
 * without telling us, or adopt it when it started before we listened.
 * Returns it, or NULL when it is not ours. */
static struct mp_frame *frame_for(struct mp_tstate *ts, const void *id, PyObject *code)
{
	struct mp_code *mc;
	int i;

	if (ts->n && ts->v[ts->n - 1].id == id)
		return &ts->v[ts->n - 1];
	for (i = ts->n - 1; i >= 0 && ts->v[i].id != id; i--)
		;
	if (i >= 0) {
		while (ts->n - 1 > i)
			pop_top(ts);
		return &ts->v[ts->n - 1];
	}
	mc = mp_code_lookup(code);
	if (!mc)
		return NULL;
	mp_on_start(ts, id, code, mc, 0, -1);
	if (!ts->n || ts->v[ts->n - 1].id != id)
		return NULL;
	return &ts->v[ts->n - 1];
}

/* One more occurrence of the line open in fr (its counters exist: it was
 * counted when it opened). */
static inline void count_again(struct mp_frame *fr)
{
	struct mp_table *t = fr->tab;
	int i = fr->line - t->base;

	if (t->lines && i >= 0 && i < t->nlines)
		t->lines[i].occ++;
}

void mp_on_line(struct mp_tstate *ts, const void *id, PyObject *code, int line)
{
	struct mp_frame *fr;
	uint64_t now, pk;
	int closed;

	if (ts->n && ts->v[ts->n - 1].id == id)
		fr = &ts->v[ts->n - 1];
	else if (!(fr = frame_for(ts, id, code)))
		return;
	if (line == fr->line) {
		/* Another pass over the open line (a loop inside it): the same
		 * span goes on, one more occurrence. */
		count_again(fr);
		return;
	}
	now = mp_meter_now(fr->mk);
	closed = fr->line;
	pk = line_close(ts, fr, now);
	line_open(fr, line, now, 1);
	if (fr->prof->max_mem && closed > 0 && pk >= fr->prof->max_mem)
		max_mem_hit(fr->prof, pk, closed, "line", NULL);
}

void mp_on_same_line(struct mp_tstate *ts, const void *id, int line)
{
	struct mp_frame *fr;

	if (!ts->n || (fr = &ts->v[ts->n - 1])->id != id)
		return;
	if (fr->line != line) {
		mp_on_line(ts, id, fr->code, line);
		return;
	}
	count_again(fr);
}

void mp_on_exit(struct mp_tstate *ts, const void *id, enum mp_exit_kind kind,
		PyObject *retval)
{
	ProfilerObject *prof;
	uint64_t pk;
	int i, line;

	for (i = ts->n - 1; i >= 0 && ts->v[i].id != id; i--)
		;
	if (i < 0)
		return;
	while (ts->n - 1 > i)
		pop_top(ts);
	line = ts->v[i].line;
	prof = ts->v[i].prof;
	if (!prof->max_mem || kind != MP_EXIT_RETURN) {
		pop_top(ts);
		return;
	}
	Py_INCREF(prof);	/* pop_top drops the frame's reference */
	pk = pop_top(ts);
	if (line > 0 && pk >= prof->max_mem)
		max_mem_hit(prof, pk, line, "return", retval);
	Py_DECREF(prof);
}

/* Close every open frame of the thread (its tracer is going away). */
void mp_flush_thread(struct mp_tstate *ts)
{
	while (ts->n > 0)
		pop_top(ts);
}
