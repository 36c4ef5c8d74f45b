/*
 * Unit tests of the JSON writer (user/json.c): every byte string becomes a valid JSON string,
 * invalid UTF-8 as Unicode's maximal-subpart U+FFFD, the HTML flag leaves no '<' or '>', and
 * numbers read back as the same double.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* What @write printed to a memory stream, NUL-terminated; the caller frees it. */
#define CAPTURE(buf, call)                                              \
	do {                                                            \
		size_t len_;                                            \
		FILE *f_ = open_memstream(&(buf), &len_);               \
		assert_non_null(f_);                                    \
		call;                                                   \
		assert_int_equal(fclose(f_), 0);                        \
	} while (0)

static void check_string(const char *in, size_t len, unsigned int flags, const char *want)
{
	char *out = NULL;

	CAPTURE(out, mp_json__string(f_, in, len, flags));
	assert_string_equal(out, want);
	free(out);
}

static void test_escapes(void **state)
{
	(void)state;
	check_string("", 0, 0, "\"\"");
	check_string("a\"b\\c", 5, 0, "\"a\\\"b\\\\c\"");
	check_string("\n\r\t\x01\x1f\x7f", 6, 0, "\"\\n\\r\\t\\u0001\\u001f\\u007f\"");
	check_string("a\0b", 3, 0, "\"a\\u0000b\"");
	check_string("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, 0, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
	/* '<' and '>' are fine in JSON, but not inside a <script> element */
	check_string("</script><!--&", 14, 0, "\"</script><!--&\"");
	check_string("</script><!--&", 14, MP_JSON_HTML,
		     "\"\\u003c/script\\u003e\\u003c!--\\u0026\"");
	check_string("\xe2\x80\xa8\xe2\x80\xa9", 6, MP_JSON_HTML, "\"\\u2028\\u2029\"");
	check_string("\xe2\x80\xa8", 3, 0, "\"\xe2\x80\xa8\"");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	/* one U+FFFD per maximal subpart, as Python's errors="replace" gives */
	check_string("\xff\xfe", 2, 0, "\"\\ufffd\\ufffd\"");
	check_string("\xc0\xaf", 2, 0, "\"\\ufffd\\ufffd\"");	      /* overlong: two */
	check_string("\xed\xa0\x80", 3, 0, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate: three */
	check_string("\xe2\x82x", 3, 0, "\"\\ufffdx\"");		      /* a cut sequence: one */
	check_string("\xf0\x9f\x98", 3, 0, "\"\\ufffd\"");		      /* cut at the end: one */
	check_string("\xf4\x90\x80\x80", 4, 0, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	check_string("\xe0\xa0\x80", 3, 0, "\"\xe0\xa0\x80\"");	      /* U+0800 is fine */
	check_string("\x80x", 2, 0, "\"\\ufffdx\"");
}

static void test_cstring_null(void **state)
{
	char *out = NULL;

	(void)state;
	CAPTURE(out, mp_json__cstring(f_, NULL, 0));
	assert_string_equal(out, "null");
	free(out);
}

static void check_number(double v, const char *want)
{
	char *out = NULL;

	CAPTURE(out, mp_json__number(f_, v));
	if (want)
		assert_string_equal(out, want);
	if (isfinite(v))
		assert_true(strtod(out, NULL) == v);
	free(out);
}

static void test_numbers(void **state)
{
	(void)state;
	check_number(0.1, "0.1");
	check_number(1795311724.2532, "1795311724.2532");
	check_number(117.085938, "117.085938");
	check_number(1e300, "1e+300");
	check_number(-2.5, "-2.5");
	check_number(INFINITY, "null");
	check_number(NAN, "null");
	srand(7);
	for (int i = 0; i < 10000; i++) {
		uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
		double v;

		memcpy(&v, &bits, sizeof(v));
		check_number(v, isfinite(v) ? NULL : "null");
	}
}

static void check_fixed(double v, int dec, const char *want)
{
	char *out = NULL;

	CAPTURE(out, mp_json__fixed(f_, v, dec));
	assert_string_equal(out, want);
	free(out);
}

static void test_fixed(void **state)
{
	char *out = NULL;

	(void)state;
	check_fixed(12.5, 6, "12.5");
	check_fixed(3.0, 6, "3");
	check_fixed(0.0000004, 6, "0");
	check_fixed(-0.0000004, 6, "0");
	check_fixed(-1.25, 1, "-1.2");
	check_fixed(1234567.0, 0, "1234567");
	check_fixed(NAN, 6, "null");
	/* a number wider than any small buffer is still written whole */
	CAPTURE(out, mp_json__fixed(f_, 1e300, 6));
	assert_int_equal(strlen(out), 301);
	assert_true(strtod(out, NULL) == 1e300);
	free(out);
}

static void check_bytes(double mib, const char *want)
{
	char *out = NULL;

	CAPTURE(out, mp_json__bytes(f_, mib));
	assert_string_equal(out, want);
	free(out);
}

static void test_bytes(void **state)
{
	(void)state;
	/* 22718 pages written with 6 decimals: 88.742188 MiB, 93052929.4 bytes, is 93052928 */
	check_bytes(88.742188, "93052928");
	check_bytes(1.5, "1572864");
	check_bytes(8.6, "9017754"); /* not a page count: rounded to the byte */
	check_bytes(0, "0");
	check_bytes(1e308, "null");
	check_bytes(INFINITY, "null");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),	  cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_cstring_null), cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_fixed),	  cmocka_unit_test(test_bytes),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
