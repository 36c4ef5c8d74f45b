/* hook.h - state shared by the parts of the _mprof_hook extension.
 *
 * The attribution model (the reason this is C, not a Python tracer):
 *  - every profiled frame segment (a call, or a generator resumption) is an
 *    entry of the running thread's frame stack; its "previous line" is its
 *    own, never another frame's;
 *  - a line's execution runs from its LINE event to the next event that
 *    ends it (next LINE, return, yield, unwind) in the same frame; its
 *    Increment is the change of the profiler's meter (meter.h: RSS by
 *    default) across that span, minus what lines of the same table
 *    (recursion, nested comprehensions) already charged inside it, so a
 *    table's increments add up to its outermost frames' net change; lines
 *    calling *other* profiled functions keep what the callee left behind;
 *  - the first row (co_firstlineno: the decorator or def line) also gets the
 *    memory at entry of each outermost call, less what the table's previous
 *    outermost call left at its exit, as memory_profiler 0.61 shows it; so
 *    all the increments of a table add up to the memory at its last exit;
 *  - its Mem usage is the highest value seen during the span, callees
 *    included (peaks are folded into the nearest enclosing frame of the same
 *    meter when a child line ends);
 *  - Occurrences count what 0.61's sys.settrace tracer counts: one per frame
 *    segment start (call or resumption, charged to the line it starts on) and
 *    one per line event, including a backward jump to the same line (a loop
 *    inside one line: comprehensions, generator expressions).
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
	uint64_t last_exit;	/* meter value when an outermost frame of the
				 * table last ended (0: never) */
};

typedef struct mp_profiler {
	PyObject_HEAD
	struct mp_table **tabs;	/* registration order */
	int ntabs, captabs;
	PyObject *codes;	/* list: every code object bound to a table */
	long enable_count;
	int mk;			/* meter (meter.h): backend and include_children */
	uint64_t max_mem;	/* --pdb-mmem threshold in bytes, 0 = off */
	PyObject *on_max_mem;	/* callable(frame, mib, event, arg, line) */
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
	int mk;			/* the profiler's meter */
	uint64_t start;		/* meter value when the open line started */
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
/*
 * mp_on_start - a frame of a bound code object starts (fresh: a call, at
 * co_firstlineno) or resumes at `line` (a generator or coroutine; -1 when it
 * is adopted mid-way and the line is unknown).
 */
void mp_on_start(struct mp_tstate *ts, const void *id, PyObject *code,
		 struct mp_code *mc, int fresh, int line);
/* mp_on_line - a line event (also a backward jump to the same line). */
void mp_on_line(struct mp_tstate *ts, const void *id, PyObject *code, int line);
/* mp_on_same_line - a backward jump to the open line of the top frame `id`:
 * counts one occurrence without reading memory. */
void mp_on_same_line(struct mp_tstate *ts, const void *id, int line);

enum mp_exit_kind { MP_EXIT_RETURN, MP_EXIT_UNWIND };
/* mp_on_exit - frame `id` returns or yields (retval borrowed, may be NULL)
 * or is unwound by an exception. */
void mp_on_exit(struct mp_tstate *ts, const void *id, enum mp_exit_kind kind,
		PyObject *retval);
void mp_flush_thread(struct mp_tstate *ts);

#endif
