/* probes.h - USDT probes of the hook (provider "mprof").
 *
 * Each probe has a semaphore in .probes: a tracer attaching to the probe
 * (the loader, or `bpftrace -p PID -e 'usdt:...:mprof:func_entry {...}'`)
 * increments it, so when nobody listens the cost is one load and a branch.
 *
 *   mprof:func_entry(u64 id, s32 line, const char *name)
 *   mprof:func_exit (u64 id, s32 line, const char *name)
 *	a call of a decorated function starts / ends (any exit: return or
 *	exception). id = address of the function's code object, line = its
 *	co_firstlineno, name = "module.function" as in FUNC lines (UTF-8).
 *   mprof:timestamp (u64 id, s32 phase, const char *name)
 *	a `with profile.timestamp(name):` block; phase 0 = enter, 1 = exit;
 *	id = address of the block's context object.
 *
 * Pairs nest per thread; the level of a FUNC line is the nesting depth.
 */
#ifndef MPROF_PROBES_H
#define MPROF_PROBES_H

#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

extern unsigned short mprof_func_entry_semaphore;
extern unsigned short mprof_func_exit_semaphore;
extern unsigned short mprof_timestamp_semaphore;

#define MP_PROBE_ENABLED(name) \
	__builtin_expect(__atomic_load_n(&mprof_##name##_semaphore, __ATOMIC_RELAXED) != 0, 0)

#define MP_PROBE3(name, a, b, c)					\
	do {								\
		if (MP_PROBE_ENABLED(name))				\
			STAP_PROBE3(mprof, name, a, b, c);		\
	} while (0)

#endif
