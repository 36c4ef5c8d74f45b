/*
 * mprof attach [options] PID|NAME (and mprof run --attach): follow a process that is already
 * running, kernel-exact from the first value, until it exits, the timeout (3600 s by default,
 * as memory_profiler) or Ctrl-C. The target is never signalled, stopped or written to.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "dat.h"
#include "lines_out.h"
#include "loop.h"
#include "mprof.h"
#include "procinfo.h"
#include "record.h"
#include "recorder.h"
#include "spawn.h"

/* memory_profiler's default for attach: one hour. */
#define ATTACH_TIMEOUT 3600.0

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mprof attach [options] PID|NAME\n"
		"       mprof run --attach [options] PID|NAME\n"
		"\n"
		"Record the memory of a process that is already running, until it exits, the\n"
		"timeout or Ctrl-C; the process is never stopped or signalled. NAME: the first\n"
		"process (lowest pid) whose name contains it.\n"
		"\n"
		"options:\n"
		"  -h, --help             show this help message and exit\n"
		"  --any-user             under sudo, also processes of other users\n"
		"%s%s"
		"  (the timeout defaults to 3600 s when attaching)\n",
		rec_opts_help, rec_lines_help);
}

enum { OPT_ANY_USER = 256 };

struct attach_opts {
	struct rec_opts rec;
	int any_user;
};

/* Returns the index of the target in argv, -1 after help, -2 on a bad option. */
static int parse_args(int argc, char **argv, struct attach_opts *o)
{
	static const struct option longs[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "any-user", no_argument, NULL, OPT_ANY_USER },
		{ "attach", no_argument, NULL, 'a' },
		REC_LONGOPTS,
		REC_LINES_LONGOPTS,
		/* run's flags that mean nothing for a running process, accepted as memory_profiler */
		{ "python", no_argument, NULL, 'P' },
		{ "nopython", no_argument, NULL, 'P' },
		{ "exit-code", no_argument, NULL, 'E' },
		{ 0 },
	};
	int c, r;

	opterr = 0;
	optind = 1;
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
		case OPT_ANY_USER:
			o->any_user = 1;
			break;
		case 'a':
		case 'P':
		case 'E':
			break;
		case ':':
			p_err("option '%s' needs a value", argv[optind - 1]);
			return -2;
		default:
			p_err("unknown option '%s' (see mprof attach --help)", argv[optind - 1]);
			return -2;
		}
	}
	if (optind >= argc) {
		p_err("a process to attach to must be given, as a pid or a name (see mprof attach "
		      "--help)");
		return -2;
	}
	if (optind + 1 < argc) {
		p_err("attach takes one process, not '%s' after it", argv[optind + 1]);
		return -2;
	}
	if (rec_opts_check(&o->rec))
		return -2;
	return optind;
}

/* The target's pid from @arg (digits: a pid; anything else: a name). Prints the errors. */
static int resolve_target(const char *arg, pid_t *pid, char *comm, size_t size)
{
	char *end;
	long v;
	int err;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (*arg && !*end && !errno) {
		if (v <= 0 || v > 4194304) {
			p_err("invalid pid '%s'", arg);
			return -EINVAL;
		}
		*pid = (pid_t)v;
		err = mp_proc_comm(*pid, comm, size);
		if (err) {
			p_err("no process with pid %ld", v);
			return err;
		}
		return 0;
	}
	err = mp_proc_find_by_name(arg, getpid(), pid);
	if (err == -ESRCH) {
		p_err("no process whose name contains '%s'", arg);
		return err;
	}
	if (err) {
		p_err("cannot list the processes: %s", strerror(-err));
		return err;
	}
	if (mp_proc_comm(*pid, comm, size))
		snprintf(comm, size, "?");
	return 0;
}

/* Under sudo, a process of another user needs --any-user. Prints the error. */
static int check_owner(pid_t pid, const struct mp_cred *cred, int any_user)
{
	uid_t real, eff;
	struct passwd *pw;
	int err;

	if (!cred->drop || any_user)
		return 0;
	err = mp_proc_uids(pid, &real, &eff);
	if (err) {
		p_err("cannot read the owner of process %d: %s", (int)pid, strerror(-err));
		return err;
	}
	if (real == cred->uid)
		return 0;
	pw = getpwuid(real);
	p_err("process %d belongs to %s%s%u%s, not to the user who ran sudo: use --any-user to "
	      "attach to it anyway",
	      (int)pid, pw ? pw->pw_name : "uid ", pw ? " (uid " : "", (unsigned int)real,
	      pw ? ")" : "");
	return -EPERM;
}

struct track_ctx {
	struct mp_backend *be;
	int err;
};

static int track_one(void *ctx, pid_t pid)
{
	struct track_ctx *t = ctx;
	int err = t->be->track(t->be, pid, 0, MP_TRACK_NOW);

	/* already followed (its fork was seen), or gone meanwhile: both fine */
	if (err && err != -EEXIST && err != -ESRCH && !t->err)
		t->err = err;
	return 0;
}

/* Ctrl-C and friends end an attach (the target is left alone). */
static int stop_on_signal(void *ctx)
{
	int tty;

	(void)ctx;
	return rec_pending_signal(&tty) != 0;
}

struct lines_ctx {
	struct rec_lines *rl;
	int err;
};

static int lines_one(void *ctx, const struct mp_view *v)
{
	struct lines_ctx *c = ctx;

	if (v->pid && !c->err)
		c->err = rec_lines__target(c->rl, v->pid, 0);
	return 0;
}

/* --lines: every process followed (the target and, with -C/-M, its descendants). */
static int lines_targets(struct rec_lines *rl, struct mp_backend *be)
{
	struct lines_ctx c = { rl, 0 };
	int err = be->each(be, 0, lines_one, &c);

	return err ? err : c.err;
}

int do_attach(int argc, char **argv)
{
	struct attach_opts o = { 0 };
	struct mp_cred cred = { 0 };
	struct mp_backend *be = NULL;
	struct mp_recorder *rec = NULL;
	struct mp_dat *dat = NULL;
	struct mp_loop_result res = { 0 };
	struct rec_lines *rl = NULL;
	char defname[64], comm[64], **targv = NULL;
	const char *output = NULL;
	sigset_t waitmask;
	int idx, err, targc = 0, created = 0, ret = 1;
	pid_t pid;

	rec_opts_init(&o.rec);
	o.rec.timeout = ATTACH_TIMEOUT;
	idx = parse_args(argc, argv, &o);
	if (idx == -1)
		return 0;
	if (idx < 0)
		return 2;
	err = mp_cred__from_sudo(&cred);
	if (err) {
		p_err("invalid SUDO_UID/SUDO_GID in the environment");
		return 1;
	}
	if (resolve_target(argv[idx], &pid, comm, sizeof(comm)))
		goto cleanup;
	if (pid == getpid()) {
		p_err("mprof cannot attach to itself");
		goto cleanup;
	}
	if (check_owner(pid, &cred, o.any_user))
		goto cleanup;
	err = mp_proc_argv(pid, &targv, &targc);
	if (err) {
		p_err("process %d exited before mprof could attach to it", (int)pid);
		goto cleanup;
	}
	err = rec_signals(&waitmask);
	if (err) {
		p_err("cannot install signal handlers: %s", strerror(-err));
		goto cleanup;
	}
	if (rec_backend(&o.rec, &be))
		goto cleanup;
	output = o.rec.output;
	if (!output) {
		rec_default_output(defname, sizeof(defname));
		output = defname;
	}
	err = rec_open_output(output, &cred, &dat, &created);
	if (err) {
		p_err("cannot open '%s' for writing: %s", output, strerror(-err));
		goto cleanup;
	}
	err = be->track(be, pid, 0, MP_TRACK_NOW);
	if (!err && (o.rec.include_children || o.rec.multiprocess)) {
		struct track_ctx t = { .be = be };

		err = mp_proc_each_descendant(pid, track_one, &t);
		if (!err)
			err = t.err;
	}
	if (!err)
		err = be->settle(be);
	if (err) {
		p_err(err == -ESRCH ? "process %d exited before mprof could attach to it"
				    : "cannot follow process %d: %s",
		      (int)pid, strerror(-err));
		goto drop_file;
	}
	{
		struct mp_recorder_opts ro = {
			.root = pid,
			.include_children = o.rec.include_children,
			.multiprocess = o.rec.multiprocess,
			.hold = o.rec.interval > 0.05 ? o.rec.interval : 0.05,
		};

		err = mp_recorder__new(&rec, dat, &ro);
		if (err) {
			p_err("out of memory");
			goto drop_file;
		}
	}
	if (o.rec.lines) {
		if (rec_lines__new(&rl, &o.rec, be, &cred, false))
			goto drop_file;
		err = lines_targets(rl, be);
		if (err) {
			p_err("cannot set up --lines: %s", strerror(-err));
			goto drop_file;
		}
	}
	if (targc)
		err = mp_dat__cmdline(dat, targc, targv);
	else
		err = mp_dat__cmdline_text(dat, comm);
	if (!err)
		err = mp_dat__flush(dat);
	if (err) {
		p_err("cannot write '%s': %s", output, strerror(-err));
		goto cleanup;
	}
	printf("mprof: Sampling memory every %gs\n", o.rec.interval);
	printf("attaching to process %d (%s)\n", (int)pid, comm);
	fflush(stdout);
	{
		struct mp_sink *sinks[2] = { mp_recorder__sink(rec) };
		struct mp_source *srcs[MP_LOOP_MAX_SOURCES];
		size_t nsinks = 1, nsrcs = 0;
		struct mp_loop_opts lo = {
			.interval = o.rec.interval,
			.timeout = o.rec.timeout,
			.root = pid,
			.func_fd = -1,
			.sources = srcs,
			.sigmask = &waitmask,
			.interrupted = stop_on_signal,
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
	if (res.end == MP_LOOP_ROOT_EXITED)
		p_info("process %d exited", (int)pid);
	if (rl && rec_lines__report(rl, dat))
		goto cleanup;
	ret = rec_check_budget(&o.rec, rec);
	goto cleanup;

drop_file:
	mp_dat__close(dat);
	dat = NULL;
	if (created && !mp_cred__enter(&cred)) {
		unlink(output);
		mp_cred__leave(&cred);
	}
cleanup:
	rec_lines__free(rl);
	mp_recorder__free(rec);
	err = mp_dat__close(dat);
	if (err && ret == 0) {
		p_err("cannot write '%s': %s", output, strerror(-err));
		ret = 1;
	}
	if (be)
		be->free(be);
	free(targv);
	mp_cred__release(&cred);
	return ret;
}
