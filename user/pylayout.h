/*
 * mp_pylayout: the facts about CPython's memory layout that reading a stack from outside the
 * process needs, one entry per minor version (3.8 to 3.13, x86-64 and other LP64 Linux
 * targets, release builds: a Py_TRACE_REFS build moves every field and fails the live checks).
 *
 * The numbers are derived from each version's public and internal headers (offsetof() and
 * sizeof() under Py_BUILD_CORE); tests/pyframe/pylayout_check.c recompiles those expressions
 * against every installed interpreter's headers and compares them with this table field by
 * field. On 3.13+ the interpreter publishes most of them itself (_Py_DebugOffsets at the start of
 * _PyRuntime); user/pytarget.c then takes them from there and uses this table as a cross-check.
 */
#ifndef MP_PYLAYOUT_H
#define MP_PYLAYOUT_H

#include <stdint.h>

/* A field that the version does not have. */
#define MP_PYL_NONE (-1)

/* How the code object maps an instruction to its line. */
enum mp_pylines_format {
	MP_PYLINES_LNOTAB = 1,	  /* 3.8, 3.9: co_lnotab (addr, line) increment pairs */
	MP_PYLINES_LINETABLE = 2, /* 3.10: co_linetable (length, line delta) pairs, -128 no line */
	MP_PYLINES_LOCATIONS = 3, /* 3.11+: co_linetable location entries (Objects/locations.md) */
};

/*
 * Every offset/size field, in one list, so the checker can go through them all: a field the
 * checker does not verify for a version must be MP_PYL_NONE there.
 */
#define MP_PYLAYOUT_FIELDS(X)                                                               \
	/* _PyRuntimeState */                                                               \
	X(rt_interp_head)	/* interpreters.head */                                    \
	X(rt_interp_main)	/* interpreters.main */                                    \
	X(rt_main_thread)	/* main_thread: the main thread's thread_id */            \
	/* PyInterpreterState */                                                            \
	X(is_next)                                                                          \
	X(is_tstate_head)	/* tstate_head; threads.head on 3.11+ */                   \
	X(is_runtime)		/* runtime (3.9+): back to _PyRuntime */                   \
	/* PyThreadState */                                                                 \
	X(ts_next)                                                                          \
	X(ts_interp)                                                                        \
	X(ts_thread_id)		/* unsigned long, PyThread_get_thread_ident() */            \
	X(ts_native_thread_id)	/* unsigned long, gettid() (3.11+) */                      \
	X(ts_frame)		/* frame (3.8-3.10), cframe (3.11, 3.12), current_frame (3.13) */ \
	X(cf_current_frame)	/* _PyCFrame.current_frame (3.11, 3.12) */                  \
	/* the frame: PyFrameObject (3.8-3.10) or _PyInterpreterFrame (3.11+) */           \
	X(fr_back)		/* f_back / previous */                                    \
	X(fr_code)		/* f_code / f_executable (3.13) */                         \
	X(fr_instr)		/* int f_lasti / prev_instr / instr_ptr (3.13) */          \
	X(fr_owner)		/* char owner (3.11+) */                                   \
	X(fr_type)		/* ob_type of a PyFrameObject */                           \
	X(frame_basicsize)	/* PyFrame_Type.tp_basicsize (3.8-3.10) */                 \
	X(owner_cstack)		/* FRAME_OWNED_BY_CSTACK (3.12+) */                        \
	/* PyCodeObject */                                                                  \
	X(co_filename)                                                                      \
	X(co_name)                                                                          \
	X(co_qualname)		/* 3.11+ */                                                \
	X(co_firstlineno)	/* int */                                                  \
	X(co_linetable)		/* bytes: co_lnotab (3.8, 3.9), co_linetable (3.10+) */    \
	X(co_code)		/* bytes (3.8-3.10) */                                     \
	X(co_code_adaptive)	/* the bytecode inside the code object (3.11+) */          \
	X(code_basicsize)	/* PyCode_Type.tp_basicsize */                             \
	X(co_size)		/* ob_size of a code object: its code units (3.11+) */     \
	/* PyObject, PyTypeObject */                                                        \
	X(ob_type)                                                                          \
	X(tp_name)                                                                          \
	X(tp_basicsize)                                                                     \
	/* str */                                                                           \
	X(u_length)                                                                         \
	X(u_state)                                                                          \
	X(u_ascii_size)		/* sizeof(PyASCIIObject): compact ASCII data follows */     \
	X(u_compact_size)	/* sizeof(PyCompactUnicodeObject): compact data follows */ \
	X(u_data)		/* PyUnicodeObject.data: legacy strings' data pointer */    \
	X(unicode_basicsize)	/* PyUnicode_Type.tp_basicsize */                          \
	X(u_kind_shift)		/* bit position of state.kind (3 bits) */                   \
	X(u_compact_bit)                                                                    \
	X(u_ascii_bit)                                                                      \
	X(u_ready_bit)		/* 3.8-3.11 */                                             \
	/* bytes */                                                                         \
	X(b_size)                                                                           \
	X(b_sval)

#define MP_PYL_FIELD(name) int32_t name;

struct mp_pylayout {
	unsigned int minor;	   /* 3.<minor> */
	unsigned int frame_kind;   /* MP_PY_KIND_* of bpf/pyframe.h */
	unsigned int lines;	   /* enum mp_pylines_format */
	unsigned int lasti_scale;  /* f_lasti to bytes (3.8-3.10), 0 on 3.11+ */
	unsigned int native_tid;   /* threads are matched by native_thread_id */
	MP_PYLAYOUT_FIELDS(MP_PYL_FIELD)
};

#undef MP_PYL_FIELD

/*
 * _Py_DebugOffsets of 3.13 (Include/internal/pycore_runtime.h), the first member of _PyRuntime.
 * Its layout changes between minor versions (the header says so), so it is one more fact of the
 * table; tests/pyframe/pylayout_check.c compares it with the header's struct member by member.
 */
#define MP_PYDEBUG_COOKIE "xdebugpy"

struct mp_pydebug313 {
	char cookie[8];
	uint64_t version;
	uint64_t free_threaded;
	struct {
		uint64_t size, finalizing, interpreters_head;
	} runtime_state;
	struct {
		uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins,
			ceval_gil, gil_runtime_state, gil_runtime_state_enabled,
			gil_runtime_state_locked, gil_runtime_state_holder;
	} interpreter_state;
	struct {
		uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id,
			datastack_chunk, status;
	} thread_state;
	struct {
		uint64_t size, previous, executable, instr_ptr, localsplus, owner;
	} interpreter_frame;
	struct {
		uint64_t size, filename, name, qualname, linetable, firstlineno, argcount,
			localsplusnames, localspluskinds, co_code_adaptive;
	} code_object;
	struct {
		uint64_t size, ob_type;
	} pyobject;
	struct {
		uint64_t size, tp_name, tp_repr, tp_flags;
	} type_object;
	struct {
		uint64_t size, ob_item, ob_size;
	} tuple_object;
	struct {
		uint64_t size, ob_item, ob_size;
	} list_object;
	struct {
		uint64_t size, ma_keys, ma_values;
	} dict_object;
	struct {
		uint64_t size, ob_fval;
	} float_object;
	struct {
		uint64_t size, lv_tag, ob_digit;
	} long_object;
	struct {
		uint64_t size, ob_size, ob_sval;
	} bytes_object;
	struct {
		uint64_t size, state, length, asciiobject_size;
	} unicode_object;
	struct {
		uint64_t size, collecting;
	} gc;
};

/* Names and offsets of the fields, for the checker and the 3.13+ cross-check. */
struct mp_pylayout_field {
	const char *name;
	size_t offset; /* offsetof(struct mp_pylayout, name) */
};

/*
 * mp_pylayout__find - the layout of CPython 3.@minor.
 * Returns: a pointer into a static table (never free it), or NULL for a version we do not know.
 */
const struct mp_pylayout *mp_pylayout__find(unsigned int minor);

/*
 * mp_pylayout__fields - every field of struct mp_pylayout that holds an offset or size.
 * Takes: @n, set to the number of entries. Returns: a static array.
 */
const struct mp_pylayout_field *mp_pylayout__fields(size_t *n);

/* mp_pylayout__get - the value of field @f (from mp_pylayout__fields()) in layout @l. */
int32_t mp_pylayout__get(const struct mp_pylayout *l, const struct mp_pylayout_field *f);

#endif
