/* meter.h - what a line profiler measures: memory_profiler's backends.
 *
 * Each profiler has one meter, fixed when it is made (LineProfiler(backend=,
 * include_children=)); every frame of the profiler carries it, so profilers
 * with different meters can nest without mixing units:
 *
 *   MP_METER_RSS          resident set (rss.h: the loader's kernel page, exact
 *                         with per-thread peaks; else /proc/self/statm) -
 *                         memory_profiler's 'psutil' and 'posix';
 *   MP_METER_PSS/USS      proportional / unique set size from
 *                         /proc/self/smaps_rollup (/proc/self/smaps before
 *                         Linux 4.14) - 'psutil_pss', 'psutil_uss', with no
 *                         psutil; the peak is the highest value sampled;
 *   MP_METER_TRACEMALLOC  bytes traced by tracemalloc, every file (0.61 keeps
 *                         the traces of the profiled file only); the peak is
 *                         tracemalloc's own (reset at each line start) from
 *                         3.9 on, sampled on 3.8;
 *   | MP_METER_CHILDREN   RSS/PSS/USS plus that of every descendant process
 *                         (0.61's include_children); sampled peak.
 *
 * All values are bytes. Called with the GIL held. The RSS meter, the default,
 * is inline and costs what rss.h costs; the others are out of line.
 */
#ifndef MPROF_METER_H
#define MPROF_METER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "rss.h"

enum mp_meter_kind {
	MP_METER_RSS = 0,
	MP_METER_PSS = 1,
	MP_METER_USS = 2,
	MP_METER_TRACEMALLOC = 3,
};
#define MP_METER_KIND_MASK 0x3
#define MP_METER_CHILDREN 0x4
#define MP_METER_SLOTS 8	/* kind | children */

/*
 * mp_meter_parse - the meter of memory_profiler's backend name (None, 'psutil',
 * 'posix', 'psutil_pss', 'psutil_uss', 'tracemalloc') and include_children.
 * Prepares what the meter needs (tracemalloc's functions). Returns the meter,
 * or -1 with a Python exception set (ValueError for an unknown name).
 */
int mp_meter_parse(PyObject *backend, int include_children);

/* Out-of-line paths of the meters other than plain RSS. */
uint64_t mp_meter_now_slow(int mk);
void mp_meter_mark_slow(int mk, uint64_t now);
uint64_t mp_meter_peak_slow(int mk);

/* mp_meter_now - the current value of meter mk (0 when it cannot be read). */
static inline uint64_t mp_meter_now(int mk)
{
	if (__builtin_expect(mk == MP_METER_RSS, 1))
		return rss_now();
	return mp_meter_now_slow(mk);
}

/* mp_meter_mark - start the calling thread's peak window of mk at `now`. */
static inline void mp_meter_mark(int mk, uint64_t now)
{
	if (__builtin_expect(mk == MP_METER_RSS, 1)) {
		rss_mark(now);
		return;
	}
	mp_meter_mark_slow(mk, now);
}

/* mp_meter_peak - the highest value of mk since the thread's last mark. */
static inline uint64_t mp_meter_peak(int mk)
{
	if (__builtin_expect(mk == MP_METER_RSS, 1))
		return rss_peak_since_mark();
	return mp_meter_peak_slow(mk);
}

/*
 * mp_smaps_read - PSS (MP_METER_PSS) or USS (MP_METER_USS) of pid (0: this
 * process) in bytes, from /proc/PID/smaps_rollup or /proc/PID/smaps. Returns
 * 0 and sets *out, or -errno (-ESRCH when the process is gone).
 */
int mp_smaps_read(long pid, int kind, uint64_t *out);

/*
 * mp_children_sum - the sum over every descendant of this process of its RSS
 * (MP_METER_RSS), PSS or USS, in bytes, found through
 * /proc/self/task/TID/children. Descendants that vanish meanwhile count 0.
 */
uint64_t mp_children_sum(int kind);

#endif
