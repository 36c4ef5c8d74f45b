#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "linetab.h"
#include "plot.h"
#include "report.h"
#include "sources.h"
#include "report_assets.h" /* generated from mprof/report/ by the build */

/* Relative times and MiB as written: the files have 4 and 6 decimals, these lose nothing. */
#define T_DECIMALS 6
#define MIB_DECIMALS 6

struct idx_vec {
	size_t *v;
	size_t n, cap;
	int err;
};

static void idx_push(void *ctx, size_t i)
{
	struct idx_vec *iv = ctx;

	if (iv->err)
		return;
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 1024;
		size_t *v = realloc(iv->v, cap * sizeof(*v));

		if (!v) {
			iv->err = -ENOMEM;
			return;
		}
		iv->v = v;
		iv->cap = cap;
	}
	iv->v[iv->n++] = i;
}

/* "t": [...], "mib": [...] of @pts[0..n) (sorted), reduced to @columns over their own span. */
static int write_curve(FILE *f, const struct mp_point *pts, size_t n, double t0, size_t columns)
{
	struct idx_vec keep = { 0 };
	double a = n ? pts[0].t : 0, b = n ? pts[n - 1].t : 0;

	/* a curve whose points share one instant is one column */
	if (!(b > a))
		b = a + 1;
	mp_plot__reduce(pts, n, 0, a, b, (double)columns, idx_push, &keep);
	if (keep.err) {
		free(keep.v);
		return keep.err;
	}
	fputs("\"t\":[", f);
	for (size_t i = 0; i < keep.n; i++) {
		if (i)
			fputc(',', f);
		mp_json__fixed(f, pts[keep.v[i]].t - t0, T_DECIMALS);
	}
	fputs("],\"mib\":[", f);
	for (size_t i = 0; i < keep.n; i++) {
		if (i)
			fputc(',', f);
		mp_json__fixed(f, pts[keep.v[i]].mib, MIB_DECIMALS);
	}
	fputc(']', f);
	free(keep.v);
	return 0;
}

/*
 * {"mib", "t", "time", "bytes"} of the sample (@mib, epoch @t), @t0 the profile's start. "t" is
 * the whole double: the page rounds it to the label's 3 decimals, and rounding an already
 * rounded value could break a tie the other way than `mprof peak` does.
 */
static void write_peak(FILE *f, double mib, double t, double t0)
{
	fputs("{\"mib\":", f);
	mp_json__number(f, mib);
	fputs(",\"t\":", f);
	mp_json__number(f, t - t0);
	fputs(",\"time\":", f);
	mp_json__number(f, t);
	fputs(",\"bytes\":", f);
	mp_json__bytes(f, mib);
	fputc('}', f);
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

static int write_children(FILE *f, const struct mp_datfile *df, double t0, size_t columns)
{
	struct kid_rank *rank;
	int err = 0;

	fputs("\"children\":[", f);
	if (!df->n_children) {
		fputc(']', f);
		return 0;
	}
	/* heaviest first, as plot's legend: when curves are left out, the small ones go */
	rank = malloc(df->n_children * sizeof(*rank));
	if (!rank)
		return -ENOMEM;
	for (size_t k = 0; k < df->n_children; k++) {
		const struct mp_series *s = &df->children[k].s;
		long i = mp_points__max(s->pts, s->n);

		rank[k].peak = i < 0 ? -INFINITY : s->pts[i].mib;
		rank[k].idx = k;
	}
	qsort(rank, df->n_children, sizeof(*rank), kid_rank_cmp);
	for (size_t r = 0; r < df->n_children && !err; r++) {
		const struct mp_child *ch = &df->children[rank[r].idx];
		long i = mp_points__max(ch->s.pts, ch->s.n);

		fprintf(f, "%s{\"pid\":%d,\"n\":%zu,\"peak\":", r ? "," : "", ch->pid, ch->s.n);
		if (i >= 0)
			write_peak(f, ch->s.pts[i].mib, ch->s.pts[i].t, t0);
		else
			fputs("null", f);
		if (r < MP_REPORT_MAX_CHILD_CURVES && ch->s.n) {
			struct mp_point *pts = malloc(ch->s.n * sizeof(*pts));

			if (!pts) {
				err = -ENOMEM;
				break;
			}
			memcpy(pts, ch->s.pts, ch->s.n * sizeof(*pts));
			mp_plot__sort_points(pts, ch->s.n);
			fputc(',', f);
			err = write_curve(f, pts, ch->s.n, t0, columns);
			free(pts);
		}
		fputc('}', f);
	}
	free(rank);
	fputc(']', f);
	return err;
}

static int write_funcs(FILE *f, const struct mp_datfile *df)
{
	const char **names, **labels;
	int err = 0;

	names = calloc(df->n_funcs ? df->n_funcs : 1, sizeof(*names));
	labels = calloc(df->n_funcs ? df->n_funcs : 1, sizeof(*labels));
	if (!names || !labels) {
		free(names);
		free(labels);
		return -ENOMEM;
	}
	for (size_t i = 0; i < df->n_funcs; i++)
		names[i] = df->funcs[i].name;
	mp_plot__func_labels(names, df->n_funcs, labels);
	fputs("\"funcs\":[", f);
	for (size_t i = 0; i < df->n_funcs && !err; i++) {
		const struct mp_func *fn = &df->funcs[i];
		double longest = 0, mib, t;

		for (size_t c = 0; c < fn->n; c++)
			if (fn->calls[c].t_end - fn->calls[c].t_start > longest)
				longest = fn->calls[c].t_end - fn->calls[c].t_start;
		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		mp_json__cstring(f, fn->name, MP_JSON_HTML);
		fputs(",\"label\":", f);
		mp_json__cstring(f, labels[i], MP_JSON_HTML);
		fprintf(f, ",\"calls\":%zu,\"longest\":", fn->n);
		mp_json__fixed(f, longest, T_DECIMALS);
		fputs(",\"peak\":", f);
		err = mp_datfile__func_peak(df, fn, &mib, &t);
		if (!err) {
			fputs("{\"mib\":", f);
			mp_json__number(f, mib);
			fputs(",\"time\":", f);
			mp_json__number(f, t);
			fputc('}', f);
		} else if (err == -ENODATA) {
			fputs("null", f); /* no MEM sample inside its calls */
			err = 0;
		}
		fputc('}', f);
	}
	fputc(']', f);
	free(names);
	free(labels);
	return err;
}

struct call_rank {
	double len;
	size_t idx;
};

static int call_rank_cmp(const void *a, const void *b)
{
	const struct call_rank *p = a, *q = b;

	if (p->len != q->len)
		return p->len > q->len ? -1 : 1;
	return (p->idx > q->idx) - (p->idx < q->idx);
}

static int idx_cmp(const void *a, const void *b)
{
	size_t p = *(const size_t *)a, q = *(const size_t *)b;

	return (p > q) - (p < q);
}

static int write_calls(FILE *f, const struct mp_datfile *df, double t0)
{
	static const char *const cols[] = { "t0", "t1", "m0", "m1", "level", "func" };
	struct mp_plot_call *calls;
	size_t n, shown, *pick = NULL;
	int err;

	err = mp_plot__calls(df, t0, &calls, &n);
	if (err)
		return err;
	shown = n < MP_REPORT_MAX_CALLS ? n : MP_REPORT_MAX_CALLS;
	pick = malloc((shown ? shown : 1) * sizeof(*pick));
	if (!pick) {
		free(calls);
		return -ENOMEM;
	}
	if (shown < n) {
		/* the longest calls, back in time order; the others are narrower than a pixel */
		struct call_rank *rank = malloc(n * sizeof(*rank));

		if (!rank) {
			free(pick);
			free(calls);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			rank[i].len = calls[i].t1 - calls[i].t0;
			rank[i].idx = i;
		}
		qsort(rank, n, sizeof(*rank), call_rank_cmp);
		for (size_t i = 0; i < shown; i++)
			pick[i] = rank[i].idx;
		free(rank);
		qsort(pick, shown, sizeof(*pick), idx_cmp);
	} else {
		for (size_t i = 0; i < n; i++)
			pick[i] = i;
	}
	fprintf(f, "\"calls\":{\"n\":%zu,\"shown\":%zu", n, shown);
	for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
		fprintf(f, ",\"%s\":[", cols[c]);
		for (size_t k = 0; k < shown; k++) {
			const struct mp_plot_call *fc = &calls[pick[k]];

			if (k)
				fputc(',', f);
			switch (c) {
			case 0:
				mp_json__fixed(f, fc->t0, T_DECIMALS);
				break;
			case 1:
				mp_json__fixed(f, fc->t1, T_DECIMALS);
				break;
			case 2:
				mp_json__fixed(f, fc->m0, MIB_DECIMALS);
				break;
			case 3:
				mp_json__fixed(f, fc->m1, MIB_DECIMALS);
				break;
			case 4:
				fprintf(f, "%d", fc->level);
				break;
			default:
				fprintf(f, "%zu", fc->func);
				break;
			}
		}
		fputc(']', f);
	}
	fputc('}', f);
	free(pick);
	free(calls);
	return 0;
}

static void write_counts(FILE *f, uint64_t grown, uint64_t freed, uint64_t events)
{
	fprintf(f, "\"grown\":%llu,\"freed\":%llu,\"events\":%llu", (unsigned long long)grown,
		(unsigned long long)freed, (unsigned long long)events);
}

/* The folder of the data file @name, where relative source names are tried too; NULL if none. */
static char *data_folder(const char *name)
{
	const char *slash = strrchr(name, '/');

	if (!slash)
		return NULL; /* the current folder, tried anyway */
	return strndup(name, slash == name ? 1 : (size_t)(slash - name));
}

/* "lines": the line tables of the LINE records (see report.h). */
static int write_lines(FILE *f, const struct mp_report_input *in)
{
	struct mp_sources *src = NULL;
	struct mp_linetab t;
	char *base = data_folder(in->name);
	int err;

	if (strchr(in->name, '/') && !base)
		return -ENOMEM;
	err = mp_sources__new(&src, base);
	free(base);
	if (err)
		return err;
	err = mp_linetab__build(&t, in->df);
	if (err) {
		mp_sources__free(src);
		return err;
	}
	fputs(",\"lines\":[", f);
	for (size_t p = 0; p < t.n && !err; p++) {
		const struct mp_linetab_proc *pr = &t.procs[p];

		fprintf(f, "%s{\"pid\":%d,", p ? "," : "", pr->pid);
		write_counts(f, pr->grown, pr->freed, pr->events);
		fputs(",\"groups\":[", f);
		for (size_t k = 0; k < pr->n && !err; k++) {
			const struct mp_linetab_group *g = &pr->groups[k];

			fputs(k ? ",{\"file\":" : "{\"file\":", f);
			mp_json__cstring(f, g->file, MP_JSON_HTML);
			fputs(",\"func\":", f);
			mp_json__cstring(f, g->func, MP_JSON_HTML);
			fprintf(f, ",\"special\":%s,", g->special ? "true" : "false");
			write_counts(f, g->grown, g->freed, g->events);
			fputs(",\"rows\":[", f);
			for (size_t r = 0; r < g->n; r++) {
				const struct mp_linetab_row *row = &g->rows[r];
				const char *text;
				size_t len;

				fprintf(f, "%s{\"line\":%d,", r ? "," : "", row->line);
				write_counts(f, row->grown, row->freed, row->events);
				if (g->special) {
					fputs(",\"name\":", f);
					mp_json__cstring(f, row->name, MP_JSON_HTML);
				} else {
					fputs(",\"text\":", f);
					err = mp_sources__line(src, g->file, row->line, &text, &len);
					if (!err)
						mp_json__string(f, text, len, MP_JSON_HTML);
					else if (err == -ENOENT)
						fputs("null", f); /* not readable now: no text */
					if (err == -ENOENT)
						err = 0;
					if (err)
						break;
				}
				fputc('}', f);
			}
			fputs("]}", f);
		}
		fputs("]}", f);
	}
	fputc(']', f);
	mp_linetab__release(&t);
	mp_sources__free(src);
	return err;
}

/* The frames of one process's stacks, each once: an open-addressing table of index + 1. */
struct frame_set {
	const struct mp_frame_rec **v; /* in order of first use */
	size_t n;
	size_t *slots;
	size_t nslots;
};

static uint64_t frame_hash(const struct mp_frame_rec *fr)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a over func, NUL, file, NUL, line */

	for (const char *p = fr->func; ; p++) {
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		if (!*p)
			break;
	}
	for (const char *p = fr->file; ; p++) {
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		if (!*p)
			break;
	}
	return (h ^ (uint64_t)(unsigned int)fr->line) * 1099511628211ULL;
}

static bool frame_eq(const struct mp_frame_rec *a, const struct mp_frame_rec *b)
{
	return a->line == b->line && !strcmp(a->func, b->func) && !strcmp(a->file, b->file);
}

/* The index of @fr in @fs, added if new; @fs was sized for every frame. */
static size_t frame_id(struct frame_set *fs, const struct mp_frame_rec *fr)
{
	size_t h = frame_hash(fr) & (fs->nslots - 1);

	while (fs->slots[h]) {
		if (frame_eq(fs->v[fs->slots[h] - 1], fr))
			return fs->slots[h] - 1;
		h = (h + 1) & (fs->nslots - 1);
	}
	fs->v[fs->n] = fr;
	fs->slots[h] = ++fs->n;
	return fs->n - 1;
}

/* One process's entry of "stacks": its frames, each once, and its stacks as frame indices. */
static int write_proc_stacks(FILE *f, const struct mp_datfile *df, int pid, bool first)
{
	struct frame_set fs = { 0 };
	uint64_t grown = 0, freed = 0, events = 0;
	size_t nframes = 0, nstacks = 0, *ids = NULL, w = 0;

	for (size_t i = 0; i < df->n_stacks; i++) {
		const struct mp_stack_rec *st = &df->stacks[i];

		if (st->pid != pid)
			continue;
		nframes += st->nframes;
		nstacks++;
		grown = mp_linetab__add(grown, st->grown);
		freed = mp_linetab__add(freed, st->freed);
		events = mp_linetab__add(events, st->events);
	}
	fs.nslots = 16;
	while (fs.nslots < 2 * nframes)
		fs.nslots *= 2;
	fs.v = malloc((nframes ? nframes : 1) * sizeof(*fs.v));
	fs.slots = calloc(fs.nslots, sizeof(*fs.slots));
	ids = malloc((nframes ? nframes : 1) * sizeof(*ids));
	if (!fs.v || !fs.slots || !ids) {
		free(fs.v);
		free(fs.slots);
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < df->n_stacks; i++)
		if (df->stacks[i].pid == pid)
			for (size_t k = 0; k < df->stacks[i].nframes; k++)
				ids[w++] = frame_id(&fs, &df->stacks[i].frames[k]);
	fprintf(f, "%s{\"pid\":%d,", first ? "" : ",", pid);
	write_counts(f, grown, freed, events);
	fprintf(f, ",\"n\":%zu,\"frames\":[", nstacks);
	for (size_t k = 0; k < fs.n; k++) {
		fputs(k ? ",[" : "[", f);
		mp_json__cstring(f, fs.v[k]->func, MP_JSON_HTML);
		fputc(',', f);
		mp_json__cstring(f, fs.v[k]->file, MP_JSON_HTML);
		fprintf(f, ",%d]", fs.v[k]->line);
	}
	fputs("],\"stacks\":[", f);
	w = 0;
	nstacks = 0;
	for (size_t i = 0; i < df->n_stacks; i++) {
		const struct mp_stack_rec *st = &df->stacks[i];

		if (st->pid != pid)
			continue;
		fputs(nstacks++ ? ",[[" : "[[", f);
		for (size_t k = 0; k < st->nframes; k++)
			fprintf(f, "%s%zu", k ? "," : "", ids[w++]);
		fprintf(f, "],%llu,%llu,%llu]", (unsigned long long)st->grown,
			(unsigned long long)st->freed, (unsigned long long)st->events);
	}
	fputs("]}", f);
	free(fs.v);
	free(fs.slots);
	free(ids);
	return 0;
}

/* "stacks": per process (in order of first appearance), see report.h. */
static int write_stacks(FILE *f, const struct mp_datfile *df)
{
	size_t npids, written = 0;
	int *pids, err;

	err = mp_datfile__line_pids(df, &pids, &npids);
	if (err)
		return err;
	fputs(",\"stacks\":[", f);
	for (size_t p = 0; p < npids && !err; p++) {
		bool any = false;

		for (size_t i = 0; i < df->n_stacks && !any; i++)
			any = df->stacks[i].pid == pids[p];
		if (any)
			err = write_proc_stacks(f, df, pids[p], !written++);
	}
	fputc(']', f);
	free(pids);
	return err;
}

static int write_profile(FILE *f, const struct mp_report_input *in, size_t columns)
{
	const struct mp_datfile *df = in->df;
	struct mp_point *pts;
	size_t n;
	double t0;
	long pk;
	int err;

	err = mp_plot__curve(df, &pts, &n);
	if (err)
		return err;
	t0 = pts[0].t;
	pk = mp_points__max(df->mem.pts, df->mem.n);
	fputs("{\"file\":", f);
	mp_json__cstring(f, in->name, MP_JSON_HTML);
	fputs(",\"cmdline\":", f);
	mp_json__cstring(f, df->cmdline, MP_JSON_HTML);
	fputs(",\"start\":", f);
	mp_json__number(f, t0);
	fprintf(f, ",\"mem_samples\":%zu,\"peak\":", df->mem.n);
	write_peak(f, df->mem.pts[pk].mib, df->mem.pts[pk].t, t0);
	fprintf(f, ",\"mem\":{\"n\":%zu,", n);
	err = write_curve(f, pts, n, t0, columns);
	free(pts);
	if (err)
		return err;
	fputs("},", f);
	err = write_children(f, df, t0, columns);
	if (err)
		return err;
	fputc(',', f);
	err = write_funcs(f, df);
	if (err)
		return err;
	fputc(',', f);
	err = write_calls(f, df, t0);
	if (err)
		return err;
	if (df->n_line_recs) {
		err = write_lines(f, in);
		if (err)
			return err;
	}
	if (df->n_stacks) {
		err = write_stacks(f, df);
		if (err)
			return err;
	}
	fputc('}', f);
	return 0;
}

static int write_data(FILE *f, const struct mp_report_input *in, size_t n,
		      const struct mp_report_opts *opts, size_t columns)
{
	fputs("{\"version\":1,\"title\":", f);
	mp_json__cstring(f, opts->title, MP_JSON_HTML);
	fprintf(f, ",\"columns\":%zu,\"max_calls\":%d,\"max_child_curves\":%d,\"profiles\":[\n",
		columns, MP_REPORT_MAX_CALLS, MP_REPORT_MAX_CHILD_CURVES);
	for (size_t i = 0; i < n; i++) {
		int err;

		if (i)
			fputs(",\n", f);
		err = write_profile(f, &in[i], columns);
		if (err)
			return err;
	}
	fputs("\n]}", f);
	return 0;
}

int mp_report__write(FILE *f, const struct mp_report_input *in, size_t n,
		     const struct mp_report_opts *opts)
{
	size_t columns = opts->columns ? opts->columns : MP_REPORT_COLUMNS;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!in[i].df->mem.n)
			return -ENODATA;
	for (size_t i = 0; i < MP_REPORT_N_CHUNKS; i++) {
		const char *slot = mp_report_slots[i];
		int err = 0;

		fputs(mp_report_chunks[i], f);
		if (!strcmp(slot, "UPLOT_JS"))
			fputs(mp_report_uplot_js, f);
		else if (!strcmp(slot, "UPLOT_CSS"))
			fputs(mp_report_uplot_css, f);
		else if (!strcmp(slot, "UPLOT_LICENSE"))
			fputs(mp_report_uplot_license, f);
		else if (!strcmp(slot, "DATA"))
			err = write_data(f, in, n, opts, columns);
		if (err)
			return err;
		if (ferror(f))
			return -EIO;
	}
	return ferror(f) ? -EIO : 0;
}

int mp_report__save(const char *path, const struct mp_report_input *in, size_t n,
		    const struct mp_report_opts *opts)
{
	size_t len = strlen(path) + 32;
	char *tmp = malloc(len);
	FILE *f = NULL;
	int fd = -1, err;

	if (!tmp)
		return -ENOMEM;
	/* beside the target, so that the rename stays in one filesystem */
	for (unsigned int i = 0; i < 100; i++) {
		snprintf(tmp, len, "%s.tmp%ld-%u", path, (long)getpid(), i);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		err = -errno;
		free(tmp);
		return err;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto cleanup;
	}
	err = mp_report__write(f, in, n, opts);
	if (fclose(f) && !err)
		err = errno ? -errno : -EIO;
	if (!err && rename(tmp, path))
		err = -errno;
cleanup:
	if (err)
		unlink(tmp);
	free(tmp);
	return err;
}
