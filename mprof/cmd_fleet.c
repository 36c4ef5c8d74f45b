/*
 * mprof fleet: follow every process the selectors choose, as they start and exit, with the
 * kernel deciding at fork and exec who joins, and show, export or record them.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "backend.h"
#include "dat.h"
#include "exporter.h"
#include "fleet.h"
#include "live.h"
#include "lines_out.h"
#include "loop.h"
#include "mprof.h"
#include "procinfo.h"
#include "record.h"
#include "spawn.h"

#define CGROUP2_MAGIC 0x63677270 /* linux/magic.h CGROUP2_SUPER_MAGIC */
#define MAX_PIDS 4096

struct fleet_opts {
	struct rec_opts rec;
	struct mp_selectors sel;
	pid_t pids[MAX_PIDS];
	const char *out_dir;
	const char *listen;
	const char *group_by;
	double duration;
	int plain, quiet;
	unsigned int max_procs;
	char cgroup_root[PATH_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mprof fleet SELECTORS [options]\n"
		"\n"
		"Follow every process the selectors choose, those running now and those that start\n"
		"later (the kernel decides at fork and exec), until --duration or Ctrl-C.\n"
		"\n"
		"selectors (a process must match every one given):\n"
		"  --pid LIST             these processes (comma-separated) and their descendants\n"
		"  --name SUBSTR          processes whose name (comm) contains SUBSTR\n"
		"  --cgroup PATH          processes in this cgroup v2 or below it\n"
		"  --user USER            processes running as USER (name or uid)\n"
		"  --all                  every process\n"
		"\n"
		"outputs:\n"
		"  (default)              a live table on a terminal, else one line per process\n"
		"                         per interval\n"
		"  --plain                one line per process per interval, even on a terminal\n"
		"  -q, --quiet            neither\n"
		"  -o, --output DIR       one memory_profiler .dat per process in DIR\n"
		"  --listen HOST:PORT     Prometheus metrics at http://HOST:PORT/metrics\n"
		"  --group-by KEY         metrics per pid (default), comm, cgroup or user\n"
		"\n"
		"options:\n"
		"  -T, --interval SEC     refresh period, from 0.001 to 86400 (default 1)\n"
		"  --duration SEC         stop after SEC seconds (default: until Ctrl-C)\n"
		"  --max-procs N          processes the kernel table holds (default 16384)\n"
		"  --granularity MIB      smallest swing recorded in the files between ticks\n"
		"  --ringbuf-kib N        kernel ring buffer size, KiB\n"
		"  --stats                print the backend's counters at the end\n"
		"  -h, --help             show this help message and exit\n"
		"\n"
		"line attribution, for the Python processes (tables at the end; with -o DIR their\n"
		"LINE/STACK records go to each process's .dat):\n"
		"%s",
		rec_lines_help);
}

enum {
	OPT_PID = 256,
	OPT_NAME,
	OPT_CGROUP,
	OPT_USER,
	OPT_ALL,
	OPT_LISTEN,
	OPT_GROUP_BY,
	OPT_DURATION,
	OPT_PLAIN,
	OPT_MAXPROCS,
};

static int parse_pids(struct fleet_opts *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int err = 0;

	if (!copy) {
		p_err("out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		char *end, comm[32];
		long v;

		errno = 0;
		v = strtol(tok, &end, 10);
		if (errno || end == tok || *end || v <= 0 || v > 4194304) {
			p_err("invalid pid '%s' in --pid", tok);
			err = -1;
		} else if (mp_proc_comm((pid_t)v, comm, sizeof(comm))) {
			p_err("no process with pid %ld", v);
			err = -1;
		} else if (o->sel.npids == MAX_PIDS) {
			p_err("--pid takes at most %d pids", MAX_PIDS);
			err = -1;
		} else {
			o->pids[o->sel.npids++] = (pid_t)v;
		}
	}
	free(copy);
	if (!err && !o->sel.npids) {
		p_err("--pid needs at least one pid");
		err = -1;
	}
	return err;
}

/*
 * --cgroup: a path of the cgroup v2 hierarchy, absolute (/sys/fs/cgroup/x) or as
 * /proc/PID/cgroup shows it (/x, or x).
 */
static int parse_cgroup(struct fleet_opts *o, const char *arg)
{
	char path[PATH_MAX * 2];
	const char *rel;
	struct statfs sf;
	struct stat st;
	unsigned int level = 0;
	size_t rl;

	if (mp_cgroup2_root(o->cgroup_root, sizeof(o->cgroup_root)) ||
	    statfs(o->cgroup_root, &sf) || sf.f_type != CGROUP2_MAGIC) {
		p_err("--cgroup needs the cgroup v2 hierarchy, and none is mounted");
		return -1;
	}
	rl = strlen(o->cgroup_root);
	if (!strncmp(arg, o->cgroup_root, rl) && (arg[rl] == '/' || !arg[rl]))
		rel = arg + rl;
	else
		rel = arg;
	while (*rel == '/')
		rel++;
	snprintf(path, sizeof(path), "%s/%s", o->cgroup_root, rel);
	if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
		p_err("no cgroup '%s' (looked for %s)", arg, path);
		return -1;
	}
	for (const char *p = rel; *p; p++)
		if (*p != '/' && (p == rel || p[-1] == '/'))
			level++; /* one per path component */
	o->sel.cgroup_id = (uint64_t)st.st_ino;
	o->sel.cgroup_level = level;
	return 0;
}

static int parse_user(struct fleet_opts *o, const char *arg)
{
	struct passwd *pw = getpwnam(arg);
	char *end;
	unsigned long v;

	if (pw) {
		o->sel.uid = pw->pw_uid;
		return 0;
	}
	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || v > UINT_MAX - 1 || arg[0] == '-') {
		p_err("no user '%s'", arg);
		return -1;
	}
	o->sel.uid = (uid_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct fleet_opts *o)
{
	static const struct option longs[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "pid", required_argument, NULL, OPT_PID },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "user", required_argument, NULL, OPT_USER },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "interval", required_argument, NULL, 'T' },
		{ "output", required_argument, NULL, 'O' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "group-by", required_argument, NULL, OPT_GROUP_BY },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "plain", no_argument, NULL, OPT_PLAIN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "max-procs", required_argument, NULL, OPT_MAXPROCS },
		{ "granularity", required_argument, NULL, REC_OPT_GRAN },
		{ "ringbuf-kib", required_argument, NULL, REC_OPT_RINGBUF },
		{ "stats", no_argument, NULL, REC_OPT_STATS },
		REC_LINES_LONGOPTS,
		{ 0 },
	};
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hT:o:q", longs, NULL)) != -1) {
		if (c == 'o')
			c = 'O';
		if (c == 'T' || c == REC_OPT_GRAN || c == REC_OPT_RINGBUF || c == REC_OPT_STATS ||
		    c == REC_OPT_LINES || c == REC_OPT_TOP || c == REC_OPT_STACKS ||
		    c == REC_OPT_SPEEDSCOPE || c == REC_OPT_PPROF) {
			r = rec_opt(&o->rec, c, optarg);
			if (r < 0)
				return -2;
			continue;
		}
		switch (c) {
		case 'h':
			usage(stdout);
			return -1;
		case OPT_PID:
			o->sel.flags |= MP_SEL_PID;
			if (parse_pids(o, optarg))
				return -2;
			break;
		case OPT_NAME:
			if (!*optarg || strlen(optarg) >= MP_COMM_LEN) {
				p_err("invalid --name '%s': from 1 to 15 bytes (a process name, comm, "
				      "is at most 15)",
				      optarg);
				return -2;
			}
			o->sel.flags |= MP_SEL_NAME;
			snprintf(o->sel.name, sizeof(o->sel.name), "%s", optarg);
			break;
		case OPT_CGROUP:
			o->sel.flags |= MP_SEL_CGROUP;
			if (parse_cgroup(o, optarg))
				return -2;
			break;
		case OPT_USER:
			o->sel.flags |= MP_SEL_USER;
			if (parse_user(o, optarg))
				return -2;
			break;
		case OPT_ALL:
			o->sel.flags |= MP_SEL_ALL;
			break;
		case 'O':
			o->out_dir = optarg;
			break;
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_GROUP_BY:
			if (strcmp(optarg, "pid") && strcmp(optarg, "comm") &&
			    strcmp(optarg, "cgroup") && strcmp(optarg, "user")) {
				p_err("invalid --group-by '%s': expected pid, comm, cgroup or user",
				      optarg);
				return -2;
			}
			o->group_by = optarg;
			break;
		case OPT_DURATION: {
			char *end;

			errno = 0;
			o->duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->duration > 0) ||
			    o->duration > REC_TIMEOUT_MAX) {
				p_err("invalid duration '%s': expected seconds above 0, at most "
				      "31536000",
				      optarg);
				return -2;
			}
			break;
		}
		case OPT_PLAIN:
			o->plain = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case OPT_MAXPROCS: {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v < 1 ||
			    v > 1u << 22) {
				p_err("invalid --max-procs '%s': expected 1 to 4194304", optarg);
				return -2;
			}
			o->max_procs = (unsigned int)v;
			break;
		}
		case ':':
			p_err("option '%s' needs a value", argv[optind - 1]);
			return -2;
		default:
			p_err("unknown option '%s' (see mprof fleet --help)", argv[optind - 1]);
			return -2;
		}
	}
	if (optind < argc) {
		p_err("unexpected argument '%s' (see mprof fleet --help)", argv[optind]);
		return -2;
	}
	if (!o->sel.flags) {
		p_err("choose processes with --pid, --name, --cgroup, --user or --all (see mprof "
		      "fleet --help)");
		return -2;
	}
	if (rec_opts_check(&o->rec))
		return -2;
	return 0;
}

/* ---- the outputs' view of the table -------------------------------------------------------- */

static int fleet_each(void *ctx, mp_fleet_fn fn, void *fctx)
{
	return mp_fleet__each(ctx, fn, fctx);
}

static void fleet_totals(void *ctx, struct mp_fleet_totals *out)
{
	mp_fleet__totals(ctx, out);
}

static int fleet_window(void *ctx)
{
	return mp_fleet__window(ctx);
}

/* ---- the command -------------------------------------------------------------------------- */

static int add_initial(void *ctx, pid_t pid)
{
	void **a = ctx;

	return mp_fleet__add_initial(a[0], a[1], pid);
}

/* -o DIR: each process's file, for its line records at the end (a pid's last file). */
struct files {
	const struct mp_cred *cred;
	struct file_of {
		pid_t pid;
		char *path;
	} *f;
	size_t n;
};

static int open_as_user(void *ctx, pid_t pid, const char *path, struct mp_dat **out,
			int *created)
{
	struct files *fs = ctx;
	int err = rec_open_output(path, fs->cred, out, created);
	struct file_of *nf;
	char *copy;

	if (err || !*created)
		return err;
	copy = strdup(path);
	nf = copy ? realloc(fs->f, (fs->n + 1) * sizeof(*nf)) : NULL;
	if (!nf) {
		free(copy);
		return 0; /* the file is fine; only its line records will be missing */
	}
	fs->f = nf;
	nf[fs->n].pid = pid;
	nf[fs->n].path = copy;
	fs->n++;
	return 0;
}

/* The LINE/STACK records of every attributed process into its file. */
static void lines_to_files(const struct files *fs, struct rec_lines *rl)
{
	unsigned long failed = 0;
	int first = 0;

	for (size_t i = 0; i < fs->n; i++) {
		struct mp_dat *d = NULL;
		int created, err;

		/* a later file of the same pid (reused) takes its records */
		bool later = false;

		for (size_t j = i + 1; j < fs->n; j++)
			later = later || fs->f[j].pid == fs->f[i].pid;
		if (later)
			continue;
		err = rec_open_output(fs->f[i].path, fs->cred, &d, &created);
		if (!err)
			err = rec_lines__write_dat(rl, fs->f[i].pid, d);
		if (d) {
			int err2 = mp_dat__close(d);

			err = err ? err : err2;
		}
		if (err && !failed++)
			first = err;
	}
	if (failed)
		p_info("--lines: the line records of %lu processes could not be written: %s", failed,
		       strerror(-first));
}

/* --lines: the processes found running at the start. */
static int lines_initial(void *ctx, const struct mp_fleet_proc *p)
{
	return p->alive ? rec_lines__target(ctx, p->pid, 0) : 0;
}

static int stop_on_signal(void *ctx)
{
	int tty;

	(void)ctx;
	return rec_pending_signal(&tty) != 0;
}

/* Every process may get a file: as many descriptors as the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int do_fleet(int argc, char **argv)
{
	struct fleet_opts o = { 0 };
	struct mp_cred cred = { 0 };
	struct mp_backend *be = NULL;
	struct mp_fleet *fleet = NULL;
	struct mp_live *live = NULL;
	struct mp_exporter *exp = NULL;
	struct rec_lines *rl = NULL;
	struct files files = { 0 };
	struct mp_sink *sinks[3];
	struct mp_source *sources[MP_LOOP_MAX_SOURCES];
	struct mp_loop_result res;
	size_t nsinks = 0, nsources = 0;
	sigset_t waitmask;
	const char *why = NULL;
	int err, ret = 1;

	rec_opts_init(&o.rec);
	o.rec.interval = 1.0;
	err = parse_args(argc, argv, &o);
	if (err == -1)
		return 0;
	if (err)
		return 2;
	o.sel.pids = o.pids;
	if (!o.cgroup_root[0] && mp_cgroup2_root(o.cgroup_root, sizeof(o.cgroup_root)))
		o.cgroup_root[0] = 0; /* no cgroup v2: paths stay unknown */
	if (o.group_by && !o.listen) {
		p_err("--group-by is for the metrics: use it with --listen");
		return 2;
	}
	if (mp_cred__from_sudo(&cred)) {
		p_err("invalid SUDO_UID/SUDO_GID in the environment");
		return 1;
	}
	files.cred = &cred;
	if (o.out_dir) {
		struct stat st;

		if (stat(o.out_dir, &st) || !S_ISDIR(st.st_mode)) {
			p_err("no folder '%s' for the output", o.out_dir);
			goto cleanup;
		}
		raise_fd_limit();
	}
	err = rec_signals(&waitmask);
	if (err) {
		p_err("cannot install signal handlers: %s", strerror(-err));
		goto cleanup;
	}
	{
		struct mp_backend_opts bo = {
			.granularity_mib = o.rec.granularity,
			.ringbuf_kib = o.rec.ringbuf_kib,
			.max_procs = o.max_procs,
			.fleet = &o.sel,
			.window = o.listen != NULL,
			.lines = o.rec.lines,
		};
		const char *floor = getenv("MPROF_BENCH_FLOOR");

		/* bench/bench_fleet.py: the same object with an empty rss_stat program */
		bo.floor = floor && !strcmp(floor, "1");
		err = mp_backend_kernel__new(&be, &bo, &why);
		if (err) {
			p_err("mprof fleet needs the kernel backend: %s", why ? why : strerror(-err));
			goto cleanup;
		}
	}
	{
		struct mp_fleet_opts fo = {
			.out_dir = o.out_dir,
			.hold = o.rec.interval > 0.05 ? o.rec.interval : 0.05,
			.open_file = open_as_user,
			.open_ctx = &files,
			.exporter = o.listen != NULL,
			.cgroup_root = o.cgroup_root[0] ? o.cgroup_root : NULL,
		};

		err = mp_fleet__new(&fleet, &fo);
		if (err) {
			p_err("out of memory");
			goto cleanup;
		}
	}
	{
		void *a[2] = { fleet, be };

		err = be->discover(be, add_initial, a);
		if (!err)
			err = mp_fleet__resolve_parents(fleet);
		if (err) {
			p_err("cannot list the running processes: %s", strerror(-err));
			goto cleanup;
		}
	}
	sinks[nsinks++] = mp_fleet__sink(fleet);
	if (o.rec.lines) {
		if (rec_lines__new(&rl, &o.rec, be, &cred, true))
			goto cleanup;
		err = mp_fleet__each(fleet, lines_initial, rl);
		if (err) {
			p_err("cannot set up --lines: %s", strerror(-err));
			goto cleanup;
		}
		sinks[nsinks++] = rec_lines__sink(rl);
		rec_lines__sources(rl, sources, &nsources);
	}
	if (o.listen) {
		struct mp_exporter_src src = { fleet_each, fleet_totals, fleet_window, fleet };
		struct mp_exporter_opts eo = { .listen = o.listen };

		if (o.group_by && mp_exporter__parse_group(o.group_by, &eo.group_by)) {
			p_err("invalid --group-by '%s'", o.group_by);
			goto cleanup;
		}
		err = mp_exporter__new(&exp, &src, &eo, &why);
		if (err) {
			p_err("cannot listen on '%s': %s", o.listen, why ? why : strerror(-err));
			goto cleanup;
		}
		sources[nsources++] = mp_exporter__source(exp);
		p_info("metrics on port %d: /metrics", mp_exporter__port(exp));
	}
	if (!o.quiet) {
		struct mp_live_opts vo = {
			.src = { fleet_each, fleet_totals, fleet },
			.mode = o.plain ? MP_LIVE_LINES : MP_LIVE_AUTO,
			.start = mp_clock__now_epoch(),
		};

		err = mp_live__new(&live, &vo);
		if (err) {
			p_err("cannot start the live view: %s", strerror(-err));
			goto cleanup;
		}
		sinks[nsinks++] = mp_live__sink(live);
		sources[nsources++] = mp_live__source(live);
	}
	{
		struct mp_loop_opts lo = {
			.interval = o.rec.interval,
			.timeout = o.duration,
			.func_fd = -1,
			.sources = sources,
			.nsources = nsources,
			.sigmask = &waitmask,
			.interrupted = stop_on_signal,
		};

		err = mp_loop__run(be, sinks, nsinks, &lo, &res);
	}
	/* the terminal back before anything is printed */
	mp_live__free(live);
	live = NULL;
	if (err) {
		p_err(err == -EPIPE ? "the output was closed: %s" : "recording failed: %s",
		      strerror(-err));
		goto cleanup;
	}
	{
		struct mp_fleet_totals t;
		int ferr;
		uint64_t nf = mp_fleet__files_failed(fleet, &ferr);

		mp_fleet__totals(fleet, &t);
		if (t.procs_dropped)
			p_info("%llu matching processes were not followed: the kernel's process table "
			       "is full (--max-procs)",
			       (unsigned long long)t.procs_dropped);
		if (t.records_lost)
			p_info("%llu kernel records were lost (ring buffer full)",
			       (unsigned long long)t.records_lost);
		if (nf)
			p_info("%llu per-process files could not be written: %s",
			       (unsigned long long)nf, strerror(-ferr));
		if (exp) {
			struct mp_exporter_stats es;

			mp_exporter__stats(exp, &es);
			if (o.rec.stats)
				p_info("metrics: %llu requests, %llu scrapes, %llu errors",
				       (unsigned long long)es.requests,
				       (unsigned long long)es.scrapes,
				       (unsigned long long)es.errors);
		}
		if (o.rec.stats)
			p_info("fleet: %llu started, %llu exited, %llu OOM kills, %llu followed at "
			       "the end",
			       (unsigned long long)t.starts, (unsigned long long)t.exits,
			       (unsigned long long)t.oom_kills, (unsigned long long)t.tracked);
	}
	if (rl) {
		if (rec_lines__report(rl, NULL))
			goto cleanup;
		lines_to_files(&files, rl);
	}
	ret = 0;
cleanup:
	mp_live__free(live);
	rec_lines__free(rl);
	for (size_t i = 0; i < files.n; i++)
		free(files.f[i].path);
	free(files.f);
	mp_exporter__free(exp);
	mp_fleet__free(fleet);
	if (be)
		be->free(be);
	mp_cred__release(&cred);
	return ret;
}
