/* _mprof_hook.c - the memory_profiler._mprof_hook extension module.
 *
 * Python-facing objects:
 *   Profiler   line profiler: bindings of decorated code objects to report
 *              tables, enable counts, the report (memory_profiler 0.61
 *              layout) and the raw results;
 *   Wrapper    the callable returned by @profile: enables its profiler
 *              around the call and marks the call with USDT probes;
 *   functions  rss_bytes(), rss_source(), func_entry/func_exit/timestamp
 *              probes for the Python-level TimeStamper.
 * The attribution itself lives in core.c, the event sources in trace.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include <structmember.h>
#include "funcpipe.h"
#include "meter.h"
#include "probes.h"
#include "rss.h"
#include "trace.h"

unsigned short mprof_func_entry_semaphore __attribute__((unused, section(".probes")));
unsigned short mprof_func_exit_semaphore __attribute__((unused, section(".probes")));
unsigned short mprof_timestamp_semaphore __attribute__((unused, section(".probes")));

#if PY_VERSION_HEX < 0x03090000
#define MP_Vectorcall _PyObject_Vectorcall
#define MP_TPFLAGS_HAVE_VECTORCALL _Py_TPFLAGS_HAVE_VECTORCALL
#else
#define MP_Vectorcall PyObject_Vectorcall
#define MP_TPFLAGS_HAVE_VECTORCALL Py_TPFLAGS_HAVE_VECTORCALL
#endif

#define MIB (1024.0 * 1024.0)

static int notice_done;

/* Say once per process what the numbers are, so nobody mistakes sampled
 * figures for kernel-attributed ones. */
static void rss_notice(void)
{
	if (notice_done)
		return;
	notice_done = 1;
	if (rss_g.kind == RSS_STATM)
		PySys_WriteStderr("memory_profiler: memory is sampled from /proc/self/statm "
				  "at line boundaries, not kernel-attributed (%s)\n", rss_g.why);
}

/* ---- tables and bindings --------------------------------------------------- */

static void table_free(struct mp_table *t)
{
	if (!t)
		return;
	Py_XDECREF(t->code);
	Py_XDECREF(t->filename);
	Py_XDECREF(t->name);
	free(t->lines);
	free(t);
}

/* Bind `code` (and, recursively, the code objects among its constants:
 * comprehensions, lambdas, inner defs) to tab. 0, or -1 with an exception. */
static int bind_code(ProfilerObject *prof, struct mp_table *tab, PyObject *code, int depth)
{
	struct mp_code *mc = mp_code_lookup(code);
	PyObject *consts;
	Py_ssize_t i, n;
	int fresh = 0;

	if (depth > 64)	/* deeper nesting than any real source */
		return 0;
	if (mc) {
		for (i = 0; i < mc->nbind; i++)
			if (mc->bind[i].prof == prof)
				return 0;	/* already ours */
	} else {
		mc = calloc(1, sizeof(*mc));
		if (!mc) {
			PyErr_NoMemory();
			return -1;
		}
		Py_INCREF(code);
		mc->code = code;
		mc->firstlineno = ((PyCodeObject *)code)->co_firstlineno;
		mc->first_resume = mp_code_first_resume(code);
		if (ptrmap_put(&mp_codes, code, mc) < 0) {
			Py_DECREF(code);
			free(mc);
			PyErr_NoMemory();
			return -1;
		}
		fresh = 1;
	}
	if (mc->nbind == mc->capbind) {
		int ncap = mc->capbind ? mc->capbind * 2 : 2;
		struct mp_bind *nb = realloc(mc->bind, (size_t)ncap * sizeof(*nb));

		if (!nb) {
			PyErr_NoMemory();
			goto undo;
		}
		mc->bind = nb;
		mc->capbind = ncap;
	}
	if (PyList_Append(prof->codes, code) < 0)
		goto undo;
	memmove(mc->bind + 1, mc->bind, (size_t)mc->nbind * sizeof(*mc->bind));
	mc->bind[0].prof = prof;
	mc->bind[0].tab = tab;
	mc->nbind++;
	if (fresh && mp_trace_code_on(code) < 0)
		return -1;	/* bound; Profiler.close() undoes it */

	consts = ((PyCodeObject *)code)->co_consts;
	n = consts && PyTuple_Check(consts) ? PyTuple_GET_SIZE(consts) : 0;
	for (i = 0; i < n; i++) {
		PyObject *c = PyTuple_GET_ITEM(consts, i);

		if (PyCode_Check(c) && bind_code(prof, tab, c, depth + 1) < 0)
			return -1;
	}
	return 0;
undo:
	if (fresh) {
		ptrmap_del(&mp_codes, code);
		free(mc->bind);
		Py_DECREF(mc->code);
		free(mc);
	}
	return -1;
}

/* Drop every binding of prof. Keeps any pending exception. */
static void unbind_all(ProfilerObject *prof)
{
	Py_ssize_t i, n;
	mp_err saved;

	if (!prof->codes)
		return;
	saved = mp_err_save();
	n = PyList_GET_SIZE(prof->codes);
	for (i = 0; i < n; i++) {
		PyObject *code = PyList_GET_ITEM(prof->codes, i);
		struct mp_code *mc = mp_code_lookup(code);
		int j, k;

		if (!mc)
			continue;
		for (j = k = 0; j < mc->nbind; j++)
			if (mc->bind[j].prof != prof)
				mc->bind[k++] = mc->bind[j];
		mc->nbind = k;
		if (k)
			continue;
		ptrmap_del(&mp_codes, code);
		if (mp_trace_code_off(code) < 0)
			PyErr_Clear();
		free(mc->bind);
		Py_DECREF(mc->code);
		free(mc);
	}
	if (PyList_SetSlice(prof->codes, 0, n, NULL) < 0)
		PyErr_Clear();
	mp_err_restore(saved);
}

/* ---- Profiler -------------------------------------------------------------- */

static PyObject *profiler_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	ProfilerObject *self = (ProfilerObject *)type->tp_alloc(type, 0);

	(void)args;
	(void)kw;
	if (!self)
		return NULL;
	self->codes = PyList_New(0);
	if (!self->codes) {
		Py_DECREF(self);
		return NULL;
	}
	return (PyObject *)self;
}

static int profiler_init(ProfilerObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "include_children", "backend", "max_mem", NULL };
	PyObject *children = NULL, *backend = NULL, *max_mem = Py_None;
	int with_children = 0, mk;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOO:Profiler", kwlist, &children,
					 &backend, &max_mem))
		return -1;
	if (children && (with_children = PyObject_IsTrue(children)) < 0)
		return -1;
	mk = mp_meter_parse(backend, with_children);
	if (mk < 0)
		return -1;
	if (self->ntabs && mk != self->mk) {
		/* the recorded numbers would mix units */
		PyErr_SetString(PyExc_RuntimeError, "cannot change the backend of a profiler in use");
		return -1;
	}
	self->mk = mk;
	self->max_mem = 0;
	if (max_mem != Py_None) {
		double m = PyFloat_AsDouble(max_mem);

		if (m == -1.0 && PyErr_Occurred())
			return -1;
		self->max_mem = m <= 0 ? 1 : (uint64_t)(m * MIB);
	}
	return 0;
}

static int profiler_traverse(ProfilerObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->codes);
	Py_VISIT(self->on_max_mem);
	return 0;
}

static int profiler_clear(ProfilerObject *self)
{
	unbind_all(self);
	Py_CLEAR(self->on_max_mem);
	return 0;
}

static void profiler_dealloc(ProfilerObject *self)
{
	int i;

	PyObject_GC_UnTrack(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	profiler_clear(self);
	Py_CLEAR(self->codes);
	for (i = 0; i < self->ntabs; i++)
		table_free(self->tabs[i]);
	free(self->tabs);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* "module.name" as memory_profiler writes it in FUNC lines ("%s.%s" of
 * __module__ and __name__). */
static PyObject *func_label(PyObject *func, PyObject *code)
{
	PyObject *mod = PyObject_GetAttrString(func, "__module__");
	PyObject *name = PyObject_GetAttrString(func, "__name__");
	PyObject *r;

	PyErr_Clear();
	if (!name && code != Py_None)
		name = PyObject_GetAttrString(code, "co_name");
	if (!name) {
		Py_XDECREF(mod);
		return NULL;
	}
	if (mod)
		r = PyUnicode_FromFormat("%S.%S", mod, name);
	else
		r = PyUnicode_FromFormat(".%S", name);
	Py_XDECREF(mod);
	Py_DECREF(name);
	return r;
}

static PyObject *write_stdout(const char *msg)
{
	PyObject *out = PySys_GetObject("stdout"), *r;

	if (!out || out == Py_None)
		Py_RETURN_NONE;
	r = PyObject_CallMethod(out, "write", "s", msg);
	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_NONE;
}

/* Find or create the table of func's code; borrowed, NULL + exception on
 * error, NULL without exception when the source cannot be found (reported
 * on stdout like memory_profiler does). */
static struct mp_table *profiler_table(ProfilerObject *self, PyObject *func, PyObject *code)
{
	struct mp_table *t;
	PyObject *inspect = NULL, *src = NULL, *msg, *r;
	int i;

	for (i = 0; i < self->ntabs; i++)
		if (self->tabs[i]->code == code)
			return self->tabs[i];
	t = calloc(1, sizeof(*t));
	if (!t)
		return (struct mp_table *)PyErr_NoMemory();
	Py_INCREF(code);
	t->code = code;
	t->filename = PyObject_GetAttrString(code, "co_filename");
	t->name = func_label(func, code);
	if (!t->filename || !t->name)
		goto fail;
	inspect = PyImport_ImportModule("inspect");
	if (!inspect)
		goto fail;
	src = PyObject_CallMethod(inspect, "getsourcelines", "O", code);
	if (!src) {
		if (!PyErr_ExceptionMatches(PyExc_OSError) &&
		    !PyErr_ExceptionMatches(PyExc_TypeError))
			goto fail;
		PyErr_Clear();
		msg = PyUnicode_FromFormat("ERROR: Could not find file %U\n", t->filename);
		if (!msg)
			goto fail;
		r = write_stdout(PyUnicode_AsUTF8(msg));
		Py_DECREF(msg);
		Py_XDECREF(r);
		Py_DECREF(inspect);
		table_free(t);
		return NULL;
	}
	if (!PyTuple_Check(src) || PyTuple_GET_SIZE(src) != 2 ||
	    !PyList_Check(PyTuple_GET_ITEM(src, 0))) {
		PyErr_SetString(PyExc_TypeError, "inspect.getsourcelines returned an unexpected value");
		goto fail;
	}
	t->nsrc = (int)PyList_GET_SIZE(PyTuple_GET_ITEM(src, 0));
	t->first = (int)PyLong_AsLong(PyTuple_GET_ITEM(src, 1));
	if (t->first == -1 && PyErr_Occurred())
		goto fail;
	if (t->first < 1)
		t->first = 1;	/* getsourcelines says 0 for a whole module */
	Py_DECREF(src);
	Py_DECREF(inspect);
	if (self->ntabs == self->captabs) {
		int ncap = self->captabs ? self->captabs * 2 : 4;
		struct mp_table **nt = realloc(self->tabs, (size_t)ncap * sizeof(*nt));

		if (!nt) {
			table_free(t);
			return (struct mp_table *)PyErr_NoMemory();
		}
		self->tabs = nt;
		self->captabs = ncap;
	}
	self->tabs[self->ntabs++] = t;
	return t;
fail:
	Py_XDECREF(src);
	Py_XDECREF(inspect);
	table_free(t);
	return NULL;
}

static PyObject *profiler_add_function(ProfilerObject *self, PyObject *func)
{
	PyObject *code = PyObject_GetAttrString(func, "__code__");
	struct mp_table *t;
	int rc;

	if (!code || !PyCode_Check(code)) {
		PyObject *warnings, *r;

		Py_XDECREF(code);
		PyErr_Clear();
		warnings = PyImport_ImportModule("warnings");
		if (!warnings)
			return NULL;
		r = PyObject_CallMethod(warnings, "warn", "N",
					PyUnicode_FromFormat("Could not extract a code object for the object %R", func));
		Py_DECREF(warnings);
		if (!r)
			return NULL;
		Py_DECREF(r);
		Py_RETURN_NONE;
	}
	t = profiler_table(self, func, code);
	if (!t) {
		Py_DECREF(code);
		if (PyErr_Occurred())
			return NULL;
		Py_RETURN_NONE;
	}
	rc = bind_code(self, t, code, 0);
	Py_DECREF(code);
	if (rc < 0)
		return NULL;
	Py_RETURN_NONE;
}

static int prof_enable(ProfilerObject *self)
{
	rss_notice();
	if (mp_trace_thread_enable() < 0)
		return -1;
	self->enable_count++;
	return 0;
}

static void prof_disable(ProfilerObject *self)
{
	mp_err saved;

	if (self->enable_count <= 0)
		return;
	saved = mp_err_save();
	self->enable_count--;
	mp_trace_thread_disable();
	mp_err_restore(saved);
}

static PyObject *profiler_enable_by_count(ProfilerObject *self, PyObject *unused)
{
	(void)unused;
	if (prof_enable(self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *profiler_disable_by_count(ProfilerObject *self, PyObject *unused)
{
	(void)unused;
	prof_disable(self);
	Py_RETURN_NONE;
}

static PyObject *profiler_enter(ProfilerObject *self, PyObject *unused)
{
	(void)unused;
	if (prof_enable(self) < 0)
		return NULL;
	Py_INCREF(self);
	return (PyObject *)self;
}

static PyObject *profiler_exit(ProfilerObject *self, PyObject *args)
{
	(void)args;
	prof_disable(self);
	Py_RETURN_FALSE;
}

static PyObject *profiler_close(ProfilerObject *self, PyObject *unused)
{
	(void)unused;
	unbind_all(self);
	Py_RETURN_NONE;
}

/* results() -> [(filename, name, first, nsrc, [(line, inc, peak, occ), ...])]
 * in bytes, for every function with at least one measurement. */
/* [(line, inc, peak, occ), ...] in bytes: the lines of @t that ran. New reference, or NULL. */
static PyObject *table_rows(const struct mp_table *t)
{
	PyObject *rows = PyList_New(0);
	int j;

	if (!rows)
		return NULL;
	for (j = 0; j < t->nlines; j++) {
		const struct mp_line *l = &t->lines[j];
		PyObject *row;

		if (!l->occ)
			continue;
		row = Py_BuildValue("(iLKK)", t->base + j, (long long)l->inc,
				    (unsigned long long)l->peak, (unsigned long long)l->occ);
		if (!row || PyList_Append(rows, row) < 0) {
			Py_XDECREF(row);
			Py_DECREF(rows);
			return NULL;
		}
		Py_DECREF(row);
	}
	return rows;
}

static PyObject *profiler_results(ProfilerObject *self, PyObject *unused)
{
	PyObject *out = PyList_New(0);
	int i;

	(void)unused;
	if (!out)
		return NULL;
	for (i = 0; i < self->ntabs; i++) {
		struct mp_table *t = self->tabs[i];
		PyObject *rows, *item;

		if (!t->hits)
			continue;
		rows = table_rows(t);
		if (!rows)
			goto fail;
		item = Py_BuildValue("(OOiiN)", t->filename, t->name, t->first, t->nsrc, rows);
		if (!item || PyList_Append(out, item) < 0) {
			Py_XDECREF(item);
			goto fail;
		}
		Py_DECREF(item);
	}
	return out;
fail:
	Py_DECREF(out);
	return NULL;
}

/* tables() -> [(code, filename, first, nsrc, [(line, inc, peak, occ), ...])] in
 * bytes, for every registered function in registration order, measured or not. */
static PyObject *profiler_tables(ProfilerObject *self, PyObject *unused)
{
	PyObject *out = PyList_New(0);
	int i;

	(void)unused;
	if (!out)
		return NULL;
	for (i = 0; i < self->ntabs; i++) {
		struct mp_table *t = self->tabs[i];
		PyObject *rows = table_rows(t), *item;

		if (!rows)
			goto fail;
		item = Py_BuildValue("(OOiiN)", t->code, t->filename, t->first, t->nsrc, rows);
		if (!item || PyList_Append(out, item) < 0) {
			Py_XDECREF(item);
			goto fail;
		}
		Py_DECREF(item);
	}
	return out;
fail:
	Py_DECREF(out);
	return NULL;
}

static int stream_write(PyObject *stream, PyObject *s)
{
	PyObject *r;

	if (!s)
		return -1;
	r = PyObject_CallMethod(stream, "write", "O", s);
	Py_DECREF(s);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

/* The 0.61 template '{0:>6} {1:>12} {2:>12}  {3:>10}   {4:<}'. */
#define ROW_FMT "%6d %12s %12s  %10s   "
#define HEADER "Line #    Mem usage    Increment  Occurrences   Line Contents"

static int report_table(struct mp_table *t, PyObject *stream, int precision, PyObject *linecache)
{
	PyObject *all = NULL;
	Py_ssize_t nall;
	char mem[160], inc[160], occ[32], pre[512];
	int ln, rc = -1;

	if (stream_write(stream, PyUnicode_FromFormat("Filename: %U\n\n", t->filename)) < 0 ||
	    stream_write(stream, PyUnicode_FromString(HEADER "\n")) < 0)
		return -1;
	memset(pre, '=', sizeof(HEADER) - 1);
	pre[sizeof(HEADER) - 1] = '\n';
	pre[sizeof(HEADER)] = '\0';
	if (stream_write(stream, PyUnicode_FromString(pre)) < 0)
		return -1;
	all = PyObject_CallMethod(linecache, "getlines", "O", t->filename);
	if (!all)
		return -1;
	if (!PyList_Check(all)) {
		PyErr_SetString(PyExc_TypeError, "linecache.getlines did not return a list");
		goto out;
	}
	nall = PyList_GET_SIZE(all);
	for (ln = t->first; ln < t->first + t->nsrc; ln++) {
		struct mp_line *l = NULL;
		PyObject *src;

		if (t->lines && ln >= t->base && ln - t->base < t->nlines &&
		    t->lines[ln - t->base].occ)
			l = &t->lines[ln - t->base];
		if (l) {
			snprintf(mem, sizeof(mem), "%*.*f MiB", precision + 4, precision,
				 (double)l->peak / MIB);
			snprintf(inc, sizeof(inc), "%*.*f MiB", precision + 4, precision,
				 (double)l->inc / MIB);
			snprintf(occ, sizeof(occ), "%llu", (unsigned long long)l->occ);
		} else {
			mem[0] = inc[0] = occ[0] = '\0';
		}
		snprintf(pre, sizeof(pre), ROW_FMT, ln, mem, inc, occ);
		src = ln - 1 < nall ? PyList_GET_ITEM(all, ln - 1) : NULL;
		if (src && !PyUnicode_Check(src))
			src = NULL;
		if (stream_write(stream, src ? PyUnicode_FromFormat("%s%U", pre, src)
					     : PyUnicode_FromFormat("%s\n", pre)) < 0)
			goto out;
	}
	if (stream_write(stream, PyUnicode_FromString("\n\n")) < 0)
		goto out;
	rc = 0;
out:
	Py_XDECREF(all);
	return rc;
}

static PyObject *profiler_show_results(ProfilerObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "stream", "precision", NULL };
	PyObject *stream = Py_None, *linecache;
	int precision = 1, i;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|Oi:show_results", kwlist, &stream,
					 &precision))
		return NULL;
	if (precision < 0 || precision > 100) {
		PyErr_Format(PyExc_ValueError, "precision must be between 0 and 100, not %d",
			     precision);
		return NULL;
	}
	if (stream == Py_None) {
		stream = PySys_GetObject("stdout");
		if (!stream || stream == Py_None)
			Py_RETURN_NONE;
	}
	Py_INCREF(stream);
	linecache = PyImport_ImportModule("linecache");
	if (!linecache) {
		Py_DECREF(stream);
		return NULL;
	}
	for (i = 0; i < self->ntabs; i++) {
		if (!self->tabs[i]->hits)
			continue;
		if (report_table(self->tabs[i], stream, precision, linecache) < 0) {
			Py_DECREF(linecache);
			Py_DECREF(stream);
			return NULL;
		}
	}
	Py_DECREF(linecache);
	Py_DECREF(stream);
	Py_RETURN_NONE;
}

static PyObject *profiler_get_enable_count(ProfilerObject *self, void *c)
{
	(void)c;
	return PyLong_FromLong(self->enable_count);
}

static PyObject *profiler_get_max_mem(ProfilerObject *self, void *c)
{
	(void)c;
	if (!self->max_mem)
		Py_RETURN_NONE;
	return PyFloat_FromDouble((double)self->max_mem / MIB);
}

static PyObject *profiler_get_on_max_mem(ProfilerObject *self, void *c)
{
	(void)c;
	if (!self->on_max_mem)
		Py_RETURN_NONE;
	Py_INCREF(self->on_max_mem);
	return self->on_max_mem;
}

static int profiler_set_on_max_mem(ProfilerObject *self, PyObject *v, void *c)
{
	(void)c;
	if (v == Py_None)
		v = NULL;
	if (v && !PyCallable_Check(v)) {
		PyErr_SetString(PyExc_TypeError, "on_max_mem must be callable or None");
		return -1;
	}
	Py_XINCREF(v);
	Py_XSETREF(self->on_max_mem, v);
	return 0;
}

static PyGetSetDef profiler_getset[] = {
	{ "enable_count", (getter)profiler_get_enable_count, NULL, "nesting of enable_by_count()", NULL },
	{ "max_mem", (getter)profiler_get_max_mem, NULL, "--pdb-mmem threshold in MiB, or None", NULL },
	{ "on_max_mem", (getter)profiler_get_on_max_mem, (setter)profiler_set_on_max_mem,
	  "called once as f(frame, mib, event, arg, line) when a line of frame reached "
	  "max_mem ('line' before the next line runs, or 'return' with the value)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyMethodDef profiler_methods[] = {
	{ "add_function", (PyCFunction)profiler_add_function, METH_O,
	  "add_function(func): record line-by-line memory of func" },
	{ "enable_by_count", (PyCFunction)profiler_enable_by_count, METH_NOARGS,
	  "start recording (nests)" },
	{ "disable_by_count", (PyCFunction)profiler_disable_by_count, METH_NOARGS,
	  "stop recording when every enable has been matched" },
	{ "enable", (PyCFunction)profiler_enable_by_count, METH_NOARGS, "alias of enable_by_count" },
	{ "disable", (PyCFunction)profiler_disable_by_count, METH_NOARGS, "alias of disable_by_count" },
	{ "__enter__", (PyCFunction)profiler_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)profiler_exit, METH_VARARGS, NULL },
	{ "close", (PyCFunction)profiler_close, METH_NOARGS,
	  "stop listening to the registered functions (results are kept)" },
	{ "results", (PyCFunction)profiler_results, METH_NOARGS,
	  "[(filename, name, first, nsrc, [(line, inc_bytes, peak_bytes, occurrences)])]" },
	{ "tables", (PyCFunction)profiler_tables, METH_NOARGS,
	  "[(code, filename, first, nsrc, [(line, inc_bytes, peak_bytes, occurrences)])], "
	  "every registered function" },
	{ "show_results", (PyCFunction)(void (*)(void))profiler_show_results,
	  METH_VARARGS | METH_KEYWORDS, "show_results(stream=None, precision=1)" },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject ProfilerType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "memory_profiler._mprof_hook.Profiler",
	.tp_basicsize = sizeof(ProfilerObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Profiler(include_children=False, backend='psutil', max_mem=None)",
	.tp_new = profiler_new,
	.tp_init = (initproc)profiler_init,
	.tp_dealloc = (destructor)profiler_dealloc,
	.tp_traverse = (traverseproc)profiler_traverse,
	.tp_clear = (inquiry)profiler_clear,
	.tp_methods = profiler_methods,
	.tp_getset = profiler_getset,
	.tp_weaklistoffset = offsetof(ProfilerObject, weakrefs),
};

/* ---- Wrapper --------------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	ProfilerObject *prof;
	PyObject *func;
	PyObject *label;	/* "module.name" (keeps `name` alive) */
	const char *name;
	uint64_t id;		/* address of the code object */
	int line;
	PyObject *dict;
	PyObject *weakrefs;
	vectorcallfunc vectorcall;
} WrapperObject;

static PyObject *wrapper_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
				    PyObject *kwnames)
{
	WrapperObject *w = (WrapperObject *)self;
	PyObject *res;

	if (prof_enable(w->prof) < 0)
		return NULL;
	MP_PROBE3(func_entry, w->id, w->line, w->name);
	res = MP_Vectorcall(w->func, args, nargsf, kwnames);
	MP_PROBE3(func_exit, w->id, w->line, w->name);
	prof_disable(w->prof);
	return res;
}

static PyObject *wrapper_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *prof, *func, *code;
	WrapperObject *w;

	if (kw && PyDict_GET_SIZE(kw)) {
		PyErr_SetString(PyExc_TypeError, "Wrapper() takes no keyword arguments");
		return NULL;
	}
	if (!PyArg_ParseTuple(args, "O!O:Wrapper", &ProfilerType, &prof, &func))
		return NULL;
	if (!PyCallable_Check(func)) {
		PyErr_SetString(PyExc_TypeError, "Value must be callable");
		return NULL;
	}
	w = (WrapperObject *)type->tp_alloc(type, 0);
	if (!w)
		return NULL;
	Py_INCREF(prof);
	w->prof = (ProfilerObject *)prof;
	Py_INCREF(func);
	w->func = func;
	w->vectorcall = wrapper_vectorcall;
	code = PyObject_GetAttrString(func, "__code__");
	if (code && PyCode_Check(code)) {
		w->id = (uint64_t)(uintptr_t)code;
		w->line = ((PyCodeObject *)code)->co_firstlineno;
	}
	PyErr_Clear();
	w->label = func_label(func, code ? code : Py_None);
	Py_XDECREF(code);
	if (!w->label) {
		PyErr_Clear();
		w->label = PyUnicode_FromString("?");
		if (!w->label) {
			Py_DECREF(w);
			return NULL;
		}
	}
	w->name = PyUnicode_AsUTF8(w->label);
	if (!w->name) {
		Py_DECREF(w);
		return NULL;
	}
	return (PyObject *)w;
}

static int wrapper_traverse(WrapperObject *w, visitproc visit, void *arg)
{
	Py_VISIT(w->prof);
	Py_VISIT(w->func);
	Py_VISIT(w->dict);
	return 0;
}

static int wrapper_clear(WrapperObject *w)
{
	Py_CLEAR(w->prof);
	Py_CLEAR(w->func);
	Py_CLEAR(w->dict);
	return 0;
}

static void wrapper_dealloc(WrapperObject *w)
{
	PyObject_GC_UnTrack(w);
	if (w->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)w);
	wrapper_clear(w);
	Py_CLEAR(w->label);
	Py_TYPE(w)->tp_free((PyObject *)w);
}

/* Bind like a function, so decorated methods get their self. */
static PyObject *wrapper_get(PyObject *self, PyObject *obj, PyObject *type)
{
	(void)type;
	if (!obj || obj == Py_None) {
		Py_INCREF(self);
		return self;
	}
	return PyMethod_New(self, obj);
}

static PyObject *wrapper_repr(WrapperObject *w)
{
	return PyUnicode_FromFormat("<profiled %U>", w->label);
}

static PyMemberDef wrapper_members[] = {
	{ "profiler", T_OBJECT, offsetof(WrapperObject, prof), READONLY, NULL },
	{ NULL, 0, 0, 0, NULL },
};

static PyTypeObject WrapperType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "memory_profiler._mprof_hook.Wrapper",
	.tp_basicsize = sizeof(WrapperObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | MP_TPFLAGS_HAVE_VECTORCALL,
	.tp_doc = "Wrapper(profiler, func): call func with profiler enabled",
	.tp_new = wrapper_new,
	.tp_dealloc = (destructor)wrapper_dealloc,
	.tp_traverse = (traverseproc)wrapper_traverse,
	.tp_clear = (inquiry)wrapper_clear,
	.tp_call = PyVectorcall_Call,
	.tp_vectorcall_offset = offsetof(WrapperObject, vectorcall),
	.tp_descr_get = wrapper_get,
	.tp_repr = (reprfunc)wrapper_repr,
	.tp_members = wrapper_members,
	.tp_dictoffset = offsetof(WrapperObject, dict),
	.tp_weaklistoffset = offsetof(WrapperObject, weakrefs),
	.tp_getattro = PyObject_GenericGetAttr,
	.tp_setattro = PyObject_GenericSetAttr,
};

/* ---- module functions ------------------------------------------------------ */

/* RSS in bytes of pid (-1: this process), read from /proc/PID/statm. */
static PyObject *mod_rss_bytes(PyObject *m, PyObject *args)
{
	long pid = -1;
	char path[64], buf[128];
	int fd;
	ssize_t n;
	unsigned long long size, res;

	(void)m;
	if (!PyArg_ParseTuple(args, "|l:rss_bytes", &pid))
		return NULL;
	if (pid < 0 || pid == (long)getpid())
		return PyLong_FromUnsignedLongLong((unsigned long long)rss_now());
	snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &res) != 2) {
		PyErr_Format(PyExc_OSError, "cannot parse %s", path);
		return NULL;
	}
	return PyLong_FromUnsignedLongLong(res * rss_g.page_size);
}

/* PSS or USS in bytes of pid (-1: this process), from smaps_rollup. */
static PyObject *mod_smaps_bytes(PyObject *m, PyObject *args)
{
	long pid = -1;
	const char *what;
	uint64_t v;
	int kind, err;

	(void)m;
	if (!PyArg_ParseTuple(args, "ls:smaps_bytes", &pid, &what))
		return NULL;
	if (!strcmp(what, "pss")) {
		kind = MP_METER_PSS;
	} else if (!strcmp(what, "uss")) {
		kind = MP_METER_USS;
	} else {
		PyErr_Format(PyExc_ValueError, "smaps_bytes: expected 'pss' or 'uss', not '%s'", what);
		return NULL;
	}
	err = mp_smaps_read(pid < 0 ? 0 : pid, kind, &v);
	if (err < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid < 0 ? (long)getpid() : pid);
		errno = -err;
		return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
	}
	return PyLong_FromUnsignedLongLong((unsigned long long)v);
}

static PyObject *mod_rss_source(PyObject *m, PyObject *unused)
{
	static const char *names[] = { "none", "statm", "kernel" };

	(void)m;
	(void)unused;
	return Py_BuildValue("(sOs)", names[rss_g.kind], rss_g.kind == RSS_SHARED ? Py_True : Py_False,
			     rss_g.why);
}

static PyObject *mod_probe(PyObject *args, int which)
{
	unsigned long long id;
	int arg;
	const char *name;

	if (!PyArg_ParseTuple(args, "Kis", &id, &arg, &name))
		return NULL;
	switch (which) {
	case 0:
		MP_PROBE3(func_entry, (uint64_t)id, arg, name);
		funcpipe_write((uint64_t)id, 0, name);
		break;
	case 1:
		MP_PROBE3(func_exit, (uint64_t)id, arg, name);
		funcpipe_write((uint64_t)id, 1, name);
		break;
	default:
		MP_PROBE3(timestamp, (uint64_t)id, arg, name);
		funcpipe_write((uint64_t)id, arg ? 1 : 0, name);
		break;
	}
	Py_RETURN_NONE;
}

static PyObject *mod_func_entry(PyObject *m, PyObject *args)
{
	(void)m;
	return mod_probe(args, 0);
}

static PyObject *mod_func_exit(PyObject *m, PyObject *args)
{
	(void)m;
	return mod_probe(args, 1);
}

static PyObject *mod_timestamp(PyObject *m, PyObject *args)
{
	(void)m;
	return mod_probe(args, 2);
}

/* The peak window of the calling thread, for the pytest plugin (one test = one window). */
static PyObject *mod_peak_mark(PyObject *m, PyObject *unused)
{
	uint64_t now;

	(void)m;
	(void)unused;
	now = rss_now();
	rss_mark(now);
	return PyLong_FromUnsignedLongLong(now);
}

static PyObject *mod_peak_since_mark(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyLong_FromUnsignedLongLong(rss_peak_since_mark());
}

static PyObject *mod_page_scope(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	if (rss_g.kind != RSS_SHARED)
		return PyUnicode_FromString("process, sampled");
	return PyUnicode_FromString(rss_g.shared->scope ? "process tree" : "process");
}

static PyObject *mod_func_pipe(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return Py_BuildValue("(Os)", funcpipe_active() ? Py_True : Py_False, funcpipe_why());
}

static PyObject *mod_probes_enabled(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return Py_BuildValue("(iii)", mprof_func_entry_semaphore, mprof_func_exit_semaphore,
			     mprof_timestamp_semaphore);
}

static PyMethodDef mod_methods[] = {
	{ "rss_bytes", mod_rss_bytes, METH_VARARGS,
	  "rss_bytes(pid=-1): resident set size in bytes" },
	{ "smaps_bytes", mod_smaps_bytes, METH_VARARGS,
	  "smaps_bytes(pid, 'pss'|'uss'): proportional or unique set size in bytes (-1: this process)" },
	{ "rss_source", mod_rss_source, METH_NOARGS,
	  "rss_source() -> (kind, kernel_exact, why_not_exact)" },
	{ "func_entry", mod_func_entry, METH_VARARGS, "func_entry(id, line, name): USDT mprof:func_entry" },
	{ "func_exit", mod_func_exit, METH_VARARGS, "func_exit(id, line, name): USDT mprof:func_exit" },
	{ "timestamp", mod_timestamp, METH_VARARGS, "timestamp(id, phase, name): USDT mprof:timestamp" },
	{ "peak_mark", mod_peak_mark, METH_NOARGS,
	  "peak_mark() -> RSS now; a new peak window starts for this thread" },
	{ "peak_since_mark", mod_peak_since_mark, METH_NOARGS,
	  "peak_since_mark() -> the highest RSS since this thread's peak_mark()" },
	{ "page_scope", mod_page_scope, METH_NOARGS,
	  "page_scope() -> what the RSS describes: 'process', 'process tree'" },
	{ "func_pipe", mod_func_pipe, METH_NOARGS,
	  "func_pipe() -> (in_use, why_not): call boundaries go to the loader's pipe" },
	{ "probes_enabled", mod_probes_enabled, METH_NOARGS,
	  "semaphores of (func_entry, func_exit, timestamp)" },
	{ NULL, NULL, 0, NULL },
};

static void mod_free(void *m)
{
	(void)m;
	mp_trace_teardown();
}

static struct PyModuleDef mod_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "memory_profiler._mprof_hook",
	.m_doc = "C core of mprof-bpf's memory_profiler: line attribution and probes",
	.m_size = -1,
	.m_methods = mod_methods,
	.m_free = mod_free,
};

/* 3.8's PyMODINIT_FUNC does not mark the symbol visible; we build with
 * -fvisibility=hidden so that only the init function is exported. */
#define MP_EXPORT __attribute__((visibility("default")))

MP_EXPORT PyMODINIT_FUNC PyInit__mprof_hook(void);

int mp_noop_lines;

MP_EXPORT PyMODINIT_FUNC PyInit__mprof_hook(void)
{
	const char *noop = getenv("MPROF_HOOK_NOOP");
	PyObject *m;
	int err;

	mp_noop_lines = noop && !strcmp(noop, "1");
	err = rss_init();
	/* the fd is ours now (or unusable): children exec'd later must not see its number */
	unsetenv(MP_RSS_ENV);
	if (err < 0) {
		errno = -err;
		return PyErr_SetFromErrnoWithFilename(PyExc_OSError, "/proc/self/statm");
	}
	funcpipe_init();
	if (PyType_Ready(&ProfilerType) < 0 || PyType_Ready(&WrapperType) < 0)
		return NULL;
	m = PyModule_Create(&mod_def);
	if (!m)
		return NULL;
	Py_INCREF(&ProfilerType);
	if (PyModule_AddObject(m, "Profiler", (PyObject *)&ProfilerType) < 0) {
		Py_DECREF(&ProfilerType);
		goto fail;
	}
	Py_INCREF(&WrapperType);
	if (PyModule_AddObject(m, "Wrapper", (PyObject *)&WrapperType) < 0) {
		Py_DECREF(&WrapperType);
		goto fail;
	}
	if (PyModule_AddIntConstant(m, "PY_MONITORING", MP_PY312) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
