/* Decoding of ring-buffer records (user/event.c). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "event.h"

static void decodes_units_and_fields(void **state)
{
	struct mp_clock c = { .mono_to_epoch = 1000.0, .page_size = 4096 };
	struct mp_event e = { .kind = MP_EV_EXIT, .tgid = 42, .ppid = 7, .group = 3,
			      .ts_ns = 2500000000ull, .pages = 10, .peak_pages = 256,
			      .peak_ts_ns = 2000000000ull, .exit_code = 256 };
	struct mp_sample s;

	(void)state;
	strcpy(e.comm, "python3");
	assert_int_equal(mp_event__decode(&e, sizeof(e), &c, &s), 0);
	assert_int_equal(s.kind, MP_EV_EXIT);
	assert_int_equal(s.pid, 42);
	assert_int_equal(s.ppid, 7);
	assert_int_equal(s.group, 3);
	assert_true(s.t > 1002.4999 && s.t < 1002.5001);
	assert_int_equal(s.bytes, 40960);
	assert_int_equal(s.peak, 1048576);
	assert_true(s.peak_t > 1001.9999 && s.peak_t < 1002.0001);
	assert_string_equal(s.comm, "python3");
}

static void rejects_short_and_unknown_records(void **state)
{
	struct mp_clock c = { .mono_to_epoch = 0, .page_size = 4096 };
	struct mp_event e = { .kind = 99 };
	struct mp_sample s;

	(void)state;
	assert_int_equal(mp_event__decode(&e, sizeof(e) - 1, &c, &s), -EINVAL);
	assert_int_equal(mp_event__decode(&e, sizeof(e), &c, &s), -EINVAL);
	e.kind = 0;
	assert_int_equal(mp_event__decode(&e, sizeof(e), &c, &s), -EINVAL);
}

static void unterminated_comm_is_terminated(void **state)
{
	struct mp_clock c = { .mono_to_epoch = 0, .page_size = 4096 };
	struct mp_event e = { .kind = MP_EV_EXEC };
	struct mp_sample s;

	(void)state;
	memset(e.comm, 'x', sizeof(e.comm));
	assert_int_equal(mp_event__decode(&e, sizeof(e), &c, &s), 0);
	assert_int_equal(strlen(s.comm), MP_COMM_LEN);
}

static void clock_offset_is_sane(void **state)
{
	struct mp_clock c;
	double now;

	(void)state;
	assert_int_equal(mp_clock__init(&c), 0);
	now = mp_clock__now_epoch();
	assert_true(now - mp_clock__epoch(&c, mp_clock__now_mono_ns()) < 0.01);
	assert_true(mp_clock__epoch(&c, mp_clock__now_mono_ns()) - now < 0.01);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_units_and_fields),
		cmocka_unit_test(rejects_short_and_unknown_records),
		cmocka_unit_test(unterminated_comm_is_terminated),
		cmocka_unit_test(clock_offset_is_sane),
	};

	return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
