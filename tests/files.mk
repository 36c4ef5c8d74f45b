# The file commands (plot, peak, list, clean, rm) and the .dat reader; included by the Makefile.
#
#   make test-files                     everything below, as `make test` runs it
#   make fuzz-datfile FUZZ_SECONDS=600  a longer fuzz run of the reader
#   make fuzz-plot FUZZ_PLOT_SECONDS=600 a longer one of the renderer (~500 inputs/s)
#   make fuzz-report FUZZ_REPORT_SECONDS=600 a longer one of the HTML report's data
#
# test-files builds mprof and the reader/plot unit tests with ASan+UBSan (the same build as
# `make asan`), runs those unit tests, runs the CLI tests (tests/files, pytest) against that
# mprof, with memory_profiler's own mprof as the reference, then fuzzes the reader (20 s) and
# the renderer (10 s) and the report writer (10 s).

FUZZ_SECONDS ?= 20
FUZZ_PLOT_SECONDS ?= 10
FUZZ_REPORT_SECONDS ?= 10
FILES_ASAN_OUT := $(OUT)/asan
FILES_ASAN_CFLAGS := $(ASAN_CFLAGS)
FILES_ASAN_LDFLAGS := $(ASAN_LDFLAGS)
FILES_UNIT := $(addprefix $(FILES_ASAN_OUT)/tests/,test_datfile test_linetab test_sources test_plot test_json)
FUZZ_DIR := $(OUT)/fuzz
FUZZ_FLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror -Iuser $(CAIRO_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

.PHONY: test-files fuzz-datfile fuzz-plot fuzz-report

$(FUZZ_DIR)/fuzz_datfile: tests/fuzz/fuzz_datfile.c user/datfile.c user/datreduce.c user/datfile.h
	$(Q)mkdir -p $(FUZZ_DIR)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_datfile.c user/datfile.c user/datreduce.c

$(FUZZ_DIR)/fuzz_plot: tests/fuzz/fuzz_plot.c user/plot.c user/plot.h user/datfile.c user/datreduce.c user/datfile.h
	$(Q)mkdir -p $(FUZZ_DIR)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_plot.c user/plot.c user/datfile.c user/datreduce.c \
		$(shell pkg-config --libs cairo 2>/dev/null) -lm

# The report writer includes the generated page header (mprof/report/report.mk).
$(FUZZ_DIR)/fuzz_report: tests/fuzz/fuzz_report.c user/report.c user/report.h user/json.c user/json.h \
		user/plot.c user/plot.h user/datfile.c user/datreduce.c user/datfile.h \
		user/linetab.c user/linetab.h user/sources.c user/sources.h $(REPORT_ASSETS)
	$(Q)mkdir -p $(FUZZ_DIR)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -I$(OUT) -o $@ tests/fuzz/fuzz_report.c user/report.c user/json.c \
		user/plot.c user/datfile.c user/datreduce.c user/linetab.c user/sources.c \
		$(shell pkg-config --libs cairo 2>/dev/null) -lm

# fuzz-run NAME SECONDS MAXLEN: new inputs go to a scratch corpus under $(OUT), the seeds in
# tests/data stay as they are; a failing input is kept under $(FUZZ_DIR).
define fuzz-run
	$(Q)rm -rf $(FUZZ_DIR)/corpus-$(1) && mkdir -p $(FUZZ_DIR)/corpus-$(1)
	$(Q)$(FUZZ_DIR)/fuzz_$(1) -dict=tests/fuzz/datfile.dict -max_total_time=$(2) \
		-max_len=$(3) -timeout=10 -rss_limit_mb=1024 -artifact_prefix=$(FUZZ_DIR)/$(1)- \
		$(FUZZ_DIR)/corpus-$(1) tests/data >$(FUZZ_DIR)/$(1).log 2>&1 || { \
		tail -n 40 $(FUZZ_DIR)/$(1).log; \
		echo "fuzz-$(1): failed; the input is saved as $(FUZZ_DIR)/$(1)-*" >&2; exit 1; }
	$(Q)printf '  FUZZ     %s: %s\n' $(1) "$$(grep -E '^Done' $(FUZZ_DIR)/$(1).log)"
endef

fuzz-datfile: $(FUZZ_DIR)/fuzz_datfile
	$(call fuzz-run,datfile,$(FUZZ_SECONDS),4096)

fuzz-plot: $(FUZZ_DIR)/fuzz_plot
	$(call fuzz-run,plot,$(FUZZ_PLOT_SECONDS),2048)

fuzz-report: $(FUZZ_DIR)/fuzz_report
	$(call fuzz-run,report,$(FUZZ_REPORT_SECONDS),4096)

test-files:
	$(Q)$(MAKE) --no-print-directory OUT=$(FILES_ASAN_OUT) EXTRA_CFLAGS='$(FILES_ASAN_CFLAGS)' \
		EXTRA_LDFLAGS='$(FILES_ASAN_LDFLAGS)' $(FILES_ASAN_OUT)/mprof $(FILES_UNIT)
	$(Q)rc=0; for t in $(FILES_UNIT); do $$t || rc=1; done; exit $$rc
	$(Q)MPROF=$(abspath $(FILES_ASAN_OUT)/mprof) TESTPY=$(TESTPY) \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/files
	$(Q)$(MAKE) --no-print-directory fuzz-datfile fuzz-plot fuzz-report

TEST_SUITES += test-files
