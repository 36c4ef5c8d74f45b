/* trace.c - how events reach the core.
 *
 * 3.12+: sys.monitoring (PEP 669). PY_START, PY_RESUME, PY_RETURN, PY_YIELD,
 * LINE, JUMP and BRANCH are local events, switched on only for the code
 * objects of decorated functions, so undecorated code runs at full speed.
 * PY_UNWIND and PY_THROW cannot be local; they are switched on once and cost
 * a pointer lookup per unwound frame. JUMP and BRANCH are there to count a
 * backward jump to the same line as sys.settrace (and so 0.61) counts it; any
 * other jump disables its own location on first sight, so a loop over
 * several lines pays for it once, not per iteration.
 *
 * <= 3.11: a C trace function (PyEval_SetTrace) installed on a thread only
 * while a profiled call runs on it; frames of undecorated code get
 * f_trace_lines = 0 so they produce no line events.
 */
#include "trace.h"
#include "rss.h"

#include <frameobject.h>

#if PY_VERSION_HEX >= 0x030B0000 && !MP_PY312
#include <opcode.h>
#endif

#if MP_PY312

static int tool_id = -1;
static PyObject *mon;		/* sys.monitoring */
static PyObject *mon_disable;	/* sys.monitoring.DISABLE */
static long ev_local;
static long ev_global;

/* Whether the jump at byte offset `from` of a code object stays on one
 * line: the last two answers per thread (a loop asks the same each time).
 * A code object switched off may be freed and its address reused: the
 * generation, bumped then, retires every thread's answers. */
struct jump_memo {
	const void *code;
	long from, to;
	unsigned long gen;
	int line;		/* of `to`; -1: the jump leaves its line */
};
static _Thread_local struct jump_memo jmemo[2];
static _Thread_local int jmemo_next;
static unsigned long jmemo_gen = 1;

static PyObject *cb_start(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	struct mp_code *mc;
	struct mp_tstate *ts;

	(void)self;
	if (n < 1)
		Py_RETURN_NONE;
	mc = mp_code_lookup(args[0]);
	if (mc && (ts = mp_tstate_get()))
		mp_on_start(ts, args[0], args[0], mc, 1, 0);
	Py_RETURN_NONE;
}

/* PY_RESUME and PY_THROW: a suspended generator or coroutine continues. */
static PyObject *cb_resume(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	struct mp_code *mc;
	struct mp_tstate *ts;
	long off;

	(void)self;
	if (n < 2 || !(mc = mp_code_lookup(args[0])) || !(ts = mp_tstate_get()))
		Py_RETURN_NONE;
	off = PyLong_AsLong(args[1]);
	if (off == -1 && PyErr_Occurred()) {
		PyErr_Clear();
		Py_RETURN_NONE;
	}
	mp_on_start(ts, args[0], args[0], mc, 0,
		    PyCode_Addr2Line((PyCodeObject *)args[0], (int)off));
	Py_RETURN_NONE;
}

static PyObject *cb_line(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	struct mp_tstate *ts;
	long line;

	(void)self;
	if (mp_noop_lines || n < 2 || !(ts = mp_tstate_get()))
		Py_RETURN_NONE;
	line = PyLong_AsLong(args[1]);
	if (line == -1 && PyErr_Occurred()) {
		PyErr_Clear();
		Py_RETURN_NONE;
	}
	mp_on_line(ts, args[0], args[0], (int)line);
	Py_RETURN_NONE;
}

/* PY_RETURN, PY_YIELD: the frame segment ends (args: code, offset, value). */
static PyObject *cb_exit(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	struct mp_tstate *ts = mp_tls;

	(void)self;
	if (n >= 1 && ts && ts->n)
		mp_on_exit(ts, args[0], MP_EXIT_RETURN, n >= 3 ? args[2] : NULL);
	Py_RETURN_NONE;
}

/* PY_UNWIND: an exception leaves the frame. */
static PyObject *cb_unwind(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	struct mp_tstate *ts = mp_tls;

	(void)self;
	if (n >= 1 && ts && ts->n)
		mp_on_exit(ts, args[0], MP_EXIT_UNWIND, NULL);
	Py_RETURN_NONE;
}

static PyObject *disable(void)
{
	Py_INCREF(mon_disable);
	return mon_disable;
}

/* JUMP, BRANCH (args: code, from, to, byte offsets). sys.settrace reports a
 * backward jump within one line as a line event; so do we. Any other jump
 * never matters to us: its location is switched off for good. */
static PyObject *cb_jump(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	struct mp_tstate *ts;
	struct jump_memo *m = NULL;
	long from, to;
	int i, line;

	(void)self;
	if (n < 3)
		Py_RETURN_NONE;
	from = PyLong_AsLong(args[1]);
	to = PyLong_AsLong(args[2]);
	if ((from == -1 || to == -1) && PyErr_Occurred()) {
		PyErr_Clear();
		Py_RETURN_NONE;
	}
	if (to > from)
		return disable();
	for (i = 0; i < 2; i++)
		if (jmemo[i].code == args[0] && jmemo[i].from == from && jmemo[i].to == to &&
		    jmemo[i].gen == jmemo_gen)
			m = &jmemo[i];
	if (!m) {
		m = &jmemo[jmemo_next];
		jmemo_next ^= 1;
		m->code = args[0];
		m->from = from;
		m->to = to;
		m->gen = jmemo_gen;
		line = PyCode_Addr2Line((PyCodeObject *)args[0], (int)to);
		m->line = line == PyCode_Addr2Line((PyCodeObject *)args[0], (int)from) ? line : -1;
	}
	if (m->line < 0)
		return disable();
	line = m->line;
	ts = mp_tls;
	if (ts && ts->n && !mp_noop_lines)
		mp_on_same_line(ts, args[0], line);
	Py_RETURN_NONE;
}

static PyMethodDef cb_defs[] = {
	{ "_mp_py_start", (PyCFunction)(void (*)(void))cb_start, METH_FASTCALL, NULL },
	{ "_mp_py_resume", (PyCFunction)(void (*)(void))cb_resume, METH_FASTCALL, NULL },
	{ "_mp_line", (PyCFunction)(void (*)(void))cb_line, METH_FASTCALL, NULL },
	{ "_mp_exit", (PyCFunction)(void (*)(void))cb_exit, METH_FASTCALL, NULL },
	{ "_mp_unwind", (PyCFunction)(void (*)(void))cb_unwind, METH_FASTCALL, NULL },
	{ "_mp_jump", (PyCFunction)(void (*)(void))cb_jump, METH_FASTCALL, NULL },
};

static long event_bit(PyObject *events, const char *name)
{
	PyObject *v = PyObject_GetAttrString(events, name);
	long r;

	if (!v)
		return -1;
	r = PyLong_AsLong(v);
	Py_DECREF(v);
	return r;
}

static int register_cb(PyObject *events, const char *ev, PyMethodDef *def)
{
	long bit = event_bit(events, ev);
	PyObject *fn, *r;

	if (bit < 0)
		return -1;
	fn = PyCFunction_New(def, NULL);
	if (!fn)
		return -1;
	r = PyObject_CallMethod(mon, "register_callback", "ilO", tool_id, bit, fn);
	Py_DECREF(fn);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

int mp_trace_setup(void)
{
	/* The ids PEP 669 leaves unnamed first, so that cProfile (which
	 * insists on PROFILER_ID = 2 from 3.12 on) still works next to us. */
	static const int ids[] = { 3, 4, 2 };
	PyObject *sys = NULL, *events = NULL, *r;
	long b[9];
	size_t i;

	if (tool_id >= 0)
		return 0;
	sys = PyImport_ImportModule("sys");
	if (!sys)
		return -1;
	mon = PyObject_GetAttrString(sys, "monitoring");
	Py_DECREF(sys);
	if (!mon)
		return -1;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		r = PyObject_CallMethod(mon, "use_tool_id", "is", ids[i], "memory_profiler");
		if (r) {
			Py_DECREF(r);
			tool_id = ids[i];
			break;
		}
		if (!PyErr_ExceptionMatches(PyExc_ValueError))
			goto fail;
		PyErr_Clear();
	}
	if (tool_id < 0) {
		PyErr_SetString(PyExc_RuntimeError,
				"no free sys.monitoring tool id (3, 4 and 2 are taken)");
		goto fail;
	}
	events = PyObject_GetAttrString(mon, "events");
	if (!events)
		goto fail;
	b[0] = event_bit(events, "PY_START");
	b[1] = event_bit(events, "PY_RESUME");
	b[2] = event_bit(events, "PY_RETURN");
	b[3] = event_bit(events, "PY_YIELD");
	b[4] = event_bit(events, "LINE");
	b[5] = event_bit(events, "PY_UNWIND");
	b[6] = event_bit(events, "PY_THROW");
	b[7] = event_bit(events, "JUMP");
	b[8] = event_bit(events, "BRANCH");
	for (i = 0; i < 9; i++)
		if (b[i] < 0)
			goto fail;
	ev_local = b[0] | b[1] | b[2] | b[3] | b[4] | b[7] | b[8];
	ev_global = b[5] | b[6];
	mon_disable = PyObject_GetAttrString(mon, "DISABLE");
	if (!mon_disable)
		goto fail;
	if (register_cb(events, "PY_START", &cb_defs[0]) ||
	    register_cb(events, "PY_RESUME", &cb_defs[1]) ||
	    register_cb(events, "PY_THROW", &cb_defs[1]) ||
	    register_cb(events, "LINE", &cb_defs[2]) ||
	    register_cb(events, "PY_RETURN", &cb_defs[3]) ||
	    register_cb(events, "PY_YIELD", &cb_defs[3]) ||
	    register_cb(events, "PY_UNWIND", &cb_defs[4]) ||
	    register_cb(events, "JUMP", &cb_defs[5]) ||
	    register_cb(events, "BRANCH", &cb_defs[5]))
		goto fail;
	r = PyObject_CallMethod(mon, "set_events", "il", tool_id, ev_global);
	if (!r)
		goto fail;
	Py_DECREF(r);
	Py_DECREF(events);
	return 0;
fail:
	Py_XDECREF(events);
	if (tool_id >= 0) {
		mp_err saved = mp_err_save();

		r = PyObject_CallMethod(mon, "free_tool_id", "i", tool_id);
		Py_XDECREF(r);
		mp_err_restore(saved);
		tool_id = -1;
	}
	Py_CLEAR(mon_disable);
	Py_CLEAR(mon);
	return -1;
}

static int set_local(PyObject *code, long events)
{
	PyObject *r;

	if (tool_id < 0 && mp_trace_setup() < 0)
		return -1;
	r = PyObject_CallMethod(mon, "set_local_events", "iOl", tool_id, code, events);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

int mp_trace_code_on(PyObject *code)
{
	if (tool_id < 0 && mp_trace_setup() < 0)
		return -1;
	return set_local(code, ev_local);
}

int mp_trace_code_off(PyObject *code)
{
	jmemo_gen++;
	if (tool_id < 0)
		return 0;
	return set_local(code, 0);
}

/* Events arrive on every thread: nothing to do per thread. */
int mp_trace_thread_enable(void)
{
	return 0;
}

void mp_trace_thread_disable(void)
{
}

void mp_trace_teardown(void)
{
	PyObject *r;

	if (tool_id < 0 || !mon)
		return;
	r = PyObject_CallMethod(mon, "set_events", "ii", tool_id, 0);
	Py_XDECREF(r);
	if (!r)
		PyErr_Clear();
	r = PyObject_CallMethod(mon, "free_tool_id", "i", tool_id);
	Py_XDECREF(r);
	if (!r)
		PyErr_Clear();
	tool_id = -1;
	Py_CLEAR(mon_disable);
	Py_CLEAR(mon);
}

#else /* <= 3.11 */

#if PY_VERSION_HEX >= 0x030B0000
static PyObject *str_f_trace_lines;
#endif

static PyCodeObject *frame_code(PyFrameObject *f)
{
#if PY_VERSION_HEX >= 0x03090000
	PyCodeObject *c = PyFrame_GetCode(f);	/* new reference */

	Py_DECREF(c);	/* the frame keeps it alive */
	return c;
#else
	return f->f_code;
#endif
}

static int frame_line(PyFrameObject *f)
{
#if PY_VERSION_HEX >= 0x030A0000
	return PyFrame_GetLineNumber(f);
#else
	return f->f_lineno;	/* set by ceval before each line event */
#endif
}

static void frame_no_lines(PyFrameObject *f)
{
#if PY_VERSION_HEX >= 0x030B0000
	/* The field lives in an internal header on 3.11. */
	if (PyObject_SetAttr((PyObject *)f, str_f_trace_lines, Py_False) < 0)
		PyErr_Clear();
#else
	f->f_trace_lines = 0;
#endif
}

/* A call event is either a new frame or a generator resuming. */
static int frame_fresh(PyFrameObject *f, struct mp_code *mc)
{
#if PY_VERSION_HEX >= 0x030B0000
	return PyFrame_GetLasti(f) <= mc->first_resume;
#else
	(void)mc;
	return f->f_lasti < 0;
#endif
}

static int tracefunc(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
	struct mp_tstate *ts = mp_tls;
	PyCodeObject *code;
	struct mp_code *mc;
	int err = 0;

	(void)obj;
	if (!ts)
		return 0;
	if (ts->saved_func) {
		err = ts->saved_func(ts->saved_obj, frame, what, arg);
		if (err)
			return err;
	}
	switch (what) {
	case PyTrace_CALL:
		code = frame_code(frame);
		mc = mp_code_lookup((PyObject *)code);
		if (!mc || !mp_code_active(mc)) {
			if (!ts->saved_func)
				frame_no_lines(frame);
			break;
		}
		if (frame_fresh(frame, mc))
			mp_on_start(ts, frame, (PyObject *)code, mc, 1, 0);
		else
			mp_on_start(ts, frame, (PyObject *)code, mc, 0, frame_line(frame));
		break;
	case PyTrace_LINE:
		if (mp_noop_lines)
			break;
		if (ts->n && ts->v[ts->n - 1].id == frame) {
			mp_on_line(ts, frame, (PyObject *)frame_code(frame), frame_line(frame));
			break;
		}
		code = frame_code(frame);
		if (!mp_code_lookup((PyObject *)code)) {
			if (!ts->saved_func)
				frame_no_lines(frame);
			break;
		}
		mp_on_line(ts, frame, (PyObject *)code, frame_line(frame));
		break;
	case PyTrace_RETURN:
		/* arg is NULL when an exception unwinds the frame */
		if (ts->n)
			mp_on_exit(ts, frame, arg ? MP_EXIT_RETURN : MP_EXIT_UNWIND, arg);
		break;
	default:
		break;
	}
	return 0;
}

int mp_trace_setup(void)
{
#if PY_VERSION_HEX >= 0x030B0000
	if (!str_f_trace_lines) {
		str_f_trace_lines = PyUnicode_InternFromString("f_trace_lines");
		if (!str_f_trace_lines)
			return -1;
	}
#endif
	return 0;
}

int mp_trace_code_on(PyObject *code)
{
	(void)code;
	return 0;
}

int mp_trace_code_off(PyObject *code)
{
	(void)code;
	return 0;
}

int mp_trace_thread_enable(void)
{
	struct mp_tstate *ts = mp_tstate_get();
	PyThreadState *t;

	if (!ts) {
		PyErr_NoMemory();
		return -1;
	}
	if (ts->trace_depth++ > 0)
		return 0;
	if (mp_trace_setup() < 0) {
		ts->trace_depth--;
		return -1;
	}
	t = PyThreadState_Get();
	/* Keep a debugger's or coverage's tracer: we forward to it. */
	ts->saved_func = t->c_tracefunc;
	ts->saved_obj = t->c_traceobj;
	Py_XINCREF(ts->saved_obj);
	PyEval_SetTrace(tracefunc, NULL);
	return 0;
}

void mp_trace_thread_disable(void)
{
	struct mp_tstate *ts = mp_tls;
	PyObject *obj;

	if (!ts || ts->trace_depth <= 0 || --ts->trace_depth > 0)
		return;
	mp_flush_thread(ts);
	obj = ts->saved_obj;
	PyEval_SetTrace(ts->saved_func, obj);
	ts->saved_func = NULL;
	ts->saved_obj = NULL;
	Py_XDECREF(obj);
}

void mp_trace_teardown(void)
{
}


#endif

/*
 * 3.11 only: the byte offset of the first RESUME. A call event at or
 * before it is a new frame; later ones are a generator resuming.
 */
int mp_code_first_resume(PyObject *code)
{
#if PY_VERSION_HEX >= 0x030B0000 && !MP_PY312
	PyObject *co = PyObject_GetAttrString(code, "co_code");
	const unsigned char *p;
	Py_ssize_t n, i;
	int r = 0;

	if (!co) {
		PyErr_Clear();
		return 0;
	}
	if (PyBytes_AsStringAndSize(co, (char **)&p, &n) < 0) {
		PyErr_Clear();
		Py_DECREF(co);
		return 0;
	}
	for (i = 0; i + 1 < n; i += 2) {
		if (p[i] == RESUME) {
			r = (int)i;
			break;
		}
	}
	Py_DECREF(co);
	return r;
#else
	(void)code;
	return 0;
#endif
}
