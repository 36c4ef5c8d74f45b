/*
 * mp_backend: where measurements come from. Two implementations share this interface:
 *  - "kernel": BPF programs follow the exact RSS of the tracked processes and of all their
 *    descendants and report turning points, births and deaths (user/kbackend.c);
 *  - "proc": polling /proc at each interval tick, for when BPF cannot be used (user/procbackend.c).
 * A backend feeds a recorder (user/recorder.h); it never prints.
 *
 * Groups: every tracked root process names a group; its descendants join it. The MEM series of
 * mprof run with -C is a group's sum. A later fleet mode tracks many roots in many groups.
 */
#ifndef MP_BACKEND_H
#define MP_BACKEND_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <bpf/libbpf.h>

#include "recorder.h"

/* What the /proc backend reads for each process (memory_profiler's --backend names). */
enum mp_proc_metric {
	MP_METRIC_RSS = 0, /* /proc/PID/status: RssFile + RssAnon + RssShmem (psutil, posix) */
	MP_METRIC_PSS,	   /* /proc/PID/smaps_rollup Pss (psutil_pss) */
	MP_METRIC_USS,	   /* /proc/PID/smaps_rollup Private_* (psutil_uss, as psutil sums it) */
};

struct mp_backend_opts {
	double granularity_mib;	 /* noise floor of turning points, MiB (default 1) */
	unsigned int ringbuf_kib; /* kernel: ring buffer size, KiB, a power of 2 (0: 4096) */
	int include_children;	 /* ticks report the group sum for MEM */
	int multiprocess;	 /* ticks report every descendant */
	int force_tracepoint;	 /* kernel: use the classic rss_stat tracepoint */
	enum mp_proc_metric metric; /* proc: what each tick reads (the kernel backend: RSS only) */
	/*
	 * kernel: where libbpf's own messages (verifier logs) go; NULL keeps them quiet. The
	 * library never prints: the caller decides.
	 */
	int (*libbpf_log)(enum libbpf_print_level level, const char *fmt, va_list ap);
};

struct mp_backend_stats {
	uint64_t events;	/* records received */
	uint64_t lost;		/* records the kernel could not queue */
	uint64_t procs_dropped; /* descendants not followed (map full) */
	uint64_t bad_records;	/* records that did not decode */
};

struct mp_backend {
	const char *name;
	/* "tp_btf/rss_stat", "tracepoint/kmem/rss_stat" or "/proc polling": what measures. */
	const char *method;
	/* Follow @pid and its future descendants in group @group. Returns 0 or -errno. */
	int (*track)(struct mp_backend *b, pid_t pid, unsigned int group);
	/*
	 * Wait at most @timeout_ms for events and feed them to @rec. Returns 0 (also when
	 * interrupted by a signal) or -errno.
	 */
	int (*wait)(struct mp_backend *b, int timeout_ms, struct mp_recorder *rec);
	/* An interval tick: feed the current values of root @root (group @group) to @rec. */
	int (*tick)(struct mp_backend *b, pid_t root, unsigned int group, struct mp_recorder *rec);
	/* The run is over: drain what is left and feed the known peaks. Returns 0 or -errno. */
	int (*finish)(struct mp_backend *b, pid_t root, unsigned int group,
		      struct mp_recorder *rec);
	void (*stats)(struct mp_backend *b, struct mp_backend_stats *out);
	/*
	 * The fd of the RSS page shared with the CPython hook (bpf/mprof.h struct mp_rss_page),
	 * for a child to inherit, or -EOPNOTSUPP. The backend keeps ownership. NULL: unsupported.
	 */
	int (*rss_page_fd)(struct mp_backend *b);
	/* Publish tracked process @pid's RSS in that page from now on. Returns 0 or -errno. */
	int (*share_rss)(struct mp_backend *b, pid_t pid);
	/*
	 * Follow the USDT probes (mprof:func_entry, func_exit, timestamp) of the CPython hook's
	 * shared objects in folder @dir for process @pid: each becomes an MP_EV_FUNC event.
	 * Returns the number of objects attached (0 if none was found) or -errno. NULL: unsupported.
	 */
	int (*listen_hook)(struct mp_backend *b, pid_t pid, const char *dir);
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
