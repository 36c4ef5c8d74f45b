/*
 * synth_exporter: the exporter (user/exporter.c) serving a synthetic, time-varying fleet table
 * from inside a real recording loop (user/loop.c), for the Prometheus tests (tests/prom).
 *
 *   synth_exporter [--listen ADDR] [--group-by G] [--log FILE] [--duration S]
 *                  [--conn-timeout S] [--spike-after N] [--short-after N]
 *
 * Prints "port N" once listening, and "stats requests=.. scrapes=.. errors=.. wakeups=.." at
 * the end (SIGTERM, SIGINT or --duration). With --log, every read of the table (each(), one per
 * request of /metrics) is written as one JSON line with exactly the rows and counters handed to
 * the exporter, so a test can compare what Prometheus stored with what was served.
 *
 * The table follows fleet.h's rules: window() closes each row's window, an exited process is
 * shown until one window() has reported it, then removed. Rows:
 *   1001 python3  rss a sawtooth around 100 MiB            1002 python3  rss growing
 *   1003 a comm with quotes, backslash, newline, controls and invalid UTF-8 (and such a cgroup)
 *   1004 spiker   50 MiB; after window N (--spike-after) +300 MiB for 20 ms, 300 ms later
 *   2001 python3  appears 300 ms after window N (--short-after), lives 100 ms (so between two
 *                 scrapes), an OOM victim
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exporter.h"
#include "loop.h"

#define MIB (1024 * 1024ull)
#define NPROC 5
#define TICK_S 0.005
#define SPIKE_DELAY_S 0.3
#define SPIKE_S 0.020
#define SHORT_LIFE_S 0.1

struct proc {
	struct mp_fleet_proc p;
	bool present;
	bool reported; /* exited, and a window() has reported it */
	uint64_t cur_wmax;
};

struct synth {
	struct proc procs[NPROC];
	struct mp_fleet_totals t;
	uint64_t ticks;
	unsigned int windows;
	bool closed; /* window() since the last each() */
	unsigned int spike_after, short_after;
	double spike_at, spike_start, spike_end; /* CLOCK_MONOTONIC; epoch for start/end */
	double short_at;
	FILE *log;
};

static volatile sig_atomic_t stop;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double epoch(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_rss(struct proc *p, uint64_t v)
{
	p->p.rss = v;
	if (v > p->cur_wmax)
		p->cur_wmax = v;
	if (v > p->p.peak) {
		p->p.peak = v;
		p->p.peak_t = epoch();
	}
}

static void join(struct synth *s, int i, pid_t pid, const char *comm, size_t ncomm,
		 const char *cgroup, const char *user, uint64_t rss)
{
	struct proc *p = &s->procs[i];

	memset(p, 0, sizeof(*p));
	p->present = true;
	p->p.pid = pid;
	p->p.uid = 1000 + (uid_t)i;
	memcpy(p->p.comm, comm, ncomm);
	p->p.cgroup = cgroup;
	p->p.user = user;
	p->p.alive = true;
	p->p.start_t = epoch();
	set_rss(p, rss);
	p->p.window_max = rss;
}

static void count_tracked(struct synth *s)
{
	s->t.tracked = 0;
	for (int i = 0; i < NPROC; i++)
		s->t.tracked += s->procs[i].present && s->procs[i].p.alive;
}

/* The table's clock: every tick moves the values. */
static int synth_tick(struct synth *s)
{
	double now = mono();
	struct proc *spiker = &s->procs[3], *shortp = &s->procs[4];

	s->ticks++;
	set_rss(&s->procs[0], 100 * MIB + (s->ticks % 50) * 64 * 1024);
	set_rss(&s->procs[1], 20 * MIB + s->ticks * 4096);
	if (s->spike_at > 0 && now >= s->spike_at && now < s->spike_at + SPIKE_S) {
		if (!s->spike_start)
			s->spike_start = epoch();
		set_rss(spiker, 350 * MIB);
	} else if (spiker->p.rss != 50 * MIB) {
		set_rss(spiker, 50 * MIB);
		s->spike_end = epoch();
		s->spike_at = 0;
		if (s->log) {
			fprintf(s->log, "{\"spike_start\": %.6f, \"spike_end\": %.6f}\n",
				s->spike_start, s->spike_end);
			fflush(s->log);
		}
	}
	if (s->short_at > 0 && now >= s->short_at) {
		if (!shortp->present) {
			join(s, 4, 2001, "python3", 7, "/mprof.test/b.service", "bob", 30 * MIB);
			s->t.starts++;
		} else if (shortp->p.alive && now >= s->short_at + SHORT_LIFE_S) {
			set_rss(shortp, 31 * MIB);
			shortp->p.alive = false;
			shortp->p.end_t = epoch();
			shortp->p.oom_kills = 1;
			s->t.exits++;
			s->t.oom_kills++;
			s->short_at = 0;
		}
	}
	if (s->ticks % 100 == 0)
		s->t.records_lost++;
	count_tracked(s);
	return 0;
}

static int synth_window(void *ctx)
{
	struct synth *s = ctx;

	s->windows++;
	s->closed = true;
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &s->procs[i];

		if (!p->present)
			continue;
		if (!p->p.alive && p->reported) {
			p->present = false;
			continue;
		}
		if (!p->p.alive)
			p->reported = true;
		p->p.window_max = p->cur_wmax;
		p->cur_wmax = p->p.rss;
	}
	if (s->spike_after && s->windows == s->spike_after)
		s->spike_at = mono() + SPIKE_DELAY_S;
	if (s->short_after && s->windows == s->short_after)
		s->short_at = mono() + SPIKE_DELAY_S;
	count_tracked(s);
	return 0;
}

static void log_hex(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", (unsigned char)s[i]);
	fputc('"', f);
}

static int synth_each(void *ctx, mp_fleet_fn fn, void *fctx)
{
	struct synth *s = ctx;
	bool first = true;
	int err;

	if (s->log)
		fprintf(s->log,
			"{\"t\": %.6f, \"window\": %u, \"closed\": %s, \"totals\": {\"starts\": %" PRIu64
			", \"exits\": %" PRIu64 ", \"oom_kills\": %" PRIu64
			", \"records_lost\": %" PRIu64 ", \"procs_dropped\": %" PRIu64
			", \"tracked\": %" PRIu64 "}, \"rows\": [",
			epoch(), s->windows, s->closed ? "true" : "false", s->t.starts, s->t.exits,
			s->t.oom_kills, s->t.records_lost, s->t.procs_dropped, s->t.tracked);
	s->closed = false;
	/* alive first, as fleet.h says */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < NPROC; i++) {
			const struct proc *p = &s->procs[i];

			if (!p->present || p->p.alive != (pass == 0))
				continue;
			if (s->log) {
				fprintf(s->log, "%s{\"pid\": %d, \"comm\": ", first ? "" : ", ",
					(int)p->p.pid);
				log_hex(s->log, p->p.comm, strnlen(p->p.comm, MP_FLEET_COMM_LEN));
				fprintf(s->log, ", \"cgroup\": ");
				log_hex(s->log, p->p.cgroup, strlen(p->p.cgroup));
				fprintf(s->log, ", \"user\": ");
				log_hex(s->log, p->p.user, strlen(p->p.user));
				fprintf(s->log,
					", \"alive\": %s, \"rss\": %" PRIu64 ", \"peak\": %" PRIu64
					", \"window_max\": %" PRIu64 ", \"start_t\": %.6f"
					", \"oom_kills\": %u}",
					p->p.alive ? "true" : "false", p->p.rss, p->p.peak,
					p->p.window_max, p->p.start_t, p->p.oom_kills);
				first = false;
			}
			err = fn(fctx, &p->p);
			if (err)
				return err;
		}
	if (s->log) {
		fprintf(s->log, "]}\n");
		fflush(s->log);
	}
	return 0;
}

static void synth_totals(void *ctx, struct mp_fleet_totals *out)
{
	*out = ((struct synth *)ctx)->t;
}

/* ---- a backend with nothing to measure, and the table as the loop's sink ---------------- */

static int be_fd(struct mp_backend *b)
{
	(void)b;
	return -1;
}

static int be_consume(struct mp_backend *b, mp_event_fn fn, void *ctx)
{
	(void)b;
	(void)fn;
	(void)ctx;
	return 0;
}

static int be_refresh(struct mp_backend *b)
{
	(void)b;
	return 0;
}

struct table_sink {
	struct mp_sink sink;
	struct synth *s;
};

static int sink_event(struct mp_sink *k, const struct mp_sample *ev)
{
	(void)k;
	(void)ev;
	return 0;
}

static int sink_tick(struct mp_sink *k, struct mp_backend *be, double now)
{
	(void)be;
	(void)now;
	return synth_tick(((struct table_sink *)k)->s);
}

static int sink_finish(struct mp_sink *k, struct mp_backend *be)
{
	(void)k;
	(void)be;
	return 0;
}

/* The exporter's source, counting its wake-ups (a busy loop would show here). */
struct counted {
	struct mp_source src;
	struct mp_source *inner;
	unsigned long n;
};

static int counted_ready(struct mp_source *s)
{
	struct counted *c = (struct counted *)s;

	c->n++;
	return c->inner->ready(c->inner);
}

static int interrupted(void *ctx)
{
	(void)ctx;
	return stop != 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "group-by", required_argument, NULL, 'g' },
		{ "log", required_argument, NULL, 'L' },
		{ "duration", required_argument, NULL, 'd' },
		{ "conn-timeout", required_argument, NULL, 'c' },
		{ "spike-after", required_argument, NULL, 's' },
		{ "short-after", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	static const char weird_comm[] = "we\"ird\\\n\t\x01\xff\xc3(";
	struct synth s = { 0 };
	struct mp_exporter_opts eo = { .listen = "127.0.0.1:0" };
	struct mp_exporter_src src = { synth_each, synth_totals, synth_window, &s };
	struct mp_backend be = { .name = "synthetic", .method = "synthetic", .fd = be_fd,
				 .consume = be_consume, .refresh = be_refresh };
	struct table_sink ts = { { sink_event, sink_tick, sink_finish }, &s };
	struct mp_sink *sinks[] = { &ts.sink };
	struct mp_exporter *e = NULL;
	struct mp_exporter_stats st;
	struct mp_loop_result res;
	struct counted counted = { { -1, counted_ready }, NULL, 0 };
	struct mp_source *sources[1];
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, old;
	double duration = 60;
	const char *why = NULL;
	int opt, err;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			eo.listen = optarg;
			break;
		case 'g':
			if (mp_exporter__parse_group(optarg, &eo.group_by)) {
				fprintf(stderr, "synth_exporter: bad --group-by %s\n", optarg);
				return 2;
			}
			break;
		case 'L':
			s.log = fopen(optarg, "w");
			if (!s.log) {
				perror(optarg);
				return 1;
			}
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'c':
			eo.conn_timeout_s = (unsigned int)atoi(optarg);
			break;
		case 's':
			s.spike_after = (unsigned int)atoi(optarg);
			break;
		case 'S':
			s.short_after = (unsigned int)atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	join(&s, 0, 1001, "python3", 7, "/mprof.test/a.service", "alice", 100 * MIB);
	join(&s, 1, 1002, "python3", 7, "/mprof.test/b.service", "bob", 20 * MIB);
	join(&s, 2, 1003, weird_comm, sizeof(weird_comm) - 1, "/we\"ird\\path\n", "1003",
	     7 * MIB);
	join(&s, 3, 1004, "spiker", 6, "/mprof.test/a.service", "alice", 50 * MIB);
	s.t.procs_dropped = 2;
	count_tracked(&s);

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &old) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGINT, &sa, NULL)) {
		perror("signals");
		return 1;
	}
	sigdelset(&old, SIGTERM);
	sigdelset(&old, SIGINT);

	err = mp_exporter__new(&e, &src, &eo, &why);
	if (err) {
		fprintf(stderr, "synth_exporter: %s: %s\n", eo.listen, why);
		return 1;
	}
	counted.inner = mp_exporter__source(e);
	counted.src.fd = counted.inner->fd;
	sources[0] = &counted.src;
	printf("port %d\n", mp_exporter__port(e));
	fflush(stdout);

	err = mp_loop__run(&be, sinks, 1,
			   &(struct mp_loop_opts){ .interval = TICK_S, .timeout = duration,
						   .func_fd = -1, .sources = sources,
						   .nsources = 1, .sigmask = &old,
						   .interrupted = interrupted },
			   &res);
	mp_exporter__stats(e, &st);
	printf("stats requests=%" PRIu64 " scrapes=%" PRIu64 " errors=%" PRIu64
	       " wakeups=%lu ticks=%" PRIu64 "\n",
	       st.requests, st.scrapes, st.errors, counted.n, s.ticks);
	mp_exporter__free(e);
	if (s.log)
		fclose(s.log);
	if (err) {
		fprintf(stderr, "synth_exporter: loop: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
