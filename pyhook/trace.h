/* trace.h - event sources feeding core.c (sys.monitoring or a C tracer). */
#ifndef MPROF_TRACE_H
#define MPROF_TRACE_H

#include "hook.h"

/* mp_trace_setup - claim the monitoring tool id / prepare the tracer.
 * Idempotent; 0, or -1 with a Python exception set. */
int mp_trace_setup(void);

/* mp_trace_teardown - release the tool id (module teardown). */
void mp_trace_teardown(void);

/* mp_trace_code_on/off - start/stop local events for a code object (3.12+;
 * no-ops before). 0, or -1 with a Python exception set. */
int mp_trace_code_on(PyObject *code);
int mp_trace_code_off(PyObject *code);

/* mp_trace_thread_enable/disable - nest the per-thread C tracer (<= 3.11;
 * no-ops on 3.12+). enable returns 0, or -1 with an exception set. */
int mp_trace_thread_enable(void);
void mp_trace_thread_disable(void);

/* mp_code_first_resume - see trace.c; 0 where not needed. */
int mp_code_first_resume(PyObject *code);

#endif
