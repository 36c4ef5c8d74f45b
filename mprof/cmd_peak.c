/*
 * mprof peak [--func NAME] [--json] [profiles...]: memory_profiler's output, line for line:
 *   <file>\t<max of the MEM lines, %.3f> MiB
 *     Child <pid>\t\t\t<max of its CHLD lines, %.3f> MiB
 * Where memory_profiler crashes (missing, empty, truncated or garbage file, a directory, a bad
 * index) we print one error line and exit 1.
 *
 * --json prints the same peaks for scripts, one object per profile that could be read, in a
 * JSON array (stdout is then JSON only: the "Using last profile data." notice goes to stderr):
 *   [{"file": ..., "cmdline": ... or null, ["func": ...,] "peak_bytes": ..., "peak_mib": ...,
 *     "peak_time": <epoch seconds>, "children": [{"pid": ..., "peak_bytes": ..., "peak_mib": ...,
 *     "peak_time": ...}, ...]}, ...]
 * Keys always come in this order. peak_bytes is the MiB value in bytes (mp_json__bytes(): whole
 * pages when it is within a byte of them); the peaks are null where the text prints NaN. Each
 * file is read whole (mp_datfile__load()): the reader has no streaming interface yet.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "datfile.h"
#include "json.h"
#include "mprof.h"

static void peak_usage(FILE *f)
{
	fprintf(f, "Usage: mprof peak [--func NAME] [--json] [file.dat|index ...]\n\n"
		   "Print the peak memory recorded in each profile (MEM lines), then the peak of\n"
		   "each child process (CHLD lines). Without arguments, the newest\n"
		   "mprofile_*.dat of the current folder is used; an integer is an index into\n"
		   "those files, sorted, and negative ones count from the newest.\n\n"
		   "  --func NAME   only the MEM samples taken during the calls of NAME, the full\n"
		   "                dotted name of the FUNC lines (e.g. __main__.f); children are\n"
		   "                not filtered\n"
		   "  --json        print the peaks as JSON: file, command line, peak bytes and\n"
		   "                time (epoch seconds), and the same per child\n"
		   "  -h, --help    show this help\n");
}

/* The peak of one series: the highest sample (the first on ties), or none. */
struct peak {
	bool found;
	double mib, t;
};

/* What peak prints of one profile, taken from the whole file read in memory. */
struct peak_summary {
	const char *path;
	const char *cmdline; /* NULL without a CMDLINE line */
	const char *func;    /* --func, or NULL */
	struct peak mem;     /* of the MEM lines, or of those inside func's calls */
	const struct mp_datfile *df;
};

static struct peak series_peak(const struct mp_point *pts, size_t n)
{
	long i = mp_points__max(pts, n);

	if (i < 0)
		return (struct peak){ .found = false };
	return (struct peak){ .found = true, .mib = pts[i].mib, .t = pts[i].t };
}

static void peak_text(const struct peak_summary *sum)
{
	const struct mp_datfile *df = sum->df;

	printf("%s\t%.3f MiB\n", sum->path, sum->mem.mib);
	for (size_t k = 0; k < df->n_children; k++) {
		const struct mp_child *ch = &df->children[k];

		printf("  Child %d\t\t\t%.3f MiB\n", ch->pid,
		       series_peak(ch->s.pts, ch->s.n).mib);
	}
}

static void json_peak(const struct peak *pk)
{
	fputs("\"peak_bytes\": ", stdout);
	if (pk->found)
		mp_json__bytes(stdout, pk->mib);
	else
		fputs("null", stdout);
	fputs(", \"peak_mib\": ", stdout);
	mp_json__number(stdout, pk->found ? pk->mib : NAN);
	fputs(", \"peak_time\": ", stdout);
	mp_json__number(stdout, pk->found ? pk->t : NAN);
}

/* One element of the --json array; @first: no element was written before it. */
static void peak_json(const struct peak_summary *sum, bool first)
{
	const struct mp_datfile *df = sum->df;

	fputs(first ? "\n  {\n    \"file\": " : ",\n  {\n    \"file\": ", stdout);
	mp_json__cstring(stdout, sum->path, 0);
	fputs(",\n    \"cmdline\": ", stdout);
	mp_json__cstring(stdout, sum->cmdline, 0);
	if (sum->func) {
		fputs(",\n    \"func\": ", stdout);
		mp_json__cstring(stdout, sum->func, 0);
	}
	fputs(",\n    ", stdout);
	json_peak(&sum->mem);
	fputs(",\n    \"children\": [", stdout);
	for (size_t k = 0; k < df->n_children; k++) {
		const struct mp_child *ch = &df->children[k];
		struct peak pk = series_peak(ch->s.pts, ch->s.n);

		printf("%s\n      {\"pid\": %d, ", k ? "," : "", ch->pid);
		json_peak(&pk);
		fputc('}', stdout);
	}
	fputs(df->n_children ? "\n    ]\n  }" : "]\n  }", stdout);
}

/*
 * Print one profile's peaks, as text or as the next element of the JSON array (*@n_json counts
 * those written). Returns 0, or 1 after reporting an error.
 */
static int peak_one(const char *path, const char *func, bool json, size_t *n_json)
{
	struct peak_summary sum = { .path = path, .func = func };
	struct mp_datfile df;
	char msg[512];
	int rc = 0;

	mp_datfile__init(&df);
	if (mp_datfile__load(&df, path, msg, sizeof(msg))) {
		p_err("%s", msg);
		rc = 1;
		goto cleanup;
	}
	sum.df = &df;
	sum.cmdline = df.cmdline;
	if (func) {
		const struct mp_func *fn = mp_datfile__func(&df, func);
		int err;

		if (!fn) {
			/* memory_profiler's line, then why */
			if (json)
				peak_json(&sum, (*n_json)++ == 0);
			else
				printf("%s\tNaN MiB\n", path);
			p_err("no function '%s' in '%s' (names are as in its FUNC lines, e.g. "
			      "__main__.f)",
			      func, path);
			rc = 1;
			goto cleanup;
		}
		err = mp_datfile__func_peak(&df, fn, &sum.mem.mib, &sum.mem.t);
		if (err == -ENODATA) {
			if (json)
				peak_json(&sum, (*n_json)++ == 0);
			else
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
		sum.mem.found = true;
	} else {
		sum.mem = series_peak(df.mem.pts, df.mem.n);
	}
	if (json)
		peak_json(&sum, (*n_json)++ == 0);
	else
		peak_text(&sum);
cleanup:
	mp_datfile__release(&df);
	return rc;
}

int do_peak(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "func", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mp_profiles sel = { 0 };
	const char *func = NULL;
	char msg[512];
	bool newest, json = false;
	size_t n_json = 0;
	int c, rc = 0;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'F':
			func = optarg;
			break;
		case 'J':
			json = true;
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
	if (newest && json)
		p_info("using the last profile data, '%s'", sel.names[0]);
	else if (newest)
		printf("Using last profile data.\n");
	if (json)
		fputc('[', stdout);
	for (size_t i = 0; i < sel.n; i++)
		rc |= peak_one(sel.names[i], func, json, &n_json);
	if (json)
		fputs(n_json ? "\n]\n" : "]\n", stdout);
cleanup:
	mp_profiles__release(&sel);
	if (fflush(stdout) || ferror(stdout)) {
		p_err("cannot write to standard output: %s", strerror(errno));
		rc = 1;
	}
	return rc;
}
