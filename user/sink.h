/*
 * mp_sink: what consumes measurements in the recording loop (user/loop.h). The loop hands each
 * sink every event the sources produce (kernel records, the CPython hook's call records), calls
 * tick() once per interval so the sink can pull current values from the backend, and finish()
 * once at the end. Sinks: the .dat recorder (user/recorder.h) today; a metrics exporter or a
 * live view read the same stream. A sink never prints.
 */
#ifndef MP_SINK_H
#define MP_SINK_H

#include "backend.h"
#include "event.h"

struct mp_sink {
	/* One decoded event. Returns 0 or -errno (the loop stops on an error). */
	int (*event)(struct mp_sink *s, const struct mp_sample *ev);
	/* An interval tick at epoch @now. Returns 0 or -errno. */
	int (*tick)(struct mp_sink *s, struct mp_backend *be, double now);
	/* The recording is over (every event was delivered): last values. Returns 0 or -errno. */
	int (*finish)(struct mp_sink *s, struct mp_backend *be);
};

#endif
