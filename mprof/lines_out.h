/*
 * --lines on the command-line side, for run, attach and fleet: describing the targets to the
 * kernel side (at once for a running process; for a command that just exec'd, retried every
 * millisecond until its interpreter is up), a sink and a source for the recording loop (new
 * stacks are named as soon as the kernel announces them, every stack at each tick), and at the
 * end the tables printed in memory_profiler's spirit, the LINE/STACK records in the .dat and the
 * --stacks, --speedscope and --pprof files. What it cannot do (not Python, an unsupported
 * version) it says in one line, and the recording goes on with RSS only.
 */
#ifndef MPROF_LINES_OUT_H
#define MPROF_LINES_OUT_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "backend.h"
#include "dat.h"
#include "loop.h"
#include "record.h"
#include "sink.h"
#include "spawn.h"

struct rec_lines;

/*
 * A new, empty state for @be (which must have been set up with --lines). @fleet: processes
 * that join or exec are tried too, and refusals are counted by reason, not said one by one.
 * The files of --stacks, --speedscope and --pprof must be writable by the user now. Returns 0,
 * or -errno after printing the error.
 */
int rec_lines__new(struct rec_lines **out, const struct rec_opts *o, struct mp_backend *be,
		   const struct mp_cred *cred, bool fleet);
/* Accepts NULL. */
void rec_lines__free(struct rec_lines *rl);

/*
 * Attribute the lines of tracked process @pid from now on. @starting: it has just exec'd, so an
 * interpreter that is not up yet is waited for (retried by the source). Says in one line why
 * a process cannot be read (RSS only then). Returns 0 (attached, waiting or refused), or -errno
 * on a failure of mprof itself.
 */
int rec_lines__target(struct rec_lines *rl, pid_t pid, int starting);

/* The sink (collects at every tick and at the end) and the sources for the loop. */
struct mp_sink *rec_lines__sink(struct rec_lines *rl);
/* Adds its sources (at most 2) to @srcs from *@n on, incrementing *@n. */
void rec_lines__sources(struct rec_lines *rl, struct mp_source **srcs, size_t *n);

/*
 * The recording is over: print the tables on stdout (pid @only or all when 0), append the
 * LINE/STACK records to @dat (may be NULL) and write the files the options ask for. Returns 0,
 * or -errno after printing the error.
 */
int rec_lines__report(struct rec_lines *rl, struct mp_dat *dat);

/* Fleet, -o DIR: the LINE/STACK records of process @pid alone into its @dat. 0 or -errno. */
int rec_lines__write_dat(const struct rec_lines *rl, pid_t pid, struct mp_dat *dat);

#endif
