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
 * file is read as a stream (mp_datfile__scan()), in constant memory whatever its size.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "datfile.h"
#include "datfile_priv.h"
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

/* What peak prints of one profile. */
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

/* What one streaming pass keeps: the maxima, never the samples. */
struct peaks {
	struct peak mem;
	bool any_mem;
	/* children in order of first appearance, one sample each (the highest), and CMDLINE */
	struct mp_datfile kids;
	/* --func: the merged calls of the function (first pass) */
	const char *func;
	struct span {
		double a, b;
	} *spans;
	size_t nspans, capspans;
	bool func_seen, in_func_seen;
};

static int peak_record(void *ctx, const struct mp_record *r)
{
	struct peaks *pk = ctx;
	const struct mp_child *ch;

	switch (r->kind) {
	case MP_REC_MEM:
		pk->any_mem = true;
		if (pk->func) {
			/* the last span starting at or before the sample */
			size_t lo = 0, hi = pk->nspans;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (pk->spans[mid].a <= r->t)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (!lo || r->t > pk->spans[lo - 1].b)
				return 0;
			pk->in_func_seen = true;
		}
		/* the first sample on ties, as mp_points__max() */
		if (!pk->mem.found || r->mib > pk->mem.mib)
			pk->mem = (struct peak){ .found = true, .mib = r->mib, .t = r->t };
		return 0;
	case MP_REC_CHLD:
		ch = mp_datfile__child(&pk->kids, r->pid);
		if (!ch)
			return mp_datfile__add_record(&pk->kids, r);
		if (r->mib > ch->s.pts[0].mib)
			((struct mp_child *)ch)->s.pts[0] = (struct mp_point){ r->t, r->mib };
		return 0;
	case MP_REC_CMDLINE:
		return mp_datfile__add_record(&pk->kids, r); /* the last one wins */
	case MP_REC_FUNC:
	case MP_REC_LINE:
	case MP_REC_STACK:
		return 0;
	}
	return 0;
}

static int span_cmp(const void *x, const void *y)
{
	const struct span *p = x, *q = y;

	return (p->a > q->a) - (p->a < q->a);
}

/* First pass of --func: collect the function's calls. */
static int span_record(void *ctx, const struct mp_record *r)
{
	struct peaks *pk = ctx;
	struct span *ns;

	if (r->kind != MP_REC_FUNC || r->len != strlen(pk->func) ||
	    memcmp(r->text, pk->func, r->len))
		return 0;
	pk->func_seen = true;
	if (r->call.t_end < r->call.t_start)
		return 0; /* a clock step backwards: no sample can lie inside */
	if (pk->nspans == pk->capspans) {
		size_t ncap = pk->capspans ? pk->capspans * 2 : 64;

		ns = realloc(pk->spans, ncap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		pk->spans = ns;
		pk->capspans = ncap;
	}
	pk->spans[pk->nspans++] = (struct span){ r->call.t_start, r->call.t_end };
	return 0;
}

/* Sort and merge the spans into disjoint ones. */
static void merge_spans(struct peaks *pk)
{
	size_t m = 0;

	if (!pk->nspans)
		return;
	qsort(pk->spans, pk->nspans, sizeof(*pk->spans), span_cmp);
	for (size_t i = 1; i < pk->nspans; i++) {
		if (pk->spans[i].a <= pk->spans[m].b) {
			if (pk->spans[i].b > pk->spans[m].b)
				pk->spans[m].b = pk->spans[i].b;
		} else {
			pk->spans[++m] = pk->spans[i];
		}
	}
	pk->nspans = m + 1;
}

/* The message for a failed scan of @path. */
static void scan_error(const char *path, int err, const struct mp_scan *sc)
{
	if (err == -EINVAL)
		p_err("'%s' line %zu: %s", path, sc->err_line, sc->err_msg);
	else if (err == -EISDIR)
		p_err("'%s' is a directory, not a profile", path);
	else
		p_err("cannot read '%s': %s", path, strerror(-err));
}

/*
 * Print one profile's peaks, as text or as the next element of the JSON array (*@n_json counts
 * those written), reading the file as a stream: constant memory whatever its size (two passes
 * with --func). Returns 0, or 1 after reporting an error.
 */
static int peak_one(const char *path, const char *func, bool json, size_t *n_json)
{
	struct peak_summary sum = { .path = path, .func = func };
	struct peaks pk = { .func = func };
	struct mp_scan sc;
	int rc = 1, err;

	mp_datfile__init(&pk.kids);
	if (func) {
		err = mp_datfile__scan(path, span_record, &pk, &sc);
		if (err) {
			scan_error(path, err, &sc);
			goto cleanup;
		}
		merge_spans(&pk);
	}
	err = mp_datfile__scan(path, peak_record, &pk, &sc);
	if (err) {
		scan_error(path, err, &sc);
		goto cleanup;
	}
	if (sc.torn_line)
		p_info("'%s' line %zu: incomplete last line skipped (the writer was stopped in the "
		       "middle of it)",
		       path, sc.torn_line);
	if (!pk.any_mem) {
		p_err("no MEM samples in '%s': %s", path,
		      sc.n_lines ? "the run was too short or the file is truncated"
				 : "the file is empty");
		goto cleanup;
	}
	sum.df = &pk.kids;
	sum.cmdline = pk.kids.cmdline;
	sum.mem = pk.mem;
	if (func && (!pk.func_seen || !pk.in_func_seen)) {
		sum.mem.found = false;
		/* memory_profiler's line, then why */
		if (json)
			peak_json(&sum, (*n_json)++ == 0);
		else
			printf("%s\tNaN MiB\n", path);
		if (!pk.func_seen) {
			p_err("no function '%s' in '%s' (names are as in its FUNC lines, e.g. "
			      "__main__.f)",
			      func, path);
			goto cleanup;
		}
		p_info("no MEM sample was taken during the calls of '%s' in '%s'", func, path);
		rc = 0;
		goto cleanup;
	}
	if (json)
		peak_json(&sum, (*n_json)++ == 0);
	else
		peak_text(&sum);
	rc = 0;
cleanup:
	mp_datfile__release(&pk.kids);
	free(pk.spans);
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
