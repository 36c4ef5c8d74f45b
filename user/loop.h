/*
 * mp_loop: the one recording loop that run, attach and fleet share.
 *
 *   sources (a backend's kernel events, the CPython hook's call records) -> sinks
 *   a clock (interval ticks; the timeout)                                  -> sinks
 *   the end (the root exits, the timeout, an interrupt)                    -> sinks' finish
 *
 * The loop owns no policy of what is written: that is the sinks' (user/sink.h). It waits with
 * ppoll() on every source and on the root's pidfd at once, so it sleeps until something happens
 * and never spins, and it is cut short by the signals the caller unblocks in @sigmask only
 * during the wait (the caller blocks them otherwise, so none can slip in between a check and the
 * wait). Nothing here prints.
 */
#ifndef MP_LOOP_H
#define MP_LOOP_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "backend.h"
#include "sink.h"

/*
 * Another descriptor for the loop to wait on (the exporter's HTTP socket, the terminal's keys):
 * when @fd is readable, ready() is called. It returns 0 to go on, 1 to end the recording
 * (MP_LOOP_INTERRUPTED: a quit key), or -errno.
 */
struct mp_source {
	int fd;
	int (*ready)(struct mp_source *s);
};

#define MP_LOOP_MAX_SOURCES 4

/* Why the loop ended. */
enum mp_loop_end {
	MP_LOOP_ROOT_EXITED = 1, /* the root process is gone */
	MP_LOOP_TIMEOUT = 2,	 /* the timeout ran out */
	MP_LOOP_INTERRUPTED = 3, /* the caller's interrupted() said so */
};

struct mp_loop_opts {
	double interval; /* seconds between ticks, > 0 */
	double timeout;	 /* seconds, 0: none */
	/*
	 * The process whose end ends the recording, or 0 for none (fleet: only the timeout or an
	 * interrupt ends it). When it is our child (@reap), it is reaped and its wait status kept.
	 */
	pid_t root;
	int reap;
	/* A pipe of struct mp_func_event records from the CPython hook, or -1. Read, not closed. */
	int func_fd;
	/* More descriptors to wait on, at most MP_LOOP_MAX_SOURCES. */
	struct mp_source *const *sources;
	size_t nsources;
	/* The signal mask during the wait (NULL: the current one). */
	const sigset_t *sigmask;
	/*
	 * Called after every wake-up, and before each wait: return 1 to end the recording now
	 * (MP_LOOP_INTERRUPTED), 0 to go on. It may act on pending signals itself (run forwards
	 * them to its command and returns 0). NULL: never interrupted.
	 */
	int (*interrupted)(void *ctx);
	void *ctx;
};

struct mp_loop_result {
	enum mp_loop_end end;
	int status;	 /* the root's wait status when reaped, else -1 */
	double end_mono; /* CLOCK_MONOTONIC seconds when the end was seen */
	uint64_t func_bad; /* hook records that did not decode */
};

/*
 * Run the loop: track nothing (the caller has set up the backend's targets), deliver events
 * and ticks to @sinks[0..@nsinks) until the end, drain what the sources still hold, then call
 * each sink's finish(). A first tick is made at once. Returns 0 with *@res filled, or the first
 * -errno of a source or a sink (*@res is filled as far as known).
 */
int mp_loop__run(struct mp_backend *be, struct mp_sink *const *sinks, size_t nsinks,
		 const struct mp_loop_opts *opts, struct mp_loop_result *res);

#endif
