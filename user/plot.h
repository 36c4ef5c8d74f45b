/*
 * mp_plot: drawing parsed profiles with cairo, as `mprof plot` does with matplotlib.
 *
 * What is drawn, per memory_profiler 0.61's plot_file()/flame_plotter(), and where we differ:
 *   - the MEM curve against seconds since the profile's first point, FUNC entry and exit points
 *     merged into it; one curve per profile when several are overlaid, each from its own start;
 *   - one curve per CHLD pid;
 *   - for a single profile, FUNC brackets ('[' at entry, ']' at exit) in one colour per function,
 *     a marker at the highest point of the curve inside that function's calls, and one legend
 *     entry per function (memory_profiler adds one per call);
 *   - flame mode: the calls as a flame chart (one row per stack level, names inside the boxes)
 *     in a band under the curve, sharing its time axis;
 *   - the peak of each curve marked with its value and time (memory_profiler draws an unlabelled
 *     cross-hair only);
 *   - slope mode: a dashed least-squares line per curve and its slope in MiB/s in the legend;
 *   - a time window [xmin, xmax] in seconds since the start, the memory axis fitted to what it
 *     shows.
 * Nothing here prints.
 */
#ifndef MP_PLOT_H
#define MP_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "datfile.h"

enum mp_plot_format {
	MP_PLOT_PNG,
	MP_PLOT_SVG,
	MP_PLOT_PDF,
	MP_PLOT_PS,
	MP_PLOT_EPS,
};

/* Default picture size, memory_profiler's 14 x 6 inches at 90 dpi (pixels, or points). */
#define MP_PLOT_WIDTH 1260
#define MP_PLOT_HEIGHT 540

struct mp_plot_opts {
	const char *title; /* NULL: the CMDLINE of a single profile */
	bool no_func;	   /* -n: no brackets, function markers, flame chart or function legend */
	bool flame;	   /* -f */
	bool slope;	   /* -s */
	bool window;	   /* -w: show only [xmin, xmax] seconds */
	double xmin, xmax;
	int width, height; /* 0: MP_PLOT_WIDTH x MP_PLOT_HEIGHT (flame mode adds its band) */
};

/* One profile to draw. */
struct mp_plot_input {
	const struct mp_datfile *df;
	const char *name; /* file name, shown in the legend */
};

/* A legend line as drawn (tests count them). */
enum mp_legend_kind {
	MP_LEGEND_PROFILE,
	MP_LEGEND_PEAK,
	MP_LEGEND_TREND,
	MP_LEGEND_FUNC,
	MP_LEGEND_CHILD,
	MP_LEGEND_MORE, /* "... and N more" when the legend is full */
};

struct mp_legend_entry {
	enum mp_legend_kind kind;
	char *label;
	double rgb[3];
};

/* What mp_plot__render() drew, in output units (pixels for PNG, points otherwise). */
struct mp_plot_info {
	int width, height;
	double area_x, area_y, area_w, area_h; /* the memory axes' inner rectangle */
	double x_min, x_max;		       /* seconds mapped to area_x .. area_x + area_w */
	double y_min, y_max;		       /* MiB mapped to area_y + area_h .. area_y */
	double flame_y, flame_h;	       /* the flame band (0 high when absent) */
	size_t flame_rows;
	double peak_mib, peak_t; /* peak of the first profile's curve (in the window), t relative */
	double curve_rgb[3];	 /* colour of the first profile's curve */
	struct mp_legend_entry *legend;
	size_t n_legend;
	size_t n_legend_wanted; /* entries before the legend was cut to fit */
	double slope;		/* first profile's slope in MiB/s when opts->slope and defined */
	bool has_slope;
};

/* Free what @info owns (the legend). Accepts a zeroed @info. */
void mp_plot_info__release(struct mp_plot_info *info);

/*
 * The output format named by @path's extension (.png .svg .pdf .ps .eps, any case).
 * Returns 0, or -EINVAL for any other extension.
 */
int mp_plot__format(const char *path, enum mp_plot_format *fmt);

/*
 * memory_profiler's function_labels(): for each of @n distinct dotted names the shortest
 * trailing part ("inner", "a.run") that no other name shares. labels[i] points into names[i].
 */
void mp_plot__func_labels(const char *const *names, size_t n, const char **labels);

/*
 * Draw the @n profiles of @in into @path in format @fmt. The file appears whole or not at all
 * (written aside, then renamed). If @info is not NULL it is cleared, and on success receives the
 * layout, to release with mp_plot_info__release(). Returns 0, -ENODATA if a profile has no MEM
 * sample, -ERANGE if the window contains no time at all (xmin >= xmax) or the data spans more
 * than a double can scale (say -1e308 to 1e308 MiB), -ENOMEM, or the -errno of writing the file.
 */
int mp_plot__render(const struct mp_plot_input *in, size_t n, const struct mp_plot_opts *opts,
		    enum mp_plot_format fmt, const char *path, struct mp_plot_info *info);

/* ---- what plot computes that other views of a profile share (mprof report) ------------------ */

/* Deepest stack level worked out for a call whose FUNC line has none (flame rows beyond it crush the curve). */
#define MP_PLOT_MAX_LEVEL 16

/* One call of a profiled function (or profile.timestamp block), as plot draws it. */
struct mp_plot_call {
	double t0, t1; /* entry and exit, seconds since the origin given to mp_plot__calls() */
	double m0, m1; /* MiB at entry and exit */
	int level;     /* stack depth, outermost 0 (see mp_plot__calls()) */
	size_t func;   /* index into the profile's funcs[] */
};

/* Sort @n points in place by time, then by MiB (the order plot draws them in). */
void mp_plot__sort_points(struct mp_point *pts, size_t n);

/*
 * The memory curve of @df as plot draws it: its MEM samples with every FUNC entry and exit
 * point merged in (memory_profiler's plot_file() does the same), sorted with
 * mp_plot__sort_points(), times as in the file. On success *pts is malloc'ed (the caller frees
 * it) and holds *n points. Returns 0, or -ENOMEM.
 */
int mp_plot__curve(const struct mp_datfile *df, struct mp_point **pts, size_t *n);

/*
 * Every call of @df's functions, sorted by entry time (the enclosing call first on equal
 * entries), times made relative to @origin. A call whose FUNC line has a level keeps it; one
 * without (files older than memory_profiler 0.56) gets the number of calls it nests inside,
 * counted among the calls before it, at most MP_PLOT_MAX_LEVEL. On success *calls is malloc'ed
 * (the caller frees it; NULL when @df has no call) and holds *n calls. Returns 0, or -ENOMEM.
 */
int mp_plot__calls(const struct mp_datfile *df, double origin, struct mp_plot_call **calls,
		   size_t *n);

/*
 * Reduce a dense curve to what a display of columns can show without losing a peak: @pts[0..n)
 * (sorted by time) fall into columns floor(@x0 + (t - @t0) / (@t1 - @t0) * @width), and of
 * each run of points in one column only the first, the lowest, the highest and the last are
 * kept. Calls @keep(@ctx, i) for each kept index, in increasing order, each index once.
 */
void mp_plot__reduce(const struct mp_point *pts, size_t n, double x0, double t0, double t1,
		     double width, void (*keep)(void *ctx, size_t i), void *ctx);

/*
 * Drop cairo's process-wide caches (fonts, patterns) once nothing will be drawn any more, so that
 * leak checkers see only real leaks. No surface or context may be alive.
 */
void mp_plot__exit(void);

#endif
