/* hook.h - state shared by the parts of the _mprof_hook extension.
 *
 * The attribution model (the reason this is C, not a Python tracer):
 *  - every profiled frame segment (a call, or a generator resumption) is an
 *    entry of the running thread's frame stack; its "previous line" is its
 *    own, never another frame's;
 *  - a line's execution runs from its LINE event to the next event that
 *    ends it (next LINE, return, yield, unwind) in the same frame; its
 *    Increment is the RSS change across that span, minus what lines of the
 *    same table (recursion, nested comprehensions) already charged inside
 *    it, so a table's increments add up to its outermost frames' net change;
 *    lines calling *other* profiled functions keep what the callee left
 *    behind;
 *  - its Mem usage is the highest RSS seen during the span, callees
 *    included (peaks are folded into the parent frame when a child line
 *    ends).
 */
#ifndef MPROF_HOOK_H
#define MPROF_HOOK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "ptrmap.h"

#define MP_PY312 (PY_VERSION_HEX >= 0x030C0000)

/* Keep a pending exception across calls that must run with none set
 * (PyErr_Fetch is deprecated from 3.12 on). */
#if MP_PY312
typedef struct { PyObject *e; } mp_err;
static inline mp_err mp_err_save(void)
{
	mp_err s = { PyErr_GetRaisedException() };
	return s;
}
static inline void mp_err_restore(mp_err s)
{
	PyErr_SetRaisedException(s.e);
}
#else
typedef struct { PyObject *t, *v, *tb; } mp_err;
static inline mp_err mp_err_save(void)
{
	mp_err s;
	PyErr_Fetch(&s.t, &s.v, &s.tb);
	return s;
}
static inline void mp_err_restore(mp_err s)
{
	PyErr_Restore(s.t, s.v, s.tb);
}
#endif

struct mp_line {
	int64_t inc;		/* bytes, summed over executions */
	uint64_t peak;		/* bytes, max over executions */
	uint64_t occ;		/* executions */
};

/* One decorated function inside one profiler. */
struct mp_table {
	PyObject *code;		/* top-level code object (strong) */
	PyObject *filename;	/* str (strong) */
	PyObject *name;		/* "module.function" (strong) */
	int first;		/* first source line of the report span */
	int nsrc;		/* number of source lines in the span */
	int base;		/* line number of lines[0] */
	int nlines;
	struct mp_line *lines;
	uint64_t hits;
};

typedef struct mp_profiler {
	PyObject_HEAD
	struct mp_table **tabs;	/* registration order */
	int ntabs, captabs;
	PyObject *codes;	/* list: every code object bound to a table */
	long enable_count;
	uint64_t max_mem;	/* --pdb-mmem threshold in bytes, 0 = off */
	PyObject *on_max_mem;	/* callable(frame, mib) */
	PyObject *weakrefs;
} ProfilerObject;

/* Registry entry of a code object bound by at least one live profiler. */
struct mp_bind {
	ProfilerObject *prof;	/* borrowed: unbound before the profiler dies */
	struct mp_table *tab;
};

struct mp_code {
	PyObject *code;		/* strong */
	int firstlineno;
	int first_resume;	/* 3.11: byte offset of the first RESUME */
	int nbind, capbind;
	struct mp_bind *bind;	/* newest first */
};

struct mp_frame {
	const void *id;		/* frame object (<= 3.11) or code (3.12+) */
	PyObject *code;		/* borrowed, identity only */
	struct mp_table *tab;
	ProfilerObject *prof;	/* strong: keeps tab alive */
	int line;		/* open line, -1 none */
	int same_parent;	/* index of the nearest enclosing frame of the
				 * same table on this stack, -1 none */
	int swallow;		/* ignore one LINE event for `line` (resume) */
	uint64_t start;		/* RSS when the open line started */
	uint64_t acc_peak;	/* peak folded in from callees */
	int64_t inner;		/* same-table charges inside the open line */
};

struct mp_tstate {
	struct mp_frame *v;
	int n, cap;
	int trace_depth;	/* <= 3.11: enables of the C tracer */
	Py_tracefunc saved_func;
	PyObject *saved_obj;
};

extern struct ptrmap mp_codes;
/* The calling thread's state, NULL until mp_tstate_get() made it. */
extern _Thread_local struct mp_tstate *mp_tls;

/*
 * Benchmark floor (MPROF_HOOK_NOOP=1 in the environment): line events still reach the hook's C
 * callback, which returns at once. bench/bench_pyhook.py uses it to measure what the interpreter
 * itself charges for delivering a line event, the floor under any per-line hook.
 */
extern int mp_noop_lines;

struct mp_tstate *mp_tstate_get(void);
struct mp_code *mp_code_lookup(PyObject *code);
struct mp_bind *mp_code_active(struct mp_code *mc);

/* The event core, shared by sys.monitoring and the C trace function. */
void mp_on_start(struct mp_tstate *ts, const void *id, PyObject *code,
		 struct mp_code *mc, int fresh, int line);
void mp_on_line(struct mp_tstate *ts, const void *id, PyObject *code, int line);
void mp_on_exit(struct mp_tstate *ts, const void *id);
void mp_flush_thread(struct mp_tstate *ts);

#endif
