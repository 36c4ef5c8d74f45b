/* rss.h - where the hook gets the resident set size from.
 *
 * Two implementations sit behind one tiny inline API, chosen once by
 * rss_init():
 *
 *  - shared (kernel-exact): the loader passes a memory-mapped BPF array map
 *    (layout in rss_shared.h) through the fd named by $MPROF_RSS_FD. The
 *    current RSS and a per-thread peak are plain memory reads; rss_mark() is
 *    a plain store. No syscall per line.
 *  - statm (fallback, no BPF / not root): /proc/self/statm is opened once
 *    and read with pread() at each call of rss_now(). The peak is the max of
 *    the values this thread sampled since its last mark, so a spike inside a
 *    line is seen only if some profiled line boundary sampled it.
 *
 * All values are bytes. The functions below are called with the GIL held
 * but may run on any thread; the peak register is per thread.
 */
#ifndef MPROF_RSS_H
#define MPROF_RSS_H

#include <stdint.h>
#include "rss_shared.h"

enum rss_kind { RSS_NONE = 0, RSS_STATM, RSS_SHARED };

struct rss_src {
	enum rss_kind kind;
	int statm_fd;				/* RSS_STATM */
	uint64_t page_size;
	volatile struct mp_rss_shared *shared;	/* RSS_SHARED */
	char why[160];				/* why the fallback was chosen */
};

extern struct rss_src rss_g;

/* Per-thread state: the statm peak register, or the claimed shared slot. */
struct rss_thread {
	uint64_t peak;		/* RSS_STATM: max sampled since rss_mark() */
	int slot;		/* RSS_SHARED: index into peak_bytes, -1 unclaimed */
};
extern _Thread_local struct rss_thread rss_t;

/*
 * rss_init - choose and open the RSS source; idempotent.
 * Tries $MPROF_RSS_FD first (when set), then /proc/self/statm. When the
 * shared map is unusable, rss_g.why says why in one lowercase line (no
 * trailing full stop). Returns 0, or -errno when no source works at all.
 */
int rss_init(void);

/* rss_release - unmap/close the source (module teardown). */
void rss_release(void);

/* Slow paths, out of line. */
uint64_t rss_statm_read(void);
int rss_claim_slot(void);

/*
 * rss_now - current RSS in bytes (0 if it cannot be read). In statm mode
 * this also raises the calling thread's peak register.
 */
static inline uint64_t rss_now(void)
{
	if (rss_g.kind == RSS_SHARED)
		return __atomic_load_n(&rss_g.shared->rss_bytes, __ATOMIC_RELAXED);
	uint64_t v = rss_statm_read();
	if (v > rss_t.peak)
		rss_t.peak = v;
	return v;
}

/*
 * rss_mark - start a new peak window for the calling thread at `now` (a
 * value just returned by rss_now(), so marking costs no second read).
 */
static inline void rss_mark(uint64_t now)
{
	if (rss_g.kind == RSS_SHARED) {
		int s = rss_t.slot >= 0 ? rss_t.slot : rss_claim_slot();
		__atomic_store_n(&rss_g.shared->peak_bytes[s], now, __ATOMIC_RELAXED);
		return;
	}
	rss_t.peak = now;
}

/*
 * rss_peak_since_mark - the highest RSS of the calling thread's window
 * since its last rss_mark() (in shared mode: seen by the kernel on any
 * thread of the process; in statm mode: sampled by this thread).
 */
static inline uint64_t rss_peak_since_mark(void)
{
	if (rss_g.kind == RSS_SHARED) {
		int s = rss_t.slot >= 0 ? rss_t.slot : rss_claim_slot();
		uint64_t p = __atomic_load_n(&rss_g.shared->peak_bytes[s], __ATOMIC_RELAXED);
		uint64_t c = __atomic_load_n(&rss_g.shared->rss_bytes, __ATOMIC_RELAXED);
		return p > c ? p : c;
	}
	return rss_t.peak;
}

#endif
