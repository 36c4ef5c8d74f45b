#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "mprof.h"
#include "record.h"
#include "recorder.h"
#include "size.h"

/* The smallest granularity: below one page the kernel side rounds up to a page anyway. */
#define REC_GRAN_MIN 0.001

const char rec_opts_help[] =
	"  -T, --interval SEC     sampling period in seconds, from 0.001 to 86400 (default 0.1)\n"
	"  -C, --include-children\n"
	"                         monitors forked processes as well (sum up all process memory)\n"
	"  -M, --multiprocess     monitors forked processes creating individual plots for each\n"
	"                         child\n"
	"  -t, --timeout SEC      stop recording after SEC seconds (at most 31536000); the\n"
	"                         process is not stopped\n"
	"  -o, --output FILE      save to file instead of mprofile_<YYYYMMDDhhmmss>.dat\n"
	"  --backend NAME         kernel (default: BPF, every peak), proc (polling /proc),\n"
	"                         psutil_pss or psutil_uss (polling smaps_rollup for PSS or\n"
	"                         USS); memory_profiler's psutil and posix mean proc\n"
	"  --granularity MIB      smallest swing recorded between ticks, from 0.001 to 1048576\n"
	"                         (default 1 MiB)\n"
	"  --rss-tracepoint       kernel backend: use the classic rss_stat tracepoint\n"
	"  --stats                print what the backend measured with, its counters and\n"
	"                         mprof's own start-up and teardown times\n"
	"  --ringbuf-kib N        kernel backend: ring buffer size, a power of 2 from 4 to\n"
	"                         1048576 (default 4096 KiB)\n"
	"  --max-rss SIZE         a memory budget (512MiB, 2G, 100MB...): when the peak (with\n"
	"                         -C, of the tree) goes over it, say so and exit with status 99\n";

const char rec_lines_help[] =
	"  --lines                which Python line moved the memory, read by BPF from the\n"
	"                         interpreter's frames (CPython 3.8-3.13; nothing is loaded\n"
	"                         into the process): a table per function at the end\n"
	"  --top N                with --lines: the N heaviest lines (default 20, 0: all);\n"
	"                         the others are summed in one row\n"
	"  --stacks FILE          with --lines: the stacks of growth, collapsed format\n"
	"  --speedscope FILE      with --lines: the same as a speedscope file\n"
	"  --pprof FILE           with --lines: the same as a gzipped pprof profile\n";

void rec_opts_init(struct rec_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->interval = 0.1;
	o->granularity = 1.0;
	o->top = REC_TOP;
}

/* A number in [lo, hi] (strtod's syntax, finite). Returns 0 or -EINVAL. */
static int parse_range(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int rec_opt(struct rec_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'T':
		if (parse_range(arg, REC_INTERVAL_MIN, REC_INTERVAL_MAX, &o->interval)) {
			p_err("invalid interval '%s': expected seconds from 0.001 to 86400", arg);
			return -1;
		}
		return 1;
	case 't':
		/* 0 is not "no timeout": memory_profiler would take 0 samples; refuse it */
		if (parse_range(arg, 0, REC_TIMEOUT_MAX, &o->timeout) || o->timeout == 0) {
			p_err("invalid timeout '%s': expected seconds above 0, at most 31536000", arg);
			return -1;
		}
		return 1;
	case 'C':
		o->include_children = 1;
		return 1;
	case 'M':
		o->multiprocess = 1;
		return 1;
	case 'o':
		if (!*arg) {
			p_err("invalid output '': expected a file name");
			return -1;
		}
		o->output = arg;
		return 1;
	case REC_OPT_BACKEND:
		if (!strcmp(arg, "tracemalloc")) {
			p_err("backend 'tracemalloc' measures the Python heap from inside the program: "
			      "use python -m memory_profiler --backend tracemalloc SCRIPT");
			return -1;
		}
		if (strcmp(arg, "kernel") && strcmp(arg, "proc") && strcmp(arg, "psutil") &&
		    strcmp(arg, "posix") && strcmp(arg, "psutil_pss") && strcmp(arg, "psutil_uss")) {
			p_err("unknown backend '%s': expected kernel, proc, psutil_pss or psutil_uss "
			      "(psutil and posix mean proc)",
			      arg);
			return -1;
		}
		o->backend = arg;
		return 1;
	case REC_OPT_GRAN:
		if (parse_range(arg, REC_GRAN_MIN, REC_GRAN_MAX, &o->granularity)) {
			p_err("invalid granularity '%s': expected MiB from 0.001 to 1048576", arg);
			return -1;
		}
		return 1;
	case REC_OPT_TP:
		o->force_tracepoint = 1;
		return 1;
	case REC_OPT_STATS:
		o->stats = 1;
		return 1;
	case REC_OPT_MAXRSS: {
		int e = mp_size__parse(arg, &o->max_rss);

		if (e || !o->max_rss) {
			p_err("invalid size '%s' for --max-rss: expected a number and a unit, as in "
			      "512MiB, 2G or 100MB",
			      arg);
			return -1;
		}
		o->max_rss_arg = arg;
		return 1;
	}
	case REC_OPT_LINES:
		o->lines = 1;
		return 1;
	case REC_OPT_TOP: {
		double v;

		if (parse_range(arg, 0, 1000000, &v) || v != (unsigned int)v) {
			p_err("invalid --top '%s': expected a whole number from 0 (all) to 1000000",
			      arg);
			return -1;
		}
		o->top = (unsigned int)v;
		o->top_given = 1;
		return 1;
	}
	case REC_OPT_STACKS:
	case REC_OPT_SPEEDSCOPE:
	case REC_OPT_PPROF:
		if (!*arg) {
			p_err("invalid file name '' for --%s",
			      c == REC_OPT_STACKS ? "stacks" : c == REC_OPT_PPROF ? "pprof" : "speedscope");
			return -1;
		}
		*(c == REC_OPT_STACKS ? &o->stacks : c == REC_OPT_PPROF ? &o->pprof : &o->speedscope) =
			arg;
		return 1;
	case REC_OPT_RINGBUF: {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(arg, &end, 10);
		/* the kernel wants a power-of-2 multiple of the page size */
		if (errno || end == arg || *end || arg[0] == '-' || v < 4 || v > (1ul << 20) ||
		    (v & (v - 1))) {
			p_err("invalid ring buffer size '%s': expected a power of 2 KiB from 4 to "
			      "1048576",
			      arg);
			return -1;
		}
		o->ringbuf_kib = v;
		return 1;
	}
	}
	return 0;
}

int rec_opts_check(const struct rec_opts *o)
{
	const char *needs = o->top_given ? "--top" : o->stacks ? "--stacks" : o->speedscope ? "--speedscope"
			    : o->pprof ? "--pprof" : NULL;

	if (needs && !o->lines) {
		p_err("%s needs --lines", needs);
		return -1;
	}
	if (o->lines && o->backend && strcmp(o->backend, "kernel")) {
		p_err("--lines needs the kernel backend, not '%s'", o->backend);
		return -1;
	}
	if (o->lines && o->force_tracepoint) {
		p_err("--lines needs the tp_btf program: it cannot be used with --rss-tracepoint");
		return -1;
	}
	return 0;
}

/* MPROF_DEBUG_LIBBPF=1: libbpf's messages (verifier logs included) on stderr. */
static int libbpf_to_stderr(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	return vfprintf(stderr, fmt, ap);
}

int rec_backend(const struct rec_opts *o, struct mp_backend **out)
{
	struct mp_backend_opts bo = {
		.granularity_mib = o->granularity,
		.ringbuf_kib = o->ringbuf_kib,
		.include_children = o->include_children,
		.descendants = o->include_children || o->multiprocess,
		.force_tracepoint = o->force_tracepoint,
		.lines = o->lines,
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
		if (o->backend || o->lines) {
			p_err("kernel backend unavailable%s: %s", o->lines ? " (--lines needs it)" : "",
			      why ? why : strerror(-err));
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
	}
	err = mp_backend_proc__new(out, &bo);
	if (err)
		p_err("cannot set up the /proc backend: %s", strerror(-err));
	return err;
}

static volatile sig_atomic_t pending_sig;
static volatile sig_atomic_t pending_from_tty;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	pending_sig = sig;
	/* a terminal's ^C reaches the whole foreground group, the target included */
	pending_from_tty = si && si->si_code == SI_KERNEL;
}

int rec_signals(sigset_t *waitmask)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { 0 };
	sigset_t block;

	sigemptyset(&block);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: a signal must cut the wait short */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL))
			return -errno;
		sigaddset(&block, sigs[i]);
	}
	/* a closed terminal or pipe must not kill the recorder: the file is what matters */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	if (sigprocmask(SIG_BLOCK, &block, waitmask))
		return -errno;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigdelset(waitmask, sigs[i]);
	return 0;
}

int rec_pending_signal(int *from_tty)
{
	int sig = pending_sig;

	pending_sig = 0;
	*from_tty = pending_from_tty;
	return sig;
}

void rec_report(struct mp_backend *be, const struct rec_opts *o)
{
	struct mp_backend_stats st;

	be->stats(be, &st);
	if (st.lost)
		p_info("%llu kernel records were lost (ring buffer full): turning points between "
		       "samples may be missing",
		       (unsigned long long)st.lost);
	if (st.procs_dropped)
		p_info("%llu descendants were not followed (process table full)",
		       (unsigned long long)st.procs_dropped);
	if (o->stats)
		p_info("backend %s (%s): %llu records, %llu lost", be->name, be->method,
		       (unsigned long long)st.events, (unsigned long long)st.lost);
	if (st.bad_records)
		p_info("%llu malformed kernel records were skipped",
		       (unsigned long long)st.bad_records);
}

/* memory_profiler's default name: mprofile_YYYYmmddHHMMSS.dat in the current folder. */
void rec_default_output(char *buf, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(buf, n, "mprofile_%Y%m%d%H%M%S.dat", &tm);
}

int rec_open_output(const char *path, const struct mp_cred *cred, struct mp_dat **out,
		       int *created)
{
	int err, err2;

	err = mp_cred__enter(cred);
	if (err)
		return err;
	err = mp_dat__open(out, path, created);
	err2 = mp_cred__leave(cred);
	if (err2) {
		mp_dat__close(*out);
		*out = NULL;
		return err2;
	}
	return err;
}


int rec_check_budget(const struct rec_opts *o, const struct mp_recorder *rec)
{
	uint64_t peak = mp_recorder__mem_max(rec);

	if (!o->max_rss || peak <= o->max_rss)
		return 0;
	p_info("the peak, %.3f MiB at %.3f s, is over --max-rss %s (%.3f MiB)", peak / 1048576.0,
	       mp_recorder__mem_max_t(rec) - mp_recorder__first_t(rec), o->max_rss_arg,
	       o->max_rss / 1048576.0);
	return REC_EXIT_OVER_BUDGET;
}
