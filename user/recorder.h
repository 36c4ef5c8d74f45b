/*
 * mp_recorder: the merge and emission rules between the measurements and the .dat file.
 *
 * Points reach it from a backend: interval ticks (the regular samples memory_profiler users know),
 * turning points of the kernel's zig-zag detector, births and deaths of processes, and the peak the
 * backend knows. It keeps them in time order within a flush window and guarantees that the highest
 * value the backend ever knew of each series is in the file.
 *
 * Series: "MEM" is the root process alone, or the whole tree with include_children (-C). "CHLD
 * <pid>" lines are written for each descendant with multiprocess (-M). Nothing here prints.
 */
#ifndef MP_RECORDER_H
#define MP_RECORDER_H

#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "dat.h"
#include "event.h"
#include "sink.h"

struct mp_recorder_opts {
	pid_t root;
	unsigned int group; /* the root's group in the backend */
	int include_children;
	int multiprocess;
	/*
	 * Seconds a point is held back before it is written (about one interval): a turning point,
	 * which the kernel reports only once the value has moved away from it, then takes its place
	 * in time order.
	 */
	double hold;
	/* The root is a spawned command: nothing is written before its exec is seen. */
	int wait_exec;
};

struct mp_recorder;

/*
 * Create a recorder writing to @dat (borrowed: the caller closes it after mp_recorder__free()).
 * Returns 0 or -ENOMEM.
 */
int mp_recorder__new(struct mp_recorder **out, struct mp_dat *dat,
		     const struct mp_recorder_opts *opts);
/* Accepts NULL. Does not flush: call mp_recorder__finish() first. */
void mp_recorder__free(struct mp_recorder *r);

/* A point of the MEM series at epoch @t. Returns 0 or -errno. */
int mp_recorder__mem(struct mp_recorder *r, double t, uint64_t bytes);
/* A point of descendant @pid's series; ignored without multiprocess or for the root. */
int mp_recorder__chld(struct mp_recorder *r, pid_t pid, double t, uint64_t bytes);

/*
 * The backend knows that the MEM series (or @pid's series) reached @bytes at @t. If no point at
 * least as high is in the file or pending, the point is added. Returns 0 or -errno.
 */
int mp_recorder__mem_peak(struct mp_recorder *r, double t, uint64_t bytes);
int mp_recorder__chld_peak(struct mp_recorder *r, pid_t pid, double t, uint64_t bytes);

/*
 * Route one decoded kernel event to the series it belongs to. MP_EV_FUNC events of the root are
 * paired per thread (entry, then the exit with the same id) and written at once as memory_profiler
 * FUNC lines, the level being the depth among open calls of that thread. Returns 0 or -errno.
 */
int mp_recorder__on_sample(struct mp_recorder *r, const struct mp_sample *s);

/*
 * Write the pending points up to epoch @upto, sorted by time; later ones stay pending (pass
 * INFINITY at the end). Holding points back for about one interval lets a turning point, which the
 * kernel reports only once the value has moved away from it, take its place in time order.
 * A point that arrives after later points were written is still written (it may be a peak)
 * unless the file already shows the same value after its time. Returns 0 or the writer's first
 * error.
 */
int mp_recorder__flush(struct mp_recorder *r, double upto);

/*
 * The recorder as a sink of the recording loop: events go to mp_recorder__on_sample(); a tick
 * writes the current value of the series (and, when a rise has not yet turned, its top) and
 * flushes what is older than the hold time; finish writes the peaks the backend knows and
 * flushes everything. The sink lives as long as the recorder.
 */
struct mp_sink *mp_recorder__sink(struct mp_recorder *r);

/*
 * A tick for a recorder whose values the caller reads itself (the fleet reads every process in
 * one pass): @v is the root's view at epoch @now. Writes as the sink's tick does. Returns 0 or
 * -errno.
 */
int mp_recorder__tick_view(struct mp_recorder *r, const struct mp_view *v, double now);

/* Has the root started (exec'd, for a spawned command)? */
int mp_recorder__started(const struct mp_recorder *r);

/* Highest MEM value written or pending, in bytes, and its epoch time. */
uint64_t mp_recorder__mem_max(const struct mp_recorder *r);
double mp_recorder__mem_max_t(const struct mp_recorder *r);
/* Epoch time of the earliest MEM point (0 before any). */
double mp_recorder__first_t(const struct mp_recorder *r);
/* Highest value of child @pid written or pending, in bytes (0 if never seen). */
uint64_t mp_recorder__chld_max(const struct mp_recorder *r, pid_t pid);

#endif
