/*
 * mp_event decoding: ring-buffer records (bpf/mprof.h, pages and monotonic nanoseconds) into
 * what the rest of userspace works with (bytes and Unix epoch seconds). Pure logic.
 */
#ifndef MP_EVENT_H
#define MP_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>


#include "mprof.h"

/* Converts kernel units: CLOCK_MONOTONIC ns -> epoch seconds, pages -> bytes. */
struct mp_clock {
	double mono_to_epoch; /* seconds to add to a monotonic time to get Unix time */
	uint64_t page_size;
};

/* Measure the offset between CLOCK_REALTIME and CLOCK_MONOTONIC now. Returns 0 or -errno. */
int mp_clock__init(struct mp_clock *c);
/* Epoch seconds of monotonic nanoseconds @ns. */
double mp_clock__epoch(const struct mp_clock *c, uint64_t ns);
/* The current time in epoch seconds, and in monotonic nanoseconds. */
double mp_clock__now_epoch(void);
uint64_t mp_clock__now_mono_ns(void);

/* A decoded kernel event. */
struct mp_sample {
	enum mp_event_kind kind;
	int32_t pid;	   /* tgid (0 for group events) */
	int32_t ppid;	   /* FORK: parent */
	uint32_t group;
	int is_max;	   /* EXTREME: 1 for a local maximum, 0 for a minimum */
	int exit_code;	   /* EXIT */
	double t;	   /* epoch seconds */
	uint64_t bytes;	   /* EXTREME: value; EXIT: last RSS; FORK: RSS at birth */
	uint64_t peak;	   /* EXIT: the process's peak, bytes */
	double peak_t;	   /* EXIT: when, epoch seconds */
	uint64_t group_bytes; /* EXEC: the group's sum right after it */
	uint32_t uid;	      /* FORK, EXEC, JOIN: effective uid */
	uint64_t cgroup_id;   /* FORK, EXEC, JOIN: cgroup v2 id */
	uint32_t window_tag;  /* EXIT, LEAVE: epoch of window_bytes */
	uint64_t window_bytes; /* EXIT, LEAVE: its maximum in that window */
	char comm[MP_COMM_LEN + 1];
	/* MP_EV_FUNC */
	int32_t tid;
	int phase; /* enum mp_func_phase */
	uint64_t id;
	char name[MP_FUNC_NAME_LEN + 1];
};

/*
 * Decode one ring-buffer record of @size bytes at @data into @out using clock @c.
 * Returns 0, or -EINVAL for a short record or an unknown kind (the caller counts and skips it).
 */
int mp_event__decode(const void *data, size_t size, const struct mp_clock *c,
		     struct mp_sample *out);

#endif
