/* Merge and emission rules of user/recorder.c, and the .dat writer, on synthetic input. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dat.h"
#include "recorder.h"

#define MIB (1024 * 1024ull)

struct fixture {
	char *buf;
	size_t len;
	FILE *f;
	struct mp_dat *dat;
	struct mp_recorder *rec;
};

static struct fixture *fx_new(pid_t root, int inc, int multi)
{
	struct fixture *x = calloc(1, sizeof(*x));
	struct mp_recorder_opts o = { .root = root, .include_children = inc, .multiprocess = multi };

	assert_non_null(x);
	x->f = open_memstream(&x->buf, &x->len);
	assert_non_null(x->f);
	x->dat = mp_dat__from_file(x->f);
	assert_non_null(x->dat);
	assert_int_equal(mp_recorder__new(&x->rec, x->dat, &o), 0);
	return x;
}

/* Flush everything and return the text written so far. */
static const char *fx_text(struct fixture *x)
{
	assert_int_equal(mp_recorder__flush(x->rec, INFINITY), 0);
	fflush(x->f);
	return x->buf;
}

static void fx_free(struct fixture *x)
{
	mp_recorder__free(x->rec);
	assert_int_equal(mp_dat__close(x->dat), 0);
	fclose(x->f);
	free(x->buf);
	free(x);
}

static void dat_formats_match_memory_profiler(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct mp_dat *d = mp_dat__from_file(f);
	char *argv[] = { "python3", "my script.py", "--x\ty" };

	(void)state;
	assert_int_equal(mp_dat__cmdline(d, 3, argv), 0);
	assert_int_equal(mp_dat__mem(d, 21.8671875, 1795311723.97004), 0);
	assert_int_equal(mp_dat__chld(d, 7673, 48.9765625, 1795311731.31), 0);
	assert_int_equal(mp_dat__func(d, "__main__.f", 21.875, 1795311724.0459, 29.5078125,
				      1795311724.937, 0),
			 0);
	assert_int_equal(mp_dat__close(d), 0);
	fclose(f);
	assert_string_equal(buf, "CMDLINE python3 'my script.py' '--x\ty'\n"
				 "MEM 21.867188 1795311723.9700\n"
				 "CHLD 7673 48.976562 1795311731.3100\n"
				 "FUNC __main__.f 21.8750 1795311724.0459 29.5078 1795311724.9370 0\n");
	free(buf);
}

static void points_are_written_in_time_order(void **state)
{
	struct fixture *x = fx_new(10, 0, 0);

	(void)state;
	assert_int_equal(mp_recorder__mem(x->rec, 2.0, 2 * MIB), 0);
	assert_int_equal(mp_recorder__mem(x->rec, 1.5, 9 * MIB), 0); /* a turning point, late */
	assert_int_equal(mp_recorder__mem(x->rec, 3.0, 1 * MIB), 0);
	assert_string_equal(fx_text(x), "MEM 9.000000 1.5000\nMEM 2.000000 2.0000\n"
					"MEM 1.000000 3.0000\n");
	fx_free(x);
}

static void flush_holds_back_recent_points(void **state)
{
	struct fixture *x = fx_new(10, 0, 0);

	(void)state;
	assert_int_equal(mp_recorder__mem(x->rec, 1.0, 1 * MIB), 0);
	assert_int_equal(mp_recorder__mem(x->rec, 2.0, 2 * MIB), 0);
	assert_int_equal(mp_recorder__flush(x->rec, 1.5), 0);
	fflush(x->f);
	assert_string_equal(x->buf, "MEM 1.000000 1.0000\n");
	assert_int_equal(mp_recorder__mem(x->rec, 1.8, 5 * MIB), 0);
	assert_string_equal(fx_text(x),
			    "MEM 1.000000 1.0000\nMEM 5.000000 1.8000\nMEM 2.000000 2.0000\n");
	fx_free(x);
}

static void late_point_already_shown_is_dropped_but_late_peak_kept(void **state)
{
	struct fixture *x = fx_new(10, 0, 0);

	(void)state;
	assert_int_equal(mp_recorder__mem(x->rec, 1.0, 300 * MIB), 0);
	assert_int_equal(mp_recorder__mem(x->rec, 2.0, 300 * MIB), 0);
	assert_int_equal(mp_recorder__flush(x->rec, INFINITY), 0);
	/* the plateau's turning point arrives when the value falls: adds nothing */
	assert_int_equal(mp_recorder__mem(x->rec, 0.9, 300 * MIB), 0);
	/* a higher point, late: the peak must reach the file even out of order */
	assert_int_equal(mp_recorder__mem(x->rec, 1.5, 301 * MIB), 0);
	assert_string_equal(fx_text(x), "MEM 300.000000 1.0000\nMEM 300.000000 2.0000\n"
					"MEM 301.000000 1.5000\n");
	assert_int_equal(mp_recorder__mem_max(x->rec), 301 * MIB);
	fx_free(x);
}

static void peak_only_added_when_higher_than_file(void **state)
{
	struct fixture *x = fx_new(10, 0, 0);

	(void)state;
	assert_int_equal(mp_recorder__mem(x->rec, 1.0, 50 * MIB), 0);
	assert_int_equal(mp_recorder__mem_peak(x->rec, 0.5, 40 * MIB), 0);
	assert_int_equal(mp_recorder__mem_peak(x->rec, 1.2, 60 * MIB), 0);
	assert_string_equal(fx_text(x), "MEM 50.000000 1.0000\nMEM 60.000000 1.2000\n");
	fx_free(x);
}

static void events_are_routed_by_mode(void **state)
{
	struct mp_sample ext_root = { .kind = MP_EV_EXTREME, .pid = 10, .t = 1.0,
				      .bytes = 5 * MIB, .is_max = 1 };
	struct mp_sample ext_kid = { .kind = MP_EV_EXTREME, .pid = 11, .t = 1.1,
				     .bytes = 7 * MIB, .is_max = 1 };
	struct mp_sample grp = { .kind = MP_EV_GROUP_EXTREME, .t = 1.2, .bytes = 12 * MIB };
	struct mp_sample kid_exit = { .kind = MP_EV_EXIT, .pid = 12, .t = 2.0, .bytes = 3 * MIB,
				      .peak = 30 * MIB, .peak_t = 1.9 };
	struct fixture *x;

	(void)state;
	/* plain: MEM is the root alone; children are not written */
	x = fx_new(10, 0, 0);
	assert_int_equal(mp_recorder__on_sample(x->rec, &ext_root), 0);
	assert_int_equal(mp_recorder__on_sample(x->rec, &ext_kid), 0);
	assert_int_equal(mp_recorder__on_sample(x->rec, &grp), 0);
	assert_int_equal(mp_recorder__on_sample(x->rec, &kid_exit), 0);
	assert_string_equal(fx_text(x), "MEM 5.000000 1.0000\n");
	fx_free(x);
	/* -C -M: MEM is the group, children get CHLD lines, a dead child's peak is kept */
	x = fx_new(10, 1, 1);
	assert_int_equal(mp_recorder__on_sample(x->rec, &ext_root), 0);
	assert_int_equal(mp_recorder__on_sample(x->rec, &ext_kid), 0);
	assert_int_equal(mp_recorder__on_sample(x->rec, &grp), 0);
	assert_int_equal(mp_recorder__on_sample(x->rec, &kid_exit), 0);
	assert_string_equal(fx_text(x), "CHLD 11 7.000000 1.1000\nMEM 12.000000 1.2000\n"
					"CHLD 12 30.000000 1.9000\nCHLD 12 3.000000 2.0000\n");
	assert_int_equal(mp_recorder__chld_max(x->rec, 12), 30 * MIB);
	fx_free(x);
}

static void thousands_of_children(void **state)
{
	struct fixture *x = fx_new(1, 0, 1);

	(void)state;
	for (int pid = 2; pid < 5002; pid++)
		assert_int_equal(mp_recorder__chld(x->rec, pid, pid / 1000.0, pid * 4096ull), 0);
	for (int pid = 2; pid < 5002; pid++)
		assert_int_equal(mp_recorder__chld_max(x->rec, pid), pid * 4096ull);
	assert_int_equal(mp_recorder__chld_max(x->rec, 999999), 0);
	fx_free(x);
}

static struct mp_sample fev(pid_t pid, pid_t tid, int phase, uint64_t id, const char *name,
			    double t, uint64_t mib)
{
	struct mp_sample s = { .kind = MP_EV_FUNC, .pid = pid, .tid = tid, .phase = phase, .id = id,
			       .t = t, .bytes = mib * MIB };

	snprintf(s.name, sizeof(s.name), "%s", name);
	return s;
}

static void func_events_pair_per_thread_with_levels(void **state)
{
	struct fixture *x = fx_new(10, 0, 0);
	struct mp_sample ev[] = {
		fev(10, 10, MP_FUNC_ENTRY, 1, "__main__.outer", 1.0, 10),
		fev(10, 11, MP_FUNC_ENTRY, 2, "__main__.worker", 1.1, 11), /* another thread */
		fev(10, 10, MP_FUNC_ENTRY, 3, "__main__.inner", 1.2, 12),
		fev(10, 10, MP_FUNC_EXIT, 3, "__main__.inner", 1.3, 20),
		fev(10, 11, MP_FUNC_EXIT, 2, "__main__.worker", 1.4, 21),
		fev(10, 10, MP_FUNC_ENTRY, 4, ".block", 1.5, 20),
		fev(10, 10, MP_FUNC_EXIT, 99, "__main__.unknown", 1.55, 20), /* entry never seen */
		fev(10, 10, MP_FUNC_EXIT, 4, ".block", 1.6, 30),
		fev(12, 12, MP_FUNC_ENTRY, 5, "__main__.child", 1.6, 1), /* not the root */
		fev(12, 12, MP_FUNC_EXIT, 5, "__main__.child", 1.7, 1),
		fev(10, 10, MP_FUNC_EXIT, 1, "__main__.outer", 1.8, 15),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
		assert_int_equal(mp_recorder__on_sample(x->rec, &ev[i]), 0);
	assert_string_equal(fx_text(x),
			    "FUNC __main__.inner 12.0000 1.2000 20.0000 1.3000 1\n"
			    "FUNC __main__.worker 11.0000 1.1000 21.0000 1.4000 0\n"
			    "FUNC .block 20.0000 1.5000 30.0000 1.6000 1\n"
			    "FUNC __main__.outer 10.0000 1.0000 15.0000 1.8000 0\n");
	fx_free(x);
}

static void exit_unwinds_calls_left_open(void **state)
{
	struct fixture *x = fx_new(10, 0, 0);
	struct mp_sample ev[] = {
		fev(10, 10, MP_FUNC_ENTRY, 1, "m.a", 1.0, 1),
		fev(10, 10, MP_FUNC_ENTRY, 2, "m.b", 1.1, 2), /* its exit is never seen */
		fev(10, 10, MP_FUNC_EXIT, 1, "m.a", 1.2, 3),
		fev(10, 10, MP_FUNC_ENTRY, 3, "m.c", 1.3, 3),
		fev(10, 10, MP_FUNC_EXIT, 3, "m.c", 1.4, 4),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
		assert_int_equal(mp_recorder__on_sample(x->rec, &ev[i]), 0);
	assert_string_equal(fx_text(x), "FUNC m.a 1.0000 1.0000 3.0000 1.2000 0\n"
					"FUNC m.c 3.0000 1.3000 4.0000 1.4000 0\n");
	fx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dat_formats_match_memory_profiler),
		cmocka_unit_test(points_are_written_in_time_order),
		cmocka_unit_test(flush_holds_back_recent_points),
		cmocka_unit_test(late_point_already_shown_is_dropped_but_late_peak_kept),
		cmocka_unit_test(peak_only_added_when_higher_than_file),
		cmocka_unit_test(events_are_routed_by_mode),
		cmocka_unit_test(thousands_of_children),
		cmocka_unit_test(func_events_pair_per_thread_with_levels),
		cmocka_unit_test(exit_unwinds_calls_left_open),
	};

	return cmocka_run_group_tests_name("recorder", tests, NULL, NULL);
}
