/*
 * What the recording commands (run, attach, fleet) share on the command-line side: the options
 * they have in common, with their ranges; choosing the backend and saying why when it falls
 * back; the signals; the closing report. The recording itself is user/loop.h.
 */
#ifndef MPROF_RECORD_H
#define MPROF_RECORD_H

#include <signal.h>

#include "backend.h"
#include "dat.h"
#include "spawn.h"

/* The ranges of the numbers, as the help and the errors state them. */
#define REC_INTERVAL_MIN 0.001	 /* s: below, a tick costs more than it tells */
#define REC_INTERVAL_MAX 86400.0 /* s: one sample a day */
#define REC_TIMEOUT_MAX 31536000.0 /* s: a year */
#define REC_GRAN_MAX 1048576.0	 /* MiB: 1 TiB */

struct rec_opts {
	double interval;   /* -T, seconds */
	double timeout;	   /* -t, seconds, 0: none */
	int include_children, multiprocess;
	const char *output;
	const char *backend; /* NULL: kernel, falling back to proc */
	double granularity;  /* MiB */
	int force_tracepoint;
	int stats;
	unsigned int ringbuf_kib;
	uint64_t max_rss; /* --max-rss, bytes, 0: none */
	const char *max_rss_arg;
	/* --lines: which Python line moved the memory, read by BPF (mprof/lines_out.h) */
	int lines;
	unsigned int top;     /* --top N: the N heaviest lines, 0: all (default REC_TOP) */
	int top_given;
	const char *stacks;   /* --stacks FILE: collapsed stacks of growth */
	const char *speedscope; /* --speedscope FILE */
	const char *pprof;    /* --pprof FILE: gzipped profile.proto */
};

/* --lines: how many lines the tables show unless --top says. */
#define REC_TOP 20

/* mprof's exit status when the peak went over --max-rss. */
#define REC_EXIT_OVER_BUDGET 99

/* Defaults: -T 0.1, 1 MiB granularity. */
void rec_opts_init(struct rec_opts *o);

/*
 * Option values for the options every recording command has: @c is the getopt character, @arg
 * its value. Returns 1 when @c was one of them (and was stored), 0 when it is not one of ours,
 * -1 after printing the error for a bad value.
 */
int rec_opt(struct rec_opts *o, int c, const char *arg);

/* getopt codes of the shared long options (above every short option). */
enum {
	REC_OPT_BACKEND = 1000,
	REC_OPT_GRAN,
	REC_OPT_TP,
	REC_OPT_STATS,
	REC_OPT_RINGBUF,
	REC_OPT_MAXRSS,
	REC_OPT_LINES,
	REC_OPT_TOP,
	REC_OPT_STACKS,
	REC_OPT_SPEEDSCOPE,
	REC_OPT_PPROF,
};

/* The long options of rec_opts_help, for a getopt table (run, attach). */
#define REC_LONGOPTS                                                                \
	{ "interval", required_argument, NULL, 'T' },                               \
	{ "include-children", no_argument, NULL, 'C' },                             \
	{ "multiprocess", no_argument, NULL, 'M' },                                 \
	{ "timeout", required_argument, NULL, 't' },                                \
	{ "output", required_argument, NULL, 'o' },                                 \
	{ "backend", required_argument, NULL, REC_OPT_BACKEND },                    \
	{ "granularity", required_argument, NULL, REC_OPT_GRAN },                   \
	{ "rss-tracepoint", no_argument, NULL, REC_OPT_TP },                        \
	{ "stats", no_argument, NULL, REC_OPT_STATS },                              \
	{ "ringbuf-kib", required_argument, NULL, REC_OPT_RINGBUF },                \
	{ "max-rss", required_argument, NULL, REC_OPT_MAXRSS }

/* The long options of REC_OPT_LINES... for a getopt table (end it with { 0 } after them). */
#define REC_LINES_LONGOPTS                                                          \
	{ "lines", no_argument, NULL, REC_OPT_LINES },                              \
	{ "top", required_argument, NULL, REC_OPT_TOP },                            \
	{ "stacks", required_argument, NULL, REC_OPT_STACKS },                      \
	{ "speedscope", required_argument, NULL, REC_OPT_SPEEDSCOPE },              \
	{ "pprof", required_argument, NULL, REC_OPT_PPROF }

/* Their help lines. */
extern const char rec_lines_help[];

/* The help lines of the shared options. */
extern const char rec_opts_help[];

/*
 * Check the combination (the smallest granularity is one page, ...). Returns 0, or -1 after
 * printing the error.
 */
int rec_opts_check(const struct rec_opts *o);

/*
 * Set up the backend @o asks for: the kernel one, or /proc polling when it is not available
 * (said in one line, with the reason), or exactly the one named by --backend (an error when it
 * is not available). Returns 0, or -errno after printing the error.
 */
int rec_backend(const struct rec_opts *o, struct mp_backend **out);

/*
 * Block SIGINT, SIGTERM, SIGHUP and SIGQUIT (their handlers only note them) and ignore SIGPIPE;
 * *@waitmask gets the mask the loop waits with, where they are open. Returns 0 or -errno.
 */
int rec_signals(sigset_t *waitmask);

/* The signal received since the last call, or 0; *@from_tty: sent by the terminal to the group. */
int rec_pending_signal(int *from_tty);

struct mp_recorder;

/*
 * --max-rss: when the recorded peak went over it, say so in one line (the peak, when, the limit)
 * and return REC_EXIT_OVER_BUDGET; else 0.
 */
int rec_check_budget(const struct rec_opts *o, const struct mp_recorder *rec);

/* The closing lines about the backend's counters (lost records, ...) and, with --stats, more. */
void rec_report(struct mp_backend *be, const struct rec_opts *o);

/* memory_profiler's default output name, mprofile_YYYYmmddHHMMSS.dat (local time), into @buf. */
void rec_default_output(char *buf, size_t n);

/*
 * Open @path for appending as the user @cred names; *@created says whether it was created now.
 * Returns 0 or -errno.
 */
int rec_open_output(const char *path, const struct mp_cred *cred, struct mp_dat **out,
		    int *created);

#endif
