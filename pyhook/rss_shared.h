/* rss_shared.h - the page the loader shares with the CPython hook.
 *
 * This is the proposed kernel/user ABI for the kernel-exact RSS source. The
 * loader (`mprof run`, root) creates a BPF_MAP_TYPE_ARRAY with
 * BPF_F_MMAPABLE, one element of this struct, keeps it updated from the
 * rss_stat tracepoint of the profiled mm, and hands the map fd to the Python
 * child as an inherited fd named by the environment variable MPROF_RSS_FD
 * (a decimal fd number). The hook mmaps it read-write and never makes a
 * syscall per line: it reads rss_bytes and its own peak slot, and resets its
 * slot at the start of each line.
 *
 * Fixed-width types, explicit padding, no pointers: the same bytes are seen
 * by BPF, by the loader and by the hook.
 */
#ifndef MPROF_RSS_SHARED_H
#define MPROF_RSS_SHARED_H

#include <stdint.h>

#define MP_RSS_ENV	"MPROF_RSS_FD"
#define MP_RSS_MAGIC	0x5352504dU	/* "MPRS" little-endian */
#define MP_RSS_VERSION	2U
/* One peak register per Python thread that runs profiled code; 64 covers
 * the thread pools we have seen, the rest share the last slot (documented
 * imprecision, never a wrong current value). */
#define MP_RSS_SLOTS	64U

struct mp_rss_shared {
	uint32_t magic;		/* MP_RSS_MAGIC, written last by the loader */
	uint32_t version;	/* MP_RSS_VERSION */
	uint32_t nslots;	/* MP_RSS_SLOTS */
	uint32_t slots_used;	/* claimed by the hook (atomic add); BPF raises
				 * peak_bytes[0 .. slots_used-1] only */
	uint64_t seq;		/* BPF increments after each rss_bytes update */
	uint64_t rss_bytes;	/* current RSS of the profiled mm, bytes:
				 * MM_FILEPAGES + MM_ANONPAGES + MM_SHMEMPAGES */
	uint64_t peak_bytes[MP_RSS_SLOTS];
				/* BPF: peak[i] = max(peak[i], rss_bytes) on every
				 * change; hook thread i: peak[i] = rss_bytes at
				 * the start of a line (a plain store) */
	uint32_t tgid;		/* the process described: only it may use the page */
	uint32_t scope;		/* 0: its RSS; 1: the sum over it and its descendants */
};

/*
 * Call boundaries for the loader. In Python mode under `mprof run` (kernel backend) the loader
 * passes the write end of a pipe as an inherited fd named by MPROF_FUNC_FD; the hook writes one
 * record per @profile'd call entry and exit and per profile.timestamp() block edge, each with
 * one write() of fewer than PIPE_BUF bytes (so records of several threads never interleave),
 * and the loader turns each finished call into a FUNC line at once. The same bytes as
 * struct mp_func_event in bpf/mprof.h (tests/unit/test_layout.c).
 */
#define MP_FUNC_ENV	"MPROF_FUNC_FD"
#define MP_FUNC_KIND	6U	/* MP_EV_FUNC */
#define MP_FUNC_NAME	128

struct mp_func_shared {
	uint32_t kind;		/* MP_FUNC_KIND */
	uint32_t tgid;		/* getpid() of the writer: forked children are told apart */
	uint32_t tid;
	uint32_t phase;		/* 0 entry, 1 exit */
	uint64_t ts_ns;		/* CLOCK_MONOTONIC */
	uint64_t pages;		/* RSS at that instant, pages */
	uint64_t id;		/* code object or block id: pairs an exit with its entry */
	char name[MP_FUNC_NAME];	/* "module.function" or ".label", NUL-terminated */
};

#endif
