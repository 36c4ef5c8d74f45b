/* The RSS page has one layout for BPF and the loader (bpf/mprof.h) and for the hook. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <linux/types.h>

#include "mprof.h"
#include "../../pyhook/rss_shared.h"

#define SAME(f) assert_int_equal(offsetof(struct mp_rss_page, f), offsetof(struct mp_rss_shared, f))

static void rss_page_layouts_agree(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct mp_rss_page), sizeof(struct mp_rss_shared));
	SAME(magic);
	SAME(version);
	SAME(nslots);
	SAME(slots_used);
	SAME(seq);
	SAME(rss_bytes);
	SAME(peak_bytes);
	SAME(tgid);
	SAME(scope);
	assert_int_equal(MP_RSS_PAGE_MAGIC, MP_RSS_MAGIC);
	assert_int_equal(MP_RSS_PAGE_VERSION, MP_RSS_VERSION);
	assert_int_equal(MP_RSS_PAGE_SLOTS, MP_RSS_SLOTS);
}

#define SAMEF(f) assert_int_equal(offsetof(struct mp_func_event, f), offsetof(struct mp_func_shared, f))

static void func_record_layouts_agree(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct mp_func_event), sizeof(struct mp_func_shared));
	SAMEF(kind);
	SAMEF(tgid);
	SAMEF(tid);
	SAMEF(phase);
	SAMEF(ts_ns);
	SAMEF(pages);
	SAMEF(id);
	SAMEF(name);
	assert_int_equal(MP_EV_FUNC, MP_FUNC_KIND);
	assert_int_equal(MP_FUNC_NAME_LEN, MP_FUNC_NAME);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rss_page_layouts_agree),
		cmocka_unit_test(func_record_layouts_agree),
	};

	return cmocka_run_group_tests_name("layout", tests, NULL, NULL);
}
