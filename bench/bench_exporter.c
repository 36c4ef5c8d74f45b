/*
 * bench_exporter: what one scrape of the exporter (user/exporter.c) costs the recording loop,
 * which is busy for that long: a synthetic table of N processes, each mode and format, the
 * median CPU time of 31 scrapes (CPU time, not wall time: on a shared machine the wall time
 * measures the neighbours), and the size of the answer. `make bench-exporter` runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exporter.h"

#define ROUNDS 31

struct table {
	struct mp_fleet_proc *rows;
	size_t n;
	struct mp_fleet_totals t;
};

static int each(void *ctx, mp_fleet_fn fn, void *fctx)
{
	struct table *t = ctx;

	for (size_t i = 0; i < t->n; i++) {
		int err = fn(fctx, &t->rows[i]);

		if (err)
			return err;
	}
	return 0;
}

static void totals(void *ctx, struct mp_fleet_totals *out)
{
	*out = ((struct table *)ctx)->t;
}

static int window(void *ctx)
{
	(void)ctx;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static const char *const cgroups[] = { "/system.slice/nginx.service",
				       "/system.slice/postgresql.service",
				       "/user.slice/user-1000.slice/session-2.scope", "/" };
static const char *const users[] = { "www-data", "postgres", "alice", "root" };
static const char *const comms[] = { "nginx", "postgres", "python3", "bash", "node", "java" };

int main(void)
{
	static const size_t sizes[] = { 500, 10000 };
	static const struct {
		const char *name;
		enum mp_exporter_group g;
	} modes[] = {
		{ "per process", MP_EXPORTER_PER_PROCESS },
		{ "--group-by comm", MP_EXPORTER_BY_COMM },
	};

	printf("| processes | labels | format | scrape, CPU ms (median of %d) | answer (KiB) |\n",
	       ROUNDS);
	printf("|---|---|---|---|---|\n");
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		struct table t = { calloc(sizes[si], sizeof(struct mp_fleet_proc)), sizes[si], { 0 } };

		if (!t.rows)
			return 1;
		for (size_t i = 0; i < t.n; i++) {
			struct mp_fleet_proc *p = &t.rows[i];

			p->pid = (pid_t)(1000 + i);
			snprintf(p->comm, sizeof(p->comm), "%s", comms[i % 6]);
			p->cgroup = cgroups[i % 4];
			p->user = users[i % 4];
			p->alive = true;
			p->start_t = 1.7e9 + (double)i;
			p->rss = p->peak = p->window_max = (uint64_t)(i + 1) * 1234567;
		}
		t.t.tracked = t.n;
		for (size_t mi = 0; mi < sizeof(modes) / sizeof(modes[0]); mi++)
			for (int f = 0; f < 2; f++) {
				struct mp_exporter_src src = { each, totals, window, &t };
				struct mp_exporter_opts o = { .group_by = modes[mi].g };
				struct mp_exporter *e;
				double ms[ROUNDS];
				size_t len = 0;

				if (mp_exporter__new(&e, &src, &o, NULL))
					return 1;
				for (int r = 0; r < ROUNDS; r++) {
					double t0 = now_s();
					char *body;

					if (mp_exporter__scrape(e, (enum mp_expo_format)f, 1, &body,
								&len))
						return 1;
					ms[r] = (now_s() - t0) * 1e3;
					free(body);
				}
				qsort(ms, ROUNDS, sizeof(ms[0]), cmp_d);
				printf("| %zu | %s | %s | %.3f | %.0f |\n", t.n, modes[mi].name,
				       f ? "OpenMetrics" : "text 0.0.4", ms[ROUNDS / 2],
				       (double)len / 1024);
				mp_exporter__free(e);
			}
		free(t.rows);
	}
	return 0;
}
