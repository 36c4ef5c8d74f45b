/* The turning-point rule the BPF program runs (bpf/zigzag.h), on synthetic series. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "mprof.h"
#include "zigzag.h"

struct out {
	__u64 v[64], ts[64];
	__u32 max[64];
	int n;
};

static void feed(struct mp_zigzag *z, const __u64 *vals, int n, __u64 gran, struct out *o)
{
	for (int i = 0; i < n; i++) {
		__u64 v, ts;
		__u32 m;

		if (mp_zigzag_update(z, vals[i], 100 + i, gran, &v, &ts, &m)) {
			o->v[o->n] = v;
			o->ts[o->n] = ts;
			o->max[o->n] = m;
			o->n++;
		}
	}
}

static void spike_gives_exact_max_and_time(void **state)
{
	struct mp_zigzag z = { 0 };
	struct out o = { 0 };
	const __u64 vals[] = { 10, 50, 300, 310, 305, 20, 10, 10 };

	(void)state;
	feed(&z, vals, 8, 8, &o);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.v[0], 310);
	assert_int_equal(o.ts[0], 103); /* the time of the 310, not of the fall */
	assert_int_equal(o.max[0], MP_EXT_MAX);
}

static void jitter_below_granularity_emits_nothing(void **state)
{
	struct mp_zigzag z = { 0 };
	struct out o = { 0 };
	__u64 vals[40];

	(void)state;
	for (int i = 0; i < 40; i++)
		vals[i] = 1000 + (i % 2) * 7; /* +-7 pages, granularity 8 */
	feed(&z, vals, 40, 8, &o);
	assert_int_equal(o.n, 0);
}

static void ten_spikes_give_ten_maxima_and_minima(void **state)
{
	struct mp_zigzag z = { 0 };
	struct out o = { 0 };
	__u64 vals[60];
	int n = 0, maxima = 0, minima = 0;

	(void)state;
	for (int s = 0; s < 10; s++) {
		vals[n++] = 100;
		vals[n++] = 400 + s; /* each peak a little different */
		vals[n++] = 250;
		vals[n++] = 101;
	}
	vals[n++] = 100;
	feed(&z, vals, n, 8, &o);
	for (int i = 0; i < o.n; i++) {
		if (o.max[i] == MP_EXT_MAX) {
			assert_int_equal(o.v[i], 400 + maxima);
			maxima++;
		} else {
			minima++;
		}
	}
	assert_int_equal(maxima, 10);
	assert_true(minima >= 9);
}

static void monotonic_ramp_emits_nothing_until_it_turns(void **state)
{
	struct mp_zigzag z = { 0 };
	struct out o = { 0 };
	__u64 vals[30];

	(void)state;
	for (int i = 0; i < 30; i++)
		vals[i] = i * 100;
	feed(&z, vals, 30, 8, &o);
	assert_int_equal(o.n, 0);
	assert_int_equal(z.ext, 2900);
	assert_int_equal(z.dir, 1);
}

static void minimum_is_reported_when_value_rises_again(void **state)
{
	struct mp_zigzag z = { 0 };
	struct out o = { 0 };
	const __u64 vals[] = { 500, 100, 40, 60, 200 };

	(void)state;
	feed(&z, vals, 5, 8, &o);
	/* 500 is the first value, so the fall to 100 reports it as a maximum, then 40 as minimum */
	assert_int_equal(o.n, 2);
	assert_int_equal(o.v[0], 500);
	assert_int_equal(o.max[0], MP_EXT_MAX);
	assert_int_equal(o.v[1], 40);
	assert_int_equal(o.max[1], MP_EXT_MIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spike_gives_exact_max_and_time),
		cmocka_unit_test(jitter_below_granularity_emits_nothing),
		cmocka_unit_test(ten_spikes_give_ten_maxima_and_minima),
		cmocka_unit_test(monotonic_ramp_emits_nothing_until_it_turns),
		cmocka_unit_test(minimum_is_reported_when_value_rises_again),
	};

	return cmocka_run_group_tests_name("zigzag", tests, NULL, NULL);
}
