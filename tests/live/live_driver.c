/*
 * live_driver: the live view (mprof/live.h) on a synthetic fleet, inside the real recording
 * loop (user/loop.h), for tests/live. A fleet of processes cannot be made to order on a test
 * machine (hundreds of processes with chosen sizes, names, owners, births and deaths at chosen
 * ticks), so the table is synthetic; everything else is the real path: mp_loop__run() with a
 * backend that has no events (fd -1), the table's sink and then the view's sink at each tick,
 * the view's mp_source in the loop's ppoll, SIGINT through the loop's signal mask.
 *
 * The table at tick n (n = 0 at the first tick) is a pure function of n and of the options, so
 * the tests know what every interval holds: PROCS base processes from the start, three more
 * born at ticks 5, 7 and 10, exits at 8 and 13 (they stay, marked) and 11 (it leaves the table
 * at 14, as the fleet drops an exited row once reported), nothing changes from tick SETTLE on.
 *
 *   live_driver [--lines|--screen] [--interval S] [--duration S] [--procs N] [--settle N]
 *               [--end-all N] [--fail-at N] [--ticks N] [--title T] [--tick-file PATH]
 *
 * --end-all N: every process exits at tick N and the run ends when none is left alive (what
 * `mprof fleet --pid` does when its processes are gone). --fail-at N: the table fails (EIO) at
 * tick N. --ticks N: the run ends after N ticks, however long they take. --tick-file PATH: the number of the tick being shown is written there at each tick,
 * before the view draws it (the tests know from it when the table has settled). At the end it
 * prints "live_driver: end: <why> after <n> ticks" on stderr, after the
 * view has given the terminal back; exit 0, or 1 after an error line.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "live.h"
#include "loop.h"

#define MIB (1024ULL * 1024)
#define KIB 1024ULL
#define MAX_PROCS 512
#define LATE 3

static volatile sig_atomic_t got_signal;

struct fake {
	struct mp_fleet_proc p;
	int born, exit_at, leave_at; /* ticks; -1: never */
	uint64_t base;
	int64_t step;
};

struct table {
	struct mp_sink sink;
	struct fake procs[MAX_PROCS + LATE];
	size_t n;
	int tick;   /* the tick being shown, -1 before the first */
	int settle, end_all, fail_at, ticks;
	const char *tick_file;
	double start;
	struct mp_fleet_totals tot;
};

/* Names that a display must survive: blanks, a backslash, UTF-8, wide, control, cut, empty. */
static const char *const comms[] = {
	"python3",
	"my worker",
	"back\\slash",
	"caf\xc3\xa9",
	"\xe5\x86\x85\xe5\xad\x98\xe6\xb5\x8b\xe8\xaf\x95", /* 4 wide characters, 8 columns */
	"\x01" "ctl\tname",
	"abcdefghijklmn\xc3", /* 15 bytes, the last one a cut UTF-8 sequence */
	"verylongcommand",
	"-",
	"",
	"postgres",
	"nginx",
};
static const char *const users[] = { "root", "alice", "nobody", "a-very-long-username",
				     "1001" };
static const char long_user[] = "svc-batch-ingest-worker-account-number-42"; /* 41 bytes */

static void table_init(struct table *t, size_t nprocs, double start)
{
	memset(t->procs, 0, sizeof(t->procs));
	t->n = 0;
	t->start = start;
	for (size_t i = 0; i < nprocs + LATE; i++) {
		struct fake *f = &t->procs[t->n++];
		size_t late = i >= nprocs ? i - nprocs : (size_t)-1;

		f->p.pid = late != (size_t)-1 ? (pid_t)(5000 + late) : (pid_t)(1000 + i * 7);
		f->p.uid = (uid_t)(i % 5 == 0 ? 0 : 1000 + i % 5);
		/* the late ones: a name longer than any column gives it */
		f->p.user = late != (size_t)-1 ? long_user : users[i % 5];
		snprintf(f->p.comm, sizeof(f->p.comm), "%s",
			 late != (size_t)-1 ? "late-worker" : comms[i % (sizeof(comms) / sizeof(comms[0]))]);
		f->born = late == 0 ? 5 : late == 1 ? 7 : late == 2 ? 10 : 0;
		f->exit_at = i == 2 ? 8 : i == 5 ? 11 : late == 1 ? 13 : -1;
		f->leave_at = i == 5 ? 14 : -1;
		/* distinct sizes in an order unrelated to the pids */
		f->base = (uint64_t)((i * 7919) % 97 + 1) * 3 * MIB + i * 4 * KIB;
		if (i == 0)
			f->base = 3ULL * 1024 * MIB + 100 * MIB; /* a GiB figure */
		if (i == 1)
			f->base = 700; /* bytes */
		f->step = ((int64_t)((i * 31) % 11) - 5) * 64 * (int64_t)KIB;
		if (i == 1)
			f->step = 0; /* stays a figure in bytes */
		f->p.children = (unsigned int)(i % 4);
		f->p.cgroup = "/";
	}
}

static bool in_table(const struct fake *f, int n)
{
	return n >= f->born && (f->leave_at < 0 || n < f->leave_at);
}

/* The table's values at tick @n, at epoch @now. */
static void table_step(struct table *t, int n, double now)
{
	int m = n < t->settle ? n : t->settle;

	memset(&t->tot, 0, sizeof(t->tot));
	for (size_t i = 0; i < t->n; i++) {
		struct fake *f = &t->procs[i];
		int exit_at = f->exit_at;
		int64_t rss;

		if (t->end_all >= 0 && (exit_at < 0 || exit_at > t->end_all))
			exit_at = t->end_all;
		if (n >= f->born && f->born > 0)
			t->tot.starts++;
		if (exit_at >= 0 && n >= exit_at && n >= f->born)
			t->tot.exits++;
		if (!in_table(f, n))
			continue;
		if (n == f->born) {
			f->p.start_t = now;
			f->p.peak = 0;
			/* these joined long ago: their peaks are an hour and two days old */
			if (f->born == 0 && i % 10 == 3) {
				f->p.start_t = t->start - 7200;
				f->p.peak = f->base + 500 * MIB;
				f->p.peak_t = t->start - 3600;
			} else if (f->born == 0 && i % 10 == 7) {
				f->p.start_t = t->start - 3 * 86400.0;
				f->p.peak = f->base + 900 * MIB;
				f->p.peak_t = t->start - 2 * 86400.0;
			}
		}
		f->p.alive = exit_at < 0 || n < exit_at;
		if (!f->p.alive) {
			if (!f->p.end_t)
				f->p.end_t = now;
			continue; /* an exited row keeps its last values */
		}
		rss = (int64_t)f->base + (int64_t)(m - (f->born < m ? f->born : m)) * f->step;
		if (rss < 0)
			rss = 0;
		f->p.rss = (uint64_t)rss;
		f->p.growth_1m = rss - (int64_t)f->base;
		if (f->p.rss > f->p.peak) {
			f->p.peak = f->p.rss;
			f->p.peak_t = now;
		}
		t->tot.tracked++;
	}
	t->tot.oom_kills = n >= 11 ? 1 : 0;
	t->tot.records_lost = n >= 4 ? 7 : 0;
}

static int table_tick(struct mp_sink *s, struct mp_backend *be, double now)
{
	struct table *t = (struct table *)s;

	(void)be;
	t->tick++;
	table_step(t, t->tick, now);
	if (t->tick_file) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", t->tick_file);
		f = fopen(tmp, "w");
		if (!f)
			return -errno;
		fprintf(f, "%d\n", t->tick);
		if (fclose(f) || rename(tmp, t->tick_file))
			return -errno;
	}
	return 0;
}

static int table_event(struct mp_sink *s, const struct mp_sample *ev)
{
	(void)s;
	(void)ev;
	return 0;
}

static int table_finish(struct mp_sink *s, struct mp_backend *be)
{
	(void)s;
	(void)be;
	return 0;
}

/* mp_live_src over the table: like mp_fleet__each(), alive first, in no useful order. */
static int src_each(void *ctx, mp_fleet_fn fn, void *fctx)
{
	struct table *t = ctx;
	int err;

	if (t->fail_at >= 0 && t->tick >= t->fail_at)
		return -EIO;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = t->n; k-- > 0;) {
			const struct fake *f = &t->procs[k];

			if (!in_table(f, t->tick) || f->p.alive != (pass == 0))
				continue;
			err = fn(fctx, &f->p);
			if (err)
				return err;
		}
	}
	return 0;
}

static void src_totals(void *ctx, struct mp_fleet_totals *out)
{
	*out = ((struct table *)ctx)->tot;
}

/* ---- a backend with nothing to say: the loop only ticks --------------------------- */

static int be_track(struct mp_backend *b, pid_t pid, unsigned int group, enum mp_track_mode m)
{
	(void)b, (void)pid, (void)group, (void)m;
	return -ENOSYS;
}
static int be_fd(struct mp_backend *b)
{
	(void)b;
	return -1;
}
static int be_consume(struct mp_backend *b, mp_event_fn fn, void *ctx)
{
	(void)b, (void)fn, (void)ctx;
	return 0;
}
static int be_refresh(struct mp_backend *b)
{
	(void)b;
	return 0;
}
static int be_proc(struct mp_backend *b, pid_t pid, struct mp_view *out)
{
	(void)b, (void)pid, (void)out;
	return -ESRCH;
}
static int be_group(struct mp_backend *b, unsigned int group, struct mp_view *out)
{
	(void)b, (void)group, (void)out;
	return -ENOSYS;
}
static int be_each(struct mp_backend *b, unsigned int group, mp_view_fn fn, void *ctx)
{
	(void)b, (void)group, (void)fn, (void)ctx;
	return 0;
}
static void be_stats(struct mp_backend *b, struct mp_backend_stats *out)
{
	(void)b;
	memset(out, 0, sizeof(*out));
}
static void be_free(struct mp_backend *b)
{
	(void)b;
}

static struct mp_backend fake_backend = {
	.name = "synthetic", .method = "none", .track = be_track, .fd = be_fd,
	.consume = be_consume, .refresh = be_refresh, .proc = be_proc, .group = be_group,
	.each = be_each, .stats = be_stats, .free = be_free,
};

/* ---- signals, as mprof's recording commands handle them (mprof/record.c) ------------ */

static void on_signal(int sig)
{
	got_signal = sig;
}

static int setup_signals(sigset_t *waitmask)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL))
			return -errno;
		sigaddset(&block, sigs[i]);
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	if (sigprocmask(SIG_BLOCK, &block, waitmask))
		return -errno;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigdelset(waitmask, sigs[i]);
	return 0;
}

/* After the view: ours as we set them, curses' (SIGTSTP) and the view's (SIGWINCH) gone. */
static int signals_as_before(void)
{
	static const int mine[] = { SIGINT, SIGTERM, SIGHUP }, dfl[] = { SIGTSTP, SIGWINCH };
	struct sigaction sa;

	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		if (sigaction(mine[i], NULL, &sa) || sa.sa_handler != on_signal)
			return 0;
	for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
		if (sigaction(dfl[i], NULL, &sa) || sa.sa_handler != SIG_DFL)
			return 0;
	return 1;
}

static struct table table;

static int interrupted(void *ctx)
{
	struct table *t = ctx;

	if (got_signal)
		return 1;
	if (t->ticks > 0 && t->tick + 1 >= t->ticks)
		return 1;
	return t->end_all >= 0 && t->tick >= t->end_all && t->tot.tracked == 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: live_driver [--lines|--screen] [--interval S] [--duration S] "
			"[--procs N] [--settle N] [--end-all N] [--fail-at N] [--ticks N] [--title T] "
			"[--tick-file PATH]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct mp_live_opts lo = { 0 };
	struct mp_loop_opts opts = { .interval = 0.1, .func_fd = -1 };
	struct mp_sink *sinks[2];
	struct mp_source *sources[1];
	struct mp_loop_result res;
	struct mp_live *v = NULL;
	sigset_t waitmask;
	size_t nprocs = 40;
	const char *why;
	int err;

	table.settle = 16;
	table.end_all = -1;
	table.fail_at = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--lines")) {
			lo.mode = MP_LIVE_LINES;
			continue;
		}
		if (!strcmp(a, "--screen")) {
			lo.mode = MP_LIVE_SCREEN;
			continue;
		}
		if (!val)
			return usage();
		i++;
		if (!strcmp(a, "--interval"))
			opts.interval = atof(val);
		else if (!strcmp(a, "--duration"))
			opts.timeout = atof(val);
		else if (!strcmp(a, "--procs"))
			nprocs = (size_t)atoi(val);
		else if (!strcmp(a, "--settle"))
			table.settle = atoi(val);
		else if (!strcmp(a, "--end-all"))
			table.end_all = atoi(val);
		else if (!strcmp(a, "--fail-at"))
			table.fail_at = atoi(val);
		else if (!strcmp(a, "--title"))
			lo.title = val;
		else if (!strcmp(a, "--ticks"))
			table.ticks = atoi(val);
		else if (!strcmp(a, "--tick-file"))
			table.tick_file = val;
		else
			return usage();
	}
	if (!(opts.interval > 0) || nprocs > MAX_PROCS)
		return usage();

	err = setup_signals(&waitmask);
	if (err) {
		fprintf(stderr, "live_driver: error: signals: %s\n", strerror(-err));
		return 1;
	}
	table.sink = (struct mp_sink){ .event = table_event, .tick = table_tick,
				       .finish = table_finish };
	table.tick = -1;
	lo.start = mp_clock__now_epoch();
	table_init(&table, nprocs, lo.start);
	lo.src = (struct mp_live_src){ .each = src_each, .totals = src_totals, .ctx = &table };
	err = mp_live__new(&v, &lo);
	if (err) {
		fprintf(stderr, "live_driver: error: cannot start the view: %s\n", strerror(-err));
		return 1;
	}
	sinks[0] = &table.sink;
	sinks[1] = mp_live__sink(v);
	sources[0] = mp_live__source(v);
	opts.sources = sources;
	opts.nsources = 1;
	opts.sigmask = &waitmask;
	opts.interrupted = interrupted;
	opts.ctx = &table;
	err = mp_loop__run(&fake_backend, sinks, 2, &opts, &res);
	/* the terminal first: anything printed before this would be lost with the screen */
	mp_live__free(v);
	if (!signals_as_before()) {
		fprintf(stderr, "live_driver: error: the view changed the signal dispositions\n");
		return 1;
	}
	if (err) {
		fprintf(stderr, "live_driver: error: the view failed at tick %d: %s\n", table.tick,
			strerror(-err));
		return 1;
	}
	if (got_signal)
		why = "signal";
	else if (res.end == MP_LOOP_TIMEOUT)
		why = "duration";
	else if (table.ticks > 0 && table.tick + 1 >= table.ticks)
		why = "ticks";
	else if (table.end_all >= 0 && table.tot.tracked == 0)
		why = "all exited";
	else
		why = "quit key";
	fprintf(stderr, "live_driver: end: %s after %d ticks\n", why, table.tick + 1);
	return 0;
}
