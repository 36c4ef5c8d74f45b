/*
 * The record ABI shared by bpf/mprof.bpf.c and user/: fixed-width types, explicit padding, a kind
 * on every ring-buffer record. Amounts of memory are in pages (the kernel's unit for the RSS
 * counters); times are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns()).
 */
#ifndef MP_BPF_MPROF_H
#define MP_BPF_MPROF_H

/* Upper bounds of the maps; the loader may lower them. */
#define MP_MAX_PROCS 16384 /* processes followed at once (--max-procs, at most MP_PROCS_LIMIT) */
#define MP_PROCS_LIMIT 262144
#define MP_MAX_GROUPS 64
/* The per-CPU sum loop is bounded for the verifier; more CPUs fall back to the classic tracepoint. */
#define MP_MAX_CPUS 512
#define MP_COMM_LEN 16

/* What the kernel side counts as resident: the three members /proc/PID/status sums into VmRSS. */
enum mp_member {
	MP_FILE = 0,
	MP_ANON = 1,
	MP_SHMEM = 2,
	MP_NR_MEMBERS = 3,
};

enum mp_event_kind {
	MP_EV_EXTREME = 1,	 /* a turning point of one process's RSS (tgid) */
	MP_EV_GROUP_EXTREME = 2, /* a turning point of a group's summed RSS (group) */
	MP_EV_FORK = 3,		 /* tgid was born to ppid and is now tracked */
	MP_EV_EXEC = 4,		 /* tgid exec'd comm */
	MP_EV_EXIT = 5,		 /* tgid is gone: its last RSS, peak and peak time */
	MP_EV_FUNC = 6,		 /* a call boundary from the CPython hook (struct mp_func_event) */
	MP_EV_JOIN = 7,		 /* fleet: tgid exec'd into a process the selectors match */
	MP_EV_LEAVE = 8,	 /* fleet: tgid exec'd into one they do not: no longer followed */
	MP_EV_OOM = 9,		 /* the kernel chose tgid as an OOM victim */
};

/* Fleet selectors (sel_flags in the BPF object): a process must match every one given. */
#define MP_SEL_PID 1u	 /* one of the sel_pids, or a descendant of one */
#define MP_SEL_NAME 2u	 /* its comm contains sel_name */
#define MP_SEL_CGROUP 4u /* it is in the cgroup v2 sel_cgroup_id or below it */
#define MP_SEL_USER 8u	 /* its effective uid is sel_uid */
#define MP_SEL_ALL 16u	 /* every process with memory (kernel threads have none) */

/* What the iterator program does on each pass (iter_mode). */
enum mp_iter_mode {
	MP_ITER_REFRESH = 0,  /* exact values for the processes marked MP_PROC_FRESH */
	MP_ITER_DISCOVER = 1, /* also: add every process the selectors match (fleet start) */
};

#define MP_FUNC_NAME_LEN 128

/* Phases of MP_EV_FUNC. */
enum mp_func_phase {
	MP_FUNC_ENTRY = 0, /* a @profile'd call or a profile.timestamp block starts */
	MP_FUNC_EXIT = 1,  /* ... and ends */
};

/*
 * A call of a @profile'd function (or a profile.timestamp block) entering or leaving, with the
 * process's exact RSS at that instant. The CPython hook writes these records, whole (one write
 * of fewer than PIPE_BUF bytes, so threads never interleave), into the pipe the loader passes it
 * as MPROF_FUNC_FD; pyhook/rss_shared.h declares the same bytes (tests/unit/test_layout.c).
 * Not a ring-buffer record: no probe, no trap, nothing to tear down.
 */
struct mp_func_event {
	__u32 kind; /* MP_EV_FUNC */
	__u32 tgid;
	__u32 tid;
	__u32 phase; /* enum mp_func_phase */
	__u64 ts_ns; /* CLOCK_MONOTONIC, the kernel's bpf_ktime_get_ns() clock */
	__u64 pages; /* the process's RSS */
	__u64 id;    /* code object or block address: pairs an exit with its entry */
	char name[MP_FUNC_NAME_LEN]; /* "module.function" or ".label", NUL-terminated */
};

/* Direction flags of an extreme. */
#define MP_EXT_MAX 1
#define MP_EXT_MIN 0

struct mp_event {
	__u32 kind;
	__u32 tgid;
	__u32 ppid;  /* FORK: parent tgid */
	__u32 group; /* the group the process belongs to */
	__u64 ts_ns; /* when the value was reached (EXTREME) or the event happened */
	__u64 pages; /* EXTREME: the value; EXIT: RSS when the process exited */
	__u64 peak_pages;  /* EXIT: highest RSS of the process's life */
	__u64 peak_ts_ns;  /* EXIT: when it was reached */
	__u32 is_max;	   /* EXTREME: MP_EXT_MAX or MP_EXT_MIN */
	__s32 exit_code;   /* EXIT: the wait status as in task->exit_code */
	char comm[MP_COMM_LEN];
	__u64 group_pages; /* EXEC: the group's summed RSS right after the exec */
	__u32 uid;	   /* FORK, EXEC, JOIN: effective uid */
	__u32 window_tag;  /* EXIT, LEAVE: the epoch of window_pages */
	__u64 cgroup_id;   /* FORK, EXEC, JOIN: cgroup v2 id (its kernfs inode number) */
	__u64 window_pages; /* EXIT, LEAVE: its window maximum in the current epoch */
};

/*
 * Zig-zag turning-point detector. A turning point (local max or min) is emitted once the value
 * has moved back from it by at least the granularity, so every swing larger than the noise floor
 * reaches userspace with its exact height and time, while page-sized jitter emits nothing.
 */
struct mp_zigzag {
	__u64 ext;    /* running extreme in the current direction */
	__u64 ext_ts; /* when it was reached */
	__s32 dir;    /* 1 rising, -1 falling, 0 before the first value */
	__u32 pad;
};

/* Process flags. */
#define MP_PROC_FRESH 1u /* recompute every member on the next event (added from userspace) */
#define MP_PROC_PAGE 2u	 /* publish this process's RSS in the rss_page map (CPython hook) */
#define MP_PROC_PIDTREE 8u /* fleet: in the tree of one of the --pid processes */
#define MP_PROC_LINES 16u  /* line attribution: its RSS changes are charged to Python stacks */
/*
 * Tracked from its next exec on (a command mprof spawned): until then the process is mprof's own
 * forked image, whose pages (mprof's heap, its ring-buffer mapping) are not the command's. Its
 * RSS events are ignored and it counts 0 in its group; the exec sets every value afresh.
 */
#define MP_PROC_EXEC_WAIT 4u

/*
 * The page shared with the CPython hook (pyhook/rss_shared.h declares the same bytes for the
 * hook; tests/unit/test_layout.c checks they agree). The loader creates it as a one-element
 * BPF_F_MMAPABLE array, the child inherits its fd through MPROF_RSS_FD, and the hook maps it:
 * per line it reads rss_bytes and its thread's peak slot and resets that slot with a plain
 * store, never a syscall. On every RSS change of the publishing process, BPF stores rss_bytes
 * and raises peak_bytes[0 .. slots_used-1].
 */
#define MP_RSS_PAGE_MAGIC 0x5352504du /* "MPRS" */
#define MP_RSS_PAGE_VERSION 2u
#define MP_RSS_PAGE_SLOTS 64

struct mp_rss_page {
	__u32 magic;	  /* written last by the loader */
	__u32 version;
	__u32 nslots;	  /* MP_RSS_PAGE_SLOTS */
	__u32 slots_used; /* claimed by the hook's threads (atomic add) */
	__u64 seq;	  /* incremented after each rss_bytes update */
	__u64 rss_bytes;  /* file + anon + shmem of the publishing process, bytes */
	__u64 peak_bytes[MP_RSS_PAGE_SLOTS];
	/*
	 * The process the page describes: the fd is inherited by its descendants too (a shell in
	 * between passes it on), and they must not take the page for their own RSS.
	 */
	__u32 tgid;
	__u32 scope; /* MP_PAGE_PROCESS, or MP_PAGE_TREE: the sum over tgid and its descendants */
};

#define MP_PAGE_PROCESS 0u
#define MP_PAGE_TREE 1u

/*
 * The process table. An mmap-able array of 2^k slots, at least twice as many as processes, with
 * open addressing: tgid is looked for at slot hash(tgid), then the next MP_PROBES slots. The
 * table replaces a BPF hash map because the lookup on every page fault of every process is the
 * hottest path there is: here it is a few inlined array loads, no helper call, and userspace
 * reads every process by walking the mapped array, without a syscall. Slots are claimed with a
 * compare-and-swap of tgid (BPF and userspace alike), filled, then published by storing the
 * tgid; an exit marks the slot MP_SLOT_DEAD (reused by later claims, skipped by lookups).
 */
#define MP_SLOT_EMPTY 0u
#define MP_SLOT_DEAD 0xffffffffu
#define MP_SLOT_BUSY 0xfffffffeu
#define MP_PROBES 8
/* Knuth's multiplicative hash: the top bits of tgid * 2654435761 pick the slot. */
#define MP_HASH_MUL 2654435761u

static inline __u32 mp_slot_hash(__u32 tgid, __u32 shift)
{
	return (__u32)(tgid * MP_HASH_MUL) >> shift;
}

/* A slot of the process table. */
struct mp_proc {
	__u32 tgid; /* MP_SLOT_EMPTY, MP_SLOT_DEAD, MP_SLOT_BUSY, or the process */
	__u32 group;
	__u32 parent;
	__u32 flags;
	__u64 member[MP_NR_MEMBERS]; /* pages, exact (see mp_member) */
	__u64 rss;		     /* sum of member[] */
	__u64 peak;
	__u64 peak_ts;
	struct mp_zigzag zz;
	/*
	 * Window maxima for the exporter: slot (epoch & 1) holds the highest RSS since userspace
	 * moved window_epoch to the epoch in its tag. Userspace bumps the epoch at a scrape and
	 * reads the other slot, which BPF no longer writes.
	 */
	__u64 wmax[2];
	__u32 wtag[2];
	__u32 uid;	  /* effective uid when it joined or last exec'd */
	__u32 oom_kills;  /* times chosen as an OOM victim */
	__u64 cgroup_id;
	char comm[MP_COMM_LEN];
};

/* Value of the groups array map: the sum over the group's live processes. */
struct mp_group {
	__u32 nprocs;
	__s64 rss;
	__u64 peak;
	__u64 peak_ts;
	struct mp_zigzag zz;
};

/*
 * Line attribution (--lines): RSS moved per process and Python stack. The key's stack is a
 * bpf/pyframe.h stack id (MP_PY_STACK_NONE: the thread had no Python frame, a native thread or
 * C code; MP_PY_STACK_UNKNOWN: its stack could not be read) or MP_LINE_FOREIGN: the change was
 * raised outside the process (kernel reclaim, its teardown, another process touching its
 * memory), where no thread of it runs. Values in pages.
 */
#define MP_LINE_FOREIGN (~0ull)
#define MP_MAX_LINE_KEYS 65536

struct mp_line_key {
	__u32 tgid;
	__u32 pad;
	__u64 stack;
};

struct mp_line_val {
	__u64 grown;  /* pages brought in */
	__u64 freed;  /* pages given back */
	__u64 events; /* RSS changes */
};

/* Counters the loader reads at the end (global, in .bss). */
struct mp_stats {
	__u64 live;	     /* processes in the table now */
	__u64 events;	     /* ring-buffer records submitted */
	__u64 lost;	     /* records dropped because the ring buffer was full */
	__u64 procs_dropped; /* descendants not tracked because the procs map was full */
	__u64 oom_kills;     /* OOM victims among the tracked processes */
	__u64 lines_dropped; /* line attribution: changes not counted, the table of stacks full */
	__u64 lines_new_lost; /* line attribution: new stacks not announced (ring full) */
};

#endif
