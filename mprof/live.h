/*
 * mp_live: the live view of `mprof fleet`, a top-like table of the followed processes redrawn
 * at every interval tick, or, without a terminal, one plain line per process per interval.
 *
 * It lives in the recording loop's thread (user/loop.h) and never blocks it:
 *  - at each tick the loop's sink (mp_live__sink(), or the caller calling mp_live__draw()) reads
 *    the table through a struct mp_live_src and redraws;
 *  - keys come through mp_live__source(), a struct mp_source for the loop to wait on: its
 *    ready() reads every waiting key without blocking, redraws at once for a sort or a scroll,
 *    and returns 1 on `q` (the loop then ends with MP_LOOP_INTERRUPTED). Ctrl-C is not read as
 *    a key: the terminal stays in cbreak mode, so it raises SIGINT for the caller's handler, as
 *    without the view. A resize (SIGWINCH) wakes the same source and redraws at once.
 *
 * The screen takes the terminal (alternate screen, no echo, cbreak, cursor hidden);
 * mp_live__free() gives it back as it was, so every way out of the recording must free the
 * view, and anything the caller prints (an error, the closing report) must come after that:
 * printed while the view is up, it would land on the alternate screen and be lost. An exit()
 * with the view still up restores the terminal too (atexit), as a safety net. Nothing here
 * prints anything but the view itself, and nothing here exits.
 *
 * Plain lines (MP_LIVE_LINES, or MP_LIVE_AUTO when the output is not a terminal), ASCII, one
 * record a line, fields separated by one space, flushed at the end of each interval:
 *
 *   # mprof fleet v1
 *   # total <epoch> <tracked> <started> <exited> <oom_kills> <records_lost> <procs_dropped>
 *   # proc <epoch> <pid> <user> <comm> <rss_bytes> <peak_bytes> <peak_epoch> <growth_bytes> <children> <state>
 *
 * the three header lines once, then at each interval one `total` line and one `proc` line per
 * process of the table, by pid. <epoch> is the interval's time (seconds, 4 decimals, as the
 * .dat files), <growth_bytes> is signed (RSS now minus RSS a minute ago), <state> is `alive` or
 * `exited` (an exited process keeps its last values until it leaves the table). <user> and
 * <comm> never contain a blank: every byte outside the printable ASCII range 0x21-0x7e, and the
 * backslash, is written as `\xHH` (two lowercase hex digits), an empty string as `-`, and a
 * string that is exactly `-` as `\x2d`; so a line always splits on blanks into its fields, and
 * the original bytes come back by decoding `\xHH`.
 */
#ifndef MPROF_LIVE_H
#define MPROF_LIVE_H

#include <stdio.h>

#include "fleet.h"
#include "loop.h"
#include "sink.h"

/*
 * Where the rows come from: the fleet's table (the caller wires mp_fleet__each() and
 * mp_fleet__totals() into it, through two small functions that take the fleet as @ctx), or a
 * synthetic table in the tests. each() hands every process to @fn, as mp_fleet__each() does, and
 * returns 0 or the first error (of @fn or its own); the strings of a row need only live during
 * the call of @fn (the view copies them).
 */
struct mp_live_src {
	int (*each)(void *ctx, mp_fleet_fn fn, void *fctx);
	void (*totals)(void *ctx, struct mp_fleet_totals *out);
	void *ctx;
};

enum mp_live_mode {
	/* The screen when @out is a terminal that can address its cursor, else plain lines. */
	MP_LIVE_AUTO = 0,
	/* The screen; mp_live__new() fails with -ENOTTY when @out is not a usable terminal. */
	MP_LIVE_SCREEN = 1,
	/* Plain lines (above), whatever @out is. */
	MP_LIVE_LINES = 2,
};

struct mp_live_opts {
	struct mp_live_src src; /* copied */
	enum mp_live_mode mode;
	/*
	 * Where the view goes (borrowed, not closed), NULL: stdout. The keys are read from stdin
	 * when it is a terminal, else from /dev/tty; without either, there are no keys.
	 */
	FILE *out;
	/* The title of the screen's first line, borrowed; NULL: "mprof fleet". */
	const char *title;
	/* Epoch seconds the recording started (the screen's "up" time); 0: now. */
	double start;
};

struct mp_live;

/*
 * Create the view. With the screen, this takes the terminal at once (and draws an empty table
 * until the first mp_live__draw()); it sets LC_CTYPE from the environment for as long as the
 * view lives, so that UTF-8 names are drawn as such (LC_NUMERIC is untouched). At most one
 * screen view exists at a time (-EBUSY). In MP_LIVE_AUTO mode, a terminal that cannot be driven
 * (TERM unset, unknown, or without cursor addressing) gives plain lines: mp_live__mode() says
 * which was chosen. Returns 0 with *@out set, or -errno (-EINVAL: no each() or totals();
 * -ENOTTY: MP_LIVE_SCREEN without a usable terminal).
 */
int mp_live__new(struct mp_live **out, const struct mp_live_opts *opts);

/* MP_LIVE_SCREEN or MP_LIVE_LINES: what the view does. */
enum mp_live_mode mp_live__mode(const struct mp_live *v);

/*
 * One interval at epoch @now: read the table (each(), totals()) and redraw the screen, or write
 * this interval's lines and flush them. Returns 0 or -errno: the first error of each(), -ENOMEM,
 * or the output's write error (-EPIPE when the reader of the lines has gone, for instance).
 */
int mp_live__draw(struct mp_live *v, double now);

/*
 * The descriptor for the loop to wait on (struct mp_source, owned by the view, valid until
 * mp_live__free()). Its ready() reads the waiting keys and resize notices without blocking and
 * returns 1 when the user asked to quit (`q`, or the terminal hung up), 0 to go on, or -errno.
 * With plain lines its fd is -1 (poll() skips it) and ready() is never called.
 */
struct mp_source *mp_live__source(struct mp_live *v);

/*
 * A sink (user/sink.h, owned by the view) whose tick() calls mp_live__draw(); event() and
 * finish() do nothing. Put it after the sink that updates the table, so each tick draws the
 * values of that tick.
 */
struct mp_sink *mp_live__sink(struct mp_live *v);

/*
 * Give the terminal back as it was before mp_live__new() (normal screen, echo, line mode,
 * cursor, keypad), restore LC_CTYPE and the signal actions curses and the view took (SIGINT,
 * SIGTERM and SIGTSTP when they were at their default, SIGWINCH; one the caller has set since
 * stays), and free everything. Lines already written stay written. Accepts NULL.
 */
void mp_live__free(struct mp_live *v);

#endif
