/*
 * Unit tests of the plot renderer (user/plot.c): real files are drawn and then inspected, the
 * PNGs pixel by pixel.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo.h>
#include <cmocka.h>

#include "datfile.h"
#include "plot.h"

/* cmocka before 1.1.6 has no assert_double_equal(): |a - b| <= eps, with the values shown. */
static void near_impl(double a, double b, double eps, const char *file, int line)
{
	if (!(fabs(a - b) <= eps)) {
		print_error("%.10g != %.10g (tolerance %g)\n", a, b, eps);
		_fail(file, line);
	}
}
#define assert_near(a, b, eps) near_impl((a), (b), (eps), __FILE__, __LINE__)

static char dir[] = "/tmp/mprof-test-plot-XXXXXX";

/*
 * fontconfig (loaded by cairo) keeps its configuration for the life of the process and has no
 * way to free it short of FcFini(), which cairo does not call: not our leak.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\n";
}

/*
 * Render with a minimal font configuration of our own: the pictures then do not depend on the
 * host's hinting and alias rules, and fontconfig 2.14 does not leak (as it does, definitely lost,
 * while parsing Debian's conf.d, which would fail `make valgrind`).
 */
static int use_own_fontconfig(void)
{
	static const char fonts[] = "/usr/share/fonts"; /* the FHS place of system fonts */
	char path[256];
	FILE *f;

	if (getenv("FONTCONFIG_FILE") || access(fonts, R_OK))
		return 0;
	snprintf(path, sizeof(path), "%s/fonts.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "<?xml version=\"1.0\"?>\n<fontconfig>\n  <dir>%s</dir>\n"
		   "  <cachedir>%s/fc-cache</cachedir>\n</fontconfig>\n",
		fonts, dir);
	if (fclose(f))
		return -1;
	return setenv("FONTCONFIG_FILE", path, 1);
}

static int group_setup(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	if (!mkdtemp(dir))
		return -1;
	return use_own_fontconfig();
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	mp_plot__exit();
	return system(cmd) == 0 ? 0 : -1;
}

static char *out_path(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static void parse(struct mp_datfile *df, const char *text)
{
	mp_datfile__init(df);
	assert_int_equal(mp_datfile__parse(df, text, strlen(text)), 0);
}

/*
 * A ramp from 10 MiB at t=0 to 100 MiB at t=9 with a 150 MiB peak at t=4, three children and
 * three functions (one called twice, one nested). Epoch times, as real files have.
 */
static char *synthetic(int children, bool levels)
{
	size_t cap = 4 << 20, len = 0;
	char *buf = malloc(cap);

	assert_non_null(buf);
	len += (size_t)snprintf(buf, cap, "CMDLINE python3 synthetic.py\n");
	for (int i = 0; i <= 9; i++)
		len += (size_t)snprintf(buf + len, cap - len, "MEM %.6f %.4f\n",
					i == 4 ? 150.0 : 10.0 + 10.0 * i, 1700000000.0 + i);
	for (int c = 0; c < children; c++)
		for (int i = 1; i <= 8; i++)
			len += (size_t)snprintf(buf + len, cap - len, "CHLD %d %.6f %.4f\n",
						1000 + c, 5.0 + c * 0.01 + i, 1700000000.0 + i);
	len += (size_t)snprintf(buf + len, cap - len,
				"FUNC __main__.work 20.0 1700000001.0 60.0 1700000005.0%s\n"
				"FUNC __main__.inner 40.0 1700000003.0 50.0 1700000004.5%s\n"
				"FUNC other.work 70.0 1700000006.0 80.0 1700000007.0%s\n"
				"FUNC __main__.work 80.0 1700000007.5 90.0 1700000008.0%s\n",
				levels ? " 0" : "", levels ? " 1" : "", levels ? " 0" : "",
				levels ? " 0" : "");
	return buf;
}

static size_t count_kind(const struct mp_plot_info *info, enum mp_legend_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < info->n_legend; i++)
		n += info->legend[i].kind == kind;
	return n;
}

static bool near_rgb(const unsigned char *px, const double rgb[3], int tol)
{
	/* cairo's RGB24/ARGB32 pixels are native-endian 32-bit words: B, G, R on little endian */
	uint32_t v;
	int r, g, b;

	memcpy(&v, px, sizeof(v));
	r = (int)((v >> 16) & 0xff);
	g = (int)((v >> 8) & 0xff);
	b = (int)(v & 0xff);
	return abs(r - (int)lround(rgb[0] * 255)) <= tol && abs(g - (int)lround(rgb[1] * 255)) <= tol &&
	       abs(b - (int)lround(rgb[2] * 255)) <= tol;
}

/* Bounding box of the pixels of colour @rgb inside the plot area. Returns how many there are. */
static size_t color_bbox(cairo_surface_t *img, const struct mp_plot_info *info,
			 const double rgb[3], double box[4])
{
	unsigned char *data = cairo_image_surface_get_data(img);
	int stride = cairo_image_surface_get_stride(img);
	size_t n = 0;

	box[0] = box[1] = INFINITY;
	box[2] = box[3] = -INFINITY;
	for (int y = (int)info->area_y; y < (int)(info->area_y + info->area_h); y++) {
		for (int x = (int)info->area_x; x < (int)(info->area_x + info->area_w); x++) {
			if (!near_rgb(data + (size_t)y * stride + (size_t)x * 4, rgb, 8))
				continue;
			n++;
			box[0] = fmin(box[0], x);
			box[1] = fmin(box[1], y);
			box[2] = fmax(box[2], x);
			box[3] = fmax(box[3], y);
		}
	}
	return n;
}

static double px_x(const struct mp_plot_info *i, double t)
{
	return i->area_x + (t - i->x_min) / (i->x_max - i->x_min) * i->area_w;
}

static double px_y(const struct mp_plot_info *i, double mib)
{
	return i->area_y + i->area_h - (mib - i->y_min) / (i->y_max - i->y_min) * i->area_h;
}

static void test_png_curve_extent(void **state)
{
	struct mp_plot_opts o = { 0 };
	struct mp_plot_info info;
	struct mp_datfile df;
	char *text = synthetic(0, true);
	struct mp_plot_input in = { &df, "synthetic.dat" };
	cairo_surface_t *img;
	double box[4];

	(void)state;
	parse(&df, text);
	o.no_func = true; /* only the curve in its colour */
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("c.png"), &info), 0);
	img = cairo_image_surface_create_from_png(out_path("c.png"));
	assert_int_equal(cairo_surface_status(img), CAIRO_STATUS_SUCCESS);
	assert_int_equal(cairo_image_surface_get_width(img), MP_PLOT_WIDTH);
	assert_int_equal(cairo_image_surface_get_height(img), MP_PLOT_HEIGHT);
	assert_int_equal(info.width, MP_PLOT_WIDTH);

	/* the axes hold the data's range, with a little room */
	assert_true(info.x_min <= 0 && info.x_min > -1);
	assert_true(info.x_max >= 9 && info.x_max < 10);
	assert_true(info.y_min <= 10 && info.y_min >= 0);
	assert_true(info.y_max >= 150 && info.y_max < 180);
	assert_near(info.peak_mib, 150, 1e-9);
	assert_near(info.peak_t, 4, 1e-9);

	/* the curve's pixels span t = 0..9 and MiB 10..150 ("+" markers add 4 px) */
	assert_true(color_bbox(img, &info, info.curve_rgb, box) > 500);
	assert_true(fabs(box[0] - px_x(&info, 0)) <= 5);
	assert_true(fabs(box[2] - px_x(&info, 9)) <= 5);
	assert_true(fabs(box[3] - px_y(&info, 10)) <= 5);
	/* the top is the peak, under the red peak dot: the curve reaches just below it */
	assert_true(box[1] - px_y(&info, 150) <= 8);
	assert_true(box[1] - px_y(&info, 150) >= -5);
	cairo_surface_destroy(img);
	mp_plot_info__release(&info);
	mp_datfile__release(&df);
	free(text);
}

static void test_legend_entries(void **state)
{
	struct mp_plot_opts o = { 0 };
	struct mp_plot_info info;
	struct mp_datfile df;
	char *text = synthetic(3, true);
	struct mp_plot_input in = { &df, "synthetic.dat" };

	(void)state;
	parse(&df, text);
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("l.png"), &info), 0);
	assert_int_equal(count_kind(&info, MP_LEGEND_PROFILE), 1);
	assert_int_equal(count_kind(&info, MP_LEGEND_PEAK), 1);
	/* one per child, one per function (not per call) */
	assert_int_equal(count_kind(&info, MP_LEGEND_CHILD), 3);
	assert_int_equal(count_kind(&info, MP_LEGEND_FUNC), 3);
	assert_int_equal(count_kind(&info, MP_LEGEND_TREND), 0);
	assert_int_equal(info.n_legend_wanted, info.n_legend);
	for (size_t i = 0; i < info.n_legend; i++) {
		const char *l = info.legend[i].label;

		if (info.legend[i].kind == MP_LEGEND_CHILD)
			assert_non_null(strstr(l, "child 100"));
		if (info.legend[i].kind == MP_LEGEND_PEAK)
			assert_string_equal(l, "peak 150.000 MiB at 4.000 s");
	}
	/* shortest unambiguous labels: "work" is in two modules */
	assert_string_equal(info.legend[2].label, "__main__.work, 2 calls, longest 4.000s, "
						  "max 150.000 MiB");
	assert_string_equal(info.legend[3].label, "inner 1.500s, max 150.000 MiB");
	assert_string_equal(info.legend[4].label, "other.work 1.000s, max 80.000 MiB");
	mp_plot_info__release(&info);

	/* -n: no function in the legend */
	o.no_func = true;
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("l.png"), &info), 0);
	assert_int_equal(count_kind(&info, MP_LEGEND_FUNC), 0);
	assert_int_equal(count_kind(&info, MP_LEGEND_CHILD), 3);
	mp_plot_info__release(&info);
	mp_datfile__release(&df);
	free(text);
}

static void test_overlay(void **state)
{
	struct mp_plot_opts o = { 0 };
	struct mp_plot_info info;
	struct mp_datfile a, b;
	char *ta = synthetic(1, true), *tb = synthetic(2, false);
	struct mp_plot_input in[2] = { { &a, "dir/a.dat" }, { &b, "b.dat" } };

	(void)state;
	parse(&a, ta);
	parse(&b, tb);
	assert_int_equal(mp_plot__render(in, 2, &o, MP_PLOT_PNG, out_path("o.png"), &info), 0);
	/* memory_profiler: function timestamps only for a single file */
	assert_int_equal(count_kind(&info, MP_LEGEND_FUNC), 0);
	assert_int_equal(count_kind(&info, MP_LEGEND_PROFILE), 2);
	assert_int_equal(count_kind(&info, MP_LEGEND_PEAK), 2);
	assert_int_equal(count_kind(&info, MP_LEGEND_CHILD), 3);
	assert_non_null(strstr(info.legend[0].label, "a.dat, start 14/11/2023 22:13:20.000"));
	assert_non_null(strstr(info.legend[5].label, "of b.dat"));
	mp_plot_info__release(&info);
	mp_datfile__release(&a);
	mp_datfile__release(&b);
	free(ta);
	free(tb);
}

static void test_many_children_legend_fits(void **state)
{
	struct mp_plot_opts o = { 0 };
	struct mp_plot_info info;
	struct mp_datfile df;
	char *text = synthetic(2000, true);
	struct mp_plot_input in = { &df, "many.dat" };

	(void)state;
	parse(&df, text);
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_SVG, out_path("m.svg"), &info), 0);
	assert_int_equal(info.n_legend_wanted, 2 + 3 + 2000);
	assert_true(info.n_legend < 40);
	assert_int_equal(count_kind(&info, MP_LEGEND_MORE), 1);
	assert_non_null(strstr(info.legend[info.n_legend - 1].label, "more children"));
	mp_plot_info__release(&info);
	mp_datfile__release(&df);
	free(text);
}

static void read_head(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	memset(buf, 0, n);
	assert_true(fread(buf, 1, n - 1, f) > 0);
	fclose(f);
}

static void test_formats(void **state)
{
	static const struct {
		const char *name;
		enum mp_plot_format fmt;
		const char *magic;
	} cases[] = {
		{ "f.png", MP_PLOT_PNG, "\x89PNG\r\n\x1a\n" },
		{ "f.svg", MP_PLOT_SVG, "<?xml" },
		{ "f.pdf", MP_PLOT_PDF, "%PDF-" },
		{ "f.ps", MP_PLOT_PS, "%!PS-Adobe-3.0\n" },
		{ "f.eps", MP_PLOT_EPS, "%!PS-Adobe-3.0 EPSF" },
	};
	struct mp_plot_opts o = { .flame = true, .slope = true };
	struct mp_datfile df;
	char *text = synthetic(2, true), head[64];
	struct mp_plot_input in = { &df, "f.dat" };
	enum mp_plot_format fmt;

	(void)state;
	parse(&df, text);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(mp_plot__format(cases[i].name, &fmt), 0);
		assert_int_equal(fmt, cases[i].fmt);
		assert_int_equal(
			mp_plot__render(&in, 1, &o, fmt, out_path(cases[i].name), NULL), 0);
		read_head(out_path(cases[i].name), head, sizeof(head));
		assert_memory_equal(head, cases[i].magic, strlen(cases[i].magic));
	}
	assert_int_equal(mp_plot__format("X.SVG", &fmt), 0);
	assert_int_equal(fmt, MP_PLOT_SVG);
	assert_int_equal(mp_plot__format("x.jpg", &fmt), -EINVAL);
	assert_int_equal(mp_plot__format("x", &fmt), -EINVAL);
	assert_int_equal(mp_plot__format("x.png/y", &fmt), -EINVAL);
	mp_datfile__release(&df);
	free(text);
}

static void test_flame_rows(void **state)
{
	struct mp_plot_opts o = { .flame = true };
	struct mp_plot_info info;
	struct mp_datfile df;
	char *text = synthetic(0, false); /* levels inferred from nesting */
	struct mp_plot_input in = { &df, "f.dat" };
	cairo_surface_t *img;

	(void)state;
	parse(&df, text);
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("fl.png"), &info), 0);
	assert_int_equal(info.flame_rows, 2);
	assert_true(info.flame_y > info.area_y + info.area_h);
	assert_true(info.flame_y + info.flame_h < info.height);
	/* the band makes the picture taller, not the curve smaller */
	assert_true(info.height > MP_PLOT_HEIGHT);
	img = cairo_image_surface_create_from_png(out_path("fl.png"));
	assert_int_equal(cairo_image_surface_get_height(img), info.height);
	cairo_surface_destroy(img);
	mp_plot_info__release(&info);

	o.no_func = true;
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("fl.png"), &info), 0);
	assert_int_equal(info.flame_rows, 0);
	assert_int_equal(info.height, MP_PLOT_HEIGHT);
	mp_plot_info__release(&info);
	mp_datfile__release(&df);
	free(text);
}

static void test_window_and_slope(void **state)
{
	struct mp_plot_opts o = { .window = true, .xmin = 5, .xmax = 9, .slope = true };
	struct mp_plot_info info;
	struct mp_datfile df;
	char *text = synthetic(0, true);
	struct mp_plot_input in = { &df, "w.dat" };

	(void)state;
	parse(&df, text);
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("w.png"), &info), 0);
	assert_near(info.x_min, 5, 0);
	assert_near(info.x_max, 9, 0);
	/* t = 5..9 holds 60..100 MiB (plus the FUNC points at 60..90): the 150 peak is outside */
	assert_near(info.peak_mib, 100, 1e-9);
	assert_true(info.y_max < 120);
	assert_true(info.y_min > 40);
	/* the points of the window lie on a line of 10 MiB/s */
	assert_true(info.has_slope);
	assert_near(info.slope, 10, 0.5);
	assert_non_null(strstr(info.legend[0].label, "slope"));
	assert_int_equal(count_kind(&info, MP_LEGEND_TREND), 1);
	mp_plot_info__release(&info);

	/* an empty window is refused */
	o.xmin = 3;
	o.xmax = 3;
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("w2.png"), &info),
			 -ERANGE);
	mp_plot_info__release(&info);
	mp_datfile__release(&df);
	free(text);
}

static void test_errors_leave_no_file(void **state)
{
	struct mp_plot_opts o = { 0 };
	struct mp_plot_info info;
	struct mp_datfile df, good;
	struct mp_plot_input in = { &df, "e.dat" }, gin = { &good, "g.dat" };
	struct stat st;
	char *text = synthetic(0, true);

	(void)state;
	parse(&df, "CMDLINE x\nFUNC a.b 1 2 3 4 0\n");
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("e.png"), &info),
			 -ENODATA);
	assert_int_equal(stat(out_path("e.png"), &st), -1);
	parse(&good, text);
	assert_int_equal(mp_plot__render(&gin, 1, &o, MP_PLOT_PNG, out_path("nodir/e.png"), &info),
			 -ENOENT);
	/* a directory in the way: the temporary file is removed again */
	assert_int_equal(mkdir(out_path("isdir.png"), 0755), 0);
	assert_int_equal(mp_plot__render(&gin, 1, &o, MP_PLOT_PNG, out_path("isdir.png"), &info),
			 -EISDIR);
	mp_plot_info__release(&info);
	assert_int_equal(rmdir(out_path("isdir.png")), 0);
	mp_datfile__release(&df);
	mp_datfile__release(&good);
	free(text);
}

static void test_odd_text_and_single_point(void **state)
{
	struct mp_plot_opts o = { .title = "bad \xff\xfe utf-8 \x01 title" };
	struct mp_plot_info info;
	struct mp_datfile df;
	struct mp_plot_input in = { &df, "odd.dat" };

	(void)state;
	parse(&df, "CMDLINE caf\xe9\nMEM 42 1700000000\nFUNC \xc3\x28.\xff 1 1700000000 2 "
		   "1700000000 0\n");
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_SVG, out_path("odd.svg"), &info), 0);
	assert_true(info.x_max > info.x_min);
	assert_true(info.y_max > info.y_min);
	assert_near(info.peak_mib, 42, 0);
	mp_plot_info__release(&info);
	o.slope = true;
	o.title = NULL;
	assert_int_equal(mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("odd.png"), &info), 0);
	assert_false(info.has_slope);
	assert_non_null(strstr(info.legend[0].label, "slope undefined"));
	mp_plot_info__release(&info);
	mp_datfile__release(&df);
}

/* Numbers that are valid but absurd must draw, or be refused, never hang or crash. */
static void test_extreme_values(void **state)
{
	static const struct {
		const char *text;
		int err;
	} cases[] = {
		/* huge values moving by less than a tick can step over */
		{ "MEM 1e15 1700000000\nMEM 1000000000000000.5 1700000001\n", 0 },
		{ "MEM 1e300 0\nMEM 2e300 1e300\n", 0 },
		{ "MEM -5 1\nMEM -1 2\nCHLD 1 -3 1.5\n", 0 },
		{ "MEM 1e-300 1\nMEM 2e-300 1.0000000001\n", 0 },
		{ "MEM 1 2\nFUNC a.b 1 0 1 1e12 2147483647\n", 0 },
		{ "MEM 1e308 1\nMEM -1e308 2\n", -ERANGE },
		{ "MEM 1 -1e308\nMEM 2 1e308\n", -ERANGE },
	};
	struct mp_plot_opts o = { .flame = true, .slope = true };
	struct mp_plot_info info;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mp_datfile df;
		struct mp_plot_input in = { &df, "x.dat" };
		int err;

		parse(&df, cases[i].text);
		err = mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out_path("x.png"), &info);
		if (err != cases[i].err)
			fail_msg("case %zu: got %d, want %d", i, err, cases[i].err);
		mp_plot_info__release(&info);
		mp_datfile__release(&df);
	}
}

static void test_func_labels(void **state)
{
	const char *labels[4];

	(void)state;
	{
		const char *names[] = { "__main__.inner", "__main__.outer", ".block1" };

		mp_plot__func_labels(names, 3, labels);
		assert_string_equal(labels[0], "inner");
		assert_string_equal(labels[1], "outer");
		assert_string_equal(labels[2], "block1");
	}
	{
		const char *names[] = { "a.x.f", "b.x.f", "c.g", "f" };

		mp_plot__func_labels(names, 4, labels);
		assert_string_equal(labels[0], "a.x.f");
		assert_string_equal(labels[1], "b.x.f");
		assert_string_equal(labels[2], "g");
		assert_string_equal(labels[3], "f");
	}
	{
		const char *names[] = { "x.a.b", "a.b", "b" };

		mp_plot__func_labels(names, 3, labels);
		assert_string_equal(labels[0], "x.a.b");
		assert_string_equal(labels[1], "a.b");
		assert_string_equal(labels[2], "b");
	}
	mp_plot__func_labels(NULL, 0, labels);
}

struct kept {
	size_t idx[4096];
	size_t n;
};

static void keep_idx(void *ctx, size_t i)
{
	struct kept *k = ctx;

	assert_true(k->n < 4096);
	k->idx[k->n++] = i;
}

/* The reduction plot and report share: each column's first, lowest, highest and last point. */
static void test_reduce(void **state)
{
	enum { N = 5000, COLS = 37 };
	static struct mp_point pts[N];
	struct kept k = { .n = 0 };
	double t = 0;

	(void)state;
	srand(11);
	for (size_t i = 0; i < N; i++) {
		t += (rand() % 100) / 1000.0; /* repeated times too */
		pts[i].t = t;
		pts[i].mib = rand() % 1000 / 7.0;
	}
	mp_plot__reduce(pts, N, 0, pts[0].t, pts[N - 1].t, COLS, keep_idx, &k);
	for (size_t i = 1; i < k.n; i++)
		assert_true(k.idx[i] > k.idx[i - 1]);
	assert_true(k.n <= 4 * (COLS + 1));
	/* per column, against a plain scan */
	for (int c = 0; c <= COLS; c++) {
		long first = -1, last = -1, lo = -1, hi = -1;
		size_t in_col = 0;

		for (size_t i = 0; i < N; i++) {
			if (floor(0 + (pts[i].t - pts[0].t) / (pts[N - 1].t - pts[0].t) * COLS) != c)
				continue;
			if (first < 0)
				first = (long)i;
			last = (long)i;
			if (lo < 0 || pts[i].mib < pts[lo].mib)
				lo = (long)i;
			if (hi < 0 || pts[i].mib > pts[hi].mib)
				hi = (long)i;
		}
		if (first < 0)
			continue;
		for (size_t j = 0; j < k.n; j++) {
			long i = (long)k.idx[j];

			if (i >= first && i <= last)
				in_col++;
		}
		assert_true(in_col >= 1 && in_col <= 4);
		for (size_t j = 0, found = 0; j < 4; j++, found = 0) {
			long want = j == 0 ? first : j == 1 ? lo : j == 2 ? hi : last;

			for (size_t m = 0; m < k.n; m++)
				found |= (long)k.idx[m] == want;
			assert_true(found);
		}
	}
	/* one instant for every point: a single column of four */
	for (size_t i = 0; i < N; i++)
		pts[i].t = 5;
	k.n = 0;
	mp_plot__reduce(pts, N, 0, 5, 6, COLS, keep_idx, &k);
	assert_true(k.n <= 4);
	k.n = 0;
	mp_plot__reduce(pts, 0, 0, 5, 6, COLS, keep_idx, &k);
	assert_int_equal(k.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_png_curve_extent),
		cmocka_unit_test(test_legend_entries),
		cmocka_unit_test(test_overlay),
		cmocka_unit_test(test_many_children_legend_fits),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_flame_rows),
		cmocka_unit_test(test_window_and_slope),
		cmocka_unit_test(test_errors_leave_no_file),
		cmocka_unit_test(test_odd_text_and_single_point),
		cmocka_unit_test(test_extreme_values),
		cmocka_unit_test(test_func_labels),
		cmocka_unit_test(test_reduce),
	};

	return cmocka_run_group_tests_name("plot", tests, group_setup, group_teardown);
}
