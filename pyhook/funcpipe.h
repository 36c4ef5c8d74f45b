/* funcpipe.h - call boundaries to the loader through an inherited pipe (rss_shared.h).
 *
 * The loader used to follow the USDT probes of probes.h with uprobes; closing ~30 uprobe
 * perf events at exit cost 120-170 ms each (an SRCU grace period per event), 3 s per run. A
 * pipe costs one write() per boundary and nothing to tear down. The probes stay for outside
 * tracers (bpftrace, perf), free when nobody listens.
 */
#ifndef MPROF_FUNCPIPE_H
#define MPROF_FUNCPIPE_H

#include <stdint.h>

/*
 * funcpipe_init - take the pipe named by $MPROF_FUNC_FD, if any: it must be a pipe open for
 * writing. The variable is removed from the environment either way (the fd is close-on-exec
 * from now on, so children that are exec'd must not see a stale number). Returns 1 when the
 * pipe is in use, 0 when there is none or it is not usable (then funcpipe_why() says why).
 */
int funcpipe_init(void);

/* Why $MPROF_FUNC_FD was not used, or "" when it was (or was not set). */
const char *funcpipe_why(void);

/* Is the pipe in use (in this process: a forked child drops it)? */
int funcpipe_active(void);

/*
 * funcpipe_write - one boundary: @phase 0 (entry) or 1 (exit) of call @id named @name (cut to
 * fit, at a UTF-8 character boundary), with the RSS read now. A failed write (the loader is
 * gone) turns the pipe off for good. Call with the GIL held.
 */
void funcpipe_write(uint64_t id, int phase, const char *name);

#endif
