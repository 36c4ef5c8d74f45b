/* The /proc backend's PSS and USS reading (user/procbackend.c) against smaps_rollup itself. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backend.h"

/* The sum the test expects, read with stdio: "Pss:" for PSS, "Private_*:" for USS (kB). */
static uint64_t expected(const char *key_prefix)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/self/smaps_rollup", "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (!strncmp(line, key_prefix, strlen(key_prefix)) &&
		    sscanf(strchr(line, ':') + 1, "%llu", &v) == 1)
			kb += v;
	}
	fclose(f);
	return kb * 1024;
}

/*
 * Our reading of @metric, bracketed by two of the kernel's (@key_prefix): PSS moves when other
 * processes map or unmap the libraries we share (a loaded machine, valgrind), so the reading
 * counts when the kernel's own value held still around it: tried until it did (at most 50
 * times), then it must lie within a page or two of it.
 */
static void matches(int metric, const char *key_prefix)
{
	for (int i = 0;; i++) {
		uint64_t before = expected(key_prefix), got, after;

		assert_int_equal(mp_proc_smaps(getpid(), metric, &got), 0);
		after = expected(key_prefix);
		if (before != after && i < 50)
			continue;
		/* a page or two may still move between the reads */
		if (got + 65536 < before || got > before + 65536)
			fail_msg("%s %llu bytes, the kernel's %llu then %llu (try %d)", key_prefix,
				 (unsigned long long)got, (unsigned long long)before,
				 (unsigned long long)after, i);
		return;
	}
}

static void pss_and_uss_match_smaps_rollup(void **state)
{
	/* 32 MiB written: private, resident, so USS grows by as much */
	size_t n = 32u << 20;
	char *big = malloc(n);
	uint64_t uss;

	(void)state;
	assert_non_null(big);
	memset(big, 1, n);
	matches(MP_METRIC_PSS, "Pss:");
	matches(MP_METRIC_USS, "Private_");
	assert_int_equal(mp_proc_smaps(getpid(), MP_METRIC_USS, &uss), 0);
	assert_true(uss >= n);
	free(big);
}

static void gone_process_is_esrch(void **state)
{
	uint64_t v = 7;

	(void)state;
	/* pid_max is at most 2^22: this pid cannot exist */
	assert_int_equal(mp_proc_smaps((pid_t)((1 << 22) + 1), MP_METRIC_PSS, &v), -ESRCH);
	assert_int_equal(v, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pss_and_uss_match_smaps_rollup),
		cmocka_unit_test(gone_process_is_esrch),
	};

	if (access("/proc/self/smaps_rollup", R_OK)) {
		printf("procbackend: skipped, /proc/self/smaps_rollup is not readable\n");
		return 0;
	}
	return cmocka_run_group_tests_name("procbackend", tests, NULL, NULL);
}
