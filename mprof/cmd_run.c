/*
 * mprof run: run a command and record its memory over time in a memory_profiler .dat file,
 * measured by the kernel backend (BPF) or, where BPF cannot be used, by polling /proc.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "backend.h"
#include "dat.h"
#include "event.h"
#include "recorder.h"
#include "spawn.h"
#include "mprof.h"

struct run_opts {
	double interval;
	double timeout; /* seconds, 0: none */
	int python, nopython, include_children, multiprocess, exit_code;
	const char *output;
	const char *backend;
	double granularity;
	int force_tracepoint;
	int stats;
	unsigned int ringbuf_kib;
};

static volatile sig_atomic_t pending_sig;
static volatile sig_atomic_t pending_sig_from_tty;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	pending_sig = sig;
	/* a terminal's ^C reaches the whole foreground group, the target included */
	pending_sig_from_tty = si && si->si_code == SI_KERNEL;
}

static void on_sigchld(int sig)
{
	(void)sig; /* only here to cut the wait short */
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mprof run [options] COMMAND [ARGS...]\n"
		"\n"
		"Run COMMAND and record its memory usage over time in a .dat file.\n"
		"\n"
		"options:\n"
		"  -h, --help             show this help message and exit\n"
		"  --version              show program's version number and exit\n"
		"  --python               activates extra features when the profiling executable is a\n"
		"                         Python program (currently: function timestamping)\n"
		"  --nopython             disables extra features when the profiled executable is a\n"
		"                         Python program (currently: function timestamping)\n"
		"  -T, --interval SEC     sampling period (in seconds), defaults to 0.1\n"
		"  -C, --include-children\n"
		"                         monitors forked processes as well (sum up all process memory)\n"
		"  -M, --multiprocess     monitors forked processes creating individual plots for each\n"
		"                         child (disables --python features)\n"
		"  -E, --exit-code        propagate the exit code\n"
		"  -t, --timeout SEC      timeout in seconds for the profiling, default new process has\n"
		"                         no timeout\n"
		"  -o, --output FILE      save to file instead of mprofile_<YYYYMMDDhhmmss>.dat\n"
		"  --backend NAME         kernel (default: BPF, every peak) or proc (polling /proc);\n"
		"                         memory_profiler's psutil and posix mean proc\n"
		"  --granularity MIB      smallest swing recorded between ticks (default 1 MiB)\n"
		"  --rss-tracepoint       kernel backend: use the classic rss_stat tracepoint\n"
		"  --stats                print what the backend measured with, and its counters\n"
		"  --ringbuf-kib N        kernel backend: ring buffer size (default 4096 KiB)\n");
}

static int parse_seconds(const char *s, double *out, int allow_zero)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*out) || *out < 0 || (!allow_zero && *out == 0))
		return -EINVAL;
	return 0;
}

enum { OPT_PYTHON = 256, OPT_NOPYTHON, OPT_BACKEND, OPT_VERSION, OPT_GRAN, OPT_TP, OPT_STATS,
       OPT_RINGBUF };

/* Returns the index of COMMAND in argv, -1 after printing help (exit 0), -2 on a bad option. */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
	static const struct option longs[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "python", no_argument, NULL, OPT_PYTHON },
		{ "nopython", no_argument, NULL, OPT_NOPYTHON },
		{ "interval", required_argument, NULL, 'T' },
		{ "include-children", no_argument, NULL, 'C' },
		{ "multiprocess", no_argument, NULL, 'M' },
		{ "exit-code", no_argument, NULL, 'E' },
		{ "timeout", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "attach", no_argument, NULL, 'a' },
		{ "granularity", required_argument, NULL, OPT_GRAN },
		{ "rss-tracepoint", no_argument, NULL, OPT_TP },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "ringbuf-kib", required_argument, NULL, OPT_RINGBUF },
		{ 0 },
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+hT:CMEt:o:a", longs, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return -1;
		case OPT_VERSION:
			printf("mprof-bpf 0.1.0\n");
			return -1;
		case OPT_PYTHON:
			o->python = 1;
			break;
		case OPT_NOPYTHON:
			o->nopython = 1;
			break;
		case 'T':
			if (parse_seconds(optarg, &o->interval, 0)) {
				p_err("invalid interval '%s': expected a positive number of seconds",
				      optarg);
				return -2;
			}
			break;
		case 'C':
			o->include_children = 1;
			break;
		case 'M':
			o->multiprocess = 1;
			break;
		case 'E':
			o->exit_code = 1;
			break;
		case 't':
			if (parse_seconds(optarg, &o->timeout, 0)) {
				p_err("invalid timeout '%s': expected a positive number of seconds",
				      optarg);
				return -2;
			}
			break;
		case 'o':
			o->output = optarg;
			break;
		case OPT_BACKEND:
			o->backend = optarg;
			break;
		case 'a':
			p_err("run --attach is not available yet: it comes with the attach command");
			return -2;
		case OPT_GRAN:
			if (parse_seconds(optarg, &o->granularity, 0)) {
				p_err("invalid granularity '%s': expected a positive number of MiB",
				      optarg);
				return -2;
			}
			break;
		case OPT_TP:
			o->force_tracepoint = 1;
			break;
		case OPT_STATS:
			o->stats = 1;
			break;
		case OPT_RINGBUF: {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			/* the kernel wants a power-of-2 multiple of the page size */
			if (errno || end == optarg || *end || v < 4 || v > (1ul << 20) || (v & (v - 1))) {
				p_err("invalid ring buffer size '%s': expected a power of 2 KiB from 4 "
				      "to 1048576", optarg);
				return -2;
			}
			o->ringbuf_kib = v;
			break;
		}
		case ':':
			p_err("option '%s' needs a value", argv[optind - 1]);
			return -2;
		default:
			p_err("unknown option '%s' (see mprof run --help)", argv[optind - 1]);
			return -2;
		}
	}
	if (optind >= argc) {
		p_err("a command to run must be provided (see mprof run --help)");
		return -2;
	}
	return optind;
}

/* Is @path a Python interpreter ("python", "python3.12", "/usr/bin/python3")? */
static int is_python(const char *path)
{
	const char *base = strrchr(path, '/');

	return !strncmp(base ? base + 1 : path, "python", 6);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * The folder holding our memory_profiler package (the CPython hook): next to the binary in a
 * build tree, or <prefix>/lib/mprof-bpf/python when installed. NULL if absent.
 */
static char *hook_dir(void)
{
	static const char *const rel[] = { "python", "../lib/mprof-bpf/python" };
	char exe[PATH_MAX], *slash, *dir, *probe;

	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return NULL;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		if (asprintf(&dir, "%s/%s", exe, rel[i]) < 0)
			return NULL;
		if (asprintf(&probe, "%s/memory_profiler/__init__.py", dir) < 0) {
			free(dir);
			return NULL;
		}
		if (!access(probe, R_OK)) {
			free(probe);
			return dir;
		}
		free(probe);
		free(dir);
	}
	return NULL;
}

/* memory_profiler's default name: mprofile_YYYYmmddHHMMSS.dat in the current folder. */
static void default_output(char *buf, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(buf, n, "mprofile_%Y%m%d%H%M%S.dat", &tm);
}

static int open_output(const char *path, const struct mp_cred *cred, struct mp_dat **out)
{
	int err, err2;

	err = mp_cred__enter(cred);
	if (err)
		return err;
	err = mp_dat__open(out, path);
	err2 = mp_cred__leave(cred);
	if (err2) {
		mp_dat__close(*out);
		*out = NULL;
		return err2;
	}
	return err;
}

static int setup_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { 0 };

	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: a signal must cut the wait short */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL))
			return -errno;
	/* a closed terminal or pipe must not kill the recorder: the file is what matters */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL))
		return -errno;
	return 0;
}

/* MPROF_DEBUG_LIBBPF=1: libbpf's messages (verifier logs included) on stderr. */
static int libbpf_to_stderr(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	return vfprintf(stderr, fmt, ap);
}

static int choose_backend(const struct run_opts *o, struct mp_backend **out)
{
	struct mp_backend_opts bo = {
		.granularity_mib = o->granularity,
		.ringbuf_kib = o->ringbuf_kib,
		.include_children = o->include_children,
		.multiprocess = o->multiprocess,
		.force_tracepoint = o->force_tracepoint,
	};
	const char *dbg = getenv("MPROF_DEBUG_LIBBPF");
	const char *why = NULL;
	int err;

	if (dbg && *dbg && strcmp(dbg, "0"))
		bo.libbpf_log = libbpf_to_stderr;
	if (!o->backend || !strcmp(o->backend, "kernel")) {
		err = mp_backend_kernel__new(out, &bo, &why);
		if (!err)
			return 0;
		if (o->backend) {
			p_err("kernel backend unavailable: %s", why ? why : strerror(-err));
			return err;
		}
		p_info("kernel backend unavailable (%s): polling /proc every %gs instead, "
		       "peaks between samples can be missed",
		       why ? why : strerror(-err), o->interval);
	} else if (!strcmp(o->backend, "psutil_pss") || !strcmp(o->backend, "psutil_uss")) {
		/* shares and ownership of pages need smaps' page walk: the kernel backend counts RSS */
		bo.metric = !strcmp(o->backend, "psutil_pss") ? MP_METRIC_PSS : MP_METRIC_USS;
		p_info("the kernel backend measures RSS only: polling /proc/PID/smaps_rollup for %s "
		       "every %gs, peaks between samples can be missed",
		       bo.metric == MP_METRIC_PSS ? "PSS" : "USS", o->interval);
	} else if (!strcmp(o->backend, "tracemalloc")) {
		p_err("backend 'tracemalloc' measures the Python heap from inside the program: use "
		      "python -m memory_profiler --backend tracemalloc SCRIPT");
		return -EINVAL;
	} else if (strcmp(o->backend, "proc") && strcmp(o->backend, "psutil") &&
		   strcmp(o->backend, "posix")) {
		p_err("unknown backend '%s': expected kernel, proc, psutil_pss or psutil_uss (psutil "
		      "and posix mean proc)", o->backend);
		return -EINVAL;
	}
	err = mp_backend_proc__new(out, &bo);
	if (err)
		p_err("cannot set up the /proc backend: %s", strerror(-err));
	return err;
}

static double mono_now(void)
{
	return mp_clock__now_mono_ns() / 1e9;
}

/* Report how the target ended; returns the status mprof should exit with under -E. */
static int report_status(int status)
{
	if (WIFSIGNALED(status)) {
		p_info("the command was killed by signal %d (%s)", WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status)) {
		p_info("the command exited with status %d", WEXITSTATUS(status));
		return WEXITSTATUS(status);
	}
	return 0;
}

/* The sampling loop. Returns 0 or -errno; *@status gets the target's wait status, or -1. */
static int record(const struct run_opts *o, struct mp_backend *be, struct mp_recorder *rec,
		  pid_t pid, int *status)
{
	double start = mono_now(), next_tick = start;
	double hold = o->interval > 0.05 ? o->interval : 0.05;
	int err = 0, reaped = 0;

	*status = -1;
	for (;;) {
		double now;
		int ms;

		if (pending_sig) {
			int sig = pending_sig;

			pending_sig = 0;
			if (!pending_sig_from_tty)
				kill(pid, sig);
		}
		if (!reaped) {
			pid_t w = waitpid(pid, status, WNOHANG);

			if (w == pid)
				reaped = 1;
			else if (w < 0 && errno != EINTR)
				return -errno;
		}
		if (reaped)
			break;
		now = mono_now();
		if (o->timeout > 0 && now - start >= o->timeout)
			break;
		if (now >= next_tick) {
			err = be->tick(be, pid, 0, rec);
			/* hold back one interval: turning points are reported after the fact */
			if (!err)
				err = mp_recorder__flush(rec, mp_clock__now_epoch() - hold);
			if (err)
				return err;
			next_tick += o->interval;
			if (next_tick <= now)
				next_tick = now + o->interval;
		}
		ms = (int)ceil((next_tick - mono_now()) * 1000.0);
		if (ms < 0)
			ms = 0;
		err = be->wait(be, ms, rec);
		if (err)
			return err;
	}
	err = be->finish(be, pid, 0, rec);
	if (!err)
		err = mp_recorder__flush(rec, INFINITY);
	return err;
}

/* What runs: the command as shown in CMDLINE, and what is exec'd (Python mode splices in). */
struct command {
	char **shown; /* "<python> script.py" for scripts, as memory_profiler records it */
	int nshown;
	char **exec;  /* shown, or "<python> -m memory_profiler --timestamp -o FILE script.py" */
	char *hook;   /* our memory_profiler package's folder, when the child uses it */
	int python;   /* Python mode: FUNC lines */
};

static void command_release(struct command *c)
{
	free(c->shown);
	free(c->exec);
	free(c->hook);
}

/*
 * Build what to run from the user's @argv (@argc words). memory_profiler's rules: "script.py"
 * runs as "<python> script.py"; Python mode (a .py without --nopython or -M, or --python) runs
 * our memory_profiler --timestamp, which appends FUNC lines to @output. "python -m
 * memory_profiler ..." runs as given, with our package and the kernel page. Returns 0 or -ENOMEM.
 */
static int build_command(const struct run_opts *o, char **argv, int argc, const char *output,
			 struct command *c)
{
	int n = 0;

	c->python = (o->python || (ends_with(argv[0], ".py") && !o->nopython)) && !o->multiprocess;
	c->shown = calloc(argc + 2, sizeof(*c->shown));
	c->exec = calloc(argc + 10, sizeof(*c->exec));
	if (!c->shown || !c->exec)
		return -ENOMEM;
	if (ends_with(argv[0], ".py") && !is_python(argv[0])) {
		const char *py = getenv("MPROF_PYTHON");

		c->shown[0] = (char *)(py && *py ? py : "python3");
		memcpy(c->shown + 1, argv, argc * sizeof(*argv));
		c->nshown = argc + 1;
	} else {
		memcpy(c->shown, argv, argc * sizeof(*argv));
		c->nshown = argc;
	}
	if (is_python(c->shown[0]) && c->nshown > 2 && !strcmp(c->shown[1], "-m") &&
	    !strcmp(c->shown[2], "memory_profiler")) {
		c->hook = hook_dir(); /* line reports, exact through the kernel page */
		c->python = 0;
	} else if (c->python && is_python(c->shown[0]) && c->nshown > 1) {
		c->hook = hook_dir();
		if (c->hook) {
			c->exec[n++] = c->shown[0];
			c->exec[n++] = "-m";
			c->exec[n++] = "memory_profiler";
			c->exec[n++] = "--timestamp";
			c->exec[n++] = "-o";
			c->exec[n++] = (char *)output;
			if (o->include_children)
				c->exec[n++] = "--include-children";
			memcpy(c->exec + n, c->shown + 1, (c->nshown - 1) * sizeof(*argv));
			n += c->nshown - 1;
		}
	}
	if (!n)
		memcpy(c->exec, c->shown, c->nshown * sizeof(*argv));
	return 0;
}

int do_run(int argc, char **argv)
{
	struct run_opts o = { .interval = 0.1, .granularity = 1.0 };
	struct mp_cred cred = { 0 };
	struct mp_backend *be = NULL;
	struct mp_recorder *rec = NULL;
	struct mp_dat *dat = NULL;
	struct mp_child child = { .pid = -1, .go_fd = -1, .err_fd = -1 };
	struct command c = { 0 };
	char **cmd, defname[64];
	const char *output = NULL, *release_env = NULL;
	int idx, ncmd, err, status = -1, ret = 1;

	idx = parse_args(argc, argv, &o);
	if (idx == -1)
		return 0;
	if (idx < 0)
		return 2;

	output = o.output;
	if (!output) {
		default_output(defname, sizeof(defname));
		output = defname;
	}
	err = build_command(&o, argv + idx, argc - idx, output, &c);
	if (err) {
		p_err("out of memory");
		goto cleanup;
	}
	cmd = c.shown;
	ncmd = c.nshown;

	err = mp_find_command(cmd[0]);
	if (err) {
		p_err("cannot run '%s': %s", cmd[0], strerror(-err));
		ret = 127;
		goto cleanup;
	}
	if (ends_with(argv[idx], ".py") && access(argv[idx], R_OK)) {
		p_err("cannot read '%s': %s", argv[idx], strerror(errno));
		ret = 1;
		goto cleanup;
	}
	err = mp_cred__from_sudo(&cred);
	if (err) {
		p_err("invalid SUDO_UID/SUDO_GID in the environment");
		goto cleanup;
	}
	err = setup_signals();
	if (err) {
		p_err("cannot install signal handlers: %s", strerror(-err));
		goto cleanup;
	}
	err = choose_backend(&o, &be);
	if (err)
		goto cleanup;
	err = open_output(output, &cred, &dat);
	if (err) {
		p_err("cannot open '%s' for writing: %s", output, strerror(-err));
		goto cleanup;
	}

	printf("mprof: Sampling memory every %gs\n", o.interval);
	printf("running new process\n");
	if (c.python)
		printf("running as a Python program...\n");
	fflush(stdout);
	if (c.python && !c.hook)
		p_info("function timestamps (FUNC lines) are not recorded: %s",
		       is_python(cmd[0]) ? "the CPython hook is not installed next to mprof"
					 : "the command is not a Python interpreter");

	{
		struct mp_spawn_opts so = { .cred = &cred, .pass_fd = -1 };

		if (c.hook) {
			so.path_env = "PYTHONPATH";
			so.path_dir = c.hook;
			if (be->rss_page_fd) {
				so.pass_fd = be->rss_page_fd(be);
				so.pass_fd_env = "MPROF_RSS_FD";
			}
		}
		err = mp_child__spawn(&child, c.exec, &so);
	}
	if (err) {
		p_err("cannot start '%s': %s", cmd[0], strerror(-err));
		goto cleanup;
	}
	err = be->track(be, child.pid, 0);
	if (!err && c.hook && be->share_rss)
		err = be->share_rss(be, child.pid);
	/* FUNC lines from the hook's USDT probes: written as calls end, kept if the child dies */
	if (!err && c.hook && c.python && be->listen_hook) {
		char *pkg;

		if (asprintf(&pkg, "%s/memory_profiler", c.hook) < 0) {
			err = -ENOMEM;
		} else {
			if (be->listen_hook(be, child.pid, pkg) > 0)
				release_env = "MPROF_FUNC_LINES=kernel";
			free(pkg);
		}
	}
	if (err) {
		p_err("cannot track process %d: %s", (int)child.pid, strerror(-err));
		kill(child.pid, SIGKILL);
		goto cleanup;
	}
	{
		struct mp_recorder_opts ro = {
			.root = child.pid,
			.include_children = o.include_children,
			.multiprocess = o.multiprocess,
		};

		err = mp_recorder__new(&rec, dat, &ro);
		if (err) {
			p_err("out of memory");
			kill(child.pid, SIGKILL);
			goto cleanup;
		}
	}
	err = mp_dat__cmdline(dat, ncmd, cmd);
	if (!err)
		err = mp_dat__flush(dat);
	if (err) {
		p_err("cannot write '%s': %s", output, strerror(-err));
		kill(child.pid, SIGKILL);
		goto cleanup;
	}
	err = mp_child__release(&child, release_env);
	if (err) {
		p_err("cannot run '%s': %s", cmd[0], strerror(-err));
		waitpid(child.pid, NULL, 0);
		child.pid = -1;
		ret = 127;
		goto cleanup;
	}
	err = record(&o, be, rec, child.pid, &status);
	if (err) {
		p_err("recording failed: %s", strerror(-err));
		goto cleanup;
	}
	{
		struct mp_backend_stats st;

		be->stats(be, &st);
		if (st.lost)
			p_info("%llu kernel records were lost (ring buffer full): turning points "
			       "between samples may be missing",
			       (unsigned long long)st.lost);
		if (st.procs_dropped)
			p_info("%llu descendants were not followed (process table full)",
			       (unsigned long long)st.procs_dropped);
		if (o.stats)
			p_info("backend %s (%s): %llu records, %llu lost", be->name, be->method,
			       (unsigned long long)st.events, (unsigned long long)st.lost);
		if (st.bad_records)
			p_info("%llu malformed kernel records were skipped",
			       (unsigned long long)st.bad_records);
	}
	ret = 0;
	if (status != -1) {
		int code = report_status(status);

		if (o.exit_code)
			ret = code;
	}
cleanup:
	mp_recorder__free(rec);
	err = mp_dat__close(dat);
	if (err && ret == 0) {
		p_err("cannot write '%s': %s", output, strerror(-err));
		ret = 1;
	}
	if (be)
		be->free(be);
	mp_cred__release(&cred);
	if (child.go_fd >= 0)
		close(child.go_fd);
	if (child.err_fd >= 0)
		close(child.err_fd);
	command_release(&c);
	return ret;
}

int do_attach(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("attach is not available yet");
	return 2;
}
