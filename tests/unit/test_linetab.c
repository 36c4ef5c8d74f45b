/* Unit tests of the line tables (user/linetab.c) built from LINE records. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "datfile.h"
#include "linetab.h"

static void parse(struct mp_datfile *df, const char *text)
{
	mp_datfile__init(df);
	assert_int_equal(mp_datfile__parse(df, text, strlen(text)), 0);
}

static void assert_row(const struct mp_linetab_row *r, int line, const char *name,
		       uint64_t grown, uint64_t freed, uint64_t events)
{
	assert_int_equal(r->line, line);
	assert_string_equal(r->name, name);
	assert_true(r->grown == grown);
	assert_true(r->freed == freed);
	assert_true(r->events == events);
}

static void test_groups_and_order(void **state)
{
	struct mp_linetab t;
	struct mp_datfile df;
	const struct mp_linetab_proc *p;
	const struct mp_linetab_group *g;

	(void)state;
	parse(&df, "MEM 1 2\n"
		   "LINE 9 4096 0 1 3 h b.py\n"
		   "LINE 7 100 0 1 10 f a.py\n"
		   "LINE 7 300 50 2 11 f a.py\n"
		   "LINE 7 250 0 3 10 f a.py\n"	 /* the same line again: added up */
		   "LINE 7 900 900 4 5 g a.py\n"	 /* another function of the file */
		   "LINE 7 200 0 1 0 %3Cno%20Python%20frame%3E -\n"
		   "LINE 7 20 10 1 0 %3Cstack%20not%20readable%3E -\n"
		   "LINE 7 200 0 1 0 %3Cno%20Python%20frame%3E -\n"
		   "LINE 7 5 0 1 2 f c.py\n");
	assert_int_equal(mp_linetab__build(&t, &df), 0);
	assert_int_equal(t.n, 2);

	p = &t.procs[0]; /* 4096 bytes grown: heavier than the 1975 of pid 7 */
	assert_int_equal(p->pid, 9);
	assert_int_equal(p->n, 1);
	assert_true(p->grown == 4096 && p->events == 1);

	p = &t.procs[1];
	assert_int_equal(p->pid, 7);
	assert_true(p->grown == 100 + 300 + 250 + 900 + 200 + 20 + 200 + 5);
	assert_true(p->freed == 50 + 900 + 10);
	assert_true(p->events == 14);
	assert_int_equal(p->n, 4);
	/* g (900) before f of a.py (650), then the special rows (420), then c.py (5) */
	g = &p->groups[0];
	assert_string_equal(g->file, "a.py");
	assert_string_equal(g->func, "g");
	assert_false(g->special);
	assert_int_equal(g->n, 1);
	g = &p->groups[1];
	assert_string_equal(g->func, "f");
	assert_int_equal(g->n, 2);
	assert_true(g->grown == 650 && g->freed == 50 && g->events == 6);
	assert_row(&g->rows[0], 10, "f", 350, 0, 4);
	assert_row(&g->rows[1], 11, "f", 300, 50, 2);
	g = &p->groups[2];
	assert_true(g->special);
	assert_null(g->func);
	assert_string_equal(g->file, "-");
	assert_int_equal(g->n, 2);
	assert_row(&g->rows[0], 0, "<no Python frame>", 400, 0, 2);
	assert_row(&g->rows[1], 0, "<stack not readable>", 20, 10, 1);
	g = &p->groups[3];
	assert_string_equal(g->file, "c.py");
	mp_linetab__release(&t);
	assert_int_equal(t.n, 0);
	mp_datfile__release(&df);
}

static void test_ties(void **state)
{
	struct mp_linetab t;
	struct mp_datfile df;
	const struct mp_linetab_group *g;

	(void)state;
	/* the same grown: less freed first; the same both: by line; groups and processes in file order */
	parse(&df, "LINE 1 100 30 1 8 f a.py\n"
		   "LINE 1 100 10 1 9 f a.py\n"
		   "LINE 1 100 30 1 4 f a.py\n"
		   "LINE 1 100 0 1 1 e a.py\n"
		   "LINE 1 60 0 1 1 d a.py\n"
		   "LINE 2 60 0 1 1 d a.py\n"
		   "LINE 3 60 0 1 1 d a.py\n");
	assert_int_equal(mp_linetab__build(&t, &df), 0);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.procs[0].pid, 1);
	assert_int_equal(t.procs[1].pid, 2);
	assert_int_equal(t.procs[2].pid, 3);
	assert_int_equal(t.procs[0].n, 3);
	g = &t.procs[0].groups[0];
	assert_string_equal(g->func, "f");
	assert_int_equal(g->rows[0].line, 9);
	assert_int_equal(g->rows[1].line, 4);
	assert_int_equal(g->rows[2].line, 8);
	assert_string_equal(t.procs[0].groups[1].func, "e");
	assert_string_equal(t.procs[0].groups[2].func, "d");
	mp_linetab__release(&t);
	mp_datfile__release(&df);
}

static void test_saturation_and_empty(void **state)
{
	struct mp_linetab t;
	struct mp_datfile df;

	(void)state;
	parse(&df, "LINE 1 18446744073709551615 0 18446744073709551615 3 f a.py\n"
		   "LINE 1 2 1 1 3 f a.py\n");
	assert_int_equal(mp_linetab__build(&t, &df), 0);
	assert_true(t.procs[0].groups[0].rows[0].grown == UINT64_MAX);
	assert_true(t.procs[0].groups[0].rows[0].events == UINT64_MAX);
	assert_true(t.procs[0].groups[0].rows[0].freed == 1);
	assert_true(t.procs[0].grown == UINT64_MAX);
	mp_linetab__release(&t);
	mp_datfile__release(&df);
	assert_true(mp_linetab__add(UINT64_MAX - 1, 1) == UINT64_MAX);
	assert_true(mp_linetab__add(UINT64_MAX, UINT64_MAX) == UINT64_MAX);
	assert_true(mp_linetab__add(2, 3) == 5);

	parse(&df, "MEM 1 2\nSTACK 1 2 3 4 f:a.py:1\n");
	assert_int_equal(mp_linetab__build(&t, &df), 0);
	assert_int_equal(t.n, 0);
	assert_null(t.procs);
	mp_linetab__release(&t);
	mp_datfile__release(&df);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_groups_and_order),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_saturation_and_empty),
	};

	return cmocka_run_group_tests_name("linetab", tests, NULL, NULL);
}
