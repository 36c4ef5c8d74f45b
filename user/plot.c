#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cairo.h>
#include <cairo-pdf.h>
#include <cairo-ps.h>
#include <cairo-svg.h>

#include "plot.h"

/* Layout, in output units. Sizes were chosen by eye on the default 1260 x 540 picture. */
#define FONT "DejaVu Sans"
#define TITLE_SIZE 17.0
#define TEXT_SIZE 12.0
#define SMALL_SIZE 10.5
#define LEGEND_ROW 19.0
#define LEGEND_SWATCH 30.0
#define LEGEND_PAD 9.0	/* inside the legend box, left and right */
#define LEGEND_GAP 16.0 /* between the axes and the legend box */
#define FLAME_ROW 20.0
#define FLAME_MAX_ROWS MP_PLOT_MAX_LEVEL /* deeper calls are not drawn */
#define FLAME_GAP 14.0
#define BRACKET_H 9.0
#define BRACKET_W 6.0
#define MAX_CHILD_MARKERS 20 /* peak dots per child curve: beyond this they only clutter */

struct rgb {
	double r, g, b;
};

/* Profile curves: a dark blue first (red is kept for the peak), then well separated hues. */
static const struct rgb profile_rgb[] = {
	{ 0.12, 0.31, 0.61 }, { 0.90, 0.49, 0.05 }, { 0.17, 0.60, 0.17 }, { 0.55, 0.35, 0.72 },
	{ 0.50, 0.33, 0.29 }, { 0.87, 0.40, 0.72 }, { 0.09, 0.68, 0.75 },
};
/* Children: softer hues than the profile curve. */
static const struct rgb child_rgb[] = {
	{ 1.00, 0.50, 0.05 }, { 0.17, 0.63, 0.17 }, { 0.58, 0.40, 0.74 }, { 0.55, 0.34, 0.29 },
	{ 0.89, 0.47, 0.76 }, { 0.74, 0.74, 0.13 }, { 0.09, 0.75, 0.81 }, { 0.50, 0.50, 0.50 },
};
/* Functions: memory_profiler cycles c, y, g, r, b; ours are the darker, readable variants. */
static const struct rgb func_rgb[] = {
	{ 0.05, 0.66, 0.74 }, { 0.80, 0.66, 0.00 }, { 0.20, 0.63, 0.20 }, { 0.58, 0.40, 0.74 },
	{ 0.95, 0.45, 0.10 }, { 0.55, 0.34, 0.29 }, { 0.89, 0.40, 0.70 }, { 0.45, 0.45, 0.45 },
};
static const double child_dash[] = { 8, 3, 2, 3 };
static const struct rgb peak_rgb = { 0.84, 0.15, 0.16 };
static const struct rgb grid_rgb = { 0.88, 0.88, 0.88 };
static const struct rgb axis_rgb = { 0.25, 0.25, 0.25 };
static const struct rgb text_rgb = { 0.10, 0.10, 0.10 };
static const struct rgb dim_rgb = { 0.40, 0.40, 0.40 };

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct curve {
	struct mp_point *pts; /* sorted by time, t relative to the profile's start */
	size_t n;
	struct rgb rgb;
	long peak; /* index of the highest visible point, -1 if none visible */
	bool fit;
	bool dashed; /* children of overlaid profiles: the profile's colour, dashed */
	double slope, icpt;
	/* a reduced read: exact least-squares sums over every sample in the window */
	const struct mp_fit_sums *sums;
};

struct profile {
	const struct mp_plot_input *in;
	double t0; /* epoch of its first point */
	struct curve mem;
	struct curve *kids;
	size_t n_kids;
};

struct finfo {
	const char *label;
	struct rgb rgb;
	size_t calls;
	double longest;
	bool has_max;
	double max_t, max_mib;
};

struct plot {
	const struct mp_plot_opts *o;
	struct mp_plot_info *info;
	cairo_t *cr;
	double w, h;
	double ax, ay, aw, ah; /* memory axes */
	double fy, fh;	       /* flame band */
	size_t frows;
	double xmin, xmax, ymin, ymax;
	double xstep, ystep;
	struct profile *prof;
	size_t n_prof;
	struct mp_plot_call *calls; /* functions of a single profile, when drawn */
	size_t n_calls;
	struct finfo *funcs;
	size_t n_funcs;
	struct mp_legend_entry *legend;
	size_t n_legend, cap_legend;
	double legend_w;
	char title[1024];
	char subtitle[512];
};

void mp_plot_info__release(struct mp_plot_info *info)
{
	for (size_t i = 0; i < info->n_legend; i++)
		free(info->legend[i].label);
	free(info->legend);
	info->legend = NULL;
	info->n_legend = 0;
}

int mp_plot__format(const char *path, enum mp_plot_format *fmt)
{
	static const struct {
		const char *ext;
		enum mp_plot_format fmt;
	} exts[] = {
		{ ".png", MP_PLOT_PNG }, { ".svg", MP_PLOT_SVG }, { ".pdf", MP_PLOT_PDF },
		{ ".ps", MP_PLOT_PS },	 { ".eps", MP_PLOT_EPS },
	};
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash + 1 : path, '.');

	if (!dot)
		return -EINVAL;
	for (size_t i = 0; i < N_OF(exts); i++) {
		if (!strcasecmp(dot, exts[i].ext)) {
			*fmt = exts[i].fmt;
			return 0;
		}
	}
	return -EINVAL;
}

/* The suffix of @name made of its last @level dot-separated parts (the whole name at most). */
static const char *suffix_parts(const char *name, size_t level)
{
	const char *p = name + strlen(name);

	while (p > name) {
		if (p[-1] == '.' && --level == 0)
			return p;
		p--;
	}
	return name;
}

void mp_plot__func_labels(const char *const *names, size_t n, const char **labels)
{
	size_t *level = calloc(n ? n : 1, sizeof(*level));
	bool again = true;

	if (!level) {
		/* no memory for the search: full names are unambiguous too */
		for (size_t i = 0; i < n; i++)
			labels[i] = names[i];
		return;
	}
	for (size_t i = 0; i < n; i++) {
		level[i] = 1;
		labels[i] = suffix_parts(names[i], 1);
	}
	/*
	 * Lengthen every label shared by several names until none is. The names are distinct,
	 * so two labels stay equal only while one of them can still grow: this ends.
	 */
	while (again) {
		again = false;
		for (size_t i = 0; i < n; i++) {
			size_t top = level[i];
			bool clash = false;

			for (size_t j = 0; j < n; j++) {
				if (j != i && !strcmp(labels[i], labels[j])) {
					clash = true;
					if (level[j] > top)
						top = level[j];
				}
			}
			if (!clash)
				continue;
			for (size_t j = 0; j < n; j++) {
				if (j == i || strcmp(labels[i], labels[j]))
					continue;
				level[j] = top + 1;
				labels[j] = suffix_parts(names[j], top + 1);
			}
			level[i] = top + 1;
			labels[i] = suffix_parts(names[i], top + 1);
			again = true;
		}
	}
	free(level);
}

/* ---- text ---------------------------------------------------------------------------------- */

/*
 * Copy @s into @out as valid UTF-8 without control characters (cairo refuses invalid text):
 * anything else becomes '?'.
 */
static void clean_utf8(const char *s, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;

	while (*p && w + 1 < size) {
		size_t n = 0;

		if (*p >= 0x20 && *p < 0x7f)
			n = 1;
		else if (*p >= 0xc2 && *p <= 0xdf)
			n = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 4;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				n = 0;
		/* overlong and surrogate forms */
		if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
			n = 0;
		if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
			n = 0;
		if (!n) {
			out[w++] = *p == '\t' ? ' ' : '?';
			p++;
			continue;
		}
		if (w + n + 1 > size)
			break;
		memcpy(out + w, p, n);
		w += n;
		p += n;
	}
	out[w] = '\0';
}

static void set_font(cairo_t *cr, double size, bool bold)
{
	cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *s)
{
	cairo_text_extents_t e;

	cairo_text_extents(cr, s, &e);
	return e.x_advance;
}

/* Shorten the valid UTF-8 text @s in place, ending it with "...", until it is at most @maxw wide. */
static void fit_text(cairo_t *cr, char *s, double maxw)
{
	size_t len = strlen(s);

	if (text_w(cr, s) <= maxw)
		return;
	while (len > 0) {
		len--;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
		if (len + 4 > strlen(s) + 1)
			continue;
		memcpy(s + len, "...", 4);
		if (text_w(cr, s) <= maxw)
			return;
	}
	s[0] = '\0';
}

/* Draw @s with its anchor at (x, y): ha 0 = left, 0.5 = centre, 1 = right; baseline y. */
static void text_at(cairo_t *cr, double x, double y, const char *s, double ha)
{
	cairo_move_to(cr, x - ha * text_w(cr, s), y);
	cairo_show_text(cr, s);
}

static void set_rgb(cairo_t *cr, struct rgb c)
{
	cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

/* ---- data ---------------------------------------------------------------------------------- */

static int pt_cmp(const void *a, const void *b)
{
	const struct mp_point *p = a, *q = b;

	if (p->t != q->t)
		return p->t < q->t ? -1 : 1;
	return (p->mib > q->mib) - (p->mib < q->mib);
}

static bool is_sorted(const struct mp_point *pts, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (pt_cmp(&pts[i - 1], &pts[i]) > 0)
			return false;
	return true;
}

void mp_plot__sort_points(struct mp_point *pts, size_t n)
{
	/* files are written in time order: checking is linear, sorting 20M points takes seconds */
	if (n > 1 && !is_sorted(pts, n))
		qsort(pts, n, sizeof(*pts), pt_cmp);
}

int mp_plot__curve(const struct mp_datfile *df, struct mp_point **pts, size_t *n)
{
	size_t k = 0, nf = 0, total;
	struct mp_point *out, *fp;

	for (size_t f = 0; f < df->n_funcs; f++)
		nf += 2 * df->funcs[f].n;
	total = df->mem.n + nf;
	out = malloc((total ? total : 1) * sizeof(*out));
	fp = malloc((nf ? nf : 1) * sizeof(*fp));
	if (!out || !fp) {
		free(out);
		free(fp);
		return -ENOMEM;
	}
	/* memory_profiler merges function entry and exit into the curve; so do we */
	for (size_t f = 0; f < df->n_funcs; f++) {
		for (size_t c = 0; c < df->funcs[f].n; c++) {
			const struct mp_call *call = &df->funcs[f].calls[c];

			fp[k++] = (struct mp_point){ call->t_start, call->mem_start };
			fp[k++] = (struct mp_point){ call->t_end, call->mem_end };
		}
	}
	mp_plot__sort_points(fp, nf);
	if (is_sorted(df->mem.pts, df->mem.n)) {
		/* the usual file: the MEM lines in time order, merged with the few FUNC points */
		size_t i = 0, j = 0;

		k = 0;
		while (i < df->mem.n || j < nf)
			out[k++] = j == nf || (i < df->mem.n && pt_cmp(&df->mem.pts[i], &fp[j]) <= 0) ?
					   df->mem.pts[i++] :
					   fp[j++];
	} else {
		memcpy(out, df->mem.pts, df->mem.n * sizeof(*out));
		memcpy(out + df->mem.n, fp, nf * sizeof(*out));
		qsort(out, total, sizeof(*out), pt_cmp);
	}
	free(fp);
	*pts = out;
	*n = total;
	return 0;
}

static int build_profile(struct profile *pr, const struct mp_plot_input *in)
{
	const struct mp_datfile *df = in->df;
	int err;

	pr->in = in;
	err = mp_plot__curve(df, &pr->mem.pts, &pr->mem.n);
	if (err)
		return err;
	pr->mem.sums = df->mem.has_sums ? &df->mem.sums : NULL;
	pr->t0 = pr->mem.pts[0].t;
	for (size_t i = 0; i < pr->mem.n; i++)
		pr->mem.pts[i].t -= pr->t0;

	if (!df->n_children)
		return 0;
	pr->kids = calloc(df->n_children, sizeof(*pr->kids));
	if (!pr->kids)
		return -ENOMEM;
	pr->n_kids = df->n_children;
	for (size_t k = 0; k < df->n_children; k++) {
		const struct mp_series *s = &df->children[k].s;
		struct curve *c = &pr->kids[k];

		c->pts = malloc((s->n ? s->n : 1) * sizeof(*c->pts));
		if (!c->pts)
			return -ENOMEM;
		memcpy(c->pts, s->pts, s->n * sizeof(*c->pts));
		c->n = s->n;
		c->sums = s->has_sums ? &s->sums : NULL;
		mp_plot__sort_points(c->pts, c->n);
		for (size_t i = 0; i < c->n; i++)
			c->pts[i].t -= pr->t0;
		c->rgb = child_rgb[k % N_OF(child_rgb)];
	}
	return 0;
}

static void free_profiles(struct plot *p)
{
	for (size_t i = 0; i < p->n_prof; i++) {
		free(p->prof[i].mem.pts);
		for (size_t k = 0; k < p->prof[i].n_kids; k++)
			free(p->prof[i].kids[k].pts);
		free(p->prof[i].kids);
	}
	free(p->prof);
	free(p->calls);
	free(p->funcs);
}

static bool visible(const struct plot *p, double t)
{
	return t >= p->xmin && t <= p->xmax;
}

static int call_cmp(const void *a, const void *b)
{
	const struct mp_plot_call *p = a, *q = b;

	if (p->t0 != q->t0)
		return p->t0 < q->t0 ? -1 : 1;
	if (p->t1 != q->t1)
		return p->t1 > q->t1 ? -1 : 1; /* the enclosing call first */
	return (p->func > q->func) - (p->func < q->func);
}

int mp_plot__calls(const struct mp_datfile *df, double origin, struct mp_plot_call **calls,
		   size_t *n)
{
	struct mp_plot_call *out;
	double *stack;
	size_t depth = 0, k = 0;

	*calls = NULL;
	*n = 0;
	for (size_t f = 0; f < df->n_funcs; f++)
		k += df->funcs[f].n;
	if (!k)
		return 0;
	out = calloc(k, sizeof(*out));
	stack = calloc(k, sizeof(*stack));
	if (!out || !stack) {
		free(out);
		free(stack);
		return -ENOMEM;
	}
	k = 0;
	for (size_t f = 0; f < df->n_funcs; f++) {
		const struct mp_func *fn = &df->funcs[f];

		for (size_t c = 0; c < fn->n; c++) {
			struct mp_plot_call *fc = &out[k++];

			fc->t0 = fn->calls[c].t_start - origin;
			fc->t1 = fn->calls[c].t_end - origin;
			fc->m0 = fn->calls[c].mem_start;
			fc->m1 = fn->calls[c].mem_end;
			fc->level = fn->calls[c].level;
			fc->func = f;
		}
	}
	qsort(out, k, sizeof(*out), call_cmp);
	/* the calls still open when each one starts are the ones it nests inside */
	for (size_t i = 0; i < k; i++) {
		struct mp_plot_call *fc = &out[i];

		while (depth && stack[depth - 1] < fc->t0)
			depth--;
		if (fc->level < 0)
			fc->level = depth > (size_t)MP_PLOT_MAX_LEVEL ? MP_PLOT_MAX_LEVEL : (int)depth;
		stack[depth++] = fc->t1;
	}
	free(stack);
	*calls = out;
	*n = k;
	return 0;
}

/* The calls of the single profile, and a label and a colour per function. */
static int build_calls(struct plot *p)
{
	const struct mp_datfile *df = p->prof[0].in->df;
	const char **names = NULL, **labels = NULL;
	int err;

	err = mp_plot__calls(df, p->prof[0].t0, &p->calls, &p->n_calls);
	if (err || !p->n_calls)
		return err;
	err = -ENOMEM;
	p->funcs = calloc(df->n_funcs, sizeof(*p->funcs));
	names = calloc(df->n_funcs, sizeof(*names));
	labels = calloc(df->n_funcs, sizeof(*labels));
	if (!p->funcs || !names || !labels)
		goto cleanup;
	p->n_funcs = df->n_funcs;
	for (size_t f = 0; f < df->n_funcs; f++)
		names[f] = df->funcs[f].name;
	mp_plot__func_labels(names, df->n_funcs, labels);
	for (size_t f = 0; f < df->n_funcs; f++) {
		p->funcs[f].label = labels[f];
		p->funcs[f].rgb = func_rgb[f % N_OF(func_rgb)];
	}
	err = 0;
cleanup:
	free(names);
	free(labels);
	return err;
}

/* Per function: its call count, longest call, and the highest visible point of the curve in its calls. */
static void measure_funcs(struct plot *p)
{
	const struct curve *m = &p->prof[0].mem;

	for (size_t i = 0; i < p->n_calls; i++) {
		const struct mp_plot_call *fc = &p->calls[i];
		struct finfo *fi = &p->funcs[fc->func];
		size_t lo = 0, hi = m->n;

		fi->calls++;
		if (fc->t1 - fc->t0 > fi->longest)
			fi->longest = fc->t1 - fc->t0;
		while (lo < hi) { /* first point at or after the call's start */
			size_t mid = lo + (hi - lo) / 2;

			if (m->pts[mid].t < fc->t0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t k = lo; k < m->n && m->pts[k].t <= fc->t1; k++) {
			if (!visible(p, m->pts[k].t))
				continue;
			if (!fi->has_max || m->pts[k].mib > fi->max_mib) {
				fi->has_max = true;
				fi->max_mib = m->pts[k].mib;
				fi->max_t = m->pts[k].t;
			}
		}
	}
}

/* Peak of the visible part of @c, and its least-squares line if asked. */
static void measure_curve(struct plot *p, struct curve *c)
{
	size_t first = c->n, last = 0;

	c->peak = -1;
	for (size_t i = 0; i < c->n; i++) {
		if (!visible(p, c->pts[i].t))
			continue;
		if (first == c->n)
			first = i;
		last = i;
		if (c->peak < 0 || c->pts[i].mib > c->pts[c->peak].mib)
			c->peak = (long)i;
	}
	c->fit = false;
	if (p->o->slope && c->sums) {
		const struct mp_fit_sums *z = c->sums;
		double den = z->n * z->tt - z->t * z->t;

		if (z->n >= 2 && den > 0 && isfinite(den)) {
			c->slope = (z->n * z->tm - z->t * z->m) / den;
			c->icpt = (z->m - c->slope * z->t) / z->n;
			c->fit = isfinite(c->slope) && isfinite(c->icpt);
		}
	} else if (p->o->slope && first < c->n) {
		c->fit = !mp_points__fit(c->pts + first, last - first + 1, 0, &c->slope, &c->icpt);
	}
}

/* A step of 1, 2 or 5 times a power of ten giving about @target intervals over @range. */
static double nice_step(double range, double target)
{
	double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;

	if (f < 1.5)
		return mag;
	if (f < 3.5)
		return 2 * mag;
	if (f < 7.5)
		return 5 * mag;
	return 10 * mag;
}

static int ranges(struct plot *p)
{
	double lo = INFINITY, hi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;

	for (size_t i = 0; i < p->n_prof; i++) {
		const struct profile *pr = &p->prof[i];

		lo = fmin(lo, pr->mem.pts[0].t);
		hi = fmax(hi, pr->mem.pts[pr->mem.n - 1].t);
		for (size_t k = 0; k < pr->n_kids; k++) {
			if (!pr->kids[k].n)
				continue;
			lo = fmin(lo, pr->kids[k].pts[0].t);
			hi = fmax(hi, pr->kids[k].pts[pr->kids[k].n - 1].t);
		}
	}
	if (p->o->window) {
		p->xmin = p->o->xmin;
		p->xmax = p->o->xmax;
	} else {
		double pad = hi > lo ? (hi - lo) * 0.02 : 0.5;

		p->xmin = lo - pad;
		p->xmax = hi + pad;
	}

	for (size_t i = 0; i < p->n_prof; i++) {
		struct profile *pr = &p->prof[i];

		measure_curve(p, &pr->mem);
		for (size_t k = 0; k < pr->n_kids; k++)
			measure_curve(p, &pr->kids[k]);
		for (size_t j = 0; j < pr->mem.n; j++) {
			if (visible(p, pr->mem.pts[j].t)) {
				ylo = fmin(ylo, pr->mem.pts[j].mib);
				yhi = fmax(yhi, pr->mem.pts[j].mib);
			}
		}
		for (size_t k = 0; k < pr->n_kids; k++) {
			for (size_t j = 0; j < pr->kids[k].n; j++) {
				if (visible(p, pr->kids[k].pts[j].t)) {
					ylo = fmin(ylo, pr->kids[k].pts[j].mib);
					yhi = fmax(yhi, pr->kids[k].pts[j].mib);
				}
			}
		}
	}
	if (ylo > yhi) { /* nothing in the window: keep the whole memory range */
		for (size_t i = 0; i < p->n_prof; i++) {
			for (size_t j = 0; j < p->prof[i].mem.n; j++) {
				ylo = fmin(ylo, p->prof[i].mem.pts[j].mib);
				yhi = fmax(yhi, p->prof[i].mem.pts[j].mib);
			}
		}
	}
	/* A curve that starts near zero reads best on an axis that starts at zero. */
	if (ylo >= 0 && ylo < 0.25 * yhi)
		ylo = 0;
	if (yhi - ylo < 1e-9) {
		double d = fabs(yhi) > 1 ? fabs(yhi) * 0.05 : 1;

		ylo -= d;
		yhi += d;
	}
	/* room above the peak for its label, a little below the lowest point */
	p->ymax = yhi + (yhi - ylo) * 0.10;
	p->ymin = ylo == 0 ? 0 : ylo - (yhi - ylo) * 0.04;
	p->xstep = nice_step(p->xmax - p->xmin, 10);
	p->ystep = nice_step(p->ymax - p->ymin, 7);
	/* values such as 1e308 and -1e308 leave no finite scale to draw with */
	if (!isfinite(p->xmax - p->xmin) || !isfinite(p->ymax - p->ymin) ||
	    !(p->xstep > 0 && isfinite(p->xstep)) || !(p->ystep > 0 && isfinite(p->ystep)))
		return -ERANGE;
	return 0;
}

static double X(const struct plot *p, double t)
{
	return p->ax + (t - p->xmin) / (p->xmax - p->xmin) * p->aw;
}

static double Y(const struct plot *p, double mib)
{
	return p->ay + p->ah - (mib - p->ymin) / (p->ymax - p->ymin) * p->ah;
}

/* ---- legend -------------------------------------------------------------------------------- */

static int legend_add(struct plot *p, enum mp_legend_kind kind, struct rgb c, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

static int legend_add(struct plot *p, enum mp_legend_kind kind, struct rgb c, const char *fmt, ...)
{
	struct mp_legend_entry *e;
	char raw[512], *label;
	va_list ap;

	if (p->n_legend == p->cap_legend) {
		size_t cap = p->cap_legend ? p->cap_legend * 2 : 16;
		void *nl = realloc(p->legend, cap * sizeof(*p->legend));

		if (!nl)
			return -ENOMEM;
		p->legend = nl;
		p->cap_legend = cap;
	}
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	label = malloc(sizeof(raw));
	if (!label)
		return -ENOMEM;
	clean_utf8(raw, label, sizeof(raw));
	e = &p->legend[p->n_legend++];
	e->kind = kind;
	e->label = label;
	e->rgb[0] = c.r;
	e->rgb[1] = c.g;
	e->rgb[2] = c.b;
	return 0;
}

/* "DD/MM/YYYY HH:MM:SS.mmm" in local time, or the bare number if it is no plausible date. */
static void fmt_start(double epoch, char *buf, size_t size)
{
	time_t sec;
	int ms;
	struct tm tm;

	/* up to year ~5000: beyond that the cast to time_t is not defined */
	if (!(fabs(epoch) < 1e11)) {
		snprintf(buf, size, "%.3f", epoch);
		return;
	}
	sec = (time_t)floor(epoch);
	ms = (int)lround((epoch - floor(epoch)) * 1000);
	if (ms == 1000) {
		sec++;
		ms = 0;
	}
	if (!localtime_r(&sec, &tm) ||
	    !strftime(buf, size, "%d/%m/%Y %H:%M:%S", &tm)) {
		snprintf(buf, size, "%.3f", epoch);
		return;
	}
	snprintf(buf + strlen(buf), size - strlen(buf), ".%03d", ms);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s && s[1] ? s + 1 : path;
}

struct kid_rank {
	double peak;
	size_t idx;
};

static int kid_rank_cmp(const void *a, const void *b)
{
	const struct kid_rank *p = a, *q = b;

	if (p->peak != q->peak)
		return p->peak > q->peak ? -1 : 1;
	return (p->idx > q->idx) - (p->idx < q->idx);
}

static int build_legend(struct plot *p)
{
	const char *in_window = p->o->window ? " in window" : "";
	int err = 0;

	for (size_t i = 0; i < p->n_prof && !err; i++) {
		const struct profile *pr = &p->prof[i];
		char slope[64] = "", start[64];

		if (p->o->slope)
			snprintf(slope, sizeof(slope), pr->mem.fit ? ", slope %.5f MiB/s" :
								     ", slope undefined",
				 pr->mem.slope);
		if (p->n_prof == 1) {
			err = legend_add(p, MP_LEGEND_PROFILE, pr->mem.rgb, "memory used%s%s",
					 pr->in->df->n_children ? " (main process)" : "", slope);
		} else {
			fmt_start(pr->t0, start, sizeof(start));
			err = legend_add(p, MP_LEGEND_PROFILE, pr->mem.rgb, "%s, start %s%s%s",
					 base_name(pr->in->name), start,
					 pr->mem.peak >= 0 ? "" : " (not in window)", slope);
			if (!err && pr->mem.peak >= 0)
				err = legend_add(p, MP_LEGEND_PEAK, pr->mem.rgb,
						 "peak%s %.3f MiB at %.3f s", in_window,
						 pr->mem.pts[pr->mem.peak].mib,
						 pr->mem.pts[pr->mem.peak].t);
		}
	}
	if (!err && p->n_prof == 1 && p->prof[0].mem.peak >= 0) {
		const struct curve *m = &p->prof[0].mem;

		err = legend_add(p, MP_LEGEND_PEAK, peak_rgb, "peak%s %.3f MiB at %.3f s", in_window,
				 m->pts[m->peak].mib, m->pts[m->peak].t);
	}
	if (!err && p->o->slope)
		err = legend_add(p, MP_LEGEND_TREND, dim_rgb, "dashed: least-squares trend");
	for (size_t f = 0; f < p->n_funcs && !err; f++) {
		const struct finfo *fi = &p->funcs[f];
		char max[64] = ", not in window";

		if (fi->has_max)
			snprintf(max, sizeof(max), ", max %.3f MiB", fi->max_mib);
		if (fi->calls == 1)
			err = legend_add(p, MP_LEGEND_FUNC, fi->rgb, "%s %.3fs%s", fi->label,
					 fi->longest, max);
		else
			err = legend_add(p, MP_LEGEND_FUNC, fi->rgb,
					 "%s, %zu calls, longest %.3fs%s", fi->label, fi->calls,
					 fi->longest, max);
	}
	for (size_t i = 0; i < p->n_prof && !err; i++) {
		const struct profile *pr = &p->prof[i];
		struct kid_rank *rank;

		if (!pr->n_kids)
			continue;
		/* the heaviest children first: when the legend is cut, the small ones go */
		rank = malloc(pr->n_kids * sizeof(*rank));
		if (!rank)
			return -ENOMEM;
		for (size_t k = 0; k < pr->n_kids; k++) {
			const struct curve *c = &pr->kids[k];

			rank[k].peak = c->peak >= 0 ? c->pts[c->peak].mib : -INFINITY;
			rank[k].idx = k;
		}
		qsort(rank, pr->n_kids, sizeof(*rank), kid_rank_cmp);
		for (size_t r = 0; r < pr->n_kids && !err; r++) {
			size_t k = rank[r].idx;
			const struct curve *c = &pr->kids[k];
			char extra[96] = "";

			if (c->peak >= 0)
				snprintf(extra, sizeof(extra), ", peak %.3f MiB",
					 c->pts[c->peak].mib);
			if (p->o->slope)
				snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
					 c->fit ? ", slope %.5f MiB/s" : ", slope undefined",
					 c->slope);
			if (p->n_prof > 1)
				err = legend_add(p, MP_LEGEND_CHILD, c->rgb, "child %d of %s%s",
						 pr->in->df->children[k].pid,
						 base_name(pr->in->name), extra);
			else
				err = legend_add(p, MP_LEGEND_CHILD, c->rgb, "child %d%s",
						 pr->in->df->children[k].pid, extra);
		}
		free(rank);
	}
	return err;
}

/* ---- drawing ------------------------------------------------------------------------------- */

static void line(cairo_t *cr, double x0, double y0, double x1, double y1)
{
	cairo_move_to(cr, x0, y0);
	cairo_line_to(cr, x1, y1);
	cairo_stroke(cr);
}

/*
 * The multiples of @step in [lo, hi], at most @max of them. Counted, not accumulated: on values
 * far larger than the step (1e15 MiB moving by 1) adding the step would not move at all.
 */
static size_t ticks(double lo, double hi, double step, double *out, size_t max)
{
	double k0 = ceil(lo / step);
	size_t n = 0;

	for (size_t i = 0; i < max && isfinite(k0); i++) {
		double v = (k0 + (double)i) * step;

		if (v > hi + 1e-9 * step || (n && v <= out[n - 1]))
			break;
		out[n++] = v;
	}
	return n;
}

/* Decimals that show a tick step of @step exactly (12 at most). */
static int decimals(double step)
{
	int d = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);

	return d > 12 ? 12 : d;
}

static void draw_frame(struct plot *p)
{
	cairo_t *cr = p->cr;
	char buf[64];
	double xt[64], yt[64];
	size_t nx = ticks(p->xmin, p->xmax, p->xstep, xt, 64);
	size_t ny = ticks(p->ymin, p->ymax, p->ystep, yt, 64);
	int xdec = decimals(p->xstep), ydec = decimals(p->ystep);
	double bottom = p->fh > 0 ? p->fy + p->fh : p->ay + p->ah;

	/* grid */
	cairo_set_line_width(cr, 1);
	set_rgb(cr, grid_rgb);
	for (size_t i = 0; i < nx; i++) {
		line(cr, X(p, xt[i]), p->ay, X(p, xt[i]), p->ay + p->ah);
		if (p->fh > 0)
			line(cr, X(p, xt[i]), p->fy, X(p, xt[i]), p->fy + p->fh);
	}
	for (size_t i = 0; i < ny; i++)
		line(cr, p->ax, Y(p, yt[i]), p->ax + p->aw, Y(p, yt[i]));

	/* ticks and their labels ("-0" printed as 0) */
	set_font(cr, SMALL_SIZE, false);
	set_rgb(cr, axis_rgb);
	for (size_t i = 0; i < nx; i++) {
		snprintf(buf, sizeof(buf), "%.*f", xdec, fabs(xt[i]) < p->xstep * 1e-6 ? 0.0 : xt[i]);
		line(cr, X(p, xt[i]), bottom, X(p, xt[i]), bottom + 5);
		text_at(cr, X(p, xt[i]), bottom + 18, buf, 0.5);
	}
	for (size_t i = 0; i < ny; i++) {
		snprintf(buf, sizeof(buf), "%.*f", ydec, fabs(yt[i]) < p->ystep * 1e-6 ? 0.0 : yt[i]);
		line(cr, p->ax - 5, Y(p, yt[i]), p->ax, Y(p, yt[i]));
		text_at(cr, p->ax - 8, Y(p, yt[i]) + 4, buf, 1);
	}

	/* axis titles */
	set_font(cr, TEXT_SIZE, false);
	set_rgb(cr, text_rgb);
	text_at(cr, p->ax + p->aw / 2, bottom + 40, "time (in seconds)", 0.5);
	cairo_save(cr);
	cairo_translate(cr, p->ax - 58, p->ay + p->ah / 2);
	cairo_rotate(cr, -M_PI / 2);
	text_at(cr, 0, 0, "memory used (in MiB)", 0.5);
	cairo_restore(cr);

	/* title and subtitle */
	set_font(cr, TITLE_SIZE, true);
	fit_text(cr, p->title, p->w - 40);
	text_at(cr, p->w / 2, 28, p->title, 0.5);
	set_font(cr, SMALL_SIZE, false);
	set_rgb(cr, dim_rgb);
	fit_text(cr, p->subtitle, p->w - 40);
	text_at(cr, p->w / 2, 47, p->subtitle, 0.5);
}

void mp_plot__reduce(const struct mp_point *pts, size_t n, double x0, double t0, double t1,
		     double width, void (*keep)(void *ctx, size_t i), void *ctx)
{
	size_t i = 0;

	while (i < n) {
		double col = floor(x0 + (pts[i].t - t0) / (t1 - t0) * width);
		size_t first = i, lo = i, hi = i, last = i, k4[4];

		while (i + 1 < n && floor(x0 + (pts[i + 1].t - t0) / (t1 - t0) * width) == col) {
			i++;
			if (pts[i].mib < pts[lo].mib)
				lo = i;
			if (pts[i].mib > pts[hi].mib)
				hi = i;
			last = i;
		}
		i++;
		k4[0] = first;
		k4[1] = lo < hi ? lo : hi;
		k4[2] = lo < hi ? hi : lo;
		k4[3] = last;
		/* the four are in increasing order: skipping repeats leaves each index once */
		for (int k = 0; k < 4; k++)
			if (!k || k4[k] != k4[k - 1])
				keep(ctx, k4[k]);
	}
}

struct path_ctx {
	struct plot *p;
	const struct mp_point *pts;
	bool started;
};

static void path_point(void *ctx, size_t i)
{
	struct path_ctx *c = ctx;
	double x = X(c->p, c->pts[i].t), y = Y(c->p, c->pts[i].mib);

	if (!c->started) {
		cairo_move_to(c->p->cr, x, y);
		c->started = true;
	} else {
		cairo_line_to(c->p->cr, x, y);
	}
}

/* Trace @pts as a polyline, keeping per pixel column only the first, lowest, highest and last point. */
static void path_curve(struct plot *p, const struct mp_point *pts, size_t n)
{
	size_t i = 0, end = n;
	struct path_ctx ctx = { .p = p };

	/* from the last point before the window to the first after it, so lines reach the edges */
	while (i + 1 < n && pts[i + 1].t < p->xmin)
		i++;
	while (end > i + 1 && pts[end - 2].t > p->xmax)
		end--;
	if (i >= end)
		return;
	ctx.pts = pts + i;
	mp_plot__reduce(pts + i, end - i, p->ax, p->xmin, p->xmax, p->aw, path_point, &ctx);
}

static size_t count_visible(const struct plot *p, const struct curve *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += visible(p, c->pts[i].t);
	return n;
}

static void draw_curve(struct plot *p, const struct curve *c, double width, bool markers)
{
	cairo_t *cr = p->cr;

	if (!c->n)
		return;
	cairo_save(cr);
	set_rgb(cr, c->rgb);
	cairo_set_line_width(cr, width);
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	if (c->dashed)
		cairo_set_dash(cr, child_dash, N_OF(child_dash), 0);
	path_curve(p, c->pts, c->n);
	cairo_stroke(cr);
	/*
	 * memory_profiler's "+" at each sample, while they are far enough apart to be seen; in a
	 * burst of close samples (our event-driven peaks) only one "+" every few pixels.
	 */
	if (markers && count_visible(p, c) * 7 <= p->aw) {
		double lx = -INFINITY, ly = -INFINITY;

		cairo_set_dash(cr, NULL, 0, 0);
		cairo_set_line_width(cr, 1.2);
		for (size_t i = 0; i < c->n; i++) {
			double x = X(p, c->pts[i].t), y = Y(p, c->pts[i].mib);

			if (!visible(p, c->pts[i].t) || (fabs(x - lx) < 4 && fabs(y - ly) < 4))
				continue;
			line(cr, x - 3.5, y, x + 3.5, y);
			line(cr, x, y - 3.5, x, y + 3.5);
			lx = x;
			ly = y;
		}
	}
	cairo_restore(cr);
}

static void draw_trend(struct plot *p, const struct curve *c)
{
	cairo_t *cr = p->cr;
	double dash[] = { 7, 4 };
	double a = INFINITY, b = -INFINITY;

	if (!c->fit)
		return;
	for (size_t i = 0; i < c->n; i++) {
		if (visible(p, c->pts[i].t)) {
			a = fmin(a, c->pts[i].t);
			b = fmax(b, c->pts[i].t);
		}
	}
	cairo_save(cr);
	set_rgb(cr, c->rgb);
	cairo_set_line_width(cr, 1.2);
	cairo_set_dash(cr, dash, 2, 0);
	line(cr, X(p, a), Y(p, c->slope * a + c->icpt), X(p, b), Y(p, c->slope * b + c->icpt));
	cairo_restore(cr);
}

static void dot(cairo_t *cr, double x, double y, double r, struct rgb fill)
{
	cairo_arc(cr, x, y, r, 0, 2 * M_PI);
	set_rgb(cr, fill);
	cairo_fill_preserve(cr);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_set_line_width(cr, 1.2);
	cairo_stroke(cr);
}

static void diamond(cairo_t *cr, double x, double y, double r, struct rgb fill)
{
	cairo_move_to(cr, x, y - r);
	cairo_line_to(cr, x + r, y);
	cairo_line_to(cr, x, y + r);
	cairo_line_to(cr, x - r, y);
	cairo_close_path(cr);
	set_rgb(cr, fill);
	cairo_fill_preserve(cr);
	set_rgb(cr, text_rgb);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
}

static void bracket(cairo_t *cr, double x, double y, double dir)
{
	cairo_move_to(cr, x + dir * BRACKET_W, y - BRACKET_H);
	cairo_line_to(cr, x, y - BRACKET_H);
	cairo_line_to(cr, x, y + BRACKET_H);
	cairo_line_to(cr, x + dir * BRACKET_W, y + BRACKET_H);
	cairo_stroke(cr);
}

static void draw_brackets(struct plot *p)
{
	cairo_t *cr = p->cr;

	cairo_set_line_width(cr, 2);
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
	for (size_t i = 0; i < p->n_calls; i++) {
		const struct mp_plot_call *fc = &p->calls[i];

		set_rgb(cr, p->funcs[fc->func].rgb);
		if (visible(p, fc->t0))
			bracket(cr, X(p, fc->t0), Y(p, fc->m0), 1);
		if (visible(p, fc->t1))
			bracket(cr, X(p, fc->t1), Y(p, fc->m1), -1);
	}
	for (size_t f = 0; f < p->n_funcs; f++)
		if (p->funcs[f].has_max)
			diamond(cr, X(p, p->funcs[f].max_t), Y(p, p->funcs[f].max_mib), 6,
				p->funcs[f].rgb);
}

/* The peak cross-hair of a single profile, labelled with its value and time. */
static void draw_peak(struct plot *p)
{
	const struct curve *m = &p->prof[0].mem;
	cairo_t *cr = p->cr;
	double dash[] = { 6, 4 }, x, y, tw, bx, by;
	char label[128];

	if (m->peak < 0)
		return;
	x = X(p, m->pts[m->peak].t);
	y = Y(p, m->pts[m->peak].mib);
	cairo_save(cr);
	set_rgb(cr, peak_rgb);
	cairo_set_line_width(cr, 1.2);
	cairo_set_dash(cr, dash, 2, 0);
	line(cr, p->ax, y, p->ax + p->aw, y);
	line(cr, x, p->ay, x, p->ay + p->ah);
	cairo_restore(cr);
	dot(cr, x, y, 5, peak_rgb);

	snprintf(label, sizeof(label), "peak %.3f MiB at %.3f s", m->pts[m->peak].mib,
		 m->pts[m->peak].t);
	set_font(cr, TEXT_SIZE, true);
	tw = text_w(cr, label);
	/* right of the peak if it fits, else left; above the dashed line, else below */
	bx = x + 10 + tw + 8 <= p->ax + p->aw ? x + 10 : x - 10 - tw - 8;
	by = y - 26 >= p->ay + 2 ? y - 26 : y + 8;
	if (bx < p->ax + 2)
		bx = p->ax + 2;
	cairo_rectangle(cr, bx, by, tw + 8, 18);
	cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
	cairo_fill_preserve(cr);
	set_rgb(cr, peak_rgb);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
	text_at(cr, bx + 4, by + 13.5, label, 0);
}

static void draw_flame(struct plot *p)
{
	cairo_t *cr = p->cr;
	char buf[256];

	cairo_save(cr);
	cairo_rectangle(cr, p->ax, p->fy, p->aw, p->fh);
	cairo_clip(cr);
	set_font(cr, SMALL_SIZE, false);
	for (size_t i = 0; i < p->n_calls; i++) {
		const struct mp_plot_call *fc = &p->calls[i];
		const struct finfo *fi = &p->funcs[fc->func];
		double x0, x1, y;

		if (fc->level >= (int)p->frows || fc->t1 < p->xmin || fc->t0 > p->xmax)
			continue;
		x0 = fmax(X(p, fc->t0), p->ax - 1);
		x1 = fmin(X(p, fc->t1), p->ax + p->aw + 1);
		if (x1 - x0 < 1)
			x1 = x0 + 1; /* a call too short to see still leaves a mark */
		y = p->fy + p->fh - (fc->level + 1) * FLAME_ROW;
		cairo_rectangle(cr, x0, y + 1, x1 - x0, FLAME_ROW - 2);
		cairo_set_source_rgba(cr, fi->rgb.r, fi->rgb.g, fi->rgb.b, 0.55);
		cairo_fill_preserve(cr);
		set_rgb(cr, fi->rgb);
		cairo_set_line_width(cr, 1);
		cairo_stroke(cr);
		if (x1 - x0 > 24) {
			clean_utf8(fi->label, buf, sizeof(buf));
			fit_text(cr, buf, x1 - x0 - 6);
			set_rgb(cr, text_rgb);
			text_at(cr, x0 + 3, y + FLAME_ROW - 6, buf, 0);
		}
	}
	cairo_restore(cr);

	set_rgb(cr, axis_rgb);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, p->ax, p->fy, p->aw, p->fh);
	cairo_stroke(cr);
	set_font(cr, SMALL_SIZE, false);
	for (size_t r = 0; r < p->frows; r++) {
		snprintf(buf, sizeof(buf), "%zu", r);
		text_at(cr, p->ax - 8, p->fy + p->fh - r * FLAME_ROW - 6, buf, 1);
	}
	cairo_save(cr);
	cairo_translate(cr, p->ax - 58, p->fy + p->fh / 2);
	cairo_rotate(cr, -M_PI / 2);
	text_at(cr, 0, 0, "call depth", 0.5);
	cairo_restore(cr);
}

static void legend_swatch(struct plot *p, const struct mp_legend_entry *e, double x, double y)
{
	struct rgb c = { e->rgb[0], e->rgb[1], e->rgb[2] };
	cairo_t *cr = p->cr;
	double dash[] = { 5, 3 };

	switch (e->kind) {
	case MP_LEGEND_PROFILE:
	case MP_LEGEND_CHILD:
		cairo_save(cr);
		set_rgb(cr, c);
		cairo_set_line_width(cr, e->kind == MP_LEGEND_PROFILE ? 2.2 : 1.6);
		if (e->kind == MP_LEGEND_CHILD && p->n_prof > 1)
			cairo_set_dash(cr, child_dash, N_OF(child_dash), 0);
		line(cr, x, y, x + LEGEND_SWATCH - 6, y);
		cairo_restore(cr);
		break;
	case MP_LEGEND_PEAK:
		dot(cr, x + (LEGEND_SWATCH - 6) / 2, y, 5, c);
		break;
	case MP_LEGEND_TREND:
		cairo_save(cr);
		set_rgb(cr, c);
		cairo_set_line_width(cr, 1.2);
		cairo_set_dash(cr, dash, 2, 0);
		line(cr, x, y, x + LEGEND_SWATCH - 6, y);
		cairo_restore(cr);
		break;
	case MP_LEGEND_FUNC:
		set_rgb(cr, c);
		cairo_save(cr);
		cairo_set_line_width(cr, 2);
		cairo_translate(cr, 0, y);
		cairo_scale(cr, 1, 0.65);
		bracket(cr, x + 1, 0, 1);
		bracket(cr, x + LEGEND_SWATCH - 7, 0, -1);
		cairo_restore(cr);
		diamond(cr, x + (LEGEND_SWATCH - 6) / 2, y, 4, c);
		break;
	case MP_LEGEND_MORE:
		break;
	}
}

static int draw_legend(struct plot *p)
{
	cairo_t *cr = p->cr;
	size_t rows = (size_t)floor((p->h - 70) / LEGEND_ROW), shown = p->n_legend;
	double bx = p->ax + p->aw + LEGEND_GAP, x = bx + LEGEND_PAD, y, hgt;
	char buf[512];

	if (!p->n_legend)
		return 0;
	if (rows < 2)
		rows = 2;
	if (shown > rows) {
		size_t hidden, nf = 0, nc = 0;
		int err;

		shown = rows - 1;
		hidden = p->n_legend - shown;
		for (size_t i = shown; i < p->n_legend; i++) {
			nf += p->legend[i].kind == MP_LEGEND_FUNC;
			nc += p->legend[i].kind == MP_LEGEND_CHILD;
		}
		for (size_t i = shown; i < p->n_legend; i++)
			free(p->legend[i].label);
		p->n_legend = shown;
		err = legend_add(p, MP_LEGEND_MORE, dim_rgb, "... and %zu more %s", hidden,
				 nc == hidden ? "children"  :
				 nf == hidden ? "functions" :
						"entries");
		if (err)
			return err;
		shown++;
	}
	hgt = (double)shown * LEGEND_ROW + 10;
	y = p->ay + p->ah / 2 - hgt / 2;
	if (y < 58)
		y = 58;
	cairo_rectangle(cr, bx, y, p->legend_w, hgt);
	cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
	cairo_fill_preserve(cr);
	set_rgb(cr, grid_rgb);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
	set_font(cr, TEXT_SIZE, false);
	for (size_t i = 0; i < shown; i++) {
		double ry = y + 5 + (i + 0.5) * LEGEND_ROW;
		const struct mp_legend_entry *e = &p->legend[i];

		legend_swatch(p, e, x, ry);
		snprintf(buf, sizeof(buf), "%s", e->label);
		fit_text(cr, buf, p->legend_w - 2 * LEGEND_PAD -
					  (e->kind == MP_LEGEND_MORE ? 0 : LEGEND_SWATCH));
		set_rgb(cr, e->kind == MP_LEGEND_MORE ? dim_rgb : text_rgb);
		text_at(cr, x + (e->kind == MP_LEGEND_MORE ? 0 : LEGEND_SWATCH), ry + 4.5, buf, 0);
	}
	return 0;
}

static void make_titles(struct plot *p)
{
	const struct profile *pr = &p->prof[0];
	char start[64], raw[sizeof(p->subtitle)];
	int len;

	if (p->o->title)
		clean_utf8(p->o->title, p->title, sizeof(p->title));
	else if (p->n_prof == 1 && pr->in->df->cmdline && pr->in->df->cmdline[0])
		clean_utf8(pr->in->df->cmdline, p->title, sizeof(p->title));
	else if (p->n_prof == 1)
		clean_utf8(base_name(pr->in->name), p->title, sizeof(p->title));
	else
		snprintf(p->title, sizeof(p->title), "%zu profiles", p->n_prof);

	if (p->n_prof > 1) {
		snprintf(p->subtitle, sizeof(p->subtitle), "each profile drawn from its own start%s",
			 p->o->no_func ? "" : "; function timestamps are drawn for a single profile only");
		return;
	}
	fmt_start(pr->t0, start, sizeof(start));
	len = snprintf(raw, sizeof(raw), "%s - started %s - %zu MEM samples%s",
		       base_name(pr->in->name), start,
		       pr->in->df->reduced ? pr->in->df->n_mem : pr->in->df->mem.n,
		       pr->in->df->reduced ? " (drawn per pixel column)" : "");
	if (pr->in->df->n_children && len > 0 && (size_t)len < sizeof(raw))
		snprintf(raw + len, sizeof(raw) - (size_t)len, ", %zu child process%s",
			 pr->in->df->n_children, pr->in->df->n_children > 1 ? "es" : "");
	clean_utf8(raw, p->subtitle, sizeof(p->subtitle));
}

static void layout(struct plot *p)
{
	cairo_t *cr = p->cr;
	double widest = 0, main_h;
	int maxlevel = -1;

	set_font(cr, TEXT_SIZE, false);
	for (size_t i = 0; i < p->n_legend; i++)
		widest = fmax(widest, text_w(cr, p->legend[i].label));
	p->legend_w = fmin(widest + LEGEND_SWATCH + 2 * LEGEND_PAD, p->w * 0.36);
	if (p->legend_w < 160)
		p->legend_w = 160;

	p->frows = 0;
	if (p->o->flame && p->n_calls) {
		for (size_t i = 0; i < p->n_calls; i++)
			if (p->calls[i].level > maxlevel)
				maxlevel = p->calls[i].level;
		p->frows = (size_t)maxlevel + 1;
		if (p->frows > FLAME_MAX_ROWS)
			p->frows = FLAME_MAX_ROWS;
	}
	p->fh = (double)p->frows * FLAME_ROW;
	main_h = p->h - (p->frows ? p->fh + FLAME_GAP : 0);

	p->ax = 84;
	p->ay = 62;
	p->aw = p->w - p->ax - LEGEND_GAP - p->legend_w - 14;
	p->ah = main_h - p->ay - 58;
	if (p->aw < 100)
		p->aw = 100;
	if (p->ah < 60)
		p->ah = 60;
	p->fy = p->ay + p->ah + FLAME_GAP;
}

static void draw(struct plot *p)
{
	cairo_t *cr = p->cr;

	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	draw_frame(p);

	cairo_save(cr);
	cairo_rectangle(cr, p->ax, p->ay, p->aw, p->ah);
	cairo_clip(cr);
	for (size_t i = 0; i < p->n_prof; i++) {
		const struct profile *pr = &p->prof[i];

		for (size_t k = 0; k < pr->n_kids; k++) {
			draw_curve(p, &pr->kids[k], 1.4, pr->n_kids <= MAX_CHILD_MARKERS);
			if (p->o->slope)
				draw_trend(p, &pr->kids[k]);
		}
	}
	for (size_t i = p->n_prof; i-- > 0;) {
		const struct profile *pr = &p->prof[i];

		draw_curve(p, &pr->mem, 2.0, true);
		if (p->o->slope)
			draw_trend(p, &pr->mem);
	}
	if (p->n_calls && !p->o->flame)
		draw_brackets(p);
	else if (p->n_calls)
		for (size_t f = 0; f < p->n_funcs; f++)
			if (p->funcs[f].has_max)
				diamond(cr, X(p, p->funcs[f].max_t), Y(p, p->funcs[f].max_mib), 6,
					p->funcs[f].rgb);
	for (size_t i = 0; i < p->n_prof; i++) {
		const struct profile *pr = &p->prof[i];

		if (pr->n_kids <= MAX_CHILD_MARKERS)
			for (size_t k = 0; k < pr->n_kids; k++)
				if (pr->kids[k].peak >= 0)
					dot(cr, X(p, pr->kids[k].pts[pr->kids[k].peak].t),
					    Y(p, pr->kids[k].pts[pr->kids[k].peak].mib), 3.5,
					    pr->kids[k].rgb);
		if (p->n_prof > 1 && pr->mem.peak >= 0)
			dot(cr, X(p, pr->mem.pts[pr->mem.peak].t),
			    Y(p, pr->mem.pts[pr->mem.peak].mib), 5, pr->mem.rgb);
	}
	if (p->n_prof == 1)
		draw_peak(p);
	cairo_restore(cr);

	set_rgb(cr, axis_rgb);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, p->ax, p->ay, p->aw, p->ah);
	cairo_stroke(cr);
	if (p->frows)
		draw_flame(p);
}

/* ---- output -------------------------------------------------------------------------------- */

struct sink {
	int fd;
	int err;
};

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int len)
{
	struct sink *s = closure;

	while (len) {
		ssize_t w = write(s->fd, data, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->err = w < 0 ? -errno : -EIO;
			return CAIRO_STATUS_WRITE_ERROR;
		}
		data += w;
		len -= (unsigned int)w;
	}
	return CAIRO_STATUS_SUCCESS;
}

static int cairo_err(cairo_status_t st, const struct sink *s)
{
	if (st == CAIRO_STATUS_SUCCESS)
		return 0;
	if (st == CAIRO_STATUS_NO_MEMORY)
		return -ENOMEM;
	if (st == CAIRO_STATUS_WRITE_ERROR && s->err)
		return s->err;
	return -EIO;
}

/* Open "<path>.tmp<N>" beside @path, new and with the umask's permissions. */
static int open_aside(const char *path, char **tmp)
{
	size_t len = strlen(path) + 32;

	*tmp = malloc(len);
	if (!*tmp)
		return -ENOMEM;
	for (unsigned int i = 0; i < 100; i++) {
		int fd;

		snprintf(*tmp, len, "%s.tmp%ld-%u", path, (long)getpid(), i);
		fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST) {
			int err = -errno;

			free(*tmp);
			*tmp = NULL;
			return err;
		}
	}
	free(*tmp);
	*tmp = NULL;
	return -EEXIST;
}

static int emit(struct plot *p, enum mp_plot_format fmt, const char *path)
{
	cairo_surface_t *surf = NULL;
	struct sink sink = { .fd = -1 };
	char *tmp = NULL;
	int err;

	sink.fd = open_aside(path, &tmp);
	if (sink.fd < 0)
		return sink.fd;
	switch (fmt) {
	case MP_PLOT_PNG:
		surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)p->w, (int)p->h);
		break;
	case MP_PLOT_SVG:
		surf = cairo_svg_surface_create_for_stream(sink_write, &sink, p->w, p->h);
		break;
	case MP_PLOT_PDF:
		surf = cairo_pdf_surface_create_for_stream(sink_write, &sink, p->w, p->h);
		break;
	case MP_PLOT_PS:
	case MP_PLOT_EPS:
		surf = cairo_ps_surface_create_for_stream(sink_write, &sink, p->w, p->h);
		if (fmt == MP_PLOT_EPS)
			cairo_ps_surface_set_eps(surf, 1);
		break;
	}
	err = cairo_err(cairo_surface_status(surf), &sink);
	if (err)
		goto cleanup;
	p->cr = cairo_create(surf);
	err = cairo_err(cairo_status(p->cr), &sink);
	if (err)
		goto cleanup;
	layout(p);
	draw(p);
	err = draw_legend(p);
	if (err)
		goto cleanup;
	err = cairo_err(cairo_status(p->cr), &sink);
	if (err)
		goto cleanup;
	if (fmt == MP_PLOT_PNG)
		err = cairo_err(cairo_surface_write_to_png_stream(surf, sink_write, &sink), &sink);
	cairo_surface_finish(surf);
	if (!err)
		err = cairo_err(cairo_surface_status(surf), &sink);
cleanup:
	if (p->cr) {
		cairo_destroy(p->cr);
		p->cr = NULL;
	}
	if (surf)
		cairo_surface_destroy(surf);
	if (close(sink.fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	free(tmp);
	return err;
}

int mp_plot__render(const struct mp_plot_input *in, size_t n, const struct mp_plot_opts *opts,
		    enum mp_plot_format fmt, const char *path, struct mp_plot_info *info)
{
	struct plot p = { .o = opts, .info = info };
	int err = 0;

	if (info)
		memset(info, 0, sizeof(*info));
	if (!n)
		return -EINVAL;
	if (opts->window && !(opts->xmin < opts->xmax))
		return -ERANGE;
	for (size_t i = 0; i < n; i++)
		if (!in[i].df->mem.n)
			return -ENODATA;
	p.w = opts->width > 0 ? opts->width : MP_PLOT_WIDTH;
	p.h = opts->height > 0 ? opts->height : MP_PLOT_HEIGHT;

	p.prof = calloc(n, sizeof(*p.prof));
	if (!p.prof)
		return -ENOMEM;
	p.n_prof = n;
	for (size_t i = 0; i < n && !err; i++) {
		err = build_profile(&p.prof[i], &in[i]);
		p.prof[i].mem.rgb = profile_rgb[i % N_OF(profile_rgb)];
		/* overlaid: a child takes its profile's colour, so which run it belongs to shows */
		for (size_t k = 0; n > 1 && k < p.prof[i].n_kids; k++) {
			p.prof[i].kids[k].rgb = p.prof[i].mem.rgb;
			p.prof[i].kids[k].dashed = true;
		}
	}
	if (err)
		goto cleanup;
	/* as in memory_profiler, function timestamps only for a single profile */
	if (n == 1 && !opts->no_func) {
		err = build_calls(&p);
		if (err)
			goto cleanup;
	}
	err = ranges(&p);
	if (err)
		goto cleanup;
	if (p.n_calls) {
		measure_funcs(&p);
		/* a reduced read dropped calls: the reader counted them all */
		for (size_t f = 0; f < p.n_funcs; f++) {
			const struct mp_func *fn = &p.prof[0].in->df->funcs[f];

			if (fn->total > p.funcs[f].calls) {
				p.funcs[f].calls = fn->total;
				p.funcs[f].longest = fn->longest;
			}
		}
	}
	if (opts->flame && p.n_calls && !(opts->height > 0)) {
		int maxlevel = 0;

		for (size_t i = 0; i < p.n_calls; i++)
			if (p.calls[i].level > maxlevel)
				maxlevel = p.calls[i].level;
		p.h += fmin((double)maxlevel + 1, FLAME_MAX_ROWS) * FLAME_ROW + FLAME_GAP;
	}
	make_titles(&p);
	err = build_legend(&p);
	if (err)
		goto cleanup;
	{
		size_t wanted = p.n_legend;

		err = emit(&p, fmt, path);
		if (info)
			info->n_legend_wanted = wanted;
	}
	if (info && !err) {
		const struct curve *m = &p.prof[0].mem;

		info->width = (int)p.w;
		info->height = (int)p.h;
		info->area_x = p.ax;
		info->area_y = p.ay;
		info->area_w = p.aw;
		info->area_h = p.ah;
		info->x_min = p.xmin;
		info->x_max = p.xmax;
		info->y_min = p.ymin;
		info->y_max = p.ymax;
		info->flame_y = p.frows ? p.fy : 0;
		info->flame_h = p.fh;
		info->flame_rows = p.frows;
		info->peak_mib = m->peak >= 0 ? m->pts[m->peak].mib : NAN;
		info->peak_t = m->peak >= 0 ? m->pts[m->peak].t : NAN;
		info->curve_rgb[0] = m->rgb.r;
		info->curve_rgb[1] = m->rgb.g;
		info->curve_rgb[2] = m->rgb.b;
		info->has_slope = m->fit;
		info->slope = m->slope;
		info->legend = p.legend;
		info->n_legend = p.n_legend;
		p.legend = NULL;
		p.n_legend = 0;
	}
cleanup:
	for (size_t i = 0; i < p.n_legend; i++)
		free(p.legend[i].label);
	free(p.legend);
	free_profiles(&p);
	return err;
}

void mp_plot__exit(void)
{
	cairo_debug_reset_static_data();
}
