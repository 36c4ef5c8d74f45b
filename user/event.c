#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"

static double ts_seconds(const struct timespec *ts)
{
	return ts->tv_sec + ts->tv_nsec / 1e9;
}

double mp_clock__now_epoch(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_seconds(&ts);
}

uint64_t mp_clock__now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int mp_clock__init(struct mp_clock *c)
{
	double best_gap = 1e9;
	long ps = sysconf(_SC_PAGESIZE);

	if (ps <= 0)
		return -EINVAL;
	c->page_size = ps;
	/* Bracket a REALTIME read between two MONOTONIC reads; keep the tightest of a few. */
	for (int i = 0; i < 5; i++) {
		struct timespec m0, r, m1;
		double gap;

		if (clock_gettime(CLOCK_MONOTONIC, &m0) || clock_gettime(CLOCK_REALTIME, &r) ||
		    clock_gettime(CLOCK_MONOTONIC, &m1))
			return -errno;
		gap = ts_seconds(&m1) - ts_seconds(&m0);
		if (gap < best_gap) {
			best_gap = gap;
			c->mono_to_epoch = ts_seconds(&r) - (ts_seconds(&m0) + ts_seconds(&m1)) / 2;
		}
	}
	return 0;
}

double mp_clock__epoch(const struct mp_clock *c, uint64_t ns)
{
	return c->mono_to_epoch + ns / 1e9;
}

int mp_event__decode(const void *data, size_t size, const struct mp_clock *c,
		     struct mp_sample *out)
{
	struct mp_event e;

	if (size >= sizeof(uint32_t) && *(const uint32_t *)data == MP_EV_FUNC) {
		struct mp_func_event f;

		if (size < sizeof(f))
			return -EINVAL;
		memcpy(&f, data, sizeof(f));
		memset(out, 0, sizeof(*out));
		out->kind = MP_EV_FUNC;
		out->pid = f.tgid;
		out->tid = f.tid;
		out->phase = f.phase;
		out->id = f.id;
		out->t = mp_clock__epoch(c, f.ts_ns);
		out->bytes = f.pages * c->page_size;
		memcpy(out->name, f.name, MP_FUNC_NAME_LEN);
		out->name[MP_FUNC_NAME_LEN] = 0;
		return 0;
	}
	if (size < sizeof(e))
		return -EINVAL;
	memcpy(&e, data, sizeof(e));
	if (e.kind < MP_EV_EXTREME || e.kind > MP_EV_OOM || e.kind == MP_EV_FUNC)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->kind = e.kind;
	out->pid = e.tgid;
	out->ppid = e.ppid;
	out->group = e.group;
	out->is_max = e.is_max == MP_EXT_MAX;
	out->exit_code = e.exit_code;
	out->t = mp_clock__epoch(c, e.ts_ns);
	out->bytes = e.pages * c->page_size;
	out->peak = e.peak_pages * c->page_size;
	out->peak_t = e.peak_ts_ns ? mp_clock__epoch(c, e.peak_ts_ns) : 0;
	out->group_bytes = e.group_pages * c->page_size;
	out->uid = e.uid;
	out->cgroup_id = e.cgroup_id;
	out->window_tag = e.window_tag;
	out->window_bytes = e.window_pages * c->page_size;
	memcpy(out->comm, e.comm, MP_COMM_LEN);
	out->comm[MP_COMM_LEN] = 0;
	return 0;
}
