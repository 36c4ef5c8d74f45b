/*
 * mprof report [-o FILE.html] [-t TITLE] [profiles...]: one self-contained HTML page with the
 * memory curves (zoomable, with hover values), the function calls as brackets and a flame band,
 * the children's curves, the peaks, and with line attribution records (LINE, STACK) each
 * process's line tables and an icicle of its stacks of growth; several profiles are overlaid.
 * Without -o the page goes beside the (first) data file as <name>.html (<name>_overlay.html for
 * several) and its path is printed, as plot does with its PNG.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datfile.h"
#include "mprof.h"
#include "report.h"

static void report_usage(FILE *f)
{
	fprintf(f,
		"Usage: mprof report [-o FILE.html] [-t TITLE] [file.dat|index ...]\n\n"
		"Write one self-contained HTML page (it needs no network) showing the profiles:\n"
		"the memory curve, zoomable, with the values under the cursor; function calls as\n"
		"brackets and a flame band; children's curves, shown or hidden from the legend;\n"
		"the peak. A file recorded with --lines also gets, per process, its line tables\n"
		"(heaviest first, with the source lines as they read now) and an icicle of its\n"
		"stacks of growth. Several profiles are overlaid, each from its own start.\n"
		"Without a profile, the newest mprofile_*.dat of the current folder is used; an\n"
		"integer is an index into those files, sorted, negative ones counting from the\n"
		"newest.\n\n"
		"  -o, --output FILE   the page to write (default: <data file>.html, path printed)\n"
		"  -t, --title TITLE   title (default: the command line of a single profile)\n"
		"  -h, --help          show this help\n");
}

int do_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "title", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mp_report_opts opts = { 0 };
	struct mp_report_input *in = NULL;
	struct mp_datfile *dfs = NULL;
	struct mp_profiles sel = { 0 };
	const char *output = NULL;
	char *out_path = NULL, msg[512];
	bool newest;
	int c, err, rc = 1;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "o:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 't':
			opts.title = optarg;
			break;
		case 'h':
			report_usage(stdout);
			return 0;
		default:
			if (optopt && strchr("ot", optopt))
				p_err("option '-%c' needs a value", optopt);
			else
				p_err("unknown option '%s' (see 'mprof report --help')",
				      argv[optind - 1]);
			return 1;
		}
	}
	if (output && !*output) {
		p_err("option '-o' needs a file name");
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
		struct mp_reduce_opts ro = { 0 };

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
		out_path = mp_output_beside(sel.names[0], sel.n, ".html");
		if (!out_path) {
			p_err("out of memory");
			goto cleanup;
		}
		output = out_path;
	}
	err = mp_report__save(output, in, sel.n, &opts);
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
	if (fflush(stdout) || ferror(stdout)) {
		p_err("cannot write to standard output: %s", strerror(errno));
		rc = 1;
	}
	return rc;
}
