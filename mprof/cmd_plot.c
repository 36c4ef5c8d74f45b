/*
 * mprof plot: memory_profiler's flags, drawn with cairo into a PNG, SVG, PDF, PS or EPS file.
 * There is no window to show a plot in, so without -o the picture goes beside the (first) data
 * file as <name>.png and its path is printed.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datfile.h"
#include "mprof.h"
#include "plot.h"

enum { OPT_BACKEND = 256 };

static void plot_usage(FILE *f)
{
	fprintf(f,
		"Usage: mprof plot [options] [file.dat|index ...]\n\n"
		"Plot the memory recorded by 'mprof run'. Without a profile, the newest\n"
		"mprofile_*.dat of the current folder is used; an integer is an index into those\n"
		"files, sorted, negative ones counting from the newest. Several profiles are\n"
		"overlaid, each from its own start.\n\n"
		"  -t, --title TITLE        title (default: the command line of a single profile)\n"
		"  -n, --no-function-ts     hide function brackets, markers and flame chart\n"
		"  -o, --output FILE        write FILE, format from its extension: .png .svg .pdf\n"
		"                           .ps .eps (default: <data file>.png, path printed)\n"
		"  -w, --window XMIN,XMAX   show only these seconds since the start\n"
		"  -f, --flame              function calls as a flame chart under the curve\n"
		"  -s, --slope              least-squares trend per curve, slope in the legend\n"
		"      --backend NAME       accepted for compatibility, ignored (always cairo)\n"
		"  -h, --help               show this help\n");
}

/* "XMIN,XMAX": two finite numbers, as Python's float() reads them, XMIN below XMAX. */
static int parse_window(const char *arg, double *xmin, double *xmax)
{
	const char *comma = strchr(arg, ',');
	double v[2];

	if (!comma || strchr(comma + 1, ','))
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		const char *s = i ? comma + 1 : arg;
		char *end;

		errno = 0;
		v[i] = strtod(s, &end);
		if (end == s || !isfinite(v[i]))
			return -EINVAL;
		while (*end == ' ' || *end == '\t')
			end++;
		if (end != (i ? s + strlen(s) : comma))
			return -EINVAL;
	}
	*xmin = v[0];
	*xmax = v[1];
	return 0;
}

int do_plot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "title", required_argument, NULL, 't' },
		{ "no-function-ts", no_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "window", required_argument, NULL, 'w' },
		{ "flame", no_argument, NULL, 'f' },
		{ "slope", no_argument, NULL, 's' },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mp_plot_opts opts = { 0 };
	struct mp_plot_input *in = NULL;
	struct mp_datfile *dfs = NULL;
	struct mp_profiles sel = { 0 };
	enum mp_plot_format fmt = MP_PLOT_PNG;
	const char *output = NULL;
	char *out_path = NULL, msg[512];
	bool newest;
	int c, err, rc = 1;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "t:no:w:fsh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			opts.title = optarg;
			break;
		case 'n':
			opts.no_func = true;
			break;
		case 'o':
			output = optarg;
			break;
		case 'w':
			if (parse_window(optarg, &opts.xmin, &opts.xmax)) {
				p_err("bad window '%s': expected two numbers separated with a comma, "
				      "e.g. 0,20.5",
				      optarg);
				return 1;
			}
			if (!(opts.xmin < opts.xmax)) {
				p_err("bad window '%s': XMIN must be below XMAX", optarg);
				return 1;
			}
			opts.window = true;
			break;
		case 'f':
			opts.flame = true;
			break;
		case 's':
			opts.slope = true;
			break;
		case OPT_BACKEND:
			break; /* matplotlib's backend: nothing to choose here */
		case 'h':
			plot_usage(stdout);
			return 0;
		default:
			if (optopt && strchr("tow", optopt))
				p_err("option '-%c' needs a value", optopt);
			else if (optopt == OPT_BACKEND)
				p_err("option '--backend' needs a value");
			else
				p_err("unknown option '%s' (see 'mprof plot --help')",
				      argv[optind - 1]);
			return 1;
		}
	}
	if (output && mp_plot__format(output, &fmt)) {
		p_err("cannot tell the format of '%s': name it .png, .svg, .pdf, .ps or .eps",
		      output);
		return 1;
	}
	if (mp_profiles__choose(argc - optind, argv + optind, MP_SELECT_PATH_FIRST, &sel, &newest,
				msg, sizeof(msg))) {
		p_err("%s", msg);
		goto cleanup;
	}
	if (newest)
		printf("Using last profile data.\n");

	dfs = calloc(sel.n, sizeof(*dfs));
	in = calloc(sel.n, sizeof(*in));
	if (!dfs || !in) {
		p_err("out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < sel.n; i++)
		mp_datfile__init(&dfs[i]);
	for (size_t i = 0; i < sel.n; i++) {
		struct mp_reduce_opts ro = {
			.window = opts.window, .xmin = opts.xmin, .xmax = opts.xmax,
		};

		if (mp_datfile__load_reduced(&dfs[i], sel.names[i], &ro, msg, sizeof(msg))) {
			p_err("%s", msg);
			goto cleanup;
		}
		if (mp_datfile__warning(&dfs[i], sel.names[i], msg, sizeof(msg)))
			p_info("%s", msg);
		in[i].df = &dfs[i];
		in[i].name = sel.names[i];
	}
	if (!output) {
		out_path = mp_output_beside(sel.names[0], sel.n, ".png");
		if (!out_path) {
			p_err("out of memory");
			goto cleanup;
		}
		output = out_path;
	}
	err = mp_plot__render(in, sel.n, &opts, fmt, output, NULL);
	if (err == -ERANGE) {
		p_err("cannot plot %s: its times or memory values are too far apart to scale",
		      sel.n > 1 ? "these profiles" : "this profile");
		goto cleanup;
	}
	if (err) {
		p_err("cannot write '%s': %s", output, strerror(-err));
		goto cleanup;
	}
	if (out_path)
		printf("%s\n", out_path);
	rc = 0;
cleanup:
	if (dfs)
		for (size_t i = 0; i < sel.n; i++)
			mp_datfile__release(&dfs[i]);
	free(dfs);
	free(in);
	free(out_path);
	mp_profiles__release(&sel);
	mp_plot__exit();
	if (fflush(stdout) || ferror(stdout)) {
		p_err("cannot write to standard output: %s", strerror(errno));
		rc = 1;
	}
	return rc;
}
