/*
 * mp_backend: where measurements come from. Two implementations share this interface:
 *  - "kernel": BPF programs follow the exact RSS of the tracked processes and of all their
 *    descendants and report turning points, births and deaths (user/kbackend.c);
 *  - "proc": polling /proc at each interval tick, for when BPF cannot be used (user/procbackend.c).
 * A backend never prints and never decides what is written where: it pushes events (decoded
 * kernel records) to whoever consumes them and answers questions about the current values; the
 * recording loop (user/loop.h) and its sinks do the rest.
 *
 * Groups: every tracked root process names a group; its descendants join it. The MEM series of
 * mprof run with -C is a group's sum.
 */
#ifndef MP_BACKEND_H
#define MP_BACKEND_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <bpf/libbpf.h>

#include "event.h"
#include "pyframe.h"

/* What the /proc backend reads for each process (memory_profiler's --backend names). */
enum mp_proc_metric {
	MP_METRIC_RSS = 0, /* /proc/PID/status: RssFile + RssAnon + RssShmem (psutil, posix) */
	MP_METRIC_PSS,	   /* /proc/PID/smaps_rollup Pss (psutil_pss) */
	MP_METRIC_USS,	   /* /proc/PID/smaps_rollup Private_* (psutil_uss, as psutil sums it) */
};

struct mp_backend_opts {
	double granularity_mib;	 /* noise floor of turning points, MiB (default 1) */
	unsigned int ringbuf_kib; /* kernel: ring buffer size, KiB, a power of 2 (0: 4096) */
	int include_children;	 /* keep group sums (two atomics more per kernel event) */
	int descendants;	 /* proc: read the descendants too (-C or -M) */
	unsigned int max_procs;	 /* kernel: processes the table holds (0: MP_MAX_PROCS) */
	/* kernel, fleet: processes join and leave by these selectors, decided in the kernel */
	const struct mp_selectors *fleet;
	int window;		 /* kernel: keep window maxima (the exporter) */
	int floor;		 /* kernel, benchmarks: an empty rss_stat program instead (no values) */
	int lines;		 /* kernel: line attribution maps and the Python stack walk */
	int force_tracepoint;	 /* kernel: use the classic rss_stat tracepoint */
	enum mp_proc_metric metric; /* proc: what each tick reads (the kernel backend: RSS only) */
	/*
	 * kernel: where libbpf's own messages (verifier logs) go; NULL keeps them quiet. The
	 * library never prints: the caller decides.
	 */
	int (*libbpf_log)(enum libbpf_print_level level, const char *fmt, va_list ap);
};

/*
 * Which processes a fleet follows: every selector given must match (MP_SEL_* in bpf/mprof.h).
 * --pid: the listed processes and their descendants; --name: the comm contains the text;
 * --cgroup: in that cgroup v2 or below; --user: that effective uid; --all: every process.
 */
struct mp_selectors {
	unsigned int flags;
	const pid_t *pids;
	size_t npids;
	char name[MP_COMM_LEN];
	uint64_t cgroup_id;
	unsigned int cgroup_level;
	uid_t uid;
};

struct mp_backend_stats {
	uint64_t events;	/* records received */
	uint64_t lost;		/* records the kernel could not queue */
	uint64_t procs_dropped; /* descendants not followed (map full) */
	uint64_t bad_records;	/* records that did not decode */
	uint64_t oom_kills;	/* OOM victims among the tracked processes */
};

/* What a backend knows of one tracked process (or, with pid 0, of one group's sum) right now. */
struct mp_view {
	pid_t pid;	    /* 0 for a group */
	pid_t ppid;	    /* the tracked parent, 0 for a root */
	unsigned int group;
	int started;	    /* 0 while a spawned command has not exec'd yet (nothing to show) */
	uint64_t rss;	    /* bytes now */
	uint64_t peak;	    /* highest bytes since tracked (since its exec for a spawned command) */
	double peak_t;	    /* epoch seconds of the peak */
	/*
	 * The top of a rise that has not fallen back by the granularity, so no turning point was
	 * sent for it yet: bytes and epoch seconds, or rising == 0 when the value is not rising.
	 */
	uint64_t rising;
	double rising_t;
	/* who it is (kernel backend; the proc backend leaves them empty) */
	char comm[MP_COMM_LEN + 1];
	uint32_t uid;
	uint64_t cgroup_id;
	unsigned int oom_kills;
	/*
	 * The highest RSS between the last two mp_backend.window() calls, when the kernel saw a
	 * change in that window (window_seen); otherwise the value did not move in it.
	 */
	uint64_t window_max;
	int window_seen;
};

/* How to start following a process. */
enum mp_track_mode {
	/*
	 * A process that is already running: its current value is the start value (read at once,
	 * exactly where the backend can).
	 */
	MP_TRACK_NOW = 0,
	/*
	 * A command mprof forked and that has not exec'd yet: nothing before its exec is its own
	 * (the pages are mprof's), so tracking starts at the exec.
	 */
	MP_TRACK_AT_EXEC = 1,
};

/* Receives events from mp_backend.consume(); returns 0 or -errno to stop. */
typedef int (*mp_event_fn)(void *ctx, const struct mp_sample *s);
/* Receives views from mp_backend.each(); returns 0 or -errno to stop. */
typedef int (*mp_view_fn)(void *ctx, const struct mp_view *v);

struct mp_backend {
	const char *name;
	/* "tp_btf/rss_stat", "tracepoint/kmem/rss_stat" or "/proc polling": what measures. */
	const char *method;
	/* Follow @pid and its future descendants in group @group. Returns 0 or -errno. */
	int (*track)(struct mp_backend *b, pid_t pid, unsigned int group, enum mp_track_mode mode);
	/* A descriptor that becomes readable when events are waiting, or -1 (poll on time only). */
	int (*fd)(struct mp_backend *b);
	/* Hand every waiting event to @fn. Returns 0, or the first error of @fn or of reading. */
	int (*consume)(struct mp_backend *b, mp_event_fn fn, void *ctx);
	/*
	 * A new interval starts: backends that poll take their readings now (the kernel backend
	 * has nothing to do). Returns 0 or -errno.
	 */
	int (*refresh)(struct mp_backend *b);
	/* The view of tracked process @pid. Returns 0, or -ESRCH if it is not (or no longer) tracked. */
	int (*proc)(struct mp_backend *b, pid_t pid, struct mp_view *out);
	/* The view of group @group's sum. Returns 0 or -errno. */
	int (*group)(struct mp_backend *b, unsigned int group, struct mp_view *out);
	/* Every tracked process of @group, in no particular order. Returns 0 or the first error. */
	int (*each)(struct mp_backend *b, unsigned int group, mp_view_fn fn, void *ctx);
	void (*stats)(struct mp_backend *b, struct mp_backend_stats *out);
	/*
	 * Make the start values of the processes just tracked with MP_TRACK_NOW exact now (the
	 * kernel backend sums the per-CPU counters in one pass over the tasks, even for processes
	 * that raise no event). Returns 0 or -errno.
	 */
	int (*settle)(struct mp_backend *b);
	/*
	 * Fleet: add every running process the selectors match, and call @fn with each one's pid.
	 * Returns 0 or -errno. NULL: unsupported.
	 */
	int (*discover)(struct mp_backend *b, int (*fn)(void *ctx, pid_t pid), void *ctx);
	/* Close the current window of maxima (see mp_view.window_max). Returns 0 or -errno. */
	int (*window)(struct mp_backend *b);
	/*
	 * --lines (kernel, with mp_backend_opts.lines): from now on charge tracked process @pid's
	 * RSS changes to the Python stacks its threads run, read with @py (user/pytarget.h).
	 * Returns 0 or -errno. NULL: unsupported.
	 */
	int (*lines_add)(struct mp_backend *b, pid_t pid, const struct mp_pyproc *py);
	/*
	 * Every (process, stack) charged so far with its counts (bpf/mprof.h: pages, and
	 * MP_PY_STACK_NONE, MP_PY_STACK_UNKNOWN, MP_LINE_FOREIGN). Returns 0 or the first error.
	 */
	int (*lines_each)(struct mp_backend *b,
			  int (*fn)(void *ctx, pid_t pid, uint64_t stack, const struct mp_line_val *v),
			  void *ctx);
	/* The frames of stack @id. Returns 0, or -ENOENT. */
	int (*lines_stack)(struct mp_backend *b, uint64_t id, struct mp_pystack *out);
	/*
	 * A descriptor that becomes readable when new (process, stack) keys were charged, so that
	 * they are named while their code is alive, or -1. NULL: unsupported.
	 */
	int (*lines_fd)(struct mp_backend *b);
	/*
	 * Read those announcements in their order, calling @code with each code snapshot (a
	 * struct mp_pycode_snap of bpf/pyframe.h, @size bytes) and @stack with each new
	 * (process, stack) key: a stack comes after the snapshots of its code objects that were
	 * not sent before. Returns how many keys there were, or -errno (or the first error of a
	 * callback).
	 */
	int (*lines_poll)(struct mp_backend *b, int (*stack)(void *ctx, pid_t pid, uint64_t stack),
			  int (*code)(void *ctx, pid_t pid, const struct mp_pycode_snap *snap,
				      size_t size),
			  void *ctx);
	/*
	 * The walk's counters, summed over CPUs, the changes the table could not take and the new
	 * stacks that could not be announced (the ring full).
	 */
	void (*lines_stats)(struct mp_backend *b, struct mp_pystats *out, uint64_t *dropped,
			    uint64_t *unannounced);
	/*
	 * The fd of the RSS page shared with the CPython hook (bpf/mprof.h struct mp_rss_page),
	 * for a child to inherit, or -EOPNOTSUPP. The backend keeps ownership. NULL: unsupported.
	 */
	int (*rss_page_fd)(struct mp_backend *b);
	/* Publish tracked process @pid's RSS in that page from now on. Returns 0 or -errno. */
	int (*share_rss)(struct mp_backend *b, pid_t pid);
	/* Accepts NULL. */
	void (*free)(struct mp_backend *b);
};

/*
 * Load and attach the BPF programs. Returns 0 or -errno; on failure *@why (if not NULL) points
 * to a static one-line reason, such as "not running as root".
 */
int mp_backend_kernel__new(struct mp_backend **out, const struct mp_backend_opts *opts,
			   const char **why);

/* The /proc polling backend. Returns 0 or -errno. */
int mp_backend_proc__new(struct mp_backend **out, const struct mp_backend_opts *opts);

/*
 * Read the PSS (MP_METRIC_PSS) or USS (MP_METRIC_USS) of @pid in bytes from
 * /proc/PID/smaps_rollup (/proc/PID/smaps before Linux 4.14) into @out. Returns 0 or -errno
 * (-ESRCH when the process is gone).
 */
int mp_proc_smaps(pid_t pid, enum mp_proc_metric metric, uint64_t *out);

/*
 * Read the resident pages of @pid from /proc/PID/status (RssFile, RssAnon, RssShmem, in that
 * order, in bytes) into @out. Returns 0 or -errno (-ESRCH when the process is gone).
 */
int mp_proc_rss(pid_t pid, uint64_t out[3]);

#endif
