# The Prometheus exporter (user/exporter.c); included by the Makefile.
#
#   make bench-exporter   what one scrape costs the loop, at 500 and 10 000 processes
#   make test-exporter    its unit tests, then tests/prom (pytest): the HTTP side on raw
#                         sockets (hostile clients included), promtool's checks of both formats
#                         and of the README's scrape configuration and alert rules, and a real
#                         Prometheus server scraping synth_exporter
#
# Everything runs on the ASan/UBSan build (the same as `make asan`), so a hostile client that
# made the server misbehave in memory fails the suite. The Prometheus tests skip, with the
# reason, when Debian's prometheus (prometheus, promtool) is not installed. About 40 s.

SYNTH_EXPORTER := $(OUT)/tests/synth_exporter
EXPORTER_ASAN_OUT := $(OUT)/asan

$(SYNTH_EXPORTER): tests/prom/synth_exporter.c $(LIBMPROF) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) $(CFLAGS) $(MP_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIBMPROF) $(LIBS)

BENCH_EXPORTER := $(OUT)/bench/bench_exporter

$(BENCH_EXPORTER): bench/bench_exporter.c $(LIBMPROF)
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) $(CFLAGS) $(MP_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIBMPROF) $(LIBS)

.PHONY: test-exporter bench-exporter

# What one scrape costs the recording loop (the figures in the README).
bench-exporter: $(BENCH_EXPORTER)
	$(Q)$(BENCH_EXPORTER)

test-exporter:
	$(Q)$(MAKE) --no-print-directory OUT=$(EXPORTER_ASAN_OUT) EXTRA_CFLAGS='$(ASAN_CFLAGS)' \
		EXTRA_LDFLAGS='$(ASAN_LDFLAGS)' $(EXPORTER_ASAN_OUT)/tests/test_exporter \
		$(EXPORTER_ASAN_OUT)/tests/synth_exporter
	$(Q)$(EXPORTER_ASAN_OUT)/tests/test_exporter
	$(Q)ASAN_OPTIONS=detect_leaks=1 SYNTH_EXPORTER=$(abspath $(EXPORTER_ASAN_OUT)/tests/synth_exporter) \
		README=$(abspath README.md) $(TESTPY) -m pytest -q -p no:cacheprovider tests/prom

TEST_SUITES += test-exporter

-include $(SYNTH_EXPORTER).d $(BENCH_EXPORTER).d
