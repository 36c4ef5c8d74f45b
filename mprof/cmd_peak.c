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

#include <stdlib.h>

#include "datfile.h"
#include "datfile_priv.h"
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

/* What one pass keeps: the maxima, never the samples. */
struct peaks {
	bool have_mem;
	double mem; /* MiB */
	struct mp_datfile kids; /* children in order of first appearance, one sample each: the max */
	/* --func: the merged calls of the function (first pass) */
	const char *func;
	struct span { double a, b; } *spans;
	size_t nspans, capspans;
	bool func_seen, in_func_seen, any_mem;
};

static int peak_record(void *ctx, const struct mp_record *r)
{
	struct peaks *pk = ctx;
	const struct mp_child *ch;
	int err;

	if (r->kind == MP_REC_MEM) {
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
		if (!pk->have_mem || r->mib > pk->mem)
			pk->mem = r->mib;
		pk->have_mem = true;
		return 0;
	}
	if (r->kind != MP_REC_CHLD)
		return 0;
	ch = mp_datfile__child(&pk->kids, r->pid);
	if (!ch) {
		struct mp_record one = *r;

		err = mp_datfile__add_record(&pk->kids, &one);
		return err;
	}
	if (r->mib > ch->s.pts[0].mib)
		((struct mp_child *)ch)->s.pts[0] = (struct mp_point){ r->t, r->mib };
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
 * Print one profile's peaks, reading it as a stream (constant memory whatever its size; with
 * --func, two passes). Returns 0, or 1 after reporting an error.
 */
static int peak_one(const char *path, const char *func)
{
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
	if (func && !pk.func_seen) {
		/* memory_profiler's line, then why */
		printf("%s\tNaN MiB\n", path);
		p_err("no function '%s' in '%s' (names are as in its FUNC lines, e.g. __main__.f)",
		      func, path);
		goto cleanup;
	}
	if (func && !pk.in_func_seen) {
		printf("%s\tNaN MiB\n", path);
		p_info("no MEM sample was taken during the calls of '%s' in '%s'", func, path);
		rc = 0;
		goto cleanup;
	}
	printf("%s\t%.3f MiB\n", path, pk.mem);
	for (size_t k = 0; k < pk.kids.n_children; k++)
		printf("  Child %d\t\t\t%.3f MiB\n", pk.kids.children[k].pid,
		       pk.kids.children[k].s.pts[0].mib);
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
