/* user/size.c: sizes as people write them. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "size.h"

static void sizes_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t want;
	} ok[] = {
		{ "512MiB", 512ull << 20 }, { "2G", 2ull << 30 }, { "100 MB", 100000000ull },
		{ "1.5 GiB", 3ull << 29 }, { " 64 KiB ", 65536 }, { "10kb", 10000 },
		{ "1 B", 1 }, { "0.5K", 512 }, { "3 t", 3ull << 40 }, { "7 mib", 7ull << 20 },
	};
	static const char *const bad[] = {
		"", "512", "-1 MiB", "MiB", "1 Mb/s", "1e3 MB", "inf GiB", "nan B", "0x10 MiB",
		"1 b", "12 bytes", "1 PiB x", "+5 MiB",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(mp_size__parse(ok[i].s, &v), 0);
		assert_true(v == ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mp_size__parse(bad[i], &v) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	assert_int_equal(mp_size__parse("9000000 TiB", &v), -ERANGE);
}

static void sizes_format(void **state)
{
	char buf[32];

	(void)state;
	mp_size__format(512ull << 20, buf, sizeof(buf));
	assert_string_equal(buf, "512 MiB");
	mp_size__format(3ull << 29, buf, sizeof(buf));
	assert_string_equal(buf, "1.5 GiB");
	mp_size__format(12, buf, sizeof(buf));
	assert_string_equal(buf, "12 B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_parse),
		cmocka_unit_test(sizes_format),
	};

	return cmocka_run_group_tests_name("size", tests, NULL, NULL);
}
