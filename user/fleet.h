/*
 * mp_fleet: the table of processes `mprof fleet` follows, as its outputs (the live view, the
 * Prometheus exporter, the per-process .dat files) read it. It is a sink of the recording loop
 * (user/sink.h): kernel events add and end processes, ticks refresh their values. Outputs only
 * read it, through mp_fleet__each() and mp_fleet__totals(), from the loop's thread (the exporter
 * serves HTTP from the same loop, so nothing here is locked). Nothing here prints.
 */
#ifndef MP_FLEET_H
#define MP_FLEET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "sink.h"

#define MP_FLEET_COMM_LEN 16

/* One process of the fleet. Strings are owned by the table and live as long as the row. */
struct mp_fleet_proc {
	pid_t pid;
	pid_t ppid;	    /* its parent when that parent is in the fleet too, else 0 */
	uid_t uid;	    /* effective uid */
	const char *user;   /* its name from the passwd database, or the uid in decimal */
	char comm[MP_FLEET_COMM_LEN + 1];
	const char *cgroup; /* cgroup v2 path, "/" for the root, "" when unknown */
	double start_t;	    /* epoch seconds when it joined the fleet */
	double end_t;	    /* epoch seconds when it exited, 0 while alive */
	bool alive;
	uint64_t rss;	     /* bytes now (its last value once exited) */
	uint64_t peak;	     /* highest bytes since it joined */
	double peak_t;	     /* epoch seconds of the peak */
	uint64_t window_max; /* highest bytes since the previous mp_fleet__window() */
	int64_t growth_1m;   /* bytes: rss now minus rss 60 s ago (since it joined, if younger) */
	unsigned int children; /* live processes of the fleet whose parent it is */
	unsigned int oom_kills; /* times the kernel chose it as an OOM victim */
};

/* Counters over the whole run. */
struct mp_fleet_totals {
	uint64_t starts;	/* processes that joined after the start */
	uint64_t exits;		/* processes of the fleet that exited */
	uint64_t oom_kills;	/* OOM victims among them */
	uint64_t records_lost;	/* kernel records the ring buffer could not take */
	uint64_t procs_dropped; /* matching processes not followed: the process table was full */
	uint64_t tracked;	/* processes followed now */
};

struct mp_fleet;

typedef int (*mp_fleet_fn)(void *ctx, const struct mp_fleet_proc *p);

/*
 * Every process of the table, alive first, in no particular order. An exited process stays in
 * the table until one mp_fleet__window() has reported it (or, with no exporter, for 60 s), so a
 * process that lived between two scrapes is still seen once, with its peak. Returns 0 or the
 * first error of @fn.
 */
int mp_fleet__each(const struct mp_fleet *f, mp_fleet_fn fn, void *ctx);

/* The run's counters. */
void mp_fleet__totals(const struct mp_fleet *f, struct mp_fleet_totals *out);

/*
 * A scrape: close the current window. Afterwards each row's window_max is the highest RSS of
 * the process between the previous call (or its joining) and now, exactly (the kernel keeps a
 * window maximum per process, raised on every change), and a new window starts. Returns 0 or
 * -errno.
 */
int mp_fleet__window(struct mp_fleet *f);

/* ---- building the table (the fleet command) --------------------------------------------- */

struct mp_dat;

struct mp_fleet_opts {
	/* With a folder, one memory_profiler .dat per process (mprofile_<pid>_<start>.dat). */
	const char *out_dir;
	double hold; /* the recorders' hold-back, seconds (about one interval) */
	/* Creates a file as the right user (mprof under sudo); NULL: mp_dat__open(). */
	int (*open_file)(void *ctx, pid_t pid, const char *path, struct mp_dat **out, int *created);
	void *open_ctx;
	/* An exporter takes exited processes out of the table (after one scrape). */
	bool exporter;
	const char *cgroup_root; /* where cgroup v2 is mounted; NULL: /sys/fs/cgroup */
};

/* A new, empty table. Returns 0 or -ENOMEM. Free with mp_fleet__free() (accepts NULL). */
int mp_fleet__new(struct mp_fleet **out, const struct mp_fleet_opts *o);
void mp_fleet__free(struct mp_fleet *f);

/* The table as a sink of the recording loop. */
struct mp_sink *mp_fleet__sink(struct mp_fleet *f);

/*
 * A process that was running when the fleet started (the backend's discovery found it): it
 * joins without counting as a start. Returns 0 or -ENOMEM.
 */
int mp_fleet__add_initial(struct mp_fleet *f, struct mp_backend *be, pid_t pid);

/* After the initial processes: link each to its parent when the parent is in the table. */
int mp_fleet__resolve_parents(struct mp_fleet *f);

/* How many per-process files could not be written, and the first error (-errno). */
uint64_t mp_fleet__files_failed(const struct mp_fleet *f, int *first_err);

#endif
