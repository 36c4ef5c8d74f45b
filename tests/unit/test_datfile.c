/* Unit tests of the .dat reader (user/datfile.c) and the profile-selection rules. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dat.h"
#include "datfile.h"

/* cmocka before 1.1.6 has no assert_double_equal(): |a - b| <= eps, with the values shown. */
static void near_impl(double a, double b, double eps, const char *file, int line)
{
	if (!(fabs(a - b) <= eps)) {
		print_error("%.10g != %.10g (tolerance %g)\n", a, b, eps);
		_fail(file, line);
	}
}
#define assert_near(a, b, eps) near_impl((a), (b), (eps), __FILE__, __LINE__)

/* Parse @text into a fresh *df; returns the parser's result. */
static int parse(struct mp_datfile *df, const char *text)
{
	mp_datfile__init(df);
	return mp_datfile__parse(df, text, strlen(text));
}

/* A real file from memory_profiler 0.61 (`mprof run ts_demo.py`): FUNC lines come first. */
static const char mp_ts_file[] =
	"FUNC __main__.inner 21.8203 1795314234.9960 37.0820 1795314235.3087 1\n"
	"FUNC __main__.outer 21.8203 1795314234.9959 37.0820 1795314235.9576 0\n"
	"FUNC .block1 37.0820 1795314235.3089 117.0859 1795314235.7521 1\n"
	"CMDLINE /usr/bin/python3 ts_demo.py\n"
	"MEM 0.449219 1795314234.9233\n"
	"MEM 37.082031 1795314235.0237\n"
	"MEM 117.085938 1795314235.5256\n"
	"MEM 21.820312 1795314236.1281\n";

static void test_memory_profiler_file(void **state)
{
	struct mp_datfile df;

	(void)state;
	assert_int_equal(parse(&df, mp_ts_file), 0);
	assert_string_equal(df.cmdline, "/usr/bin/python3 ts_demo.py");
	assert_int_equal(df.mem.n, 4);
	assert_near(df.mem.pts[2].mib, 117.085938, 1e-9);
	assert_near(df.mem.pts[2].t, 1795314235.5256, 1e-6);
	assert_int_equal(df.n_funcs, 3);
	assert_string_equal(df.funcs[0].name, "__main__.inner");
	assert_string_equal(df.funcs[2].name, ".block1");
	assert_int_equal(df.funcs[0].calls[0].level, 1);
	assert_int_equal(df.funcs[1].calls[0].level, 0);
	assert_near(df.funcs[2].calls[0].mem_end, 117.0859, 1e-9);
	assert_near(df.funcs[2].calls[0].t_start, 1795314235.3089, 1e-6);
	assert_ptr_equal(mp_datfile__func(&df, ".block1"), &df.funcs[2]);
	assert_null(mp_datfile__func(&df, "block1"));
	assert_int_equal(df.n_lines, 8);
	mp_datfile__release(&df);
}

static void test_children(void **state)
{
	struct mp_datfile df;

	(void)state;
	assert_int_equal(parse(&df, "CMDLINE python3 mp_demo.py\n"
				    "MEM 0.167969 1795311731.2070\n"
				    "MEM 143.906250 1795311731.3093\n"
				    "CHLD 7674 83.816406 1795311731.3100\n"
				    "CHLD 7673 48.976562 1795311731.3100\n"
				    "MEM 148.800781 1795311731.4117\n"
				    "CHLD 7674 87.125000 1795311731.4120\n"),
			 0);
	assert_int_equal(df.n_children, 2);
	/* order of first appearance, as memory_profiler's dict keeps it */
	assert_int_equal(df.children[0].pid, 7674);
	assert_int_equal(df.children[1].pid, 7673);
	assert_int_equal(df.children[0].s.n, 2);
	assert_near(df.children[0].s.pts[1].mib, 87.125, 1e-9);
	assert_ptr_equal(mp_datfile__child(&df, 7673), &df.children[1]);
	assert_null(mp_datfile__child(&df, 1));
	mp_datfile__release(&df);
}

/* Whatever our writer (user/dat.c) produces, the reader must read back. */
static void test_our_writer_round_trip(void **state)
{
	char path[] = "/tmp/mprof-test-datfile-XXXXXX";
	char *argv[] = { "python3", "my script.py", "--n", "3" };
	struct mp_datfile df;
	struct mp_dat *d;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mp_dat__open(&d, path, NULL), 0);
	assert_int_equal(mp_dat__cmdline(d, 4, argv), 0);
	for (int i = 0; i < 120; i++) /* past a flush */
		assert_int_equal(mp_dat__mem(d, 10.0 + i, 1700000000.0 + i * 0.01), 0);
	assert_int_equal(mp_dat__chld(d, 4242, 5.5, 1700000000.5), 0);
	assert_int_equal(mp_dat__func(d, "mod.f", 1.25, 1700000000.1, 2.5, 1700000000.2, 3), 0);
	assert_int_equal(mp_dat__close(d), 0);

	mp_datfile__init(&df);
	assert_int_equal(mp_datfile__read(&df, path), 0);
	assert_string_equal(df.cmdline, "python3 'my script.py' --n 3");
	assert_int_equal(df.mem.n, 120);
	assert_near(df.mem.pts[119].mib, 129.0, 1e-6);
	assert_near(df.mem.pts[119].t, 1700000001.19, 1e-4);
	assert_int_equal(df.n_children, 1);
	assert_int_equal(df.children[0].pid, 4242);
	assert_int_equal(df.n_funcs, 1);
	assert_int_equal(df.funcs[0].calls[0].level, 3);
	assert_near(df.funcs[0].calls[0].mem_end, 2.5, 1e-9);
	mp_datfile__release(&df);
	unlink(path);
}

static void test_number_formats(void **state)
{
	struct mp_datfile df;

	(void)state;
	assert_int_equal(parse(&df, "MEM 12 1700000000\n"
				    "MEM 1.5e2 1.7E9\n"
				    "MEM -1.000000 3.\n"
				    "MEM .5 +4\n"
				    "MEM 0.000000 0.0000\n"
				    "MEM 1e-400 5\n"),
			 0);
	assert_int_equal(df.mem.n, 6);
	assert_near(df.mem.pts[0].mib, 12, 0);
	assert_near(df.mem.pts[0].t, 1700000000, 0);
	assert_near(df.mem.pts[1].mib, 150, 0);
	assert_near(df.mem.pts[1].t, 1.7e9, 0);
	/* memory_profiler's posix backend writes -1 when ps fails: real data, kept */
	assert_near(df.mem.pts[2].mib, -1, 0);
	assert_near(df.mem.pts[3].mib, 0.5, 0);
	assert_near(df.mem.pts[5].mib, 0, 1e-300);
	mp_datfile__release(&df);
}

static void test_odd_whitespace_and_crlf(void **state)
{
	struct mp_datfile df;

	(void)state;
	assert_int_equal(parse(&df, "CMDLINE   a  b\t \r\n"
				    "\r\n"
				    "  MEM\t1.0   2.0  \r\n"
				    "\n"
				    "   \t\n"
				    "CHLD  12\t3.0\t4.0\r\n"
				    "FUNC\tm.f  1 2 \t 3 4\t5\r\n"
				    "MEM 5.0 6.0"), /* no final newline */
			 0);
	assert_string_equal(df.cmdline, "a  b");
	assert_int_equal(df.mem.n, 2);
	assert_near(df.mem.pts[1].t, 6.0, 0);
	assert_int_equal(df.n_children, 1);
	assert_int_equal(df.children[0].pid, 12);
	assert_int_equal(df.funcs[0].calls[0].level, 5);
	assert_int_equal(df.n_lines, 8);
	mp_datfile__release(&df);
}

static void test_cmdline_cases(void **state)
{
	struct mp_datfile df;

	(void)state;
	/* missing */
	assert_int_equal(parse(&df, "MEM 1 2\n"), 0);
	assert_null(df.cmdline);
	mp_datfile__release(&df);
	/* appended runs: the last one wins, as in memory_profiler */
	assert_int_equal(parse(&df, "CMDLINE first\nMEM 1 2\nCMDLINE second run\nMEM 1 3\n"), 0);
	assert_string_equal(df.cmdline, "second run");
	mp_datfile__release(&df);
	/* empty, and bytes that are not UTF-8 are kept as they are */
	assert_int_equal(parse(&df, "CMDLINE\n"), 0);
	assert_string_equal(df.cmdline, "");
	mp_datfile__release(&df);
	assert_int_equal(parse(&df, "CMDLINE caf\xe9 \x01x\n"), 0);
	assert_string_equal(df.cmdline, "caf\xe9 \x01x");
	mp_datfile__release(&df);
	/* attach by name writes a Python list */
	assert_int_equal(parse(&df, "CMDLINE ['/usr/bin/python3', 'x.py']\n"), 0);
	assert_string_equal(df.cmdline, "['/usr/bin/python3', 'x.py']");
	mp_datfile__release(&df);
}

static void test_func_variants(void **state)
{
	struct mp_datfile df;

	(void)state;
	/* no level (memory_profiler before 0.56), extra fields ignored, repeated calls */
	assert_int_equal(parse(&df, "FUNC a.f 1 10 2 11\n"
				    "FUNC a.f 3 12 4 13 0 extra fields\n"
				    "FUNC b.g 5 14 6 15 2\n"
				    "MEM 1 10 ignored\n"),
			 0);
	assert_int_equal(df.n_funcs, 2);
	assert_int_equal(df.funcs[0].n, 2);
	assert_int_equal(df.funcs[0].calls[0].level, -1);
	assert_int_equal(df.funcs[0].calls[1].level, 0);
	assert_int_equal(df.funcs[1].calls[0].level, 2);
	assert_int_equal(df.mem.n, 1);
	mp_datfile__release(&df);
}

static void test_thousands_of_children_and_functions(void **state)
{
	size_t cap = 8 * 1024 * 1024, len = 0;
	char *buf = malloc(cap);
	struct mp_datfile df;

	(void)state;
	assert_non_null(buf);
	len += (size_t)snprintf(buf + len, cap - len, "CMDLINE many\n");
	for (int s = 0; s < 3; s++) {
		len += (size_t)snprintf(buf + len, cap - len, "MEM %d.0 %d.5\n", 100 + s, s);
		for (int pid = 0; pid < 5000; pid++)
			len += (size_t)snprintf(buf + len, cap - len, "CHLD %d %d.%d %d.5\n",
						100000 + pid * 7, pid % 50, s, s);
	}
	for (int f = 0; f < 3000; f++)
		len += (size_t)snprintf(buf + len, cap - len, "FUNC mod%d.func 1 %d 2 %d.5 0\n", f,
					f, f);
	assert_true(len < cap);
	mp_datfile__init(&df);
	assert_int_equal(mp_datfile__parse(&df, buf, len), 0);
	assert_int_equal(df.n_children, 5000);
	assert_int_equal(df.n_funcs, 3000);
	for (int pid = 0; pid < 5000; pid++) {
		const struct mp_child *ch = mp_datfile__child(&df, 100000 + pid * 7);

		assert_non_null(ch);
		assert_ptr_equal(ch, &df.children[pid]);
		assert_int_equal(ch->s.n, 3);
		assert_near(ch->s.pts[2].mib, pid % 50 + 0.2, 1e-9);
	}
	assert_ptr_equal(mp_datfile__func(&df, "mod2999.func"), &df.funcs[2999]);
	mp_datfile__release(&df);
	free(buf);
}

struct bad_case {
	const char *text;
	size_t line;
	const char *msg_part;
};

static void test_bad_input(void **state)
{
	static const struct bad_case cases[] = {
		{ "garbage\n", 1, "not a profile record" },
		{ "MEM 1 2\nhello world\n", 2, "not a profile record" },
		{ "mem 1 2\n", 1, "not a profile record" },
		{ "MEM 1\n", 1, "bad MEM record" },
		{ "MEM\n", 1, "bad MEM record" },
		{ "MEM abc 1\n", 1, "bad MEM record" },
		{ "MEM 1 2x\n", 1, "bad MEM record" },
		{ "MEM nan 1\n", 1, "bad MEM record" },
		{ "MEM inf 1\n", 1, "bad MEM record" },
		{ "MEM 1e999 1\n", 1, "bad MEM record" },
		{ "MEM 0x10 1\n", 1, "bad MEM record" },
		{ "MEM 1e 1\n", 1, "bad MEM record" },
		{ "MEM . 1\n", 1, "bad MEM record" },
		{ "MEM 1,5 1\n", 1, "bad MEM record" },
		{ "CHLD -1 2 3\n", 1, "bad CHLD record" },
		{ "CHLD 1.5 2 3\n", 1, "bad CHLD record" },
		{ "CHLD 99999999999 2 3\n", 1, "bad CHLD record" },
		{ "CHLD 12 2\n", 1, "bad CHLD record" },
		{ "FUNC f 1 2 3\n", 1, "bad FUNC record" },
		{ "FUNC f 1 2 3 x\n", 1, "bad FUNC record" },
		{ "FUNC f 1 2 3 4 1.0\n", 1, "bad FUNC record" },
		{ "FUNC f 1 2 3 4 -1\n", 1, "bad FUNC record" },
		/* garbage is garbage anywhere, the last line included */
		{ "MEM 1 2\n\x89PNG\r\n", 2, "not a profile record" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mp_datfile df;

		if (parse(&df, cases[i].text) != -EINVAL)
			fail_msg("accepted bad input '%s'", cases[i].text);
		assert_int_equal(df.err_line, cases[i].line);
		assert_non_null(df.err_msg);
		assert_non_null(strstr(df.err_msg, cases[i].msg_part));
		mp_datfile__release(&df);
	}
}

/* The reader's fast decimal path gives exactly strtod()'s double, bit for bit. */
static void test_numbers_equal_strtod(void **state)
{
	unsigned int seed = 12345;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		char num[40], text[64];
		int intd = 1 + rand_r(&seed) % 12, fracd = rand_r(&seed) % 8, n = 0;
		struct mp_datfile df;
		double want;

		if (rand_r(&seed) % 8 == 0)
			num[n++] = '-';
		for (int d = 0; d < intd; d++)
			num[n++] = (char)('0' + rand_r(&seed) % 10);
		if (fracd || rand_r(&seed) % 4 == 0)
			num[n++] = '.';
		for (int d = 0; d < fracd; d++)
			num[n++] = (char)('0' + rand_r(&seed) % 10);
		num[n] = 0;
		want = strtod(num, NULL);
		snprintf(text, sizeof(text), "MEM %s 1.5\n", num);
		assert_int_equal(parse(&df, text), 0);
		if (memcmp(&df.mem.pts[0].mib, &want, sizeof(want)))
			fail_msg("'%s': %.17g != strtod's %.17g", num, df.mem.pts[0].mib, want);
		mp_datfile__release(&df);
	}
}

/* A writer killed in the middle of a line leaves it unterminated: it is skipped, the rest kept. */
static void test_torn_last_line_is_skipped(void **state)
{
	static const struct {
		const char *text;
		size_t mem, torn;
	} cases[] = {
		{ "MEM 1 2\nMEM 3 4\nMEM 12.5", 2, 3 },
		{ "MEM 1 2\nFUNC __main__.f 21.8 17953", 1, 2 },
		{ "MEM 1 2\nME", 1, 2 },
		{ "MEM 1 2\nCMDLIN", 1, 2 },
		{ "MEM 1 2\nM", 1, 2 },
		{ "MEM 1 2\n\x89P", 1, 2 },
		{ "MEM 1 2\nMEM 99999.0 17", 1, 2 },  /* a time cut before its decimals */
		{ "MEM 1 2\nMEM 99999.0 17.", 1, 2 },
		{ "MEM 1 2\nMEM 3 4.5", 2, 0 },	 /* a whole record without its newline is kept */
		{ "MEM 1 2\nFUNC f 1 2.0 3 4.5", 1, 0 },
	};
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mp_datfile df;

		assert_int_equal(parse(&df, cases[i].text), 0);
		assert_int_equal(df.mem.n, cases[i].mem);
		assert_int_equal(df.torn_line, cases[i].torn);
		assert_int_equal(mp_datfile__warning(&df, "x.dat", msg, sizeof(msg)),
				 cases[i].torn != 0);
		if (cases[i].torn)
			assert_non_null(strstr(msg, "incomplete last line"));
		mp_datfile__release(&df);
	}
}

static void test_nul_and_unknown_records(void **state)
{
	static const char nul[] = "MEM 1 2\nMEM 3\0 4\n";
	struct mp_datfile df;

	(void)state;
	mp_datfile__init(&df);
	assert_int_equal(mp_datfile__parse(&df, nul, sizeof(nul) - 1), -EINVAL);
	assert_int_equal(df.err_line, 2);
	assert_non_null(strstr(df.err_msg, "NUL"));
	mp_datfile__release(&df);

	/* an upper-case keyword we do not know is a record of a later writer: skipped */
	assert_int_equal(parse(&df, "PEAK 1 2 3\nMEM 1 2\nX_2\n"), 0);
	assert_int_equal(df.n_skipped, 2);
	assert_int_equal(df.mem.n, 1);
	mp_datfile__release(&df);

	/* empty input is not an error for the parser: the commands decide */
	assert_int_equal(parse(&df, ""), 0);
	assert_int_equal(df.mem.n, 0);
	assert_int_equal(df.n_lines, 0);
	mp_datfile__release(&df);
}

/* Write @len bytes of @text into a new temporary file whose path is stored in @path. */
static void write_tmp(char *path, const char *text, size_t len)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* LINE and STACK records (--lines): our writer's output, escapes and all, read back. */
static void test_line_records_round_trip(void **state)
{
	char path[] = "/tmp/mprof-test-datfile-XXXXXX";
	const char *funcs[] = { "<module>", "Cls.m e:th;od%", "inner" };
	const char *files[] = { "/srv/my app/main.py", "/srv/lib:x;y.py", "caf\xc3\xa9\t\x7f.py" };
	const int lines[] = { 10, 0, 2147483647 };
	const char *special[] = { "<no Python frame>" }, *dash[] = { "-" };
	const int zero[] = { 0 };
	struct mp_datfile df;
	struct mp_dat *d;
	int fd, *pids;
	size_t n;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mp_dat__open(&d, path, NULL), 0);
	assert_int_equal(mp_dat__mem(d, 10.0, 1700000000.0), 0);
	assert_int_equal(mp_dat__line(d, 77, 4096 * 3, 4096, 4, 12, "Cls.m e:th;od%", files[1]), 0);
	assert_int_equal(mp_dat__line(d, 5, 8192, 0, 2, 0, "<no Python frame>", "-"), 0);
	assert_int_equal(mp_dat__line(d, 77, UINT64_MAX, 0, UINT64_MAX, 3, "f", ""), 0);
	assert_int_equal(mp_dat__stack(d, 5, 1u << 20, 4096, 9, 3, funcs, files, lines), 0);
	assert_int_equal(mp_dat__stack(d, 9, 4096, 0, 1, 1, special, dash, zero), 0);
	assert_int_equal(mp_dat__close(d), 0);

	mp_datfile__init(&df);
	assert_int_equal(mp_datfile__read(&df, path), 0);
	assert_int_equal(df.mem.n, 1);
	assert_int_equal(df.n_skipped, 0);
	assert_int_equal(df.n_line_recs, 3);
	assert_int_equal(df.line_recs[0].pid, 77);
	assert_int_equal(df.line_recs[0].line, 12);
	assert_string_equal(df.line_recs[0].func, "Cls.m e:th;od%");
	assert_string_equal(df.line_recs[0].file, "/srv/lib:x;y.py");
	assert_true(df.line_recs[0].grown == 4096 * 3 && df.line_recs[0].freed == 4096 &&
		    df.line_recs[0].events == 4);
	assert_false(mp_line_rec__special(&df.line_recs[0]));
	assert_string_equal(df.line_recs[1].func, "<no Python frame>");
	assert_string_equal(df.line_recs[1].file, "-");
	assert_true(mp_line_rec__special(&df.line_recs[1]));
	/* the writer's "-" for an empty name reads back as "-" */
	assert_string_equal(df.line_recs[2].file, "-");
	assert_true(df.line_recs[2].grown == UINT64_MAX && df.line_recs[2].events == UINT64_MAX);
	assert_false(mp_line_rec__special(&df.line_recs[2])); /* line 3 */

	assert_int_equal(df.n_stacks, 2);
	assert_int_equal(df.stacks[0].pid, 5);
	assert_int_equal(df.stacks[0].nframes, 3);
	for (size_t k = 0; k < 3; k++) {
		assert_string_equal(df.stacks[0].frames[k].func, funcs[k]);
		assert_string_equal(df.stacks[0].frames[k].file, files[k]);
		assert_int_equal(df.stacks[0].frames[k].line, lines[k]);
	}
	assert_true(df.stacks[0].grown == 1u << 20 && df.stacks[0].freed == 4096 &&
		    df.stacks[0].events == 9);
	assert_int_equal(df.stacks[1].nframes, 1);
	assert_string_equal(df.stacks[1].frames[0].func, "<no Python frame>");
	assert_string_equal(df.stacks[1].frames[0].file, "-");

	/* pids in order of first appearance, LINE records first */
	assert_int_equal(mp_datfile__line_pids(&df, &pids, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(pids[0], 77);
	assert_int_equal(pids[1], 5);
	assert_int_equal(pids[2], 9);
	free(pids);
	mp_datfile__release(&df);
	unlink(path);
}

struct collect {
	int seen[8];
	size_t n;
	int stop_after;
};

static int collect_line(void *ctx, const struct mp_line_rec *r)
{
	struct collect *c = ctx;

	c->seen[c->n++] = r->line;
	return c->stop_after && (int)c->n == c->stop_after ? -ECANCELED : 0;
}

static int collect_stack(void *ctx, const struct mp_stack_rec *s)
{
	struct collect *c = ctx;

	c->seen[c->n++] = (int)s->nframes;
	return 0;
}

static void test_line_records_iteration(void **state)
{
	struct mp_datfile df;
	struct collect c = { 0 };
	int *pids;
	size_t n;

	(void)state;
	assert_int_equal(parse(&df, "LINE 2 1 0 1 10 f a.py\n"
				    "STACK 3 1 0 1 f:a.py:1;g:a.py:2\n"
				    "LINE 1 1 0 1 11 f a.py\n"
				    "LINE 2 1 0 1 12 f a.py\n"
				    "STACK 2 1 0 1 f:a.py:1\n"
				    "MEM 1 2\n"),
			 0);
	assert_int_equal(mp_datfile__each_line(&df, 2, collect_line, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.seen[0], 10);
	assert_int_equal(c.seen[1], 12);
	c = (struct collect){ 0 };
	assert_int_equal(mp_datfile__each_line(&df, -1, collect_line, &c), 0);
	assert_int_equal(c.n, 3);
	c = (struct collect){ .stop_after = 1 };
	assert_int_equal(mp_datfile__each_line(&df, -1, collect_line, &c), -ECANCELED);
	assert_int_equal(c.n, 1);
	c = (struct collect){ 0 };
	assert_int_equal(mp_datfile__each_stack(&df, 3, collect_stack, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seen[0], 2);
	c = (struct collect){ 0 };
	assert_int_equal(mp_datfile__each_stack(&df, 1, collect_stack, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(mp_datfile__line_pids(&df, &pids, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(pids[0], 2);
	assert_int_equal(pids[1], 1);
	assert_int_equal(pids[2], 3);
	free(pids);
	mp_datfile__release(&df);

	/* a file without them */
	assert_int_equal(parse(&df, "MEM 1 2\n"), 0);
	assert_int_equal(mp_datfile__line_pids(&df, &pids, &n), 0);
	assert_int_equal(n, 0);
	assert_null(pids);
	mp_datfile__release(&df);
}

static void test_line_escapes(void **state)
{
	char out[32];
	struct mp_datfile df;

	(void)state;
	assert_int_equal(mp_datfile__unescape("a%20b%3a%3B%25", 14, out), 6);
	assert_string_equal(out, "a b:;%");
	assert_int_equal(mp_datfile__unescape("%41%ff", 6, out), 2);
	assert_string_equal(out, "A\xff");
	assert_int_equal(mp_datfile__unescape("", 0, out), 0);
	assert_string_equal(out, "");
	assert_int_equal(mp_datfile__unescape("x%2", 3, NULL), -EINVAL);
	assert_int_equal(mp_datfile__unescape("%", 1, NULL), -EINVAL);
	assert_int_equal(mp_datfile__unescape("%g0", 3, NULL), -EINVAL);
	assert_int_equal(mp_datfile__unescape("%00", 3, NULL), -EINVAL);
	assert_int_equal(mp_datfile__unescape("%20", 2, NULL), -EINVAL); /* the length counts */

	/* lower-case hex, any byte escaped, blanks and tabs between fields, extra fields ignored,
	 * a bare ':' in a LINE field (only a STACK splits at it), CRLF */
	assert_int_equal(parse(&df, "LINE\t4  +1 2 3 +5 %3cmodule%3E /a%2fb:c.py extra\r\n"
				    "STACK 4 1 2 3 %66:x.py:1;g:%2Fy.py:+2 extra\r\n"
				    "STACK 4 5 6 7\n"),
			 0);
	assert_int_equal(df.n_line_recs, 1);
	assert_int_equal(df.line_recs[0].line, 5);
	assert_string_equal(df.line_recs[0].func, "<module>");
	assert_string_equal(df.line_recs[0].file, "/a/b:c.py");
	assert_int_equal(df.n_stacks, 2);
	assert_string_equal(df.stacks[0].frames[0].func, "f");
	assert_string_equal(df.stacks[0].frames[1].file, "/y.py");
	assert_int_equal(df.stacks[0].frames[1].line, 2);
	/* our writer's stack of no frame */
	assert_int_equal(df.stacks[1].nframes, 0);
	assert_null(df.stacks[1].frames);
	assert_true(df.stacks[1].grown == 5 && df.stacks[1].events == 7);
	mp_datfile__release(&df);
}

/* A streaming visitor sees LINE and STACK records with their text as written. */
static int first_line_record(void *ctx, const struct mp_record *r)
{
	struct mp_record *out = ctx;

	if (r->kind == MP_REC_LINE || r->kind == MP_REC_STACK) {
		*out = *r;
		return -ECANCELED;
	}
	return 0;
}

static void test_line_records_streamed(void **state)
{
	static const char text[] = "MEM 1 2\nLINE 7 100 20 3 42 my%20f x.py\nSTACK 7 1 2 3 a:b:1\n";
	struct mp_record r;
	struct mp_scan sc;

	(void)state;
	assert_int_equal(mp_datfile__scan_buf(text, strlen(text), first_line_record, &r, &sc),
			 -ECANCELED);
	assert_int_equal(r.kind, MP_REC_LINE);
	assert_int_equal(r.pid, 7);
	assert_int_equal(r.line, 42);
	assert_true(r.grown == 100 && r.freed == 20 && r.events == 3);
	assert_int_equal(r.len, 6);
	assert_memory_equal(r.text, "my%20f", 6);
	assert_int_equal(r.file_len, 4);
	assert_memory_equal(r.file, "x.py", 4);
}

static void test_bad_line_records(void **state)
{
	static const struct bad_case cases[] = {
		{ "LINE 1 2 3 4 5 f\n", 1, "bad LINE record, expected" },
		{ "LINE\n", 1, "bad LINE record, expected" },
		{ "LINE -1 2 3 4 5 f x.py\n", 1, "bad LINE record, expected" },
		{ "LINE 1 2.0 3 4 5 f x.py\n", 1, "bad LINE record, expected" },
		{ "LINE 1 18446744073709551616 3 4 5 f x.py\n", 1, "bad LINE record, expected" },
		{ "LINE 1 2 3 4 -5 f x.py\n", 1, "bad LINE record, expected" },
		{ "LINE 1 2 3 4 2147483648 f x.py\n", 1, "bad LINE record, expected" },
		{ "LINE 1 2 3 4 5 f%2 x.py\n", 1, "bad LINE record: a '%' without two hex" },
		{ "LINE 1 2 3 4 5 f x%zz.py\n", 1, "bad LINE record: a '%' without two hex" },
		{ "LINE 1 2 3 4 5 f%00 x.py\n", 1, "bad LINE record: a '%' without two hex" },
		{ "MEM 1 2\nSTACK 1 2 3\n", 2, "bad STACK record" },
		{ "STACK 1 2 3 x f:x.py:1\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f:x.py\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f:x.py:\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f:x.py:1:2\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f:x.py:one\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 :x.py:1\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f::1\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f:x.py:1;\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 ;f:x.py:1\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f:x.py:1;;g:y.py:2\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f%:x.py:1\n", 1, "bad STACK record" },
		{ "STACK 1 2 3 4 f:x%0.py:1\n", 1, "bad STACK record" },
		/* the keyword is case-sensitive: "line" is garbage */
		{ "line 1 2 3 4 5 f x.py\n", 1, "not a profile record" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mp_datfile df;

		if (parse(&df, cases[i].text) != -EINVAL)
			fail_msg("accepted bad input '%s'", cases[i].text);
		assert_int_equal(df.err_line, cases[i].line);
		assert_non_null(df.err_msg);
		if (!strstr(df.err_msg, cases[i].msg_part))
			fail_msg("'%s': message '%s'", cases[i].text, df.err_msg);
		mp_datfile__release(&df);
	}
}

/* A LINE or STACK cut short looks whole: an unterminated last one is always skipped. */
static void test_torn_line_records(void **state)
{
	static const struct {
		const char *text;
		size_t lines, stacks, torn;
	} cases[] = {
		{ "MEM 1 2\nLINE 1 2 3 4 5 f x.py\nLINE 1 2 3 4 5 f /src/x", 1, 0, 3 },
		{ "MEM 1 2\nSTACK 1 2 3 4 f:x.py:1;g:y.p", 0, 0, 2 },
		{ "MEM 1 2\nSTACK 1 2 3 4 f:x.py:1;g:y.py:", 0, 0, 2 },
		{ "MEM 1 2\nLINE 1 2 3", 0, 0, 2 },
		{ "MEM 1 2\nLIN", 0, 0, 2 },
		{ "MEM 1 2\nSTACK 1 2 3 4 f:x.py:1\n", 0, 1, 0 },
		{ "MEM 1 2\nLINE 1 2 3 4 5 f x.py\n", 1, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mp_datfile df;

		assert_int_equal(parse(&df, cases[i].text), 0);
		assert_int_equal(df.mem.n, 1);
		assert_int_equal(df.n_line_recs, cases[i].lines);
		assert_int_equal(df.n_stacks, cases[i].stacks);
		assert_int_equal(df.torn_line, cases[i].torn);
		mp_datfile__release(&df);
	}
}

/* A reduced read (plot, report) keeps every LINE and STACK record. */
static void test_line_records_in_reduced_read(void **state)
{
	char path[] = "/tmp/mprof-test-datfile-XXXXXX";
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	struct mp_reduce_opts o = { .max_points = 1000 };
	struct mp_datfile df;

	(void)state;
	assert_non_null(buf);
	for (int i = 0; i < 20000; i++)
		len += (size_t)snprintf(buf + len, cap - len, "MEM %d.5 %d.25\n", i % 97, i);
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"LINE %d %d 0 1 %d f a.py\nSTACK %d %d 0 1 f:a.py:%d\n",
					i % 3, i, i + 1, i % 3, i, i + 1);
	assert_true(len < cap);
	write_tmp(path, buf, len);
	mp_datfile__init(&df);
	assert_int_equal(mp_datfile__read_reduced(&df, path, &o), 0);
	assert_true(df.reduced);
	assert_true(df.mem.n < 20000);
	assert_int_equal(df.n_line_recs, 300);
	assert_int_equal(df.n_stacks, 300);
	assert_int_equal(df.line_recs[299].line, 300);
	assert_int_equal(df.stacks[299].frames[0].line, 300);
	mp_datfile__release(&df);
	unlink(path);
	free(buf);
}

static void test_read_and_load_errors(void **state)
{
	char path[] = "/tmp/mprof-test-datfile-XXXXXX", msg[512];
	struct mp_datfile df;

	(void)state;
	mp_datfile__init(&df);
	assert_int_equal(mp_datfile__read(&df, "/nonexistent/x.dat"), -ENOENT);
	assert_int_equal(mp_datfile__read(&df, "/tmp"), -EISDIR);
	assert_int_equal(mp_datfile__load(&df, "/tmp", msg, sizeof(msg)), -EISDIR);
	assert_non_null(strstr(msg, "'/tmp' is a directory"));
	assert_int_equal(mp_datfile__load(&df, "/nonexistent/x.dat", msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "cannot read '/nonexistent/x.dat'"));
	mp_datfile__release(&df);

	write_tmp(path, "", 0);
	assert_int_equal(mp_datfile__load(&df, path, msg, sizeof(msg)), -ENODATA);
	assert_non_null(strstr(msg, "empty"));
	mp_datfile__release(&df);
	unlink(path);

	strcpy(path, "/tmp/mprof-test-datfile-XXXXXX");
	write_tmp(path, "CMDLINE x\n", 10);
	assert_int_equal(mp_datfile__load(&df, path, msg, sizeof(msg)), -ENODATA);
	assert_non_null(strstr(msg, "no MEM samples"));
	mp_datfile__release(&df);
	unlink(path);

	strcpy(path, "/tmp/mprof-test-datfile-XXXXXX");
	write_tmp(path, "CMDLINE x\nMEM 1 2\nMEM 3\n", 24);
	assert_int_equal(mp_datfile__load(&df, path, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "line 3: bad MEM record"));
	mp_datfile__release(&df);
	unlink(path);
}

static void test_func_peak(void **state)
{
	struct mp_datfile df;
	double mib = 0, t = 0;

	(void)state;
	assert_int_equal(parse(&df, "MEM 10 0\nMEM 50 1\nMEM 20 2\nMEM 90 3\nMEM 30 4\n"
				    "MEM 70 5\nMEM 99 6\n"
				    "FUNC m.f 0 0.5 0 2 0\n"  /* holds t=1, t=2 (bound) */
				    "FUNC m.f 0 4 0 5 0\n"    /* holds 4 and 5 (bounds) */
				    "FUNC m.f 0 4.5 0 4.8 1\n" /* nested, inside the previous */
				    "FUNC m.g 0 2.2 0 2.8 0\n" /* no sample inside */
				    "FUNC m.h 0 7 0 6.5 0\n"), /* ends before it starts */
			 0);
	assert_int_equal(mp_datfile__func_peak(&df, mp_datfile__func(&df, "m.f"), &mib, &t), 0);
	assert_near(mib, 70, 0);
	assert_near(t, 5, 0);
	assert_int_equal(mp_datfile__func_peak(&df, mp_datfile__func(&df, "m.g"), &mib, &t),
			 -ENODATA);
	assert_int_equal(mp_datfile__func_peak(&df, mp_datfile__func(&df, "m.h"), &mib, &t),
			 -ENODATA);
	assert_int_equal(mp_points__max(df.mem.pts, df.mem.n), 6);
	assert_int_equal(mp_points__max(df.mem.pts, 0), -1);
	mp_datfile__release(&df);
}

static void test_fit(void **state)
{
	struct mp_point pts[100];
	double slope, icpt;

	(void)state;
	/* epoch-sized times: a naive sum of t^2 would lose the slope */
	for (int i = 0; i < 100; i++) {
		pts[i].t = 1795314234.0 + i * 0.1;
		pts[i].mib = 20 + 3.5 * (i * 0.1) + (i % 2 ? 0.25 : -0.25);
	}
	assert_int_equal(mp_points__fit(pts, 100, 1795314234.0, &slope, &icpt), 0);
	assert_near(slope, 3.5, 0.01);
	assert_near(icpt, 20, 0.05);
	/* flat */
	for (int i = 0; i < 100; i++)
		pts[i].mib = 7;
	assert_int_equal(mp_points__fit(pts, 100, 0, &slope, &icpt), 0);
	assert_near(slope, 0, 1e-12);
	assert_int_equal(mp_points__fit(pts, 1, 0, &slope, &icpt), -EDOM);
	assert_int_equal(mp_points__fit(pts, 0, 0, &slope, &icpt), -EDOM);
	pts[1].t = pts[0].t;
	assert_int_equal(mp_points__fit(pts, 2, 0, &slope, &icpt), -EDOM);
}

static void test_name_matches(void **state)
{
	(void)state;
	assert_true(mp_profile__name_matches("mprofile_20240102030405.dat"));
	/* each ? is any one character, as in glob */
	assert_true(mp_profile__name_matches("mprofile_abcdefghijklmn.dat"));
	assert_true(mp_profile__name_matches("mprofile_2024010203040\xc3\xa9.dat"));
	assert_false(mp_profile__name_matches("mprofile_2024010203040.dat"));
	assert_false(mp_profile__name_matches("mprofile_202401020304050.dat"));
	assert_false(mp_profile__name_matches("mprofile_20240102030405.dat~"));
	assert_false(mp_profile__name_matches("mprofile_20240102030405.DAT"));
	assert_false(mp_profile__name_matches("Mprofile_20240102030405.dat"));
	assert_false(mp_profile__name_matches("x.dat"));
	assert_false(mp_profile__name_matches(""));
	assert_false(mp_profile__name_matches("mprofile_"));
}

static void test_parse_index(void **state)
{
	long long idx;

	(void)state;
	assert_int_equal(mp_profile__parse_index("1", &idx), 0);
	assert_int_equal(idx, 1);
	assert_int_equal(mp_profile__parse_index("-1", &idx), 0);
	assert_int_equal(idx, -1);
	assert_int_equal(mp_profile__parse_index(" +2\t", &idx), 0);
	assert_int_equal(idx, 2);
	assert_int_equal(mp_profile__parse_index("1_0", &idx), 0);
	assert_int_equal(idx, 10);
	assert_int_equal(mp_profile__parse_index("007", &idx), 0);
	assert_int_equal(idx, 7);
	assert_int_equal(mp_profile__parse_index("1__0", &idx), -EINVAL);
	assert_int_equal(mp_profile__parse_index("_1", &idx), -EINVAL);
	assert_int_equal(mp_profile__parse_index("1_", &idx), -EINVAL);
	assert_int_equal(mp_profile__parse_index("", &idx), -EINVAL);
	assert_int_equal(mp_profile__parse_index("-", &idx), -EINVAL);
	assert_int_equal(mp_profile__parse_index("1.0", &idx), -EINVAL);
	assert_int_equal(mp_profile__parse_index("x.dat", &idx), -EINVAL);
	assert_int_equal(mp_profile__parse_index("99999999999999999999999", &idx), -EINVAL);
}

static void test_index_pos(void **state)
{
	size_t pos;

	(void)state;
	assert_int_equal(mp_profile__index_pos(3, 0, &pos), 0);
	assert_int_equal(pos, 0);
	assert_int_equal(mp_profile__index_pos(3, 2, &pos), 0);
	assert_int_equal(pos, 2);
	assert_int_equal(mp_profile__index_pos(3, -1, &pos), 0);
	assert_int_equal(pos, 2);
	assert_int_equal(mp_profile__index_pos(3, -3, &pos), 0);
	assert_int_equal(pos, 0);
	assert_int_equal(mp_profile__index_pos(3, 3, &pos), -ERANGE);
	assert_int_equal(mp_profile__index_pos(3, -4, &pos), -ERANGE);
	assert_int_equal(mp_profile__index_pos(0, 0, &pos), -ERANGE);
	assert_int_equal(mp_profile__index_pos(0, -1, &pos), -ERANGE);
	assert_int_equal(mp_profile__index_pos(3, LLONG_MIN, &pos), -ERANGE);
	assert_int_equal(mp_profile__index_pos(3, LLONG_MAX, &pos), -ERANGE);
}

static void test_list_stamp(void **state)
{
	char out[64];

	(void)state;
	mp_profile__list_stamp("mprofile_20240102030405.dat", out, sizeof(out));
	assert_string_equal(out, "03:04:05 02/01/2024");
	/* memory_profiler slices the text after the last '_': odd names give odd stamps */
	mp_profile__list_stamp("mprofile_2024_102030405.dat", out, sizeof(out));
	assert_string_equal(out, "5:: 40/30/1020");
	mp_profile__list_stamp("mprofile_abcd_fgh.dat", out, sizeof(out));
	assert_string_equal(out, ":: //fgh");
	mp_profile__list_stamp("mprofile_2024010203040\xc3\xa9.dat", out, sizeof(out));
	assert_string_equal(out, "03:04:0\xc3\xa9 02/01/2024");
	/* a small buffer is cut, never overrun */
	assert_int_equal(mp_profile__list_stamp("mprofile_20240102030405.dat", out, 6), 5);
	assert_string_equal(out, "03:04");
}

static void test_ts_companion(void **state)
{
	static const char *const cases[][2] = {
		{ "mprofile_20240102030405.dat", "mprofile_20240102030405_ts.dat" },
		{ "dir.d/x.dat", "dir.d/x_ts.dat" },
		{ "dir.d/x", "dir.d/x_ts" },
		{ ".hidden", ".hidden_ts" },
		{ "..x.dat", "..x_ts.dat" },
		{ "a.b.c", "a.b_ts.c" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = mp_profile__ts_companion(cases[i][0]);

		assert_non_null(got);
		assert_string_equal(got, cases[i][1]);
		free(got);
	}
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "MEM 1 2\n", 8), 8);
	close(fd);
}

/* The scratch folder of test_scan_and_select, and where we came from. */
static char folder[] = "/tmp/mprof-test-select-XXXXXX";
static char *old_cwd;

static const char *const folder_files[] = {
	"mprofile_20240102030405.dat", "mprofile_20230102030405.dat",
	"mprofile_20250102030405.dat", "mprofile_20230102030405_ts.dat",
	"mprofile_2023010203.dat", /* too short: not a profile */
	"custom.dat",		       "5",
};

/* Three profiles, a companion, other files, and a directory whose name matches the glob. */
static int folder_setup(void **state)
{
	(void)state;
	old_cwd = getcwd(NULL, 0);
	if (!old_cwd || !mkdtemp(folder) || chdir(folder))
		return -1;
	for (size_t i = 0; i < sizeof(folder_files) / sizeof(folder_files[0]); i++)
		touch(folder_files[i]);
	if (mkdir("mprofile_29990102030405.dat", 0755) || mkdir("sub", 0755))
		return -1;
	return 0;
}

static int folder_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(folder_files) / sizeof(folder_files[0]); i++)
		unlink(folder_files[i]);
	rmdir("mprofile_29990102030405.dat");
	rmdir("sub");
	if (chdir(old_cwd))
		return -1;
	free(old_cwd);
	return rmdir(folder);
}

static void test_scan_and_select(void **state)
{
	struct mp_profiles all = { 0 }, sel = { 0 };
	char *args[] = { "-1", "custom.dat", "0", "--", "mprofile_20250102030405.dat", "5" };
	char msg[256];
	bool newest;
	int bad = -1;

	(void)state;
	assert_int_equal(mp_profiles__scan(&all, "."), 0);
	/* sorted; the directory and the short name are not profiles */
	assert_int_equal(all.n, 3);
	assert_string_equal(all.names[0], "mprofile_20230102030405.dat");
	assert_string_equal(all.names[2], "mprofile_20250102030405.dat");

	/* plot/peak: a file first ("5" exists), then an index; duplicates dropped */
	assert_int_equal(mp_profiles__select(&all, 6, args, MP_SELECT_PATH_FIRST, &sel, &bad), 0);
	assert_int_equal(sel.n, 4);
	assert_string_equal(sel.names[0], "mprofile_20250102030405.dat");
	assert_string_equal(sel.names[1], "custom.dat");
	assert_string_equal(sel.names[2], "mprofile_20230102030405.dat");
	assert_string_equal(sel.names[3], "5");
	mp_profiles__release(&sel);

	/* rm: an index first, so "5" is index 5, out of range */
	assert_int_equal(mp_profiles__select(&all, 6, args, MP_SELECT_INDEX_FIRST, &sel, &bad),
			 -ERANGE);
	assert_int_equal(bad, 5);
	mp_profiles__release(&sel);

	{
		char *a[] = { "sub" }, *b[] = { "nope.dat" }, *c[] = { "3" }, *d[] = { "-4" };

		assert_int_equal(mp_profiles__select(&all, 1, a, MP_SELECT_PATH_FIRST, &sel, &bad),
				 -EISDIR);
		assert_int_equal(mp_profiles__select(&all, 1, a, MP_SELECT_INDEX_FIRST, &sel, &bad),
				 -EISDIR);
		assert_int_equal(mp_profiles__select(&all, 1, b, MP_SELECT_PATH_FIRST, &sel, &bad),
				 -ENOENT);
		assert_int_equal(mp_profiles__select(&all, 1, b, MP_SELECT_INDEX_FIRST, &sel, &bad),
				 -ENOENT);
		assert_int_equal(mp_profiles__select(&all, 1, c, MP_SELECT_PATH_FIRST, &sel, &bad),
				 -ERANGE);
		assert_int_equal(mp_profiles__select(&all, 1, d, MP_SELECT_INDEX_FIRST, &sel, &bad),
				 -ERANGE);
		assert_int_equal(sel.n, 0);
	}

	/* companions: the existing _ts file of the oldest profile is added once */
	{
		char *a[] = { "0", "-1" };

		assert_int_equal(mp_profiles__select(&all, 2, a, MP_SELECT_INDEX_FIRST, &sel, &bad),
				 0);
		assert_int_equal(mp_profiles__add_companions(&sel), 0);
		assert_int_equal(mp_profiles__add_companions(&sel), 0);
		assert_int_equal(sel.n, 3);
		assert_string_equal(sel.names[2], "mprofile_20230102030405_ts.dat");
		mp_profiles__release(&sel);
	}

	/* no argument: the newest */
	assert_int_equal(mp_profiles__choose(0, NULL, MP_SELECT_PATH_FIRST, &sel, &newest, msg,
					     sizeof(msg)),
			 0);
	assert_true(newest);
	assert_int_equal(sel.n, 1);
	assert_string_equal(sel.names[0], "mprofile_20250102030405.dat");
	mp_profiles__release(&sel);
	{
		char *a[] = { "--", "9" };

		assert_int_equal(mp_profiles__choose(2, a, MP_SELECT_PATH_FIRST, &sel, &newest, msg,
						     sizeof(msg)),
				 -ERANGE);
		assert_string_equal(msg, "no profile with index 9: the current folder has 3 "
					 "mprofile_*.dat files");
		mp_profiles__release(&sel);
	}
	mp_profiles__release(&all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_profiler_file),
		cmocka_unit_test(test_children),
		cmocka_unit_test(test_our_writer_round_trip),
		cmocka_unit_test(test_number_formats),
		cmocka_unit_test(test_odd_whitespace_and_crlf),
		cmocka_unit_test(test_cmdline_cases),
		cmocka_unit_test(test_func_variants),
		cmocka_unit_test(test_thousands_of_children_and_functions),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_torn_last_line_is_skipped),
		cmocka_unit_test(test_numbers_equal_strtod),
		cmocka_unit_test(test_nul_and_unknown_records),
		cmocka_unit_test(test_read_and_load_errors),
		cmocka_unit_test(test_line_records_round_trip),
		cmocka_unit_test(test_line_records_iteration),
		cmocka_unit_test(test_line_escapes),
		cmocka_unit_test(test_line_records_streamed),
		cmocka_unit_test(test_bad_line_records),
		cmocka_unit_test(test_torn_line_records),
		cmocka_unit_test(test_line_records_in_reduced_read),
		cmocka_unit_test(test_func_peak),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_name_matches),
		cmocka_unit_test(test_parse_index),
		cmocka_unit_test(test_index_pos),
		cmocka_unit_test(test_list_stamp),
		cmocka_unit_test(test_ts_companion),
		cmocka_unit_test_setup_teardown(test_scan_and_select, folder_setup,
						folder_teardown),
	};

	return cmocka_run_group_tests_name("datfile", tests, NULL, NULL);
}
