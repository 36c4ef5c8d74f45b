/*
 * mp_lines: which Python line moved the memory, from outside the process (--lines).
 *
 * The kernel side charges every RSS change of a described process to the Python stack of the
 * thread that made it (bpf/pyframe.bpf.h, read from the interpreter's own frames; nothing is
 * written into the target). This module describes the targets (user/pytarget.h), collects the
 * counts, resolves stacks to files, functions and lines while the target is alive (code objects
 * die: each tick resolves the stacks that appeared since the previous one), and gives them out as
 * rows (one per source line, the running frame charged: rows of a process add up to its RSS
 * change), as stacks, and in the files other tools read. Nothing here prints.
 */
#ifndef MP_LINES_H
#define MP_LINES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "backend.h"
#include "dat.h"

/* What a row or a stack stands for. */
enum mp_line_kind {
	MP_LINE_PY = 0,	     /* a Python line */
	MP_LINE_NOFRAME = 1, /* a thread without a Python frame: native threads, C code, startup */
	MP_LINE_UNREADABLE = 2, /* a Python thread whose stack could not be read (counted) */
	MP_LINE_OUTSIDE = 3, /* raised outside the process: reclaim, its teardown, another process */
	MP_LINE_UNRESOLVED = 4, /* a stack whose code was gone before it could be named */
	MP_LINE_EXIT = 5,    /* the pages the process still had when it exited */
};

/* One row: what a source line (or a special kind) moved. Bytes. */
struct mp_line_row {
	pid_t pid;
	enum mp_line_kind kind;
	const char *file;     /* MP_LINE_PY: co_filename as the target has it; else NULL */
	const char *abs_file; /* the file to read the source from (a relative name joined to the
				 target's working folder), or NULL */
	const char *func;     /* the function's qualified name (3.11+) or name */
	int line;
	int firstlineno;
	uint64_t grown, freed, events;
};

/* One frame of a resolved stack. */
struct mp_line_frame {
	const char *file;
	const char *func;
	int line;
};

/* One stack: frames root first; for the special kinds, nframes is 0. Bytes. */
struct mp_line_stack {
	pid_t pid;
	enum mp_line_kind kind;
	unsigned int nframes;
	const struct mp_line_frame *frames;
	bool truncated; /* deeper than the walk keeps: the oldest frames are missing */
	uint64_t grown, freed, events;
};

struct mp_lines_stats {
	uint64_t stacks;     /* distinct stacks seen */
	uint64_t unresolved; /* of which could not be named (their code was gone) */
	uint64_t dropped;    /* changes the kernel's table could not take */
	uint64_t unannounced; /* new stacks the kernel could not announce (the ring full) */
	uint64_t bad_snaps;  /* code snapshots refused as malformed */
	struct mp_pystats walk;
};

struct mp_lines;

/* A new, empty collection. Returns 0 or -ENOMEM. Free with mp_lines__free() (accepts NULL). */
int mp_lines__new(struct mp_lines **out);
void mp_lines__free(struct mp_lines *l);

/*
 * Describe process @pid (tracked by @be) and have its changes charged from now on. Returns 0,
 * or -errno with *@why a static one-line reason: -EAGAIN when the interpreter is not
 * initialized yet (a command just started: try again soon), the refusals of mp_pytarget__open()
 * (not Python, an unsupported version, stripped, a failed layout check), -EINVAL when @be cannot
 * attribute lines.
 */
int mp_lines__attach(struct mp_lines *l, struct mp_backend *be, pid_t pid, const char **why);

/*
 * Process @pid exec'd: the interpreter it was read as is gone (its stacks named so far keep
 * their names). It can be attached again with mp_lines__attach().
 */
void mp_lines__exec(struct mp_lines *l, pid_t pid);

/* Is process @pid attributed (attached, and not exec'd since)? */
bool mp_lines__has(const struct mp_lines *l, pid_t pid);

/* Has any target been attached? */
bool mp_lines__attached(const struct mp_lines *l);

/*
 * Read the counts from the kernel and name the stacks seen for the first time (while their
 * processes live). Call at every tick and once at the end. Returns 0 or -errno.
 */
int mp_lines__collect(struct mp_lines *l, struct mp_backend *be);

/*
 * The backend's descriptor (mp_backend.lines_fd) became readable: new stacks were charged.
 * Reads the announcements and, if there were any, collects (names the new stacks now, while
 * their code is alive). Returns 0 or -errno.
 */
int mp_lines__wake(struct mp_lines *l, struct mp_backend *be);

/*
 * Process @pid exited with @rss bytes resident: those are released with it, a row and a stack
 * of their own (MP_LINE_EXIT), so that its rows add up to its RSS change. What @be announced
 * before is named first; then the process's interpreter, resolver and code copies are let go
 * (a fleet's short-lived processes do not add up), and the pid may be used again. Returns 0 or
 * -errno.
 */
int mp_lines__exited(struct mp_lines *l, struct mp_backend *be, pid_t pid, uint64_t rss);

typedef int (*mp_line_row_fn)(void *ctx, const struct mp_line_row *r);
typedef int (*mp_line_stack_fn)(void *ctx, const struct mp_line_stack *s);

/* Every row, in no particular order. Returns 0 or the first error of @fn. */
int mp_lines__each_row(const struct mp_lines *l, mp_line_row_fn fn, void *ctx);
/* Every stack. Returns 0 or the first error of @fn. */
int mp_lines__each_stack(const struct mp_lines *l, mp_line_stack_fn fn, void *ctx);

void mp_lines__stats(const struct mp_lines *l, struct mp_lines_stats *out);

/* The name a special kind is shown with ("<no Python frame>", ...). */
const char *mp_lines__kind_name(enum mp_line_kind kind);

/*
 * The stacks of growth in the collapsed format flame-graph tools read: one line per stack that
 * grew, frames root first, each "name (path:line)", separated by ';', a space, the bytes grown.
 * When the stacks are of more than one process, each starts with a frame "pid N". Returns 0 or
 * -EIO.
 */
int mp_lines__write_collapsed(const struct mp_lines *l, FILE *f);

/* The same as a speedscope file (its JSON "sampled" profile, weights in bytes). 0 or -EIO. */
int mp_lines__write_speedscope(const struct mp_lines *l, FILE *f, const char *name);

/*
 * Append the rows and stacks to a .dat as LINE and STACK records (user/datfile.h reads them;
 * memory_profiler skips records it does not know); @only: those of that process, 0: all.
 * Returns 0 or -errno.
 */
int mp_lines__write_dat(const struct mp_lines *l, struct mp_dat *d, pid_t only);

#endif
