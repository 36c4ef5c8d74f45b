/*
 * Checks user/pylayout.c against the CPython headers it is compiled with: every field of the
 * table for this PY_MINOR_VERSION is recomputed here with offsetof()/sizeof() on the real
 * structures (Py_BUILD_CORE, internal headers) and compared; a field the table sets but this
 * program does not recompute is an error too, so the table cannot hold unverified numbers.
 * Built and run once per installed interpreter by tests/pyframe/test_layout.py.
 *
 * Output: one line per mismatch, then "ok 3.X N fields" or "FAIL 3.X"; exit status 0 or 1.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if PY_MINOR_VERSION >= 11
#include "internal/pycore_frame.h"
#endif
#if PY_MINOR_VERSION >= 9
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"
#else
#include "internal/pycore_pystate.h"
#endif
#if PY_MINOR_VERSION <= 10
#include <frameobject.h>
#endif

#include "pylayout.h"

static const struct mp_pylayout *L;
static int checked[256];
static int bad;

static int field_index(const char *name)
{
	size_t n;
	const struct mp_pylayout_field *f = mp_pylayout__fields(&n);

	for (size_t i = 0; i < n; i++)
		if (!strcmp(f[i].name, name))
			return (int)i;
	printf("unknown field %s\n", name);
	bad = 1;
	return -1;
}

#define CHECK(field, expr)                                                                 \
	do {                                                                               \
		int i_ = field_index(#field);                                              \
		long want_ = (long)(expr);                                                 \
		if (i_ >= 0)                                                               \
			checked[i_] = 1;                                                   \
		if ((long)L->field != want_) {                                            \
			printf("3.%d %s: table %ld, headers %ld (%s)\n", PY_MINOR_VERSION,  \
			       #field, (long)L->field, want_, #expr);                      \
			bad = 1;                                                           \
		}                                                                          \
	} while (0)

#define META(field, want)                                                                  \
	do {                                                                               \
		if ((long)L->field != (long)(want)) {                                     \
			printf("3.%d %s: table %ld, expected %ld\n", PY_MINOR_VERSION, #field, \
			       (long)L->field, (long)(want));                              \
			bad = 1;                                                           \
		}                                                                          \
	} while (0)

/* Bit position of a one-bit-set unsigned int, as the state bitfield stores it. */
static int bitpos(unsigned int raw)
{
	for (int i = 0; i < 32; i++)
		if (raw == (1u << i))
			return i;
	return -100;
}

#define STATE_BIT(member)                                                                  \
	({                                                                                 \
		PyASCIIObject o_;                                                          \
		unsigned int raw_;                                                         \
		memset(&o_, 0, sizeof(o_));                                                \
		o_.state.member = 1;                                                       \
		memcpy(&raw_, (char *)&o_ + offsetof(PyASCIIObject, state), sizeof(raw_)); \
		bitpos(raw_);                                                              \
	})

int main(void)
{
	size_t n;
	const struct mp_pylayout_field *f = mp_pylayout__fields(&n);

	L = mp_pylayout__find(PY_MINOR_VERSION);
	if (PY_MAJOR_VERSION != 3 || !L) {
		printf("FAIL 3.%d: not in the table\n", PY_MINOR_VERSION);
		return 1;
	}
	META(minor, PY_MINOR_VERSION);

	CHECK(rt_interp_head, offsetof(_PyRuntimeState, interpreters.head));
	CHECK(rt_interp_main, offsetof(_PyRuntimeState, interpreters.main));
	CHECK(rt_main_thread, offsetof(_PyRuntimeState, main_thread));
	CHECK(is_next, offsetof(PyInterpreterState, next));
#if PY_MINOR_VERSION >= 11
	CHECK(is_tstate_head, offsetof(PyInterpreterState, threads.head));
#else
	CHECK(is_tstate_head, offsetof(PyInterpreterState, tstate_head));
#endif
#if PY_MINOR_VERSION >= 9
	CHECK(is_runtime, offsetof(PyInterpreterState, runtime));
#endif
	CHECK(ts_next, offsetof(PyThreadState, next));
	CHECK(ts_interp, offsetof(PyThreadState, interp));
	CHECK(ts_thread_id, offsetof(PyThreadState, thread_id));
#if PY_MINOR_VERSION >= 11
	CHECK(ts_native_thread_id, offsetof(PyThreadState, native_thread_id));
	META(native_tid, 1);
#else
	META(native_tid, 0);
#endif

#if PY_MINOR_VERSION >= 13
	CHECK(ts_frame, offsetof(PyThreadState, current_frame));
#elif PY_MINOR_VERSION >= 11
	CHECK(ts_frame, offsetof(PyThreadState, cframe));
	CHECK(cf_current_frame, offsetof(_PyCFrame, current_frame));
#else
	CHECK(ts_frame, offsetof(PyThreadState, frame));
#endif

#if PY_MINOR_VERSION >= 11
	META(frame_kind, 2);
	META(lasti_scale, 0);
	CHECK(fr_back, offsetof(_PyInterpreterFrame, previous));
#if PY_MINOR_VERSION >= 13
	CHECK(fr_code, offsetof(_PyInterpreterFrame, f_executable));
	CHECK(fr_instr, offsetof(_PyInterpreterFrame, instr_ptr));
#else
	CHECK(fr_code, offsetof(_PyInterpreterFrame, f_code));
	CHECK(fr_instr, offsetof(_PyInterpreterFrame, prev_instr));
#endif
	CHECK(fr_owner, offsetof(_PyInterpreterFrame, owner));
#if PY_MINOR_VERSION >= 12
	CHECK(owner_cstack, FRAME_OWNED_BY_CSTACK);
#endif
	/* the bytecode starts at co_code_adaptive; PyCode_Type's basicsize is that offset */
	CHECK(co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
	CHECK(code_basicsize, offsetof(PyCodeObject, co_code_adaptive));
	CHECK(co_size, offsetof(PyVarObject, ob_size));
	CHECK(co_qualname, offsetof(PyCodeObject, co_qualname));
	CHECK(co_linetable, offsetof(PyCodeObject, co_linetable));
	META(lines, MP_PYLINES_LOCATIONS);
	/* _PyInterpreterFrame_LASTI counts _Py_CODEUNITs: the walk records bytes */
	if (sizeof(_Py_CODEUNIT) != 2) {
		printf("3.%d: sizeof(_Py_CODEUNIT) is %zu, the walk assumes 2\n", PY_MINOR_VERSION,
		       sizeof(_Py_CODEUNIT));
		bad = 1;
	}
#else
	META(frame_kind, 1);
	CHECK(fr_back, offsetof(PyFrameObject, f_back));
	CHECK(fr_code, offsetof(PyFrameObject, f_code));
	CHECK(fr_instr, offsetof(PyFrameObject, f_lasti));
	CHECK(fr_type, offsetof(PyObject, ob_type));
	CHECK(frame_basicsize, sizeof(PyFrameObject));
	CHECK(co_code, offsetof(PyCodeObject, co_code));
	CHECK(code_basicsize, sizeof(PyCodeObject));
	if (sizeof(((PyFrameObject *)0)->f_lasti) != 4) {
		printf("3.%d: f_lasti is not an int\n", PY_MINOR_VERSION);
		bad = 1;
	}
#if PY_MINOR_VERSION == 10
	CHECK(co_linetable, offsetof(PyCodeObject, co_linetable));
	META(lines, MP_PYLINES_LINETABLE);
	META(lasti_scale, sizeof(_Py_CODEUNIT));
#else
	CHECK(co_linetable, offsetof(PyCodeObject, co_lnotab));
	META(lines, MP_PYLINES_LNOTAB);
	META(lasti_scale, 1);
#endif
#endif
	CHECK(co_filename, offsetof(PyCodeObject, co_filename));
	CHECK(co_name, offsetof(PyCodeObject, co_name));
	CHECK(co_firstlineno, offsetof(PyCodeObject, co_firstlineno));
	if (sizeof(((PyCodeObject *)0)->co_firstlineno) != 4) {
		printf("3.%d: co_firstlineno is not an int\n", PY_MINOR_VERSION);
		bad = 1;
	}

	CHECK(ob_type, offsetof(PyObject, ob_type));
	CHECK(tp_name, offsetof(PyTypeObject, tp_name));
	CHECK(tp_basicsize, offsetof(PyTypeObject, tp_basicsize));
	CHECK(u_length, offsetof(PyASCIIObject, length));
	CHECK(u_state, offsetof(PyASCIIObject, state));
	CHECK(u_ascii_size, sizeof(PyASCIIObject));
	CHECK(u_compact_size, sizeof(PyCompactUnicodeObject));
	CHECK(u_data, offsetof(PyUnicodeObject, data));
	CHECK(unicode_basicsize, sizeof(PyUnicodeObject));
	CHECK(u_kind_shift, STATE_BIT(kind));
	CHECK(u_compact_bit, STATE_BIT(compact));
	CHECK(u_ascii_bit, STATE_BIT(ascii));
#if PY_MINOR_VERSION <= 11
	CHECK(u_ready_bit, STATE_BIT(ready));
#endif
	CHECK(b_size, offsetof(PyVarObject, ob_size));
	CHECK(b_sval, offsetof(PyBytesObject, ob_sval));

#if PY_MINOR_VERSION == 13
	/* our copy of _Py_DebugOffsets must be the header's, member for member */
#define SAME_DBG(m)                                                                        \
	do {                                                                               \
		if (offsetof(_Py_DebugOffsets, m) != offsetof(struct mp_pydebug313, m)) {   \
			printf("3.13 _Py_DebugOffsets.%s: header %zu, ours %zu\n", #m,         \
			       offsetof(_Py_DebugOffsets, m),                              \
			       offsetof(struct mp_pydebug313, m));                         \
			bad = 1;                                                           \
		}                                                                          \
	} while (0)
	if (sizeof(_Py_DebugOffsets) != sizeof(struct mp_pydebug313)) {
		printf("3.13 sizeof(_Py_DebugOffsets): header %zu, ours %zu\n",
		       sizeof(_Py_DebugOffsets), sizeof(struct mp_pydebug313));
		bad = 1;
	}
	if (offsetof(_PyRuntimeState, debug_offsets) != 0) {
		printf("3.13 _Py_DebugOffsets is not at the start of _PyRuntime\n");
		bad = 1;
	}
	SAME_DBG(version);
	SAME_DBG(free_threaded);
	SAME_DBG(runtime_state.interpreters_head);
	SAME_DBG(interpreter_state.next);
	SAME_DBG(interpreter_state.threads_head);
	SAME_DBG(thread_state.next);
	SAME_DBG(thread_state.interp);
	SAME_DBG(thread_state.current_frame);
	SAME_DBG(thread_state.thread_id);
	SAME_DBG(thread_state.native_thread_id);
	SAME_DBG(interpreter_frame.previous);
	SAME_DBG(interpreter_frame.executable);
	SAME_DBG(interpreter_frame.instr_ptr);
	SAME_DBG(interpreter_frame.owner);
	SAME_DBG(code_object.filename);
	SAME_DBG(code_object.name);
	SAME_DBG(code_object.qualname);
	SAME_DBG(code_object.linetable);
	SAME_DBG(code_object.firstlineno);
	SAME_DBG(code_object.co_code_adaptive);
	SAME_DBG(pyobject.ob_type);
	SAME_DBG(type_object.tp_name);
	SAME_DBG(bytes_object.ob_size);
	SAME_DBG(bytes_object.ob_sval);
	SAME_DBG(unicode_object.state);
	SAME_DBG(unicode_object.length);
	SAME_DBG(unicode_object.asciiobject_size);
	SAME_DBG(gc.collecting);
	if (strcmp(MP_PYDEBUG_COOKIE, _Py_Debug_Cookie)) {
		printf("3.13 debug cookie: header %s, ours %s\n", _Py_Debug_Cookie, MP_PYDEBUG_COOKIE);
		bad = 1;
	}
#endif

	for (size_t i = 0; i < n; i++) {
		if (!checked[i] && mp_pylayout__get(L, &f[i]) != MP_PYL_NONE) {
			printf("3.%d %s: the table sets %d, which nothing verifies\n",
			       PY_MINOR_VERSION, f[i].name, mp_pylayout__get(L, &f[i]));
			bad = 1;
		}
	}
	if (bad) {
		printf("FAIL 3.%d\n", PY_MINOR_VERSION);
		return 1;
	}
	printf("ok 3.%d %zu fields\n", PY_MINOR_VERSION, n);
	return 0;
}
