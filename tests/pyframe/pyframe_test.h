/*
 * The test object's records (tests/pyframe/pyframe_test.bpf.c <-> pyframe_attach.c): RSS moved
 * by one process, aggregated per Python stack id (bpf/pyframe.h).
 */
#ifndef MP_PYFRAME_TEST_H
#define MP_PYFRAME_TEST_H

/* Stack key of events the target did not raise itself (reclaim, another process's access). */
#define PFT_FOREIGN (~0ull)

/* What the program does on each event (rodata `mode`). */
#define PFT_MODE_WALK 0	  /* mp_py_current_stack(): the production path, fast path included */
#define PFT_MODE_NOWALK 1 /* no stack: the cost of everything else, for the per-event figures */
#define PFT_MODE_FULL 2	  /* forget the thread's last chain and stack first: a full walk,
			     every code object read, at every event */
#define PFT_MODE_READS 3  /* no stack; 8 reads of 8 bytes of the user stack: what one user
			     read costs on this machine, ((READS - NOWALK) / 8) */

/* Value of the agg map (key: stack id). Pages. */
struct pft_agg {
	__u64 grown;
	__u64 freed;
	__u64 events;
};

#endif
