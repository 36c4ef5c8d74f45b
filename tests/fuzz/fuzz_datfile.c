/*
 * libFuzzer target for the .dat reader: any bytes must give 0 or -EINVAL (never a crash, a leak
 * or undefined behaviour), and what was parsed must be consistent. The pure profile-selection
 * helpers get the same bytes as a file name.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iuser tests/fuzz/fuzz_datfile.c user/datfile.c
 *   ./a.out -max_total_time=20 corpus/ tests/data/
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "datfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsed(const struct mp_datfile *df)
{
	size_t calls = 0;

	for (size_t i = 0; i < df->mem.n; i++)
		if (!isfinite(df->mem.pts[i].mib) || !isfinite(df->mem.pts[i].t))
			abort();
	for (size_t k = 0; k < df->n_children; k++) {
		if (!df->children[k].s.n || df->children[k].pid < 0 ||
		    mp_datfile__child(df, df->children[k].pid) != &df->children[k])
			abort();
	}
	for (size_t f = 0; f < df->n_funcs; f++) {
		const struct mp_func *fn = &df->funcs[f];
		double mib, t;
		int err;

		if (!fn->n || mp_datfile__func(df, fn->name) != fn)
			abort();
		calls += fn->n;
		for (size_t c = 0; c < fn->n; c++)
			if (fn->calls[c].level < -1)
				abort();
		err = mp_datfile__func_peak(df, fn, &mib, &t);
		if (err && err != -ENODATA)
			abort();
		if (!err && (!isfinite(mib) || !isfinite(t)))
			abort();
	}
	for (size_t i = 0; i < df->n_line_recs; i++) {
		const struct mp_line_rec *l = &df->line_recs[i];

		if (l->pid < 0 || l->line < 0 || !*l->func || !*l->file)
			abort();
	}
	for (size_t i = 0; i < df->n_stacks; i++) {
		const struct mp_stack_rec *st = &df->stacks[i];

		if (st->pid < 0 || (st->nframes && !st->frames))
			abort();
		for (size_t k = 0; k < st->nframes; k++)
			if (!*st->frames[k].func || !*st->frames[k].file || st->frames[k].line < 0)
				abort();
	}
	if (df->n_line_recs + df->n_stacks) {
		int *pids;
		size_t n;

		if (mp_datfile__line_pids(df, &pids, &n) || !n || n > df->n_line_recs + df->n_stacks)
			abort();
		free(pids);
	}
	/* every sample, call and line record came from a line of its own */
	if (df->mem.n + calls + df->n_line_recs + df->n_stacks > df->n_lines)
		abort();
	if (df->mem.n) {
		double slope, icpt;
		long i = mp_points__max(df->mem.pts, df->mem.n);

		if (i < 0 || (size_t)i >= df->mem.n)
			abort();
		if (!mp_points__fit(df->mem.pts, df->mem.n, df->mem.pts[0].t, &slope, &icpt) &&
		    isnan(slope))
			abort();
	}
}

static void check_names(const uint8_t *data, size_t size)
{
	char *name = malloc(size + 1), stamp[64], *ts;
	long long idx;
	size_t pos;

	if (!name)
		return;
	memcpy(name, data, size);
	name[size] = '\0';
	(void)mp_profile__name_matches(name);
	if (mp_profile__list_stamp(name, stamp, sizeof(stamp)) >= sizeof(stamp))
		abort();
	if (!mp_profile__parse_index(name, &idx) && !mp_profile__index_pos(7, idx, &pos) &&
	    pos >= 7)
		abort();
	ts = mp_profile__ts_companion(name);
	if (ts && strlen(ts) != strlen(name) + 3)
		abort();
	free(ts);
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_datfile df;
	int err;

	mp_datfile__init(&df);
	err = mp_datfile__parse(&df, (const char *)data, size);
	if (err == -EINVAL) {
		if (!df.err_msg || df.err_line < 1 || df.err_line > df.n_lines)
			abort();
	} else if (err) {
		abort(); /* -ENOMEM is not expected at these sizes */
	} else {
		check_parsed(&df);
	}
	mp_datfile__release(&df);
	if (size < 256)
		check_names(data, size);
	return 0;
}
