/*
 * mprof run: run a command and record its memory over time in a memory_profiler .dat file,
 * measured by the kernel backend (BPF) or, where BPF cannot be used, by polling /proc. This file
 * parses the flags, decides what to run, and starts it; user/loop.h records.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
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
#include "lines_out.h"
#include "loop.h"
#include "mprof.h"
#include "record.h"
#include "recorder.h"
#include "spawn.h"

struct run_opts {
	struct rec_opts rec;
	int python, nopython, exit_code;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mprof run [options] COMMAND [ARGS...]\n"
		"\n"
		"Run COMMAND and record its memory usage over time in a .dat file. COMMAND may be:\n"
		"  1. an executable, 2. a Python script (script.py), run by the interpreter that\n"
		"  MPROF_PYTHON names, else python3 from PATH, 3. PYTHON script.py,\n"
		"  4. --python MODULE (run as python -m MODULE)\n"
		"\n"
		"options:\n"
		"  -h, --help             show this help message and exit\n"
		"  --version              show program's version number and exit\n"
		"  --python               activates extra features when the profiling executable is a\n"
		"                         Python program (currently: function timestamping)\n"
		"  --nopython             disables extra features when the profiled executable is a\n"
		"                         Python program (currently: function timestamping)\n"
		"  -E, --exit-code        propagate the exit code\n"
		"%s%s"
		"  (with --lines a script runs as it is, without the hook: no FUNC lines)\n",
		rec_opts_help, rec_lines_help);
}

enum { OPT_PYTHON = 256, OPT_NOPYTHON, OPT_VERSION };

/*
 * Returns the index of COMMAND in argv, -1 after printing help (exit 0), -2 on a bad option, -3
 * for --attach.
 */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
	static const struct option longs[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "python", no_argument, NULL, OPT_PYTHON },
		{ "nopython", no_argument, NULL, OPT_NOPYTHON },
		{ "exit-code", no_argument, NULL, 'E' },
		{ "attach", no_argument, NULL, 'a' },
		REC_LONGOPTS,
		REC_LINES_LONGOPTS,
		{ 0 },
	};
	int c, r;

	opterr = 0;
	optind = 1;
	/* leading '+': stop at the command; ':': a missing value is reported as such */
	while ((c = getopt_long(argc, argv, "+:hT:CMEt:o:a", longs, NULL)) != -1) {
		r = rec_opt(&o->rec, c, optarg);
		if (r < 0)
			return -2;
		if (r > 0)
			continue;
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
		case 'E':
			o->exit_code = 1;
			break;
		case 'a':
			return -3; /* memory_profiler's run --attach: the attach command */
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
	if (rec_opts_check(&o->rec))
		return -2;
	return optind;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Is @path a Python interpreter ("python", "python3.12", "/usr/bin/python3")? */
static int is_python(const char *path)
{
	return !strncmp(base_name(path), "python", 6);
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

/*
 * Is the hook in @dir built for interpreter @python? Its version is read from the name of the
 * file it resolves to (python3.11 -> cpython-311); when the name does not tell, assume yes.
 */
static int hook_built_for(const char *dir, const char *python)
{
	char real[PATH_MAX], *pat;
	unsigned int major, minor;
	glob_t g;
	int r;

	if (!realpath(python, real) || sscanf(base_name(real), "python%u.%u", &major, &minor) != 2)
		return 1;
	if (asprintf(&pat, "%s/memory_profiler/_mprof_hook.cpython-%u%u*.so", dir, major, minor) < 0)
		return 1;
	r = glob(pat, 0, NULL, &g);
	free(pat);
	if (r == 0)
		globfree(&g);
	return r == 0;
}

/* Seconds a command may take to say which interpreter it is (a pyenv shim takes ~0.1 s). */
#define PYTHON_QUERY_MS 10000

/*
 * The interpreter that runs scripts: MPROF_PYTHON, else python3 from PATH. A wrapper script in
 * its place (pyenv's shim) would run its own helpers under the profile, so it is asked once,
 * unprofiled, for the real binary (sys.executable). Stores the path in @out. Returns 0, or
 * -errno after printing the error.
 */
static int resolve_python(const struct mp_cred *cred, char *out, size_t size)
{
	const char *env = getenv("MPROF_PYTHON");
	const char *name = env && *env ? env : "python3";
	char path[PATH_MAX], head[4] = { 0 };
	char *argv[] = { path, "-c", "import sys; sys.stdout.write(sys.executable)", NULL };
	int fd, err;

	err = mp_find_command(name, path, sizeof(path));
	if (err) {
		p_err("cannot run '%s': %s", name, strerror(-err));
		return err;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, head, sizeof(head)) < 0)
			head[0] = 0;
		close(fd);
	}
	if (memcmp(head, "#!", 2)) {
		snprintf(out, size, "%s", path); /* a binary (or unreadable): run it as it is */
		return 0;
	}
	err = mp_capture(argv, cred, out, size, PYTHON_QUERY_MS);
	if (!err && out[0] != '/')
		err = -ENOEXEC;
	if (!err)
		err = mp_find_command(out, NULL, 0);
	if (err) {
		p_err("cannot find the interpreter behind '%s' (it does not tell its sys.executable): "
		      "set MPROF_PYTHON to an interpreter",
		      path);
		return err;
	}
	return 0;
}

/* What runs: the command as shown in CMDLINE, and what is exec'd (Python mode splices in). */
struct command {
	char **shown; /* "<python> script.py" for scripts, as memory_profiler records it */
	int nshown;
	char **exec;  /* shown, or "<python> -m memory_profiler --timestamp -o FILE script.py" */
	char *hook;   /* our memory_profiler package's folder, when the child uses it */
	int python;   /* Python mode: FUNC lines */
	char python_path[PATH_MAX];
};

static void command_release(struct command *c)
{
	free(c->shown);
	free(c->exec);
	free(c->hook);
}

/*
 * Build what to run from the user's @argv (@argc words), with memory_profiler's rules: Python
 * mode is a .py without --nopython or -M, or --python; a command that is not an interpreter gets
 * one in front in Python mode ("script.py", "--python pkg.mod") and for a .py; Python mode runs
 * our memory_profiler --timestamp, which writes FUNC lines; "python -m memory_profiler ..." runs
 * as given, with our package and the kernel page. Returns 0, or -errno after printing the error.
 */
static int build_command(const struct run_opts *o, char **argv, int argc, const char *output,
			 const struct mp_cred *cred, struct command *c)
{
	int n = 0, py_script = ends_with(argv[0], ".py") && !is_python(argv[0]), err;

	/* --lines reads the lines from outside: no hook in the process, no FUNC lines */
	c->python = (o->python || (ends_with(argv[0], ".py") && !o->nopython)) &&
		    !o->rec.multiprocess && !o->rec.lines;
	c->shown = calloc(argc + 2, sizeof(*c->shown));
	c->exec = calloc(argc + 10, sizeof(*c->exec));
	if (!c->shown || !c->exec) {
		p_err("out of memory");
		return -ENOMEM;
	}
	if (py_script || (o->python && !is_python(argv[0]))) {
		err = resolve_python(cred, c->python_path, sizeof(c->python_path));
		if (err)
			return err;
		c->shown[0] = c->python_path;
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
		if (c->hook && !hook_built_for(c->hook, c->shown[0])) {
			p_info("function timestamps (FUNC lines) are not recorded: the CPython hook is "
			       "not built for '%s'",
			       c->shown[0]);
			free(c->hook);
			c->hook = NULL;
			c->python = 0;
		} else if (c->hook) {
			c->exec[n++] = c->shown[0];
			c->exec[n++] = "-m";
			c->exec[n++] = "memory_profiler";
			c->exec[n++] = "--timestamp";
			c->exec[n++] = "-o";
			c->exec[n++] = (char *)output;
			if (o->rec.include_children)
				c->exec[n++] = "--include-children";
			memcpy(c->exec + n, c->shown + 1, (c->nshown - 1) * sizeof(*argv));
			n += c->nshown - 1;
		}
	}
	if (!n)
		memcpy(c->exec, c->shown, c->nshown * sizeof(*argv));
	return 0;
}

/* Remove the output again when it was created for a command that never started. */
static void drop_output(const char *path, const struct mp_cred *cred, int created)
{
	if (!created || mp_cred__enter(cred))
		return;
	unlink(path);
	mp_cred__leave(cred);
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

/* The loop's interrupted(): signals to mprof go on to the command; recording goes on. */
static int forward_signals(void *ctx)
{
	pid_t pid = *(pid_t *)ctx;
	int tty, sig = rec_pending_signal(&tty);

	if (sig && !tty)
		kill(pid, sig);
	return 0;
}

static double mono_ms(void)
{
	return mp_clock__now_mono_ns() / 1e6;
}

int do_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	struct mp_cred cred = { 0 };
	struct rec_lines *rl = NULL;
	struct mp_backend *be = NULL;
	struct mp_recorder *rec = NULL;
	struct mp_dat *dat = NULL;
	struct mp_child child = { .pid = -1, .go_fd = -1, .err_fd = -1 };
	struct mp_spawn_opts so = { 0 };
	struct mp_loop_result res;
	struct command c = { 0 };
	sigset_t waitmask;
	char defname[64];
	const char *output;
	double t0 = mono_ms(), t_started = 0, t_end;
	int idx, err, ret = 1, created = 0, func_pipe[2] = { -1, -1 };

	rec_opts_init(&o.rec);
	idx = parse_args(argc, argv, &o);
	if (idx == -1)
		return 0;
	if (idx == -3)
		return do_attach(argc, argv);
	if (idx < 0)
		return 2;
	output = o.rec.output;
	if (!output) {
		rec_default_output(defname, sizeof(defname));
		output = defname;
	}
	err = mp_cred__from_sudo(&cred);
	if (err == -ENOENT) {
		p_err("SUDO_UID=%s names no user and SUDO_GID is not set: refusing to run the command "
		      "as root",
		      getenv("SUDO_UID"));
		goto cleanup;
	}
	if (err) {
		p_err("invalid SUDO_UID/SUDO_GID in the environment");
		goto cleanup;
	}
	if (build_command(&o, argv + idx, argc - idx, output, &cred, &c)) {
		ret = 127;
		goto cleanup;
	}
	err = mp_find_command(c.shown[0], NULL, 0);
	if (err) {
		p_err("cannot run '%s': %s", c.shown[0], strerror(-err));
		ret = err == -ENOENT ? 127 : 126;
		goto cleanup;
	}
	if (ends_with(argv[idx], ".py") && access(argv[idx], R_OK)) {
		p_err("cannot read '%s': %s", argv[idx], strerror(errno));
		goto cleanup;
	}
	err = rec_signals(&waitmask);
	if (err) {
		p_err("cannot install signal handlers: %s", strerror(-err));
		goto cleanup;
	}
	err = rec_backend(&o.rec, &be);
	if (err)
		goto cleanup;
	/* opened now so that an unwritable output fails before anything runs */
	err = rec_open_output(output, &cred, &dat, &created);
	if (err) {
		p_err("cannot open '%s' for writing: %s", output, strerror(-err));
		goto cleanup;
	}

	if (c.python && !c.hook)
		p_info("function timestamps (FUNC lines) are not recorded: %s",
		       is_python(c.shown[0]) ? "the CPython hook is not installed next to mprof"
					     : "the command is not a Python interpreter");
	so.cred = &cred;
	/*
	 * The kernel page goes to every command, not only to our Python modes: a Python program
	 * that imports memory_profiler itself (the pytest plugin under `mprof run pytest`) then
	 * reads exact figures. The page names the process it describes, so a descendant that
	 * inherits the fd does not take it for its own.
	 */
	if (be->rss_page_fd && be->share_rss) {
		so.pass[so.npass].fd = be->rss_page_fd(be);
		so.pass[so.npass++].env = "MPROF_RSS_FD";
	}
	if (c.hook) {
		so.path_env = "PYTHONPATH";
		so.path_dir = c.hook;
		if (be->rss_page_fd) {
			/* FUNC lines from the hook through a pipe: written as calls end, no probe */
			if (c.python) {
				if (pipe2(func_pipe, O_CLOEXEC)) {
					err = -errno;
					p_err("cannot create a pipe: %s", strerror(-err));
					goto cleanup_file;
				}
				so.pass[so.npass].fd = func_pipe[1];
				so.pass[so.npass++].env = "MPROF_FUNC_FD";
			}
		}
	}
	err = mp_child__spawn(&child, c.exec, &so);
	if (func_pipe[1] >= 0) {
		close(func_pipe[1]); /* the child has its copy: EOF once every writer is gone */
		func_pipe[1] = -1;
	}
	if (err) {
		p_err("cannot start '%s': %s", c.shown[0], strerror(-err));
		goto cleanup_file;
	}
	err = be->track(be, child.pid, 0, MP_TRACK_AT_EXEC);
	if (!err && be->share_rss)
		err = be->share_rss(be, child.pid);
	if (err) {
		p_err("cannot track process %d: %s", (int)child.pid, strerror(-err));
		goto kill_child;
	}
	{
		struct mp_recorder_opts ro = {
			.root = child.pid,
			.include_children = o.rec.include_children,
			.multiprocess = o.rec.multiprocess,
			.hold = o.rec.interval > 0.05 ? o.rec.interval : 0.05,
			.wait_exec = 1,
		};

		err = mp_recorder__new(&rec, dat, &ro);
		if (err) {
			p_err("out of memory");
			goto kill_child;
		}
	}
	if (o.rec.lines) {
		if (rec_lines__new(&rl, &o.rec, be, &cred, false))
			goto kill_child;
	}
	printf("mprof: Sampling memory every %gs\n", o.rec.interval);
	printf("running new process\n");
	if (c.python)
		printf("running as a Python program...\n");
	fflush(stdout);
	err = mp_child__release(&child, NULL);
	if (err) {
		p_err("cannot run '%s': %s", c.shown[0], strerror(-err));
		waitpid(child.pid, NULL, 0);
		child.pid = -1;
		ret = err == -ENOENT ? 127 : 126;
		goto cleanup_file;
	}
	t_started = mono_ms();
	if (rl) {
		/* exec'd: its interpreter is read as soon as it is up (retried every ms) */
		err = rec_lines__target(rl, child.pid, 1);
		if (err) {
			p_err("cannot set up --lines: %s", strerror(-err));
			goto cleanup;
		}
	}
	err = mp_dat__cmdline(dat, c.nshown, c.shown);
	if (!err)
		err = mp_dat__flush(dat);
	if (err) {
		p_err("cannot write '%s': %s", output, strerror(-err));
		goto cleanup;
	}
	{
		struct mp_sink *sinks[2] = { mp_recorder__sink(rec) };
		struct mp_source *srcs[MP_LOOP_MAX_SOURCES];
		size_t nsinks = 1, nsrcs = 0;
		struct mp_loop_opts lo = {
			.interval = o.rec.interval,
			.timeout = o.rec.timeout,
			.root = child.pid,
			.reap = 1,
			.func_fd = func_pipe[0],
			.sources = srcs,
			.sigmask = &waitmask,
			.interrupted = forward_signals,
			.ctx = &child.pid,
		};

		if (rl) {
			sinks[nsinks++] = rec_lines__sink(rl);
			rec_lines__sources(rl, srcs, &nsrcs);
		}
		lo.nsources = nsrcs;
		err = mp_loop__run(be, sinks, nsinks, &lo, &res);
	}
	if (err) {
		p_err("recording failed: %s", strerror(-err));
		goto cleanup;
	}
	rec_report(be, &o.rec);
	if (res.func_bad)
		p_info("%llu malformed records from the CPython hook were skipped",
		       (unsigned long long)res.func_bad);
	ret = 0;
	if (res.status != -1) {
		int code = report_status(res.status);

		if (o.exit_code)
			ret = code;
	}
	if (rl && rec_lines__report(rl, dat)) {
		ret = 1;
		goto cleanup;
	}
	if (rec_check_budget(&o.rec, rec))
		ret = REC_EXIT_OVER_BUDGET;
	goto cleanup;

kill_child:
	kill(child.pid, SIGKILL);
	waitpid(child.pid, NULL, 0);
cleanup_file:
	mp_dat__close(dat);
	dat = NULL;
	drop_output(output, &cred, created);
cleanup:
	rec_lines__free(rl);
	mp_recorder__free(rec);
	err = mp_dat__close(dat);
	if (err && ret == 0) {
		p_err("cannot write '%s': %s", output, strerror(-err));
		ret = 1;
	}
	if (o.rec.stats && be && t_started) {
		be->free(be);
		be = NULL;
		t_end = mono_ms();
		p_info("start-up %.1f ms (from mprof's start to the command's exec), teardown %.1f ms "
		       "(from the command's end to the file closed and the BPF objects released)",
		       t_started - t0, t_end - res.end_mono * 1e3);
	}
	if (be)
		be->free(be);
	if (func_pipe[0] >= 0)
		close(func_pipe[0]);
	mp_cred__release(&cred);
	if (child.go_fd >= 0)
		close(child.go_fd);
	if (child.err_fd >= 0)
		close(child.err_fd);
	command_release(&c);
	return ret;
}
