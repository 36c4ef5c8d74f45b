/*
 * mp_report: one self-contained HTML page of profiles (`mprof report`).
 *
 * The page is a template of ours (mprof/report/report.html) with the charting library (uPlot,
 * pinned in mprof/report/package.json) and its licence written into it at build time, so it
 * opens with no network and an installed mprof needs no node_modules. The profiles go into the
 * page as JSON in a <script type="application/json" id="mprof-data"> element, with '<', '>' and
 * '&' escaped in every string so that no CMDLINE can end the element.
 *
 * The data model (what the page reads; keys in this order):
 *   {"version": 1, "title": <-t, or null: the page picks one as plot does>,
 *    "columns": C, "max_calls": K, "max_child_curves": M,
 *    "profiles": [{
 *      "file", "cmdline" (null without a CMDLINE line), "start" (epoch of the curve's first
 *      point; every "t" below is seconds since it), "mem_samples" (MEM lines),
 *      "peak": {"mib", "t", "time" (epoch), "bytes"}   the highest MEM sample, as `mprof peak`
 *      "mem": {"n", "t": [...], "mib": [...]}           the curve plot draws (MEM with the FUNC
 *                                                       entry and exit points merged), reduced
 *      "children": [{"pid", "n", "peak", ["t", "mib"]}] heaviest first; only the M heaviest
 *                                                       carry their reduced curve
 *      "funcs": [{"name", "label", "calls", "longest", "peak"}]  label: plot's shortest unique
 *                                                       suffix; peak as `mprof peak --func`, or null
 *      "calls": {"n", "shown", "t0", "t1", "m0", "m1", "level", "func"}  columns of equal length;
 *                                                       level as `mprof plot -f` computes it
 *      only when the file has LINE records (--lines; see user/linetab.h for the order):
 *      "lines": [{"pid", "grown", "freed", "events",    per process, heaviest first; bytes
 *        "groups": [{"file", "func" (null for the special group), "special",
 *                    "grown", "freed", "events",        per (file, function), heaviest first
 *          "rows": [{"line", "grown", "freed", "events",
 *                    "text"}]}]}]                        heaviest first; "text" the source line
 *                                                       as the file reads now, or null; special
 *                                                       rows have line 0 and "name" (the kind)
 *                                                       instead of "text"
 *      only when it has STACK records:
 *      "stacks": [{"pid", "grown", "freed", "events", "n",   per process, in file order
 *        "frames": [[func, file, line], ...],           each distinct frame once
 *        "stacks": [[[frame index, ...], grown, freed, events], ...]}]  frames root first
 *    }]}
 * Reduction: each curve is cut into C columns over its own time span and only the first, lowest,
 * highest and last point of each column are kept (mp_plot__reduce(), as plot does per pixel), so
 * a curve has at most 4 x (C + 1) points and no peak is lost. With more than K calls, the K
 * longest are kept (their levels were computed from all of them). Line tables and stacks are
 * written whole (a process has at most one row per source line and one entry per stack). The
 * line contents are read from the source files when the page is written (user/sources.h: only
 * regular .py and .pyw files; relative names from the current folder, then from the .dat's).
 *
 * Nothing here prints.
 */
#ifndef MP_REPORT_H
#define MP_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "datfile.h"

/* Columns per curve: 2000 is finer than a screen, and keeps a curve under 8004 points. */
#define MP_REPORT_COLUMNS 2000
/* Calls drawn as brackets and flame boxes; past this the shortest, sub-pixel ones are left out. */
#define MP_REPORT_MAX_CALLS 5000
/* Children drawn as curves (the heaviest); the others are listed with their peaks. */
#define MP_REPORT_MAX_CHILD_CURVES 32

struct mp_report_opts {
	const char *title; /* NULL: the command line of a single profile, as plot */
	size_t columns;	   /* 0: MP_REPORT_COLUMNS */
};

/* One profile to show. */
struct mp_report_input {
	const struct mp_datfile *df;
	const char *name; /* its file name, as given */
};

/*
 * Write the page of the @n (at least one) profiles of @in to @f. Returns 0, -EINVAL for no
 * profile, -ENODATA if a profile has no MEM sample, -ENOMEM, or -EIO when writing failed.
 */
int mp_report__write(FILE *f, const struct mp_report_input *in, size_t n,
		     const struct mp_report_opts *opts);

/*
 * mp_report__write() into the file @path, which appears whole or not at all (written aside in
 * the same folder, then renamed over it). Returns what mp_report__write() returns, or the -errno
 * of creating, writing or renaming the file.
 */
int mp_report__save(const char *path, const struct mp_report_input *in, size_t n,
		    const struct mp_report_opts *opts);

#endif
