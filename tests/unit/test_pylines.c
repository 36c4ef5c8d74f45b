/*
 * CPython line tables and str objects, decoded without the interpreter (user/pylines.c,
 * user/pystr.c), against data captured from the real interpreters 3.8-3.13
 * (tests/unit/pyobjects_data.h, from tests/pyframe/capture_pyobjects.py): every instruction's
 * line must be what that interpreter's own PyCode_Addr2Line() said, every str what it encodes
 * to. Then hostile inputs: truncated and random tables, random str states.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pylayout.h"
#include "pylines.h"
#include "pyobjects.h"
#include "pystr.h"

static void lines_match_the_interpreters(void **state)
{
	unsigned int checked = 0, versions = 0;

	(void)state;
	for (size_t v = 0; all_codes[v]; v++, versions++) {
		for (size_t i = 0; all_codes[v][i]; i++) {
			const struct code_sample *c = all_codes[v][i];
			const struct mp_pylayout *l = mp_pylayout__find(c->minor);

			assert_non_null(l);
			assert_int_equal(c->format, l->lines);
			for (size_t u = 0; u < c->n_units; u++) {
				int want = c->lines[u] < 0 ? 0 : c->lines[u];
				int got = mp_pylines__line(c->format, c->table, c->tablelen,
							   c->firstlineno, (int)(u * 2));

				if (got != want)
					fail_msg("3.%u %s: offset %zu: line %d, interpreter %d", c->minor,
						 c->name, u * 2, got, want);
				checked++;
			}
			/* a frame that has not started is on its def line */
			assert_int_equal(mp_pylines__line(c->format, c->table, c->tablelen,
							  c->firstlineno, -2),
					 c->firstlineno);
		}
	}
	assert_int_equal(versions, 6);
	assert_true(checked > 1000);
}

static void strs_match_the_interpreters(void **state)
{
	unsigned int checked = 0;

	(void)state;
	for (size_t v = 0; all_strs[v]; v++) {
		for (size_t i = 0; all_strs[v][i]; i++) {
			const struct str_sample *x = all_strs[v][i];
			const struct mp_pylayout *l = mp_pylayout__find(x->minor);
			struct mp_pystr_shape shape;
			uint32_t st;
			int64_t len;
			size_t off;
			char out[256];

			assert_non_null(l);
			memcpy(&st, x->raw + l->u_state, sizeof(st));
			memcpy(&len, x->raw + l->u_length, sizeof(len));
			assert_int_equal(mp_pystr__shape(l, st, &shape), 0);
			assert_true(shape.compact);
			off = (size_t)(shape.ascii ? l->u_ascii_size : l->u_compact_size);
			assert_true(off + (size_t)len * shape.kind <= x->rawlen);
			assert_int_equal(mp_pystr__utf8(shape.kind, x->raw + off, (size_t)len, out,
							sizeof(out)),
					 x->utf8len);
			assert_memory_equal(out, x->utf8, x->utf8len + 1);
			checked++;
		}
	}
	assert_int_equal(checked, 36);
}

/* A small deterministic generator: the same hostile inputs on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void hostile_tables_stay_in_bounds(void **state)
{
	static const int addrs[] = { -5, 0, 1, 2, 255, 256, 4096, 65534, 1 << 20, 0x7ffffffe };

	(void)state;
	/* every prefix of every real table: as read from a code object being torn down */
	for (size_t v = 0; all_codes[v]; v++) {
		for (size_t i = 0; all_codes[v][i]; i++) {
			const struct code_sample *c = all_codes[v][i];

			for (size_t n = 0; n <= c->tablelen; n++) {
				/* a heap copy of exactly n bytes: ASan sees any read past it */
				uint8_t *t = malloc(n ? n : 1);

				assert_non_null(t);
				memcpy(t, c->table, n);
				for (size_t a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++) {
					int line = mp_pylines__line(c->format, t, n, c->firstlineno,
								    addrs[a]);

					assert_true(line >= 0);
				}
				free(t);
			}
		}
	}
	/* random bytes, random first lines (extremes included), every format */
	for (int round = 0; round < 20000; round++) {
		size_t n = next_rand() % 64;
		uint8_t *t = malloc(n ? n : 1);
		int first = round % 3 == 0 ? 0x7fffffff : round % 3 == 1 ? -0x7fffffff : (int)(next_rand() % 1000);

		assert_non_null(t);
		for (size_t k = 0; k < n; k++)
			t[k] = (uint8_t)next_rand();
		for (unsigned int fmt = 1; fmt <= 3; fmt++) {
			int line = mp_pylines__line(fmt, t, n, first, (int)(next_rand() % 512));

			assert_true(line >= 0);
		}
		free(t);
	}
	assert_int_equal(mp_pylines__line(0, NULL, 0, 1, 0), -EINVAL);
	assert_int_equal(mp_pylines__line(MP_PYLINES_LOCATIONS, NULL, 0, 7, 0), 0);
}

static void hostile_strs(void **state)
{
	const struct mp_pylayout *l311 = mp_pylayout__find(11), *l312 = mp_pylayout__find(12);
	struct mp_pystr_shape shape;
	char out[16];
	uint32_t chars[4] = { 0x41, 0x110000, 0xd800, 0 };

	(void)state;
	for (uint32_t st = 0; st < 256; st++) {
		/* any state either decodes to a valid shape or is refused */
		if (!mp_pystr__shape(l311, st, &shape))
			assert_true(shape.kind == 1 || shape.kind == 2 || shape.kind == 4);
		if (!mp_pystr__shape(l312, st, &shape))
			assert_true(shape.kind == 1 || shape.kind == 2 || shape.kind == 4);
	}
	/* 3.11: not ready; ASCII but not compact */
	assert_int_equal(mp_pystr__shape(l311, (1u << 2) | (1u << 5), &shape), -EINVAL);
	assert_int_equal(mp_pystr__shape(l312, (1u << 2) | (1u << 6), &shape), -EINVAL);
	assert_int_equal(mp_pystr__shape(l312, (3u << 2) | (1u << 5), &shape), -EINVAL);
	/* out of range and lone high surrogates become U+FFFD, NUL too; the output is cut whole */
	assert_int_equal(mp_pystr__utf8(4, chars, 4, out, sizeof(out)), 10);
	assert_string_equal(out, "A\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_int_equal(mp_pystr__utf8(4, chars, 4, out, 4), 1);
	assert_string_equal(out, "A");
	assert_int_equal(mp_pystr__utf8(3, chars, 4, out, sizeof(out)), 0);
	assert_int_equal(mp_pystr__utf8(1, "abc", 3, out, 1), 0);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_match_the_interpreters),
		cmocka_unit_test(strs_match_the_interpreters),
		cmocka_unit_test(hostile_tables_stay_in_bounds),
		cmocka_unit_test(hostile_strs),
	};

	return cmocka_run_group_tests_name("pylines", tests, NULL, NULL);
}
