/*
 * The per-minor-version layout table (see pylayout.h). Every number here is an offsetof() or
 * sizeof() of the named CPython header, LP64; tests/pyframe/pylayout_check.c verifies each one
 * against the headers of every interpreter installed.
 */
#include <stddef.h>
#include <linux/types.h>

#include "pylayout.h"
#include "pyframe.h"

#define N MP_PYL_NONE

/* The str, bytes and object facts shared by 3.8-3.11 (wstr still in PyASCIIObject). */
#define STR_38_311                                                                          \
	.ob_type = 8, .tp_name = 24, .tp_basicsize = 32, .u_length = 16, .u_state = 32,      \
	.u_ascii_size = 48, .u_compact_size = 72, .u_data = 72, .unicode_basicsize = 80,     \
	.u_kind_shift = 2, .u_compact_bit = 5, .u_ascii_bit = 6, .u_ready_bit = 7,          \
	.b_size = 16, .b_sval = 32

/* 3.12+: no wstr, no ready bit (PEP 623). */
#define STR_312                                                                             \
	.ob_type = 8, .tp_name = 24, .tp_basicsize = 32, .u_length = 16, .u_state = 32,      \
	.u_ascii_size = 40, .u_compact_size = 56, .u_data = 56, .unicode_basicsize = 64,     \
	.u_kind_shift = 2, .u_compact_bit = 5, .u_ascii_bit = 6, .u_ready_bit = N,          \
	.b_size = 16, .b_sval = 32

static const struct mp_pylayout layouts[] = {
	{
		/* Include/internal/pycore_pystate.h, Include/cpython/pystate.h, frameobject.h */
		.minor = 8, .frame_kind = MP_PY_KIND_FRAMEOBJECT, .lines = MP_PYLINES_LNOTAB,
		.lasti_scale = 1, .native_tid = 0,
		.rt_interp_head = 32, .rt_interp_main = 40, .rt_main_thread = 72,
		.is_next = 0, .is_tstate_head = 8, .is_runtime = N,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 176, .ts_native_thread_id = N,
		.ts_frame = 24, .cf_current_frame = N,
		.fr_back = 24, .fr_code = 32, .fr_instr = 104, .fr_owner = N, .fr_type = 8,
		.frame_basicsize = 368, .owner_cstack = N,
		.co_filename = 104, .co_name = 112, .co_qualname = N, .co_firstlineno = 40,
		.co_linetable = 120, .co_code = 48, .co_code_adaptive = N, .code_basicsize = 176,
		.co_size = N,
		STR_38_311,
	},
	{
		/* Include/internal/pycore_interp.h gains interp->runtime */
		.minor = 9, .frame_kind = MP_PY_KIND_FRAMEOBJECT, .lines = MP_PYLINES_LNOTAB,
		.lasti_scale = 1, .native_tid = 0,
		.rt_interp_head = 32, .rt_interp_main = 40, .rt_main_thread = 72,
		.is_next = 0, .is_tstate_head = 8, .is_runtime = 16,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 176, .ts_native_thread_id = N,
		.ts_frame = 24, .cf_current_frame = N,
		.fr_back = 24, .fr_code = 32, .fr_instr = 104, .fr_owner = N, .fr_type = 8,
		.frame_basicsize = 368, .owner_cstack = N,
		.co_filename = 104, .co_name = 112, .co_qualname = N, .co_firstlineno = 40,
		.co_linetable = 120, .co_code = 48, .co_code_adaptive = N, .code_basicsize = 176,
		.co_size = N,
		STR_38_311,
	},
	{
		/* f_lasti counts code units (bpo-27129); co_lnotab gives way to co_linetable */
		.minor = 10, .frame_kind = MP_PY_KIND_FRAMEOBJECT, .lines = MP_PYLINES_LINETABLE,
		.lasti_scale = 2, .native_tid = 0,
		.rt_interp_head = 32, .rt_interp_main = 40, .rt_main_thread = 72,
		.is_next = 0, .is_tstate_head = 8, .is_runtime = 16,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 176, .ts_native_thread_id = N,
		.ts_frame = 24, .cf_current_frame = N,
		.fr_back = 24, .fr_code = 32, .fr_instr = 96, .fr_owner = N, .fr_type = 8,
		.frame_basicsize = 360, .owner_cstack = N,
		.co_filename = 104, .co_name = 112, .co_qualname = N, .co_firstlineno = 40,
		.co_linetable = 120, .co_code = 48, .co_code_adaptive = N, .code_basicsize = 176,
		.co_size = N,
		STR_38_311,
	},
	{
		/* Include/internal/pycore_frame.h: _PyInterpreterFrame; tstate->cframe */
		.minor = 11, .frame_kind = MP_PY_KIND_INTERPFRAME, .lines = MP_PYLINES_LOCATIONS,
		.lasti_scale = 0, .native_tid = 1,
		.rt_interp_head = 40, .rt_interp_main = 48, .rt_main_thread = 80,
		.is_next = 0, .is_tstate_head = 16, .is_runtime = 40,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
		.ts_frame = 56, .cf_current_frame = 8,
		.fr_back = 48, .fr_code = 32, .fr_instr = 56, .fr_owner = 69, .fr_type = N,
		.frame_basicsize = N, .owner_cstack = N,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 72,
		.co_linetable = 136, .co_code = N, .co_code_adaptive = 184, .code_basicsize = 184,
		.co_size = 16,
		STR_38_311,
	},
	{
		/* shim frames owned by the C stack; PEP 623 removes wstr */
		.minor = 12, .frame_kind = MP_PY_KIND_INTERPFRAME, .lines = MP_PYLINES_LOCATIONS,
		.lasti_scale = 0, .native_tid = 1,
		.rt_interp_head = 40, .rt_interp_main = 48, .rt_main_thread = 64,
		.is_next = 0, .is_tstate_head = 72, .is_runtime = 96,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 136, .ts_native_thread_id = 144,
		.ts_frame = 56, .cf_current_frame = 0,
		.fr_back = 8, .fr_code = 0, .fr_instr = 56, .fr_owner = 70, .fr_type = N,
		.frame_basicsize = N, .owner_cstack = 3,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
		.co_linetable = 136, .co_code = N, .co_code_adaptive = 192, .code_basicsize = 192,
		.co_size = 16,
		STR_312,
	},
	{
		/* _Py_DebugOffsets first in _PyRuntime; tstate->current_frame, f_executable */
		.minor = 13, .frame_kind = MP_PY_KIND_INTERPFRAME, .lines = MP_PYLINES_LOCATIONS,
		.lasti_scale = 0, .native_tid = 1,
		.rt_interp_head = 632, .rt_interp_main = 640, .rt_main_thread = 656,
		.is_next = 7264, .is_tstate_head = 7344, .is_runtime = 7376,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
		.ts_frame = 72, .cf_current_frame = N,
		.fr_back = 8, .fr_code = 0, .fr_instr = 56, .fr_owner = 70, .fr_type = N,
		.frame_basicsize = N, .owner_cstack = 3,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
		.co_linetable = 136, .co_code = N, .co_code_adaptive = 200, .code_basicsize = 200,
		.co_size = 16,
		STR_312,
	},
};

#define MP_PYL_ENTRY(name) { #name, offsetof(struct mp_pylayout, name) },

static const struct mp_pylayout_field fields[] = { MP_PYLAYOUT_FIELDS(MP_PYL_ENTRY) };

const struct mp_pylayout *mp_pylayout__find(unsigned int minor)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

const struct mp_pylayout_field *mp_pylayout__fields(size_t *n)
{
	*n = sizeof(fields) / sizeof(fields[0]);
	return fields;
}

int32_t mp_pylayout__get(const struct mp_pylayout *l, const struct mp_pylayout_field *f)
{
	return *(const int32_t *)((const char *)l + f->offset);
}
