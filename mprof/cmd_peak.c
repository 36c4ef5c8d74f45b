/*
 * mprof peak [--func NAME] [profiles...]: memory_profiler's output, line for line:
 *   <file>\t<max of the MEM lines, %.3f> MiB
 *     Child <pid>\t\t\t<max of its CHLD lines, %.3f> MiB
 * Where memory_profiler crashes (missing, empty, truncated or garbage file, a directory, a bad
 * index) we print one error line and exit 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "datfile.h"
#include "mprof.h"

static void peak_usage(FILE *f)
{
	fprintf(f, "Usage: mprof peak [--func NAME] [file.dat|index ...]\n\n"
		   "Print the peak memory recorded in each profile (MEM lines), then the peak of\n"
		   "each child process (CHLD lines). Without arguments, the newest\n"
		   "mprofile_*.dat of the current folder is used; an integer is an index into\n"
		   "those files, sorted, and negative ones count from the newest.\n\n"
		   "  --func NAME   only the MEM samples taken during the calls of NAME, the full\n"
		   "                dotted name of the FUNC lines (e.g. __main__.f); children are\n"
		   "                not filtered\n"
		   "  -h, --help    show this help\n");
}

/* Print one profile's peaks. Returns 0, or 1 after reporting an error. */
static int peak_one(const char *path, const char *func)
{
	struct mp_datfile df;
	char msg[512];
	double mib, t;
	int rc = 0;

	mp_datfile__init(&df);
	if (mp_datfile__load(&df, path, msg, sizeof(msg))) {
		p_err("%s", msg);
		rc = 1;
		goto cleanup;
	}
	if (func) {
		const struct mp_func *fn = mp_datfile__func(&df, func);
		int err;

		if (!fn) {
			/* memory_profiler's line, then why */
			printf("%s\tNaN MiB\n", path);
			p_err("no function '%s' in '%s' (names are as in its FUNC lines, e.g. "
			      "__main__.f)",
			      func, path);
			rc = 1;
			goto cleanup;
		}
		err = mp_datfile__func_peak(&df, fn, &mib, &t);
		if (err == -ENODATA) {
			printf("%s\tNaN MiB\n", path);
			p_info("no MEM sample was taken during the calls of '%s' in '%s'", func,
			       path);
			goto cleanup;
		}
		if (err) {
			p_err("cannot compute the peak of '%s': %s", func, strerror(-err));
			rc = 1;
			goto cleanup;
		}
	} else {
		long i = mp_points__max(df.mem.pts, df.mem.n);

		mib = df.mem.pts[i].mib;
	}
	printf("%s\t%.3f MiB\n", path, mib);
	for (size_t k = 0; k < df.n_children; k++) {
		const struct mp_child *ch = &df.children[k];

		printf("  Child %d\t\t\t%.3f MiB\n", ch->pid,
		       ch->s.pts[mp_points__max(ch->s.pts, ch->s.n)].mib);
	}
cleanup:
	mp_datfile__release(&df);
	return rc;
}

int do_peak(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "func", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mp_profiles sel = { 0 };
	const char *func = NULL;
	char msg[512];
	bool newest;
	int c, rc = 0;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'F':
			func = optarg;
			break;
		case 'h':
			peak_usage(stdout);
			return 0;
		default:
			if (optopt == 'F')
				p_err("option '--func' needs a function name");
			else
				p_err("unknown option '%s' (see 'mprof peak --help')",
				      argv[optind - 1]);
			return 1;
		}
	}
	if (mp_profiles__choose(argc - optind, argv + optind, MP_SELECT_PATH_FIRST, &sel, &newest,
				msg, sizeof(msg))) {
		p_err("%s", msg);
		rc = 1;
		goto cleanup;
	}
	if (newest)
		printf("Using last profile data.\n");
	for (size_t i = 0; i < sel.n; i++)
		rc |= peak_one(sel.names[i], func);
cleanup:
	mp_profiles__release(&sel);
	if (fflush(stdout) || ferror(stdout)) {
		p_err("cannot write to standard output: %s", strerror(errno));
		rc = 1;
	}
	return rc;
}
